"""Text normalisation, the same everywhere: hashing, comparison and matching all use it."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Typographic quotes, primes, dashes and the ellipsis, as their plain forms.
_PLAIN: dict[str, str] = {
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
# One regex for the chars of _PLAIN: a text has few of them, and str.translate with a table
# looks up every char (ten times slower on an article).
_TYPOGRAPHIC = re.compile("[" + re.escape("".join(_PLAIN)) + "]")
_ZERO_WIDTH = re.compile(r"[\u200b-\u200d\u2060\ufeff\u00ad]")
# Digit groups split by a space, dot, comma or apostrophe into thousands: 5 000, 5.000, 5,000.
# The pattern starts with a digit (not with the look-behind that says no digit, dot or comma
# comes before it) so that the regex engine skips ahead to digits.
_THOUSANDS = re.compile(r"\d(?<![\d.,]\d)\d{0,2}(?:[ .,']\d{3})+(?![\d]|[.,]\d)")


def _plain(match: re.Match[str]) -> str:
    return _PLAIN[match.group()]


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
    text = _TYPOGRAPHIC.sub(_plain, text)
    # Every Unicode space (no-break, thin, narrow no-break, ideographic, ...) is white space
    # to str.split, as to the regex \s.
    text = " ".join(text.split())
    text = _THOUSANDS.sub(_join_thousands, text)
    return unicodedata.normalize("NFC", text.casefold())


def content_hash(text: str) -> str:
    """Same normalised text, same hash: the exact-duplicate key."""
    return hashlib.sha256(normalise(text).encode("utf-8", "surrogatepass")).hexdigest()
