"""A feed with 10,000 items on a loopback site: parsed once, worked through newest first in
bounded batches, with bounded memory and concurrency, never hammering the host."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import test_fetcher_http
from test_fetcher_feeds import article_page, fetcher
from test_fetcher_http import Serve
from wirewatch.core.models import Feed
from wirewatch.fetcher.http import HttpFetcher
from wirewatch.fetcher.schedule import FeedState

pytestmark = pytest.mark.timeout(60)
serve = test_fetcher_http.serve  # the loopback-server fixture

ITEMS = 10_000
PER_POLL = 60
START = datetime(2026, 1, 1, tzinfo=UTC)


def big_feed(host: str) -> bytes:
    # Item n was published n minutes after START; the feed lists them oldest first, on purpose.
    items = "".join(
        f"<item><title>Story {n}</title><link>http://{host}/news/{n}.html</link><guid>{n}</guid>"
        f"<pubDate>{(START + timedelta(minutes=n)).strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate>"
        f"<description>Summary of story number {n}.</description></item>"
        for n in range(ITEMS)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Big</title>'
        f"{items}</channel></rss>"
    ).encode()


async def test_a_feed_with_ten_thousand_items(serve: Serve) -> None:
    bodies: dict[str, bytes] = {}
    in_flight = peak = 0
    page = article_page("A story").encode()

    async def feed(request: web.Request) -> web.StreamResponse:
        body = bodies.setdefault("feed", big_feed(request.host))
        return web.Response(body=body, content_type="application/rss+xml", headers={"ETag": '"big"'})

    async def article(request: web.Request) -> web.StreamResponse:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.025)  # longer than the host delay: requests overlap
            return web.Response(body=page, content_type="text/html")
        finally:
            in_flight -= 1

    server = await serve({"/rss.xml": feed, "/news/{n}.html": article})
    made, service = fetcher(
        feed_max_new_per_poll=PER_POLL, fetch_host_concurrency=2, fetch_host_delay=0.01, fetch_concurrency=4
    )
    active = max_active = 0
    real_article = made._article

    async def counted(*args: Any) -> int:
        nonlocal active, max_active
        active += 1
        max_active = max(max_active, active)
        try:
            return await real_article(*args)
        finally:
            active -= 1

    made._article = counted  # type: ignore[method-assign]
    source = Feed(id="9" * 32, url=server.url + "/rss.xml")
    state = FeedState()
    async with HttpFetcher(service.settings) as http:
        started = time.monotonic()
        assert await made.poll_feed(http, source, state) == PER_POLL
        first_poll = time.monotonic() - started
        assert state.entries == ITEMS and state.items_seen == ITEMS and state.last_new == ITEMS
        assert state.backlog == ITEMS - PER_POLL
        newest = {f"Story {n}" for n in range(ITEMS - PER_POLL, ITEMS)}
        assert {a.title for a in service.raw.sent} == newest  # newest first, whatever the feed order
        assert service.raw.sent[0].published is not None

        # With a backlog the next poll reads the whole feed again (no 304) and takes the next batch.
        assert await made.poll_feed(http, source, state) == PER_POLL
        assert state.backlog == ITEMS - 2 * PER_POLL and state.last_new == 0
        assert {a.title for a in service.raw.sent[PER_POLL:]} == {
            f"Story {n}" for n in range(ITEMS - 2 * PER_POLL, ITEMS - PER_POLL)
        }

    assert service.letters == []
    assert server.count("/rss.xml") == 2
    article_hits = [p for _, p in server.hits if p.startswith("/news/")]
    assert len(article_hits) == len(set(article_hits)) == 2 * PER_POLL  # none fetched twice
    assert peak == 2  # the host's concurrency limit, and used
    starts = sorted(t for t, p in server.hits if p.startswith("/news/"))
    assert starts[-1] - starts[0] >= (len(starts) - 1) * 0.01 * 0.95  # spaced by the host delay
    assert max_active <= 4  # articles in progress: fetch_concurrency, not one coroutine per item
    assert first_poll < 20


PARSE_MEMORY = """
import resource, sys, time
sys.path.insert(0, sys.argv[1])
from test_fetcher_scale import big_feed
from wirewatch.fetcher.formats import parse_feed

body = big_feed("127.0.0.1:1")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
parsed = parse_feed(body, "application/rss+xml", max_bytes=10_000_000)
print(len(parsed.entries), time.perf_counter() - started,
      (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


def test_parsing_ten_thousand_items_takes_bounded_memory() -> None:
    # In a fresh process, so that the peak resident size measures this parse and nothing else.
    out = subprocess.run(
        [sys.executable, "-c", PARSE_MEMORY, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        check=True,
        timeout=50,
    ).stdout.split()
    entries, seconds, grown = int(out[0]), float(out[1]), int(out[2])
    assert entries == ITEMS
    assert seconds < 15
    assert grown < 100 * 1024 * 1024  # a 2 MB feed: about 20 MB while parsing
