# ruff: noqa: RUF001 - typographic quotes and apostrophes are what this module reads.
"""Check-worthy claims: sentences that state a checkable fact.

Each sentence of the text is scored from what makes a statement checkable, in French and
English (the patterns of both apply to every article):

========== ====== ==============================================================
signal     weight what
========== ====== ==============================================================
number     0.35   a figure other than a date ("5 000 combattants", "60 civils",
                  "des centaines de", "thousands of")
attribution 0.25  someone is said to have said it ("selon", "a déclaré", "said")
event-verb 0.25   something happened ("tué", "ont quitté", "launched", "killed")
quote      0.15   a quotation of three words or more
entity     0.15   a person, organisation or place of the article is named
date       0.15   a day, month, year or relative day ("dimanche", "le 17 octobre")
========== ====== ==============================================================

minus 0.15 for opinion or hedging words ("il faut", "sans doute", "should"), minus 0.25
for a fragment of under six words, minus 0.1 past 90 words; clipped to 0..1. A sentence is
a claim at ``CLAIM_THRESHOLD`` or above. Never claims: questions, boilerplate (social-media
calls, subscriptions, "Cet article vous a plu ?", "Read more", cookies, copyright lines) and
sentences that address the reader or give a first-person opinion outside quotation marks.

Offsets are into ``text``. The title is scored too; a title claim that the text does not
repeat has the signal ``title`` and the empty span ``start == end == 0``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from wirewatch.core.models import Attribution, Claim, Entity
from wirewatch.core.text import normalise
from wirewatch.enricher.attributions import has_attribution_cue
from wirewatch.enricher.caseless import Caseless
from wirewatch.enricher.entities import surface_index, trie_pattern
from wirewatch.enricher.sentences import Sentence, split_sentences

__all__ = ["CLAIM_THRESHOLD", "WEIGHTS", "Scored", "extract_claims", "is_boilerplate", "score_sentence"]

#: A sentence scoring this or more is a claim.
CLAIM_THRESHOLD = 0.5

#: What each signal adds to the score.
WEIGHTS: dict[str, float] = {
    "number": 0.35,
    "attribution": 0.25,
    "event-verb": 0.25,
    "quote": 0.15,
    "entity": 0.15,
    "date": 0.15,
}
_OPINION_PENALTY = 0.15
_SHORT_PENALTY = 0.25
_LONG_PENALTY = 0.1


def _phrases(block: str) -> list[str]:
    """The ``|``-separated phrases of ``block``, lower-cased."""
    return [p.strip().casefold() for p in block.replace("\n", "|").split("|") if p.strip()]


class _Phrases:
    """Whole phrases of a ``|``-separated block, and words beginning with ``stems``, found
    regardless of case and not right after a word char or a char of ``edge``."""

    def __init__(self, block: str = "", *, stems: str = "", edge: str = "'’-") -> None:
        self.finders: list[Caseless] = []
        if block:
            self.finders.append(Caseless(trie_pattern(_phrases(block)) + r"(?![\w'’-])", edge=edge))
        if stems:
            self.finders.append(Caseless(trie_pattern(_phrases(stems)) + r"\w*", edge=edge))

    def search(self, text: str, lowered: str | None = None) -> bool:
        """Whether ``text`` has one of the phrases; ``lowered``: ``text.lower()`` if known."""
        return any(finder.search(text, lowered) for finder in self.finders)


# Words and phrases of navigation, sharing, subscription, cookie and copyright lines.
_BOILERPLATE_WORDS = _Phrases(
    stems="""rejoignez-nous|rejoignez nous|abonnez-vous|abonnez vous|s'abonner|inscrivez-vous|newsletter|
    lettre d'information|cet article vous a plu|vous avez aimé cet article|partagez cet|
    partager sur|merci de votre soutien|faites un don|soutenez-nous|lire aussi|à lire aussi|
    voir aussi|lire la suite|en savoir plus|cookie|cookies|politique de confidentialité|
    mentions légales|conditions d'utilisation|conditions générales d'utilisation|
    tous droits réservés|copyright|version mobile|site icon|télécharger l'application|
    notre chaîne|nos sélections|read more|read also|share this|sign up|subscribe|follow us|
    click here|related articles|related stories|advertisement|publicité|sponsored|
    all rights reserved|privacy policy|terms of use|terms of service|download the app|
    download our app|join our|support our journalism|recommended for you|more from""",
    edge="",
)
_BOILERPLATE_SIGNS = re.compile(r"suivez[- ](?:nous|[\w-]+)\s+sur|\(c\)\s*\d{4}|©", re.IGNORECASE)
_IMPERATIVE_START = re.compile(
    r"^\W*(?:"
    + trie_pattern(
        _phrases(
            """suivez|abonnez|cliquez|découvrez|lisez|partagez|inscrivez|rejoignez|téléchargez|soutenez|
            regardez|écoutez|retrouvez|n'hésitez|follow|subscribe|click|read|share|sign|join|download|
            watch|listen|donate|support|discover|don't miss|check out|tap"""
        )
    )
    + r")(?![\w'’-])",
    re.IGNORECASE,
)
_READER = re.compile(r"\b(?:vous|votre|vos|you|your|yours)\b", re.IGNORECASE)
_FIRST_PERSON_OPINION = _Phrases(
    """je pense|je crois|je trouve|je suis convaincu|à mon avis|selon moi|nous pensons|nous croyons|
    i think|i believe|i feel|i guess|in my opinion|in my view|we think|we believe"""
)
_HEDGE = _Phrases(
    """il faut|il faudrait|devrait|devraient|il est temps|sans doute|probablement|peut-être|semble|
    semblent|apparemment|visiblement|curieusement|malheureusement|heureusement|should|must|ought to|
    perhaps|maybe|probably|apparently|seem|seems|unfortunately|clearly|obviously"""
)
_MONTHS = """janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|novembre|
    décembre|decembre|january|february|march|april|may|june|july|august|september|october|november|
    december"""
_MONTH = trie_pattern(_phrases(_MONTHS))
_DAY_WORDS = _Phrases(
    _MONTHS
    + """|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|monday|tuesday|wednesday|thursday|
    friday|saturday|sunday|hier|avant-hier|aujourd'hui|yesterday|today|tonight|semaine dernière|
    semaine passée|this week|last week|last month|last year|l'an dernier|l'année dernière"""
)
# 17/10/2016 or a year 19xx/20xx, not inside a longer number. Written to begin with a digit
# (the look-behind after it) so that the regex engine skips ahead to digits.
_DATE_FIGURES = re.compile(r"\d(?<!\d\d)(?:\d?/\d{1,2}/\d{2,4}|(?<=1)9\d\d|(?<=2)0\d\d)(?!\d)")


def _has_date(text: str, lowered: str | None = None) -> bool:
    return _DATE_FIGURES.search(text) is not None or _DAY_WORDS.search(text, lowered)


# Day-and-month and years, removed before looking for figures: "17 octobre", "October 17", "2014".
_DATE_NUMBERS = re.compile(
    rf"\d{{1,2}}(?:er|st|nd|rd|th)?\s+(?:{_MONTH})\b|\b(?:{_MONTH})\s+\d{{1,2}}(?:st|nd|rd|th)?\b|"
    r"(?<![\d.,])(?:19|20)\d\d(?![\d.,]\d)|\d{1,2}/\d{1,2}/\d{2,4}",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d")
_NUMBER_WORDS = _Phrases(
    """dizaines|centaines|milliers|millions|milliards|douzaine|douzaines|vingtaine|trentaine|quarantaine|
    cinquantaine|soixantaine|centaine|millier|dozens|hundreds|thousands|millions|billions|dozen|
    deux cents|trois cents|mille|vingt|trente|quarante|cinquante|soixante|cent|twenty|thirty|forty|
    fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|billion|per cent|percent|pour cent"""
)
_EVENT = _Phrases(
    """tué|tuée|tués|tuées|tuant|tue|blessé|blessée|blessés|blessées|blessant|attaqué|attaquée|attaqués|
    attaque|attaquent|frappé|frappée|frappés|frappant|frappe|frappes|lancé|lancée|lancés|lancées|quitté|
    quittée|quittés|quittent|quittant|quitter|arrivé|arrivée|arrivés|arrivées|arrivent|capturé|capturée|
    capturés|repris|reprise|libéré|libérée|libérés|signé|signée|signés|arrêté|arrêtée|arrêtés|élu|élue|
    élus|abattu|abattue|abattus|retiré|retirée|retirés|occupé|occupée|occupés|pris le contrôle|tombé|
    tombée|tombés|mort|morts|enlevé|enlevée|enlevés|annulé|annulée|adopté|adoptée|commis|commise|
    commises|livré|livrée|livrés|menée|menées|kill|killed|killing|kills|wounded|wounding|injured|
    injuries|attacked|attacks|struck|strike|strikes|launched|launches|left|fled|fleeing|arrived|
    captured|seized|retook|retaken|signed|arrested|elected|shot down|occupied|took control|died|dead|
    convicted|charged|suspended|cancelled|canceled|voted|adopted|ratified|banned|crossed|delivered|
    fired""",
    stems="""bombard|démissionn|explos|détrui|évacu|déploy|encercl|envahi|décéd|kidnapp|condamn|inculp|suspendu|
    ratifi|interdi|transfér|fourni|délivr|bomb|recaptur|resign|explod|destroy|evacuat|deploy|withdr|
    encircl|invad|abduct""",
)
_QUOTED = re.compile(r"«([^»]*)»?|“([^”]*)”?|\"([^\"]*)\"?")
_CAPITALISED = re.compile(r"(?<=\s)[A-ZÀ-ÖØ-ÞŒ][\w'’-]+")


@dataclass(frozen=True, slots=True)
class Scored:
    """A sentence's check-worthiness: score in 0..1 and the signals behind it."""

    score: float
    signals: list[str]


def is_boilerplate(sentence: str, lowered: str | None = None) -> bool:
    """Navigation, sharing, subscription, cookie and copyright lines, calls to the reader
    (``lowered``: ``sentence.lower()`` if already made)."""
    return bool(
        _BOILERPLATE_WORDS.search(sentence, lowered)
        or _BOILERPLATE_SIGNS.search(sentence)
        or _IMPERATIVE_START.match(sentence)
    )


def _outside_quotes(sentence: str) -> str:
    return _QUOTED.sub(" ", sentence)


def _has_number(sentence: str, lowered: str | None = None) -> bool:
    """A figure other than a date: digits left once dates are removed, or a number word."""
    undated = _DATE_NUMBERS.sub(" ", normalise(sentence)) if _NUMBER.search(sentence) else ""
    return bool(_NUMBER.search(undated) or _NUMBER_WORDS.search(sentence, lowered))


def _has_quote(sentence: str) -> bool:
    for match in _QUOTED.finditer(sentence):
        inner = next((g for g in match.groups() if g), "")
        if len(inner.split()) >= 3:
            return True
    return False


def score_sentence(
    sentence: str,
    *,
    attributed: bool | None = None,
    names: Iterable[str] | None = None,
) -> Scored:
    """Check-worthiness of one sentence. ``attributed``: whether an attribution was found for
    it (None: look for a cue); ``names``: entity surface forms of the article (None: any
    capitalised word past the first counts)."""
    scored = _score(sentence, attributed, names, None)
    assert scored is not None
    return scored


# Scores are rounded to 0.01: a bound this far under the threshold cannot round up to it.
_ROUNDING_MARGIN = 0.01


def _score(
    sentence: str, attributed: bool | None, names: Iterable[str] | None, threshold: float | None
) -> Scored | None:
    """``score_sentence``; with a positive ``threshold``, None for a sentence scoring under it.

    Only claims show their signals, so with a threshold the checks run cheapest first and stop
    once the weights left cannot lift the sentence to it (a sentence with no attribution, quote
    or name needs a figure and an event verb), and boilerplate, questions and opinions (score
    0) are only looked for in the sentences that would otherwise be claims: same claims, same
    signals, about half the work."""
    text = sentence.strip()
    limit = threshold if threshold is not None and threshold > 0 else None
    lowered = text.lower()
    if limit is None:
        excluded = _excluded(text, lowered)
        if excluded is not None:
            return excluded
    words = len(text.split())
    penalty = _SHORT_PENALTY if words < 6 else _LONG_PENALTY if words > 90 else 0.0
    checks: tuple[tuple[str, Callable[[], bool]], ...] = (
        ("attribution", lambda: attributed if attributed is not None else has_attribution_cue(text, lowered)),
        ("quote", lambda: _has_quote(text)),
        ("entity", lambda: _names_one(text, names)),
        ("event-verb", lambda: _EVENT.search(text, lowered)),
        ("date", lambda: _has_date(text, lowered)),
        ("number", lambda: _has_number(text, lowered)),
    )
    found: set[str] = set()
    gained, left = 0.0, sum(WEIGHTS.values())
    for signal, check in checks:
        if limit is not None and gained + left - penalty < limit - _ROUNDING_MARGIN:
            return None
        if check():
            found.add(signal)
            gained += WEIGHTS[signal]
        left -= WEIGHTS[signal]
    if limit is not None and _excluded(text, lowered) is not None:
        return None
    signals = [signal for signal in WEIGHTS if signal in found]
    score = sum(WEIGHTS[s] for s in signals)
    if _HEDGE.search(text, lowered):
        score -= _OPINION_PENALTY
        signals.append("hedged")
    score -= penalty
    scored = Scored(round(min(1.0, max(0.0, score)), 2), signals)
    if limit is not None and scored.score < limit:
        return None
    return scored


def _excluded(text: str, lowered: str) -> Scored | None:
    """The zero score of an empty line, boilerplate, a question or an opinion; None otherwise."""
    if not text or is_boilerplate(text, lowered):
        return Scored(0.0, ["boilerplate"] if text else [])
    if text.rstrip("»”\"') ").endswith("?"):
        return Scored(0.0, ["question"])
    outside = _outside_quotes(text)
    if _READER.search(outside) or _FIRST_PERSON_OPINION.search(outside):
        return Scored(0.0, ["opinion"])
    return None


def _names_one(text: str, names: Iterable[str] | None) -> bool:
    """Whether ``text`` names one of ``names`` (None: any capitalised word past the first)."""
    if names is None:
        return bool(_CAPITALISED.search(text))
    return any(_contains_word(text, name) for name in names)


def _contains_word(text: str, word: str) -> bool:
    pos = text.find(word)
    while pos >= 0:
        end = pos + len(word)
        if (pos == 0 or not text[pos - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
            return True
        pos = text.find(word, pos + 1)
    return False


def extract_claims(
    title: str,
    text: str,
    *,
    entities: Iterable[Entity] | None = None,
    attributions: Iterable[Attribution] | None = None,
    sentences: Sequence[Sentence] | None = None,
    threshold: float = CLAIM_THRESHOLD,
) -> list[Claim]:
    """Sentences of ``text`` (and the title) scoring ``threshold`` or more, in text order.

    ``entities`` and ``attributions`` come from the other analyses of the article; without
    them, capitalised words and attribution cues stand in."""
    if sentences is None:
        sentences = split_sentences(text)
    names = list(surface_index(entities)) if entities is not None else None
    attributed_starts = {a.start for a in attributions} if attributions is not None else None
    claims: list[Claim] = []
    for sentence in sentences:
        attributed = None if attributed_starts is None else sentence.start in attributed_starts
        scored = _score(sentence.text, attributed, names, threshold)
        if scored is not None and scored.score >= threshold:
            claims.append(
                Claim(
                    text=sentence.text,
                    start=sentence.start,
                    end=sentence.end,
                    score=scored.score,
                    signals=scored.signals,
                )
            )
    headline = " ".join(title.split())
    if headline and normalise(headline) not in normalise(text[: len(headline) + 200]):
        scored = score_sentence(headline, names=names)
        if scored.score >= threshold:
            claims.append(
                Claim(text=headline, start=0, end=0, score=scored.score, signals=[*scored.signals, "title"])
            )
    claims.sort(key=lambda c: (c.start, c.end))
    return claims
