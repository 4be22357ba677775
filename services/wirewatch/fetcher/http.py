"""Every HTTP request the fetcher makes: safe, bounded and polite.

:meth:`HttpFetcher.get` fetches one URL (a feed, an article, a robots.txt) and returns a
:class:`Page` or raises a :class:`~wirewatch.fetcher.errors.FetchError` subclass saying why:

* **safety** — each URL, the first and every redirect target, is checked by the SSRF guard
  (:mod:`wirewatch.fetcher.safety`) before it is requested, and again at connect time;
  redirects are followed here, one hop at a time, at most ``fetch_max_redirects``, loops refused;
* **caps** — ``fetch_timeout`` is a deadline for each request (each redirect hop, each
  retry): connect, headers and the entire body, so a server trickling bytes is cut off;
  ``fetch_max_bytes`` bounds the *decoded* body (gzip, deflate, brotli and zstd are decompressed
  here, in bounded steps, so a small compressed bomb never inflates past the cap in memory); and
  the media type must suit the kind of fetch (:data:`FEED_TYPES`, :data:`ARTICLE_TYPES`; a response without
  Content-Type is accepted);
* **politeness** — robots.txt (:mod:`wirewatch.fetcher.robots`) is honoured for feeds and
  articles (and for each redirect target's own site); requests to one host go through its gate
  (:mod:`wirewatch.fetcher.politeness`); connection errors, 408, 429 and 5xx are retried
  ``fetch_retries`` times with exponential backoff and jitter; ``Retry-After`` on 429/503
  pauses the whole host.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol, Self

import brotli
import httpx
import zstandard

from wirewatch.core.logs import get_logger
from wirewatch.core.settings import Settings
from wirewatch.fetcher.errors import (
    BodyTooLargeError,
    ContentTypeError,
    DeadlineError,
    FetchError,
    HTTPStatusError,
    RedirectError,
    TransportError,
)
from wirewatch.fetcher.politeness import MAX_CRAWL_DELAY, Politeness, backoff_delay, parse_retry_after
from wirewatch.fetcher.robots import ROBOTS_MAX_BYTES, RobotsCache
from wirewatch.fetcher.safety import AddressPolicy, GuardedTransport

log = get_logger(__name__)

FetchKind = Literal["feed", "article", "robots"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Statuses whose ``Retry-After`` pauses the host.
PAUSE_STATUSES = frozenset({429, 503})
#: A retry that would have to wait longer than this is not made now: the error goes up and the
#: feed or article is tried again on the fetcher's own schedule (the host stays paused meanwhile).
MAX_INLINE_WAIT = 30.0
#: Decompressed bytes produced per step: what a compressed chunk can inflate to in memory at once.
DECODE_STEP = 64 * 1024

#: Content codings the fetcher decodes (itself, bounded: see :func:`read_capped`).
ACCEPT_ENCODING = "gzip, deflate, br, zstd"
#: Media types accepted for feeds: XML, RSS, Atom, RDF, JSON Feed, plain text, gzip (``.xml.gz`` sitemaps).
FEED_TYPES = "XML, RSS, Atom, JSON, gzip or plain text"
GZIP_TYPES = frozenset({"application/gzip", "application/x-gzip"})
#: Media types accepted for article pages.
ARTICLE_TYPES = frozenset({"text/html", "application/xhtml+xml"})


#: Response headers kept with each article (``RawArticle.fetch_headers``), values cut at KEPT_HEADER_CHARS.
KEPT_HEADERS = (
    "etag",
    "last-modified",
    "date",
    "expires",
    "server",
    "content-type",
    "content-language",
    "content-encoding",
    "content-length",
    "cache-control",
    "age",
    "vary",
    "x-cache",
    "cf-cache-status",
    "x-served-by",
    "via",
)
KEPT_HEADER_CHARS = 256


def kept_headers(headers: dict[str, str]) -> dict[str, str]:
    """The allow-listed headers of a response, lower-case names, values truncated."""
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}
    return {name: lowered[name][:KEPT_HEADER_CHARS] for name in KEPT_HEADERS if name in lowered}


@dataclass(frozen=True)
class Page:
    url: str
    status: int
    body: bytes
    content_type: str | None
    headers: dict[str, str]


@dataclass(frozen=True)
class _Redirect:
    location: str


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def content_type_allowed(kind: FetchKind, content_type: str | None) -> bool:
    """Whether a response with this Content-Type is read for this kind of fetch."""
    media = media_type(content_type)
    if not media or kind == "robots":
        return True
    if kind == "article":
        return media in ARTICLE_TYPES
    if media in GZIP_TYPES:
        return True
    main, _, sub = media.partition("/")
    return main in ("text", "application") and (
        sub in ("xml", "json", "plain", "rss", "atom") or sub.endswith(("+xml", "+json"))
    )


# --- bounded decompression --------------------------------------------------------------------


class DecodeError(ValueError):
    """A compressed body that does not decode."""


class _Decoder(Protocol):
    encoding: str

    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def flush(self) -> Iterator[bytes]: ...


class _ZlibDecoder:
    """gzip or deflate, inflated at most :data:`DECODE_STEP` bytes at a time."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._raw_deflate_fallback = encoding == "deflate"  # some servers send raw deflate
        wbits = zlib.MAX_WBITS | 16 if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._inflate = zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                out = self._inflate.decompress(data, DECODE_STEP)
            except zlib.error as exc:
                if not self._raw_deflate_fallback:
                    raise DecodeError(str(exc)) from exc
                self._raw_deflate_fallback = False
                self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._raw_deflate_fallback = False
            data = self._inflate.unconsumed_tail
            if out:
                yield out
            elif self._inflate.eof:
                break

    def flush(self) -> Iterator[bytes]:
        out = self._inflate.flush()
        if out:
            yield out


class _BrotliDecoder:
    """brotli (``br``), at most about :data:`DECODE_STEP` bytes of output per step."""

    encoding = "br"

    def __init__(self) -> None:
        self._brotli = brotli.Decompressor()

    def _step(self, data: bytes) -> bytes:
        try:
            return bytes(self._brotli.process(data, output_buffer_limit=DECODE_STEP))
        except brotli.error as exc:
            raise DecodeError(str(exc)) from exc

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._brotli.is_finished():
            return
        out = self._step(data)
        while True:
            if out:
                yield out
            if self._brotli.can_accept_more_data():
                return
            out = self._step(b"")  # output held back by the limit: drain it, step by step
            if not out:
                return

    def flush(self) -> Iterator[bytes]:
        return iter(())


#: zstd input is fed this many bytes at a time: a zstd block (at most 128 KiB of output) takes at
#: least 4 bytes, so one step yields at most 512 KiB however the stream was crafted.
ZSTD_STEP_INPUT = 16
#: Largest zstd window accepted (the HTTP ``zstd`` content coding allows 8 MiB, RFC 9659).
ZSTD_MAX_WINDOW = 8 * 1024 * 1024


class _ZstdDecoder:
    """zstd, fed in small slices so that output stays bounded; several frames are read in turn."""

    encoding = "zstd"

    def __init__(self) -> None:
        self._zstd = self._new()

    @staticmethod
    def _new() -> zstandard.ZstdDecompressionObj:
        return zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).decompressobj()

    def feed(self, data: bytes) -> Iterator[bytes]:
        view = memoryview(data)
        for start in range(0, len(view), ZSTD_STEP_INPUT):
            chunk = bytes(view[start : start + ZSTD_STEP_INPUT])
            try:
                while chunk:
                    out = self._zstd.decompress(chunk)
                    chunk = b""
                    if self._zstd.eof:  # a frame ended: what follows is the next frame
                        chunk = self._zstd.unused_data
                        self._zstd = self._new()
                    if out:
                        yield out
            except zstandard.ZstdError as exc:
                raise DecodeError(str(exc)) from exc

    def flush(self) -> Iterator[bytes]:
        return iter(())


def _decoders(content_encoding: str | None, url: str) -> list[_Decoder]:
    """Decoders in the order to apply them (the reverse of the header's list)."""
    decoders: list[_Decoder] = []
    for raw in reversed((content_encoding or "").split(",")):
        encoding = raw.strip().lower()
        if encoding in ("", "identity"):
            continue
        if encoding in ("gzip", "x-gzip", "deflate"):
            decoders.append(_ZlibDecoder(encoding))
        elif encoding == "br":
            decoders.append(_BrotliDecoder())
        elif encoding == "zstd":
            decoders.append(_ZstdDecoder())
        else:
            raise FetchError(f"cannot fetch {url}: unsupported content encoding {encoding!r}")
    return decoders


def _decode(decoders: list[_Decoder], data: bytes) -> Iterator[bytes]:
    if not decoders:
        if data:
            yield data
        return
    for piece in decoders[0].feed(data):
        yield from _decode(decoders[1:], piece)


def _flush(decoders: list[_Decoder]) -> Iterator[bytes]:
    for i, decoder in enumerate(decoders):
        for piece in decoder.flush():
            yield from _decode(decoders[i + 1 :], piece)


class _Capped:
    """Decoded pieces, collected until they pass ``max_bytes``."""

    def __init__(self, max_bytes: int, url: str) -> None:
        self.max_bytes = max_bytes
        self.url = url
        self.size = 0
        self.chunks: list[bytes] = []

    def take(self, pieces: Iterator[bytes]) -> None:
        for piece in pieces:
            self.size += len(piece)
            if self.size > self.max_bytes:
                raise BodyTooLargeError(f"body of {self.url} is larger than {self.max_bytes} bytes")
            self.chunks.append(piece)

    def body(self) -> bytes:
        return b"".join(self.chunks)


async def read_capped(response: httpx.Response, max_bytes: int, url: str) -> bytes:
    """The decoded body, raising ``BodyTooLargeError`` as soon as it passes ``max_bytes``.

    The raw (compressed) stream is read and inflated here in steps of at most
    :data:`DECODE_STEP` bytes, so memory stays near ``max_bytes`` whatever the compression ratio."""
    decoders = _decoders(response.headers.get("content-encoding"), url)
    capped = _Capped(max_bytes, url)
    try:
        async for raw in response.aiter_raw():
            capped.take(_decode(decoders, raw))
        capped.take(_flush(decoders))
    except DecodeError as exc:
        encodings = ", ".join(d.encoding for d in reversed(decoders))
        raise FetchError(f"cannot fetch {url}: cannot decode its {encodings} body: {exc}") from exc
    return capped.body()


def inflate_capped(data: bytes, encoding: str, max_bytes: int, url: str) -> bytes:
    """``data`` decoded from ``encoding`` (e.g. a ``.xml.gz`` file), bounded like a response body."""
    decoders = _decoders(encoding, url)
    capped = _Capped(max_bytes, url)
    try:
        capped.take(_decode(decoders, data))
        capped.take(_flush(decoders))
    except DecodeError as exc:
        raise FetchError(f"cannot decode the {encoding} body of {url}: {exc}") from exc
    return capped.body()


# --- the client ---------------------------------------------------------------------------------


class HttpFetcher:
    """One per fetcher process: the httpx client, the SSRF policy, robots cache and host gates."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.policy = AddressPolicy.from_entries(settings.fetch_allow_hosts)
        self.politeness = Politeness(settings.fetch_host_concurrency)
        self.robots = RobotsCache(self._fetch_robots, settings.user_agent, settings.fetch_robots_ttl)
        self._slots = asyncio.Semaphore(settings.fetch_concurrency)
        limits = httpx.Limits(max_connections=settings.fetch_concurrency * 2)
        self.client = httpx.AsyncClient(
            transport=transport or GuardedTransport(self.policy, limits=limits),
            timeout=httpx.Timeout(settings.fetch_timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def get(
        self,
        url: str,
        kind: FetchKind,
        headers: dict[str, str] | None = None,
        *,
        max_bytes: int | None = None,
        low_priority: bool = False,
    ) -> Page:
        """GET ``url``, following redirects one checked hop at a time.

        ``low_priority`` (backfills): each host serves waiting ordinary requests first."""
        limit = max_bytes or self.settings.fetch_max_bytes
        try:
            seen = {url, str(httpx.URL(url))}
        except (httpx.InvalidURL, TypeError, ValueError):
            seen = {url}  # the SSRF check below refuses it with a clear message
        current = url
        for _ in range(self.settings.fetch_max_redirects + 1):
            result = await self._hop(current, kind, headers, limit, low_priority)
            if isinstance(result, Page):
                return result
            if result.location in seen:
                raise RedirectError(f"cannot fetch {url}: redirect loop at {result.location}")
            seen.add(result.location)
            current = result.location
        raise RedirectError(
            f"cannot fetch {url}: more than {self.settings.fetch_max_redirects} redirects (last to {current})"
        )

    async def _fetch_robots(self, url: str) -> bytes:
        return (await self.get(url, "robots", max_bytes=ROBOTS_MAX_BYTES)).body

    async def _hop(
        self, url: str, kind: FetchKind, headers: dict[str, str] | None, max_bytes: int, low: bool = False
    ) -> Page | _Redirect:
        """One URL, no redirect followed: check it, ask robots.txt, then try (and retry) it.

        The SSRF check runs again before each attempt (a failed name lookup is retried too)."""
        attempt = 0
        delay: float | None = None  # set once robots.txt has been asked
        while True:
            try:
                target = await self.policy.check_url(url)
                if delay is None:
                    delay = self.settings.fetch_host_delay
                    crawl_delay = await self.robots.check(target) if kind != "robots" else None
                    if crawl_delay is not None:
                        delay = max(delay, min(crawl_delay, MAX_CRAWL_DELAY))
                gate = self.politeness.gate(target.host)
                async with gate.slot(delay, low=low), self._slots:
                    return await self._request(target, url, kind, headers, max_bytes)
            except (HTTPStatusError, TransportError) as exc:
                retry_after = exc.retry_after if isinstance(exc, HTTPStatusError) else None
                if retry_after is not None:  # only an HTTP answer has one: ``gate`` is set
                    gate.pause(retry_after)
                    log.warning(
                        "host asked us to wait",
                        extra={"host": target.host, "seconds": retry_after, "url": url},
                    )
                retryable = isinstance(exc, TransportError) or exc.status in RETRY_STATUSES
                if not retryable or attempt >= self.settings.fetch_retries:
                    raise
                wait = backoff_delay(attempt, self.settings.fetch_retry_backoff)
                if max(wait, retry_after or 0.0) > MAX_INLINE_WAIT:
                    raise
                attempt += 1
                log.info(
                    "retrying fetch",
                    extra={"url": url, "attempt": attempt, "reason": str(exc), "backoff": round(wait, 3)},
                )
                await asyncio.sleep(wait)  # the gate adds whatever is left of a Retry-After pause

    async def _request(
        self, target: httpx.URL, url: str, kind: FetchKind, headers: dict[str, str] | None, max_bytes: int
    ) -> Page | _Redirect:
        """One HTTP exchange within the ``fetch_timeout`` deadline."""
        timeout = self.settings.fetch_timeout
        deadline = asyncio.timeout(timeout)
        started = time.monotonic()
        try:
            async with deadline:
                request = self.client.build_request("GET", target, headers=headers)
                response = await self.client.send(request, stream=True)
                try:
                    return await self._read(response, url, kind, max_bytes)
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            if deadline.expired():
                raise DeadlineError(f"cannot fetch {url}: no complete response within {timeout:g} s") from exc
            raise TransportError(f"cannot fetch {url}: {type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:
            if isinstance(exc, httpx.TimeoutException) and time.monotonic() - started >= timeout:
                raise DeadlineError(f"cannot fetch {url}: no complete response within {timeout:g} s") from exc
            raise TransportError(f"cannot fetch {url}: {type(exc).__name__}: {exc}") from exc

    async def _read(
        self, response: httpx.Response, url: str, kind: FetchKind, max_bytes: int
    ) -> Page | _Redirect:
        status = response.status_code
        if status in REDIRECT_STATUSES:
            location = response.headers.get("location")
            if not location:
                raise RedirectError(f"cannot fetch {url}: HTTP {status} without a Location header")
            try:
                return _Redirect(str(response.url.join(location).copy_with(fragment=None)))
            except (httpx.InvalidURL, ValueError) as exc:
                raise RedirectError(f"cannot fetch {url}: bad redirect Location {location!r}") from exc
        if status == 304:
            return Page(str(response.url), 304, b"", None, dict(response.headers))
        if status >= 400:
            retry_after = (
                parse_retry_after(response.headers.get("retry-after")) if status in PAUSE_STATUSES else None
            )
            raise HTTPStatusError(f"HTTP {status} for {url}", status, retry_after)
        content_type = response.headers.get("content-type")
        if not content_type_allowed(kind, content_type):
            expected = FEED_TYPES if kind == "feed" else " or ".join(sorted(ARTICLE_TYPES))
            media = media_type(content_type)
            raise ContentTypeError(f"cannot fetch {url}: content type {media!r} is not {expected}", media)
        body = await read_capped(response, max_bytes, url)
        return Page(str(response.url), status, body, content_type, dict(response.headers))
