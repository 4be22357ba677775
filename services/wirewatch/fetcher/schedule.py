"""When to poll a feed next: adaptive intervals, and the per-feed health record.

A feed without its own ``interval`` in the feeds file starts at ``poll_interval`` and adapts to
what it publishes: a poll that finds new articles halves the interval, a quiet one (nothing
new, or a 304) makes it 1.5 times longer, always within ``[poll_interval_min,
poll_interval_max]``. What the feed itself asks (RSS ``<ttl>``, ``sy:updatePeriod`` /
``sy:updateFrequency``) is a lower bound, itself capped at ``poll_interval_max``. A feed with an
``interval`` in the feeds file is polled at exactly that interval. A failing feed backs off:
its interval times 2, 4, then 8 at most.

A feed the SSRF guard refused (an address ``fetch_allow_hosts`` could allow) is not failing
through its server's fault: the refusal is the fetcher's settings. So when its state is loaded
(a restart, or another instance taking it over), it is polled at once rather than after its
backoff: a fetcher started with that address allowed polls it within a second, and one with the
same settings finds the same refusal, without sending a request (no new dead letter: the reason
is the one recorded), and backs off again.

A :class:`FeedState` is also what survives a restart or a hand-over to another fetcher
instance: :meth:`FeedState.to_record` / :meth:`FeedState.from_record` turn it into the JSON value
kept in the fetcher's ``feeds`` table (``next_poll`` as wall-clock time, since monotonic clocks
differ between processes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from wirewatch.core.dates import iso_datetime
from wirewatch.fetcher.errors import refused_by_policy

#: A poll that found new articles divides the interval by this; a quiet one multiplies it by SLOWER.
FASTER = 2.0
SLOWER = 1.5


def poll_floor(lower: float, upper: float, asked: float | None = None) -> float:
    """The shortest interval allowed: ``lower``, or what the feed asks if longer, never past ``upper``."""
    return min(max(lower, asked or 0.0), upper)


def next_interval(
    current: float, new_items: int, *, lower: float, upper: float, asked: float | None = None
) -> float:
    """The interval after a successful poll that found ``new_items`` new articles."""
    proposed = current / FASTER if new_items > 0 else current * SLOWER
    return min(max(proposed, poll_floor(lower, upper, asked)), upper)


def failure_interval(interval: float, failures: int) -> float:
    """Backoff after ``failures`` consecutive failed polls: ``interval * 2**failures``, at most 8 times."""
    return float(interval * 2 ** min(max(failures, 1), 3))


@dataclass
class FeedState:
    """What the fetcher knows about one feed: conditional-GET validators, schedule and health."""

    next_poll: float = 0.0  # time.monotonic() of the next poll
    interval: float | None = None  # current interval; None until the first poll
    asked_interval: float | None = None  # the feed's own ttl / sy:updatePeriod, in seconds
    etag: str | None = None
    last_modified: str | None = None
    #: Validators of the child sitemaps of a sitemap index, by URL.
    child_validators: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    failures: int = 0  # consecutive failed polls
    last_error: str | None = None  # the current problem (None once the feed works again)
    last_error_at: datetime | None = None
    last_success: datetime | None = None
    polls: int = 0
    last_new: int = 0  # new articles found by the last poll (what the interval adapts to)
    items_seen: int = 0  # distinct new articles found in the feed (kept across restarts)
    entries: int = 0  # items in the feed at the last full poll
    backlog: int = 0  # new articles left for the next poll (more than feed_max_new_per_poll)
    format: str | None = None

    def to_record(self) -> dict[str, Any]:
        """JSON-ready: what a restarted or another fetcher instance needs to carry on."""
        next_at = time.time() + (self.next_poll - time.monotonic()) if self.next_poll else None
        return {
            "next_poll_at": round(next_at, 3) if next_at is not None else None,
            "interval": self.interval,
            "asked_interval": self.asked_interval,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "child_validators": {url: list(pair) for url, pair in self.child_validators.items()},
            "failures": self.failures,
            "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at, "microseconds"),
            "last_success": _iso(self.last_success, "microseconds"),
            "polls": self.polls,
            "last_new": self.last_new,
            "items_seen": self.items_seen,
            "entries": self.entries,
            "backlog": self.backlog,
            "format": self.format,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> FeedState:
        """The state saved by :meth:`to_record` (unknown or missing keys: defaults); due at once
        when its last poll was refused by the SSRF guard's policy (see the module doc)."""
        next_at = record.get("next_poll_at")
        validators = record.get("child_validators") or {}
        failures = int(record.get("failures") or 0)
        if failures and refused_by_policy(record.get("last_error")):
            next_at = None  # the settings may have changed since: see again now
        return cls(
            next_poll=time.monotonic() + (float(next_at) - time.time()) if next_at else 0.0,
            interval=_float(record.get("interval")),
            asked_interval=_float(record.get("asked_interval")),
            etag=record.get("etag"),
            last_modified=record.get("last_modified"),
            child_validators={
                str(url): (pair[0], pair[1])
                for url, pair in validators.items()
                if isinstance(pair, list | tuple) and len(pair) == 2
            },
            failures=failures,
            last_error=record.get("last_error"),
            last_error_at=iso_datetime(record.get("last_error_at")),
            last_success=iso_datetime(record.get("last_success")),
            polls=int(record.get("polls") or 0),
            last_new=int(record.get("last_new") or 0),
            items_seen=int(record.get("items_seen") or 0),
            entries=int(record.get("entries") or 0),
            backlog=int(record.get("backlog") or 0),
            format=record.get("format"),
        )

    def health(self, url: str, name: str | None) -> dict[str, Any]:
        """The record served at the fetcher's ``/feeds`` page (JSON-ready: times are ISO 8601 strings)."""
        next_poll = _date_in(self.next_poll - time.monotonic())
        return {
            "url": url,
            "name": name,
            "format": self.format,
            "last_success": _iso(self.last_success),
            "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at),
            "consecutive_failures": self.failures,
            "polls": self.polls,
            "items_seen": self.items_seen,
            "entries": self.entries,
            "backlog": self.backlog,
            "interval": round(self.interval, 3) if self.interval is not None else None,
            "asked_interval": self.asked_interval,
            "next_poll": _iso(next_poll) if self.polls or self.next_poll else None,
        }


def _date_in(seconds: float) -> datetime:
    """Now plus ``seconds`` (now if negative), as a date; the latest date when that is past what
    a date holds (an interval of 1e12 seconds, a corrupt saved record): never an exception."""
    try:
        return datetime.now(UTC) + timedelta(seconds=max(seconds, 0.0))
    except (OverflowError, ValueError):  # past year 9999; ValueError: not a number
        return datetime.max.replace(tzinfo=UTC)


def _iso(value: datetime | None, timespec: str = "seconds") -> str | None:
    return value.isoformat(timespec=timespec) if value is not None else None


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None
