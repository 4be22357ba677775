"""Run the services as child processes: start, watch health, restart on crash, stop cleanly.

Used by ``wirewatch up`` and by the end-to-end tests (which kill children to prove that
nothing is lost or doubled). The services listen on loopback only (:data:`WEB_BIND`), each on
a port found free for it; one whose port another program took before it listened exits with
``EXIT_WEB_PORT_TAKEN`` and is started again at once on another port.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from wirewatch.core.app import EXIT_WEB_PORT_TAKEN
from wirewatch.core.files import write_atomically
from wirewatch.core.logs import get_logger
from wirewatch.core.settings import ServiceName
from wirewatch.local.servers import child_options, free_port, http_ok, port_is_free

log = get_logger(__name__)

#: Where a service's web server listens (``WIREWATCH_WEB_HOST``): loopback only, so that on a
#: laptop on a shared network its endpoints (``/metrics``, the fetcher's ``/feeds``) are not
#: reachable from other machines. A port is free for a service when it is free there.
WEB_BIND = "127.0.0.1"


@dataclass
class Child:
    #: ``enricher`` for a service's first worker, ``enricher-2`` … for further replicas.
    name: str
    service: ServiceName
    #: Its web port (health, metrics): kept across its restarts while free. 0: none chosen yet.
    port: int
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_start: float = 0.0

    @property
    def health_url(self) -> str:
        return f"http://{WEB_BIND}:{self.port}/healthz"

    @property
    def metrics_url(self) -> str:
        return f"http://{WEB_BIND}:{self.port}/metrics"

    def port_was_taken(self) -> bool:
        """Whether its process exited because another program held its web port when it came to
        listen (between the supervisor's check and its start): not a crash."""
        return self.process is not None and self.process.poll() == EXIT_WEB_PORT_TAKEN

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Supervisor:
    """Keeps one process per service (or ``replicas[service]`` processes, which share the
    service's consumer group: scale-out) alive, with ``env`` added to each one's environment."""

    services: list[ServiceName]
    env: dict[str, str]
    log_dir: Path
    #: Restart a crashed service by itself. Off when the owner must act first (noida-db never
    #: evicts a killed group member, so ``wirewatch up`` restarts the servers, then every service).
    restart: bool = True
    replicas: dict[ServiceName, int] = field(default_factory=dict)
    #: The web port to give each worker (by name) first, while it is free: ``wirewatch up`` passes
    #: the ones of its last run on the same data directory. The others get a free port.
    ports: dict[str, int] = field(default_factory=dict)
    #: Called with the supervisor once services were started (at the start, after a restart):
    #: their pids, and the port of one whose port was taken meanwhile, changed. Called under the
    #: supervisor's lock, from its watch thread too; an error it raises is logged.
    on_change: Callable[[Supervisor], None] | None = None
    children: dict[str, Child] = field(default_factory=dict)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    #: Held by the watch loop's restarts and by ``restart_all``: never both at once.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for service in self.services:
            for replica in range(1, self.replicas.get(service, 1) + 1):
                name = service if replica == 1 else f"{service}-{replica}"
                self.children[name] = Child(name, service, self.ports.get(name, 0))
        with self._lock:
            for child in self.children.values():
                self._spawn(child)
            self._changed()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def command(self, child: Child) -> list[str]:
        """The command line of ``child``'s process."""
        return [sys.executable, "-m", "wirewatch", "run", child.service]

    def _choose_port(self, child: Child, *, taken: bool = False) -> None:
        """Keep ``child``'s web port when it is free, so a restarted service answers where it did
        (bookmarks, a Prometheus scrape); else give it a free one, not another worker's, and say
        so. A port can be taken while its service is down: by any program, or by a local server
        started again meanwhile on a free port. ``taken``: the service found its port taken
        when it came to listen; it moves even if the port looks free again (what was taken once,
        in the seconds a service takes to start, can be taken again)."""
        others = {c.port for c in self.children.values() if c is not child}
        if child.port and not taken and child.port not in others and port_is_free(child.port, WEB_BIND):
            return
        port = free_port(WEB_BIND)
        while port in others or port == child.port:
            port = free_port(WEB_BIND)
        if child.port:
            log.warning(
                "web port taken: service moved to another port",
                extra={"service": child.name, "port": child.port, "new_port": port},
            )
        child.port = port

    def _changed(self) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(self)
        except Exception:
            log.exception("could not publish the services' endpoints")

    def _spawn(self, child: Child, *, port_taken: bool = False) -> None:
        self._choose_port(child, taken=port_taken)
        env = {
            **os.environ,
            **self.env,
            "WIREWATCH_WEB_PORT": str(child.port),
            "WIREWATCH_WEB_HOST": WEB_BIND,
        }
        if child.log_file is None:
            child.log_file = open(self.log_dir / f"{child.name}.log", "ab")  # noqa: SIM115 - closed in stop()
        child.process = subprocess.Popen(
            self.command(child),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=child.log_file,
            stderr=subprocess.STDOUT,
            **child_options(),
        )
        child.started_at = time.monotonic()
        log.info("service started", extra={"service": child.name, "pid": child.pid, "port": child.port})

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            with self._lock:
                self._restart_exited()

    def _restart_exited(self) -> None:
        started = False
        for child in self.children.values():
            if child.process is None or child.process.poll() is None or self._stopping.is_set():
                continue
            if child.port_was_taken():
                # Its port was taken between the check and its start: started again at once on
                # another port, without a crash's backoff, whether or not ``restart`` is on (it
                # exited before joining its consumer group, so it left no member behind).
                child.next_start = 0.0
                self._spawn(child, port_taken=True)
                started = True
                continue
            if not self.restart:
                continue
            now = time.monotonic()
            if child.next_start == 0.0:
                # Crash loop protection: 1 s, 2 s, 4 s … up to 30 s; reset after a minute of uptime.
                if now - child.started_at > 60:
                    child.restarts = 0
                delay = min(30.0, 2.0**child.restarts)
                child.next_start = now + delay
                log.error(
                    "service exited, restarting",
                    extra={"service": child.name, "code": child.process.returncode, "retry_in": delay},
                )
            elif now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                self._spawn(child)
                started = True
        if started:
            self._changed()

    def crashed(self) -> list[str]:
        """Services whose process has exited although nobody asked them to stop (but for one
        whose port was taken, which the supervisor moves itself)."""
        if self._stopping.is_set():
            return []
        return [
            name
            for name, c in self.children.items()
            if c.process is not None and c.process.poll() is not None and not c.port_was_taken()
        ]

    def restart_all(self, before_start: Callable[[], dict[str, str]] | None = None) -> None:
        """Stop every service (SIGTERM, then SIGKILL), run ``before_start`` (whose result is
        merged into the services' environment), then start them all again, each on its port
        while it is free."""
        with self._lock:
            self._terminate()
            if before_start is not None:
                self.env.update(before_start())
            for child in self.children.values():
                child.restarts += 1
                child.next_start = 0.0
                self._spawn(child)
            self._changed()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one service (tests use this to simulate crashes)."""
        child = self.children[name]
        if child.process is not None and child.process.poll() is None:
            child.process.send_signal(sig)

    def healthy(self) -> dict[str, bool]:
        return {name: child.running() and http_ok(child.health_url) for name, child in self.children.items()}

    def wait_healthy(self, timeout: float = 120.0, stop: threading.Event | None = None) -> bool:
        """True once every service answers its health check; False after ``timeout``, or as soon
        as ``stop`` is set (a Ctrl-C during the start must not wait for a crash-looping service)."""
        stop = stop or threading.Event()
        deadline = time.monotonic() + timeout
        while not stop.is_set() and time.monotonic() < deadline:
            if all(self.healthy().values()):
                return True
            stop.wait(0.5)
        return False

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every child (Faust drains and commits), SIGKILL what is left after ``timeout``."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        self._terminate(timeout)
        for child in self.children.values():
            if child.log_file is not None:
                child.log_file.close()
                child.log_file = None

    def _terminate(self, timeout: float = 20.0) -> None:
        for child in self.children.values():
            if child.running():
                assert child.process is not None
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("service did not stop in time, killing", extra={"service": child.name})
                child.process.kill()
                child.process.wait(5)

    def describe(self) -> dict[str, dict[str, object]]:
        return {
            name: {
                "pid": c.pid,
                "port": c.port,
                "health": c.health_url,
                "metrics": c.metrics_url,
                "restarts": c.restarts,
            }
            for name, c in self.children.items()
        }


def write_endpoints(path: Path, data: dict[str, object]) -> None:
    """Rewritten at every restart; ``wirewatch status`` and the tests read it meanwhile. Only its
    owner may read it: a given ``WIREWATCH_ES_URL`` is kept whole, with a password it holds."""
    write_atomically(path, json.dumps(data, indent=2), mode=0o600)
