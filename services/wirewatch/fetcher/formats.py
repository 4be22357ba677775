"""Feed bodies to entries: RSS 0.9x/1.0/2.0 and Atom (feedparser), JSON Feed 1.0/1.1, XML sitemaps.

:func:`parse_feed` is the one entry point. It looks at the body, not only at the URL or the
Content-Type (servers mislabel feeds all the time):

* a gzip body (``.xml.gz`` sitemaps, served without ``Content-Encoding``) is inflated first,
  in bounded steps and within the same size cap as any body;
* a body that starts with ``{`` (or a JSON media type) is a JSON Feed, validated strictly;
* an XML body whose root element is ``urlset`` or ``sitemapindex`` is a sitemap
  (:mod:`wirewatch.fetcher.sitemaps`, parsed with a hardened lxml parser);
* anything else goes to feedparser (RSS 0.9x, RSS 1.0/RDF, RSS 2.0, Atom 0.3/1.0).

Every format gives the same :class:`ParsedFeed` of :class:`FeedEntry`, whose links are absolute
(a relative one, ``/a1.html``, is resolved against the feed's URL, the one it was read from
after any redirects: feedparser resolves only against an ``xml:base``, and JSON Feed has none;
a link that is not http(s) is left for the fetcher to refuse), and whose title, summary and
author are plain text: RSS and Atom carry them as HTML as often as not (``Macron &amp; Merkel``,
``<p>Le <a href=…>ministre</a>…</p>``), and :func:`feed_text` reduces them to their words.

A body that is not a feed, or is broken beyond recovery, raises :class:`FeedFormatError` (a
``FetchError``: the poll loop logs it and records a dead letter); a feed that feedparser could
partly recover comes back with ``problem`` set.

A feed is polled again and again, and most of its items are the ones it listed last time. Each
RSS/Atom item is known by a digest of its XML (``ParsedFeed.item_entries``); handed back as
``previous`` on the next poll of the same feed, the items whose XML has not changed keep what they
gave, and feedparser reads only the new ones (with the channel, for the feed's own fields).
The result is the same as parsing the whole feed: where it might not be (a malformed feed, an item
that feedparser does not count as one entry) the whole feed is parsed, as it always was.
"""

from __future__ import annotations

import calendar
import html
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urljoin

import feedparser
from feedparser.encodings import convert_to_utf8
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wirewatch.core.ids import stable_id
from wirewatch.fetcher.errors import FetchError
from wirewatch.fetcher.http import inflate_capped, media_type

#: feedparser complaints that do not mean the feed is broken.
HARMLESS_FEED_ERRORS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
GZIP_MAGIC = b"\x1f\x8b"
#: Seconds per ``sy:updatePeriod`` unit (RSS 1.0 syndication module).
SY_PERIODS = {
    "hourly": 3600.0,
    "daily": 86400.0,
    "weekly": 604800.0,
    "monthly": 2592000.0,
    "yearly": 31536000.0,
}

#: The root element after the prolog (declaration, PIs, comments, doctype). Each prolog item is an
#: atomic group, repeated possessively: once matched it is never re-split (``.*?`` could otherwise
#: run on into the next item, and a prolog of n items be tried 2**n ways: a 200-byte body of
#: ``<?a?>`` repeated took hours).
_SITEMAP_ROOT = re.compile(
    rb"""\A(?:\s|(?><\?.*?\?>)|(?><!--.*?-->)|(?><!DOCTYPE[^\[>]*(?:\[(?:[^\]"']|"[^"]*"|'[^']*')*\])?\s*>))*+"""
    rb"""<(?:[A-Za-z_][\w.-]*:)?(urlset|sitemapindex)[\s>/]""",
    re.DOTALL,
)
#: How much of a body is searched for its root element.
SNIFF_BYTES = 64 * 1024

Format = Literal["rss", "atom", "json-feed", "sitemap", "sitemap-index"]


class FeedFormatError(FetchError):
    """The body is not a feed wirewatch reads, or is too broken to read."""


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed or one URL of a sitemap: an article to fetch."""

    link: str
    title: str | None = None
    summary: str | None = None
    author: str | None = None
    published: datetime | None = None
    language: str | None = None


@dataclass(frozen=True)
class SitemapChild:
    """A sitemap listed by a sitemap index."""

    url: str
    lastmod: datetime | None = None


@dataclass
class ParsedFeed:
    format: Format
    version: str
    title: str | None = None
    language: str | None = None
    entries: list[FeedEntry] = field(default_factory=list)
    children: list[SitemapChild] = field(default_factory=list)
    #: Seconds the feed itself asks between polls (RSS ``ttl``, ``sy:updatePeriod``/``Frequency``).
    min_interval: float | None = None
    #: Set when feedparser recovered entries from a malformed feed: why it was malformed.
    problem: str | None = None
    #: What each RSS/Atom item gave (no entry: an item without a link), by a digest of its XML:
    #: ``previous`` for the next poll of the same feed. Empty when the items could not be told
    #: apart (a malformed feed) and for the other formats.
    item_entries: dict[str, tuple[FeedEntry, ...]] = field(default_factory=dict)


def parse_feed(
    body: bytes,
    content_type: str | None = None,
    *,
    max_bytes: int,
    url: str = "",
    previous: ItemEntries | None = None,
) -> ParsedFeed:
    """Parse a feed body of any supported format; raises ``FeedFormatError``. ``url``: the feed's,
    which relative links are resolved against (the URL the body came from, after any redirects:
    ``Page.url``). ``previous``: the ``item_entries`` of the last poll of the same feed (RSS and
    Atom)."""
    return _absolute(_parse_feed(body, content_type, max_bytes=max_bytes, url=url, previous=previous), url)


def _absolute(parsed: ParsedFeed, base: str) -> ParsedFeed:
    """``parsed`` with its entries' and children's links resolved against ``base``."""
    parsed.entries = [replace(e, link=_resolve(base, e.link)) for e in parsed.entries]
    parsed.children = [replace(c, url=_resolve(base, c.url)) for c in parsed.children]
    return parsed


def _resolve(base: str, link: str) -> str:
    """``link`` made absolute against ``base``; as it is when it cannot be (the fetcher refuses it)."""
    try:
        return urljoin(base, link)
    except ValueError:  # an unparseable link or base (``http://[x``)
        return link


def _parse_feed(
    body: bytes,
    content_type: str | None,
    *,
    max_bytes: int,
    url: str,
    previous: ItemEntries | None,
) -> ParsedFeed:
    if body.startswith(GZIP_MAGIC):
        try:
            body = inflate_capped(body, "gzip", max_bytes, url)
        except FetchError as exc:
            raise FeedFormatError(f"gzipped feed {url}: {exc}") from exc
    head = body[:SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n")
    media = media_type(content_type)
    if head.startswith(b"{") or (media.endswith("json") and not head.startswith(b"<")):
        return parse_json_feed(body)
    if _SITEMAP_ROOT.match(head):
        from wirewatch.fetcher.sitemaps import parse_sitemap

        return parse_sitemap(body)
    try:
        hostile = declares_entities(body)
    except (LookupError, UnicodeError) as exc:  # feedparser itself raises these: ``encoding="undefined"``
        raise FeedFormatError(f"malformed feed: cannot read it in its declared encoding ({exc})") from exc
    if hostile:
        raise FeedFormatError("feed refused: its DOCTYPE declares entities (entity expansion is not allowed)")
    return _parse_with_feedparser(body, previous)


def declares_entities(body: bytes) -> bool:
    """Whether an XML body declares entities in a DOCTYPE, where entity bombs (billion laughs) and
    external entities (``SYSTEM "file:///etc/passwd"``) live. Looked for in the body as feedparser
    will read it (converted to UTF-8 from whatever encoding it declares), so no encoding hides them.
    (expat's own amplification limit would stop a bomb, but only after seconds and tens of MB.)"""
    data: bytes = convert_to_utf8({}, body, {})
    doctype = data.find(b"<!DOCTYPE")
    return doctype >= 0 and data.find(b"<!ENTITY", doctype) >= 0


# --- RSS and Atom ---------------------------------------------------------------------------------


def entry_published(entry: Any) -> datetime | None:
    """feedparser's published (else updated) time of an entry, as an aware datetime."""
    for key in ("published_parsed", "updated_parsed"):
        value = entry.get(key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


#: C0 and C1 control characters (tab, line feed and carriage return aside): never text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Elements whose content is not text a reader sees.
_HIDDEN = frozenset(
    {"script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "math", "title"}
)
#: Elements that separate words (``<p>a</p><p>b</p>`` is "a b", ``wi<b>n</b>s`` is "wins").
_BLOCKS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption"),
        *("figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav"),
        *("ol", "p", "pre", "section", "table", "td", "th", "tr", "ul"),
    }
)
_HTML_PARSER = etree.HTMLParser(recover=True, no_network=True, remove_comments=True, remove_pis=True)


def feed_text(value: str) -> str:
    """The plain text of a feed's title, summary or author, which may be HTML: tags and what
    scripts and styles hold removed, entities decoded once, white space collapsed, control
    characters dropped. HTML-escaped text comes back as the text that was escaped. Only text
    with tags is parsed (lxml); entities alone are decoded as they are."""
    if "<" in value:
        value = _markup_text(value)
    elif "&" in value:
        value = html.unescape(value)
    return " ".join(_CONTROL.sub("", value).split())


def _markup_text(value: str) -> str:
    """The text a reader sees in an HTML fragment, blocks a space apart."""
    root = etree.fromstring(f"<div>{_CONTROL.sub('', value)}</div>", _HTML_PARSER)
    if root is None:  # not seen (the wrapper always parses); never let the tags through
        return ""
    parts: list[str] = []
    walk = etree.iterwalk(root, events=("start", "end"))
    for event, element in walk:
        if event == "start":
            if element.tag in _HIDDEN:
                walk.skip_subtree()  # its "end" still comes, with its tail
                continue
            if element.tag in _BLOCKS:
                parts.append(" ")
            parts.append(element.text or "")
        else:
            if element.tag in _BLOCKS:
                parts.append(" ")
            parts.append(element.tail or "")
    return "".join(parts)


def _feed_text(value: Any) -> str | None:
    return feed_text(value) or None if isinstance(value, str) else None


def _seconds(value: Any) -> float | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if 0 < number < float("inf") else None


def feed_min_interval(feed: Any) -> float | None:
    """What the feed asks: RSS 2.0 ``ttl`` (minutes), or ``sy:updatePeriod`` / ``sy:updateFrequency``."""
    asked: list[float] = []
    ttl = _seconds(feed.get("ttl"))
    if ttl is not None:
        asked.append(ttl * 60)
    period = SY_PERIODS.get(str(feed.get("sy_updateperiod") or "").strip().lower())
    if period is not None:
        frequency = _seconds(feed.get("sy_updatefrequency")) or 1.0
        asked.append(period / max(frequency, 1.0))
    asked = [seconds for seconds in asked if math.isfinite(seconds)]  # a ttl of 1e307 minutes
    return max(asked) if asked else None


#: RSS 0.9x/2.0, RSS 1.0, RSS 0.90, Atom 1.0 and Atom 0.3 items, as lxml names them.
_ITEM_TAGS = frozenset(
    {
        "item",
        "{http://purl.org/rss/1.0/}item",
        "{http://my.netscape.com/rdf/simple/0.9/}item",
        "{http://www.w3.org/2005/Atom}entry",
        "{http://purl.org/atom/ns#}entry",
    }
)
#: Reads feeds to tell their items apart: nothing fetched, no entity expanded (bodies that declare
#: entities never get here), libxml2's default depth and size limits.
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

ItemEntries = Mapping[str, tuple[FeedEntry, ...]]


def _feed_items(body: bytes) -> list[tuple[str, Any]] | None:
    """The RSS/Atom items of a well-formed feed, in order, each with a digest of its XML and of
    what around it could change how it reads (the root's and the channel's attributes, such as
    ``xml:base``, and namespaces); None for a body lxml cannot read as XML."""
    try:
        root = etree.fromstring(body, _XML_PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None
    channel = root.find("channel") if root.tag == "rss" else root
    if channel is None:
        return None
    context = repr(
        (
            root.tag,
            sorted(root.attrib.items()),
            sorted(channel.attrib.items()),
            sorted(root.nsmap.items(), key=str),
        )
    )
    return [
        (stable_id(context, etree.tostring(child, encoding="unicode")), child)
        for child in channel
        if child.tag in _ITEM_TAGS
    ]


def _parse_with_feedparser(body: bytes, previous: ItemEntries | None = None) -> ParsedFeed:
    items = _feed_items(body)
    if items and previous and any(key in previous for key, _ in items):
        feed = _parse_new_items(items, previous)
        if feed is not None:
            return feed
    parsed, problem = _feedparser(body)
    per_item = [_entry(entry) for entry in parsed.entries]
    keys = [key for key, _ in items or ()]
    remembered: dict[str, tuple[FeedEntry, ...]] = {}
    if problem is None and len(keys) == len(per_item) == len(set(keys)):
        remembered = dict(zip(keys, per_item, strict=True))
    return _parsed_feed(parsed, problem, [entry for found in per_item for entry in found], remembered)


def _parse_new_items(items: list[tuple[str, Any]], previous: ItemEntries) -> ParsedFeed | None:
    """The feed read from its new items only (and its channel), the others as ``previous`` has
    them; None where that might differ from reading it whole."""
    keys = [key for key, _ in items]
    if len(set(keys)) != len(keys):
        return None
    new = []
    for key, element in items:
        if key in previous:
            element.getparent().remove(element)
        else:
            new.append(key)
    reduced = etree.tostring(items[0][1].getroottree(), encoding="utf-8", xml_declaration=True)
    try:
        parsed, problem = _feedparser(reduced)
    except FeedFormatError:
        return None
    if problem is not None or len(parsed.entries) != len(new):
        return None
    fresh = dict(zip(new, map(_entry, parsed.entries), strict=True))
    remembered = {key: fresh[key] if key in fresh else previous[key] for key in keys}
    return _parsed_feed(parsed, None, [entry for key in keys for entry in remembered[key]], remembered)


def _feedparser(body: bytes) -> tuple[Any, Exception | None]:
    """feedparser's reading of an RSS/Atom body, and what was wrong with it if it was malformed."""
    try:
        # Only the text of titles and summaries is kept (feed_text), so feedparser's cleaning of
        # their HTML (sanitising, resolving its links) would be wasted: ~40 % of its time on a
        # feed with HTML summaries (benchmarks/RESULTS.md).
        parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    except Exception as exc:  # its tolerant parser is not always: ``&#x110000;`` raises ValueError
        reason = f"{type(exc).__name__}: {exc}"
        raise FeedFormatError(f"malformed feed: the feed parser failed ({reason})") from exc
    problem = parsed.get("bozo_exception") if parsed.bozo else None
    if isinstance(problem, HARMLESS_FEED_ERRORS):
        problem = None
    if problem is not None and not parsed.entries:
        raise FeedFormatError(f"malformed feed: {problem}")
    if not parsed.get("version") and not parsed.entries:
        raise FeedFormatError("not a feed: no RSS, Atom, JSON Feed or sitemap found")
    return parsed, problem


def _entry(entry: Any) -> tuple[FeedEntry, ...]:
    """An entry as feedparser read it, as wirewatch keeps it: none without a link."""
    link = _text(entry.get("link"))
    if link is None:
        return ()
    return (
        FeedEntry(
            link=link,
            title=_feed_text(entry.get("title")),
            summary=_feed_text(entry.get("summary")),
            author=_feed_text(entry.get("author")),
            published=entry_published(entry),
        ),
    )


def _parsed_feed(
    parsed: Any,
    problem: Exception | None,
    entries: list[FeedEntry],
    item_entries: dict[str, tuple[FeedEntry, ...]],
) -> ParsedFeed:
    version = str(parsed.get("version") or "")
    meta = parsed.get("feed") or {}
    return ParsedFeed(
        format="atom" if version.startswith("atom") else "rss",
        version=version or "unknown",
        title=_feed_text(meta.get("title")),
        language=_text(meta.get("language")),
        entries=entries,
        min_interval=feed_min_interval(meta),
        problem=(
            f"malformed feed ({len(parsed.entries)} entries recovered): {problem}"
            if problem is not None
            else None
        ),
        item_entries=item_entries,
    )


# --- JSON Feed ------------------------------------------------------------------------------------


class _JsonFeedAuthor(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    name: str | None = None
    url: str | None = None


class _JsonFeedItem(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    id: str | int  # a string in the spec; 1.0 feeds in the wild use numbers
    url: str | None = None
    external_url: str | None = None
    title: str | None = None
    summary: str | None = None
    content_html: str | None = None
    content_text: str | None = None
    date_published: datetime | None = None
    date_modified: datetime | None = None
    author: _JsonFeedAuthor | None = None  # 1.0
    authors: list[_JsonFeedAuthor] | None = None  # 1.1
    language: str | None = None  # 1.1


class _JsonFeed(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    version: Literal["https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1"]
    title: str
    home_page_url: str | None = None
    feed_url: str | None = None
    language: str | None = None
    items: list[_JsonFeedItem] = Field(max_length=1_000_000)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _validation_summary(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "document"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - 3
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def parse_json_feed(body: bytes) -> ParsedFeed:
    """A JSON Feed 1.0 or 1.1 document, validated strictly (types, required fields, version)."""
    try:
        feed = _JsonFeed.model_validate_json(body)
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise FeedFormatError(f"malformed JSON Feed: invalid JSON: {exc.errors()[0]['msg']}") from exc
        raise FeedFormatError(f"malformed JSON Feed: {_validation_summary(exc)}") from exc
    entries = []
    for item in feed.items:
        link = (item.url or item.external_url or "").strip()
        if not link:
            continue
        authors = item.authors or ([item.author] if item.author else [])
        names = [a.name for a in authors if a.name]
        entries.append(
            FeedEntry(
                link=link,
                title=_text(item.title),
                summary=_text(item.summary),
                author=", ".join(names) or None,
                published=_aware(item.date_published or item.date_modified),
                language=item.language,
            )
        )
    return ParsedFeed(
        format="json-feed",
        version="1.1" if feed.version.endswith("1.1") else "1.0",
        title=_text(feed.title),
        language=feed.language,
        entries=entries,
    )
