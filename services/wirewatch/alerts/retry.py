"""Retries of one delivery to one target: exponential backoff with jitter, within a time budget.

A target's single try returns an :class:`Attempt`: delivered, or failed and worth retrying
(connection error, timeout, HTTP 408/425/429/5xx, SMTP 4xx) with an optional ``Retry-After``,
or failed for good (HTTP 4xx, a refused redirect, SMTP 5xx, bad credentials).
:func:`run_with_retries` turns the tries into one :class:`DeliveryResult`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from wirewatch.core.settings import Settings
from wirewatch.fetcher.politeness import backoff_delay

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one delivery to one target is tried."""

    attempts: int = 3
    backoff: float = 1.0
    max_seconds: float = 30.0
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            attempts=settings.alert_retry_attempts,
            backoff=settings.alert_retry_backoff,
            max_seconds=settings.alert_retry_max_seconds,
            timeout=settings.alert_timeout,
        )


@dataclass(frozen=True)
class Attempt:
    """The outcome of one try."""

    ok: bool
    retryable: bool = False
    reason: str = ""
    error_type: str = ""
    status: int | None = None
    retry_after: float | None = None

    @classmethod
    def delivered(cls, status: int | None = None) -> Attempt:
        return cls(ok=True, status=status)

    @classmethod
    def retry(
        cls, reason: str, error_type: str, status: int | None = None, retry_after: float | None = None
    ) -> Attempt:
        return cls(
            ok=False,
            retryable=True,
            reason=reason,
            error_type=error_type,
            status=status,
            retry_after=retry_after,
        )

    @classmethod
    def fail(cls, reason: str, error_type: str, status: int | None = None) -> Attempt:
        return cls(ok=False, retryable=False, reason=reason, error_type=error_type, status=status)


@dataclass(frozen=True)
class DeliveryResult:
    """One delivery to one target, all tries included. ``target`` is a name safe to log."""

    target: str
    ok: bool
    attempts: int
    elapsed: float
    reason: str = ""
    error_type: str = ""
    status: int | None = None
    retryable: bool = False  # failed with an error worth another try later (the target may come back)


async def run_with_retries(
    target: str,
    attempt: Callable[[float], Awaitable[Attempt]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
    rng: random.Random | None = None,
) -> DeliveryResult:
    """Call ``attempt(timeout)`` until it delivers, fails for good, or attempts or time run out.

    The wait before retry ``n`` is ``backoff * 2**(n-1)`` times a random factor in [0.5, 1.5),
    or the server's ``Retry-After`` when longer. A wait that would end past ``max_seconds`` is
    not taken: the delivery fails at once with the last reason.
    """
    start = clock()
    last = Attempt.fail("no attempt made", "Error")
    for number in range(1, policy.attempts + 1):
        remaining = policy.max_seconds - (clock() - start)
        if remaining <= 0:
            return _failed(
                target, number - 1, clock() - start, last, f"time budget of {policy.max_seconds:g} s spent"
            )
        timeout = min(policy.timeout, remaining)
        try:
            async with asyncio.timeout(timeout + 1.0):  # a safety net: targets enforce ``timeout`` themselves
                last = await attempt(timeout)
        except TimeoutError:
            last = Attempt.retry(f"no answer within {timeout:g} s", "TimeoutError")
        if last.ok:
            return DeliveryResult(target, True, number, clock() - start, status=last.status)
        if not last.retryable:
            return _failed(target, number, clock() - start, last, "not retryable")
        if number == policy.attempts:
            return _failed(target, number, clock() - start, last, f"gave up after {number} attempts")
        delay = backoff_delay(number - 1, policy.backoff, rng)
        if last.retry_after is not None:
            delay = max(delay, last.retry_after)
        if clock() - start + delay > policy.max_seconds:
            note = f"next try in {delay:.1f} s would pass the {policy.max_seconds:g} s budget"
            return _failed(target, number, clock() - start, last, note)
        await sleep(delay)
    return _failed(target, policy.attempts, clock() - start, last, "gave up")  # pragma: no cover


def _failed(target: str, attempts: int, elapsed: float, last: Attempt, note: str) -> DeliveryResult:
    reason = f"{last.reason} ({note}; {attempts} attempt{'s' if attempts != 1 else ''}, {elapsed:.1f} s)"
    return DeliveryResult(
        target, False, attempts, elapsed, reason, last.error_type, last.status, last.retryable
    )
