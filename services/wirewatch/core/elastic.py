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
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import httpx
from elastic_transport import AiohttpHttpNode, HttpHeaders
from elastic_transport._node import NodeApiResponse
from elasticsearch import ApiError, AsyncElasticsearch
from elasticsearch import TransportError as EsTransportError

from wirewatch.core.logs import get_logger
from wirewatch.core.mappings import LANGUAGE_ANALYZERS, all_templates
from wirewatch.core.settings import Settings, not_configured, redact_url, time_value_seconds

log = get_logger(__name__)

PLAIN_JSON = "application/json"


class SearchUnavailableError(RuntimeError):
    """Elasticsearch is unreachable or answering with server errors."""


class SearchCredentialsError(SearchUnavailableError):
    """Elasticsearch refused the configured credentials (401, or 403: not allowed ``GET /``)."""


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
    """The client's credentials: the API key if set, else basic auth if both user name and
    password are (a blank one is unset: ``Settings._blank_is_unset``)."""
    if settings.es_api_key is not None:
        return {"api_key": settings.es_api_key.get_secret_value()}
    if settings.es_username is not None and settings.es_password is not None:
        return {"basic_auth": (settings.es_username, settings.es_password.get_secret_value())}
    return {}


def http_auth(settings: Settings) -> dict[str, Any]:
    """The same credentials as an ``httpx`` client's keyword arguments (``headers`` or ``auth``):
    for ``GET /`` before the Elasticsearch client exists, and for Kibana, which takes them too."""
    auth = _auth(settings)
    if "api_key" in auth:
        return {"headers": {"Authorization": f"ApiKey {auth['api_key']}"}}
    if "basic_auth" in auth:
        return {"auth": auth["basic_auth"]}
    return {}


def es_url(settings: Settings) -> str:
    if not settings.es_url:
        raise SearchUnavailableError(not_configured("WIREWATCH_ES_URL", settings.data_dir))
    return settings.es_url


async def is_elasticsearch(settings: Settings) -> bool:
    """Ask ``GET /`` what the server is, with the client's credentials (:func:`http_auth`). Raises
    SearchUnavailableError if it does not answer, SearchCredentialsError if it refuses them."""
    url = es_url(settings)
    verify: Any = str(settings.es_ca_certs) if settings.es_ca_certs else settings.es_verify_certs
    try:
        async with httpx.AsyncClient(timeout=10.0, verify=verify, **http_auth(settings)) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        raise SearchUnavailableError(f"Elasticsearch at {redact_url(url)} did not answer: {exc}") from exc
    status = f"{response.status_code} {response.reason_phrase}"
    if response.status_code in (401, 403):
        reason = _error_reason(response)
        raise SearchCredentialsError(
            f"Elasticsearch at {redact_url(url)} refused the credentials ({status})"
            + (f": {reason}" if reason else "")
        )
    try:
        response.raise_for_status()
        info = response.json()
    except httpx.HTTPStatusError:  # its message names the URL, password and all
        raise SearchUnavailableError(f"Elasticsearch at {redact_url(url)} did not answer: {status}") from None
    except ValueError as exc:
        raise SearchUnavailableError(f"Elasticsearch at {redact_url(url)} did not answer: {exc}") from exc
    version = info.get("version", {})
    return bool(
        version.get("distribution", "elasticsearch") == "elasticsearch"
        and "OpenSearch" not in str(info.get("tagline", ""))
    )


def _error_reason(response: httpx.Response) -> str:
    """The ``error.reason`` of an Elasticsearch error answer (which user lacks which
    privilege), or nothing."""
    try:
        error = response.json().get("error")
    except ValueError:
        return ""
    return str(error.get("reason", ""))[:300] if isinstance(error, dict) else ""


async def connect(settings: Settings, *, wait: float = 60.0) -> AsyncElasticsearch:
    """A client for the configured cluster, waiting up to ``wait`` seconds for it to answer
    (refused credentials too: a cluster recovering its security index refuses them for a
    while). No URL is a configuration error: raised at once."""
    url = es_url(settings)
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
    return AsyncElasticsearch(url, **options)


#: The stand-in (osmem-server) accepts the custom language analyzers and ``_analyze`` runs them
#: right, but its searches on fields using them go wrong (``light_french`` and
#: ``possessive_english`` fields match every document; ``l'armée`` finds nothing through the
#: custom elision). Its built-in ``french`` and ``english`` analyzers (the same chains, without
#: asciifolding) search right, so on it, and only there, they replace ours under the same names.
STAND_IN_ANALYZERS: dict[str, str] = {LANGUAGE_ANALYZERS["fr"]: "french", LANGUAGE_ANALYZERS["en"]: "english"}


#: The document kinds whose indices grow with the stream: on real Elasticsearch each rolls over
#: under its own ILM policy (its alias moves to a new write index), and an older index can be
#: deleted after its retention. Tracked claims (the watchlist, rewritten from a compacted topic)
#: stay in one index.
ROLLING = ("articles", "events", "event-links", "alerts", "dead-letters")


def policy_name(settings: Settings, kind: str) -> str:
    """The ILM policy of ``kind``'s indices: the name of its alias."""
    return settings.index(kind)


def lifecycle_policy(settings: Settings, kind: str) -> dict[str, Any]:
    """The ILM policy of ``kind``'s indices: roll over by size or age, delete after retention."""
    phases: dict[str, Any] = {
        "hot": {
            "min_age": "0ms",
            "actions": {
                "rollover": {
                    "max_primary_shard_size": settings.es_rollover_size,
                    "max_age": settings.es_rollover_age,
                }
            },
        }
    }
    if retention := settings.retention(kind):
        phases["delete"] = {"min_age": retention, "actions": {"delete": {}}}
    return {"phases": phases, "_meta": {"managed_by": "wirewatch"}}


def lifecycle_settings(settings: Settings, kind: str) -> dict[str, str]:
    """Index settings putting ``kind``'s indices under their policy, rolling their alias."""
    return {
        "index.lifecycle.name": policy_name(settings, kind),
        "index.lifecycle.rollover_alias": settings.index(kind),
    }


def adapt_analysis_for_stand_in(template: dict[str, Any]) -> list[str]:
    """Swap in the built-in analyzers of :data:`STAND_IN_ANALYZERS` (in place); what changed."""
    analysis = template["template"]["settings"].get("analysis", {})
    analyzers = analysis.get("analyzer", {})
    changes = []
    for name, builtin in STAND_IN_ANALYZERS.items():
        if name in analyzers:
            analyzers[name] = {"type": builtin}
            changes.append(f"{name} -> built-in {builtin}")
    used = {f for analyzer in analyzers.values() for f in analyzer.get("filter", [])}
    analysis["filter"] = {k: v for k, v in analysis.get("filter", {}).items() if k in used}
    return changes


def templates_for(
    settings: Settings, *, elasticsearch: bool, lifecycle: bool
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The index templates ``ensure_indices`` puts, and the analysis changes made for the stand-in.

    They are those of ``schemas/`` (which hold nothing environment-specific), plus the
    lifecycle settings on the templates of the ``ROLLING`` kinds when ILM is on, or with the
    analysis adapted when the server is not Elasticsearch.
    """
    templates = all_templates(settings.es_index_prefix)
    if lifecycle:
        for kind in ROLLING:
            templates[kind]["template"]["settings"].update(lifecycle_settings(settings, kind))
    changes: list[str] = []
    if not elasticsearch:
        for template in templates.values():
            changes = adapt_analysis_for_stand_in(template)
    return templates, changes


def _api_unavailable(exc: ApiError) -> bool:
    """The server has no such API (or refuses us it), as opposed to refusing the request body."""
    return exc.status_code in (403, 404, 405, 501) or (
        exc.status_code == 400 and "no handler found" in str(exc)
    )


#: The rolling kinds whose documents name articles (an event its earliest report, a link record
#: and an alert their article).
POINTING_AT_ARTICLES = ("events", "event-links", "alerts")


def outliving_articles(settings: Settings) -> list[str]:
    """The kinds of ``POINTING_AT_ARTICLES`` kept longer than the articles (their retention
    longer, or unset while the articles' is set)."""
    if settings.es_articles_retention is None:
        return []
    articles = time_value_seconds(settings.es_articles_retention)
    return [
        kind
        for kind in POINTING_AT_ARTICLES
        if (kept := settings.retention(kind)) is None or time_value_seconds(kept) > articles
    ]


async def ensure_lifecycle(es: AsyncElasticsearch, settings: Settings, *, elasticsearch: bool) -> bool:
    """Put the ILM policy of each ``ROLLING`` kind; False (with a log line) where there is none
    to put."""
    if not elasticsearch:
        log.info(
            f"ILM skipped: {redact_url(str(settings.es_url))} is not Elasticsearch (stand-in); "
            "no index rolls over"
        )
        return False
    if not settings.es_ilm:
        log.info("ILM skipped: disabled by WIREWATCH_ES_ILM")
        return False
    if outliving := outliving_articles(settings):
        log.warning(
            f"{', '.join(outliving)} kept longer than the articles they name: once an articles "
            "index is deleted, their documents of its reports lead nowhere "
            "(give the articles the longest retention)",
            extra={"articles_retention": settings.es_articles_retention, "kinds": outliving},
        )
    for kind in ROLLING:
        policy = lifecycle_policy(settings, kind)
        try:
            await es.ilm.put_lifecycle(name=policy_name(settings, kind), policy=policy)
        except ApiError as exc:
            if not _api_unavailable(exc):
                raise
            if exc.status_code == 400:  # the Elasticsearch API without ILM: noida-db, the local mode's
                log.info(
                    f"ILM skipped: {redact_url(str(settings.es_url))} has no lifecycle API; "
                    "no index rolls over"
                )
            else:  # Elasticsearch refusing it (a missing privilege, ILM disabled): worth a look
                log.warning(
                    "ILM unavailable: the server refused the lifecycle API; no index rolls over",
                    extra={"status": exc.status_code, "error": str(exc)[:300]},
                )
            return False
        log.info(
            "ILM policy put",
            extra={"policy": policy_name(settings, kind), "phases": sorted(policy["phases"])},
        )
    return True


def behind(alias: str, index: str) -> bool:
    """Whether a write to ``index`` is one to ``alias``: the alias itself, or one of its
    versioned indices (``<alias>-000001``, where :func:`to_their_indices` readdresses writes)."""
    return index == alias or index.startswith(f"{alias}-")


def _is_write_index(aliases: dict[str, Any], index: str, alias: str) -> bool:
    """Whether ``index`` is the write index of ``alias`` in ``aliases`` (a ``get_alias`` answer,
    possibly for several aliases): flagged so, or the alias's only index when none is flagged."""
    flags = aliases[index].get("aliases", {}).get(alias, {})
    if "is_write_index" in flags:
        return bool(flags["is_write_index"])
    return sum(alias in entry.get("aliases", {}) for entry in aliases.values()) == 1


async def _adopt_write_index(es: AsyncElasticsearch, settings: Settings, kind: str) -> None:
    """Put a write index of ``kind`` created before ILM was on (or by an older wirewatch) under
    its policy; the template does it for every index created since."""
    alias = settings.index(kind)
    aliases = (await es.indices.get_alias(name=alias)).body
    for index in aliases:
        if not _is_write_index(aliases, index, alias):
            continue
        current = await es.indices.get_settings(index=index, name="index.lifecycle.name", flat_settings=True)
        if current.body.get(index, {}).get("settings", {}).get("index.lifecycle.name"):
            continue
        await es.indices.put_settings(index=index, settings=lifecycle_settings(settings, kind))
        log.info("ILM policy applied to an existing index", extra={"index": index})


async def ensure_indices(es: AsyncElasticsearch, settings: Settings) -> list[str]:
    """Put the ILM policy (Elasticsearch only) and index templates, and create each first
    versioned index behind its alias; an alias that exists gets the template's fields added to
    its indices' mappings (a field a new version of a model brings: the mappings are strict).
    Idempotent: run it on every start."""
    real = await is_elasticsearch(settings)
    lifecycle = await ensure_lifecycle(es, settings, elasticsearch=real)
    templates, changes = templates_for(settings, elasticsearch=real, lifecycle=lifecycle)
    if changes:
        log.info(f"analysis adapted for the stand-in (not Elasticsearch): {'; '.join(changes)}")
    created = []
    for name, template in templates.items():
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
            except (ApiError, EsTransportError) as exc:
                if "resource_already_exists" not in str(exc):
                    raise
        else:
            properties = template["template"]["mappings"]["properties"]
            await es.indices.put_mapping(index=alias, properties=properties)
            if lifecycle and name in ROLLING:
                await _adopt_write_index(es, settings, name)
    if created:
        log.info("indices created", extra={"indices": created})
    return created


BulkAction = Literal["index", "update", "upsert"]


@dataclass(frozen=True)
class BulkOp:
    """One write: ``index`` replaces the document, ``update`` changes some fields of an existing
    one (a missing document is an error), ``upsert`` changes some fields or creates it (with
    the fields of ``on_create`` too: kept from the first write, e.g. a creation time)."""

    index: str
    id: str
    doc: dict[str, Any]
    action: BulkAction = "index"
    on_create: dict[str, Any] | None = None

    def lines(self) -> list[dict[str, Any]]:
        """The two lines of the bulk body."""
        if self.action == "index":
            return [{"index": {"_index": self.index, "_id": self.id}}, self.doc]
        body: dict[str, Any] = {"doc": self.doc}
        if self.action == "upsert" and self.on_create:
            body["upsert"] = {**self.doc, **self.on_create}
        elif self.action == "upsert":
            body["doc_as_upsert"] = True
        return [{"update": {"_index": self.index, "_id": self.id, "retry_on_conflict": 3}}, body]


def without_superseded(ops: Sequence[BulkOp]) -> list[BulkOp]:
    """``ops`` less the writes a later ``index`` of the same document replaces, in their order (a
    batch of linked reports rewrites an event's document once per report: the last one is enough)."""
    replaced: set[tuple[str, str]] = set()
    kept: list[BulkOp] = []
    for op in reversed(ops):
        if (op.index, op.id) in replaced:
            continue
        if op.action == "index":
            replaced.add((op.index, op.id))
        kept.append(op)
    kept.reverse()
    return kept


async def to_their_indices(
    es: AsyncElasticsearch, aliases: Collection[str], ops: list[BulkOp]
) -> list[BulkOp]:
    """``ops``, those addressed to one of ``aliases`` for documents already in one of its older
    indices (not the write index) addressed to that index instead.

    Behind a rolled-over alias (ILM), a write by id goes to the write index: an upsert or a
    replacement of a document written before the rollover would make a second copy there, and
    an update would fail (no such document). So the older indices are asked first: one
    ``get_alias`` for the aliases the ops address (nothing more while each has one index), then
    one real-time ``mget`` of the ops' ids in the older indices of their alias.
    """
    addressed = sorted({op.index for op in ops} & set(aliases))
    if not addressed:
        return ops
    # A missing alias (deleted by hand) is a 404 naming it beside the indices of the others: its
    # documents have no older index to be in (the bulk request writes them as it can).
    answer = (await es.options(ignore_status=404).indices.get_alias(name=",".join(addressed))).body
    found_aliases = {
        index: entry for index, entry in answer.items() if isinstance(entry, dict) and "aliases" in entry
    }
    older: dict[str, list[str]] = {alias: [] for alias in addressed}
    for index, entry in found_aliases.items():
        for alias in entry["aliases"]:
            if alias in older and not _is_write_index(found_aliases, index, alias):
                older[alias].append(index)
    ids: dict[str, set[str]] = {alias: set() for alias in addressed}
    for op in ops:
        if op.index in ids:
            ids[op.index].add(op.id)
    wanted = [
        (alias, index, id_)
        for alias in addressed
        for index in sorted(older[alias])
        for id_ in sorted(ids[alias])
    ]
    if not wanted:
        return ops
    found = await es.mget(docs=[{"_index": index, "_id": id_} for _, index, id_ in wanted], source=False)
    where = {
        (alias, id_): doc["_index"]
        for (alias, _, id_), doc in zip(wanted, found["docs"], strict=True)
        if doc.get("found")
    }
    return [replace(op, index=where[(op.index, op.id)]) if (op.index, op.id) in where else op for op in ops]


#: Hits per request of :func:`search_all`.
SEARCH_PAGE = 500


async def search_all(
    es: AsyncElasticsearch, index: str, query: dict[str, Any], fields: list[str], *, page: int = SEARCH_PAGE
) -> AsyncIterator[dict[str, Any]]:
    """Every hit of ``query`` in ``index`` (with ``fields`` of its source), page after page:
    ``search_after`` on the documents' ``id`` keyword, so no scroll context or point in time
    (which the stand-in servers lack), and the pages hold together while the hits change."""
    after: list[Any] | None = None
    while True:
        found = await es.search(
            index=index,
            query=query,
            size=page,
            sort=[{"id": {"order": "asc"}}],
            source_includes=fields,
            search_after=after,  # None: the first page
        )
        hits = found["hits"]["hits"]
        for hit in hits:
            yield hit
        if len(hits) < page:
            return
        after = hits[-1]["sort"]


@dataclass
class BulkResult:
    written: int = 0
    #: Writes Elasticsearch refused for good (mapping errors, a missing document to update, …),
    #: with the reason.
    rejected: list[tuple[BulkOp, str]] = field(default_factory=list)


RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


async def bulk_write(es: AsyncElasticsearch, ops: list[BulkOp], *, max_backoff: float = 30.0) -> BulkResult:
    """Apply ``ops`` in order, retrying until every one is written or refused for good.

    Writes are idempotent (by id). Connection failures, 429 and 5xx are retried with capped
    exponential backoff and jitter, for as long as it takes: the caller is blocked, which is
    the back-pressure (it stops consuming; nothing is dropped). Refused writes come back in
    ``rejected``. When one batch holds several writes to a document, they are applied in
    order in one request, and retried together.
    """
    result = BulkResult()
    pending = list(ops)
    attempt = 0
    while pending:
        operations: list[dict[str, Any]] = []
        for op in pending:
            operations.extend(op.lines())
        try:
            response = await es.bulk(operations=operations, refresh=False)
        except (TimeoutError, EsTransportError, OSError) as exc:
            status = getattr(exc, "status_code", None) or getattr(getattr(exc, "meta", None), "status", None)
            if isinstance(status, int) and 400 <= status < 500 and status not in RETRYABLE_STATUS:
                raise
            attempt += 1
            delay = backoff_delay(attempt, max_backoff)
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
        retry: list[BulkOp] = []
        for op, item in zip(pending, response["items"], strict=True):
            outcome = next(iter(item.values()))
            status = outcome.get("status", 500)
            if status < 300:
                result.written += 1
            elif status in RETRYABLE_STATUS or status >= 500:
                retry.append(op)
            else:
                error = outcome.get("error", {})
                result.rejected.append((op, f"{error.get('type', status)}: {error.get('reason', '')}"[:1000]))
        pending = retry
        if pending:
            attempt += 1
            await asyncio.sleep(backoff_delay(attempt, max_backoff))
    return result


def backoff_delay(attempt: int, cap: float) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, …): exponential from 1 s, capped, jittered."""
    return float(min(cap, 0.5 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.0))
