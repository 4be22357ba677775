"""A service's web server (``/healthz``, ``/readyz``, ``/metrics``; the fetcher's ``/feeds``): it
listens where ``WIREWATCH_WEB_HOST`` says, every interface by default (containers, whose probes
come from outside) and loopback only in the local mode; and a service whose web port another
program holds exits with its own status, which ``wirewatch up`` tells from a crash.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

import stories
from conftest import non_loopback_addresses, refused, wait_for
from newsroom import NewsSite
from wirewatch.core.app import EXIT_WEB_PORT_TAKEN
from wirewatch.local.servers import LocalServers, free_port, http_ok

pytestmark = pytest.mark.timeout(120)


def _env(servers: LocalServers, tmp_path: Path, port: int, **variables: str) -> dict[str, str]:
    """The fetcher's environment (the quickest service to start) on ``servers``, web port ``port``."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")},
        **servers.env(),
        "WIREWATCH_DATA_DIR": str(tmp_path / "data"),
        "WIREWATCH_FEEDS_FILE": str(tmp_path / "feeds.yaml"),  # none yet: the fetcher waits for it
        "WIREWATCH_WEB_PORT": str(port),
        **variables,
    }


@contextmanager
def _fetcher(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "wirewatch", "run", "fetcher"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def test_a_service_whose_web_port_is_taken_exits_with_its_own_status(
    servers: LocalServers, tmp_path: Path
) -> None:
    """Faust exits 1 whatever failed; a taken web port is EXIT_WEB_PORT_TAKEN, and the log says it."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        log = tmp_path / "fetcher.log"
        with _fetcher(_env(servers, tmp_path, port), log) as fetcher:
            assert fetcher.wait(90) == EXIT_WEB_PORT_TAKEN, log.read_text()[-3000:]
    assert f"web port {port} on 0.0.0.0 is in use by another program" in log.read_text()


def test_a_service_listens_where_web_host_says(servers: LocalServers, tmp_path: Path) -> None:
    """By default on every interface, so a container's probes reach it; with WIREWATCH_WEB_HOST=
    127.0.0.1 (what `wirewatch up` sets) on loopback only: not on this machine's other addresses."""
    addresses = non_loopback_addresses()
    everywhere, loopback = free_port(), free_port()
    with (
        _fetcher(_env(servers, tmp_path, everywhere), tmp_path / "everywhere.log") as default,
        _fetcher(
            _env(servers, tmp_path, loopback, WIREWATCH_WEB_HOST="127.0.0.1"), tmp_path / "lo.log"
        ) as lo,
    ):
        for port, process in ((everywhere, default), (loopback, lo)):
            wait_for(
                lambda: process.poll() is not None or http_ok(f"http://127.0.0.1:{port}/healthz"),  # noqa: B023
                timeout=90,
                what=f"the fetcher on port {port}",
            )
            assert process.poll() is None, f"the fetcher on port {port} exited with {process.returncode}"
        if not addresses:
            pytest.skip("this machine has no address but loopback: nothing to check beyond it")
        for address in addresses:
            host = f"[{address}]" if ":" in address else address
            assert refused(address, loopback), f"reachable on {address}:{loopback}"
            if ":" not in address:  # 0.0.0.0 is every IPv4 interface
                assert http_ok(f"http://{host}:{everywhere}/healthz"), f"not reachable on {address}"


def test_feeds_list_shows_each_feed_s_health_as_its_fetcher_reports_it(
    servers: LocalServers, site: NewsSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`feeds list --fetcher URL` reads the fetcher's /feeds: a feed that works says when it was
    last polled and how many items it had; a broken one says FAILING and why; a fetcher that does
    not answer is said once, and the list is still given."""
    from click.testing import CliRunner

    from wirewatch.cli import main

    good = site.add_outlet("health-daily", "Health Daily")
    site.publish("health-daily", stories.BRIDGE)
    broken = f"{site.url}/health-gone/rss.xml"  # the site answers 404
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text(yaml.safe_dump({"feeds": [{"url": good}, {"url": broken}]}), encoding="utf-8")
    port = free_port()
    env = _env(
        servers,
        tmp_path,
        port,
        WIREWATCH_WEB_HOST="127.0.0.1",
        WIREWATCH_FETCH_ALLOW_HOSTS="127.0.0.1/32",
        WIREWATCH_POLL_INTERVAL="1",
    )
    monkeypatch.setenv("WIREWATCH_FEEDS_FILE", str(feeds_file))
    monkeypatch.setenv("WIREWATCH_DATA_DIR", str(tmp_path / "cli"))
    fetcher_url = f"http://127.0.0.1:{port}"
    with _fetcher(env, tmp_path / "fetcher.log"):

        def both_polled() -> bool:
            try:
                with urllib.request.urlopen(f"{fetcher_url}/feeds", timeout=2) as response:
                    records = {r["url"]: r for r in json.load(response)}
            except (OSError, ValueError):
                return False
            return bool(records.get(good, {}).get("last_success")) and bool(
                records.get(broken, {}).get("consecutive_failures")
            )

        wait_for(both_polled, timeout=90, what="both feeds polled")
        listed = CliRunner().invoke(main, ["feeds", "list", "--fetcher", fetcher_url])
        assert listed.exit_code == 0, listed.output
        lines = listed.stdout.splitlines()
        good_health = lines[lines.index(next(li for li in lines if good in li)) + 1].strip()
        broken_health = lines[lines.index(next(li for li in lines if broken in li)) + 1].strip()
        assert (
            good_health.startswith("ok: last good poll 20") and "; 1 item seen; next poll 20" in good_health
        )
        assert broken_health.startswith("FAILING (") and "404" in broken_health
        assert "last good poll never" in broken_health
        as_json = CliRunner().invoke(main, ["feeds", "list", "--fetcher", fetcher_url, "--json"])
        health = {f["url"]: f["health"] for f in json.loads(as_json.stdout)}
        assert health[good]["items_seen"] == 1 and health[broken]["consecutive_failures"] >= 1
    gone = CliRunner().invoke(main, ["feeds", "list", "--fetcher", fetcher_url])
    assert gone.exit_code == 0 and f"no feed health: no answer at {fetcher_url}/feeds" in gone.stderr
    assert len(gone.stdout.splitlines()) == 3  # two feeds and the count, no health lines
    plain = CliRunner().invoke(main, ["feeds", "list"])  # no fetcher named, no `up` running here
    assert plain.stderr == "" and len(plain.stdout.splitlines()) == 3
