"""Shared fixtures: real servers on free loopback ports, started here, stopped here."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from newsroom import NewsSite
from wirewatch.core.settings import Settings
from wirewatch.local.servers import LocalServerError, LocalServers, start_servers

T = TypeVar("T")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServers]:
    """tansu + osmem-server for one test module (they start in well under a second)."""
    stack = start_servers("ephemeral", log_dir=tmp_path_factory.mktemp("servers"))
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def noida(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServers]:
    """noida-db (Kafka + the Elasticsearch 8 API, data on disk) for one test module."""
    try:
        stack = start_servers("noida", data_dir=tmp_path_factory.mktemp("noida"))
    except (LocalServerError, ImportError, OSError) as exc:
        pytest.skip(f"noida-db is not available: {exc}")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def site() -> Iterator[NewsSite]:
    news = NewsSite.start()
    yield news
    news.close()


def make_settings(**values: Any) -> Settings:
    """Settings from ``values`` and the defaults only (no ``.env`` file)."""
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def settings_for(servers: LocalServers, **overrides: Any) -> Settings:
    return make_settings(**{**servers.settings(), **overrides})


def wait_for(
    check: Callable[[], T], timeout: float = 60.0, interval: float = 0.5, what: str = "condition"
) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a free loopback port, in a thread, while the block runs: its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def search_docs(es_url: str, index: str, query: dict[str, Any] | None = None, size: int = 1000) -> list[Any]:
    """The ``_source`` of every hit of ``query`` on ``wirewatch-<index>``, after a refresh."""
    httpx.post(f"{es_url}/wirewatch-{index}/_refresh", timeout=10)
    response = httpx.post(
        f"{es_url}/wirewatch-{index}/_search",
        json={"query": query or {"match_all": {}}, "size": size},
        timeout=10,
    )
    response.raise_for_status()
    return [hit["_source"] for hit in response.json()["hits"]["hits"]]


def non_loopback_addresses() -> list[str]:
    """This machine's addresses that are not loopback (``ip -o addr``'s global ones; without
    ``ip``, the address a UDP socket would send from, which sends nothing): to check that what
    listens on loopback only cannot be reached there. Empty when the machine has none."""
    found: list[str] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        shown = subprocess.run(
            ["ip", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True, timeout=10
        ).stdout
        found = [
            f[3].split("/")[0] for f in map(str.split, shown.splitlines()) if f[2:3] in (["inet"], ["inet6"])
        ]
    if not found:
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route's source address
            found = [sock.getsockname()[0]]
    return [address for address in found if not ipaddress.ip_address(address).is_loopback]


def refused(address: str, port: int) -> bool:
    """Whether a TCP connection to ``address:port`` is refused (nothing listens there)."""
    try:
        socket.create_connection((address, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules of end-to-end tests first. pytest-xdist hands out whole files in this order, so
    the long ones start early and the two processes finish together rather than one waiting on the
    last e2e module (each file keeps its tests' order: they build on each other)."""
    e2e = {item.path for item in items if item.get_closest_marker("e2e")}
    items.sort(key=lambda item: item.path not in e2e)
