"""Tracked-claim matching: find a watched claim in new sentences, in any wording or language.

``ClaimMatcher`` (``matcher``) fuses sentence vectors (``wirewatch.core.vectors``) with BM25
(``lexical``), then scores and checks each candidate (``agreement``, ``decision``).
"""

from wirewatch.matching.decision import DEFAULT_THRESHOLD, Features
from wirewatch.matching.matcher import ClaimMatcher, Match

__all__ = ["DEFAULT_THRESHOLD", "ClaimMatcher", "Features", "Match"]
