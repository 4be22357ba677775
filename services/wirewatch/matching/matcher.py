"""``ClaimMatcher``: the watchlist of tracked claims, matched against sentences in process.

One matcher holds every active claim twice: as a row of a numpy matrix of unit sentence vectors
(``wirewatch.core.vectors``) and as a document of an incremental BM25 index (``lexical``).
Matching a batch of sentences (an article's title, check-worthy sentences and any sentence
``restating`` a claim) is:

1. one encoder call for the batch, then one matrix product against every claim (exact search:
   at 20,000 claims x 512 float32 that is 41 MB and about 10 ms per article of 15 sentences);
2. candidates per sentence: the ``candidates`` nearest claims by vector, and as many by BM25;
3. per candidate, the ``decision`` features (cosine, lexical coverage, BM25, figures and names
   agreement) and the calibrated score of the fusion model (the cross-lingual one as well when
   the sentence and the claim are known to be in different languages; the higher score counts).
   Word statistics of a watchlist under ``MIN_DOCS`` claims are weak (with three claims, any
   shared word looks rare), so there the monolingual model's log-odds are blended with those of
   the vectors-only model, in proportion to the watchlist's size;
4. ranking by score (ties: the claim added first), then ``decide`` against the claim's threshold.

``match`` (the stream) wants accepted candidates only, so it first bounds each candidate's
log-odds from its cosine, coverage and BM25 alone, the agreement features at their best, and
scores in full only the candidates whose bound reaches their claim's threshold: most of an
unrelated article's candidates stop there, before the figures and names are compared. The
matches are the same (``tests/test_matching.py`` checks it against ``rank``). ``match`` also
remembers the accepted matches of its last ``MATCH_CACHE_SIZE`` sentences for the watchlist as it
is, and ``restating`` its answers for the last ``RESTATING_CACHE_SIZE`` (sentences up to
``REMEMBERED_SENTENCE_CHARS`` long): a wire copy's sentences, seen minutes before, are not matched
again. Any change to the watchlist forgets them all.

Claims can be added, replaced and removed at any time (``upsert`` / ``remove``); the next call
sees the change. Methods are thread-safe.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from wirewatch.core.models import TrackedClaim
from wirewatch.core.recent import RecentResults
from wirewatch.core.vectors import DIM, SentenceEncoder, Vectors, get_encoder
from wirewatch.matching import lexical
from wirewatch.matching.agreement import Figures, compare_figures, compare_names, figures, names
from wirewatch.matching.decision import (
    CROSSLINGUAL,
    DEFAULT_THRESHOLD,
    MONOLINGUAL,
    VECTORS_ONLY,
    Features,
    FusionModel,
    decide,
    sigmoid,
)

#: Candidates taken per sentence from each stage (vectors, BM25) before the decision.
CANDIDATES = 30
#: Collection-size floor of the BM25 idf (see ``LexicalIndex``).
MIN_DOCS = 1000
#: Terms a sentence is taken to have at least when its lexical coverage is computed.
MIN_TERMS = 8
#: Sentences whose accepted matches ``match`` remembers (most have none: a few hundred bytes each).
MATCH_CACHE_SIZE = 8192
#: A sentence restates a claim (``restating``) when it holds at least this share of the claim's
#: idf mass: the claim's words, nearly all, whatever else the sentence says.
RESTATED_COVERAGE = 0.8
#: Sentences whose ``restating`` answer is remembered: every sentence of an article is asked
#: (about 40), so this covers the last few hundred articles, where a wire copy's come from.
RESTATING_CACHE_SIZE = 16384
#: Longer sentences are matched and checked every time, not remembered: a page without full
#: stops is one "sentence", and thousands of those would hold their whole texts in memory.
REMEMBERED_SENTENCE_CHARS = 2000

# What the vectors should not see: links, and the byline a quoted tweet ends with
# ("— Jane Doe (@jane) May 4, 2019"); the lexical stage keeps the byline's names.
_URL = re.compile(r"https?://\S+|\bpic\.twitter\.com/\S+", re.IGNORECASE)
_BYLINE = re.compile(r"\s[\u2014\u2013-]\s[^\u2014\u2013\n]{0,80}\(@\w+\)\s+\w+\.? \d{1,2}, \d{4}\s*$")


def vector_text(text: str) -> str:
    """The part of ``text`` that is embedded: without links and a trailing tweet byline."""
    return _URL.sub(" ", _BYLINE.sub(" ", text)).strip()


def claim_text(claim: TrackedClaim) -> str:
    """All the words of a claim: its text, then its keywords (phrases, paraphrases, a title)."""
    return " ".join([claim.text, *claim.keywords]).strip()


def _language(code: str | None) -> str | None:
    if not code:
        return None
    primary = code.replace("_", "-").split("-")[0].lower()
    return None if primary in ("", "und") else primary


@dataclass(frozen=True)
class Match:
    """One claim found for one sentence: which, how sure, and whether it is accepted."""

    claim_id: str
    score: float  # calibrated, in [0, 1]
    accepted: bool  # score >= threshold and the agreement checks pass
    threshold: float
    sentence: int  # index of the sentence in the batch given
    features: Features


@dataclass(frozen=True)
class _Entry:
    claim: TrackedClaim
    text: str  # claim_text(claim)
    language: str | None
    slot: int
    figures: Figures
    names: frozenset[str]


class ClaimMatcher:
    """Tracked claims in memory, matched against sentences (see the module doc)."""

    def __init__(
        self,
        encoder: SentenceEncoder | None = None,
        *,
        default_threshold: float = DEFAULT_THRESHOLD,
        candidates: int = CANDIDATES,
        monolingual: FusionModel = MONOLINGUAL,
        crosslingual: FusionModel = CROSSLINGUAL,
        vectors_only: FusionModel = VECTORS_ONLY,
        match_cache_size: int = MATCH_CACHE_SIZE,
    ) -> None:
        self.encoder = encoder or get_encoder()
        self.default_threshold = default_threshold
        self.candidates = candidates
        self.monolingual = monolingual
        self.crosslingual = crosslingual
        self.vectors_only = vectors_only
        self._lock = threading.RLock()
        self._lexical = lexical.LexicalIndex(min_docs=MIN_DOCS)
        self._vectors: Vectors = np.zeros((0, DIM), dtype=np.float32)
        self._active = np.zeros(0, dtype=bool)
        self._entries: list[_Entry | None] = []
        self._by_id: dict[str, _Entry] = {}
        self._free: list[int] = []
        # Accepted matches by (watchlist generation, language, sentence); any change to the
        # watchlist starts a new generation and forgets them.
        self._generation = 0
        self._recent: RecentResults[tuple[int, str | None, str], tuple[Match, ...]] = RecentResults(
            "matches", match_cache_size
        )
        self._restated: RecentResults[tuple[int, str], bool] = RecentResults(
            "restating", RESTATING_CACHE_SIZE
        )

    # --- the watchlist -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, claim_id: object) -> bool:
        return claim_id in self._by_id

    def get(self, claim_id: str) -> TrackedClaim | None:
        """The tracked claim ``claim_id``, if on the watchlist."""
        entry = self._by_id.get(claim_id)
        return entry.claim if entry else None

    def claims(self) -> list[TrackedClaim]:
        """Every claim on the watchlist, in the order they were added."""
        with self._lock:
            return [e.claim for e in self._entries if e is not None]

    def vectors(self, claim_ids: Sequence[str]) -> Vectors:
        """The stored unit vectors of ``claim_ids`` (rows in that order; all on the watchlist)."""
        with self._lock:
            return self._vectors[[self._by_id[c].slot for c in claim_ids]].copy()

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the vector matrix (the bulk of the index at scale)."""
        return int(self._vectors.nbytes + self._active.nbytes)

    def upsert(self, claim: TrackedClaim) -> None:
        """Add ``claim``, or replace the claim with its id; an inactive claim is removed."""
        self.upsert_many([claim])

    def upsert_many(self, claims: Iterable[TrackedClaim]) -> None:
        """``upsert`` for many claims, embedded in one batch (loading a watchlist)."""
        batch: dict[str, TrackedClaim] = {}
        for claim in claims:
            batch[claim.id] = claim
        if not batch:
            return
        live = [c for c in batch.values() if c.active]
        texts = [claim_text(c) for c in live]
        vectors = self.encoder.encode([vector_text(t) for t in texts], remember=False) if live else None
        with self._lock:
            self._changed()
            for claim in batch.values():
                if not claim.active:
                    self._remove(claim.id)
            new = sum(c.id not in self._by_id for c in live)
            self._reserve(len(self._entries) + max(0, new - len(self._free)))
            for i, claim in enumerate(live):
                assert vectors is not None
                self._put(claim, texts[i], vectors[i])

    def remove(self, claim_id: str) -> bool:
        """Take ``claim_id`` off the watchlist; whether it was on it."""
        with self._lock:
            removed = self._remove(claim_id)
            if removed:
                self._changed()
            return removed

    def _changed(self) -> None:
        """The watchlist changes: matches remembered so far no longer hold."""
        self._generation += 1
        self._recent.clear()
        self._restated.clear()

    def _put(self, claim: TrackedClaim, text: str, vector: Vectors) -> None:
        old = self._by_id.get(claim.id)
        if old is not None:
            slot = old.slot
        elif self._free:
            slot = self._free.pop()
        else:
            slot = len(self._entries)
            self._entries.append(None)
            self._grow(slot + 1)
        entry = _Entry(claim, text, _language(claim.language), slot, figures(text), names(text))
        self._entries[slot] = entry
        self._by_id[claim.id] = entry
        self._vectors[slot] = vector
        self._active[slot] = True
        self._lexical.add(slot, lexical.terms(text))

    def _remove(self, claim_id: str) -> bool:
        entry = self._by_id.pop(claim_id, None)
        if entry is None:
            return False
        self._entries[entry.slot] = None
        self._vectors[entry.slot] = 0.0
        self._active[entry.slot] = False
        self._lexical.remove(entry.slot)
        self._free.append(entry.slot)
        return True

    def _grow(self, size: int) -> None:
        if size > len(self._vectors):
            self._reserve(max(size, len(self._vectors) + len(self._vectors) // 2, 256))

    def _reserve(self, capacity: int) -> None:
        """Room for ``capacity`` slots (a bulk load asks for exactly what it needs)."""
        if capacity <= len(self._vectors):
            return
        vectors = np.zeros((capacity, DIM), dtype=np.float32)
        vectors[: len(self._vectors)] = self._vectors
        active = np.zeros(capacity, dtype=bool)
        active[: len(self._active)] = self._active
        self._vectors, self._active = vectors, active

    # --- matching ------------------------------------------------------------------------------

    def restating(self, sentences: Sequence[str]) -> list[bool]:
        """For each sentence, whether it holds nearly all the words of some tracked claim (at
        least ``RESTATED_COVERAGE`` of the claim's idf mass). Words only, no vectors: cheap
        enough for every sentence of an article, to pick the few worth ``match``-ing beyond its
        check-worthy ones (a claim quoted in a sentence the enricher did not find check-worthy)."""
        generation = self._generation

        def covered(keys: list[tuple[int, str]]) -> list[bool]:
            queries = [lexical.terms(text) for _, text in keys]
            with self._lock:
                return [bool(self._lexical.covered(q, RESTATED_COVERAGE)) for q in queries]

        found = self._restated.get_many(
            ((generation, text) for text in sentences), covered, remember=_short_enough
        )
        return [found[(generation, text)] for text in sentences]

    def search(self, query: str, top: int = 5, language: str | None = None) -> list[Match]:
        """The ``top`` claims for ``query``, best first, accepted or not (retrieval, evaluation)."""
        return self.rank([query], top, language)[0]

    def match(self, sentences: Sequence[str], top: int = 5, language: str | None = None) -> list[list[Match]]:
        """For each sentence, its accepted matches (at most ``top``), best first."""
        lang = _language(language)
        generation = self._generation

        def accepted(keys: list[tuple[int, str | None, str]]) -> list[tuple[Match, ...]]:
            ranked = self._rank([text for _, _, text in keys], None, language, accepted_only=True)
            return [tuple(m for m in matches if m.accepted) for matches in ranked]

        found = self._recent.get_many(
            ((generation, lang, text) for text in sentences), accepted, remember=_short_enough
        )
        return [
            [replace(m, sentence=i) if m.sentence != i else m for m in found[(generation, lang, text)][:top]]
            for i, text in enumerate(sentences)
        ]

    def rank(
        self, sentences: Sequence[str], top: int | None = 5, language: str | None = None
    ) -> list[list[Match]]:
        """For each sentence, every candidate claim scored and ranked (the first ``top``)."""
        return self._rank(sentences, top, language, accepted_only=False)

    def _rank(
        self, sentences: Sequence[str], top: int | None, language: str | None, *, accepted_only: bool
    ) -> list[list[Match]]:
        if not sentences:
            return []
        queries = self.encoder.encode([vector_text(s) for s in sentences])
        lang = _language(language)
        with self._lock:
            size = len(self._entries)
            if not self._by_id:
                return [[] for _ in sentences]
            # the claims' matrix on the left: BLAS then streams it once for a few sentences
            # (1.0 against 1.9 ms for 8 sentences and 5,000 claims; the same products)
            sims = np.ascontiguousarray((self._vectors[:size] @ queries.T).T)
            sims[:, ~self._active[:size]] = -np.inf
            # each claim's own idf mass, with the sentences' floor: the denominator of claim_coverage
            claim_mass = np.maximum(
                self._lexical.doc_masses()[:size], MIN_TERMS * self._lexical.idf_of_count(1)
            )
            return [
                self._rank_one(i, s, sims[i], claim_mass, size, lang, top, accepted_only)
                for i, s in enumerate(sentences)
            ]

    def _rank_one(
        self,
        index: int,
        sentence: str,
        sims: Vectors,
        claim_mass: npt.NDArray[np.floating[Any]],
        size: int,
        language: str | None,
        top: int | None,
        accepted_only: bool,
    ) -> list[Match]:
        query_terms = lexical.terms(sentence)
        bm25, matched = self._lexical.score(query_terms, size)
        # a short sentence is weighed as if it had MIN_TERMS terms: three words of five in common
        # are less evidence than fifteen of twenty-five
        mass = max(self._lexical.idf_mass(query_terms), MIN_TERMS * self._lexical.idf_of_count(1))
        k = min(self.candidates, len(self._by_id))
        slots = set(np.argpartition(-sims, k - 1)[:k].tolist())
        lexical_hits = np.flatnonzero(bm25)
        if len(lexical_hits) > k:
            lexical_hits = lexical_hits[np.argpartition(-bm25[lexical_hits], k - 1)[:k]]
        slots.update(lexical_hits.tolist())
        trust = min(1.0, len(self._by_id) / MIN_DOCS)
        if accepted_only:
            slots = self._may_reach_threshold(
                sorted(slots), sims, matched, bm25, claim_mass, mass, trust, language
            )
            if not slots:
                return []
        sentence_figures, sentence_names = figures(sentence), names(sentence)
        matches: list[tuple[float, int, Match]] = []
        for slot in slots:
            entry = self._entries[slot]
            if entry is None:
                continue
            numbers = compare_figures(sentence_figures, entry.figures)
            shared = compare_names(sentence_names, entry.names)
            features = Features(
                cosine=float(sims[slot]),
                coverage=float(matched[slot]) / mass,
                bm25=float(bm25[slot]) / mass,
                quantities=_sign(numbers.quantities),
                years=_sign(numbers.years),
                names=shared or 0.0,
                names_known=shared is not None,
                claim_coverage=float(matched[slot] / claim_mass[slot]),  # as in the bound
            )
            logit = trust * self.monolingual.logit(features)
            if trust < 1.0:
                logit += (1.0 - trust) * self.vectors_only.logit(features)
            if language and entry.language and language != entry.language:
                logit = max(logit, self.crosslingual.logit(features))
            score = sigmoid(logit)
            threshold = entry.claim.threshold
            if threshold is None:
                threshold = self.default_threshold
            match = Match(
                entry.claim.id, score, decide(score, threshold, features), threshold, index, features
            )
            matches.append((-score, slot, match))
        matches.sort(key=lambda item: (item[0], item[1]))
        return [m for _, _, m in matches[:top]] if top is not None else [m for _, _, m in matches]

    def _may_reach_threshold(
        self,
        slots: list[int],
        sims: Vectors,
        matched: npt.NDArray[np.floating[Any]],
        bm25: npt.NDArray[np.floating[Any]],
        claim_mass: npt.NDArray[np.floating[Any]],
        mass: float,
        trust: float,
        language: str | None,
    ) -> set[int]:
        """The candidates whose score could reach their claim's threshold: each model's log-odds
        from the known features, with the figures and names at their best."""
        at = np.asarray(slots, dtype=np.intp)
        cosine = sims[at].astype(np.float64)
        coverage = matched[at] / mass
        bm = bm25[at] / mass
        claim_cov = matched[at] / claim_mass[at]

        def bound(model: FusionModel) -> npt.NDArray[np.float64]:
            w = model.weights
            best_agreement = abs(w[3]) + abs(w[4]) + max(w[5], 0.0)
            known = w[0] * (cosine + model.cosine_shift) + w[1] * coverage + w[2] * bm + w[6] * claim_cov
            return np.asarray(model.bias + known + best_agreement, dtype=np.float64)

        logit = trust * bound(self.monolingual)
        if trust < 1.0:
            logit += (1.0 - trust) * bound(self.vectors_only)
        crosslingual = bound(self.crosslingual) if language else None
        keep: set[int] = set()
        for i, slot in enumerate(slots):
            entry = self._entries[slot]
            if entry is None:
                continue
            best = float(logit[i])
            if crosslingual is not None and entry.language and language != entry.language:
                best = max(best, float(crosslingual[i]))
            threshold = entry.claim.threshold
            if threshold is None:
                threshold = self.default_threshold
            if threshold <= 0.0 or threshold >= 1.0 or best >= _logit(threshold) - 1e-9:
                keep.add(slot)
        return keep


def _short_enough(key: tuple[Any, ...]) -> bool:
    """Whether a sentence (the last item of a cache key) is short enough to be remembered."""
    return len(key[-1]) <= REMEMBERED_SENTENCE_CHARS


@functools.lru_cache(maxsize=256)
def _logit(p: float) -> float:
    """The log-odds of a threshold (claims share a few thresholds: computed once each)."""
    return math.log(p / (1.0 - p))


def _sign(agreement: bool | None) -> float:
    return 0.0 if agreement is None else (1.0 if agreement else -1.0)
