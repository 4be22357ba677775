"""``wirewatch feeds discover URL``: a site's feeds and sitemaps, from its home page and robots.txt.

Both are fetched through :class:`~wirewatch.fetcher.http.HttpFetcher`, so the SSRF guard,
robots.txt, the caps and politeness apply as for any fetch. Reported:

* every ``<link rel="alternate">`` of the home page whose type is RSS, Atom, RDF or JSON Feed
  (relative URLs resolved against the page's URL or its ``<base href>``), with its title;
* every ``Sitemap:`` line of the site's robots.txt.

Nothing found is fetched: the URLs are only listed (and added to the feeds file on request).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import urljoin

import httpx
import lxml.html
from lxml import etree

from wirewatch.core.ids import InvalidURLError, canonical_url
from wirewatch.core.settings import Settings
from wirewatch.fetcher.errors import FetchError, UnsafeURLError
from wirewatch.fetcher.extract import decode_html_bytes
from wirewatch.fetcher.http import HttpFetcher, media_type

Kind = Literal["rss", "atom", "json-feed", "sitemap"]

#: ``<link rel=alternate type=…>`` media types that are feeds, and what they are.
FEED_LINK_TYPES: dict[str, Kind] = {
    "application/rss+xml": "rss",
    "application/rdf+xml": "rss",
    "application/atom+xml": "atom",
    "application/feed+json": "json-feed",
    "application/json": "json-feed",
}


@dataclass(frozen=True)
class Found:
    url: str
    kind: Kind
    title: str | None
    source: Literal["home page", "robots.txt"]


@dataclass
class Discovery:
    site: str
    feeds: list[Found] = field(default_factory=list)
    sitemaps: list[Found] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _usable(url: str) -> str | None:
    try:
        canonical_url(url)
    except InvalidURLError:
        return None
    return url


def feed_links(html: str, page_url: str) -> list[Found]:
    """The feeds a page announces with ``<link rel="alternate" type="…">``, in page order, once each."""
    try:
        tree = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return []
    base = page_url
    for href in tree.xpath("//base/@href")[:1]:
        base = urljoin(page_url, str(href).strip())
    found: list[Found] = []
    seen: set[str] = set()
    for link in tree.iter("link"):
        rel = {token.lower() for token in (link.get("rel") or "").split()}
        kind = FEED_LINK_TYPES.get(media_type(link.get("type")))
        href = (link.get("href") or "").strip()
        if "alternate" not in rel or kind is None or not href:
            continue
        url = _usable(urljoin(base, href))
        if url is None or canonical_url(url) in seen:
            continue
        seen.add(canonical_url(url))
        title = " ".join((link.get("title") or "").split()) or None
        found.append(Found(url, kind, title, "home page"))
    return found


async def discover(http: HttpFetcher, url: str) -> Discovery:
    """Fetch ``url`` (a home page) and its site's robots.txt; list the feeds and sitemaps they name.

    Raises ``UnsafeURLError`` when the SSRF guard refuses the site; other failures are listed in
    ``problems`` and discovery goes on with what could be read."""
    if "://" not in url:
        url = "https://" + url
    result = Discovery(site=url)
    try:
        page = await http.get(url, "article")
    except UnsafeURLError:
        raise
    except FetchError as exc:
        result.problems.append(f"home page: {exc}")
    else:
        result.site = page.url
        result.feeds = feed_links(decode_html_bytes(page.body, page.content_type), page.url)
    try:
        rules = await http.robots.rules(httpx.URL(result.site))
    except FetchError as exc:
        result.problems.append(f"robots.txt: {exc}")
        return result
    if rules.error is not None:
        result.problems.append(f"robots.txt: {rules.error}")
    seen: set[str] = set()
    for sitemap in (rules.parser.site_maps() if rules.parser else None) or []:
        usable = _usable(sitemap.strip())
        if usable is not None and canonical_url(usable) not in seen:
            seen.add(canonical_url(usable))
            result.sitemaps.append(Found(usable, "sitemap", None, "robots.txt"))
    return result


async def discover_site(settings: Settings, url: str) -> Discovery:
    async with HttpFetcher(settings) as http:
        return await discover(http, url)
