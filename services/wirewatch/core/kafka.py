"""Kafka plumbing shared by services and commands: topics, producer, counts and lag.

Only requests valid on Apache Kafka 3.x/4.x are used. Topics are created explicitly
(never by auto-creation) so every topic has the configured partition count.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from wirewatch.core.logs import get_logger
from wirewatch.core.settings import Settings

log = get_logger(__name__)

#: Topics whose latest value per key is the state (kept forever by compaction).
COMPACTED = frozenset({"claims"})


class KafkaUnavailableError(RuntimeError):
    """The broker did not answer within the allowed time."""


def bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise KafkaUnavailableError(
            "WIREWATCH_KAFKA_BOOTSTRAP is not set (run `wirewatch up` to start local servers)"
        )
    return settings.kafka_bootstrap


async def wait_for_kafka(settings: Settings, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(settings), request_timeout_ms=5000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError) as exc:
            last = exc
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
    raise KafkaUnavailableError(f"Kafka at {settings.kafka_bootstrap} unreachable for {timeout:.0f}s: {last}")


async def ensure_topics(settings: Settings) -> list[str]:
    """Create wirewatch's topics that do not exist yet; return the ones created."""
    return await create_topics(
        settings,
        {
            name: {"cleanup.policy": "compact"} if logical in COMPACTED else {}
            for logical, name in settings.topics.items()
        },
    )


@dataclass(frozen=True)
class TopicStats:
    topic: str
    partitions: int
    messages: int  # end offset minus start offset, summed (compacted topics: an upper bound)


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    lag: int
    committed: int


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    partitions = consumer.partitions_for_topic(topic)
    if partitions is None:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
    return set(partitions or ())


async def topic_stats(settings: Settings) -> list[TopicStats]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(settings), request_timeout_ms=10000)
    await consumer.start()
    try:
        out = []
        for name in settings.topics.values():
            partitions = await _partitions(consumer, name)
            if not partitions:
                out.append(TopicStats(name, 0, 0))
                continue
            tps = [TopicPartition(name, p) for p in sorted(partitions)]
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            out.append(TopicStats(name, len(tps), sum(ends[tp] - starts[tp] for tp in tps)))
        return out
    finally:
        await consumer.stop()


async def consumer_lag(settings: Settings, groups: list[str]) -> list[GroupLag]:
    """Lag of each consumer group on each wirewatch topic it has committed offsets for."""
    out = []
    for group in groups:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap(settings),
            group_id=group,
            enable_auto_commit=False,
            request_timeout_ms=10000,
        )
        await consumer.start()  # not subscribed: reads committed offsets without joining the group
        try:
            for topic in settings.topics.values():
                tps = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
                committed = {tp: await consumer.committed(tp) for tp in tps}
                known = {tp: off for tp, off in committed.items() if off is not None}
                if not known:
                    continue
                ends = await consumer.end_offsets(list(known))
                lag = sum(max(ends[tp] - off, 0) for tp, off in known.items())
                out.append(GroupLag(group, topic, lag, sum(known.values())))
        finally:
            await consumer.stop()
    return out


async def read_topic(
    settings: Settings, topic: str, *, timeout: float = 5.0, max_messages: int = 100_000
) -> list[tuple[bytes | None, bytes | None]]:
    """Every (key, value) currently in a topic, from the beginning (for CLI and tests)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
        ends = await consumer.end_offsets(tps) if tps else {}
        out: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out) < max_messages:
            reached = [await _position_reached(consumer, tp, ends[tp]) for tp in tps]
            if all(reached):
                break
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend((r.key, r.value) for r in records)
        return out
    except KafkaConnectionError as exc:
        raise KafkaUnavailableError(str(exc)) from exc
    finally:
        await consumer.stop()


async def _position_reached(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> bool:
    if end == 0:
        return True
    try:
        return bool(await consumer.position(tp) >= end)
    except KafkaError:
        return False


async def produce(settings: Settings, topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
    """Send ``(key, value)`` messages and wait until the broker has them all (acks=all)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(settings), acks="all")
    try:
        await producer.start()
    except KafkaConnectionError as exc:
        raise KafkaUnavailableError(str(exc)) from exc
    try:
        sent = [await producer.send(topic, key=key, value=value) for key, value in messages]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def create_topics(settings: Settings, wanted: dict[str, dict[str, str]]) -> list[str]:
    """Create the topics named in ``wanted`` (name -> topic configs) that do not exist yet, each
    with ``topic_partitions`` partitions; return the ones created."""
    await wait_for_kafka(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(settings), request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        created = []
        for name, configs in wanted.items():
            if name in existing:
                continue
            topic = NewTopic(
                name,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.kafka_replication_factor,
                topic_configs=configs,
            )
            try:  # one by one: a concurrent creator must not fail the others
                await admin.create_topics([topic])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        if created:
            log.info("topics created", extra={"topics": created, "partitions": settings.topic_partitions})
        return created
    finally:
        await admin.close()


async def ensure_fetcher_topics(settings: Settings) -> list[str]:
    """The fetcher's own topics: the feeds (compacted, key: feed id) and backfill requests.

    Their partitions are how fetcher instances share the sites (see ``wirewatch.fetcher.state``)."""
    return await create_topics(
        settings, {settings.topic_feeds: {"cleanup.policy": "compact"}, settings.topic_backfill: {}}
    )
