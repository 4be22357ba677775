"""What the fetcher must not forget, kept in Kafka, and how fetcher instances share the feeds.

**Sharding.** Every feed belongs to a *shard*: its site (host name, ``www.`` aside). A shard
maps to one partition of the ``feeds`` topic (:func:`partition_of`, a hash, the same in every
process), so all the feeds of one site, their state, their seen articles and their backfills
live in one partition and are worked on by the one fetcher instance that Kafka's consumer
group assigned that partition to. One instance per site means that the per-host politeness
(concurrency, spacing, ``Retry-After``, ``Crawl-delay``) holds across instances too, and that an
article listed by several feeds of a site is fetched once.

**Tables.** Three changelog-backed Faust tables, co-partitioned with the ``feeds`` topic
(:class:`ShardedTable` picks each key's partition from the shard written at the start of the
key, ``"<shard> <id>"``):

* ``feeds``: ``"<shard> <feed id>"`` -> ``{"feed": Feed, "state": FeedState.to_record()}``:
  the feed as published from the feeds file, its conditional-GET validators, schedule and
  health;
* ``seen``: ``"<shard> <article id>"`` -> when a feed of the site last listed that article
  (epoch seconds): the articles already produced. Bounded per site (:class:`SeenIds`);
* ``backfills``: ``"<shard> <backfill id>"`` -> a backfill's request and progress.

:class:`FetcherState` is the fetcher's view of them. Without tables (unit tests, a fetcher
built without Kafka) it keeps the same things in memory and owns every shard.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

import faust

from wirewatch.core.ids import source_domain
from wirewatch.core.logs import get_logger
from wirewatch.core.models import Feed
from wirewatch.core.settings import Settings
from wirewatch.fetcher.schedule import FeedState

log = get_logger(__name__)

#: A site's seen ids are swept (expired, capped) at most this often (seconds).
SWEEP_EVERY = 60.0
#: Longest time between two writes of a listed article's "last listed" time (seconds).
REFRESH_MAX = 86400.0

Table = MutableMapping[str, Any]


def shard_of(url: str) -> str:
    """The shard of a feed or backfill URL: its host name without ``www.``."""
    return source_domain(url) or "-"


def partition_of(shard: str, partitions: int) -> int:
    """The partition of a shard: the same in every process and every run."""
    digest = hashlib.sha256(shard.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big") % max(partitions, 1)


def table_key(shard: str, ident: str) -> str:
    return f"{shard} {ident}"


def split_key(key: str | bytes) -> tuple[str, str]:
    """``(shard, id)`` of a table key."""
    text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
    shard, _, ident = text.rpartition(" ")
    return shard, ident


class ShardedTable(faust.Table):  # type: ignore[misc,type-arg]
    """A Faust table whose changelog partition is the partition of the shard in each key.

    Faust would take the partition of the event being processed, and refuses writes made
    outside an agent; the poll loop writes from outside one, and the partition must be the
    shard's either way."""

    def partition_for_key(self, key: Any) -> int | None:
        return partition_of(split_key(key)[0], int(self.partitions or 1))


class SeenIds:
    """Article ids already produced, per shard, written through to a table when there is one.

    An id stays while a feed of its site keeps listing it (each listing refreshes its time, the
    write at most once per ``refresh`` seconds), then ``ttl`` seconds more; a shard keeps at most
    ``cap`` ids, the ones unlisted for longest are forgotten first. ``writable(shard)`` says
    whether this process may write the shard's records (it owns the shard's partition)."""

    def __init__(
        self,
        ttl: float,
        cap: int,
        table: Table | None = None,
        writable: Callable[[str], bool] = lambda shard: True,
    ) -> None:
        self.ttl = ttl
        self.cap = cap
        self.table = table
        self.writable = writable
        self.refresh = min(ttl / 10, REFRESH_MAX)
        self.by_shard: dict[str, dict[str, float]] = {}
        self._swept: dict[str, float] = {}

    def has(self, shard: str, aid: str) -> bool:
        return aid in self.by_shard.get(shard, ())

    def count(self, shard: str) -> int:
        return len(self.by_shard.get(shard, ()))

    def add(self, shard: str, aid: str, now: float | None = None) -> None:
        when = float(int(now if now is not None else time.time()))
        self.by_shard.setdefault(shard, {})[aid] = when
        self._write(shard, aid, when)

    def listed(self, shard: str, aids: Iterable[str], now: float | None = None) -> int:
        """The feed lists ``aids`` now: refresh the seen ones; returns how many were written."""
        ids = self.by_shard.get(shard)
        if not ids:
            return 0
        now = now if now is not None else time.time()
        written = 0
        for aid in aids:
            when = ids.get(aid)
            if when is not None and when < now - self.refresh:
                ids[aid] = float(int(now))
                self._write(shard, aid, ids[aid])
                written += 1
        return written

    def sweep(self, shard: str, now: float | None = None, *, force: bool = False) -> int:
        """Forget the shard's expired ids, then the oldest beyond the cap; returns how many."""
        now = now if now is not None else time.time()
        if not force and now - self._swept.get(shard, 0.0) < SWEEP_EVERY:
            return 0
        self._swept[shard] = now
        ids = self.by_shard.get(shard)
        if not ids:
            return 0
        gone = [aid for aid, when in ids.items() if when < now - self.ttl]
        if len(ids) - len(gone) > self.cap:
            expired = set(gone)
            rest = sorted((when, aid) for aid, when in ids.items() if aid not in expired)
            gone.extend(aid for _, aid in rest[: len(rest) - self.cap])
        for aid in gone:
            del ids[aid]
            self._write(shard, aid, None)
        return len(gone)

    def restore(self, shard: str, aid: str, when: float) -> None:
        """Load one record read from the table (no write)."""
        self.by_shard.setdefault(shard, {})[aid] = float(when)

    def clear(self) -> None:
        self.by_shard.clear()
        self._swept.clear()

    def _write(self, shard: str, aid: str, when: float | None) -> None:
        if self.table is None or not self.writable(shard):
            return
        key = table_key(shard, aid)
        try:
            if when is None:
                self.table.pop(key, None)
            else:
                self.table[key] = int(when)
        except Exception:  # kept in memory; the next write of the id tries again
            log.exception("cannot save a seen article id", extra={"key": key})


class FetcherState:
    """The fetcher's durable state: feeds with their state, seen ids, and which shards are ours.

    With tables (``durable``), only the shards of the partitions Kafka assigned to this
    instance are ours (:meth:`assign`), and nothing is ours between a revocation and the end of
    the next assignment's table recovery. Without, every shard is ours and the feeds come from
    the feeds file."""

    def __init__(
        self,
        settings: Settings,
        *,
        feeds: Table | None = None,
        seen: Table | None = None,
    ) -> None:
        self.settings = settings
        self.partitions = settings.topic_partitions
        self.feeds_table = feeds
        self.seen_table = seen
        self.durable = feeds is not None
        #: Partitions of the feeds topic this instance works on; None: not known (yet).
        self.owned: set[int] | None = None if self.durable else set(range(self.partitions))
        #: Set while partitions are being handed over: no new work starts.
        self.paused = False
        self._parsed: dict[str, tuple[Any, Feed]] = {}  # key -> (feed record, parsed Feed)
        self.seen = SeenIds(
            settings.fetch_seen_ttl_days * 86400, settings.fetch_seen_max, seen, writable=self.owns
        )

    # -- ownership ----------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Work may start: the assignment is known, its tables recovered, no hand-over under way."""
        return self.owned is not None and not self.paused

    def owns(self, shard: str) -> bool:
        if not self.durable:
            return True
        return self.owned is not None and partition_of(shard, self.partitions) in self.owned

    def owns_key(self, key: str) -> bool:
        return self.owns(split_key(key)[0])

    def assign(self, partitions: set[int]) -> None:
        """The partitions of this instance, once their tables are recovered: reload the seen ids."""
        self.owned = set(partitions)
        self.paused = False
        self.seen.clear()
        loaded = 0
        if self.seen_table is not None:
            for key, when in list(self.seen_table.items()):
                shard, aid = split_key(key)
                if when is not None and self.owns(shard):
                    self.seen.restore(shard, aid, float(when))
                    loaded += 1
        log.info(
            "fetcher partitions assigned",
            extra={"partitions": sorted(self.owned), "feeds": len(self.feed_keys()), "seen_ids": loaded},
        )

    def revoke(self) -> None:
        """The hand-over is done: nothing is ours until the next assignment."""
        if self.durable:
            self.owned = None
            self.seen.clear()
            self._parsed.clear()

    # -- feeds ----------------------------------------------------------------------------------
    def feed_keys(self) -> list[str]:
        if self.feeds_table is None:
            return []
        return [key for key in list(self.feeds_table.keys()) if self.owns_key(key)]

    def owned_feeds(self) -> Iterator[tuple[Feed, dict[str, Any] | None]]:
        """Each feed of this instance's shards, with its saved state (None: never polled)."""
        if self.feeds_table is None or self.owned is None:
            return
        for key in self.feed_keys():
            record = self.feeds_table.get(key)
            if not record or not record.get("feed"):
                continue
            cached = self._parsed.get(key)
            if cached is not None and cached[0] == record["feed"]:
                feed = cached[1]
            else:
                try:
                    feed = Feed.model_validate(record["feed"])
                except ValueError:
                    log.warning("unreadable feed record skipped", extra={"key": key})
                    continue
                self._parsed[key] = (record["feed"], feed)
            yield feed, record.get("state")

    def put_feed(self, feed: Feed) -> None:
        """A feed published on the feeds topic (new or changed): keep its state."""
        if self.feeds_table is None:
            return
        key = table_key(shard_of(feed.url), feed.id)
        record = self.feeds_table.get(key) or {}
        self.feeds_table[key] = {**record, "feed": feed.model_dump(mode="json")}

    def remove_feed(self, fid: str) -> str | None:
        """A tombstone on the feeds topic: forget the feed and its state; returns its URL."""
        if self.feeds_table is None:
            return None
        for key in list(self.feeds_table.keys()):
            if split_key(key)[1] == fid:
                record = self.feeds_table.pop(key, None) or {}
                url = (record.get("feed") or {}).get("url")
                return str(url) if url else None
        return None

    def save_state(self, feed: Feed, state: FeedState) -> None:
        """Save a feed's state, if the feed is still listed and its shard still ours."""
        if self.feeds_table is None:
            return
        shard = shard_of(feed.url)
        if not self.owns(shard):
            return
        key = table_key(shard, feed.id)
        record = self.feeds_table.get(key)
        if not record:
            return  # removed from the feeds file meanwhile: do not bring it back
        try:
            self.feeds_table[key] = {**record, "state": state.to_record()}
        except Exception:  # polling goes on; the next save tries again
            log.exception("cannot save a feed's state", extra={"feed_url": feed.url})
