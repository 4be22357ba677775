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


def last_line(code: str, **env: str) -> str:
    """The last line a fresh interpreter prints running ``code``, with none of the cap's
    variables set but those in ``env``."""
    clean = {k: v for k, v in os.environ.items() if k not in COMPUTE_THREAD_VARIABLES}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip().splitlines()[-1]


def threads(prelude: str, **env: str) -> int:
    return int(last_line(prelude + COUNT_THREADS, **env))


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


# numpy's BLAS pool size as threadpoolctl reads it, after the cap ran in a process that had
# already imported numpy (the eval commands, the benchmarks).
BLAS_THREADS = (
    "import numpy\n{}\nfrom threadpoolctl import threadpool_info\n"
    "print(min(p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'))"
)


def blas_threads_after_import(cap: str, **env: str) -> int:
    return int(last_line(BLAS_THREADS.format(cap), **env))


def test_after_numpy_is_imported_the_cap_applies_in_place() -> None:
    if (os.cpu_count() or 1) > 1:
        assert blas_threads_after_import("") > 1
    assert blas_threads_after_import(LIMIT.format(1)) == 1
    assert blas_threads_after_import(LIMIT.format(1), OPENBLAS_NUM_THREADS="2") == 2  # the environment wins


def test_the_eval_commands_run_with_the_cap() -> None:
    code = (
        "import sys; from wirewatch.cli import main; sys.argv = ['wirewatch', 'eval', 'dedup', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "import os; print(os.environ['OPENBLAS_NUM_THREADS'])"
    )
    assert last_line(code, WIREWATCH_COMPUTE_THREADS="3") == "3"


def test_the_sentence_encoder_keeps_to_the_cap() -> None:
    """The encoder's model raises numpy's BLAS to its own thread count while it encodes: by
    default that count is what the process allows, so a capped service stays on one thread."""
    code = LIMIT.format(1) + (
        "from wirewatch.core.vectors import SentenceEncoder\n"
        "print(SentenceEncoder().threads, SentenceEncoder(threads=3).threads)"
    )
    assert last_line(code).split() == ["1", "3"]
    if (os.cpu_count() or 1) > 1:
        uncapped = "from wirewatch.core.vectors import SentenceEncoder; print(SentenceEncoder().threads)"
        assert int(last_line(uncapped)) == os.cpu_count()
