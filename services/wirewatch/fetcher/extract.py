"""Article extraction with trafilatura: the one extraction path (stream and ``eval``)."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import trafilatura
from htmldate import find_date
from lxml.html import HtmlElement
from trafilatura.settings import Document

from wirewatch.core.dates import iso_datetime
from wirewatch.fetcher.metadata import declared_sitename, page_metadata


class ExtractionError(ValueError):
    """The page has no article text trafilatura can find."""


@dataclass(frozen=True)
class Extracted:
    text: str
    title: str | None
    author: str | None
    published: datetime | None
    sitename: str | None  # as the page declares it (not its URL's host)
    description: str | None
    language: str | None
    canonical_url: str | None
    amp_url: str | None = None  # the page's ``<link rel="amphtml">``: another URL of the same article


#: ``<meta charset=...>`` or ``<meta http-equiv="Content-Type" content="...; charset=...">``, searched
#: (as bytes) in the head of the document, as browsers do.
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.+-]+)""", re.IGNORECASE)
_SNIFF_BYTES = 4096
_WORD = re.compile(r"\w+")
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def _text_codec(label: str | bytes | None) -> str | None:
    """The Python codec for a declared charset label, or None if it is unknown or not a text encoding."""
    if not label:
        return None
    name = label.decode("ascii", "ignore") if isinstance(label, bytes) else label
    try:
        info = codecs.lookup(name.strip().strip("\"'").lower())
    except (LookupError, ValueError):
        return None
    # base64, rot13, zip...: byte-to-byte codecs a hostile page may declare.
    return info.name if getattr(info, "_is_text_encoding", True) else None


def charset_from_content_type(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type header value, if any."""
    if not content_type or "charset=" not in content_type.lower():
        return None
    return content_type.lower().split("charset=", 1)[1].split(";")[0].strip().strip("\"'") or None


def decode_html_bytes(body: bytes, content_type: str | None = None) -> str:
    """HTML bytes to text; never raises. The one decoder (fetcher, ``eval extract``, benchmarks).

    Candidates, each tried strictly in order: a byte-order mark, the charset of ``content_type``
    (an HTTP header value), a ``<meta charset>`` / ``http-equiv`` declaration in the first 4 KiB,
    UTF-8. A page none of them decodes (a wrong or missing declaration over legacy bytes) is read
    as windows-1252, what browsers do with Latin-1 labels; its few undefined bytes become U+FFFD.
    """
    candidates: list[str | None] = []
    for bom, bom_encoding in _BOMS:
        if body.startswith(bom):
            candidates.append(bom_encoding)
            body = body[len(bom) :]
            break
    candidates.append(_text_codec(charset_from_content_type(content_type)))
    match = _META_CHARSET.search(body[:_SNIFF_BYTES])
    declared = _text_codec(match.group(1)) if match else None
    # A document that can state its charset in ASCII is not UTF-16/32 (browsers read it as UTF-8 too).
    candidates.append("utf-8" if declared and declared.startswith(("utf-16", "utf-32")) else declared)
    candidates.append("utf-8")
    for encoding in candidates:
        if encoding is None:
            continue
        try:
            return body.decode(encoding)
        except (LookupError, UnicodeError, ValueError):  # also idna, punycode and other odd codecs
            continue
    return body.decode("cp1252", errors="replace")


def _words(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _link_texts(tree: HtmlElement) -> set[str]:
    return {" ".join(a.text_content().split()) for a in tree.iter("a")}


def _only_link_text(anchors: set[str], text: str) -> bool:
    """True when every line of ``text`` is the whole text of some link on the page."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return bool(lines) and all(line in anchors for line in lines)


def _drop_title_lines(text: str, title: str | None) -> str:
    """``text`` without its leading headline: lines repeating the page title (it is kept apart).

    A line is the headline when its words are the title's, or a run of at least three words
    within the title (``"Opinion | Headline"``, ``"Headline | Site"``). Never empties the text.
    """
    wanted = _words(title or "")
    if not wanted:
        return text
    lines = text.splitlines()
    start = 0
    while start < len(lines):
        words = _words(lines[start])
        # Blank or punctuation-only lines between headline parts go too.
        if not words or words == wanted or (words.count(" ") >= 2 and f" {words} " in f" {wanted} "):
            start += 1
        else:
            break
    rest = "\n".join(lines[start:]).strip()
    return rest if rest else text


#: Below this many characters the fast pass's text is suspect: trafilatura's full pipeline runs instead.
SHORT_TEXT = 500


#: htmldate's search for the publication date: the page's markup (meta tags, structured data,
#: ``<time>`` and date elements) and its URL, never the running text. A date written in the body
#: is as often one the article talks about ("contrôlée par Daech depuis 2014", "le 17 septembre
#: 2016") as its own, and a wrong date moves an article out of its event's time window; with no
#: date, the feed's date or the time it was fetched stands in.
DATE_SEARCH: dict[str, Any] = {"original_date": True, "extensive_search": False}


def _extract_text(tree: HtmlElement, url: str | None, *, fast: bool) -> str | None:
    doc = trafilatura.bare_extraction(
        tree,  # bare_extraction works on a copy: ``tree`` stays whole for the other passes and checks
        url=url,
        with_metadata=False,  # page_metadata: the fields kept, once
        include_comments=False,
        include_tables=True,
        favor_recall=fast,
        fast=fast,
    )
    text = doc.text if isinstance(doc, Document) else None
    return text if text and text.strip() else None


def extract_article(html: str, url: str | None = None) -> Extracted:
    """Main text and metadata of one page. Pure and CPU-bound: run it in a process pool.

    One pass of trafilatura's own extractor (``fast``, ``favor_recall``, tables, no comments); when
    that finds nothing or less than ``SHORT_TEXT`` characters, trafilatura's full balanced pipeline
    (with its readability / jusText rescue) runs instead. Then the headline, kept apart as the title,
    is removed from the start of the body. Measured in benchmarks/RESULTS.md.

    Raises ``ExtractionError`` and nothing else: the extractors crashing on hostile markup
    (htmldate's cleaning asserts on ``<svg><html>``) is one more page without extractable text.
    """
    try:
        return _extract_article(html, url)
    except ExtractionError:
        raise
    except Exception as exc:
        raise ExtractionError(
            f"cannot extract the article: the extractor failed ({type(exc).__name__}: {exc})"
        ) from exc


def _extract_article(html: str, url: str | None) -> Extracted:
    tree = trafilatura.load_html(html) if html else None
    if tree is None:
        raise ExtractionError("no article text found (not HTML)")
    meta = page_metadata(tree, url, DATE_SEARCH)
    page_url = url or meta.url
    text = _extract_text(tree, page_url, fast=True)
    if text is None:
        text = _extract_text(tree, page_url, fast=False)
    elif len(text) < SHORT_TEXT:
        text = _extract_text(tree, page_url, fast=False) or text
    if text is None:
        raise ExtractionError("no article text found")
    if _only_link_text(_link_texts(tree), text):
        # On a page without an article, extraction returns a menu or a list of headlines.
        raise ExtractionError("no article text found (only navigation links)")
    date = meta.date
    if not date:
        try:
            date = find_date(tree, url=url, **DATE_SEARCH)
        except Exception:  # htmldate on hostile markup: no date rather than no article
            date = None
    return Extracted(
        text=_drop_title_lines(text.strip(), meta.title),
        title=(meta.title or None),
        author=meta.author or None,
        published=iso_datetime(date),
        sitename=declared_sitename(meta),
        description=meta.description or None,
        language=meta.language or None,
        canonical_url=meta.url if meta.url and meta.url != url else None,
        amp_url=_amp_link(tree),
    )


def _amp_link(tree: HtmlElement) -> str | None:
    for link in tree.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        href = (link.get("href") or "").strip()
        if "amphtml" in rel and href:
            return href
    return None
