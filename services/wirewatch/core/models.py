"""Every Kafka message and Elasticsearch document, defined once.

The JSON Schemas in ``schemas/json/`` and the index templates in ``schemas/elasticsearch/``
are generated from these classes (``wirewatch schemas export``); a test fails when they
drift apart. Field-level Elasticsearch types are given with ``Es(...)`` metadata; fields
without it get a type derived from the Python annotation (see ``wirewatch.core.mappings``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Es:
    """Elasticsearch mapping for one field, attached with ``Annotated[T, Es({...})]``."""

    def __init__(self, mapping: dict[str, Any]) -> None:
        self.mapping = mapping

    def __repr__(self) -> str:
        return f"Es({self.mapping!r})"


# Reusable field mappings.
FULL_TEXT = Es({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 512}}})
BODY_TEXT = Es({"type": "text"})
NOT_INDEXED = Es({"type": "keyword", "index": False, "doc_values": False})
STORED_ONLY = Es({"type": "object", "enabled": False})

SCHEMA_VERSION: Literal[1] = 1
#: Largest message a service reads or writes (a little under the producers' 4 MiB request cap, for
#: the key and the record overhead). Anything larger did not come from wirewatch, and whatever a
#: service made of it could not be sent on: it is refused before parsing (a dead letter).
MAX_MESSAGE_BYTES = 4_000_000


def utcnow() -> datetime:
    return datetime.now(UTC)


class Message(BaseModel):
    """Base of every message: versioned, strict about types, tolerant of unknown fields."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    #: Logical name: ``schemas/json/<name>.schema.json`` and, for documents, the index.
    schema_name: ClassVar[str]

    schema_version: Literal[1] = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes | str | None) -> Any:
        """Parse a message; raises ``MessageError`` with a readable reason."""
        if data is None:
            raise MessageError(f"invalid {cls.schema_name} message: no value (a tombstone)")
        if len(data) > MAX_MESSAGE_BYTES:
            raise MessageError(
                f"invalid {cls.schema_name} message: {len(data)} bytes, "
                f"larger than the {MAX_MESSAGE_BYTES}-byte message limit"
            )
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise MessageError(f"invalid {cls.schema_name} message: {_summarise(exc)}") from exc


class MessageError(ValueError):
    """A Kafka message that cannot be parsed as the model its topic carries."""


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - 5
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


class Feed(Message):
    """A feed to poll, as listed in the feeds file."""

    schema_name: ClassVar[str] = "feed"

    id: str = Field(description="Stable id: hash of the canonical feed URL.")
    url: str
    name: str | None = None
    language: str | None = Field(default=None, description="Declared language (a hint only).")
    interval: float | None = Field(
        default=None, gt=0, description="Seconds between polls; default from settings."
    )


class BackfillRequest(Message):
    """One ``wirewatch backfill`` or ``wirewatch ingest`` request, on the backfill topic (key:
    ``id``): fetch the archive of a site since a date, or one article page."""

    schema_name: ClassVar[str] = "backfill-request"

    id: str
    kind: Literal["archive", "article"] = Field(
        default="archive",
        description="archive: `wirewatch backfill` (url is a sitemap index, a sitemap or a feed); "
        "article: `wirewatch ingest` (url is one article's page).",
    )
    url: str = Field(description="A sitemap index, a sitemap or a feed; for an article request, its page.")
    since: datetime | None = Field(
        default=None, description="Only articles dated this or later (an archive request's, required)."
    )
    requested_at: datetime

    @model_validator(mode="after")
    def _archive_has_since(self) -> BackfillRequest:
        if self.kind == "archive" and self.since is None:
            raise ValueError("an archive backfill request needs since")
        return self


class RawArticle(Message):
    """An article as fetched and extracted, before enrichment. Key: ``id``."""

    schema_name: ClassVar[str] = "raw-article"

    id: str = Field(description="sha256 of the canonical URL, 32 hex chars.")
    url: str = Field(description="URL the article was fetched from (after redirects).")
    canonical_url: str
    feed_url: str | None = None
    source: str = Field(
        description="Outlet name: the one the page declares, else the feed's name or title, else the host."
    )
    source_domain: str
    title: Annotated[str, FULL_TEXT] = ""
    text: Annotated[str, BODY_TEXT]
    description: Annotated[str | None, BODY_TEXT] = None
    author: str | None = None
    published: datetime | None = None
    fetched_at: datetime = Field(default_factory=utcnow)
    language_hint: str | None = Field(default=None, description="Declared by the feed or page.")
    html_sha256: str | None = None
    html_bytes: int | None = None
    http_status: int | None = None
    content_type: str | None = None
    fetch_headers: Annotated[dict[str, str], STORED_ONLY] = Field(
        default_factory=dict,
        description="Response headers worth keeping (ETag, Last-Modified, Date, …), lower-case names.",
    )


class Entity(BaseModel):
    """A person, organisation or place named in an article, under one canonical form."""

    name: str = Field(description="Canonical form: every alias the text or the alias table links maps here.")
    label: Literal["person", "organisation", "place", "other"]
    mentions: int = Field(ge=1)
    aliases: list[str] = Field(default_factory=list, description="Other surface forms seen in this article.")


class Attribution(BaseModel):
    """Who the article says a piece of information comes from."""

    source: str = Field(description="The source as named: 'Sputnik', 'le général Joseph Votel', 'AFP'.")
    kind: Literal["agency", "media", "person", "organisation", "document", "unnamed"]
    cue: str = Field(description="Words that attribute: 'selon', 'a déclaré', 'according to', 'Sources:'.")
    start: int = Field(ge=0, description="Char offset of the attributing sentence in the text.")
    end: int = Field(ge=0)


class Claim(BaseModel):
    """A check-worthy sentence: it states a checkable fact (figures, events, quotes, attributions)."""

    text: Annotated[str, BODY_TEXT]
    start: int = Field(ge=0, description="Char offset in the article text.")
    end: int = Field(ge=0)
    score: float = Field(ge=0.0, le=1.0, description="Check-worthiness, higher is more check-worthy.")
    signals: list[str] = Field(
        default_factory=list, description="Why: 'number', 'quote', 'attribution', 'event', 'entity', …"
    )


class ReusedPassage(BaseModel):
    """A span of this article's text found in an earlier one."""

    start: int = Field(ge=0, description="Char offset in this article's text.")
    end: int = Field(ge=0)
    source_start: int = Field(ge=0, description="Char offset in the source article's text.")
    source_end: int = Field(ge=0)


class Reuse(BaseModel):
    """Text this article shares with an earlier article (its source)."""

    id: str = Field(description="Id of the earlier article.")
    share: float = Field(ge=0.0, le=1.0, description="Fraction of this article's text found in the source.")
    source_share: float = Field(
        ge=0.0, le=1.0, description="Fraction of the source's text found in this article."
    )
    passages: list[ReusedPassage] = Field(default_factory=list)


class EnrichedArticle(RawArticle):
    """A raw article plus what the enricher learned. Key: ``id``. Also the article document."""

    schema_name: ClassVar[str] = "article"

    language: str = Field(description="Detected ISO 639-1 code, or 'und'.")
    language_confidence: float = Field(ge=0.0, le=1.0)
    content_hash: str = Field(description="sha256 of the normalised text: same hash, same text.")
    duplicate_of: str | None = Field(
        default=None, description="Id of the earliest copy of this text (exact or near-duplicate)."
    )
    duplicate_similarity: float | None = Field(
        default=None, ge=0.0, le=1.0, description="1.0 for an exact copy, else the shingle resemblance."
    )
    is_duplicate: bool = False
    reuses: list[Reuse] = Field(default_factory=list, description="Earlier articles it borrows text from.")
    reused_from: list[str] = Field(default_factory=list, description="Ids in ``reuses``, for facets.")
    entities: list[Entity] = Field(default_factory=list)
    people: list[str] = Field(default_factory=list, description="Canonical names of persons, for facets.")
    organisations: list[str] = Field(default_factory=list)
    places: list[str] = Field(default_factory=list)
    keyphrases: list[str] = Field(default_factory=list)
    attributions: list[Attribution] = Field(default_factory=list)
    attributed_to: list[str] = Field(default_factory=list, description="Sources of ``attributions``.")
    claims: list[Claim] = Field(default_factory=list)
    claim_count: int = Field(default=0, ge=0)
    enriched_at: datetime = Field(default_factory=utcnow)
    # Set on the article document by the indexer's event linking, never by the enricher.
    event_id: str | None = Field(
        default=None, description="The article's event (a merged event's id is replaced by its survivor's)."
    )
    event_reason: Literal["new", "similar", "duplicate", "reuse", "known"] | None = Field(
        default=None, description="Why it is in that event: it opened it, scored close, or copies a member."
    )
    event_score: float | None = Field(default=None, description="Its score against the event it joined.")


class HourCount(BaseModel):
    """Reports an event got in one hour (UTC, the hour's start)."""

    hour: datetime
    reports: int = Field(ge=0)


class Event(Message):
    """A cluster of reports about one event: the event document, rewritten on every change.
    Key and id: ``stable_id("event", first article id)``. A merged event keeps its document
    with ``merged_into`` set to the survivor, so links to it keep working."""

    schema_name: ClassVar[str] = "event"

    id: str
    label: Annotated[str, FULL_TEXT] = Field(description="Representative title (the first report's).")
    summary: Annotated[str, BODY_TEXT] = Field(default="", description="The first report's lead sentence.")
    first_seen: datetime = Field(description="Time of its earliest report.")
    last_seen: datetime = Field(description="Time of its latest report.")
    article_count: int = Field(ge=0)
    source_count: int = Field(ge=0, description="Outlets that reported it (exact up to 1,000).")
    sources: list[str] = Field(default_factory=list, description="Outlets, most reports first.")
    languages: list[str] = Field(default_factory=list, description="Languages, most reports first.")
    language_count: int = Field(default=0, ge=0)
    entities: list[str] = Field(default_factory=list, description="Top entities (canonical names).")
    keyphrases: list[str] = Field(default_factory=list, description="Top keyphrases.")
    earliest_article_id: str = Field(description="The report that came first (by its time).")
    earliest_source: str | None = None
    earliest_title: Annotated[str, FULL_TEXT] = ""
    growth: list[HourCount] = Field(
        default_factory=list, description="Reports per hour over the last 48 hours of the event."
    )
    reports_last_hour: int = Field(default=0, ge=0, description="Reports in the hour before last_seen.")
    reports_last_day: int = Field(default=0, ge=0, description="Reports in the 24 hours before last_seen.")
    claim_ids: list[str] = Field(default_factory=list, description="Tracked claims seen in its reports.")
    claims: Annotated[list[str], BODY_TEXT] = Field(default_factory=list, description="Their texts.")
    claim_count: int = Field(
        default=0, ge=0, description="Tracked claims seen (their alerts carry event_id)."
    )
    related: list[str] = Field(
        default_factory=list, description="Events its reports came close to without joining (same story)."
    )
    merged_into: str | None = Field(default=None, description="Set when this event was merged into another.")
    merged_from: list[str] = Field(default_factory=list)
    split_from: str | None = Field(
        default=None, description="The event it was split from (a second event had joined that one)."
    )
    updated_at: datetime = Field(default_factory=utcnow)


class EventLink(Message):
    """A report joined an event (one record per article, id = article id): what dashboards count
    for "this event got 12 new reports in the last hour"."""

    schema_name: ClassVar[str] = "event-link"

    id: str = Field(description="The article id.")
    article_id: str
    event_id: str = Field(description="Its event now (updated when that event is merged).")
    joined_event_id: str = Field(description="The event it joined at the time.")
    event_label: Annotated[str, FULL_TEXT] = ""
    reason: Literal["new", "similar", "duplicate", "reuse", "known"]
    score: float | None = None
    opened: bool = Field(default=False, description="This report opened the event.")
    title: Annotated[str, FULL_TEXT] = ""
    url: str = ""
    source: str = ""
    source_domain: str = ""
    language: str = "und"
    published: datetime | None = None
    time: datetime = Field(description="The report's time in event linking (published, else fetched).")
    linked_at: datetime = Field(default_factory=utcnow)
    is_duplicate: bool = False
    related: list[str] = Field(default_factory=list)


class TrackedClaim(Message):
    """A claim on the watchlist (compacted topic, key ``id``; a null value untracks)."""

    schema_name: ClassVar[str] = "claim"

    id: str
    text: Annotated[str, FULL_TEXT]
    language: str | None = None
    keywords: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    owner: str | None = None
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


#: Whether a matched sentence states a tracked claim or disputes it (``wirewatch.matching.stance``).
Stance = Literal["repeats", "disputes"]


class Alert(Message):
    """A tracked claim seen in an article, with the evidence. Key: the claim id (so one claim's
    alerts are throttled in one place); id: hash of (claim id, article id), one alert per pair."""

    schema_name: ClassVar[str] = "alert"

    id: str
    claim_id: str
    claim_text: Annotated[str, BODY_TEXT]
    claim_labels: Annotated[dict[str, str], STORED_ONLY] = Field(
        default_factory=dict, description="The claim's labels (verdict, fact-check URL, …)."
    )
    article_id: str
    url: str
    title: Annotated[str, FULL_TEXT] = ""
    source: str
    source_domain: str = ""
    language: str
    published: datetime | None = None
    sentence: Annotated[str, BODY_TEXT]
    in_title: bool = Field(default=False, description="The matching sentence is the title (offsets 0).")
    sentence_start: int = Field(ge=0, description="Char offsets of the sentence in the article text.")
    sentence_end: int = Field(ge=0)
    score: float = Field(ge=0.0, le=1.0)
    stance: Stance = Field(
        default="repeats",
        description="Whether the sentence repeats the claim or disputes it (one of the two is negated "
        "or calls something false: 'it is false that…', 'n'ont jamais quitté…').",
    )
    retroactive: bool = Field(default=False, description="Found when the claim was tracked, not on arrival.")
    event_id: str | None = Field(default=None, description="The article's event cluster, when known.")
    duplicate_of: str | None = None
    reused_from: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)


class DeadLetter(Message):
    """Something that could not be processed, with the reason. Nothing is dropped silently."""

    schema_name: ClassVar[str] = "dead-letter"

    id: str = Field(description="Stable id of the failure, so a replayed failure is one record.")
    stage: str = Field(description="Service and step that gave up, e.g. 'fetcher.feed'.")
    reason: Annotated[str, BODY_TEXT]
    error_type: str
    source_topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    payload: Annotated[str | None, NOT_INDEXED] = Field(
        default=None, description="The offending input (text, truncated to 64 KiB)."
    )
    url: str | None = None
    feed_url: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


#: Models that travel on Kafka, by schema name.
MESSAGES: dict[str, type[Message]] = {
    m.schema_name: m
    for m in (
        Feed,
        BackfillRequest,
        RawArticle,
        EnrichedArticle,
        Event,
        EventLink,
        TrackedClaim,
        Alert,
        DeadLetter,
    )
}

#: Models stored in Elasticsearch: index name (after the prefix) -> model.
DOCUMENTS: dict[str, type[Message]] = {
    "articles": EnrichedArticle,
    "events": Event,
    "event-links": EventLink,
    "claims": TrackedClaim,
    "alerts": Alert,
    "dead-letters": DeadLetter,
}
