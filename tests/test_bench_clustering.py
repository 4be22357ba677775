"""benchmarks/bench_clustering.py's ``--stream`` mode still runs, and the linking stage's state it
reports stays within the window: the suite's own stories over and over, three days apart.

It checks the table's counts, not the memory numbers (those are for benchmarks/RESULTS.md).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import stories

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_stream_memory_keeps_only_the_window() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        bench = importlib.import_module("bench_clustering")
    finally:
        sys.path.remove(str(BENCHMARKS))
    docs = [
        bench.Doc(s.slug, s.title, "\n".join(s.paragraphs), None, s.slug, s.language)
        for s in (stories.BRIDGE, stories.VACCINE, stories.STRIKE, stories.INCENDIE, stories.TRAMWAY)
    ]
    table = bench.stream_memory(docs, 40, minutes_apart=3 * 24 * 60)
    rows = [line for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 10
    linked, _resident, records, _size, live, window, opened, _rate = (
        cell.strip().replace(",", "") for cell in rows[-1].strip("|").split("|")
    )
    assert linked == "40"
    # Reports 3 days apart, a 7-day window: the newest report and the two before it.
    assert window == "3"
    events, articles = (int(n) for n in records.split(" / "))
    assert articles == 3
    assert events == int(live) <= 3
    # A story seen again 15 days later finds its event gone: a new event each time.
    assert opened == "40"
