"""The enricher stream.

Two stages:

1. ``analyse`` (parallel: one worker per partition of the raw topic) does everything that
   depends on the article alone: validation, language, normalised-text hash. It forwards the
   article, keyed by article id, to the internal ``copies`` topic.
2. ``link_copies`` reads that topic, which has **one partition**: it is the single ordered
   place where "which copy came first" is decided, for every article against every earlier
   one (an article's fingerprints touch every shard of any hash partitioning, so a partitioned
   index would need a scatter/gather and a merge to give the same answer). It keeps a
   :class:`~wirewatch.enricher.copies.CopyIndex` in memory, backed by the changelog of the
   ``copies`` table (one small record per article, deleted when it expires after
   ``copies_ttl_days``). After a restart or rebalance the index is rebuilt from the table.
   This stage costs about a millisecond per article, so it is not what limits throughput;
   the expensive analysis scales with the raw topic's partitions and the number of workers.

Replays are idempotent: an article already in the index is compared only with the articles
that came before it, so it gets the same answer again. The enriched article goes to the
enriched topic keyed by article id.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from faust import StreamT

from wirewatch.core import metrics
from wirewatch.core.app import ServiceApp, describe_exception
from wirewatch.core.ids import stable_id
from wirewatch.core.logs import get_logger
from wirewatch.core.models import MAX_MESSAGE_BYTES, EnrichedArticle, RawArticle
from wirewatch.core.recent import RecentResults
from wirewatch.core.settings import Settings
from wirewatch.core.text import content_hash
from wirewatch.enricher.analysis import TextAnalysis, analyse_text, preload
from wirewatch.enricher.copies import CopyIndex
from wirewatch.enricher.fingerprints import Fingerprints, fingerprint
from wirewatch.enricher.language import Language, detect_language

log = get_logger(__name__)


class RecentAnalyses(RecentResults[str, tuple[Language, TextAnalysis]]):
    """The analyses of the last ``size`` articles analysed, by their exact title, text and declared
    language: a wire dispatch that several outlets publish word for word is analysed once.

    What is remembered is what ``analyse`` would find again: the language and
    :class:`TextAnalysis` depend on these three alone."""

    def __init__(self, size: int = 512) -> None:
        super().__init__("analyses", size)

    @staticmethod
    def key(raw: RawArticle) -> str:
        return stable_id(raw.language_hint or "", raw.title, raw.text)


def analyse(raw: RawArticle, recent: RecentAnalyses | None = None) -> EnrichedArticle:
    """Everything that depends on the article alone: language, hash, entities, keyphrases,
    attributions and check-worthy claims (taken from ``recent`` when it has them)."""
    key = recent.key(raw) if recent is not None else ""
    known = recent.get(key) if recent is not None else None
    if known is None:
        lang = detect_language(f"{raw.title}\n{raw.text}", raw.language_hint)
        found = analyse_text(raw.title, raw.text, lang.code)
        if recent is not None:
            recent.put(key, (lang, found))
    else:
        lang, found = known
    return EnrichedArticle(
        **raw.model_dump(),
        language=lang.code,
        language_confidence=lang.confidence,
        content_hash=content_hash(raw.text),
        entities=found.entities,
        people=found.people,
        organisations=found.organisations,
        places=found.places,
        keyphrases=found.keyphrases,
        attributions=found.attributions,
        attributed_to=found.attributed_to,
        claims=found.claims,
        claim_count=len(found.claims),
    )


class CopyLinker:
    """Duplicate and reuse decisions with their state in a table (a Faust table, or a dict).

    The stream and ``wirewatch eval dedup`` both use this class, so they decide alike. The
    fingerprints of the last ``RECENT_PRINTS`` texts (up to ``RECENT_PRINTS_MAX_CHARS`` long) are
    remembered by their exact text: a wire copy is not fingerprinted again.
    """

    RECENT_PRINTS = 256
    RECENT_PRINTS_MAX_CHARS = 100_000

    def __init__(
        self, table: MutableMapping[str, Any], ttl_days: float, max_articles: int | None = None
    ) -> None:
        self.table = table
        self.ttl = ttl_days * 86400
        self.max_articles = max_articles
        self._index: CopyIndex | None = None
        self._prints: RecentResults[str, Fingerprints] = RecentResults("fingerprints", self.RECENT_PRINTS)

    @property
    def index(self) -> CopyIndex:
        """The window, rebuilt from the table on first use after a start or a rebalance.

        The rebuild only reads the table: the stream rebuilds it as soon as the table is
        recovered, outside stream iteration, where a Faust table refuses writes. Records of
        articles that left the window meanwhile (a shorter TTL since) stay in the index's
        expired list, and go from the table at the next link."""
        if self._index is None:
            self._index = CopyIndex(ttl=self.ttl, max_articles=self.max_articles)
            records = sorted(self.table.items(), key=lambda item: int(item[1]["seq"]))
            for article_id, record in records:
                self._index.restore(article_id, record)
            if records:
                log.info("copies.rebuilt", extra={"articles": len(self._index)})
        return self._index

    def reset(self) -> None:
        """Forget the in-memory index (partitions moved); it is rebuilt on next use."""
        self._index = None

    def link(self, article: EnrichedArticle, at: float | None = None) -> EnrichedArticle:
        """``article`` with ``duplicate_of`` / ``reuses`` set, and the state updated."""
        index = self.index
        when = article.fetched_at.timestamp() if at is None else at
        prints = self.fingerprint(article.text)
        decision = index.link(article.id, prints, article.content_hash, when)
        self.table[article.id] = index.record(article.id, prints, article.content_hash, when, decision)
        self._forget_expired()
        return article.model_copy(
            update={
                "duplicate_of": decision.duplicate_of,
                "duplicate_similarity": decision.similarity,
                "is_duplicate": decision.is_duplicate,
                "reuses": decision.reuses,
                "reused_from": [r.id for r in decision.reuses],
            }
        )

    def fingerprint(self, text: str) -> Fingerprints:
        """``fingerprint(text)``, from the recent ones when ``text`` was seen."""
        if len(text) > self.RECENT_PRINTS_MAX_CHARS:
            return fingerprint(text)
        key = stable_id(text)
        prints = self._prints.get(key)
        if prints is None:
            prints = fingerprint(text)
            self._prints.put(key, prints)
        return prints

    def _forget_expired(self) -> None:
        assert self._index is not None
        for article_id in self._index.pop_expired():
            self.table.pop(article_id, None)


def too_large(value: bytes, what: str) -> str | None:
    """Why ``value`` cannot be sent on (larger than any message a service reads), or None."""
    if len(value) <= MAX_MESSAGE_BYTES:
        return None
    return f"{what} of {len(value)} bytes is larger than the {MAX_MESSAGE_BYTES}-byte message limit"


def create(settings: Settings) -> ServiceApp:
    service = ServiceApp("enricher", settings)
    app = service.app
    raw_topic = service.topic(settings.topic_raw)
    enriched_topic = service.topic(settings.topic_enriched)
    copies_topic = service.topic(f"{app.conf.id}-copies", internal=True, partitions=1)
    copies_table = app.Table("copies", default=None, partitions=1, key_type=str, value_type=None)
    linker = CopyLinker(copies_table, settings.copies_ttl_days, settings.copies_max_articles)
    recent = RecentAnalyses()

    @service.on_prepare
    async def _load_models(_: Settings) -> None:
        preload()  # the NER models, before the first article rather than during it

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(app: Any, revoked: set[Any], **_: Any) -> None:
        linker.reset()

    def show_window() -> None:
        metrics.WINDOW_ITEMS.labels(window="copies").set(len(linker.index))

    # rebuilt once the table is recovered: /metrics shows the window from the start
    service.on_recovered(copies_table, show_window)

    async def failed(stage: str, reason: str, event: Any) -> None:
        metrics.MESSAGES.labels(service="enricher", outcome="error").inc()
        await service.dead_letter(stage, reason, payload=event.value, event=event)

    async def send_on(topic: Any, article: EnrichedArticle, stage: str, event: Any) -> bool:
        """Send ``article`` on ``topic``, or dead-letter ``event`` when it has grown too large."""
        value = article.to_bytes()
        problem = too_large(value, "enriched article")
        if problem is not None:
            await failed(stage, problem, event)
            return False
        await topic.send(key=article.id.encode(), value=value)
        return True

    @app.agent(raw_topic)
    async def analyse_articles(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            raw = await service.parse(RawArticle, event, "enricher.parse")
            if raw is None:
                continue
            try:
                # In a thread: a long text takes seconds, and the consumer's heartbeats must go on
                # meanwhile (a missed session would redeliver the article, again and again).
                article = await asyncio.to_thread(analyse, raw, recent)
            except Exception as exc:
                await failed("enricher.analyse", describe_exception(exc), event)
                continue
            await send_on(copies_topic, article, "enricher.analyse", event)

    @app.agent(copies_topic)
    async def link_copies(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            article = await service.parse(EnrichedArticle, event, "enricher.link")
            if article is None:
                continue
            try:
                article = linker.link(article)
            except Exception as exc:
                await failed("enricher.link", describe_exception(exc), event)
                continue
            if article.is_duplicate:
                metrics.DUPLICATES.inc()
            show_window()
            if await send_on(enriched_topic, article, "enricher.link", event):
                metrics.MESSAGES.labels(service="enricher", outcome="ok").inc()

    return service
