"""The one base every service is built on: a Faust app with health, metrics and dead letters.

``ServiceApp`` wraps ``faust.App`` with wirewatch's settings (consumer-group timing per
environment, explicit topics, raw byte serialisation so *we* parse messages and can route
poison ones to the dead-letter topic) and serves ``/healthz``, ``/readyz`` and ``/metrics``
on the Faust web port. A service module builds one with :func:`create_service` and
registers its agents, timers and tasks on ``service.app``.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from wirewatch.core import metrics
from wirewatch.core.ids import stable_id
from wirewatch.core.kafka import faust_credentials
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


def _never_ack_a_stale_event() -> None:
    """Make Faust leave unacknowledged an event read before the current rebalance.

    Faust's stream skips an event fetched in an earlier consumer generation (or read while the
    flow is suspended for a rebalance) and *acknowledges* it, so the next commit can move the
    group's offset past a message nobody processed: after a worker was killed, the commit made
    while its successor recovered its tables skipped an article for good (e2e, issue #7). Left
    unacknowledged, the message is read again from the committed offset once the rebalance is
    over; one processed across a rebalance may so be processed twice, which ids make harmless.
    """
    if getattr(faust.Event.ack, "_wirewatch", False):
        return
    upstream = faust.Event.ack

    def ack(self: faust.Event) -> bool:
        app = self.app
        generation = getattr(self.message, "generation_id", None)
        if (generation is not None and generation != app.consumer_generation_id) or not (
            app.flow_control.is_active()
        ):
            metrics.STALE_EVENTS.inc()
            log.info(
                "event from before a rebalance left unacknowledged (it is read again)",
                extra={
                    "topic": self.message.topic,
                    "partition": self.message.partition,
                    "offset": self.message.offset,
                },
            )
            return False
        return upstream(self)

    ack._wirewatch = True  # type: ignore[attr-defined]
    faust.Event.ack = ack  # type: ignore[method-assign]


class ServiceApp:
    """A wirewatch service: its Faust app, its settings and the dead-letter sink."""

    def __init__(self, name: ServiceName, settings: Settings) -> None:
        self.name = name
        self.settings = settings
        _seek_to_committed_zero_too()
        _never_ack_a_stale_event()
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
            web_host=settings.web_host,
            web_port=settings.web_port,
            web_in_thread=False,
            broker_session_timeout=settings.kafka_session_timeout,
            broker_heartbeat_interval=settings.kafka_heartbeat_interval,
            broker_rebalance_timeout=settings.kafka_rebalance_timeout,
            broker_commit_interval=settings.kafka_commit_interval,
            consumer_auto_offset_reset="earliest",
            topic_partitions=settings.topic_partitions,
            topic_replication_factor=settings.kafka_replication_factor,
            producer_acks=-1,
            producer_max_request_size=4 * 1024 * 1024,
            stream_wait_empty=True,
            table_standby_replicas=0,
        )
        if not settings.kafka_producer_batching:
            # One record per produce request: table recovery reads each changelog partition up
            # to its end offset, and tansu (the local and test broker) reports that end as the
            # last batch's base offset + 1, which would cut recovery short of a batch's records.
            self.app.conf.producer_max_batch_size = 1
        self.ready = False
        self.dead_letter_topic = self.topic(settings.topic_dead_letters)
        self._prepare: list[Prepare] = []
        self._add_web_views()

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
        log.error(
            "dead letter",
            extra={
                "stage": stage,
                "reason": letter.reason[:500],
                "error_type": error_type,
                "url": url,
                "feed_url": feed_url,
                "key": key,
                "dead_letter_id": letter.id,
            },
        )
        metrics.DEAD_LETTERS.labels(stage=stage).inc()
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
                return self.json({"service": service.name, "ready": ready}, status=200 if ready else 503)

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

        worker = faust.Worker(
            self.app,
            loglevel=self.settings.log_level,
            logging_config=logging_config(self.settings.log_level, self.settings.log_format, self.name),
            redirect_stdouts=False,
        )
        worker.execute_from_commandline()


def describe_exception(exc: BaseException) -> str:
    """One line: the exception type and message, and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"
