"""Politeness towards each host: a few requests at a time, spaced out, paused when asked.

Every request to a host goes through that host's :class:`HostGate`: at most
``fetch_host_concurrency`` requests in flight, request starts spaced by at least the host's
delay (``fetch_host_delay``, or the robots.txt ``Crawl-delay`` when larger), and no request
before the end of a pause set by ``Retry-After`` on a 429/503. Waiting for a gate holds no
global fetch slot, so one slow or paused host never holds up the others.

Backfills ask for *low-priority* slots: at most one such request per host at a time, and it
starts only when no ordinary (live) request is waiting for that host, so a live request waits
behind one backfill request at most. Both kinds share the same limits and spacing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: Longest pause a ``Retry-After`` header can impose on a host (seconds).
MAX_RETRY_AFTER = 3600.0
#: Longest ``Crawl-delay`` honoured (seconds): a larger one would stall the host's feeds for hours.
MAX_CRAWL_DELAY = 300.0
#: Longest single backoff between two attempts at one URL (seconds).
MAX_BACKOFF = 60.0

Clock = Callable[[], float]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date), capped; None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # not str.isdigit() alone: it says yes to "²"
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def backoff_delay(attempt: int, base: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: ``base * 2**attempt``, times a random factor in [0.5, 1.5)."""
    factor = (rng or random).uniform(0.5, 1.5)
    return float(min(base * 2**attempt * factor, MAX_BACKOFF))


class HostGate:
    """Concurrency limit, spacing between request starts, and pauses, for one host."""

    def __init__(self, concurrency: int, clock: Clock = time.monotonic) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._order = asyncio.Lock()  # request starts are decided one at a time, first come first served
        self._clock = clock
        self.next_start = 0.0
        self.paused_until = 0.0
        self._waiting = 0  # ordinary requests waiting to start
        self._changed = asyncio.Event()  # a slot was released or a waiting request started
        self._low = asyncio.Semaphore(1)  # low-priority requests: one at a time

    def pause(self, seconds: float) -> None:
        """No request starts for ``seconds`` from now (an earlier, longer pause still holds)."""
        self.paused_until = max(self.paused_until, self._clock() + seconds)

    def wait_time(self) -> float:
        return max(self.next_start, self.paused_until) - self._clock()

    @asynccontextmanager
    async def slot(self, delay: float, *, low: bool = False) -> AsyncIterator[None]:
        """Hold one of the host's slots; the body starts ``delay`` s or more after the previous start.

        ``low`` (a backfill): start only when no ordinary request is waiting, a slot is free and
        the spacing allows it, so an ordinary request arriving later waits behind it at most."""
        if low:
            async with self._low:
                await self._low_turn()
                try:
                    async with self._slots:
                        await self._start(delay)
                        yield
                finally:
                    self._changed.set()
            return
        self._waiting += 1
        started = False
        try:
            async with self._slots:
                await self._start(delay)
                started = True
                self._waiting -= 1
                self._changed.set()
                yield
        finally:
            if not started:
                self._waiting -= 1
            self._changed.set()

    async def _low_turn(self) -> None:
        while True:
            busy = bool(self._waiting) or self._slots.locked()
            wait = self.wait_time()
            if not busy and wait <= 0:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), None if busy else wait)

    async def _start(self, delay: float) -> None:
        async with self._order:
            # A timed wait, not polling: re-checked because a pause may be set while we sleep.
            while (wait := self.wait_time()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
            self.next_start = self._clock() + delay


class Politeness:
    """The gates of every host seen, by lower-case host name (all ports of a host share one)."""

    def __init__(self, concurrency: int, clock: Clock = time.monotonic) -> None:
        self.concurrency = concurrency
        self._clock = clock
        self._gates: dict[str, HostGate] = {}

    def gate(self, host: str) -> HostGate:
        key = host.lower().rstrip(".")
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = HostGate(self.concurrency, self._clock)
        return gate
