"""``fetcher.authors.page_author``: exactly trafilatura's ``extract_author``, without its tree copy.

The author search is a model of trafilatura's expressions (``AUTHOR_DISCARD_XPATHS``,
``AUTHOR_XPATHS``), so each form they cover is written here once, with the discarded areas, the
nesting and the text lengths that change which element wins; generated pages mix them all.
"""

from __future__ import annotations

import pytest
import trafilatura
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml.html import HtmlElement, fromstring, tostring
from trafilatura.metadata import extract_author

from wirewatch.fetcher import authors
from wirewatch.fetcher.authors import page_author

LONG = "Jane Roe, who has covered the council for the Valley Times since 2009 and writes about its budget"


def document(body: str) -> str:
    return f"<html><head><title>Budget</title></head><body>{body}<p>The council met.</p></body></html>"


#: One page per form the expressions cover, and the cases that decide between them.
PAGES = {
    # AUTHOR_XPATHS[0]
    "rel author": '<a rel="author" href="/jane">Jane Roe</a>',
    "id author": '<div id="author">Jane Roe</div>',
    "class author": '<span class="author">By Jane Roe</span>',
    "itemprop author name": '<span itemprop="author name">Jane Roe</span>',
    "AuthorCard": '<div data-testid="AuthorCard"><strong>Jane Roe</strong> Reporter</div>',
    "AuthorURL": '<a data-testid="AuthorURL" href="/j">jane roe</a>',
    "author-name class": '<p class="article__author-name">Jane Roe</p>',
    "authorName class": '<strong class="c-authorName">Jane Roe &amp; John Doe</strong>',
    "AuthorName class": '<p class="AuthorName">Jane Roe</p>',
    "author element": "<author>Jane Roe</author>",
    "address": '<address class="author">Jane Roe, Valley Times</address>',
    # AUTHOR_XPATHS[1]
    "byline": '<p class="byline">By Jane Roe and John Doe</p>',
    "username": '<h4 class="username">jane_roe</h4>',
    "byl": '<span class="byl">Von Jana Rohr</span>',
    "BBL": '<div class="BBL">Jane Roe | Valley Times</div>',
    "itemprop contains author": '<span itemprop="creator author">Jane Roe</span>',
    "zuozhe id": '<div id="zuozhe">Li Wei</div>',
    "posted-by class": '<span class="meta posted-by">Posted by Jane Roe</span>',
    "journalist-name": '<h3 class="journalist-name">Jane Roe</h3>',
    # AUTHOR_XPATHS[2]
    "writer on any tag": '<li class="writer">Jane Roe</li>',
    "Byline component": '<td data-component="Byline">Jane Roe</td>',
    "Author id": "<section id='Author-box'><b>Jane Roe</b></section>",
    "screenname": '<em class="screenname">@jroe Jane Roe</em>',
    "Byline class": '<header class="ArticleByline">By Jane Roe</header>',
    # order: the first expression wins over an earlier element of a later one
    "first expression wins": '<li class="writer">Pat Doe</li><span class="author">Jane Roe</span>',
    "second before third": '<li class="writer">Pat Doe</li><div class="username">Jane Roe</div>',
    "document order within one": '<p class="byline">Pat Doe</p><div class="byline">Jane Roe</div>',
    # lengths: 3 to 119 characters, else the next candidate
    "too short": '<span class="author">Al</span><p class="byline">Jane Roe</p>',
    "just long enough": '<span class="author">Ali</span>',
    "too long": f'<span class="author">{LONG} {LONG}</span><li class="writer">Jane Roe</li>',
    "whitespace only": '<span class="author">  \n </span><li class="writer">Jane Roe</li>',
    # discarded areas: not searched
    "in comments": (
        '<div class="comments"><span class="author">Ann Doe</span></div><li class="writer">Jane Roe</li>'
    ),
    "in comment list": '<section id="comment-list"><a rel="author">Commenter</a></section>',
    "in sidebar": '<aside><div class="widget sidebar"><p class="byline">Other Person</p></div></aside>',
    "in figure": '<figure><figcaption class="author">Photo: Pat Doe</figcaption></figure>',
    "in quote": '<div class="pullquote"><span class="author">Winston Churchill</span></div>',
    "Figure component": '<div data-component="FigureBlock"><span class="author">Pat Doe</span></div>',
    "discarded itself": '<span class="author date">May 5</span><span class="author">Jane Roe</span>',
    "title class is discarded": '<div class="title"><span class="byline">Jane Roe</span></div>',
    "a time is discarded": '<time class="author">Jane Roe</time>',
    # nested: deleted descendants, whose tail joins the text before it
    "time inside byline": '<p class="byline">By <time>May 5, 2024</time> Jane Roe</p>',
    "glued tail": '<p class="byline">By<time>May 5</time>Jane Roe</p>',
    "glued to sibling tail": '<p class="byline"><b>By</b>Jane<span class="date">5 May</span>Roe</p>',
    "deleted first child": '<div class="author"><time>today</time>Jane Roe</div>',
    "two deleted in a row": '<div class="author">Ja<time>1</time><figure>2</figure>ne Roe</div>',
    "deleted then long": f'<div class="author"><span class="category">News</span>{LONG} and more</div>',
    "deletion makes it short": '<div class="author">Al<time>5 May 2024, 10:00 and more</time></div>',
    "nested candidates": '<div class="author-box"><span class="author-name">Jane Roe</span></div>',
    # normalised afterwards: no author although a later candidate has one
    "an e-mail": '<span class="author">jane@valley.example</span><p class="byline">Jane Roe</p>',
    "a link": '<span class="author">https://valley.example/jane</span>',
    "no author": "<div class='content'><p>Nobody signs this.</p></div>",
}
#: Pages the walk hands to ``extract_author`` (the ``rel='me'`` child element).
FALLBACK_PAGES = {
    "rel child": "<div><rel>me</rel> Jane Roe</div>",
    "rel child after a match": '<div><span class="author">Pat Doe</span><rel>me</rel></div>',
    "rel child elsewhere": '<span class="author">Jane Roe</span><div><rel>me</rel></div>',
}


def assert_same(tree: HtmlElement) -> None:
    before = tostring(tree)
    assert page_author(tree) == extract_author(tree)
    assert tostring(tree) == before  # only read


@pytest.mark.parametrize("body", PAGES.values(), ids=PAGES.keys())
def test_each_form_found_as_trafilatura_finds_it(body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = extract_author(trafilatura.load_html(document(body)))
    monkeypatch.setattr(authors, "extract_author", None)  # the walk answers alone
    assert page_author(trafilatura.load_html(document(body))) == expected
    assert page_author(fromstring(f"<div><!-- a comment -->{body}</div>")) == extract_author(
        fromstring(f"<div><!-- a comment -->{body}</div>")
    )


def test_the_forms_give_authors() -> None:
    """The pages above do test something: most find an author, in more than one way."""
    found = {name: page_author(trafilatura.load_html(document(body))) for name, body in PAGES.items()}
    assert found["glued tail"] == "ByJane Roe"  # the deleted time glues "By" and "Jane"
    assert found["first expression wins"] == "Jane Roe"
    assert found["in comments"] == "Jane Roe"
    assert found["an e-mail"] is None and found["no author"] is None
    assert sum(1 for author in found.values() if author) >= 35


@pytest.mark.parametrize("body", FALLBACK_PAGES.values(), ids=FALLBACK_PAGES.keys())
def test_what_the_walk_does_not_model_is_trafilatura_s(body: str) -> None:
    assert_same(trafilatura.load_html(document(body)))


def test_comments_and_entities() -> None:
    """Comments and processing instructions give their tail text; an entity node (which the
    HTML parser does not make) goes to trafilatura."""
    assert_same(fromstring('<div><p class="byline">By<!--x-->Jane<?pi y?>Roe<time>1</time>!</p></div>'))
    tree = fromstring('<div><p class="byline">Jane <b>Roe</b></p></div>')
    tree[0][0].addnext(etree.Entity("amp"))
    assert_same(tree)


def test_the_root_is_never_deleted() -> None:
    """``extract_author`` prunes ``.//*`` (the root's descendants) and ``delete_element`` leaves an
    element without a parent alone: a fragment's root is searched even when it would be pruned."""
    assert_same(fromstring('<div class="sidebar"><span class="author">Jane Roe</span></div>'))
    assert_same(fromstring('<time class="author">Jane Roe</time>'))


def test_the_modelled_expressions_are_trafilatura_s() -> None:
    """A trafilatura release that changes its author expressions makes ``page_author`` call
    ``extract_author`` (correct, not faster) and fails here: re-read its ``xpaths.py``."""
    assert authors.MODELLED


CLASSES = [
    "author", "byline", "Byline", "author-name", "AuthorName", "c-authorName", "post-author",
    "username", "byl", "BBL", "channel-name", "screenname", "writer", "submitted-by", "posted-by",
    "journalist-name", "xiaobian", "comments", "Comments-area", "commentlist", "widget sidebar",
    "title", "date", "is-hidden", "pullquote", "print-only", "category", "meta-date",
    "article-share", "content", "entry",
]  # fmt: skip
IDS = [
    "author",
    "Author-box",
    "authors",
    "comments",
    "comments-1",
    "comment-list",
    "ProductReviews",
    "bianji",
    "x",
]
ATTRIBUTES = st.fixed_dictionaries(
    {},
    optional={
        "class": st.sampled_from(CLASSES),
        "id": st.sampled_from(IDS),
        "itemprop": st.sampled_from(["author", "author name", "name", "creator author"]),
        "rel": st.sampled_from(["author", "me", "nofollow"]),
        "data-testid": st.sampled_from(["AuthorCard", "AuthorURL", "card"]),
        "data-component": st.sampled_from(["Byline", "Figure", "FigureByline", "text"]),
    },
)
TAGS = [
    "a", "address", "div", "link", "p", "span", "strong", "h3", "h4", "section", "li", "b",
    "time", "figure", "author", "header", "rel",
]  # fmt: skip
TEXTS = ["", " ", "By", "by ", "Jane Roe", " and John Doe", "x", "Al", ", Staff Writer ", "@jroe", LONG]


def element(tag: str, attributes: dict[str, str], children: list[str]) -> str:
    attrs = "".join(f' {name}="{value}"' for name, value in attributes.items())
    return f"<{tag}{attrs}>{''.join(children)}</{tag}>"


NODES = st.recursive(
    st.sampled_from([*TEXTS, "<!-- c -->"]),
    lambda children: st.builds(element, st.sampled_from(TAGS), ATTRIBUTES, st.lists(children, max_size=4)),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=st.lists(NODES, max_size=6))
def test_any_page_read_as_trafilatura_reads_it(nodes: list[str]) -> None:
    html = document("".join(nodes))
    assert_same(trafilatura.load_html(html))
    assert_same(fromstring(html))  # comments kept
