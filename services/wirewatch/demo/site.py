"""The demo news site behind ``wirewatch up --demo``: fictional outlets on a loopback HTTP server.

The content (``site/articles.json``, package data) is original, fictional news: four stories told by
five outlets in French and English, including a wire dispatch republished word for word by a second
outlet (:data:`EXACT_DUPLICATE`), a rewrite that copies paragraphs of that dispatch
(:data:`REWRITE`), and one event reported in both languages (:data:`TRANSLATION_PAIR`).

Routes, all ``GET``/``HEAD``:

* ``/`` — index page linking every feed;
* ``/<outlet>/`` — the outlet's front page;
* ``/<outlet>/rss.xml`` — RSS 2.0 feed of the outlet;
* ``/<outlet>/<article>.html`` — a full article page (navigation, sidebar, footer and all);
* anything else — 404.

With ``release_interval`` set, articles appear one after another (in publication order) so that the
pipeline has something new to pick up on each poll. Standard library only, apart from wirewatch's
feeds file module for :func:`write_feeds_file`.

Run it by hand with ``python -m wirewatch.demo.site``.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import math
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

if TYPE_CHECKING:
    from wirewatch.core.models import Feed

#: Poll interval (seconds) written to the demo feeds file.
DEMO_FEED_INTERVAL = 10
#: Articles visible from the start when ``release_interval`` is set.
INITIAL_RELEASE = 2

ArticleKey = tuple[str, str]
"""(outlet slug, article slug): an article's identity on the demo site."""

#: A Global Wire dispatch and the Harbour Gazette copy of it: same text, another URL.
EXACT_DUPLICATE: tuple[ArticleKey, ArticleKey] = (
    ("global-wire", "voltera-battery-plant-dunkirk"),
    ("harbour-gazette", "voltera-battery-plant-dunkirk"),
)
#: (dispatch, rewrite): the Northern Ledger piece adds its own introduction and ending around
#: four paragraphs copied verbatim from the dispatch.
REWRITE: tuple[ArticleKey, ArticleKey] = (
    ("global-wire", "voltera-battery-plant-dunkirk"),
    ("northern-ledger", "dunkirk-gigafactory-europe-battery-race"),
)
#: The same event (Loire floods, 9 March) reported in French and in English.
TRANSLATION_PAIR: tuple[ArticleKey, ArticleKey] = (
    ("courrier-du-matin", "crue-loire-evacuations-indre-et-loire"),
    ("northern-ledger", "loire-floods-thousands-evacuated-tours"),
)


class DemoContentError(ValueError):
    """The bundled demo content is malformed."""


@dataclass(frozen=True)
class Outlet:
    slug: str
    name: str
    language: str


@dataclass(frozen=True)
class DemoArticle:
    slug: str
    outlet: str
    title: str
    published: datetime
    author: str
    summary: str
    paragraphs: tuple[str, ...]

    @property
    def key(self) -> ArticleKey:
        return (self.outlet, self.slug)

    @property
    def path(self) -> str:
        """URL path of the article page on the demo site."""
        return f"/{self.outlet}/{self.slug}.html"


@dataclass(frozen=True)
class DemoContent:
    """Outlets and articles; ``articles`` is sorted by publication time (oldest first)."""

    outlets: tuple[Outlet, ...]
    articles: tuple[DemoArticle, ...]

    def outlet(self, slug: str) -> Outlet | None:
        return next((o for o in self.outlets if o.slug == slug), None)

    def article(self, key: ArticleKey) -> DemoArticle | None:
        return next((a for a in self.articles if a.key == key), None)

    def moved_to(self, now: datetime) -> DemoContent:
        """The same content with every publication moved by one whole number of days, so that
        the newest article is published on or before ``now``, less than a day before it.

        The stories then happen this week, as news does: ``wirewatch events`` (last 7 days) and
        ``--since now-2d`` find them. Gaps between articles and their times of day are kept, so
        copies, events and their growth come out as with the original dates."""
        if not self.articles:
            return self
        days = (now - self.articles[-1].published) // timedelta(days=1)
        shift = timedelta(days=days)
        return replace(self, articles=tuple(replace(a, published=a.published + shift) for a in self.articles))


def _field(entry: Any, key: str, where: str) -> str:
    value = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise DemoContentError(f"{where}: '{key}' must be a non-empty string")
    return value


def parse_content(data: Any) -> DemoContent:
    """Validate the JSON document described in the module docstring."""
    if not isinstance(data, dict):
        raise DemoContentError("demo content must be a JSON object")
    raw_outlets, raw_articles = data.get("outlets"), data.get("articles")
    if not isinstance(raw_outlets, list) or not isinstance(raw_articles, list):
        raise DemoContentError("demo content needs 'outlets' and 'articles' lists")
    outlets = tuple(
        Outlet(
            slug=_field(o, "slug", f"outlet #{n}"),
            name=_field(o, "name", f"outlet #{n}"),
            language=_field(o, "language", f"outlet #{n}"),
        )
        for n, o in enumerate(raw_outlets, 1)
    )
    slugs = {o.slug for o in outlets}
    if len(slugs) != len(outlets):
        raise DemoContentError("duplicate outlet slug")
    articles: list[DemoArticle] = []
    for n, entry in enumerate(raw_articles, 1):
        where = f"article #{n}"
        outlet = _field(entry, "outlet", where)
        if outlet not in slugs:
            raise DemoContentError(f"{where}: unknown outlet {outlet!r}")
        try:
            published = datetime.fromisoformat(_field(entry, "published", where))
        except ValueError as exc:
            raise DemoContentError(f"{where}: bad 'published': {exc}") from exc
        if published.tzinfo is None:
            raise DemoContentError(f"{where}: 'published' needs a timezone")
        paragraphs = entry.get("paragraphs")
        if (
            not isinstance(paragraphs, list)
            or not paragraphs
            or not all(isinstance(p, str) and p.strip() for p in paragraphs)
        ):
            raise DemoContentError(f"{where}: 'paragraphs' must be a non-empty list of strings")
        articles.append(
            DemoArticle(
                slug=_field(entry, "slug", where),
                outlet=outlet,
                title=_field(entry, "title", where),
                published=published,
                author=_field(entry, "author", where),
                summary=_field(entry, "summary", where),
                paragraphs=tuple(paragraphs),
            )
        )
    if len({a.key for a in articles}) != len(articles):
        raise DemoContentError("duplicate article slug within an outlet")
    articles.sort(key=lambda a: (a.published, a.outlet, a.slug))
    return DemoContent(outlets=outlets, articles=tuple(articles))


@cache
def load_content() -> DemoContent:
    """The bundled demo content (package data ``wirewatch/demo/site/articles.json``)."""
    resource = files("wirewatch.demo") / "site" / "articles.json"
    return parse_content(json.loads(resource.read_text(encoding="utf-8")))


def content_of_this_week() -> DemoContent:
    """The bundled content dated this week (its own dates are in March 2026): what the demo serves
    from ``wirewatch up --demo`` and ``python -m wirewatch.demo.site``."""
    return load_content().moved_to(datetime.now(UTC))


# --------------------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class _Labels:
    sections: tuple[str, ...]
    home: str
    by: str
    related: str
    newsletter: str
    newsletter_pitch: str
    subscribe: str
    email_placeholder: str
    rights: str
    legal: tuple[str, ...]
    cookies: str
    accept: str
    latest: str
    feed_description: str
    months: tuple[str, ...]
    locale: str


_LABELS: dict[str, _Labels] = {
    "fr": _Labels(
        sections=("À la une", "France", "International", "Économie", "Sciences", "Culture", "Sports"),
        home="Accueil",
        by="Par",
        related="À lire aussi",
        newsletter="La lettre du matin",
        newsletter_pitch=(
            "Abonnez-vous à notre newsletter : l'essentiel de l'actualité chaque matin à 7 heures."
        ),
        subscribe="Je m'abonne",
        email_placeholder="Votre adresse e-mail",
        rights="Tous droits réservés",
        legal=(
            "Mentions légales",
            "Politique de confidentialité",
            "Gestion des cookies",
            "Contact",
            "Publicité",
        ),
        cookies="Nous utilisons des cookies pour mesurer l'audience et personnaliser les publicités.",
        accept="Accepter",
        latest="Dernières informations",
        feed_description="Toute l'actualité en continu",
        months=(
            "janvier",
            "février",
            "mars",
            "avril",
            "mai",
            "juin",
            "juillet",
            "août",
            "septembre",
            "octobre",
            "novembre",
            "décembre",
        ),
        locale="fr_FR",
    ),
    "en": _Labels(
        sections=("Home", "World", "Business", "Politics", "Science", "Culture", "Sport"),
        home="Home",
        by="By",
        related="Related stories",
        newsletter="The Morning Briefing",
        newsletter_pitch="Subscribe to our newsletter: the day's essential news in your inbox at 7am.",
        subscribe="Sign up",
        email_placeholder="Your email address",
        rights="All rights reserved",
        legal=("Terms of use", "Privacy policy", "Cookie settings", "Contact us", "Advertise"),
        cookies="We use cookies to measure our audience and personalise advertising.",
        accept="Accept",
        latest="Latest news",
        feed_description="The latest news as it happens",
        months=(
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ),
        locale="en_GB",
    ),
}


def _labels(language: str) -> _Labels:
    return _LABELS.get(language, _LABELS["en"])


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _human_date(when: datetime, language: str) -> str:
    month = _labels(language).months[when.month - 1]
    if language == "fr":
        day = "1er" if when.day == 1 else str(when.day)
        return f"{day} {month} {when.year} à {when.hour} h {when.minute:02d}"
    offset = when.utcoffset()
    zone = "GMT" if not offset else when.strftime("UTC%z")
    return f"{when.day} {month} {when.year}, {when:%H:%M} {zone}"


_STYLE = """
body{font-family:Georgia,serif;margin:0;color:#222;background:#fafafa}
.site-header,.site-footer{background:#1d2b3a;color:#eee;padding:1em 2em}
.site-header a,.site-footer a{color:#eee}
.site-header nav ul,.site-footer ul{list-style:none;margin:0;padding:0;display:flex;gap:1.2em;flex-wrap:wrap}
.logo{font-size:1.8em;font-weight:bold;text-decoration:none}
.layout{display:flex;gap:3em;max-width:1100px;margin:2em auto;padding:0 1em}
article{flex:3;line-height:1.6}
.standfirst{font-size:1.2em;color:#444}
.byline{color:#666;font-size:.9em}
.sidebar{flex:1;border-left:1px solid #ddd;padding-left:1.5em;font-size:.9em}
.cookie-banner{background:#ffe;padding:.5em 2em;font-size:.85em}
""".strip()


def _page(*, language: str, title: str, head: str, outlet: Outlet | None, main: str) -> str:
    """A complete HTML document: header with navigation, ``main`` content, footer boilerplate."""
    labels = _labels(language)
    if outlet is None:
        header = '<header class="site-header"><a class="logo" href="/">wirewatch demo</a></header>'
        footer = '<footer class="site-footer"><p>wirewatch demo site: fictional news.</p></footer>'
    else:
        home = f"/{outlet.slug}/"
        nav = "".join(f'<li><a href="{_e(home)}">{_e(section)}</a></li>' for section in labels.sections)
        legal = "".join(f'<li><a href="{_e(home)}">{_e(item)}</a></li>' for item in labels.legal)
        header = (
            f'<div class="cookie-banner" role="dialog"><p>{_e(labels.cookies)} '
            f'<button type="button">{_e(labels.accept)}</button></p></div>\n'
            f'<header class="site-header"><a class="logo" href="{_e(home)}">{_e(outlet.name)}</a>\n'
            f'<nav aria-label="sections"><ul>{nav}</ul></nav></header>'
        )
        footer = (
            f'<footer class="site-footer">\n<p class="newsletter">{_e(labels.newsletter_pitch)}</p>\n'
            f'<ul class="legal">{legal}</ul>\n'
            f'<p class="copyright">© 2026 {_e(outlet.name)} — {_e(labels.rights)}</p>\n</footer>'
        )
    return (
        f'<!DOCTYPE html>\n<html lang="{_e(language)}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n{head}<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"{header}\n{main}\n{footer}\n</body>\n</html>\n"
    )


def _json_ld(data: dict[str, Any]) -> str:
    # "<", ">" and "&" as JSON escapes: the script element can never be closed early.
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render_article(
    article: DemoArticle, outlet: Outlet, base_url: str, related: Iterable[DemoArticle]
) -> str:
    """The full HTML page of one article; ``related`` fills the sidebar."""
    labels = _labels(outlet.language)
    url = base_url + article.path
    iso = article.published.isoformat()
    ld = _json_ld(
        {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": article.title,
            "description": article.summary,
            "datePublished": iso,
            "inLanguage": outlet.language,
            "author": {"@type": "Person", "name": article.author},
            "publisher": {"@type": "Organization", "name": outlet.name},
            "mainEntityOfPage": url,
        }
    )
    head = (
        f'<meta name="description" content="{_e(article.summary)}">\n'
        f'<meta name="author" content="{_e(article.author)}">\n'
        f'<meta property="og:site_name" content="{_e(outlet.name)}">\n'
        f'<meta property="og:type" content="article">\n'
        f'<meta property="og:title" content="{_e(article.title)}">\n'
        f'<meta property="og:description" content="{_e(article.summary)}">\n'
        f'<meta property="og:url" content="{_e(url)}">\n'
        f'<meta property="og:locale" content="{_e(labels.locale)}">\n'
        f'<meta property="article:published_time" content="{_e(iso)}">\n'
        f'<meta property="article:author" content="{_e(article.author)}">\n'
        f'<link rel="canonical" href="{_e(url)}">\n'
        f'<link rel="alternate" type="application/rss+xml" title="{_e(outlet.name)}" '
        f'href="{_e(f"{base_url}/{outlet.slug}/rss.xml")}">\n'
        f'<script type="application/ld+json">{ld}</script>\n'
    )
    body = "\n".join(f"<p>{_e(p)}</p>" for p in article.paragraphs)
    links = "\n".join(f'<li><a href="{_e(other.path)}">{_e(other.title)}</a></li>' for other in related)
    main = (
        f'<main class="layout">\n<article>\n<header>\n<h1>{_e(article.title)}</h1>\n'
        f'<p class="standfirst">{_e(article.summary)}</p>\n'
        f'<p class="byline">{_e(labels.by)} <span class="author">{_e(article.author)}</span> · '
        f'<time datetime="{_e(iso)}">{_e(_human_date(article.published, outlet.language))}</time></p>\n'
        f'</header>\n<div class="article-body">\n{body}\n</div>\n</article>\n'
        f'<aside class="sidebar">\n<section class="related"><h2>{_e(labels.related)}</h2>\n'
        f"<ul>\n{links}\n</ul></section>\n"
        f'<section class="newsletter-box"><h2>{_e(labels.newsletter)}</h2>\n'
        f"<p>{_e(labels.newsletter_pitch)}</p>\n"
        f'<form action="{_e(f"/{outlet.slug}/")}" method="get">'
        f'<input type="email" name="email" placeholder="{_e(labels.email_placeholder)}">'
        f'<button type="submit">{_e(labels.subscribe)}</button></form></section>\n</aside>\n</main>'
    )
    return _page(
        language=outlet.language,
        title=f"{article.title} | {outlet.name}",
        head=head,
        outlet=outlet,
        main=main,
    )


def render_outlet_home(outlet: Outlet, articles: Iterable[DemoArticle]) -> str:
    labels = _labels(outlet.language)
    items = "\n".join(
        f'<li><h2><a href="{_e(a.path)}">{_e(a.title)}</a></h2>\n'
        f'<p><time datetime="{_e(a.published.isoformat())}">{_e(_human_date(a.published, outlet.language))}'
        f"</time> — {_e(a.summary)}</p></li>"
        for a in sorted(articles, key=lambda a: a.published, reverse=True)
    )
    head = (
        f'<meta property="og:site_name" content="{_e(outlet.name)}">\n'
        f'<link rel="alternate" type="application/rss+xml" title="{_e(outlet.name)}" '
        f'href="{_e(f"/{outlet.slug}/rss.xml")}">\n'
    )
    main = (
        f'<main class="layout">\n<section>\n<h1>{_e(labels.latest)}</h1>\n'
        f"<ul>\n{items}\n</ul>\n</section>\n</main>"
    )
    return _page(
        language=outlet.language,
        title=f"{outlet.name} | {labels.latest}",
        head=head,
        outlet=outlet,
        main=main,
    )


def render_index(content: DemoContent, base_url: str) -> str:
    rows = "\n".join(
        f'<li><a href="{_e(f"/{o.slug}/")}">{_e(o.name)}</a> ({_e(o.language)}) — '
        f'<a href="{_e(f"/{o.slug}/rss.xml")}">{_e(f"{base_url}/{o.slug}/rss.xml")}</a></li>'
        for o in content.outlets
    )
    main = (
        '<main class="layout">\n<section>\n<h1>wirewatch demo site</h1>\n'
        "<p>Fictional outlets publishing fictional news: the whole pipeline, offline.</p>\n"
        f"<h2>Feeds</h2>\n<ul>\n{rows}\n</ul>\n</section>\n</main>"
    )
    return _page(language="en", title="wirewatch demo site", head="", outlet=None, main=main)


def render_not_found() -> str:
    main = (
        '<main class="layout"><section><h1>404 — Page not found</h1>'
        '<p><a href="/">Home</a></p></section></main>'
    )
    return _page(language="en", title="Page not found", head="", outlet=None, main=main)


def render_feed(outlet: Outlet, articles: Iterable[DemoArticle], base_url: str) -> str:
    """RSS 2.0 for one outlet, newest item first."""
    labels = _labels(outlet.language)
    ordered = sorted(articles, key=lambda a: a.published, reverse=True)
    feed_url = f"{base_url}/{outlet.slug}/rss.xml"
    items = []
    for a in ordered:
        link = xml_escape(base_url + a.path)
        items.append(
            "<item>\n"
            f"<title>{xml_escape(a.title)}</title>\n<link>{link}</link>\n"
            f'<guid isPermaLink="true">{link}</guid>\n'
            f"<pubDate>{format_datetime(a.published)}</pubDate>\n"
            f"<dc:creator>{xml_escape(a.author)}</dc:creator>\n"
            f"<description>{xml_escape(a.summary)}</description>\n</item>"
        )
    build = f"<lastBuildDate>{format_datetime(ordered[0].published)}</lastBuildDate>\n" if ordered else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">\n<channel>\n'
        f"<title>{xml_escape(outlet.name)}</title>\n"
        f"<link>{xml_escape(f'{base_url}/{outlet.slug}/')}</link>\n"
        f"<description>{xml_escape(f'{outlet.name} — {labels.feed_description}')}</description>\n"
        f"<language>{xml_escape(outlet.language)}</language>\n{build}"
        f'<atom:link href={quoteattr(feed_url)} rel="self" type="application/rss+xml"/>\n'
        + "".join(item + "\n" for item in items)
        + "</channel>\n</rss>\n"
    )


# --------------------------------------------------------------------------------------------------
# Server


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes


_HTML = "text/html; charset=utf-8"
_RSS = "application/rss+xml; charset=utf-8"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    site: DemoSite


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "wirewatch-demo/1.0"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall on keep-alive

    def do_GET(self) -> None:
        self._respond(with_body=True)

    def do_HEAD(self) -> None:
        self._respond(with_body=False)

    def _respond(self, *, with_body: bool) -> None:
        response = self.server.site.handle(self.path)
        etag = '"' + hashlib.sha256(response.body).hexdigest()[:32] + '"'
        if response.status == HTTPStatus.OK and self.headers.get("If-None-Match") == etag:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        if response.status == HTTPStatus.OK:
            self.send_header("ETag", etag)
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if with_body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:  # the demo is quiet
        pass


class DemoSite:
    """The demo site, served from a background thread until :meth:`close`.

    Use ``DemoSite.start()`` (or ``with DemoSite.start() as site:``). ``port=0`` picks a free port;
    :attr:`url` is the base URL. With ``release_interval`` (seconds), only the first
    :data:`INITIAL_RELEASE` articles (in publication order) are visible at first, then one more every
    ``release_interval`` seconds; ``None`` shows everything. ``clock`` is for tests.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        release_interval: float | None = None,
        content: DemoContent | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if release_interval is not None and not release_interval > 0:
            raise ValueError("release_interval must be positive")
        self.content = content if content is not None else load_content()
        self.release_interval = release_interval
        self._clock = clock
        self._started = clock()
        server_class = _Server6 if ":" in host else _Server
        self._server = server_class((host, port), _Handler)
        self._server.site = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="wirewatch-demo-site", daemon=True
        )
        self._thread.start()
        self._closed = False

    @classmethod
    def start(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        release_interval: float | None = None,
        content: DemoContent | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Self:
        """Bind ``host:port`` and start serving in a background thread."""
        return cls(host, port, release_interval=release_interval, content=content, clock=clock)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash: ``http://127.0.0.1:PORT``."""
        return self.url_on(self.port)

    def url_on(self, port: int) -> str:
        """The base URL the site has on ``port`` (had, in an earlier run on another port)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"

    def feed_urls(self, port: int | None = None) -> list[tuple[str, str, str]]:
        """(feed URL, outlet name, language) for each outlet (as they were with the site on
        ``port``, when given)."""
        url = self.url_on(self.port if port is None else port)
        return [(f"{url}/{o.slug}/rss.xml", o.name, o.language) for o in self.content.outlets]

    def article_url(self, article: DemoArticle) -> str:
        return self.url + article.path

    def released(self) -> list[DemoArticle]:
        """Articles published so far, oldest first."""
        if self.release_interval is None:
            return list(self.content.articles)
        # Whole intervals only: exactly INITIAL_RELEASE articles until the first interval has passed.
        limit = INITIAL_RELEASE + math.floor((self._clock() - self._started) / self.release_interval)
        return list(self.content.articles[: max(limit, 0)])

    def handle(self, raw_path: str) -> Response:
        """Route one request path (query and fragment ignored) to a response."""
        path = unquote(urlsplit(raw_path).path)
        if path in ("/", "/index.html"):
            return Response(HTTPStatus.OK, _HTML, render_index(self.content, self.url).encode())
        parts = path.strip("/").split("/")
        outlet = self.content.outlet(parts[0])
        if outlet is not None and len(parts) <= 2:
            released = [a for a in self.released() if a.outlet == outlet.slug]
            page = parts[1] if len(parts) == 2 else ""
            if page in ("", "index.html"):
                return Response(HTTPStatus.OK, _HTML, render_outlet_home(outlet, released).encode())
            if page == "rss.xml":
                return Response(HTTPStatus.OK, _RSS, render_feed(outlet, released, self.url).encode())
            if page.endswith(".html"):
                key = (outlet.slug, page.removesuffix(".html"))
                article = next((a for a in released if a.key == key), None)
                if article is not None:
                    related = [a for a in reversed(released) if a.key != key][:4]
                    body = render_article(article, outlet, self.url, related)
                    return Response(HTTPStatus.OK, _HTML, body.encode())
        return Response(HTTPStatus.NOT_FOUND, _HTML, render_not_found().encode())

    def close(self) -> None:
        """Stop serving and release the port. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DemoSite(url={self.url!r}, release_interval={self.release_interval!r})"


#: The first lines of a demo feeds file :func:`write_feeds_file` creates.
DEMO_FEEDS_HEADER = """\
# The demo site's feeds. `wirewatch up --demo` lists each one again at every start (at the
# site's address then) and keeps the rest of this file: add your own with `wirewatch feeds add`.
"""


def write_feeds_file(
    path: Path,
    site: DemoSite,
    interval: float = DEMO_FEED_INTERVAL,
    *,
    previous_port: int | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[Feed]:
    """List every demo feed in the wirewatch feeds file ``path`` (see :mod:`wirewatch.core.feeds`),
    created when missing; returns the feeds it lists then.

    The file is merged into, never written over: each demo feed not listed is appended, and
    everything else (the feeds an operator added to the running demo with ``wirewatch feeds
    add``, their comments, a demo feed's edited interval) stays. Merging rather than writing the
    file only when it is missing, because the demo's feeds are the demo: a site whose remembered
    port was taken (``previous_port``) serves them at another address, whose URLs replace those of
    the earlier run (each keeping its name, language and interval), and a newer demo's outlets
    are listed too; the price is that a demo feed removed from the file comes back at the next
    start. ``warn`` is told when the file had to be rewritten whole (see :func:`add_feed`).
    Raises :class:`~wirewatch.core.feeds.FeedsFileError` when the file cannot be read."""
    from wirewatch.core.feeds import add_feed, load_feeds, remove_feed

    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(DEMO_FEEDS_HEADER, encoding="utf-8")
    moved: dict[str, Feed] = {}  # new URL -> the earlier run's entry for it
    if previous_port is not None and previous_port != site.port:
        for (old, _, _), (new, _, _) in zip(site.feed_urls(previous_port), site.feed_urls(), strict=True):
            removed = remove_feed(path, old, warn=warn)
            if removed is not None:
                moved[new] = removed
    for url, name, language in site.feed_urls():
        earlier = moved.get(url)
        add_feed(
            path,
            url,
            name=earlier.name if earlier else name,
            language=earlier.language if earlier else language,
            interval=earlier.interval if earlier else interval,
            warn=warn,
        )
    return load_feeds(path)


def main(argv: list[str] | None = None) -> int:
    """Serve the demo site in the foreground until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m wirewatch.demo.site", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--release-interval",
        type=float,
        default=None,
        help="seconds between two newly published articles (default: all at once)",
    )
    parser.add_argument("--feeds-file", type=Path, help="also write a wirewatch feeds file here")
    args = parser.parse_args(argv)
    with DemoSite.start(
        args.host, args.port, release_interval=args.release_interval, content=content_of_this_week()
    ) as site:
        print(f"demo site: {site.url}/")
        for url, name, language in site.feed_urls():
            print(f"  {url}  {name} ({language})")
        if args.feeds_file:
            write_feeds_file(args.feeds_file, site)
            print(f"feeds file: {args.feeds_file}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
