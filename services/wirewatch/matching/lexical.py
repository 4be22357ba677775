"""The lexical stage of claim matching: terms of normalised text and an incremental BM25 index.

Terms come from ``wirewatch.core.text.normalise`` (the project's one normaliser): URLs dropped,
hashtags split at case changes (``#AustralianFires`` -> ``australian fires``), words of ``\\w``
characters, a short list of function words (en, fr, es, de, it, pt) removed, and every word cut to
its first ``PREFIX`` characters, a language-blind stand-in for stemming (``fighters`` and
``fighter`` both become ``fight``). Numbers are kept whole.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from wirewatch.core.text import normalise

#: Characters kept of each word.
PREFIX = 5
#: Idf mass a prefix holds beyond what a covering query may miss: more than ``covered``'s own
#: tolerance (1e-6) and the rounding of the slots' float32 masses.
_PREFIX_MARGIN = 1e-4

_URL = re.compile(r"https?://\S+|\bpic\.twitter\.com/\S+|\bwww\.\S+", re.IGNORECASE)
_HASHTAG = re.compile(r"#(\w+)")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"\w+")

STOPWORDS = frozenset(
    """
    a an the and or but if of to in on at by for from with as is are was were be been being it its
    this that these those he she they we you i his her their our your my me him them us not no so
    than then there here what which who whom whose when where why how all any some can could would
    should will just also about into over after before up out do does did has have had more most
    very said says rt via amp
    le la les un une des du de d l et ou mais si au aux en dans sur par pour avec sans est sont
    été être a ont avait avaient ce cette ces il elle ils elles on nous vous je qui que quoi dont
    où ne pas plus se sa son ses leur leurs y qu c s n m t lui
    el los las una unos unas del al y o pero en por para con sin es son fue era su sus lo que se
    no mas más este esta estos estas
    der die das ein eine einen einem einer und oder aber in im auf mit für von zu ist sind war
    wurde nicht den dem des sich auch es er sie wir ihr
    il lo gli i una uno di da e o ma per con su che è non della delle dei del nel
    os as um uma e ou mas em no na nos nas por para com sem que não do da dos das
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def terms(text: str) -> list[str]:
    """Index terms of ``text``, in order, repeats kept (see the module doc for the steps)."""
    text = _URL.sub(" ", text)
    text = _HASHTAG.sub(lambda m: " " + _CAMEL.sub(" ", m.group(1)) + " ", text)
    out: list[str] = []
    for word in _WORD.findall(normalise(text)):
        if word in STOPWORDS or word == "_":
            continue
        if word.isdigit():
            out.append(word)
        elif len(word) > 1:
            out.append(word[:PREFIX])
    return out


Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


class LexicalIndex:
    """BM25 over documents kept under integer slots, updated in place (``add`` / ``remove``).

    ``min_docs`` is a floor on the collection size used in the idf: a watchlist of five claims
    then weighs its words almost alike instead of by accidents of five documents.

    Document frequencies, lengths and the average length follow every change, so scores are
    always those of the current set. Postings are Python dicts turned into numpy arrays on first
    use after a change; scoring a query is one vectorised pass per query term.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75, min_docs: int = 0) -> None:
        self.k1 = k1
        self.b = b
        self.min_docs = min_docs
        self._postings: dict[str, dict[int, int]] = {}
        self._arrays: dict[str, tuple[Ints, Floats]] = {}
        self._docs: dict[int, Counter[str]] = {}
        self._lengths = np.zeros(0, dtype=np.float32)
        self._total_length = 0
        self._masses: Floats | None = None  # idf mass of each slot's terms, until the next change
        # for ``covered``: (share, slots by prefix term, idf by term), until the next change
        self._prefixes: tuple[float, dict[str, list[int]], dict[str, float]] | None = None

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, slot: object) -> bool:
        return slot in self._docs

    def add(self, slot: int, doc_terms: Sequence[str]) -> None:
        """Index ``doc_terms`` under ``slot`` (replacing what the slot held)."""
        self.remove(slot)
        counts = Counter(doc_terms)
        self._docs[slot] = counts
        if slot >= len(self._lengths):
            grown = np.zeros(max(slot + 1, 2 * len(self._lengths), 64), dtype=np.float32)
            grown[: len(self._lengths)] = self._lengths
            self._lengths = grown
        self._lengths[slot] = len(doc_terms)
        self._total_length += len(doc_terms)
        self._masses = self._prefixes = None
        for term, tf in counts.items():
            self._postings.setdefault(term, {})[slot] = tf
            self._arrays.pop(term, None)

    def remove(self, slot: int) -> None:
        """Forget ``slot`` (no-op when it holds nothing)."""
        counts = self._docs.pop(slot, None)
        if counts is None:
            return
        self._total_length -= int(self._lengths[slot])
        self._lengths[slot] = 0
        self._masses = self._prefixes = None
        for term in counts:
            posting = self._postings[term]
            del posting[slot]
            if not posting:
                del self._postings[term]
            self._arrays.pop(term, None)

    def idf(self, term: str) -> float:
        """BM25's (always positive) inverse document frequency of ``term`` in the current set."""
        return self.idf_of_count(len(self._postings.get(term, ())))

    def idf_of_count(self, df: int) -> float:
        """The idf of a term found in ``df`` documents."""
        n = max(len(self._docs), self.min_docs)
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def doc_terms(self, slot: int) -> Iterable[str]:
        """The distinct terms indexed under ``slot``."""
        return self._docs.get(slot, Counter()).keys()

    def idf_mass(self, query_terms: Iterable[str]) -> float:
        """Sum of the idf of the distinct ``query_terms``."""
        return sum(self.idf(t) for t in set(query_terms))

    def doc_masses(self) -> Floats:
        """The idf mass of each slot's distinct terms (0 for empty slots), by slot. Computed once
        after each change of the set, since every idf moves with it."""
        if self._masses is None:
            masses = np.zeros(len(self._lengths), dtype=np.float32)
            for slot, counts in self._docs.items():
                masses[slot] = self.idf_mass(counts)
            self._masses = masses
        return self._masses

    def _posting_arrays(self, term: str) -> tuple[Ints, Floats] | None:
        arrays = self._arrays.get(term)
        if arrays is None:
            posting = self._postings.get(term)
            if not posting:
                return None
            slots = np.fromiter(posting.keys(), dtype=np.int64, count=len(posting))
            tfs = np.fromiter(posting.values(), dtype=np.float32, count=len(posting))
            arrays = self._arrays[term] = (slots, tfs)
        return arrays

    def covered(self, query_terms: Iterable[str], share: float) -> list[int]:
        """The slots whose idf mass the distinct ``query_terms`` hold at least ``share`` of, in
        slot order. Looked up through each slot's rarest terms (its prefix: a query holding none
        of them misses more than ``1 - share`` of the slot's mass), so a query visits the few
        slots sharing a rare word with it, not every slot."""
        prefixes, idfs = self._prefixes_for(share)
        query = set(query_terms)
        candidates = {slot for term in query for slot in prefixes.get(term, ())}
        if not candidates:
            return []
        masses = self.doc_masses()
        # a slot needing more than the query's whole mass cannot be covered by it
        most = sum(idfs.get(term, 0.0) for term in query) + 1e-6
        found = []
        for slot in sorted(candidates):
            needed = share * float(masses[slot]) - 1e-6
            if needed <= most and sum(idfs[term] for term in self._docs[slot].keys() & query) >= needed:
                found.append(slot)
        return found

    def _prefixes_for(self, share: float) -> tuple[dict[str, list[int]], dict[str, float]]:
        """Slots by the terms of their prefix for ``share``, and each term's idf. Built on first
        use after a change of the set (every idf moves with it)."""
        if self._prefixes is None or self._prefixes[0] != share:
            idfs = {term: self.idf(term) for term in self._postings}
            prefixes: dict[str, list[int]] = {}
            for slot, counts in self._docs.items():
                rarest = sorted(counts, key=lambda term: (-idfs[term], term))
                # A query without the prefix misses its mass: the prefix must hold more than a
                # covering query may miss, rounding included (a query holding exactly ``share``
                # of the mass is covered: 4 of 5 like words at 0.8).
                allowed = (1.0 - share) * sum(idfs[term] for term in rarest) + _PREFIX_MARGIN
                held = 0.0
                for term in rarest:
                    prefixes.setdefault(term, []).append(slot)
                    held += idfs[term]
                    if held > allowed:
                        break
            self._prefixes = (share, prefixes, idfs)
        return self._prefixes[1], self._prefixes[2]

    def score(self, query_terms: Iterable[str], size: int) -> tuple[Floats, Floats]:
        """For every slot below ``size``: its BM25 score for the distinct ``query_terms``, and the
        idf mass of those terms it contains (both 0 for empty slots)."""
        bm25 = np.zeros(size, dtype=np.float32)
        matched = np.zeros(size, dtype=np.float32)
        if not self._docs:
            return bm25, matched
        avgdl = max(self._total_length / len(self._docs), 1.0)
        norm = self.k1 * (1.0 - self.b) + (self.k1 * self.b / avgdl) * self._lengths
        for term in set(query_terms):
            arrays = self._posting_arrays(term)
            if arrays is None:
                continue
            slots, tfs = arrays
            idf = self.idf(term)
            keep = slots < size
            if not keep.all():
                slots, tfs = slots[keep], tfs[keep]
            bm25[slots] += idf * tfs * (self.k1 + 1.0) / (tfs + norm[slots])
            matched[slots] += idf
        return bm25, matched
