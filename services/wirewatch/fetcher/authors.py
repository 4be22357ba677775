"""The author named in a page's markup: trafilatura's ``extract_author``, in one pass over the tree.

``page_metadata`` looks for the author in the markup when neither the meta tags nor JSON-LD name
one (75 of the 181 zyte news pages). trafilatura's ``extract_author`` deep-copies the whole tree,
deletes ``AUTHOR_DISCARD_XPATHS`` from the copy (comment threads, sidebars, dates, figures…), then
tries the three ``AUTHOR_XPATHS`` in turn: the first element, in document order, of the first
expression whose text is 3 to 119 characters long gives the author, cleaned by
``normalize_authors``. libxml2 evaluates each ``//*[…]`` expression at 2-3 µs per element, so on
a news page (~740 elements) the search costs 5-7 ms.

``page_author`` gives the same result without the copy and the XPaths: one walk over the elements
tests tag, ``class``, ``id``, ``itemprop``, ``rel``, ``data-testid`` and ``data-component`` against
what the expressions test (the same regular expressions, which libxml2's ``re:test`` runs with
Python's ``re.search``), and steps over the subtrees the pruning would delete. A candidate's
text is read as it reads in the pruned copy: without its deleted descendants, each of whose tail
text ``delete_element`` glues onto the text before it (no space in between).

What the walk does not model goes to ``extract_author`` itself: the first expression's
``rel='me'`` (an XPath typo that tests a child *element* named ``rel``), entity nodes, and any
trafilatura whose expressions differ from the ones modelled here (``MODELLED``, checked by
``tests/test_fetcher_authors.py``, which compares both functions on written and generated pages).
"""

from __future__ import annotations

import hashlib
import re
from itertools import chain

from lxml import etree
from lxml.html import HtmlElement
from trafilatura.json_metadata import normalize_authors
from trafilatura.metadata import extract_author
from trafilatura.utils import trim
from trafilatura.xpaths import AUTHOR_DISCARD_XPATHS, AUTHOR_XPATHS

#: sha256 of the source of ``AUTHOR_DISCARD_XPATHS`` then ``AUTHOR_XPATHS``, one per line, in the
#: trafilatura (2.3.1) whose expressions this module and its tests are written from.
MODELLED_XPATHS_SHA256 = "29298d1fa7279c607cd343aa1c4a80736b0596b305bfd93ea59b6de61624f264"
#: Whether the installed trafilatura's expressions are those modelled (else: ``extract_author``).
MODELLED = (
    hashlib.sha256("\n".join(x.path for x in [*AUTHOR_DISCARD_XPATHS, *AUTHOR_XPATHS]).encode()).hexdigest()
    == MODELLED_XPATHS_SHA256
)

#: ``extract_metainfo(..., len_limit=120)``: a candidate's trimmed text is kept if 2 < length < 120.
_MAX_LENGTH = 120

# AUTHOR_DISCARD_XPATHS[0]: a, div, section or span (but not the root: ``.//*``) with these
# (its ``@id='comments'`` and ``@class='comments'`` are in the patterns' ``^comments``).
_DISCARD_TAGS = frozenset({"a", "div", "section", "span"})
_DISCARD_CLASSES = frozenset({"title", "date"})
_DISCARD_ID = re.compile(r"^comments|comment-?list|ProductReviews")
_DISCARD_CLASS = re.compile(
    r"^[Cc]omments|commentlist|comments-list|sidebar|is-hidden|quote|embedly-instagram"
    r"|article-(?:share|support)|print|category|meta-date|meta-reviewer"
)
# AUTHOR_DISCARD_XPATHS[1]: every time and figure.
_DISCARD_ANY = frozenset({"time", "figure"})

# AUTHOR_XPATHS[0]: "specific and almost specific", plus every <author> element.
_FIRST_TAGS = frozenset({"a", "address", "div", "link", "p", "span", "strong"})
_FIRST_TEST_IDS = frozenset({"AuthorCard", "AuthorURL"})
_FIRST_CLASS = re.compile(r"author-?name|AuthorName|authorName")
# AUTHOR_XPATHS[1]: "almost generic and generic".
_SECOND_TAGS = frozenset({"a", "div", "h3", "h4", "p", "span"})
_SECOND_CLASSES = frozenset({"byline", "username", "byl", "BBL"})
_SECOND_ID = re.compile(r"author|zuozhe|bianji|xiaobian")
_SECOND_CLASS = re.compile(
    r"author|channel-name|zuozhe|bianji|xiaobian|submitted-by|posted-by|journalist-name"
)
# AUTHOR_XPATHS[2]: "last resort: any element".
_THIRD_ID = re.compile(r"[Aa]uthor")
_THIRD_CLASS = re.compile(r"[Aa]uthor|screenname|writer|[Bb]yline")
# What a class or id any of these patterns finds contains: most elements need one search, not three.
_CLASS_HINT = re.compile(
    r"[Aa]uthor|channel-name|zuozhe|bianji|xiaobian|submitted-by|posted-by|journalist-name"
    r"|screenname|writer|[Bb]yline"
)
_ID_HINT = re.compile(r"[Aa]uthor|zuozhe|bianji|xiaobian")


class _NotModelled(Exception):
    """The page holds something the walk does not reproduce: ask trafilatura."""


def page_author(tree: HtmlElement) -> str | None:
    """The author(s) named in the markup of ``tree`` (only read), as ``extract_author`` finds them."""
    if not MODELLED:
        return extract_author(tree)
    try:
        byline = _byline(tree)
    except _NotModelled:
        return extract_author(tree)
    return normalize_authors(None, byline) if byline else None


def _discarded(element: HtmlElement, tag: str, class_: str, id_: str) -> bool:
    """Whether ``AUTHOR_DISCARD_XPATHS`` select ``element``, not the root (never deleted), with
    these tag, ``class`` and ``id`` ("" when absent, as XPath reads a missing attribute)."""
    if tag in _DISCARD_ANY:
        return True
    if tag not in _DISCARD_TAGS:
        return False
    if id_ and _DISCARD_ID.search(id_):
        return True
    if class_ and (class_ in _DISCARD_CLASSES or _DISCARD_CLASS.search(class_)):
        return True
    return "Figure" in (element.get("data-component") or "")


def _byline(tree: HtmlElement) -> str | None:
    """The text ``extract_metainfo(pruned copy, AUTHOR_XPATHS, len_limit=120)`` returns."""
    second: list[HtmlElement] = []  # candidates of AUTHOR_XPATHS[1], in document order
    third: list[HtmlElement] = []  # and of AUTHOR_XPATHS[2]
    walk = etree.iterwalk(tree, events=("start",))  # elements only, in document order
    for _, element in walk:
        tag = element.tag
        get = element.get
        class_ = get("class") or ""
        id_ = get("id") or ""
        if element is not tree and _discarded(element, tag, class_, id_):
            walk.skip_subtree()
            continue
        if tag == "rel":
            raise _NotModelled  # its parent may match the first expression's ``rel='me'``
        itemprop = get("itemprop") or ""
        hinted_class = bool(class_) and _CLASS_HINT.search(class_) is not None
        hinted_id = bool(id_) and _ID_HINT.search(id_) is not None
        if tag == "author" or (
            tag in _FIRST_TAGS
            and (
                class_ == "author"
                or id_ == "author"
                or itemprop == "author name"
                or (hinted_class and _FIRST_CLASS.search(class_) is not None)
                or get("rel") == "author"
                or get("data-testid") in _FIRST_TEST_IDS
            )
        ):
            text = _pruned_text(element)
            if 2 < len(text) < _MAX_LENGTH:
                # The first expression wins over the others, in document order: unless an element
                # before this one matches only by a ``rel`` child the walk has not reached yet.
                if any(e.find("rel") is not None for e in chain((element,), element.iterancestors())):
                    raise _NotModelled
                return text
        if tag in _SECOND_TAGS and (
            class_ in _SECOND_CLASSES
            or "author" in itemprop
            or (hinted_id and _SECOND_ID.search(id_) is not None)
            or (hinted_class and _SECOND_CLASS.search(class_) is not None)
        ):
            second.append(element)
        if (
            "author" in itemprop
            or (hinted_id and _THIRD_ID.search(id_) is not None)
            or (hinted_class and _THIRD_CLASS.search(class_) is not None)
            or "Byline" in (get("data-component") or "")
        ):
            third.append(element)
    for candidates in (second, third):
        for element in candidates:
            text = _pruned_text(element)
            if 2 < len(text) < _MAX_LENGTH:
                return text
    return None


def _pruned_text(element: HtmlElement) -> str:
    """``trim(" ".join(element.itertext()))`` in the copy the discard expressions were deleted from."""
    chunks: list[str] = []
    _collect_text(element, chunks)
    return trim(" ".join(chunks))


def _collect_text(element: HtmlElement, chunks: list[str]) -> None:
    """Append what ``itertext`` yields for ``element`` (its tail excluded) once pruned. A deleted
    child's tail joins the text before it, the parent's text or the previous sibling's tail, as
    trafilatura's ``delete_element`` does; comments and processing instructions give their tail."""
    slot = element.text  # the text the next deleted child's tail would join
    for child in element:
        tag = child.tag
        if isinstance(tag, str):
            if _discarded(child, tag, child.get("class") or "", child.get("id") or ""):
                if child.tail:
                    slot = (slot or "") + child.tail
                continue
            if slot is not None:
                chunks.append(slot)
            _collect_text(child, chunks)
        elif tag is etree.Entity:
            raise _NotModelled  # itertext gives an entity's own text too
        elif slot is not None:
            chunks.append(slot)
        slot = child.tail
    if slot is not None:
        chunks.append(slot)
