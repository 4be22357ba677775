"""Adaptive polling and the per-feed health record, on a loopback feed that a test changes live."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import test_fetcher_http
from test_fetcher_feeds import article_page, fetcher
from test_fetcher_http import Serve, settings
from wirewatch.core.models import Feed
from wirewatch.fetcher.http import HttpFetcher
from wirewatch.fetcher.schedule import FeedState, failure_interval, next_interval, poll_floor
from wirewatch.fetcher.service import Fetcher, build

pytestmark = pytest.mark.timeout(20)
serve = test_fetcher_http.serve  # the loopback-server fixture


def test_next_interval_rules() -> None:
    bounds = {"lower": 10.0, "upper": 1000.0}
    assert next_interval(100, 3, **bounds) == 50  # new items: twice as often
    assert next_interval(100, 0, **bounds) == 150  # quiet: 1.5 times longer
    assert next_interval(12, 1, **bounds) == 10  # never under the lower bound
    assert next_interval(900, 0, **bounds) == 1000  # never over the upper one
    assert next_interval(100, 1, **bounds, asked=300) == 300  # the feed's ttl is a floor
    assert next_interval(100, 1, **bounds, asked=86400) == 1000  # but a ttl of a day is capped
    assert poll_floor(10, 1000, None) == 10 and poll_floor(10, 1000, 60) == 60
    assert [failure_interval(100, n) for n in (1, 2, 3, 4, 9)] == [200, 400, 800, 800, 800]


@pytest.mark.parametrize("wait", [1e12, float("inf"), float("nan"), 8 * 1e12])
def test_a_next_poll_past_any_date_is_the_latest_date(wait: float) -> None:
    """An interval no date can add (1e12 s: past year 9999) made every ``/feeds`` record fail
    (OverflowError); now its next poll is the latest date, and the record is served."""
    state = FeedState(next_poll=time.monotonic() + wait, interval=wait, polls=1)
    record = state.health("https://a.example/rss.xml", None)
    assert record["next_poll"] == datetime.max.replace(tzinfo=UTC).isoformat(timespec="seconds")
    assert FeedState.from_record(state.to_record()).health("https://a.example/rss.xml", None)["polls"] == 1


class LiveFeed:
    """An RSS feed with an ETag that changes when an item is added; it can be made to fail."""

    def __init__(self, ttl: int | None = None) -> None:
        self.slugs: list[str] = []
        self.ttl = ttl
        self.failing = False

    async def feed(self, request: web.Request) -> web.StreamResponse:
        if self.failing:
            return web.Response(status=500)
        etag = f'"v{len(self.slugs)}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        start = datetime(2026, 3, 1, tzinfo=UTC)
        items = "".join(
            f"<item><title>{slug}</title><link>http://{request.host}/news/{slug}.html</link>"
            f"<pubDate>{(start + timedelta(hours=n)).strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate></item>"
            for n, slug in enumerate(self.slugs)
        )
        ttl = f"<ttl>{self.ttl}</ttl>" if self.ttl is not None else ""
        channel = f"<title>Live</title>{ttl}{items}"
        body = f'<?xml version="1.0"?><rss version="2.0"><channel>{channel}</channel></rss>'
        return web.Response(text=body, content_type="application/rss+xml", headers={"ETag": etag})

    async def article(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=article_page(request.match_info["slug"]), content_type="text/html")


async def start(serve: Serve, live: LiveFeed) -> Any:
    return await serve({"/rss.xml": live.feed, "/news/{slug}.html": live.article})


async def poll(made: Fetcher, http: HttpFetcher, source: Feed) -> FeedState:
    state = made.state.setdefault(source.id, FeedState())
    made.in_flight.add(source.id)
    before = time.monotonic()
    await made._poll(http, source, state)
    assert source.id not in made.in_flight
    if state.interval is not None and not state.backlog and not state.failures:
        assert before + state.interval <= state.next_poll <= time.monotonic() + state.interval
    return state


ADAPTIVE = {"poll_interval": 100.0, "poll_interval_min": 10.0, "poll_interval_max": 1000.0}


async def test_the_interval_follows_the_feed(serve: Serve) -> None:
    live = LiveFeed()
    live.slugs = ["a", "b"]
    server = await start(serve, live)
    made, service = fetcher(**ADAPTIVE)
    source = Feed(id="l" * 32, url=server.url + "/rss.xml")
    async with HttpFetcher(service.settings) as http:
        state = await poll(made, http, source)
        assert (state.interval, state.items_seen, state.last_new, state.polls) == (50, 2, 2, 1)
        assert state.last_success is not None and state.entries == 2
        state = await poll(made, http, source)  # a 304
        assert (state.interval, state.items_seen) == (75, 2)
        state = await poll(made, http, source)
        assert state.interval == 112.5
        live.slugs.append("c")
        state = await poll(made, http, source)
        assert (state.interval, state.items_seen, state.last_new) == (56.25, 3, 1)
        assert len(service.raw.sent) == 3

        live.failing = True
        before = time.monotonic()
        state = await poll(made, http, source)
        assert state.failures == 1 and state.interval == 56.25
        assert state.last_error == f"HTTP 500 for {source.url}" and state.last_error_at is not None
        assert state.next_poll >= before + 2 * 56.25  # backed off
        state = await poll(made, http, source)
        assert state.failures == 2 and state.next_poll >= time.monotonic() + 4 * 56.25 - 1
        assert len(service.letters) == 1  # the same problem is recorded once

        live.failing = False
        state = await poll(made, http, source)  # a 304 again: the feed works
        assert state.failures == 0 and state.last_error is None
        for _ in range(12):
            state = await poll(made, http, source)
        assert state.interval == 1000  # quiet for long: the upper bound
    assert server.count("/news/a.html") == 1  # nothing fetched twice


async def test_ttl_is_a_lower_bound(serve: Serve) -> None:
    live = LiveFeed(ttl=5)  # minutes
    live.slugs = ["a"]
    server = await start(serve, live)
    made, service = fetcher(**ADAPTIVE)
    source = Feed(id="t" * 32, url=server.url + "/rss.xml")
    async with HttpFetcher(service.settings) as http:
        state = await poll(made, http, source)
        assert state.asked_interval == 300 and state.interval == 300  # new items, but not under the ttl
        live.ttl = 600
        live.slugs.append("b")
        state = await poll(made, http, source)
        assert state.asked_interval == 36000 and state.interval == 1000  # capped at poll_interval_max


async def test_a_feed_with_its_own_interval_keeps_it(serve: Serve) -> None:
    live = LiveFeed(ttl=60)
    live.slugs = ["a"]
    server = await start(serve, live)
    made, service = fetcher(**ADAPTIVE)
    source = Feed(id="i" * 32, url=server.url + "/rss.xml", interval=42)
    async with HttpFetcher(service.settings) as http:
        assert (await poll(made, http, source)).interval == 42
        assert (await poll(made, http, source)).interval == 42


async def test_a_backlog_is_fetched_at_the_next_early_poll(serve: Serve) -> None:
    live = LiveFeed()
    live.slugs = ["a", "b", "c"]
    server = await start(serve, live)
    made, service = fetcher(**ADAPTIVE, feed_max_new_per_poll=2)
    source = Feed(id="b" * 32, url=server.url + "/rss.xml")
    async with HttpFetcher(service.settings) as http:
        state = await poll(made, http, source)
        assert state.backlog == 1 and len(service.raw.sent) == 2
        assert {a.title for a in service.raw.sent} == {"c", "b"}  # the newest first
        assert state.next_poll <= time.monotonic() + 10  # at the lower bound, not the interval (50)
        state = await poll(made, http, source)  # not conditional: the feed did not change
        assert state.backlog == 0 and {a.title for a in service.raw.sent} == {"a", "b", "c"}
    assert server.count("/rss.xml") == 2 and server.count("/news/a.html") == 1


async def test_a_feed_refused_by_the_ssrf_guard_is_polled_at_once_after_a_restart(serve: Serve) -> None:
    """The operator's case: a loopback feed refused (no WIREWATCH_FETCH_ALLOW_HOSTS), then the
    fetcher restarted with 127.0.0.1/32 allowed. The refusal was the settings', not the site's:
    the restarted fetcher polls it at once, not after the refusal's backoff (2 intervals, kept
    in the saved state). A feed whose server failed keeps its backoff across the restart."""
    live = LiveFeed()
    live.slugs = ["a"]
    server = await start(serve, live)
    source = Feed(id="s" * 32, url=server.url + "/rss.xml")
    broken = Feed(id="e" * 32, url=server.url + "/missing.xml")
    refusing, _ = fetcher(**ADAPTIVE, fetch_allow_hosts=[])
    async with HttpFetcher(refusing.settings) as http:
        state = await poll(refusing, http, source)
    assert state.failures == 1 and "a loopback address" in (state.last_error or "")
    assert state.next_poll >= time.monotonic() + 2 * 100 - 5  # backed off, as any failure
    assert server.count("/rss.xml") == 0  # refused before any request
    allowing, service = fetcher(**ADAPTIVE)  # fetch_allow_hosts: 127.0.0.1/32
    async with HttpFetcher(allowing.settings) as http:
        failed = await poll(allowing, http, broken)  # HTTP 404: the server's fault
    allowing.state.clear()
    allowing._saved = {source.id: state.to_record(), broken.id: failed.to_record()}  # restarted
    again = allowing.state_of(source)
    assert again.next_poll <= time.monotonic() and again.failures == 1  # due now; its health kept
    assert allowing.state_of(broken).next_poll >= time.monotonic() + 2 * 100 - 5  # still backing off
    async with HttpFetcher(allowing.settings) as http:
        again = await poll(allowing, http, source)
    assert again.failures == 0 and again.last_error is None and len(service.raw.sent) == 1
    # With the same settings, a restart finds the same refusal at once: no request, no new dead
    # letter (the reason is the one recorded), and the backoff grows.
    restarted, service = fetcher(**ADAPTIVE, fetch_allow_hosts=[])
    restarted._saved = {source.id: state.to_record()}
    assert restarted.state_of(source).next_poll <= time.monotonic()
    async with HttpFetcher(restarted.settings) as http:
        still = await poll(restarted, http, source)
    assert still.failures == 2 and still.next_poll >= time.monotonic() + 4 * 100 - 5
    assert service.letters == [] and server.count("/rss.xml") == 1


async def test_the_feeds_page(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    live = LiveFeed()
    live.slugs = ["a"]
    server = await start(serve, live)
    made = build(settings(kafka_bootstrap="127.0.0.1:9", web_port=6067, **ADAPTIVE))
    sent: list[bytes] = []

    async def send(key: bytes, value: bytes) -> Any:
        sent.append(value)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    monkeypatch.setattr(made.raw_topic, "send", send)
    good = Feed(id="g" * 32, url=server.url + "/rss.xml", name="Live")
    broken = Feed(id="x" * 32, url=server.url + "/missing.xml")
    quiet = Feed(id="q" * 32, url=server.url + "/never-polled.xml")
    made._feeds = [good, broken, quiet]
    letters: list[str] = []

    async def dead_letter(stage: str, error: Any, **fields: Any) -> None:
        letters.append(str(error))

    monkeypatch.setattr(made.service, "dead_letter", dead_letter)
    async with HttpFetcher(made.settings) as http:
        await poll(made, http, good)
        await poll(made, http, broken)
    client = TestClient(TestServer(made.service.app.web.web_app))
    await client.start_server()
    try:
        response = await client.get("/feeds")
        assert response.status == 200
        records = {r["url"]: r for r in await response.json()}
    finally:
        await client.close()
    ok, bad, idle = records[good.url], records[broken.url], records[quiet.url]
    assert ok["name"] == "Live" and ok["format"] == "rss rss20"
    assert ok["items_seen"] == 1 and ok["consecutive_failures"] == 0 and ok["last_error"] is None
    assert ok["interval"] == 50 and ok["last_success"] is not None
    assert datetime.fromisoformat(ok["next_poll"]) > datetime.now(UTC) + timedelta(seconds=40)
    assert (
        bad["consecutive_failures"] == 1 and "HTTP 404" in bad["last_error"] and bad["last_success"] is None
    )
    assert bad["last_error_at"] is not None
    assert idle["polls"] == 0 and idle["next_poll"] is None and idle["interval"] is None
    assert len(sent) == 1 and letters == [f"HTTP 404 for {broken.url}"]
