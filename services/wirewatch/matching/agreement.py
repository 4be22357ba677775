"""Agreement checks between a sentence and a claim: do they state the same numbers and names?

Gazetteer-free heuristics that work on any language written with capitals and Arabic digits:

* **numbers** (``quantities``): every figure of the normalised text (``5 000`` / ``5,000`` ->
  5000), scaled by a following multiplier word (``3 million``, ``2,5 milliards``), with dates
  (``December 8, 2019``, ``8 décembre``) and clock times left out. Years (1800-2100 standing
  alone) are kept apart from quantities: a sentence that dates an event does not contradict a
  claim's head count. Both sides disagree when both state figures of a kind and none is within
  ``NUMBER_TOLERANCE`` of one on the other side (years: equal).
* **names** (``names``): capitalised words that are not function words (``The``, ``Le``), and
  acronyms, folded to lower case without accents; a word of a title-case line is not a name
  when the text writes it in lower case elsewhere ("Marijuana Legalized in Texas?" after
  "... legalized marijuana"). Two names agree when one is a prefix of the
  other or they start alike and their letters are at least ``NAME_SIMILARITY`` alike
  (``Mosul`` / ``Mossoul``). The sides disagree when both name something and no name of one
  agrees with any of the other; names written differently across languages (``ISIS`` /
  ``Daech``) are for the vectors to match.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from wirewatch.core.text import normalise
from wirewatch.matching.lexical import STOPWORDS

#: Two figures agree within this relative difference ("some 5,000" vs "5,100" does not).
NUMBER_TOLERANCE = 0.01
#: Letter similarity (difflib ratio) above which two names are taken as one.
NAME_SIMILARITY = 0.8

_MULTIPLIERS = {
    "thousand": 1e3,
    "mille": 1e3,
    "mil": 1e3,
    "tausend": 1e3,
    "k": 1e3,
    "mn": 1e6,
    "million": 1e6,
    "millions": 1e6,
    "millón": 1e6,
    "millones": 1e6,
    "milioni": 1e6,
    "milhões": 1e6,
    "millionen": 1e6,
    "billion": 1e9,
    "billions": 1e9,
    "milliard": 1e9,
    "milliards": 1e9,
    "milliarde": 1e9,
    "milliarden": 1e9,
    "bn": 1e9,
}
#: Month names and abbreviations (en, fr, es) -> month number.
MONTHS: dict[str, int] = {
    name: number
    for names in (
        "january february march april may june july august september october november december",
        "jan feb mar apr may jun jul aug sep oct nov dec",
        "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
        "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
        "- fevrier - - - - - aout sept - - decembre",
    )
    for number, name in enumerate(names.split(), start=1)
    if name != "-"
}
_MONTHS = "|".join(sorted(MONTHS, key=lambda m: (-len(m), m)))
_DATES = re.compile(
    rf"\b(?:(?P<month>{_MONTHS})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b"
    rf"|(?P<day2>\d{{1,2}})(?:er|st|nd|rd|th)?\s+(?:de\s+)?(?P<month2>{_MONTHS})\b)"
)
_TIMES = re.compile(r"\b\d{1,2}(?:[:h]\d{2}|\s*(?:am|pm|a\.m\.|p\.m\.))(?!\w)")
_NUMBER = re.compile(r"(?<![\w.,-])(\d+(?:[.,]\d+)?)(?![\w.,]\d)(?:\s*(%|[^\W\d_]+))?")
_NOT_NAMES = frozenset(MONTHS) | {
    "am",
    "pm",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "lundi",
    "mardi",
    "mercredi",
    "jeudi",
    "vendredi",
    "samedi",
    "dimanche",
}
_NAME_WORD = re.compile(r"[^\W\d_][\w']*")


def calendar_dates(normalised: str) -> tuple[list[str], str]:
    """The day-and-month dates of normalised text (``8 décembre``, ``december 8th``) as
    ``MM-DD`` keys in order, and the text with those dates and clock times blanked out: what is
    left states the figures (a day of the month is not one)."""
    keys: list[str] = []

    def blank(match: re.Match[str]) -> str:
        month, day = match["month"] or match["month2"], match["day"] or match["day2"]
        keys.append(f"{MONTHS[month]:02d}-{int(day):02d}")
        return " "

    return keys, _TIMES.sub(" ", _DATES.sub(blank, normalised))


@dataclass(frozen=True)
class Figures:
    """The figures a text states: quantities and years."""

    quantities: frozenset[float]
    years: frozenset[int]


@lru_cache(maxsize=8192)
def figures(text: str) -> Figures:
    """Quantities and years stated in ``text`` (see the module doc)."""
    _, norm = calendar_dates(normalise(text))
    quantities: set[float] = set()
    years: set[int] = set()
    for match in _NUMBER.finditer(norm):
        digits, unit = match.group(1), match.group(2)
        value = float(digits.replace(",", "."))
        if unit in _MULTIPLIERS:
            quantities.add(value * _MULTIPLIERS[unit])
        elif value.is_integer() and 1800 <= value <= 2100 and unit != "%":
            years.add(int(value))
        else:
            quantities.add(value)
    return Figures(frozenset(quantities), frozenset(years))


def _close(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * max(abs(a), abs(b))


def _sets_agree(
    left: frozenset[float] | frozenset[int], right: frozenset[float] | frozenset[int], tolerance: float
) -> bool | None:
    if not left or not right:
        return None
    return any(_close(a, b, tolerance) for a in left for b in right)


@dataclass(frozen=True)
class NumberAgreement:
    """Whether two texts' quantities and years agree (``None``: one side states none)."""

    quantities: bool | None
    years: bool | None

    @property
    def conflict(self) -> bool:
        """Both sides state quantities and none agree."""
        return self.quantities is False


def number_agreement(sentence: str, claim: str) -> NumberAgreement:
    """How the figures of ``sentence`` and ``claim`` agree."""
    return compare_figures(figures(sentence), figures(claim))


def compare_figures(left: Figures, right: Figures) -> NumberAgreement:
    """How two texts' figures agree (``number_agreement`` on figures read already)."""
    return NumberAgreement(
        _sets_agree(left.quantities, right.quantities, NUMBER_TOLERANCE),
        _sets_agree(left.years, right.years, 0.0),
    )


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("'", "")


# Where a sentence (or a line) ends.
_SENTENCE_END = re.compile("(?<=[.!?…])[\"'”\u2019»)\\]]*\\s+|\\s*\n\\s*")
# In a title-case line ("Marijuana Legalized in Texas?") capitals say nothing either: every word
# but these small ones is capitalised there.
_TITLE_SMALL_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "but",
        "or",
        "nor",
        "for",
        "so",
        "yet",
        "of",
        "in",
        "on",
        "at",
        "to",
        "by",
        "from",
        "with",
        "as",
        "into",
        "onto",
        "upon",
        "via",
        "vs",
        "de",
        "du",
        "des",
        "la",
        "le",
        "les",
        "l",
        "d",
        "et",
        "ou",
        "en",
        "à",
        "au",
        "aux",
        "par",
        "pour",
        "sur",
    ]
)


def _is_acronym(word: str) -> bool:
    return word.isupper() and 2 <= len(word) <= 5


def _is_title_case(words: list[str]) -> bool:
    capitalised = sum(w[0].isupper() for w in words)
    return capitalised >= 3 and all(w[0].isupper() or w.casefold() in _TITLE_SMALL_WORDS for w in words)


@lru_cache(maxsize=8192)
def names(text: str) -> frozenset[str]:
    """Folded capitalised words and acronyms of ``text`` that are not function words.

    In a title-case line (a headline: "Marijuana Legalized in Texas?") a capital says little: a
    word of one is a name only when the text never writes it in lower case. "The state of Texas
    has legalized recreational use of marijuana. Marijuana Legalized in Texas?" names Texas, not
    marijuana. (The first word of a sentence stays a name: users write brands and people in lower
    case as often as not.)"""
    text = re.sub(r"https?://\S+|[@#]\w+", " ", text)
    capitalised: list[tuple[str, bool]] = []  # (word, whether it is in a title-case line)
    lower: set[str] = set()
    for unit in _SENTENCE_END.split(text):
        words = _NAME_WORD.findall(unit)
        title_case = _is_title_case(words)
        for word in words:
            if word[0].isupper():
                capitalised.append((word, title_case))
            else:
                lower.add(_fold(word))
    found: set[str] = set()
    for word, in_title in capitalised:
        folded = _fold(word)
        if (
            len(folded) < 2
            or folded in STOPWORDS
            or folded in _NOT_NAMES
            or (word.isupper() and len(word) > 5)
        ):
            continue  # a shouted word ("BREAKING") is no name
        if in_title and folded in lower and not _is_acronym(word):
            continue
        found.add(folded)
    return frozenset(found)


@lru_cache(maxsize=65536)
def _same_name(a: str, b: str) -> bool:
    if a == b:
        return True
    if a[0] != b[0]:
        return False  # spellings of one name start alike (Mosul / Mossoul, Daesh / Daech)
    short, long = sorted((a, b), key=len)
    if len(short) >= 4 and long.startswith(short):
        return True
    if 2 * len(short) < NAME_SIMILARITY * (len(short) + len(long)):
        return False  # the ratio cannot reach NAME_SIMILARITY
    return SequenceMatcher(None, a, b).ratio() >= NAME_SIMILARITY


def name_agreement(sentence: str, claim: str) -> float | None:
    """Share of the claim's names that the sentence names too (``None``: a side names nothing)."""
    return compare_names(names(sentence), names(claim))


@lru_cache(maxsize=1024)
def _by_initial(found: frozenset[str]) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for name in found:
        index.setdefault(name[0], []).append(name)
    return index


def _named_in(name: str, found: frozenset[str]) -> bool:
    if name in found:
        return True
    return any(_same_name(name, other) for other in _by_initial(found).get(name[0], ()))


def compare_names(left: frozenset[str], right: frozenset[str]) -> float | None:
    """Share of the names ``right`` that ``left`` names too (``name_agreement`` on names read already)."""
    if not left or not right:
        return None
    return sum(_named_in(name, left) for name in right) / len(right)
