"""The feeds file, published to the compacted ``feeds`` topic.

The feeds file stays what users edit (``wirewatch feeds add/remove/discover --add``). Every
fetcher instance watches its copy of the file; when it changes (and at start) the instance
reads the ``feeds`` topic and publishes the difference: each new or changed feed under its
feed id, a tombstone for each feed no longer listed. Each record goes to the partition of the
feed's shard (:func:`~wirewatch.fetcher.state.partition_of`), so that the instance owning
that partition, whichever it is, picks the feed up. Instances sharing one file publish the
same records, which is harmless (same key, same value). An instance whose feeds file does not
exist publishes nothing and follows the topic: extra instances need no copy of the file. A file
that cannot be read, or has an invalid entry, publishes nothing either (the feeds last published
stay): the reason is logged at ERROR and ``wirewatch_fetcher_feeds_file_invalid`` is 1 until
the file is fixed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Gauge

from wirewatch.core.feeds import FeedsFileError, load_feeds
from wirewatch.core.kafka import client_options
from wirewatch.core.logs import get_logger
from wirewatch.core.models import Feed, MessageError
from wirewatch.core.settings import Settings
from wirewatch.fetcher.state import partition_of, shard_of

log = get_logger(__name__)

FEEDS_FILE_INVALID = Gauge(
    "wirewatch_fetcher_feeds_file_invalid",
    "1 while the feeds file cannot be read or has an invalid entry (the feeds last published stay)",
)


def feeds_file_state(path: Path, problem: str | None, before: str | None) -> str | None:
    """Say once that the feeds file at ``path`` was refused (``problem``: ERROR with the reason) or
    reads again (INFO), as ``before`` was the last state, and keep ``FEEDS_FILE_INVALID`` at it;
    returns ``problem``. The fetcher keeps its last good feeds meanwhile, whether it publishes the
    file (:class:`FeedsPublisher`) or polls it itself (no durable state store)."""
    if problem is not None and problem != before:
        log.error(
            "feeds file refused: the last good feeds stay", extra={"error": problem, "feeds_file": str(path)}
        )
    elif problem is None and before is not None:
        log.info("feeds file readable again", extra={"feeds_file": str(path)})
    FEEDS_FILE_INVALID.set(0 if problem is None else 1)
    return problem


class Sender(Protocol):
    async def send(self, *, key: bytes, value: bytes | None, partition: int | None = None) -> Any: ...


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


async def read_feeds_topic(settings: Settings, timeout: float = 10.0) -> dict[str, Feed]:
    """The feeds currently on the topic (latest record per key, tombstones applied)."""
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(settings.topic_feeds)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(settings.topic_feeds)
        tps = [TopicPartition(settings.topic_feeds, p) for p in sorted(partitions or ())]
        if not tps:
            return {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        current: dict[str, Feed] = {}
        remaining = set(tps)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if not remaining:
                return current
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"reading {settings.topic_feeds} took more than {timeout:g} s")
            batch = await consumer.getmany(*remaining, timeout_ms=200)
            for records in batch.values():
                for record in records:
                    key = record.key.decode("utf-8", "replace") if record.key else ""
                    if record.value is None:
                        current.pop(key, None)
                        continue
                    try:
                        current[key] = Feed.from_bytes(record.value)
                    except MessageError as exc:
                        log.warning("unreadable record on the feeds topic", extra={"error": str(exc)})
    finally:
        await consumer.stop()


class FeedsPublisher:
    """Publishes the feeds file to the ``feeds`` topic whenever the file changes."""

    def __init__(self, settings: Settings, topic: Sender) -> None:
        self.settings = settings
        self.topic = topic
        self._stamp: tuple[int, int] | None = None
        self._missing_logged = False
        #: Why the feeds file was refused, while it is (None once it reads again, or is removed).
        self.problem: str | None = None
        #: The file has been published once (or found missing or refused: nothing to publish);
        #: polling after an assignment waits for it (a feed removed meanwhile has its tombstone).
        self.synced = False

    def partition(self, feed: Feed) -> int:
        return partition_of(shard_of(feed.url), self.settings.topic_partitions)

    async def sync(self) -> bool:
        """Publish what changed in the file since the last call; returns whether it published."""
        path = self.settings.feeds_file
        stamp = _stamp(path)
        if stamp is None:
            if not self._missing_logged:
                log.info("no feeds file: following the feeds topic", extra={"feeds_file": str(path)})
                self._missing_logged = True
            self._stamp = None
            self.problem = feeds_file_state(path, None, self.problem)
            self.synced = True
            return False
        if stamp == self._stamp:
            return False
        try:
            listed = load_feeds(path)
        except FeedsFileError as exc:  # nothing published: the feeds last published stay
            self._stamp = stamp
            self.problem = feeds_file_state(path, str(exc), self.problem)
            self.synced = True
            return False
        self.problem = feeds_file_state(path, None, self.problem)
        try:
            current = await read_feeds_topic(self.settings)
        except Exception as exc:  # try again at the next call
            log.warning("cannot read the feeds topic", extra={"error": f"{type(exc).__name__}: {exc}"})
            return False
        await self.publish(listed, current)
        self._stamp = stamp
        self._missing_logged = False
        self.synced = True
        return True

    async def publish(self, listed: list[Feed], current: dict[str, Feed]) -> tuple[int, int]:
        """Send the difference between ``listed`` (the file) and ``current`` (the topic)."""
        wanted = {feed.id: feed for feed in listed}
        changed = [feed for feed in listed if current.get(feed.id) != feed]
        removed = [feed for fid, feed in current.items() if fid not in wanted]
        sent = []
        for feed in changed:
            sent.append(
                await self.topic.send(
                    key=feed.id.encode(), value=feed.to_bytes(), partition=self.partition(feed)
                )
            )
        for feed in removed:
            partition = self.partition(feed)
            sent.append(await self.topic.send(key=feed.id.encode(), value=None, partition=partition))
        for delivery in sent:
            await delivery
        if changed or removed:
            log.info(
                "feeds published",
                extra={"listed": len(listed), "changed": len(changed), "removed": len(removed)},
            )
        return len(changed), len(removed)
