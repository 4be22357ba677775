"""Keep the words a stream keeps using in the NER model's vocabulary, up to a bound.

The enricher reads every text inside spaCy's ``memory_zone`` so that the model's vocabulary
does not grow for months with every new name and number. The price: inside a zone spaCy
neither keeps the lexemes it creates nor caches how it split a chunk of text, so every word
outside the model's own vocabulary ("said,", "Trump", "2024") is built again in every article
(a Python call per lexical attribute): the tokeniser cost 2.3 to 2.9 ms per English article,
against 0.7 ms outside a zone.

``RecurringWords`` counts, per article, the whitespace-separated chunks of the text the model
reads. A chunk seen in ``min_articles`` different articles is read once *outside* the zone, so
its lexemes stay and its split is cached; a chunk seen once (a figure, a one-off name) never
enters. Both the count and the words kept are bounded, so memory stays flat however long the
stream runs: about 300 bytes per kept word (lexeme, string, cache entry) and 100 per counted
chunk. Tokenisation does not depend on it: spaCy splits a chunk the same way whether it comes
from its cache or not, so entities are the same, only cheaper.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.language import Language

__all__ = ["RECENT_TEXTS", "RecurringWords"]

#: How many texts are remembered so that reading one again does not count its words again.
RECENT_TEXTS = 10_000


class RecurringWords:
    """Chunks recurring across articles, made permanent in ``nlp``'s vocabulary (bounded)."""

    def __init__(
        self, nlp: Language, *, min_articles: int = 3, max_kept: int = 50_000, max_counted: int = 100_000
    ) -> None:
        self.nlp = nlp
        self.min_articles = min_articles
        self.max_kept = max_kept
        self.max_counted = max_counted
        self.kept: set[str] = set()
        self._counts: Counter[str] = Counter()
        self._texts_seen: dict[int, None] = {}  # the last texts counted, oldest first

    def note(self, text: str) -> None:
        """Count the chunks of one article's text (once per text); keep those that reached
        ``min_articles``. Call it outside any memory zone."""
        if len(self.kept) >= self.max_kept or not self._first_time(text):
            return
        recurring: list[str] = []
        for chunk in set(text.split()):
            if chunk in self.kept:
                continue
            self._counts[chunk] += 1
            if self._counts[chunk] >= self.min_articles:
                recurring.append(chunk)
        if recurring:
            recurring = sorted(recurring)[: self.max_kept - len(self.kept)]
            for chunk in recurring:
                del self._counts[chunk]
            self.kept.update(recurring)
            # Outside a zone: the lexemes stay and each chunk's split is cached.
            self.nlp.make_doc(" ".join(recurring))
        if len(self._counts) > self.max_counted:
            # Forget the chunks seen in one article only (lossy counting; all of them if that
            # is not enough to halve the count): the count stays bounded and a chunk that keeps
            # coming back is counted again.
            again = {chunk: n for chunk, n in self._counts.items() if n > 1}
            self._counts = Counter(again if len(again) <= self.max_counted // 2 else ())

    def _first_time(self, text: str) -> bool:
        """False for a text counted among the last ``RECENT_TEXTS`` (a re-delivered or replayed
        article is not a second article using its words)."""
        key = hash(text)
        if key in self._texts_seen:
            return False
        self._texts_seen[key] = None
        if len(self._texts_seen) > RECENT_TEXTS:
            del self._texts_seen[next(iter(self._texts_seen))]
        return True
