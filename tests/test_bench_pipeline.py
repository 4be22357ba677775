"""benchmarks/bench_pipeline.py still runs: a small load through the whole local stack.

The pages are the suite's own stories (tests/stories.py) given to the script as a ``.jsonl`` file,
so no benchmark data set is needed. It checks that the tables come out with numbers, not the
numbers themselves (those are for benchmarks/RESULTS.md, on a quiet machine).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
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
    docs = tmp_path / "stories.jsonl"
    docs.write_text(
        "\n".join(
            json.dumps({"title": s.title, "text": "\n".join(s.paragraphs)})
            for s in (
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
            )
        )
    )
    bench = load_script()
    args = "--articles 30 --rate 10 --window 30 --claims 50 --matching 3 --feeds 3 --warmup 2 --idle 0"
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
