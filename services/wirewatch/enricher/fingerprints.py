"""Winnowed shingle fingerprints of a text, with where each one sits in the text.

A text becomes words (normalised with :func:`wirewatch.core.text.normalise`, so ``5 000`` and
``5,000`` are one word), the words overlapping runs of ``SHINGLE_WORDS`` (shingles), each
shingle a 32-bit hash, and winnowing (Schleimer, Wilkerson & Aiken, 2003) keeps the smallest
hash of every window of ``WINDOW`` consecutive shingles. Two texts that share a run of at least
``SHINGLE_WORDS + WINDOW - 1`` words are guaranteed to share a fingerprint there, and a text
keeps about ``2 / (WINDOW + 1)`` of its shingles: a 5 KB article has ~75 fingerprints.

Every fingerprint keeps the char offsets of its shingle, so that matches between two texts
can be turned into passages of the original text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from wirewatch.core.text import normalise

#: Words per shingle.
SHINGLE_WORDS = 5
#: Shingles per winnowing window.
WINDOW = 20
#: Shared runs at least this long (in words) always produce a shared fingerprint.
GUARANTEED_WORDS = SHINGLE_WORDS + WINDOW - 1

# A word: letters/digits with their combining marks and in-word soft hyphens or zero-width
# marks, or a number written with thousands separators (5 000, 5.000, 5,000, 5'000).
_WORD = re.compile(r"\d{1,3}(?:[ .,'\u00a0\u202f]\d{3})+(?![\d])|[\w\u0300-\u036f\u00ad\u200b-\u200d\u2060]+")
_U64 = np.uint64
# Multipliers of a polynomial hash over the hashes of a shingle's words (odd 64-bit constants).
_POLY = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD],
    dtype=_U64,
)[:SHINGLE_WORDS]

Array = npt.NDArray[np.uint32]


@dataclass(frozen=True, slots=True)
class Words:
    """The words of a text: normalised hashes and their char spans in the original text."""

    hashes: npt.NDArray[np.uint64]
    starts: npt.NDArray[np.uint32]
    ends: npt.NDArray[np.uint32]

    def __len__(self) -> int:
        return len(self.hashes)


@dataclass(frozen=True, slots=True)
class Fingerprints:
    """Winnowed fingerprints of one text, in text order.

    ``hashes[i]`` is the hash of the shingle of words ``word_index[i] .. + SHINGLE_WORDS``,
    which covers ``text[starts[i]:ends[i]]``.
    """

    hashes: Array
    starts: Array
    ends: Array
    word_index: Array
    words: Words

    def __len__(self) -> int:
        return len(self.hashes)


@lru_cache(maxsize=200_000)
def _word_hash(word: str) -> int:
    key = normalise(word).replace("\u00ad", "")
    return int.from_bytes(
        hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little"
    )


def words(text: str) -> Words:
    """Split ``text`` into normalised words with their char spans."""
    hashes: list[int] = []
    spans: list[tuple[int, int]] = []
    for m in _WORD.finditer(text):
        hashes.append(_word_hash(m.group()))
        spans.append(m.span())
    bounds = np.array(spans, dtype=np.uint32).reshape(-1, 2)
    return Words(np.array(hashes, dtype=_U64), bounds[:, 0].copy(), bounds[:, 1].copy())


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """A 64-bit finaliser (splitmix64), so that the polynomial's low bits are well spread."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U64(30))
        x = x * _U64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> _U64(27))
        x = x * _U64(0x94D049BB133111EB)
        return x ^ (x >> _U64(31))


def shingle_hashes(w: Words) -> Array:
    """32-bit hash of every run of ``SHINGLE_WORDS`` consecutive words."""
    n = len(w) - SHINGLE_WORDS + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint32)
    acc = np.zeros(n, dtype=_U64)
    with np.errstate(over="ignore"):
        for j in range(SHINGLE_WORDS):
            acc += w.hashes[j : j + n] * _POLY[j]
    return (_mix(acc) >> _U64(32)).astype(np.uint32)


def winnow(hashes: Array, window: int = WINDOW) -> npt.NDArray[np.intp]:
    """Positions kept by winnowing: the rightmost minimum of every window, each once."""
    n = len(hashes)
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    if n <= window:
        return np.array([n - 1 - int(np.argmin(hashes[::-1]))], dtype=np.intp)
    windows = np.lib.stride_tricks.sliding_window_view(hashes, window)
    rightmost = window - 1 - np.argmin(windows[:, ::-1], axis=1)
    picked = rightmost + np.arange(len(windows))
    return np.unique(picked)


def fingerprint(text: str) -> Fingerprints:
    """The winnowed fingerprints of ``text``."""
    w = words(text)
    shingles = shingle_hashes(w)
    picked = winnow(shingles)
    last_word = picked + SHINGLE_WORDS - 1
    return Fingerprints(
        hashes=shingles[picked],
        starts=w.starts[picked],
        ends=w.ends[last_word] if len(picked) else np.zeros(0, dtype=np.uint32),
        word_index=picked.astype(np.uint32),
        words=w,
    )
