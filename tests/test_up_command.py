"""`wirewatch up` as a user runs it: the real command, its default backend (noida-db, data on
disk), a loopback news site, then Ctrl-C (SIGINT) and a second start on the same data.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import stories
from conftest import non_loopback_addresses, refused, wait_for
from newsroom import NewsSite
from wirewatch.core.feeds import add_feed
from wirewatch.core.ids import article_id
from wirewatch.local.servers import http_ok

pytestmark = pytest.mark.e2e


class Up:
    def __init__(self, tmp: Path, feeds_file: Path) -> None:
        self.tmp = tmp
        self.data_dir = tmp / "data"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")},
            "WIREWATCH_FEEDS_FILE": str(feeds_file),
            "WIREWATCH_POLL_INTERVAL": "1",
            "WIREWATCH_INDEX_BATCH_SECONDS": "0.3",
            "WIREWATCH_FETCH_ALLOW_HOSTS": "127.0.0.1/32",  # the news site is on loopback
            "WIREWATCH_FETCH_HOST_DELAY": "0.1",  # one loopback host serves every outlet
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.output = tmp / "up.out"

    def start(self) -> None:
        self.wait_ready(self.launch())

    def launch(self) -> int:
        """Start `wirewatch up` without waiting for it; how many times it said it was up before."""
        ready_before = self.output.read_text().count("wirewatch is up") if self.output.exists() else 0
        with open(self.output, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wirewatch", "up", "--data-dir", str(self.data_dir)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.tmp,
                process_group=0,  # its own group, as a shell runs a job in the foreground
            )
        return ready_before

    def wait_ready(self, ready_before: int) -> None:
        wait_for(
            lambda: self.output.read_text().count("wirewatch is up") > ready_before,
            timeout=120,
            what="`wirewatch up` ready",
        )

    def started(self) -> dict[str, dict[str, Any]]:
        """The services as `up` started them (pid, port …); none while it has not yet."""
        try:
            services: dict[str, dict[str, Any]] = self.endpoints()["services"]
        except (OSError, ValueError, KeyError):
            return {}
        return services

    def endpoints(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.data_dir / "endpoints.json").read_text())
        return data

    def ports(self) -> dict[str, int]:
        """Each service's web port now."""
        return {name: info["port"] for name, info in self.endpoints()["services"].items()}

    def assert_same_ports(self, ports: dict[str, int]) -> None:
        """Every service on the port it had, unless another program took it meanwhile (then
        `up` said so: a port of the ephemeral range can be taken by any connection)."""
        now = self.ports()
        moved = {name for name in ports if now[name] != ports[name]}
        taken = [line for line in self.output.read_text().splitlines() if "web port taken" in line]
        for name in moved:
            assert any(f"service={name} port={ports[name]} " in line for line in taken), (ports, now)

    def stop(self) -> int:
        """Ctrl-C, as a terminal sends it: SIGINT to every process of the foreground job. Every
        service stops with `up`, having drained (the servers ran until then)."""
        assert self.process is not None
        pids = [info["pid"] for info in self.endpoints()["services"].values()]
        logs = {path: path.stat().st_size for path in (self.data_dir / "logs").glob("*.log")}
        os.killpg(self.process.pid, signal.SIGINT)
        code = self.process.wait(60)
        for pid in pids:  # every service stopped with it
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        for path, start in logs.items():
            with open(path, "rb") as log:
                log.seek(start)
                stopping = log.read().decode("utf-8", "replace")
            for sign in ("shutdown did not finish in time", "LeaveGroup request failed"):
                assert sign not in stopping, f"{path.name}: {sign}"
        self.process = None
        return code

    def wait_for_articles(self, ids: set[str], timeout: float, what: str) -> dict[str, dict[str, Any]]:
        """The indexed articles once they are exactly ``ids``."""

        def exactly() -> dict[str, dict[str, Any]]:
            found = self.articles()
            return found if set(found) == ids else {}

        return wait_for(exactly, timeout=timeout, what=what)

    def articles(self) -> dict[str, dict[str, Any]]:
        """Indexed articles; empty while Elasticsearch is unreachable (e.g. `up` restarting it)."""
        es = self.endpoints()["es_url"]
        try:
            httpx.post(f"{es}/wirewatch-articles/_refresh", timeout=10)
            response = httpx.post(f"{es}/wirewatch-articles/_search", json={"size": 1000}, timeout=30)
        except httpx.TransportError:
            return {}
        response.raise_for_status()
        hits = [h["_source"] for h in response.json()["hits"]["hits"]]
        by_id = {h["id"]: h for h in hits}
        assert len(by_id) == len(hits)
        return by_id


@pytest.fixture
def up(tmp_path: Path, site: NewsSite) -> Iterator[Up]:
    feeds_file = tmp_path / "feeds.yaml"
    # Polled every 2 s, its own interval (adaptive polling would wait at least a minute between
    # polls, and after each restart the fetcher keeps to the schedule it had).
    add_feed(feeds_file, site.add_outlet("daily", "Daily Test"), interval=2)
    runner = Up(tmp_path, feeds_file)
    yield runner
    if runner.process is not None and runner.process.poll() is None:
        runner.process.kill()
        runner.process.wait(10)


def _noida_pid(data_dir: Path) -> int:
    """The pid of the noida-db server `up` runs on ``data_dir``."""
    found = subprocess.run(
        ["pgrep", "-f", f"noida-db start --data-dir {data_dir / 'noida'} "], capture_output=True, text=True
    ).stdout.split()
    assert len(found) == 1, found
    return int(found[0])


def test_up_stops_cleanly_and_restarts_on_the_same_data(up: Up, site: NewsSite) -> None:
    urls = [site.publish("daily", s) for s in (stories.BRIDGE, stories.INCENDIE)]
    copy = site.publish("daily", stories.copy_of(stories.BRIDGE, "bridge-copy"))
    expected = {article_id(u) for u in [*urls, copy]}

    up.start()
    assert up.endpoints()["backend"] == "noida"
    ports = up.ports()
    first = up.wait_for_articles(expected, 90, "the three articles indexed")
    pair = {article_id(copy), article_id(urls[0])}
    flagged = {a["id"]: a["duplicate_of"] for a in first.values() if a["is_duplicate"]}
    # Same poll, same text: whichever reached the enricher first is the original.
    assert len(flagged) == 1 and set(flagged) | set(flagged.values()) == pair

    # A second `up` on the same data directory refuses instead of fighting over it.
    second = subprocess.run(
        [sys.executable, "-m", "wirewatch", "up", "--data-dir", str(up.data_dir)],
        env=up.env,
        capture_output=True,
        timeout=60,
    )
    assert second.returncode == 2
    assert b"already running" in second.stdout

    # kill -9 of a service: noida-db never evicts the dead group member, so `up` restarts the
    # servers and every service; the stream must go on (a new article arrives) with nothing doubled.
    enricher_pid = up.endpoints()["services"]["enricher"]["pid"]
    os.kill(enricher_pid, signal.SIGKILL)
    crash_article = site.publish("daily", stories.VACCINE)
    expected.add(article_id(crash_article))
    up.wait_for_articles(expected, 120, "the stream to recover from the crash")
    assert "restarting the local servers" in up.output.read_text()
    assert up.endpoints()["services"]["enricher"]["pid"] != enricher_pid
    up.assert_same_ports(ports)  # every service restarted, each on its port

    # kill -9 of the local server itself: `up` starts it again on its data, then every service.
    # noida-db saves its data every few seconds (a write 1 s before a SIGKILL was lost, one 3 s
    # before was kept): what was indexed 6 s ago is there after the restart.
    time.sleep(6)
    before = up.endpoints()
    os.kill(_noida_pid(up.data_dir), signal.SIGKILL)
    after_server_crash = site.publish("daily", stories.STRIKE)
    expected.add(article_id(after_server_crash))
    up.wait_for_articles(
        expected, 150, "the stream to go on after the server's crash, with the earlier articles kept"
    )
    said = up.output.read_text()
    assert "A local server exited (noida-db (exit code -9))" in said
    assert "running again" in said
    assert up.endpoints()["services"]["fetcher"]["pid"] != before["services"]["fetcher"]["pid"]
    up.assert_same_ports(ports)

    assert up.stop() == 0
    said = up.output.read_text()
    assert "Stopping" in said
    assert said.rstrip().endswith(
        f"Stopped. Data kept in {up.data_dir}: wirewatch up there carries on from it."
    )
    assert not (up.data_dir / "endpoints.json").exists()

    new = site.publish("daily", stories.TRAMWAY)
    up.start()
    # The data survived the restart, nothing was doubled, and the new article arrived.
    after = up.wait_for_articles(
        expected | {article_id(new)}, 120, "old articles kept and the new one indexed"
    )
    assert {a["id"]: a["duplicate_of"] for a in after.values() if a["is_duplicate"]} == flagged
    up.assert_same_ports(ports)  # the next `up` here starts each service where it was
    assert up.stop() == 0


def _listed(site: NewsSite, outlet: str) -> set[str]:
    """The ids of the articles ``outlet``'s feed lists now."""
    return {article_id(link) for _, link in site.feeds[outlet]}


def _take(port: int, what: str) -> socket.socket:
    """Another program listening on ``port`` (on loopback), taken before the service ``what``
    listens there: a real service takes seconds to start, the test a few milliseconds to see it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise AssertionError(f"{what} listened on {port} before the test could take it") from None
    sock.listen()
    return sock


def test_up_listens_on_loopback_only_and_moves_a_service_whose_port_is_taken_as_it_starts(
    up: Up, site: NewsSite
) -> None:
    """The real command on noida-db. A service's port, found free by `up`, taken by another
    program before the service listens on it (at `up`'s start, and when `up` starts every service
    again after a crash): the service moves to another port at once, said in `up`'s output and
    written to endpoints.json and web-ports.json; not a crash, so the servers are not restarted
    for it, and the stream goes on. Every service (and the local servers) answers on loopback,
    and on none of this machine's other addresses."""
    site.publish("daily", stories.ELECTIONS)
    expected = _listed(site, "daily")  # the module's earlier tests' too: the site is shared
    ready_before = up.launch()
    fetcher_port = wait_for(lambda: up.started().get("fetcher", {}).get("port"), 60, 0.02, "services started")
    with _take(fetcher_port, "the fetcher"):
        up.wait_ready(ready_before)
        ports = up.ports()
        assert ports["fetcher"] != fetcher_port
        said = up.output.read_text()
        assert f"service=fetcher port={fetcher_port} new_port={ports['fetcher']}" in said, said[-3000:]
        assert json.loads((up.data_dir / "web-ports.json").read_text()) == ports
        up.wait_for_articles(expected, 90, "the article, fetched by the moved fetcher")

    endpoints = up.endpoints()
    servers = {
        "kafka": int(endpoints["kafka_bootstrap"].rsplit(":", 1)[1]),
        "elasticsearch": int(endpoints["es_url"].rsplit(":", 1)[1]),
    }
    for name, info in endpoints["services"].items():
        assert httpx.get(info["health"], timeout=5).status_code == 200, name
    addresses = non_loopback_addresses()
    for address in addresses:
        for name, port in {**up.ports(), **servers}.items():
            assert refused(address, port), f"{name} is reachable on {address}:{port}"

    # A crash: noida-db never evicts the dead member, so `up` restarts the servers and every
    # service, and the indexer's port is taken as it starts again.
    indexer = up.started()["indexer"]
    os.kill(indexer["pid"], signal.SIGKILL)
    restarted = wait_for(
        lambda: (info := up.started().get("indexer", {})).get("pid") not in (None, indexer["pid"]) and info,
        120,
        0.02,
        "the indexer started again",
    )
    assert restarted["port"] == indexer["port"]
    with _take(indexer["port"], "the indexer"):
        wait_for(lambda: up.ports()["indexer"] != indexer["port"], 60, what="the indexer on another port")
        wait_for(lambda: http_ok(up.started()["indexer"]["health"]), 60, what="the moved indexer healthy")
        site.publish("daily", stories.PARK)
        expected = _listed(site, "daily")
        up.wait_for_articles(expected, 120, "the stream to go on, indexed by the moved indexer")
    said = up.output.read_text()
    assert f"service=indexer port={indexer['port']} new_port={up.ports()['indexer']}" in said
    assert said.count("service crashed; restarting the local servers") == 1  # for the kill only
    assert json.loads((up.data_dir / "web-ports.json").read_text()) == up.ports()
    assert up.stop() == 0
    if not addresses:
        pytest.skip("this machine has no address but loopback: reachability beyond it not checked")
