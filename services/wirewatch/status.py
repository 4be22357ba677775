"""What ``wirewatch status`` reports: topics, consumer lag, index counts, service health (and
what a service's ``/readyz`` names without failing, such as a refused feeds file or a failing
alert target), and the alerts service's targets, each with its last delivery and failure."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict
from typing import Any

from wirewatch.core.kafka import consumer_lag, topic_stats
from wirewatch.core.models import DOCUMENTS
from wirewatch.core.settings import SERVICES, Settings
from wirewatch.local.servers import http_ok

CONSUMER_GROUPS = [f"wirewatch-{name}" for name in SERVICES if name != "fetcher"]


async def collect_status(settings: Settings) -> dict[str, Any]:
    from wirewatch.local.up import endpoints_file
    from wirewatch.search import reading

    report: dict[str, Any] = {"topics": [], "lag": [], "indices": {}, "services": {}, "errors": []}
    try:
        report["topics"] = [asdict(t) for t in await topic_stats(settings)]
        report["lag"] = [asdict(g) for g in await consumer_lag(settings, CONSUMER_GROUPS)]
    except Exception as exc:
        report["errors"].append(f"kafka: {exc}")
    try:
        async with reading(settings, *DOCUMENTS) as es:
            for name in DOCUMENTS:
                alias = settings.index(name)
                try:
                    report["indices"][alias] = (await es.count(index=alias))["count"]
                except Exception as exc:
                    report["errors"].append(f"{alias}: {exc}")
    except Exception as exc:
        report["errors"].append(f"elasticsearch: {exc}")
    try:
        described = json.loads(endpoints_file(settings).read_text())["services"]
    except (OSError, ValueError, KeyError):
        described = {}
    for name, info in described.items():
        healthy = http_ok(info["health"])
        report["services"][name] = {
            "health": info["health"],
            "healthy": healthy,
            "warnings": readiness_warnings(info["health"]) if healthy else {},
        }
        if name.split("-")[0] == "alerts" and healthy:  # each worker: what its deliveries found
            report["services"][name]["alert_targets"] = alert_targets(info["health"])
    return report


def service_page(address: str, path: str) -> Any:
    """The JSON a service serves at ``path`` on its web port (``address``: its web address, or
    its ``/healthz`` URL), or None when it does not answer or says it is not ready (an HTTP error)."""
    url = address.removesuffix("/healthz").rstrip("/") + path
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError):  # (a 503 is an HTTPError: not ready)
        return None


def readiness_warnings(health_url: str) -> dict[str, str]:
    """What the service's ``/readyz`` names under ``warnings`` (by name: the problem), such as
    the fetcher's refused feeds file; empty when it names nothing or does not answer."""
    body = service_page(health_url, "/readyz")
    warnings = body.get("warnings") if isinstance(body, dict) else None
    return {str(k): str(v) for k, v in warnings.items()} if isinstance(warnings, dict) else {}


def alert_targets(health_url: str) -> list[dict[str, Any]]:
    """The alerts service's targets as its ``/alert-targets`` shows them (kind and host, state,
    last delivery and failure, parked deliveries); empty when it does not answer."""
    body = service_page(health_url, "/alert-targets")
    return [target for target in body if isinstance(target, dict)] if isinstance(body, list) else []
