"""Text normalisation and content hashes, and language detection."""

from __future__ import annotations

import random
import re
import unicodedata
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from wirewatch.core.text import content_hash, normalise
from wirewatch.enricher import language as language_module
from wirewatch.enricher.language import MIN_CONFIDENCE, UNDETERMINED, Language, detect_language

SETTINGS = settings(max_examples=200, deadline=None)

#: Characters that exercise every rule of ``normalise`` at once: digits and thousands separators,
#: quotes and dashes, Unicode spaces, zero-width marks, combining marks and case-folding specials.
TRICKY = list(
    "0123456789 .,'-aeAEsS\u00df\u1e9e\u0130\u01f0"
    "\u00a0\u202f\u2009\u3000\t\n"
    "\u2018\u2019\u201c\u201d\u00ab\u00bb\u2013\u2014\u2212\u2026"
    "\u200b\u200d\u2060\ufeff\u00ad"
    "\u0301\u0308\u030c\u0342\u0345"
)
tricky_text = st.text(alphabet=st.sampled_from(TRICKY), max_size=30)
WORDS = [
    "Le",
    "maire",
    "a",
    "dit",
    "côte",
    "Straße",
    "\u201cbudget\u201d",
    "l\u2019usine",
    "5\u00a0000",
    "—",
    "OK",
]


# --- normalise ------------------------------------------------------------------------------------


@SETTINGS
@given(st.one_of(st.text(), tricky_text))
@example("e\u200b\u0301")  # removing the zero-width space brings e and the accent together
@example("\u00df\u0301")  # casefold decomposes: ß + acute -> ss + acute
@example("1 000 000 et 2,500.75")
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


def _normalise_as_first_written(text: str) -> str:
    """``normalise`` as first written (str.translate, a space regex, a thousands regex that
    begins with its look-behind): content hashes are stored, so the faster one must give
    exactly this."""
    table = str.maketrans(
        {c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u00b4`\u2039\u203a"}
        | {c: '"' for c in "\u201c\u201d\u201e\u201f\u00ab\u00bb\u2033"}
        | {c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"}
        | {"\u2026": "..."}
    )
    text = re.sub(r"[\u200b-\u200d\u2060\ufeff\u00ad]", "", text)
    text = unicodedata.normalize("NFC", text).translate(table)
    text = re.sub(r"[\s\u00a0\u2000-\u200a\u202f\u205f\u3000]+", " ", text).strip()
    text = re.sub(
        r"(?<![\d.,])(\d{1,3})(?:[ .,'](\d{3}))+(?![\d]|[.,]\d)",
        lambda m: re.sub(r"[ .,']", "", m.group(0)),
        text,
    )
    return unicodedata.normalize("NFC", text.casefold())


SPACES_AND_SEPARATORS = [chr(c) for c in range(0x3100) if chr(c).isspace()] + list("\x1c\x1d\x1e\x1f\u0085")


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(),
        tricky_text,
        st.text(alphabet=st.sampled_from([*TRICKY, *SPACES_AND_SEPARATORS, *"\u2010\u201e`"]), max_size=40),
    )
)
@example("12.345,678 9 000'000 1,2345 .5 000")
@example("\x1c5\u2005000\x85")
def test_normalise_gives_what_it_always_gave(text: str) -> None:
    assert normalise(text) == _normalise_as_first_written(text)


@SETTINGS
@given(st.text())
def test_normalise_never_raises_and_gives_clean_text(text: str) -> None:
    out = normalise(text)
    assert isinstance(out, str)
    assert out == out.strip()
    assert "  " not in out
    assert not any(c in out for c in "\u00a0\u202f\u200b\u2018\u2019\u201c\u201d\u2013\u2014")
    assert unicodedata.is_normalized("NFC", out)


@pytest.mark.parametrize(
    "written", ["5 000", "5.000", "5,000", "5\u202f000", "5\u00a0000", "5\u2009000", "5'000", "5\u2019000"]
)
def test_thousands_separators_are_removed(written: str) -> None:
    assert normalise(written) == "5000"
    assert "5000" in normalise(f"Quelque {written} manifestants ont défilé")
    assert content_hash(f"About {written} people") == content_hash("about 5000 people")


@SETTINGS
@given(
    st.integers(min_value=1000, max_value=999_999_999_999),
    st.sampled_from([" ", ".", ",", "\u202f", "\u00a0"]),
)
def test_any_grouped_number_joins(number: int, sep: str) -> None:
    grouped = f"{number:,}".replace(",", sep)
    assert normalise(f"il y a {grouped} habitants") == f"il y a {number} habitants"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.14", "3.14"),
        ("0,5", "0,5"),
        ("1.5 million", "1.5 million"),
        ("2024-03-04", "2024-03-04"),
        ("v1.2.3", "v1.2.3"),
        ("1234 5678", "1234 5678"),
        ("12 345 6789", "12345 6789"),  # only the genuine group of three is joined
    ],
)
def test_decimals_and_other_numbers_are_left_alone(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_quotes_dashes_and_spaces_are_plain() -> None:
    assert normalise("\u201cLe\u00a0maire\u201d \u2014 l\u2019usine\u2026  \u00abfin\u00bb") == (
        '"le maire" - l\'usine... "fin"'
    )
    assert normalise("a\u2013b\u2212c") == "a-b-c"
    assert normalise("  tab\there\nnew\u3000line ") == "tab here new line"
    assert normalise("zero\u200bwidth\u00adhyphen") == "zerowidthhyphen"


def test_case_folded_but_accents_kept() -> None:
    assert normalise("STRASSE") == normalise("Straße") == "strasse"
    assert normalise("CÔTE") == "côte"
    assert normalise("côte") != normalise("cote")
    assert normalise("e\u0301te\u0301") == normalise("été")  # NFC: decomposed equals precomposed


# --- content_hash ---------------------------------------------------------------------------------


def _vary(words: list[str], rnd: random.Random) -> str:
    quotes = {"\u201c": '"', "\u201d": '"', "\u2019": "'", "—": "-"}
    out = []
    for word in words:
        for fancy, plain in quotes.items():
            if rnd.random() < 0.5:
                word = word.replace(fancy, plain)
        word = "".join(c.upper() if rnd.random() < 0.3 else c for c in word)
        out.append(word)
    spaces = [" ", "  ", "\n", "\t", "\u00a0", "\u202f", " \n "]
    body = "".join(w + rnd.choice(spaces) for w in out).rstrip()
    return rnd.choice(["", " ", "\n"]) + body + rnd.choice(["", "\n"])


@SETTINGS
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12), st.randoms())
def test_content_hash_ignores_whitespace_quotes_and_case(words: list[str], rnd: random.Random) -> None:
    assert content_hash(_vary(words, rnd)) == content_hash(" ".join(words))


@SETTINGS
@given(st.text(min_size=1))
def test_content_hash_is_sha256_of_the_normalised_text(text: str) -> None:
    digest = content_hash(text)
    assert len(digest) == 64
    assert content_hash(normalise(text)) == digest


def test_content_hash_tells_different_texts_apart() -> None:
    assert content_hash("Le maire a démissionné.") != content_hash("Le maire a été réélu.")
    assert content_hash("côte") != content_hash("cote")
    assert content_hash("5000") != content_hash("50 00")


# --- language -------------------------------------------------------------------------------------

EN = (
    "The city council approved the new budget on Tuesday after a long debate about public transport, "
    "schools and housing, and the mayor promised that taxes would not rise next year."
)
FR = (
    "Le conseil municipal a adopté mardi le nouveau budget après un long débat sur les transports publics, "
    "les écoles et le logement, et le maire a promis que les impôts n'augmenteraient pas l'an prochain."
)


@pytest.mark.parametrize(("text", "code"), [(EN, "en"), (FR, "fr")])
def test_detects_english_and_french(text: str, code: str) -> None:
    for hint in (None, "de", "fr" if code == "en" else "en"):
        detected = detect_language(text, hint)
        assert detected.code == code, hint
        assert MIN_CONFIDENCE <= detected.confidence <= 1.0


@pytest.mark.parametrize(
    ("hint", "expected"), [(None, UNDETERMINED), ("fr", "fr"), ("fr-FR", "fr"), ("EN_gb", "en")]
)
@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_gives_the_hint_or_und(text: str, hint: str | None, expected: str) -> None:
    assert detect_language(text, hint) == Language(expected, 0.0)


def test_low_confidence_tiny_text_uses_a_hint_among_the_candidates() -> None:
    text = "radio"
    candidates = language_module._detector().detect(text, model="lite", k=3)
    codes = [c["lang"] for c in candidates]
    assert candidates[0]["score"] < MIN_CONFIDENCE, f"precondition: {text!r} is ambiguous ({candidates})"
    hint = codes[1]
    assert hint != codes[0]
    assert detect_language(text, hint.upper() + "-XX").code == hint
    outsider = next(c for c in ("ja", "ko", "zh", "ru", "ar") if c not in codes)
    assert detect_language(text, outsider).code == codes[0]  # a hint outside the candidates is ignored


class _FakeDetector:
    def __init__(self, result: list[dict[str, Any]] | Exception) -> None:
        self.result = result

    def detect(self, text: str, model: str, k: int) -> list[dict[str, Any]]:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.mark.parametrize(
    ("result", "hint", "expected"),
    [
        ([{"lang": "en", "score": 0.4}, {"lang": "fr", "score": 0.3}], "fr", Language("fr", 0.3)),
        ([{"lang": "en", "score": 0.4}, {"lang": "fr", "score": 0.3}], "de", Language("en", 0.4)),
        ([{"lang": "en", "score": 0.4}, {"lang": "fr", "score": 0.3}], None, Language("en", 0.4)),
        ([{"lang": "en", "score": 0.9}, {"lang": "fr", "score": 0.05}], "fr", Language("en", 0.9)),
        ([{"lang": "en", "score": 1.0000001}], None, Language("en", 1.0)),
        ([], "fr", Language("fr", 0.0)),
        ([], None, Language(UNDETERMINED, 0.0)),
        (RuntimeError("model failed"), "pt-BR", Language("pt", 0.0)),
        (RuntimeError("model failed"), None, Language(UNDETERMINED, 0.0)),
    ],
)
def test_hint_only_breaks_low_confidence_ties(
    monkeypatch: pytest.MonkeyPatch,
    result: list[dict[str, Any]] | Exception,
    hint: str | None,
    expected: Language,
) -> None:
    monkeypatch.setattr(language_module, "_detector", lambda: _FakeDetector(result))
    assert detect_language("some text", hint) == expected
