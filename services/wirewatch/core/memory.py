"""Give a service's freed memory back to the operating system.

glibc's ``free`` returns memory to the system only from the top of its heaps. Pages freed in the
middle stay with the process: after a burst (a backlog drained after an outage, a replay) a
service's RSS stays at its peak although the memory is free, and an operator cannot tell that
from a leak. ``malloc_trim(0)`` hands every whole free page back (``madvise``), wherever it is.
The services call it on a timer (``WIREWATCH_MEMORY_TRIM_SECONDS``); what it returned is counted
on ``/metrics``. Where the C library has no ``malloc_trim`` (musl, macOS) nothing is done.
Measured in benchmarks/RESULTS.md ("Freed memory handed back").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@cache
def _malloc_trim() -> Any | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def can_trim() -> bool:
    return _malloc_trim() is not None


def resident_bytes() -> int:
    """This process's resident set size (Linux), 0 where it cannot be read."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


@dataclass(frozen=True)
class Trim:
    """One call of ``malloc_trim``: resident bytes before and after, and its duration."""

    before: int
    after: int
    seconds: float

    @property
    def returned(self) -> int:
        return max(0, self.before - self.after)


def trim() -> Trim | None:
    """Return the process's free heap pages to the system; None where it cannot."""
    malloc_trim = _malloc_trim()
    if malloc_trim is None:
        return None
    before = resident_bytes()
    started = time.perf_counter()
    malloc_trim(0)
    seconds = time.perf_counter() - started
    return Trim(before=before, after=resident_bytes(), seconds=seconds)
