"""The indexer: enriched articles, dead letters, alerts and tracked claims -> Elasticsearch, and
every article linked to its event.

Two stages:

1. **Indexing** (parallel: one worker per partition of each topic). Batches of up to
   ``index_batch_size`` messages (or ``index_batch_seconds``) are written with one bulk
   request, each document by its id (a redelivered message rewrites the same document:
   exactly one copy in Elasticsearch). Faust acknowledges a batch only after the bulk
   request returned, and :func:`~wirewatch.core.elastic.bulk_write` retries for as long as
   Elasticsearch is down: the consumer stops, nothing is dropped. Documents Elasticsearch
   refuses for good become dead letters. Alerts, once written, are forwarded to the internal
   ``event-reports`` topic; enriched articles are forwarded to it as they come (a malformed
   one becomes a dead letter here), unwritten.
2. **Event linking** (``link_events``): that topic has **one partition**, so one linker sees
   every report in one order (see :mod:`wirewatch.indexer.events`); its state is the
   ``event-linker`` table, rebuilt after a restart or rebalance. It writes each article's
   document, once, with its ``event_id`` (an article is searchable once linked), the
   "report joined event" records, the event documents and the alerts' ``event_id``, in one
   bulk request per batch (same size and wait as the indexing batches), acknowledged once
   written. Cost: a sentence encoding and a few milliseconds of scoring per article. After a
   batch with a merge (and after a start), the merged events' older documents are given the
   survivor's id too, before the batch is acknowledged.

Articles are written as partial upserts, so re-indexing an article without its event (its
event has left the window) never erases the event it was given. Once an alias has rolled over
(ILM), a document already in an older index is written there, not copied into the new write
index (``core.elastic.to_their_indices``): in both stages, before each bulk request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from elasticsearch import AsyncElasticsearch
from elasticsearch import TransportError as EsTransportError
from faust import StreamT

from wirewatch.core import metrics
from wirewatch.core.app import ServiceApp, describe_exception
from wirewatch.core.elastic import (
    ROLLING,
    BulkOp,
    backoff_delay,
    behind,
    bulk_write,
    connect,
    ensure_indices,
    to_their_indices,
    without_superseded,
)
from wirewatch.core.logs import get_logger
from wirewatch.core.models import Alert, DeadLetter, EnrichedArticle, Message, MessageError, TrackedClaim
from wirewatch.core.settings import Settings
from wirewatch.core.vectors import get_encoder
from wirewatch.events.linking import LinkerConfig
from wirewatch.events.store import LinkerStore
from wirewatch.indexer.events import ALERT_KEY, ARTICLE_KEY, EventIndexing, article_document

log = get_logger(__name__)

#: Alert fields that describe its first raising: written when the document is created, never
#: rewritten (a replayed article raises a live alert, ``retroactive`` false, with a new creation
#: time; the stored alert may have been found retroactively, earlier).
FIRST_RAISED = frozenset({"created_at", "retroactive"})


class Indexer:
    def __init__(self, service: ServiceApp) -> None:
        self.service = service
        self.settings = service.settings
        self._es: AsyncElasticsearch | None = None
        self._connecting = asyncio.Lock()

    async def es(self) -> AsyncElasticsearch:
        """The worker's one search client, made by the first stage that needs it (the others
        wait for it) and closed when the app stops, once its agents have stopped. Each stage
        that came before the client was there used to make its own, keeping the last: the
        others were never closed, and the process logged "Unclosed client session" as it ended."""
        async with self._connecting:
            if self._es is None:
                client = await connect(self.settings, wait=3600)
                self._es = await self.service.app.add_async_context(client)
        return self._es

    @property
    def rolling_aliases(self) -> list[str]:
        """The aliases that roll over under ILM (``core.elastic.ROLLING``)."""
        return [self.settings.index(kind) for kind in ROLLING]

    async def searched_ops(
        self, search: Callable[[AsyncElasticsearch], Awaitable[list[BulkOp]]]
    ) -> list[BulkOp]:
        """The writes ``search`` makes from what it reads; while Elasticsearch is down it waits
        (back-pressure), never drops them."""
        attempt = 0
        while True:
            try:
                return await search(await self.es())
            except (TimeoutError, EsTransportError, OSError) as exc:
                attempt += 1
                log.warning("elasticsearch unavailable, retrying", extra={"error": str(exc)[:300]})
                await asyncio.sleep(backoff_delay(attempt, self.settings.index_retry_max_seconds))

    async def in_their_indices(self, ops: list[BulkOp]) -> list[BulkOp]:
        """``ops``, a document already in an older index behind its rolled-over alias written
        there (``core.elastic.to_their_indices``), retried while Elasticsearch is down."""
        return await self.searched_ops(partial(to_their_indices, aliases=self.rolling_aliases, ops=ops))

    async def write(self, kind: str, model: type[Message], events: list[Any]) -> list[Message]:
        """Write the messages of ``events`` as documents of ``kind``; the ones written."""
        docs: list[Message] = []
        for event in events:
            if event.value is None:  # a tombstone on a compacted topic: nothing to write
                continue
            try:
                docs.append(model.from_bytes(event.value))
            except MessageError as exc:
                if model is DeadLetter:  # a broken dead letter is logged, not looped
                    metrics.MESSAGES.labels(service="indexer", outcome="invalid").inc()
                    continue
                await self.service.dead_letter(f"indexer.{kind}", exc, payload=event.value, event=event)
        ops = await self.in_their_indices([self._op(self.settings.index(kind), doc) for doc in docs])
        rejected = await self.bulk(ops, stage=f"indexer.{kind}", quiet=model is DeadLetter)
        metrics.INDEXED.labels(index=kind).inc(len(ops) - len(rejected))
        return [doc for doc, op in zip(docs, ops, strict=True) if (op.index, op.id) not in rejected]

    @staticmethod
    def _op(index: str, doc: Message) -> BulkOp:
        """Alerts are merged into what is there (a replay must not erase the event the linking
        stage wrote, nor change how the alert was first raised: ``FIRST_RAISED``); the rest is
        replaced. (Articles are written by the linking stage: ``indexer.events.article_document``.)"""
        if isinstance(doc, Alert):
            fields = doc.model_dump(mode="json", exclude={"event_id", *FIRST_RAISED})
            first = doc.model_dump(mode="json", include=set(FIRST_RAISED))
            return BulkOp(index, doc.id, fields, "upsert", on_create=first)
        return BulkOp(index, doc.id, doc.model_dump(mode="json"))  # type: ignore[attr-defined]

    async def bulk(self, ops: list[BulkOp], *, stage: str, quiet: bool = False) -> set[tuple[str, str]]:
        """Apply ``ops``; dead-letter the refused ones (only count them when ``quiet``); their
        (index, id): one bulk may write an article and its event-link record under one id."""
        if not ops:
            return set()
        es = await self.es()
        started = time.perf_counter()
        result = await bulk_write(es, ops, max_backoff=self.settings.index_retry_max_seconds)
        metrics.BULK_SECONDS.labels(stage=stage).observe(time.perf_counter() - started)
        metrics.MESSAGES.labels(service="indexer", outcome="ok").inc(result.written)
        for op, reason in result.rejected:
            if quiet:
                metrics.MESSAGES.labels(service="indexer", outcome="rejected").inc()
                continue
            await self.service.dead_letter(
                stage,
                f"rejected by Elasticsearch ({op.action} {op.index}/{op.id}): {reason}",
                key=op.id,
                payload=str(op.doc)[:65536],
            )
        return {(op.index, op.id) for op, _ in result.rejected}


def create(settings: Settings) -> ServiceApp:
    service = ServiceApp("indexer", settings)
    app = service.app
    indexer = Indexer(service)
    enriched_topic = service.topic(settings.topic_enriched)
    reports_topic = service.topic(f"{app.conf.id}-event-reports", internal=True, partitions=1)
    linker_table = app.Table("event-linker", default=None, partitions=1, key_type=str, value_type=None)
    linking = EventIndexing(LinkerStore(linker_table, LinkerConfig.from_settings(settings)), settings)

    @service.on_prepare
    async def setup_indices(settings: Settings) -> None:
        es = await connect(settings, wait=120)
        try:
            await ensure_indices(es, settings)
        finally:
            await es.close()

    @service.on_prepare
    async def _load_model(_: Settings) -> None:
        # The sentence encoder, before the first report: loading it inside the linking stage
        # holds the event loop for seconds, longer than a short consumer-group session.
        get_encoder().encode(["warm up"])

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(app: Any, revoked: set[Any], **_: Any) -> None:
        linking.reset()

    def show_windows() -> None:
        linker = linking.store.linker
        metrics.WINDOW_ITEMS.labels(window="events").set(len(linker.events))
        metrics.WINDOW_ITEMS.labels(window="event_articles").set(len(linker.articles))

    # rebuilt once the table is recovered: /metrics shows the window from the start
    service.on_recovered(linker_table, show_windows)

    async def consume(stream: StreamT[bytes], kind: str, model: type[Message]) -> None:
        batches = stream.take_events(  # type: ignore[attr-defined]  # missing from faust's stubs
            settings.index_batch_size, within=settings.index_batch_seconds
        )
        async for batch in batches:
            written = await indexer.write(kind, model, list(batch))
            for doc in written:
                if isinstance(doc, Alert):
                    await reports_topic.send(key=(ALERT_KEY + doc.id).encode(), value=doc.to_bytes())

    @app.agent(enriched_topic)
    async def forward_articles(stream: StreamT[bytes]) -> None:
        # Written by the linking stage, once, with their event.
        async for event in stream.events():
            article = await service.parse(EnrichedArticle, event, "indexer.articles")
            if article is not None:
                await reports_topic.send(key=(ARTICLE_KEY + article.id).encode(), value=event.value)

    @app.agent(service.dead_letter_topic)
    async def index_dead_letters(stream: StreamT[bytes]) -> None:
        await consume(stream, "dead-letters", DeadLetter)

    @app.agent(service.topic(settings.topic_alerts))
    async def index_alerts(stream: StreamT[bytes]) -> None:
        await consume(stream, "alerts", Alert)

    @app.agent(service.topic(settings.topic_claims))
    async def index_claims(stream: StreamT[bytes]) -> None:
        await consume(stream, "claims", TrackedClaim)

    async def link_ops(event: Any) -> list[BulkOp]:
        """The writes that record one report or claim sighting (a broken one: a dead letter; an
        article whose linking failed is still written, without an event)."""
        key = (event.key or b"").decode("utf-8", "replace")
        started = time.perf_counter()
        article: EnrichedArticle | None = None
        try:
            if key.startswith(ALERT_KEY):
                alert = Alert.from_bytes(event.value)
                ops = linking.alert_ops(alert)
                if ops is None:
                    ops = await indexer.searched_ops(lambda es: linking.old_alert_ops(es, alert))
            else:
                article = EnrichedArticle.from_bytes(event.value)
                ops = linking.article_ops(article)
        except MessageError as exc:
            await service.dead_letter("indexer.events", exc, payload=event.value, event=event)
            return []
        except Exception as exc:
            metrics.MESSAGES.labels(service="indexer", outcome="error").inc()
            await service.dead_letter(
                "indexer.events", describe_exception(exc), payload=event.value, event=event
            )
            return [article_document(settings.index("articles"), article)] if article is not None else []
        metrics.EVENT_LINK_SECONDS.observe(time.perf_counter() - started)
        return ops

    @app.agent(reports_topic)
    async def link_events(stream: StreamT[bytes]) -> None:
        # Reports are linked one by one, in order, and their writes sent in one bulk request per
        # batch (a later rewrite of an event's document replaces the earlier ones); the batch is
        # acknowledged once written. The table is written from each report's own event context.
        batches = stream.take_events(  # type: ignore[attr-defined]  # missing from faust's stubs
            settings.index_batch_size, within=settings.index_batch_seconds
        )
        articles = settings.index("articles")
        async for batch in batches:
            ops: list[BulkOp] = []
            for event in batch:
                stream._set_current_event(event)  # type: ignore[attr-defined]
                ops += await link_ops(event)
            # A document written before its alias rolled over is rewritten where it is.
            ops = await indexer.in_their_indices(without_superseded(ops))
            show_windows()
            rejected = await indexer.bulk(ops, stage="indexer.events")
            written = [op for op in ops if behind(articles, op.index) and (op.index, op.id) not in rejected]
            metrics.INDEXED.labels(index="articles").inc(sum(op.action == "upsert" for op in written))
            if linking.repoint_due:  # older documents of the events merged (see repoint_ops)
                # Quiet: a document deleted since (its index expired) has nothing to repoint.
                repoints = await indexer.searched_ops(linking.repoint_ops)
                rejected = await indexer.bulk(repoints, stage="indexer.merges", quiet=True)
                linking.repointed([op for op in repoints if (op.index, op.id) not in rejected])

    return service
