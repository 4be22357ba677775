"""One article, one id, through the fetcher: canonical links, AMP variants; and the headers kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiohttp import web

import test_fetcher_http
from test_fetcher_feeds import PARAGRAPHS, Service, fetcher, respond
from test_fetcher_http import Serve
from wirewatch.core.ids import article_id, canonical_url
from wirewatch.core.models import Feed
from wirewatch.fetcher.extract import Extracted, extract_article
from wirewatch.fetcher.formats import FeedEntry
from wirewatch.fetcher.http import KEPT_HEADER_CHARS, HttpFetcher, Page, kept_headers
from wirewatch.fetcher.schedule import FeedState
from wirewatch.fetcher.service import Fetcher, amp_alias, same_site

pytestmark = pytest.mark.timeout(20)
serve = test_fetcher_http.serve  # the loopback-server fixture


def page(title: str, head: str = "") -> str:
    body = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>{head}</head>"
        f"<body><article><h1>{title}</h1>{body}</article></body></html>"
    )


class Items:
    """An RSS feed whose item links a test sets."""

    def __init__(self) -> None:
        self.links: list[str] = []

    async def feed(self, request: web.Request) -> web.StreamResponse:
        items = "".join(f"<item><title>t</title><link>{link}</link></item>" for link in self.links)
        body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>{items}</channel></rss>'
        return web.Response(text=body, content_type="application/rss+xml")


async def poll(made: Fetcher, service: Service, source: Feed) -> int:
    async with HttpFetcher(service.settings) as http:
        return await made.poll_feed(http, source, FeedState())


async def test_canonical_and_amp_links_give_one_id(serve: Serve) -> None:
    items = Items()
    server = await serve(
        {
            "/rss.xml": items.feed,
            "/news/b.html": respond(page("B", '<link rel="amphtml" href="/m/news/b.html">'), "text/html"),
            "/m/news/b.html": respond(page("B (mobile)"), "text/html"),
            "/news/d/amp/": respond(page("D (AMP)"), "text/html"),
            "/news/d/": respond(page("D"), "text/html"),
        }
    )
    base = server.url

    # c is served on another port of the same host; its canonical link names the first server's URL.
    async def c_page(request: web.Request) -> web.StreamResponse:
        return web.Response(
            text=page("C", f'<link rel="canonical" href="{base}/news/c.html">'), content_type="text/html"
        )

    server_c = await serve({"/news/c.html": c_page})
    made, service = fetcher()
    source = Feed(id="c" * 32, url=base + "/rss.xml")

    items.links = [f"{base}/news/b.html", f"{server_c.url}/news/c.html?edition=uk", f"{base}/news/d/amp/"]
    assert await poll(made, service, source) == 3
    ids = {a.canonical_url: a.id for a in service.raw.sent}
    assert ids[f"{base}/news/d/"] == article_id(f"{base}/news/d/")  # the AMP URL's id is the page's
    # c was linked with ?edition=uk from another port: its canonical (same host) gives the id.
    assert ids[f"{base}/news/c.html"] == article_id(f"{base}/news/c.html")

    # The same articles under their other URLs: nothing is fetched again.
    items.links = [f"{base}/m/news/b.html", f"{base}/news/c.html", f"{base}/news/d/", f"{base}/news/d/amp/"]
    assert await poll(made, service, source) == 0
    assert server.count("/m/news/b.html") == 0  # b's <link rel=amphtml> made it b
    assert server.count("/news/c.html") == 0 and server.count("/news/d/") == 0
    assert server.count("/news/d/amp/") == 1
    assert len(service.raw.sent) == 3


def test_amp_page_on_an_amp_host_names_its_www_original() -> None:
    made = Fetcher(Service(test_fetcher_http.settings()))  # type: ignore[arg-type]
    link = "https://amp.news.example/world/story"
    extracted = Extracted(
        text="text",
        title="Story",
        author=None,
        published=None,
        sitename=None,
        description=None,
        language=None,
        canonical_url="https://www.news.example/world/story",
    )
    page = Page(link, 200, b"<html></html>", "text/html", {})
    article = made.build_article(
        Feed(id="f" * 32, url="https://news.example/rss"),
        FeedEntry(link),
        article_id(link),
        page,
        extracted,
        None,
        None,
    )
    assert article.id == article_id("https://www.news.example/world/story")
    assert same_site("https://www.news.example/a", "https://news.example/b")
    assert not same_site("https://sub.news.example/a", "https://news.example/b")


def test_amp_alias() -> None:
    url = "https://www.news.example/world/story.html"
    assert amp_alias(url, "/amp-pages/story") == article_id("https://www.news.example/amp-pages/story")
    assert amp_alias(url, "https://amp.news.example/world/story.html") == article_id(url.replace("www.", ""))
    assert amp_alias(url, "https://other.example/story") is None  # another site cannot alias our id
    assert amp_alias(url, "javascript:void(0)") is None
    assert amp_alias(url, None) is None
    extracted = extract_article(page("B", '<link rel="AmpHtml" href="/b.amp.html">'), url)
    assert extracted.amp_url == "/b.amp.html"
    assert canonical_url("https://www.news.example/b.amp.html") == "https://www.news.example/b.html"


async def test_fetch_headers_are_kept_with_the_article(serve: Serve) -> None:
    items = Items()
    long_value = "max-age=60, " + "x" * 1000

    async def article(request: web.Request) -> web.StreamResponse:
        return web.Response(
            text=page("Headers"),
            content_type="text/html",
            charset="utf-8",
            headers={
                "ETag": '"abc"',
                "Last-Modified": "Mon, 02 Mar 2026 09:30:00 GMT",
                "Cache-Control": long_value,
                "Content-Language": "en",
                "X-Cache": "HIT",
                "Age": "12",
                "Set-Cookie": "session=secret",
                "X-Internal-Trace": "do-not-keep",
            },
        )

    server = await serve({"/rss.xml": items.feed, "/news/h.html": article})
    items.links = [server.url + "/news/h.html"]
    made, service = fetcher()
    assert await poll(made, service, Feed(id="h" * 32, url=server.url + "/rss.xml")) == 1
    headers = service.raw.sent[0].fetch_headers
    assert headers["etag"] == '"abc"'
    assert headers["last-modified"] == "Mon, 02 Mar 2026 09:30:00 GMT"
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-language"] == "en" and headers["x-cache"] == "HIT" and headers["age"] == "12"
    assert headers["cache-control"] == long_value[:KEPT_HEADER_CHARS]
    assert "date" in headers and "server" in headers
    assert "set-cookie" not in headers and "x-internal-trace" not in headers
    assert all(name == name.lower() for name in headers)
    assert kept_headers({"ETag": "x", "SERVER": "y", "Cookie": "z"}) == {"etag": "x", "server": "y"}
    assert service.raw.sent[0].fetched_at <= datetime.now(UTC)
