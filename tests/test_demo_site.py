"""The bundled demo site (``wirewatch up --demo``): feeds, article pages, content, release schedule."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirewatch.core.feeds import load_feeds
from wirewatch.demo.site import (
    EXACT_DUPLICATE,
    INITIAL_RELEASE,
    REWRITE,
    TRANSLATION_PAIR,
    DemoArticle,
    DemoContent,
    DemoSite,
    Outlet,
    content_of_this_week,
    load_content,
    write_feeds_file,
)
from wirewatch.fetcher.extract import extract_article


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _article(key: tuple[str, str]) -> DemoArticle:
    article = load_content().article(key)
    assert article is not None, key
    return article


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite.start() as demo:
        yield demo


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


# --- content ----------------------------------------------------------------------------------------


def test_content_is_a_plausible_news_corpus() -> None:
    content = load_content()
    assert 4 <= len(content.outlets) <= 5
    assert 16 <= len(content.articles) <= 20
    assert {o.language for o in content.outlets} == {"fr", "en"}
    published = [a.published for a in content.articles]
    assert published == sorted(published)
    assert all(p.tzinfo is not None and p.year == 2026 for p in published)
    assert len({p.date() for p in published}) >= 3
    for article in content.articles:
        words = sum(len(p.split()) for p in article.paragraphs)
        assert 150 <= words <= 400, (article.key, words)
        assert len(article.paragraphs) >= 4, article.key
    for outlet in content.outlets:
        assert any(a.outlet == outlet.slug for a in content.articles), outlet.slug


def test_exact_duplicate_is_word_for_word_at_another_url(site: DemoSite, client: httpx.Client) -> None:
    original, copy = (_article(key) for key in EXACT_DUPLICATE)
    assert original.outlet != copy.outlet
    assert original.paragraphs == copy.paragraphs
    assert original.title == copy.title
    url_a, url_b = site.article_url(original), site.article_url(copy)
    assert url_a != url_b
    texts = [extract_article(client.get(url).text, url).text for url in (url_a, url_b)]
    assert texts[0] == texts[1]
    assert _norm(original.paragraphs[2]) in _norm(texts[0])


def test_rewrite_copies_paragraphs_and_adds_its_own_introduction() -> None:
    dispatch, rewrite = (_article(key) for key in REWRITE)
    copied = [p for p in rewrite.paragraphs if p in dispatch.paragraphs]
    assert len(copied) >= 3
    assert rewrite.paragraphs[0] not in dispatch.paragraphs  # its own introduction
    assert len(copied) < len(dispatch.paragraphs)  # not a full copy
    assert rewrite.title != dispatch.title and rewrite.outlet != dispatch.outlet


def test_translation_pair_reports_one_event_in_two_languages() -> None:
    content = load_content()
    french, english = (_article(key) for key in TRANSLATION_PAIR)
    languages = {o.slug: o.language for o in content.outlets}
    assert (languages[french.outlet], languages[english.outlet]) == ("fr", "en")
    assert french.published.date() == english.published.date()
    fr_text, en_text = " ".join(french.paragraphs), " ".join(english.paragraphs)
    for name in ("Claire Vasseur", "Saint-Pierre-des-Corps", "Martine Giraud", "Tours"):
        assert name in fr_text and name in en_text
    for fr_number, en_number in (("6,12", "6.12"), ("3 200", "3,200"), ("214", "214"), ("1982", "1982")):
        assert fr_number in fr_text and en_number in en_text


# --- feeds and pages ---------------------------------------------------------------------------------


def test_every_feed_parses_and_every_item_serves_its_article(site: DemoSite, client: httpx.Client) -> None:
    content = site.content
    feeds = site.feed_urls()
    assert [(n, lang) for _, n, lang in feeds] == [(o.name, o.language) for o in content.outlets]
    seen = 0
    for feed_url, name, language in feeds:
        response = client.get(feed_url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/rss+xml")
        parsed = feedparser.parse(response.content)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert parsed.version == "rss20"
        assert parsed.feed.title == name
        assert parsed.feed.language == language
        outlet_slug = urlsplit(feed_url).path.split("/")[1]
        expected = {a.path: a for a in content.articles if a.outlet == outlet_slug}
        assert len(parsed.entries) == len(expected) > 0
        for entry in parsed.entries:
            article = expected[urlsplit(entry.link).path]
            assert entry.title == article.title
            assert entry.id == entry.link
            assert entry.summary == article.summary
            assert entry.published_parsed is not None
            assert calendar.timegm(entry.published_parsed) == int(article.published.timestamp())
            page = client.get(entry.link)
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert f'<html lang="{language}">' in page.text
            assert f'<link rel="canonical" href="{entry.link}">' in page.text
            seen += 1
    assert seen == len(content.articles)


@pytest.mark.parametrize("key", [TRANSLATION_PAIR[0], TRANSLATION_PAIR[1], REWRITE[1]])
def test_extracted_article_has_the_text_and_none_of_the_boilerplate(
    site: DemoSite, client: httpx.Client, key: tuple[str, str]
) -> None:
    article = _article(key)
    outlet = site.content.outlet(article.outlet)
    assert outlet is not None
    url = site.article_url(article)
    html = client.get(url).text
    # The page really carries the boilerplate that extraction must drop.
    boilerplate = (
        ["Abonnez-vous à notre newsletter", "Tous droits réservés", "À lire aussi", "Mentions légales"]
        if outlet.language == "fr"
        else ["Subscribe to our newsletter", "All rights reserved", "Related stories", "Privacy policy"]
    )
    related = [a.title for a in site.content.articles if a.outlet == article.outlet and a.key != article.key]
    for snippet in [*boilerplate, *related[:2]]:
        assert snippet.replace("'", "&#x27;") in html, snippet

    extracted = extract_article(html, url)
    text = _norm(extracted.text)
    for paragraph in article.paragraphs:
        assert _norm(paragraph) in text
    for snippet in [*boilerplate, *related, f"© 2026 {outlet.name}"]:
        assert snippet not in text
    assert extracted.title == article.title
    assert extracted.sitename == outlet.name
    assert extracted.author == article.author
    assert extracted.published is not None
    assert extracted.published.date() == article.published.date()


def test_index_and_outlet_pages(site: DemoSite, client: httpx.Client) -> None:
    index = client.get(site.url + "/")
    assert index.status_code == 200
    for feed_url, name, _ in site.feed_urls():
        assert feed_url in index.text and name in index.text
    front = client.get(site.url + "/global-wire/")
    assert front.status_code == 200
    assert all(a.title in front.text for a in site.content.articles if a.outlet == "global-wire")


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/global-wire/missing.html",
        "/unknown-outlet/rss.xml",
        "/global-wire/rss.xml/extra",
        "/global-wire/voltera-battery-plant-dunkirk",
        "/global-wire/atom.xml",
    ],
)
def test_unknown_paths_are_404(site: DemoSite, client: httpx.Client, path: str) -> None:
    response = client.get(site.url + path)
    assert response.status_code == 404
    assert "Page not found" in response.text


def test_conditional_get_and_head(site: DemoSite, client: httpx.Client) -> None:
    feed_url = site.feed_urls()[0][0]
    first = client.get(feed_url)
    etag = first.headers["etag"]
    assert client.get(feed_url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(feed_url, headers={"If-None-Match": '"other"'}).status_code == 200
    head = client.head(feed_url)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(first.content)


def test_text_is_escaped_in_pages_and_feeds(client: httpx.Client) -> None:
    nasty = 'Tom & "Jerry" <script>alert(1)</script>'
    content = DemoContent(
        outlets=(Outlet(slug="test-outlet", name="Test & <Co>", language="en"),),
        articles=(
            DemoArticle(
                slug="nasty",
                outlet="test-outlet",
                title=nasty,
                published=datetime(2026, 3, 9, 12, 0, tzinfo=UTC),
                author="A <b>",
                summary=nasty,
                paragraphs=(nasty, "Second paragraph with enough words to be kept as text."),
            ),
        ),
    )
    with DemoSite.start(content=content) as demo:
        feed_url, name, _ = demo.feed_urls()[0]
        parsed = feedparser.parse(client.get(feed_url).content)
        assert not parsed.bozo
        assert parsed.feed.title == name == "Test & <Co>"
        assert parsed.entries[0].title == nasty
        page = client.get(parsed.entries[0].link).text
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<b>" not in page


# --- release schedule and feeds file -----------------------------------------------------------------


def _feed_items(demo: DemoSite, client: httpx.Client) -> set[str]:
    links: set[str] = set()
    for feed_url, _, _ in demo.feed_urls():
        links.update(entry.link for entry in feedparser.parse(client.get(feed_url).content).entries)
    return links


def test_release_interval_publishes_progressively(client: httpx.Client) -> None:
    now = [1000.0]
    with DemoSite.start(release_interval=60, clock=lambda: now[0]) as demo:
        ordered = [demo.article_url(a) for a in demo.content.articles]
        assert _feed_items(demo, client) == set(ordered[:INITIAL_RELEASE])
        assert client.get(ordered[0]).status_code == 200
        assert client.get(ordered[-1]).status_code == 404  # not published yet
        now[0] += 60
        assert _feed_items(demo, client) == set(ordered[: INITIAL_RELEASE + 1])
        now[0] += 59
        assert _feed_items(demo, client) == set(ordered[: INITIAL_RELEASE + 1])
        now[0] += 3600
        assert _feed_items(demo, client) == set(ordered)
        assert client.get(ordered[-1]).status_code == 200


def test_release_interval_with_the_real_clock_starts_with_the_earliest_articles(client: httpx.Client) -> None:
    with DemoSite.start(release_interval=3600) as demo:
        first = demo.content.articles[:INITIAL_RELEASE]
        assert _feed_items(demo, client) == {demo.article_url(a) for a in first}
        assert all(a.published <= b.published for a in first for b in demo.content.articles[INITIAL_RELEASE:])


@given(
    now=st.datetimes(min_value=datetime(2026, 3, 13), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
)
def test_content_moved_to_now_keeps_its_gaps_and_ends_within_the_last_day(now: datetime) -> None:
    original = load_content()
    moved = original.moved_to(now)
    newest = moved.articles[-1].published
    assert newest <= now < newest + timedelta(days=1)
    shifts = {m.published - o.published for o, m in zip(original.articles, moved.articles, strict=True)}
    assert len(shifts) == 1 and next(iter(shifts)) % timedelta(days=1) == timedelta(0)
    assert [(a.key, a.title) for a in moved.articles] == [(a.key, a.title) for a in original.articles]


def test_the_demo_serves_this_weeks_content() -> None:
    newest = content_of_this_week().articles[-1].published
    assert datetime.now(UTC) - timedelta(days=1) < newest <= datetime.now(UTC)


def test_a_moved_site_serves_the_new_dates(client: httpx.Client) -> None:
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    with DemoSite.start(content=load_content().moved_to(now)) as demo:
        article = demo.content.articles[-1]
        extracted = extract_article(client.get(demo.article_url(article)).text, demo.article_url(article))
        assert extracted.published is not None and extracted.published.date() == article.published.date()
        assert now - timedelta(days=1) < article.published <= now
        feed = feedparser.parse(client.get(demo.feed_urls()[0][0]).text)
        assert all(
            now - timedelta(days=7) < datetime(*e.published_parsed[:6], tzinfo=UTC) <= now
            for e in feed.entries
        )


def test_release_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        DemoSite.start(release_interval=0)


def test_write_feeds_file_loads_as_wirewatch_feeds(site: DemoSite, tmp_path: Path) -> None:
    path = tmp_path / "demo" / "feeds.yaml"
    write_feeds_file(path, site)
    feeds = load_feeds(path)
    assert [(f.url, f.name, f.language) for f in feeds] == site.feed_urls()
    assert all(f.interval == 10 for f in feeds)
    assert len({f.id for f in feeds}) == len(feeds)
    assert "La Dépêche Continentale" in path.read_text(encoding="utf-8")  # allow_unicode, not \xE9 escapes


def test_close_releases_the_port(client: httpx.Client) -> None:
    demo = DemoSite.start()
    url = demo.url + "/"
    assert client.get(url).status_code == 200
    demo.close()
    demo.close()  # idempotent
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2)
