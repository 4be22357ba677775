"""Events: which reports tell of one real-world event, decided online as articles arrive.

:class:`EventLinker` (``linking.py``) is what the indexer runs for each enriched article;
``offline.py`` runs it over a file (``wirewatch eval cluster``); ``baseline.py`` is the plain
TF-IDF single-pass clustering it is benchmarked against.
"""

from wirewatch.events.linking import EventLinker, Link, LinkerConfig, Weights
from wirewatch.events.profile import Report
from wirewatch.events.state import EventState

__all__ = ["EventLinker", "EventState", "Link", "LinkerConfig", "Report", "Weights"]
