"""Prometheus metrics, one registry per process, served on each service's ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "wirewatch_messages_total", "Messages handled, by service and outcome", ["service", "outcome"]
)
DEAD_LETTERS = Counter("wirewatch_dead_letters_total", "Records sent to the dead-letter topic", ["stage"])
FETCHES = Counter("wirewatch_fetches_total", "HTTP fetches by kind and status", ["kind", "status"])
ARTICLES_PRODUCED = Counter("wirewatch_articles_produced_total", "Raw articles produced")
EXTRACTION_SECONDS = Histogram(
    "wirewatch_extraction_seconds",
    "Time to extract one article",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
DUPLICATES = Counter("wirewatch_duplicates_total", "Articles flagged as exact duplicates")
INDEXED = Counter("wirewatch_indexed_total", "Documents written to Elasticsearch", ["index"])
BULK_SECONDS = Histogram(
    "wirewatch_bulk_seconds",
    "Time per bulk request, retries included, by stage (indexer.events: the event-linking stage's)",
    ["stage"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ALERTS = Counter(
    "wirewatch_alerts_total",
    "Alerts handled, by outcome; the deliveries' outcomes (delivered, parked, failed) by target "
    "(its kind and host: webhook hooks.example.org), the others with target empty",
    ["outcome", "target"],
)
RETRO_SEARCHES = Counter(
    "wirewatch_retroactive_searches_total",
    "Newly tracked claims taken for a retroactive search: searched, or skipped (searched already)",
    ["outcome"],
)
READY = Gauge("wirewatch_ready", "1 when the service is assigned partitions and running")
CONSUMER_LAG = Gauge(
    "wirewatch_consumer_lag",
    "Messages not yet read by this worker (end offset - read position), by assigned partition",
    ["topic", "partition"],
)
ASSIGNED_PARTITIONS = Gauge(
    "wirewatch_assigned_partitions", "Partitions this worker currently consumes, by topic", ["topic"]
)
CACHE = Counter(
    "wirewatch_cache_lookups_total",
    "Lookups in a cache of recent results, by cache (vectors: the sentence encoder's, by text; "
    "analyses: the enricher's, by exact title and text; fingerprints: the enricher's, by text; "
    "matches: the claim matcher's, by sentence and language) and outcome (hit, miss)",
    ["cache", "outcome"],
)
WINDOW_ITEMS = Gauge(
    "wirewatch_window_items",
    "Items in a stage's in-memory window: copies (articles remembered for duplicate detection), "
    "events (joinable events), event_articles (articles whose event is remembered)",
    ["window"],
)
EVENT_LINKS = Counter("wirewatch_event_links_total", "Reports linked to events, by reason", ["reason"])
EVENT_MERGES = Counter("wirewatch_event_merges_total", "Events merged into another")
EVENT_SPLITS = Counter("wirewatch_event_splits_total", "Events split in two (a second event had joined)")
EVENT_REPOINTED = Counter(
    "wirewatch_event_repointed_total",
    "Documents of merged events older than the linking window given the survivor's id",
    ["index"],
)
EVENT_LINK_SECONDS = Histogram(
    "wirewatch_event_link_seconds",
    "Time to link one report or claim sighting (its batch's Elasticsearch writes not included)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
STALE_EVENTS = Counter(
    "wirewatch_stale_events_total",
    "Events read before a rebalance and left unacknowledged, to be read again from the committed offset",
)
SKIPPED_RECORDS = Counter(
    "wirewatch_skipped_records_total",
    "Records the consumer fetched and skipped (a jump in a partition's offsets outside compacted "
    "topics): not committed past, read again",
)
DROPPED_REREAD = Counter(
    "wirewatch_dropped_partitions_reread_total",
    "Partitions found read past their committed offset with nothing in progress, sought back to it",
)
LOST_TO_RETENTION = Counter(
    "wirewatch_records_lost_to_retention_total",
    "Records the topic's retention deleted before this consumer group read them",
    ["topic"],
)
MEMORY_RETURNED = Counter(
    "wirewatch_memory_returned_bytes_total",
    "Resident memory handed back to the system by the memory trim (WIREWATCH_MEMORY_TRIM_SECONDS)",
)
