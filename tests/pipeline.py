"""The whole pipeline on real servers, as the end-to-end tests drive it: a feeds file, a
loopback news site and the four services as child processes under the supervisor that
``wirewatch up`` uses (optionally several workers of a service: scale-out).

On noida-db a crashed service is recovered as ``wirewatch up`` recovers it there: noida never
evicts a group member that died without leaving, so the supervisor does not restart the one
service; the local servers are restarted on their data, then every service."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx

import stories
from conftest import run, search_docs, settings_for, wait_for
from newsroom import NewsSite
from wirewatch.core.ids import article_id
from wirewatch.core.kafka import consumer_lag
from wirewatch.core.settings import SERVICES, ServiceName, Settings
from wirewatch.local.servers import LocalServers
from wirewatch.local.supervisor import Supervisor
from wirewatch.runner import setup

WEBHOOK_PATH = "/hooks/alerts"
#: A second webhook: it stays up while a test takes the first one down.
AUDIT_WEBHOOK_PATH = "/hooks/audit"


class Pipeline:
    def __init__(
        self,
        servers: LocalServers,
        site: NewsSite,
        tmp: Path,
        replicas: dict[ServiceName, int] | None = None,
    ) -> None:
        self.servers = servers
        self.site = site
        self.tmp = tmp
        self.replicas = replicas or {}
        self.feeds_file = tmp / "feeds.yaml"
        self.env = {
            **servers.env(),
            "WIREWATCH_FEEDS_FILE": str(self.feeds_file),
            # Poll every feed every second or two (adaptive polling would stretch it to minutes).
            "WIREWATCH_POLL_INTERVAL": "1",
            "WIREWATCH_POLL_INTERVAL_MIN": "1",
            "WIREWATCH_POLL_INTERVAL_MAX": "2",
            "WIREWATCH_INDEX_BATCH_SECONDS": "0.3",
            "WIREWATCH_LOG_FORMAT": "json",
            "WIREWATCH_DATA_DIR": str(tmp / "data"),
            "WIREWATCH_FETCH_ALLOW_HOSTS": "127.0.0.1/32",  # the news site is on loopback
            "WIREWATCH_FETCH_HOST_DELAY": "0.1",  # one loopback host serves every outlet
            # Alerts are also POSTed to the news site (two webhooks), each at once (no digest window).
            "WIREWATCH_ALERT_WEBHOOK_URLS": f"{site.url}{WEBHOOK_PATH},{site.url}{AUDIT_WEBHOOK_PATH}",
            "WIREWATCH_ALERT_WEBHOOK_SECRET": "e2e-secret",
            "WIREWATCH_ALERT_DIGEST_SECONDS": "0",
            # A webhook that is down: two quick tries in line (one that stalls: one try of up to
            # 8 s), then parked deliveries tried every second or two (the defaults: three tries in
            # 30 s, then every minute at most).
            "WIREWATCH_ALERT_RETRY_ATTEMPTS": "2",
            "WIREWATCH_ALERT_RETRY_BACKOFF": "0.2",
            "WIREWATCH_ALERT_RETRY_MAX_SECONDS": "8",
            "WIREWATCH_ALERT_REDELIVER_MAX_DELAY": "1.5",
            # Faust drops a batch it fetched right after a restart now and then (the redeliveries
            # in CI): looked for every 5 s, it is read again within 10 s instead of 30.
            "WIREWATCH_KAFKA_STALL_CHECK_SECONDS": "5",
        }
        self.supervisor: Supervisor | None = None
        self.expected: dict[str, str] = {}  # article id -> url
        #: Crashes recovered by restarting the local servers and every service (noida-db only).
        self.server_restarts = 0
        self._recovering: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def settings(self) -> Settings:
        """Settings that reach the servers where they are now (a restart may move them)."""
        return settings_for(self.servers, feeds_file=self.feeds_file)

    @property
    def restarts_servers(self) -> bool:
        """Whether a crashed service is recovered by restarting the servers, then every service."""
        return self.servers.backend == "noida"

    def start(self) -> None:
        self.supervisor = Supervisor(
            list(SERVICES),
            {**self.env, **self.servers.env()},  # where the servers are now
            self.tmp / "logs",
            replicas=self.replicas,
            restart=not self.restarts_servers,
        )
        self.supervisor.start()
        if self.restarts_servers and self._recovering is None:
            # One thread for the pipeline's life, not one per start: the servers it restarts die
            # with the thread that started them (PR_SET_PDEATHSIG), so it must outlive a stop.
            self._recovering = threading.Thread(target=self._recover_crashes, daemon=True)
            self._recovering.start()
        assert self.supervisor.wait_healthy(90), f"services not healthy: {self.supervisor.healthy()}"

    def _recover_crashes(self) -> None:
        """What ``wirewatch up`` does on noida-db when a service crashed (local/up.py)."""
        while not self._stopping.wait(1.0):
            supervisor = self.supervisor
            if supervisor is not None and supervisor.crashed():
                supervisor.restart_all(self._fresh_servers)
                self.server_restarts += 1

    def _fresh_servers(self) -> dict[str, str]:
        env = self.servers.restart()
        run(setup(self.settings))
        return env

    def stop(self) -> None:
        """Stop the services (SIGTERM, as a user would); the servers keep running."""
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None

    def close(self) -> None:
        """Stop the services and the crash recovery (the servers' fixture stops the servers)."""
        self.stop()
        self._stopping.set()
        if self._recovering is not None:
            self._recovering.join(30)
            self._recovering = None

    def publish(self, outlet: str, story: stories.Story) -> str:
        url = self.site.publish(outlet, story)
        self.expected[article_id(url)] = url
        return url

    def search(
        self, index: str, query: dict[str, Any] | None = None, size: int = 1000
    ) -> list[dict[str, Any]]:
        return search_docs(self.servers.es_url, index, query, size)

    def articles(self) -> dict[str, dict[str, Any]]:
        docs = self.search("articles")
        by_id = {d["id"]: d for d in docs}
        assert len(by_id) == len(docs), "one article id stored twice"
        return by_id

    def wait_for_articles(self, timeout: float = 90) -> dict[str, dict[str, Any]]:
        try:
            return wait_for(
                lambda: (lambda a: a if set(a) == set(self.expected) else None)(self.articles()),
                timeout=timeout,
                what=f"exactly the {len(self.expected)} published articles in Elasticsearch",
            )
        except AssertionError as exc:
            missing = sorted(self.expected[i] for i in set(self.expected) - set(self.articles()))
            lags = run(consumer_lag(self.settings, [f"wirewatch-{s}" for s in SERVICES]))
            raise AssertionError(f"{exc}\nmissing: {missing}\nlag: {lags}") from None

    def uncommitted(self, service: str, topic: str) -> int:
        """Records of ``topic`` (a logical name: ``enriched`` …) that ``service``'s consumer group
        has not committed yet: after a restart, what it has still to read again."""
        lags = run(consumer_lag(self.settings, [f"wirewatch-{service}"]))
        return sum(g.lag for g in lags if g.topic == self.settings.topics[topic])

    def delivered(self, *, path: str = WEBHOOK_PATH, refused: bool = False) -> dict[str, int]:
        """Webhook POSTs received so far (or refused while the receiver was down), by alert id."""
        counts: dict[str, int] = {}
        for post in self.site.posted(path, refused=refused):
            alert_id = post.headers.get("X-Wirewatch-Alert-Id", "")
            counts[alert_id] = counts.get(alert_id, 0) + 1
        return counts

    def metrics(self, worker: str) -> str:
        """What one worker (``enricher``, ``enricher-2`` …) serves on ``/metrics`` now."""
        assert self.supervisor is not None
        return httpx.get(self.supervisor.children[worker].metrics_url, timeout=5).text

    def log_path(self, worker: str) -> Path:
        """The log file of one worker (``enricher``, ``enricher-2`` …), appended to by each run."""
        return self.tmp / "logs" / f"{worker}.log"

    def log_lines(self, worker: str) -> list[dict[str, Any]]:
        """The JSON log lines of one worker (``enricher``, ``enricher-2`` …)."""
        lines = []
        for raw in self.log_path(worker).read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
        return lines
