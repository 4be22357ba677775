"""The whole pipeline under load: loopback feeds -> fetcher -> enricher -> indexer / alerts -> search.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_pipeline.py ../shared/benchmarks/extraction/zyte-article-extraction \\
        [--articles 500] [--rate 20] [--claims 5000] [--feeds 8]

What it does, in one run:

1. Reads the pages of ``DATA`` (``html/*.html.gz`` or ``*.html`` under it, as saved from news sites,
   or a ``.jsonl`` file of ``{"title", "text"}`` documents, rendered as simple article pages).
2. Starts the local stack as the test suite does (``start_servers``: tansu + osmem-server by
   default), creates topics and indices, puts ``--claims`` tracked claims on the watchlist
   (generated: a few are check-worthy sentences of the pages, so alerts fire; the rest are
   invented claims of the same shape), and runs the four services under the ``Supervisor`` that
   ``wirewatch up`` uses, every feature on, settings at their defaults except what a loopback site
   needs (below).
3. Serves ``--feeds`` RSS feeds, each on its own loopback address (127.0.0.11, .12, ...: one site
   per feed, so the fetcher's per-host limits apply per feed as on the web), and publishes new
   items over time at ``--rate`` articles/s, round-robin over the feeds; each feed lists its
   latest ``--feed-items`` items. ``--rate 0`` offers as fast as the pipeline takes them: a new
   item whenever fewer than ``--window`` published articles are not yet searchable. Article
   ``n`` is page ``n mod pages`` at its own URL: past the number of pages, articles are exact
   copies of earlier ones (the enricher and the alerts do all their work on copies too; event
   linking takes its shortcut).
4. Measures, after ``--warmup`` articles that are not counted and ``--idle`` seconds with nothing
   flowing (each process's idle CPU: polls, timers, heartbeats):
   - *searchable*: the first time a search for the article's URL finds it (polled every 0.25 s,
     no refresh forced: what a user sees); latency from ``fetched_at`` (set by the fetcher after
     extraction, just before producing), from the page's GET (served time, seen by this script)
     and from its publication in the feed; also the article's ``enriched_at`` and its event-link
     record's ``linked_at`` (the indexer links an article to its event after writing it);
   - *alert*: the first time the alerts index shows an alert for it, from its ``fetched_at``;
   - sustained articles/s: searchable articles between the 10 % and 90 % marks of the run over
     the time between them;
   - CPU seconds per service (``/proc/<pid>/stat``, utime + stime of the process and all its
     descendants, e.g. the fetcher's extraction pool, plus reaped children), for the four
     services and the two servers, from the first article published until the stack is quiet
     again (event linking and alerts finish after the last article is searchable); RSS (sum
     over the process tree) when 25/50/75/100 % of the articles are searchable, and peak RSS
     (sum of each process's ``VmHWM``);
   - the indexer's bulk requests during the measurement, by stage (its ``wirewatch_bulk_seconds``
     histogram, read from its ``/metrics`` at the start and when the stack is quiet): how many,
     their mean time, and how many took over 0.5, 1 and 2.5 s (``indexer.events`` is the ordered
     linking stage, where a slow request holds up every report behind it).
   Long runs: ``--unique`` makes every article past the pages a page of its own (sentences of the
   pages remixed, seeded by the article's number), so content state grows as on the web instead of
   stopping at the pages' copies; ``--hours-apart H`` dates article ``n`` in the feeds ``H`` hours
   after article ``n - 1`` (the last one now), so the event window (7 days) and the copies window
   (30 days) expire within the run as they would over months. Latencies still count from the
   item's appearance in its feed. ``--keep-articles K`` deletes all but the K newest articles
   seen from the search index, 500 at a time in one bulk request by id, as an ILM delete phase
   would (osmem-server holds every document in RAM; latencies then carry the harness's cost),
   with their event-link records and the events last seen a linking window (7 days) before the
   newest of them. (tansu has no retention: it keeps every record of a run in memory.)
   Every 30 s a progress line gives each process's RSS, so a long run stopped early keeps it.
   A run of 2,000 articles or more also prints each process's RSS after every tenth of it.
5. Stops the stack, then runs plain ``trafilatura.extract`` (defaults) over the same pages in this
   process, one at a time (CPU time, ``time.process_time``, the fastest of 3 passes), weighted by
   how often each page was served (with ``--unique``: over a sample of up to 300 of the pages
   served): the reference for "whole-pipeline cost per article".

Environment given to the services: ``WIREWATCH_POLL_INTERVAL`` / ``_MIN`` = ``--poll`` (and the same
``interval`` on every feed of the feeds file), ``WIREWATCH_FETCH_ALLOW_HOSTS=127.0.0.0/8``,
``WIREWATCH_FETCH_HOST_DELAY`` = ``--host-delay``, ``WIREWATCH_TABLE_STORE`` = ``--table-store``;
all else default. ``WIREWATCH_COMPUTE_THREADS`` = ``--blas-threads`` (default 1, the services' own
default); 0 gives numpy's OpenBLAS its own default, one thread per core in every service (how the
services shipped before ``compute_threads``): on a loaded 2-core machine those threads spin against
each other (see RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import html as htmlmod
import json
import os
import platform
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import trafilatura
from prometheus_client.parser import text_string_to_metric_families

from wirewatch.alerts.watchlist import new_claim, publish
from wirewatch.core.models import TrackedClaim
from wirewatch.core.settings import SERVICES, Settings
from wirewatch.enricher.claims import extract_claims
from wirewatch.events.linking import LinkerConfig
from wirewatch.fetcher.extract import ExtractionError, decode_html_bytes, extract_article
from wirewatch.local.servers import LocalServers, start_servers
from wirewatch.local.supervisor import Supervisor
from wirewatch.runner import setup

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
FIRST_HOST = 11  # feed f is served on 127.0.0.(FIRST_HOST + f)


# --- pages ---------------------------------------------------------------------------------------


@dataclass
class Page:
    name: str
    body: bytes  # served as is
    html: str  # decoded (extraction reference)
    title: str


def page_title(html: str) -> str:
    found = re.search(r"<title[^>]*>(.*?)</title>", html, re.S | re.I)
    return " ".join(htmlmod.unescape(found.group(1)).split())[:200] if found else ""


def render_document(title: str, text: str) -> str:
    """A plain article page for a text-only document (the layout of tests/newsroom.py)."""
    paragraphs = "".join(f"<p>{htmlmod.escape(p)}</p>" for p in text.split("\n") if p.strip())
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{htmlmod.escape(title)}</title></head><body>"
        '<header><nav><a href="/">Home</a> <a href="/world">World</a></nav></header>'
        f"<main><article><h1>{htmlmod.escape(title)}</h1>{paragraphs}</article></main>"
        "<footer><p>All rights reserved.</p></footer></body></html>"
    )


def read_pages(data: Path, limit: int | None = None) -> list[Page]:
    pages: list[Page] = []
    if data.is_file() and data.suffix == ".jsonl":
        for n, line in enumerate(data.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            doc = json.loads(line)
            text = str(doc.get("text") or "")
            title = str(doc.get("title") or text.split("\n", 1)[0][:120])
            html = render_document(title, text)
            pages.append(Page(f"{data.stem}-{n}", html.encode(), html, title))
    else:
        root = data / "html" if (data / "html").is_dir() else data
        for path in sorted([*root.glob("*.html.gz"), *root.glob("*.html")]):
            body = path.read_bytes()
            if path.suffix == ".gz":
                body = gzip.decompress(body)
            html = decode_html_bytes(body, None)
            pages.append(Page(path.name.split(".")[0], body, html, page_title(html)))
    return pages[:limit]


# --- tracked claims ------------------------------------------------------------------------------

ACTORS_EN = [
    "The health ministry", "A government spokesperson", "The central bank", "Local police",
    "The national statistics office", "An opposition senator", "The city council", "The army",
    "A regional governor", "The finance minister", "Union leaders", "The coast guard",
    "The election commission", "Hospital officials", "The energy regulator", "Prosecutors",
]  # fmt: skip
FACTS_EN = [
    "people were arrested", "new measles cases were recorded", "jobs will be cut",
    "schools were closed", "migrants crossed the border", "homes lost power",
    "soldiers were deployed", "vaccine doses were thrown away", "ballots were rejected",
    "flights were cancelled", "tonnes of grain were exported", "patients waited over a year",
    "wind turbines were installed", "civilians were evacuated", "factories shut down",
    "teachers went on strike", "cars were recalled", "refugees were resettled",
]  # fmt: skip
PLACES = [
    "Portugal", "Kenya", "Ohio", "Manila", "Quebec", "Bavaria", "Lagos", "Chile", "Texas",
    "Sicily", "Gujarat", "Tasmania", "Ontario", "Morocco", "Lyon", "Norway", "Peru", "Vietnam",
    "Scotland", "Bolivia", "Marseille", "Nairobi", "Jakarta", "Alberta",
]  # fmt: skip
WHEN_EN = ["last week", "in 2019", "since January", "this year", "in March", "over the weekend", "in 2021"]
ACTORS_FR = [
    "Le ministère de la Santé", "Un porte-parole du gouvernement", "La préfecture", "La police",
    "Le syndicat", "Le maire", "L'armée", "La banque centrale",
]  # fmt: skip
FACTS_FR = [
    "personnes ont été interpellées", "emplois seront supprimés", "écoles ont été fermées",
    "foyers ont été privés d'électricité", "vols ont été annulés", "habitants ont été évacués",
    "doses de vaccin ont été jetées", "migrants ont traversé la frontière",
]  # fmt: skip
WHEN_FR = ["la semaine dernière", "en 2019", "depuis janvier", "cette année", "en mars"]
VERDICTS = ["false", "misleading", "unproven", "true"]


def invented_claims(count: int, seed: int = 7) -> list[str]:
    """``count`` distinct claims of the usual shape (actor, figure, fact, place, time); one in five
    in French. Invented here: no page states them."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < count:
        number = rng.choice([120, 300, 450, 1200, 2500, 3000, 4300, 5000, 12000, 40000, 250000])
        place = rng.choice(PLACES)
        if rng.random() < 0.2:
            text = (
                f"{rng.choice(ACTORS_FR)} affirme que {number:,}".replace(",", " ")
                + f" {rng.choice(FACTS_FR)} à {place} {rng.choice(WHEN_FR)}."
            )
        else:
            text = (
                f"{rng.choice(ACTORS_EN)} said {number:,} {rng.choice(FACTS_EN)} in {place} "
                f"{rng.choice(WHEN_EN)}."
            )
        out[text] = None
    return list(out)


def page_claims(pages: Sequence[Page], count: int) -> list[tuple[str, str]]:
    """(page name, sentence): a check-worthy sentence with a figure from each of ``count`` pages,
    as the enricher's claim finder sees it (without the entities), so those pages raise alerts."""
    found: list[tuple[str, str]] = []
    step = max(1, len(pages) // max(1, count))
    for page in [*pages[::step], *pages]:  # spread over the pages, so measured articles hit them
        if len(found) >= count:
            break
        if any(name == page.name for name, _ in found):
            continue
        try:
            extracted = extract_article(page.html, None)
        except ExtractionError:
            continue
        candidates = [
            c
            for c in extract_claims(extracted.title or "", extracted.text)
            if "number" in c.signals and 10 <= len(c.text.split()) <= 40 and c.end > 0
        ]
        if candidates:
            best = max(candidates, key=lambda c: c.score)
            found.append((page.name, best.text))
    return found


def make_claims(
    pages: Sequence[Page], count: int, matching: int, *, fresh: bool = False
) -> tuple[list[TrackedClaim], list[str]]:
    rng = random.Random(11)
    matched = page_claims(pages, min(matching, count))
    texts = [t for _, t in matched] + invented_claims(count - len(matched))
    # An established watchlist, tracked a month ago: put on the topic before the services start, so
    # no claim is "newly tracked" (no retroactive search, at tracking or at the alerts' start-up).
    # ``fresh``: tracked just now (a watchlist imported at once), so the alerts service starts with
    # a retroactive search for every claim while the articles flow.
    tracked = datetime.now(UTC) - (timedelta(0) if fresh else timedelta(days=30))
    claims: dict[str, TrackedClaim] = {}
    for text in texts:
        claim = new_claim(text, labels={"verdict": rng.choice(VERDICTS)}, created_at=tracked)
        claims[claim.id] = claim
    return list(claims.values()), [name for name, _ in matched]


# --- the news site ---------------------------------------------------------------------------------


@dataclass
class Item:
    n: int
    feed: int
    url: str
    title: str
    published_at: float  # when the item appeared in its feed (latencies count from here)
    dated: float  # the feed's <pubDate> (= published_at unless --hours-apart)


class Remixer:
    """``--unique``: article ``n`` past the pages is a page of its own, ``sentences`` sentences
    (default ``REMIX_SENTENCES``) drawn (seeded by ``n``) from every page's text, so that no two
    articles are copies of each other and content state (copies, events) grows as on the web."""

    REMIX_SENTENCES = 24

    def __init__(self, pages: list[Page], sentences: int = REMIX_SENTENCES) -> None:
        self.size = sentences
        pool: list[str] = []
        for page in pages:
            text = trafilatura.extract(page.html) or ""
            pool.extend(s for s in re.split(r"(?<=[.!?])\s+", text) if 40 <= len(s) <= 400)
        if len(pool) < 2 * self.size:
            raise ValueError(f"--unique: {len(pool)} sentences in the pages, fewer than {2 * self.size}")
        self.sentences = pool

    def page(self, n: int) -> Page:
        rng = random.Random(n)
        chosen = rng.sample(self.sentences, self.size)
        paragraphs = ["  ".join(chosen[i : i + 3]) for i in range(0, len(chosen), 3)]
        title = chosen[0][:120]
        html = render_document(title, "\n".join(paragraphs))
        return Page(f"remix-{n}", html.encode(), html, title)


@dataclass
class NewsFeeds:
    """``feeds`` RSS feeds, one per loopback address; article ``n`` is ``pages[n % len(pages)]``
    (with a ``remixer``, past the pages: a remix of its own). With ``hours_apart``, the feeds date
    article ``n`` of ``total`` ``(total - 1 - n) * hours_apart`` hours before ``dated_until``."""

    pages: list[Page]
    feeds: int
    feed_items: int
    remixer: Remixer | None = None
    hours_apart: float = 0.0
    total: int = 0
    dated_until: float = field(default_factory=time.time)
    servers: list[ThreadingHTTPServer] = field(default_factory=list)
    items: list[list[Item]] = field(default_factory=list)
    rendered: list[tuple[str, bytes]] = field(default_factory=list)  # (etag, body) per feed
    published: dict[int, Item] = field(default_factory=dict)
    served_at: dict[int, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                feed = site.feed_of(self.server)
                path = self.path.split("?")[0]
                if path == "/rss.xml":
                    with site.lock:
                        etag, body = site.rendered[feed]
                    if self.headers.get("If-None-Match") == etag:
                        self.send_response(304)
                        self.send_header("ETag", etag)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.reply(200, "application/rss+xml; charset=utf-8", body, etag)
                    return
                match = re.fullmatch(r"/a/(\d+)\.html", path)
                if match is None:
                    self.reply(404, "text/plain", b"not found")
                    return
                n = int(match.group(1))
                with site.lock:
                    known = n in site.published
                    if known:
                        site.served_at.setdefault(n, time.time())
                if not known:
                    self.reply(404, "text/plain", b"not found")
                    return
                self.reply(200, "text/html", site.page_of(n).body)

            def reply(self, status: int, content_type: str, body: bytes, etag: str | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if etag:
                    self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        for f in range(self.feeds):
            server = ThreadingHTTPServer((f"127.0.0.{FIRST_HOST + f}", 0), Handler)
            server.daemon_threads = True
            self.servers.append(server)
            self.items.append([])
            self.rendered.append(("", b""))
            self._render(f)
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def feed_of(self, server: Any) -> int:
        return self.servers.index(server)

    def base(self, feed: int) -> str:
        return f"http://127.0.0.{FIRST_HOST + feed}:{self.servers[feed].server_port}"

    def feed_urls(self) -> list[str]:
        return [f"{self.base(f)}/rss.xml" for f in range(self.feeds)]

    def url_of(self, n: int) -> str:
        return f"{self.base(n % self.feeds)}/a/{n}.html"

    def page_of(self, n: int) -> Page:
        if self.remixer is not None and n >= len(self.pages):
            return self.remixer.page(n)
        return self.pages[n % len(self.pages)]

    def publish(self, n: int) -> Item:
        feed = n % self.feeds
        page = self.page_of(n)
        now = time.time()
        dated = self.dated_until - (self.total - 1 - n) * self.hours_apart * 3600 if self.hours_apart else now
        item = Item(n, feed, self.url_of(n), page.title or f"Article {n}", now, dated)
        with self.lock:
            self.published[n] = item
            self.items[feed].insert(0, item)
            del self.items[feed][self.feed_items :]
        self._render(feed)
        return item

    def _render(self, feed: int) -> None:
        with self.lock:
            items = list(self.items[feed])
        body = "".join(
            f"<item><title>{htmlmod.escape(i.title)}</title><link>{i.url}</link><guid>{i.url}</guid>"
            f"<pubDate>{format_datetime(datetime.fromtimestamp(i.dated, UTC))}</pubDate></item>"
            for i in items
        )
        etag = f'"{feed}-{items[0].n if items else -1}"'
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>Bench outlet {feed}</title><link>{self.base(feed)}/</link>"
            f"<description>Benchmark feed</description>{body}</channel></rss>"
        )
        with self.lock:
            self.rendered[feed] = (etag, xml.encode())

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


# --- processes -------------------------------------------------------------------------------------


@dataclass
class ProcStat:
    cpu: float  # seconds: utime + stime (+ cutime + cstime for the root: reaped children)
    rss: int  # bytes
    hwm: int  # bytes (VmHWM)


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(ppid, own cpu seconds, reaped children's cpu seconds)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, (utime + stime) / CLOCK_TICKS, (cutime + cstime) / CLOCK_TICKS


def _status(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return rss, hwm


def process_trees(roots: dict[str, int | None]) -> dict[str, ProcStat]:
    """CPU and memory of each root process with all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                children.setdefault(st[0], []).append(int(entry))
    out: dict[str, ProcStat] = {}
    for name, root in roots.items():
        total = ProcStat(0.0, 0, 0)
        if root is None:
            out[name] = total
            continue
        stack = [root]
        while stack:
            pid = stack.pop()
            st = _stat(pid)
            if st is None:
                continue
            rss, hwm = _status(pid)
            total.cpu += st[1] + (st[2] if pid == root else 0.0)
            total.rss += rss
            total.hwm += hwm
            stack.extend(children.get(pid, []))
        out[name] = total
    return out


class Sampler(threading.Thread):
    """Samples the process trees every second; keeps (time, searchable count, stats)."""

    def __init__(self, roots: Callable[[], dict[str, int | None]], progress: Callable[[], int]) -> None:
        super().__init__(daemon=True, name="sampler")
        self.roots = roots
        self.progress = progress
        self.samples: list[tuple[float, int, dict[str, ProcStat]]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.samples.append((time.time(), self.progress(), process_trees(self.roots())))
            self.stopping.wait(1.0)


def rss_now(run: Run) -> str:
    """``; RSS MB fetcher 391, enricher 435, ...`` from the last sample (progress lines: a long
    run stopped early still leaves its memory over time in the log)."""
    if run.sampler is None or not run.sampler.samples:
        return ""
    stats = run.sampler.samples[-1][2]
    return "; RSS MB " + ", ".join(f"{name} {stat.rss / 2**20:.0f}" for name, stat in stats.items())


# --- the search side -------------------------------------------------------------------------------


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class Observed:
    searchable_at: dict[int, float] = field(default_factory=dict)
    fetched_at: dict[int, float] = field(default_factory=dict)
    enriched_at: dict[int, float] = field(default_factory=dict)
    linked_at: dict[int, float] = field(default_factory=dict)  # the event-link record's time
    ids: dict[int, str] = field(default_factory=dict)
    alert_at: dict[int, float] = field(default_factory=dict)  # article n -> first alert seen
    alerts: dict[str, tuple[int | None, str]] = field(default_factory=dict)  # id -> (article n, claim)
    duplicates: int = 0


#: Alerts polls look back this many seconds before the newest alert seen (alerts indexed late).
ALERTS_LOOKBACK = 300.0

#: ``--keep-articles``: articles deleted from the search index per request.
RETIRE_BATCH = 500


class Watcher:
    """Finds published articles in the search index, and alerts in the alerts index."""

    def __init__(
        self,
        es_url: str,
        n_of_url: dict[str, int],
        keep_articles: int = 0,
        window_days: float = LinkerConfig.window_days,
    ) -> None:
        self.client = httpx.Client(base_url=es_url, timeout=30)
        self.n_of_url = n_of_url
        self.seen = Observed()
        self._last_alert_poll = 0.0
        self._newest_alert: float | None = None  # created_at of the newest alert seen (epoch s)
        self.keep_articles = keep_articles
        self.window_days = window_days  # the event linker's window
        # articles seen and not deleted yet, oldest first: (n, id, published epoch s or None)
        self._kept: list[tuple[int, str, float | None]] = []
        self.deleted: Counter[str] = Counter()  # documents deleted, by index ("articles", ...)

    def retire(self) -> None:
        """With ``keep_articles``: delete the oldest articles seen, past the newest that many, as
        an ILM delete phase would (osmem-server holds every document in memory, and tansu has no
        retention to stand in for). With them go their event-link records (their ``linked_at``
        read first, for the latency table; a record not written yet stays) and the events last
        seen a linking window before the newest of them, which no new report can join."""
        batch = RETIRE_BATCH
        if not self.keep_articles or len(self._kept) < self.keep_articles + batch:
            return
        old, self._kept = self._kept[:batch], self._kept[batch:]
        self._read_links({id_: n for n, id_, _ in old})
        linked = [id_ for n, id_, _ in old if n in self.seen.linked_at]
        ops = [("articles", id_) for _, id_, _ in old] + [("event-links", id_) for id_ in linked]
        dates = [published for _, _, published in old if published is not None]
        if dates:
            cutoff = datetime.fromtimestamp(max(dates) - self.window_days * 86400, UTC).isoformat()
            query = {"range": {"last_seen": {"lt": cutoff}}}
            ops += [("events", doc["id"]) for doc in self._search("events", query, 10000, ["id"])]
        try:
            lines = [
                json.dumps({"delete": {"_index": f"wirewatch-{index}", "_id": id_}}) for index, id_ in ops
            ]
            response = self.client.post(
                "/_bulk", content="\n".join(lines) + "\n", headers={"content-type": "application/x-ndjson"}
            )
            items = response.json().get("items", [])
        except (httpx.HTTPError, ValueError) as exc:
            print(f"# deleting old articles failed: {exc!r}", file=sys.stderr)
            return
        for (index, _), item in zip(ops, items, strict=False):
            if item.get("delete", {}).get("result") == "deleted":
                self.deleted[index] += 1

    def poll(self, pending: list[str]) -> list[int]:
        """Look for ``pending`` article URLs; returns the articles found now."""
        now = time.time()
        found: list[int] = []
        for start in range(0, len(pending), 1000):
            chunk = pending[start : start + 1000]
            hits = self._search(
                "articles",
                {"terms": {"url": chunk}},
                len(chunk),
                ["id", "url", "fetched_at", "enriched_at", "is_duplicate", "published"],
            )
            for doc in hits:
                n = self.n_of_url.get(doc.get("url", ""))
                if n is None or n in self.seen.searchable_at:
                    continue
                self.seen.searchable_at[n] = now
                self.seen.fetched_at[n] = parse_time(doc["fetched_at"])
                self.seen.enriched_at[n] = parse_time(doc["enriched_at"])
                self.seen.ids[n] = doc["id"]
                self.seen.duplicates += bool(doc.get("is_duplicate"))
                found.append(n)
                published = parse_time(doc["published"]) if doc.get("published") else None
                self._kept.append((n, doc["id"], published))
        self.retire()
        if now - self._last_alert_poll >= 1.0:
            self._last_alert_poll = now
            self.poll_alerts(now)
        return found

    def poll_links(self, articles: range) -> None:
        """When each article was linked to its event (the indexer's ``linked_at``)."""
        self._read_links({self.seen.ids[n]: n for n in articles if n in self.seen.ids})

    def _read_links(self, n_of_id: dict[str, int]) -> None:
        """Reads the ``linked_at`` of the articles not read yet (a link record's time does not
        change, and retired articles' records are gone)."""
        ids = [id_ for id_, n in n_of_id.items() if n not in self.seen.linked_at]
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            query = {"terms": {"article_id": chunk}}
            for doc in self._search("event-links", query, len(chunk), ["article_id", "linked_at"]):
                n = n_of_id.get(doc.get("article_id", ""))
                if n is not None and doc.get("linked_at"):
                    self.seen.linked_at[n] = parse_time(doc["linked_at"])

    def poll_alerts(self, now: float) -> None:
        """New alerts: those created since ``ALERTS_LOOKBACK`` seconds before the newest seen (an
        alert is indexed after it is created, so the search looks back over the late ones), not the
        whole index each second (a long run has thousands)."""
        query: dict[str, Any] = {"match_all": {}}
        if self._newest_alert is not None:
            since = datetime.fromtimestamp(self._newest_alert - ALERTS_LOOKBACK, UTC).isoformat()
            query = {"range": {"created_at": {"gte": since}}}
        fields = ["id", "url", "claim_id", "created_at"]
        for doc in self._search("alerts", query, 10000, fields, sort=[{"created_at": "asc"}]):
            created = parse_time(doc["created_at"])
            self._newest_alert = max(created, self._newest_alert or created)
            if doc["id"] in self.seen.alerts:
                continue
            n = self.n_of_url.get(doc.get("url", ""))
            self.seen.alerts[doc["id"]] = (n, doc["claim_id"])
            if n is not None:
                self.seen.alert_at.setdefault(n, now)

    def _search(
        self,
        index: str,
        query: dict[str, Any],
        size: int,
        fields: list[str],
        sort: list[dict[str, str]] | None = None,
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"query": query, "size": size, "_source": fields}
        if sort:
            body["sort"] = sort
        try:
            response = self.client.post(f"/wirewatch-{index}/_search", json=body)
        except httpx.HTTPError as exc:
            print(f"# search of {index} failed: {exc!r}", file=sys.stderr)
            return []
        if response.status_code != 200:
            print(f"# search of {index}: HTTP {response.status_code} {response.text[:200]}", file=sys.stderr)
            return []
        return [hit["_source"] for hit in response.json()["hits"]["hits"]]

    def close(self) -> None:
        self.client.close()


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class Run:
    pages: list[Page]
    args: argparse.Namespace
    site: NewsFeeds
    servers: LocalServers
    supervisor: Supervisor
    watcher: Watcher
    matching_pages: list[str]
    claims: int
    first: int = 0  # first measured article (after the warm-up)
    start_at: float = 0.0
    end_at: float = 0.0  # the last article searchable
    drained_at: float = 0.0  # the stack quiet again (linking and alerts done)
    published_until: float = 0.0
    idle: dict[str, float] = field(default_factory=dict)  # CPU seconds per second, no articles
    idle_harness: float = 0.0
    cpu_start: dict[str, ProcStat] = field(default_factory=dict)
    cpu_end: dict[str, ProcStat] = field(default_factory=dict)
    harness_cpu: float = 0.0
    sampler: Sampler | None = None
    restarts: dict[str, int] = field(default_factory=dict)
    load: tuple[float, float] = (0.0, 0.0)
    # The indexer's bulk-request histogram (wirewatch_bulk_seconds) when the measurement starts
    # and when the stack is quiet again: {stage: {bucket upper bound: count, "sum": seconds}}
    bulk_start: dict[str, dict[str, float]] = field(default_factory=dict)
    bulk_end: dict[str, dict[str, float]] = field(default_factory=dict)

    def bulk_histogram(self) -> dict[str, dict[str, float]]:
        """The indexer's ``wirewatch_bulk_seconds`` by stage, read from its ``/metrics``."""
        try:
            text = httpx.get(self.supervisor.children["indexer"].metrics_url, timeout=10).text
        except httpx.HTTPError as exc:
            print(f"# the indexer's metrics could not be read: {exc}", file=sys.stderr)
            return {}
        stages: dict[str, dict[str, float]] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "wirewatch_bulk_seconds":
                continue
            for sample in family.samples:
                stage = stages.setdefault(sample.labels.get("stage", "?"), {})
                if sample.name.endswith("_bucket"):
                    stage[sample.labels["le"]] = sample.value
                elif sample.name.endswith("_sum"):
                    stage["sum"] = sample.value
        return stages

    def roots(self) -> dict[str, int | None]:
        roots: dict[str, int | None] = {name: self.supervisor.children[name].pid for name in SERVICES}
        names = ["tansu", "osmem-server"] if self.servers.backend == "ephemeral" else ["noida-db"]
        for name, proc in zip(names, self.servers.processes, strict=False):
            roots[name] = proc.pid
        return roots


def wait_for_log(path: Path, message: str, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for line in path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict) and record.get("msg") == message:
                        return record
        time.sleep(1.0)
    return None


def drive(run: Run, first: int, count: int, rate: float, window: int, stall: float) -> None:
    """Publish articles ``first .. first+count-1`` and watch them become searchable."""
    site, watcher = run.site, run.watcher
    last = first + count
    lock = threading.Lock()
    pending: dict[int, None] = {}  # published, not yet searchable (in publication order)
    state = {"next": first, "done": 0}
    stop = threading.Event()

    def publisher() -> None:
        t0 = time.time()
        while state["next"] < last and not stop.is_set():
            n = state["next"]
            if rate > 0:
                delay = t0 + (n - first) / rate - time.time()
                if delay > 0:
                    stop.wait(delay)
                    continue
            elif n - first - state["done"] >= window:
                stop.wait(0.05)
                continue
            site.publish(n)
            with lock:
                pending[n] = None
            state["next"] = n + 1
        run.published_until = time.time()

    thread = threading.Thread(target=publisher, daemon=True, name="publisher")
    thread.start()
    progress_at = reported = time.time()
    try:
        while True:
            with lock:
                urls = [site.url_of(n) for n in pending]
            found = watcher.poll(urls)
            with lock:
                for n in found:
                    pending.pop(n, None)
            if found:
                state["done"] += len(found)
                progress_at = time.time()
            done = state["done"]
            if time.time() - reported >= 30:
                reported = time.time()
                print(
                    f"# {done} of {count} searchable, {state['next'] - first} published{rss_now(run)}",
                    file=sys.stderr,
                )
            if done >= count:
                return
            if state["next"] >= last and time.time() - progress_at > stall:
                print(
                    f"# stalled: {count - done} of {count} articles not searchable after {stall:.0f} s",
                    file=sys.stderr,
                )
                return
            crashed = run.supervisor.crashed()
            if crashed:
                print(f"# services exited (restarted by the supervisor): {crashed}", file=sys.stderr)
            time.sleep(0.25)
    finally:
        stop.set()
        thread.join(5)


def start_run(pages: list[Page], args: argparse.Namespace, tmp: Path) -> Run:
    claims, matching = make_claims(pages, args.claims, args.matching, fresh=args.fresh_claims)
    when = "tracked just now" if args.fresh_claims else "tracked a month ago"
    print(f"# {len(claims)} tracked claims ({len(matching)} taken from pages), {when}", file=sys.stderr)
    servers = start_servers(args.backend, data_dir=tmp / "servers", log_dir=tmp / "logs")
    site = NewsFeeds(
        pages,
        args.feeds,
        args.feed_items,
        remixer=Remixer(pages) if args.unique else None,
        hours_apart=args.hours_apart,
        total=args.warmup + args.articles,
    )
    site.start()
    feeds_file = tmp / "feeds.yaml"
    feeds_file.write_text(
        json.dumps(
            {
                "feeds": [
                    {"url": u, "name": f"Outlet {i}", "interval": args.poll}
                    for i, u in enumerate(site.feed_urls())
                ]
            }
        )
    )
    settings = Settings(_env_file=None, **servers.settings(), feeds_file=feeds_file)  # type: ignore[call-arg]
    asyncio.run(setup(settings))
    for start in range(0, len(claims), 1000):  # before the services start (see make_claims)
        asyncio.run(publish(settings, claims[start : start + 1000]))
    env = {
        **servers.env(),
        "WIREWATCH_FEEDS_FILE": str(feeds_file),
        "WIREWATCH_POLL_INTERVAL": str(args.poll),
        "WIREWATCH_POLL_INTERVAL_MIN": str(args.poll),
        "WIREWATCH_FETCH_ALLOW_HOSTS": "127.0.0.0/8",
        "WIREWATCH_FETCH_HOST_DELAY": str(args.host_delay),
        "WIREWATCH_TABLE_STORE": args.table_store,
        "WIREWATCH_LOG_FORMAT": "json",
        "WIREWATCH_DATA_DIR": str(tmp / "data"),
    }
    if args.producer_batching:
        env["WIREWATCH_KAFKA_PRODUCER_BATCHING"] = "true"
    if args.blas_threads > 0:
        env["WIREWATCH_COMPUTE_THREADS"] = str(args.blas_threads)
    else:
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(os.cpu_count() or 1)
    supervisor = Supervisor(list(SERVICES), env, tmp / "logs")
    n_of_url: dict[str, int] = {}
    run = Run(
        pages,
        args,
        site,
        servers,
        supervisor,
        Watcher(
            servers.es_url,
            n_of_url,
            args.keep_articles,
            LinkerConfig.from_settings(settings).window_days,
        ),
        matching,
        len(claims),
    )
    total = args.warmup + args.articles
    n_of_url.update({site.url_of(n): n for n in range(total)})
    supervisor.start()
    # The alerts service answers its health check late while it loads the watchlist (one claim
    # at a time, in its event loop), so that comes first.
    loaded = wait_for_log(tmp / "logs" / "alerts.log", "watchlist loaded", 900)
    if loaded is None:
        raise RuntimeError("the alerts service did not load the watchlist in time")
    if not supervisor.wait_healthy(300):
        raise RuntimeError(f"services not healthy: {supervisor.healthy()}")
    print(f"# services up; watchlist loaded ({loaded.get('claims')} claims)", file=sys.stderr)
    return run


def quiesce(run: Run, timeout: float = 90.0) -> None:
    """Wait until the stack is done with what came before (event linking runs after an article is
    searchable): under 10 % of a core in total over 2 s, or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = process_trees(run.roots())
        time.sleep(2.0)
        after = process_trees(run.roots())
        if sum(after[k].cpu - before[k].cpu for k in after if k in before) < 0.2:
            return


def measure(run: Run) -> None:
    args = run.args
    if args.warmup:
        drive(run, 0, args.warmup, 0.0, args.warmup, args.stall)
        print(
            f"# warm-up: {len(run.watcher.seen.searchable_at)} of {args.warmup} searchable", file=sys.stderr
        )
    run.first = args.warmup
    quiesce(run)
    if args.idle > 0:  # what the stack costs with no articles flowing (polls, timers, heartbeats)
        before, harness, started = process_trees(run.roots()), time.process_time(), time.monotonic()
        while time.monotonic() - started < args.idle:
            run.watcher.poll_alerts(time.time())
            time.sleep(1.0)
        after, elapsed = process_trees(run.roots()), time.monotonic() - started
        run.idle = {name: (after[name].cpu - before[name].cpu) / elapsed for name in after if name in before}
        run.idle_harness = (time.process_time() - harness) / elapsed
    run.load = (os.getloadavg()[0], 0.0)
    run.sampler = Sampler(run.roots, lambda: sum(1 for n in run.watcher.seen.searchable_at if n >= run.first))
    run.cpu_start = process_trees(run.roots())
    run.bulk_start = run.bulk_histogram()
    harness_start = time.process_time()
    run.start_at = time.time()
    run.sampler.start()
    drive(run, run.first, args.articles, args.rate, args.window, args.stall)
    run.end_at = time.time()
    # Event linking and alerts come after an article is searchable: the run's CPU counts until
    # the stack is quiet again (under 10 % of a core over 2 s), or as long again as the run.
    deadline = time.monotonic() + max(args.stall, run.end_at - run.start_at)
    previous = process_trees(run.roots())
    while True:
        time.sleep(2.0)
        run.watcher.poll_alerts(time.time())
        run.cpu_end = process_trees(run.roots())
        busy = sum(run.cpu_end[k].cpu - previous[k].cpu for k in run.cpu_end if k in previous)
        if busy < 0.2 or time.monotonic() > deadline:
            break
        previous = run.cpu_end
    run.drained_at = time.time()
    run.bulk_end = run.bulk_histogram()
    run.harness_cpu = time.process_time() - harness_start
    measured = range(run.first, run.first + args.articles)
    links_deadline = time.monotonic() + 60.0  # linking may still be writing its last batch
    while True:
        run.watcher.poll_links(measured)
        seen = run.watcher.seen
        missing = sum(1 for n in measured if n in seen.ids and n not in seen.linked_at)
        if not missing or time.monotonic() > links_deadline:
            break
        time.sleep(2.0)
    if missing:
        print(f"# {missing} searchable articles have no event-link record", file=sys.stderr)
    run.sampler.stopping.set()
    run.sampler.join(5)
    run.load = (run.load[0], os.getloadavg()[0])
    run.restarts = {name: c.restarts for name, c in run.supervisor.children.items()}


def reference(pages: list[Page], counts: dict[int, int], passes: int = 3) -> float:
    """CPU seconds per served article of plain trafilatura.extract over the same pages (weighted by
    how often each was served): the fastest of ``passes`` passes, as in bench_extraction.py."""
    for page in pages[:5]:  # warm-up
        trafilatura.extract(page.html)
    best = float("inf")
    for _ in range(passes):
        total = 0.0
        for i, weight in counts.items():
            start = time.process_time()
            trafilatura.extract(pages[i].html)
            total += (time.process_time() - start) * weight
        best = min(best, total)
    return best / max(1, sum(counts.values()))


# --- report ----------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def steady_rate(times: list[float]) -> float:
    """Events per second between the 10 % and 90 % marks (start-up and tail left out)."""
    times = sorted(times)
    if len(times) < 10:
        return float("nan")
    lo, hi = int(len(times) * 0.1), int(len(times) * 0.9) - 1
    return (hi - lo) / (times[hi] - times[lo]) if times[hi] > times[lo] else float("nan")


#: Runs of at least this many articles also report each process's RSS after every tenth of them.
LONG_RUN = 2000


def bulk_rows(run: Run) -> list[str]:
    """The indexer's bulk requests during the measurement, by stage: how many, their mean time,
    and how many took longer than 0.5, 1 and 2.5 s (a slow request holds up the reports behind it
    in the ordered linking stage)."""
    rows = [
        "",
        "| indexer bulk requests (run) | requests | mean s | > 0.5 s | > 1 s | > 2.5 s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for stage, end in sorted(run.bulk_end.items()):
        start = run.bulk_start.get(stage, {})
        count = {key: value - start.get(key, 0.0) for key, value in end.items()}
        requests = count.get("+Inf", 0.0)
        if requests <= 0:
            continue
        over = {le: requests - count.get(le, 0.0) for le in ("0.5", "1.0", "2.5")}
        rows.append(
            f"| {stage} | {requests:.0f} | {count.get('sum', 0.0) / requests:.3f} | {over['0.5']:.0f} | "
            f"{over['1.0']:.0f} | {over['2.5']:.0f} |"
        )
    return rows if len(rows) > 3 else []


def report(run: Run, ref_cpu: float) -> list[str]:
    args, seen, site = run.args, run.watcher.seen, run.site
    measured = range(run.first, run.first + args.articles)
    found = [n for n in measured if n in seen.searchable_at]
    sustained = steady_rate([seen.searchable_at[n] for n in found])
    linked_rate = steady_rate(list(seen.linked_at.values()))
    fetched = seen.fetched_at
    alert_ns = [n for n in found if n in seen.alert_at]
    alerts = [(n, c) for n, c in seen.alerts.values() if n is not None and n in measured]
    wall = run.end_at - run.start_at
    offered = f"{args.rate:g}" if args.rate > 0 else f"max (window {args.window})"
    alert_summary = f"{len(alerts)} ({len(alert_ns)}, {len({c for _, c in alerts})})"
    latencies = [
        ("fetched_at → searchable", [seen.searchable_at[n] - fetched[n] for n in found]),
        ("fetched_at → enriched_at", [seen.enriched_at[n] - fetched[n] for n in found]),
        ("fetched_at → event linked (linked_at)", [seen.linked_at[n] - fetched[n] for n in seen.linked_at]),
        ("fetched_at → alert searchable", [seen.alert_at[n] - fetched[n] for n in alert_ns]),
        (
            "page served → searchable",
            [seen.searchable_at[n] - site.served_at[n] for n in found if n in site.served_at],
        ),
        (
            "published in feed → searchable",
            [seen.searchable_at[n] - site.published[n].published_at for n in found],
        ),
    ]
    rows = [
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, trafilatura {trafilatura.__version__}, CPython "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{run.load[0]:.1f} at start, {run.load[1]:.1f} at end",
        f"# {len(run.pages)} pages{' (then unique remixes)' if args.unique else ''}"
        f"{f', dated {args.hours_apart:g} h apart' if args.hours_apart else ''}, "
        f"{args.feeds} feeds (one loopback host each), poll {args.poll:g} s, "
        f"{run.claims} tracked claims, backend {run.servers.backend}, tables {args.table_store}, "
        f"warm-up {args.warmup} articles (not counted), BLAS threads per service "
        f"{args.blas_threads if args.blas_threads > 0 else f'{os.cpu_count()} (one per core)'}",
        "",
        "| articles | offered/s | searchable | copies found | sustained articles/s | linking articles/s | "
        "s to last searchable | s until quiet | alerts (articles, claims) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {args.articles} | {offered} | {len(found)} | {seen.duplicates} | {sustained:.1f} | "
        f"{linked_rate:.1f} | {wall:.0f} | "
        f"{run.drained_at - run.start_at:.0f} | {alert_summary} |",
        "",
        "| latency | articles | p50 s | p95 s | p99 s | max s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, values in latencies:
        cells = " | ".join(f"{percentile(values, q):.2f}" for q in (0.5, 0.95, 0.99, 1.0))
        rows.append(f"| {label} | {len(values)} | {cells} |")
    rows.append("")
    wall = run.drained_at - run.start_at  # CPU is counted until the stack is quiet
    counted = max(1, len(found))
    samples = run.sampler.samples if run.sampler else []

    def rss_at(name: str, mark: float) -> str:
        for _, progress, stats in samples:
            if progress >= mark * len(found) and name in stats:
                return f"{stats[name].rss / 2**20:.0f}"
        return f"{samples[-1][2][name].rss / 2**20:.0f}" if samples and name in samples[-1][2] else "—"

    def cost(label: str, cpu: float, idle: float | None, hwm: str = "—", rss: str = "—") -> str:
        per = cpu / counted
        above = "—" if idle is None else f"{1000 * (cpu - idle * wall) / counted:.1f}"
        idle_pct = "—" if idle is None else f"{100 * idle:.1f}"
        return (
            f"| {label} | {idle_pct} | {cpu:.1f} | {1000 * per:.1f} | {above} | {per / ref_cpu:.2f} | "
            f"{hwm} | {rss} |"
        )

    rows += [
        "| process | idle CPU % | CPU s | CPU ms/article | above idle | x extraction | peak RSS MB | "
        "RSS MB at 25 / 50 / 75 / 100 % |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    totals = {"services": [0.0, 0.0], "servers": [0.0, 0.0]}
    for name, end in run.cpu_end.items():
        cpu = end.cpu - run.cpu_start.get(name, ProcStat(0.0, 0, 0)).cpu
        idle = run.idle.get(name)
        group = totals["services" if name in SERVICES else "servers"]
        group[0] += cpu
        group[1] += idle or 0.0
        restarts = f" ({run.restarts[name]} restarts)" if run.restarts.get(name) else ""
        rss = " / ".join(rss_at(name, m) for m in (0.25, 0.5, 0.75, 1.0))
        rows.append(cost(f"{name}{restarts}", cpu, idle, f"{end.hwm / 2**20:.0f}", rss))
    has_idle = bool(run.idle)
    services, servers = totals["services"], totals["servers"]
    rows += [
        cost("**four services**", services[0], services[1] if has_idle else None),
        cost(
            "**four services + servers**",
            services[0] + servers[0],
            services[1] + servers[1] if has_idle else None,
        ),
        cost("harness (feeds, search polling)", run.harness_cpu, run.idle_harness if has_idle else None),
        f"| plain trafilatura.extract, same pages (reference) | — | {ref_cpu * counted:.1f} | "
        f"{1000 * ref_cpu:.1f} | — | 1.00 | — | — |",
    ]
    rows += bulk_rows(run)
    if len(found) >= LONG_RUN:  # memory over a long run, in tenths of it
        marks = [tenth / 10 for tenth in range(1, 11)]
        deletes = run.watcher.deleted
        deleted = (
            f" ({deletes['articles']} deleted from the search index, with {deletes['event-links']} "
            f"event-link records and {deletes['events']} events)"
            if args.keep_articles
            else ""
        )
        rows += [
            "",
            f"RSS MB after each tenth of the {len(found)} articles{deleted}",
            "",
            "| process | " + " | ".join(f"{int(m * 100)} %" for m in marks) + " |",
            "|---|" + "---:|" * len(marks),
        ]
        rows += [f"| {name} | " + " | ".join(rss_at(name, m) for m in marks) + " |" for name in run.cpu_end]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, help="Directory of saved pages (html/*.html.gz) or a .jsonl file.")
    parser.add_argument("--articles", type=int, default=500, help="Articles measured (after the warm-up).")
    parser.add_argument("--rate", type=float, default=20.0, help="Articles/s offered; 0: as fast as taken.")
    parser.add_argument("--claims", type=int, default=5000, help="Tracked claims on the watchlist.")
    parser.add_argument("--matching", type=int, default=10, help="Of which taken from pages (alerts fire).")
    parser.add_argument(
        "--fresh-claims",
        action="store_true",
        help="Claims tracked just now: the alerts service starts with a retroactive search for each.",
    )
    parser.add_argument("--feeds", type=int, default=8, help="Feeds, each on its own loopback address.")
    parser.add_argument("--feed-items", type=int, default=50, help="Items listed per feed.")
    parser.add_argument("--poll", type=float, default=1.0, help="Seconds between polls of a feed.")
    parser.add_argument("--host-delay", type=float, default=0.0, help="WIREWATCH_FETCH_HOST_DELAY.")
    parser.add_argument(
        "--window",
        type=int,
        default=100,
        help="--rate 0: articles in flight at most; it caps the rate at WINDOW over the seconds from "
        "publication to searchable (~6.5 s), so measure capacity with 400.",
    )
    parser.add_argument("--warmup", type=int, default=20, help="Articles before the measurement.")
    parser.add_argument(
        "--stall", type=float, default=120.0, help="Give up after this long without progress."
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="WIREWATCH_COMPUTE_THREADS for the services (0: one per core, numpy's default; see RESULTS.md).",
    )
    parser.add_argument("--idle", type=float, default=10.0, help="Seconds of idle baseline (0: none).")
    parser.add_argument("--limit", type=int, help="Use only the first LIMIT pages.")
    parser.add_argument("--backend", choices=["ephemeral", "noida"], default="ephemeral")
    parser.add_argument(
        "--table-store", default="memory://", help="WIREWATCH_TABLE_STORE (rocksdb:// on disk)."
    )
    parser.add_argument("--keep", type=Path, help="Keep logs and data in this directory.")
    parser.add_argument(
        "--producer-batching",
        action="store_true",
        help="Batch produced records, as on Apache Kafka, also on tansu (where the local mode sends one "
        "record per request so that a table recovering after a restart reads every record; a run "
        "starts from empty tables and never recovers one).",
    )
    parser.add_argument(
        "--unique",
        action="store_true",
        help="Articles past the pages are remixes of their sentences, never copies (long runs).",
    )
    parser.add_argument(
        "--hours-apart",
        type=float,
        default=0.0,
        help="Date consecutive articles this many hours apart in the feeds, ending now (long runs: "
        "the 7-day event window and the 30-day copies window expire as they would over months).",
    )
    parser.add_argument(
        "--keep-articles",
        type=int,
        default=0,
        help="Delete all but about this many of the newest articles seen from the search index, as "
        "an ILM delete phase would (long runs: osmem-server holds every document in RAM; 0: keep all).",
    )
    args = parser.parse_args(argv)
    if args.feeds < 1 or args.feeds > 240:
        parser.error("--feeds must be between 1 and 240")
    pages = read_pages(args.data, args.limit)
    if not pages:
        parser.error(f"no pages under {args.data}")

    tmp = args.keep or Path(tempfile.mkdtemp(prefix="wirewatch-bench-pipeline-"))
    tmp.mkdir(parents=True, exist_ok=True)
    # SIGTERM stops the run as Ctrl-C does: services, servers and the temporary directory go.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    run: Run | None = None
    try:
        run = start_run(pages, args, tmp)
        measure(run)
    except KeyboardInterrupt:
        print("# interrupted: stopping the stack", file=sys.stderr)
        return 130
    finally:
        if run is not None:
            run.supervisor.stop()
            run.watcher.close()
            run.site.close()
            run.servers.stop()
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    served = sorted(n for n in run.site.served_at if n >= run.first)
    if args.unique:  # a sample of the pages served (each its own)
        sample = [run.site.page_of(n) for n in served[:: max(1, len(served) // 300)]] or pages[:1]
        ref = reference(sample, {i: 1 for i in range(len(sample))})
    else:
        counts: dict[int, int] = {}
        for n in served:
            counts[n % len(pages)] = counts.get(n % len(pages), 0) + 1
        ref = reference(pages, counts or {0: 1})
    print("\n".join(report(run, ref)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
