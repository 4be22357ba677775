"""The Kafka request timeout (issue 7): a fetch the broker never answers stalls a consumer for the
request timeout, not for Faust's default 90 s.

An aiokafka consumer keeps one fetch in flight per broker; while it waits for the answer, it
reads nothing from any partition on that broker. The alerts service once waited 90 s so in CI
(tansu left a fetch unanswered after a restart), and a parked webhook delivery missed its test's
60 s. Here a loopback proxy in front of tansu (advertised as the broker, so every connection goes
through it) stops answering a connection after it passes a fetch: the consumer gets the record
produced meanwhile once the request timeout drops that connection, and not before.

Also here: the other consumer settings Faust takes from ours (the stream buffer).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from brokerproxy import LoopbackProxy, read_frame, start_proxied_broker, write_frame
from conftest import make_settings
from wirewatch.core.app import ServiceApp
from wirewatch.core.kafka import client_options, create_topics, produce
from wirewatch.local.servers import LocalServers

FETCH = 1  # the Fetch request's api key


def test_the_request_timeout_must_outlast_a_group_join() -> None:
    with pytest.raises(ValidationError, match="WIREWATCH_KAFKA_REQUEST_TIMEOUT=10 must exceed"):
        make_settings(kafka_request_timeout=10, kafka_rebalance_timeout=10)
    with pytest.raises(ValidationError, match="must exceed the session and rebalance timeouts"):
        make_settings(kafka_request_timeout=12, kafka_session_timeout=20, kafka_rebalance_timeout=5)
    assert make_settings(kafka_request_timeout=11).kafka_request_timeout == 11
    with pytest.raises(ValidationError, match="must exceed WIREWATCH_KAFKA_FETCH_MAX_WAIT=25"):
        make_settings(kafka_request_timeout=20, kafka_fetch_max_wait=25)


def test_faust_gets_the_request_timeout(tmp_path: Any) -> None:
    settings = make_settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path, kafka_request_timeout=12)
    assert ServiceApp("alerts", settings).app.conf.broker_request_timeout == 12


def test_faust_gets_the_stream_buffer(tmp_path: Any) -> None:
    """What each stream holds ahead of its processing (benchmarks/bench_backlog.py measures it)."""
    settings = make_settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path)
    assert ServiceApp("indexer", settings).app.conf.stream_buffer_maxsize == settings.stream_buffer == 1000
    smaller = make_settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path, stream_buffer=64)
    assert ServiceApp("enricher", smaller).app.conf.stream_buffer_maxsize == 64


@pytest.mark.parametrize("backend", ["ephemeral", "noida"])
def test_local_servers_give_the_services_the_same_settings_as_the_cli(backend: Any) -> None:
    servers = LocalServers(backend, "127.0.0.1:9092", "http://127.0.0.1:9200")
    values = servers.settings()
    with pytest.MonkeyPatch.context() as env:
        for name, value in servers.env().items():
            env.setenv(name, value)
        from_env = make_settings()
    assert {name: getattr(from_env, name) for name in values} == values
    assert values["kafka_request_timeout"] < 30  # shorter than the production default on the emulators


class StallingProxy(LoopbackProxy):
    """Pipes Kafka connections to ``target`` (in a thread of its own). Once ``stall_next_fetch``
    is set, the next connection to send a fetch gets no answer to it, or to anything after it:
    the connection stays open and silent, as a broker that left the request hanging."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.stall_next_fetch = False
        self.connections = 0
        self.stalled_at: float | None = None
        self.stalled = threading.Event()
        super().__init__(port, target)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        silent = asyncio.Event()
        await asyncio.gather(
            self._requests(reader, up_writer, silent), self._answers(up_reader, writer, silent)
        )

    async def _requests(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, silent: asyncio.Event
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                frame = await read_frame(source)
                (api_key,) = struct.unpack(">h", frame[:2])
                if api_key == FETCH and self.stall_next_fetch:
                    self.stall_next_fetch = False
                    self.stalled_at = time.monotonic()
                    self.stalled.set()
                    silent.set()
                await write_frame(sink, frame)
        sink.close()

    @staticmethod
    async def _answers(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, silent: asyncio.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                if silent.is_set():
                    continue  # the answer never comes
                sink.write(data)
                await sink.drain()
        sink.close()


@pytest.fixture()
def stalling_broker() -> Iterator[tuple[str, StallingProxy]]:
    broker = start_proxied_broker(StallingProxy)
    yield broker.bootstrap, broker.proxy
    broker.close()


async def test_a_fetch_left_unanswered_stalls_the_consumer_for_the_request_timeout_only(
    stalling_broker: tuple[str, StallingProxy],
) -> None:
    bootstrap, proxy = stalling_broker
    settings = make_settings(
        kafka_bootstrap=bootstrap,
        kafka_session_timeout=3,
        kafka_heartbeat_interval=1,
        kafka_rebalance_timeout=3,
        kafka_request_timeout=5,
        topic_partitions=1,
    )
    topic = f"stall-{uuid.uuid4().hex[:8]}"
    await create_topics(settings, {topic: {}})
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(settings),
        group_id=f"stall-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        request_timeout_ms=int(settings.kafka_request_timeout * 1000),  # as Faust gives it
        session_timeout_ms=int(settings.kafka_session_timeout * 1000),
        heartbeat_interval_ms=int(settings.kafka_heartbeat_interval * 1000),
    )
    await consumer.start()
    try:
        await produce(settings, topic, [(b"k", b"before")])
        first = await asyncio.wait_for(consumer.getone(), 30)
        assert first.value == b"before"

        connections = proxy.connections
        proxy.stall_next_fetch = True
        reading = asyncio.create_task(consumer.getone())  # the consumer fetches when asked for more
        assert await asyncio.to_thread(proxy.stalled.wait, 30), "the consumer sent no fetch"
        assert proxy.stalled_at is not None
        await produce(settings, topic, [(b"k", b"during")])
        second = await asyncio.wait_for(reading, settings.kafka_request_timeout + 15)
        waited = time.monotonic() - proxy.stalled_at
    finally:
        await consumer.stop()
    assert second.value == b"during"
    assert waited >= settings.kafka_request_timeout - 0.5  # nothing came through the silent connection
    assert waited < settings.kafka_request_timeout + 10  # a new connection, right after the timeout
    assert proxy.connections > connections
