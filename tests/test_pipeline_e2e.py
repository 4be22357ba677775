"""The whole pipeline on real servers: feed -> fetcher -> Kafka -> enricher -> indexer -> search.

One module-scoped stack (tansu + osmem-server), a loopback news site, and the four services
as child processes under the same supervisor ``wirewatch up`` uses. The tests run in order
and build on each other: first ingestion, then duplicates, bad input, crashes, restarts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import stories
from claim_texts import CLAIM_EN, OTHER_FR, REPORT_EN, REPORT_FR, REPORT_FR_2
from conftest import run, wait_for
from newsroom import NewsSite
from pipeline import AUDIT_WEBHOOK_PATH, WEBHOOK_PATH, Pipeline
from reuse_texts import REPOST_EN, WIRE_EN, change_words
from wirewatch.alerts.delivery import webhook_name
from wirewatch.alerts.throttle import seen_key
from wirewatch.alerts.watchlist import new_claim, publish
from wirewatch.core.feeds import add_feed
from wirewatch.core.ids import article_id
from wirewatch.core.kafka import consumer_lag, read_topic
from wirewatch.core.models import DeadLetter
from wirewatch.core.settings import SERVICES
from wirewatch.local.servers import LocalServers
from wirewatch.runner import setup

pytestmark = pytest.mark.e2e


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def backend() -> str:
    """The servers the module runs on: the fixture of that name (test_pipeline_noida.py runs
    these tests again on ``noida``)."""
    return "servers"


@pytest.fixture(scope="module")
def pipeline(
    backend: str, site: NewsSite, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    servers: LocalServers = request.getfixturevalue(backend)
    p = Pipeline(servers, site, tmp_path_factory.mktemp("pipeline"))
    wire = site.add_outlet("wire", "Wire Service")
    matin = site.add_outlet("matin", "Le Matin Test")
    p.publish("wire", stories.BRIDGE)
    p.publish("wire", stories.VACCINE)
    p.publish("matin", stories.INCENDIE)
    p.publish("matin", stories.ELECTIONS)
    # An item whose page cannot be reached at all.
    site.publish("matin", stories.TRAMWAY, link=f"http://127.0.0.1:{closed_port()}/gone.html")
    broken = site.serve("/broken/rss.xml", b"<rss><channel><title>Broken</title><item><link>", "text/xml")
    for url in (wire, matin, broken):
        add_feed(p.feeds_file, url)
    run(setup(p.settings))
    p.start()
    yield p
    p.close()


def test_every_article_searchable_once_with_its_fields(pipeline: Pipeline) -> None:
    docs = pipeline.wait_for_articles()
    bridge = docs[article_id(pipeline.site.url + "/wire/bridge-closure.html")]
    assert bridge["title"] == stories.BRIDGE.title
    assert "cracks in a steel beam" in bridge["text"]
    assert "newsletter" not in bridge["text"]  # page boilerplate is not article text
    assert bridge["published"].startswith("2026-03-02T08:30:00")
    assert bridge["source"] == "Wire Service"
    assert bridge["language"] == "en"
    fire = docs[article_id(pipeline.site.url + "/matin/incendie-entrepot.html")]
    assert fire["language"] == "fr"
    assert fire["source"] == "Le Matin Test"
    assert all(d["duplicate_of"] is None for d in docs.values())

    hits = pipeline.search("articles", {"match": {"text": "sapeurs-pompiers"}})
    assert [h["id"] for h in hits] == [fire["id"]]


def test_identical_article_at_another_url_is_an_exact_duplicate(pipeline: Pipeline) -> None:
    original = article_id(pipeline.site.url + "/wire/bridge-closure.html")
    copy_url = pipeline.publish("matin", stories.copy_of(stories.BRIDGE, "pont-ferme"))
    docs = pipeline.wait_for_articles()
    copy = docs[article_id(copy_url)]
    assert copy["duplicate_of"] == original
    assert copy["is_duplicate"] is True
    assert docs[original]["duplicate_of"] is None
    assert copy["content_hash"] == docs[original]["content_hash"]


def _dead_letters(pipeline: Pipeline) -> list[DeadLetter]:
    return [
        DeadLetter.from_bytes(v)
        for _, v in run(read_topic(pipeline.settings, "wirewatch.dead-letters"))
        if v is not None
    ]


def test_broken_feed_and_unreachable_article_are_dead_lettered(pipeline: Pipeline) -> None:
    found = wait_for(
        lambda: (lambda ls: ls if {"fetcher.feed", "fetcher.article"} <= {x.stage for x in ls} else None)(
            _dead_letters(pipeline)
        ),
        what="dead letters for the broken feed and the unreachable article",
    )
    feed_letter = next(x for x in found if x.stage == "fetcher.feed")
    assert feed_letter.feed_url is not None and feed_letter.feed_url.endswith("/broken/rss.xml")
    assert "malformed feed" in feed_letter.reason
    article_letter = next(x for x in found if x.stage == "fetcher.article")
    assert article_letter.url is not None and article_letter.url.endswith("/gone.html")
    assert "cannot fetch" in article_letter.reason
    # One record per problem, however many polls saw it.
    assert len([x for x in found if x.stage == "fetcher.feed"]) == 1
    # The clear log line, with the same fields.
    logged = [line for line in pipeline.log_lines("fetcher") if line.get("msg") == "dead letter"]
    assert any(line.get("feed_url", "").endswith("/broken/rss.xml") for line in logged)
    # The indexer mirrors dead letters into Elasticsearch for Kibana and `wirewatch status`.
    indexed = wait_for(lambda: pipeline.search("dead-letters"), what="dead letters in Elasticsearch")
    assert {d["stage"] for d in indexed} >= {"fetcher.feed", "fetcher.article"}
    # ... and the good feeds kept flowing meanwhile.
    assert set(pipeline.articles()) == set(pipeline.expected)


def test_killed_services_lose_and_duplicate_nothing(pipeline: Pipeline) -> None:
    supervisor = pipeline.supervisor
    assert supervisor is not None
    before = {n: supervisor.children[n].pid for n in SERVICES}
    pipeline.publish("wire", stories.STRIKE)
    pipeline.publish("matin", stories.TRAMWAY.__class__(**{**stories.TRAMWAY.__dict__, "slug": "tramway-b"}))
    time.sleep(1.0)
    supervisor.kill("enricher", signal.SIGKILL)
    supervisor.kill("indexer", signal.SIGKILL)
    pipeline.publish("wire", stories.PARK)
    supervisor.kill("fetcher", signal.SIGKILL)
    pipeline.publish("matin", stories.MARCHE)
    wait_for(
        lambda: all(supervisor.children[n].pid != before[n] for n in ("enricher", "indexer", "fetcher")),
        what="the supervisor to restart the killed services",
    )
    docs = pipeline.wait_for_articles(timeout=120)
    # The duplicate decision survived the enricher's crash (its table came back from the changelog).
    copy = docs[article_id(pipeline.site.url + "/matin/pont-ferme.html")]
    assert copy["duplicate_of"] == article_id(pipeline.site.url + "/wire/bridge-closure.html")
    assert sum(1 for d in docs.values() if d["is_duplicate"]) == 1


def test_restarting_every_service_keeps_the_index_exact(pipeline: Pipeline) -> None:
    pipeline.stop()
    pipeline.publish("wire", stories.LIBRARY)
    pipeline.start()
    pipeline.publish("matin", stories.BAKERY)
    docs = pipeline.wait_for_articles(timeout=120)
    assert len(docs) == len(pipeline.expected)
    assert sum(1 for d in docs.values() if d["is_duplicate"]) == 1


def _story(slug: str, title: str, text: str, language: str) -> stories.Story:
    paragraphs = tuple(p for p in text.strip().split("\n") if p)
    return stories.Story(
        slug=slug, title=title, language=language, published=stories.BRIDGE.published, paragraphs=paragraphs
    )


def test_near_duplicate_and_reuse_are_linked_across_an_enricher_crash(pipeline: Pipeline) -> None:
    supervisor = pipeline.supervisor
    assert supervisor is not None
    original = article_id(
        pipeline.publish("wire", _story("korvath", "Korvath dam gates opened", WIRE_EN, "en"))
    )
    assert original in pipeline.wait_for_articles()
    before = supervisor.children["enricher"].pid
    supervisor.kill("enricher", signal.SIGKILL)
    wait_for(lambda: supervisor.children["enricher"].pid != before, what="the enricher restarted")
    # ... and killed again while it loads its models and recovers its copies table.
    restarted = supervisor.children["enricher"].pid
    time.sleep(1.0)
    supervisor.kill("enricher", signal.SIGKILL)
    wait_for(lambda: supervisor.children["enricher"].pid != restarted, what="the enricher restarted again")
    near = pipeline.publish(
        "matin", _story("korvath-copy", "Korvath: gates open", change_words(WIRE_EN, 0.03), "en")
    )
    repost = pipeline.publish("matin", _story("korvath-blog", "What we know tonight", REPOST_EN, "en"))
    docs = pipeline.wait_for_articles(timeout=120)
    assert docs[article_id(near)]["duplicate_of"] == original
    assert 0.85 <= docs[article_id(near)]["duplicate_similarity"] < 1.0
    reuse = docs[article_id(repost)]
    assert reuse["duplicate_of"] is None
    assert reuse["reused_from"] == [original]
    assert reuse["reuses"][0]["share"] > 0.3 and reuse["reuses"][0]["passages"]
    hits = pipeline.search("articles", {"term": {"reused_from": original}})
    assert [h["id"] for h in hits] == [article_id(repost)]


def _track(pipeline: Pipeline, text: str, **fields: Any) -> str:
    claim = new_claim(text, **fields)
    run(publish(pipeline.settings, [claim]))
    wait_for(
        lambda: [c for c in pipeline.search("claims") if c["id"] == claim.id],
        what="the claim mirrored in the claims index",
    )
    time.sleep(1.0)  # the alerts workers follow the topic with a 0.5 s poll
    return claim.id


def _kill_alerts_and_wait_for_its_restart(pipeline: Pipeline) -> None:
    """kill -9 the alerts service; return once the supervisor's new one is healthy."""
    supervisor = pipeline.supervisor
    assert supervisor is not None
    before = supervisor.children["alerts"].pid
    supervisor.kill("alerts", signal.SIGKILL)
    wait_for(lambda: supervisor.children["alerts"].pid != before, what="the alerts service restarted")
    assert supervisor.wait_healthy(90)


#: The changelog of the alerts service's throttle table (``alert-throttle``, keyed by claim).
THROTTLE_CHANGELOG = "wirewatch-alerts-alert-throttle-changelog"


def _throttle_states(pipeline: Pipeline, claim_id: str | None = None) -> list[dict[str, Any]]:
    """Each claim's latest state in the alerts service's throttle table (from its changelog);
    only ``claim_id``'s when given."""
    latest: dict[bytes, Any] = {}
    for key, value in run(read_topic(pipeline.settings, THROTTLE_CHANGELOG)):
        if key is not None and (claim_id is None or key.decode().strip('"') == claim_id):
            latest[key] = json.loads(value) if value else None
    return [state for state in latest.values() if state]


def _owed(pipeline: Pipeline, claim_id: str | None = None) -> dict[str, list[str]]:
    """Alert ids the throttle states (``claim_id``'s only, when given) still owe to some target,
    and the targets (outbox.py)."""
    return {
        i: entry["targets"]
        for state in _throttle_states(pipeline, claim_id)
        for entry in state.get("owed", [])
        for i in entry["batch"]["alert_ids"]
    }


def _deliveries_recorded(pipeline: Pipeline, alert_ids: set[str]) -> bool:
    """Whether the alerts service has recorded every one of ``alert_ids`` as delivered or
    parked for every target: the claim's latest throttle state has seen it and owes it to no
    target (wirewatch.alerts.outbox). A kill -9 before that sends it again, when the service is
    back, to the targets it was still owed to; killed after it, the service reads the alert
    again (its offset is committed later) and drops it."""
    seen = {key for state in _throttle_states(pipeline) for key in state.get("seen", [])}
    owed = _owed(pipeline)
    return all(seen_key(i) in seen and i not in owed for i in alert_ids)


def _alerts(pipeline: Pipeline, claim_id: str) -> list[dict[str, Any]]:
    return pipeline.search("alerts", {"term": {"claim_id": claim_id}})


def test_tracked_claim_raises_one_alert_on_a_report_in_another_language(pipeline: Pipeline) -> None:
    claim_id = _track(pipeline, CLAIM_EN, labels={"verdict": "unproven"})
    report = article_id(
        pipeline.publish("matin", _story("tarvos", "Tarvos : les rebelles partis", REPORT_FR, "fr"))
    )
    other = article_id(pipeline.publish("matin", _story("dorvan", "Des rebelles à Dorvan", OTHER_FR, "fr")))
    docs = pipeline.wait_for_articles()
    [alert] = wait_for(lambda: _alerts(pipeline, claim_id), what="the alert for the French report")
    assert alert["article_id"] == report
    assert alert["retroactive"] is False
    assert alert["claim_labels"] == {"verdict": "unproven"}
    assert "3 000 combattants rebelles" in alert["sentence"]
    text = docs[report]["text"]
    assert text[alert["sentence_start"] : alert["sentence_end"]] == alert["sentence"]
    # Delivered to the webhook once; a kill -9 of the alerts service re-reads what it had not
    # committed, and neither raises nor sends the alert again.
    wait_for(lambda: pipeline.delivered().get(alert["id"]), what="the alert POSTed to the webhook")
    wait_for(lambda: _deliveries_recorded(pipeline, {alert["id"]}), what="the delivery recorded")
    _kill_alerts_and_wait_for_its_restart(pipeline)
    time.sleep(3.0)  # give a wrong alert on the other article, or a second delivery, time to show up
    assert [a["article_id"] for a in _alerts(pipeline, claim_id)] == [report]
    assert pipeline.delivered()[alert["id"]] == 1
    assert other in docs


def test_newly_tracked_claim_finds_reports_already_indexed(pipeline: Pipeline) -> None:
    korvath = article_id(pipeline.site.url + "/wire/korvath.html")
    repost = article_id(pipeline.site.url + "/matin/korvath-blog.html")
    # The alerts service restarted in the test before reads again what it had not committed,
    # the Korvath reports among them: done before the claim is tracked, or it would match them
    # live (the same alerts, not marked retroactive).
    wait_for(
        lambda: pipeline.uncommitted("alerts", "enriched") == 0,
        what="the alerts service done with the articles it read again after its restart",
    )
    claim_id = _track(
        pipeline, "About 12,000 residents of Ostrel and Vanmark were evacuated below the Korvath dam."
    )
    found = wait_for(
        lambda: (lambda a: a if {korvath, repost} <= {x["article_id"] for x in a} else None)(
            _alerts(pipeline, claim_id)
        ),
        what="retroactive alerts for the Korvath reports",
    )
    assert all(a["retroactive"] for a in found)
    assert len({a["id"] for a in found}) == len(found)
    wait_for(
        lambda: all(pipeline.delivered().get(a["id"]) for a in found), what="the retroactive alerts POSTed"
    )
    assert all(pipeline.delivered()[a["id"]] == 1 for a in found)
    repost_alert = next(a for a in found if a["article_id"] == repost)
    assert repost_alert["reused_from"] == [korvath]
    # Restarted within the day, the alerts service asks again for the searches of the claims
    # tracked in the last day (one tracked while it was down must not be missed), and finds
    # them done: nothing is searched again.
    _kill_alerts_and_wait_for_its_restart(pipeline)
    wait_for(lambda: _retro_searches(pipeline, "skipped") >= 2, what="the catch-up finding its searches done")
    assert _retro_searches(pipeline, "searched") == 0


def _metric(pipeline: Pipeline, service: str, sample: str) -> float:
    """One sample (name and labels, as Prometheus writes them) of a service's /metrics, or 0."""
    found = re.search(rf"^{re.escape(sample)} (\S+)$", pipeline.metrics(service), re.M)
    return float(found.group(1)) if found else 0.0


def _retro_searches(pipeline: Pipeline, outcome: str) -> float:
    """The alerts service's count of retroactive searches run or skipped (since it started)."""
    return _metric(pipeline, "alerts", f'wirewatch_retroactive_searches_total{{outcome="{outcome}"}}')


FERRY_EN = (
    "The harbour ferry will run every twenty minutes instead of every half hour from next Monday,"
    " the port authority said on Tuesday.\n"
    "The change follows a survey of commuters, most of whom asked for earlier departures in the"
    " morning and later ones in the evening.\n"
    "Two older boats will be replaced by electric ones over the summer, and the fare will stay the"
    " same until the end of the year."
)


def _events_of(pipeline: Pipeline, ids: list[str]) -> dict[str, str | None]:
    docs = pipeline.articles()
    return {i: docs[i].get("event_id") for i in ids}


def test_every_article_is_linked_to_an_event_with_its_document_and_record(pipeline: Pipeline) -> None:
    site = pipeline.site.url
    korvath = [
        article_id(f"{site}/{p}.html") for p in ("wire/korvath", "matin/korvath-copy", "matin/korvath-blog")
    ]

    def unlinked() -> list[str]:
        return [
            pipeline.expected[i] for i, e in _events_of(pipeline, list(pipeline.expected)).items() if not e
        ]

    # Including the reports published around the kill -9 of the indexer
    # (test_killed_services_lose_and_duplicate_nothing).
    try:
        wait_for(lambda: not unlinked(), timeout=120, what="an event id on every article")
    except AssertionError as exc:
        missing = [article_id(url) for url in unlinked()]
        letters = [(d["stage"], d["reason"][:200]) for d in pipeline.search("dead-letters")]
        records = pipeline.search("event-links", {"terms": {"article_id": missing}})
        lag = run(consumer_lag(pipeline.settings, ["wirewatch-indexer"]))
        raise AssertionError(
            f"{exc}\nwithout an event: {unlinked()}\nlink records: {records}\n"
            f"dead letters: {letters}\nindexer lag: {lag}"
        ) from None
    events = _events_of(pipeline, korvath)
    assert len(set(events.values())) == 1, events  # the near-duplicate and the reuse join the original
    event_id = events[korvath[0]]
    links = {r["article_id"]: r for r in pipeline.search("event-links", {"term": {"event_id": event_id}})}
    assert links[korvath[0]]["opened"] is True
    assert links[korvath[1]]["reason"] == "duplicate" and links[korvath[2]]["reason"] == "reuse"
    [event] = pipeline.search("events", {"ids": {"values": [event_id]}})
    assert event["article_count"] == 3 and event["earliest_article_id"] == korvath[0]
    assert event["label"] == "Korvath dam gates opened"
    # /metrics shows what the windows hold (an operator sizes memory by them), from the start: a
    # restarted worker rebuilds its windows from its tables once they are recovered, before any
    # new report ...
    pipeline.stop()
    pipeline.start()
    windows = {
        ("indexer", "events"): 1,
        ("indexer", "event_articles"): 3,
        ("enricher", "copies"): 3,
    }

    def short_windows() -> dict[tuple[str, str], float]:
        read = {
            key: _metric(pipeline, key[0], f'wirewatch_window_items{{window="{key[1]}"}}') for key in windows
        }
        return {key: value for key, value in read.items() if value < windows[key]}

    try:
        wait_for(lambda: not short_windows(), timeout=30, what="the windows on /metrics after a restart")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nbelow their size: {short_windows()}") from None
    # ... and how long the linking stage's bulk requests take (a slow one holds up the reports
    # behind it): one more report, the first since the restart.
    ferry = article_id(pipeline.publish("wire", _story("ferry", "Harbour ferry timetable", FERRY_EN, "en")))
    pipeline.wait_for_articles()
    wait_for(lambda: _events_of(pipeline, [ferry])[ferry], what="the ferry report linked to an event")
    assert _metric(pipeline, "indexer", 'wirewatch_bulk_seconds_count{stage="indexer.events"}') >= 1
    # The claim tracked in the previous test was found (retroactively) in the Korvath reports.
    wait_for(
        lambda: pipeline.search("events", {"ids": {"values": [event_id]}})[0]["claim_count"] >= 1,
        what="the tracked claim on the Korvath event",
    )
    alerts = pipeline.search("alerts", {"terms": {"article_id": korvath}})
    wait_for(
        lambda: all(
            a.get("event_id") == event_id
            for a in pipeline.search("alerts", {"terms": {"article_id": korvath}})
        ),
        what="the event id on the Korvath alerts",
    )
    assert alerts
    # Unrelated stories are in other events.
    others = _events_of(pipeline, [article_id(f"{site}/wire/bridge-closure.html")])
    assert set(others.values()).isdisjoint(events.values())


SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


@pytest.mark.skipif(not SEEDS.is_dir(), reason="../shared/seeds is not beside the repository")
def test_seed_reports_of_one_event_share_it_and_the_later_one_does_not(pipeline: Pipeline) -> None:
    """The five seed texts as they are (bare pages: no headline, no date), published one after
    the other in file order. 000-003 (fighters leaving Mosul, autumn 2016) should be one event
    and 004 (the ISIS command in Mayadin, months later) another: issue #6."""
    pipeline.site.add_outlet("seeds", "Seeds")
    add_feed(pipeline.feeds_file, f"{pipeline.site.url}/seeds/rss.xml")
    ids: dict[str, str] = {}
    for path in sorted(SEEDS.glob("*.txt")):
        number = path.name[:3]
        paragraphs = tuple(p.strip() for p in path.read_text(encoding="utf-8").split("\n") if p.strip())
        story = stories.Story(
            slug=f"seed-{number}", title="", language="fr", published=None, paragraphs=paragraphs
        )
        seed = ids[number] = article_id(pipeline.publish("seeds", story))
        wait_for(
            lambda seed=seed: seed in pipeline.articles() and pipeline.articles()[seed].get("event_id"),
            timeout=120,
            what=f"seed {number} linked to an event",
        )
    docs = pipeline.articles()
    by_seed = {n: docs[i]["event_id"] for n, i in ids.items()}
    # 001 rewrites 000's wire dispatch: a reuse, so the same event whatever the scores.
    assert docs[ids["001"]]["reused_from"] == [ids["000"]] or docs[ids["001"]]["duplicate_of"] == ids["000"]
    assert by_seed["001"] == by_seed["000"]
    [mosul] = pipeline.search("events", {"ids": {"values": [by_seed["000"]]}})
    # (The pages carry no date in their markup. 001's text prints "mercredi 14 décembre 2016" and
    # 003's names 2014: neither is taken for a publication date, so all five are dated when fetched.)
    assert mosul["earliest_article_id"] == ids["000"] and mosul["languages"] == ["fr"]
    links = pipeline.search("event-links", {"terms": {"article_id": list(ids.values())}})
    assert len(links) == 5
    mosul_reports = {n for n, e in by_seed.items() if e == by_seed["000"]}
    assert mosul_reports == {"000", "001", "002", "003"}, by_seed
    assert mosul["article_count"] == 4
    # 004 is another event, shown as related to the Mosul one.
    [mayadin] = pipeline.search("events", {"ids": {"values": [by_seed["004"]]}})
    assert by_seed["000"] in mayadin["related"]


def _given_up(pipeline: Pipeline, alert_ids: set[str]) -> list[DeadLetter]:
    """Deliveries of ``alert_ids`` that ended as dead letters."""
    return [
        x
        for x in _dead_letters(pipeline)
        if x.stage == "alerts.deliver" and any(i in (x.payload or "") for i in alert_ids)
    ]


def test_webhook_down_for_many_retry_rounds_gets_every_alert_once_when_back(pipeline: Pipeline) -> None:
    """One webhook down through many rounds of retries (the e2e settings make a round 1.5 s
    instead of the default minute, so 20 s here stand for a ten-minute outage), and the alerts
    service killed while deliveries are parked: the other webhook gets every alert meanwhile, and
    when the first is back it gets every alert exactly once; nothing becomes a dead letter."""

    def refused() -> int:
        return sum(pipeline.delivered(refused=True).values())

    refused_before = refused()
    pipeline.site.refusing.add(WEBHOOK_PATH)
    outage_started = time.monotonic()
    try:
        claim_id = _track(pipeline, CLAIM_EN, id="claim-tarvos-webhook-down")
        reports = {
            article_id(
                pipeline.publish("matin", _story("tarvos-temoins", "Tarvos : des témoins", REPORT_FR_2, "fr"))
            ),
            article_id(
                pipeline.publish("wire", _story("tarvos-convoy", "Rebels leave Tarvos", REPORT_EN, "en"))
            ),
        }
        pipeline.wait_for_articles()
        raised = wait_for(
            lambda: (lambda a: a if reports <= {x["article_id"] for x in a} else None)(
                _alerts(pipeline, claim_id)
            ),
            what="alerts for both reports, raised while the webhook is down",
        )
        ids = {a["id"] for a in raised}
        # The webhook that is up is not held up by the one that is down.
        wait_for(
            lambda: all(pipeline.delivered(path=AUDIT_WEBHOOK_PATH).get(i) for i in ids),
            timeout=30,
            what="the alerts POSTed to the webhook that is up",
        )
        # The one that is down is tried past the in-line tries (2): parked, and probed again round
        # after round, by whichever parked alert comes first (an alert of a claim tracked in an
        # earlier test may be that one: the refusals are counted over every alert).
        wait_for(
            lambda: refused() >= refused_before + 2 + 3, timeout=30, what="parked deliveries tried again"
        )
        # Killed once the deliveries are recorded (sent to the one webhook, parked for the other).
        wait_for(lambda: _deliveries_recorded(pipeline, ids), timeout=30, what="the deliveries recorded")
        _kill_alerts_and_wait_for_its_restart(pipeline)
        tried = refused()
        wait_for(lambda: refused() > tried, timeout=30, what="parked deliveries tried after the restart")
        time.sleep(max(0.0, outage_started + 20 - time.monotonic()))  # the rest of the outage
        assert not any(pipeline.delivered().get(i) for i in ids)
    finally:
        pipeline.site.refusing.discard(WEBHOOK_PATH)
    ids |= {a["id"] for a in _alerts(pipeline, claim_id)}  # retroactive ones on earlier reports too
    wait_for(
        lambda: all(pipeline.delivered().get(i) for i in ids),
        timeout=60,
        what="every parked alert delivered once the webhook is back",
    )
    time.sleep(4.0)  # a second delivery, from a copy of a parked record, would show up by now
    delivered = pipeline.delivered()
    assert {i: delivered[i] for i in ids} == {i: 1 for i in ids}
    audit = pipeline.delivered(path=AUDIT_WEBHOOK_PATH)
    assert {i: audit.get(i) for i in ids} == {i: 1 for i in ids}
    assert _given_up(pipeline, ids) == []


def test_alerts_killed_while_one_webhook_stalls_sends_again_only_to_it(pipeline: Pipeline) -> None:
    """One webhook takes each POST and stalls (no answer within the in-line budget, 8 s here)
    while the other answers at once, and the alerts service is killed in between: the claim's
    state owes the alert to the stalled webhook only, so after the restart it goes to that one
    again (parked, then delivered once it answers) and never again to the other."""
    hook = webhook_name(f"{pipeline.site.url}{WEBHOOK_PATH}")
    pipeline.site.hanging.add(WEBHOOK_PATH)
    try:
        claim_id = _track(pipeline, CLAIM_EN, id="claim-tarvos-stalled")
        # The earlier Tarvos reports are found by the retroactive search; the first alert's
        # POST to the stalled webhook holds the delivery in line. (This claim's: on noida-db an
        # alert of the test before, found late by its retroactive search, can still be owed.)
        stalled = wait_for(
            lambda: next((i for i, targets in _owed(pipeline, claim_id).items() if targets == [hook]), None),
            interval=0.2,
            what="an alert delivered to the audit webhook and owed to the stalled one",
        )
        assert pipeline.delivered(path=AUDIT_WEBHOOK_PATH).get(stalled) == 1
        _kill_alerts_and_wait_for_its_restart(pipeline)
        [resumed] = wait_for(
            lambda: [
                line
                for line in pipeline.log_lines("alerts")
                if line.get("msg") == "alert delivery resumed" and line.get("alert_id") == stalled
            ],
            what="the delivery resumed after the restart",
        )
        assert resumed["targets"] == [hook]
    finally:
        pipeline.site.hanging.discard(WEBHOOK_PATH)
    ids = {a["id"] for a in _alerts(pipeline, claim_id)}
    assert stalled in ids
    wait_for(
        lambda: all(pipeline.delivered().get(i) for i in ids),
        timeout=60,
        what="every alert delivered to the webhook once it answers",
    )
    time.sleep(3.0)  # a second delivery would show up by now
    delivered = pipeline.delivered()
    assert {i: delivered[i] for i in ids} == {i: 1 for i in ids}
    audit = pipeline.delivered(path=AUDIT_WEBHOOK_PATH)
    assert {i: audit.get(i) for i in ids} == {i: 1 for i in ids}
    assert _given_up(pipeline, ids) == []


def test_of_two_webhooks_down_the_one_back_first_is_not_held_up_by_the_other(pipeline: Pipeline) -> None:
    """Both webhooks down while a newly tracked claim raises its (retroactive) alerts: each
    target's deliveries are parked. The audit webhook comes back first and gets every alert
    while the other is still down and still being tried (the parked deliveries share the
    redeliveries topic, but one target's wait holds up only its own); then the other comes back,
    and each gets every alert exactly once, with no dead letter."""
    paths = (WEBHOOK_PATH, AUDIT_WEBHOOK_PATH)

    def refused(path: str) -> int:
        return sum(pipeline.delivered(path=path, refused=True).values())

    refused_before = {path: refused(path) for path in paths}
    pipeline.site.refusing.update(paths)
    try:
        claim_id = _track(pipeline, CLAIM_EN, id="claim-tarvos-two-down")
        # The earlier Tarvos reports (one English, two French) are found by the retroactive search.
        raised = wait_for(
            lambda: (lambda a: a if len(a) >= 3 else None)(_alerts(pipeline, claim_id)),
            what="retroactive alerts raised while both webhooks are down",
        )
        ids = {a["id"] for a in raised}
        wait_for(
            lambda: all(refused(path) >= refused_before[path] + 2 + 2 for path in paths),
            timeout=30,
            what="deliveries to both webhooks parked and tried again",
        )
        assert not any(pipeline.delivered(path=path).get(i) for path in paths for i in ids)
        pipeline.site.refusing.discard(AUDIT_WEBHOOK_PATH)
        wait_for(
            lambda: all(pipeline.delivered(path=AUDIT_WEBHOOK_PATH).get(i) for i in ids),
            timeout=30,
            what="every alert delivered to the webhook that came back",
        )
        tried = refused(WEBHOOK_PATH)
        wait_for(lambda: refused(WEBHOOK_PATH) > tried, timeout=30, what="the other one still tried")
        assert not any(pipeline.delivered().get(i) for i in ids)
    finally:
        pipeline.site.refusing.difference_update(paths)
    ids |= {a["id"] for a in _alerts(pipeline, claim_id)}
    wait_for(
        lambda: all(pipeline.delivered().get(i) for i in ids),
        timeout=60,
        what="every parked alert delivered once the second webhook is back",
    )
    time.sleep(4.0)  # a second delivery, from a copy of a parked record, would show up by now
    for path in paths:
        delivered = pipeline.delivered(path=path)
        assert {i: delivered.get(i) for i in ids} == {i: 1 for i in ids}, path
    assert _given_up(pipeline, ids) == []


def test_broker_unreachable_for_a_minute_loses_and_doubles_nothing(pipeline: Pipeline) -> None:
    """The Kafka broker frozen (SIGSTOP: connections hang, as behind a dead network) for a
    minute while articles are published: the fetcher and the services wait and resume.
    Last in the module: it asserts the articles only (after the outage the alerts and the
    event-linking stages were once seen to stall; see issue #7)."""
    # On noida-db the broker is the search server too: both are frozen.
    broker = pipeline.servers.process("tansu") or pipeline.servers.process("noida")
    assert broker is not None
    pipeline.publish("wire", stories.copy_of(stories.STRIKE, "strike-update"))
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        pipeline.publish("matin", stories.copy_of(stories.PARK, "parc-rouvert"))
        pipeline.publish("wire", stories.copy_of(stories.LIBRARY, "library-reopens"))
        time.sleep(60)
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    docs = pipeline.wait_for_articles(timeout=180)
    assert len(docs) == len(pipeline.expected)
    # (Each is a copy of an earlier story at a new URL, and still recognised as one.)
    site = pipeline.site.url
    for copy, original in (
        ("wire/strike-update", "wire/port-strike"),
        ("matin/parc-rouvert", "wire/city-park"),
        ("wire/library-reopens", "wire/library-hours"),
    ):
        assert docs[article_id(f"{site}/{copy}.html")]["duplicate_of"] == article_id(
            f"{site}/{original}.html"
        )
    assert pipeline.supervisor is not None and pipeline.supervisor.wait_healthy(60)
