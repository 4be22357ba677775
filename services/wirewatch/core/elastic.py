"""Elasticsearch client, index setup and bulk writes.

Every request is valid for Elasticsearch 8 and 9. One concession to the in-memory
stand-in used by the tests (osmem-server, OpenSearch-compatible): it refuses the client's
``compatible-with`` media types, so when ``GET /`` says the server is *not*
Elasticsearch, the client is built with :class:`PlainJsonNode`, which sends plain
``application/json``. Nothing else differs.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
from elastic_transport import AiohttpHttpNode, HttpHeaders
from elastic_transport._node import NodeApiResponse
from elasticsearch import AsyncElasticsearch
from elasticsearch import TransportError as EsTransportError

from wirewatch.core.logs import get_logger
from wirewatch.core.mappings import all_templates
from wirewatch.core.settings import Settings

log = get_logger(__name__)

PLAIN_JSON = "application/json"


class SearchUnavailableError(RuntimeError):
    """Elasticsearch is unreachable or answering with server errors."""


class PlainJsonNode(AiohttpHttpNode):
    """An aiohttp node that sends ``application/json`` instead of the versioned media types."""

    async def perform_request(  # type: ignore[override]
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        **kwargs: Any,
    ) -> NodeApiResponse:
        if headers is not None:
            headers = headers.copy()
            for name in ("accept", "content-type"):
                if name in headers and "compatible-with" in headers[name]:
                    headers[name] = PLAIN_JSON
        return await super().perform_request(method, target, body=body, headers=headers, **kwargs)


def _auth(settings: Settings) -> dict[str, Any]:
    if settings.es_api_key is not None:
        return {"api_key": settings.es_api_key.get_secret_value()}
    if settings.es_username and settings.es_password is not None:
        return {"basic_auth": (settings.es_username, settings.es_password.get_secret_value())}
    return {}


def es_url(settings: Settings) -> str:
    if not settings.es_url:
        raise SearchUnavailableError(
            "WIREWATCH_ES_URL is not set (run `wirewatch up` to start local servers)"
        )
    return settings.es_url


async def is_elasticsearch(settings: Settings) -> bool:
    """Ask ``GET /`` what the server is. Raises SearchUnavailableError if it does not answer."""
    auth = None
    if settings.es_username and settings.es_password is not None:
        auth = (settings.es_username, settings.es_password.get_secret_value())
    headers = (
        {"Authorization": f"ApiKey {settings.es_api_key.get_secret_value()}"} if settings.es_api_key else {}
    )
    verify: Any = str(settings.es_ca_certs) if settings.es_ca_certs else settings.es_verify_certs
    try:
        async with httpx.AsyncClient(timeout=10.0, verify=verify, auth=auth, headers=headers) as client:
            response = await client.get(es_url(settings))
            response.raise_for_status()
            info = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SearchUnavailableError(f"Elasticsearch at {settings.es_url} did not answer: {exc}") from exc
    version = info.get("version", {})
    return bool(
        version.get("distribution", "elasticsearch") == "elasticsearch"
        and "OpenSearch" not in str(info.get("tagline", ""))
    )


async def connect(settings: Settings, *, wait: float = 60.0) -> AsyncElasticsearch:
    """A client for the configured cluster, waiting up to ``wait`` seconds for it to answer."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        try:
            real = await is_elasticsearch(settings)
            break
        except SearchUnavailableError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
    options: dict[str, Any] = {
        "request_timeout": settings.es_request_timeout,
        "retry_on_timeout": True,
        "max_retries": 2,
        **_auth(settings),
    }
    if settings.es_ca_certs:
        options["ca_certs"] = str(settings.es_ca_certs)
    if not settings.es_verify_certs:
        options["verify_certs"] = False
    if not real:
        options["node_class"] = PlainJsonNode
    return AsyncElasticsearch(es_url(settings), **options)


async def ensure_indices(es: AsyncElasticsearch, settings: Settings) -> list[str]:
    """Put the index templates and create each first versioned index behind its alias."""
    created = []
    for name, template in all_templates(settings.es_index_prefix).items():
        await es.indices.put_index_template(
            name=f"{settings.es_index_prefix}-{name}",
            index_patterns=template["index_patterns"],
            priority=template["priority"],
            template=template["template"],
            meta=template["_meta"],
        )
        alias = settings.index(name)
        if not await es.indices.exists_alias(name=alias):
            index = f"{alias}-000001"
            try:
                await es.indices.create(index=index, aliases={alias: {"is_write_index": True}})
                created.append(index)
            except EsTransportError as exc:
                if "resource_already_exists" not in str(exc):
                    raise
    if created:
        log.info("indices created", extra={"indices": created})
    return created


@dataclass
class BulkResult:
    written: int = 0
    #: (document id, reason) for documents Elasticsearch rejected for good (e.g. mapping errors).
    rejected: list[tuple[str, str]] = field(default_factory=list)


RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


async def bulk_index(
    es: AsyncElasticsearch,
    index: str,
    docs: list[tuple[str, dict[str, Any]]],
    *,
    max_backoff: float = 30.0,
) -> BulkResult:
    """Index ``(id, document)`` pairs, retrying until every document is written or rejected.

    Writes are idempotent (``index`` by id). Connection failures, 429 and 5xx are retried
    with capped exponential backoff and jitter, for as long as it takes: the caller is
    blocked, which is the back-pressure (it stops consuming; nothing is dropped).
    Documents Elasticsearch refuses for good come back in ``rejected``.
    """
    result = BulkResult()
    pending = {doc_id: doc for doc_id, doc in docs}
    attempt = 0
    while pending:
        operations: list[dict[str, Any]] = []
        for doc_id, doc in pending.items():
            operations.append({"index": {"_index": index, "_id": doc_id}})
            operations.append(doc)
        try:
            response = await es.bulk(operations=operations, refresh=False)
        except (TimeoutError, EsTransportError, OSError) as exc:
            status = getattr(exc, "status_code", None) or getattr(getattr(exc, "meta", None), "status", None)
            if isinstance(status, int) and 400 <= status < 500 and status not in RETRYABLE_STATUS:
                raise
            attempt += 1
            delay = min(max_backoff, 0.5 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.0)
            log.warning(
                "elasticsearch unavailable, retrying bulk",
                extra={
                    "error": str(exc)[:300],
                    "attempt": attempt,
                    "retry_in": round(delay, 2),
                    "docs": len(pending),
                },
            )
            await asyncio.sleep(delay)
            continue
        retry: dict[str, dict[str, Any]] = {}
        for item in response["items"]:
            outcome = next(iter(item.values()))
            doc_id = outcome["_id"]
            status = outcome.get("status", 500)
            if status < 300:
                result.written += 1
            elif status in RETRYABLE_STATUS or status >= 500:
                retry[doc_id] = pending[doc_id]
            else:
                error = outcome.get("error", {})
                result.rejected.append(
                    (doc_id, f"{error.get('type', status)}: {error.get('reason', '')}"[:1000])
                )
        pending = retry
        if pending:
            attempt += 1
            await asyncio.sleep(min(max_backoff, 0.5 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.0))
    return result
