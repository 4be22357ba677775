"""The enricher stream.

Two stages, so that duplicate state is partitioned by what it is about:

1. ``analyse`` reads raw articles (key: article id), validates them, detects the language
   and computes the content hash, and forwards them re-keyed by content hash to an
   internal topic.
2. ``link_copies`` reads that topic; every copy of one text lands on the same partition,
   so the ``first-copies`` table (content hash -> earliest article id, changelog-backed)
   decides ``duplicate_of`` consistently across workers and restarts. Replays are
   idempotent: the first copy's own id maps to itself, so it is never its own duplicate.

The enriched article goes to the enriched topic keyed by article id.
"""

from __future__ import annotations

from typing import Any

from faust import StreamT

from wirewatch.core import metrics
from wirewatch.core.app import ServiceApp, describe_exception
from wirewatch.core.models import EnrichedArticle, MessageError, RawArticle
from wirewatch.core.settings import Settings
from wirewatch.core.text import content_hash
from wirewatch.enricher.language import detect_language


def analyse(raw: RawArticle) -> EnrichedArticle:
    """Everything that depends on the article alone."""
    lang = detect_language(f"{raw.title}\n{raw.text}", raw.language_hint)
    return EnrichedArticle(
        **raw.model_dump(),
        language=lang.code,
        language_confidence=lang.confidence,
        content_hash=content_hash(raw.text),
    )


def link_copy(article: EnrichedArticle, first_copies: Any) -> EnrichedArticle:
    """Mark ``article`` as a duplicate of the first article seen with the same text."""
    first = first_copies.get(article.content_hash)
    if first is None:
        first_copies[article.content_hash] = {"id": article.id}
        return article
    if first["id"] == article.id:
        return article
    return article.model_copy(update={"duplicate_of": first["id"], "is_duplicate": True})


def create(settings: Settings) -> ServiceApp:
    service = ServiceApp("enricher", settings)
    app = service.app
    raw_topic = service.topic(settings.topic_raw)
    enriched_topic = service.topic(settings.topic_enriched)
    by_hash = service.topic(f"{app.conf.id}-by-content-hash", internal=True)
    first_copies = app.Table(
        "first-copies", default=None, partitions=settings.topic_partitions, key_type=str, value_type=None
    )

    @app.agent(raw_topic)
    async def analyse_articles(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                raw = RawArticle.from_bytes(event.value)
                article = analyse(raw)
            except MessageError as exc:
                metrics.MESSAGES.labels(service="enricher", outcome="invalid").inc()
                await service.dead_letter("enricher.parse", exc, payload=event.value, event=event)
                continue
            except Exception as exc:
                metrics.MESSAGES.labels(service="enricher", outcome="error").inc()
                await service.dead_letter(
                    "enricher.analyse", describe_exception(exc), payload=event.value, event=event
                )
                continue
            await by_hash.send(key=article.content_hash.encode(), value=article.to_bytes())

    @app.agent(by_hash)
    async def link_copies(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                article = EnrichedArticle.from_bytes(event.value)
            except MessageError as exc:
                await service.dead_letter("enricher.link", exc, payload=event.value, event=event)
                continue
            article = link_copy(article, first_copies)
            if article.is_duplicate:
                metrics.DUPLICATES.inc()
            metrics.MESSAGES.labels(service="enricher", outcome="ok").inc()
            await enriched_topic.send(key=article.id.encode(), value=article.to_bytes())

    return service
