"""SSRF guard: feeds and their links are untrusted input, so never fetch internal addresses.

A URL is refused unless its scheme is http(s) and **every** address its host resolves to is
globally routable: loopback, private (RFC 1918, ULA), link-local (including the cloud metadata
address 169.254.169.254), multicast, reserved, unspecified, carrier-grade NAT and other
non-global ranges are refused, for IPv4, IPv6 and IPv4 embedded in IPv6 (mapped, 6to4,
Teredo, NAT64). ``fetch_allow_hosts`` lists exceptions: host names (allowed whatever they
resolve to) and addresses or CIDR blocks (e.g. ``127.0.0.1/32`` for tests and the demo site).

The check runs twice for each request: :func:`AddressPolicy.check_url` before the request is
sent (on the first URL and on every redirect hop, with a clear error naming the URL), and
:class:`GuardedBackend` when the connection is opened. The second one closes the DNS-rebinding
gap (a name that resolves to a public address for the check and to 127.0.0.1 a moment later):
it resolves the name itself, checks every address, and connects to one of *those* addresses,
so the address connected to is always one that was checked. TLS still verifies the
certificate against the host name. Proxies from the environment are not used (``trust_env``
is off): through a proxy the guard could not see where a request really goes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import select
import socket
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from wirewatch.fetcher.errors import ALLOW_HOSTS_HINT, FetchError, TransportError, UnsafeURLError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: NAT64 well-known prefix: the last 32 bits are an IPv4 address (RFC 6052).
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
ALLOWED_SCHEMES = ("http", "https")


def forbidden_kind(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be fetched from ("loopback", "private", …), or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d
            inner = forbidden_kind(ip.ipv4_mapped)
            return None if inner is None else f"{inner} (IPv4 {ip.ipv4_mapped} inside IPv6)"
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = forbidden_kind(embedded)
            if inner is not None:
                return f"{inner} (IPv4 {embedded} inside IPv6)"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local (cloud metadata range)" if ip.version == 4 else "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not globally routable"
    return None


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


#: The end of an allow-list entry that is not part of it: a fully qualified name's dot, spaces.
_TRAILING_DOTS_AND_SPACES = re.compile(r"[\s.]+$")


@dataclass(frozen=True)
class AddressPolicy:
    """Which hosts and addresses may be fetched: public ones, plus the allow-list."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> AddressPolicy:
        """Build from ``fetch_allow_hosts``: each entry a host name, an address or a CIDR block."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = _TRAILING_DOTS_AND_SPACES.sub("", raw.strip().lower())  # "localhost. " too
            if not entry:
                continue
            if any(c.isspace() for c in entry):  # no host name, address or block has a space
                raise ValueError(f"fetch_allow_hosts: {raw!r} is not a host name or CIDR block")
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                if "/" in entry or ":" in entry:
                    raise ValueError(f"fetch_allow_hosts: {raw!r} is not a host name or CIDR block") from None
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    def host_allowed(self, host: str) -> bool:
        """True if ``host`` (a name) is on the allow-list: it may resolve anywhere."""
        return host.lower().rstrip(".") in self.allowed_hosts

    def refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` is refused, or None if it is public or on the allow-list."""
        if any(ip in network for network in self.allowed_networks if network.version == ip.version):
            return None
        return forbidden_kind(ip)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The addresses to connect to for ``host``; raises ``UnsafeURLError`` if any is refused.

        Raises ``httpcore.ConnectError`` when the name does not resolve (a network problem,
        retried like any other)."""
        literal = _literal_ip(host)
        if literal is not None:
            addresses = [literal]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
            addresses = []
            for info in infos:
                ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])  # drop an IPv6 scope id
                if ip not in addresses:
                    addresses.append(ip)
            if not addresses:
                raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        if self.host_allowed(host):
            return addresses
        for ip in addresses:
            kind = self.refusal(ip)
            if kind is not None:
                shown = f"{ip} is" if literal is not None else f"{host} resolves to {ip},"
                raise UnsafeURLError(f"{shown} a {kind} address")
        return addresses

    async def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """Parse and check ``url`` (scheme, host, every resolved address) before requesting it."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise UnsafeURLError(f"refusing to fetch {url}: invalid URL ({exc})") from exc
        if parsed.scheme not in ALLOWED_SCHEMES:
            raise UnsafeURLError(f"refusing to fetch {url}: scheme {parsed.scheme!r} is not http(s)")
        if not parsed.host:
            raise UnsafeURLError(f"refusing to fetch {url}: no host")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            await self.resolve(parsed.host, port)
        except UnsafeURLError as exc:
            raise UnsafeURLError(f"refusing to fetch {url}: {exc} {ALLOW_HOSTS_HINT}") from None
        except httpcore.ConnectError as exc:
            raise TransportError(f"cannot fetch {url}: {exc}") from exc
        return parsed


def refusal_of(policy: AddressPolicy, url: str, *, timeout: float = 3.0) -> str | None:
    """Why the fetcher, under ``policy``, refuses ``url`` (its ``UnsafeURLError`` message, as the
    fetcher logs it), else None: allowed, or not known within ``timeout`` seconds.

    :meth:`AddressPolicy.check_url` itself, run on a thread of its own so that a slow DNS answer
    is not waited for past ``timeout``. A literal address needs no resolving, so its answer is
    certain; a name (``localhost`` included) is resolved as the fetcher would, and a name that
    does not resolve (no network, an unknown name) gives None: the fetcher would find out when
    it polls, and retry."""
    outcome: list[str | None] = []

    def check() -> None:
        try:
            asyncio.run(policy.check_url(url))
        except UnsafeURLError as exc:
            outcome.append(str(exc))
        except FetchError:  # does not resolve: not known
            outcome.append(None)

    thread = threading.Thread(target=check, name="wirewatch-url-check", daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else None


def allow_entry(url: str) -> str:
    """The ``fetch_allow_hosts`` entry that lets the fetcher fetch ``url``: its address as a
    one-address block (``127.0.0.1/32``), or its host name."""
    host = httpx.URL(url).host
    literal = _literal_ip(host)
    if literal is not None:
        return f"{literal}/{literal.max_prefixlen}"
    return host.lower().rstrip(".")


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks and connects to a checked address: the connect-time half of the guard."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, policy: AddressPolicy) -> None:
        self.inner = inner
        self.policy = policy

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.policy.resolve(host, port)
        except UnsafeURLError as exc:
            raise UnsafeURLError(f"refusing to connect to {host}: {exc}") from None
        last: Exception | None = None
        for ip in addresses:
            try:
                stream = await self.inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
                return SocketKeepingStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURLError("refusing to connect to a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class SocketKeepingStream(httpcore.AsyncNetworkStream):
    """A connection's stream that keeps its socket at hand for httpcore's liveness check.

    Before each request, and as each response closes, httpcore's pool asks every idle connection
    whether its socket is readable (a server that hung up). Through anyio each ask rebuilds the
    stream's table of attributes to find the socket: 8 % of the fetcher's main process at 20
    articles/s, with 16 pooled connections. Here the socket is looked up once, when connected.
    Everything else goes to the stream it wraps."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self.inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self.inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self.inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return SocketKeepingStream(await self.inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return socket_readable(self._socket)
        return self.inner.get_extra_info(info)


def socket_readable(sock: socket.socket) -> bool:
    """Whether reading ``sock`` would return at once (data, or the end a closed peer sends); a
    closed socket counts as readable, as in httpcore."""
    fd = sock.fileno()
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with :class:`GuardedBackend` under its connection pool, no env proxies."""

    def __init__(self, policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(trust_env=False, **kwargs)
        pool: Any = self._pool
        if not isinstance(pool, httpcore.AsyncConnectionPool) or not hasattr(pool, "_network_backend"):
            raise TypeError("unexpected httpcore connection pool: cannot install the SSRF guard")
        pool._network_backend = GuardedBackend(pool._network_backend, policy)
