"""Fetcher pieces that need no servers: decoding, extraction, entry dates, building the raw article."""

from __future__ import annotations

import encodings.aliases
import hashlib
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import make_settings
from wirewatch.core.ids import article_id, canonical_url
from wirewatch.core.models import Feed, RawArticle
from wirewatch.fetcher.extract import Extracted, ExtractionError, decode_html_bytes, extract_article
from wirewatch.fetcher.formats import FeedEntry, entry_published
from wirewatch.fetcher.service import Fetcher, Page

SETTINGS = settings(max_examples=200, deadline=None)
CAFE = "Le café de la gare a fermé — « c'était prévu »."
#: Every codec name Python knows, plus the non-text and error-prone ones a hostile server could declare.
CODECS = sorted(
    set(encodings.aliases.aliases)
    | set(encodings.aliases.aliases.values())
    | {"undefined", "punycode", "idna", "rot13", "base64", "hex", "zip", "utf-7", "unicode_escape"}
    | {"x-unknown", ""}
)


def _page(body: bytes, content_type: str | None = "text/html") -> Page:
    return Page("https://news.example/a", 200, body, content_type, {})


# --- decode_html_bytes ----------------------------------------------------------------------------------


def test_declared_charset_is_used() -> None:
    assert decode_html_bytes(CAFE.encode("cp1252"), "text/html; charset=windows-1252") == CAFE
    assert decode_html_bytes(CAFE.encode("utf-8"), 'text/html; Charset="UTF-8"; foo=bar') == CAFE


def test_wrong_declared_charset_falls_back() -> None:
    # Declared UTF-8, sent Latin-1: UTF-8 fails, Latin-1 never does.
    latin = "Le café de la gare a fermé à l'aube."
    assert decode_html_bytes(latin.encode("latin-1"), "text/html; charset=utf-8") == latin
    # Declared ASCII (too narrow), sent UTF-8: the UTF-8 retry gets it right.
    assert decode_html_bytes(CAFE.encode("utf-8"), "text/html; charset=us-ascii") == CAFE


@pytest.mark.parametrize("charset", ["x-klingon", "undefined", "punycode", "rot13", "base64", ""])
def test_unknown_or_unusable_declared_charset_falls_back(charset: str) -> None:
    assert decode_html_bytes(CAFE.encode("utf-8"), f"text/html; charset={charset}") == CAFE
    assert decode_html_bytes("café".encode("latin-1"), f"text/html; charset={charset}") == "café"


@pytest.mark.parametrize("content_type", [None, "text/html", "application/xhtml+xml"])
def test_missing_charset(content_type: str | None) -> None:
    assert decode_html_bytes(CAFE.encode("utf-8"), content_type) == CAFE
    assert decode_html_bytes("café crème".encode("latin-1"), content_type) == "café crème"


def test_invalid_utf8_never_raises() -> None:
    body = b"<p>ok \xff\xfe \xc3\x28 \xed\xa0\x80 \xf0\x28\x8c\x28</p>"
    text = decode_html_bytes(body, "text/html; charset=utf-8")
    assert text.startswith("<p>ok ") and text.endswith("</p>")
    assert len(text) == len(body)  # the Latin-1 fallback maps every byte to one character


@SETTINGS
@given(
    st.binary(max_size=200),
    st.one_of(
        st.none(),
        st.text(max_size=40),
        st.builds(
            lambda c, extra: f"text/html; charset={c}{extra}",
            st.sampled_from(CODECS),
            st.sampled_from(["", ";", '"', "; q=1"]),
        ),
    ),
)
@example(b"\\", "text/html; charset=punycode")
@example(b"abc", "text/html; charset=undefined")
@example(b"\xff", "charset=utf-16")
def test_decode_html_never_raises(body: bytes, content_type: str | None) -> None:
    assert isinstance(decode_html_bytes(body, content_type), str)


# --- extraction -----------------------------------------------------------------------------------

NAV_ONLY = (
    "<!DOCTYPE html><html lang='en'><head><title>Example News</title></head><body>"
    "<header><nav><ul>"
    + "".join(f"<li><a href='/section-{i}'>Section {i}</a></li>" for i in range(15))
    + "</ul></nav></header>"
    "<footer><a href='/about'>About us</a> <a href='/privacy'>Privacy policy</a></footer></body></html>"
)
HEADLINES_ONLY = (
    "<html><body><div class='menu'><ul>"
    + "".join(f"<li><a href='/story-{i}'>Mayor unveils harbour plan number {i}</a></li>" for i in range(8))
    + "</ul></div></body></html>"
)
ARTICLE = """<!DOCTYPE html><html lang="en"><head><title>Council approves budget | Example News</title>
<meta property="og:site_name" content="Example News">
<link rel="canonical" href="https://news.example/2026/03/council-budget">
</head><body>
<header><nav><a href="/">Home</a> <a href="/politics">Politics</a> <a href="/sport">Sport</a></nav></header>
<main><article><h1>Council approves budget</h1>
<p>The city council approved a budget of 5 million euros on Tuesday after a long debate about public
transport and schools. <a href="/transport">Transport</a> was the main point of contention.</p>
<p>Opposition members said the plan did not do enough for housing, and promised amendments next month.</p>
<p>The mayor said the vote was a turning point for the city and thanked residents for their patience.</p>
</article></main>
<footer><p>All rights reserved.</p></footer></body></html>"""


@pytest.mark.parametrize("html", [NAV_ONLY, HEADLINES_ONLY, "", "<html><body></body></html>"])
def test_pages_without_an_article_raise_extraction_error(html: str) -> None:
    with pytest.raises(ExtractionError):
        extract_article(html, "https://news.example/")


def test_an_article_is_extracted_without_its_navigation() -> None:
    extracted = extract_article(ARTICLE, "https://news.example/2026/03/council-budget?utm_source=rss")
    assert "approved a budget of 5 million euros" in extracted.text
    assert "promised amendments next month" in extracted.text
    assert "Sport" not in extracted.text
    assert "All rights reserved" not in extracted.text
    assert extracted.title == "Council approves budget"
    assert extracted.sitename == "Example News"
    assert extracted.canonical_url == "https://news.example/2026/03/council-budget"


def _dated_article(head: str = "", byline: str = "") -> str:
    return (
        '<!DOCTYPE html><html lang="fr"><head><title>Offensive sur Mossoul | Exemple</title>'
        f"{head}</head><body><main><article><h1>Offensive sur Mossoul</h1>{byline}"
        "<p>L'offensive pour reprendre la ville de Mossoul, contrôlée par Daech depuis 2014, continue "
        "depuis le 17 octobre, selon l'état-major irakien, qui fait état de combats dans l'est.</p>"
        "<p>Une frappe avait touché l'armée syrienne par erreur le 17 septembre 2016, tuant des dizaines "
        "de soldats, a rappelé le ministère russe de la Défense dans un communiqué publié mardi.</p>"
        "<p>Les forces kurdes progressent de leur côté vers Raqqa, à quelque 40 kilomètres au nord.</p>"
        "</article></main></body></html>"
    )


def test_dates_the_text_talks_about_are_not_the_publication_date() -> None:
    """Without a date in the page's markup, the years and days its text mentions are not taken
    for its own (htmldate's search of the running text reads 2016-09-17 here)."""
    assert extract_article(_dated_article(), "https://news.example/mossoul").published is None


@pytest.mark.parametrize(
    ("head", "byline"),
    [
        ('<meta property="article:published_time" content="2016-10-25T09:00:00+00:00">', ""),
        ("", '<p class="byline"><time datetime="2016-10-25T09:00:00+00:00">25 octobre 2016</time></p>'),
    ],
    ids=["meta", "time-element"],
)
def test_the_publication_date_comes_from_the_markup(head: str, byline: str) -> None:
    published = extract_article(_dated_article(head, byline), "https://news.example/mossoul").published
    assert published is not None and published.date() == datetime(2016, 10, 25).date()


# --- entry dates ----------------------------------------------------------------------------------


def testentry_published() -> None:
    when = time.strptime("2026-03-04 09:30:00", "%Y-%m-%d %H:%M:%S")
    later = time.strptime("2026-03-05 10:00:00", "%Y-%m-%d %H:%M:%S")
    expected = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    assert entry_published({"published_parsed": when, "updated_parsed": later}) == expected
    assert entry_published({"updated_parsed": when}) == expected
    assert entry_published({"published_parsed": None, "updated_parsed": when}) == expected
    assert entry_published({"published_parsed": "garbage", "updated_parsed": when}) == expected
    assert entry_published({"published_parsed": (99999999, 1, 1, 0, 0, 0, 0, 1, 0)}) is None
    assert entry_published({}) is None


# --- build_article --------------------------------------------------------------------------------

LINK = "https://News.Example/2026/03/council-budget?utm_source=rss&id=7"
FEED = Feed(id="f" * 32, url="https://news.example/rss.xml", name="Example News (feed)", language="en-GB")


@pytest.fixture
def fetcher() -> Fetcher:
    topics: list[str] = []

    def topic(name: str) -> str:
        topics.append(name)
        return name

    made = Fetcher(SimpleNamespace(settings=make_settings(), topic=topic))  # type: ignore[arg-type]
    assert topics == [made.settings.topic_raw]
    return made


def _extracted(canonical: str | None, **changes: Any) -> Extracted:
    values: dict[str, Any] = {
        "text": "The city council approved a budget of 5 million euros on Tuesday.",
        "title": "Council approves budget (page)",
        "author": "Jeanne Martin",
        "published": datetime(2026, 3, 1, tzinfo=UTC),
        "sitename": None,
        "description": None,
        "language": "fr",
        "canonical_url": canonical,
    }
    values.update(changes)
    return Extracted(**values)


def _build(
    fetcher: Fetcher,
    extracted: Extracted,
    entry: FeedEntry | None = None,
    page_url: str = "https://news.example/2026/03/council-budget?id=7",
) -> RawArticle:
    body = b"<html>...</html>"
    page = Page(page_url, 200, body, "text/html; charset=utf-8", {})
    aid = article_id(LINK)
    return fetcher.build_article(FEED, entry or FeedEntry(LINK), aid, page, extracted, "Feed title", None)


def test_same_host_canonical_link_gives_the_id(fetcher: Fetcher) -> None:
    declared = "https://news.example/2026/03/council-budget-approved#main"
    article = _build(fetcher, _extracted(declared))
    assert article.canonical_url == canonical_url(declared)
    assert article.id == article_id(declared)
    assert article.id != article_id(LINK)


@pytest.mark.parametrize(
    "declared",
    [
        "https://aggregator.example/2026/03/council-budget",  # another site claiming the article
        "https://sub.news.example/2026/03/council-budget",  # another host, even a subdomain
        "javascript:void(0)",  # unusable
        "/relative/path",  # unusable
        None,
    ],
)
def test_other_canonical_links_are_ignored(fetcher: Fetcher, declared: str | None) -> None:
    article = _build(fetcher, _extracted(declared))
    assert article.canonical_url == canonical_url(LINK)
    assert article.id == article_id(LINK)


def test_build_article_fields(fetcher: Fetcher) -> None:
    entry = FeedEntry(
        LINK,
        title="  Council approves budget (feed)  ",
        summary="Feed summary",
        published=datetime(2026, 3, 4, 9, 30, tzinfo=UTC),
    )
    article = _build(fetcher, _extracted(None), entry)
    assert article.title == "Council approves budget (feed)"  # the feed's title wins, stripped
    assert article.published == datetime(2026, 3, 4, 9, 30, tzinfo=UTC)  # the feed's date wins
    assert article.description == "Feed summary"
    assert article.author == "Jeanne Martin"
    assert article.source == "Example News (feed)"  # no site name on the page: the feed's name
    assert article.source_domain == "news.example"
    assert article.feed_url == FEED.url
    assert article.url == "https://news.example/2026/03/council-budget?id=7"
    assert article.html_sha256 == hashlib.sha256(b"<html>...</html>").hexdigest()
    assert article.html_bytes == len(b"<html>...</html>")
    assert article.http_status == 200
    assert article.language_hint == "fr"  # feed_language was None: the page's
    assert RawArticle.from_bytes(article.to_bytes()) == article

    fallback = _build(fetcher, _extracted(None, sitename="Example News"))
    assert fallback.title == "Council approves budget (page)"
    assert fallback.published == datetime(2026, 3, 1, tzinfo=UTC)
    assert fallback.source == "Example News"
