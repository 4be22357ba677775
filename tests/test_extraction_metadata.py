"""``fetcher.metadata.page_metadata``: the fields wirewatch keeps, exactly as trafilatura's own
``extract_metadata`` finds them (it skips only categories, tags and the licence)."""

from __future__ import annotations

import json
from typing import Any

import trafilatura
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml.html import tostring
from trafilatura.metadata import extract_metadata

from wirewatch.fetcher.extract import DATE_SEARCH, extract_article
from wirewatch.fetcher.metadata import KEPT_FIELDS, page_metadata

SENTENCE = "The council met on Tuesday and voted the budget for the new library."
BODY = "<p>" + " ".join([SENTENCE] * 12) + "</p>"

#: Pieces of a page's head and body that trafilatura reads metadata from.
HEAD_PIECES = [
    '<meta property="og:title" content="Council votes the library budget">',
    '<meta name="author" content="Jane Roe">',
    '<meta name="author" content="jroe">',  # one word: dropped
    '<meta property="og:site_name" content="@valleytimes">',
    '<meta property="og:site_name" content="valley times">',
    '<meta name="description" content="The council voted &amp; approved it.">',
    '<meta property="article:published_time" content="2024-03-05T10:00:00+00:00">',
    '<meta property="og:url" content="https://valley.example/news/library-budget">',
    '<link rel="canonical" href="https://valley.example/news/library">',
    '<meta http-equiv="content-language" content="en">',
    '<meta property="article:tag" content="budget">',
    '<link rel="license" href="https://creativecommons.org/licenses/by/4.0/">',
    "<title>Library budget | Valley Times</title>",
]
JSON_LD = {
    "@context": "https://schema.org",
    "@type": "NewsArticle",
    "headline": "Budget for the library passes",
    "author": {"@type": "Person", "name": "John Doe"},
    "datePublished": "2024-03-06",
    "publisher": {"@type": "Organization", "name": "Valley Times"},
}
BODY_PIECES = [
    "<h1>The library budget passes</h1>",
    '<p class="byline">By Maria Example</p>',
    '<time datetime="2024-03-07">7 March 2024</time>',
    '<a href="/category/politics" rel="category">Politics</a>',
]


def page(head: list[str], json_ld: dict[str, Any] | None, body: list[str], lang: str = "en") -> str:
    script = f'<script type="application/ld+json">{json.dumps(json_ld)}</script>' if json_ld else ""
    return (
        f'<html lang="{lang}"><head>{"".join(head)}{script}</head>'
        f"<body><article>{''.join(body)}{BODY}</article></body></html>"
    )


def assert_same_as_trafilatura(html: str, url: str | None) -> None:
    tree = trafilatura.load_html(html)
    assert tree is not None
    before = tostring(tree)
    ours = page_metadata(tree, url, DATE_SEARCH)
    assert tostring(tree) == before  # only read: the extraction that follows sees the whole page
    theirs = extract_metadata(trafilatura.load_html(html), url, {**DATE_SEARCH})
    assert {f: getattr(ours, f) for f in KEPT_FIELDS} == {f: getattr(theirs, f) for f in KEPT_FIELDS}


def test_every_piece_read_as_trafilatura_reads_it() -> None:
    full = page(HEAD_PIECES, JSON_LD, BODY_PIECES)
    assert_same_as_trafilatura(full, "https://valley.example/news/library-budget?utm_source=x")
    assert_same_as_trafilatura(full, None)
    tree = trafilatura.load_html(full)
    meta = page_metadata(tree, None, DATE_SEARCH)
    assert meta.title and meta.author and meta.date and meta.sitename and meta.url
    assert meta.categories in (None, []) and meta.license is None  # not looked for


def test_a_page_without_metadata() -> None:
    assert_same_as_trafilatura(page([], None, []), None)
    assert_same_as_trafilatura(page([], None, []), "https://www.valley.example/a")  # site name from the URL


@settings(max_examples=60, deadline=None)
@given(
    head=st.lists(st.sampled_from(HEAD_PIECES), unique=True),
    json_ld=st.none() | st.just(JSON_LD) | st.just({"@type": "NewsArticle", "author": "x"}) | st.just([1, 2]),
    body=st.lists(st.sampled_from(BODY_PIECES), unique=True),
    url=st.sampled_from([None, "https://valley.example/2024/03/05/library.html", "not a url"]),
)
def test_any_mix_of_metadata_read_as_trafilatura_reads_it(
    head: list[str], json_ld: Any, body: list[str], url: str | None
) -> None:
    assert_same_as_trafilatura(page(head, json_ld, body), url)


def test_the_article_keeps_the_metadata() -> None:
    head = [h for h in HEAD_PIECES if not any(x in h for x in ("jroe", "@valley", "og:url"))]
    html = page(head, None, BODY_PIECES)
    article = extract_article(html, "https://valley.example/news/library-budget")
    assert article.title == "Council votes the library budget"
    assert article.author == "Jane Roe"
    assert article.sitename == "Valley Times"
    assert article.description == "The council voted & approved it."
    assert article.published is not None and article.published.date().isoformat() == "2024-03-05"
    assert article.canonical_url == "https://valley.example/news/library"
    assert "voted the budget for the new library" in article.text


def test_a_page_that_names_no_site_has_no_site_name() -> None:
    """trafilatura fills a missing site name with the URL's host; that stand-in is not kept, so
    the feed's own name (``feeds add --name``) becomes the article's source instead."""
    unnamed = ("site_name", "<title", "og:url", "canonical")
    head = [h for h in HEAD_PIECES if not any(x in h for x in unnamed)]
    html = page([*head, "<title>Council votes the library budget</title>"], None, BODY_PIECES)
    assert page_metadata_sitename(html, "http://127.0.0.1:8765/library.html") == "127.0.0.1:8765"
    assert extract_article(html, "http://127.0.0.1:8765/library.html").sitename is None
    assert extract_article(html, "https://www.valley.example/library").sitename is None
    # the page's declared URL, not the one fetched, is what trafilatura takes the host of
    declared = page([*head, '<link rel="canonical" href="https://valley.example/x">'], None, BODY_PIECES)
    assert extract_article(declared, "http://127.0.0.1:8765/library.html").sitename is None
    named = page([*head, '<meta property="og:site_name" content="Valley Times">'], None, BODY_PIECES)
    assert extract_article(named, "https://www.valley.example/library").sitename == "Valley Times"


def page_metadata_sitename(html: bytes | str, url: str) -> str | None:
    """What trafilatura itself gives as the site name of ``html``."""
    return extract_metadata(html, url).sitename
