"""enricher: a Faust stream adding language and duplicate detection to raw articles."""
