"""Every consumer of a service process, Faust's included, asks the broker to hold an empty fetch
for ``kafka_fetch_max_wait`` at most: Faust fixes 1.5 s, and tansu (the test and local broker)
answers a held fetch late when data arrives, by about a fifth of the wait at each hop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.fetch import FetchRequest

from conftest import settings_for
from wirewatch.core.kafka import client_options, create_topics, fetch_max_wait
from wirewatch.core.settings import Settings
from wirewatch.local.servers import LocalServers

TOPIC = "fetch-wait"


@pytest.fixture
def waits_asked() -> Iterator[list[int]]:
    """The ``max_wait_time`` (ms) of every fetch request sent meanwhile."""
    waits: list[int] = []
    upstream = AIOKafkaClient.send

    async def send(client: AIOKafkaClient, node_id: int, request: Any, **kwargs: Any) -> Any:
        if isinstance(request, FetchRequest):
            waits.append(request._max_wait_ms)  # what goes on the wire
        return await upstream(client, node_id, request, **kwargs)

    AIOKafkaClient.send = send  # type: ignore[method-assign]
    try:
        yield waits
    finally:
        AIOKafkaClient.send = upstream  # type: ignore[method-assign]
        fetch_max_wait(Settings.model_fields["kafka_fetch_max_wait"].default)


async def _fetch_idle(settings: Settings, **consumer_options: Any) -> None:
    await create_topics(settings, {TOPIC: {}})
    options = {**client_options(settings), **consumer_options}
    consumer = AIOKafkaConsumer(TOPIC, auto_offset_reset="latest", **options)
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=1000)
    finally:
        await consumer.stop()


async def test_every_fetch_asks_for_the_setting(servers: LocalServers, waits_asked: list[int]) -> None:
    settings = settings_for(servers)
    assert settings.kafka_fetch_max_wait == 0.5  # the default, for tansu too
    fetch_max_wait(settings.kafka_fetch_max_wait)
    await _fetch_idle(settings, fetch_max_wait_ms=1500)  # as Faust creates its consumers
    assert waits_asked and set(waits_asked) == {500}


async def test_set_again_the_last_value_wins(servers: LocalServers, waits_asked: list[int]) -> None:
    settings = settings_for(servers)
    fetch_max_wait(0.1)
    fetch_max_wait(0.25)
    await _fetch_idle(settings)
    assert waits_asked and set(waits_asked) == {250}


async def test_a_service_sets_it_from_its_settings(servers: LocalServers, waits_asked: list[int]) -> None:
    from wirewatch.core.app import ServiceApp

    settings = settings_for(servers, kafka_fetch_max_wait=0.2)
    ServiceApp("indexer", settings)
    await _fetch_idle(settings, fetch_max_wait_ms=1500)
    assert waits_asked and set(waits_asked) == {200}
