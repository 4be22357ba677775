"""Article-body extraction: wirewatch's ``extract_article`` against plain trafilatura, same pages, one run.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_extraction.py ../shared/benchmarks/extraction/zyte-article-extraction

``DATA_DIR`` holds ``html/<id>.html.gz`` and ``ground-truth.json`` (``{id: {"articleBody", "url"}}``);
``output/trafilatura*.json``, when present, is scored too as a sanity check of the measure.

Both systems run in this one process, one page at a time (no pool), on the same decoded HTML, so their
times are comparable; reading and decoding the files is not timed. Times are this process's CPU time
(``time.process_time``, which other load on the machine disturbs less than wall time), the fastest of
``--repeat`` passes. Score: token-level precision / recall / F1 of the body
(``wirewatch.evaluation.token_prf``: lowercased ``\\W+`` word tokens, multiset intersection), averaged
over pages.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import trafilatura

from wirewatch.evaluation import PRF, html_files, mean_prf, page_id, read_html, token_prf
from wirewatch.fetcher.extract import ExtractionError, extract_article

Extractor = Callable[[str, str | None], str]


def plain_trafilatura(html: str, url: str | None) -> str:
    return trafilatura.extract(html, url=url) or ""


def wirewatch(html: str, url: str | None) -> str:
    try:
        return extract_article(html, url).text
    except ExtractionError:
        return ""


SYSTEMS: dict[str, Extractor] = {
    f"trafilatura {trafilatura.__version__} extract() defaults": plain_trafilatura,
    "wirewatch extract_article": wirewatch,
}


@dataclass
class Row:
    name: str
    score: PRF
    pages: int
    empty: int
    seconds: float | None = None  # None: a committed output, not run here

    @property
    def ms_per_page(self) -> float | None:
        return None if self.seconds is None else 1000 * self.seconds / self.pages

    @property
    def pages_per_second(self) -> float | None:
        return None if not self.seconds else self.pages / self.seconds


def run_system(
    extract: Extractor, pages: list[tuple[str, str, str | None]], repeat: int
) -> tuple[dict[str, str], float]:
    """Outputs by page id, and the fastest of ``repeat`` passes' total extraction time (seconds)."""
    outputs: dict[str, str] = {}
    best = float("inf")
    for _ in range(repeat):
        total = 0.0
        for pid, html, url in pages:
            started = time.process_time()
            outputs[pid] = extract(html, url)
            total += time.process_time() - started
        best = min(best, total)
    return outputs, best


def committed_outputs(data_dir: Path) -> dict[str, dict[str, str]]:
    """``output/trafilatura*.json`` as ``{file stem: {id: text}}``."""
    found: dict[str, dict[str, str]] = {}
    for path in sorted((data_dir / "output").glob("trafilatura*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        data = data.get("output", data)
        found[path.stem] = {pid: (item or {}).get("articleBody") or "" for pid, item in data.items()}
    return found


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def table(rows: list[Row]) -> str:
    lines = [
        "| system | pages | empty | precision | recall | F1 | pages/s | ms/page |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.pages} | {r.empty} | {r.score.precision:.3f} | {r.score.recall:.3f} "
            f"| {r.score.f1:.3f} | {fmt(r.pages_per_second, '.1f')} | {fmt(r.ms_per_page, '.1f')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_dir", type=Path, help="zyte-article-extraction directory")
    parser.add_argument("--limit", type=int, help="only the first N pages (sorted by id)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per system; the fastest counts")
    parser.add_argument("--per-page", type=Path, help="write per-page F1 of each system to this JSON file")
    args = parser.parse_args(argv)

    truth_data = json.loads((args.data_dir / "ground-truth.json").read_text(encoding="utf-8"))
    truth = {pid: item.get("articleBody") or "" for pid, item in truth_data.items()}
    paths = [p for p in html_files(args.data_dir / "html") if page_id(p) in truth]
    if args.limit:
        paths = paths[: args.limit]
    missing = set(truth) - {page_id(p) for p in paths}
    if missing and not args.limit:
        print(f"warning: {len(missing)} ground-truth pages have no HTML file", file=sys.stderr)
    pages = [(page_id(p), read_html(p), truth_data[page_id(p)].get("url")) for p in paths]
    if not pages:
        parser.error(f"no pages with ground truth in {args.data_dir / 'html'}")
    ids = [pid for pid, _, _ in pages]

    rows: list[Row] = []
    outputs_by_system: dict[str, dict[str, str]] = {}
    for name, extract in SYSTEMS.items():
        extract(pages[0][1], pages[0][2])  # warm-up: imports, lazy caches
        outputs, seconds = run_system(extract, pages, args.repeat)
        outputs_by_system[name] = outputs
        empty = sum(1 for text in outputs.values() if not text.strip())
        rows.append(Row(name, mean_prf(outputs, truth, ids), len(ids), empty, seconds))
    for stem, outputs in committed_outputs(args.data_dir).items():
        empty = sum(1 for pid in ids if not outputs.get(pid, "").strip())
        rows.append(Row(f"committed output/{stem}.json", mean_prf(outputs, truth, ids), len(ids), empty))

    plain, ours = rows[0], rows[1]
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.machine()}, one core, CPU time, "
        f"best of {args.repeat} pass(es)"
    )
    print(table(rows))
    if plain.ms_per_page and ours.ms_per_page:
        print(f"\nwirewatch time per page / trafilatura's: {ours.ms_per_page / plain.ms_per_page:.2f}x")
    if args.per_page:
        per_page = {
            pid: {
                name: round(token_prf(out[pid], truth[pid]).f1, 4) for name, out in outputs_by_system.items()
            }
            for pid in ids
        }
        args.per_page.write_text(json.dumps(per_page, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
