"""What event linking writes to Elasticsearch: event documents and "report joined event" records.

Both are derived from the linker's state, never edited in place: an event document is
rewritten whole from its :class:`EventState` whenever the event changes, so a replayed write
gives the same document.
"""

from __future__ import annotations

from datetime import UTC, datetime

from wirewatch.core.models import EnrichedArticle, Event, EventLink, HourCount
from wirewatch.events.linking import Link
from wirewatch.events.profile import Report
from wirewatch.events.state import HOUR, EventState

#: Entities and keyphrases listed on an event document.
TOP_NAMES = 10


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _ranked(counts: dict[str, int]) -> list[str]:
    return [k for k, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def _top(bag: dict[str, float], names: dict[str, str]) -> list[str]:
    ranked = sorted(bag.items(), key=lambda item: (-item[1], item[0]))[:TOP_NAMES]
    return [names.get(key, key) for key, _ in ranked]


def event_document(event: EventState) -> Event:
    """The event document of ``event`` (its current state)."""
    keyphrases: dict[str, float] = {}
    for bag in event.keyphrases.values():
        for key, weight in bag.items():
            keyphrases[key] = keyphrases.get(key, 0.0) + weight
    last_hour = event.last_time - HOUR
    last_day = event.last_time - 24 * HOUR
    hours = sorted((int(h), n) for h, n in event.hours.items())
    return Event(
        id=event.id,
        label=event.label,
        summary=event.summary,
        first_seen=_time(event.first_time),
        last_seen=_time(event.last_time),
        article_count=event.count,
        source_count=len(event.sources),
        sources=_ranked(event.sources),
        languages=_ranked(event.languages),
        language_count=len(event.languages),
        entities=_top(event.entities, event.names),
        keyphrases=_top(keyphrases, event.names),
        earliest_article_id=event.earliest_article_id,
        earliest_source=event.earliest_source,
        earliest_title=event.earliest_title,
        growth=[HourCount(hour=_time(h), reports=n) for h, n in hours],
        reports_last_hour=sum(n for h, n in hours if h + HOUR > last_hour),
        reports_last_day=sum(n for h, n in hours if h + HOUR > last_day),
        claim_ids=sorted(event.claims),
        claims=[event.claims[c] for c in sorted(event.claims)],
        claim_count=len(event.claims),
        related=list(event.related),
        merged_into=event.merged_into,
        merged_from=list(event.merged_from),
        split_from=event.split_from,
    )


def link_record(article: EnrichedArticle, report: Report, link: Link, event: EventState) -> EventLink:
    """The "report joined event" record of ``article``."""
    return EventLink(
        id=article.id,
        article_id=article.id,
        event_id=event.id,
        joined_event_id=link.event_id,
        event_label=event.label,
        reason=link.reason,
        score=link.score,
        opened=link.reason == "new",
        title=article.title,
        url=article.canonical_url or article.url,
        source=article.source,
        source_domain=article.source_domain,
        language=article.language,
        published=article.published,
        time=_time(report.time),
        is_duplicate=article.is_duplicate,
        related=list(link.related),
    )
