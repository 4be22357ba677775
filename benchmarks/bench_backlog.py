"""The indexer's memory while it has a backlog: a search outage with articles arriving.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_backlog.py ../shared/benchmarks/extraction/zyte-article-extraction \\
        [--articles 6000] [--outage 60] [--buffers 4096,1000] [--trims 30] [--settle 35]

What it does, once per pair of ``--buffers`` and ``--trims`` values (each on a fresh local stack):

1. Extracts and analyses each page of ``DATA`` once, as the fetcher and the enricher would
   (``extract_article``, ``analyse``): real enriched articles, with their entities, keyphrases and
   claims. Article ``n`` is page ``n mod pages`` under its own URL and content hash, a minute after
   article ``n - 1``, so no article is a copy of another.
2. Starts tansu + osmem-server (``start_servers``) and the indexer alone under the supervisor
   ``wirewatch up`` uses, with ``WIREWATCH_STREAM_BUFFER`` and ``WIREWATCH_MEMORY_TRIM_SECONDS``
   = the values; indexes ``--warmup`` articles and waits until they are searchable.
3. Freezes the search server (SIGSTOP), produces ``--articles`` enriched articles at once, and keeps
   it frozen for ``--outage`` seconds: the indexer cannot write, so its consumers hold what they
   fetched while the rest waits in Kafka. Then thaws it (SIGCONT) and waits until every article is
   searchable.
4. Samples the indexer's RSS every 0.5 s: before the outage, at its end, its peak, and after the
   backlog is drained, and ``--settle`` seconds later (time for the memory trim's timer); and the
   drain time and rate after the thaw.

The buffer bounds the messages each of the indexer's streams holds ahead of its processing (Faust's
``stream_buffer_maxsize``); aiokafka adds up to one fetch (1 MB) per partition. The memory trim
hands the heap pages the drain freed back to the system (``wirewatch.core.memory``); without it
they stay in the RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench_pipeline import process_trees, read_pages
from wirewatch.core.ids import article_id
from wirewatch.core.kafka import produce
from wirewatch.core.models import EnrichedArticle, RawArticle
from wirewatch.core.settings import Settings
from wirewatch.enricher.service import analyse
from wirewatch.fetcher.extract import extract_article
from wirewatch.local.servers import start_servers
from wirewatch.local.supervisor import Supervisor
from wirewatch.runner import setup

MB = 1024 * 1024
BASE_TIME = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def templates(data: Path, limit: int | None) -> list[EnrichedArticle]:
    """One enriched article per page with text."""
    out = []
    for page in read_pages(data, limit):
        url = f"https://bench.example/{page.name}"
        extracted = extract_article(page.html, url)
        if not extracted.text:
            continue
        raw = RawArticle(
            id=article_id(url),
            url=url,
            canonical_url=url,
            source="Bench",
            source_domain="bench.example",
            title=extracted.title or page.title,
            text=extracted.text,
        )
        out.append(analyse(raw))
    return out


def article(template: EnrichedArticle, n: int) -> EnrichedArticle:
    url = f"https://outlet{n % 40}.example/{n:07d}.html"
    when = BASE_TIME + timedelta(minutes=n)
    return template.model_copy(
        update={
            "id": article_id(url),
            "url": url,
            "canonical_url": url,
            "source_domain": f"outlet{n % 40}.example",
            "published": when,
            "fetched_at": when,
            "content_hash": hashlib.sha256(f"{n}:{template.content_hash}".encode()).hexdigest(),
        }
    )


def send(settings: Settings, articles: list[EnrichedArticle]) -> None:
    for start in range(0, len(articles), 500):
        chunk = articles[start : start + 500]
        messages: list[tuple[bytes, bytes | None]] = [(a.id.encode(), a.to_bytes()) for a in chunk]
        asyncio.run(produce(settings, settings.topic_enriched, messages))


def count(articles_url: str) -> int:
    """Articles searchable now (-1: no answer)."""
    try:
        response = httpx.post(f"{articles_url}/_count", json={"query": {"match_all": {}}}, timeout=10)
        return int(response.json()["count"]) if response.status_code == 200 else -1
    except httpx.HTTPError:
        return -1


def rss(pid: int) -> int:
    return process_trees({"indexer": pid})["indexer"].rss


def run_once(
    buffer: int, trim: float, pool: list[EnrichedArticle], args: argparse.Namespace, tmp: Path
) -> dict[str, float | int | str]:
    servers = start_servers("ephemeral", data_dir=tmp / "servers", log_dir=tmp / "logs")
    supervisor: Supervisor | None = None
    osmem = servers.process("osmem")
    assert osmem is not None
    try:
        settings = Settings(_env_file=None, **servers.settings())  # type: ignore[call-arg]
        asyncio.run(setup(settings))
        articles_url = f"{servers.es_url}/{settings.index('articles')}"
        env = {
            **servers.env(),
            "WIREWATCH_STREAM_BUFFER": str(buffer),
            "WIREWATCH_MEMORY_TRIM_SECONDS": str(trim),
            "WIREWATCH_ES_REQUEST_TIMEOUT": "3",
            "WIREWATCH_INDEX_RETRY_MAX_SECONDS": "2",
            "WIREWATCH_LOG_FORMAT": "json",
            "WIREWATCH_DATA_DIR": str(tmp / "data"),
        }
        supervisor = Supervisor(["indexer"], env, tmp / "logs")
        supervisor.start()
        if not supervisor.wait_healthy(120):
            raise RuntimeError("the indexer did not come up")
        process = supervisor.children["indexer"].process
        assert process is not None
        pid = process.pid
        articles = [article(pool[n % len(pool)], n) for n in range(args.warmup + args.articles)]
        send(settings, articles[: args.warmup])
        wait_count(articles_url, args.warmup, 120)
        time.sleep(2)
        before = rss(pid)
        os.kill(osmem.pid, signal.SIGSTOP)
        try:
            frozen = time.monotonic()
            send(settings, articles[args.warmup :])
            peak = 0
            while time.monotonic() - frozen < args.outage:
                peak = max(peak, rss(pid))
                time.sleep(0.5)
            at_end = rss(pid)
        finally:
            os.kill(osmem.pid, signal.SIGCONT)
        thawed = time.monotonic()
        total = args.warmup + args.articles
        done = False
        while time.monotonic() - thawed < args.drain_timeout:
            peak = max(peak, rss(pid))
            if count(articles_url) >= total:
                done = True
                break
            time.sleep(0.5)
        drained = time.monotonic() - thawed
        time.sleep(2)
        after = rss(pid)
        time.sleep(args.settle)
        settled = rss(pid)
        return {
            "buffer": buffer,
            "trim": trim,
            "before": before / MB,
            "outage_end": at_end / MB,
            "peak": peak / MB,
            "after": after / MB,
            "settled": settled / MB,
            "drain_s": drained,
            "rate": args.articles / drained if done else 0.0,
            "indexed": f"{count(articles_url) - args.warmup}/{args.articles}",
        }
    finally:
        if supervisor is not None:
            supervisor.stop()
        servers.stop()


def wait_count(articles_url: str, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        httpx.post(f"{articles_url}/_refresh", timeout=10)
        if count(articles_url) >= expected:
            return
        time.sleep(0.5)
    raise RuntimeError(f"fewer than {expected} articles searchable after {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("data", type=Path, help="Directory of saved pages (html/*.html.gz) or a .jsonl file.")
    parser.add_argument("--articles", type=int, default=6000, help="Articles produced during the outage.")
    parser.add_argument("--warmup", type=int, default=100, help="Articles indexed before the outage.")
    parser.add_argument("--outage", type=float, default=60.0, help="Seconds the search server is frozen.")
    parser.add_argument("--drain-timeout", type=float, default=900.0, help="Give up draining after this.")
    parser.add_argument(
        "--buffers", default="4096,1000", help="WIREWATCH_STREAM_BUFFER values, one run each."
    )
    parser.add_argument(
        "--trims",
        default="30",
        help="WIREWATCH_MEMORY_TRIM_SECONDS values (0: no trim), one run each per buffer; "
        "repeat values to alternate (0,30,0,30).",
    )
    parser.add_argument(
        "--settle", type=float, default=35.0, help="Seconds after the drain before the last RSS reading."
    )
    parser.add_argument("--limit", type=int, help="Use only the first LIMIT pages.")
    args = parser.parse_args(argv)
    buffers = [int(b) for b in args.buffers.split(",") if b.strip()]
    trims = [float(t) for t in args.trims.split(",") if t.strip()]
    pool = templates(args.data, args.limit)
    if not pool:
        parser.error(f"no pages with text under {args.data}")
    size = sum(len(a.to_bytes()) for a in pool) / len(pool)
    print(f"# {len(pool)} enriched pages, {size / 1024:.1f} KB per message on average", file=sys.stderr)
    rows = []
    for buffer in buffers:
        for trim in trims:
            tmp = Path(tempfile.mkdtemp(prefix="wirewatch-bench-backlog-"))
            try:
                rows.append(run_once(buffer, trim, pool, args, tmp))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            print(f"# {rows[-1]}", file=sys.stderr)
    print(
        f"\n{args.articles} articles produced during a {args.outage:.0f} s search outage "
        f"({size / 1024:.1f} KB per message on average); indexer RSS in MB\n"
    )
    print(
        f"| stream buffer | memory trim s | before | outage end | peak | after drain | "
        f"{args.settle:.0f} s later | drain s | articles/s | indexed |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['buffer']} | {r['trim']:g} | {r['before']:.0f} | {r['outage_end']:.0f} | "
            f"{r['peak']:.0f} | {r['after']:.0f} | {r['settled']:.0f} | {r['drain_s']:.1f} | "
            f"{r['rate']:.1f} | {r['indexed']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
