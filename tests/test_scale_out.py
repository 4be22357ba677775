"""Scale-out and the second backend: one small news day, told to differently built stacks,
gives the same articles, copies, events and alerts.

- the reference: one worker of each service on tansu + osmem-server (the suite's servers);
- two enrichers, two indexers and two alerts workers sharing four partitions per topic;
- one worker of each on noida-db, the local mode's backend. Nothing is killed there: noida
  never evicts a SIGKILLed group member (the crash tests run on tansu, in test_pipeline_e2e).

The day comes in two waves, the originals first, then copies, a rewrite and a report carrying
a tracked claim, so "which copy came first" has one right answer whatever the parallelism.
At the end a second wording of the claim is tracked: its retroactive search finds that report
again. Each claim is searched once however many alerts workers saw it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import stories
from claim_texts import CLAIM_EN, REPORT_FR
from conftest import run, wait_for
from newsroom import NewsSite
from pipeline import Pipeline
from reuse_texts import REPOST_EN, WIRE_EN, change_words
from wirewatch.alerts.watchlist import new_claim, publish
from wirewatch.core.feeds import add_feed
from wirewatch.core.settings import ServiceName
from wirewatch.local.servers import Backend, start_servers
from wirewatch.runner import setup

pytestmark = pytest.mark.e2e


def _story(slug: str, title: str, text: str, language: str) -> stories.Story:
    paragraphs = tuple(p for p in text.strip().split("\n") if p)
    return stories.Story(
        slug=slug, title=title, language=language, published=stories.BRIDGE.published, paragraphs=paragraphs
    )


#: The tracked claim in other words, tracked once the day is over.
LATER_WORDING = "Some 3,000 rebels were allowed by the army to leave Tarvos and reach Kelmar on the border."

ORIGINALS: list[tuple[str, stories.Story]] = [
    ("wire", stories.BRIDGE),
    ("wire", stories.VACCINE),
    ("matin", stories.INCENDIE),
    ("matin", stories.ELECTIONS),
    ("wire", _story("korvath", "Korvath dam gates opened", WIRE_EN, "en")),
]
FOLLOW_UPS: list[tuple[str, stories.Story]] = [
    ("matin", stories.copy_of(stories.BRIDGE, "pont-ferme")),
    ("matin", _story("korvath-copy", "Korvath: gates open", change_words(WIRE_EN, 0.03), "en")),
    ("matin", _story("korvath-blog", "What we know tonight", REPOST_EN, "en")),
    ("matin", _story("tarvos", "Tarvos : les rebelles partis", REPORT_FR, "fr")),
]


@dataclass(frozen=True)
class Outcome:
    """What an analyst sees, by page path (the same on every site): comparable across stacks."""

    articles: frozenset[str]
    languages: tuple[tuple[str, str], ...]
    duplicate_of: tuple[tuple[str, str], ...]
    reused_from: tuple[tuple[str, tuple[str, ...]], ...]
    events: tuple[tuple[str, ...], ...]
    alerts: tuple[tuple[str, str, bool], ...]


@dataclass(frozen=True)
class Day:
    outcome: Outcome
    #: Each worker's /metrics at the end of the day, by worker name (``enricher``, ``enricher-2`` …).
    worker_metrics: dict[str, str]
    partitions: int

    def retroactive_searches(self, outcome: str = "searched") -> float:
        """Retroactive searches run (or skipped as done already), summed over the workers."""
        pattern = rf'^wirewatch_retroactive_searches_total\{{outcome="{outcome}"\}} (\S+)$'
        found = (re.search(pattern, text, re.MULTILINE) for text in self.worker_metrics.values())
        return sum(float(m.group(1)) for m in found if m)


def news_day(backend: Backend, tmp: Path, replicas: dict[ServiceName, int] | None = None) -> Day:
    """Run the day on a fresh stack (stopped at the end); what ended up in Elasticsearch."""
    servers = start_servers(backend, data_dir=tmp / "servers", log_dir=tmp / "server-logs")
    site = NewsSite.start()
    pipeline = Pipeline(servers, site, tmp, replicas=replicas)
    try:
        for outlet, name in (("wire", "Wire Service"), ("matin", "Le Matin Test")):
            add_feed(pipeline.feeds_file, site.add_outlet(outlet, name))
        run(setup(pipeline.settings))
        claim = new_claim(CLAIM_EN)
        run(publish(pipeline.settings, [claim]))
        pipeline.start()
        for outlet, story in ORIGINALS:
            pipeline.publish(outlet, story)
        pipeline.wait_for_articles(timeout=120)
        for outlet, story in FOLLOW_UPS:
            pipeline.publish(outlet, story)
        pipeline.wait_for_articles(timeout=120)

        def settled() -> list[dict[str, Any]] | None:
            docs = list(pipeline.articles().values())
            alerts = pipeline.search("alerts")
            if all(d.get("event_id") for d in docs) and alerts and all(a.get("event_id") for a in alerts):
                return docs
            return None

        try:
            docs = wait_for(settled, timeout=120, what="every article linked and the alert raised")
        except AssertionError as exc:
            unlinked = [d["url"] for d in pipeline.articles().values() if not d.get("event_id")]
            alerts = [(a["article_id"], a.get("event_id")) for a in pipeline.search("alerts")]
            raise AssertionError(f"{exc}\nwithout an event: {unlinked}\nalerts: {alerts}") from None
        later = new_claim(LATER_WORDING)
        run(publish(pipeline.settings, [later]))
        wait_for(
            lambda: any(a["claim_id"] == later.id for a in pipeline.search("alerts")),
            timeout=90,
            what="the retroactive alert of the claim tracked at the end",
        )
        assert pipeline.supervisor is not None
        worker_metrics = {name: pipeline.metrics(name) for name in pipeline.supervisor.children}
        alerts = pipeline.search("alerts")
    finally:
        pipeline.close()
        site.close()
        servers.stop()

    path_of = {str(d["id"]): _path(str(d["url"])) for d in docs}
    by_event: dict[str, set[str]] = {}
    for d in docs:
        by_event.setdefault(str(d["event_id"]), set()).add(path_of[str(d["id"])])
    return Day(
        Outcome(
            articles=frozenset(path_of.values()),
            languages=tuple(sorted((path_of[str(d["id"])], str(d["language"])) for d in docs)),
            duplicate_of=tuple(
                sorted(
                    (path_of[str(d["id"])], path_of[str(d["duplicate_of"])])
                    for d in docs
                    if d["duplicate_of"]
                )
            ),
            reused_from=tuple(
                sorted(
                    (path_of[str(d["id"])], tuple(sorted(path_of[str(r)] for r in d["reused_from"])))
                    for d in docs
                    if d.get("reused_from")
                )
            ),
            events=tuple(sorted(tuple(sorted(members)) for members in by_event.values())),
            alerts=tuple(
                sorted(
                    (str(a["claim_id"]), path_of[str(a["article_id"])], bool(a["retroactive"]))
                    for a in alerts
                )
            ),
        ),
        worker_metrics,
        pipeline.settings.topic_partitions,
    )


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    day = news_day("ephemeral", tmp_path_factory.mktemp("one-worker"))
    # Each claim searched once: the first at start (tracked in the last day: the catch-up), the
    # second when tracked at the end.
    assert (day.retroactive_searches(), day.retroactive_searches("skipped")) == (2, 0)
    return day.outcome


def test_one_worker_of_each_gets_the_day_right(reference: Outcome) -> None:
    assert len(reference.articles) == len(ORIGINALS) + len(FOLLOW_UPS)
    assert ("/matin/pont-ferme.html", "/wire/bridge-closure.html") in reference.duplicate_of
    assert ("/matin/korvath-copy.html", "/wire/korvath.html") in reference.duplicate_of
    assert reference.reused_from == (("/matin/korvath-blog.html", ("/wire/korvath.html",)),)
    korvath = ("/matin/korvath-blog.html", "/matin/korvath-copy.html", "/wire/korvath.html")
    assert korvath in reference.events
    assert ("/matin/pont-ferme.html", "/wire/bridge-closure.html") in reference.events
    assert sorted((path, retro) for _, path, retro in reference.alerts) == [
        ("/matin/tarvos.html", False),
        ("/matin/tarvos.html", True),  # the wording tracked at the end, found retroactively
    ]


def _assigned(metrics_text: str, topic: str) -> float:
    pattern = rf'^wirewatch_assigned_partitions\{{topic="{re.escape(topic)}"\}} (\S+)$'
    found = re.search(pattern, metrics_text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _lags(metrics_text: str, topic: str) -> list[float]:
    pattern = rf'^wirewatch_consumer_lag\{{partition="\d+",topic="{re.escape(topic)}"\}} (\S+)$'
    return [float(v) for v in re.findall(pattern, metrics_text, re.MULTILINE)]


def test_two_workers_of_each_give_the_same_day_as_one(
    reference: Outcome, tmp_path_factory: pytest.TempPathFactory
) -> None:
    day = news_day(
        "ephemeral",
        tmp_path_factory.mktemp("two-workers"),
        replicas={"enricher": 2, "indexer": 2, "alerts": 2},
    )
    assert day.outcome == reference
    # Both alerts workers asked for each claim's search; each claim was searched once.
    assert (day.retroactive_searches(), day.retroactive_searches("skipped")) == (2, 2)
    # Both workers of each service really shared the input topic's partitions.
    for service, topic in (
        ("enricher", "wirewatch.articles.raw"),
        ("indexer", "wirewatch.articles.enriched"),
        ("alerts", "wirewatch.articles.enriched"),
    ):
        shares = [_assigned(day.worker_metrics[name], topic) for name in (service, f"{service}-2")]
        assert sum(shares) == day.partitions and all(shares), (service, shares)
        # ... and each reports its lag on its own partitions: nothing left to read at the end.
        lags = [_lags(day.worker_metrics[name], topic) for name in (service, f"{service}-2")]
        assert [len(lag) for lag in lags] == shares and not any(any(lag) for lag in lags), (service, lags)


def test_noida_backend_gives_the_same_day(
    reference: Outcome, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert news_day("noida", tmp_path_factory.mktemp("noida")).outcome == reference
