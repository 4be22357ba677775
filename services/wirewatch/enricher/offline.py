"""The enricher's code over a file of documents instead of a topic (``wirewatch eval dedup``).

Documents are JSON lines ``{"id", "title", "text", "published", "lang"}`` in stream order.
Each goes through exactly what the stream does: :func:`~wirewatch.enricher.service.analyse`,
then :class:`~wirewatch.enricher.service.CopyLinker` with the default settings, its table a
plain dict. A document's ``published`` time stands for the time the stream would have seen
it (never earlier than the document before it), so ``copies_ttl_days`` applies as it would.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from wirewatch.core.ids import stable_id
from wirewatch.core.models import EnrichedArticle, RawArticle
from wirewatch.core.settings import Settings
from wirewatch.enricher.service import CopyLinker, analyse


class DocumentError(ValueError):
    """A document line that cannot be read."""


def read_documents(path: Path) -> Iterator[dict[str, Any]]:
    """JSON objects, one per non-empty line, each with at least ``id`` and ``text``."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DocumentError(f"{path}:{number}: not JSON: {exc}") from exc
            if not isinstance(doc, dict) or "id" not in doc or not isinstance(doc.get("text"), str):
                raise DocumentError(f'{path}:{number}: expected an object with "id" and "text"')
            published = doc.get("published")
            if published is not None and not _iso_date(published):
                raise DocumentError(
                    f'{path}:{number}: "published" must be an ISO 8601 date or null, not {published!r}'
                )
            yield doc


def _iso_date(value: Any) -> bool:
    """Whether ``value`` is a string ``datetime.fromisoformat`` reads (``2016-10-25``,
    ``2016-10-25T08:00:00+02:00``, ``…Z``)."""
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def document_article(doc: dict[str, Any], internal_id: str) -> RawArticle:
    """The article the stream would have fetched for one document (``title``, ``text``, and
    ``published``, ``lang`` and ``source`` when given), under ``internal_id``."""
    url = f"urn:wirewatch:doc:{doc['id']}"
    published = doc.get("published")
    return RawArticle(
        id=internal_id,
        url=url,
        canonical_url=url,
        source=str(doc.get("source") or "offline"),
        source_domain="offline.invalid",
        title=str(doc.get("title") or ""),
        text=doc["text"],
        published=datetime.fromisoformat(published) if published else None,
        language_hint=doc.get("lang"),
    )


def enrich_documents(
    docs: Iterable[dict[str, Any]], settings: Settings | None = None
) -> Iterator[tuple[dict[str, Any], EnrichedArticle]]:
    """Each document with its enriched article, in order. Ids in the articles are internal
    (hashes of the document ids); :func:`dedup_rows` maps them back."""
    settings = settings or Settings()
    linker = CopyLinker({}, settings.copies_ttl_days, settings.copies_max_articles)
    clock = 0.0
    for position, doc in enumerate(docs):
        raw = document_article(doc, stable_id("doc", str(doc["id"])))
        seen = raw.published.timestamp() if raw.published else float(position)
        clock = max(clock, seen)
        yield doc, linker.link(analyse(raw), at=clock)


def dedup_rows(docs: Iterable[dict[str, Any]], settings: Settings | None = None) -> Iterator[dict[str, Any]]:
    """``{"id", "duplicate_of", "similarity", "reuses": [{"id", "share", "source_share"}]}`` per document."""
    names: dict[str, str] = {}
    for doc, article in enrich_documents(docs, settings):
        names[article.id] = str(doc["id"])
        yield {
            "id": str(doc["id"]),
            "duplicate_of": names.get(article.duplicate_of) if article.duplicate_of else None,
            "similarity": article.duplicate_similarity,
            "reuses": [
                {"id": names[r.id], "share": r.share, "source_share": r.source_share} for r in article.reuses
            ],
        }
