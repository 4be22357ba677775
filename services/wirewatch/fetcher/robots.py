"""robots.txt: read once per site (scheme, host, port), cached, honoured for our user agent.

Rules (RFC 9309, as crawlers apply it): a robots.txt answered with a 4xx status (404 …) means
"no rules", everything allowed; a 5xx, a 429, or no answer at all means "unknown": the fetch is
refused with :class:`RobotsUnavailableError` and retried later (the failure is cached for
:data:`ROBOTS_ERROR_TTL` seconds so a down host is not asked again on every article). A parsed
file is cached for ``fetch_robots_ttl``. ``Disallow``/``Allow`` are matched for the product token
of ``user_agent`` (``wirewatch`` in ``wirewatch/0.1 (+…)``), falling back to ``*``; an integer
``Crawl-delay`` is returned so the politeness gate can space requests by it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote
from urllib.robotparser import RobotFileParser

import httpx

from wirewatch.fetcher.errors import (
    FetchError,
    HTTPStatusError,
    RobotsDisallowedError,
    RobotsUnavailableError,
    UnsafeURLError,
)

#: Seconds before an unreadable robots.txt (5xx, unreachable) is asked for again.
ROBOTS_ERROR_TTL = 60.0
#: robots.txt bodies larger than this are not read (RFC 9309 asks parsers to handle 500 KiB).
ROBOTS_MAX_BYTES = 512 * 1024

#: Fetches a robots.txt URL and returns its body; raises ``FetchError`` (``HTTPStatusError`` on a status).
RobotsFetch = Callable[[str], Awaitable[bytes]]
Clock = Callable[[], float]


@dataclass(frozen=True)
class RobotsRules:
    """One site's rules; ``parser`` None means everything is allowed."""

    parser: RobotFileParser | None
    expires: float
    error: str | None = None  # set when robots.txt could not be read: every fetch is refused

    def allows(self, url: str, agent: str) -> bool:
        return self.parser is None or self.parser.can_fetch(agent, url)

    def crawl_delay(self, agent: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(agent)
        return float(delay) if delay is not None else None


def robots_url(url: httpx.URL) -> str:
    """``scheme://host[:port]/robots.txt`` for ``url``."""
    return str(httpx.URL(scheme=url.scheme, host=url.host, port=url.port, path="/robots.txt"))


def _int_safe(value: str) -> bool:
    """False for what ``RobotFileParser`` would pass to ``int()`` and see raise: digits ``str.isdigit``
    accepts but ``int`` does not (``²``), or more of them than ``int`` parses (a 5,000-digit delay)."""
    value = value.strip()
    return not value.isdigit() or (value.isascii() and len(value) <= 10)


def parse_robots(body: bytes) -> RobotFileParser:
    """The rules of a robots.txt body; never raises. A ``Crawl-delay`` or ``Request-rate`` value the
    standard parser would crash on is ignored, like any other malformed value."""
    lines = []
    for line in body.decode("utf-8", "replace").splitlines():
        field, colon, value = line.split("#", 1)[0].partition(":")
        name = field.strip().lower()
        numbers = unquote(value.strip()).split("/")
        if colon and name in ("crawl-delay", "request-rate") and not all(map(_int_safe, numbers)):
            line = f"{name}: invalid"
        lines.append(line)
    parser = RobotFileParser()
    parser.parse(lines)
    return parser


class RobotsCache:
    """robots.txt rules per site, fetched on first use (once, however many ask at the same time)."""

    def __init__(self, fetch: RobotsFetch, agent: str, ttl: float, clock: Clock = time.monotonic) -> None:
        self._fetch = fetch
        self.agent = agent
        self.ttl = ttl
        self._clock = clock
        self._rules: dict[str, RobotsRules] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def rules(self, url: httpx.URL) -> RobotsRules:
        key = robots_url(url)
        cached = self._rules.get(key)
        if cached is not None and cached.expires > self._clock():
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._rules.get(key)
            if cached is not None and cached.expires > self._clock():
                return cached
            rules = await self._load(key)
            self._rules[key] = rules
            return rules

    async def _load(self, key: str) -> RobotsRules:
        try:
            body = await self._fetch(key)
        except HTTPStatusError as exc:
            if 400 <= exc.status < 500 and exc.status != 429:
                return RobotsRules(None, self._clock() + self.ttl)
            return RobotsRules(None, self._clock() + ROBOTS_ERROR_TTL, error=str(exc))
        except UnsafeURLError:
            raise  # an SSRF refusal is reported as such, never cached as "robots.txt unreadable"
        except FetchError as exc:
            return RobotsRules(None, self._clock() + ROBOTS_ERROR_TTL, error=str(exc))
        return RobotsRules(parse_robots(body), self._clock() + self.ttl)

    async def check(self, url: httpx.URL) -> float | None:
        """Raise if robots.txt forbids ``url`` (or cannot be read); else return its Crawl-delay."""
        rules = await self.rules(url)
        if rules.error is not None:
            raise RobotsUnavailableError(
                f"cannot fetch {url}: robots.txt unreadable, retrying later ({rules.error})"
            )
        if not rules.allows(str(url), self.agent):
            raise RobotsDisallowedError("disallowed by robots.txt")
        return rules.crawl_delay(self.agent)
