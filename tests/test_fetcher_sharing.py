"""Two fetcher instances share 200 feeds through Kafka partition assignment.

The feeds are served by a loopback site on 20 host addresses (127.0.0.x), 10 tiny feeds each:
fetchers share *sites* (a site's feeds live in one partition, so that one instance is polite
to it), so a single host would land in a single partition. The hosts are picked so that each
of the 4 partitions holds 5 of them. Every feed has a fixed 3-second interval; the site records
each request. Instance a starts alone and polls everything; b joins (a hands two partitions over
while polling); then a is killed and b takes its feeds back. Checked: every feed is polled by one
instance at a time (no two requests for a feed closer than the interval, through both
hand-overs), every article is produced and fetched once, and the survivor takes over.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import wait_for
from test_fetcher_state import Fetchers, Site
from wirewatch.core.feeds import save_feeds
from wirewatch.core.ids import feed_id
from wirewatch.core.models import Feed
from wirewatch.fetcher.state import partition_of
from wirewatch.local.servers import LocalServers

pytestmark = pytest.mark.timeout(120)

PARTITIONS = 4
HOSTS_PER_PARTITION = 5
FEEDS_PER_HOST = 10
INTERVAL = 3.0


def pick_hosts() -> list[str]:
    """Loopback addresses, HOSTS_PER_PARTITION of them in each partition."""
    chosen: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    for n in itertools.count(1):
        host = f"127.0.0.{n}"
        part = chosen[partition_of(host, PARTITIONS)]
        if len(part) < HOSTS_PER_PARTITION:
            part.append(host)
        if all(len(hosts) == HOSTS_PER_PARTITION for hosts in chosen.values()):
            return [host for hosts in chosen.values() for host in hosts]


HOSTS = pick_hosts()


@pytest.fixture
def site() -> Iterator[Site]:
    news = Site.start(HOSTS)
    yield news
    news.close()


def min_gap(site: Site, host: str, path: str) -> float:
    times = [t for t, _ in site.requests(host, path)]
    return min((b - a for a, b in itertools.pairwise(times)), default=float("inf"))


def test_two_instances_share_200_feeds_and_one_takes_over_from_the_other(
    servers: LocalServers, site: Site, tmp_path: Path
) -> None:
    feeds: list[Feed] = []
    for host in HOSTS:
        for n in range(FEEDS_PER_HOST):
            path = f"/feeds/{n}.xml"
            url = site.feed(host, path, f"first-{n}")
            feeds.append(Feed(id=feed_id(url), url=url, interval=INTERVAL))
    assert len(feeds) == 200
    fetchers = Fetchers(servers, tmp_path, WIREWATCH_TOPIC_PARTITIONS=str(PARTITIONS))
    save_feeds(fetchers.feeds_file, feeds)
    by_url = {f.url: f for f in feeds}
    try:
        fetchers.start("a")
        fetchers.wait_healthy("a")
        wait_for(lambda: len(fetchers.raw_articles()) >= 200, timeout=60, what="the 200 first articles")
        joined = time.monotonic()
        fetchers.start("b")  # a hands half of its partitions over, while polling
        fetchers.wait_healthy("b")

        def shared() -> tuple[set[str], set[str]] | None:
            a, b = fetchers.page("a", "/feeds"), fetchers.page("b", "/feeds")
            if not a or not b:
                return None
            urls_a, urls_b = {r["url"] for r in a}, {r["url"] for r in b}
            if urls_a & urls_b or len(urls_a | urls_b) != 200:
                return None
            return urls_a, urls_b

        urls_a, urls_b = wait_for(shared, timeout=30, what="the feeds shared between the two instances")
        assert len(urls_a) == len(urls_b) == 100  # two partitions each: 10 hosts, 100 feeds
        shared_at = time.monotonic()
        time.sleep(2 * INTERVAL)  # polled again and again (304s)

        killed = time.monotonic()
        fetchers.kill("a")
        # b takes a's partitions after the group's session timeout (3 s here), then its feeds.
        wait_for(
            lambda: (lambda h: h is not None and len(h) == 200)(fetchers.page("b", "/feeds")),
            timeout=30,
            what="instance b polling all 200 feeds",
        )
        took_over = time.monotonic()
        # A new article in one of a's feeds: b produces it.
        site.feed(*_host_path(sorted(urls_a)[0]), "after-the-kill")
        wait_for(lambda: len(fetchers.raw_articles()) >= 201, timeout=30, what="b producing a's new article")
        time.sleep(INTERVAL + 1)
        articles = fetchers.raw_articles()
        health_b = fetchers.page("b", "/feeds")
    finally:
        fetchers.stop_all()

    ids = [a.id for a in articles]
    assert len(ids) == len(set(ids)) == 201, "an article was produced twice"
    assert {r["url"] for r in health_b} == set(by_url)
    # One instance at a time per feed: never two requests for a feed within its interval.
    gaps = {f.url: min_gap(site, *_host_path(f.url)) for f in feeds}
    too_close = {url: round(gap, 2) for url, gap in gaps.items() if gap < INTERVAL * 0.8}
    assert not too_close, f"feeds fetched twice within an interval: {too_close}"
    # Every feed of a's was polled by b after the take-over.
    for url in urls_a:
        host, path = _host_path(url)
        assert any(t > killed for t, _ in site.requests(host, path)), f"{url} not polled after the kill"
    # Each article page was fetched once (the seen state moved with the feeds).
    article_hits = [(h, p) for _, h, p, _ in site.hits if p.startswith("/news/")]
    assert len(article_hits) == len(set(article_hits)) == 201
    # Every feed of b's was polled by b soon after it joined.
    for url in urls_b:
        host, path = _host_path(url)
        assert any(joined < t < shared_at + INTERVAL for t, _ in site.requests(host, path))
    assert took_over - killed < 25


def _host_path(url: str) -> tuple[str, str]:
    rest = url.split("//", 1)[1]
    hostport, _, path = rest.partition("/")
    return hostport.split(":")[0], "/" + path
