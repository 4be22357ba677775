"""The fetcher's state in Kafka: what survives a restart, and the pieces it is made of.

The first tests check the parts on their own (seen ids with their expiry and cap, the saved
feed state, sharding, the low-priority gate, the feeds publisher). The last ones run the real
fetcher (``python -m wirewatch run fetcher``, as ``wirewatch up`` does) against tansu and a
loopback site, stop or kill it, start it again, and count what reaches the raw topic.

:class:`Site` and :class:`Fetchers` are shared with ``test_fetcher_sharing`` and
``test_fetcher_backfill``.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY

from conftest import make_settings, run, settings_for, wait_for
from test_fetcher_feeds import article_page
from test_fetcher_http import Recorder
from wirewatch.core.feeds import FeedsFileError, load_feeds, save_feeds
from wirewatch.core.ids import article_id, feed_id
from wirewatch.core.kafka import read_topic
from wirewatch.core.models import DeadLetter, Feed, RawArticle
from wirewatch.core.recent import RecentKeys
from wirewatch.core.settings import Settings
from wirewatch.fetcher.feedsync import FeedsPublisher
from wirewatch.fetcher.politeness import HostGate
from wirewatch.fetcher.schedule import FeedState
from wirewatch.fetcher.service import FEEDS_FILE_ERROR_HEADER, Fetcher
from wirewatch.fetcher.state import (
    ARTICLE_MAX_ATTEMPTS,
    ArticleFailure,
    FailedArticles,
    FeedsCatchUp,
    FetcherState,
    SeenIds,
    ShardedTable,
    partition_of,
    shard_of,
    table_key,
)
from wirewatch.local.servers import LocalServers
from wirewatch.local.supervisor import Supervisor, write_endpoints
from wirewatch.status import collect_status

pytestmark = pytest.mark.timeout(120)

START = datetime(2026, 3, 1, tzinfo=UTC)


# --- a loopback site on several host addresses ----------------------------------------------------


@dataclass
class Route:
    body: bytes
    content_type: str
    etag: str | None = None
    delay: float = 0.0


@dataclass
class Site:
    """Feeds, sitemaps and article pages on loopback addresses (one server per address, each
    address a host of its own); every request is recorded, with the peak in flight per host."""

    hosts: list[str]
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    hits: list[tuple[float, str, str, dict[str, str]]] = field(default_factory=list)
    items: dict[tuple[str, str], list[tuple[str, str, datetime]]] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    servers: dict[str, ThreadingHTTPServer] = field(default_factory=dict)

    @classmethod
    def start(cls, hosts: list[str]) -> Site:
        site = cls(hosts)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                host = self.server.server_address[0]
                path = self.path.split("?")[0]
                with site.lock:
                    site.hits.append((time.monotonic(), host, path, dict(self.headers.items())))
                    route = site.routes.get((host, path))
                    site.in_flight[host] = site.in_flight.get(host, 0) + 1
                    site.peak[host] = max(site.peak.get(host, 0), site.in_flight[host])
                try:
                    if route is not None and route.delay:
                        time.sleep(route.delay)
                    if route is None:
                        self._send(404, b"not found", "text/plain")
                    elif route.etag is not None and self.headers.get("If-None-Match") == route.etag:
                        self._send(304, b"", None, route.etag)
                    else:
                        self._send(200, route.body, route.content_type, route.etag)
                finally:
                    with site.lock:
                        site.in_flight[host] -= 1

            def _send(self, status: int, body: bytes, kind: str | None, etag: str | None = None) -> None:
                self.send_response(status)
                if kind:
                    self.send_header("Content-Type", kind)
                if etag:
                    self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        for host in hosts:
            server = ThreadingHTTPServer((host, 0), Handler)
            server.daemon_threads = True
            site.servers[host] = server
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return site

    def base(self, host: str) -> str:
        return f"http://{host}:{self.servers[host].server_address[1]}"

    def serve(self, host: str, path: str, body: bytes, content_type: str, *, delay: float = 0.0) -> str:
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        with self.lock:
            self.routes[(host, path)] = Route(body, content_type, etag, delay)
        return self.base(host) + path

    def article(self, host: str, slug: str, *, delay: float = 0.0) -> str:
        page = article_page(f"Story {slug} from {host}").encode()
        return self.serve(host, f"/news/{slug}.html", page, "text/html; charset=utf-8", delay=delay)

    def feed(self, host: str, path: str, *slugs: str) -> str:
        """An RSS feed at ``path`` listing ``slugs`` (new ones first), each with its page."""
        listed = self.items.setdefault((host, path), [])
        for slug in slugs:
            when = START + timedelta(hours=len(listed))
            listed.insert(0, (slug, self.article(host, slug), when))
        entries = "".join(
            f"<item><title>{html.escape(slug)}</title><link>{html.escape(url)}</link>"
            f"<pubDate>{format_datetime(when)}</pubDate></item>"
            for slug, url, when in listed
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>{host}{path}</title>{entries}</channel></rss>"
        ).encode()
        return self.serve(host, path, body, "application/rss+xml")

    def requests(self, host: str, path: str) -> list[tuple[float, dict[str, str]]]:
        with self.lock:
            return [(t, headers) for t, h, p, headers in self.hits if h == host and p == path]

    def count(self, host: str, path: str) -> int:
        return len(self.requests(host, path))

    def close(self) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()


# --- fetcher instances as child processes ----------------------------------------------------------


class Fetchers:
    """Fetcher instances (``python -m wirewatch run fetcher``) sharing one feeds file."""

    def __init__(self, servers: LocalServers, tmp: Path, **env: str) -> None:
        self.servers = servers
        self.tmp = tmp
        self.feeds_file = tmp / "feeds.yaml"
        self.settings: Settings = settings_for(servers, feeds_file=self.feeds_file)
        self.env = {
            **servers.env(),
            "WIREWATCH_FEEDS_FILE": str(self.feeds_file),
            "WIREWATCH_FETCH_ALLOW_HOSTS": "127.0.0.0/8",
            "WIREWATCH_FETCH_HOST_DELAY": "0.02",
            "WIREWATCH_FETCH_RETRIES": "0",
            "WIREWATCH_LOG_FORMAT": "json",
            **env,
        }
        self.instances: dict[str, Supervisor] = {}

    def start(self, name: str, **env: str) -> Supervisor:
        supervisor = Supervisor(
            ["fetcher"],
            {**self.env, "WIREWATCH_DATA_DIR": str(self.tmp / name), **env},
            self.tmp / name / "logs",
            restart=False,
        )
        supervisor.start()
        self.instances[name] = supervisor
        return supervisor

    def wait_healthy(self, *names: str) -> None:
        for name in names:
            assert self.instances[name].wait_healthy(60), f"fetcher {name} not healthy"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.instances[name].children['fetcher'].port}"

    def page(self, name: str, path: str) -> Any:
        try:
            response = httpx.get(self.url(name) + path, timeout=5)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def stop(self, name: str) -> None:
        self.instances.pop(name).stop()

    def kill(self, name: str) -> None:
        supervisor = self.instances.pop(name)
        supervisor.kill("fetcher", signal.SIGKILL)
        supervisor.stop(timeout=5)

    def stop_all(self) -> None:
        for name in list(self.instances):
            self.stop(name)

    def log_lines(self, name: str) -> list[dict[str, Any]]:
        lines = []
        for raw in (self.tmp / name / "logs" / "fetcher.log").read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
        return lines

    def polled(self, name: str, polls: int) -> list[dict[str, Any]] | None:
        """The instance's /feeds once every feed there was polled ``polls`` times, else None."""
        health = self.page(name, "/feeds")
        return health if health and all(r["polls"] >= polls for r in health) else None

    def raw_articles(self) -> list[RawArticle]:
        return [
            RawArticle.from_bytes(value)
            for _, value in run(read_topic(self.settings, self.settings.topic_raw, timeout=5))
            if value is not None
        ]

    def dead_letters(self, url: str) -> list[DeadLetter]:
        """The dead letters about ``url``, oldest first (the topic's partitions read one after another)."""
        letters = [
            DeadLetter.from_bytes(value)
            for _, value in run(read_topic(self.settings, self.settings.topic_dead_letters, timeout=5))
            if value is not None
        ]
        return sorted(
            (letter for letter in letters if letter.url == url), key=lambda letter: letter.created_at
        )


# --- the parts ----------------------------------------------------------------------------------


def test_seen_ids_are_kept_while_listed_then_expire() -> None:
    table: dict[str, Any] = {}
    seen = SeenIds(ttl=1000.0, cap=3, table=table)
    seen.add("a.test", "x", now=0)
    seen.add("a.test", "y", now=0)
    assert seen.has("a.test", "x") and not seen.has("b.test", "x")
    assert table == {"a.test x": 0, "a.test y": 0}
    # Listed again after the refresh period (ttl / 10): the time is written again.
    assert seen.listed("a.test", ["x", "unknown"], now=150) == 1
    assert table["a.test x"] == 150
    assert seen.listed("a.test", ["x"], now=200) == 0  # not again so soon
    # y was last listed at 0: expired at 1001; x stays until 1150.
    assert seen.sweep("a.test", now=1100, force=True) == 1
    assert not seen.has("a.test", "y") and "a.test y" not in table and seen.has("a.test", "x")
    # The cap: the ids unlisted for longest go first.
    for n, aid in enumerate(["p", "q", "r"]):
        seen.add("a.test", aid, now=1100 + n)
    assert seen.sweep("a.test", now=1110, force=True) == 1
    assert sorted(seen.by_shard["a.test"]) == ["p", "q", "r"]
    assert sorted(table) == ["a.test p", "a.test q", "a.test r"]


def test_seen_ids_are_written_only_for_owned_shards() -> None:
    table: dict[str, Any] = {}
    seen = SeenIds(ttl=1000.0, cap=10, table=table, writable=lambda shard: shard == "mine.test")
    seen.add("mine.test", "a", now=1)
    seen.add("theirs.test", "b", now=1)
    assert table == {"mine.test a": 1}


def test_failed_articles_are_records_kept_while_listed_and_bounded_per_site() -> None:
    table: dict[str, Any] = {}
    failed = FailedArticles(ttl=1000.0, cap=3, table=table, writable=lambda shard: shard != "theirs.test")
    failure = ArticleFailure(2, 1_774_000_123.5, "HTTP 404 for https://a.test/x.html", listed=100)
    failed.put("a.test", "x", failure)
    assert ArticleFailure.from_record(json.loads(json.dumps(table["a.test x"]))) == failure  # epoch seconds
    assert ArticleFailure.from_record({"attempts": "two"}) is None and ArticleFailure.from_record(7) is None
    # Not due before its next try; given up after the last attempt whatever the time; a page that
    # robots.txt disallows is never given up (asked again when robots.txt may have changed).
    assert failed.waiting("a.test", "x", now=1_774_000_123.0)
    assert not failed.waiting("a.test", "x", now=1_774_000_124.0) and not failed.waiting("b.test", "x")
    failed.put("a.test", "x", ArticleFailure(ARTICLE_MAX_ATTEMPTS, 0.0, "HTTP 404", listed=100))
    assert failed.waiting("a.test", "x", now=2e9)
    failed.put(
        "a.test", "y", ArticleFailure(0, 500.0, "disallowed by robots.txt", disallowed=True, listed=101)
    )
    assert failed.waiting("a.test", "y", now=499) and not failed.waiting("a.test", "y", now=500)
    # The cap holds at every write: a fourth failure forgets the one unlisted for longest (x).
    failed.put("a.test", "z", ArticleFailure(1, 0.0, "HTTP 500", listed=102))
    failed.put("a.test", "w", ArticleFailure(1, 0.0, "HTTP 500", listed=103))
    assert sorted(failed.by_shard["a.test"]) == ["w", "y", "z"] and sorted(table) == [
        "a.test w",
        "a.test y",
        "a.test z",
    ]
    # Listed again after the refresh period (ttl / 10): kept; the others expire ttl after their listing.
    assert failed.listed("a.test", ["w", "unknown"], now=250) == 1
    assert table["a.test w"]["listed_at"] == 250
    assert failed.sweep("a.test", now=1150, force=True) == 2
    assert sorted(table) == ["a.test w"] and failed.count("a.test") == 1
    # A success forgets it; a shard not ours is kept in memory only.
    failed.forget("a.test", "w")
    failed.put("theirs.test", "v", ArticleFailure(1, 0.0, "HTTP 500", listed=100))
    assert table == {} and failed.has("theirs.test", "v")
    # Loaded back: only the shards owned, unreadable records skipped.
    table.update({"a.test p": failure.to_record(), "b.test q": failure.to_record(), "a.test r": {"x": 1}})
    assert failed.load(lambda shard: shard == "a.test") == 1
    assert failed.by_shard == {"a.test": {"p": failure}}


async def test_a_failing_article_goes_on_to_giving_up_across_restarts() -> None:
    """Each attempt made by a new fetcher on the saved table: the backoff doubles from the feed's
    interval, one dead letter on the first failure, one when giving up, never due again."""
    settings = make_settings()
    table: dict[str, Any] = {}
    service = Recorder(settings)
    feed = Feed(id=feed_id("https://a.test/rss.xml"), url="https://a.test/rss.xml", interval=60)
    link = "https://a.test/news/gone.html"
    aid = article_id(link)
    for attempt in range(1, ARTICLE_MAX_ATTEMPTS + 1):
        store = FetcherState(settings, failed=table)
        assert store.failed.load(store.owns) == (0 if attempt == 1 else 1)  # a restarted fetcher
        if attempt > 1:  # waiting for the next try the last one saved, then due
            assert store.failed.waiting("a.test", aid)
            due_at = time.time() + 60 * 2 ** (attempt - 2) + 0.001  # (the record keeps ms: rounded)
            assert not store.failed.waiting("a.test", aid, now=due_at)
        before = time.time()
        await Fetcher(service, store).article_failed(feed, link, aid, f"HTTP 404 for {link}")  # type: ignore[arg-type]
        saved = ArticleFailure.from_record(table[table_key("a.test", aid)])
        backoff = 60 * 2 ** (attempt - 1)
        assert saved is not None and saved.attempts == attempt
        assert before + backoff - 0.001 <= saved.next_try <= time.time() + backoff + 0.001  # (ms kept)
    assert [letter["reason"] for letter in service.letters] == [
        f"HTTP 404 for {link}",
        f"HTTP 404 for {link} (giving up after {ARTICLE_MAX_ATTEMPTS} attempts)",
    ]
    assert store.failed.waiting("a.test", aid, now=time.time() + 10**9)


def test_a_ten_thousand_item_window_fits() -> None:
    settings = make_settings()
    seen = SeenIds(ttl=settings.fetch_seen_ttl_days * 86400, cap=settings.fetch_seen_max)
    ids = [f"{n:032x}" for n in range(10_000)]
    for aid in ids:
        seen.add("big.test", aid, now=0)
    assert seen.listed("big.test", ids, now=10 * 86400) == 10_000  # refreshed once, all of them
    assert seen.sweep("big.test", now=35 * 86400, force=True) == 0  # listed 25 days ago: kept
    assert seen.count("big.test") == 10_000
    assert seen.sweep("big.test", now=41 * 86400, force=True) == 10_000  # gone from the feed 31 days


def test_feed_state_survives_as_a_record() -> None:
    state = FeedState(
        next_poll=time.monotonic() + 120,
        interval=90.0,
        asked_interval=600.0,
        etag='"v3"',
        last_modified="Sun, 01 Mar 2026 10:00:00 GMT",
        child_validators={"https://x.test/s1.xml": ('"c1"', None)},
        failures=2,
        last_error="HTTP 500 for https://x.test/rss.xml",
        last_error_at=datetime(2026, 3, 1, 10, 0, 1, 5, tzinfo=UTC),
        last_success=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        polls=7,
        last_new=1,
        items_seen=12,
        entries=20,
        backlog=3,
        format="rss rss20",
    )
    record = json.loads(json.dumps(state.to_record()))
    back = FeedState.from_record(record)
    assert abs(back.next_poll - state.next_poll) < 0.5
    back.next_poll = state.next_poll
    assert back == state
    assert FeedState.from_record({}) == FeedState()


def test_shards_and_partitions() -> None:
    assert shard_of("https://www.Example.org/rss.xml") == "example.org"
    assert shard_of("https://news.example.org:8443/feed") == "news.example.org"
    assert partition_of("example.org", 4) == partition_of("example.org", 4)  # stable: a hash, not hash()
    spread = {partition_of(f"site{n}.test", 4) for n in range(50)}
    assert spread == {0, 1, 2, 3}
    assert partition_of("anything", 1) == 0
    # The table's changelog partition is the shard's, wherever the write comes from.
    assert ShardedTable.partition_for_key(_FakeTable(4), table_key("example.org", "x")) == partition_of(
        "example.org", 4
    )


class _FakeTable:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions


def test_fetcher_state_owns_the_assigned_partitions_only() -> None:
    settings = make_settings(topic_partitions=4)
    feeds: dict[str, Any] = {}
    seen: dict[str, Any] = {}
    hosts = [f"h{n}.test" for n in range(40)]
    mine = next(h for h in hosts if partition_of(h, 4) == 1)
    theirs = next(h for h in hosts if partition_of(h, 4) == 2)
    seen[table_key(mine, "a1")] = 100
    seen[table_key(theirs, "b1")] = 100
    failed = {
        table_key(host, "f1"): ArticleFailure(1, 0.0, "HTTP 500").to_record() for host in (mine, theirs)
    }
    store = FetcherState(settings, feeds=feeds, seen=seen, failed=failed)
    assert not store.ready and not store.owns(mine)
    for host in (mine, theirs):
        store.put_feed(Feed(id=feed_id(f"http://{host}/rss.xml"), url=f"http://{host}/rss.xml"))
    store.assign({1})
    assert store.ready and store.owns(mine) and not store.owns(theirs)
    assert [f.url for f, _ in store.owned_feeds()] == [f"http://{mine}/rss.xml"]
    assert store.seen.has(mine, "a1") and not store.seen.has(theirs, "b1")
    assert store.failed.has(mine, "f1") and not store.failed.has(theirs, "f1")
    mine_feed = next(f for f, _ in store.owned_feeds())
    store.save_state(mine_feed, FeedState(polls=3))
    assert feeds[table_key(mine, mine_feed.id)]["state"]["polls"] == 3
    theirs_feed = Feed(id=feed_id(f"http://{theirs}/rss.xml"), url=f"http://{theirs}/rss.xml")
    store.save_state(theirs_feed, FeedState(polls=5))
    assert feeds[table_key(theirs, theirs_feed.id)].get("state") is None  # not ours: not written
    assert store.remove_feed(mine_feed.id) == mine_feed.url
    store.save_state(mine_feed, FeedState(polls=4))  # a poll ending after the removal
    assert table_key(mine, mine_feed.id) not in feeds  # does not bring the feed back
    store.revoke()
    assert not store.ready and not store.owns(mine) and not store.failed.has(mine, "f1")


class _Offsets:
    """The feeds topic's ends and committed offsets, as a test sets them."""

    def __init__(self, ends: dict[int, int], committed: dict[int, int]) -> None:
        self.end = ends
        self.done = committed
        self.asked = 0

    async def ends(self, partitions: set[int]) -> dict[int, int]:
        self.asked += 1
        return {p: self.end[p] for p in partitions}

    def committed(self, partition: int) -> int | None:
        return self.done.get(partition)


async def test_polling_waits_for_the_feeds_topic_read_to_where_it_was_at_the_assignment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offsets = _Offsets(ends={0: 5, 1: 3}, committed={1: 3})
    catch_up = FeedsCatchUp(offsets)
    # The feeds file not on the topic yet (its tombstones would come after the ends): not asked.
    assert not await catch_up.caught_up({0, 1}, published=False) and offsets.asked == 0
    assert not await catch_up.caught_up({0, 1})  # partition 0: records 0-4 to read
    catch_up.record(0, 3)
    assert not await catch_up.caught_up({0, 1})
    offsets.end[0] = 9  # written since the assignment: not waited for
    catch_up.record(0, 4)
    assert await catch_up.caught_up({0, 1}) and offsets.asked == 1
    # The next assignment asks again; a committed offset at the end is caught up too.
    catch_up.reset()
    offsets.done[0] = 9
    assert await catch_up.caught_up({0, 1}) and offsets.asked == 2
    catch_up.reset()
    assert await catch_up.caught_up(set())  # no partition: nothing to wait for
    # Never there (the agent stuck): polling goes on after CATCH_UP_MAX seconds, saying so.
    catch_up.reset()
    offsets.end[0] = 10
    assert not await catch_up.caught_up({0})
    monkeypatch.setattr("wirewatch.fetcher.state.CATCH_UP_MAX", 0.0)
    assert await catch_up.caught_up({0})


def test_the_fetcher_tables_are_sharded_and_in_memory_whatever_the_store(tmp_path: Path) -> None:
    from wirewatch.fetcher.service import build

    settings = make_settings(kafka_bootstrap="127.0.0.1:9", table_store="rocksdb://", data_dir=tmp_path)
    made = build(settings)
    for table in (
        made.store.feeds_table,
        made.store.seen_table,
        made.store.failed_table,
        made.backfills.table,
    ):
        assert isinstance(table, ShardedTable)
        assert type(table.data).__module__ == "faust.stores.memory"  # the poll loop writes outside agents
    assert made.service.app.conf.producer_max_batch_size > 1  # batching: real Kafka's end offsets are right
    tansu = build(settings.model_copy(update={"kafka_producer_batching": False}))
    assert tansu.service.app.conf.producer_max_batch_size == 1  # one record per request on tansu


def test_recent_keys() -> None:
    recent: RecentKeys[str] = RecentKeys(2)
    recent.update(["a", "b", "c"])
    assert "a" not in recent and "b" in recent and "c" in recent and len(recent) == 2


async def test_live_requests_go_before_low_priority_ones() -> None:
    gate = HostGate(1)
    order: list[str] = []

    async def request(name: str, low: bool) -> None:
        async with gate.slot(0.01, low=low):
            order.append(name)
            await asyncio.sleep(0.02)

    first = asyncio.create_task(request("live-1", False))
    await asyncio.sleep(0)
    tasks = [
        asyncio.create_task(request("backfill-1", True)),
        asyncio.create_task(request("backfill-2", True)),
    ]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(request(f"live-{n}", False)) for n in (2, 3)]
    await asyncio.gather(first, *tasks)
    # The backfill requests waited for every live one that was waiting, and went one at a time.
    assert order == ["live-1", "live-2", "live-3", "backfill-1", "backfill-2"]


class _Topic:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes | None, int | None]] = []

    async def send(self, *, key: bytes, value: bytes | None, partition: int | None = None) -> Any:
        self.sent.append((key, value, partition))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_the_publisher_sends_what_changed_and_tombstones_what_left(tmp_path: Path) -> None:
    settings = make_settings(feeds_file=tmp_path / "feeds.yaml")
    topic = _Topic()
    publisher = FeedsPublisher(settings, topic)
    kept = Feed(id=feed_id("https://a.test/rss.xml"), url="https://a.test/rss.xml")
    changed = Feed(id=feed_id("https://b.test/rss.xml"), url="https://b.test/rss.xml", interval=60)
    gone = Feed(id=feed_id("https://c.test/rss.xml"), url="https://c.test/rss.xml")
    new = Feed(id=feed_id("https://d.test/rss.xml"), url="https://d.test/rss.xml")
    before = {kept.id: kept, changed.id: changed.model_copy(update={"interval": 30}), gone.id: gone}
    assert await publisher.publish([kept, changed, new], before) == (2, 1)
    assert [(k.decode(), v is None) for k, v, _ in topic.sent] == [
        (changed.id, False),
        (new.id, False),
        (gone.id, True),
    ]
    assert [p for _, _, p in topic.sent] == [partition_of(shard_of(f.url), 4) for f in (changed, new, gone)]
    # No feeds file: nothing published (an instance without the file follows the topic).
    assert await publisher.sync() is False and len(topic.sent) == 3


async def test_a_feeds_file_edited_into_an_invalid_state_keeps_the_feeds_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "feeds.yaml"
    publisher = FeedsPublisher(make_settings(feeds_file=path), _Topic())
    published: list[list[str]] = []

    async def topic_now(settings: Settings) -> dict[str, Feed]:
        return {}

    async def publish(listed: list[Feed], current: dict[str, Feed]) -> tuple[int, int]:
        published.append([f.url for f in listed])
        return len(listed), 0

    monkeypatch.setattr("wirewatch.fetcher.feedsync.read_feeds_topic", topic_now)
    monkeypatch.setattr(publisher, "publish", publish)

    def invalid() -> float | None:
        return REGISTRY.get_sample_value("wirewatch_fetcher_feeds_file_invalid")

    good = [f"https://outlet{n}.example/rss.xml" for n in range(6)]
    save_feeds(path, [Feed(id=feed_id(url), url=url) for url in good])
    assert await publisher.sync() is True
    assert publisher.problem is None and invalid() == 0

    # One bad entry among six good ones: nothing published, the reason at ERROR, the gauge at 1.
    path.write_text(yaml.safe_dump({"feeds": [*good, {"url": "not a url"}]}), encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="wirewatch.fetcher.feedsync"):
        assert await publisher.sync() is False
    assert published == [good]
    assert publisher.problem == f"{path}: feed #7: not an http(s) URL: 'not a url'"
    assert invalid() == 1
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert getattr(record, "error", None) == publisher.problem
    assert await publisher.sync() is False  # (unchanged: not read, nor logged, again)

    save_feeds(path, [Feed(id=feed_id(url), url=url) for url in good[:5]])  # fixed
    assert await publisher.sync() is True
    assert published == [good, good[:5]] and publisher.problem is None and invalid() == 0


# --- restarts, on the real fetcher -----------------------------------------------------------------

HOSTS = ["127.0.0.1", "127.0.0.2"]


@pytest.fixture
def site() -> Iterator[Site]:
    news = Site.start(HOSTS)
    yield news
    news.close()


def test_a_restart_re_emits_nothing_and_keeps_validators_and_health(
    servers: LocalServers, site: Site, tmp_path: Path
) -> None:
    fetchers = Fetchers(servers, tmp_path, WIREWATCH_POLL_INTERVAL="1", WIREWATCH_POLL_INTERVAL_MIN="1")
    urls = [site.feed(host, "/rss.xml", *(f"s{n}" for n in range(3))) for host in HOSTS]
    save_feeds(fetchers.feeds_file, [Feed(id=feed_id(u), url=u, interval=1) for u in urls])
    try:
        fetchers.start("one")
        fetchers.wait_healthy("one")
        wait_for(lambda: len(fetchers.raw_articles()) == 6, timeout=45, what="the 6 articles")
        health = wait_for(lambda: fetchers.polled("one", 3), what="three polls of each feed")
        fetchers.stop("one")  # SIGTERM
        stopped = time.monotonic()

        # While it is down, one feed publishes one more article.
        site.feed(HOSTS[0], "/rss.xml", "late")
        fetchers.start("one")
        fetchers.wait_healthy("one")
        wait_for(lambda: len(fetchers.raw_articles()) >= 7, timeout=30, what="the article added meanwhile")

        # Killed (no goodbye at all), then started again: still nothing twice.
        time.sleep(2.0)
        fetchers.kill("one")
        fetchers.start("one")
        fetchers.wait_healthy("one")
        after = wait_for(lambda: fetchers.polled("one", 2), what="the restarted fetcher polling")
        time.sleep(2.0)
        articles = fetchers.raw_articles()

        # A feed removed from the file (a tombstone on the feeds topic) is no longer polled.
        save_feeds(fetchers.feeds_file, [Feed(id=feed_id(urls[0]), url=urls[0], interval=1)])
        wait_for(
            lambda: [r["url"] for r in fetchers.page("one", "/feeds") or []] == [urls[0]],
            what="the removed feed gone from /feeds",
        )
        time.sleep(1.5)
        removed_polls = site.count(HOSTS[1], "/rss.xml")
        time.sleep(2.5)
        assert site.count(HOSTS[1], "/rss.xml") == removed_polls
    finally:
        fetchers.stop_all()

    ids = [a.id for a in articles]
    assert len(ids) == len(set(ids)) == 7, f"articles produced more than once: {len(ids)} messages"
    for host in HOSTS:
        for slug in ("s0", "s1", "s2"):
            assert site.count(host, f"/news/{slug}.html") == 1  # never fetched again
    assert article_id(site.base(HOSTS[0]) + "/news/late.html") in ids
    # The validators survived: the first request after each restart was conditional.
    restarted = [(t, h) for t, h in site.requests(HOSTS[1], "/rss.xml") if t > stopped]
    assert restarted and restarted[0][1].get("If-None-Match"), "first poll after a restart not conditional"
    # ... and so did the health record and the schedule.
    before = {r["url"]: r for r in health}
    for record in after:
        assert record["polls"] > before[record["url"]]["polls"]
        assert record["items_seen"] >= 3 and record["format"] == "rss rss20"
        assert record["last_success"] is not None


def test_a_refused_feeds_file_is_named_by_readyz_and_feeds_and_the_fetcher_stays_ready(
    servers: LocalServers, site: Site, tmp_path: Path
) -> None:
    fetchers = Fetchers(servers, tmp_path, WIREWATCH_POLL_INTERVAL="1", WIREWATCH_POLL_INTERVAL_MIN="1")
    url = site.feed(HOSTS[0], "/rss.xml", "s0")
    save_feeds(fetchers.feeds_file, [Feed(id=feed_id(url), url=url, interval=1)])

    def feeds_page() -> httpx.Response:
        return httpx.get(fetchers.url("one") + "/feeds", timeout=5)

    try:
        fetchers.start("one")
        fetchers.wait_healthy("one")
        wait_for(lambda: fetchers.polled("one", 1), what="the feed polled")
        assert fetchers.page("one", "/readyz") == {"service": "fetcher", "ready": True, "warnings": {}}
        assert FEEDS_FILE_ERROR_HEADER not in feeds_page().headers

        # Edited into an invalid state (a YAML error: several lines, not all ASCII).
        broken = f"feeds:\n  - url: {url}\n    name: [Le Monde \u00e0 la une\n"
        fetchers.feeds_file.write_text(broken, encoding="utf-8")
        with pytest.raises(FeedsFileError) as refused:
            load_feeds(fetchers.feeds_file)
        problem = str(refused.value)
        assert "\n" in problem and "à" in problem
        ready = wait_for(
            lambda: (lambda r: r if r and r["warnings"] else None)(fetchers.page("one", "/readyz")),
            what="/readyz naming the refused feeds file",
        )
        # Still ready (200): the instance polls the feeds last published.
        assert ready == {"service": "fetcher", "ready": True, "warnings": {"feeds_file": problem}}
        response = feeds_page()
        assert response.status_code == 200
        assert json.loads(response.headers[FEEDS_FILE_ERROR_HEADER]) == problem
        polls = response.json()[0]["polls"]
        assert [r["url"] for r in response.json()] == [url]  # the body: the same list of records
        wait_for(lambda: fetchers.polled("one", polls + 2), what="the last good feed still polled")
        # `wirewatch status` shows it under the fetcher, read from the instance's /readyz.
        status_dir = tmp_path / "status"
        write_endpoints(
            status_dir / "endpoints.json",
            {"pid": 1, "services": {"fetcher": {"health": fetchers.url("one") + "/healthz"}}},
        )
        report = asyncio.run(collect_status(fetchers.settings.model_copy(update={"data_dir": status_dir})))
        assert report["services"]["fetcher"]["warnings"] == {"feeds_file": problem}

        save_feeds(fetchers.feeds_file, [Feed(id=feed_id(url), url=url, interval=1)])  # fixed
        wait_for(
            lambda: fetchers.page("one", "/readyz") == {"service": "fetcher", "ready": True, "warnings": {}},
            what="/readyz clear again",
        )
        assert FEEDS_FILE_ERROR_HEADER not in feeds_page().headers
    finally:
        fetchers.stop_all()


def _rss(site: Site, host: str, links: list[str]) -> str:
    """An RSS feed at ``host``/rss.xml listing ``links``, served without validators: every poll
    reads it whole (a 304 would not look at its articles)."""
    items = "".join(
        f"<item><title>{n}</title><link>{html.escape(link)}</link>"
        f"<pubDate>{format_datetime(START + timedelta(hours=n))}</pubDate></item>"
        for n, link in enumerate(links)
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>{host}</title>{items}</channel></rss>'
    with site.lock:
        site.routes[(host, "/rss.xml")] = Route(body.encode(), "application/rss+xml")
    return site.base(host) + "/rss.xml"


@pytest.mark.timeout(180)
def test_a_failing_article_keeps_its_backoff_and_dead_letters_across_restarts(
    servers: LocalServers, site: Site, tmp_path: Path
) -> None:
    """The operator's case: an article page that keeps failing (HTTP 404) and one robots.txt
    disallows, the fetcher stopped, then killed, and started again each time. The failure is
    remembered in the ``failed`` table: retried when the backoff recorded before the restart says
    (the feed's 2 s interval, doubling: 2, 4, 8, 16 s), given up after the fifth attempt, and
    dead-lettered twice in all (first failure, giving up); the disallowed page once."""
    host = HOSTS[0]
    fetchers = Fetchers(servers, tmp_path, WIREWATCH_POLL_INTERVAL="2", WIREWATCH_POLL_INTERVAL_MIN="1")
    site.serve(host, "/robots.txt", b"User-agent: *\nDisallow: /private/\n", "text/plain")
    ok = site.article(host, "ok")
    broken = site.base(host) + "/news/broken.html"  # no route: 404
    private = site.base(host) + "/private/secret.html"
    url = _rss(site, host, [ok, broken, private])
    save_feeds(fetchers.feeds_file, [Feed(id=feed_id(url), url=url, interval=2)])

    def tries() -> list[float]:
        return [t for t, _ in site.requests(host, "/news/broken.html")]

    try:
        fetchers.start("one")
        fetchers.wait_healthy("one")
        wait_for(
            lambda: len(tries()) >= 3, timeout=45, interval=0.1, what="three attempts at the broken page"
        )
        time.sleep(0.5)  # the third failure saved
        fetchers.stop("one")  # SIGTERM
        third = tries()[2]
        assert len(tries()) == 3 and len(fetchers.dead_letters(broken)) == 1
        restarted = time.monotonic()
        fetchers.start("one")
        fetchers.wait_healthy("one")
        fourth = wait_for(lambda: tries()[3:4], timeout=45, interval=0.1, what="the fourth attempt")[0]
        first_poll = next(t for t, _ in site.requests(host, "/rss.xml") if t > restarted)
        # Not at the first poll after the restart: when the third failure said (8 s after it).
        assert fourth >= third + 8 - 0.3, f"tried again {fourth - third:.1f} s after the third failure"
        assert fourth <= max(third + 8, first_poll) + 2 + 2.0
        assert len(fetchers.dead_letters(broken)) == 1  # still failing the same way: nothing new

        time.sleep(1.0)  # the fourth failure saved
        fetchers.kill("one")  # no goodbye at all
        fetchers.start("one")
        fetchers.wait_healthy("one")
        fifth = wait_for(lambda: tries()[4:5], timeout=60, interval=0.1, what="the fifth attempt")[0]
        assert fifth >= fourth + 16 - 0.3, f"tried again {fifth - fourth:.1f} s after the fourth failure"
        polls = site.count(host, "/rss.xml")
        wait_for(lambda: site.count(host, "/rss.xml") >= polls + 3, what="three more polls")
        letters = fetchers.dead_letters(broken)
        articles = fetchers.raw_articles()
    finally:
        fetchers.stop_all()

    assert len(tries()) == ARTICLE_MAX_ATTEMPTS  # given up: not tried again
    assert [letter.reason for letter in letters] == [
        f"HTTP 404 for {broken}",
        f"HTTP 404 for {broken} (giving up after {ARTICLE_MAX_ATTEMPTS} attempts)",
    ]
    assert [letter.reason for letter in fetchers.dead_letters(private)] == ["disallowed by robots.txt"]
    assert site.count(host, "/private/secret.html") == 0
    assert sum(a.url == ok for a in articles) == 1


def test_the_failed_articles_of_a_site_are_bounded_in_the_table(
    servers: LocalServers, tmp_path: Path
) -> None:
    """A site listing more broken links than ``WIREWATCH_FETCH_SEEN_MAX``: the ``failed`` table
    keeps that many of its failures (the changelog on the broker, and what a restarted fetcher
    loads), the others deleted as they went past the cap."""
    host = "127.0.0.5"  # a site of its own: the tables outlive each test (one broker per module)
    site = Site.start([host])
    fetchers = Fetchers(servers, tmp_path, WIREWATCH_FETCH_SEEN_MAX="3")
    broken = [f"{site.base(host)}/news/gone-{n}.html" for n in range(6)]
    url = _rss(site, host, broken)
    save_feeds(fetchers.feeds_file, [Feed(id=feed_id(url), url=url, interval=600)])

    def loaded() -> list[int]:
        return [
            line["failed_articles"]
            for line in fetchers.log_lines("one")
            if line.get("msg") == "fetcher partitions assigned"
        ]

    try:
        fetchers.start("one")
        fetchers.wait_healthy("one")
        wait_for(lambda: all(fetchers.dead_letters(link) for link in broken), what="the six dead letters")
        time.sleep(1.0)
        fetchers.stop("one")
        fetchers.start("one")
        fetchers.wait_healthy("one")
        before, after = wait_for(lambda: loaded()[:2] if len(loaded()) >= 2 else None, what="the restart")
    finally:
        fetchers.stop_all()
        site.close()
    assert after - before == 3  # the other sites' failures, from the tests before, plus 3
    latest: dict[str, Any] = {}
    for key, value in run(read_topic(fetchers.settings, "wirewatch-fetcher-failed-changelog", timeout=5)):
        name = (key or b"").decode().strip('"')
        if name.startswith(host + " "):
            latest[name] = json.loads(value) if value else None
    assert len(latest) == 6  # each failure was written; three were deleted past the cap
    kept = [value for value in latest.values() if value is not None]
    assert len(kept) == 3 and all(
        v["attempts"] == 1 and v["reason"].startswith("HTTP 404 for ") for v in kept
    )
    assert all(site.count(host, f"/news/gone-{n}.html") == 1 for n in range(6))


def test_a_feed_removed_while_the_fetcher_is_stopped_is_not_polled_again(
    servers: LocalServers, site: Site, tmp_path: Path
) -> None:
    """``wirewatch feeds remove`` with the fetcher stopped: its tombstone, published as the fetcher
    starts, reaches the feeds table after the assignment; no feed is polled before it has."""
    fetchers = Fetchers(servers, tmp_path, WIREWATCH_POLL_INTERVAL="1", WIREWATCH_POLL_INTERVAL_MIN="1")
    urls = [site.feed(host, "/rss.xml", "s0") for host in HOSTS]
    save_feeds(fetchers.feeds_file, [Feed(id=feed_id(u), url=u, interval=1) for u in urls])
    try:
        fetchers.start("one")
        fetchers.wait_healthy("one")
        wait_for(lambda: fetchers.polled("one", 2), what="two polls of each feed")
        fetchers.stop("one")
        save_feeds(fetchers.feeds_file, [Feed(id=feed_id(urls[0]), url=urls[0], interval=1)])
        removed = site.count(HOSTS[1], "/rss.xml")
        kept = site.count(HOSTS[0], "/rss.xml")
        fetchers.start("one")
        fetchers.wait_healthy("one")
        wait_for(lambda: site.count(HOSTS[0], "/rss.xml") >= kept + 3, what="three polls of the kept feed")
        assert [r["url"] for r in fetchers.page("one", "/feeds")] == [urls[0]]
    finally:
        fetchers.stop_all()
    assert site.count(HOSTS[1], "/rss.xml") == removed
