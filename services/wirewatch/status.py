"""What ``wirewatch status`` reports: topics, consumer lag, index counts, service health."""

from __future__ import annotations

import json
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
        report["services"][name] = {"health": info["health"], "healthy": http_ok(info["health"])}
    return report
