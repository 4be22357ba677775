"""Kibana dashboards: the saved objects in ``deploy/kibana/`` and their import.

The ``*.ndjson`` files hold data views, Lens visualisations, saved searches and dashboards in
Kibana's export format (one object a line). Ids are stable (``wirewatch-articles``,
``wirewatch-dashboard-events``, …), so importing again with ``overwrite=true`` updates the
objects in place.

Each data view's ``title`` is an index *alias* with the default prefix (``wirewatch-articles``
is ``Settings.index("articles")``): the alias covers every versioned index behind it
(``wirewatch-articles-000001``, …) and nothing else. :func:`load_objects` rewrites those
titles for another ``WIREWATCH_ES_INDEX_PREFIX``; object ids stay the same, so two
deployments with different prefixes need two Kibana spaces (``--space``).

``tests/test_kibana_objects.py`` checks every field the objects use against the index
templates generated from the models.
"""

from __future__ import annotations

import json
import ssl
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from wirewatch.core.elastic import http_auth
from wirewatch.core.settings import Settings

#: The prefix the data view titles in the files are written with.
FILE_PREFIX = "wirewatch"
IMPORT_PATH = "/api/saved_objects/_import"
STATUS_PATH = "/api/status"


class KibanaError(RuntimeError):
    """Kibana did not become available, refused the credentials or rejected the import."""


@dataclass(frozen=True)
class ImportResult:
    objects: int
    success_count: int
    warnings: list[str] = field(default_factory=list)


def objects_dir() -> Path:
    """``deploy/kibana/`` of a source checkout (editable install), else the installed copy
    (``<prefix>/share/wirewatch/kibana``, from pyproject's ``data-files``)."""
    candidates = [Path(__file__).resolve().parents[2] / "deploy" / "kibana"]
    for base in (sysconfig.get_paths().get("data"), sys.prefix):
        if base:
            candidates.append(Path(base) / "share" / "wirewatch" / "kibana")
    for candidate in candidates:
        if any(candidate.glob("*.ndjson")):
            return candidate
    raise KibanaError(f"no Kibana saved objects found (looked in {', '.join(map(str, candidates))})")


def object_files(directory: Path | None = None) -> list[Path]:
    files = sorted((directory or objects_dir()).glob("*.ndjson"))
    if not files:
        raise KibanaError(f"no *.ndjson files in {directory}")
    return files


def read_objects(directory: Path | None = None) -> list[dict[str, Any]]:
    """Every saved object in the files, as written (default prefix)."""
    objects: list[dict[str, Any]] = []
    for path in object_files(directory):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise KibanaError(f"{path.name}:{number}: not JSON: {exc}") from exc
            if isinstance(obj, dict) and "exportedCount" in obj:
                continue  # the summary line at the end of a Kibana export
            if not isinstance(obj, dict) or "type" not in obj or "id" not in obj:
                raise KibanaError(f"{path.name}:{number}: not a saved object (needs type and id)")
            objects.append(obj)
    return objects


def data_view_index(title: str, prefix: str = FILE_PREFIX) -> str | None:
    """``wirewatch-articles`` -> ``articles`` (the document kind), or None if not an alias of ours."""
    from wirewatch.core.models import DOCUMENTS

    name = title.removeprefix(f"{prefix}-") if title.startswith(f"{prefix}-") else None
    return name if name in DOCUMENTS else None


def load_objects(directory: Path | None = None, prefix: str = FILE_PREFIX) -> list[dict[str, Any]]:
    """The saved objects with every data view title pointing at ``<prefix>-<name>``."""
    objects = read_objects(directory)
    for obj in objects:
        if obj["type"] != "index-pattern":
            continue
        title = obj["attributes"]["title"]
        name = data_view_index(title)
        if name is None:
            raise KibanaError(f"data view {obj['id']}: title {title!r} is not a wirewatch index alias")
        obj["attributes"]["title"] = f"{prefix}-{name}"
    return objects


def to_ndjson(objects: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in objects).encode("utf-8")


def _status_level(body: Any) -> str:
    """``available`` / ``degraded`` / … (8.x), or the 7.x ``green`` / ``red`` state."""
    overall = body.get("status", {}).get("overall", {}) if isinstance(body, dict) else {}
    return str(overall.get("level") or overall.get("state") or "unknown")


def wait_until_available(
    client: httpx.Client,
    base_url: str,
    timeout: float,
    *,
    interval: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll ``/api/status`` until Kibana says ``available``; fail at once on 401/403."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            response = client.get(f"{base_url}{STATUS_PATH}")
            if response.status_code in (401, 403):
                raise KibanaError(
                    f"Kibana at {base_url} refused the credentials (HTTP {response.status_code}); "
                    "it uses WIREWATCH_ES_API_KEY or WIREWATCH_ES_USERNAME/_PASSWORD"
                )
            if response.status_code == 200:
                last = _status_level(response.json())
                if last in ("available", "green"):
                    return
            else:
                last = f"HTTP {response.status_code}"
        except (httpx.HTTPError, ValueError) as exc:
            last = str(exc) or type(exc).__name__
        if time.monotonic() >= deadline:
            raise KibanaError(f"Kibana at {base_url} not available after {timeout:.0f}s (last: {last})")
        sleep(interval)


def _summarise_errors(errors: list[Any]) -> str:
    parts = []
    for error in errors[:10]:
        detail = error.get("error", {}) if isinstance(error, dict) else {}
        kind = detail.get("type", "error")
        if kind == "missing_references":
            missing = ", ".join(f"{r.get('type')}:{r.get('id')}" for r in detail.get("references", []))
            kind = f"missing references {missing}"
        elif detail.get("message"):
            kind = f"{kind}: {detail['message']}"
        parts.append(f"{error.get('type')}:{error.get('id')} ({kind})")
    more = len(errors) - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def import_objects(
    url: str,
    settings: Settings,
    *,
    directory: Path | None = None,
    space: str | None = None,
    wait: float = 300.0,
    verify: bool | str = True,  # False, or a CA bundle path for an https URL
    interval: float = 2.0,
) -> ImportResult:
    """Wait for Kibana, then import every saved object (``overwrite=true``) in one request."""
    objects = load_objects(directory, settings.es_index_prefix)
    base = url.rstrip("/")
    path = (f"/s/{space}" if space and space != "default" else "") + IMPORT_PATH
    tls: bool | ssl.SSLContext = (
        ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
    )
    with httpx.Client(timeout=60.0, verify=tls, **http_auth(settings)) as client:
        wait_until_available(client, base, wait, interval=interval)
        try:
            response = client.post(
                f"{base}{path}",
                params={"overwrite": "true"},
                headers={"kbn-xsrf": "true"},
                files={"file": ("wirewatch.ndjson", to_ndjson(objects), "application/ndjson")},
            )
        except httpx.HTTPError as exc:
            raise KibanaError(f"import request to {base}{path} failed: {exc}") from exc
    if response.status_code != 200:
        raise KibanaError(f"Kibana refused the import: HTTP {response.status_code}: {response.text[:500]}")
    try:
        body = response.json()
    except ValueError as exc:
        raise KibanaError(f"Kibana answered the import with something other than JSON: {exc}") from exc
    if not isinstance(body, dict) or not body.get("success"):
        errors = body.get("errors") if isinstance(body, dict) else None
        raise KibanaError(f"import failed: {_summarise_errors(errors or [])}")
    warnings = [str(w.get("message", w)) for w in body.get("warnings") or [] if isinstance(w, dict)]
    return ImportResult(
        objects=len(objects), success_count=int(body.get("successCount", 0)), warnings=warnings
    )
