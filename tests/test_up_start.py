"""`wirewatch up`'s start, without the services: what it refuses before starting anything (a
feeds file the fetcher could not read, a data directory it cannot use or that another `up`
holds), and a stop requested while it starts. The whole command runs in test_up_command.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import make_settings
from wirewatch.core.app import EXIT_WEB_PORT_TAKEN
from wirewatch.core.settings import Settings
from wirewatch.local import supervisor as supervisor_module
from wirewatch.local import up
from wirewatch.local.servers import (
    Backend,
    LocalServers,
    StartCancelledError,
    free_port,
    http_ok,
    wait_for_http,
    wait_for_tcp,
)
from wirewatch.local.servers import start_servers as real_start_servers
from wirewatch.local.supervisor import Child, Supervisor
from wirewatch.local.up import UpError, check_feeds_file, lock_data_dir, run_up

pytestmark = pytest.mark.timeout(60)

GOOD = [f"https://outlet{n}.example/rss.xml" for n in range(6)]


@pytest.fixture
def feeds_file(tmp_path: Path) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump({"feeds": GOOD}), encoding="utf-8")
    return path


def _up(settings: Settings, stop: threading.Event | None = None, **options: Any) -> tuple[int, list[str]]:
    said: list[str] = []
    code = run_up(settings, echo=said.append, stop_event=stop or threading.Event(), **options)
    return code, said


# --- refused before anything starts -----------------------------------------------------------------


def test_a_bad_feed_entry_stops_up_before_it_starts(tmp_path: Path, feeds_file: Path) -> None:
    """One bad entry among six good ones: the fetcher would publish none of them (the feeds file
    is refused whole) while every service looks healthy. `up` refuses, as `feeds list` does."""
    feeds_file.write_text(yaml.safe_dump({"feeds": [*GOOD[:2], {"url": "not a url"}, *GOOD[2:]]}))
    settings = make_settings(feeds_file=feeds_file, data_dir=tmp_path / "data")
    with pytest.raises(UpError) as refused:
        _up(settings)
    assert str(refused.value) == f"{feeds_file}: feed #3: not an http(s) URL: 'not a url'"
    assert refused.value.code == 2
    assert not (tmp_path / "data").exists()  # nothing started, nothing claimed


def test_a_configured_feeds_file_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "typo.yaml"
    with pytest.raises(UpError, match=f"feeds file {missing} \\(WIREWATCH_FEEDS_FILE\\) does not exist"):
        _up(make_settings(feeds_file=missing, data_dir=tmp_path / "data"))
    assert not (tmp_path / "data").exists()
    # The default ./feeds.yaml may be missing: `wirewatch feeds add` creates it, the fetcher reads it.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WIREWATCH_FEEDS_FILE", raising=False)
    assert check_feeds_file(make_settings()) is False
    Path("feeds.yaml").write_text("feeds:\n  - url: []\n", encoding="utf-8")
    with pytest.raises(UpError, match="feed #1: 'url' must be a string"):
        check_feeds_file(make_settings())


@pytest.mark.parametrize("kind", ["a file", "under a file", "not creatable"])
def test_an_unusable_data_dir_is_one_clear_error(tmp_path: Path, feeds_file: Path, kind: str) -> None:
    (tmp_path / "afile").write_text("x")
    data_dir, reason = {
        "a file": (tmp_path / "afile", "it is not a directory"),
        "under a file": (tmp_path / "afile" / "data", "Not a directory"),
        "not creatable": (Path("/proc/wirewatch-test"), "No such file or directory"),
    }[kind]
    with pytest.raises(UpError) as refused:
        _up(make_settings(feeds_file=feeds_file, data_dir=data_dir))
    message = str(refused.value)
    assert message.startswith(f"cannot use {data_dir} as the data dir: {reason}")
    assert "\n" not in message and refused.value.code == 2


# --- one `up` per data directory ---------------------------------------------------------------------


def test_only_one_of_many_simultaneous_claims_wins(tmp_path: Path) -> None:
    """The check and the claim are one step: of claims made at the same instant, one wins."""
    data_dir = tmp_path / "data"
    start = threading.Barrier(8)
    won: list[int | None] = []

    def claim() -> None:
        start.wait()
        won.append(lock_data_dir(data_dir))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    holders = [fd for fd in won if fd is not None]
    assert len(won) == 8 and len(holders) == 1
    assert lock_data_dir(data_dir) is None
    os.close(holders[0])  # released: the next claim wins
    again = lock_data_dir(data_dir)
    assert again is not None
    os.close(again)


def test_a_second_up_is_refused_while_the_first_holds_the_data_dir(tmp_path: Path, feeds_file: Path) -> None:
    settings = make_settings(feeds_file=feeds_file, data_dir=tmp_path / "data")
    held = lock_data_dir(tmp_path / "data")
    assert held is not None
    try:
        code, said = _up(settings)
    finally:
        os.close(held)
    assert code == 2
    assert said == [
        f"wirewatch up is already running on {tmp_path / 'data'} (pid {os.getpid()}); stop it first."
    ]
    assert not (tmp_path / "data" / "endpoints.json").exists()


def test_a_crashed_up_leaves_no_claim(tmp_path: Path) -> None:
    """The system drops the lock of a process that dies, even by SIGKILL: no stale claim."""
    data_dir = tmp_path / "data"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from wirewatch.local.up import lock_data_dir; "
            "assert lock_data_dir(Path(sys.argv[1])) is not None; print('held', flush=True); time.sleep(60)",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert lock_data_dir(data_dir) is None
        assert up.data_dir_holder(data_dir) == str(holder.pid)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    fd = lock_data_dir(data_dir)
    assert fd is not None
    os.close(fd)


# --- a stop requested during the start ----------------------------------------------------------------


def _children() -> dict[int, str]:
    """This process's children still running: pid and command name (Linux). Earlier tests in
    the same process may have left their own (a process pool): compare with a snapshot."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, rest = stat.read_text().split(" (", 1)[1].rsplit(") ", 1)
        except (OSError, ValueError):
            continue  # ended meanwhile
        state, parent = rest.split()[:2]
        if int(parent) == os.getpid() and state != "Z":
            found[int(stat.parent.name)] = name
    return found


def _stop_after(seconds: float) -> threading.Event:
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    return stop


def test_the_server_waits_end_when_stop_is_requested() -> None:
    port = free_port()  # nothing listens there: each would wait its whole timeout
    for wait in (
        lambda stop: wait_for_tcp("127.0.0.1", port, 60, cancel=stop),
        lambda stop: wait_for_http(f"http://127.0.0.1:{port}/", 60, cancel=stop),
    ):
        started = time.monotonic()
        with pytest.raises(StartCancelledError):
            wait(_stop_after(0.3))
        assert time.monotonic() - started < 3


def test_the_health_wait_ends_when_stop_is_requested(tmp_path: Path) -> None:
    """A service that never becomes healthy (crash-looping) held a Ctrl-C for the whole wait."""
    supervisor = Supervisor(["fetcher"], {}, tmp_path)
    supervisor.children["fetcher"] = Child("fetcher", "fetcher", free_port())  # never started
    started = time.monotonic()
    assert supervisor.wait_healthy(120, _stop_after(0.3)) is False
    assert time.monotonic() - started < 3


class _Unhealthy(Supervisor):
    """A supervisor whose one service never answers its health check (and runs no process)."""

    def start(self) -> None:
        self.children["fetcher"] = Child("fetcher", "fetcher", free_port())


def test_a_stop_during_the_health_wait_stops_up_without_saying_it_is_up(
    tmp_path: Path, feeds_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def setup(settings: Settings) -> dict[str, list[str]]:
        return {"topics": [], "indices": []}

    monkeypatch.setattr("wirewatch.runner.setup", setup)
    monkeypatch.setattr(up, "Supervisor", _Unhealthy)
    settings = make_settings(  # "external" servers: `up` starts none
        feeds_file=feeds_file,
        data_dir=tmp_path / "data",
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        es_url=f"http://127.0.0.1:{free_port()}",
    )
    started = time.monotonic()
    code, said = _up(settings, _stop_after(0.5))
    assert time.monotonic() - started < 5
    assert code == 0 and said[-2:] == ["Stopping …", "Stopped."]
    assert not any("wirewatch is up" in line or "wirewatch started" in line for line in said)
    assert not (tmp_path / "data" / "endpoints.json").exists()
    fd = lock_data_dir(tmp_path / "data")  # released
    assert fd is not None
    os.close(fd)


def test_a_stop_while_the_servers_start_stops_them(tmp_path: Path, feeds_file: Path) -> None:
    """Stop requested before the local servers answer: they are stopped, `up` ends at once."""
    stop = threading.Event()
    stop.set()
    before = _children()
    started = time.monotonic()
    code, said = _up(
        make_settings(feeds_file=feeds_file, data_dir=tmp_path / "data"), stop, backend="ephemeral"
    )
    assert time.monotonic() - started < 15
    assert code == 0 and said == ["Starting local servers (ephemeral) …", "Stopping …", "Stopped."]
    assert not (tmp_path / "data" / "endpoints.json").exists()
    assert _children().keys() - before.keys() == set()  # tansu and osmem-server stopped


# --- a local server that exits while up runs ----------------------------------------------------------


class _Recording(Supervisor):
    """A supervisor of no service processes, always healthy, that records its restarts (the
    whole command, with the services, is in test_up_command.py)."""

    restarted: list[dict[str, str]]

    def start(self) -> None:
        self.restarted = []
        self._changed()

    def wait_healthy(self, timeout: float = 120.0, stop: threading.Event | None = None) -> bool:
        return True

    def restart_all(self, before_start: Any = None) -> None:
        self.restarted.append(before_start() if before_start is not None else {})
        self._changed()


@pytest.mark.timeout(180)
def test_a_local_server_that_exits_is_started_again_until_it_keeps_exiting(
    tmp_path: Path, feeds_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local server that exits used to stop `up` and every service with it. Now the servers
    are started again (on the ephemeral backend: empty, so topics and indices are created
    again) and the services after them; an exit beyond SERVER_RESTARTS in the window stops `up`."""
    monkeypatch.setattr(up, "SERVER_RESTARTS", 1)
    supervisors: list[_Recording] = []
    started: list[LocalServers] = []

    def supervisor(*args: Any, **kwargs: Any) -> _Recording:
        supervisors.append(_Recording(*args, **kwargs))
        return supervisors[-1]

    def start_servers(*args: Any, **kwargs: Any) -> LocalServers:
        started.append(real_start_servers(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(up, "Supervisor", supervisor)
    monkeypatch.setattr(up, "start_servers", start_servers)
    said: list[str] = []
    stop = threading.Event()
    result: list[int] = []
    settings = make_settings(feeds_file=feeds_file, data_dir=tmp_path / "data")
    runner = threading.Thread(
        target=lambda: result.append(run_up(settings, backend="ephemeral", echo=said.append, stop_event=stop))
    )
    runner.start()
    try:
        _wait_until(lambda: any("wirewatch is up" in line for line in said), "up to start")
        servers = started[0]
        first_es = servers.es_url
        osmem = servers.process("osmem")
        assert osmem is not None
        osmem.send_signal(signal.SIGKILL)
        _wait_until(lambda: any("running again" in line for line in said), "the servers to start again")
        exited = next(line for line in said if line.startswith("A local server exited"))
        assert "osmem-server (exit code -9)" in exited and "start empty" in exited
        restarted = supervisors[0].restarted
        assert len(restarted) == 1 and restarted[0]["WIREWATCH_ES_URL"] == servers.es_url != first_es
        # The new, empty search server got its indices again before the services came back.
        with urllib.request.urlopen(f"{servers.es_url}/_alias") as response:
            aliases = json.load(response)
        assert any(name.startswith("wirewatch-articles") for name in aliases)
        endpoints = json.loads((tmp_path / "data" / "endpoints.json").read_text())
        assert endpoints["es_url"] == servers.es_url

        tansu = servers.process("tansu")
        assert tansu is not None
        tansu.send_signal(signal.SIGKILL)  # a second exit in the window
        runner.join(60)
        assert result == [1]
        assert "2 times in 10 minutes; stopping" in said[-1]
        assert not servers.processes  # the servers stopped
    finally:
        stop.set()
        runner.join(60)


def test_a_demo_feeds_file_the_fetcher_could_not_read_stops_up_before_it_starts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "demo-feeds.yaml").write_text("feeds:\n  - url: []\n", encoding="utf-8")
    with pytest.raises(UpError) as refused:
        _up(make_settings(data_dir=data_dir), demo=True)
    assert str(refused.value) == f"{data_dir / 'demo-feeds.yaml'}: feed #1: 'url' must be a string"
    assert not (data_dir / "endpoints.json").exists()


@pytest.mark.timeout(120)
def test_up_demo_keeps_the_operator_s_feeds_and_tells_the_cli_which_file_its_fetcher_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`up --demo` wrote demo-feeds.yaml over at every start, dropping the feeds added to the
    running demo; and the CLI, told only the data dir, edited ./feeds.yaml and judged addresses
    by its own settings. Now endpoints.json records the fetcher's feeds file and SSRF exceptions,
    `wirewatch feeds add` edits that file and warns as that fetcher judges, and the next start
    merges the demo's feeds into the file: the operator's stay, and the demo's move with the
    site when its remembered port was taken."""
    from click.testing import CliRunner

    from wirewatch.cli import main
    from wirewatch.core.feeds import load_feeds

    async def setup(settings: Settings) -> dict[str, list[str]]:
        return {"topics": [], "indices": []}

    monkeypatch.setattr("wirewatch.runner.setup", setup)
    monkeypatch.setattr(up, "Supervisor", _Recording)
    data_dir = tmp_path / "data"
    feeds_file = data_dir / "demo-feeds.yaml"
    settings = make_settings(  # "external" servers: `up` starts none
        data_dir=data_dir,
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        es_url=f"http://127.0.0.1:{free_port()}",
        fetch_allow_hosts=["10.0.0.0/8"],
    )

    def demo_up() -> tuple[threading.Thread, threading.Event, list[str]]:
        said: list[str] = []
        stop = threading.Event()
        runner = threading.Thread(
            target=lambda: run_up(settings, demo=True, echo=said.append, stop_event=stop)
        )
        runner.start()
        _wait_until(lambda: any("wirewatch is up" in line for line in said), "up to start")
        return runner, stop, said

    runner, stop, said = demo_up()
    try:
        endpoints = json.loads((data_dir / "endpoints.json").read_text())
        assert endpoints["feeds_file"] == str(feeds_file.resolve())
        assert endpoints["fetch_allow_hosts"] == ["10.0.0.0/8", "127.0.0.1"]  # and the demo site's
        demo_port = json.loads((data_dir / "demo-port.json").read_text())["demo"]
        demo_feeds = [f.url for f in load_feeds(feeds_file)]
        assert len(demo_feeds) == 5
        assert all(url.startswith(f"http://127.0.0.1:{demo_port}/") for url in demo_feeds)

        # The operator, elsewhere, tells the CLI only the data dir.
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("WIREWATCH_DATA_DIR", str(data_dir))
        for name in ("WIREWATCH_FEEDS_FILE", "WIREWATCH_FETCH_ALLOW_HOSTS"):
            monkeypatch.delenv(name, raising=False)
        cli = CliRunner()
        local = "http://127.0.0.1:9/mine.xml"
        added = cli.invoke(main, ["feeds", "add", local, "--interval", "15"])
        assert added.exit_code == 0, added.output
        assert added.stderr == ""  # the demo's fetcher polls loopback
        assert f" in {feeds_file.resolve()} (the feeds file of the `wirewatch up` running on " in added.stdout
        private = cli.invoke(main, ["feeds", "add", "http://10.1.2.3/rss.xml"])
        assert private.exit_code == 0 and private.stderr == ""  # WIREWATCH_FETCH_ALLOW_HOSTS of `up`
        refused = cli.invoke(main, ["feeds", "add", "http://192.168.1.5/rss.xml"])
        assert "the fetcher of the `wirewatch up` running on" in refused.stderr
        assert not (tmp_path / "feeds.yaml").exists()
        mine = [local, "http://10.1.2.3/rss.xml", "http://192.168.1.5/rss.xml"]
        assert [f.url for f in load_feeds(feeds_file)] == [*demo_feeds, *mine]
    finally:
        stop.set()
        runner.join(60)

    # The next start, with the demo's remembered port taken by another program meanwhile.
    with _listening_on(demo_port):
        runner, stop, said = demo_up()
    try:
        listed = load_feeds(feeds_file)
        new_port = json.loads((data_dir / "demo-port.json").read_text())["demo"]
        assert new_port != demo_port
        moved = [u.replace(f":{demo_port}/", f":{new_port}/") for u in demo_feeds]
        assert [f.url for f in listed] == [*mine, *moved]  # the operator's kept, the demo's moved
        assert all(f.interval == 10 for f in listed[3:]) and listed[0].interval == 15
        text = feeds_file.read_text(encoding="utf-8")
        assert text.startswith("# The demo site's feeds.") and "    interval: 15\n" in text
        assert f"(5 demo feeds in {feeds_file.resolve()}, and 3 more)" in next(
            line for line in said if line.startswith("Demo site on")
        )
    finally:
        stop.set()
        runner.join(60)
    assert said[-2:] == ["Stopping …", "Stopped."]  # the servers are not `up`'s here


def _wait_until(condition: Any, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


# --- the services' web ports ---------------------------------------------------------------------------

#: A stand-in for a service (``wirewatch run NAME`` takes seconds and its servers): it answers 200
#: on every path of its web port, bound where the service binds it (``WIREWATCH_WEB_HOST``), and
#: exits with ``EXIT_WEB_PORT_TAKEN`` when another program holds that port, as a service does.
STAND_IN = f"""
import errno, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Answer(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

try:
    server = HTTPServer((os.environ["WIREWATCH_WEB_HOST"], int(os.environ["WIREWATCH_WEB_PORT"])), Answer)
except OSError as exc:
    sys.exit({EXIT_WEB_PORT_TAKEN} if exc.errno == errno.EADDRINUSE else 1)
server.serve_forever()
"""


class _StandIns(Supervisor):
    """The supervisor as it is, its services stand-ins (:data:`STAND_IN`)."""

    def command(self, child: Child) -> list[str]:
        return [sys.executable, "-c", STAND_IN]


def _listening_on(port: int) -> socket.socket:
    """A socket holding ``port`` (another program on it)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is fine
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def _ports(endpoints: dict[str, Any]) -> dict[str, int]:
    return {name: info["port"] for name, info in endpoints["services"].items()}


def _pids(endpoints: dict[str, Any]) -> dict[str, int]:
    return {name: info["pid"] for name, info in endpoints["services"].items()}


@pytest.mark.timeout(120)
def test_a_crashed_service_comes_back_on_its_port_or_on_another_when_it_is_taken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The supervisor's own restart (every backend but noida-db): the service answers on its
    port again, and the owner is told its new pid; a port taken meanwhile is replaced, said."""
    published: list[dict[str, Any]] = []
    supervisor = _StandIns(
        ["fetcher", "enricher"],
        {},
        tmp_path / "logs",
        on_change=lambda s: published.append({"services": s.describe()}),
    )
    supervisor.start()
    try:
        assert supervisor.wait_healthy(30)
        first = published[-1]
        fetcher = supervisor.children["fetcher"]
        port = fetcher.port
        assert _ports(first)["fetcher"] == port and _pids(first)["fetcher"] == fetcher.pid

        supervisor.kill("fetcher")
        _wait_until(lambda: _pids(published[-1])["fetcher"] != _pids(first)["fetcher"], "the restart", 30)
        assert supervisor.wait_healthy(30)
        assert fetcher.port == port and _ports(published[-1]) == _ports(first)
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).status == 200

        # Another program takes the port while the service is down.
        process = fetcher.process
        assert process is not None
        supervisor.kill("fetcher")
        process.wait(10)
        with _listening_on(port):
            _wait_until(lambda: _ports(published[-1])["fetcher"] != port, "the move to another port", 30)
            assert supervisor.wait_healthy(30)
        moved = published[-1]
        assert fetcher.port == _ports(moved)["fetcher"] != port
        assert _ports(moved)["enricher"] == _ports(first)["enricher"]
        assert moved["services"]["fetcher"]["metrics"] == f"http://127.0.0.1:{fetcher.port}/metrics"
        [said] = [r for r in caplog.records if r.getMessage().startswith("web port taken")]
        assert (said.service, said.port, said.new_port) == ("fetcher", port, fetcher.port)  # type: ignore[attr-defined]
    finally:
        supervisor.stop()


@pytest.mark.timeout(180)
def test_up_keeps_the_services_ports_across_restarts_and_runs(
    tmp_path: Path, feeds_file: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`up` restarting the servers and every service (a local server exited) starts each service
    on the port it had; the next `up` on the same data directory too, but for a port another
    program took meanwhile, replaced by a free one. endpoints.json says where they are."""
    monkeypatch.setattr(up, "Supervisor", _StandIns)
    started: list[LocalServers] = []

    def start_servers(*args: Any, **kwargs: Any) -> LocalServers:
        started.append(real_start_servers(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(up, "start_servers", start_servers)
    data_dir = tmp_path / "data"
    settings = make_settings(feeds_file=feeds_file, data_dir=data_dir)

    def endpoints() -> dict[str, Any]:
        data: dict[str, Any] = json.loads((data_dir / "endpoints.json").read_text())
        return data

    def start() -> tuple[threading.Thread, threading.Event, list[str], list[int]]:
        said: list[str] = []
        stop = threading.Event()
        result: list[int] = []
        runner = threading.Thread(
            target=lambda: result.append(
                run_up(settings, backend="ephemeral", echo=said.append, stop_event=stop)
            )
        )
        runner.start()
        _wait_until(lambda: any("wirewatch is up" in line for line in said) or result, "up to start")
        assert any("wirewatch is up" in line for line in said), said
        return runner, stop, said, result

    runner, stop, said, result = start()
    try:
        first = endpoints()
        ports = _ports(first)
        assert len(set(ports.values())) == len(ports) == 4
        osmem = started[-1].process("osmem")
        assert osmem is not None
        osmem.send_signal(signal.SIGKILL)
        _wait_until(lambda: any("running again" in line for line in said), "the servers to start again")
        again = endpoints()
        assert again["es_url"] != first["es_url"]
        assert _ports(again) == ports  # every service on its port …
        assert all(_pids(again)[name] != pid for name, pid in _pids(first).items())  # … a new process
        for info in again["services"].values():
            _wait_until(lambda: http_ok(info["metrics"]), f"{info['metrics']} to answer", 30)  # noqa: B023
    finally:
        stop.set()
        runner.join(60)
    assert result == [0]
    assert json.loads((data_dir / "web-ports.json").read_text()) == ports

    # The next `up`: the same ports, but for the enricher's, taken meanwhile.
    with _listening_on(ports["enricher"]):
        runner, stop, said, result = start()
        try:
            second = _ports(endpoints())
        finally:
            stop.set()
            runner.join(60)
    assert result == [0]
    assert {n: p for n, p in second.items() if n != "enricher"} == {
        n: p for n, p in ports.items() if n != "enricher"
    }
    assert second["enricher"] != ports["enricher"]
    assert json.loads((data_dir / "web-ports.json").read_text()) == second
    assert [(r.service, r.port) for r in caplog.records if r.getMessage().startswith("web port taken")] == [  # type: ignore[attr-defined]
        ("enricher", ports["enricher"])
    ]


class _TakenAfterTheCheck:
    """Another program that takes each port of :attr:`ports` right after the supervisor found it
    free, before the service listens on it: the race between the check and the bind, every time
    (``port_is_free`` of the supervisor). :attr:`taken`: the ports it took, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ports: set[int] = set()
        self.taken: list[int] = []
        self.held: list[socket.socket] = []
        self.check = supervisor_module.port_is_free
        monkeypatch.setattr(supervisor_module, "port_is_free", self.port_is_free)

    def port_is_free(self, port: int, host: str = "127.0.0.1") -> bool:
        free = self.check(port, host)
        if free and port in self.ports and port not in self.taken:
            self.held.append(_listening_on(port))
            self.taken.append(port)
        return free

    def close(self) -> None:
        for sock in self.held:
            sock.close()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("backend", ["ephemeral", "noida"])
def test_a_port_taken_between_the_check_and_the_start_moves_its_service_at_once(
    backend: Backend,
    tmp_path: Path,
    feeds_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A port found free can be taken in the seconds before the service listens on it: the
    service exits (EXIT_WEB_PORT_TAKEN) and used to come back after a crash's backoff on the same,
    taken port (on noida-db, restarting the servers too). Now it moves to another port at once,
    said as a taken port is; not a crash. At `up`'s start (its port from web-ports.json) and when
    a crashed service is started again (by the supervisor; on noida-db, with every service)."""
    monkeypatch.setattr(up, "Supervisor", _StandIns)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    recorded = {"fetcher": free_port(), "enricher": free_port()}
    (data_dir / "web-ports.json").write_text(json.dumps(recorded))
    other = _TakenAfterTheCheck(monkeypatch)
    other.ports.add(recorded["fetcher"])

    def endpoints() -> dict[str, Any]:
        data: dict[str, Any] = json.loads((data_dir / "endpoints.json").read_text())
        return data

    def moved(name: str, port: int) -> bool:
        return _ports(endpoints())[name] != port and all(
            http_ok(i["health"]) for i in endpoints()["services"].values()
        )

    said: list[str] = []
    stop = threading.Event()
    result: list[int] = []
    settings = make_settings(feeds_file=feeds_file, data_dir=data_dir)
    runner = threading.Thread(
        target=lambda: result.append(run_up(settings, backend=backend, echo=said.append, stop_event=stop))
    )
    runner.start()
    try:
        _wait_until(lambda: any("wirewatch is up" in line for line in said) or result, "up to start")
        assert any("wirewatch is up" in line for line in said), said
        assert other.taken == [recorded["fetcher"]]
        _wait_until(lambda: moved("fetcher", recorded["fetcher"]), "the fetcher on another port", 30)
        first = endpoints()
        assert _ports(first)["enricher"] == recorded["enricher"]
        assert json.loads((data_dir / "web-ports.json").read_text()) == _ports(first)

        # A crash, and the port taken as the service is started again.
        enricher = first["services"]["enricher"]
        other.ports.add(recorded["enricher"])
        os.kill(enricher["pid"], signal.SIGKILL)
        _wait_until(lambda: moved("enricher", recorded["enricher"]), "the enricher on another port", 60)
        assert other.taken == [recorded["fetcher"], recorded["enricher"]]
        again = endpoints()
        assert again["services"]["enricher"]["pid"] != enricher["pid"]
        assert json.loads((data_dir / "web-ports.json").read_text()) == _ports(again)
        assert result == []  # `up` runs on
    finally:
        stop.set()
        runner.join(60)
        other.close()
    assert result == [0]
    final = json.loads((data_dir / "web-ports.json").read_text())
    assert [
        (r.service, r.port, r.new_port)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage().startswith("web port taken")
    ] == [
        ("fetcher", recorded["fetcher"], final["fetcher"]),
        ("enricher", recorded["enricher"], final["enricher"]),
    ]
    # Not crashes: the supervisor restarted only the killed enricher (after its backoff), and on
    # noida-db `up` restarted the servers and every service once, for that kill alone.
    crashes = [r.service for r in caplog.records if r.getMessage() == "service exited, restarting"]  # type: ignore[attr-defined]
    server_restarts = [r for r in caplog.records if r.getMessage().startswith("service crashed; restarting")]
    if backend == "noida":
        assert crashes == [] and len(server_restarts) == 1
    else:
        assert crashes == ["enricher"] and server_restarts == []
