"""The entities of a spaCy 3.8 NER pipe, decoded in numpy: ``nlp(text).ents``, at half the cost.

spaCy's NER (``spacy.TransitionBasedParser.v2``, the architecture of ``fr_core_news_md`` and
``en_core_web_sm``) reads a doc token by token. Before the first step its encoder turns every
token into a vector and precomputes, for each token, its contribution to each of the three
features of a state (``Yf``: row 0 is the padding used for a missing feature). Then, one token
at a time, it sums the three feature vectors of the state, takes the maxout and scores every
move (``B-``, ``I-``, ``L-``, ``U-`` of each label and ``O``), asks every move whether it is
valid in the state and applies the best valid one. Asking every move (74 of them in English)
at every token is a C loop that took 40 % of the model's time on a 1,000-char text.

On a doc straight from the tokenizer (no preset entities) the rules reduce to two states:

* outside an entity the features are (token, none, none): they depend on the token alone, so
  the scores of that state are computed for every token at once, in one matrix product.
  Valid there: ``O``; ``U-X`` unless the token is white space; ``B-X`` unless the token is
  white space, the last one, or the next token starts a sentence;
* inside an entity labelled X the features are (token, first token of the entity, previous
  token), computed per step; valid are only ``L-X`` and ``I-X`` (not on the last token, nor
  when the next one starts a sentence).

The arithmetic is spaCy's, in the same order, with the same BLAS (blis) for the scores, and
ties go to the lower move as in spaCy: the entities are the same (tests compare the two).
``GreedyNer.for_pipeline`` returns None for a pipeline it does not recognise (another
architecture, a beam, presets, unseen classes), and the caller then runs spaCy itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from thinc.api import NumpyOps

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

__all__ = ["GreedyNer"]

# spaCy computes a state's scores with thinc's CBlas, which is blis whatever the model's ops.
_BLIS = NumpyOps(use_blis=True)


class GreedyNer:
    """Decoder for the ``ner`` pipe of one pipeline; call it on a doc from ``nlp.make_doc``."""

    def __init__(self, ner: Any) -> None:
        model = ner.model
        self._tok2vec = model.get_ref("tok2vec")
        self._lower = model.get_ref("lower")
        upper = model.get_ref("upper")
        self._weights = np.ascontiguousarray(upper.get_param("W"), dtype=np.float32)
        self._scores_bias = upper.get_param("b")
        self._bias = self._lower.get_param("b").reshape(-1)
        self._hidden = int(self._lower.get_dim("nO"))
        self._pieces = int(self._lower.get_dim("nP"))
        names = [str(ner.moves.get_class_name(i)) for i in range(ner.moves.n_moves)]
        self._labels = [name.partition("-")[2] for name in names]
        self._out = np.array([name == "O" for name in names])
        self._begin = np.array([name.startswith("B-") and len(name) > 2 for name in names])
        self._unit = np.array([name.startswith("U-") and len(name) > 2 for name in names])
        self._in = {name[2:]: i for i, name in enumerate(names) if name.startswith("I-") and len(name) > 2}
        self._last = {name[2:]: i for i, name in enumerate(names) if name.startswith("L-") and len(name) > 2}

    @classmethod
    def for_pipeline(cls, nlp: Language) -> GreedyNer | None:
        """The decoder of ``nlp``'s ``ner`` pipe, or None when its model is not one this
        module knows how to decode exactly."""
        if "ner" not in nlp.pipe_names:
            return None
        ner: Any = nlp.get_pipe("ner")
        model = ner.model
        try:
            names = [str(ner.moves.get_class_name(i)) for i in range(ner.moves.n_moves)]
            known = all(
                name in ("O", "U-") or (name[:2] in ("B-", "I-", "L-", "U-") and len(name) > 2)
                for name in names
            )
            labels = {name[2:] for name in names if len(name) > 2}
            ok = (
                known
                and all(f"{move}-{label}" in names for label in labels for move in "BILU")
                and names.count("O") == 1
                and ner.cfg.get("beam_width", 1) == 1
                and model.attrs.get("has_upper") is True
                and not model.attrs.get("unseen_classes")
                and model.get_ref("lower").get_dim("nF") == 3
                and model.get_ref("upper").get_param("W").shape
                == (len(names), model.get_ref("lower").get_dim("nO"))
            )
        except (AttributeError, KeyError, ValueError):
            return None
        return cls(ner) if ok else None

    def __call__(self, doc: Doc) -> list[tuple[int, int, str]]:
        """Entities of ``doc`` as (first token, end token, label), in text order."""
        n = len(doc)
        if n == 0:
            return []
        from spacy.attrs import IS_SPACE, SENT_START

        features = self._lower.predict(self._tok2vec.predict([doc]))  # (n + 1, 3, hidden, pieces)
        y = features.reshape(n + 1, 3, self._hidden * self._pieces)
        attrs = doc.to_array([SENT_START, IS_SPACE])
        space = attrs[:, 1].astype(bool)
        next_starts = np.zeros(n, dtype=bool)
        next_starts[:-1] = attrs[1:, 0] == 1
        not_last = np.arange(n) < n - 1

        # Outside an entity, at every token at once.
        closed = self._scores(((y[1:, 0] + y[0, 1]) + y[0, 2]) + self._bias)
        valid = (
            self._out[None, :]
            | (self._unit[None, :] & ~space[:, None])
            | (self._begin[None, :] & (not_last & ~next_starts & ~space)[:, None])
        )
        guesses = np.where(valid, closed, -np.inf).argmax(axis=1).tolist()

        entities: list[tuple[int, int, str]] = []
        b = 0
        while b < n:
            move = guesses[b]
            if self._out[move]:
                b += 1
                continue
            label = self._labels[move]
            if self._unit[move]:
                entities.append((b, b + 1, label))
                b += 1
                continue
            start, b = b, b + 1  # B-label: inside the entity from the next token on
            inside, last = self._in[label], self._last[label]
            while True:
                scores = self._scores(((y[b + 1, 0] + y[start + 1, 1]) + y[b, 2]) + self._bias)[0]
                can_go_on = b + 1 < n and not next_starts[b]
                if can_go_on and (
                    scores[inside] > scores[last] or (scores[inside] == scores[last] and inside < last)
                ):
                    b += 1
                    continue
                entities.append((start, b + 1, label))
                b += 1
                break
        return entities

    def _scores(self, unmaxed: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Scores of every move for the summed features ``unmaxed`` (one row per state)."""
        # The max over the maxout pieces, one piece at a time: numpy's reduction over a short
        # last axis is ~25 times slower than elementwise maxima (0.7 ms against 27 us for a
        # 300-token doc), and a max is exact either way.
        pieces = unmaxed.reshape(-1, self._hidden, self._pieces)
        hidden = pieces[..., 0]
        for piece in range(1, self._pieces):
            hidden = np.maximum(hidden, pieces[..., piece])
        scores: npt.NDArray[np.float32] = _BLIS.gemm(np.ascontiguousarray(hidden), self._weights, trans2=True)
        scores += self._scores_bias
        return scores
