"""``wirewatch replay``: reprocess history after an upgrade (a new model, new thresholds)
without duplicating output.

A stage is a Faust app whose consumer group (``wirewatch-<stage>``) keeps one committed offset
per partition of each topic it reads. Replaying a stage from a date moves the group's offsets on
its **input topic** back to the first message written at or after that date, so the stage reads
those messages again when it starts:

========== ==================== ====================================================
stage      input topic          what is redone
========== ==================== ====================================================
enricher   articles.raw         the whole analysis (language, entities, claims, copies);
                                the indexer and the alerts service then see the new
                                enriched articles, so event linking and claim matching
                                are redone too
indexer    articles.enriched    the article documents (new mappings, a rebuilt index)
alerts     articles.enriched    claim matching only (new thresholds, a new encoder)
========== ==================== ====================================================

The group's other topics (dead letters, alerts, claims, its internal topics) are not moved: a
replay of the indexer must not re-index alerts, a replay of the alerts service must not
deliver alerts again. A partition is never moved forward (a lagging group keeps its unread
messages), and a partition the group has never read is left alone (it starts at the
beginning anyway).

Nothing is duplicated because every stage downstream of a replay is idempotent: messages are
keyed by article id and documents written by id; the copies table and the event linker give an
article they already know their original decision; alert ids hash (claim, article) and the
alerts service's throttle remembers the ids it delivered (``alert_remember_ids`` per claim).
Those memories are bounded in time (the copies TTL, the event window), so by default a replay
does not reach further back than they do: what counts is the oldest message it would have the
stage read again (the first one at or after the date, per partition), so a date before
everything the topic still holds is no refusal when what it holds is recent.

Offsets of a live group cannot be moved (the broker refuses, and the running members would
commit theirs over them): the stage must be stopped, every instance of it, so that its consumer
group has no member. A stopped instance leaves the group at once; a killed one stays listed for
its session timeout (on noida-db, until the server restarts). On tansu (the test suite's
broker) a group's first generation is numbered 0 and aiokafka sends no LeaveGroup for
generation 0, so the first member of a group stays listed after a clean stop, until another
member joins. Joining the group to push such a member out was tried and dropped: tansu ends
that rebalance without waiting for a live member, so it would take a running stage's partitions.
"""

from __future__ import annotations

import os
import re
from calendar import monthrange
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from wirewatch.core.dates import calendar_date, not_a_date
from wirewatch.core.kafka import _partitions, client_options, wait_for_kafka
from wirewatch.core.logs import get_logger
from wirewatch.core.settings import Settings

log = get_logger(__name__)

Stage = Literal["enricher", "indexer", "alerts"]
STAGES: tuple[Stage, ...] = ("enricher", "indexer", "alerts")

#: Seconds to wait for one record when the broker cannot look offsets up by time.
PROBE_TIMEOUT = 5.0


class ReplayError(RuntimeError):
    """The replay cannot be done as asked (a live group, a date out of range …); nothing moved."""


def input_topic(settings: Settings, stage: Stage) -> str:
    """The topic whose offsets a replay of ``stage`` moves."""
    return settings.topic_raw if stage == "enricher" else settings.topic_enriched


def horizon_days(settings: Settings, stage: Stage) -> float | None:
    """How far back ``stage`` and the stages after it remember their decisions (days), or None."""
    from wirewatch.events.linking import LinkerConfig

    event_window = LinkerConfig.from_settings(settings).window_days
    if stage == "enricher":
        return min(settings.copies_ttl_days, event_window)
    if stage == "indexer":
        return event_window
    return None


# --- the date ---------------------------------------------------------------------------------

#: Date math as ``wirewatch search --since`` takes it (``cli.DateBound``): steps ``-7d``, ``+1h``
#: (a fraction too for the units of fixed length: ``-1.5d``) and roundings ``/d``, in any number.
_UNITS = "yMwdhHms"
_STEP = re.compile(
    rf"\s*(?:(?P<sign>[+-])\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>[{_UNITS}])|/\s*(?P<round>[{_UNITS}]))"
)
_MATH = re.compile(rf"(?:{_STEP.pattern})*\s*")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "H": 3600, "d": 86400, "w": 7 * 86400}


def _add_months(when: datetime, months: int) -> datetime:
    """``when`` ``months`` calendar months later (or earlier), the day clamped to the month's last."""
    year, month = divmod(when.year * 12 + when.month - 1 + months, 12)
    return when.replace(year=year, month=month + 1, day=min(when.day, monthrange(year, month + 1)[1]))


def _round_down(when: datetime, unit: str) -> datetime:
    """``when`` rounded down to its ``unit`` (UTC; weeks start on Monday), as Elasticsearch
    rounds the lower bound of a range."""
    when = when.astimezone(UTC)
    if unit == "y":
        return when.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit in "wd":
        day = when.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday()) if unit == "w" else day
    if unit in "hH":
        return when.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return when.replace(second=0, microsecond=0)
    return when.replace(microsecond=0)


def _anchor(text: str) -> datetime | None:
    """A date (:func:`calendar_date`) or epoch milliseconds, as an aware datetime; None: not one."""
    if re.fullmatch(r"\d{5,}", text):
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    return calendar_date(text)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A date (``2026-03-01``, ``2026-03-01T08:00:00+01:00``; no zone: UTC, epoch milliseconds) or
    date math (``now-7d``, ``now/d``, ``now-1M/M``, ``2026-03-01||-1w``: the grammar of ``wirewatch
    search --since``, rounding down) as an aware UTC datetime, not in the future."""
    now = now or datetime.now(UTC)
    value = text.strip()
    when: datetime | None
    if value[:3].lower() == "now":
        when, math = now, value[3:]
    else:
        date, _, math = value.partition("||")  # no "||": no math
        when = _anchor(date.strip())
    if when is not None and not _MATH.fullmatch(math):
        when = None
    elif when is not None:
        for step in _STEP.finditer(math):
            if step["round"]:
                when = _round_down(when, step["round"])
                continue
            amount = float(step["amount"]) * (-1 if step["sign"] == "-" else 1)
            if step["unit"] in "yM":
                if not amount.is_integer():
                    when = None
                    break
                when = _add_months(when, int(amount) * (12 if step["unit"] == "y" else 1))
            else:
                when += timedelta(seconds=amount * _UNIT_SECONDS[step["unit"]])
    if when is None:
        raise ValueError(not_a_date(text))
    if when > now:
        raise ValueError(f"{text!r} is in the future")
    return when.astimezone(UTC)


# --- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionPlan:
    partition: int
    committed: int | None  # the group's committed offset (None: the group never read it)
    new: int | None  # the offset the replay commits (None: left as it is)
    end: int  # the partition's end offset
    redo: int  # messages the stage reads again
    #: When the first message the stage will read there was written (ISO; None: nothing to read,
    #: or a partition the group never read).
    reads_from: str | None = None

    @property
    def moves(self) -> bool:
        return self.new is not None and self.new != self.committed


def plan_partition(partition: int, committed: int | None, end: int, first_at: int | None) -> PartitionPlan:
    """Where a replay puts ``partition``: at ``first_at`` (the first offset written at or after
    the date; None: no message since, so the end), never forward of ``committed``, and not at
    all when the group never read the partition."""
    if committed is None:
        return PartitionPlan(partition, None, None, end, 0)
    start = end if first_at is None else first_at
    new = min(start, committed)
    return PartitionPlan(partition, committed, new, end, committed - new)


@dataclass
class ReplayPlan:
    stage: Stage
    group: str
    topic: str
    since: datetime
    partitions: list[PartitionPlan]
    #: Members the broker lists in the group (non-empty: the stage is running).
    members: list[str] = field(default_factory=list)
    dry_run: bool = True
    committed: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def redo(self) -> int:
        return sum(p.redo for p in self.partitions)

    def offsets(self) -> dict[TopicPartition, int]:
        """What to commit: the partitions that move."""
        return {
            TopicPartition(self.topic, p.partition): p.new
            for p in self.partitions
            if p.new is not None and p.moves
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "group": self.group,
            "topic": self.topic,
            "from": self.since.isoformat(),
            "dry_run": self.dry_run,
            "committed": self.committed,
            "members": self.members,
            "redo": self.redo,
            "partitions": [asdict(p) for p in self.partitions],
            "warnings": self.warnings,
        }


# --- offsets by time ----------------------------------------------------------------------------

Probe = Callable[[int], Awaitable[tuple[int, int] | None]]


async def search_offset(probe: Probe, begin: int, end: int, at_ms: int) -> int | None:
    """The first offset in ``[begin, end)`` whose record's timestamp is at least ``at_ms`` (None:
    none), by binary search. ``probe(offset)`` gives the first record at or after ``offset`` as
    ``(offset, timestamp)``, or None. Assumes timestamps do not go back within a partition (what
    brokers index by time assume too)."""
    lo, hi = begin, end
    while lo < hi:
        mid = (lo + hi) // 2
        found = await probe(mid)
        if found is None:
            hi = mid
        elif found[1] >= at_ms:
            hi = mid  # reading from mid starts with that record (nothing lies between)
        else:
            lo = found[0] + 1
    return lo if lo < end else None


async def _first_offsets(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    at_ms: int,
    begins: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
) -> dict[TopicPartition, int | None]:
    """The first offset written at or after ``at_ms`` in each partition (None: nothing since).

    Asks the broker (ListOffsets by timestamp); a broker that does not really support it (tansu
    answers offset 0 with timestamp -1 for any time) gets a binary search over the records."""
    answers: dict[TopicPartition, Any] | None
    try:
        answers = await consumer.offsets_for_times({tp: at_ms for tp in tps})
    except KafkaError as exc:
        log.info("replay.offsets_for_times_failed", extra={"error": str(exc)})
        answers = None
    out: dict[TopicPartition, int | None] = {}
    for tp in tps:
        answer = answers.get(tp) if answers is not None else None
        if answers is not None and answer is None:
            out[tp] = None  # the broker says: nothing written since
        elif answer is not None and answer.offset >= 0 and answer.timestamp >= at_ms:
            out[tp] = answer.offset
        else:
            out[tp] = await search_offset(_prober(consumer, tp), begins[tp], ends[tp], at_ms)
    return out


def _prober(consumer: AIOKafkaConsumer, tp: TopicPartition) -> Probe:
    async def probe(offset: int) -> tuple[int, int] | None:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        batch = await consumer.getmany(tp, timeout_ms=int(PROBE_TIMEOUT * 1000), max_records=1)
        records = batch.get(tp) or []
        return (records[0].offset, records[0].timestamp) if records else None

    return probe


# --- the group ----------------------------------------------------------------------------------


async def group_members(settings: Settings, group: str) -> list[str]:
    """Member ids the broker lists in ``group`` (empty: no instance of the stage is running)."""
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=10000)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    members: list[str] = []
    for response in responses:
        for described in response.to_object()["groups"]:
            if described["error_code"]:
                raise ReplayError(f"cannot describe consumer group {group}: error {described['error_code']}")
            members += [m["member_id"] for m in described["members"]]
    return members


async def _commit_outside(settings: Settings, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit for a group with no member, as a client outside it (what Kafka's own tools do; the
    broker refuses it while the group has members)."""
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})
    finally:
        await consumer.stop()


def _past_the_window(settings: Settings, plan: ReplayPlan) -> str | None:
    """Why the replay reaches further back than the stage's memories (None: it does not).

    What counts is the oldest message the replay makes the stage read again, not the date: a
    date before what the topic still holds replays from its oldest message."""
    horizon = horizon_days(settings, plan.stage)
    if horizon is None:
        return None
    cutoff = datetime.now(UTC) - timedelta(days=horizon)
    if plan.since >= cutoff:
        return None
    oldest = min((p.reads_from for p in plan.partitions if p.moves and p.reads_from), default=None)
    if oldest is None or datetime.fromisoformat(oldest) >= cutoff:
        return None  # the topic holds nothing that old (or nothing moves)
    if plan.stage == "enricher":
        memory = "the copies table and the event linker have"
        afresh = "an original could become a copy of its own copy, an article could join a second event"
    else:
        memory = "the event linker has"
        afresh = "an article linked again could join a second event"
    return (
        f"{plan.since.isoformat()} is more than {horizon:g} days ago and {plan.topic} still holds "
        f"messages from then (the oldest to process again: {oldest}): {memory} forgotten articles "
        f"older than {horizon:g} days, so those would be decided afresh ({afresh})"
    )


# --- the command --------------------------------------------------------------------------------


async def replay(
    settings: Settings,
    stage: Stage,
    since: datetime,
    *,
    dry_run: bool = False,
    past_window: bool = False,
) -> ReplayPlan:
    """Plan (and unless ``dry_run``, do) the replay of ``stage`` from ``since``; see the module doc.

    Raises :class:`ReplayError` when refused (nothing moved)."""
    if stage not in STAGES:
        raise ReplayError(f"unknown stage {stage!r} (one of {', '.join(STAGES)})")
    group, topic = f"wirewatch-{stage}", input_topic(settings, stage)
    warnings: list[str] = []
    await wait_for_kafka(settings, timeout=15)
    members = await group_members(settings, group)
    consumer = AIOKafkaConsumer(
        **client_options(settings), group_id=group, enable_auto_commit=False, request_timeout_ms=15000
    )
    await consumer.start()  # not subscribed: reads the group's offsets without joining it
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
        if not tps:
            raise ReplayError(f"topic {topic} does not exist (run `wirewatch setup`)")
        committed = {tp: await consumer.committed(tp) for tp in tps}
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        firsts = await _first_offsets(consumer, tps, int(since.timestamp() * 1000), begins, ends)
        partitions = []
        for tp in tps:
            part = plan_partition(tp.partition, committed[tp], ends[tp], firsts[tp])
            if part.new is not None and part.new < part.end:
                found = await _prober(consumer, tp)(max(part.new, begins[tp]))
                if found is not None:
                    written = datetime.fromtimestamp(found[1] / 1000, UTC).isoformat()
                    part = replace(part, reads_from=written)
            partitions.append(part)
    finally:
        await consumer.stop()
    plan = ReplayPlan(
        stage, group, topic, since, partitions, members=members, dry_run=dry_run, warnings=warnings
    )
    too_old = _past_the_window(settings, plan)
    if too_old:
        if not past_window and not dry_run:
            raise ReplayError(f"{too_old}; use a later --from, or --past-window to do it anyway")
        plan.warnings.append(too_old)
    if members:
        plan.warnings.append(
            f"consumer group {group} has {len(members)} member(s): the {stage} stage is running; stop it "
            "before the replay"
        )
    if dry_run:
        return plan
    if members:
        raise ReplayError(
            f"the {stage} stage is running: consumer group {group} has {len(members)} member(s), and the "
            f"offsets of a live group cannot be moved. Stop every instance of the {stage} stage, then replay "
            "(a killed instance stays listed for the session timeout, "
            f"{settings.kafka_session_timeout:g} s; on noida-db until it restarts)."
        )
    offsets = plan.offsets()
    if offsets:
        await _commit_outside(settings, group, offsets)
    plan.committed = True
    log.info(
        "replay.committed",
        extra={
            "stage": stage,
            "group": group,
            "from": since.isoformat(),
            "redo": plan.redo,
        },
    )
    return plan


@contextmanager
def kafka_for_replay(settings: Settings) -> Iterator[Settings]:
    """``settings`` pointing at the Kafka to replay on: the configured one, a running ``wirewatch
    up``'s (whose services are live: the replay will be refused), or else the local servers of
    the data directory, started for the time of the replay (what ``wirewatch up`` keeps on disk)."""
    from wirewatch.local.servers import start_servers
    from wirewatch.local.supervisor import write_endpoints
    from wirewatch.local.up import endpoints_file, resolve_endpoints, running_up

    resolved = resolve_endpoints(settings)
    if resolved.kafka_bootstrap:
        try:
            yield resolved
        except ReplayError as exc:
            if settings.kafka_bootstrap or running_up(settings) is None:
                raise
            raise ReplayError(
                f"{exc} Here it runs under `wirewatch up`: stop that (Ctrl-C), run the replay (it "
                "starts the local servers by itself), then `wirewatch up` again."
            ) from exc
        return
    data_dir = settings.data_dir.resolve()
    if not (data_dir / "noida").is_dir():
        raise ReplayError(
            f"WIREWATCH_KAFKA_BOOTSTRAP is not set and {data_dir} holds no local servers' data "
            "(nothing to replay)"
        )
    # Claim the data directory as `wirewatch up` does, so that it does not start meanwhile.
    write_endpoints(endpoints_file(settings), {"pid": os.getpid(), "starting": True})
    servers = None
    try:
        servers = start_servers("noida", data_dir=data_dir, log_dir=data_dir / "logs")
        yield settings.model_copy(update=servers.settings())
    finally:
        if servers is not None:
            servers.stop()
        mine = running_up(settings)
        if mine is not None and mine.get("pid") == os.getpid():
            endpoints_file(settings).unlink(missing_ok=True)


def describe_plan(plan: ReplayPlan) -> list[str]:
    """The plan as lines of text, for the terminal."""
    lines = [f"replay of the {plan.stage} (group {plan.group}) from {plan.since.isoformat()} on {plan.topic}"]
    service = f"the {plan.stage} service"
    for p in plan.partitions:
        if p.committed is None:
            lines.append(f"  partition {p.partition}: never read ({service} starts it at the beginning)")
        elif p.moves:
            lines.append(f"  partition {p.partition}: {p.committed} -> {p.new}  ({p.redo} to redo)")
        elif p.committed < p.end:  # an earlier replay (or a lag) the stage has not read yet
            since = f" from {p.reads_from}" if p.reads_from else ""
            lines.append(
                f"  partition {p.partition}: {p.committed} (unchanged: a replay is already pending, "
                f"{p.end - p.committed} message(s){since} still to read)"
            )
        else:
            lines.append(f"  partition {p.partition}: {p.committed} (nothing read since the date: unchanged)")
    lines += [f"warning: {w}" for w in plan.warnings]
    pending = sum(p.end - p.committed for p in plan.partitions if p.committed is not None and not p.moves)
    also = f" (and {pending} already pending)" if pending else ""
    if plan.dry_run:
        lines.append(f"dry run: {plan.redo} message(s) would be processed again{also}; nothing committed")
    elif not plan.redo and pending:
        lines.append(
            f"nothing to commit: a replay is already pending, {pending} message(s) to process when "
            f"{service} starts"
        )
    else:
        lines.append(f"committed: {plan.redo} message(s) will be processed again{also} when {service} starts")
    return lines
