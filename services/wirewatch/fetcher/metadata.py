"""Page metadata: trafilatura's own metadata pass, without the fields wirewatch does not keep.

trafilatura's ``extract_metadata`` also looks for categories, tags and a licence on every page.
On the zyte news pages that search is about a fifth of an article's extraction (3.3 of 16 ms),
for fields no wirewatch model has. ``page_metadata`` takes the same steps in the same order for
the fields ``Extracted`` keeps (title, author, date, site name, description, language, URL):
meta tags, then JSON-LD, then the markup, then htmldate. ``tests/test_extraction_metadata.py``
compares it with ``extract_metadata`` field by field, on generated pages and real-looking ones,
so a trafilatura release that changes its steps shows up there.

One step is trafilatura's in effect, not in code: the author search in the markup (meta tags and
JSON-LD name none on 75 of those 181 pages) is ``fetcher.authors.page_author``, which gives what
``extract_author`` gives without copying and pruning the whole tree (1.3 instead of 6-8 ms a page).
"""

from __future__ import annotations

from typing import Any

from htmldate import find_date
from lxml.html import HtmlElement
from trafilatura.metadata import (
    META_URL,
    examine_meta,
    extract_meta_json,
    extract_sitename,
    extract_title,
    extract_url,
)
from trafilatura.settings import Document

from wirewatch.core.logs import get_logger
from wirewatch.fetcher.authors import page_author

log = get_logger(__name__)

#: The ``Document`` fields ``page_metadata`` fills as ``extract_metadata`` does.
KEPT_FIELDS = ("title", "author", "url", "date", "sitename", "description", "language")


def page_metadata(tree: HtmlElement, url: str | None, date_params: dict[str, Any]) -> Document:
    """Title, author, URL, date, site name, description and language of the page ``tree``
    (unchanged: it is only read), as ``trafilatura.metadata.extract_metadata`` finds them."""
    metadata = examine_meta(tree)
    if metadata.author and " " not in metadata.author:
        metadata.author = None  # a one-word author in a meta tag is a handle or a site
    try:
        metadata = extract_meta_json(tree, metadata)
    except Exception as exc:  # trafilatura's JSON-LD reader on broken structured data
        log.debug("JSON-LD metadata not read", extra={"reason": f"{type(exc).__name__}: {exc}"})
    if not metadata.title:
        metadata.title = extract_title(tree)
    if not metadata.author:
        metadata.author = page_author(tree)
    if not metadata.url:
        metadata.url = extract_url(tree, url)
    metadata.date = find_date(tree, **{**date_params, "url": metadata.url})
    if not metadata.sitename:
        metadata.sitename = extract_sitename(tree)
    if metadata.sitename:
        metadata.sitename = metadata.sitename.lstrip("@")  # a Twitter handle
        if metadata.sitename and "." not in metadata.sitename and not metadata.sitename[0].isupper():
            metadata.sitename = metadata.sitename.title()
    elif metadata.url:
        found = META_URL.match(metadata.url)
        if found:
            metadata.sitename = found[1]
    metadata.clean_and_trim()
    return metadata


def declared_sitename(metadata: Document) -> str | None:
    """The site name the page declares (meta tags, JSON-LD, its title's suffix), or None.
    Without one, trafilatura (and ``page_metadata``, which follows it) fills in the host of
    the page's URL: a stand-in, not a name, which would hide a feed's own name
    (``wirewatch feeds add URL --name "Le Monde"``) from the article's ``source``."""
    if not metadata.sitename:
        return None
    stand_in = META_URL.match(metadata.url) if metadata.url else None
    if stand_in is not None and stand_in[1] == metadata.sitename:
        return None
    return str(metadata.sitename)
