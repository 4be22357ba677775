"""The indexer's event-linking stage without Kafka: the table-backed linker
(``wirewatch.events.store``), the documents it writes (``wirewatch.events.documents``) and the
Elasticsearch writes of ``wirewatch.indexer.events``.

The reports are the invented ones of ``test_events_linking``, made into enriched articles.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner
from prometheus_client import REGISTRY

from conftest import make_settings, run, settings_for
from tables import StreamTable
from test_events_linking import BLAST, BRIDGE, DAY, ELECTION, FIRE_EN, FIRE_FR, FIRE_WALES, STAY_IN
from test_events_splitting import JOIN_ALL, MIXED
from wirewatch.cli import events_command, main
from wirewatch.core.app import ServiceApp
from wirewatch.core.elastic import (
    ROLLING,
    BulkOp,
    bulk_write,
    connect,
    ensure_indices,
    to_their_indices,
    without_superseded,
)
from wirewatch.core.ids import stable_id
from wirewatch.core.models import Alert, DeadLetter, EnrichedArticle, Event, EventLink, Message
from wirewatch.core.settings import Settings
from wirewatch.events import Report
from wirewatch.events import store as event_store
from wirewatch.events.linking import EventLinker
from wirewatch.events.state import EventState
from wirewatch.events.store import ARTICLE, EVENT, META, PENDING, LinkerStore
from wirewatch.indexer import events as indexer_events
from wirewatch.indexer.events import EVENT_FIELDS, EventIndexing, for_linking
from wirewatch.indexer.service import Indexer
from wirewatch.local.servers import LocalServers
from wirewatch.search import EVENT_SORTS, reports_as_of, stored_event

SETTINGS = make_settings()


def article(report: Report, **fields: Any) -> EnrichedArticle:
    when = datetime.fromtimestamp(report.time, UTC)
    values: dict[str, Any] = {
        "id": report.id,
        "url": f"https://{report.source}/{report.id}",
        "canonical_url": f"https://{report.source}/{report.id}",
        "source": report.source or "",
        "source_domain": report.source or "",
        "title": report.title,
        "text": report.text,
        "published": when,
        "fetched_at": when,
        "language": report.language,
        "language_confidence": 0.99,
        "content_hash": f"hash-{report.id}",
        "keyphrases": list(report.keyphrases),
        "entities": [{"name": n, "label": "other", "mentions": 1} for n in report.entities],
    }
    values.update(fields)
    return EnrichedArticle(**values)


def write_all(settings: Settings, ops: list[BulkOp]) -> list[BulkOp]:
    """The indices created and ``ops`` written as the linking stage writes them (a document
    already in an older index behind its alias, there), refreshed (searchable); the ops as
    written."""

    async def write() -> list[BulkOp]:
        es = await connect(settings, wait=30)
        try:
            await ensure_indices(es, settings)
            written = await to_their_indices(es, [settings.index(kind) for kind in ROLLING], ops)
            result = await bulk_write(es, written)
            assert not result.rejected, result.rejected
            await es.indices.refresh(index=settings.index("*"))
            return written
        finally:
            await es.close()

    return run(write())


def merged_event(event_id: str, label: str, *, into: str) -> Event:
    """The document of a one-report event merged ``into`` another."""
    when = datetime(2025, 10, 9, tzinfo=UTC)
    return Event(
        id=event_id,
        label=label,
        first_seen=when,
        last_seen=when,
        article_count=1,
        source_count=1,
        earliest_article_id="gone",
        merged_into=into,
    )


def ops_by(ops: list[Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(op.index, op.id, op.action): op.doc for op in ops}


def test_each_article_gets_its_event_a_link_record_and_an_event_document() -> None:
    stage = EventIndexing(LinkerStore({}), SETTINGS)
    fr = article(FIRE_FR)
    first = ops_by(stage.article_ops(article(FIRE_EN)))
    second = ops_by(stage.article_ops(fr))
    other = ops_by(stage.article_ops(article(ELECTION)))

    # Each article's document is written here, once: the whole article with its event.
    update = second[("wirewatch-articles", "fire-fr", "upsert")]
    opened = first[("wirewatch-articles", "fire-en", "upsert")]
    assert update == {**fr.model_dump(mode="json"), **{f: update[f] for f in EVENT_FIELDS}}
    assert update["event_id"] == opened["event_id"]
    assert (opened["event_reason"], update["event_reason"]) == ("new", "similar")
    assert update["event_score"] > 0.38
    assert other[("wirewatch-articles", "election", "upsert")]["event_id"] != opened["event_id"]

    record = EventLink.model_validate(second[("wirewatch-event-links", "fire-fr", "index")])
    assert record.event_id == opened["event_id"] and not record.opened and record.language == "fr"
    event = Event.model_validate(second[("wirewatch-events", opened["event_id"], "index")])
    assert event.article_count == 2 and event.source_count == 2
    assert set(event.languages) == {"en", "fr"}
    assert event.label == FIRE_EN.title and event.earliest_article_id == "fire-en"
    assert event.summary.startswith("A fire broke out on Tuesday night")
    assert "Norvalis" in event.entities  # display form, not the normalised key
    assert sum(h.reports for h in event.growth) == 2 and event.reports_last_day == 2


def test_an_events_sources_are_the_outlets_its_articles_name() -> None:
    """Outlets are counted by name, as articles and alerts show them: two outlets served from
    one host (a syndication platform, the demo site) are two sources, not one host name."""
    stage = EventIndexing(LinkerStore({}), SETTINGS)
    host = "news.example"
    first = article(FIRE_EN, source="Northern Ledger", source_domain=host)
    second = article(FIRE_FR, source="Le Courrier du Matin", source_domain=host)
    stage.article_ops(first)
    ops = ops_by(stage.article_ops(second))
    event = next(
        Event.model_validate(doc) for (index, _, _), doc in ops.items() if index == "wirewatch-events"
    )
    assert event.article_count == 2 and event.source_count == 2
    assert sorted(event.sources) == ["Le Courrier du Matin", "Northern Ledger"]
    assert event.earliest_source == "Northern Ledger"
    # An article without a name of its outlet counts by its host.
    assert Report.from_article(article(ELECTION, source="", source_domain=host)).source == host


def test_an_event_reported_by_hundreds_of_outlets_counts_them_all() -> None:
    stage = EventIndexing(LinkerStore({}), SETTINGS)
    for n in range(300):
        copy = article(FIRE_EN, id=f"fire-{n}", source=f"Outlet {n}", duplicate_of="fire-0" if n else None)
        ops = ops_by(stage.article_ops(copy))
    [event] = [Event.model_validate(doc) for (index, _, _), doc in ops.items() if index == "wirewatch-events"]
    assert event.article_count == 300 and event.source_count == 300 and len(event.sources) == 300


def test_a_batch_of_reports_sends_each_event_document_once_and_every_other_write() -> None:
    """The linking stage sends a batch's writes in one bulk: an event document rewritten by each
    report of the batch goes once, as the last report left it; nothing else is dropped."""
    stage = EventIndexing(LinkerStore({}), SETTINGS)
    ops = [op for a in (FIRE_EN, FIRE_FR, ELECTION, FIRE_WALES) for op in stage.article_ops(article(a))]
    sent = without_superseded(ops)
    events = [op for op in sent if op.index == "wirewatch-events"]
    assert (
        len({op.id for op in events})
        == len(events)
        < len([op for op in ops if op.index == "wirewatch-events"])
    )
    for op in events:  # the last version of each event document
        assert op.doc == [o.doc for o in ops if (o.index, o.id) == (op.index, op.id)][-1]
    assert [op for op in sent if op.index != "wirewatch-events"] == [
        op for op in ops if op.index != "wirewatch-events"
    ]
    # A partial update after a full rewrite is kept, in its place; one before it is not.
    a, b = BulkOp("i", "1", {"x": 1}, "update"), BulkOp("i", "1", {"x": 2})
    c = BulkOp("i", "1", {"y": 3}, "update")
    assert without_superseded([a, b, c]) == [b, c]


def test_table_restores_the_same_linker_and_a_replay_gets_its_original_decision() -> None:
    table: dict[str, Any] = {}
    stage = EventIndexing(LinkerStore(table), SETTINGS)
    for report in (FIRE_EN, FIRE_FR, ELECTION):
        stage.article_ops(article(report))
    assert {k.split(":")[0] for k in table} == {"meta", "event", "article"}
    assert json.loads(json.dumps(table)) == table  # what a Faust table's changelog carries

    reference = EventLinker()
    for report in (FIRE_EN, FIRE_FR, ELECTION):
        reference.link(Report.from_article(article(report)))

    restarted = EventIndexing(LinkerStore(table), SETTINGS)  # a restart: rebuilt from the table
    replay = ops_by(restarted.article_ops(article(FIRE_FR)))
    record = EventLink.model_validate(replay[("wirewatch-event-links", "fire-fr", "index")])
    assert record.reason == "similar" and record.score is not None  # not "known"
    wales = restarted.store.link(Report.from_article(article(FIRE_WALES))).link
    expected = reference.link(Report.from_article(article(FIRE_WALES)))
    assert (wales.event_id, wales.reason, wales.score) == (expected.event_id, expected.reason, expected.score)


def test_a_replayed_article_whose_event_is_gone_is_written_without_event_fields(monkeypatch: Any) -> None:
    """Its document is still written (a replay after an upgrade brings new enrichment), as a
    partial upsert without the event fields: the event it was given before stays."""
    stage = EventIndexing(LinkerStore({}), SETTINGS)
    stage.article_ops(article(FIRE_EN))
    monkeypatch.setattr(stage.store, "event", lambda event_id: None)
    again = article(FIRE_EN, title="Fire at Norvalis (updated)")
    doc = again.model_dump(mode="json", exclude=set(EVENT_FIELDS))
    assert stage.article_ops(again) == [BulkOp("wirewatch-articles", "fire-en", doc, "upsert")]


def test_articles_and_events_leave_the_table_with_the_window() -> None:
    table: dict[str, Any] = {}
    store = LinkerStore(table)
    store.link(Report.from_article(article(FIRE_EN)))
    later = Report.from_article(
        article(ELECTION, published=None, fetched_at=datetime(2030, 1, 1, tzinfo=UTC))
    )
    link = store.link(later).link
    assert link.expired  # the fire event left the window
    assert ARTICLE + "fire-en" not in table and not any(k.startswith(EVENT + "x") for k in table)
    assert [k for k in table if k.startswith(EVENT)] == [EVENT + link.event_id]
    assert table[META]["clock"] == later.time


def test_a_duplicate_joins_its_originals_event() -> None:
    stage = EventIndexing(LinkerStore({}), SETTINGS)
    original = ops_by(stage.article_ops(article(FIRE_EN)))
    copy = article(ELECTION, id="copy", duplicate_of="fire-en", is_duplicate=True)
    ops = ops_by(stage.article_ops(copy))
    event_id = original[("wirewatch-articles", "fire-en", "upsert")]["event_id"]
    written = ops[("wirewatch-articles", "copy", "upsert")]
    assert {f: written[f] for f in EVENT_FIELDS} == {
        "event_id": event_id,
        "event_reason": "duplicate",
        "event_score": None,
    }
    assert EventLink.model_validate(ops[("wirewatch-event-links", "copy", "index")]).is_duplicate


def _alert(article_id: str, *, retroactive: bool = False, **fields: Any) -> Alert:
    return Alert(
        id=f"alert-{article_id}",
        claim_id="claim-evacuated",
        claim_text="2,400 residents were evacuated near Lyon",
        article_id=article_id,
        url="https://example.org/a",
        source="example.org",
        language="en",
        sentence="forcing 2,400 residents to leave their homes",
        sentence_start=0,
        sentence_end=10,
        score=0.8,
        retroactive=retroactive,
        **fields,
    )


def test_tracked_claims_reach_the_event_even_when_the_alert_comes_first() -> None:
    stage = EventIndexing(LinkerStore({}), SETTINGS)
    assert stage.alert_ops(_alert("fire-fr")) == []  # the article is not linked yet: it waits
    stage.article_ops(article(FIRE_EN))
    ops = ops_by(stage.article_ops(article(FIRE_FR)))
    event = next(Event.model_validate(d) for (i, _, _), d in ops.items() if i == "wirewatch-events")
    assert event.claim_ids == ["claim-evacuated"] and event.claim_count == 1
    # The alert that waited gets the event id with its article.
    assert ops[("wirewatch-alerts", "alert-fire-fr", "update")] == {"event_id": event.id}

    again = ops_by(stage.alert_ops(_alert("fire-en")) or [])
    assert again[("wirewatch-alerts", "alert-fire-en", "update")] == {"event_id": event.id}
    assert Event.model_validate(again[("wirewatch-events", event.id, "index")]).claim_count == 1
    assert stage.alert_ops(_alert("not-in-window", retroactive=True)) is None  # read from Elasticsearch


def test_waiting_sightings_are_records_of_their_own_and_meta_stays_small(monkeypatch: Any) -> None:
    """Alerts waiting for their article are one small record each, not part of ``meta`` (which
    is rewritten for every report: with thousands waiting, that wrote megabytes per report). They
    survive a restart in their order, the oldest go first past ``MAX_PENDING``, and the record
    goes when its article is linked."""
    monkeypatch.setattr(event_store, "MAX_PENDING", 3)
    table: dict[str, Any] = {}
    stage = EventIndexing(LinkerStore(table), SETTINGS)
    stage.article_ops(article(FIRE_EN))
    for article_id in ("fire-fr", "gone-1", "gone-2", "gone-3"):
        assert stage.alert_ops(_alert(article_id)) == []  # not linked yet: it waits
    assert "pending" not in table[META]
    assert [k for k in table if k.startswith(PENDING)] == [
        PENDING + a for a in ("gone-1", "gone-2", "gone-3")
    ]
    assert len(json.dumps(table[META])) < 200

    restarted = EventIndexing(LinkerStore(table), SETTINGS)
    restarted.alert_ops(_alert("fire-fr"))  # came again: the oldest waiting (gone-1) goes
    assert sorted(k for k in table if k.startswith(PENDING)) == [
        PENDING + a for a in ("fire-fr", "gone-2", "gone-3")
    ]
    ops = ops_by(restarted.article_ops(article(FIRE_FR)))
    assert ops[("wirewatch-alerts", "alert-fire-fr", "update")]["event_id"]
    assert PENDING + "fire-fr" not in table and PENDING + "gone-2" in table
    assert len(json.dumps(table[META])) < 200


def test_sightings_kept_in_meta_by_an_older_version_move_to_their_own_records() -> None:
    table: dict[str, Any] = {}
    store = LinkerStore(table)
    store.link(Report.from_article(article(FIRE_EN)))
    sighting = ["claim-evacuated", "2,400 residents were evacuated near Lyon", "alert-fire-fr"]
    table[META] = {**table[META], "pending": {"fire-fr": [sighting]}}
    recovered = StreamTable(table)  # rebuilt when the table is recovered, where writes are refused
    restarted = LinkerStore(recovered)
    assert len(restarted.linker.events) == 1
    recovered.in_stream = True
    restarted.note_claim("fire-xx", "claim-other", "another sighting", wait=True)
    assert recovered[PENDING + "fire-fr"]["sightings"] == [sighting]  # moved by the first write
    decision = restarted.link(Report.from_article(article(FIRE_FR)))
    assert decision.alerts == ("alert-fire-fr",)
    assert "pending" not in recovered[META] and PENDING + "fire-fr" not in recovered


def test_a_live_alert_on_an_article_dated_before_the_window_does_not_wait() -> None:
    """Such an article's event leaves the window at the next report, so a sighting waiting for
    a live event of it could wait for ever: its event is read from Elasticsearch instead (as for a retroactive
    alert); only if the article is not there yet does the sighting wait for it."""
    stage = EventIndexing(LinkerStore({}), SETTINGS)
    stage.article_ops(article(FIRE_EN))
    old = datetime.fromtimestamp(FIRE_EN.time - 30 * 86400, UTC)
    assert stage.alert_ops(_alert("old-news", published=old)) is None
    assert not stage.store._pending
    recent = datetime.fromtimestamp(FIRE_EN.time, UTC)
    assert stage.alert_ops(_alert("soon", published=recent)) == []  # may still be linked: waits

    class NotIndexedYet:
        async def search(self, **_: Any) -> dict[str, Any]:
            return {"hits": {"hits": []}}

    assert run(stage.old_alert_ops(NotIndexedYet(), _alert("old-news", published=old))) == []  # type: ignore[arg-type]
    assert "old-news" in stage.store._pending  # it overtook its article: now it waits
    assert run(stage.old_alert_ops(NotIndexedYet(), _alert("old-2", published=old, retroactive=True))) == []  # type: ignore[arg-type]
    assert "old-2" not in stage.store._pending


def test_a_live_alert_right_after_its_old_dated_article_finds_its_event_without_elasticsearch(
    monkeypatch: Any,
) -> None:
    """The alert comes after its article (dated before the window) was linked, but before
    Elasticsearch shows the article (same batch, or no refresh yet): the stage's memory of its
    last links gives the event, which gets the claim; nothing waits. Past ``RECENT_LINKS``
    articles it is Elasticsearch's to answer again."""
    monkeypatch.setattr(indexer_events, "RECENT_LINKS", 2)
    stage = EventIndexing(LinkerStore({}), SETTINGS)
    stage.article_ops(article(FIRE_EN))
    old = datetime.fromtimestamp(FIRE_EN.time - 30 * 86400, UTC)
    ops = ops_by(stage.article_ops(article(ELECTION, id="old-news", published=old)))
    event_id = ops[("wirewatch-articles", "old-news", "upsert")]["event_id"]

    class NotIndexedYet:
        async def search(self, **_: Any) -> dict[str, Any]:
            return {"hits": {"hits": []}}

    # In the same batch: its event is still live, and its table record gets the claim too.
    first = _alert("old-news", published=old).model_copy(
        update={"id": "alert-first", "claim_id": "claim-first"}
    )
    ops = ops_by(run(stage.old_alert_ops(NotIndexedYet(), first)))  # type: ignore[arg-type]
    assert Event.model_validate(ops[("wirewatch-events", event_id, "index")]).claim_ids == ["claim-first"]
    assert "claim-first" in EventState.from_record(stage.store.table[EVENT + event_id]).claims
    stage.article_ops(article(FIRE_FR))  # the old article's event leaves the window
    assert stage.store.event(event_id) is None
    alert = _alert("old-news", published=old)
    assert stage.alert_ops(alert) is None
    ops = ops_by(run(stage.old_alert_ops(NotIndexedYet(), alert)))  # type: ignore[arg-type]
    assert ops[("wirewatch-alerts", alert.id, "update")] == {"event_id": event_id}
    event = Event.model_validate(ops[("wirewatch-events", event_id, "index")])
    assert sorted(event.claim_ids) == ["claim-evacuated", "claim-first"]
    assert not stage.store._pending

    stage.article_ops(article(FIRE_WALES))  # two later links: the old article is forgotten
    assert run(stage.old_alert_ops(NotIndexedYet(), alert)) == []  # type: ignore[arg-type]
    assert "old-news" in stage.store._pending
    # Partitions moved: what is in memory is forgotten too.
    assert stage._recent
    stage.reset()
    assert not stage._recent


def test_event_state_record_round_trips_with_the_document_fields() -> None:
    store = LinkerStore({})
    store.link(Report.from_article(article(FIRE_EN)))
    store.link(Report.from_article(article(FIRE_FR)))
    store.note_claim("fire-en", "c1", "claim text", wait=False)
    (event,) = store.linker.events.values()
    again = EventState.from_record(json.loads(json.dumps(event.record())))
    assert again.record() == event.record()
    assert again.claims == {"c1": "claim text"} and again.names and sum(again.hours.values()) == 2


def test_for_linking_keeps_what_linking_reads() -> None:
    long = article(FIRE_EN, text=FIRE_EN.text * 50)
    cut = for_linking(long)
    assert len(cut.text) < len(long.text) and long.text.startswith(cut.text)
    assert Report.from_article(cut).entities == Report.from_article(long).entities


def test_events_and_event_commands_read_what_the_stage_wrote(servers: Any, monkeypatch: Any) -> None:
    """The stage's writes for three reports in the stand-in, read back by ``wirewatch events``
    and ``wirewatch event ID`` (a merged id leads to its survivor)."""
    settings = settings_for(servers)
    stage = EventIndexing(LinkerStore({}), settings)
    reports = (FIRE_EN, FIRE_FR, ELECTION)
    ops: list[BulkOp] = []
    for report in reports:
        ops += stage.article_ops(article(report))
    fire = stage.store.linker.event_of("fire-en")
    assert fire is not None
    merged = merged_event("merged-away", "an event merged into the fire", into=fire)
    ops.append(BulkOp(settings.index("events"), merged.id, merged.model_dump(mode="json")))
    also_merged = merged.model_copy(update={"id": "merged-away-too", "label": "another merged event"})
    ops.append(BulkOp(settings.index("events"), also_merged.id, also_merged.model_dump(mode="json")))
    now = datetime.now(UTC)
    growing = Event(
        id="growing-now",
        label="an event with three reports in the last hour",
        first_seen=now,
        last_seen=now,
        article_count=3,
        source_count=3,
        earliest_article_id="first-of-three",
        reports_last_hour=3,
        related=["merged-away", fire, "no-such-event"],  # the fire twice: through its merge too
    )
    ops.append(BulkOp(settings.index("events"), growing.id, growing.model_dump(mode="json")))
    election = stage.store.linker.event_of("election")
    # Alerts as the stage leaves them: the fire's, one raised before its event was merged into
    # the fire (so it keeps the merged id), and the election's.
    for alert in (
        _alert("fire-fr", event_id=fire),
        _alert("before-merge", event_id="merged-away"),
        _alert("election", event_id=election),
    ):
        ops.append(BulkOp(settings.index("alerts"), alert.id, alert.model_dump(mode="json")))
    # An article of the merged event that had left the stage's memory: it keeps the merged id.
    old_report = article(FIRE_WALES, event_id="merged-away").model_dump(mode="json")
    ops.append(BulkOp(settings.index("articles"), FIRE_WALES.id, old_report))
    write_all(settings, ops)

    async def read() -> None:
        es = await connect(settings, wait=30)
        try:
            survivor = await stored_event(es, settings, "merged-away")
            assert survivor is not None and survivor.id == fire and survivor.article_count == 2
            assert await stored_event(es, settings, "no-such-event") is None
        finally:
            await es.close()

    run(read())
    for name, value in servers.env().items():
        monkeypatch.setenv(name, value)
    listed = CliRunner().invoke(main, ["events", "--since", "2000-01-01", "--json"])
    assert listed.exit_code == 0, listed.output
    events = json.loads(listed.output)
    assert {e["id"] for e in events} == {fire, election, "growing-now"}  # not the merged one

    def order(*options: str) -> list[str]:
        out = CliRunner().invoke(main, ["events", "--since", "2000-01-01", "--json", *options])
        assert out.exit_code == 0, out.output
        return [e["id"] for e in json.loads(out.output)]

    # The fire (2 reports, 2 outlets) was last reported before the election (1 report).
    assert order() == order("--sort", "recent") == ["growing-now", election, fire]
    assert order("--sort", "reports") == order("--sort", "sources") == ["growing-now", fire, election]
    assert order("--sort", "reports", "--size", "2") == ["growing-now", fire]
    wrong = CliRunner().invoke(main, ["events", "--sort", "size"])
    assert wrong.exit_code == 2 and "'size' is not one of 'recent', 'reports', 'sources'" in wrong.output
    # "+N/h" is a rate of now: shown for the event active in the last hour, not for older ones,
    # whose last hour (the hour before their last report) is long past.
    lines = CliRunner().invoke(main, ["events", "--since", "2000-01-01"]).output.splitlines()
    rates = {line.split()[0]: line.split()[-1] for line in lines if line and not line.startswith(" ")}
    assert rates["growing-now"] == "+3/h" and "/h" not in rates[fire]
    shown = CliRunner().invoke(main, ["event", "merged-away", "--json"])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["id"] == fire and report["requested_id"] == "merged-away"
    assert [a["id"] for a in report["articles"]] == ["fire-en", "fire-fr", "fire-wales"]  # in time order
    text = CliRunner().invoke(main, ["event", fire])
    assert "first" in text.output and FIRE_EN.title[:40] in text.output
    missing = CliRunner().invoke(main, ["event", "no-such-event"])
    assert missing.exit_code != 0 and "no event" in missing.output
    # The start of an id will do, as a commit's for git: six characters or more, and one event.
    start = CliRunner().invoke(main, ["event", fire[:8], "--json"])
    assert start.exit_code == 0, start.output
    assert json.loads(start.output)["id"] == fire and json.loads(start.output)["requested_id"] == fire
    assert "was merged" not in CliRunner().invoke(main, ["event", fire[:8]]).output
    survivor = json.loads(CliRunner().invoke(main, ["event", "merged-away-t", "--json"]).output)
    assert survivor["id"] == fire and survivor["requested_id"] == "merged-away-too"
    too_short = CliRunner().invoke(main, ["event", fire[:5]])
    assert too_short.exit_code != 0 and f"no event '{fire[:5]}'" in too_short.output
    # An id that fits none: one form whatever is wrong with it, and where the ids are.
    for given, why in (
        ("zzzzzz", "event ids are hexadecimal: 0-9 and a-f"),
        ("12345", "give an id, or its first 6 characters or more"),
        ("0" * 31, "no event id starts with it"),
    ):
        for json_or_not in ([], ["--json"]):  # an error: nothing on stdout, --json or not
            wrong_id = CliRunner().invoke(main, ["event", given, *json_or_not])
            assert wrong_id.exit_code == 1 and wrong_id.stdout == ""
            assert wrong_id.stderr == f"error: no event {given!r} ({why}; `wirewatch events` lists them)\n"
    both = CliRunner().invoke(main, ["event", "merged-a"])
    assert both.exit_code != 0
    assert "2 events start with 'merged-a'" in both.output
    assert "merged-away an event merged into the fire; merged-away-too another merged event" in both.output
    # The alerts on an event's reports: named as for `event`, merged events' alerts included.
    for given in (fire[:8], "merged-away"):
        on_fire = CliRunner().invoke(main, ["alerts", "--event", given, "--json"])
        assert on_fire.exit_code == 0, on_fire.output
        assert sorted(a["id"] for a in json.loads(on_fire.output)) == ["alert-before-merge", "alert-fire-fr"]
    no_event = CliRunner().invoke(main, ["alerts", "--event", "no-such-event"])
    assert no_event.exit_code == 1 and "no event 'no-such-event'" in no_event.output
    # Related events: each once, as its survivor, an id without a document left out.
    growing_report = json.loads(CliRunner().invoke(main, ["event", "growing-now", "--json"]).output)
    assert [(e["id"], e["article_count"]) for e in growing_report["related_events"]] == [(fire, 2)]
    shown_growing = CliRunner().invoke(main, ["event", "growing-now"]).output
    assert f"related event: {fire}  2 reports, last " in shown_growing and FIRE_EN.title[:30] in shown_growing


AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def _hours(*counts: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"hour": f"2026-03-01T{hh}:00:00Z", "reports": n} for hh, n in counts]


@pytest.mark.parametrize(
    ("last_seen", "growth", "stored", "now", "expected"),
    [
        # Last reported 1 h 17 min before now: its document still says 1 in the last hour.
        ("2026-03-01T11:13:00Z", _hours(("11", 1)), 1, AT, (0, 1)),
        # Within the hour: the hours reaching into it count (10:00's ended before 11:30).
        ("2026-03-01T12:10:00Z", _hours(("10", 4), ("11", 3), ("12", 2)), 5, AT, (5, 9)),
        # 13:05: the last hour starts at 12:05; 12:00's reports are up to 12:10, 11:00's ended.
        (
            "2026-03-01T12:10:00Z",
            _hours(("10", 4), ("11", 3), ("12", 2)),
            5,
            AT + timedelta(minutes=35),
            (2, 9),
        ),
        # A day after its last report, nothing in the last day either.
        ("2026-03-01T12:10:00Z", _hours(("12", 2)), 2, AT + timedelta(days=1), (0, 0)),
        # No reports per hour (no document is written without): the count while in the period.
        ("2026-03-01T12:10:00Z", [], 3, AT, (3, 3)),
        ("2026-03-01T10:10:00Z", [], 3, AT, (0, 3)),
    ],
)
def test_an_event_s_reports_of_the_last_hour_and_day_are_counted_up_to_now(
    last_seen: str, growth: list[dict[str, Any]], stored: int, now: datetime, expected: tuple[int, int]
) -> None:
    event = {
        "last_seen": last_seen,
        "growth": growth,
        "reports_last_hour": stored,
        "reports_last_day": stored,
    }
    counted = reports_as_of(event, now)
    assert (counted["reports_last_hour"], counted["reports_last_day"]) == expected


def test_events_and_event_show_the_reports_of_the_last_hour_as_of_now(servers: Any, monkeypatch: Any) -> None:
    """The operator's case: an event last reported 1 h 17 min ago, whose document (written
    then) says 2 reports in the last hour, is shown with none in the last hour, in the text
    and the JSON of `events` and in `event --json`; one reported 10 min ago with its one."""
    prefix = "event-rates"
    settings = settings_for(servers, es_index_prefix=prefix)
    stage = EventIndexing(LinkerStore({}), settings)
    now = datetime.now(UTC).timestamp()
    reports = (
        replace(FIRE_EN, time=now - 90 * 60),
        replace(FIRE_FR, time=now - 77 * 60),
        replace(ELECTION, time=now - 10 * 60),
    )
    write_all(settings, [op for report in reports for op in stage.article_ops(article(report))])
    fire, election = stage.store.linker.event_of("fire-en"), stage.store.linker.event_of("election")
    assert fire is not None and election is not None and fire == stage.store.linker.event_of("fire-fr")

    async def stored(event_id: str) -> int:
        es = await connect(settings, wait=30)
        try:
            event = await stored_event(es, settings, event_id)
            assert event is not None
            return event.reports_last_hour
        finally:
            await es.close()

    assert (run(stored(fire)), run(stored(election))) == (2, 1)  # the documents: as of then
    for name, value in servers.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WIREWATCH_ES_INDEX_PREFIX", prefix)
    listed = CliRunner().invoke(main, ["events", "--json"])
    assert listed.exit_code == 0, listed.output
    counts = {e["id"]: (e["reports_last_hour"], e["reports_last_day"]) for e in json.loads(listed.output)}
    assert counts == {fire: (0, 2), election: (1, 1)}
    assert all("growth" not in e for e in json.loads(listed.output))  # the fields as before
    lines = CliRunner().invoke(main, ["events"]).output.splitlines()
    rates = {line.split()[0]: line.split()[-1] for line in lines if line and not line.startswith(" ")}
    assert rates[election] == "+1/h" and "/h" not in rates[fire]
    shown = json.loads(CliRunner().invoke(main, ["event", fire, "--json"]).output)
    assert (shown["reports_last_hour"], shown["reports_last_day"]) == (0, 2)
    assert [g["reports"] for g in shown["growth"]] in ([2], [1, 1])  # its reports per hour, kept


@pytest.mark.parametrize("backend", ["servers", "noida"])
def test_an_event_shows_the_events_that_name_it_related_too(
    backend: str, request: pytest.FixtureRequest, monkeypatch: Any
) -> None:
    """The indexer records a relation on the event whose report came close to the other one;
    `event B` shows the events B names, then those that name B (most recently active first, a
    merged one left out, one naming an event merged into B found), each once."""
    servers: LocalServers = request.getfixturevalue(backend)
    prefix = f"event-related-{backend}"
    settings = settings_for(servers, es_index_prefix=prefix)
    now = datetime.now(UTC)

    def event(event_id: str, minutes_ago: int, related: list[str], **fields: Any) -> BulkOp:
        when = now - timedelta(minutes=minutes_ago)
        doc = Event(
            id=event_id,
            label=f"the {event_id} story",
            first_seen=when,
            last_seen=when,
            article_count=1,
            source_count=1,
            earliest_article_id=f"{event_id}-first",
            related=related,
            **fields,
        )
        return BulkOp(settings.index("events"), event_id, doc.model_dump(mode="json"))

    write_all(
        settings,
        [
            event("bbbb01", 5, ["dddd01"]),
            event("aaaa01", 60, ["bbbb01"]),
            event("cccc01", 1, ["bbbb01", "no-such-event"]),
            event("dddd01", 20, ["bbbb01"]),  # both ways: shown once
            event("eeee01", 30, ["bbbb02"]),  # names an event merged into bbbb01 since
            event("bbbb02", 90, [], merged_into="bbbb01"),
            event("ffff01", 2, ["bbbb01"], merged_into="aaaa01"),  # merged: aaaa01 speaks for it
            event("ffff02", 3, ["aaaa01"]),
        ],
    )
    for name, value in servers.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WIREWATCH_ES_INDEX_PREFIX", prefix)

    def related(event_id: str) -> list[str]:
        shown = CliRunner().invoke(main, ["event", event_id, "--json"])
        assert shown.exit_code == 0, shown.output
        return [other["id"] for other in json.loads(shown.output)["related_events"]]

    assert related("bbbb01") == ["dddd01", "cccc01", "eeee01", "aaaa01"]
    assert related("aaaa01") == ["bbbb01", "ffff02"]
    assert related("dddd01") == ["bbbb01"]
    assert related("ffff02") == ["aaaa01"]
    # The events one names: a merged one as its survivor, an unknown id left out.
    assert related("eeee01") == ["bbbb01"]
    assert related("cccc01") == ["bbbb01"]
    text = CliRunner().invoke(main, ["event", "bbbb01"]).output
    assert "  related event: cccc01  1 report, last " in text and "the cccc01 story" in text


def test_the_events_command_offers_every_order_the_search_knows() -> None:
    """``events --sort`` lists its choices in the CLI (which does not import the search client
    until a command runs): the same names, in the same order, as ``EVENT_SORTS``."""
    (sort,) = (param for param in events_command.params if param.name == "sort")
    assert isinstance(sort.type, click.Choice)
    assert list(sort.type.choices) == list(EVENT_SORTS)
    assert sort.default == next(iter(EVENT_SORTS))


@pytest.mark.parametrize("backend", ["servers", "noida"])
def test_events_command_finds_events_by_the_words_of_their_reports(
    backend: str, request: pytest.FixtureRequest, monkeypatch: Any
) -> None:
    """``wirewatch events WORDS``: the events with a report that has every word (search's
    syntax and stems), so an event is found in any of its reports' languages, a merged event
    as its survivor."""
    servers: LocalServers = request.getfixturevalue(backend)
    prefix = f"event-words-{backend}"
    settings = settings_for(servers, es_index_prefix=prefix)
    stage = EventIndexing(LinkerStore({}), settings)
    ops = [op for report in (FIRE_EN, FIRE_FR, ELECTION) for op in stage.article_ops(article(report))]
    fire, election = stage.store.linker.event_of("fire-en"), stage.store.linker.event_of("election")
    assert fire is not None and election is not None
    # A report of an event merged into the fire since (its document says so; the report does not).
    wales = article(FIRE_WALES, event_id="merged-fire").model_dump(mode="json")
    ops.append(BulkOp(settings.index("articles"), FIRE_WALES.id, wales))
    merged = merged_event("merged-fire", FIRE_WALES.title, into=fire)
    ops.append(BulkOp(settings.index("events"), merged.id, merged.model_dump(mode="json")))
    # Two steps from the fire: an event merged into the merged one (read in one search per step).
    farther = replace(
        FIRE_WALES, id="fire-farther", title="Kestrelby firefighters back from the Bexmoor mill"
    )
    ops.append(
        BulkOp(
            settings.index("articles"),
            farther.id,
            article(farther, event_id="merged-twice").model_dump(mode="json"),
        )
    )
    twice = merged_event("merged-twice", farther.title, into="merged-fire")
    ops.append(BulkOp(settings.index("events"), twice.id, twice.model_dump(mode="json")))
    # A merge whose survivor has no document (an index expired): the event is not found.
    lost = replace(ELECTION, id="lost-report", title="Quillmarsh ballots recounted")
    ops.append(
        BulkOp(
            settings.index("articles"), lost.id, article(lost, event_id="merged-lost").model_dump(mode="json")
        )
    )
    orphan = merged_event("merged-lost", lost.title, into="expired-event")
    ops.append(BulkOp(settings.index("events"), orphan.id, orphan.model_dump(mode="json")))
    write_all(settings, ops)
    for name, value in servers.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WIREWATCH_ES_INDEX_PREFIX", prefix)

    def events(*words: str) -> list[str]:
        out = CliRunner().invoke(main, ["events", *words, "--since", "2000-01-01", "--json"])
        assert out.exit_code == 0, out.output
        return sorted(e["id"] for e in json.loads(out.output))

    assert events() == sorted([fire, election])
    assert events("Norvalis") == [fire]
    assert events("plants", "residents") == [fire]  # English stems: the title says plant
    assert events("incendie", "pompier") == [fire]  # its French report's words, by their stem
    assert events("Bexmoor") == [fire]  # the merged event's report finds its survivor
    assert events("Kestrelby") == [fire]  # and two merges away
    assert events("Quillmarsh") == []  # a survivor without a document: nothing to list
    assert events("Norvalis", "Vallmora") == []  # every word
    assert events("Norvalis", "|", "Vallmora") == sorted([fire, election])
    assert events("Norvalis", "-Lyon") == []
    assert events('"presidential run-off"') == [election]
    assert events('"run-off presidential"') == []
    assert events("Norvalis", "--lang", "fr") == [fire]  # the fire has a French report
    assert events("presidential", "--lang", "fr") == []
    text = CliRunner().invoke(main, ["events", "Vallmora", "--since", "2000-01-01"]).output
    assert election in text and "Vallmora votes" in text
    assert CliRunner().invoke(main, ["events", "Atlantis", "--since", "2000-01-01"]).output == "no events\n"
    typo = CliRunner().invoke(main, ["events", "Norvalis", "--sinec", "2000-01-01"])
    assert typo.exit_code == 2 and "no such option: --sinec" in typo.output


@pytest.mark.parametrize("backend", ["servers", "noida"])
def test_a_merge_gives_the_merged_events_older_documents_the_survivors_id(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """A merge moves the articles of the linker's window with it; the merged event's older
    documents (an article that left the window, its alert and its link record) follow once the
    batch is written, and after a restart any the stage had not reached yet."""
    servers: LocalServers = request.getfixturevalue(backend)
    settings = settings_for(servers, es_index_prefix=f"repoint-{backend}")
    table: dict[str, Any] = {}
    stage = EventIndexing(LinkerStore(table), settings)
    ops = [op for report in (BLAST, STAY_IN) for op in stage.article_ops(article(report))]
    blast, stay_in = stage.store.linker.event_of("blast"), stage.store.linker.event_of("stay-in")
    assert blast is not None and stay_in is not None and blast != stay_in
    assert not stage.repoint_due  # no merge yet

    def older(article_id: str) -> list[BulkOp]:
        """What the stage wrote for a report of the stay-in event that has left its window."""
        report = replace(STAY_IN, id=article_id, time=STAY_IN.time - 20 * DAY)
        link = ops_by(ops)[(settings.index("event-links"), "stay-in", "index")]
        return [
            BulkOp(
                settings.index("articles"),
                article_id,
                article(report, event_id=stay_in).model_dump(mode="json"),
            ),
            BulkOp(
                settings.index("alerts"),
                f"alert-{article_id}",
                _alert(article_id, event_id=stay_in).model_dump(mode="json"),
            ),
            BulkOp(
                settings.index("event-links"),
                article_id,
                {**link, "id": article_id, "article_id": article_id},
            ),
        ]

    write_all(settings, ops + older("stay-in-old"))
    bridge = stage.article_ops(article(BRIDGE))
    assert ("stay-in", "update") in {(op.id, op.action) for op in bridge}  # moved with the merge
    write_all(settings, bridge)
    assert stage.store.linker.resolve(stay_in) == blast and stage.repoint_due

    async def repoint(indexing: EventIndexing) -> set[tuple[str, str]]:
        es = await connect(settings, wait=30)
        try:
            ops = await indexing.repoint_ops(es)
            result = await bulk_write(es, ops)
            assert not result.rejected, result.rejected
            await es.indices.refresh(index=settings.index("*"))
            indexing.repointed(ops)
            return {(op.index.removeprefix(f"repoint-{backend}-"), op.id) for op in ops}
        finally:
            await es.close()

    async def naming(event_id: str) -> dict[str, list[str]]:
        es = await connect(settings, wait=30)
        try:
            found = {}
            for kind in ("articles", "alerts", "event-links"):
                response = await es.search(
                    index=settings.index(kind), query={"term": {"event_id": event_id}}, size=100
                )
                found[kind] = sorted(hit["_id"] for hit in response["hits"]["hits"])
            return found
        finally:
            await es.close()

    def repointed_count() -> float:
        return REGISTRY.get_sample_value("wirewatch_event_repointed_total", {"index": "articles"}) or 0.0

    # Each updated where it is: the versioned index behind the alias.
    counted = repointed_count()
    assert run(repoint(stage)) == {
        ("articles-000001", "stay-in-old"),
        ("alerts-000001", "alert-stay-in-old"),
        ("event-links-000001", "stay-in-old"),
    }
    assert not stage.repoint_due and repointed_count() == counted + 1
    assert run(naming(stay_in)) == {"articles": [], "alerts": [], "event-links": []}
    assert run(naming(blast)) == {
        "articles": ["blast", "bridge", "stay-in", "stay-in-old"],
        "alerts": ["alert-stay-in-old"],
        "event-links": ["blast", "bridge", "stay-in", "stay-in-old"],
    }

    # A crash after a merge's batch, before its repoint: the restarted stage looks for every
    # merge its linker remembers.
    write_all(settings, older("stay-in-older"))
    restarted = EventIndexing(LinkerStore(table), settings)
    assert restarted.repoint_due
    assert run(repoint(restarted)) == {
        ("articles-000001", "stay-in-older"),
        ("alerts-000001", "alert-stay-in-older"),
        ("event-links-000001", "stay-in-older"),
    }
    assert run(naming(stay_in)) == {"articles": [], "alerts": [], "event-links": []}
    assert not restarted.repoint_due and run(repoint(restarted)) == set()


async def roll_over(settings: Settings, backend: str, kinds: Sequence[str] = ROLLING) -> None:
    """Each rolling alias (of ``kinds``) moved to a new write index, ``-000002``."""
    es = await connect(settings, wait=30)
    try:
        for kind in kinds:
            alias = settings.index(kind)
            if backend == "noida":  # as ILM does it
                assert (await es.indices.rollover(alias=alias))["new_index"] == f"{alias}-000002"
            else:  # the stand-in has no rollover API: the same aliases, by hand
                await es.indices.create(index=f"{alias}-000002")
                await es.indices.update_aliases(
                    actions=[
                        {"add": {"index": f"{alias}-000001", "alias": alias, "is_write_index": False}},
                        {"add": {"index": f"{alias}-000002", "alias": alias, "is_write_index": True}},
                    ]
                )
    finally:
        await es.close()


def copies(settings: Settings, kind: str, doc_id: str) -> dict[str, dict[str, Any]]:
    """The index (less the prefix) of each copy of a document of ``kind``, and its source."""

    async def find() -> dict[str, dict[str, Any]]:
        es = await connect(settings, wait=30)
        try:
            found = await es.search(index=settings.index(kind), query={"ids": {"values": [doc_id]}}, size=10)
            return {
                hit["_index"].removeprefix(f"{settings.es_index_prefix}-"): hit["_source"]
                for hit in found["hits"]["hits"]
            }
        finally:
            await es.close()

    return run(find())


@pytest.mark.parametrize("backend", ["servers", "noida"])
def test_documents_written_before_a_rollover_are_rewritten_where_they_are(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Behind rolled-over aliases, a replayed article, its link record and its event are
    rewritten in the indices that have them (not copied into the new write indices), and a
    merge updates an older article and the merged event there."""
    servers: LocalServers = request.getfixturevalue(backend)
    prefix = f"rolled-{backend}"
    settings = settings_for(servers, es_index_prefix=prefix)
    stage = EventIndexing(LinkerStore({}), settings)

    def write(ops: list[BulkOp]) -> set[tuple[str, str]]:
        """Where each write went: an alias (named by its kind), or one of its indices."""
        return {
            (op.index.removeprefix(f"{prefix}-"), op.id)
            for op in write_all(settings, without_superseded(ops))
        }

    first = [op for report in (BLAST, STAY_IN) for op in stage.article_ops(article(report))]
    blast_event, stay_in_event = (stage.store.linker.event_of(r.id) for r in (BLAST, STAY_IN))
    assert write(first) == {  # one index per alias: written through the alias
        ("articles", "blast"),
        ("articles", "stay-in"),
        ("event-links", "blast"),
        ("event-links", "stay-in"),
        ("events", blast_event),
        ("events", stay_in_event),
    }
    run(roll_over(settings, backend))
    # A replay (the same report again) and a new report, after the rollover.
    replayed = stage.article_ops(article(BLAST, title="Explosion heard at the Norvalis plant"))
    election = stage.article_ops(article(ELECTION))
    election_event = stage.store.linker.event_of("election")
    assert write(replayed + election) == {
        ("articles-000001", "blast"),
        ("event-links-000001", "blast"),
        ("events-000001", blast_event),
        ("articles", "election"),
        ("event-links", "election"),
        ("events", election_event),
    }
    assert list(copies(settings, "articles", "election")) == ["articles-000002"]
    assert list(copies(settings, "event-links", "election")) == ["event-links-000002"]
    blast = copies(settings, "articles", "blast")
    assert list(blast) == ["articles-000001"] and blast["articles-000001"]["title"].endswith(
        "at the Norvalis plant"
    )
    assert list(copies(settings, "event-links", "blast")) == ["event-links-000001"]
    assert list(copies(settings, "events", blast_event)) == ["events-000001"]
    # A merge moves stay-in (written before the rollover) to the survivor: its article and the
    # merged event's document are updated where they are.
    assert {
        ("articles-000001", "stay-in"),
        ("events-000001", stay_in_event),
        ("articles", "bridge"),
    } <= write(stage.article_ops(article(BRIDGE)))
    stay_in = copies(settings, "articles", "stay-in")
    assert list(stay_in) == ["articles-000001"]
    assert stay_in["articles-000001"]["event_id"] == stage.store.linker.event_of("blast") == blast_event
    merged = copies(settings, "events", stay_in_event)
    assert list(merged) == ["events-000001"] and merged["events-000001"]["merged_into"] == blast_event


def test_the_indexing_stage_rewrites_alerts_and_dead_letters_where_they_are(
    servers: LocalServers, tmp_path: Path
) -> None:
    """The indexing stage's writes after the aliases rolled over: a redelivered alert or dead
    letter is rewritten in the older index that has it, a new one goes to the new write index."""
    settings = settings_for(servers, es_index_prefix="rolled-stage", data_dir=tmp_path)
    letter = DeadLetter(
        id="letter-1", stage="fetcher.feed", reason="feed unreachable", error_type="HTTPError"
    )
    write_all(settings, [])  # the indices

    async def write(batches: list[tuple[str, list[Message]]]) -> None:
        indexer = Indexer(ServiceApp("indexer", settings))
        try:
            for kind, messages in batches:
                events = [SimpleNamespace(value=m.to_bytes()) for m in messages]
                written = await indexer.write(kind, type(messages[0]), events)
                assert written == messages
            await (await indexer.es()).indices.refresh(index=settings.index("*"))
        finally:
            await (await indexer.es()).close()

    run(write([("alerts", [_alert("a1")]), ("dead-letters", [letter])]))
    run(roll_over(settings, "servers"))
    again = letter.model_copy(update={"reason": "feed unreachable again"})
    run(
        write(
            [
                ("alerts", [_alert("a1").model_copy(update={"score": 0.9}), _alert("a2")]),
                ("dead-letters", [again]),
            ]
        )
    )

    alert = copies(settings, "alerts", "alert-a1")
    assert list(alert) == ["alerts-000001"] and alert["alerts-000001"]["score"] == 0.9
    assert list(copies(settings, "alerts", "alert-a2")) == ["alerts-000002"]
    letters = copies(settings, "dead-letters", "letter-1")
    assert list(letters) == ["dead-letters-000001"] and letters["dead-letters-000001"]["reason"].endswith(
        "again"
    )


def test_a_retroactive_alert_stays_retroactive_when_raised_again(servers: LocalServers) -> None:
    """A claim tracked after its article came is found retroactively; a replay of that article
    raises the same alert live (``retroactive`` false, a new creation time). The stored alert
    keeps how it was first raised; what the new pass decided (the score) is rewritten."""
    settings = settings_for(servers, es_index_prefix="raised-again")
    write_all(settings, [])  # the indices
    first = _alert("r1", retroactive=True, created_at=datetime(2026, 3, 1, 8, tzinfo=UTC))
    again = _alert("r1", created_at=datetime(2026, 3, 9, 8, tzinfo=UTC)).model_copy(update={"score": 0.9})

    async def write(alert: Alert) -> None:
        indexer = Indexer(ServiceApp("indexer", settings))
        try:
            assert await indexer.write("alerts", Alert, [SimpleNamespace(value=alert.to_bytes())]) == [alert]
            await (await indexer.es()).indices.refresh(index=settings.index("alerts"))
        finally:
            await (await indexer.es()).close()

    run(write(first))
    run(write(again))
    [stored] = copies(settings, "alerts", "alert-r1").values()
    assert stored["retroactive"] is True
    assert stored["created_at"].startswith("2026-03-01T08:00")
    assert stored["score"] == 0.9


def test_dead_letters_command_lists_what_failed_newest_first(
    servers: LocalServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(servers, es_index_prefix="dead-cli")
    letters = [
        DeadLetter(
            id="feed-down",
            stage="fetcher.feed",
            reason="feed unreachable: " + "connection refused " * 10,
            error_type="HTTPError",
            feed_url="https://news.example/rss",
            created_at=datetime(2026, 3, 1, 8, tzinfo=UTC),
        ),
        DeadLetter(
            id="bad-article",
            stage="enricher.analysis",
            reason="ValueError: no text",
            error_type="ValueError",
            key="article-123",
            payload="x" * 1000,
            created_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
        ),
        DeadLetter(
            id="page-gone",
            stage="fetcher.article",
            reason="HTTP 410",
            error_type="HTTPError",
            url="https://news.example/gone",
            key="article-456",
            created_at=datetime(2026, 3, 3, 10, tzinfo=UTC),
        ),
    ]
    index = settings.index("dead-letters")
    write_all(settings, [BulkOp(index, d.id, d.model_dump(mode="json")) for d in letters])
    for name, value in servers.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WIREWATCH_ES_INDEX_PREFIX", "dead-cli")

    def listed(*options: str) -> list[dict[str, Any]]:
        out = CliRunner().invoke(main, ["dead-letters", "--json", *options])
        assert out.exit_code == 0, out.output
        return json.loads(out.output)  # type: ignore[no-any-return]

    assert [d["id"] for d in listed()] == ["page-gone", "bad-article", "feed-down"]
    assert listed()[1]["payload"] == "x" * 1000  # as stored
    assert [d["id"] for d in listed("--since", "2026-03-02")] == ["page-gone", "bad-article"]
    assert [d["id"] for d in listed("--stage", "fetcher")] == ["page-gone", "feed-down"]
    assert [d["id"] for d in listed("--stage", "fetcher.feed")] == ["feed-down"]
    assert listed("--stage", "fetch") == []  # a service's name whole, not a start of it
    assert [d["id"] for d in listed("--size", "1")] == ["page-gone"]

    text = CliRunner().invoke(main, ["dead-letters"])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[:6] == [
        "2026-03-03T10:00  fetcher.article  page-gone",
        f"{'':18}HTTP 410",
        f"{'':18}https://news.example/gone",
        "2026-03-02T09:00  enricher.analysis  bad-article",
        f"{'':18}ValueError: no text",
        f"{'':18}article-123",
    ]
    assert lines[6] == "2026-03-01T08:00  fetcher.feed  feed-down"
    reason = lines[7:-1]  # wrapped, the whole of it: its end says why
    assert len(reason) >= 2 and all(line.startswith(" " * 18) and len(line) <= 18 + 92 for line in reason)
    assert " ".join(line.strip() for line in reason) == letters[0].reason.strip()
    assert lines[-1] == f"{'':18}https://news.example/rss"
    none = CliRunner().invoke(main, ["dead-letters", "--stage", "alerts"])
    assert none.exit_code == 0 and none.output == "no dead letters\n"


def test_a_missing_alias_leaves_the_other_writes_readdressed(servers: LocalServers) -> None:
    """An alias deleted by hand is no error for the lookup: its writes go as they are, the
    others still find their older index."""
    settings = settings_for(servers, es_index_prefix="rolled-missing")
    write_all(settings, [])  # the indices
    alerts, articles = settings.index("alerts"), settings.index("articles")

    async def lookup() -> list[BulkOp]:
        es = await connect(settings, wait=30)
        try:
            await es.indices.delete_alias(index=f"{alerts}-000001", name=alerts)
            await es.index(index=f"{articles}-000001", id="old", document={"id": "old"}, refresh=True)
            ops = [BulkOp(alerts, "a", {}), BulkOp(articles, "old", {}), BulkOp(articles, "new", {})]
            return await to_their_indices(es, [settings.index(kind) for kind in ROLLING], ops)
        finally:
            await es.close()

    run(roll_over(settings, "servers", kinds=["articles"]))
    assert [op.index for op in run(lookup())] == [alerts, f"{articles}-000001", articles]


def test_a_split_moves_the_articles_records_and_alerts_of_the_part_split_off(servers: LocalServers) -> None:
    """Reports of two earthquakes of one kind all joined one event (a threshold of 0 here); the
    eighth shows it is two: the Bam reports move to a new event, ``split_from`` the first. Their
    articles and link records move in the same batch; their alerts, once it is written, and the
    new event gets their claims. The Qeshm reports keep the event id Kibana links name."""
    settings = settings_for(servers, es_index_prefix="split")
    table: dict[str, Any] = {}
    stage = EventIndexing(LinkerStore(table, JOIN_ALL), settings)
    ops = [op for report in MIXED[:7] for op in stage.article_ops(article(report))]
    alert = _alert("bam-2").model_copy(update={"claim_text": "26,000 people died in Bam"})
    ops.append(BulkOp(settings.index("alerts"), alert.id, alert.model_dump(mode="json")))
    ops += stage.alert_ops(alert) or []
    write_all(settings, ops)
    original = stable_id("event", "qeshm-1")
    assert not stage.repoint_due

    last = stage.article_ops(article(MIXED[7]))
    new_id = stage.store.linker.event_of("bam-4")
    assert new_id == stable_id("event", original, "split", "bam-1")
    written = ops_by(last)
    for moved in ("bam-1", "bam-2", "bam-3"):
        assert written[(settings.index("articles"), moved, "update")] == {"event_id": new_id}
        link = written[(settings.index("event-links"), moved, "update")]
        assert link == {"event_id": new_id, "event_label": MIXED[3].title}
    split = Event.model_validate(written[(settings.index("events"), new_id, "index")])
    kept = Event.model_validate(written[(settings.index("events"), original, "index")])
    assert (split.article_count, split.split_from, kept.article_count, kept.split_from) == (
        4,
        original,
        4,
        None,
    )
    assert kept.claim_ids == ["claim-evacuated"] and split.claim_ids == []
    write_all(settings, last)
    assert stage.repoint_due

    async def repoint(indexing: EventIndexing) -> list[BulkOp]:
        es = await connect(settings, wait=30)
        try:
            ops = await indexing.repoint_ops(es)
            assert not (await bulk_write(es, ops)).rejected
            await es.indices.refresh(index=settings.index("*"))
            indexing.repointed(ops)
            return ops
        finally:
            await es.close()

    async def planned(indexing: EventIndexing) -> list[BulkOp]:
        es = await connect(settings, wait=30)
        try:
            return await indexing.repoint_ops(es)
        finally:
            await es.close()

    # A crash between the split's batch and the repoint: a restarted stage finds the alert too.
    restarted = EventIndexing(LinkerStore(dict(table), JOIN_ALL), settings)
    assert restarted.repoint_due
    assert ops_by(run(planned(restarted)))[
        (f"{settings.index('alerts')}-000001", "alert-bam-2", "update")
    ] == {"event_id": new_id}

    followed = ops_by(run(repoint(stage)))
    assert followed[(f"{settings.index('alerts')}-000001", "alert-bam-2", "update")] == {"event_id": new_id}
    event = Event.model_validate(followed[(settings.index("events"), new_id, "index")])
    assert event.claim_ids == ["claim-evacuated"] and event.claims == ["26,000 people died in Bam"]
    assert not stage.repoint_due

    async def events_of(kind: str) -> dict[str, str]:
        es = await connect(settings, wait=30)
        try:
            found = await es.search(index=settings.index(kind), query={"match_all": {}}, size=100)
            return {hit["_id"]: hit["_source"]["event_id"] for hit in found["hits"]["hits"]}
        finally:
            await es.close()

    expected = {r.id: new_id if r.id.startswith("bam") else original for r in MIXED}
    assert run(events_of("articles")) == expected
    assert run(events_of("event-links")) == expected
    assert run(events_of("alerts")) == {"alert-bam-2": new_id}
