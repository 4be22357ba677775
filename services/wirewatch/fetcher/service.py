"""The fetcher service: poll feeds, fetch new articles, extract them, produce raw articles.

One path for data: feeds file -> due feeds -> HTTP GET (conditional) -> :func:`parse_feed`
(RSS/Atom via feedparser, JSON Feed, sitemaps; a sitemap index's children followed, bounded)
-> new entry links, newest first, at most ``feed_max_new_per_poll`` -> HTTP GET -> trafilatura
(process pool) -> ``RawArticle`` keyed by article id -> raw-articles topic. Every failure (broken
feed, unreachable or empty article) is logged and recorded on the dead-letter topic; the other
feeds keep flowing.

Every request, feed or article, goes through :class:`~wirewatch.fetcher.http.HttpFetcher`:
SSRF guard on each redirect hop, robots.txt, per-host concurrency and spacing, retries with
backoff, ``Retry-After``, and deadline, size and content-type caps. An article that robots.txt
disallows is skipped (logged, one dead letter) and looked at again after ``fetch_robots_ttl``.
Each feed's interval adapts to what it publishes (:mod:`wirewatch.fetcher.schedule`); its
health record is served as JSON at ``/feeds`` on the service's web port. While the feeds file is
refused (the last good feeds polled meanwhile), ``/readyz`` names the reason under ``warnings``
and ``/feeds`` in its ``Wirewatch-Feeds-File-Error`` header; the instance stays ready.

State and scale-out (:mod:`wirewatch.fetcher.state`): the fetcher publishes the feeds file to the
compacted ``feeds`` topic (:mod:`wirewatch.fetcher.feedsync`); an agent consumes that topic into
the ``feeds`` table, and the poll loop polls only the feeds of the partitions Kafka assigned to
this instance (a feed's partition is its site's). Each feed's validators, schedule and health,
the articles already produced and those that failed, are saved in changelog-backed tables as
they change, so a restarted instance, or the one that takes over a dead instance's partitions,
carries on where it stopped: nothing seen is fetched again, a failing article keeps its backoff,
and no feed is polled before it is due (nor before the feeds topic is read to where it was). On a
revocation the instance starts nothing new, lets what is in flight finish (briefly), then
hands over. Backfills (:mod:`wirewatch.fetcher.backfill`) run in a low-priority lane; article
pages asked for by URL (``wirewatch ingest``) come the same way and take the same article path
(:meth:`Fetcher.produce_article`) at ordinary priority.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import faust
from faust.types import TP, EventT, StreamT
from faust.web import Request, Response, View
from prometheus_client import Gauge

from wirewatch.core import metrics
from wirewatch.core.app import ServiceApp, describe_exception
from wirewatch.core.feeds import FeedsFileError, load_feeds
from wirewatch.core.ids import InvalidURLError, article_id, canonical_url, source_domain
from wirewatch.core.kafka import ensure_fetcher_topics
from wirewatch.core.logs import get_logger
from wirewatch.core.models import MAX_MESSAGE_BYTES, BackfillRequest, Feed, RawArticle
from wirewatch.core.recent import RecentKeys, RecentResults
from wirewatch.core.settings import Settings
from wirewatch.fetcher.backfill import Backfills
from wirewatch.fetcher.errors import FetchError, RobotsDisallowedError
from wirewatch.fetcher.extract import Extracted, ExtractionError, decode_html_bytes, extract_article
from wirewatch.fetcher.feedsync import FeedsPublisher, feeds_file_state
from wirewatch.fetcher.formats import FeedEntry, ItemEntries, ParsedFeed, SitemapChild, parse_feed
from wirewatch.fetcher.http import HttpFetcher, Page, kept_headers
from wirewatch.fetcher.schedule import FeedState, failure_interval, next_interval, poll_floor
from wirewatch.fetcher.state import (
    ARTICLE_MAX_ATTEMPTS,
    SWEEP_EVERY,
    ArticleFailure,
    FeedsCatchUp,
    FetcherState,
    ShardedTable,
    partition_of,
    shard_of,
)

__all__ = ["ArticleError", "FeedState", "FetchError", "Fetcher", "HttpFetcher", "Page", "build", "create"]

log = get_logger(__name__)

FEEDS_POLLED = Gauge("wirewatch_fetcher_feeds", "Feeds this fetcher instance polls (its partitions' feeds)")

#: Article ids this process produced or found, remembered in memory (any site).
RECENT_IDS = 200_000
#: Feeds whose items of the last poll are remembered, so that the next poll reads only the new ones
#: (``parse_feed``'s ``previous``): the most recently polled. An instance that polls more feeds
#: reads the others whole, as it would without. ~100 MB for 2,000 feeds of 50 items (~1 KB each
#: with a summary).
FEEDS_REMEMBERED = 2_000
_OLDEST = datetime.min.replace(tzinfo=UTC)
#: ``/feeds``'s header naming why the feeds file is refused, while it is (absent otherwise): a JSON
#: string, so one ASCII line whatever the reason says. The body stays the list of health records.
FEEDS_FILE_ERROR_HEADER = "Wirewatch-Feeds-File-Error"
WARM_UP_PAGE = "<html><head><title>Warm-up</title></head><body><p>Nothing to read here.</p></body></html>"
#: How often an extraction process checks that the fetcher that started it is still there.
PARENT_CHECK_SECONDS = 1.0


def extraction_pool(workers: int) -> ProcessPoolExecutor:
    """Processes for ``extract_article`` that end when the fetcher does, however it ends.

    A fetcher killed outright (SIGKILL, the OOM killer) cannot stop its pool; its processes would
    live on as orphans, and ``wirewatch up`` restarting the fetcher would add a pool each time."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=exit_with_parent, initargs=(os.getpid(),)
    )


def exit_with_parent(parent: int) -> None:
    """In a pool process: end this process once ``parent`` is no longer its parent."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class ArticleError(Exception):
    """Why an article page gave no article: ``reason`` is the one line for the log and the dead
    letter; ``disallowed`` when robots.txt forbids the page (skipped until robots.txt is asked
    again, not retried with backoff). The fetch or extraction error, if any, is its ``__cause__``."""

    def __init__(self, reason: str, *, disallowed: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.disallowed = disallowed


def same_site(a: str, b: str) -> bool:
    """Same host, ``www.`` aside."""
    return source_domain(a) == source_domain(b)


def amp_alias(page_url: str, amp_url: str | None) -> str | None:
    """The article id of a page's ``<link rel="amphtml">`` when it is on the same site, else None."""
    if not amp_url:
        return None
    try:
        resolved = urljoin(page_url, amp_url)
        return article_id(resolved) if same_site(canonical_url(resolved), page_url) else None
    except (InvalidURLError, ValueError):
        return None


def newest_first(entries: list[FeedEntry]) -> list[FeedEntry]:
    """Dated entries newest first, then undated ones in feed order."""
    return sorted(entries, key=lambda e: e.published or _OLDEST, reverse=True)


class Fetcher:
    """The poll loop, the article pipeline, and (with ``store`` durable) the shared state.

    Built without a durable ``store`` it polls every feed of the feeds file and keeps its state
    in memory (unit tests, tools); :func:`build` gives it the Kafka-backed tables."""

    def __init__(self, service: ServiceApp, store: FetcherState | None = None) -> None:
        self.service = service
        self.settings: Settings = service.settings
        self.raw_topic = service.topic(self.settings.topic_raw)
        self.store = store or FetcherState(self.settings)
        self.state: dict[str, FeedState] = {}  # the working copy; saved to the store after changes
        self.recent: RecentKeys[str] = RecentKeys(RECENT_IDS)  # produced by this process, any site
        self.known: RecentKeys[str] = RecentKeys(RECENT_IDS)  # found in some feed (for the feeds' items_seen)
        self.feed_items: RecentResults[str, ItemEntries] = RecentResults("feed-items", FEEDS_REMEMBERED)
        self.in_flight: set[str] = set()
        self.publisher: FeedsPublisher | None = None
        #: With Kafka: no feed is polled after an assignment before the feeds table caught up.
        self.feeds_catch_up: FeedsCatchUp | None = None
        self.backfills = Backfills(self)
        self.tasks: dict[str, asyncio.Task[None]] = {}  # poll and backfill tasks in progress
        self.live_articles = 0  # live (not backfill) article fetches in progress
        self._live_room = asyncio.Event()
        self._live_room.set()
        self._feeds: list[Feed] = []
        self._feeds_problem: str | None = None  # why the feeds file is refused, while it is
        self._saved: dict[str, dict[str, Any] | None] = {}  # feed id -> its state as saved
        self._swept = 0.0
        self._pool: ProcessPoolExecutor | None = None
        self.pool_workers = max(1, multiprocessing.cpu_count())

    # -- the loop ----------------------------------------------------------------------------
    def new_pool(self) -> ProcessPoolExecutor:
        """The extraction processes, started now (imports, models), not at the first article."""
        pool = extraction_pool(self.pool_workers)
        for _ in range(self.pool_workers):
            pool.submit(extract_article, WARM_UP_PAGE, "https://warm-up.invalid/")
        return pool

    async def run(self) -> None:
        self._pool = self.new_pool()
        self.service.ready = True
        lane: asyncio.Task[None] | None = None
        try:
            async with HttpFetcher(self.settings) as http:
                lane = asyncio.create_task(self.backfills.lane(http))
                while True:
                    if self.publisher is not None:
                        await self.publisher.sync()
                    now = time.monotonic()
                    if now - self._swept > SWEEP_EVERY and self.store.ready:
                        self._swept = now  # sites without a feed polled lately expire their ids too
                        for records in (self.store.seen, self.store.failed):
                            for shard in list(records.by_shard):
                                records.sweep(shard)
                    for feed in self._load() if await self.feeds_current() else []:
                        state = self.state_of(feed)
                        if state.next_poll <= now and feed.id not in self.in_flight and self.store.ready:
                            self.in_flight.add(feed.id)
                            self.track(feed.id, asyncio.create_task(self._poll(http, feed, state)))
                    await asyncio.sleep(0.5)
        finally:
            if lane is not None:
                lane.cancel()
            for task in list(self.tasks.values()):
                task.cancel()
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def feeds_current(self) -> bool:
        """Whether the feeds may be polled: this instance's partitions are known, and their feeds
        table holds what the feeds topic held at the assignment, the feeds file published (a
        feed removed while the fetcher was stopped is not polled once more: :class:`FeedsCatchUp`)."""
        if not self.store.ready:
            return False
        catch_up, owned = self.feeds_catch_up, self.store.owned
        if catch_up is None or owned is None:
            return True
        return await catch_up.caught_up(owned, self.publisher is None or self.publisher.synced)

    def track(self, name: str, task: asyncio.Task[None]) -> None:
        """Keep ``task`` (a poll or a backfill) until it ends: a hand-over waits for it."""
        self.tasks[name] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self.tasks.get(name) is done:
                del self.tasks[name]

        task.add_done_callback(forget)

    def _load(self) -> list[Feed]:
        """The feeds to poll: this instance's (durable store), else every feed of the feeds file."""
        if self.store.durable:
            if not self.store.ready:
                return []
            owned = list(self.store.owned_feeds())
            self._feeds = [feed for feed, _ in owned]
            self._saved = {feed.id: saved for feed, saved in owned}
            FEEDS_POLLED.set(len(self._feeds))
            return self._feeds
        path = self.settings.feeds_file
        try:
            self._feeds = load_feeds(path)
        except FeedsFileError as exc:  # the previous list stays
            self._feeds_problem = feeds_file_state(path, str(exc), self._feeds_problem)
        else:
            self._feeds_problem = feeds_file_state(path, None, self._feeds_problem)
        return self._feeds

    def state_of(self, feed: Feed) -> FeedState:
        """The feed's working state: in memory, else as saved (by this or another instance)."""
        state = self.state.get(feed.id)
        if state is None:
            record = self._saved.get(feed.id)
            state = FeedState.from_record(record) if record else FeedState()
            self.state[feed.id] = state
        return state

    def feeds_file_problem(self) -> str | None:
        """Why the feeds file is refused, while it is (its last good feeds stay), else None."""
        return self.publisher.problem if self.publisher is not None else self._feeds_problem

    def health(self) -> list[dict[str, Any]]:
        """Every polled feed's health record (what ``/feeds`` serves)."""
        return [self.state.get(f.id, FeedState()).health(f.url, f.name) for f in self._feeds]

    # -- hand-over -----------------------------------------------------------------------------
    async def on_revoked(self, drain_seconds: float) -> None:
        """Partitions are being taken away: start nothing, let what is in flight finish for up to
        ``drain_seconds`` (its results are saved), cancel the rest, forget the working state."""
        if not self.store.durable:
            return
        self.store.paused = True
        running = [task for task in self.tasks.values() if not task.done()]
        if running:
            _, late = await asyncio.wait(running, timeout=drain_seconds)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=5.0)
                log.info("hand-over: work in flight cancelled", extra={"tasks": len(late)})
        self.store.revoke()
        if self.feeds_catch_up is not None:
            self.feeds_catch_up.reset()
        self.state.clear()
        self.in_flight.clear()
        self._feeds = []
        self._saved = {}

    def on_assigned(self, partitions: set[int]) -> None:
        """This instance's partitions, their tables recovered: work on their feeds (once the
        feeds agent has read what was left on their partitions)."""
        self.state.clear()
        if self.feeds_catch_up is not None:
            self.feeds_catch_up.reset()
        self.store.assign(partitions)
        self.backfills.wake()

    def _bounds(self, feed: Feed) -> tuple[float, float]:
        """(shortest, longest) interval for ``feed``: fixed when the feeds file sets its interval."""
        if feed.interval:
            return feed.interval, feed.interval
        lower, upper = self.settings.poll_interval_min, self.settings.poll_interval_max
        return min(lower, upper), upper

    async def _poll(self, http: HttpFetcher, feed: Feed, state: FeedState) -> None:
        lower, upper = self._bounds(feed)
        current = state.interval or min(max(feed.interval or self.settings.poll_interval, lower), upper)
        state.polls += 1
        # Saved before polling: whoever has the feed next (after a crash or a hand-over) waits
        # until then, whether or not this poll gets to save its outcome.
        state.next_poll = time.monotonic() + current
        self.store.save_state(feed, state)
        try:
            await self.poll_feed(http, feed, state)
        except Exception as exc:
            state.failures += 1
            state.interval = current
            state.last_error_at = datetime.now(UTC)
            # Back off on a failing feed: interval * 2^failures, capped at 8 intervals.
            state.next_poll = time.monotonic() + failure_interval(current, state.failures)
            reason = str(exc) if isinstance(exc, FetchError) else describe_exception(exc)
            await self.feed_problem(feed, state, reason)
        else:
            state.failures = 0
            state.last_success = datetime.now(UTC)
            asked = None if feed.interval else state.asked_interval  # set by this poll
            state.interval = next_interval(current, state.last_new, lower=lower, upper=upper, asked=asked)
            # New articles left over: come back as soon as the feed allows, not a whole interval later.
            wait = poll_floor(lower, upper, asked) if state.backlog else state.interval
            state.next_poll = time.monotonic() + wait
        finally:
            self.in_flight.discard(feed.id)
        self.store.save_state(feed, state)  # not when cancelled: the saved state stays the older one

    async def feed_problem(self, feed: Feed, state: FeedState, reason: str) -> None:
        """Log every time; record a dead letter when the feed's problem is new or changed."""
        if reason == state.last_error:
            log.warning(
                "feed still failing",
                extra={"feed_url": feed.url, "reason": reason, "failures": state.failures},
            )
            return
        state.last_error = reason
        state.last_error_at = datetime.now(UTC)
        await self.service.dead_letter("fetcher.feed", reason, feed_url=feed.url)

    async def read_feed(
        self,
        http: HttpFetcher,
        url: str,
        validators: tuple[str | None, str | None] | None,
        *,
        low_priority: bool = False,
    ) -> tuple[Page, ParsedFeed | None]:
        """GET a feed (conditionally when ``validators`` = (etag, last-modified)); None on a 304.

        Its relative links are resolved against the URL it was read from after any redirects
        (``page.url``), as a browser would; ``url``, the one asked for, keys what is remembered."""
        headers = {}
        etag, last_modified = validators or (None, None)
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        page = await http.get(url, "feed", headers, low_priority=low_priority)
        metrics.FETCHES.labels(kind="feed", status=str(page.status)).inc()
        if page.status == 304:
            return page, None
        parsed = await asyncio.to_thread(
            parse_feed,
            page.body,
            page.content_type,
            max_bytes=self.settings.fetch_max_bytes,
            url=page.url,
            previous=self.feed_items.get(url),
        )
        if parsed.item_entries:
            self.feed_items.put(url, parsed.item_entries)
        return page, parsed

    async def poll_feed(self, http: HttpFetcher, feed: Feed, state: FeedState) -> int:
        """Poll one feed; returns how many articles were produced. Sets ``state.last_new``."""
        state.last_new = 0
        conditional = state.backlog == 0  # a backlog is read again from the full feed
        page, parsed = await self.read_feed(
            http, feed.url, (state.etag, state.last_modified) if conditional else None
        )
        if parsed is None:
            if state.failures:  # unchanged since it last worked: whatever failed since is over
                state.last_error = None
            return 0
        state.etag = page.headers.get("etag")
        state.last_modified = page.headers.get("last-modified")
        state.format = f"{parsed.format} {parsed.version}"
        state.asked_interval = parsed.min_interval
        problems = [parsed.problem] if parsed.problem is not None else []
        entries = parsed.entries
        if parsed.children:
            budget = [self.settings.sitemap_max_children]
            entries = entries + await self._sitemap_children(
                http, state, parsed.children, 1, budget, conditional, problems
            )
        if problems:  # usable, but not all of it: one dead letter while the problem stays the same
            await self.feed_problem(feed, state, "; ".join(problems))
        elif state.last_error is not None:
            log.info("feed recovered", extra={"feed_url": feed.url})
            state.last_error = None
        state.entries = len(entries)
        return await self._new_articles(http, feed, state, entries, parsed)

    async def _sitemap_children(
        self,
        http: HttpFetcher,
        state: FeedState,
        children: list[SitemapChild],
        depth: int,
        budget: list[int],
        conditional: bool,
        problems: list[str],
    ) -> list[FeedEntry]:
        """Entries of a sitemap index's children: newest ``lastmod`` first, bounded in depth and count.

        A child that cannot be read is noted in ``problems``; the others are still read."""
        if depth > self.settings.sitemap_max_depth:
            return []
        entries: list[FeedEntry] = []
        ordered = sorted(children, key=lambda c: c.lastmod or _OLDEST, reverse=True)
        for child in ordered:
            if budget[0] <= 0:
                break
            budget[0] -= 1
            validators = state.child_validators.get(child.url) if conditional else None
            try:
                page, parsed = await self.read_feed(http, child.url, validators)
            except FetchError as exc:
                problems.append(f"child sitemap {child.url}: {exc}")
                continue
            if parsed is None:
                continue
            state.child_validators[child.url] = (page.headers.get("etag"), page.headers.get("last-modified"))
            entries.extend(parsed.entries)
            if parsed.children:
                entries.extend(
                    await self._sitemap_children(
                        http, state, parsed.children, depth + 1, budget, conditional, problems
                    )
                )
        listed = {c.url for c in children}
        if depth == 1:  # forget the validators of children no longer listed
            for url in [u for u in state.child_validators if u not in listed]:
                del state.child_validators[url]
        return entries

    async def _new_articles(
        self, http: HttpFetcher, feed: Feed, state: FeedState, entries: list[FeedEntry], parsed: ParsedFeed
    ) -> int:
        now = time.time()
        shard = shard_of(feed.url)
        seen, failed = self.store.seen, self.store.failed
        fresh: dict[str, FeedEntry] = {}
        listed: list[str] = []
        for entry in newest_first(entries):
            try:
                aid = article_id(entry.link)
            except InvalidURLError as exc:
                await self.service.dead_letter(
                    "fetcher.entry", str(exc), feed_url=feed.url, url=entry.link[:2000]
                )
                continue
            listed.append(aid)
            if aid in fresh or seen.has(shard, aid) or aid in self.recent:
                continue
            if failed.waiting(shard, aid, now):  # failed or disallowed: not due yet, or given up
                continue
            fresh[aid] = entry
        for records in (seen, failed):
            records.listed(shard, listed, now)  # still listed: remembered for longer
            records.sweep(shard, now)
        found = [aid for aid in fresh if aid not in self.known]
        self.known.update(found)
        state.items_seen += len(found)
        state.last_new = len(found)
        cap = self.settings.feed_max_new_per_poll
        state.backlog = max(len(fresh) - cap, 0)
        skipped = 0

        async def job(aid: str, entry: FeedEntry) -> int:
            nonlocal skipped
            if self.store.paused:  # being handed over: the next owner takes it (a full read)
                skipped += 1
                return 0
            # the language: the feeds file's, the item's, the feed's
            language = feed.language or entry.language or parsed.language
            return await self._article(http, feed, entry, aid, parsed.title, language)

        jobs = [functools.partial(job, aid, entry) for aid, entry in list(fresh.items())[:cap]]
        produced = await self._run_bounded(jobs, self.settings.fetch_concurrency)
        state.backlog += skipped
        return produced

    async def spare_capacity(self) -> None:
        """Return once live article fetches leave room (what backfills wait for)."""
        while self.live_articles >= self.settings.fetch_concurrency:
            self._live_room.clear()
            await self._live_room.wait()

    @staticmethod
    async def _run_bounded(jobs: Sequence[Callable[[], Awaitable[int]]], workers: int) -> int:
        """Run ``jobs`` with at most ``workers`` in progress (a coroutine exists only while it runs)."""
        pending = iter(jobs)
        total = 0

        async def worker() -> None:
            nonlocal total
            for job in pending:
                produced = await job()  # not ``total += await …``: that reads ``total`` before awaiting
                total += produced

        await asyncio.gather(*(worker() for _ in range(min(workers, len(jobs)))))
        return total

    async def _article(
        self,
        http: HttpFetcher,
        feed: Feed,
        entry: FeedEntry,
        aid: str,
        feed_title: str | None,
        feed_language: str | None,
        *,
        low_priority: bool = False,
    ) -> int:
        if low_priority:
            return await self._fetch_article(http, feed, entry, aid, feed_title, feed_language, True)
        with self.live_fetch():
            return await self._fetch_article(http, feed, entry, aid, feed_title, feed_language, False)

    @contextmanager
    def live_fetch(self) -> Iterator[None]:
        """A live article fetch in progress (a polled or ingested article): backfills wait for room."""
        self.live_articles += 1
        try:
            yield
        finally:
            self.live_articles -= 1
            if self.live_articles < self.settings.fetch_concurrency:
                self._live_room.set()

    async def _fetch_article(
        self,
        http: HttpFetcher,
        feed: Feed,
        entry: FeedEntry,
        aid: str,
        feed_title: str | None,
        feed_language: str | None,
        low_priority: bool,
    ) -> int:
        """One article of ``feed``: produced (1), or not (0): failed (retried later with backoff)
        or disallowed by robots.txt (asked again after its TTL)."""
        try:
            await self.produce_article(
                http, feed, entry, aid, feed_title, feed_language, low_priority=low_priority
            )
        except ArticleError as exc:
            if exc.disallowed:
                await self.article_disallowed(feed, entry.link, aid, exc.reason)
            else:
                await self.article_failed(feed, entry.link, aid, exc.reason)
            return 0
        return 1

    async def produce_article(
        self,
        http: HttpFetcher,
        feed: Feed | None,
        entry: FeedEntry,
        aid: str,
        feed_title: str | None,
        feed_language: str | None,
        *,
        low_priority: bool = False,
    ) -> RawArticle:
        """Fetch ``entry.link``, extract it and produce it to the raw topic, marked seen once the
        broker has it: the one path of every article, polled, backfilled or ingested (``feed``
        None: an article asked for by URL, ``wirewatch ingest``). Raises :class:`ArticleError`
        saying why a page gave no article; a producer error goes up as it is."""
        link = entry.link
        try:
            page = await http.get(link, "article", low_priority=low_priority)
            metrics.FETCHES.labels(kind="article", status=str(page.status)).inc()
            html = decode_html_bytes(page.body, page.content_type)
            started = time.perf_counter()
            loop = asyncio.get_running_loop()
            pool = self._pool
            try:
                extracted: Extracted = await loop.run_in_executor(pool, extract_article, html, page.url)
            except BrokenProcessPool as exc:
                # A worker died (a parser crash, the OOM killer): without a new pool every later
                # article would fail the same way. The first to notice replaces it.
                if pool is not None and self._pool is pool:
                    self._pool = self.new_pool()
                    pool.shutdown(wait=False, cancel_futures=True)
                raise ExtractionError(f"the extraction process died on this page ({exc})") from exc
            metrics.EXTRACTION_SECONDS.observe(time.perf_counter() - started)
        except RobotsDisallowedError as exc:
            metrics.FETCHES.labels(kind="article", status="robots").inc()
            raise ArticleError(str(exc), disallowed=True) from exc
        except Exception as exc:
            metrics.FETCHES.labels(kind="article", status="error").inc()
            reason = str(exc) if isinstance(exc, FetchError | ExtractionError) else describe_exception(exc)
            raise ArticleError(reason) from exc
        article = self.build_article(feed, entry, aid, page, extracted, feed_title, feed_language)
        value = article.to_bytes()
        if len(value) > MAX_MESSAGE_BYTES:  # the producer would refuse it, failing the whole poll
            raise ArticleError(
                f"article of {len(value)} bytes is larger than the {MAX_MESSAGE_BYTES}-byte limit"
            )
        delivery = await self.raw_topic.send(key=article.id.encode(), value=value)
        await delivery  # the broker has it: only now is it "seen"
        amp = amp_alias(page.url, extracted.amp_url)
        shard = shard_of(feed.url if feed is not None else link)
        # the page's own id, and its AMP version's: the same article, never fetched as another
        self.mark_seen(shard, aid, article.id, amp)
        self.store.failed.forget(shard, aid)
        metrics.ARTICLES_PRODUCED.inc()
        log.info(
            "article produced",
            extra={"article_id": article.id, "url": article.url, "feed_url": article.feed_url},
        )
        return article

    def mark_seen(self, shard: str, *ids: str | None) -> None:
        """Articles produced: never fetched again by this site's feeds (saved at once)."""
        for aid in dict.fromkeys(i for i in ids if i):
            self.store.seen.add(shard, aid)
            self.recent.add(aid)

    async def article_disallowed(self, feed: Feed, link: str, aid: str, reason: str) -> None:
        """Skip the article; a dead letter the first time, robots.txt asked again after its TTL.
        Remembered in the ``failed`` table: a restart or the site's next owner asks robots.txt
        again when this one would have, and records no second dead letter."""
        shard, now = shard_of(feed.url), time.time()
        previous = self.store.failed.get(shard, aid)
        first = previous is None or not previous.disallowed
        retry = now + self.settings.fetch_robots_ttl
        self.store.failed.put(shard, aid, ArticleFailure(0, retry, reason, disallowed=True, listed=now))
        log.info("article skipped", extra={"url": link, "feed_url": feed.url, "reason": reason})
        if first:
            await self.service.dead_letter("fetcher.article", reason, url=link, feed_url=feed.url, key=aid)

    async def article_failed(self, feed: Feed, link: str, aid: str, reason: str) -> None:
        """Retry later with backoff (the feed's interval, doubling); a dead letter on the first
        failure and when giving up. Kept in the ``failed`` table (wall-clock times): after a
        restart or a hand-over the backoff goes on where it was, with no new dead letter."""
        shard, now = shard_of(feed.url), time.time()
        previous = self.store.failed.get(shard, aid)
        attempts = previous.attempts + 1 if previous is not None and not previous.disallowed else 1
        interval = feed.interval or self.settings.poll_interval
        retry = now + interval * 2 ** (attempts - 1)
        self.store.failed.put(shard, aid, ArticleFailure(attempts, retry, reason, listed=now))
        if attempts == 1 or attempts >= ARTICLE_MAX_ATTEMPTS:
            final = f" (giving up after {attempts} attempts)" if attempts >= ARTICLE_MAX_ATTEMPTS else ""
            await self.service.dead_letter(
                "fetcher.article", reason + final, url=link, feed_url=feed.url, key=aid
            )
        else:
            log.warning("article still failing", extra={"url": link, "reason": reason, "attempts": attempts})

    def build_article(
        self,
        feed: Feed | None,
        entry: FeedEntry,
        aid: str,
        page: Page,
        extracted: Extracted,
        feed_title: str | None,
        feed_language: str | None,
    ) -> RawArticle:
        link = entry.link
        canonical = canonical_url(link)
        # A page's own canonical URL wins only on the same site (a page cannot claim another site's
        # id); ``www.`` aside, so that an ``amp.`` page can name its ``www.`` original.
        if extracted.canonical_url:
            try:
                declared = canonical_url(extracted.canonical_url)
                if same_site(declared, canonical):
                    canonical = declared
            except InvalidURLError:
                pass
        article_key = article_id(canonical) if canonical != canonical_url(link) else aid
        return RawArticle(
            id=article_key,
            url=page.url,
            canonical_url=canonical,
            feed_url=feed.url if feed is not None else None,
            source=extracted.sitename
            or (feed.name if feed is not None else None)
            or feed_title
            or source_domain(page.url),
            source_domain=source_domain(page.url),
            title=(entry.title or extracted.title or "").strip(),
            text=extracted.text,
            description=extracted.description or entry.summary or None,
            author=extracted.author or entry.author or None,
            published=entry.published or extracted.published,
            language_hint=feed_language or extracted.language,
            html_sha256=hashlib.sha256(page.body).hexdigest(),
            html_bytes=len(page.body),
            http_status=page.status,
            content_type=page.content_type,
            fetch_headers=kept_headers(page.headers),
        )


class ConsumerOffsets:
    """The feeds topic's offsets as the fetcher's Faust consumer knows them (:class:`FeedsOffsets`)."""

    def __init__(self, app: faust.App, topic: str) -> None:
        self.app = app
        self.topic = topic

    async def ends(self, partitions: set[int]) -> dict[int, int]:
        if not partitions:
            return {}
        found = await self.app.consumer.highwaters(*(TP(self.topic, p) for p in sorted(partitions)))
        return {tp.partition: int(offset) for tp, offset in found.items() if offset is not None}

    def committed(self, partition: int) -> int | None:
        # Faust's own record: the group's committed offset, as read at the assignment and as
        # committed since (core/app.py keeps a committed 0 there too).
        known: dict[TP, int | None] = self.app.consumer._committed_offset  # type: ignore[attr-defined]
        return known.get(TP(self.topic, partition))


def create(settings: Settings) -> ServiceApp:
    return build(settings).service


def build(settings: Settings) -> Fetcher:
    """The fetcher service: the feeds topic followed into the ``feeds`` table, the poll loop and
    the backfill lane as a Faust task, and the ``/feeds`` and ``/backfills`` pages."""
    service = ServiceApp("fetcher", settings)
    app = service.app
    partitions = settings.topic_partitions

    def table(name: str) -> Any:
        made = ShardedTable(
            app,
            name=name,
            # In memory whatever ``table_store`` says, rebuilt from the compacted changelog at
            # start: the rocksdb store accepts writes only from within an agent's event (the
            # poll loop writes from outside one), and these tables are bounded and small.
            # (A host part is needed: Faust takes a bare ``memory://`` URL for "not set".)
            store="memory://fetcher",
            default=None,
            partitions=partitions,
            key_type=str,
            value_type=None,
            beacon=app.tables.beacon,
        )
        return app.tables.add(made)

    store = FetcherState(settings, feeds=table("feeds"), seen=table("seen"), failed=table("failed"))
    fetcher = Fetcher(service, store)
    fetcher.backfills = Backfills(fetcher, table("backfills"))
    feeds_topic = service.topic(settings.topic_feeds)
    backfill_topic = service.topic(settings.topic_backfill)
    fetcher.publisher = FeedsPublisher(settings, feeds_topic)
    fetcher.feeds_catch_up = catch_up = FeedsCatchUp(ConsumerOffsets(app, settings.topic_feeds))
    # Named by /readyz without failing it: the fetcher works on with the feeds last published, and
    # the file is shared by every instance (a ConfigMap), so failing would take them all out at once.
    service.warnings["feeds_file"] = fetcher.feeds_file_problem
    # A hand-over waits this long for the work in flight (within the group's rebalance timeout).
    drain_seconds = max(0.5, min(5.0, settings.kafka_rebalance_timeout / 3))

    @service.on_prepare
    async def _topics(_: Settings) -> None:
        await ensure_fetcher_topics(settings)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        try:
            await fetcher.on_revoked(drain_seconds)
            await app.producer.flush()  # what was saved is on the broker before the next owner reads it
        except Exception:
            log.exception("fetcher hand-over failed")

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _assigned(sender: Any, **_: Any) -> None:
        actives = app.assignor.assigned_actives()
        fetcher.on_assigned({tp.partition for tp in actives if tp.topic == settings.topic_feeds})

    async def follow_feed(event: EventT[bytes]) -> None:
        fid = event.key.decode("utf-8", "replace") if isinstance(event.key, bytes) else str(event.key)
        if event.value is None:
            url = store.remove_feed(fid)
            fetcher.state.pop(fid, None)
            log.info("feed removed", extra={"feed_id": fid, "feed_url": url})
            return
        feed = await service.parse(Feed, event, "fetcher.feeds")
        if feed is None:
            return
        if partition_of(shard_of(feed.url), partitions) != event.message.partition:
            log.warning(
                "feed record in the wrong partition ignored",
                extra={"feed_url": feed.url, "partition": event.message.partition},
            )
            return
        store.put_feed(feed)

    @app.agent(feeds_topic)
    async def follow_feeds(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            await follow_feed(event)
            catch_up.record(event.message.partition, event.message.offset)

    @app.agent(backfill_topic)
    async def follow_backfills(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            request = await service.parse(BackfillRequest, event, "fetcher.backfill")
            if request is None:
                continue
            if partition_of(shard_of(request.url), partitions) != event.message.partition:
                await service.dead_letter(
                    "fetcher.backfill", "request in the wrong partition", payload=event.value, event=event
                )
                continue
            fetcher.backfills.submit(request)

    @app.task
    async def poll_feeds() -> None:
        await fetcher.run()

    @app.page("/feeds")
    class Feeds(View):
        """Each feed's health: last success and error, items seen, failures, interval, next poll;
        why the feeds file is refused, while it is, in the ``FEEDS_FILE_ERROR_HEADER`` header."""

        async def get(self, request: Request) -> Response:
            problem = fetcher.feeds_file_problem()
            headers = {FEEDS_FILE_ERROR_HEADER: json.dumps(problem)} if problem is not None else None
            return self.json(fetcher.health(), headers=headers)

    @app.page("/backfills")
    class BackfillsPage(View):
        """Each backfill of this instance's sites: its request, status and counts."""

        async def get(self, request: Request) -> Response:
            return self.json(fetcher.backfills.records())

    return fetcher
