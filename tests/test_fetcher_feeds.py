"""Feed formats end to end on loopback servers: RSS 0.91/1.0/2.0, Atom, JSON Feed 1.0/1.1, sitemaps.

Each test serves feed bodies and article pages written here, polls them with the real
:class:`Fetcher` (HTTP, parsing, extraction) and checks the raw articles it produces, or the
dead letter it records for a broken feed.
"""

from __future__ import annotations

import asyncio
import gzip
import html
import json
import logging
import time
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import REGISTRY

import test_fetcher_http
from test_fetcher_http import Handler, Recorder, Serve, settings
from wirewatch.core.models import Feed, RawArticle
from wirewatch.core.settings import Settings
from wirewatch.fetcher.formats import FeedFormatError, parse_feed, parse_json_feed
from wirewatch.fetcher.http import HttpFetcher
from wirewatch.fetcher.schedule import FeedState
from wirewatch.fetcher.service import Fetcher
from wirewatch.fetcher.sitemaps import parse_sitemap

pytestmark = pytest.mark.timeout(20)
serve = test_fetcher_http.serve  # the loopback-server fixture

MAX = 1_000_000
WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

PARAGRAPHS = (
    "The harbour authority confirmed on Monday that the northern breakwater will be rebuilt over two "
    "summers, after storms in January opened a gap wide enough for small boats to pass through.",
    "Engineers said the new wall would be two metres higher and faced with granite blocks taken from "
    "the old quarry above the town, which reopens for the work and will close again afterwards.",
    "Fishing crews welcomed the decision but asked for the work to pause during the sardine season, "
    "when the inner basin is busiest; the authority said it would publish a timetable next month.",
)


def article_page(title: str, lang: str = "en") -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in PARAGRAPHS)
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        '<meta property="og:site_name" content="Harbour Gazette"></head><body>'
        "<nav><a href='/'>Home</a> <a href='/port'>Port</a></nav>"
        f"<main><article><h1>{html.escape(title)}</h1>{body}</article></main></body></html>"
    )


def respond(
    body: str | bytes, content_type: str = "application/xml", headers: dict[str, str] | None = None
) -> Handler:
    data = body.encode() if isinstance(body, str) else body

    async def handler(request: web.Request) -> web.StreamResponse:
        etag = (headers or {}).get("ETag")
        if etag is not None and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=data, headers={"Content-Type": content_type, **(headers or {})})

    return handler


def pages(*slugs: str) -> dict[str, Handler]:
    return {f"/news/{slug}.html": respond(article_page(f"Story {slug}"), "text/html") for slug in slugs}


class Topic:
    def __init__(self) -> None:
        self.sent: list[RawArticle] = []

    async def send(self, key: bytes, value: bytes) -> asyncio.Future[None]:
        article = RawArticle.from_bytes(value)
        assert key == article.id.encode()
        self.sent.append(article)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Service(Recorder):
    """ServiceApp's stand-in: settings, a raw topic that keeps what is sent, and the dead letters."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.raw = Topic()

    def topic(self, name: str) -> Any:
        return self.raw


def fetcher(**overrides: Any) -> tuple[Fetcher, Service]:
    service = Service(settings(**overrides))
    return Fetcher(service), service  # type: ignore[arg-type]


def feed(url: str, **fields: Any) -> Feed:
    return Feed(id="f" * 32, url=url, **fields)


def test_without_a_state_store_a_refused_feeds_file_is_said_once_and_flagged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The fetcher that polls the feeds file itself (no durable store) reads it at every round:
    a refused version keeps the last good list, is logged once, and sets the gauge, as the
    publisher does."""
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - https://one.example/rss.xml\n", encoding="utf-8")
    poller, _ = fetcher(feeds_file=path)

    def invalid() -> float | None:
        return REGISTRY.get_sample_value("wirewatch_fetcher_feeds_file_invalid")

    assert [f.url for f in poller._load()] == ["https://one.example/rss.xml"] and invalid() == 0
    path.write_text('feeds:\n  - https://one.example/rss.xml\n  - url: "not a url"\n', encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="wirewatch.fetcher.feedsync"):
        for _ in range(3):
            assert [f.url for f in poller._load()] == ["https://one.example/rss.xml"]  # the last good list
        assert invalid() == 1
        path.write_text("feeds:\n  - https://two.example/rss.xml\n", encoding="utf-8")
        assert [f.url for f in poller._load()] == ["https://two.example/rss.xml"] and invalid() == 0
    said = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert said == [
        (logging.ERROR, "feeds file refused: the last good feeds stay"),
        (logging.INFO, "feeds file readable again"),
    ]


# --- RSS, Atom, JSON Feed ------------------------------------------------------------------------

RFC822 = "Mon, 02 Mar 2026 09:30:00 GMT"


def rss091(base: str) -> str:
    return (
        '<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        '"http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss version="0.91"><channel>'
        "<title>Gazette 0.91</title><language>en</language>"
        f"<item><title>First (feed)</title><link>{base}/news/a.html</link>"
        "<description>One</description></item>"
        f"<item><title>Second (feed)</title><link>{base}/news/b.html</link></item></channel></rss>"
    )


def rss10(base: str) -> str:
    return (
        '<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">'
        f'<channel rdf:about="{base}/rdf"><title>Gazette RDF</title><link>{base}/</link>'
        "<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency></channel>"
        f'<item rdf:about="{base}/news/a.html"><title>First (feed)</title><link>{base}/news/a.html</link>'
        "<dc:date>2026-03-02T09:30:00Z</dc:date><dc:creator>Ana Ruiz</dc:creator></item>"
        f'<item rdf:about="{base}/news/b.html"><title>Second (feed)</title><link>{base}/news/b.html</link>'
        "<dc:date>2026-03-01T09:30:00Z</dc:date></item></rdf:RDF>"
    )


def rss20(base: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Gazette</title>'
        f"<link>{base}/</link><description>d</description><ttl>30</ttl>"
        f"<item><title>First (feed)</title><link>{base}/news/a.html</link><pubDate>{RFC822}</pubDate>"
        "<author>desk@gazette.example (Ana Ruiz)</author></item>"
        f"<item><title>Second (feed)</title><link>{base}/news/b.html?utm_source=rss</link>"
        "<pubDate>Sun, 01 Mar 2026 09:30:00 GMT</pubDate></item></channel></rss>"
    )


def atom10(base: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">'
        f"<title>Gazette Atom</title><id>{base}/atom</id><updated>2026-03-02T09:30:00Z</updated>"
        "<entry><title>First (feed)</title>"
        f'<link rel="alternate" type="text/html" href="{base}/news/a.html"/>'
        "<id>urn:a</id><updated>2026-03-02T09:30:00Z</updated><author><name>Ana Ruiz</name></author></entry>"
        f'<entry><title>Second (feed)</title><link href="{base}/news/b.html"/><id>urn:b</id>'
        "<updated>2026-03-01T09:30:00Z</updated></entry></feed>"
    )


def json_feed(base: str, version: str = "1.1") -> str:
    items: list[dict[str, Any]] = [
        {
            "id": "a",
            "url": f"{base}/news/a.html",
            "title": "First (feed)",
            "date_published": "2026-03-02T09:30:00Z",
        },
        {
            "id": 2,
            "url": f"{base}/news/b.html",
            "title": "Second (feed)",
            "date_published": "2026-03-01T09:30:00Z",
        },
        {"id": "no-link", "content_text": "a note without a URL is not an article"},
    ]
    if version == "1.1":
        items[0]["authors"] = [{"name": "Ana Ruiz"}]
        items[0]["language"] = "en-GB"
    else:
        items[0]["author"] = {"name": "Ana Ruiz"}
    return json.dumps(
        {"version": f"https://jsonfeed.org/version/{version}", "title": "Gazette JSON", "items": items}
    )


FORMATS = {
    "rss091": (rss091, "application/rss+xml", "rss rss091u"),
    "rss10": (rss10, "application/rdf+xml", "rss rss10"),
    "rss20": (rss20, "application/rss+xml; charset=utf-8", "rss rss20"),
    "atom10": (atom10, "application/atom+xml", "atom atom10"),
    "jsonfeed10": (lambda base: json_feed(base, "1"), "application/feed+json", "json-feed 1.0"),
    "jsonfeed11": (json_feed, "application/feed+json", "json-feed 1.1"),
    "jsonfeed-as-text": (json_feed, "text/plain", "json-feed 1.1"),  # detected by its leading "{"
}


@pytest.mark.parametrize("name", sorted(FORMATS))
async def test_each_feed_format_produces_its_articles(serve: Serve, name: str) -> None:
    render, content_type, expected_format = FORMATS[name]
    bodies: dict[str, str] = {}

    async def the_feed(request: web.Request) -> web.StreamResponse:
        return web.Response(text=bodies["feed"], headers={"Content-Type": content_type})

    server = await serve({"/feed": the_feed, **pages("a", "b")})
    bodies["feed"] = render(server.url)
    made, service = fetcher()
    state = FeedState()
    async with HttpFetcher(service.settings) as http:
        produced = await made.poll_feed(http, feed(server.url + "/feed"), state)
    assert service.letters == []
    assert produced == 2
    assert state.format == expected_format
    by_title = {a.title: a for a in service.raw.sent}
    assert set(by_title) == {"First (feed)", "Second (feed)"}
    first, second = by_title["First (feed)"], by_title["Second (feed)"]
    assert first.url == server.url + "/news/a.html"
    assert "northern breakwater will be rebuilt" in first.text
    assert second.canonical_url == server.url + "/news/b.html"  # utm_source dropped (RSS 2.0)
    if name != "rss091":  # RSS 0.91 items carry no dates
        assert first.published == WHEN
        assert second.published == WHEN - timedelta(days=1)
    if name in ("rss10", "rss20", "atom10", "jsonfeed10", "jsonfeed11"):
        assert first.author and "Ana Ruiz" in first.author
    if name == "jsonfeed11":
        assert first.language_hint == "en-GB" and second.language_hint != "en-GB"  # the item's own
    assert first.fetch_headers["content-type"].startswith("text/html")
    # What the RSS/Atom items gave is remembered, for the next poll to read only new items.
    remembered = made.feed_items.get(server.url + "/feed")
    if expected_format.startswith(("rss", "atom")):
        assert remembered is not None
        assert sorted(e.title or "" for found in remembered.values() for e in found) == [
            "First (feed)",
            "Second (feed)",
        ]
    else:
        assert remembered is None


def test_what_feeds_ask_about_their_polling() -> None:
    base = "http://127.0.0.1:1"
    assert parse_feed(rss20(base).encode(), max_bytes=MAX).min_interval == 30 * 60  # <ttl> minutes
    assert parse_feed(rss10(base).encode(), max_bytes=MAX).min_interval == 3600 / 4  # hourly, 4 times
    assert parse_feed(atom10(base).encode(), max_bytes=MAX).min_interval is None


def test_titles_and_summaries_are_plain_text() -> None:
    """Feeds carry titles and summaries as HTML as often as not; articles get their words."""
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        b"<title><![CDATA[Le Monde &amp; l&#8217;AFP]]></title>"
        b"<item><title><![CDATA[Macron &amp; Merkel : la <b>une</b>]]></title><link>http://a.test/1</link>"
        b'<description>&lt;p&gt;Le &lt;a href="/m"&gt;ministre&lt;/a&gt; a dit &amp;laquo;non&amp;raquo;.'
        b"&lt;/p&gt;&lt;script&gt;track()&lt;/script&gt;&lt;p&gt;Deux&lt;/p&gt;"
        b'&lt;img src="/i.jpg"&gt;</description>'
        b"<author>ana@a.test (Ana &lt;i&gt;Ruiz&lt;/i&gt;)</author></item>"
        b"<item><title>AT&amp;T wins 5 &lt; 6 &amp;amp; more</title><link>http://a.test/2</link>"
        b"<description>&lt;script&gt;alert(1)&lt;/script&gt;</description></item>"
        b"</channel></rss>"
    )
    parsed = parse_feed(body, "application/rss+xml", max_bytes=MAX)
    assert parsed.title == "Le Monde & l\u2019AFP"
    first, second = parsed.entries
    assert first.title == "Macron & Merkel : la une"
    assert first.summary == "Le ministre a dit \u00abnon\u00bb. Deux"
    assert first.author == "ana@a.test (Ana Ruiz)"
    assert second.title == "AT&T wins 5 < 6 & more"
    assert second.summary is None  # nothing a reader would see


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "malformed JSON Feed"),
        (b'{"title": "x", "items": []}', "version: Field required"),
        (
            b'{"version": "https://jsonfeed.org/version/2", "title": "x", "items": []}',
            "version: Input should be",
        ),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', "title: Field required"),
        (
            b'{"version": "https://jsonfeed.org/version/1.1", "title": "x", "items": {}}',
            "items: Input should be",
        ),
        (
            b'{"version": "https://jsonfeed.org/version/1.1", "title": "x", "items": [{"url": "http://a/"}]}',
            "items.0.id: Field required",
        ),
        (
            b'{"version": "https://jsonfeed.org/version/1.1", "title": "x", '
            b'"items": [{"id": "1", "title": 5}]}',
            "items.0.title: Input should be a valid string",
        ),
        (
            b'{"version": "https://jsonfeed.org/version/1.1", "title": "x", '
            b'"items": [{"id": "1", "date_published": "yesterday"}]}',
            "items.0.date_published",
        ),
    ],
)
def test_json_feed_is_validated_strictly(body: bytes, message: str) -> None:
    with pytest.raises(FeedFormatError, match="JSON Feed") as caught:
        parse_json_feed(body)
    assert message in str(caught.value)
    with pytest.raises(FeedFormatError):
        parse_feed(body, "application/json", max_bytes=MAX)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"<html><body><p>a home page</p></body></html>", "text/xml", "not a feed"),
        (b"<rss><channel><title>x</title><item><link>http://a/1</link></item>", "application/rss+xml", None),
        (b"\x00\x01garbage<<<", "text/xml", "not a feed|malformed feed"),
        (b"plain words", "application/json", "invalid JSON"),
    ],
)
def test_what_is_not_a_feed(body: bytes, content_type: str, message: str | None) -> None:
    if message is None:  # feedparser recovers the entries of a truncated feed, and says so
        parsed = parse_feed(body, content_type, max_bytes=MAX)
        assert [e.link for e in parsed.entries] == ["http://a/1"] and parsed.problem
        return
    with pytest.raises(FeedFormatError, match=message):
        parse_feed(body, content_type, max_bytes=MAX)


async def test_a_broken_feed_goes_to_the_dead_letters_once(serve: Serve) -> None:
    bad = b'{"version": "https://jsonfeed.org/version/1.1", "title": "x", "items": [{"title": "no id"}]}'
    server = await serve({"/feed.json": respond(bad, "application/feed+json")})
    made, service = fetcher()
    source = feed(server.url + "/feed.json")
    state = FeedState()
    async with HttpFetcher(service.settings) as http:
        for _ in range(2):
            made.in_flight.add(source.id)
            await made._poll(http, source, state)
    assert state.failures == 2 and state.last_success is None
    assert state.last_error is not None and "items.0.id: Field required" in state.last_error
    assert [letter["stage"] for letter in service.letters] == ["fetcher.feed"]  # once: same reason
    assert service.letters[0]["feed_url"] == source.url
    assert service.raw.sent == []


# --- sitemaps -----------------------------------------------------------------------------------

SITEMAP_NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
NEWS_NS = 'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'


def urlset(*urls: tuple[str, str | None]) -> str:
    rows = "".join(
        f"<url><loc>{html.escape(loc)}</loc>{f'<lastmod>{lastmod}</lastmod>' if lastmod else ''}</url>"
        for loc, lastmod in urls
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- made by hand -->\n<urlset {SITEMAP_NS}>{rows}</urlset>'
    )


def news_sitemap(base: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><urlset {SITEMAP_NS} {NEWS_NS}>'
        f"<url><loc>{base}/news/a.html</loc><news:news><news:publication><news:name>Gazette</news:name>"
        "<news:language>fr</news:language></news:publication>"
        "<news:publication_date>2026-03-02T10:30:00+01:00</news:publication_date>"
        "<news:title>Le brise-lames sera reconstruit</news:title></news:news></url>"
        f"<url><loc>{base}/news/b.html</loc><lastmod>2026-03-01</lastmod></url></urlset>"
    )


def sitemap_index(*children: tuple[str, str | None]) -> str:
    rows = "".join(
        f"<sitemap><loc>{html.escape(loc)}</loc>"
        f"{f'<lastmod>{lastmod}</lastmod>' if lastmod else ''}</sitemap>"
        for loc, lastmod in children
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex {SITEMAP_NS}>{rows}</sitemapindex>'


def test_sitemap_parsing() -> None:
    parsed = parse_feed(
        urlset(("http://a.example/1", "2026-03-01"), ("http://a.example/2", None)).encode(),
        "text/xml",
        max_bytes=MAX,
    )
    assert (parsed.format, parsed.version) == ("sitemap", "urlset")
    assert [(e.link, e.published) for e in parsed.entries] == [
        ("http://a.example/1", datetime(2026, 3, 1, tzinfo=UTC)),
        ("http://a.example/2", None),
    ]
    news = parse_sitemap(news_sitemap("http://a.example").encode())
    assert news.version == "google-news"
    first = news.entries[0]
    assert (first.title, first.language) == ("Le brise-lames sera reconstruit", "fr")
    assert first.published == WHEN  # 10:30 at +01:00; news:publication_date wins over lastmod
    index = parse_feed(
        sitemap_index(("http://a.example/s1.xml", "2026-03-01T00:00:00Z")).encode(), max_bytes=MAX
    )
    assert index.format == "sitemap-index" and index.entries == []
    assert [(c.url, c.lastmod) for c in index.children] == [
        ("http://a.example/s1.xml", datetime(2026, 3, 1, tzinfo=UTC))
    ]
    legacy = b'<urlset xmlns="http://www.google.com/schemas/sitemap/0.84"><url><loc>http://a/x</loc></url></urlset>'
    assert [e.link for e in parse_feed(legacy, max_bytes=MAX).entries] == ["http://a/x"]


def _billion_laughs(root: str) -> bytes:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    return (
        f'<?xml version="1.0"?><!DOCTYPE {root} [{entities}]><{root} {SITEMAP_NS}>'
        f"<url><loc>http://a.example/&lol9;</loc></url></{root}>"
    ).encode()


@pytest.mark.parametrize(
    "body",
    [
        _billion_laughs("urlset"),
        # Entities declared but never used: the DTD alone is refused.
        b'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY x "y">]><urlset><url><loc>http://a/</loc></url></urlset>',
        # An external entity: never fetched, never read from disk.
        b'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY ext SYSTEM "file:///etc/passwd">]>'
        b"<urlset><url><loc>http://a/&ext;</loc></url></urlset>",
    ],
)
def test_hostile_sitemaps_fail_cleanly(body: bytes) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(FeedFormatError, match="sitemap") as caught:
            parse_feed(body, "application/xml", max_bytes=MAX)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 0.5
    assert peak < 5_000_000
    assert "root:" not in str(caught.value)  # nothing of /etc/passwd


def test_malformed_sitemap_is_a_clear_error() -> None:
    with pytest.raises(FeedFormatError, match="malformed sitemap"):
        parse_feed(b"<urlset><url><loc>http://a/</loc></url>", max_bytes=MAX)


def test_gzipped_sitemaps_are_inflated_within_the_cap() -> None:
    plain = urlset(("http://a.example/1", None)).encode()
    assert [
        e.link for e in parse_feed(gzip.compress(plain), "application/x-gzip", max_bytes=MAX).entries
    ] == ["http://a.example/1"]
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    bomb = packer.compress(b"<urlset>" + b" " * 50_000_000) + packer.flush()
    assert len(bomb) < 100_000
    with pytest.raises(FeedFormatError, match="larger than 1000000 bytes"):
        parse_feed(bomb, "application/gzip", max_bytes=MAX)


async def test_a_google_news_sitemap_in_the_feeds_file(serve: Serve) -> None:
    bodies: dict[str, str] = {}

    async def sitemap(request: web.Request) -> web.StreamResponse:
        return web.Response(text=bodies["sitemap"], headers={"Content-Type": "text/xml"})

    server = await serve({"/news-sitemap.xml": sitemap, **pages("a", "b")})
    bodies["sitemap"] = news_sitemap(server.url)
    made, service = fetcher()
    state = FeedState()
    async with HttpFetcher(service.settings) as http:
        assert await made.poll_feed(http, feed(server.url + "/news-sitemap.xml"), state) == 2
    assert state.format == "sitemap google-news"
    first, second = sorted(service.raw.sent, key=lambda a: a.url)
    assert first.title == "Le brise-lames sera reconstruit"
    assert first.published == WHEN and first.language_hint == "fr"
    assert second.title == "Story b"  # a plain <url>: the page's own title
    assert second.published == datetime(2026, 3, 1, tzinfo=UTC)


async def test_sitemap_index_children_are_followed_within_bounds(serve: Serve) -> None:
    routes: dict[str, Handler] = {}

    async def route(request: web.Request) -> web.StreamResponse:
        if request.path not in routes:
            raise web.HTTPNotFound()
        return await routes[request.path](request)

    server = await serve({"/{name}": route, "/news/{slug}": route})
    base = server.url
    routes.update(pages("a", "b", "c", "d", "e"))
    routes["/index.xml"] = respond(
        sitemap_index(
            (f"{base}/2026-01.xml.gz", "2026-01-31"),
            (f"{base}/2026-03.xml", "2026-03-02"),
            (f"{base}/nested.xml", "2026-02-28"),
            (f"{base}/2025-12.xml", "2025-12-31"),  # the oldest: beyond sitemap_max_children
        )
    )
    routes["/2026-03.xml"] = respond(
        urlset((f"{base}/news/a.html", "2026-03-02"), (f"{base}/news/b.html", "2026-03-01")),
        headers={"ETag": '"march"'},
    )
    routes["/2026-01.xml.gz"] = respond(
        gzip.compress(urlset((f"{base}/news/c.html", "2026-01-15")).encode()), "application/x-gzip"
    )
    routes["/nested.xml"] = respond(sitemap_index((f"{base}/deep.xml", None)))
    routes["/deep.xml"] = respond(urlset((f"{base}/news/e.html", None)))
    routes["/2025-12.xml"] = respond(urlset((f"{base}/news/d.html", None)))

    made, service = fetcher(sitemap_max_children=3, sitemap_max_depth=1)
    state = FeedState()
    source = feed(base + "/index.xml")
    async with HttpFetcher(service.settings) as http:
        assert await made.poll_feed(http, source, state) == 3
        assert state.format == "sitemap-index sitemapindex"
        assert {a.url.rsplit("/", 1)[1] for a in service.raw.sent} == {"a.html", "b.html", "c.html"}
        assert server.count("/2025-12.xml") == 0  # a fourth child: over the count bound
        assert server.count("/deep.xml") == 0  # an index inside the index: over the depth bound
        assert server.count("/nested.xml") == 1
        # The next poll asks the children conditionally: an unchanged one is a 304, nothing is refetched.
        assert await made.poll_feed(http, source, state) == 0
    assert state.child_validators[f"{base}/2026-03.xml"] == ('"march"', None)
    assert server.count("/news/a.html") == 1 and server.count("/2026-03.xml") == 2
    assert service.letters == []

    deeper, service = fetcher(sitemap_max_children=10, sitemap_max_depth=2)
    async with HttpFetcher(service.settings) as http:
        assert await deeper.poll_feed(http, source, FeedState()) == 5  # d.html and e.html too
    assert server.count("/deep.xml") == 1


async def test_a_hostile_child_sitemap_is_a_dead_letter_not_a_crash(serve: Serve) -> None:
    routes: dict[str, Handler] = {}

    async def route(request: web.Request) -> web.StreamResponse:
        if request.path not in routes:
            raise web.HTTPNotFound()
        return await routes[request.path](request)

    server = await serve({"/{name}": route, "/news/{slug}": route})
    routes.update(pages("a"))
    routes["/index.xml"] = respond(
        sitemap_index((f"{server.url}/bomb.xml", None), (f"{server.url}/ok.xml", None))
    )
    routes["/bomb.xml"] = respond(_billion_laughs("urlset"))
    routes["/ok.xml"] = respond(urlset((f"{server.url}/news/a.html", None)))
    made, service = fetcher()
    state = FeedState()
    async with HttpFetcher(service.settings) as http:
        assert await made.poll_feed(http, feed(server.url + "/index.xml"), state) == 1
        assert await made.poll_feed(http, feed(server.url + "/index.xml"), state) == 0
    assert server.count("/bomb.xml") == 2 and server.count("/news/a.html") == 1
    assert state.last_error is not None and "bomb.xml" in state.last_error
    assert len(service.letters) == 1  # the same problem at the next poll: no second dead letter
    assert service.letters[0]["stage"] == "fetcher.feed"
    assert "bomb.xml" in service.letters[0]["reason"] and "sitemap" in service.letters[0]["reason"]
