"""Enrichment cost per article next to extraction, and the memory of duplicate state.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_enrichment.py ../shared/benchmarks/extraction/zyte-article-extraction \
        [--articles 100000]

Part 1, cost per article, on the saved news pages of ``DATA_DIR/html``: for each page, CPU time of
plain ``trafilatura.extract`` on its HTML (the reference) and of the enricher's whole per-article
work on the text wirewatch extracts from it: ``enricher.service.analyse`` (language, hash, and
the text analysis when present) then ``CopyLinker.link`` (fingerprints, duplicate and reuse
decision, table record): exactly what the stream runs, minus Kafka. Also the same on texts cut
to 5 KB (several pages' texts joined). Times are ``time.process_time`` of this one process, one
article at a time, after one warm-up pass (models loaded), over ``--rounds`` passes, each page's
extraction and enrichment timed one after the other so that the machine's noise hits both.

Part 2, state: ``--articles`` synthetic ~5 KB articles (words drawn from the corpus's vocabulary
with its frequencies, so texts are distinct; one in ten is a copy of an earlier one with 3 % of
words changed) go through ``CopyLinker`` with a dict as its table. Reported: bytes per article
of the in-memory index (numpy arrays), of the table records (their JSON, what the changelog
and a table store hold), the process's RSS growth, and link throughput as the state grows.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import random
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trafilatura

from wirewatch.core.ids import stable_id
from wirewatch.core.models import EnrichedArticle, RawArticle
from wirewatch.core.settings import Settings
from wirewatch.core.text import content_hash
from wirewatch.enricher.service import CopyLinker, analyse
from wirewatch.fetcher.extract import ExtractionError, decode_html_bytes, extract_article
from wirewatch.runner import limit_compute_threads

BASE_TIME = datetime(2026, 3, 1, tzinfo=UTC)


def read_pages(data_dir: Path, limit: int | None) -> list[tuple[str, str]]:
    pages = []
    for path in sorted((data_dir / "html").glob("*.html.gz"))[:limit]:
        raw = gzip.decompress(path.read_bytes())
        pages.append((path.name, decode_html_bytes(raw, None)))
    return pages


def raw_article(n: int, text: str, at: datetime) -> RawArticle:
    url = f"https://bench.example/{n}"
    return RawArticle(
        id=stable_id("bench", str(n)),
        url=url,
        canonical_url=url,
        source="bench",
        source_domain="bench.example",
        title="",
        text=text,
        fetched_at=at,
    )


def cpu(fn: object, *args: object) -> tuple[float, object]:
    start = time.process_time()
    result = fn(*args)  # type: ignore[operator]
    return time.process_time() - start, result


def enrich(linker: CopyLinker, n: int, text: str) -> EnrichedArticle:
    return linker.link(analyse(raw_article(n, text, BASE_TIME + timedelta(seconds=n))))


def extracted_texts(pages: list[tuple[str, str]]) -> list[str]:
    texts: list[str] = []
    for _, html in pages:
        try:
            texts.append(extract_article(html, None).text)
        except ExtractionError:
            texts.append("")
    return texts


def cost_table(pages: list[tuple[str, str]], warm_half: bool = False, rounds: int = 1) -> list[str]:
    texts = extracted_texts(pages)
    # Warm-up: load models, fill caches. With ``warm_half``, the enricher first reads every other
    # page, as a stream that has run a while (its NER keeps the words that recur across
    # articles), and only the pages it has not read are timed.
    warm_up = range(0, len(pages), 2) if warm_half else range(min(20, len(pages)))
    warm = CopyLinker({}, 30)
    for i in warm_up:
        enrich(warm, i, texts[i])
        trafilatura.extract(pages[i][1])
    if warm_half:
        pages = pages[1::2]
        texts = texts[1::2]

    n = len(pages)
    joined = "\n".join(t for t in texts if t)
    five_kb = [joined[i : i + 5000] for i in range(0, len(joined) - 5000, 5000)][:n]
    # Each round times every page once, extraction and enrichment one after the other, with a
    # fresh copy linker (the pages are not copies of the last round's). The NER's kept words
    # count an article once however often it is read, so rounds do not warm it further.
    extraction = enrichment = enrichment_5kb = 0.0
    ratios: list[str] = []
    for _ in range(rounds):
        linker = CopyLinker({}, 30)
        round_extraction = round_enrichment = 0.0
        for i, ((_, html), text) in enumerate(zip(pages, texts, strict=True)):
            round_extraction += cpu(trafilatura.extract, html)[0]
            round_enrichment += cpu(enrich, linker, i, text)[0]
        linker = CopyLinker({}, 30)
        round_5kb = sum(cpu(enrich, linker, 10_000 + i, t)[0] for i, t in enumerate(five_kb))
        ratios.append(
            f"{round_enrichment / round_extraction:.2f} / "
            f"{round_5kb / len(five_kb) / (round_extraction / n):.2f}"
        )
        extraction += round_extraction
        enrichment += round_enrichment
        enrichment_5kb += round_5kb
    chars = sum(len(t) for t in texts)

    per_extract = extraction / n / rounds * 1000
    rows = [
        "| step | articles | mean text (chars) | ms/article (CPU) | articles/s per worker | x extraction |",
        "|---|---:|---:|---:|---:|---:|",
        f"| plain trafilatura.extract (reference) | {n} | — | {per_extract:.1f} | "
        f"{1000 / per_extract:.0f} | 1.00 |",
    ]
    per = enrichment / n / rounds * 1000
    rows.append(
        f"| enrichment of the extracted text | {n} | {chars // n} | {per:.1f} | {1000 / per:.0f} | "
        f"{per / per_extract:.2f} |"
    )
    per5 = enrichment_5kb / len(five_kb) / rounds * 1000
    rows.append(
        f"| enrichment of 5 KB texts | {len(five_kb)} | 5000 | {per5:.1f} | {1000 / per5:.0f} | "
        f"{per5 / per_extract:.2f} |"
    )
    rows.append(
        f"\n{rounds} rounds; x extraction per round (extracted texts / 5 KB texts): {', '.join(ratios)}"
    )
    return rows


def synthetic_texts(pages: list[tuple[str, str]], count: int, seed: int = 1) -> list[str]:
    words = [word for text in extracted_texts(pages) for word in text.split()]
    rng = random.Random(seed)
    texts: list[str] = []
    for n in range(count):
        if n >= 10 and n % 10 == 0:  # a copy of an earlier article, 3 % of its words changed
            source = texts[rng.randrange(len(texts))].split()
            for k in rng.sample(range(len(source)), len(source) * 3 // 100):
                source[k] = rng.choice(words)
            texts.append(" ".join(source))
        else:
            texts.append(" ".join(rng.choices(words, k=800)))
    return texts


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def state_table(pages: list[tuple[str, str]], count: int) -> list[str]:
    texts = synthetic_texts(pages, count)
    table: dict[str, dict[str, object]] = {}
    linker = CopyLinker(table, 30)
    enrich(linker, 0, texts[0])  # allocate the index before measuring
    rss_before = rss_mb()
    rows = [
        "| articles | index bytes/article | table record bytes/article | RSS growth (index + dict table) | "
        "duplicates found | links/s (last 10%) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    marks = {count // 10, count // 2, count}
    duplicates = 0
    window_start = time.perf_counter()
    window_n = 0
    for n, text in enumerate(texts[1:], 2):
        article = linker.link(
            EnrichedArticle(
                **raw_article(n, text, BASE_TIME + timedelta(seconds=n)).model_dump(),
                language="und",
                language_confidence=0.0,
                content_hash=content_hash(text),
            )
        )
        duplicates += article.is_duplicate
        window_n += 1
        if n in marks:
            elapsed = time.perf_counter() - window_start
            index = linker.index
            record_bytes = sum(len(json.dumps(v)) + 34 for v in table.values())
            rows.append(
                f"| {n} | {index.nbytes / len(index):.0f} | {record_bytes / len(table):.0f} | "
                f"{(rss_mb() - rss_before) * 1024 * 1024 / n:.0f} | {duplicates} | {window_n / elapsed:.0f} |"
            )
            window_start, window_n = time.perf_counter(), 0
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--limit", type=int, help="Pages for part 1 (default: all).")
    parser.add_argument("--articles", type=int, default=100_000, help="Synthetic articles for part 2.")
    parser.add_argument(
        "--warm-half",
        action="store_true",
        help="Part 1: enrich every other page first, time the other half (a stream that has run a while).",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="Part 1: time every page this many times (default 3)."
    )
    args = parser.parse_args()
    limit_compute_threads(Settings().compute_threads)  # as in a service: one BLAS thread by default
    pages = read_pages(args.data_dir, args.limit)
    if not pages:
        sys.exit(f"no html/*.html.gz under {args.data_dir}")
    print(
        f"# {datetime.now(UTC):%Y-%m-%d}, trafilatura {trafilatura.__version__}, "
        f"CPython {platform.python_version()}, {platform.machine()}\n"
    )
    print("\n".join(cost_table(pages, args.warm_half, args.rounds)))
    print()
    print("\n".join(state_table(pages, args.articles)))


if __name__ == "__main__":
    main()
