"""The comparison point of the event linker: plain TF-IDF single-pass clustering.

Each document (title and text) becomes a TF-IDF vector: words of the normalised text
(:func:`wirewatch.core.text.normalise`, ``\\w+``, one-letter words and the function words of
:data:`wirewatch.matching.lexical.STOPWORDS` dropped, no stemming), weight ``(1 + ln tf) * idf``
with ``idf = ln((N + 1) / (df + 1)) + 1`` over the N documents seen so far (an online idf, as a
stream would have), unit length. A cluster is the sum of its members' vectors; the document
joins the cluster of highest cosine if it reaches ``threshold``, else opens a cluster. No time
window, no entities, no sentence vectors, no merging.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from wirewatch.core.text import normalise
from wirewatch.matching.lexical import STOPWORDS

#: The one setting: chosen on the ECB+ train and dev topics like the linker's defaults.
THRESHOLD = 0.25

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The words of ``text`` the baseline counts (see the module doc)."""
    return [w for w in _WORD.findall(normalise(text)) if len(w) > 1 and w not in STOPWORDS and w != "__"]


class TfidfSinglePass:
    """Online single-pass clustering on TF-IDF cosine to cluster centroids (module doc)."""

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold
        self.df: Counter[str] = Counter()
        self.documents = 0
        #: term -> {cluster index: summed weight}
        self._postings: dict[str, dict[int, float]] = {}
        self._sums: list[dict[str, float]] = []
        self._norms: list[float] = []
        self.ids: list[str] = []

    def add(self, doc_id: str, title: str, text: str) -> str:
        """Cluster one document; the id of its cluster (the id of the cluster's first document)."""
        counts = Counter(words(f"{title}\n{text}"))
        self.documents += 1
        self.df.update(counts.keys())
        vector = self._vector(counts)
        best, best_score = -1, 0.0
        if vector:
            dots: dict[int, float] = {}
            for term, weight in vector.items():
                for cluster, summed in self._postings.get(term, {}).items():
                    dots[cluster] = dots.get(cluster, 0.0) + weight * summed
            for cluster in sorted(dots):
                score = dots[cluster] / self._norms[cluster] if self._norms[cluster] > 0 else 0.0
                if score > best_score:
                    best, best_score = cluster, score
        if best < 0 or best_score < self.threshold:
            best = len(self._sums)
            self._sums.append({})
            self._norms.append(0.0)
            self.ids.append(doc_id)
        self._add_to(best, vector)
        return self.ids[best]

    def _vector(self, counts: Counter[str]) -> dict[str, float]:
        n = self.documents
        raw = {
            t: (1.0 + math.log(c)) * (math.log((n + 1) / (self.df[t] + 1)) + 1.0) for t, c in counts.items()
        }
        length = math.sqrt(sum(w * w for w in raw.values()))
        return {t: w / length for t, w in sorted(raw.items())} if length > 0 else {}

    def _add_to(self, cluster: int, vector: dict[str, float]) -> None:
        total = self._sums[cluster]
        for term, weight in vector.items():
            total[term] = total.get(term, 0.0) + weight
            self._postings.setdefault(term, {})[cluster] = total[term]
        self._norms[cluster] = math.sqrt(sum(w * w for w in total.values()))
