"""The precise decision on a (sentence, claim) candidate: a calibrated score and agreement vetoes.

``Features`` are what the two retrieval stages and the agreement checks say about one candidate.
A ``FusionModel`` (logistic regression) turns them into a score in [0, 1], an estimate of the
probability that the sentence states the claim; ``decide`` accepts a candidate whose score
reaches the claim's threshold unless the figures contradict each other or the two name
different things (names spelt differently across languages, ISIS / Daech, are a known cost).

Two models: ``MONOLINGUAL`` for a sentence and a claim in one language (or of unknown
languages); ``CROSSLINGUAL`` for different languages, where shared words mean little: it leaves
out the lexical features and allows for the cosine a translation loses. ``VECTORS_ONLY`` (cosine
and quantities) stands in for ``MONOLINGUAL`` on a small watchlist, whose word statistics say
little (see ``ClaimMatcher``). All weights were fitted with ``fit_logistic`` on the train split of
CLEF 2020 CheckThat! task 2 (tweets against verified claims; candidates from both retrieval
stages; near-duplicates of a relevant claim counted relevant) and checked on its dev split, never
on test: ``benchmarks/bench_claims.py DATA_DIR --fit`` prints them.

Tweets alone teach a model that cries wolf on news: every CLEF tweet is about some claim, so
"on the claim's topic" was enough, and a news sentence that merely names the claim's people
("… said press secretary Stephanie Grisham" against "Stephanie Grisham got DUIs") scored 1.0.
``MONOLINGUAL`` and ``VECTORS_ONLY`` are therefore fitted with news negatives too (the
candidates of every title and check-worthy sentence of the 982 ECB+ articles, none of which
states a CLEF claim), and ``MONOLINGUAL`` weighs ``claim_coverage``, the share of the claim the
sentence covers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Threshold of a claim that sets none (``TrackedClaim.threshold``). ``bench_claims.py --fit``
#: prints, for the dev split, how many accepted candidates are right at this threshold.
DEFAULT_THRESHOLD = 0.4

FEATURES = ("cosine", "coverage", "bm25", "quantities", "years", "names", "claim_coverage")


@dataclass(frozen=True)
class Features:
    """What is known about one (sentence, claim) candidate.

    ``cosine``: dot product of the unit sentence vectors (-1..1). ``coverage``: share of the
    sentence's idf mass found in the claim (0..1). ``bm25``: BM25 score over the sentence's idf
    mass (0..k1+1). ``claim_coverage``: share of the claim's idf mass found in the sentence
    (0..1): a news sentence that names the claim's subject without stating it covers little of
    the claim. ``quantities`` / ``years``: +1 agree, -1 contradict, 0 one side states none.
    ``names``: share of the claim's names the sentence names, 0 when a side names nothing;
    ``names_known`` says whether both did.
    """

    cosine: float
    coverage: float
    bm25: float
    quantities: float
    years: float
    names: float
    names_known: bool
    claim_coverage: float

    def vector(self) -> list[float]:
        """The values in ``FEATURES`` order."""
        return [
            self.cosine,
            self.coverage,
            self.bm25,
            self.quantities,
            self.years,
            self.names,
            self.claim_coverage,
        ]


@dataclass(frozen=True)
class FusionModel:
    """Logistic regression over ``FEATURES``: ``sigmoid(bias + weights · features)``, the cosine
    first raised by ``cosine_shift``."""

    weights: tuple[float, ...]
    bias: float
    cosine_shift: float = 0.0

    def logit(self, features: Features) -> float:
        """The linear part: ``bias + weights · features`` (log-odds of a match)."""
        values = features.vector()
        values[0] += self.cosine_shift
        return self.bias + sum(w * x for w, x in zip(self.weights, values, strict=True))

    def score(self, features: Features) -> float:
        """Calibrated score of one candidate, in [0, 1]."""
        return sigmoid(self.logit(features))


def sigmoid(z: float) -> float:
    """The logistic function, clipped against overflow."""
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


#: Fitted on CLEF 2020 CheckThat! task 2, train split, with news negatives (see the module doc):
#: cosine, BM25, quantities and the share of the claim the sentence covers.
MONOLINGUAL = FusionModel(weights=(11.8332, 0.0, 5.4241, 0.5665, 0.0, 0.0, 18.1965), bias=-13.9677)
#: The tweets alone (the news negatives are English, like the claims), without the lexical
#: features: cosine, quantities, years and names. The encoder puts a sentence and its
#: translation a little further apart than two wordings in one language: ``CROSSLINGUAL_SHIFT``
#: is that gap (English paraphrase vs its French translation, mean over hand-written triples;
#: ``tests/test_matching.py`` measures it again).
CROSSLINGUAL_SHIFT = 0.055
CROSSLINGUAL = FusionModel(
    weights=(16.2942, 0.0, 0.0, 1.877, 1.0638, 3.1242, 0.0), bias=-11.7784, cosine_shift=CROSSLINGUAL_SHIFT
)
#: The data of ``MONOLINGUAL``, cosine and quantities only: the stand-in for ``MONOLINGUAL`` while
#: the watchlist is too small for word statistics.
VECTORS_ONLY = FusionModel(weights=(23.2701, 0.0, 0.0, 1.5068, 0.0, 0.0, 0.0), bias=-15.446)


def decide(score: float, threshold: float, features: Features) -> bool:
    """Accept a candidate: score at the threshold, quantities not contradicting, and at least one
    shared name when both sides name something."""
    if score < threshold or features.quantities < 0:
        return False
    return not (features.names_known and features.names == 0.0)


def fit_logistic(
    rows: Sequence[Sequence[float]], labels: Sequence[bool], l2: float = 1e-2, iterations: int = 50
) -> FusionModel:
    """L2-regularised logistic regression by Newton's method: the model that fits ``labels``."""
    x = np.hstack([np.asarray(rows, dtype=np.float64), np.ones((len(rows), 1))])
    y = np.asarray(labels, dtype=np.float64)
    w: npt.NDArray[np.float64] = np.zeros(x.shape[1])
    ridge = l2 * np.eye(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + l2 * w
        hessian = (x * (p * (1.0 - p))[:, None]).T @ x + ridge
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return FusionModel(weights=tuple(round(float(v), 4) for v in w[:-1]), bias=round(float(w[-1]), 4))
