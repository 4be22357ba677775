"""Backfill: pull a site's archive (a sitemap index, a sitemap or a feed) since a date, slowly.

``wirewatch backfill URL --since DATE`` puts a :class:`BackfillRequest` on the backfill topic,
in the partition of the URL's shard (its site), so the fetcher instance that polls the site's
feeds gets it: the site's politeness and its seen articles are in one place. That instance
records the request in its ``backfills`` table and works on it in a *low-priority lane*:

* one backfill at a time per instance, ``backfill_concurrency`` articles at once;
* an article is fetched only when live polling leaves room (fewer than ``fetch_concurrency``
  live article fetches in progress), and each of its requests takes a low-priority slot at the
  host's gate: one at a time per host, after every waiting live request, within the same
  per-host concurrency, spacing, ``Crawl-delay`` and ``Retry-After`` pauses as live fetching;
* a sitemap index's children are read newest ``lastmod`` first; a child whose ``lastmod`` is
  before ``since`` is skipped, and so is an entry dated before ``since`` or not dated at all;
* an article already seen (by the live feeds or an earlier backfill) is skipped; each article
  produced is marked seen like a live one (``feed_url`` is the backfilled URL).

Progress is saved in the table (after every child sitemap and every few articles) and logged;
``/backfills`` on the fetcher's web port serves it as JSON, and the
``wirewatch_backfill_articles_total`` metric counts articles by outcome. A backfill whose
partition moves to another instance (a rebalance, a crash) is resumed there: child sitemaps
already done are not read again, articles already produced are skipped as seen. A backfilled
URL that is an HTML page fails at once, with a reason naming ``wirewatch ingest`` (one article)
and ``wirewatch feeds discover`` (the site's feeds): it cannot tell an article page from a home
or section page, and a home page produced as an "article" would go on to the index, events and
claim matching for good.

**Ingest.** ``wirewatch ingest URL`` is the same mechanism for one article page: a request of
kind ``article`` on the same topic, in the partition of the page's site, recorded in the same
table and shown at ``/backfills``. It is not queued behind a backfill: the lane starts it at once
(at most ``fetch_concurrency`` at a time), and its page is fetched as a live article is (the
same SSRF guard, host gate, caps, extraction and :meth:`Fetcher.produce_article`), since someone
is waiting for it. An article already seen (polled from a feed, backfilled, ingested before) is
not fetched again: the request is done, ``already_seen``, with the article's id. Two requests for
one page never run at once, so the second finds it seen; one that fails records the reason and
one dead letter (stage ``fetcher.ingest``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from wirewatch.core.ids import InvalidURLError, article_id, canonical_url, feed_id, stable_id
from wirewatch.core.kafka import client_options, ensure_fetcher_topics
from wirewatch.core.logs import get_logger
from wirewatch.core.models import BackfillRequest, Feed
from wirewatch.core.settings import Settings
from wirewatch.fetcher.errors import ContentTypeError, FetchError
from wirewatch.fetcher.formats import FeedEntry, FeedFormatError, ParsedFeed, SitemapChild
from wirewatch.fetcher.http import ARTICLE_TYPES, content_type_allowed
from wirewatch.fetcher.state import Table, partition_of, shard_of, split_key, table_key

if TYPE_CHECKING:
    from wirewatch.fetcher.http import HttpFetcher
    from wirewatch.fetcher.service import Fetcher

log = get_logger(__name__)

BACKFILL_ARTICLES = Counter(
    "wirewatch_backfill_articles_total",
    "Articles listed by backfilled archives, by outcome (produced, failed, seen, too_old, undated)",
    ["outcome"],
)
BACKFILLS = Counter("wirewatch_backfills_total", "Backfills finished, by status (done, failed)", ["status"])

#: Child sitemaps a backfill reads at most (an archive split by day over 20 years: 7,300).
MAX_SITEMAPS = 10_000
#: Progress is saved to the table after this many articles (and after each child sitemap).
SAVE_EVERY = 10
#: Finished backfills stay listed at /backfills for this long (seconds).
KEEP_FINISHED = 7 * 86400.0

Status = Literal["queued", "running", "done", "failed"]
_OLDEST = datetime.min.replace(tzinfo=UTC)


def aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def new_request(url: str, since: datetime) -> BackfillRequest:
    """A request for ``url``'s archive since ``since`` (naive: UTC); raises ``InvalidURLError``."""
    canonical = canonical_url(url)
    since = aware(since)
    now = datetime.now(UTC)
    return BackfillRequest(
        id=stable_id("backfill", canonical, since.isoformat(), now.isoformat()),
        url=url,
        since=since,
        requested_at=now,
    )


def new_article_requests(urls: list[str]) -> list[BackfillRequest]:
    """Requests for the article pages at ``urls``, one per page (the same canonical URL twice is
    asked once); raises ``InvalidURLError``. Each request has an id of its own (the time is in
    it), so a page asked for again is looked at again: produced if it failed before, else found
    seen. The article's id is the page's, whichever request produced it."""
    now = datetime.now(UTC)
    requests: dict[str, BackfillRequest] = {}
    for url in urls:
        canonical = canonical_url(url)
        if canonical not in requests:
            requests[canonical] = BackfillRequest(
                id=stable_id("ingest", canonical, now.isoformat()), kind="article", url=url, requested_at=now
            )
    return list(requests.values())


async def send_requests(settings: Settings, requests: list[BackfillRequest]) -> None:
    """Put requests on the backfill topic, each in the partition of its URL's site (the fetcher
    instance that polls the site's feeds does it)."""
    await ensure_fetcher_topics(settings)
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        for request in requests:
            await producer.send_and_wait(
                settings.topic_backfill,
                key=request.id.encode(),
                value=request.to_bytes(),
                partition=partition_of(shard_of(request.url), settings.topic_partitions),
            )
    finally:
        await producer.stop()


async def request_backfill(settings: Settings, url: str, since: datetime) -> BackfillRequest:
    """Put a backfill request on the backfill topic, in the partition of the URL's site."""
    request = new_request(url, since)
    await send_requests(settings, [request])
    return request


def new_record(request: BackfillRequest) -> dict[str, Any]:
    common: dict[str, Any] = {
        "id": request.id,
        "kind": request.kind,
        "url": request.url,
        "since": aware(request.since).isoformat() if request.since is not None else None,
        "requested_at": aware(request.requested_at).isoformat(),
        "status": "queued",
        "started_at": None,
        "finished_at": None,
        "error": None,
    }
    if request.kind == "article":
        return {**common, "note": None, "article_id": None, "already_seen": 0, "produced": 0, "failed": 0}
    return {
        **common,
        "sitemaps_read": 0,
        "sitemaps_skipped": 0,
        "sitemaps_failed": 0,
        "listed": 0,
        "selected": 0,
        "too_old": 0,
        "undated": 0,
        "already_seen": 0,
        "fetched": 0,
        "produced": 0,
        "failed": 0,
        "done_sitemaps": [],
    }


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Backfills:
    """The backfill requests of this instance's shards and the low-priority lane working on them."""

    def __init__(self, fetcher: Fetcher, table: Table | None = None) -> None:
        self.fetcher = fetcher
        self.settings = fetcher.settings
        self.table: Table = table if table is not None else {}
        self.active: dict[str, dict[str, Any]] = {}  # key -> the record being worked on (newest)
        self.running: dict[str, asyncio.Task[None]] = {}  # key -> the task working on it
        self.ingesting: set[str] = set()  # article ids of the article requests in progress
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for pending backfills now (partitions assigned, a request recorded)."""
        self._wake.set()

    # -- requests -------------------------------------------------------------------------------
    def submit(self, request: BackfillRequest) -> bool:
        """Record a request (from the backfill topic); False when it is already known."""
        key = table_key(shard_of(request.url), request.id)
        if self.table.get(key) is not None:
            return False
        self.table[key] = new_record(request)
        self.wake()
        log.info(
            "backfill queued",
            extra={
                "backfill_id": request.id,
                "kind": request.kind,
                "url": request.url,
                "since": request.since,
            },
        )
        return True

    def records(self) -> list[dict[str, Any]]:
        """Every backfill of this instance's shards, newest request first (what /backfills serves)."""
        out = []
        for key in list(self.table.keys()):
            if not self.fetcher.store.owns_key(key):
                continue
            record = self.active.get(key) or self.table.get(key)
            if record:
                out.append({k: v for k, v in record.items() if k != "done_sitemaps"})
        return sorted(out, key=lambda r: str(r.get("requested_at")), reverse=True)

    def pending(self) -> list[tuple[str, dict[str, Any]]]:
        """Queued or interrupted backfills of this instance's shards, oldest request first."""
        found = []
        for key in list(self.table.keys()):
            record = self.table.get(key)
            if record and record.get("status") in ("queued", "running") and self.fetcher.store.owns_key(key):
                found.append((key, record))
        return sorted(found, key=lambda item: str(item[1].get("requested_at")))

    def forget_finished(self, now: float | None = None) -> None:
        now = now if now is not None else time.time()
        for key in list(self.table.keys()):
            record = self.table.get(key)
            if not record or record.get("status") not in ("done", "failed"):
                continue
            finished = record.get("finished_at")
            if finished and self.fetcher.store.owns_key(key):
                age = now - datetime.fromisoformat(str(finished)).timestamp()
                if age > KEEP_FINISHED:
                    self.table.pop(key, None)

    # -- the lane -------------------------------------------------------------------------------
    async def lane(self, http: HttpFetcher) -> None:
        """Work on pending requests whenever this instance's shards are known: archives one at a
        time, oldest first; article requests as they come, beside it (at most ``fetch_concurrency``
        at once, never two for the same article)."""
        archive: asyncio.Task[None] | None = None
        while True:
            self._wake.clear()
            if self.fetcher.store.ready:
                self.forget_finished()
                for key, record in self.pending():
                    if key in self.running:
                        continue
                    if record.get("kind") == "article":
                        aid = _article_of(str(record["url"]))
                        if len(self.ingesting) >= self.settings.fetch_concurrency or aid in self.ingesting:
                            continue  # a task that ends wakes the lane
                        if aid is not None:
                            self.ingesting.add(aid)  # now: the same page asked twice is in this scan
                        self._start(key, self.run_article(http, key, record))
                    elif archive is None or archive.done():
                        archive = self._start(key, self.run(http, key, record))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    def _start(self, key: str, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self.running[key] = task
        self.fetcher.track(f"backfill {key}", task)  # a hand-over waits for it

        def done(_: asyncio.Task[None]) -> None:
            self.running.pop(key, None)
            self.wake()

        task.add_done_callback(done)
        return task

    async def run(self, http: HttpFetcher, key: str, stored: dict[str, Any]) -> None:
        """One backfill, until it is done, fails, or its shard is handed over (then it is resumed)."""
        record = {**stored, "done_sitemaps": list(stored.get("done_sitemaps") or [])}
        record["status"] = "running"
        record["started_at"] = record.get("started_at") or _now_iso()
        self.active[key] = record
        self._save(key)
        shard = split_key(key)[0]
        url = str(record["url"])
        job = _Job(self, http, key, record, shard, datetime.fromisoformat(str(record["since"])))
        log.info("backfill started", extra={"backfill_id": record["id"], "url": url})
        try:
            try:
                _, parsed = await self.fetcher.read_feed(http, url, None, low_priority=True)
            except ContentTypeError as exc:
                if exc.media_type not in ARTICLE_TYPES:
                    raise
                raise FeedFormatError(not_a_feed(url)) from exc
            assert parsed is not None  # no validators: never a 304
            record["sitemaps_read"] += 1
            if parsed.children:
                await job.children(parsed.children, 1)
            else:
                await job.entries(parsed)
            if self.fetcher.store.paused:
                log.info("backfill paused (partitions handed over)", extra=self._progress(record))
                return
            record["status"] = "done"
        except FetchError as exc:
            record["status"] = "failed"
            record["error"] = str(exc)
            await self.fetcher.service.dead_letter("fetcher.backfill", str(exc), url=url)
        except Exception as exc:
            record["status"] = "failed"
            record["error"] = f"{type(exc).__name__}: {exc}"
            log.exception("backfill failed", extra={"backfill_id": record["id"], "url": url})
        finally:
            self._finish(key, record)

    async def run_article(self, http: HttpFetcher, key: str, stored: dict[str, Any]) -> None:
        """One ``wirewatch ingest`` request: the page produced as a polled article is, unless an
        article of that id was already seen (then done, ``already_seen``); failed with the reason
        (and a dead letter) when the page gives no article. The lane put its article id in
        ``ingesting``; it is taken out here when done."""
        from wirewatch.fetcher.service import ArticleError

        record = {**stored, "status": "running", "started_at": stored.get("started_at") or _now_iso()}
        self.active[key] = record
        self._save(key)
        shard = split_key(key)[0]
        url = str(record["url"])
        aid: str | None = None
        try:
            aid = article_id(url)  # a URL without one fails the request, saying why
            record["article_id"] = aid
            if self.fetcher.store.seen.has(shard, aid) or aid in self.fetcher.recent:
                record["already_seen"] = 1
                record["note"] = (
                    "already fetched (from a feed, a backfill or an earlier ingest): not fetched again"
                )
                record["status"] = "done"
                BACKFILL_ARTICLES.labels(outcome="seen").inc()
                return
            if self.fetcher.store.paused:
                return  # handed over: the next owner does it
            with self.fetcher.live_fetch():
                article = await self.fetcher.produce_article(http, None, FeedEntry(link=url), aid, None, None)
            record["produced"] = 1
            record["article_id"] = article.id
            record["note"] = f"produced as article {article.id}"
            record["status"] = "done"
            BACKFILL_ARTICLES.labels(outcome="produced").inc()
        except (ArticleError, InvalidURLError) as exc:
            reason = ingest_failure(exc)
            record["failed"] = 1
            record["status"] = "failed"
            record["error"] = reason
            BACKFILL_ARTICLES.labels(outcome="failed").inc()
            await self.fetcher.service.dead_letter("fetcher.ingest", reason, url=url, key=aid)
        except Exception as exc:
            record["status"] = "failed"
            record["error"] = f"{type(exc).__name__}: {exc}"
            log.exception("ingest failed", extra={"backfill_id": record["id"], "url": url})
        finally:
            if aid is not None:
                self.ingesting.discard(aid)
            self._finish(key, record)

    def _finish(self, key: str, record: dict[str, Any]) -> None:
        """Save the record; a finished one is counted and logged."""
        if record["status"] in ("done", "failed"):
            record["finished_at"] = _now_iso()
            BACKFILLS.labels(status=record["status"]).inc()
            log.info(f"backfill {record['status']}", extra=self._progress(record))
        self._save(key)
        self.active.pop(key, None)

    def _save(self, key: str) -> None:
        record = self.active.get(key)
        if record is not None and self.fetcher.store.owns_key(key):
            self.table[key] = dict(record)

    @staticmethod
    def _progress(record: dict[str, Any]) -> dict[str, Any]:
        names = ("kind", "status", "sitemaps_read", "selected", "already_seen", "produced", "failed", "error")
        return {
            "backfill_id": record["id"],
            "url": record["url"],
            **{name: record[name] for name in names if record.get(name) is not None},
        }


def _article_of(url: str) -> str | None:
    """The article id of a page's URL; None when it has none (its request fails, saying why)."""
    try:
        return article_id(url)
    except InvalidURLError:
        return None


def not_a_feed(url: str) -> str:
    """Why a backfill of an HTML page fails: the commands that do what was probably meant."""
    return (
        f"{url} is an HTML page, not a feed or sitemap: to ingest it as one article, "
        f"`wirewatch ingest {url}`; to find the site's feeds and sitemaps, `wirewatch feeds discover {url}`"
    )


def ingest_failure(exc: Exception) -> str:
    """Why an ingested page gave no article; a feed or sitemap given as a page names ``backfill``."""
    reason = str(exc)
    cause = exc.__cause__
    if isinstance(cause, ContentTypeError) and content_type_allowed("feed", cause.media_type):
        reason += "; a feed or a sitemap is read by `wirewatch backfill URL --since DATE`"
    return reason


class _Job:
    """The work of one backfill run (state in ``record``, saved by ``owner``)."""

    def __init__(
        self,
        owner: Backfills,
        http: HttpFetcher,
        key: str,
        record: dict[str, Any],
        shard: str,
        since: datetime,
    ) -> None:
        self.owner = owner
        self.fetcher = owner.fetcher
        self.http = http
        self.key = key
        self.record = record
        self.shard = shard
        self.since = aware(since)
        url = str(record["url"])
        self.feed = Feed(id=feed_id(url), url=url)
        self.done = set(record["done_sitemaps"])
        self.sitemaps = 0
        self._since_save = 0

    @property
    def stopped(self) -> bool:
        return self.fetcher.store.paused

    async def children(self, children: list[SitemapChild], depth: int) -> None:
        if depth > self.owner.settings.sitemap_max_depth:
            return
        record = self.record
        for child in sorted(children, key=lambda c: c.lastmod or _OLDEST, reverse=True):
            if self.stopped or self.sitemaps >= MAX_SITEMAPS:
                return
            if child.url in self.done:
                continue
            if child.lastmod is not None and aware(child.lastmod) < self.since:
                record["sitemaps_skipped"] += 1
                continue
            self.sitemaps += 1
            try:
                _, parsed = await self.fetcher.read_feed(self.http, child.url, None, low_priority=True)
            except FetchError as exc:
                record["sitemaps_failed"] += 1
                log.warning(
                    "backfill: child sitemap unreadable", extra={"url": child.url, "reason": str(exc)}
                )
                continue
            assert parsed is not None
            record["sitemaps_read"] += 1
            if parsed.children:
                await self.children(parsed.children, depth + 1)
            else:
                await self.entries(parsed)
            if self.stopped:
                return
            self.done.add(child.url)
            record["done_sitemaps"].append(child.url)
            self.owner._save(self.key)
            log.info("backfill progress", extra={**self.owner._progress(record), "sitemap": child.url})

    async def entries(self, parsed: ParsedFeed) -> None:
        """Fetch the entries of one list dated ``since`` or later and not seen yet."""
        from wirewatch.fetcher.service import newest_first

        record = self.record
        chosen: dict[str, FeedEntry] = {}
        seen = self.fetcher.store.seen
        for entry in newest_first(parsed.entries):
            record["listed"] += 1
            if entry.published is None:
                record["undated"] += 1
                BACKFILL_ARTICLES.labels(outcome="undated").inc()
                continue
            if aware(entry.published) < self.since:
                record["too_old"] += 1
                BACKFILL_ARTICLES.labels(outcome="too_old").inc()
                continue
            try:
                aid = article_id(entry.link)
            except InvalidURLError:
                record["failed"] += 1
                continue
            if aid in chosen:
                continue
            record["selected"] += 1
            if seen.has(self.shard, aid) or aid in self.fetcher.recent:
                record["already_seen"] += 1
                BACKFILL_ARTICLES.labels(outcome="seen").inc()
                continue
            chosen[aid] = entry
        language = parsed.language
        jobs: list[Callable[[], Awaitable[int]]] = [
            self._article_job(aid, entry, parsed.title, entry.language or language)
            for aid, entry in chosen.items()
        ]
        await self.fetcher._run_bounded(jobs, self.owner.settings.backfill_concurrency)

    def _article_job(
        self, aid: str, entry: FeedEntry, title: str | None, language: str | None
    ) -> Callable[[], Awaitable[int]]:
        async def job() -> int:
            await self.fetcher.spare_capacity()
            if self.stopped:
                return 0
            if self.fetcher.store.seen.has(self.shard, aid):
                self.record["already_seen"] += 1
                return 0
            self.record["fetched"] += 1
            produced = await self.fetcher._article(
                self.http, self.feed, entry, aid, title, language, low_priority=True
            )
            outcome = "produced" if produced else "failed"
            self.record[outcome] += 1
            BACKFILL_ARTICLES.labels(outcome=outcome).inc()
            self._since_save += 1
            if self._since_save >= SAVE_EVERY:
                self._since_save = 0
                self.owner._save(self.key)
            return produced

        return job
