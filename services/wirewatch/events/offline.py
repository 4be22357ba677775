"""Event linking over a file of documents instead of a topic (``wirewatch eval cluster``).

Documents are JSON lines ``{"id", "title", "text", "published", "lang"}`` in stream order. Each
goes through what the stream does: the enricher's code (language, entities, keyphrases,
duplicates and reuse: :func:`~wirewatch.enricher.offline.enrich_documents`, its defaults), then
:class:`~wirewatch.events.linking.EventLinker` with its defaults. A document's time is its
``published`` time, or the previous document's when it has none (0 for the first).

The cluster of a document is the id of its event at the end of the stream: an event merged
into another later on is reported under the survivor's id, a document moved by a split under the
event it moved to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from wirewatch.enricher.offline import enrich_documents
from wirewatch.events.linking import EventLinker, Link
from wirewatch.events.profile import Report, timestamp


def reports(docs: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], Report]]:
    """Each document with its enriched report, in order (report ids are internal hashes)."""
    clock = 0.0
    for doc, article in enrich_documents(docs):
        published = doc.get("published")
        at = timestamp(str(published)) if published else None
        clock = at if at is not None else clock
        yield doc, Report.from_article(article, at=clock)


class Clusters:
    """Documents and the events they were linked to, with merges followed to the end."""

    def __init__(self) -> None:
        self._rows: list[tuple[str, str]] = []
        self._row_of: dict[str, int] = {}  # article id -> its row
        self._merged: dict[str, str] = {}

    def add(self, doc_id: str, link: Link) -> None:
        """Record one decision (and the merges and the split it made)."""
        self._row_of[link.article_id] = len(self._rows)
        self._rows.append((doc_id, link.event_id))
        for merged in link.merged:
            self._merged[merged] = link.event_id
        if link.split_off is not None:
            for article_id in link.moved:
                row = self._row_of[article_id]
                self._rows[row] = (self._rows[row][0], link.split_off)

    def final(self, event_id: str) -> str:
        """The id ``event_id`` ended up under."""
        while event_id in self._merged:
            event_id = self._merged[event_id]
        return event_id

    def rows(self) -> list[dict[str, str]]:
        """``{"id", "cluster"}`` per document, in input order."""
        return [{"id": doc_id, "cluster": self.final(event_id)} for doc_id, event_id in self._rows]


def cluster_rows(docs: Iterable[dict[str, Any]], linker: EventLinker | None = None) -> list[dict[str, str]]:
    """``{"id", "cluster"}`` per document: the whole offline path, with the linker's defaults."""
    linker = linker or EventLinker()
    clusters = Clusters()
    for doc, report in reports(docs):
        clusters.add(str(doc["id"]), linker.link(report))
    return clusters.rows()
