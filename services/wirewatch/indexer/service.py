"""The indexer stream: enriched articles, dead letters, alerts and tracked claims -> Elasticsearch.

Batches of up to ``index_batch_size`` messages (or ``index_batch_seconds``) are written
with one bulk request, each document by its id (so a redelivered message rewrites the
same document: exactly one copy in Elasticsearch). Faust acknowledges a batch only after
``bulk_index`` returned, and ``bulk_index`` retries for as long as Elasticsearch is down:
the consumer stops, nothing is dropped. Documents Elasticsearch refuses for good become
dead letters.
"""

from __future__ import annotations

import time
from typing import Any

from elasticsearch import AsyncElasticsearch
from faust import StreamT

from wirewatch.core import metrics
from wirewatch.core.app import ServiceApp
from wirewatch.core.elastic import bulk_index, connect, ensure_indices
from wirewatch.core.models import Alert, DeadLetter, EnrichedArticle, Message, MessageError, TrackedClaim
from wirewatch.core.settings import Settings


class Indexer:
    def __init__(self, service: ServiceApp) -> None:
        self.service = service
        self.settings = service.settings
        self._es: AsyncElasticsearch | None = None

    async def es(self) -> AsyncElasticsearch:
        if self._es is None:
            self._es = await connect(self.settings, wait=3600)
        return self._es

    async def write(self, kind: str, model: type[Message], events: list[Any]) -> None:
        docs: list[tuple[str, dict[str, Any]]] = []
        for event in events:
            if event.value is None:  # a tombstone on a compacted topic: nothing to write
                continue
            try:
                doc = model.from_bytes(event.value)
            except MessageError as exc:
                if model is DeadLetter:  # a broken dead letter is logged, not looped
                    metrics.MESSAGES.labels(service="indexer", outcome="invalid").inc()
                    continue
                await self.service.dead_letter(f"indexer.{kind}", exc, payload=event.value, event=event)
                continue
            docs.append((doc.id, doc.model_dump(mode="json")))  # type: ignore[attr-defined]
        if not docs:
            return
        es = await self.es()
        started = time.perf_counter()
        result = await bulk_index(
            es, self.settings.index(kind), docs, max_backoff=self.settings.index_retry_max_seconds
        )
        metrics.BULK_SECONDS.observe(time.perf_counter() - started)
        metrics.INDEXED.labels(index=kind).inc(result.written)
        metrics.MESSAGES.labels(service="indexer", outcome="ok").inc(result.written)
        by_id = {doc_id: doc for doc_id, doc in docs}
        for doc_id, reason in result.rejected:
            if model is DeadLetter:
                metrics.MESSAGES.labels(service="indexer", outcome="rejected").inc()
                continue
            await self.service.dead_letter(
                f"indexer.{kind}",
                f"rejected by Elasticsearch: {reason}",
                key=doc_id,
                payload=str(by_id.get(doc_id))[:65536],
            )


def create(settings: Settings) -> ServiceApp:
    service = ServiceApp("indexer", settings)
    app = service.app
    indexer = Indexer(service)
    enriched_topic = service.topic(settings.topic_enriched)
    dead_letter_topic = service.dead_letter_topic

    @service.on_prepare
    async def setup_indices(settings: Settings) -> None:
        es = await connect(settings, wait=120)
        try:
            await ensure_indices(es, settings)
        finally:
            await es.close()

    async def consume(stream: StreamT[bytes], kind: str, model: type[Message]) -> None:
        batches = stream.take_events(  # type: ignore[attr-defined]  # missing from faust's stubs
            settings.index_batch_size, within=settings.index_batch_seconds
        )
        async for batch in batches:
            await indexer.write(kind, model, list(batch))

    @app.agent(enriched_topic)
    async def index_articles(stream: StreamT[bytes]) -> None:
        await consume(stream, "articles", EnrichedArticle)

    @app.agent(dead_letter_topic)
    async def index_dead_letters(stream: StreamT[bytes]) -> None:
        await consume(stream, "dead-letters", DeadLetter)

    @app.agent(service.topic(settings.topic_alerts))
    async def index_alerts(stream: StreamT[bytes]) -> None:
        await consume(stream, "alerts", Alert)

    @app.agent(service.topic(settings.topic_claims))
    async def index_claims(stream: StreamT[bytes]) -> None:
        await consume(stream, "claims", TrackedClaim)

    return service
