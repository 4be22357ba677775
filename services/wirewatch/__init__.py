"""wirewatch: watch the news as it happens."""

__version__ = "0.1.0"
