"""``wirewatch backfill``: a site's archive since a date, pulled by the real fetcher at low priority.

The loopback site has a live feed (polled every second) and an archive behind a sitemap index:
a month from last year (skipped by its ``lastmod``), January 2026 (half of it before
``--since``), February 2026 with an undated entry and one article the live feed already
brought. Its pages answer slowly, so the backfill takes a few seconds; meanwhile the live
feed publishes a new article. Checked: exactly the archive articles dated ``--since`` or later
are produced, once each; the live feed kept being polled on time and its new article was
fetched before the backfill ended; the host never saw more requests at once than its limit;
``/backfills`` reports the counts.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for
from test_fetcher_state import Fetchers, Site
from wirewatch.core.feeds import save_feeds
from wirewatch.core.ids import article_id, feed_id
from wirewatch.core.models import Feed
from wirewatch.local.servers import LocalServers

pytestmark = pytest.mark.timeout(120)

HOST = "127.0.0.1"
SINCE = "2026-01-15"
PAGE_DELAY = 0.15  # each archive page takes this long to answer


@pytest.fixture
def site() -> Iterator[Site]:
    news = Site.start([HOST])
    yield news
    news.close()


def urlset(site: Site, entries: list[tuple[str, datetime | None]]) -> bytes:
    urls = []
    for slug, when in entries:
        url = site.article(HOST, slug, delay=PAGE_DELAY)
        lastmod = f"<lastmod>{when.isoformat()}</lastmod>" if when else ""
        urls.append(f"<url><loc>{url}</loc>{lastmod}</url>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{"".join(urls)}</urlset>'
    ).encode()


def archive(site: Site, live_slug: str) -> tuple[str, set[str], set[str]]:
    """The sitemap index; the slugs expected from the backfill, and those that must not come."""
    old = [(f"old-{n}", datetime(2025, 1, 1 + n, tzinfo=UTC)) for n in range(5)]
    january = [(f"jan-{n}", datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=3 * n)) for n in range(10)]
    february = [(f"feb-{n}", datetime(2026, 2, 1 + n, tzinfo=UTC)) for n in range(8)]
    february += [("feb-undated", None), (live_slug, datetime(2026, 2, 20, tzinfo=UTC))]
    children = [
        ("/sitemaps/2025-01.xml", old, "2025-01-31"),
        ("/sitemaps/2026-01.xml", january, "2026-01-31"),
        ("/sitemaps/2026-02.xml", february, "2026-02-28"),
    ]
    index = []
    for path, entries, lastmod in children:
        url = site.serve(HOST, path, urlset(site, entries), "application/xml")
        index.append(f"<sitemap><loc>{url}</loc><lastmod>{lastmod}</lastmod></sitemap>")
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{"".join(index)}</sitemapindex>'
    ).encode()
    since = datetime.fromisoformat(SINCE).replace(tzinfo=UTC)
    wanted = {slug for slug, when in january + february if when is not None and when >= since}
    unwanted = {slug for slug, _ in old} | {"feb-undated"} | {s for s, w in january if w < since}
    return site.serve(HOST, "/sitemap-index.xml", body, "application/xml"), wanted - {live_slug}, unwanted


def backfill_cli(fetchers: Fetchers, url: str) -> dict[str, Any]:
    import json

    env = {**os.environ, **fetchers.env}
    out = subprocess.run(
        [sys.executable, "-m", "wirewatch", "backfill", url, "--since", SINCE, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_backfill_pulls_the_archive_since_a_date_while_live_feeds_keep_flowing(
    servers: LocalServers, site: Site, tmp_path: Path
) -> None:
    live = site.feed(HOST, "/rss.xml", "live-1")
    index, wanted, unwanted = archive(site, "live-1")
    fetchers = Fetchers(
        servers,
        tmp_path,
        WIREWATCH_FETCH_HOST_DELAY="0.05",
        WIREWATCH_FETCH_HOST_CONCURRENCY="2",
        WIREWATCH_BACKFILL_CONCURRENCY="2",
    )
    save_feeds(fetchers.feeds_file, [Feed(id=feed_id(live), url=live, interval=1)])
    base = site.base(HOST)
    try:
        fetchers.start("one")
        fetchers.wait_healthy("one")
        wait_for(lambda: len(fetchers.raw_articles()) == 1, timeout=45, what="the live feed's article")

        request = backfill_cli(fetchers, index)
        assert request["url"] == index and request["since"].startswith(SINCE)

        def progress() -> dict[str, Any] | None:
            records = fetchers.page("one", "/backfills") or []
            return next((r for r in records if r["id"] == request["id"]), None)

        wait_for(
            lambda: (lambda r: r is not None and r["produced"] >= 2)(progress()),
            timeout=30,
            what="the backfill under way",
        )
        site.feed(HOST, "/rss.xml", "live-2")  # published while the backfill runs
        published = time.monotonic()
        done = wait_for(
            lambda: (lambda r: r if r is not None and r["status"] == "done" else None)(progress()),
            timeout=60,
            what="the backfill done",
        )
        finished = time.monotonic()
        articles = fetchers.raw_articles()
    finally:
        fetchers.stop_all()

    ids = [a.id for a in articles]
    assert len(ids) == len(set(ids)), "an article was produced twice"
    expected = {article_id(f"{base}/news/{slug}.html") for slug in wanted | {"live-1", "live-2"}}
    assert set(ids) == expected
    assert not {article_id(f"{base}/news/{slug}.html") for slug in unwanted} & set(ids)
    assert {a.feed_url for a in articles if a.id != article_id(f"{base}/news/live-1.html")} >= {index}

    # The progress report.
    assert done["produced"] == len(wanted) and done["failed"] == 0
    assert done["already_seen"] == 1  # live-1, in the archive too: fetched once
    assert done["sitemaps_skipped"] == 1 and done["sitemaps_read"] == 3  # the index and two months
    assert done["undated"] == 1 and done["too_old"] == 5  # January before the 15th
    assert site.count(HOST, "/news/live-1.html") == 1
    assert site.count(HOST, "/sitemaps/2025-01.xml") == 0

    # Live polling went on during the backfill: the feed every second or so, and its new
    # article was fetched before the backfill's last one.
    live_polls = [t for t, _ in site.requests(HOST, "/rss.xml") if published - 3 < t < finished]
    assert max(b - a for a, b in itertools.pairwise(live_polls)) < 2.5
    archive_pages = [t for t, _, p, _ in site.hits if p.startswith("/news/") and p[6:9] in ("jan", "feb")]
    live_page = [t for t, _ in site.requests(HOST, "/news/live-2.html")]
    assert live_page and live_page[0] < max(archive_pages)
    assert live_page[0] - published < 5
    # Never more requests at once than the host's limit, backfill and live together.
    assert site.peak[HOST] <= 2
