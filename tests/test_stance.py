# ruff: noqa: RUF001 - French typographic apostrophes on purpose
"""Whether a matched sentence repeats a tracked claim or disputes it (wirewatch.matching.stance),
in English, French, German, Spanish, Italian and Portuguese, and on the alert the stream raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirewatch.core.text import normalise
from wirewatch.matching.stance import negated, stance

CLAIM_EN = "The US-led coalition let 5,000 ISIS fighters leave Mosul for Syria."

REPEATS = [
    "The US-led coalition let 5,000 ISIS fighters leave Mosul for Syria.",
    "No fewer than 5,000 Islamic State fighters were allowed to leave Mosul, officials said.",
    "Not only were 5,000 fighters allowed to leave Mosul, they were escorted to Syria.",
    "Quelque 5 000 combattants de Daech avaient quitté Mossoul vers Raqqa.",
    "Plus de 5 000 combattants ont quitté Mossoul avant l’offensive.",
    "Les combattants n’ont quitté Mossoul que le 20 octobre, selon la coalition.",
    "Le 5 mai, 5 000 combattants avaient déjà quitté Mossoul.",  # "mai" is May here, not "never"
    "Non seulement 5 000 combattants ont quitté Mossoul, mais ils ont gagné la Syrie.",
    "A non-profit group says 5,000 fighters left Mosul for Syria.",
    "Nicht nur 5.000 IS-Kämpfer durften Mossul verlassen.",
    "Rund 5.000 IS-Kämpfer haben Mossul in Richtung Syrien verlassen.",
    "No más de 5.000 combatientes del EI salieron de Mosul hacia Siria.",
    "No sólo 5.000 combatientes salieron de Mosul: la coalición los dejó ir.",
    "Non solo 5.000 combattenti dell’Isis hanno lasciato Mosul, sono arrivati in Siria.",
    "Cerca de 5.000 combatentes do EI deixaram Mossul rumo à Síria.",
    "Não só 5.000 combatentes deixaram Mossul, como chegaram à Síria.",
]
DISPUTES = [
    "The coalition did not let 5,000 ISIS fighters leave Mosul.",
    "It is false that the coalition allowed 5,000 fighters to leave Mosul for Syria.",
    "The Pentagon denied that 5,000 ISIS fighters were allowed to leave Mosul.",
    "Fact check: the story of 5,000 fighters leaving Mosul is a hoax.",
    "Les combattants de Daech n’ont jamais quitté Mossoul vers la Syrie.",
    "C’est une infox : aucun combattant n’a quitté Mossoul vers Raqqa.",
    "L’état-major dément que 5 000 combattants aient quitté Mossoul.",
    "Les 5 000 combattants ne sont pas partis de Mossoul, affirme la coalition.",
    "Die Koalition hat 5.000 IS-Kämpfer nicht aus Mossul abziehen lassen.",
    "Kein einziger IS-Kämpfer durfte Mossul verlassen, sagt das Pentagon.",
    "Das Pentagon dementiert, dass 5.000 Kämpfer Mossul verlassen durften.",
    "La coalición no dejó salir de Mosul a 5.000 combatientes del EI.",
    "Es un bulo: ningún combatiente salió de Mosul hacia Siria.",
    "La coalizione non ha lasciato partire 5.000 combattenti da Mosul.",
    "È una bufala: nessun combattente dell’Isis ha lasciato Mosul.",
    "A coalizão não deixou 5.000 combatentes saírem de Mossul.",
    "O Pentágono desmente que 5.000 combatentes tenham deixado Mossul.",
]


@pytest.mark.parametrize("sentence", REPEATS)
def test_sentences_that_state_the_claim_repeat_it(sentence: str) -> None:
    assert stance(sentence, CLAIM_EN) == "repeats"


@pytest.mark.parametrize("sentence", DISPUTES)
def test_sentences_that_deny_the_claim_dispute_it(sentence: str) -> None:
    assert stance(sentence, CLAIM_EN) == "disputes"


def test_a_negated_claim_is_disputed_by_a_sentence_saying_it_happened() -> None:
    claim = "No ISIS fighters were allowed to leave Mosul."
    assert negated(claim)
    assert stance(REPEATS[0], claim) == "disputes"
    assert stance("Aucun combattant de l’EI n’a pu quitter Mossoul.", claim) == "repeats"


@given(st.text(max_size=200))
def test_negation_reads_the_normalised_text(text: str) -> None:
    """Typography never changes the answer: a text and its normalised form agree."""
    assert negated(text) == negated(normalise(text))
