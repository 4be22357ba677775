"""``wirewatch replay``: the date, the plan, and a replay of the enricher on the real stack.

The end-to-end part runs one module-scoped stack (tansu + osmem-server), a loopback news site,
a webhook receiver, and the services as child processes: the enricher under its own supervisor
so that it can be stopped alone. History (an article, an exact copy of it, one stating a tracked
claim) goes through once; the enricher is replayed from before it; then every document and
every delivery must still be there exactly once, the analysis redone.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from click.testing import CliRunner

import stories
from claim_texts import CLAIM_EN, REPORT_FR
from conftest import make_settings, run, settings_for, wait_for
from newsroom import NewsSite
from pipeline import Pipeline
from test_cli_inputs import ACCEPTED
from wirewatch.alerts.watchlist import new_claim, publish
from wirewatch.cli import main
from wirewatch.core.feeds import add_feed
from wirewatch.core.ids import article_id
from wirewatch.core.kafka import client_options, consumer_lag, create_topics, read_topic
from wirewatch.core.settings import SERVICES, Settings
from wirewatch.local.servers import LocalServers
from wirewatch.local.supervisor import Supervisor
from wirewatch.replay import (
    STAGES,
    PartitionPlan,
    ReplayError,
    ReplayPlan,
    _commit_outside,
    describe_plan,
    kafka_for_replay,
    parse_since,
    plan_partition,
    replay,
    search_offset,
)
from wirewatch.runner import setup

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


# --- the date -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T08:00:00", datetime(2026, 3, 1, 8, tzinfo=UTC)),  # no zone: UTC
        ("2026-03-01 08:00", datetime(2026, 3, 1, 8, tzinfo=UTC)),
        ("2026-03-01T08:00:00Z", datetime(2026, 3, 1, 8, tzinfo=UTC)),
        ("2026-03-01T08:00:00+01:00", datetime(2026, 3, 1, 7, tzinfo=UTC)),
        ("now", NOW),
        ("now-7d", NOW - timedelta(days=7)),
        ("now-2h", NOW - timedelta(hours=2)),
        ("now-2H", NOW - timedelta(hours=2)),
        ("now - 90m", NOW - timedelta(minutes=90)),
        ("now-30s", NOW - timedelta(seconds=30)),
        ("NOW-1w", NOW - timedelta(weeks=1)),
        ("now-1.5d", NOW - timedelta(hours=36)),
        # The date math of `wirewatch search --since` (cli.DateBound), rounded down.
        ("now/d", datetime(2026, 3, 10, tzinfo=UTC)),
        ("now-1d/d", datetime(2026, 3, 9, tzinfo=UTC)),
        ("now/w", datetime(2026, 3, 9, tzinfo=UTC)),  # a Monday
        ("now-1M", datetime(2026, 2, 10, 12, tzinfo=UTC)),
        ("now-1M/M", datetime(2026, 2, 1, tzinfo=UTC)),
        ("now-7y", datetime(2019, 3, 10, 12, tzinfo=UTC)),
        ("now-1h-30m", NOW - timedelta(minutes=90)),
        ("2026-03-01||-1w", datetime(2026, 2, 22, tzinfo=UTC)),
        ("2025-03-31||-1M", datetime(2025, 2, 28, tzinfo=UTC)),  # the day kept within the month
        ("2026-03", datetime(2026, 3, 1, tzinfo=UTC)),
        ("1772323200000", datetime(2026, 3, 1, tzinfo=UTC)),  # epoch milliseconds
    ],
)
def test_dates_absolute_and_relative(text: str, expected: datetime) -> None:
    when = parse_since(text, now=NOW)
    assert when == expected
    assert when.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ACCEPTED)
def test_every_date_search_takes_is_a_replay_date(text: str) -> None:
    # The grammar of `wirewatch search --since` (cli.DateBound), resolved to a time.
    try:
        parse_since(text, now=NOW)
    except ValueError as exc:
        assert "in the future" in str(exc)


@pytest.mark.parametrize(
    "text", ["", "yesterday", "now-1.5M", "now/x", "now-1d/", "2026-03-01-1d", "2026-13-01", "7d"]
)
def test_dates_that_are_not_dates(text: str) -> None:
    with pytest.raises(ValueError, match="not a date"):
        parse_since(text, now=NOW)


@pytest.mark.parametrize("text", ["2026-03-11", "now+1d"])
def test_a_date_in_the_future_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="in the future"):
        parse_since(text, now=NOW)


# --- the plan -------------------------------------------------------------------------------------


def test_partition_goes_back_to_the_first_message_since_the_date() -> None:
    assert plan_partition(0, committed=120, end=130, first_at=80) == PartitionPlan(0, 120, 80, 130, 40)


def test_partition_with_nothing_since_the_date_stays_where_it_is() -> None:
    plan = plan_partition(1, committed=97, end=97, first_at=None)
    assert (plan.new, plan.redo, plan.moves) == (97, 0, False)


def test_partition_is_never_moved_forward() -> None:
    # The group lags (committed 50 of 130) and the date falls after its position: unread
    # messages stay unread-yet, not skipped.
    plan = plan_partition(2, committed=50, end=130, first_at=80)
    assert (plan.new, plan.redo, plan.moves) == (50, 0, False)
    plan = plan_partition(2, committed=50, end=130, first_at=None)
    assert (plan.new, plan.moves) == (50, False)


def test_partition_the_group_never_read_is_left_alone() -> None:
    plan = plan_partition(3, committed=None, end=10, first_at=0)
    assert (plan.new, plan.redo, plan.moves) == (None, 0, False)


def test_dry_run_plan_as_text_and_json() -> None:
    plan = ReplayPlan(
        "enricher",
        "wirewatch-enricher",
        "wirewatch.articles.raw",
        NOW - timedelta(days=2),
        [
            plan_partition(0, 120, 130, 80),
            plan_partition(1, 97, 97, None),
            plan_partition(2, None, 0, None),
        ],
    )
    assert plan.redo == 40
    assert plan.offsets() == {TopicPartition("wirewatch.articles.raw", 0): 80}
    text = "\n".join(describe_plan(plan))
    assert "partition 0: 120 -> 80  (40 to redo)" in text
    assert "partition 1: 97 (nothing read since the date: unchanged)" in text
    assert "partition 2: never read" in text
    assert "dry run: 40 message(s) would be processed again; nothing committed" in text
    data = json.loads(json.dumps(plan.as_dict()))
    assert data["redo"] == 40 and data["dry_run"] is True and data["committed"] is False
    assert data["partitions"][0] == {
        "partition": 0,
        "committed": 120,
        "new": 80,
        "end": 130,
        "redo": 40,
        "reads_from": None,
    }
    assert data["from"] == "2026-03-08T12:00:00+00:00"
    plan.dry_run = False
    assert describe_plan(plan)[-1] == (
        "committed: 40 message(s) will be processed again when the enricher service starts"
    )


def test_a_replay_already_pending_is_told_as_such() -> None:
    # The same replay run twice: the second finds the group already at the first message since
    # the date, with those messages still to read.
    pending = replace(plan_partition(0, 80, 130, 80), reads_from="2026-03-08T12:00:01+00:00")
    plan = ReplayPlan("alerts", "wirewatch-alerts", "t", NOW - timedelta(days=2), [pending], dry_run=False)
    text = "\n".join(describe_plan(plan))
    assert "nothing read since the date" not in text
    assert (
        "partition 0: 80 (unchanged: a replay is already pending, 50 message(s) from "
        "2026-03-08T12:00:01+00:00 still to read)"
    ) in text
    assert text.endswith(
        "nothing to commit: a replay is already pending, 50 message(s) to process when the alerts "
        "service starts"
    )


# --- offsets by time, where the broker cannot look them up --------------------------------------


def _prober(records: list[tuple[int, int]]) -> Any:
    """A partition holding ``records`` ((offset, timestamp), offsets ascending, gaps allowed)."""
    calls: list[int] = []

    async def probe(offset: int) -> tuple[int, int] | None:
        calls.append(offset)
        return next(((o, t) for o, t in records if o >= offset), None)

    probe.calls = calls  # type: ignore[attr-defined]
    return probe


def test_binary_search_finds_the_first_record_at_or_after_the_time() -> None:
    records = [(o, 1000 + 10 * o) for o in range(1000)]
    probe = _prober(records)
    assert run(search_offset(probe, 0, 1000, 1000 + 10 * 437)) == 437
    assert len(probe.calls) <= 11  # log2(1000), not a scan
    assert run(search_offset(_prober(records), 0, 1000, 1000 + 10 * 437 - 5)) == 437
    assert run(search_offset(_prober(records), 0, 1000, 0)) == 0
    assert run(search_offset(_prober(records), 0, 1000, 10**9)) is None  # nothing since


def test_binary_search_over_gaps_and_equal_times() -> None:
    # A compacted partition (offsets missing) with several records of one millisecond.
    records = [(0, 100), (3, 100), (4, 200), (9, 200), (10, 200), (15, 300)]
    for at, first in [(50, 0), (100, 0), (150, 4), (200, 4), (250, 15), (300, 15), (301, None)]:
        found = run(search_offset(_prober(records), 0, 16, at))
        # Reading from the offset found starts exactly with the first record at or after the time.
        starts_with = next((o for o, _ in records if found is not None and o >= found), None)
        assert starts_with == first, (at, found)


# --- how far back -------------------------------------------------------------------------------


def test_replay_further_back_than_the_memories_is_refused_when_the_topic_holds_it(
    servers: LocalServers,
) -> None:
    """The refusal looks at the oldest message the replay would have the stage read again: a
    date before everything the topic holds is fine when what it holds is recent."""
    topics = {"topic_raw": "window.raw", "topic_enriched": "window.enriched", "topic_partitions": 1}
    settings = settings_for(servers, copies_ttl_days=30, **topics)
    now = datetime.now(UTC)
    since = now - timedelta(days=30)  # beyond the 7-day event window

    async def write(topic: str, group: str, written: list[datetime]) -> None:
        await create_topics(settings, {topic: {}})
        producer = AIOKafkaProducer(**client_options(settings), acks="all")
        await producer.start()
        try:
            for when in written:
                await producer.send_and_wait(topic, b"x", key=b"k", timestamp_ms=int(when.timestamp() * 1000))
        finally:
            await producer.stop()
        # The stage read them all (its committed offsets at the end).
        await _commit_outside(settings, group, {TopicPartition(topic, 0): len(written)})

    # Only today's messages on the raw topic: replaying the enricher from a month ago is fine.
    recent = [now - timedelta(minutes=5), now - timedelta(minutes=1)]
    run(write(settings.topic_raw, "wirewatch-enricher", recent))
    plan = run(replay(settings, "enricher", since, dry_run=True))
    assert plan.redo == 2 and plan.warnings == []
    assert plan.partitions[0].reads_from[:16] == recent[0].isoformat()[:16]
    # Messages ten days old on the enriched topic: replaying the indexer from then is refused,
    # and says why in the indexer's terms.
    run(write(settings.topic_enriched, "wirewatch-indexer", [now - timedelta(days=10), recent[1]]))
    with pytest.raises(ReplayError) as refused:
        run(replay(settings, "indexer", since))
    message = str(refused.value)
    assert "more than 7 days ago and window.enriched still holds messages from then" in message
    assert "the event linker has forgotten" in message and "--past-window" in message
    assert "copy of its own copy" not in message
    plan = run(replay(settings, "indexer", since, dry_run=True))  # a dry run warns
    assert plan.redo == 2 and any("the event linker has forgotten" in w for w in plan.warnings)
    plan = run(replay(settings, "indexer", since, past_window=True))  # done when asked
    assert plan.committed and plan.redo == 2 and plan.warnings


# --- refusals that need no broker ---------------------------------------------------------------


def test_without_kafka_nor_local_data_there_is_nothing_to_replay(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path)
    with pytest.raises(ReplayError, match="holds no local servers' data"), kafka_for_replay(settings):
        pass


def test_a_refusal_under_wirewatch_up_says_how_to_replay_there(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path)
    endpoints = {"pid": os.getpid(), "kafka_bootstrap": "127.0.0.1:9", "es_url": "http://127.0.0.1:9"}
    (tmp_path / "endpoints.json").write_text(json.dumps(endpoints))
    refused = r"the enricher is running\. Here it runs under `wirewatch up`"
    with pytest.raises(ReplayError, match=refused), kafka_for_replay(settings) as resolved:
        assert resolved.kafka_bootstrap == "127.0.0.1:9"
        raise ReplayError("the enricher is running.")


def test_cli_takes_the_stages_and_refuses_a_bad_date() -> None:
    command = main.commands["replay"]
    stage = next(p for p in command.params if p.name == "stage")
    assert tuple(stage.type.choices) == STAGES  # type: ignore[attr-defined]
    result = CliRunner().invoke(main, ["replay", "--from", "last tuesday"])
    assert result.exit_code == 2
    assert "not a date" in result.output


def test_cli_takes_the_date_math_of_since(tmp_path: Path) -> None:
    # The date is taken; the replay then finds nothing to replay on (no broker, no local data).
    env = {"WIREWATCH_DATA_DIR": str(tmp_path), "WIREWATCH_KAFKA_BOOTSTRAP": "", "WIREWATCH_ES_URL": ""}
    for date in ("now/d", "now-1d/d", "2026-03-01||/M"):
        result = CliRunner().invoke(main, ["replay", "--from", date], env=env)
        assert "not a date" not in result.output, date
        assert "holds no local servers' data" in result.output, result.output


# --- end to end -------------------------------------------------------------------------------------


class Webhook:
    """A webhook receiver on loopback: records every POSTed JSON body."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def alert_ids(self) -> list[str]:
        return [alert_id for body in self.received for alert_id in body["alert_ids"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _StageProtocol(RoundRobinPartitionAssignor):
    name = "faust"  # the stages' (Faust's) group protocol: a group refuses a member without it


async def spend_first_generation(settings: Settings, group: str, topic: str) -> None:
    """tansu numbers a group's first generation 0, and aiokafka sends no LeaveGroup for
    generation 0: the first member of a group stays listed after a clean stop, until the next
    join evicts it (Kafka starts at 1). A throwaway member takes generation 0 here, so the stage's
    own members leave the group when stopped, as on Kafka."""
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(settings),
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=3000,
        heartbeat_interval_ms=1000,
        rebalance_timeout_ms=3000,
        partition_assignment_strategy=(_StageProtocol,),
    )
    await consumer.start()
    try:
        while not consumer.assignment():  # getmany drives the join
            await consumer.getmany(timeout_ms=100)
    finally:
        await consumer.stop()


class Stack:
    """The pipeline, with the enricher under a supervisor of its own."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.others: Supervisor | None = None
        self.enricher: Supervisor | None = None

    def start_enricher(self) -> None:
        p = self.pipeline
        self.enricher = Supervisor(["enricher"], p.env, p.tmp / "logs")
        self.enricher.start()
        assert self.enricher.wait_healthy(90), "the enricher is not healthy"

    def stop_enricher(self) -> None:
        assert self.enricher is not None
        self.enricher.stop()
        self.enricher = None

    def start(self) -> None:
        p = self.pipeline
        self.others = Supervisor([s for s in SERVICES if s != "enricher"], p.env, p.tmp / "logs")
        self.others.start()
        self.start_enricher()
        assert self.others.wait_healthy(90), f"services not healthy: {self.others.healthy()}"

    def stop(self) -> None:
        for supervisor in (self.enricher, self.others):
            if supervisor is not None:
                supervisor.stop()


def _at(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["enriched_at"])


def _story(slug: str, title: str, text: str, language: str) -> stories.Story:
    paragraphs = tuple(p for p in text.strip().split("\n") if p)
    return stories.Story(
        slug=slug, title=title, language=language, published=stories.BRIDGE.published, paragraphs=paragraphs
    )


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    receiver = Webhook()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def stack(
    servers: LocalServers, site: NewsSite, webhook: Webhook, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    p = Pipeline(servers, site, tmp_path_factory.mktemp("replay"))
    p.env.update(
        {
            "WIREWATCH_ALERT_WEBHOOK_URLS": webhook.url,
            "WIREWATCH_ALERT_WEBHOOK_SECRET": "replay-test-secret",
            "WIREWATCH_ALERT_DIGEST_SECONDS": "0",  # every alert delivered at once, one POST each
        }
    )
    for outlet, name in (("wire", "Wire Service"), ("matin", "Le Matin Test")):
        add_feed(p.feeds_file, site.add_outlet(outlet, name))
    run(setup(p.settings))
    run(publish(p.settings, [new_claim(CLAIM_EN, id="tarvos-claim")]))
    run(spend_first_generation(p.settings, "wirewatch-enricher", p.settings.topic_raw))
    s = Stack(p)
    s.start()
    yield s
    s.stop()


#: What the first pass left, for the tests after it.
BEFORE: dict[str, Any] = {}


@pytest.mark.e2e
def test_history_goes_through_once(stack: Stack, webhook: Webhook) -> None:
    p = stack.pipeline
    BEFORE["started"] = datetime.now(UTC) - timedelta(minutes=5)
    original = article_id(p.publish("wire", stories.BRIDGE))
    p.publish("matin", stories.INCENDIE)
    report = article_id(p.publish("matin", _story("tarvos", "Tarvos : les rebelles partis", REPORT_FR, "fr")))
    p.wait_for_articles()
    copy = article_id(p.publish("matin", stories.copy_of(stories.BRIDGE, "pont-ferme")))
    docs = p.wait_for_articles()
    assert docs[copy]["duplicate_of"] == original
    [alert] = wait_for(lambda: p.search("alerts"), what="the alert on the Tarvos report")
    assert alert["article_id"] == report
    wait_for(lambda: webhook.alert_ids() == [alert["id"]], what="the alert delivered to the webhook")
    docs = wait_for(
        lambda: (lambda d: d if all(a.get("event_id") for a in d.values()) else None)(p.articles()),
        what="every article linked to an event",
    )
    BEFORE.update(docs=docs, original=original, copy=copy, alert=alert)


@pytest.mark.e2e
def test_replay_refuses_while_the_enricher_runs(stack: Stack) -> None:
    p = stack.pipeline
    raw = len(run(read_topic(p.settings, p.settings.topic_raw)))
    wait_for(lambda: _raw_lag(p.settings) == (0, raw), what="the enricher's offsets committed")
    with pytest.raises(ReplayError, match=r"the enricher stage is running.*Stop every instance"):
        run(replay(p.settings, "enricher", BEFORE["started"]))
    assert _raw_lag(p.settings) == (0, raw)  # nothing moved
    # A dry run still shows the plan: every raw message, back to the start of each partition.
    plan = run(replay(p.settings, "enricher", BEFORE["started"], dry_run=True))
    assert plan.members and not plan.committed
    assert plan.redo == raw >= len(p.expected)
    assert all(part.new == 0 for part in plan.partitions if part.committed)
    assert any("is running" in w for w in plan.warnings)
    assert _raw_lag(p.settings) == (0, raw)


def _raw_lag(settings: Settings) -> tuple[int, int]:
    """The enricher's lag on the raw topic, and the sum of its committed offsets there."""
    [lag] = [g for g in run(consumer_lag(settings, ["wirewatch-enricher"])) if g.topic == settings.topic_raw]
    return lag.lag, lag.committed


@pytest.mark.e2e
def test_replay_redoes_the_analysis_and_duplicates_nothing(stack: Stack, webhook: Webhook) -> None:
    p = stack.pipeline
    before: dict[str, dict[str, Any]] = BEFORE["docs"]
    alert = BEFORE["alert"]
    stack.stop_enricher()

    env = {
        "WIREWATCH_KAFKA_BOOTSTRAP": p.servers.kafka_bootstrap,
        "WIREWATCH_ES_URL": p.servers.es_url,
        "WIREWATCH_DATA_DIR": str(p.tmp / "data"),
    }
    since = BEFORE["started"].isoformat()
    dry = CliRunner().invoke(main, ["replay", "--from", since, "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.output)
    assert planned["members"] == [] and planned["committed"] is False
    result = CliRunner().invoke(main, ["replay", "--from", since, "--json"], env=env)
    assert result.exit_code == 0, result.output
    done = json.loads(result.output)
    assert done["committed"] is True and done["redo"] == planned["redo"] > 0
    assert done["partitions"] == planned["partitions"]
    # The same replay again, before the enricher started: nothing moves, and it says why.
    again = CliRunner().invoke(main, ["replay", "--from", since], env=env)
    assert again.exit_code == 0, again.output
    assert "nothing read since the date" not in again.output
    assert "a replay is already pending" in again.output
    assert f"{done['redo']} message(s) to process when the enricher service starts" in again.output

    stack.start_enricher()

    # The analysis was done again (and indexed): every article has a later enriched_at.
    def redone() -> dict[str, dict[str, Any]] | None:
        docs = p.articles()
        return (
            docs if set(docs) == set(before) and all(_at(docs[i]) > _at(before[i]) for i in before) else None
        )

    try:
        docs = wait_for(redone, timeout=90, what="every article enriched again")
    except AssertionError as exc:
        now = p.articles()
        times = {i: (before[i]["enriched_at"], now.get(i, {}).get("enriched_at")) for i in before}
        lags = run(consumer_lag(p.settings, [f"wirewatch-{s}" for s in SERVICES]))
        # Which stage stopped short: each article's messages on the enricher's topics (2 each
        # once it is enriched again), where the replay put each partition, and the end of the
        # enricher's log (appended to by each run).
        passes = {
            topic: Counter(k.decode() for k, _ in run(read_topic(p.settings, topic)) if k)
            for topic in (p.settings.topic_raw, "wirewatch-enricher-copies", p.settings.topic_enriched)
        }
        log = p.log_path("enricher").read_text(errors="replace")[-3000:]
        raise AssertionError(
            f"{exc}\nenriched_at before/now: {times}\nlag: {lags}\nmessages per article: {passes}"
            f"\nreplay plan: {done['partitions']}\nenricher log: {log}"
        ) from None
    # Exactly once each (p.articles() fails on an id stored twice), copies and events unchanged.
    assert set(docs) == set(before) == set(p.expected)
    assert docs[BEFORE["copy"]]["duplicate_of"] == BEFORE["original"]
    assert docs[BEFORE["original"]]["duplicate_of"] is None
    assert sum(1 for d in docs.values() if d["is_duplicate"]) == 1
    assert {i: d["event_id"] for i, d in docs.items()} == {i: d["event_id"] for i, d in before.items()}
    assert len(p.search("event-links")) == len(before)

    # The claim was matched again: its alert went through the alerts topic a second time ...
    def raised() -> int:
        return sum(
            1
            for _, v in run(read_topic(p.settings, p.settings.topic_alerts))
            if v and alert["id"].encode() in v
        )

    # (At least once: Kafka delivery is at-least-once, so the topic may hold it more often.)
    wait_for(lambda: raised() >= 2, what="the alert raised again by the replayed article")
    wait_for(
        lambda: all(
            g.lag == 0
            for g in run(consumer_lag(p.settings, ["wirewatch-alerts", "wirewatch-indexer"]))
            if g.topic in (p.settings.topic_alerts, p.settings.topic_enriched)
        ),
        what="the alerts service and the indexer caught up",
    )
    time.sleep(1.0)
    # ... and is one document, delivered once.
    assert [a["id"] for a in p.search("alerts")] == [alert["id"]]
    assert webhook.alert_ids() == [alert["id"]]
    # Nothing failed on the way.
    assert run(read_topic(p.settings, p.settings.topic_dead_letters)) == []
    assert p.search("dead-letters") == []
    wait_for(lambda: _raw_lag(p.settings)[0] == 0, what="the enricher caught up with the raw topic")
