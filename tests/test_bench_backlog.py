"""benchmarks/bench_backlog.py still runs: the indexer alone, a short search outage with articles
arriving, every article indexed once the search server is back.

The pages are the suite's own stories (tests/stories.py) given as a ``.jsonl`` file. It checks the
table, not the memory numbers (those are for benchmarks/RESULTS.md, on a quiet machine).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

import stories

pytestmark = pytest.mark.e2e

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.timeout(240)
def test_bench_backlog_prints_its_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = stories.write_jsonl(
        tmp_path / "stories.jsonl",
        (stories.BRIDGE, stories.VACCINE, stories.STRIKE, stories.INCENDIE, stories.TRAMWAY),
    )
    sys.path.insert(0, str(BENCHMARKS))
    try:
        bench = importlib.import_module("bench_backlog")
    finally:
        sys.path.remove(str(BENCHMARKS))
    args = "--articles 60 --warmup 5 --outage 3 --drain-timeout 120 --buffers 16 --trims 1 --settle 2"
    assert bench.main([str(docs), *args.split()]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 16 |")]
    [row] = rows
    _buffer, trim, before, outage_end, peak, after, settled, drain_s, rate, indexed = (
        c.strip() for c in row.strip("|").split("|")
    )
    assert indexed == "60/60"  # every article written during the outage is searchable after it
    assert trim == "1"
    assert 0 < float(before) <= float(peak) and float(outage_end) <= float(peak)
    assert float(after) > 0 and float(settled) > 0 and float(drain_s) > 0 and float(rate) > 0
