"""fetcher: polls feeds, downloads and extracts articles, produces raw articles to Kafka."""
