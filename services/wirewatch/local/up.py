"""``wirewatch up``: the whole system on one machine, with one command.

With no Kafka/Elasticsearch configured it starts local servers (noida-db, data kept under
``data_dir``; or tansu + osmem-server with ``--ephemeral``), creates topics and indices,
starts every service as a child process, waits for health, prints where things are, and
restarts crashed services, and the local servers (then every service) when one of them exits
(``SERVER_RESTARTS`` times in ``SERVER_EXIT_WINDOW``; one more exit stops it). Each service
listens on loopback only, on the web port it had (restarted, or in the last ``up`` here:
``web-ports.json``) while that port is free; one whose port was taken before it listened is
moved to another at once (the supervisor). Ctrl-C /
SIGTERM stops services (draining), then servers, also during the start. With
``WIREWATCH_KAFKA_BOOTSTRAP`` and ``WIREWATCH_ES_URL`` set it starts only the services. It
refuses to start (:class:`UpError`) on a feeds file the fetcher could not read or a data
directory it cannot use, and (exit code 2) on a data directory another ``up`` holds.

Its endpoints file (``endpoints.json`` in the data dir) is how the CLI finds the stack: the
servers' addresses, the services' ports, and the fetcher's feeds file and SSRF exceptions, so
that ``wirewatch feeds`` edits the file this fetcher reads and judges an address as it will.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wirewatch.core.alert_targets import describe_targets
from wirewatch.core.feeds import FeedsFileError, load_feeds
from wirewatch.core.logs import get_logger
from wirewatch.core.settings import SERVICES, Settings, redact_url
from wirewatch.local.servers import (
    Backend,
    LocalServers,
    StartCancelledError,
    read_ports,
    remembered_ports,
    start_servers,
    write_ports,
)
from wirewatch.local.supervisor import Supervisor, write_endpoints

log = get_logger(__name__)

#: A local server that exits is started again, with every service after it, up to this many
#: times within ``SERVER_EXIT_WINDOW`` seconds; one more exit in that time stops ``up``.
SERVER_RESTARTS = 3
SERVER_EXIT_WINDOW = 600.0


class UpError(Exception):
    """``wirewatch up`` cannot start: the message for the user (one line), and the exit code."""

    code = 2


def endpoints_file(settings: Settings) -> Path:
    return settings.data_dir / "endpoints.json"


def demo_feeds_file(data_dir: Path) -> Path:
    """The feeds file of ``up --demo`` on ``data_dir``: the demo's feeds, and the operator's."""
    return data_dir / "demo-feeds.yaml"


def web_ports_file(data_dir: Path) -> Path:
    """The services' web ports (``{"fetcher": port, …}``), kept for the next ``up`` on ``data_dir``."""
    return data_dir / "web-ports.json"


def running_up(settings: Settings) -> dict[str, Any] | None:
    """What a live ``wirewatch up`` on this data directory wrote, or None."""
    try:
        data: dict[str, Any] = json.loads(endpoints_file(settings).read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data


def check_feeds_file(settings: Settings) -> bool:
    """Read the feeds file as the fetcher will; whether it exists. Raises :class:`UpError` (the
    error ``wirewatch feeds list`` gives) when it cannot be read, or when it was configured
    (``WIREWATCH_FEEDS_FILE``) but does not exist: the fetcher would then poll nothing while
    every service looks healthy. The default file may be missing (``wirewatch feeds add``
    creates it, and the fetcher picks it up)."""
    path = settings.feeds_file
    if not path.exists():
        if "feeds_file" in settings.model_fields_set:
            raise UpError(
                f"feeds file {path} (WIREWATCH_FEEDS_FILE) does not exist: create it with "
                "`wirewatch feeds add URL`, or leave WIREWATCH_FEEDS_FILE unset"
            )
        return False
    check_feeds_readable(path)
    return True


def check_feeds_readable(path: Path) -> None:
    """Raises :class:`UpError` (the error ``wirewatch feeds list`` gives) when the fetcher could
    not read the feeds file ``path`` (a missing one it can: it lists no feeds)."""
    try:
        load_feeds(path)
    except FeedsFileError as exc:
        raise UpError(str(exc)) from exc


def lock_data_dir(data_dir: Path) -> int | None:
    """Claim ``data_dir`` for this process: the descriptor of its ``up.lock``, exclusively locked
    (``flock``), to keep open for as long as the claim holds; None when another process holds it.
    The system drops the lock when the descriptor closes, at the latest when the process ends,
    however it ends: a crashed run leaves no stale claim. Creates the directory; raises
    :class:`UpError` when it cannot be used."""
    try:
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / "up.lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        if data_dir.exists() and not data_dir.is_dir():
            reason = "it is not a directory"
        else:
            reason = exc.strerror or str(exc)
            if exc.filename and Path(exc.filename) != data_dir:
                reason += f" ({exc.filename})"
        raise UpError(f"cannot use {data_dir} as the data dir: {reason}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())  # for the message of the `up` refused
    return fd


def data_dir_holder(data_dir: Path) -> str:
    """The pid of the ``up`` holding ``data_dir`` (as it wrote in ``up.lock``), or ``unknown``."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return (data_dir / "up.lock").read_text().strip() or "unknown"
    return "unknown"


def resolve_endpoints(settings: Settings) -> Settings:
    """Settings with Kafka/ES, and the feeds file, filled in from a running ``wirewatch up`` on
    the data dir when not configured: the CLI then talks to that stack, and ``wirewatch feeds``
    edits the file its fetcher reads (``demo-feeds.yaml`` under ``up --demo``, the file given
    to ``up``, wherever the CLI runs), not ``./feeds.yaml``."""
    data = running_up(settings)
    if data is None:
        return settings
    update: dict[str, Any] = {}
    if not settings.kafka_bootstrap and data.get("kafka_bootstrap"):
        update["kafka_bootstrap"] = data["kafka_bootstrap"]
    if not settings.es_url and data.get("es_url"):
        update["es_url"] = data["es_url"]
    if "feeds_file" not in settings.model_fields_set and isinstance(data.get("feeds_file"), str):
        update["feeds_file"] = Path(data["feeds_file"])
    return settings.model_copy(update=update) if update else settings


@dataclass(frozen=True)
class RunningFetcher:
    """The fetcher of a live ``wirewatch up``, as its endpoints file records it: what the CLI
    needs to edit its feeds and to judge an address as its SSRF guard will."""

    data_dir: Path
    kafka_bootstrap: str | None
    feeds_file: Path
    fetch_allow_hosts: list[str]

    def reads(self, feeds_file: Path) -> bool:
        """Whether this fetcher reads ``feeds_file`` (relative to the working directory)."""
        return feeds_file.resolve() == self.feeds_file


def running_fetcher(settings: Settings) -> RunningFetcher | None:
    """The fetcher of the ``wirewatch up`` running on the settings' data dir, or None (none
    runs, or it is still starting, or an older ``up`` that did not record it)."""
    data = running_up(settings)
    if data is None:
        return None
    feeds_file, allow = data.get("feeds_file"), data.get("fetch_allow_hosts")
    if not isinstance(feeds_file, str) or not (
        isinstance(allow, list) and all(isinstance(entry, str) for entry in allow)
    ):
        return None
    kafka = data.get("kafka_bootstrap")
    return RunningFetcher(
        data_dir=settings.data_dir.resolve(),
        kafka_bootstrap=kafka if isinstance(kafka, str) else None,
        feeds_file=Path(feeds_file),
        fetch_allow_hosts=allow,
    )


def run_up(
    settings: Settings,
    *,
    backend: Backend = "noida",
    demo: bool = False,
    echo: Callable[[str], Any] = print,
    stop_event: threading.Event | None = None,
) -> int:
    from wirewatch.runner import setup

    data_dir = settings.data_dir.resolve()
    if demo:
        check_feeds_readable(demo_feeds_file(data_dir))
    feeds_listed = demo or check_feeds_file(settings)
    lock = lock_data_dir(data_dir)
    if lock is None:
        echo(
            f"wirewatch up is already running on {settings.data_dir} (pid {data_dir_holder(data_dir)});"
            " stop it first."
        )
        return 2
    stop = stop_event or threading.Event()
    if stop_event is None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())

    log_dir = data_dir / "logs"
    # What `wirewatch feeds` needs of the fetcher (`running_fetcher`): the file it reads, and the
    # exceptions to its SSRF guard (the demo's site added to them below).
    fetcher: dict[str, Any] = {
        "feeds_file": str(demo_feeds_file(data_dir) if demo else settings.feeds_file.resolve()),
        "fetch_allow_hosts": list(settings.fetch_allow_hosts),
    }
    starting = {"pid": os.getpid(), "starting": True}
    write_endpoints(endpoints_file(settings), {**starting, **fetcher})  # for `status`, `feeds`
    env: dict[str, str] = {"WIREWATCH_DATA_DIR": str(data_dir), "WIREWATCH_FEEDS_FILE": fetcher["feeds_file"]}
    servers: LocalServers | None = None
    stopping = False
    site = None
    supervisor: Supervisor | None = None
    try:
        if settings.kafka_bootstrap and settings.es_url:
            es_given = redact_url(settings.es_url)
            echo(f"Using Kafka at {settings.kafka_bootstrap} and Elasticsearch at {es_given}")
        elif settings.kafka_bootstrap or settings.es_url:
            echo("Set both WIREWATCH_KAFKA_BOOTSTRAP and WIREWATCH_ES_URL, or neither.")
            return 2
        else:
            echo(f"Starting local servers ({backend}) …")
            servers = start_servers(backend, data_dir=data_dir, log_dir=log_dir, cancel=stop)
            env.update(servers.env())
            if backend == "noida" and "WIREWATCH_TABLE_STORE" not in os.environ:
                # Kafka's data is on disk, so the services' tables can be too (no replay at start).
                env["WIREWATCH_TABLE_STORE"] = "rocksdb://"
            settings = settings.model_copy(update=servers.settings())
        if demo:
            from wirewatch.demo.site import DemoSite, content_of_this_week, write_feeds_file

            # Same port as last time: the demo's article URLs, hence their ids, stay the same.
            # (When it was taken, the feeds file's demo feeds move to the new port.)
            previous_port = read_ports(data_dir / "demo-port.json").get("demo")
            demo_port = remembered_ports(data_dir / "demo-port.json", ("demo",))["demo"]
            site = DemoSite.start(port=demo_port, release_interval=5.0, content=content_of_this_week())
            feeds_file = demo_feeds_file(data_dir)
            try:  # merged into: the feeds the operator added to the demo stay (see its docstring)
                listed = write_feeds_file(
                    feeds_file, site, previous_port=previous_port, warn=lambda m: echo(f"warning: {m}")
                )
            except FeedsFileError as exc:  # edited since the check above
                raise UpError(str(exc)) from exc
            # The demo site is on loopback, which the fetcher's SSRF guard refuses unless allowed.
            fetcher["fetch_allow_hosts"] = [*settings.fetch_allow_hosts, site.host]
            env["WIREWATCH_FETCH_ALLOW_HOSTS"] = ",".join(fetcher["fetch_allow_hosts"])
            write_endpoints(endpoints_file(settings), {**starting, **fetcher})
            demo_feeds = len(site.feed_urls())
            yours = f", and {len(listed) - demo_feeds} more" if len(listed) > demo_feeds else ""
            echo(f"Demo site on {site.url} ({demo_feeds} demo feeds in {feeds_file}{yours})")

        if stop.is_set():
            raise StartCancelledError("stop requested while starting")
        created = asyncio.run(setup(settings))
        if created["topics"] or created["indices"]:
            echo(f"Created topics {created['topics']} and indices {created['indices']}")

        backend_name: str = servers.backend if servers else "external"

        def publish_endpoints(supervisor: Supervisor) -> None:
            """Tell `wirewatch status|search` (and tests) where everything is right now, and
            keep the services' ports for the next `up` here (called by the supervisor)."""
            write_endpoints(
                endpoints_file(settings),
                {
                    "pid": os.getpid(),
                    "kafka_bootstrap": servers.kafka_bootstrap if servers else settings.kafka_bootstrap,
                    "es_url": servers.es_url if servers else settings.es_url,
                    "backend": backend_name,
                    "services": supervisor.describe(),
                    **fetcher,
                },
            )
            write_ports(web_ports_file(data_dir), {name: c.port for name, c in supervisor.children.items()})

        # noida-db never evicts a group member that died without leaving: after a crash the
        # restarted service would wait forever for its partitions. There, `up` restarts the
        # servers and then every service; elsewhere the supervisor restarts the one service.
        # Each service keeps its web port across restarts and runs while the port is free; the
        # supervisor moves one whose port was taken as it started (no server restart: it never
        # joined its group).
        restart_servers = servers is not None and servers.backend == "noida"
        supervisor = Supervisor(
            list(SERVICES),
            env,
            log_dir,
            restart=not restart_servers,
            ports=read_ports(web_ports_file(data_dir)),
            on_change=publish_endpoints,
        )
        supervisor.start()

        def fresh_servers() -> dict[str, str]:
            """The local servers started again on the same data, with their topics and indices
            (the ephemeral backend's start empty); returns the services' new environment."""
            assert servers is not None
            new_env = servers.restart()
            asyncio.run(setup(settings.model_copy(update=servers.settings())))
            return new_env

        def restart_everything() -> bool:
            """The local servers started again (:func:`fresh_servers`), then every service (the
            supervisor publishes where they are); False, said and logged, when they did not
            start (a stop requested meanwhile stops ``up``)."""
            try:
                supervisor.restart_all(fresh_servers)
            except StartCancelledError:
                raise
            except Exception as exc:  # the servers or the setup: nothing more up can do
                log.exception("local servers did not start again")
                echo(f"The local servers did not start again ({exc}); stopping. Logs: {log_dir}")
                return False
            return True

        healthy = supervisor.wait_healthy(120, stop)
        if stop.is_set():
            raise StartCancelledError("stop requested while starting")
        echo("")
        echo("wirewatch is up" if healthy else "wirewatch started, but some services are not healthy yet:")
        echo(f"  Kafka bootstrap      {settings.kafka_bootstrap}")
        es_shown = redact_url(str(settings.es_url))
        echo(f"  Elasticsearch        {es_shown}   (point Kibana's elasticsearch.hosts here)")
        for name, info in supervisor.describe().items():
            echo(f"  {name:<20} {info['health']}  metrics: {info['metrics']}")
        none_yet = "" if feeds_listed else "   (none yet: wirewatch feeds add URL)"
        echo(f"  Feeds file           {env['WIREWATCH_FEEDS_FILE']}{none_yet}")
        echo(f"  Alert targets        {describe_targets(settings)}")
        echo(f"  Logs                 {log_dir}")
        # The CLI finds this stack by its data dir: the default one, unless told otherwise.
        elsewhere = data_dir != Path(Settings.model_fields["data_dir"].default).resolve()
        cli = f"WIREWATCH_DATA_DIR={data_dir} wirewatch" if elsewhere else "wirewatch"
        echo(f"Try: {cli} status · {cli} search QUERY · Ctrl-C to stop")
        server_exits: list[float] = []  # when a local server exited, within the window
        while not stop.wait(1.0):
            if servers is not None and not servers.alive():
                gone = ", ".join(servers.exited())
                now = time.monotonic()
                server_exits = [t for t in server_exits if now - t < SERVER_EXIT_WINDOW] + [now]
                if len(server_exits) > SERVER_RESTARTS:
                    log.error("local server keeps exiting; stopping", extra={"servers": gone})
                    echo(
                        f"A local server exited ({gone}), {len(server_exits)} times in"
                        f" {SERVER_EXIT_WINDOW / 60:g} minutes; stopping. Its log: {log_dir}"
                    )
                    return 1
                lost = (
                    "they keep data in memory only, so they start empty"
                    if servers.backend == "ephemeral"
                    else "writes of its last seconds may be lost"
                )
                log.error(
                    "local server exited; restarting the local servers, then every service",
                    extra={"servers": gone, "backend": servers.backend},
                )
                echo(f"A local server exited ({gone}); restarting the servers ({lost}), then every service.")
                if not restart_everything():
                    return 1
                echo("The local servers and every service are running again.")
                continue
            crashed = supervisor.crashed() if restart_servers else []
            if crashed and servers is not None:
                log.error(
                    "service crashed; restarting the local servers, then every service",
                    extra={"services": crashed, "backend": servers.backend},
                )
                if not restart_everything():
                    return 1
        stopping = True
        echo("Stopping …")
        return 0
    except StartCancelledError:
        stopping = True
        echo("Stopping …")
        return 0
    finally:
        if supervisor is not None:
            supervisor.stop()
        if site is not None:
            site.close()
        if servers is not None:
            servers.stop()
        mine = running_up(settings)
        if mine is not None and mine.get("pid") == os.getpid():
            endpoints_file(settings).unlink(missing_ok=True)
        os.close(lock)  # the data directory is free again
        if stopping:  # the last word once everything is down: what is kept, if anything
            if servers is None:  # servers of the user's (or none started yet): nothing of ours kept data
                echo("Stopped.")
            elif backend == "ephemeral":
                echo("Stopped. The in-memory servers' data is gone.")
            else:
                echo(f"Stopped. Data kept in {data_dir}: wirewatch up there carries on from it.")
