"""Reading indexed articles back: the queries behind ``wirewatch search``."""

from __future__ import annotations

from typing import Any

from wirewatch.core.elastic import connect
from wirewatch.core.settings import Settings

ARTICLE_FIELDS = ["id", "title", "url", "source", "language", "published", "duplicate_of", "is_duplicate"]


async def search_articles(
    settings: Settings, query: str, *, lang: str | None = None, size: int = 10
) -> list[dict[str, Any]]:
    es = await connect(settings, wait=5)
    try:
        must: list[dict[str, Any]] = [
            {"multi_match": {"query": query, "fields": ["title^2", "description", "text"]}}
        ]
        filters: list[dict[str, Any]] = [{"term": {"language": lang}}] if lang else []
        response = await es.search(
            index=settings.index("articles"),
            query={"bool": {"must": must, "filter": filters}},
            size=size,
            source_includes=ARTICLE_FIELDS,
        )
    finally:
        await es.close()
    return [{**hit["_source"], "score": hit["_score"]} for hit in response["hits"]["hits"]]


async def list_alerts(
    settings: Settings, *, claim_id: str | None = None, since: str | None = None, size: int = 50
) -> list[dict[str, Any]]:
    """Alerts, newest first; ``since`` is a date or an Elasticsearch date-math like ``now-7d``."""
    filters: list[dict[str, Any]] = []
    if claim_id:
        filters.append({"term": {"claim_id": claim_id}})
    if since:
        filters.append({"range": {"created_at": {"gte": since}}})
    es = await connect(settings, wait=5)
    try:
        response = await es.search(
            index=settings.index("alerts"),
            query={"bool": {"filter": filters}},
            sort=[{"created_at": {"order": "desc"}}],
            size=size,
        )
    finally:
        await es.close()
    return [hit["_source"] for hit in response["hits"]["hits"]]
