"""Shared by every service: models, settings, ids, Kafka and Elasticsearch clients."""
