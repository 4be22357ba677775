"""Each service process caps numpy's BLAS threads (``WIREWATCH_COMPUTE_THREADS``, default 1)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from wirewatch.core.settings import Settings
from wirewatch.runner import COMPUTE_THREAD_VARIABLES

# Threads of a fresh interpreter after numpy multiplied two matrices (OpenBLAS starts its pool then).
COUNT_THREADS = (
    "import os, numpy; numpy.ones((300, 300)) @ numpy.ones((300, 300)); "
    "print(len(os.listdir('/proc/self/task')))"
)


def threads(prelude: str, **env: str) -> int:
    clean = {k: v for k, v in os.environ.items() if k not in COMPUTE_THREAD_VARIABLES}
    out = subprocess.run(
        [sys.executable, "-c", prelude + COUNT_THREADS],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(out.stdout.strip().splitlines()[-1])


LIMIT = "from wirewatch.runner import limit_compute_threads; limit_compute_threads({}); "


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
def test_a_service_process_runs_numpy_on_one_thread_by_default() -> None:
    assert Settings().compute_threads == 1
    assert threads(LIMIT.format(1)) == 1
    if (os.cpu_count() or 1) > 1:
        # Without the cap OpenBLAS starts a thread per core: the cap is what makes it one.
        assert threads("") > 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
def test_variables_already_set_in_the_environment_win() -> None:
    assert threads(LIMIT.format(1), OPENBLAS_NUM_THREADS="2") == 2


def test_the_cap_refuses_to_run_after_numpy_is_imported() -> None:
    code = "import numpy\n" + LIMIT.format(1)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "before numpy is imported" in done.stderr
