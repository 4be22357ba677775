"""``wirewatch feeds discover``: a loopback site's feeds and sitemaps, through the real fetcher."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsroom import NewsSite
from wirewatch.cli import main
from wirewatch.core.feeds import load_feeds
from wirewatch.fetcher.discover import feed_links

pytestmark = pytest.mark.timeout(20)

HOME = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Harbour Gazette</title>
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/rss+xml" title="Harbour Gazette - Top stories" href="/rss.xml">
<link rel="Alternate" type="application/atom+xml; charset=utf-8" title=" Port  news " href="port/atom.xml">
<link rel="alternate" type="application/feed+json" href="{base}/feed.json">
<link rel="alternate" type="application/rss+xml" href="/rss.xml#again">
<link rel="alternate" type="text/html" hreflang="fr" href="/fr/">
<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
<link rel="alternate" type="application/rss+xml">
<link rel="alternate stylesheet" type="text/css" href="/dark.css">
</head><body><p>Welcome to the Harbour Gazette.</p></body></html>"""

ROBOTS = """User-agent: *
Disallow: /private/
Sitemap: {base}/sitemap-news.xml
sitemap: {base}/sitemap_index.xml
Sitemap: ftp://elsewhere.example/sitemap.xml
"""


@pytest.fixture
def gazette() -> Iterator[NewsSite]:
    site = NewsSite.start()
    site.serve("/", HOME.replace("{base}", site.url).encode(), "text/html; charset=utf-8")
    site.serve("/robots.txt", ROBOTS.replace("{base}", site.url).encode(), "text/plain")
    yield site
    site.close()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    monkeypatch.setenv("WIREWATCH_FEEDS_FILE", str(tmp_path / "feeds.yaml"))
    monkeypatch.setenv("WIREWATCH_FETCH_ALLOW_HOSTS", "127.0.0.1/32")
    monkeypatch.setenv("WIREWATCH_FETCH_HOST_DELAY", "0")
    monkeypatch.setenv("WIREWATCH_FETCH_RETRIES", "0")
    return CliRunner()


def test_feed_links_on_a_page() -> None:
    found = feed_links(HOME.replace("{base}", "https://cdn.example"), "https://gazette.example/home/")
    assert [(f.url, f.kind, f.title) for f in found] == [
        ("https://gazette.example/rss.xml", "rss", "Harbour Gazette - Top stories"),
        ("https://gazette.example/home/port/atom.xml", "atom", "Port news"),
        ("https://cdn.example/feed.json", "json-feed", None),
    ]
    based = feed_links(
        '<html><head><base href="https://b.example/x/"><link rel=alternate '
        "type=application/rss+xml href=feed></head></html>",
        "https://a.example/",
    )
    assert [f.url for f in based] == ["https://b.example/x/feed"]
    assert feed_links("", "https://a.example/") == []
    assert feed_links("<<<not html at all", "https://a.example/") == []


def test_discover_json(gazette: NewsSite, cli: CliRunner) -> None:
    result = cli.invoke(main, ["feeds", "discover", gazette.url + "/", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    base = gazette.url
    assert [(f["url"], f["kind"], f["source"]) for f in report["feeds"]] == [
        (f"{base}/rss.xml", "rss", "home page"),
        (f"{base}/port/atom.xml", "atom", "home page"),
        (f"{base}/feed.json", "json-feed", "home page"),
    ]
    assert [s["url"] for s in report["sitemaps"]] == [f"{base}/sitemap-news.xml", f"{base}/sitemap_index.xml"]
    assert report["problems"] == [] and report["added"] == []
    assert not (Path.cwd() / "feeds.yaml").exists()  # nothing written without --add


def test_discover_add(gazette: NewsSite, cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(main, ["feeds", "discover", gazette.url, "--add"])
    assert result.exit_code == 0, result.output
    assert "rss       " in result.stdout and "(robots.txt)" in result.stdout
    assert "added 5 to" in result.stdout
    listed = load_feeds(tmp_path / "feeds.yaml")
    assert [f.url for f in listed] == [
        f"{gazette.url}/rss.xml",
        f"{gazette.url}/port/atom.xml",
        f"{gazette.url}/feed.json",
        f"{gazette.url}/sitemap-news.xml",
        f"{gazette.url}/sitemap_index.xml",
    ]
    assert listed[0].name == "Harbour Gazette - Top stories"
    again = json.loads(cli.invoke(main, ["feeds", "discover", gazette.url, "--add", "--json"]).stdout)
    assert again["added"] == []  # already listed
    assert len(load_feeds(tmp_path / "feeds.yaml")) == 5


def test_discover_reports_what_it_could_not_read(cli: CliRunner) -> None:
    site = NewsSite.start()  # no home page, no robots.txt: both 404
    try:
        result = cli.invoke(main, ["feeds", "discover", site.url, "--json"])
    finally:
        site.close()
    report = json.loads(result.stdout)
    assert report["feeds"] == [] and report["sitemaps"] == []
    assert len(report["problems"]) == 1 and "HTTP 404" in report["problems"][0]
    assert result.exit_code == 1  # nothing found because nothing could be read: not an answer


def test_discover_goes_through_the_ssrf_guard(
    gazette: NewsSite, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIREWATCH_FETCH_ALLOW_HOSTS", "")
    result = cli.invoke(main, ["feeds", "discover", gazette.url])
    assert result.exit_code == 1
    assert "refusing to fetch" in result.output and "loopback" in result.output
    result = cli.invoke(main, ["feeds", "discover", "http://169.254.169.254/latest/"])
    assert result.exit_code == 1 and "link-local" in result.output


def test_discover_add_says_which_found_feeds_the_fetcher_would_refuse(cli: CliRunner, tmp_path: Path) -> None:
    """A site (allowed: 127.0.0.1/32) announcing a feed on a private address: added, with the
    warning of `feeds add`."""
    site = NewsSite.start()
    home = '<html><head><link rel="alternate" type="application/rss+xml" href="http://10.9.8.7/rss.xml">'
    home += "<link rel=alternate type=application/rss+xml href=/rss.xml></head></html>"
    site.serve("/", home.encode(), "text/html; charset=utf-8")
    try:
        result = cli.invoke(main, ["feeds", "discover", site.url, "--add"])
    finally:
        site.close()
    assert "added 2 to" in result.stdout
    listed = [f.url for f in load_feeds(tmp_path / "feeds.yaml")]
    assert listed == ["http://10.9.8.7/rss.xml", f"{site.url}/rss.xml"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1
    assert "refusing to fetch http://10.9.8.7/rss.xml: 10.9.8.7 is a private address" in warnings[0]
    assert warnings[0].endswith("to allow it: WIREWATCH_FETCH_ALLOW_HOSTS=127.0.0.1/32,10.9.8.7/32")
