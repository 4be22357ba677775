"""benchmarks/bench_pipeline.py still runs: a small load through the whole local stack.

The pages are the suite's own stories (tests/stories.py) given to the script as a ``.jsonl`` file,
so no benchmark data set is needed. It checks that the tables come out with numbers, not the
numbers themselves (those are for benchmarks/RESULTS.md, on a quiet machine).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from datetime import UTC, datetime
from email.utils import format_datetime
from itertools import pairwise
from pathlib import Path
from types import ModuleType

import pytest

import stories

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_pipeline.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_pipeline", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_pipeline"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(240)
def test_bench_pipeline_prints_its_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = stories.write_jsonl(
        tmp_path / "stories.jsonl",
        (
            stories.BRIDGE,
            stories.VACCINE,
            stories.STRIKE,
            stories.INCENDIE,
            stories.ELECTIONS,
            stories.TRAMWAY,
            stories.PARK,
            stories.MARCHE,
            stories.LIBRARY,
            stories.BAKERY,
        ),
    )
    bench = load_script()
    bench.LONG_RUN, bench.RETIRE_BATCH = 30, 5  # the long-run memory table, and old articles deleted
    args = "--articles 30 --rate 10 --window 30 --claims 50 --matching 3 --feeds 3 --warmup 2 --idle 0"
    args += " --keep-articles 10 --hours-apart 24"  # a day apart: events leave the 7-day window
    code = bench.main([str(docs), *args.split(), "--poll", "0.5", "--stall", "60"])
    assert code == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    [run] = [r for r in rows if r.startswith("| 30 |")]
    cells = [c.strip() for c in run.strip("|").split("|")]
    assert cells[2] == "30"  # every article searchable
    assert float(cells[4]) > 0  # sustained articles/s
    [latency] = [r for r in rows if r.startswith("| fetched_at → searchable |")]
    n, p50, p95, p99, _ = (float(c) for c in latency.strip("|").split("|")[1:])
    assert n == 30 and 0 < p50 <= p95 <= p99 < 60
    names = {r.split("|")[1].strip() for r in rows}
    assert {"fetcher", "enricher", "indexer", "alerts", "tansu", "osmem-server"} <= names
    fetcher = next(r for r in rows if r.startswith("| fetcher |"))
    assert re.search(r"\| \d+\.\d \| \d+\.\d \|", fetcher)  # CPU s and ms/article
    reference = next(r for r in rows if "trafilatura.extract" in r)
    assert float(reference.split("|")[4]) > 0
    deleted = re.search(r"tenth of the 30 articles \((\d+) deleted from the search index, with (\d+) ", out)
    assert deleted and int(deleted.group(1)) >= 15  # 32 seen, about 10 kept
    assert int(deleted.group(2)) >= 10  # their event-link records, once their linked_at was read
    events = re.search(r"event-link records and (\d+) events\)", out)
    assert events and int(events.group(1)) >= 1  # last seen a week before the newest deleted
    tenths = [r for r in rows if r.startswith("| fetcher |")][-1]
    assert len(re.findall(r"\| \d+ ", tenths)) == 10  # RSS after each tenth of the run


def test_long_run_options_make_unique_pages_dated_hours_apart() -> None:
    """--unique: articles past the pages are pages of their own, the same for the same number;
    --hours-apart: the feeds date consecutive articles that far apart, the last one now."""
    bench = load_script()
    pages = [
        bench.Page(s.slug, b"", bench.render_document(s.title, "\n".join(s.paragraphs)), s.title)
        for s in (stories.BRIDGE, stories.VACCINE, stories.STRIKE, stories.INCENDIE, stories.ELECTIONS)
    ]
    remixer = bench.Remixer(pages, sentences=6)
    site = bench.NewsFeeds(pages, 2, 50, remixer=remixer, hours_apart=24, total=20)
    assert site.page_of(3) is pages[3]
    remixes = [site.page_of(n).html for n in range(5, 20)]
    assert len(set(remixes)) == 15 and site.page_of(7).html == remixes[2]
    site.start()
    try:
        items = [site.publish(n) for n in range(20)]
        newest = re.search(r"<pubDate>([^<]+)</pubDate>", site.rendered[1][1].decode())
    finally:
        site.close()
    assert [b.dated - a.dated for a, b in pairwise(items)] == [86400.0] * 19
    assert abs(items[-1].dated - items[-1].published_at) < 5
    assert newest is not None
    assert newest.group(1) == format_datetime(datetime.fromtimestamp(items[-1].dated, UTC))
