# ruff: noqa: RUF001 - typographic apostrophes are among the chars these regexes read.
"""Regexes rewritten for speed find what the first-written ones found, for any text: cue lists
found regardless of case (``enricher.caseless``) against the case-insensitive regexes with a
look-behind that they replace, and regexes whose look-behind moved after their first char."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wirewatch.enricher import attributions, claims, entities, sentences
from wirewatch.enricher.caseless import Caseless

# Pieces that put the cues at and around word edges, in all cases, with the chars that
# str.lower and case-insensitive regexes treat differently (U+0130, U+0131, U+017F).
PIECES = [
    *["tué", "TUÉS", "Killed", "skill", "bombardé", "Bombardement", "l'", "\u2019", "-", "_", " ", "\n"],
    *["hier", "aujourd'hui", "Aujourd\u2019hui", "octobre", "MAY", "lundi", "December", "sans doute"],
    *["sans  doute", "should", "milliers", "Per cent", "je pense", "I THINK", "2016", "17/10/2016"],
    *["1999", "20001", "x", "é", "9", "\u0130", "\u017fhould", "k\u0131lled", "\u0130ER", "K", "\u212a"],
    *["ß", "Cookies", "newsletter", "xsubscribe", "Read more", "selon", "Selon", "SELON", "d'après"],
    *["D\u2019après", "according to", "Per", "per", "cité par", "a déclaré", "A-t-il", " indiqué"],
    *["ont", "avait-elle", " aussi ", "affirme", "Affirment", "-t-on", "said", "Said", "told", "pointed out"],
    *["qu'il", ",", "«", "»", ":", "Reuters", "AFP", "S\u0130LON"],
]
texts = st.lists(st.sampled_from(PIECES), max_size=14).map("".join)

CUES = {
    "fr past": attributions._FR_PAST,
    "fr present": attributions._FR_NOW,
    "en verb": attributions._EN_VERB,
    "introducers": attributions._INTRODUCERS,
    **{
        f"{name} {n}": finder
        for name, phrases in [
            ("event", claims._EVENT),
            ("hedge", claims._HEDGE),
            ("number words", claims._NUMBER_WORDS),
            ("first person", claims._FIRST_PERSON_OPINION),
            ("days", claims._DAY_WORDS),
            ("boilerplate", claims._BOILERPLATE_WORDS),
        ]
        for n, finder in enumerate(phrases.finders)
    },
}


@pytest.mark.parametrize("name", sorted(CUES))
@given(text=texts)
@settings(max_examples=300, deadline=None)
def test_cues_are_found_as_their_regex_finds_them(name: str, text: str) -> None:
    finder = CUES[name]
    expected = list(finder.pattern.finditer(text))
    found = list(finder.finditer(text))
    assert [m.match.span() for m in found] == [m.span() for m in expected]
    for group in finder.pattern.groupindex:
        assert [m.optional(group) for m in found] == [m.group(group) for m in expected]
    assert finder.search(text) == bool(expected)


@given(
    st.lists(st.sampled_from([*PIECES, "0", "12/3/16", "2016", "19999", "x2016"]), max_size=10).map("".join)
)
@settings(max_examples=300, deadline=None)
def test_date_figures_are_the_regex_they_replace(text: str) -> None:
    first_written = re.compile(r"(?<!\d)(?:\d{1,2}/\d{1,2}/\d{2,4}|(?:19|20)\d\d)(?!\d)")
    assert [m.span() for m in claims._DATE_FIGURES.finditer(text)] == [
        m.span() for m in first_written.finditer(text)
    ]


@given(
    st.lists(
        st.sampled_from(["Unis", ".", "Les", "U", "s", "5", "_", "É", "é", " ", "LES", "les"]), max_size=12
    ).map("".join)
)
@settings(max_examples=300, deadline=None)
def test_glued_full_stops_are_the_regex_they_replace(text: str) -> None:
    first_written = re.compile(r"(?<=[^\W\d_]{2})\.(?=[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ])")
    for start in range(min(len(text), 3) + 1):
        assert [m.span() for m in sentences._GLUED.finditer(text, start)] == [
            m.span() for m in first_written.finditer(text, start)
        ]


@given(
    st.lists(
        st.sampled_from(["ONU", "(", ")", " ", "Nations unies", ".", "N", "x", "'", "\u2019", "-", "É", "0"]),
        max_size=12,
    ).map("".join)
)
@settings(max_examples=300, deadline=None)
def test_capitalised_words_and_acronyms_are_the_regexes_they_replace(text: str) -> None:
    capitalised = re.compile(r"(?<![\w'’-])[A-ZÀ-ÖØ-ÞŒ][\w'’-]+")
    acronym = re.compile(r"(?<![\w.])([A-ZÀ-ÖØ-Þ](?:\.?[A-ZÀ-ÖØ-Þ0-9&]){1,6}\.?)\s*\(([^()\n]{3,90})\)")
    for rewritten, first_written in ((entities._CAPITALISED, capitalised), (entities._PAREN_BEFORE, acronym)):
        assert [(*m.groups(), m.span()) for m in rewritten.finditer(text)] == [
            (*m.groups(), m.span()) for m in first_written.finditer(text)
        ]


def test_a_cue_inside_a_word_is_not_one() -> None:
    said = Caseless("said|selon", edge="'")
    assert [m.group() for m in said.finditer("Unsaid, SAID selon'selon _said")] == ["SAID", "selon"]
    assert not said.search("unsaid")


def test_groups_come_from_the_text_as_written() -> None:
    verb = Caseless(r"(?P<aux>a|ont)\s+(?P<verb>déclaré)(?P<pron>-t-il)?")
    (found,) = verb.finditer("Le ministre A DÉCLARÉ hier")
    assert (found.group("aux"), found.group("verb"), found.optional("pron")) == ("A", "DÉCLARÉ", None)
    assert found.optional("absent") is None
    assert found.start() == 12


def test_case_sensitive_cues_stay_case_sensitive() -> None:
    said = Caseless("said", ignore_case=False)
    assert said.search("he said") and not said.search("He SAID")


def test_texts_with_case_traps_use_the_regex() -> None:
    # U+0130 lowers to two chars (offsets would move); U+0131 matches "i" only case-insensitively.
    selon = Caseless("selon|killed")
    assert [m.match.span() for m in selon.finditer("\u0130 SELON k\u0131lled")] == [(2, 7), (8, 14)]


def test_a_body_that_can_match_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="empty string"):
        Caseless("(?:said)?")
