"""``wirewatch up``: the whole system on one machine, with one command.

With no Kafka/Elasticsearch configured it starts local servers (noida-db, data kept under
``data_dir``; or tansu + osmem-server with ``--ephemeral``), creates topics and indices,
starts every service as a child process, waits for health, prints where things are, and
restarts crashed services. Ctrl-C / SIGTERM stops services (draining), then servers.
With ``WIREWATCH_KAFKA_BOOTSTRAP`` and ``WIREWATCH_ES_URL`` set it starts only the services.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wirewatch.core.logs import get_logger
from wirewatch.core.settings import SERVICES, Settings
from wirewatch.local.servers import Backend, LocalServers, remembered_ports, start_servers
from wirewatch.local.supervisor import Supervisor, write_endpoints

log = get_logger(__name__)


def endpoints_file(settings: Settings) -> Path:
    return settings.data_dir / "endpoints.json"


def running_up(settings: Settings) -> dict[str, Any] | None:
    """What a live ``wirewatch up`` on this data directory wrote, or None."""
    try:
        data: dict[str, Any] = json.loads(endpoints_file(settings).read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data


def resolve_endpoints(settings: Settings) -> Settings:
    """Settings with Kafka/ES filled in from a running ``wirewatch up`` when not configured."""
    if settings.kafka_bootstrap and settings.es_url:
        return settings
    data = running_up(settings)
    if data is None:
        return settings
    update = {}
    if not settings.kafka_bootstrap and data.get("kafka_bootstrap"):
        update["kafka_bootstrap"] = data["kafka_bootstrap"]
    if not settings.es_url and data.get("es_url"):
        update["es_url"] = data["es_url"]
    return settings.model_copy(update=update)


def run_up(
    settings: Settings,
    *,
    backend: Backend = "noida",
    demo: bool = False,
    echo: Callable[[str], Any] = print,
    stop_event: threading.Event | None = None,
) -> int:
    from wirewatch.runner import setup

    other = running_up(settings)
    if other is not None:
        echo(f"wirewatch up is already running on {settings.data_dir} (pid {other['pid']}); stop it first.")
        return 2
    stop = stop_event or threading.Event()
    if stop_event is None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())

    data_dir = settings.data_dir.resolve()
    log_dir = data_dir / "logs"
    write_endpoints(endpoints_file(settings), {"pid": os.getpid(), "starting": True})  # claim the data dir
    env: dict[str, str] = {"WIREWATCH_DATA_DIR": str(data_dir)}
    servers: LocalServers | None = None
    site = None
    supervisor: Supervisor | None = None
    try:
        if settings.kafka_bootstrap and settings.es_url:
            echo(f"Using Kafka at {settings.kafka_bootstrap} and Elasticsearch at {settings.es_url}")
        elif settings.kafka_bootstrap or settings.es_url:
            echo("Set both WIREWATCH_KAFKA_BOOTSTRAP and WIREWATCH_ES_URL, or neither.")
            return 2
        else:
            echo(f"Starting local servers ({backend}) …")
            servers = start_servers(backend, data_dir=data_dir, log_dir=log_dir)
            env.update(servers.env())
            if backend == "noida" and "WIREWATCH_TABLE_STORE" not in os.environ:
                # Kafka's data is on disk, so the services' tables can be too (no replay at start).
                env["WIREWATCH_TABLE_STORE"] = "rocksdb://"
            settings = settings.model_copy(update=servers.settings())
        if demo:
            from wirewatch.demo.site import DemoSite, content_of_this_week, write_feeds_file

            # Same port as last time: the demo's article URLs, hence their ids, stay the same.
            demo_port = remembered_ports(data_dir / "demo-port.json", ("demo",))["demo"]
            site = DemoSite.start(port=demo_port, release_interval=5.0, content=content_of_this_week())
            feeds_file = data_dir / "demo-feeds.yaml"
            write_feeds_file(feeds_file, site)
            env["WIREWATCH_FEEDS_FILE"] = str(feeds_file)
            # The demo site is on loopback, which the fetcher's SSRF guard refuses unless allowed.
            env["WIREWATCH_FETCH_ALLOW_HOSTS"] = ",".join([*settings.fetch_allow_hosts, site.host])
            echo(f"Demo site on {site.url} ({len(site.feed_urls())} feeds in {feeds_file})")
        else:
            env["WIREWATCH_FEEDS_FILE"] = str(settings.feeds_file.resolve())

        created = asyncio.run(setup(settings))
        if created["topics"] or created["indices"]:
            echo(f"Created topics {created['topics']} and indices {created['indices']}")

        # noida-db never evicts a group member that died without leaving: after a crash the
        # restarted service would wait forever for its partitions. There, `up` restarts the
        # servers and then every service; elsewhere the supervisor restarts the one service.
        restart_servers = servers is not None and servers.backend == "noida"
        supervisor = Supervisor(list(SERVICES), env, log_dir, restart=not restart_servers)
        supervisor.start()
        backend_name: str = servers.backend if servers else "external"

        def publish_endpoints(supervisor: Supervisor) -> None:
            """Tell `wirewatch status|search` (and tests) where everything is right now."""
            write_endpoints(
                endpoints_file(settings),
                {
                    "pid": os.getpid(),
                    "kafka_bootstrap": servers.kafka_bootstrap if servers else settings.kafka_bootstrap,
                    "es_url": servers.es_url if servers else settings.es_url,
                    "backend": backend_name,
                    "services": supervisor.describe(),
                },
            )

        publish_endpoints(supervisor)
        healthy = supervisor.wait_healthy(120)
        echo("")
        echo("wirewatch is up" if healthy else "wirewatch started, but some services are not healthy yet:")
        echo(f"  Kafka bootstrap      {settings.kafka_bootstrap}")
        echo(f"  Elasticsearch        {settings.es_url}   (point Kibana's elasticsearch.hosts here)")
        for name, info in supervisor.describe().items():
            echo(f"  {name:<20} {info['health']}  metrics: {info['metrics']}")
        echo(f"  Feeds file           {env['WIREWATCH_FEEDS_FILE']}")
        echo(f"  Logs                 {log_dir}")
        echo("Try: wirewatch status · wirewatch search QUERY · Ctrl-C to stop")
        while not stop.wait(1.0):
            if servers is not None and not servers.alive():
                echo("A local server exited; stopping.")
                return 1
            crashed = supervisor.crashed() if restart_servers else []
            if crashed and servers is not None:
                log.error(
                    "service crashed; restarting the local servers, then every service",
                    extra={"services": crashed, "backend": servers.backend},
                )
                supervisor.restart_all(servers.restart)
                publish_endpoints(supervisor)
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
