"""An :class:`~wirewatch.events.linking.EventLinker` whose state lives in a table.

The indexer's linking stage keeps the linker in memory and every change in a key-value table
(a Faust table backed by a compacted changelog topic, or a plain dict in tests), so a restart
or a rebalance rebuilds exactly the linker it had:

- ``event:<id>`` — one live event's record (:meth:`EventState.record`, ~5 KB);
- ``article:<id>`` — ``[event id, time, reason, score, member]`` for each article of the
  window: the event and time the linker needs, how the article was linked, so a report seen
  again after a crash gets its original decision back (not "known"), and what its event keeps
  of it to split it later (:class:`~wirewatch.events.state.Member`, ~2 KB; null once the event
  is too large to split);
- ``pending:<id>`` — ``{"seq": n, "sightings": [...]}``: tracked-claim sightings of an
  article not linked yet (an alert can overtake its article), deleted when it is linked;
- ``meta`` — the clock, the next event rank and the merge map.

After each decision only what changed is written: the article, the event it joined, events
merged or expired (deleted), after a split the other event and the articles that moved, a
consumed ``pending`` record (deleted), the meta record, none over a few kilobytes. Articles
leave the table when they leave the linker's window; waiting sightings are at most
``MAX_PENDING``, the oldest dropped first. (The sightings used to be part of ``meta``, which is
rewritten for every report: with thousands waiting, each report wrote a record of hundreds of
kilobytes to the changelog. The first link or sighting after a restore moves such sightings to
their own records.)
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, replace
from typing import Any

from wirewatch.core.logs import get_logger
from wirewatch.core.vectors import SentenceEncoder
from wirewatch.events.linking import SNAPSHOT_VERSION, EventLinker, Link, LinkerConfig
from wirewatch.events.profile import Report
from wirewatch.events.state import EventState

log = get_logger(__name__)

META = "meta"
EVENT = "event:"
ARTICLE = "article:"
PENDING = "pending:"
#: Claim sightings kept while waiting for their article (the oldest go first).
MAX_PENDING = 10_000


@dataclass(frozen=True)
class Decision:
    """A report's link, and the states of the events merged into its event by it (with
    ``merged_into`` set) — their documents must say where they went."""

    link: Link
    merged: tuple[EventState, ...] = ()
    #: Recent articles whose event changed because of a merge or a split: (article, its event).
    moved: tuple[tuple[str, str], ...] = ()
    alerts: tuple[str, ...] = ()  # alerts that overtook this article and waited: now in its event
    #: After a split, the part that is not the report's event (its document changed too).
    split: EventState | None = None


class LinkerStore:
    """The stream's event linker (see the module doc). Not thread-safe; one per stage."""

    def __init__(
        self,
        table: MutableMapping[str, Any],
        config: LinkerConfig | None = None,
        encoder: SentenceEncoder | None = None,
    ) -> None:
        self.table = table
        self.config = config or LinkerConfig()
        self._encoder = encoder
        self._linker: EventLinker | None = None
        self._articles: dict[str, None] = {}  # article keys in the table, in the linker's order
        # article id -> its ``pending:`` record (``{"seq", "sightings"}``), oldest first
        self._pending: dict[str, dict[str, Any]] = {}
        self._next_pending = 0
        # sightings an older version kept in ``meta``, not yet moved to their own records
        self._legacy_pending: dict[str, list[list[Any]]] = {}

    @property
    def linker(self) -> EventLinker:
        """The linker, rebuilt from the table on first use after a start or a rebalance.

        The rebuild only reads the table: the stream rebuilds it as soon as the table is
        recovered, outside stream iteration, where a Faust table refuses writes. What it would
        write (sightings an older version kept in ``meta``) is written by the next link or
        sighting."""
        if self._linker is None:
            self._linker = self._restore()
        return self._linker

    def reset(self) -> None:
        """Forget the in-memory linker (partitions moved); it is rebuilt on next use."""
        self._linker = None
        self._legacy_pending = {}

    def link(self, report: Report) -> Decision:
        """Link ``report`` and write what changed."""
        linker = self.linker
        self._move_legacy_pending()
        if report.id in linker.articles:  # seen before (a replay): its original decision
            return Decision(self._replayed(report.id))
        link = linker.link(report)
        merged: list[EventState] = []
        for event_id in link.merged:  # gone from the linker; the table still has their records
            record = self.table.get(EVENT + event_id)
            if record is not None:
                state = EventState.from_record(record)
                state.merged_into = link.event_id
                merged.append(state)
            self.table.pop(EVENT + event_id, None)
        for event_id in link.expired:
            self.table.pop(EVENT + event_id, None)
        event = linker.events[link.event_id]
        if link.related:
            event.add_related(link.related)
        waited: list[str] = []
        for sighting in self._take_pending(report.id):
            claim_id, text = sighting[0], sighting[1]
            event.add_claim(claim_id, text)
            waited.extend(sighting[2:3])  # the alert's id (absent from records of older versions)
        self.table[EVENT + event.id] = event.record()
        self._write_article(report.id, link.reason, link.score)
        self._articles[report.id] = None
        moved: list[tuple[str, str]] = []
        if link.merged:
            gone = set(link.merged)
            moved = [(a, link.event_id) for a, (e, _) in linker.articles.items() if e in gone]
        split = None
        if link.split_off is not None:
            other_id = link.split_off if link.event_id != link.split_off else self._split_from(link)
            split = linker.events[other_id]
            self.table[EVENT + split.id] = split.record()
            for article_id in link.moved:
                entry = self.table.get(ARTICLE + article_id)
                if entry is not None:
                    self._write_article(article_id, entry[2], entry[3])
                moved.append((article_id, link.split_off))
        self._forget_old_articles()
        self._write_meta()
        return Decision(link, tuple(merged), tuple(moved), tuple(waited), split)

    def note_claim(
        self, article_id: str, claim_id: str, text: str, *, wait: bool, alert_id: str | None = None
    ) -> EventState | None:
        """A tracked claim was seen in ``article_id``: add it to the article's event and return
        that event, or None when the article is not in the window. With ``wait``, the sighting
        is kept until the article is linked (alerts can overtake their article); the article's
        :class:`Decision` then names ``alert_id``, whose document needs the event too."""
        linker = self.linker
        self._move_legacy_pending()
        event_id = linker.event_of(article_id)
        event = linker.events.get(event_id) if event_id is not None else None
        if event is not None:
            self.add_claim(event, claim_id, text)
            return event
        if wait:
            sighting = [claim_id, text, *([alert_id] if alert_id else [])]
            record = self._pending.get(article_id)
            sightings = record["sightings"] if record else []
            if sighting not in sightings:
                self._put_pending(article_id, [*sightings, sighting])
        return None

    def add_claim(self, event: EventState, claim_id: str, text: str) -> None:
        """Add a sighting to ``event`` (idempotent); a live event's record is written again."""
        event.add_claim(claim_id, text)
        if self.linker.events.get(event.id) is event:
            self.table[EVENT + event.id] = event.record()

    def waits_for(self, published: float | None) -> bool:
        """Whether a sighting of an article published at ``published`` should wait for it. One
        dated before the window (``clock - window``) gets an event that leaves the window at the
        next report, so its sighting would find no live event and wait for ever."""
        return published is None or published >= self.linker.horizon

    def event(self, event_id: str) -> EventState | None:
        """A live event (a merged id resolves to its survivor), or None."""
        return self.linker.event(event_id)

    # --- internals --------------------------------------------------------------------------------

    def _write_article(self, article_id: str, reason: str, score: float | None) -> None:
        """The ``article:`` record of a linked article, as the linker has it now."""
        event_id, at = self.linker.articles[article_id]
        member = self.linker.members.get(article_id)
        record = member.record() if member is not None else None
        self.table[ARTICLE + article_id] = [event_id, at, reason, score, record]

    def _split_from(self, link: Link) -> str:
        """The event ``link.split_off`` was split from (the report moved with it)."""
        event = self.linker.events[str(link.split_off)]
        return str(event.split_from)

    def _replayed(self, article_id: str) -> Link:
        linker = self.linker
        entry = self.table.get(ARTICLE + article_id)
        event_id = linker.event_of(article_id) or (entry[0] if entry else "")
        if not entry:
            return Link(article_id, event_id, "known")
        return replace(Link(article_id, event_id, entry[2]), score=entry[3])

    def _put_pending(self, article_id: str, sightings: list[list[Any]]) -> None:
        """Keep (and write) the sightings waiting for ``article_id`` (an article already waiting
        keeps its place); drop the oldest past ``MAX_PENDING`` articles."""
        record = self._pending.get(article_id)
        if record is None:
            record = self._pending[article_id] = {"seq": self._next_pending}
            self._next_pending += 1
        record["sightings"] = sightings
        self.table[PENDING + article_id] = record
        while len(self._pending) > MAX_PENDING:
            self._take_pending(next(iter(self._pending)))

    def _move_legacy_pending(self) -> None:
        """Write the sightings ``meta`` held (an older version) as records of their own; ``meta``
        loses them when it is next written."""
        legacy, self._legacy_pending = self._legacy_pending, {}
        for article_id, sightings in legacy.items():
            self._put_pending(article_id, sightings)

    def _take_pending(self, article_id: str) -> list[list[Any]]:
        """The sightings that waited for ``article_id`` (none: ``[]``), gone from the table."""
        record = self._pending.pop(article_id, None)
        if record is None:
            return []
        self.table.pop(PENDING + article_id, None)
        return list(record["sightings"])

    def _forget_old_articles(self) -> None:
        kept = self.linker.articles
        while self._articles:
            oldest = next(iter(self._articles))
            if oldest in kept:
                break
            del self._articles[oldest]
            self.table.pop(ARTICLE + oldest, None)

    def _write_meta(self) -> None:
        linker = self.linker
        self.table[META] = {
            "version": SNAPSHOT_VERSION,
            "clock": linker.clock if linker.clock != float("-inf") else None,
            "next_seq": linker.next_seq,
            "merged": dict(linker.merged),
        }

    def _restore(self) -> EventLinker:
        meta = self.table.get(META)
        events: list[dict[str, Any]] = []
        articles: list[tuple[str, list[Any]]] = []
        pending: list[tuple[int, str, dict[str, Any]]] = []
        for key, value in list(self.table.items()):
            if value is None:
                continue
            if key.startswith(EVENT):
                events.append(value)
            elif key.startswith(ARTICLE):
                articles.append((key[len(ARTICLE) :], value))
            elif key.startswith(PENDING):
                pending.append((int(value["seq"]), key[len(PENDING) :], value))
        articles.sort(key=lambda item: (float(item[1][1]), item[0]))
        self._articles = {article_id: None for article_id, _ in articles}
        pending.sort(key=lambda item: item[:2])
        self._pending = {article_id: dict(record) for _, article_id, record in pending}
        self._next_pending = pending[-1][0] + 1 if pending else 0
        legacy = (meta or {}).get("pending", {})  # sightings kept in ``meta`` by older versions
        self._legacy_pending = {str(a): [list(s) for s in sightings] for a, sightings in legacy.items()}
        if meta is None:
            return EventLinker(self.config, self._encoder)
        snapshot = {
            "version": meta.get("version", SNAPSHOT_VERSION),
            "clock": meta.get("clock"),
            "next_seq": meta.get("next_seq", 0),
            "events": events,
            "merged": meta.get("merged", {}),
            "articles": [[a, entry[0], entry[1]] for a, entry in articles],
            "members": [entry[4] for _, entry in articles if len(entry) > 4 and entry[4]],
        }
        linker = EventLinker.restore(snapshot, self.config, self._encoder)
        log.info("events.rebuilt", extra={"events": len(events), "articles": len(articles)})
        return linker
