"""XML sitemaps, sitemap indexes and Google News sitemaps, parsed with a hardened lxml parser.

A sitemap is untrusted XML. The parser resolves no entities, loads no DTD, never touches the
network and keeps libxml2's limits on (no ``huge_tree``); a document with an internal DTD
(where entity bombs live) is refused outright, so a billion-laughs sitemap fails in
milliseconds with a clear error. Elements are matched by local name, so sitemaps with the old
0.84 namespace or none at all are read too.

* ``<urlset>``: each ``<url><loc>`` is an article; ``<lastmod>`` is its date, and a Google News
  block (``<news:news>``) adds ``news:title``, ``news:publication_date`` (which wins over
  ``lastmod``) and ``news:publication/news:language``.
* ``<sitemapindex>``: each ``<sitemap><loc>`` is a child sitemap; the fetcher follows them
  (newest ``lastmod`` first, bounded in depth and count: ``sitemap_max_depth``,
  ``sitemap_max_children``).
"""

from __future__ import annotations

from lxml import etree

from wirewatch.core.dates import iso_datetime
from wirewatch.fetcher.formats import FeedEntry, FeedFormatError, ParsedFeed, SitemapChild

#: Most ``<url>`` entries read from one sitemap (the protocol allows 50,000).
MAX_SITEMAP_URLS = 50_000


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child_text(element: etree._Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            text = (child.text or "").strip()
            return text or None
    return None


def _child(element: etree._Element, name: str) -> etree._Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def parse_sitemap(body: bytes) -> ParsedFeed:
    """A ``urlset`` (with or without Google News tags) or a ``sitemapindex``; raises ``FeedFormatError``."""
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise FeedFormatError(f"malformed sitemap: {exc}") from exc
    if root.getroottree().docinfo.internalDTD is not None:
        raise FeedFormatError("sitemap refused: it declares a DTD (entity expansion is not allowed)")
    kind = _local(root.tag)
    if kind == "sitemapindex":
        children = []
        for element in root:
            if _local(element.tag) != "sitemap":
                continue
            loc = _child_text(element, "loc")
            if loc:
                children.append(SitemapChild(loc, iso_datetime(_child_text(element, "lastmod"))))
        return ParsedFeed(format="sitemap-index", version="sitemapindex", children=children)
    if kind != "urlset":
        raise FeedFormatError(f"not a sitemap: root element is <{kind}>")
    entries: list[FeedEntry] = []
    news_count = 0
    for element in root:
        if _local(element.tag) != "url":
            continue
        if len(entries) >= MAX_SITEMAP_URLS:
            break
        loc = _child_text(element, "loc")
        if not loc:
            continue
        published = iso_datetime(_child_text(element, "lastmod"))
        title = language = None
        news = _child(element, "news")
        if news is not None:
            news_count += 1
            title = _child_text(news, "title")
            published = iso_datetime(_child_text(news, "publication_date")) or published
            publication = _child(news, "publication")
            if publication is not None:
                language = _child_text(publication, "language")
        entries.append(FeedEntry(link=loc, title=title, published=published, language=language))
    return ParsedFeed(format="sitemap", version="google-news" if news_count else "urlset", entries=entries)
