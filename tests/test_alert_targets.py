"""Alert targets that fail are seen, dead-lettered deliveries are sent again, and a stop does not
wait for a parked delivery: the alerts service and the indexer on real servers (tansu and
osmem-server), with webhook receivers on loopback.

Three webhooks: one that takes every alert, one that refuses them with a 404 (a wrong path:
dead-lettered at once) until it is "fixed", and one whose port nothing listens on (parked, its
next try 12 s later). Alerts are put on the alerts topic directly. Every text here is invented
for this test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner

from conftest import make_settings, run, search_docs, settings_for, wait_for
from test_alert_delivery import make_alert
from test_up_start import _StandIns, _wait_until
from wirewatch.cli import main
from wirewatch.core.alert_targets import configured_target_names, target_labels
from wirewatch.core.kafka import produce
from wirewatch.core.models import Alert
from wirewatch.core.settings import Settings
from wirewatch.local import up
from wirewatch.local.servers import LocalServers
from wirewatch.local.supervisor import Supervisor, write_endpoints
from wirewatch.runner import setup

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SECRET = "alert-targets-secret"
#: The refusing webhook's answer: longer than any column, its end says why.
REFUSAL = "no hook at this path: check WIREWATCH_ALERT_WEBHOOK_URLS " + "x" * 120 + " END-OF-REASON"


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: bytes


class Hooks:
    """Webhook receivers on one loopback port (0: a free one): each path answers as
    :attr:`answers` says (200 by default), and every POST is kept."""

    def __init__(self, port: int = 0) -> None:
        self.posts: list[Post] = []
        self.answers: dict[str, tuple[int, str]] = {}
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                hooks.posts.append(Post(path, dict(self.headers), body))
                status, text = hooks.answers.get(path, (200, "ok"))
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self, path: str, alert_id: str) -> list[Post]:
        return [p for p in self.posts if p.path == path and p.headers.get("X-Wirewatch-Alert-Id") == alert_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def alert_number(n: int) -> Alert:
    return make_alert(n, claim_id="claim-merrow-flood", claim_text="The Merrow river flooded Halbeck.")


def signed(post: Post) -> bool:
    """Whether ``post`` carries the HMAC of its timestamp, alert id and body with the secret."""
    material = f"{post.headers['X-Wirewatch-Timestamp']}.{post.headers['X-Wirewatch-Alert-Id']}.".encode()
    expected = "sha256=" + hmac.new(SECRET.encode(), material + post.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(post.headers["X-Wirewatch-Signature"], expected)


class Stack:
    def __init__(self, servers: LocalServers, tmp: Path) -> None:
        self.servers = servers
        self.tmp = tmp
        self.hooks = Hooks()
        self.down_port = unused_port()  # the third webhook: nothing listens there (yet)
        base = f"http://127.0.0.1:{self.hooks.port}"
        self.urls = {
            "good": f"{base}/good",
            # A wrong path, and secrets the names and labels must not show.
            "refuser": f"http://user:pw@127.0.0.1:{self.hooks.port}/refuser?token=QUERYSECRET",
            "down": f"http://127.0.0.1:{self.down_port}/down",
        }
        self.hooks.answers["/refuser"] = (404, REFUSAL)
        self.env = {
            **servers.env(),
            "WIREWATCH_LOG_FORMAT": "json",
            "WIREWATCH_DATA_DIR": str(tmp / "data"),
            "WIREWATCH_INDEX_BATCH_SECONDS": "0.3",
            "WIREWATCH_ALERT_WEBHOOK_URLS": ",".join(self.urls.values()),
            "WIREWATCH_ALERT_WEBHOOK_SECRET": SECRET,
            "WIREWATCH_ALERT_DIGEST_SECONDS": "0",
            # One try in line (the next would wait 20-60 s, past the 8 s budget), then parked
            # with its next try 12 s later (the cap): longer than the stop may take (6 s).
            "WIREWATCH_ALERT_RETRY_ATTEMPTS": "2",
            "WIREWATCH_ALERT_RETRY_BACKOFF": "40",
            "WIREWATCH_ALERT_RETRY_MAX_SECONDS": "8",
            "WIREWATCH_ALERT_REDELIVER_MAX_DELAY": "12",
            "WIREWATCH_SHUTDOWN_TIMEOUT": "6",
        }
        self.settings: Settings = settings_for(
            servers, alert_webhook_urls=list(self.urls.values()), alert_webhook_secret=SECRET
        )
        names = configured_target_names(self.settings)
        self.names = dict(zip(self.urls, names, strict=True))
        self.labels = {key: target_labels(names)[name] for key, name in self.names.items()}
        self.supervisor = Supervisor(["indexer", "alerts"], self.env, tmp / "logs")

    def start(self) -> None:
        run(setup(self.settings))
        self.supervisor.start()
        assert self.supervisor.wait_healthy(120), f"not healthy: {self.supervisor.healthy()}"
        self.publish_endpoints()
        self.wait_ready()

    def publish_endpoints(self) -> None:
        """Where `wirewatch status` finds the services, as `wirewatch up` writes it."""
        data_dir = self.tmp / "data"
        write_endpoints(
            data_dir / "endpoints.json", {"pid": os.getpid(), "services": self.supervisor.describe()}
        )

    def page(self, path: str) -> Any:
        port = self.supervisor.children["alerts"].port
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).json()

    def wait_ready(self) -> None:
        wait_for(lambda: self.page("/readyz")["ready"], timeout=90, what="the alerts service ready")

    def warning(self) -> str:
        return str(self.page("/readyz")["warnings"].get("alert_targets", ""))

    def raise_alert(self, n: int) -> Alert:
        alert = alert_number(n)
        run(produce(self.settings, self.settings.topic_alerts, [(alert.claim_id.encode(), alert.to_bytes())]))
        return alert

    def cli(self, *args: str) -> Any:
        env = {
            "WIREWATCH_KAFKA_BOOTSTRAP": self.servers.kafka_bootstrap,
            "WIREWATCH_ES_URL": self.servers.es_url,
            "WIREWATCH_DATA_DIR": str(self.tmp / "data"),
        }
        return CliRunner().invoke(main, list(args), env=env)

    def dead_letters(self) -> list[dict[str, Any]]:
        """The dead letters of alert deliveries in Elasticsearch."""
        letters = search_docs(self.servers.es_url, "dead-letters")
        return [letter for letter in letters if letter["stage"] == "alerts.deliver"]

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in (self.tmp / "logs" / "alerts.log").read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
        return lines

    def said(self, message: str) -> int:
        return sum(1 for line in self.log_lines() if line.get("msg") == message)


@pytest.fixture(scope="module")
def stack(servers: LocalServers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(servers, tmp_path_factory.mktemp("alert-targets"))
    try:
        s.start()
        yield s
    finally:
        s.supervisor.stop()
        s.hooks.close()


def test_targets_are_named_without_secrets_when_the_service_starts(stack: Stack) -> None:
    [line] = [line for line in stack.log_lines() if str(line.get("msg", "")).startswith("alert targets: ")]
    assert line["msg"] == "alert targets: " + ", ".join(stack.labels.values())
    assert stack.labels["good"].startswith(f"webhook 127.0.0.1:{stack.hooks.port} #")  # two on one host
    assert stack.labels["down"] == f"webhook 127.0.0.1:{stack.down_port}"
    for secret in ("QUERYSECRET", "pw@", "/refuser", "/good"):
        assert secret not in json.dumps(line)
    # /alert-targets lists every target, by label, before any delivery.
    assert [t["target"] for t in stack.page("/alert-targets")] == list(stack.labels.values())
    assert stack.warning() == ""


def test_a_refusing_target_is_seen_failing_and_its_delivery_sent_again_once_fixed(stack: Stack) -> None:
    alert = stack.raise_alert(1)
    wait_for(lambda: stack.hooks.received("/refuser", alert.id), what="the refused POST")
    wait_for(lambda: stack.hooks.received("/good", alert.id), what="the alert at the good webhook")
    refuser, good = stack.labels["refuser"], stack.labels["good"]

    # /readyz warns while the service stays ready; the warning names the target and why.
    wait_for(lambda: refuser in stack.warning(), what="a warning naming the refusing target")
    [said] = [line for line in stack.warning().splitlines() if line.startswith(refuser)]
    assert "failing since" in said and "HTTP 404: no hook at this path" in said and "QUERYSECRET" not in said
    assert stack.page("/readyz")["ready"] is True
    # Deliveries are counted by target.
    metrics = httpx.get(stack.supervisor.children["alerts"].metrics_url, timeout=5).text
    assert f'wirewatch_alerts_total{{outcome="failed",target="{refuser}"}} 1.0' in metrics
    assert f'wirewatch_alerts_total{{outcome="delivered",target="{good}"}} 1.0' in metrics
    assert "QUERYSECRET" not in metrics and "/refuser" not in metrics

    # `wirewatch status` lists the targets, how each fares, and the warning; still exit 0.
    status = stack.cli("status")
    assert status.exit_code == 0, status.output
    assert f"    alert target {refuser}  FAILING since " in status.output
    assert f"    alert target {good}  ok, last delivered " in status.output
    assert f"    ! alert_targets: {refuser}: failing since" in status.output
    assert "QUERYSECRET" not in status.output

    # The dead letter, its whole reason shown (wrapped), with the id to send it again by.
    [letter] = wait_for(stack.dead_letters, what="the dead letter indexed")
    listed = stack.cli("dead-letters", "--stage", "alerts.deliver")
    assert listed.exit_code == 0 and letter["id"] in listed.output
    assert "END-OF-REASON" in listed.output and max(map(len, listed.output.splitlines())) <= 110

    # Fixed, the target gets the same delivery again (same id and body, signed), the others nothing.
    stack.hooks.answers["/refuser"] = (200, "ok")
    resent = stack.cli("alerts", "resend", letter["id"][:8])
    assert resent.exit_code == 0, resent.output
    assert f"resend requested  {letter['id']}  alert {alert.id}" in resent.output
    wait_for(lambda: len(stack.hooks.received("/refuser", alert.id)) == 2, what="the delivery sent again")
    [refused, again] = stack.hooks.received("/refuser", alert.id)
    assert again.body == refused.body and signed(again)
    wait_for(lambda: refuser not in stack.warning(), what="the warning gone once delivered")
    assert len(stack.hooks.received("/good", alert.id)) == 1

    # Asked again, it is not sent twice.
    before = stack.said("alert resend already done")
    assert stack.cli("alerts", "resend", letter["id"]).exit_code == 0
    wait_for(lambda: stack.said("alert resend already done") > before, what="the second request dropped")
    assert len(stack.hooks.received("/refuser", alert.id)) == 2


def test_a_stop_does_not_wait_for_a_parked_delivery_which_is_sent_after_the_restart(stack: Stack) -> None:
    """The webhook that is down has the alert parked, its next try 12 s away. Told to stop,
    the service used to wait for that try (Faust waits for every record in hand), past its 6 s
    shutdown timeout (exit 3); now it hands the record back at once and exits 0, and after the
    restart the webhook, back meanwhile, gets the alert once."""
    down = stack.labels["down"]

    def standing() -> dict[str, Any]:
        [target] = [t for t in stack.page("/alert-targets") if t["target"] == down]
        return dict(target)

    wait_for(lambda: standing()["parked"], what="a delivery parked for the webhook that is down")
    parked = standing()
    assert parked["state"] == "failing" and "connection" in parked["last_failure"]
    assert f"{down}: failing since" in stack.warning() and "1 parked for retry" in stack.warning()
    # Stopped just after a try failed, its next try is 12 s away: past the shutdown timeout.
    last = parked["last_failed_at"]
    wait_for(lambda: standing()["last_failed_at"] != last, timeout=40, interval=0.2, what="a parked try")
    time.sleep(1.0)  # the record parked again is read back, waiting in its lane
    alert_id = alert_number(1).id
    child = stack.supervisor.children["alerts"]
    process = child.process
    assert process is not None
    started = time.monotonic()
    stack.supervisor.kill("alerts", signal.SIGTERM)
    code = process.wait(timeout=40)
    took = time.monotonic() - started
    assert code == 0 and took < 6, (code, took)  # within the shutdown timeout

    back = Hooks(stack.down_port)  # the webhook comes back; the supervisor restarts the service
    try:
        _wait_until(lambda: child.process is not process and stack.supervisor.healthy()["alerts"], "restart")
        stack.publish_endpoints()
        wait_for(
            lambda: back.received("/down", alert_id),
            timeout=90,
            what="the parked delivery, after the restart",
        )
        time.sleep(3)
        assert len(back.received("/down", alert_id)) == 1
        wait_for(lambda: down not in stack.warning(), what="the warning gone")
        # The resend of the refused delivery, done before the restart, is remembered across it.
        [letter] = stack.dead_letters()
        before = stack.said("alert resend already done")
        none = stack.cli("alerts", "resend", "--since", "now-1h", "--target", "slack", "--json")
        assert none.exit_code == 0 and json.loads(none.output) == []
        asked = stack.cli("alerts", "resend", "--since", "now-1h", "--target", "/refuser", "--json")
        assert asked.exit_code == 0, asked.output
        [request] = json.loads(asked.output)
        assert request["dead_letter_id"] == letter["id"] and request["requested"] is True
        wait_for(lambda: stack.said("alert resend already done") > before, what="the request dropped")
        assert len(stack.hooks.received("/refuser", alert_id)) == 2
    finally:
        back.close()


def test_up_names_the_alert_targets_without_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(up, "Supervisor", _StandIns)
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - https://outlet.example/rss.xml\n")
    settings = make_settings(
        feeds_file=feeds,
        data_dir=tmp_path / "data",
        alert_webhook_urls=["https://hooks.example.org/alerts?token=QUERYSECRET"],
        alert_webhook_secret=SECRET,
    )
    said: list[str] = []
    stop = threading.Event()
    result: list[int] = []

    def run_up() -> None:
        result.append(up.run_up(settings, backend="ephemeral", echo=said.append, stop_event=stop))

    runner = threading.Thread(target=run_up)
    runner.start()
    try:
        _wait_until(lambda: any("wirewatch is up" in line for line in said) or result, "up to start")
    finally:
        stop.set()
        runner.join(60)
    assert "  Alert targets        webhook hooks.example.org" in said, said
    assert not any("QUERYSECRET" in line or "/alerts" in line for line in said)
