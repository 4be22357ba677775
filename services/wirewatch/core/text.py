"""Text normalisation, the same everywhere: hashing, comparison and matching all use it."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2033": '"',
        "\u2039": "'",
        "\u203a": "'",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u2026": "...",
    }
)
# Every Unicode space (no-break, thin, narrow no-break, ideographic, …) and zero-width marks.
_SPACES = re.compile(r"[\s\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_ZERO_WIDTH = re.compile(r"[\u200b-\u200d\u2060\ufeff\u00ad]")
# Digit groups split by a space, dot, comma or apostrophe into thousands: 5 000, 5.000, 5,000.
_THOUSANDS = re.compile(r"(?<![\d.,])(\d{1,3})(?:[ .,'](\d{3}))+(?![\d]|[.,]\d)")


def _join_thousands(match: re.Match[str]) -> str:
    return re.sub(r"[ .,']", "", match.group(0))


def normalise(text: str) -> str:
    """Canonical form for comparison: NFC, plain quotes and dashes, one space, lower case,
    thousands separators removed (``5 000``, ``5.000`` and ``5,000`` all become ``5000``).
    Accents are kept (French ``côte`` and ``cote`` differ). Idempotent."""
    # Zero-width marks go before NFC (removing one can bring a letter and a combining mark
    # together), and NFC runs again after casefold (which can decompose: ß + ◌́ -> ss + ◌́).
    text = _ZERO_WIDTH.sub("", text)
    text = unicodedata.normalize("NFC", text)
    text = text.translate(_QUOTES)
    text = _SPACES.sub(" ", text).strip()
    text = _THOUSANDS.sub(_join_thousands, text)
    return unicodedata.normalize("NFC", text.casefold())


def content_hash(text: str) -> str:
    """Same normalised text, same hash: the exact-duplicate key."""
    return hashlib.sha256(normalise(text).encode("utf-8", "surrogatepass")).hexdigest()
