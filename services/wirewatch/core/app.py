"""The one base every service is built on: a Faust app with health, metrics and dead letters.

``ServiceApp`` wraps ``faust.App`` with wirewatch's settings (consumer-group timing per
environment, explicit topics, raw byte serialisation so *we* parse messages and can route
poison ones to the dead-letter topic) and serves ``/healthz``, ``/readyz`` and ``/metrics``
on the Faust web port. A service module builds one with :func:`create_service` and
registers its agents, timers and tasks on ``service.app``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypeVar

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from wirewatch.core import memory, metrics
from wirewatch.core.ids import stable_id
from wirewatch.core.kafka import COMPACTED, faust_credentials, fetch_max_wait, pause_after_empty_fetches
from wirewatch.core.logs import get_logger
from wirewatch.core.models import DeadLetter, Message, MessageError
from wirewatch.core.settings import ServiceName, Settings

log = get_logger(__name__)

MAX_PAYLOAD_CHARS = 64 * 1024

Prepare = Callable[[Settings], Awaitable[None]]
M = TypeVar("M", bound=Message)


def _seek_to_committed_zero_too() -> None:
    """Make aiokafka's ``seek_to_committed`` seek to a committed offset of 0 as well (it skips
    0: aio-libs/aiokafka#1003). Faust drops what its fetcher read while tables recovered and
    counts on that seek to rewind the stream partitions: without it a partition committed at 0
    (``wirewatch replay`` back to a partition's first message) would skip those messages."""
    if getattr(AIOKafkaConsumer.seek_to_committed, "_wirewatch", False):
        return
    upstream = AIOKafkaConsumer.seek_to_committed

    async def seek_to_committed(self: AIOKafkaConsumer, *partitions: TopicPartition) -> Any:
        committed = await upstream(self, *partitions)
        for tp, offset in committed.items():
            if offset == 0:
                self.seek(tp, 0)
        return committed

    seek_to_committed._wirewatch = True  # type: ignore[attr-defined]
    AIOKafkaConsumer.seek_to_committed = seek_to_committed  # type: ignore[method-assign]


def fetched_before_rebalance(event: faust.EventT[Any]) -> bool:
    """Whether ``event`` was fetched before the consumer's current generation began: its
    partition may be another worker's by now, which reads it again from the committed offset."""
    generation = getattr(event.message, "generation_id", None)
    return generation is not None and generation != event.app.consumer_generation_id


def _never_ack_a_stale_event() -> None:
    """Make Faust leave unacknowledged an event it skipped because a rebalance came between its
    fetch and its turn.

    Faust's stream skips an event fetched in an earlier consumer generation (or read while the
    flow is suspended for a rebalance) and *acknowledges* it, so the next commit can move the
    group's offset past a message nobody processed. Left unacknowledged, it is read again from
    the committed offset once the rebalance is over. Only skipped events are concerned: they are
    the ones never handed to an agent (``message.tracked`` is set when one is); an event an agent
    handled is acknowledged as ever (a rebalance waits for those).
    """
    if getattr(faust.Event.ack, "_wirewatch", False):
        return
    upstream = faust.Event.ack

    def ack(self: faust.Event) -> bool:
        message = self.message
        stale = fetched_before_rebalance(self) or not self.app.flow_control.is_active()
        if stale and not message.tracked:
            metrics.STALE_EVENTS.inc()
            log.info(
                "event skipped across a rebalance left unacknowledged (it is read again)",
                extra={"topic": message.topic, "partition": message.partition, "offset": message.offset},
            )
            return False
        return upstream(self)

    ack._wirewatch = True  # type: ignore[attr-defined]
    faust.Event.ack = ack  # type: ignore[method-assign]


def _commit_only_what_was_handled() -> None:
    """Make Faust's consumer never commit past a message that was not acknowledged.

    Faust commits the first run of consecutive acknowledged offsets, after checking that it starts
    where the last commit ended, but with an off-by-one: the committed offset is the next one to
    read, and Faust accepted a head one past it. So when a rebalance race dropped a fetched
    message and the ones after it were handled, the commit moved past the dropped one for good
    (e2e: one article per run never enriched, always the one after the partition's committed
    offset). With the check made exact, the commit waits at the dropped message, and
    :class:`DroppedMessages` has it read again. Compaction gaps still count as handled.
    """
    from faust.transport.consumer import Consumer

    if getattr(Consumer._new_offset, "_wirewatch", False):
        return
    upstream = Consumer._new_offset

    def _new_offset(self: Consumer, tp: Any) -> int | None:
        acked, committed = self._acked[tp], self._committed_offset[tp]
        if (
            acked
            and committed is not None
            and min(acked) > committed
            and not self._gap[tp].overlaps(committed)
        ):
            return None  # the next offset to read was neither handled nor compacted away: wait
        return upstream(self, tp)

    _new_offset._wirewatch = True  # type: ignore[attr-defined]
    Consumer._new_offset = _new_offset  # type: ignore[method-assign]


def _know_where_each_partition_starts() -> None:
    """Make Faust remember a committed offset of 0, and take a partition the group never
    committed as starting at its log start (where ``auto_offset_reset="earliest"`` reads it).

    Faust's ``perform_seek`` (after every assignment, once tables are recovered) stores a
    committed 0 as None, "unknown", like a partition never committed; with no known committed
    offset, neither Faust's commit nor :func:`_commit_only_what_was_handled` can see that the
    first message was dropped, and the commit moved past it when the next one was handled. That
    is what the replay test's rare failure in CI looks like: after ``wirewatch replay`` put the
    enricher back at 0, one article was never enriched again and every partition was committed to
    its end. The same could happen on a group's first read of a partition.
    """
    from faust.transport.consumer import Consumer, ensure_TP

    if getattr(Consumer.perform_seek, "_wirewatch", False):
        return

    async def perform_seek(self: Consumer) -> None:
        # Faust's own, with 0 kept (it is falsy) and a start for the partitions never committed.
        found = {ensure_TP(tp): offset for tp, offset in (await self.seek_to_committed()).items()}
        known = {tp: offset for tp, offset in found.items() if offset is not None and offset >= 0}
        self._read_offset.update({tp: known.get(tp) for tp in found})
        never = [tp for tp in found if tp not in known and self.app.topics.acks_enabled_for(tp.topic)]
        if never:
            try:
                starts = await self.earliest_offsets(*never)
            except Exception as exc:  # not found: Faust's own behaviour for these partitions
                log.warning("log start of partitions never committed not found", extra={"error": str(exc)})
            else:
                known.update({ensure_TP(tp): offset for tp, offset in starts.items() if offset is not None})
        self._committed_offset.update(known)

    perform_seek._wirewatch = True  # type: ignore[attr-defined]
    Consumer.perform_seek = perform_seek  # type: ignore[method-assign]


#: Topics read by Faust agents where offsets can jump because compaction removed records (the
#: claims topic; table changelogs are recognised by their suffix): see ``_gaps_only_where_compacted``.
_COMPACTED_TOPICS: set[str] = set()


def _gaps_only_where_compacted(compacted: set[str]) -> None:
    """Make Faust count a jump between two offsets it reads from a partition as handled only in
    compacted topics (``compacted``, and table changelogs), where compaction explains it.

    Faust takes every jump for a compaction gap and counts the offsets in it as handled, so the
    next commit moves past them. In the other topics offsets have no holes: a jump means Faust
    discarded records it had fetched (its ``getmany`` drops the rest of a batch when the
    consumer generation changes or a partition is paused mid-batch, and the consumer's position
    is already past them). e2e: after an alerts restart, four parked deliveries were skipped so
    and committed past, never delivered. Left uncounted, the commit waits at the first skipped
    offset (``_commit_only_what_was_handled``) and :class:`DroppedMessages` has them read again.

    In a compacted topic the gap now starts at the committed offset when the jump does: Faust's
    own started one past it, taking the committed offset for the last one read (it is the next
    one to read), and the exact commit check would wait there for good.
    """
    from faust.transport.consumer import Consumer

    _COMPACTED_TOPICS.update(compacted)
    if getattr(Consumer._add_gap, "_wirewatch", False):
        return

    async def _add_gap(self: Consumer, tp: Any, offset_from: int, offset_to: int) -> None:
        if tp.topic in _COMPACTED_TOPICS or tp.topic.endswith("-changelog"):
            committed = self._committed_offset[tp]
            start = offset_from if committed is None else max(offset_from, committed)
            if start <= offset_to:
                self._gap[tp].addi(start, offset_to + 1)  # the end is excluded
                self._gap[tp].merge_overlaps()
            return
        # offset_to is the record just read (handled as usual); the ones before it were skipped
        metrics.SKIPPED_RECORDS.inc(max(0, offset_to - offset_from))
        log.warning(
            "records fetched but skipped by the consumer: not counted as handled, read again later",
            extra={"topic": tp.topic, "partition": tp.partition, "first": offset_from, "last": offset_to - 1},
        )

    _add_gap._wirewatch = True  # type: ignore[attr-defined]
    Consumer._add_gap = _add_gap  # type: ignore[method-assign]


class WebPortTakenError(OSError):
    """The service's web port is in use by another program: its web server cannot listen."""


def _say_when_the_web_port_is_taken() -> None:
    """Make the web server's start raise :class:`WebPortTakenError` when its port is in use, so
    that the worker exits with :data:`EXIT_WEB_PORT_TAKEN`, not 1 as for any crash.

    ``wirewatch up`` gives each service a port it found free, and the service listens on it
    seconds later (once its topics are checked and its models loaded): a program that took the
    port meanwhile (any outgoing connection may) made it exit like a crash, and it was started
    again after the crash's backoff on the same port, taken still. Told apart, it is moved to
    another port at once (``local/supervisor.py``)."""
    from faust.web.drivers.aiohttp import Web

    if getattr(Web.start_server, "_wirewatch", False):
        return
    upstream = Web.start_server

    async def start_server(self: Web) -> None:
        try:
            await upstream(self)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            conf = self.app.conf
            raise WebPortTakenError(
                exc.errno, f"web port {conf.web_port} on {conf.web_bind} is in use by another program"
            ) from exc

    start_server._wirewatch = True  # type: ignore[attr-defined]
    Web.start_server = start_server  # type: ignore[method-assign]


class DroppedMessages:
    """Finds partitions whose fetched messages were dropped rather than handled.

    A partition is *behind* when the consumer's position is past the group's committed offset.
    That is normal while messages are queued or being processed, and for a commit interval after;
    it is a drop when nothing is queued or in progress and neither offset moved between two looks
    (Faust loses a fetched batch in some rebalance races, and never fetches it again by itself).
    """

    def __init__(self) -> None:
        self._behind: dict[Any, tuple[int, int]] = {}

    def look(self, offsets: Mapping[Any, tuple[int, int]], busy: bool) -> list[Any]:
        """``offsets``: partition -> (committed, position). The partitions found dropped."""
        if busy:
            self._behind = {}
            return []
        behind = {
            tp: (committed, position) for tp, (committed, position) in offsets.items() if committed < position
        }
        dropped = [tp for tp, seen in behind.items() if self._behind.get(tp) == seen]
        self._behind = {tp: seen for tp, seen in behind.items() if tp not in dropped}
        return dropped


class ServiceApp:
    """A wirewatch service: its Faust app, its settings and the dead-letter sink."""

    def __init__(self, name: ServiceName, settings: Settings) -> None:
        self.name = name
        self.settings = settings
        _seek_to_committed_zero_too()
        _never_ack_a_stale_event()
        _commit_only_what_was_handled()
        _know_where_each_partition_starts()
        _gaps_only_where_compacted({settings.topics[name] for name in COMPACTED})
        pause_after_empty_fetches(settings.kafka_empty_fetch_pause)
        _say_when_the_web_port_is_taken()
        fetch_max_wait(settings.kafka_fetch_max_wait)
        # Faust keeps table stores (rocksdb://) and its own files here, not in the working directory.
        datadir = settings.data_dir / "faust" / f"wirewatch-{name}"
        datadir.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(
            f"wirewatch-{name}",
            broker=[
                f"kafka://{hp.strip()}" for hp in (settings.kafka_bootstrap or "").split(",") if hp.strip()
            ],
            broker_credentials=faust_credentials(settings),  # TLS / SASL, as every other client
            store=settings.table_store,
            datadir=str(datadir),
            autodiscover=False,
            web_enabled=True,
            # Where the web server listens; Faust's own web_host only names the worker in its URLs.
            web_bind=settings.web_host,
            web_port=settings.web_port,
            web_in_thread=False,
            broker_session_timeout=settings.kafka_session_timeout,
            broker_heartbeat_interval=settings.kafka_heartbeat_interval,
            broker_rebalance_timeout=settings.kafka_rebalance_timeout,
            broker_commit_interval=settings.kafka_commit_interval,
            broker_request_timeout=settings.kafka_request_timeout,
            consumer_auto_offset_reset="earliest",
            topic_partitions=settings.topic_partitions,
            topic_replication_factor=settings.kafka_replication_factor,
            producer_acks=-1,
            producer_max_request_size=4 * 1024 * 1024,
            stream_wait_empty=True,
            stream_buffer_maxsize=settings.stream_buffer,
            table_standby_replicas=0,
        )
        if not settings.kafka_producer_batching:
            # One record per produce request: table recovery reads each changelog partition up
            # to its end offset, and tansu (the local and test broker) reports that end as the
            # last batch's base offset + 1, which would cut recovery short of a batch's records.
            self.app.conf.producer_max_batch_size = 1
        self.ready = False
        #: What ``/readyz`` names without failing, the service working on regardless: each check
        #: by name, returning what is wrong, or None while all is well.
        self.warnings: dict[str, Callable[[], str | None]] = {}
        self.dead_letter_topic = self.topic(settings.topic_dead_letters)
        self._prepare: list[Prepare] = []
        self._dropped = DroppedMessages()
        self._add_web_views()
        self.app.timer(settings.kafka_stall_check_seconds)(self.read_dropped_again)
        if settings.memory_trim_seconds > 0 and memory.can_trim():
            self.app.timer(settings.memory_trim_seconds)(self.trim_memory)

    def topic(self, name: str, *, internal: bool = False, partitions: int | None = None) -> faust.TopicT:
        """A topic carrying raw bytes (keys and values); parsing is the service's job.

        Internal topics are created by Faust with ``partitions`` (default: ``topic_partitions``).
        """
        return self.app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            internal=internal,
            partitions=(partitions or self.settings.topic_partitions) if internal else None,
        )

    def on_prepare(self, func: Prepare) -> Prepare:
        """Register a coroutine to run once before the worker starts (index setup, …)."""
        self._prepare.append(func)
        return func

    async def prepare(self) -> None:
        for func in self._prepare:
            await func(self.settings)

    def on_recovered(self, table: Any, rebuild: Callable[[], None]) -> None:
        """Run ``rebuild`` (what the service keeps in memory of ``table``, made again from it)
        each time the table is recovered after a start or a rebalance, before the stream goes
        on: the first message does not wait for it. ``rebuild`` only reads the table (a Faust
        table refuses writes outside stream iteration). A failure is logged; the stream's own
        use of that state meets it again, with a dead letter."""

        @table.on_recover
        async def _recovered() -> None:
            try:
                rebuild()
            except Exception as exc:
                log.error("state not rebuilt", extra={"table": table.name, "reason": describe_exception(exc)})

    async def dead_letter(
        self,
        stage: str,
        error: BaseException | str,
        *,
        payload: bytes | str | None = None,
        event: faust.EventT[Any] | None = None,
        key: str | None = None,
        url: str | None = None,
        feed_url: str | None = None,
    ) -> DeadLetter:
        """Record a failure on the dead-letter topic (and in the log), then carry on."""
        reason = str(error) if isinstance(error, str) else f"{error}"
        error_type = "Error" if isinstance(error, str) else type(error).__name__
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        source_topic = partition = offset = None
        if event is not None:
            source_topic = event.message.topic
            partition = event.message.partition
            offset = event.message.offset
            if key is None and event.message.key is not None:
                raw_key = event.message.key
                key = raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else str(raw_key)
        identity = (
            f"{source_topic}:{partition}:{offset}"
            if source_topic is not None
            else f"{url or feed_url or key}:{reason}"
        )
        letter = DeadLetter(
            id=stable_id(stage, identity),
            stage=stage,
            reason=reason[:4000],
            error_type=error_type,
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            key=key,
            payload=text[:MAX_PAYLOAD_CHARS] if text is not None else None,
            url=url,
            feed_url=feed_url,
        )
        return await self.send_dead_letter(letter)

    async def send_dead_letter(
        self, letter: DeadLetter, message: str = "dead letter", **context: Any
    ) -> DeadLetter:
        """Log ``letter`` (one ERROR line: ``message``, with ``context`` beside the letter's own
        fields), count it (``wirewatch_dead_letters_total{stage}``) and send it to the dead-letter
        topic: every dead letter goes this way, whoever made it."""
        log.error(
            message,
            extra={
                "stage": letter.stage,
                "reason": letter.reason[:500],
                "error_type": letter.error_type,
                "url": letter.url,
                "feed_url": letter.feed_url,
                "key": letter.key,
                "dead_letter_id": letter.id,
                **context,
            },
        )
        metrics.DEAD_LETTERS.labels(stage=letter.stage).inc()
        await self.dead_letter_topic.send(key=letter.id.encode(), value=letter.to_bytes())
        return letter

    async def parse(self, model: type[M], event: faust.EventT[Any], stage: str) -> M | None:
        """The ``model`` message ``event`` carries; None when it does not parse (then it is counted
        and recorded on the dead-letter topic under ``stage``, and the stream goes on)."""
        try:
            message: M = model.from_bytes(event.value)
        except MessageError as exc:
            metrics.MESSAGES.labels(service=self.name, outcome="invalid").inc()
            await self.dead_letter(stage, exc, payload=event.value, event=event)
            return None
        return message

    async def measure_lag(self) -> None:
        """Set ``wirewatch_consumer_lag`` for each partition this worker consumes now."""
        metrics.CONSUMER_LAG.clear()
        if not self.ready or self.app.rebalancing:
            return
        consumer = self.app.consumer
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            position = await consumer.position(tp)
            if end is not None and position is not None:
                metrics.CONSUMER_LAG.labels(topic=tp.topic, partition=str(tp.partition)).set(
                    max(0, end - position)
                )

    async def trim_memory(self) -> memory.Trim | None:
        """Hand the heap pages freed since the last trim back to the system (see ``core.memory``)."""
        trimmed = memory.trim()
        if trimmed is not None:
            metrics.MEMORY_RETURNED.inc(trimmed.returned)
            if trimmed.returned >= 1 << 20:
                log.info(
                    "freed memory returned",
                    extra={
                        "returned_mb": round(trimmed.returned / 2**20, 1),
                        "rss_mb": round(trimmed.after / 2**20, 1),
                        "seconds": round(trimmed.seconds, 4),
                    },
                )
        return trimmed

    async def read_dropped_again(self) -> list[Any]:
        """Seek the partitions :class:`DroppedMessages` finds back to their committed offsets
        (what Faust does after a rebalance): their messages are read again, none is lost. A
        partition whose committed offset is below its log start (retention deleted the records)
        is not sought: its log start becomes the committed offset, and the loss is logged."""
        app = self.app
        consumer = app.consumer
        if not self.ready or app.rebalancing or not app.flow_control.is_active():
            self._dropped.look({}, busy=True)
            return []
        in_progress = any(not m.acked for m in list(consumer._unacked_messages))  # type: ignore[attr-defined]
        queued = any(
            not actor.stream.channel.empty() for agent in app.agents.values() for actor in list(agent._actors)
        )
        offsets: dict[Any, tuple[int, int]] = {}
        for tp in consumer.assignment():
            if tp.topic.endswith("-changelog") or "__assignor" in tp.topic:
                continue  # tables and Faust's own: read by recovery, not by agents
            position = await consumer.position(tp)
            if position is not None:
                offsets[tp] = (consumer._committed_offset.get(tp) or 0, position)  # type: ignore[attr-defined]
        dropped = self._dropped.look(offsets, busy=in_progress or queued)
        try:
            earliest = await consumer.earliest_offsets(*dropped) if dropped else {}
        except KafkaError as exc:
            # The broker does not answer (an outage looks like a stall too). Raised from a timer,
            # this would crash the whole service; the partitions are looked at again next time.
            log.warning(
                "cannot read the log starts of stalled partitions now; looking again later",
                extra={"partitions": len(dropped), "error": describe_exception(exc)},
            )
            return []
        for tp in dropped:
            committed, position = offsets[tp]
            start = earliest.get(tp)
            if start is not None and committed < start:
                # Retention deleted records before the group read them (a service stopped for
                # longer than the topic keeps its records): the consumer went on from the log
                # start, and a commit that must begin at the committed offset could never move.
                # The log start becomes the committed offset; what was read from it is committed.
                metrics.LOST_TO_RETENTION.labels(topic=tp.topic).inc(start - committed)
                log.error(
                    "records deleted by retention before they were read: going on from the log start",
                    extra={
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "committed": committed,
                        "log_start": start,
                        "lost": start - committed,
                    },
                )
                consumer._committed_offset[tp] = start  # type: ignore[attr-defined]
                continue
            metrics.DROPPED_REREAD.inc()
            log.warning(
                "messages fetched but never handled: reading them again from the committed offset",
                extra={
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "committed": committed,
                    "position": position,
                },
            )
            await consumer.seek(tp, committed)
        return dropped

    def _add_web_views(self) -> None:
        service = self

        @self.app.page("/healthz")
        class Health(View):
            async def get(self, request: Request) -> Response:
                crashed = bool(service.app.crashed)
                status = 503 if crashed else 200
                return self.json(
                    {"service": service.name, "status": "ok" if status == 200 else "crashed"}, status=status
                )

        @self.app.page("/readyz")
        class Ready(View):
            async def get(self, request: Request) -> Response:
                ready = service.ready and not service.app.rebalancing
                warnings = {name: text for name, check in service.warnings.items() if (text := check())}
                return self.json(
                    {"service": service.name, "ready": ready, "warnings": warnings},
                    status=200 if ready else 503,
                )

        @self.app.page("/metrics")
        class Metrics(View):
            async def get(self, request: Request) -> Response:
                metrics.READY.set(1 if service.ready else 0)
                await service.measure_lag()
                return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

        @self.app.on_partitions_assigned.connect  # type: ignore[arg-type]
        async def _assigned(app: faust.App, assigned: set[Any], **_: Any) -> None:
            service.ready = True
            metrics.ASSIGNED_PARTITIONS.clear()
            for topic in {tp.topic for tp in assigned}:
                count = sum(1 for tp in assigned if tp.topic == topic)
                metrics.ASSIGNED_PARTITIONS.labels(topic=topic).set(count)

        @self.app.on_rebalance_complete.connect  # type: ignore[arg-type]
        async def _rebalanced(sender: Any, **_: Any) -> None:
            service.ready = True

    def run(self) -> None:
        """Run the worker in this process until SIGINT/SIGTERM."""
        from wirewatch.core.logs import logging_config

        worker = BoundedWorker(
            self.app,
            shutdown_timeout=self.settings.shutdown_timeout,
            loglevel=self.settings.log_level,
            logging_config=logging_config(self.settings.log_level, self.settings.log_format, self.name),
            redirect_stdouts=False,
        )
        worker.execute_from_commandline()


#: Exit status of a service that gave up draining (``BoundedWorker``).
EXIT_SHUTDOWN_TIMEOUT = 3
#: Exit status of a service whose web port another program holds (:class:`WebPortTakenError`):
#: the supervisor of ``wirewatch up`` starts it again at once on another port.
EXIT_WEB_PORT_TAKEN = 4


class BoundedWorker(faust.Worker):
    """Faust's worker with a deadline on stopping.

    Stopping drains: Faust waits for each agent to finish the message in hand, and a sink that
    is down keeps it there (the indexer retries a bulk request until Elasticsearch answers). A
    service told to stop during an outage, or orphaned with the servers gone (``wirewatch up``
    killed), would then never exit. Past ``shutdown_timeout`` seconds (0: no deadline) the
    process logs why and exits with ``EXIT_SHUTDOWN_TIMEOUT``, committing nothing more: what its
    sinks had not acknowledged is delivered again to the next worker (at-least-once).

    A worker whose web port is taken exits with ``EXIT_WEB_PORT_TAKEN`` (Faust's exit status is 1
    whatever failed). The web server starts before the consumer joins its group, so such a
    worker has read nothing and leaves no group member behind."""

    def __init__(self, app: faust.App, *, shutdown_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.shutdown_timeout = shutdown_timeout
        self._deadline: threading.Timer | None = None
        self._web_port_taken = False

    async def start(self) -> None:
        try:
            await super().start()
        except WebPortTakenError:
            self._web_port_taken = True
            raise

    def execute_from_commandline(self) -> NoReturn:
        try:
            super().execute_from_commandline()
        except SystemExit:
            if self._web_port_taken:
                raise SystemExit(EXIT_WEB_PORT_TAKEN) from None
            raise

    async def stop(self) -> None:
        if self.shutdown_timeout > 0 and self._deadline is None:
            self._deadline = threading.Timer(
                self.shutdown_timeout, _give_up_stopping, (self.shutdown_timeout,)
            )
            self._deadline.daemon = True
            self._deadline.start()
        await super().stop()


def _give_up_stopping(timeout: float) -> None:
    log.error(
        "shutdown did not finish in time: exiting without draining; unacknowledged messages will be "
        "delivered again",
        extra={"shutdown_timeout": timeout},
    )
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    os._exit(EXIT_SHUTDOWN_TIMEOUT)


def describe_exception(exc: BaseException) -> str:
    """One line: the exception type and message, and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"
