"""A loopback news site for tests: RSS feeds and article pages that a test can change live.

The articles are written for this test suite (see ``ARTICLES``).
"""

from __future__ import annotations

import html
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Longest a POST to a hanging path waits before its 503.
HANG_SECONDS = 30.0


@dataclass(frozen=True)
class Story:
    slug: str
    title: str
    language: str
    published: datetime | None  # None: an undated page (and feed item)
    paragraphs: tuple[str, ...]
    author: str = "Staff reporter"


@dataclass
class Route:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Received:
    """A POST the site received (it doubles as the alerts' webhook receiver)."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class NewsSite:
    """Serves ``/<outlet>/rss.xml`` and ``/<outlet>/<slug>.html``; add stories while it runs.
    Every POST is answered 200 and kept in ``posts`` (a webhook receiver for alerts); a POST to a
    path in ``refusing`` is answered 503 and kept in ``refused`` instead (a receiver that is down);
    a POST to a path in ``hanging`` is kept in ``refused`` and answered 503 only once the path
    leaves ``hanging`` (or after ``HANG_SECONDS``): a receiver that takes the request and stalls."""

    server: ThreadingHTTPServer
    posts: list[Received] = field(default_factory=list)
    refused: list[Received] = field(default_factory=list)
    refusing: set[str] = field(default_factory=set)
    hanging: set[str] = field(default_factory=set)
    routes: dict[str, Route] = field(default_factory=dict)
    feeds: dict[str, list[tuple[Story, str]]] = field(default_factory=dict)
    outlet_names: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls) -> NewsSite:
        site: NewsSite

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with site.lock:
                    route = site.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404)
                    return
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                deadline = time.monotonic() + HANG_SECONDS
                stalled = False
                while self.path in site.hanging and time.monotonic() < deadline:
                    stalled = True
                    time.sleep(0.05)
                with site.lock:
                    down = stalled or self.path in site.refusing
                    kept = site.refused if down else site.posts
                    kept.append(Received(self.path, dict(self.headers.items()), body))
                self.send_response(503 if down else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        site = cls(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return site

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def feed_url(self, outlet: str) -> str:
        return f"{self.url}/{outlet}/rss.xml"

    def add_outlet(self, outlet: str, name: str) -> str:
        self.outlet_names[outlet] = name
        self.feeds.setdefault(outlet, [])
        self._render_feed(outlet)
        return self.feed_url(outlet)

    def publish(self, outlet: str, story: Story, *, link: str | None = None) -> str:
        """Put ``story`` on ``outlet``'s page and at the top of its feed; returns its URL.

        ``link`` makes the feed item point elsewhere (e.g. to an unreachable URL)."""
        url = f"{self.url}/{outlet}/{story.slug}.html"
        with self.lock:
            self.routes[f"/{outlet}/{story.slug}.html"] = Route(
                200, "text/html; charset=utf-8", render_page(story, self.outlet_names[outlet], url).encode()
            )
        self.feeds[outlet].insert(0, (story, link or url))
        self._render_feed(outlet)
        return link or url

    def posted(self, path: str, *, refused: bool = False) -> list[Received]:
        """POSTs to ``path`` answered 200 (or, with ``refused``, 503)."""
        with self.lock:
            return [p for p in (self.refused if refused else self.posts) if p.path == path]

    def serve(self, path: str, body: bytes, content_type: str = "application/xml", status: int = 200) -> str:
        with self.lock:
            self.routes[path] = Route(status, content_type, body)
        return self.url + path

    def _render_feed(self, outlet: str) -> None:
        items = "".join(
            f"<item><title>{html.escape(story.title)}</title><link>{html.escape(link)}</link>"
            f"<guid>{html.escape(link)}</guid>"
            + (f"<pubDate>{format_datetime(story.published)}</pubDate>" if story.published else "")
            + f"<description>{html.escape(story.paragraphs[0][:120])}</description></item>"
            for story, link in self.feeds[outlet]
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>{html.escape(self.outlet_names[outlet])}</title><link>{self.url}/{outlet}/</link>"
            f"<description>Test outlet</description>{items}</channel></rss>"
        )
        with self.lock:
            self.routes[f"/{outlet}/rss.xml"] = Route(
                200, "application/rss+xml; charset=utf-8", body.encode()
            )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def render_page(story: Story, outlet_name: str, url: str) -> str:
    """The article page; a story without a title has no headline, like a bare text dump."""
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in story.paragraphs)
    title = f"<title>{html.escape(story.title)} | {html.escape(outlet_name)}</title>" if story.title else ""
    headline = f"<h1>{html.escape(story.title)}</h1>" if story.title else ""
    when = story.published.isoformat() if story.published else ""
    dated = f'<meta property="article:published_time" content="{when}">' if when else ""
    return f"""<!DOCTYPE html>
<html lang="{story.language}"><head><meta charset="utf-8">
{title}
<meta property="og:site_name" content="{html.escape(outlet_name)}">
{dated}
<meta name="author" content="{html.escape(story.author)}">
<link rel="canonical" href="{html.escape(url)}">
</head><body>
<header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav></header>
<main><article>{headline}{paragraphs}</article></main>
<footer><p>All rights reserved. Subscribe to our newsletter.</p></footer>
</body></html>"""
