"""The fetcher's HTTP layer against loopback servers started here: SSRF guard, caps, politeness.

Every server is an aiohttp app on 127.0.0.1 (port 0) in the test's own event loop; it records
when each request arrived, so spacing and retry tests measure what the server saw.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import itertools
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

import brotli
import pytest
import zstandard
from aiohttp import web

from conftest import make_settings
from wirewatch.core.ids import article_id
from wirewatch.core.models import Feed
from wirewatch.core.settings import Settings
from wirewatch.fetcher.errors import (
    BodyTooLargeError,
    ContentTypeError,
    DeadlineError,
    FetchError,
    HTTPStatusError,
    RedirectError,
    RobotsDisallowedError,
    RobotsUnavailableError,
    TransportError,
    UnsafeURLError,
)
from wirewatch.fetcher.http import HttpFetcher, content_type_allowed
from wirewatch.fetcher.politeness import MAX_RETRY_AFTER, parse_retry_after
from wirewatch.fetcher.safety import AddressPolicy, forbidden_kind
from wirewatch.fetcher.service import FeedState, Fetcher

pytestmark = pytest.mark.timeout(10)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOOPBACK = ["127.0.0.1/32"]


@dataclass
class Server:
    url: str
    hits: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, path)

    def count(self, path: str) -> int:
        return sum(1 for _, p in self.hits if p == path)

    def times(self, path: str) -> list[float]:
        return [t for t, p in self.hits if p == path]


Serve = Callable[..., Awaitable[Server]]


@dataclass
class EndlessBody:
    """A page whose handler (:meth:`respond`) streams ``chunk`` after ``prefix`` until ``total``
    bytes are sent or the client hangs up (``finished`` is set then); ``sent`` counts the chunks'
    bytes. With ``declare_length`` the response says its length up front; without, it is chunked."""

    total: int
    chunk: bytes
    prefix: bytes = b""
    declare_length: bool = True
    sent: int = 0
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    async def respond(self, request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "text/html"}
        if self.declare_length:
            headers["Content-Length"] = str(len(self.prefix) + self.total)
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        try:
            await response.write(self.prefix)
            while self.sent < self.total:
                await response.write(self.chunk)
                self.sent += len(self.chunk)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.finished.set()
        return response


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def start(routes: dict[str, Handler], url_host: str = "127.0.0.1") -> Server:
        server = Server("")

        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            server.hits.append((time.monotonic(), request.path))
            return await handler(request)

        app = web.Application(middlewares=[record])
        for path, handler in routes.items():
            app.router.add_get(path, handler)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        server.url = f"http://{url_host}:{runner.addresses[0][1]}"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "fetch_allow_hosts": LOOPBACK,
        "fetch_host_delay": 0.0,
        "fetch_retries": 0,
        "fetch_retry_backoff": 0.01,
        "fetch_timeout": 2.0,
    }
    values.update(overrides)
    return make_settings(**values)


def html(body: str = "<html><body><p>hello</p></body></html>", **kwargs: Any) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text=body, content_type="text/html", **kwargs)

    return handler


def redirect(location: str, status: int = 302) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return handler


# --- SSRF guard -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.5.5.5", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not globally routable"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 wrapping 169.254.169.254
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 wrapping 127.0.0.1
    ],
)
def test_internal_addresses_are_forbidden(address: str, kind: str) -> None:
    found = forbidden_kind(ipaddress.ip_address(address))
    assert found is not None and found.startswith(kind)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert forbidden_kind(ipaddress.ip_address(address)) is None


def test_allow_list_entries() -> None:
    policy = AddressPolicy.from_entries(["127.0.0.1/32", " LocalHost. ", "::1", "10.0.0.0/8", ""])
    assert policy.host_allowed("localhost") and not policy.host_allowed("example.com")
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("10.9.9.9")) is None
    assert policy.refusal(ipaddress.ip_address("::1")) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.2")) == "loopback"
    with pytest.raises(ValueError, match="CIDR"):
        AddressPolicy.from_entries(["10.0.0.0/33"])
    assert AddressPolicy.from_entries(["10.0.0.1 .", "LocalHost. . "]) == AddressPolicy.from_entries(
        ["10.0.0.1", "localhost"]
    )
    with pytest.raises(ValueError, match="not a host name"):
        AddressPolicy.from_entries(["local host"])


def test_allow_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIREWATCH_FETCH_ALLOW_HOSTS", "127.0.0.1/32, localhost")
    assert make_settings().fetch_allow_hosts == ["127.0.0.1/32", "localhost"]
    monkeypatch.setenv("WIREWATCH_FETCH_ALLOW_HOSTS", '["::1"]')
    assert make_settings().fetch_allow_hosts == ["::1"]


async def test_loopback_is_refused_without_the_allow_list(serve: Serve) -> None:
    server = await serve({"/": html()})
    async with HttpFetcher(settings(fetch_allow_hosts=[])) as http:
        with pytest.raises(UnsafeURLError, match=r"127\.0\.0\.1 is a loopback address"):
            await http.get(server.url + "/", "article")
    assert server.hits == []  # refused before any connection


async def test_a_name_resolving_to_loopback_is_refused(serve: Serve) -> None:
    server = await serve({"/": html()}, url_host="localhost")
    async with HttpFetcher(settings(fetch_allow_hosts=[])) as http:
        with pytest.raises(UnsafeURLError, match=r"localhost resolves to .*a loopback address"):
            await http.get(server.url + "/", "article")
    assert server.hits == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]:8080/",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
    ],
)
async def test_metadata_private_and_odd_schemes_are_refused(url: str) -> None:
    async with HttpFetcher(settings()) as http:  # loopback allowed: none of these are
        with pytest.raises(UnsafeURLError, match="refusing to fetch"):
            await http.get(url, "article")


async def test_the_allow_list_permits_loopback(serve: Serve) -> None:
    server = await serve({"/": html()})
    async with HttpFetcher(settings()) as http:
        page = await http.get(server.url + "/", "article")
    assert page.status == 200 and b"hello" in page.body


@pytest.mark.parametrize(
    "target", ["http://127.0.0.1:{port}/secret", "http://169.254.169.254/latest/meta-data/"]
)
async def test_a_redirect_to_an_internal_address_is_refused(serve: Serve, target: str) -> None:
    # Only the name "localhost" is allowed: its redirect to a bare internal address is not.
    server = await serve({"/": html(), "/secret": html("secret")}, url_host="localhost")
    port = server.url.rsplit(":", 1)[1]
    server_routes_redirect = await serve({"/go": redirect(target.format(port=port))}, url_host="localhost")
    async with HttpFetcher(settings(fetch_allow_hosts=["localhost"])) as http:
        assert (await http.get(server.url + "/", "article")).status == 200  # the name itself is fine
        with pytest.raises(UnsafeURLError, match="refusing to fetch"):
            await http.get(server_routes_redirect.url + "/go", "article")
    assert server.count("/secret") == 0


async def test_the_connect_time_guard_catches_dns_rebinding(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name passes the pre-request check (as if it resolved to a public address then), but
    resolves to loopback when the connection is opened: the transport refuses to connect."""
    server = await serve({"/": html()}, url_host="localhost")

    async def passes(self: AddressPolicy, url: Any) -> Any:
        import httpx

        return httpx.URL(url)

    monkeypatch.setattr(AddressPolicy, "check_url", passes)
    async with HttpFetcher(settings(fetch_allow_hosts=[])) as http:
        with pytest.raises(UnsafeURLError, match=r"refusing to connect to localhost: .* loopback"):
            await http.get(server.url + "/robots.txt", "robots")
        with pytest.raises(UnsafeURLError, match=r"refusing to connect to localhost: .* loopback"):
            await http.get(server.url + "/", "article")  # its robots.txt request is refused first
    assert server.hits == []


# --- redirects ----------------------------------------------------------------------------------


async def test_redirects_are_followed(serve: Serve) -> None:
    server = await serve({"/a": redirect("/b", 301), "/b": redirect("/c", 307), "/c": html()})
    async with HttpFetcher(settings()) as http:
        page = await http.get(server.url + "/a", "article")
    assert page.url == server.url + "/c" and page.status == 200


async def test_a_redirected_feeds_relative_links_resolve_against_where_it_was_read(serve: Serve) -> None:
    # http://A/feed redirects to http://B/news/rss.xml (another port: another origin); its items'
    # links are relative: a browser, or feedparser, resolves them against the final URL.
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        "<item><title>Relative</title><link>a1.html</link></item>"
        "<item><title>Root-relative</title><link>/a1.html</link></item></channel></rss>"
    )

    async def feed(request: web.Request) -> web.StreamResponse:
        return web.Response(text=rss, content_type="application/rss+xml")

    moved = await serve({"/news/rss.xml": feed})
    origin = await serve({"/feed": redirect(moved.url + "/news/rss.xml", 301)})
    fetcher = Fetcher(Recorder(settings()))  # type: ignore[arg-type]
    async with HttpFetcher(fetcher.settings) as http:
        page, parsed = await fetcher.read_feed(http, origin.url + "/feed", None)
    assert page.url == moved.url + "/news/rss.xml" and parsed is not None
    assert [e.link for e in parsed.entries] == [moved.url + "/news/a1.html", moved.url + "/a1.html"]
    assert origin.count("/feed") == 1 and moved.count("/news/rss.xml") == 1


async def test_a_redirect_loop_is_refused(serve: Serve) -> None:
    server = await serve({"/a": redirect("/b"), "/b": redirect("/a")})
    async with HttpFetcher(settings()) as http:
        with pytest.raises(RedirectError, match="redirect loop"):
            await http.get(server.url + "/a", "article")
    assert server.count("/a") == 1 and server.count("/b") == 1


async def test_too_many_redirects(serve: Serve) -> None:
    async def onwards(request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": f"/r/{int(request.match_info['n']) + 1}"})

    server = await serve({"/r/{n}": onwards})
    async with HttpFetcher(settings(fetch_max_redirects=3)) as http:
        with pytest.raises(RedirectError, match="more than 3 redirects"):
            await http.get(server.url + "/r/0", "article")
    assert len([p for _, p in server.hits if p.startswith("/r/")]) == 4  # the URL and 3 redirects


# --- caps -----------------------------------------------------------------------------------------


async def test_a_huge_body_is_cut_at_the_cap_without_reading_it_all(serve: Serve) -> None:
    total = 50 * 1024 * 1024
    huge = EndlessBody(total, b"x" * 65536)
    server = await serve({"/huge": huge.respond})
    started = time.monotonic()
    async with HttpFetcher(settings(fetch_max_bytes=1_000_000)) as http:
        with pytest.raises(BodyTooLargeError, match="larger than 1000000 bytes"):
            await http.get(server.url + "/huge", "article")
    assert time.monotonic() - started < 2
    await asyncio.wait_for(huge.finished.wait(), 5)
    assert huge.sent < total / 2  # the client hung up long before the end


def _gzip_bomb(decompressed: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1024 * 1024)
    parts = [packer.compress(block) for _ in range(decompressed // len(block))]
    return b"".join(parts) + packer.flush()


async def test_a_gzip_bomb_is_cut_at_the_cap(serve: Serve) -> None:
    bomb = _gzip_bomb(200 * 1024 * 1024)
    assert len(bomb) < 300_000

    async def bombed(request: web.Request) -> web.StreamResponse:
        return web.Response(body=bomb, headers={"Content-Type": "text/html", "Content-Encoding": "gzip"})

    server = await serve({"/bomb": bombed})
    cap = 2_000_000
    async with HttpFetcher(settings(fetch_max_bytes=cap)) as http:
        tracemalloc.start()
        try:
            with pytest.raises(BodyTooLargeError, match=f"larger than {cap} bytes"):
                await http.get(server.url + "/bomb", "article")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # Inflated in small steps: memory stays near the cap, not near 200 MB (nor near what one
    # 64 KiB compressed chunk inflates to in a single unbounded step, about 64 MB).
    assert peak < 3 * cap + 4 * 1024 * 1024


@pytest.mark.parametrize(
    "encoding", ["gzip", "deflate", "raw-deflate", "gzip, gzip", "br", "zstd", "zstd-frames", "br, gzip"]
)
async def test_compressed_bodies_are_decoded(serve: Serve, encoding: str) -> None:
    text = ("<html><body>" + "<p>café au lait</p>" * 2000 + "</body></html>").encode()
    if encoding == "br":
        body = brotli.compress(text)
    elif encoding == "br, gzip":  # brotli first, then gzip: decoded in the reverse order
        body = gzip.compress(brotli.compress(text))
    elif encoding == "zstd":
        body = zstandard.ZstdCompressor().compress(text)
    elif encoding == "zstd-frames":  # two zstd frames back to back
        half = len(text) // 2
        packer = zstandard.ZstdCompressor()
        body = packer.compress(text[:half]) + packer.compress(text[half:])
    elif encoding == "gzip":
        body = gzip.compress(text)
    elif encoding == "gzip, gzip":
        body = gzip.compress(gzip.compress(text))
    elif encoding == "deflate":
        body = zlib.compress(text)
    else:
        packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        body = packer.compress(text) + packer.flush()
    header = {"raw-deflate": "deflate", "zstd-frames": "zstd"}.get(encoding, encoding)
    asked: list[str] = []

    async def packed(request: web.Request) -> web.StreamResponse:
        asked.append(request.headers.get("Accept-Encoding", ""))
        return web.Response(body=body, headers={"Content-Type": "text/html", "Content-Encoding": header})

    server = await serve({"/p": packed})
    async with HttpFetcher(settings()) as http:
        assert (await http.get(server.url + "/p", "article")).body == text
    assert asked == ["gzip, deflate, br, zstd"]


def _brotli_bomb(decompressed: int) -> bytes:
    return bytes(brotli.compress(bytes(decompressed), quality=5))


def _zstd_bomb(decompressed: int) -> bytes:
    return bytes(zstandard.ZstdCompressor(level=3).compress(bytes(decompressed)))


@pytest.mark.parametrize(("encoding", "make"), [("br", _brotli_bomb), ("zstd", _zstd_bomb)])
async def test_brotli_and_zstd_bombs_are_cut_at_the_cap(serve: Serve, encoding: str, make: Any) -> None:
    bomb = make(200 * 1024 * 1024)
    assert len(bomb) < 300_000

    async def bombed(request: web.Request) -> web.StreamResponse:
        return web.Response(body=bomb, headers={"Content-Type": "text/html", "Content-Encoding": encoding})

    server = await serve({"/bomb": bombed})
    cap = 2_000_000
    async with HttpFetcher(settings(fetch_max_bytes=cap)) as http:
        tracemalloc.start()
        try:
            with pytest.raises(BodyTooLargeError, match=f"larger than {cap} bytes"):
                await http.get(server.url + "/bomb", "article")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 3 * cap + 4 * 1024 * 1024


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip", "compress"])
async def test_a_corrupt_or_unknown_encoding_is_a_clear_error(serve: Serve, encoding: str) -> None:
    async def corrupt(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=b"\xff\x00 definitely not compressed " * 10,
            headers={"Content-Type": "text/html", "Content-Encoding": encoding},
        )

    server = await serve({"/c": corrupt})
    async with HttpFetcher(settings()) as http:
        unknown = encoding == "compress"
        expected = "unsupported content encoding" if unknown else f"cannot decode its {encoding} body"
        with pytest.raises(FetchError, match=expected):
            await http.get(server.url + "/c", "article")


async def test_a_trickling_server_is_cut_at_the_deadline(serve: Serve) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        await response.prepare(request)
        try:
            for _ in range(200):  # one byte every 50 ms: no single read ever times out
                await response.write(b"x")
                await asyncio.sleep(0.05)
        except (ConnectionError, RuntimeError):
            pass
        return response

    server = await serve({"/slow": trickle})
    started = time.monotonic()
    async with HttpFetcher(settings(fetch_timeout=0.8, fetch_retries=2)) as http:
        with pytest.raises(DeadlineError, match=r"no complete response within 0.8 s"):
            await http.get(server.url + "/slow", "article")
    assert 0.7 < time.monotonic() - started < 1.5
    assert server.count("/slow") == 1  # a deadline overrun is not retried


@pytest.mark.parametrize(
    ("kind", "content_type", "allowed"),
    [
        ("article", "text/html; charset=utf-8", True),
        ("article", "application/xhtml+xml", True),
        ("article", None, True),
        ("article", "application/pdf", False),
        ("article", "image/png", False),
        ("article", "application/rss+xml", False),
        ("feed", "application/rss+xml; charset=utf-8", True),
        ("feed", "application/atom+xml", True),
        ("feed", "text/xml", True),
        ("feed", "application/xml", True),
        ("feed", "application/feed+json", True),
        ("feed", "application/json", True),
        ("feed", "text/plain", True),
        ("feed", "text/html", False),
        ("feed", "video/mp4", False),
        ("feed", "application/octet-stream", False),
        ("feed", "application/x-gzip", True),  # a .xml.gz sitemap
        ("feed", "application/gzip", True),
        ("article", "application/gzip", False),
        ("robots", "text/html", True),
    ],
)
def test_content_type_rules(kind: Any, content_type: str | None, allowed: bool) -> None:
    assert content_type_allowed(kind, content_type) is allowed


async def test_a_disallowed_content_type_is_a_clear_error(serve: Serve) -> None:
    async def pdf(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"%PDF-1.7", headers={"Content-Type": "application/pdf"})

    server = await serve({"/doc.pdf": pdf, "/page": html()})
    async with HttpFetcher(settings()) as http:
        with pytest.raises(ContentTypeError, match=r"content type 'application/pdf' is not"):
            await http.get(server.url + "/doc.pdf", "article")
        with pytest.raises(ContentTypeError, match=r"content type 'text/html' is not XML, RSS"):
            await http.get(server.url + "/page", "feed")


# --- politeness ---------------------------------------------------------------------------------


def robots(text: str, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text=text, status=status, content_type="text/plain")

    return handler


async def test_robots_disallow_is_honoured_and_fetched_once(serve: Serve) -> None:
    rules = "User-agent: wirewatch\nDisallow: /private\n\nUser-agent: *\nDisallow: /\n"
    pages = {"/private/a": html(), "/news/a": html(), "/news/b": html()}
    server = await serve({"/robots.txt": robots(rules), **pages})
    async with HttpFetcher(settings()) as http:
        with pytest.raises(RobotsDisallowedError, match=r"disallowed by robots.txt"):
            await http.get(server.url + "/private/a", "article")
        await http.get(server.url + "/news/a", "article")  # our group allows it; "*" would not
        await http.get(server.url + "/news/b", "article")
    assert server.count("/private/a") == 0
    assert server.count("/robots.txt") == 1


async def test_robots_4xx_allows_everything_and_5xx_means_later(serve: Serve) -> None:
    missing = await serve({"/a": html()})  # /robots.txt is a 404
    broken = await serve({"/robots.txt": robots("oops", status=503), "/a": html()}, url_host="localhost")
    async with HttpFetcher(settings(fetch_allow_hosts=[*LOOPBACK, "localhost"])) as http:
        assert (await http.get(missing.url + "/a", "article")).status == 200
        for _ in range(2):
            with pytest.raises(RobotsUnavailableError, match=r"robots.txt unreadable.*HTTP 503"):
                await http.get(broken.url + "/a", "article")
    assert broken.count("/a") == 0
    assert broken.count("/robots.txt") == 1  # the failure is cached for a while


async def test_crawl_delay_spaces_requests_to_one_host(serve: Serve) -> None:
    rules = robots("User-agent: *\nCrawl-delay: 1\n")
    server = await serve({"/robots.txt": rules, "/a": html(), "/b": html()})
    async with HttpFetcher(settings(fetch_host_delay=0.0)) as http:
        await asyncio.gather(http.get(server.url + "/a", "article"), http.get(server.url + "/b", "article"))
    first, second = sorted(server.times("/a") + server.times("/b"))
    assert second - first >= 0.98


async def test_host_delay_and_concurrency_limit(serve: Serve) -> None:
    in_flight = peak = 0

    async def slow(request: web.Request) -> web.StreamResponse:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.3)
        in_flight -= 1
        return web.Response(text="<p>ok</p>", content_type="text/html")

    server = await serve({"/s/{n}": slow})
    async with HttpFetcher(settings(fetch_host_concurrency=2, fetch_host_delay=0.05)) as http:
        await asyncio.gather(*(http.get(f"{server.url}/s/{n}", "article") for n in range(6)))
    assert peak == 2
    starts = sorted(t for t, p in server.hits if p.startswith("/s/"))
    assert all(b - a >= 0.045 for a, b in itertools.pairwise(starts))


async def test_retry_after_on_429_pauses_the_host(serve: Serve) -> None:
    calls = 0

    async def limited(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.Response(status=429, headers={"Retry-After": "1"})
        return web.Response(text="<p>ok</p>", content_type="text/html")

    server = await serve({"/limited": limited, "/other": html()})
    async with HttpFetcher(settings(fetch_retries=0)) as http:
        with pytest.raises(HTTPStatusError, match="HTTP 429") as caught:
            await http.get(server.url + "/limited", "article")
        assert caught.value.status == 429 and caught.value.retry_after == 1.0
        await http.get(server.url + "/other", "article")  # same host: waits for the pause
    assert server.times("/other")[0] - server.times("/limited")[0] >= 0.98

    # With a retry left, the same call waits out the pause and succeeds.
    calls = 0
    server = await serve({"/limited": limited})
    async with HttpFetcher(settings(fetch_retries=1)) as http:
        assert (await http.get(server.url + "/limited", "article")).status == 200
    first, second = server.times("/limited")
    assert second - first >= 0.98


def test_retry_after_values() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0.0
    assert parse_retry_after("999999") == MAX_RETRY_AFTER
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_5xx_is_retried_with_backoff_then_succeeds(serve: Serve) -> None:
    calls = 0

    async def flaky(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        if calls <= 2:
            return web.Response(status=502 if calls == 1 else 500)
        return web.Response(text="<p>ok</p>", content_type="text/html")

    async def down(request: web.Request) -> web.StreamResponse:
        return web.Response(status=500)

    async def gone(request: web.Request) -> web.StreamResponse:
        return web.Response(status=404)

    server = await serve({"/flaky": flaky, "/down": down, "/gone": gone})
    async with HttpFetcher(settings(fetch_retries=2, fetch_retry_backoff=0.1)) as http:
        page = await http.get(server.url + "/flaky", "article")
        assert page.status == 200
        times = server.times("/flaky")
        assert len(times) == 3
        assert times[1] - times[0] >= 0.05 and times[2] - times[1] >= 0.1  # 0.1 * 2**n * [0.5, 1.5)
        with pytest.raises(HTTPStatusError, match="HTTP 500"):
            await http.get(server.url + "/down", "article")
        with pytest.raises(HTTPStatusError, match="HTTP 404"):
            await http.get(server.url + "/gone", "article")
    assert server.count("/down") == 3  # bounded: the first try and two retries
    assert server.count("/gone") == 1  # a 404 is not retried


async def test_connection_errors_are_retried_and_reported() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with HttpFetcher(settings(fetch_retries=1)) as http:
        with pytest.raises(RobotsUnavailableError, match=r"cannot fetch .*ConnectError"):
            await http.get(f"http://127.0.0.1:{port}/gone.html", "article")
        with pytest.raises(TransportError, match=r"cannot fetch .*ConnectError"):
            await http.get(f"http://127.0.0.1:{port}/robots.txt", "robots")


# --- the fetcher --------------------------------------------------------------------------------


class Recorder:
    """Stands in for ServiceApp: settings, topics and the dead letters sent."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.letters: list[dict[str, Any]] = []

    def topic(self, name: str) -> Any:
        return SimpleNamespace(name=name)

    async def dead_letter(self, stage: str, error: Any, **fields: Any) -> None:
        self.letters.append({"stage": stage, "reason": str(error), **fields})


async def test_robots_disallowed_articles_are_skipped_with_one_dead_letter(serve: Serve) -> None:
    async def feed(request: web.Request) -> web.StreamResponse:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304)
        rss = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>Secret</title>'
            f"<link>http://{request.host}/private/secret.html</link></item></channel></rss>"
        )
        return web.Response(text=rss, content_type="application/rss+xml", headers={"ETag": '"v1"'})

    server = await serve(
        {
            "/robots.txt": robots("User-agent: *\nDisallow: /private/\n"),
            "/rss.xml": feed,
            "/private/secret.html": html(),
        }
    )
    service = Recorder(settings())
    fetcher = Fetcher(service)  # type: ignore[arg-type]
    source = Feed(id="f" * 32, url=server.url + "/rss.xml")
    state = FeedState()
    async with HttpFetcher(service.settings) as http:
        assert await fetcher.poll_feed(http, source, state) == 0
        state.etag = None  # poll the full feed again: the article must still be skipped quietly
        assert await fetcher.poll_feed(http, source, state) == 0
        assert state.etag == '"v1"'
        assert await fetcher.poll_feed(http, source, state) == 0  # conditional GET: a 304
    assert server.count("/private/secret.html") == 0
    assert server.count("/rss.xml") == 3
    assert service.letters == [
        {
            "stage": "fetcher.article",
            "reason": "disallowed by robots.txt",
            "url": f"{server.url}/private/secret.html",
            "feed_url": source.url,
            "key": article_id(f"{server.url}/private/secret.html"),
        }
    ]
    [records] = fetcher.store.failed.by_shard.values()
    [record] = records.values()
    assert record.disallowed and record.reason == "disallowed by robots.txt" and record.attempts == 0


# --- pooled connections -------------------------------------------------------------------------


def test_socket_readable_sees_data_and_a_hang_up() -> None:
    import socket

    from wirewatch.fetcher.safety import socket_readable

    ours, theirs = socket.socketpair()
    try:
        assert not socket_readable(ours)
        theirs.sendall(b"x")
        assert socket_readable(ours)
        ours.recv(1)
        theirs.close()
        assert socket_readable(ours)  # the peer's end of stream is there to read
    finally:
        ours.close()
    assert socket_readable(ours)  # closed: fileno() is -1


@pytest.mark.parametrize("hang_up", [False, True])
async def test_pooled_connections_are_reused_and_a_hung_up_one_is_not(hang_up: bool) -> None:
    """Two GETs a moment apart. A server that keeps the connection serves both on it; one that
    hangs up after each response (without saying so) gets a new connection for the second GET,
    which succeeds: the pool's check of an idle connection's socket goes through
    ``SocketKeepingStream`` and must see both cases."""
    connections = 0

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello")
                await writer.drain()
                if hang_up:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        async with HttpFetcher(settings()) as http:
            assert (await http.get(url, "robots")).body == b"hello"
            await asyncio.sleep(0.2)  # the hang-up reaches the client's socket
            assert (await http.get(url, "robots")).body == b"hello"
    finally:
        server.close()
        await server.wait_closed()
    assert connections == (2 if hang_up else 1)
