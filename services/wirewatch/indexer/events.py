"""The indexer's event-linking stage: one ordered sequence of reports and claim sightings in,
Elasticsearch writes out.

The stage reads an internal topic with **one partition** (so one linker sees every report in
one order; decisions depend on the order). Its input:

- ``article/<id>``: an enriched article, forwarded by the indexer as it came. It is linked
  (:class:`~wirewatch.events.store.LinkerStore`), then its document is written here, once,
  with ``event_id``/``event_reason``/``event_score``; its "report joined event" record is
  written, and the event document is rewritten. (Writing the article first and its event
  afterwards meant two writes of every article: an update re-indexes the whole document, body
  and its three analyses included, and cost the search server more than the first write.)
  A merge rewrites the merged events' documents (``merged_into`` the survivor) and moves their
  recent articles and records to the survivor; after the batch is written, the older ones
  (and their alerts) follow (:meth:`EventIndexing.repoint_ops`). A split writes both events'
  documents and moves the articles and records of the part split off; after the batch, their
  alerts follow, and their claims are added to the new event (the old one keeps its claims).
- ``alert/<id>``: an alert, forwarded once indexed. Its claim is added to the article's event
  and the alert document gets the ``event_id``. An alert can overtake its article (then the
  sighting waits for it, and the alert document gets the event id with the article's); a
  retroactive alert is about an older article, whose event is read
  back from Elasticsearch when it has left the linker's window.

Every write is by id, so a replay rewrites the same documents.
"""

from __future__ import annotations

from collections.abc import Sequence

from elasticsearch import AsyncElasticsearch

from wirewatch.core import metrics
from wirewatch.core.elastic import BulkOp, behind, search_all
from wirewatch.core.logs import get_logger
from wirewatch.core.models import Alert, EnrichedArticle
from wirewatch.core.settings import Settings
from wirewatch.events.documents import event_document, link_record
from wirewatch.events.profile import NUMBER_CHARS, Report
from wirewatch.events.state import EventState
from wirewatch.events.store import LinkerStore
from wirewatch.search import stored_event

log = get_logger(__name__)

ARTICLE_KEY = "article/"
ALERT_KEY = "alert/"

#: Articles whose events the stage keeps in memory after linking them (``old_alert_ops``):
#: more than an index batch and a refresh interval hold, at ~5 KB per event at most.
RECENT_LINKS = 1_000
#: Fields of the article document that only the linking stage sets.
EVENT_FIELDS = frozenset({"event_id", "event_reason", "event_score"})
#: The indices whose documents name their event (``event_id``), and what else of it they name.
EVENT_NAMING = {"articles": (), "alerts": (), "event-links": ("event_label",)}
#: Merged ids per search of :meth:`EventIndexing.repoint_ops`.
REPOINT_IDS = 1_000


def article_document(index: str, article: EnrichedArticle, **event: object) -> BulkOp:
    """The write of ``article``'s document, with the ``EVENT_FIELDS`` given. A partial upsert:
    written without them (a replayed article whose event has left the window, or one whose
    linking failed), it keeps the event a write before gave it."""
    doc = article.model_dump(mode="json", exclude=set(EVENT_FIELDS))
    return BulkOp(index, article.id, {**doc, **event}, "upsert")


def for_linking(article: EnrichedArticle) -> EnrichedArticle:
    """``article`` cut to what event linking reads (the head of the text, no passages)."""
    return article.model_copy(
        update={"text": article.text[:NUMBER_CHARS], "reuses": [], "attributions": [], "claims": []}
    )


class EventIndexing:
    """Turns linking decisions into Elasticsearch writes (see the module doc)."""

    def __init__(self, store: LinkerStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        # The events of the articles linked last (in memory, oldest first): see old_alert_ops.
        self._recent: dict[str, EventState] = {}
        # Events merged since the last repoint_ops, and whether to check every merge the linker
        # remembers (after a start or a rebalance: a crash may have come between a merge and
        # its repoint).
        self._merged: set[str] = set()
        self._check_all_merges = True
        # Articles moved by splits since the last repoint_ops: their alerts follow them.
        self._split_moved: set[str] = set()
        self._splits_checked = False

    def reset(self) -> None:
        """Partitions moved: the linker is rebuilt from the table on next use, and the events in
        memory are forgotten (another worker may have written them since)."""
        self.store.reset()
        self._recent.clear()
        self._merged.clear()
        self._split_moved.clear()
        self._splits_checked = False
        self._check_all_merges = True

    def article_ops(self, article: EnrichedArticle) -> list[BulkOp]:
        """Link ``article``; the writes that record it, its own document first."""
        report = Report.from_article(for_linking(article))
        decision = self.store.link(report)
        link = decision.link
        metrics.EVENT_LINKS.labels(reason=link.reason).inc()
        metrics.EVENT_MERGES.inc(len(link.merged))
        self._merged.update(link.merged)
        if link.split_off is not None:
            metrics.EVENT_SPLITS.inc()
            self._split_moved.update(link.moved)
        articles, links, events = (self.settings.index(n) for n in ("articles", "event-links", "events"))
        event = self.store.event(link.event_id)
        if event is None:  # only when a replayed article's event has since expired
            return [article_document(articles, article)]
        self._recent.pop(article.id, None)
        self._recent[article.id] = event
        while len(self._recent) > RECENT_LINKS:
            del self._recent[next(iter(self._recent))]
        ops = [
            article_document(
                articles, article, event_id=event.id, event_reason=link.reason, event_score=link.score
            ),
            BulkOp(links, article.id, link_record(article, report, link, event).model_dump(mode="json")),
            self._event_op(event),
        ]
        for merged in decision.merged:
            ops.append(BulkOp(events, merged.id, event_document(merged).model_dump(mode="json")))
        if decision.split is not None:
            ops.append(self._event_op(decision.split))
        for alert_id in decision.alerts:  # alerts that overtook the article get its event now
            ops.append(BulkOp(self.settings.index("alerts"), alert_id, {"event_id": event.id}, "update"))
        for article_id, event_id in decision.moved:
            now = self.store.event(event_id) or event
            if article_id in self._recent:
                self._recent[article_id] = now
            ops.append(BulkOp(articles, article_id, {"event_id": now.id}, "update"))
            ops.append(BulkOp(links, article_id, {"event_id": now.id, "event_label": now.label}, "update"))
        return ops

    def alert_ops(self, alert: Alert) -> list[BulkOp] | None:
        """The writes for a claim seen in an article of the window (or soon to be); None when
        the article has left the window or is dated before it (see :meth:`old_alert_ops`)."""
        published = alert.published.timestamp() if alert.published else None
        wait = not alert.retroactive and self.store.waits_for(published)
        event = self.store.note_claim(
            alert.article_id, alert.claim_id, alert.claim_text, wait=wait, alert_id=alert.id
        )
        if event is None:
            return [] if wait else None
        return [
            BulkOp(self.settings.index("alerts"), alert.id, {"event_id": event.id}, "update"),
            self._event_op(event),
        ]

    async def old_alert_ops(self, es: AsyncElasticsearch, alert: Alert) -> list[BulkOp]:
        """The writes for a claim seen in an article older than the window (retroactively, or
        live in an article dated before it): its event, as stored, gets the claim. An article
        this stage linked lately is known here before Elasticsearch shows it (written by the
        same batch, or not refreshed yet); a live alert whose article is in neither place
        overtook it: it waits for it after all."""
        recent = self._recent.get(alert.article_id)
        if recent is not None:
            event_id: str | None = recent.id
        else:
            found = await es.search(
                index=self.settings.index("articles"),
                query={"ids": {"values": [alert.article_id]}},
                source_includes=["event_id"],
                size=1,
            )
            hits = found["hits"]["hits"]
            event_id = hits[0]["_source"].get("event_id") if hits else None
            if not hits and not alert.retroactive:  # it overtook its article (dated before the window)
                self.store.note_claim(
                    alert.article_id, alert.claim_id, alert.claim_text, wait=True, alert_id=alert.id
                )
                return []
        if not event_id:
            log.info("events.alert_without_event", extra={"alert": alert.id, "article": alert.article_id})
            return []
        live = self.store.event(event_id)
        if live is not None:  # still live, or merged into a live event since
            self.store.add_claim(live, alert.claim_id, alert.claim_text)
            event_doc = event_document(live)
        elif recent is not None and recent.id not in self.store.linker.merged:
            # Left the window since: its document is as this stage last wrote it.
            recent.add_claim(alert.claim_id, alert.claim_text)
            event_doc = event_document(recent)
        else:
            stored = await stored_event(es, self.settings, event_id)
            if stored is None:
                return []
            if alert.claim_id not in stored.claim_ids:
                stored.claim_ids = [*stored.claim_ids, alert.claim_id]
                stored.claims = [*stored.claims, alert.claim_text[:500]]
                stored.claim_count = len(stored.claim_ids)
            event_doc = stored
        return [
            BulkOp(self.settings.index("alerts"), alert.id, {"event_id": event_doc.id}, "update"),
            BulkOp(self.settings.index("events"), event_doc.id, event_doc.model_dump(mode="json")),
        ]

    @property
    def repoint_due(self) -> bool:
        """Whether :meth:`repoint_ops` has merges (or split-off articles) to look for."""
        if self._check_all_merges and not self._splits_checked:  # once after a start
            self._split_moved.update(self._split_off_articles())
            self._splits_checked = True
        merges = bool(self._merged) or (self._check_all_merges and bool(self.store.linker.merged))
        return merges or bool(self._split_moved)

    async def repoint_ops(self, es: AsyncElasticsearch) -> list[BulkOp]:
        """The updates giving the documents that still name a merged event (articles, alerts,
        "report joined event" records) the event it was merged into.

        A merge moves the articles still in the linker's window with it (``Decision.moved``).
        An event can be older than the window, though: its first articles, their alerts and
        records keep its id, and a dashboard counting articles by ``event_id`` would show the
        merged event beside its survivor. This search finds them (in every index behind each
        alias: each is updated where it is). Partial updates, by id, no script: run again, it
        rewrites the same values. Call it once the batch with the merge is written, then
        :meth:`repointed`; after a start or a rebalance it looks for every merge the linker
        remembers (those whose survivor is still live). The alerts of articles moved by a
        split are found by article, and their claims added to the article's event now (after a
        start: those of every article of the window in an event split off another)."""
        ids = set(self._merged)
        if self._check_all_merges:
            ids.update(self.store.linker.merged)
        wanted = sorted(ids)
        ops = await self._split_alert_ops(es) if self._split_moved else []
        for kind, also in EVENT_NAMING.items():
            for start in range(0, len(wanted), REPOINT_IDS):
                query = {"terms": {"event_id": wanted[start : start + REPOINT_IDS]}}
                async for hit in search_all(es, self.settings.index(kind), query, ["event_id"]):
                    event = self.store.event(hit["_source"]["event_id"])
                    if event is None or event.id == hit["_source"]["event_id"]:
                        continue
                    doc: dict[str, object] = {"event_id": event.id}
                    if "event_label" in also:
                        doc["event_label"] = event.label
                    ops.append(BulkOp(hit["_index"], hit["_id"], doc, "update"))
        return ops

    def repointed(self, written: Sequence[BulkOp]) -> None:
        """The updates of :meth:`repoint_ops` are written (``written``: those that were; a
        document deleted since has nothing to repoint), and counted."""
        for kind in EVENT_NAMING:
            done = sum(behind(self.settings.index(kind), op.index) for op in written)
            metrics.EVENT_REPOINTED.labels(index=kind).inc(done)
        if written:
            log.info("events.repointed", extra={"documents": len(written)})
        self._merged.clear()
        self._split_moved.clear()
        self._check_all_merges = False

    def _split_off_articles(self) -> list[str]:
        """The window's articles in events split off another: after a start, a crash may have
        come between a split and the repoint of its alerts (those already right are left)."""
        linker = self.store.linker
        return [a for a, (e, _) in linker.articles.items() if (ev := linker.events.get(e)) and ev.split_from]

    async def _split_alert_ops(self, es: AsyncElasticsearch) -> list[BulkOp]:
        """The alerts of the articles split off lately, given their article's event now; that
        event gets their claims."""
        moved = sorted(self._split_moved)
        ops: list[BulkOp] = []
        changed: dict[str, EventState] = {}
        for start in range(0, len(moved), REPOINT_IDS):
            query = {"terms": {"article_id": moved[start : start + REPOINT_IDS]}}
            fields = ["event_id", "article_id", "claim_id", "claim_text"]
            async for hit in search_all(es, self.settings.index("alerts"), query, fields):
                source = hit["_source"]
                event_id = self.store.linker.event_of(source["article_id"])
                event = self.store.event(event_id) if event_id is not None else None
                if event is None:
                    continue
                if source.get("claim_id") not in event.claims:
                    self.store.add_claim(event, source["claim_id"], source.get("claim_text", ""))
                    changed[event.id] = event
                if source.get("event_id") != event.id:
                    ops.append(BulkOp(hit["_index"], hit["_id"], {"event_id": event.id}, "update"))
        ops.extend(self._event_op(event) for _, event in sorted(changed.items()))
        return ops

    def _event_op(self, event: EventState) -> BulkOp:
        return BulkOp(self.settings.index("events"), event.id, event_document(event).model_dump(mode="json"))
