"""Hostile feeds and pages against the real fetcher, on loopback servers (issue #7).

Entity bombs (billion laughs) and external entities (XXE) in RSS and Atom feeds, in any
encoding, are refused before any parser expands them; a 100 MB single-line page is cut at
``fetch_max_bytes``; HTML built to break parsers (100,000 nested elements, NUL bytes, encodings
declared wrong) gives extracted text or a clear dead letter; an extraction process that dies
is replaced. In each case the fetcher carries on with the other articles. (Hostile sitemaps:
test_fetcher_feeds.py.)
"""

from __future__ import annotations

import asyncio
import os
import time
import tracemalloc
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest
from aiohttp import web

import test_fetcher_http
from test_fetcher_feeds import PARAGRAPHS, article_page, feed, fetcher, pages, respond
from test_fetcher_http import EndlessBody, Serve
from wirewatch.fetcher.formats import FeedFormatError, parse_feed
from wirewatch.fetcher.http import HttpFetcher
from wirewatch.fetcher.schedule import FeedState

pytestmark = pytest.mark.timeout(60)
serve = test_fetcher_http.serve  # the loopback-server fixture

PASSWD = "/etc/passwd"
SECRET_MARK = "root:"  # the first line of /etc/passwd


def _rss(base: str, doctype: str, title: str = "Gazette") -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{doctype}<rss version="2.0"><channel><title>{title}</title>'
        f"<item><title>{title}</title><description>{title}</description>"
        f"<link>{base}/news/a.html</link></item></channel></rss>"
    )


def _atom(base: str, doctype: str, title: str = "Gazette") -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{doctype}<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{title}</title><id>urn:g</id><entry><title>{title}</title><summary>{title}</summary>"
        f'<link href="{base}/news/a.html"/><id>urn:a</id></entry></feed>'
    )


def _bomb(root: str) -> str:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    return f"<!DOCTYPE {root} [{entities}]>"


HOSTILE_FEEDS = {
    "rss billion laughs": lambda base: _rss(base, _bomb("rss"), "&lol9;"),
    "atom billion laughs": lambda base: _atom(base, _bomb("feed"), "&lol9;"),
    "rss quadratic blowup": lambda base: _rss(
        base, f'<!DOCTYPE rss [<!ENTITY a "{"x" * 50_000}">]>', "&a;" * 5_000
    ),
    "rss external entity": lambda base: _rss(
        base, f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{PASSWD}">]>', "&xxe;"
    ),
    "atom external entity": lambda base: _atom(
        base, f'<!DOCTYPE feed [<!ENTITY xxe SYSTEM "file://{PASSWD}">]>', "&xxe;"
    ),
    "rss external parameter entity": lambda base: _rss(
        base, f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "file://{PASSWD}"> %p;]>'
    ),
    # The same in UTF-16 and UTF-32: the check reads the body as feedparser will.
    "rss billion laughs in utf-16": lambda base: (
        _rss(base, _bomb("rss"), "&lol9;").replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    ),
    "atom external entity in utf-32": lambda base: (
        _atom(base, f'<!DOCTYPE feed [<!ENTITY xxe SYSTEM "file://{PASSWD}">]>', "&xxe;")
        .replace('encoding="utf-8"', 'encoding="utf-32"')
        .encode("utf-32")
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FEEDS))
def test_entity_declarations_in_feeds_are_refused_without_expanding(name: str) -> None:
    body = HOSTILE_FEEDS[name]("http://a.example")
    data = body if isinstance(body, bytes) else body.encode()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(FeedFormatError, match="feed refused: its DOCTYPE declares entities") as caught:
            parse_feed(data, "application/rss+xml", max_bytes=10_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 0.5  # feedparser took 2 s and 50 MB on the bomb before
    assert peak < 5_000_000 + 8 * len(data)
    assert SECRET_MARK not in str(caught.value)


def test_a_doctype_without_entities_is_still_read() -> None:
    rss091 = _rss(
        "http://a.example",
        '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        '"http://my.netscape.com/publish/formats/rss-0.91.dtd">',
    )
    assert [e.link for e in parse_feed(rss091.encode(), None, max_bytes=1_000_000).entries] == [
        "http://a.example/news/a.html"
    ]


async def test_a_hostile_feed_is_one_dead_letter_and_nothing_of_it_is_fetched(serve: Serve) -> None:
    routes: dict[str, Any] = {}

    async def route(request: web.Request) -> web.StreamResponse:
        if request.path not in routes:  # robots.txt among others: a 404 allows everything
            raise web.HTTPNotFound()
        return await routes[request.path](request)

    server = await serve({"/{name}": route, "/news/{slug}": route})
    routes.update(pages("a"))
    routes["/xxe.xml"] = respond(HOSTILE_FEEDS["rss external entity"](server.url), "application/rss+xml")
    routes["/ok.xml"] = respond(_rss(server.url, ""), "application/rss+xml")
    made, service = fetcher()
    hostile, good = FeedState(), FeedState()
    async with HttpFetcher(service.settings) as http:
        for _ in range(2):
            made.in_flight.add("x")
            await made._poll(http, feed(server.url + "/xxe.xml"), hostile)
        assert await made.poll_feed(http, feed(server.url + "/ok.xml"), good) == 1
    assert hostile.failures == 2
    assert [letter["stage"] for letter in service.letters] == ["fetcher.feed"]  # once: same reason
    assert "entity expansion is not allowed" in service.letters[0]["reason"]
    assert all(SECRET_MARK not in str(letter) for letter in service.letters)
    assert [a.url for a in service.raw.sent] == [server.url + "/news/a.html"]  # from the good feed
    assert server.count("/news/a.html") == 1


async def news_site(serve: Serve, slug: str, handler: Any) -> Any:
    """A site whose feed (``/rss.xml``) lists ``/news/<slug>.html`` (served by ``handler``), then a
    fine article; any other path is a 404 (robots.txt among others: a 404 allows everything)."""
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<item><title>{slug}</title><link>{{base}}/news/{slug}.html</link></item>"
        "<item><title>Fine</title><link>{base}/news/a.html</link></item></channel></rss>"
    )
    routes: dict[str, Any] = {**pages("a"), f"/news/{slug}.html": handler}

    async def route(request: web.Request) -> web.StreamResponse:
        if request.path not in routes:
            raise web.HTTPNotFound()
        return await routes[request.path](request)

    server = await serve({"/{name}": route, "/news/{slug}": route})
    routes["/rss.xml"] = respond(rss.format(base=server.url), "application/rss+xml")
    return server


# --- a 100 MB single-line page ----------------------------------------------------------------------

PAGE_BYTES = 100 * 1024 * 1024
CAP = 10_000_000  # the default fetch_max_bytes


async def test_a_100_mb_single_line_page_is_cut_at_the_cap_with_a_dead_letter(serve: Serve) -> None:
    # One line of 100 MB, streamed in 64 KiB chunks (chunked: no Content-Length).
    endless_line = EndlessBody(PAGE_BYTES, b"word " * (65536 // 5), b"<html><body><p>", declare_length=False)
    server = await news_site(serve, "huge", endless_line.respond)
    made, service = fetcher(fetch_max_bytes=CAP, fetch_timeout=20.0)
    assert service.settings.fetch_max_bytes == CAP
    tracemalloc.start()
    started = time.monotonic()
    try:
        async with HttpFetcher(service.settings) as http:
            assert await made.poll_feed(http, feed(server.url + "/rss.xml"), FeedState()) == 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 20
    await asyncio.wait_for(endless_line.finished.wait(), 10)
    assert endless_line.sent < PAGE_BYTES / 2  # the fetcher hung up soon after the cap
    assert peak < 4 * CAP  # about one capped body in memory, never the page
    [letter] = service.letters
    assert letter["stage"] == "fetcher.article" and letter["url"] == server.url + "/news/huge.html"
    assert f"is larger than {CAP} bytes" in letter["reason"]
    assert [a.url for a in service.raw.sent] == [server.url + "/news/a.html"]  # the other one flowed


# --- HTML that breaks parsers --------------------------------------------------------------------------

TEXT = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
BREAKWATER = "northern breakwater will be rebuilt"

HOSTILE_PAGES: dict[str, tuple[bytes, str]] = {
    # 100,000 levels: libxml2 stops at its depth limit (256) without recursing into the rest.
    "100k nested divs": (
        ("<html><body>" + "<div>" * 100_000 + TEXT + "</div>" * 100_000 + "</body></html>").encode(),
        "text/html",
    ),
    "100k unclosed inline tags": (("<html><body><p>" + "<b>" * 100_000 + TEXT).encode(), "text/html"),
    "100k nested tables": (("<html><body>" + "<table><tr><td>" * 30_000 + TEXT).encode(), "text/html"),
    "NUL bytes in the text": (
        article_page("Breakwater").replace("harbour", "har\x00bour").encode(),
        "text/html",
    ),
    "NUL bytes only": (b"\x00" * 10_000, "text/html"),
    "declared UTF-16, sent UTF-8": (
        article_page("Brise-lames é").replace('charset="utf-8"', 'charset="utf-16"').encode(),
        "text/html; charset=utf-16",
    ),
    "declared UTF-8, sent Latin-1 with broken sequences": (
        article_page("Brise-lames é").encode("latin-1") + b"\xc3\x28\xed\xa0\x80\xf0\x28\x8c\x28",
        "text/html; charset=utf-8",
    ),
    "declared a byte codec (base64)": (article_page("Breakwater").encode(), "text/html; charset=base64"),
    "declared an unknown charset": (article_page("Breakwater").encode(), "text/html; charset=x-klingon"),
    "UTF-16 bytes declared as UTF-8": (
        article_page("Breakwater").encode("utf-16"),
        "text/html; charset=utf-8",
    ),
    "XHTML with an external entity": (
        (
            f'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY xxe SYSTEM "file://{PASSWD}">]>'
            f"<html><head><title>&xxe;</title></head><body><article><p>&xxe;</p>{TEXT}</article></body></html>"
        ).encode(),
        "application/xhtml+xml",
    ),
    "a 5 MB attribute": (
        ("<html><body><div class='" + "a" * 5_000_000 + "'>" + TEXT + "</div></body></html>").encode(),
        "text/html",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PAGES))
async def test_html_that_breaks_parsers_gives_text_or_a_clear_dead_letter(serve: Serve, name: str) -> None:
    body, content_type = HOSTILE_PAGES[name]
    server = await news_site(serve, "hostile", respond(body, content_type))
    made, service = fetcher(fetch_timeout=10.0)
    async with HttpFetcher(service.settings) as http:
        produced = await made.poll_feed(http, feed(server.url + "/rss.xml"), FeedState())
    by_url = {a.url: a for a in service.raw.sent}
    assert server.url + "/news/a.html" in by_url  # the other article flowed
    hostile = by_url.get(server.url + "/news/hostile.html")
    if hostile is None:
        [letter] = service.letters
        assert letter["stage"] == "fetcher.article"
        assert letter["reason"].startswith(("no article text found", "cannot extract the article")), letter
        assert produced == 1
    else:
        assert service.letters == [] and produced == 2
        assert hostile.text.strip()
        assert "\x00" not in hostile.text
    assert all(SECRET_MARK not in a.text and SECRET_MARK not in a.title for a in service.raw.sent)


@pytest.mark.parametrize("name", ["100k nested divs", "NUL bytes in the text", "declared UTF-16, sent UTF-8"])
async def test_the_article_text_survives_where_it_can(serve: Serve, name: str) -> None:
    """Not only no crash: pages whose text is there to read give that text."""
    body, content_type = HOSTILE_PAGES[name]
    routes: dict[str, Any] = {"/news/hostile.html": respond(body, content_type)}

    async def route(request: web.Request) -> web.StreamResponse:
        if request.path not in routes:  # robots.txt among others: a 404 allows everything
            raise web.HTTPNotFound()
        return await routes[request.path](request)

    server = await serve({"/{name}": route, "/news/{slug}": route})
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<item><title>Hostile</title><link>{server.url}/news/hostile.html</link></item></channel></rss>"
    )
    routes["/rss.xml"] = respond(rss, "application/rss+xml")
    made, service = fetcher(fetch_timeout=10.0)
    async with HttpFetcher(service.settings) as http:
        await made.poll_feed(http, feed(server.url + "/rss.xml"), FeedState())
    if name == "100k nested divs":  # past libxml2's depth limit: no text, and it says so
        assert [x["reason"] for x in service.letters] == ["no article text found"]
        return
    [article] = service.raw.sent
    assert BREAKWATER in article.text.replace("\x00", "")


# --- a dying extraction process ---------------------------------------------------------------------------


async def test_a_dead_extraction_process_is_replaced(serve: Serve) -> None:
    routes: dict[str, Any] = dict(pages("a"))

    async def route(request: web.Request) -> web.StreamResponse:
        if request.path not in routes:  # robots.txt among others: a 404 allows everything
            raise web.HTTPNotFound()
        return await routes[request.path](request)

    server = await serve({"/{name}": route, "/news/{slug}": route})
    routes["/rss.xml"] = respond(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<item><title>A</title><link>{server.url}/news/a.html</link></item></channel></rss>",
        "application/rss+xml",
    )
    made, service = fetcher()
    made.pool_workers = 1
    made._pool = broken = made.new_pool()
    try:
        # A worker that dies (as on a parser segfault or the OOM killer) breaks the whole pool.
        with pytest.raises(BrokenProcessPool):
            await asyncio.wrap_future(broken.submit(os._exit, 1))
        async with HttpFetcher(service.settings) as http:
            assert await made.poll_feed(http, feed(server.url + "/rss.xml"), FeedState()) == 0
            assert made._pool is not broken  # replaced
            [letter] = service.letters
            assert letter["stage"] == "fetcher.article"
            assert "the extraction process died" in letter["reason"]
            made.store.failed.clear()  # due again now rather than after the backoff
            assert await made.poll_feed(http, feed(server.url + "/rss.xml"), FeedState()) == 1
        assert [a.url for a in service.raw.sent] == [server.url + "/news/a.html"]
    finally:
        if made._pool is not None:
            made._pool.shutdown(wait=True, cancel_futures=True)
        broken.shutdown(wait=False, cancel_futures=True)


def test_extraction_processes_end_when_the_fetcher_is_killed(tmp_path: Any) -> None:
    """A fetcher killed outright leaves no extraction process behind (``wirewatch up`` restarts
    a crashed fetcher: orphans would pile up)."""
    import signal
    import subprocess
    import sys

    pids = tmp_path / "worker.pid"
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys, time\n"
            "from wirewatch.fetcher.service import extraction_pool\n"
            "pool = extraction_pool(1)\n"
            f"open({str(pids)!r}, 'w').write(str(pool.submit(os.getpid).result()))\n"
            "time.sleep(60)\n",
        ]
    )
    try:
        deadline = time.monotonic() + 60
        while not (pids.exists() and pids.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        worker = int(pids.read_text())
        os.kill(worker, 0)  # alive while its fetcher is
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        os.kill(worker, signal.SIGKILL)
        pytest.fail(f"extraction process {worker} outlived its killed fetcher")
    finally:
        owner.kill()
