"""``wirewatch ingest URL``: one article page, by URL, through the real fetcher's article path.

One fetcher instance (``python -m wirewatch run fetcher``) on tansu polls a loopback site's feed.
The CLI puts article requests on the backfill topic; the fetcher fetches each page under its SSRF
guard and host gate, extracts it and produces it to the raw topic. Checked, on what reaches the
raw and dead-letter topics, ``/backfills`` and the site's request log: a page is produced once,
with no feed; asked again (by a second command, or by two requests at once) it is fetched once
and found seen, as is an article the feed brought; a 404, an address the SSRF guard refuses and a
feed given as a page fail with their reason, in ``/backfills`` and as one dead letter each;
``wirewatch backfill`` of an article page fails at once with a reason naming ``wirewatch ingest``,
fetching nothing as an article.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import run, wait_for
from test_fetcher_feeds import article_page
from test_fetcher_state import Fetchers, Site
from wirewatch.core.feeds import save_feeds
from wirewatch.core.ids import article_id, feed_id
from wirewatch.core.kafka import read_topic
from wirewatch.core.models import DeadLetter, Feed, RawArticle
from wirewatch.fetcher.backfill import new_article_requests, send_requests
from wirewatch.fetcher.errors import ALLOW_HOSTS_HINT
from wirewatch.local.servers import LocalServers

pytestmark = pytest.mark.timeout(150)

HOST = "127.0.0.1"
#: An address the SSRF guard refuses (link-local: cloud metadata); the tests allow only 127.0.0.0/8.
REFUSED = "http://169.254.169.254/latest/meta-data/story.html"


@pytest.fixture
def site() -> Iterator[Site]:
    news = Site.start([HOST])
    yield news
    news.close()


def cli(fetchers: Fetchers, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wirewatch", *args],
        env={**os.environ, **fetchers.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def ingest(fetchers: Fetchers, *urls: str) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = json.loads(cli(fetchers, "ingest", *urls, "--json").stdout)
    return requests


def finished(fetchers: Fetchers, *ids: str) -> dict[str, dict[str, Any]]:
    """The records of requests ``ids`` once every one is done or failed."""

    def look() -> dict[str, dict[str, Any]] | None:
        records = {r["id"]: r for r in fetchers.page("one", "/backfills") or [] if r["id"] in ids}
        over = len(records) == len(ids) and all(r["status"] in ("done", "failed") for r in records.values())
        return records if over else None

    found: dict[str, dict[str, Any]] = wait_for(look, timeout=45, what=f"requests {ids} finished")
    return found


def articles_of(fetchers: Fetchers, site: Site) -> list[RawArticle]:
    """The raw articles of this test's site (the servers, so the topics, are the module's)."""
    return [a for a in fetchers.raw_articles() if a.url.startswith(site.base(HOST) + "/")]


def dead_letters(fetchers: Fetchers) -> list[DeadLetter]:
    settings = fetchers.settings
    return [
        DeadLetter.from_bytes(value)
        for _, value in run(read_topic(settings, settings.topic_dead_letters, timeout=5))
        if value is not None
    ]


def test_ingest_puts_one_page_through_the_fetcher_once(
    servers: LocalServers, site: Site, tmp_path: Path
) -> None:
    live = site.feed(HOST, "/rss.xml", "live-1")
    sent = site.article(HOST, "sent-1")
    # answers slowly: both requests for it are in the lane while it is being fetched
    twice = site.serve(HOST, "/news/twice.html", article_page("Told twice").encode(), "text/html", delay=1.0)
    missing = site.base(HOST) + "/news/missing.html"
    fetchers = Fetchers(servers, tmp_path)
    save_feeds(fetchers.feeds_file, [Feed(id=feed_id(live), url=live, interval=60)])
    live_page = site.base(HOST) + "/news/live-1.html"
    try:
        fetchers.start("one")
        fetchers.wait_healthy("one")
        wait_for(lambda: len(articles_of(fetchers, site)) == 1, timeout=45, what="the feed's article")

        # A page, named twice in one command (the second with a tracking parameter): one request.
        requests = ingest(fetchers, sent, sent + "?utm_source=mail")
        assert [(r["kind"], r["url"], r["since"]) for r in requests] == [("article", sent, None)]
        first = finished(fetchers, requests[0]["id"])[requests[0]["id"]]
        assert first["status"] == "done" and first["produced"] == 1 and first["error"] is None
        assert first["article_id"] == article_id(sent)

        # The same page again, and the feed's article: found seen, not fetched again.
        again = ingest(fetchers, sent, live_page)
        records = finished(fetchers, *(r["id"] for r in again))
        assert [records[r["id"]]["already_seen"] for r in again] == [1, 1]
        assert all(records[r["id"]]["status"] == "done" and records[r["id"]]["produced"] == 0 for r in again)
        assert records[again[1]["id"]]["article_id"] == article_id(live_page)

        # Two requests for one page at once (two commands at the same moment): one fetch.
        pair = new_article_requests([twice]) + new_article_requests([twice])
        assert pair[0].id != pair[1].id
        run(send_requests(fetchers.settings, pair))
        both = finished(fetchers, *(r.id for r in pair))
        assert sorted((r["produced"], r["already_seen"]) for r in both.values()) == [(0, 1), (1, 0)]

        # A page that 404s, a refused address, a feed given as a page: failed, saying why.
        shown = cli(fetchers, "ingest", missing, REFUSED, live)
        assert "will not fetch this page" in shown.stderr and "169.254.169.254" in shown.stderr
        lines = shown.stdout.splitlines()
        ids = [line.split()[1] for line in lines if line.startswith("ingest ")]
        assert len(ids) == 3 and lines[-1].startswith("progress: ") and "/backfills" in lines[-1]
        failures = finished(fetchers, *ids)
        articles = articles_of(fetchers, site)
        letters = [
            d
            for d in dead_letters(fetchers)
            if d.stage == "fetcher.ingest" and d.url in (missing, REFUSED, live)
        ]
    finally:
        fetchers.stop_all()

    assert all(failures[i]["status"] == "failed" and failures[i]["failed"] == 1 for i in ids)
    assert failures[ids[0]]["error"] == f"HTTP 404 for {missing}"
    assert failures[ids[1]]["error"].endswith(ALLOW_HOSTS_HINT)
    assert "wirewatch backfill" in failures[ids[2]]["error"]
    # One dead letter each, with the same reason, at the page's URL.
    assert sorted((d.url, d.reason) for d in letters) == sorted(
        (url, failures[i]["error"]) for url, i in zip([missing, REFUSED, live], ids, strict=True)
    )

    # Exactly one article per page, produced as a polled one is but from no feed.
    by_id = {a.id: a for a in articles}
    assert len(articles) == len(by_id) == 3
    assert set(by_id) == {article_id(live_page), article_id(sent), article_id(twice)}
    ingested = by_id[article_id(sent)]
    assert ingested.feed_url is None and ingested.url == sent and ingested.http_status == 200
    assert ingested.title == "Story sent-1 from 127.0.0.1" and len(ingested.text) > 200
    assert ingested.source == "Harbour Gazette"  # the page's own og:site_name, extracted as ever
    # The CLI fetched nothing: each page was requested once, by the fetcher.
    assert [site.count(HOST, p) for p in ("/news/sent-1.html", "/news/twice.html", "/news/live-1.html")] == [
        1,
        1,
        1,
    ]
    assert site.count(HOST, "/news/missing.html") == 1


def test_backfill_of_an_article_page_names_ingest(servers: LocalServers, site: Site, tmp_path: Path) -> None:
    page = site.article(HOST, "one-story")
    fetchers = Fetchers(servers, tmp_path)
    save_feeds(fetchers.feeds_file, [])
    try:
        fetchers.start("one")
        fetchers.wait_healthy("one")
        request = json.loads(cli(fetchers, "backfill", page, "--since", "2026-01-01", "--json").stdout)
        assert request["kind"] == "archive"
        record = finished(fetchers, request["id"])[request["id"]]
        letters = [d for d in dead_letters(fetchers) if d.stage == "fetcher.backfill" and d.url == page]
        articles = articles_of(fetchers, site)
    finally:
        fetchers.stop_all()

    assert record["status"] == "failed" and record["sitemaps_read"] == 0
    assert record["error"].startswith(f"{page} is an HTML page, not a feed or sitemap")
    assert f"`wirewatch ingest {page}`" in record["error"] and "wirewatch feeds discover" in record["error"]
    assert [d.reason for d in letters] == [record["error"]]
    assert articles == []
    assert site.count(HOST, "/news/one-story.html") == 1  # asked for as a feed, its body never read
