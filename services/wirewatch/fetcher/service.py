"""The fetcher service: poll feeds, fetch new articles, extract them, produce raw articles.

One path for data: feeds file -> due feeds -> HTTP GET (conditional) -> feedparser ->
new entry links -> HTTP GET -> trafilatura (process pool) -> ``RawArticle`` keyed by
article id -> raw-articles topic. Every failure (broken feed, unreachable or empty
article) is logged and recorded on the dead-letter topic; the other feeds keep flowing.

Every request, feed or article, goes through :class:`~wirewatch.fetcher.http.HttpFetcher`:
SSRF guard on each redirect hop, robots.txt, per-host concurrency and spacing, retries with
backoff, ``Retry-After``, and deadline, size and content-type caps. An article that robots.txt
disallows is skipped (logged, one dead letter) and looked at again after ``fetch_robots_ttl``.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser

from wirewatch.core import metrics
from wirewatch.core.app import ServiceApp, describe_exception
from wirewatch.core.feeds import FeedsFileError, load_feeds
from wirewatch.core.ids import InvalidURLError, article_id, canonical_url, source_domain
from wirewatch.core.logs import get_logger
from wirewatch.core.models import Feed, RawArticle
from wirewatch.core.settings import Settings
from wirewatch.fetcher.errors import FetchError, RobotsDisallowedError
from wirewatch.fetcher.extract import Extracted, ExtractionError, decode_html_bytes, extract_article
from wirewatch.fetcher.http import HttpFetcher, Page

__all__ = ["FetchError", "Fetcher", "HttpFetcher", "Page", "create"]

log = get_logger(__name__)


#: Attempts at an article that keeps failing before the fetcher gives up on it.
ARTICLE_MAX_ATTEMPTS = 5
#: feedparser complaints that do not mean the feed is broken.
HARMLESS_FEED_ERRORS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


@dataclass
class FeedState:
    next_poll: float = 0.0
    etag: str | None = None
    last_modified: str | None = None
    failures: int = 0
    last_error: str | None = None


@dataclass
class ArticleFailure:
    attempts: int
    next_try: float
    reason: str


def _entry_published(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        value = entry.get(key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


class Fetcher:
    def __init__(self, service: ServiceApp) -> None:
        self.service = service
        self.settings: Settings = service.settings
        self.raw_topic = service.topic(self.settings.topic_raw)
        self.state: dict[str, FeedState] = {}
        self.seen: set[str] = set()  # article ids produced by this process
        self.in_flight: set[str] = set()
        self.failed: dict[str, ArticleFailure] = {}
        self.disallowed: dict[str, float] = {}  # article id -> when to ask robots.txt again
        self._feeds: list[Feed] = []
        self._pool: ProcessPoolExecutor | None = None

    # -- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=max(1, multiprocessing.cpu_count()), mp_context=multiprocessing.get_context("spawn")
        )
        tasks: set[asyncio.Task[None]] = set()
        self.service.ready = True
        try:
            async with HttpFetcher(self.settings) as http:
                while True:
                    now = time.monotonic()
                    for feed in self._load():
                        state = self.state.setdefault(feed.id, FeedState())
                        if state.next_poll <= now and feed.id not in self.in_flight:
                            self.in_flight.add(feed.id)
                            task = asyncio.create_task(self._poll(http, feed, state))
                            tasks.add(task)
                            task.add_done_callback(tasks.discard)
                    await asyncio.sleep(0.5)
        finally:
            for task in tasks:
                task.cancel()
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _load(self) -> list[Feed]:
        try:
            self._feeds = load_feeds(self.settings.feeds_file)
        except FeedsFileError as exc:
            log.error("feeds file unreadable, keeping the previous list", extra={"error": str(exc)})
        return self._feeds

    async def _poll(self, http: HttpFetcher, feed: Feed, state: FeedState) -> None:
        interval = feed.interval or self.settings.poll_interval
        try:
            new = await self.poll_feed(http, feed, state)
            state.failures = 0
            state.next_poll = time.monotonic() + interval
            if new:
                log.info("feed polled", extra={"feed_url": feed.url, "new_articles": new})
        except Exception as exc:
            state.failures += 1
            # Back off on a failing feed: interval * 2^failures, capped at 8 intervals.
            state.next_poll = time.monotonic() + min(interval * 2 ** min(state.failures, 3), interval * 8)
            reason = str(exc) if isinstance(exc, FetchError) else describe_exception(exc)
            await self.feed_problem(feed, state, reason)
        finally:
            self.in_flight.discard(feed.id)

    async def feed_problem(self, feed: Feed, state: FeedState, reason: str) -> None:
        """Log every time; record a dead letter when the feed's problem is new or changed."""
        if reason == state.last_error:
            log.warning(
                "feed still failing",
                extra={"feed_url": feed.url, "reason": reason, "failures": state.failures},
            )
            return
        state.last_error = reason
        await self.service.dead_letter("fetcher.feed", reason, feed_url=feed.url)

    async def poll_feed(self, http: HttpFetcher, feed: Feed, state: FeedState) -> int:
        headers = {}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        page = await http.get(feed.url, "feed", headers)
        metrics.FETCHES.labels(kind="feed", status=str(page.status)).inc()
        if page.status == 304:
            return 0
        parsed = await asyncio.to_thread(feedparser.parse, page.body)
        problem = parsed.get("bozo_exception") if parsed.bozo else None
        if problem is not None and not isinstance(problem, HARMLESS_FEED_ERRORS):
            if not parsed.entries:
                raise FetchError(f"malformed feed: {problem}")
            await self.feed_problem(
                feed, state, f"malformed feed ({len(parsed.entries)} entries recovered): {problem}"
            )
        elif state.last_error is not None:
            log.info("feed recovered", extra={"feed_url": feed.url})
            state.last_error = None
        state.etag = page.headers.get("etag")
        state.last_modified = page.headers.get("last-modified")
        feed_title = parsed.feed.get("title") if parsed.get("feed") else None
        feed_language = feed.language or (parsed.feed.get("language") if parsed.get("feed") else None)
        jobs = []
        for entry in parsed.entries:
            link = entry.get("link")
            if not link:
                continue
            try:
                aid = article_id(link)
            except InvalidURLError as exc:
                await self.service.dead_letter(
                    "fetcher.entry", str(exc), feed_url=feed.url, url=str(link)[:2000]
                )
                continue
            if aid in self.seen or self.disallowed.get(aid, 0.0) > time.monotonic():
                continue
            failure = self.failed.get(aid)
            if failure and (failure.attempts >= ARTICLE_MAX_ATTEMPTS or failure.next_try > time.monotonic()):
                continue
            jobs.append(self._article(http, feed, link, aid, entry, feed_title, feed_language))
        results = await asyncio.gather(*jobs)
        return sum(results)

    async def _article(
        self,
        http: HttpFetcher,
        feed: Feed,
        link: str,
        aid: str,
        entry: Any,
        feed_title: str | None,
        feed_language: str | None,
    ) -> int:
        try:
            page = await http.get(link, "article")
            metrics.FETCHES.labels(kind="article", status=str(page.status)).inc()
            html = decode_html_bytes(page.body, page.content_type)
            started = time.perf_counter()
            loop = asyncio.get_running_loop()
            extracted: Extracted = await loop.run_in_executor(self._pool, extract_article, html, page.url)
            metrics.EXTRACTION_SECONDS.observe(time.perf_counter() - started)
        except RobotsDisallowedError as exc:
            metrics.FETCHES.labels(kind="article", status="robots").inc()
            await self.article_disallowed(feed, link, aid, str(exc))
            return 0
        except Exception as exc:
            metrics.FETCHES.labels(kind="article", status="error").inc()
            reason = str(exc) if isinstance(exc, FetchError | ExtractionError) else describe_exception(exc)
            await self.article_failed(feed, link, aid, reason)
            return 0
        article = self.build_article(feed, link, aid, entry, page, extracted, feed_title, feed_language)
        delivery = await self.raw_topic.send(key=article.id.encode(), value=article.to_bytes())
        await delivery  # the broker has it: only now is it "seen"
        self.seen.add(aid)
        self.failed.pop(aid, None)
        self.disallowed.pop(aid, None)
        if article.id != aid:
            self.seen.add(article.id)
        metrics.ARTICLES_PRODUCED.inc()
        log.info(
            "article produced", extra={"article_id": article.id, "url": article.url, "feed_url": feed.url}
        )
        return 1

    async def article_disallowed(self, feed: Feed, link: str, aid: str, reason: str) -> None:
        """Skip the article; a dead letter the first time, robots.txt asked again after its TTL."""
        first = aid not in self.disallowed
        self.disallowed[aid] = time.monotonic() + self.settings.fetch_robots_ttl
        self.failed.pop(aid, None)
        log.info("article skipped", extra={"url": link, "feed_url": feed.url, "reason": reason})
        if first:
            await self.service.dead_letter("fetcher.article", reason, url=link, feed_url=feed.url, key=aid)

    async def article_failed(self, feed: Feed, link: str, aid: str, reason: str) -> None:
        """Retry later with backoff; a dead letter on the first failure and when giving up."""
        previous = self.failed.get(aid)
        attempts = previous.attempts + 1 if previous else 1
        interval = feed.interval or self.settings.poll_interval
        self.failed[aid] = ArticleFailure(attempts, time.monotonic() + interval * 2 ** (attempts - 1), reason)
        if attempts == 1 or attempts >= ARTICLE_MAX_ATTEMPTS:
            final = f" (giving up after {attempts} attempts)" if attempts >= ARTICLE_MAX_ATTEMPTS else ""
            await self.service.dead_letter(
                "fetcher.article", reason + final, url=link, feed_url=feed.url, key=aid
            )
        else:
            log.warning("article still failing", extra={"url": link, "reason": reason, "attempts": attempts})

    def build_article(
        self,
        feed: Feed,
        link: str,
        aid: str,
        entry: Any,
        page: Page,
        extracted: Extracted,
        feed_title: str | None,
        feed_language: str | None,
    ) -> RawArticle:
        canonical = canonical_url(link)
        # A page's own canonical URL wins only on the same host (a page cannot claim another site's id).
        if extracted.canonical_url:
            try:
                declared = canonical_url(extracted.canonical_url)
                if urlsplit(declared).hostname == urlsplit(canonical).hostname:
                    canonical = declared
            except InvalidURLError:
                pass
        article_key = article_id(canonical) if canonical != canonical_url(link) else aid
        return RawArticle(
            id=article_key,
            url=page.url,
            canonical_url=canonical,
            feed_url=feed.url,
            source=extracted.sitename or feed.name or feed_title or source_domain(page.url),
            source_domain=source_domain(page.url),
            title=(entry.get("title") or extracted.title or "").strip(),
            text=extracted.text,
            description=extracted.description or entry.get("summary") or None,
            author=extracted.author or entry.get("author") or None,
            published=_entry_published(entry) or extracted.published,
            language_hint=feed_language or extracted.language,
            html_sha256=hashlib.sha256(page.body).hexdigest(),
            html_bytes=len(page.body),
            http_status=page.status,
            content_type=page.content_type,
        )


def create(settings: Settings) -> ServiceApp:
    service = ServiceApp("fetcher", settings)
    fetcher = Fetcher(service)

    @service.app.task
    async def poll_feeds() -> None:
        await fetcher.run()

    return service
