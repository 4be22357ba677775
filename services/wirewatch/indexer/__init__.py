"""indexer: writes enriched articles and dead letters to Elasticsearch, in bulk, idempotently."""
