"""Retroactive matching: a newly tracked claim is looked for in the articles already indexed.

Elasticsearch gives the candidates: articles of the last ``claims_retro_days`` whose
check-worthy sentences or title share words with the claim, or that name the same people,
organisations and places (canonical names, the same in every language: "ISIS" in an English
claim and "Daech" in a French article are both "Islamic State", so this reaches across
languages). Each candidate then goes through :func:`~wirewatch.alerts.detect.alerts_for`,
exactly as on arrival, for that claim only; its alerts are marked ``retroactive``.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import AsyncElasticsearch

from wirewatch.alerts.detect import alerts_for
from wirewatch.core.logs import get_logger
from wirewatch.core.mappings import text_query
from wirewatch.core.models import Alert, EnrichedArticle, TrackedClaim
from wirewatch.core.settings import Settings
from wirewatch.enricher.analysis import analyse_text
from wirewatch.enricher.language import detect_language
from wirewatch.matching.matcher import ClaimMatcher

log = get_logger(__name__)


def candidate_query(claim: TrackedClaim, days: float) -> dict[str, Any]:
    """The Elasticsearch query for articles that may state ``claim``."""
    language = claim.language or detect_language(claim.text, None).code
    found = analyse_text("", claim.text, language)
    should: list[dict[str, Any]] = [  # plus the claim's language subfields (stemmed), if any
        text_query(claim.text, ["claims.text"], language),
        text_query(claim.text, ["title"], language),
    ]
    for field, names in (
        ("people", found.people),
        ("organisations", found.organisations),
        ("places", found.places),
    ):
        if names:
            should.append({"terms": {field: names}})
    for keyword in claim.keywords:
        should.append({"match_phrase": {"text": keyword}})
    return {
        "bool": {
            "filter": [{"range": {"fetched_at": {"gte": f"now-{int(days * 86400)}s"}}}],
            "should": should,
            "minimum_should_match": 1,
        }
    }


async def retroactive_alerts(
    es: AsyncElasticsearch, settings: Settings, matcher: ClaimMatcher, claim: TrackedClaim
) -> list[Alert]:
    """Alerts for ``claim`` among the articles already indexed."""
    response = await es.search(
        index=settings.index("articles"),
        query=candidate_query(claim, settings.claims_retro_days),
        size=settings.claims_retro_candidates,
    )
    alerts: list[Alert] = []
    hits = response["hits"]["hits"]
    for hit in hits:
        article = EnrichedArticle.model_validate(hit["_source"])
        alerts.extend(alerts_for(article, matcher, retroactive=True, only_claim=claim.id))
    log.info(
        "retroactive search done",
        extra={"claim_id": claim.id, "candidates": len(hits), "alerts": len(alerts)},
    )
    return alerts
