"""What the fetcher must not forget, kept in Kafka, and how fetcher instances share the feeds.

**Sharding.** Every feed belongs to a *shard*: its site (host name, ``www.`` aside). A shard
maps to one partition of the ``feeds`` topic (:func:`partition_of`, a hash, the same in every
process), so all the feeds of one site, their state, their seen articles and their backfills
live in one partition and are worked on by the one fetcher instance that Kafka's consumer
group assigned that partition to. One instance per site means that the per-host politeness
(concurrency, spacing, ``Retry-After``, ``Crawl-delay``) holds across instances too, and that an
article listed by several feeds of a site is fetched once.

**Tables.** Four changelog-backed Faust tables, co-partitioned with the ``feeds`` topic
(:class:`ShardedTable` picks each key's partition from the shard written at the start of the
key, ``"<shard> <id>"``):

* ``feeds``: ``"<shard> <feed id>"`` -> ``{"feed": Feed, "state": FeedState.to_record()}``:
  the feed as published from the feeds file, its conditional-GET validators, schedule and
  health;
* ``seen``: ``"<shard> <article id>"`` -> when a feed of the site last listed that article
  (epoch seconds): the articles already produced. Bounded per site (:class:`SeenIds`);
* ``failed``: ``"<shard> <article id>"`` -> :meth:`ArticleFailure.to_record`: the listed articles
  that gave no article (attempts, next try in epoch seconds, reason), so that a restarted
  instance, or the site's next owner, keeps their backoff and records no new dead letter for
  the same failure. Bounded per site as the seen ids are (:class:`FailedArticles`);
* ``backfills``: ``"<shard> <backfill id>"`` -> a backfill's request and progress.

:class:`FetcherState` is the fetcher's view of them. Without tables (unit tests, a fetcher
built without Kafka) it keeps the same things in memory and owns every shard.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar

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
#: Longest wait, after an assignment, for the feeds table to catch up with the feeds topic (seconds).
CATCH_UP_MAX = 30.0

#: Attempts at an article that keeps failing before the fetcher gives up on it.
ARTICLE_MAX_ATTEMPTS = 5

Table = MutableMapping[str, Any]
V = TypeVar("V")


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


class SiteRecords(Generic[V]):
    """Records about article ids, per shard, written through to a table when there is one.

    A record stays while a feed of its site keeps listing its article (each listing refreshes
    its time, the write at most once per ``refresh`` seconds), then ``ttl`` seconds more; a shard
    keeps at most ``cap`` records, the ones unlisted for longest are forgotten first.
    ``writable(shard)`` says whether this process may write the shard's records (it owns the
    shard's partition). Reads come from memory; :meth:`load` fills it from the table.
    Subclasses say what a record is: when its article was last listed, and its table value."""

    #: What a record is, for the log line of a write that failed.
    kind = "record"

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
        self.by_shard: dict[str, dict[str, V]] = {}
        self._swept: dict[str, float] = {}

    # -- what a record is (subclasses) ------------------------------------------------------
    def listed_at(self, value: V) -> float:
        """When a feed of the site last listed the record's article (epoch seconds)."""
        raise NotImplementedError

    def relisted(self, value: V, when: float) -> V:
        """``value`` listed again at ``when``."""
        raise NotImplementedError

    def encode(self, value: V) -> Any:
        """The table value of a record."""
        raise NotImplementedError

    def decode(self, raw: Any) -> V | None:
        """A record from its table value; None when it cannot be read."""
        raise NotImplementedError

    # -- reads ------------------------------------------------------------------------------
    def get(self, shard: str, aid: str) -> V | None:
        return self.by_shard.get(shard, {}).get(aid)

    def has(self, shard: str, aid: str) -> bool:
        return aid in self.by_shard.get(shard, ())

    def count(self, shard: str) -> int:
        return len(self.by_shard.get(shard, ()))

    # -- writes -----------------------------------------------------------------------------
    def put(self, shard: str, aid: str, value: V) -> None:
        self.by_shard.setdefault(shard, {})[aid] = value
        self._write(shard, aid, value)

    def forget(self, shard: str, aid: str) -> None:
        """Drop the article's record, if there is one."""
        records = self.by_shard.get(shard)
        if records is not None and records.pop(aid, None) is not None:
            self._write(shard, aid, None)

    def listed(self, shard: str, aids: Iterable[str], now: float | None = None) -> int:
        """The feed lists ``aids`` now: refresh their records; returns how many were written."""
        records = self.by_shard.get(shard)
        if not records:
            return 0
        now = now if now is not None else time.time()
        written = 0
        for aid in aids:
            value = records.get(aid)
            if value is not None and self.listed_at(value) < now - self.refresh:
                records[aid] = self.relisted(value, float(int(now)))
                self._write(shard, aid, records[aid])
                written += 1
        return written

    def sweep(self, shard: str, now: float | None = None, *, force: bool = False) -> int:
        """Forget the shard's expired records, then the oldest beyond the cap; returns how many."""
        now = now if now is not None else time.time()
        if not force and now - self._swept.get(shard, 0.0) < SWEEP_EVERY:
            return 0
        self._swept[shard] = now
        records = self.by_shard.get(shard)
        if not records:
            return 0
        listed = {aid: self.listed_at(value) for aid, value in records.items()}
        gone = [aid for aid, when in listed.items() if when < now - self.ttl]
        if len(records) - len(gone) > self.cap:
            expired = set(gone)
            rest = sorted((when, aid) for aid, when in listed.items() if aid not in expired)
            gone.extend(aid for _, aid in rest[: len(rest) - self.cap])
        for aid in gone:
            del records[aid]
            self._write(shard, aid, None)
        return len(gone)

    def load(self, owns: Callable[[str], bool]) -> int:
        """Fill memory with the table's records of the shards ``owns`` accepts (no write); how many."""
        self.clear()
        loaded = 0
        for key, raw in list(self.table.items()) if self.table is not None else ():
            shard, aid = split_key(key)
            value = self.decode(raw) if raw is not None and owns(shard) else None
            if value is not None:
                self.by_shard.setdefault(shard, {})[aid] = value
                loaded += 1
        return loaded

    def clear(self) -> None:
        self.by_shard.clear()
        self._swept.clear()

    def _write(self, shard: str, aid: str, value: V | None) -> None:
        if self.table is None or not self.writable(shard):
            return
        key = table_key(shard, aid)
        try:
            if value is None:
                self.table.pop(key, None)
            else:
                self.table[key] = self.encode(value)
        except Exception:  # kept in memory; the next write of the id tries again
            log.exception(f"cannot save {self.kind}", extra={"key": key})


class SeenIds(SiteRecords[float]):
    """Article ids already produced, per shard: the record is when a feed of the site last
    listed the article (epoch seconds, whole)."""

    kind = "a seen article id"

    def listed_at(self, value: float) -> float:
        return value

    def relisted(self, value: float, when: float) -> float:
        return when

    def encode(self, value: float) -> Any:
        return int(value)

    def decode(self, raw: Any) -> float | None:
        try:
            return float(raw)
        except (TypeError, ValueError):
            return None

    def add(self, shard: str, aid: str, now: float | None = None) -> None:
        self.put(shard, aid, float(int(now if now is not None else time.time())))


@dataclass
class ArticleFailure:
    """Why an article a feed listed gave no article, and when to look at it again. Times are
    epoch seconds: the record outlives the process, and another instance may take it over."""

    attempts: int  # failed fetches in a row (robots.txt: 0, the page is not fetched)
    next_try: float  # not fetched again before this
    reason: str
    disallowed: bool = False  # robots.txt forbids the page: asked again at next_try, never given up
    listed: float = 0.0  # when a feed of the site last listed it (what expiry and the cap go by)

    @property
    def given_up(self) -> bool:
        return not self.disallowed and self.attempts >= ARTICLE_MAX_ATTEMPTS

    def due(self, now: float) -> bool:
        """Whether the article may be fetched again at ``now``."""
        return not self.given_up and self.next_try <= now

    def to_record(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "next_try_at": round(self.next_try, 3),
            "reason": self.reason,
            "disallowed": self.disallowed,
            "listed_at": int(self.listed),
        }

    @classmethod
    def from_record(cls, record: Any) -> ArticleFailure | None:
        """The failure saved by :meth:`to_record`; None when ``record`` is not one."""
        try:
            return cls(
                attempts=int(record["attempts"]),
                next_try=float(record["next_try_at"]),
                reason=str(record["reason"]),
                disallowed=bool(record.get("disallowed")),
                listed=float(record.get("listed_at") or 0.0),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


class FailedArticles(SiteRecords[ArticleFailure]):
    """Articles of each shard that gave no article (a fetch or extraction that failed, a page
    robots.txt disallows): retried with backoff, given up after ``ARTICLE_MAX_ATTEMPTS``,
    dead-lettered on the first failure and when giving up, across restarts and hand-overs. Kept
    and bounded as seen ids are (while listed, ``ttl`` after, ``cap`` per site, the cap kept at
    every write), so a site that lists broken links without end cannot grow the table without end."""

    kind = "a failed article"

    def listed_at(self, value: ArticleFailure) -> float:
        return value.listed

    def relisted(self, value: ArticleFailure, when: float) -> ArticleFailure:
        return replace(value, listed=when)

    def encode(self, value: ArticleFailure) -> Any:
        return value.to_record()

    def decode(self, raw: Any) -> ArticleFailure | None:
        return ArticleFailure.from_record(raw)

    def put(self, shard: str, aid: str, value: ArticleFailure) -> None:
        """Keep ``value``; past the cap, forget the site's failure unlisted for longest at once (a
        site listing new broken links without end must not outgrow it until the next sweep)."""
        super().put(shard, aid, value)
        records = self.by_shard[shard]
        while len(records) > self.cap:
            self.forget(shard, min((a for a in records if a != aid), key=lambda a: records[a].listed))

    def waiting(self, shard: str, aid: str, now: float | None = None) -> bool:
        """Whether the article is not to be fetched now: it failed and is not due, or was given up."""
        failure = self.get(shard, aid)
        return failure is not None and not failure.due(now if now is not None else time.time())


class FeedsOffsets(Protocol):
    """Where the fetcher's consumer group stands on the feeds topic."""

    async def ends(self, partitions: set[int]) -> dict[int, int]:
        """Each partition's end offset (that of the next record written)."""
        ...

    def committed(self, partition: int) -> int | None:
        """The group's committed offset of a partition, if known."""
        ...


class FeedsCatchUp:
    """Whether the ``feeds`` table holds what the feeds topic held when this instance's partitions
    were assigned: no feed is polled before.

    The table recovered at start holds what the feeds agent had read. A feed removed while no
    instance followed its partition (the fetcher stopped, then ``wirewatch feeds remove``) is
    still in it: its tombstone, published as the instance starts, reaches the agent only after the
    assignment, and polling at once would poll that feed one last time. So after each assignment
    polling waits until the agent has handled each partition up to its end as it was then, or the
    group's committed offset is there (nothing was left to read): at most ``CATCH_UP_MAX``
    seconds, then it polls anyway and says so."""

    def __init__(self, offsets: FeedsOffsets) -> None:
        self.offsets = offsets
        #: Partition -> the offset after the last record the feeds agent handled.
        self.handled: dict[int, int] = {}
        self.target: dict[int, int] | None = None  # the ends at the assignment; None: not asked yet
        self.done = False
        self.started: float | None = None

    def reset(self) -> None:
        """A new assignment, or a revocation: caught up again only once the ends are read again."""
        self.handled.clear()
        self.target = None
        self.done = False
        self.started = None

    def record(self, partition: int, offset: int) -> None:
        """The feeds agent handled the record at ``offset`` of ``partition``."""
        self.handled[partition] = max(self.handled.get(partition, 0), offset + 1)

    async def caught_up(self, partitions: set[int], published: bool = True) -> bool:
        """Whether ``partitions`` (this instance's) are read up to their ends at the assignment.
        ``published``: this instance's feeds file is on the topic (its tombstones among the
        records to read); the ends are asked only then."""
        if self.done:
            return True
        now = time.monotonic()
        if self.started is None:
            self.started = now
        if self.target is None and published:
            try:
                self.target = await self.offsets.ends(partitions)
            except Exception as exc:  # asked again at the next look
                log.warning("cannot read the feeds topic's end offsets", extra={"error": str(exc)})
        behind = None
        if self.target is not None:
            behind = {
                partition: end
                for partition, end in self.target.items()
                if max(self.handled.get(partition, 0), self.offsets.committed(partition) or 0) < end
            }
        if behind == {}:
            self.done = True
        elif now - self.started > CATCH_UP_MAX:
            self.done = True
            log.warning(
                "feeds topic not read to its end after the assignment: polling anyway",
                extra={"behind": behind, "handled": self.handled, "feeds_file_published": published},
            )
        return self.done


class FetcherState:
    """The fetcher's durable state: feeds with their state, seen ids, failed articles, and which
    shards are ours.

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
        failed: Table | None = None,
    ) -> None:
        self.settings = settings
        self.partitions = settings.topic_partitions
        self.feeds_table = feeds
        self.seen_table = seen
        self.failed_table = failed
        self.durable = feeds is not None
        #: Partitions of the feeds topic this instance works on; None: not known (yet).
        self.owned: set[int] | None = None if self.durable else set(range(self.partitions))
        #: Set while partitions are being handed over: no new work starts.
        self.paused = False
        self._parsed: dict[str, tuple[Any, Feed]] = {}  # key -> (feed record, parsed Feed)
        ttl, cap = settings.fetch_seen_ttl_days * 86400, settings.fetch_seen_max
        self.seen = SeenIds(ttl, cap, seen, writable=self.owns)
        self.failed = FailedArticles(ttl, cap, failed, writable=self.owns)

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
        """The partitions of this instance, once their tables are recovered: reload the seen ids
        and the failed articles."""
        self.owned = set(partitions)
        self.paused = False
        seen = self.seen.load(self.owns)
        failed = self.failed.load(self.owns)
        log.info(
            "fetcher partitions assigned",
            extra={
                "partitions": sorted(self.owned),
                "feeds": len(self.feed_keys()),
                "seen_ids": seen,
                "failed_articles": failed,
            },
        )

    def revoke(self) -> None:
        """The hand-over is done: nothing is ours until the next assignment."""
        if self.durable:
            self.owned = None
            self.seen.clear()
            self.failed.clear()
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
