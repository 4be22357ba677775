"""Retroactive matching: a newly tracked claim is looked for in the articles already indexed.

Elasticsearch gives the candidates: articles of the last ``claims_retro_days`` whose
check-worthy sentences or title share words with the claim, whose text holds most of its words
(``RESTATES``), or that name the same people, organisations and places (canonical names, the
same in every language: "ISIS" in an English claim and "Daech" in a French article are both
"Islamic State", so this reaches across languages). Each candidate then goes through
:func:`~wirewatch.alerts.detect.alerts_for`, exactly as on arrival, for that claim only; its
alerts are marked ``retroactive``. The article's text is read only for the ``RESTATES``
candidates, for the sentences besides its check-worthy ones that ``alerts_for`` looks at.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
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
        {"match": {"text": {"query": claim.text, "minimum_should_match": "80%", "_name": RESTATES}}},
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


#: The name of the query clause for articles whose text holds most of the claim's words.
RESTATES = "restates"

#: Article fields a retroactive match never reads: the body (claims carry their sentences and
#: offsets; the text of ``RESTATES`` candidates is read apart) and what only search and the
#: dashboards use. Leaving them on the server keeps each search's response (up to
#: ``claims_retro_candidates`` articles) small.
UNUSED_FIELDS = ("text", "description", "fetch_headers", "entities", "keyphrases", "attributions")

#: Candidates matched per step: a step runs in a thread, then the search rests (see Pacer).
CANDIDATES_PER_STEP = 25


class Pacer:
    """Keeps background work to a ``share`` of the time: after a step that was busy ``t``
    seconds, it rests ``t * (1 - share) / share`` (share 0.25: three times as long). Live
    articles are matched meanwhile, so a large watchlist imported at once does not starve them.
    """

    def __init__(self, share: float, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if not 0 < share <= 1:
            raise ValueError("a share of the time is in (0, 1]")
        self.share = share
        self._sleep = sleep

    async def rest(self, busy: float) -> None:
        if self.share < 1 and busy > 0:
            await self._sleep(busy * (1 - self.share) / self.share)


async def retroactive_alerts(
    es: AsyncElasticsearch,
    settings: Settings,
    matcher: ClaimMatcher,
    claim: TrackedClaim,
    pacer: Pacer | None = None,
) -> list[Alert]:
    """Alerts for ``claim`` among the articles already indexed. The candidates are matched in
    threads, a step at a time, resting between steps as ``pacer`` says (default: the share of
    ``claims_retro_share``)."""
    pacer = pacer or Pacer(settings.claims_retro_share)
    began = time.monotonic()  # the search counts as the first step's work (the server is busy too)
    response = await es.search(
        index=settings.index("articles"),
        query=candidate_query(claim, settings.claims_retro_days),
        size=settings.claims_retro_candidates,
        source_excludes=list(UNUSED_FIELDS),
    )
    alerts: list[Alert] = []
    hits = response["hits"]["hits"]
    for start in range(0, len(hits), CANDIDATES_PER_STEP):
        chunk = hits[start : start + CANDIDATES_PER_STEP]
        texts = await _texts(es, [hit for hit in chunk if RESTATES in hit.get("matched_queries", ())])
        step = [
            EnrichedArticle.model_validate({**hit["_source"], "text": texts.get(hit["_id"], "")})
            for hit in chunk
        ]
        alerts.extend(await asyncio.to_thread(_match, step, matcher, claim.id))
        await pacer.rest(time.monotonic() - began)
        began = time.monotonic()
    log.info(
        "retroactive search done",
        extra={"claim_id": claim.id, "candidates": len(hits), "alerts": len(alerts)},
    )
    return alerts


async def _texts(es: AsyncElasticsearch, hits: list[dict[str, Any]]) -> dict[str, str]:
    """The text of each article of ``hits``, by id (read from its own index: the alias may
    stand for several)."""
    if not hits:
        return {}
    response = await es.mget(
        docs=[{"_index": hit["_index"], "_id": hit["_id"]} for hit in hits], source_includes=["text"]
    )
    return {doc["_id"]: doc["_source"].get("text", "") for doc in response["docs"] if doc.get("found")}


def _match(articles: list[EnrichedArticle], matcher: ClaimMatcher, claim_id: str) -> list[Alert]:
    return [
        alert
        for article in articles
        for alert in alerts_for(article, matcher, retroactive=True, only_claim=claim_id)
    ]
