"""Freed memory handed back to the system (issue 7, "run it for months").

glibc keeps pages freed in the middle of its heap: after a burst a service's RSS stays at its
peak. ``core.memory.trim`` (``malloc_trim(0)``) returns them; the services call it on a timer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from prometheus_client import REGISTRY

from conftest import make_settings
from wirewatch.core import memory
from wirewatch.core.app import ServiceApp

pytestmark = pytest.mark.skipif(not memory.can_trim(), reason="the C library has no malloc_trim")

#: 80 MB of 2 KB buffers (malloc'd by glibc: above pymalloc's 512 bytes, below the mmap threshold),
#: all freed but the last, which pins the top of the heap so that ``free`` alone cannot shrink it.
BURST = """
import json
from wirewatch.core import memory
base = memory.resident_bytes()
buffers = [bytes(2048) for _ in range(40_000)]
pin = buffers[-1]
del buffers
freed = memory.resident_bytes()
trimmed = memory.trim()
print(json.dumps({"base": base, "freed": freed, "before": trimmed.before, "after": trimmed.after,
                  "returned": trimmed.returned, "seconds": trimmed.seconds}))
"""


def test_trim_returns_the_memory_a_burst_freed() -> None:
    out = subprocess.run([sys.executable, "-c", BURST], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout)
    assert result["freed"] - result["base"] > 60 << 20, result  # freeing alone gave nothing back
    assert result["returned"] > 60 << 20, result  # of the 80 MB, most goes back to the system
    assert result["after"] == result["before"] - result["returned"]
    assert result["seconds"] < 1.0


def test_resident_bytes_is_this_process() -> None:
    assert 10 << 20 < memory.resident_bytes() < 64 << 30


def trim_timers(service: ServiceApp) -> list[Any]:
    """The service's Faust tasks that run ``trim_memory`` (Faust keeps no public list of them)."""
    return [task for task in service.app._app_tasks if "trim_memory" in task.__qualname__]


def _returned_total() -> float:
    return REGISTRY.get_sample_value("wirewatch_memory_returned_bytes_total") or 0.0


async def test_a_service_trims_on_its_timer_and_counts_it(tmp_path: Any) -> None:
    settings = make_settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path, memory_trim_seconds=5)
    service = ServiceApp("indexer", settings)
    assert len(trim_timers(service)) == 1
    counted = _returned_total()
    burst = [bytes(2048) for _ in range(20_000)]
    pin = burst[-1]
    del burst
    trimmed = await service.trim_memory()
    assert trimmed is not None and trimmed.returned > 0
    assert _returned_total() == counted + trimmed.returned
    assert pin


def test_no_trim_timer_when_turned_off(tmp_path: Any) -> None:
    settings = make_settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path, memory_trim_seconds=0)
    assert not trim_timers(ServiceApp("enricher", settings))
