"""An idle consumer on noida-db, the local mode's backend, which answers an empty fetch at once
instead of holding it for the fetch's max wait as Kafka does: with the pause the local launcher
sets (``kafka_empty_fetch_pause``), it fetches a few times a second instead of thousands, and a
record produced meanwhile still arrives."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.fetch import FetchRequest

from conftest import settings_for
from wirewatch.core.kafka import client_options, create_topics, pause_after_empty_fetches
from wirewatch.local.servers import LocalServers

TOPIC = "fetch-pause"


async def _idle_fetches(servers: LocalServers, pause: float, seconds: float) -> tuple[int, float | None]:
    """Fetch requests an idle consumer sends in ``seconds``, and how long a record produced
    halfway through took to arrive."""
    settings = settings_for(servers, kafka_empty_fetch_pause=pause)
    await create_topics(settings, {TOPIC: {}})
    fetches = 0
    upstream = AIOKafkaClient.send

    async def send(client: AIOKafkaClient, node_id: int, request: Any, **kwargs: Any) -> Any:
        nonlocal fetches
        if isinstance(request, FetchRequest):
            fetches += 1
        return await upstream(client, node_id, request, **kwargs)

    pause_after_empty_fetches(settings.kafka_empty_fetch_pause)
    consumer = AIOKafkaConsumer(TOPIC, auto_offset_reset="latest", **client_options(settings))
    producer = AIOKafkaProducer(**client_options(settings))
    await consumer.start()
    await producer.start()
    try:
        await consumer.getmany(timeout_ms=1000)  # assigned, positioned at the end
        AIOKafkaClient.send = send  # type: ignore[method-assign]
        began = time.monotonic()
        await consumer.getmany(timeout_ms=int(seconds * 500))
        sent = time.monotonic()
        await producer.send_and_wait(TOPIC, b"news")
        arrived = None
        while time.monotonic() - began < seconds and arrived is None:
            if await consumer.getmany(timeout_ms=100):
                arrived = time.monotonic() - sent
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - began)))
        return fetches, arrived
    finally:
        AIOKafkaClient.send = upstream  # type: ignore[method-assign]
        pause_after_empty_fetches(0)
        await consumer.stop()
        await producer.stop()


async def test_an_idle_consumer_pauses_between_empty_fetches_on_noida(noida: LocalServers) -> None:
    assert noida.empty_fetch_pause == 0.1  # what `wirewatch up` and the services get on noida
    fetches, arrived = await _idle_fetches(noida, noida.empty_fetch_pause, seconds=3.0)
    assert fetches <= 3.0 / 0.1 + 5  # at most one fetch per pause (aiokafka: ~1,000/s without)
    assert arrived is not None and arrived < 1.0


async def test_without_the_pause_noida_is_fetched_from_without_rest(noida: LocalServers) -> None:
    """Why the pause exists: if noida-db ever holds empty fetches, this fails and the pause can go."""
    fetches, arrived = await _idle_fetches(noida, 0.0, seconds=1.0)
    assert fetches > 200
    assert arrived is not None
