"""Article extraction with trafilatura: the one extraction path (stream and ``eval``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import lxml.html
import trafilatura
from htmldate import find_date
from lxml import etree
from trafilatura.settings import Document


class ExtractionError(ValueError):
    """The page has no article text trafilatura can find."""


@dataclass(frozen=True)
class Extracted:
    text: str
    title: str | None
    author: str | None
    published: datetime | None
    sitename: str | None
    description: str | None
    language: str | None
    canonical_url: str | None


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _only_link_text(html: str, text: str) -> bool:
    """True when every line of ``text`` is the whole text of some link on the page."""
    try:
        tree = lxml.html.fromstring(html)
    except (ValueError, etree.LxmlError):
        return False
    anchors = {" ".join(a.text_content().split()) for a in tree.iter("a")}
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return bool(lines) and all(line in anchors for line in lines)


def extract_article(html: str, url: str | None = None) -> Extracted:
    """Main text and metadata of one page. Pure and CPU-bound: run it in a process pool."""
    doc = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        favor_precision=False,
    )
    if not isinstance(doc, Document) or not (doc.text or "").strip():
        raise ExtractionError("no article text found")
    if _only_link_text(html, doc.text or ""):
        # trafilatura's fallbacks return a menu or a list of headlines when there is no article.
        raise ExtractionError("no article text found (only navigation links)")
    date = doc.date
    if not date:
        try:
            date = find_date(html, url=url, original_date=True)
        except Exception:  # htmldate on hostile markup: no date rather than no article
            date = None
    return Extracted(
        text=(doc.text or "").strip(),
        title=(doc.title or None),
        author=doc.author or None,
        published=_parse_date(date),
        sitename=doc.sitename or None,
        description=doc.description or None,
        language=doc.language or None,
        canonical_url=doc.url if doc.url and doc.url != url else None,
    )
