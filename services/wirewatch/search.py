"""Reading indexed articles back: the queries behind ``wirewatch search``, ``events``, ``event``,
``alerts``, ``dead-letters`` and the counts of ``status``, each through :func:`reading`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import ApiError, AsyncElasticsearch
from elasticsearch import TransportError as EsTransportError

from wirewatch.core.elastic import connect
from wirewatch.core.ids import MIN_ID_PREFIX, UnknownIdError, complete_id, source_domain
from wirewatch.core.logs import get_logger
from wirewatch.core.mappings import text_query
from wirewatch.core.models import Event
from wirewatch.core.settings import Settings

log = get_logger(__name__)


@asynccontextmanager
async def reading(settings: Settings, *kinds: str) -> AsyncIterator[AsyncElasticsearch]:
    """A client for reading the indices of ``kinds``, after asking for what was written to be
    made visible. Elasticsearch does that itself (a search on a shard idle for 30 s waits for its
    refresh); the local mode's noida-db does not: its first searches after a quiet spell answer
    from its last refresh (``make demo``: 0 articles, then 18 a second later). A client without
    the right to refresh (a read-only API key) reads as it is."""
    es = await connect(settings, wait=5)
    try:
        indices = ",".join(settings.index(kind) for kind in kinds)
        try:
            await es.indices.refresh(index=indices, ignore_unavailable=True, allow_no_indices=True)
        except (ApiError, EsTransportError) as exc:
            log.debug("refresh before reading refused", extra={"indices": indices, "error": str(exc)[:300]})
        yield es
    finally:
        await es.close()


ARTICLE_FIELDS = [
    "id",
    "title",
    "url",
    "source",
    "source_domain",
    "language",
    "published",
    "duplicate_of",
    "is_duplicate",
    "event_id",
]


#: What ``wirewatch search`` (and ``events WORDS``) looks for the words in.
ARTICLE_TEXT_FIELDS = ["title^2", "description", "text"]


def source_terms(source: str) -> list[dict[str, Any]]:
    """The terms that find one outlet, named as a user would: its name (``Le Monde``, in any case)
    or its site (``lemonde.fr``, ``www.lemonde.fr`` or a URL of it)."""
    name = source.strip()
    site = source_domain(name if "://" in name else f"http://{name}")
    return [
        {"term": {"source": {"value": name, "case_insensitive": True}}},
        {"term": {"source_domain": site}},
    ]


def through_day(until: str | None) -> str | None:
    """An upper bound as a user means it: a bare date (``2026-03-04``) takes in that whole day
    (Elasticsearch rounds ``||/d`` up to its last millisecond); date math is left as it is."""
    if until and re.fullmatch(r"\d{4}-\d{2}-\d{2}", until.strip()):
        return f"{until.strip()}||/d"
    return until


def date_range(field: str, since: str | None, until: str | None = None) -> list[dict[str, Any]]:
    """The filter keeping documents whose ``field`` lies within ``since`` and ``until`` (dates, or
    date math like ``now-1d``; a bare date as ``until`` takes in its whole day), or none at all."""
    bounds = {bound: value for bound, value in (("gte", since), ("lte", through_day(until))) if value}
    return [{"range": {field: bounds}}] if bounds else []


@dataclass(frozen=True, slots=True)
class Matches:
    """The first hits of a search and how many articles match in all: ``total`` is exact when
    ``exact``, else a lower bound (Elasticsearch counts up to 10,000 by default)."""

    hits: list[dict[str, Any]]
    total: int
    exact: bool = True


async def search_articles(
    settings: Settings,
    query: str,
    *,
    lang: str | None = None,
    since: str | None = None,
    until: str | None = None,
    sources: Sequence[str] = (),
    newest: bool = False,
    size: int = 10,
) -> Matches:
    """Articles with every word of ``query`` (:func:`text_query`'s ``every_word`` syntax: quoted
    phrases, ``a | b``, ``-word``), best first (``newest``: most recently published first).
    ``since`` and ``until`` bound the publication date (dates, or date math like ``now-1d``);
    ``sources`` keeps articles of any of these outlets (:func:`source_terms`)."""
    # The multilingual fields, plus the French/English stemmed subfields (of the
    # articles in that language, or all of them with ``lang``): see core/mappings.py.
    must = [text_query(query, ARTICLE_TEXT_FIELDS, lang, every_word=True)]
    filters: list[dict[str, Any]] = [{"term": {"language": lang}}] if lang else []
    filters.extend(date_range("published", since, until))
    if sources:
        terms = [term for source in sources for term in source_terms(source)]
        filters.append({"bool": {"should": terms, "minimum_should_match": 1}})
    order: list[Any] = [{"published": {"order": "desc"}}, "_score"] if newest else ["_score"]
    async with reading(settings, "articles") as es:
        response = await es.search(
            index=settings.index("articles"),
            query={"bool": {"must": must, "filter": filters}},
            sort=order,
            track_scores=True,
            size=size,
            source_includes=ARTICLE_FIELDS,
        )
    hits = [{**hit["_source"], "score": hit["_score"]} for hit in response["hits"]["hits"]]
    total = response["hits"].get("total") or {"value": len(hits)}
    return Matches(hits, int(total["value"]), total.get("relation", "eq") == "eq")


async def list_alerts(
    settings: Settings,
    *,
    claim_id: str | None = None,
    event_id: str | None = None,
    since: str | None = None,
    size: int = 50,
) -> list[dict[str, Any]]:
    """Alerts, newest first; ``since`` is a date or an Elasticsearch date-math like ``now-7d``.
    ``event_id`` (an id or its start, :func:`find_event`) keeps the alerts on that event's
    reports, those raised before an event was merged into it included."""
    filters: list[dict[str, Any]] = []
    if claim_id:
        filters.append({"term": {"claim_id": claim_id}})
    filters.extend(date_range("created_at", since))
    async with reading(settings, "alerts", *(["events"] if event_id else [])) as es:
        if event_id:
            _, event = await find_event(es, settings, event_id)
            filters.append({"terms": {"event_id": await with_merged(es, settings, event.id)}})
        return await _newest_first(es, settings.index("alerts"), filters, size)


async def list_dead_letters(
    settings: Settings,
    *,
    since: str | None = None,
    stage: str | None = None,
    size: int = 50,
    payload: bool = False,
) -> list[dict[str, Any]]:
    """Dead letters, newest first; ``since`` is a date or date math like ``now-1d``; ``stage`` a
    stage (``fetcher.feed``) or a service (``fetcher``: each of its stages). The offending input
    (``payload``, up to 64 KiB each) only when asked."""
    filters: list[dict[str, Any]] = date_range("created_at", since)
    if stage:
        stages = [{"term": {"stage": stage}}, {"prefix": {"stage": f"{stage}."}}]
        filters.append({"bool": {"should": stages, "minimum_should_match": 1}})
    async with reading(settings, "dead-letters") as es:
        return await _newest_first(
            es, settings.index("dead-letters"), filters, size, source_excludes=[] if payload else ["payload"]
        )


async def _newest_first(
    es: AsyncElasticsearch, index: str, filters: list[dict[str, Any]], size: int, **options: Any
) -> list[dict[str, Any]]:
    """The documents of ``index`` that pass every filter, by ``created_at``, newest first."""
    response = await es.search(
        index=index,
        query={"bool": {"filter": filters}},
        sort=[{"created_at": {"order": "desc"}}],
        size=size,
        **options,
    )
    return [hit["_source"] for hit in response["hits"]["hits"]]


EVENT_FIELDS = [
    "id",
    "label",
    "summary",
    "first_seen",
    "last_seen",
    "article_count",
    "source_count",
    "languages",
    "earliest_source",
    "reports_last_hour",
    "reports_last_day",
    "claim_count",
    "related",
]
RELATED_EVENT_FIELDS = ["id", "label", "article_count", "source_count", "first_seen", "last_seen"]
EVENT_ARTICLE_FIELDS = [
    "id",
    "title",
    "url",
    "source",
    "source_domain",
    "language",
    "published",
    "fetched_at",
    "duplicate_of",
    "reused_from",
    "event_reason",
    "event_score",
]


#: Events found by ``wirewatch events WORDS``: at most this many, the most reported first.
MAX_EVENTS_MATCHED = 1000
#: The orders of ``wirewatch events --sort``: most recently active, most reports, most outlets
#: first (ties: the most recently active, then by id).
EVENT_SORTS: dict[str, list[str]] = {
    "recent": ["last_seen"],
    "reports": ["article_count", "source_count", "last_seen"],
    "sources": ["source_count", "article_count", "last_seen"],
}


async def list_events(
    settings: Settings,
    *,
    query: str = "",
    since: str | None = None,
    lang: str | None = None,
    size: int = 20,
    sort: str = "recent",
) -> list[dict[str, Any]]:
    """Live (not merged) events in the order ``sort`` names (:data:`EVENT_SORTS`: most recently
    active first by default); ``since`` bounds their last report (a date or date math like
    ``now-7d``), ``lang`` keeps those with reports in that language, ``query`` those with a
    report that has every word of it (:func:`events_reporting`)."""
    filters = date_range("last_seen", since)
    if lang:
        filters.append({"term": {"languages": lang}})
    words = text_query(query, ARTICLE_TEXT_FIELDS, every_word=True) if query.strip() else None
    async with reading(settings, "events", *(["articles"] if words else [])) as es:
        if words:
            ids = await events_reporting(es, settings, words)
            if not ids:
                return []
            filters.append({"ids": {"values": ids}})
        response = await es.search(
            index=settings.index("events"),
            query={"bool": {"filter": filters, "must_not": [{"exists": {"field": "merged_into"}}]}},
            sort=[*({field: {"order": "desc"}} for field in EVENT_SORTS[sort]), {"id": {"order": "asc"}}],
            size=size,
            source_includes=[*EVENT_FIELDS, "growth"],
        )
    now = datetime.now(UTC)
    events = [reports_as_of(hit["_source"], now) for hit in response["hits"]["hits"]]
    for event in events:
        event.pop("growth", None)
    return events


def reports_as_of(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """``event`` (a stored event document, or part of one with ``last_seen`` and ``growth``)
    with ``reports_last_hour`` and ``reports_last_day`` counted up to ``now``.

    The document's counts are as of its last update: those of the hour and day before its last
    report, however long ago that was (an event last reported 1 h 17 min ago still said 1). Here
    they are the reports of the hour and the day before ``now``, from the event's reports per
    hour (``growth``, the 48 hours up to its last report): counted by the hour, so an hour that
    reaches into the period counts whole; a report is never later than ``last_seen``, so an
    event not reported in the period counts 0. A document without ``growth`` (none is written
    without) keeps its count while its last report is in the period."""
    last_seen = _utc(event["last_seen"])
    growth = [(_utc(bucket["hour"]), int(bucket["reports"])) for bucket in event.get("growth") or []]
    for field, span in (("reports_last_hour", timedelta(hours=1)), ("reports_last_day", timedelta(days=1))):
        start = now - span
        if last_seen <= start:
            event[field] = 0
        elif growth:  # the reports of an hour lie between its start and its end, or last_seen
            event[field] = sum(n for hour, n in growth if min(hour + timedelta(hours=1), last_seen) > start)
    return event


def _utc(value: str | datetime) -> datetime:
    """A stored date (ISO 8601, or a datetime) as an aware UTC datetime."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


async def events_reporting(es: AsyncElasticsearch, settings: Settings, words: dict[str, Any]) -> list[str]:
    """The events with a report that matches ``words``, the articles' query of a person's search
    (:func:`text_query` with ``every_word``, in any language, as :func:`search_articles`): so an
    event is found by the words of any of its reports, in any of their languages. Merged events
    lead to their survivors; at most ``MAX_EVENTS_MATCHED`` events, those with the most matching
    reports."""
    response = await es.search(
        index=settings.index("articles"),
        query=words,
        size=0,
        aggs={"events": {"terms": {"field": "event_id", "size": MAX_EVENTS_MATCHED}}},
    )
    ids = [bucket["key"] for bucket in response["aggregations"]["events"]["buckets"]]
    if not ids:
        return []
    pointers = await merge_pointers(es, settings, ids)
    merged: dict[str, str] = {event_id: into for event_id, into in pointers.items() if into}
    live = {event_id for event_id, into in pointers.items() if not into}
    return sorted(live | set((await survivor_ids(es, settings, merged)).values()))


async def merge_pointers(es: AsyncElasticsearch, settings: Settings, ids: list[str]) -> dict[str, str | None]:
    """Each of the events ``ids`` that has a document, with the id it was merged into (None: live)."""
    found = await es.search(
        index=settings.index("events"),
        query={"ids": {"values": ids}},
        size=len(ids),
        source_includes=["id", "merged_into"],
    )
    return {hit["_source"]["id"]: hit["_source"].get("merged_into") for hit in found["hits"]["hits"]}


async def survivor_ids(es: AsyncElasticsearch, settings: Settings, merged: dict[str, str]) -> dict[str, str]:
    """For merged events (id: the id it was merged into), the id of the live event each leads to,
    following every chain of merges at once: one search per step, at most ``MAX_MERGE_HOPS``.
    An event whose chain reaches an id without a document is left out."""
    survivors: dict[str, str] = {}
    leads = dict(merged)
    for _ in range(MAX_MERGE_HOPS):
        if not leads:
            break
        onward = await merge_pointers(es, settings, sorted(set(leads.values())))
        following: dict[str, str] = {}
        for event_id, target in leads.items():
            if target not in onward:
                continue
            if onward_id := onward[target]:
                following[event_id] = onward_id
            else:
                survivors[event_id] = target
        leads = following
    return survivors


class EventNotFoundError(LookupError):
    """No event has that id."""


#: Merges followed at most from an event id to its survivor.
MAX_MERGE_HOPS = 20


async def stored_event(es: AsyncElasticsearch, settings: Settings, event_id: str) -> Event | None:
    """The stored event document of ``event_id``, following ``merged_into`` to the survivor;
    None when an id on the way has no document."""
    for _ in range(MAX_MERGE_HOPS):
        found = await es.search(index=settings.index("events"), query={"ids": {"values": [event_id]}}, size=1)
        hits = found["hits"]["hits"]
        if not hits:
            return None
        event: Event = Event.model_validate(hits[0]["_source"])
        if not event.merged_into:
            return event
        event_id = event.merged_into
    return None


async def event_id_from_prefix(es: AsyncElasticsearch, settings: Settings, prefix: str) -> str:
    """The one event id that starts with ``prefix`` (:func:`~wirewatch.core.ids.complete_id`).
    Raises :class:`EventNotFoundError` when none does, or several (the message lists them)."""
    ids: dict[str, str] = {}
    if len(prefix) >= MIN_ID_PREFIX:
        found = await es.search(
            index=settings.index("events"),
            query={"prefix": {"id": prefix}},
            size=100,
            source_includes=["id", "label"],
        )
        ids = {hit["_source"]["id"]: hit["_source"].get("label", "") for hit in found["hits"]["hits"]}
    try:
        return complete_id(prefix, ids, "event", labels=ids, listed_by="wirewatch events", hexadecimal=True)
    except UnknownIdError as exc:
        raise EventNotFoundError(str(exc)) from None


async def find_event(es: AsyncElasticsearch, settings: Settings, given: str) -> tuple[str, Event]:
    """The event ``given`` names, by its id or the start of one (:func:`event_id_from_prefix`):
    that id in full, and the event (its survivor when it was merged). Raises
    :class:`EventNotFoundError`."""
    given = given.strip().lower()  # event ids are hex digests (``stable_id``), written in lower case
    event = await stored_event(es, settings, given)
    if event is None:
        given = await event_id_from_prefix(es, settings, given)
        event = await stored_event(es, settings, given)
    if event is None:
        raise EventNotFoundError(f"no event {given!r}")
    return given, event


async def with_merged(es: AsyncElasticsearch, settings: Settings, event_id: str) -> list[str]:
    """``event_id`` and the ids of the events merged into it, and into those. The linking stage
    gives a merged event's documents the survivor's id once the merge's batch is written
    (``EventIndexing.repoint_ops``); until then, and in documents written by versions before
    it, they have the id of their event at the time."""
    ids, newest = [event_id], [event_id]
    for _ in range(MAX_MERGE_HOPS):
        found = await es.search(
            index=settings.index("events"),
            query={"terms": {"merged_into": newest}},
            size=1000,
            source_includes=["id"],
        )
        newest = [hit["_source"]["id"] for hit in found["hits"]["hits"] if hit["_source"]["id"] not in ids]
        if not newest:
            break
        ids += newest
    return ids


async def event_report(settings: Settings, event_id: str, *, size: int = 1000) -> dict[str, Any]:
    """An event document (a merged id leads to its survivor, noted in ``requested_id``) with its
    articles, those of the events merged into it included, in time order (publication time,
    else fetch time), and its related events both ways: those it names
    (:func:`related_events`), then those that name it (:func:`events_relating_to`), each once.
    ``event_id`` may be the start of an id (:func:`event_id_from_prefix`)."""
    async with reading(settings, "events", "articles") as es:
        event_id, event = await find_event(es, settings, event_id)
        ids = await with_merged(es, settings, event.id)
        response = await es.search(
            index=settings.index("articles"),
            # Documents not repointed (yet) after a merge have the merged event's id: see with_merged.
            query={"terms": {"event_id": ids}},
            size=size,
            source_includes=EVENT_ARTICLE_FIELDS,
        )
        related = await related_events(es, settings, event)
        shown = {other["id"] for other in related} | set(ids)
        related += [
            other for other in await events_relating_to(es, settings, ids) if other["id"] not in shown
        ]
    articles = [hit["_source"] for hit in response["hits"]["hits"]]
    articles.sort(key=lambda a: (a.get("published") or a.get("fetched_at") or "", a["id"]))
    return {
        **reports_as_of(event.model_dump(mode="json"), datetime.now(UTC)),
        "requested_id": event_id,
        "related_events": related,
        "articles": articles,
    }


#: Events shown at most as related to one because they list it (their ``related`` names it).
MAX_RELATING = 20


async def events_relating_to(
    es: AsyncElasticsearch, settings: Settings, ids: list[str]
) -> list[dict[str, Any]]:
    """The live events whose ``related`` names one of ``ids`` (an event and the events merged
    into it), most recently active first, at most :data:`MAX_RELATING`, as
    :func:`related_events` gives them: one search.

    The indexer records a relation on the event that got the report (its report came close to
    the other event), and rewrites only that event's document; this is the other side. (A
    survivor takes over the ``related`` of the events merged into it, from its next write.)"""
    found = await es.search(
        index=settings.index("events"),
        query={
            "bool": {
                "filter": [{"terms": {"related": ids}}],
                "must_not": [{"exists": {"field": "merged_into"}}, {"ids": {"values": ids}}],
            }
        },
        sort=[{"last_seen": {"order": "desc"}}, {"id": {"order": "asc"}}],
        size=MAX_RELATING,
        source_includes=RELATED_EVENT_FIELDS,
    )
    return [hit["_source"] for hit in found["hits"]["hits"]]


async def related_events(es: AsyncElasticsearch, settings: Settings, event: Event) -> list[dict[str, Any]]:
    """The events ``event`` is related to (similar, not joined: :attr:`Event.related`), best
    first, each as its survivor when it was merged since, as its id, label, counts and dates.
    One search for them all; only an event merged since costs its way to its survivor."""
    if not event.related:
        return []
    response = await es.search(
        index=settings.index("events"), query={"ids": {"values": event.related}}, size=len(event.related)
    )
    stored = {hit["_source"]["id"]: Event.model_validate(hit["_source"]) for hit in response["hits"]["hits"]}
    found: dict[str, dict[str, Any]] = {}
    for related_id in event.related:
        other = stored.get(related_id)
        if other is not None and other.merged_into:
            other = await stored_event(es, settings, other.merged_into)
        if other is None or other.id == event.id or other.id in found:
            continue
        found[other.id] = other.model_dump(mode="json", include=set(RELATED_EVENT_FIELDS))
    return list(found.values())
