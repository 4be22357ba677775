# ruff: noqa: RUF001 - typographic quotes, dashes and hyphens are what this module handles.
"""Rule-based sentence segmentation for French and English news text, with exact offsets.

Every ``Sentence`` satisfies ``text[s.start:s.end] == s.text``, and ``s.text`` has no
leading or trailing white space. Rules, in order:

* a line break ends a sentence, unless it looks like a hard wrap (the line ends without
  terminal punctuation and the next one starts with a lower-case letter);
* ``.``, ``!``, ``?`` or ``…`` (with any closing quotes or brackets after them) followed by
  white space ends a sentence when the next word starts like a sentence (capital, digit,
  opening quote or dash), except after a known abbreviation (``M.``, ``Mr.``, ``Dr.``,
  ``gén.``, …), a single initial (``J. Smith``) or a dotted acronym (``U.S.``) that is not
  followed by a typical sentence opener;
* a full stop glued to a capitalised word (``États-Unis.Les``), a common extraction
  defect, ends a sentence too; numbers (``5.000``, ``3.5``) and domains never split;
* inside a guillemet quotation («…», “…”) that closes in the same paragraph, nothing
  splits: the quotation and its attribution stay one sentence.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

__all__ = ["Sentence", "split_sentences"]


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence: its text and its char span ``[start, end)`` in the original text."""

    text: str
    start: int
    end: int


def _words(block: str) -> frozenset[str]:
    """The white-space separated words of ``block``."""
    return frozenset(block.split())


# Abbreviations that end with a full stop but do not end a sentence (compared case-folded).
_ABBREVIATIONS = _words(
    """
    m mm mme mmes mlle mlles mgr dr pr prof st ste sts mr mrs ms messrs jr gen gén gal col cdt
    cmdt lt lieut capt cpt sgt adm amb sen rep gov pres prés rev hon fig figs vol vols nº ch
    chap p pp env cf vs al approx av apr jc dept univ ave blvd bd jan janv feb fév févr mar avr
    jun juil jul aug aoû sep sept oct nov dec déc tél tel
    """
)

# Words that typically open a sentence: after a dotted acronym (``U.S.``) they mark a break.
_SENTENCE_OPENERS = _words(
    """
    the a an it he she they we i this that these those there but and in on at for however
    meanwhile after before when while its his her their our le la les l il ils elle elles on
    nous je un une des ce cet cette ces mais et en dans selon pour après avant alors lors quand
    depuis cela ceci
    """
)

_OPENING_QUOTES = "«“„‹\"'‘"
_CLOSERS = "»”\"'’›)]}"
_TERMINAL = ".!?…"

# A candidate boundary: terminal punctuation, optional closers, then white space.
_BOUNDARY = re.compile(r"[.!?…]+(?:[\"'’]|[ \u00a0\u202f]?[»”›)\]}])*(?=\s)")
# A full stop glued to the next sentence: "Unis.Les". (The look-behind for the two letters
# before it comes after the full stop, so that the regex engine skips ahead to full stops.)
_GLUED = re.compile(r"\.(?<=[^\W\d_]{2}\.)(?=[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ])")
_NEXT_WORD = re.compile(r"\s*([^\s]*)")
_LETTERS = re.compile(r"[^\W\d_]+")
_INITIALS = re.compile(r"(?:[^\W\d_]\.-?)*[^\W\d_]")
_HARD_WRAP_NEXT = re.compile(r"[a-zà-öø-ÿ]")
_LINE_BREAK = re.compile(r"\r\n|[\n\r\u2028\u2029\x0b\x0c\x1c-\x1e\x85]")
_WORD_STOPS = "«“„\"'‘(["


def split_sentences(text: str) -> list[Sentence]:
    """Split ``text`` into sentences with char offsets into ``text``. Never raises."""
    sentences: list[Sentence] = []
    for para_start, para_end in _paragraphs(text):
        cut = para_start
        for boundary in _boundaries(text, para_start, para_end):
            _emit(text, cut, boundary, sentences)
            cut = boundary
        _emit(text, cut, para_end, sentences)
    return sentences


def _emit(text: str, start: int, end: int, out: list[Sentence]) -> None:
    """Append ``text[start:end]`` stripped of white space, when anything is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        out.append(Sentence(text[start:end], start, end))


def _paragraphs(text: str) -> list[tuple[int, int]]:
    """Spans of lines, hard-wrapped lines joined back together."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _LINE_BREAK.finditer(text):
        nxt = match.end()
        while nxt < len(text) and text[nxt] in " \t":
            nxt += 1
        last = match.start()
        while last > start and text[last - 1].isspace():
            last -= 1
        wrapped = (
            last > start
            and text[last - 1] not in _TERMINAL + _CLOSERS + ":;"
            and nxt < len(text)
            and bool(_HARD_WRAP_NEXT.match(text[nxt]))
        )
        if not wrapped:
            spans.append((start, match.start()))
            start = match.end()
    spans.append((start, len(text)))
    return spans


def _quoted_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of guillemet/curly quotations that open and close within ``[start, end)``."""
    spans: list[tuple[int, int]] = []
    for opener, closer in (("«", "»"), ("“", "”")):
        pos = start
        while True:
            open_at = text.find(opener, pos, end)
            if open_at < 0:
                break
            close_at = text.find(closer, open_at + 1, end)
            if close_at < 0:
                break
            spans.append((open_at, close_at))
            pos = close_at + 1
    return spans


def _boundaries(text: str, start: int, end: int) -> list[int]:
    """Offsets (exclusive ends) where a sentence stops inside one paragraph."""
    quoted = _Quoted(_quoted_spans(text, start, end))
    cuts: list[int] = []
    for match in _BOUNDARY.finditer(text, start, end):
        if match.end() >= end or match.end() - 1 in quoted:
            continue
        if _is_break(text, match.start(), match.end(), end):
            cuts.append(match.end())
    for match in _GLUED.finditer(text, start, end):
        if match.start() in quoted:
            continue
        before = _word_before(text, match.start(), start)
        if "/" in before or "www" in before.casefold() or "@" in before:
            continue
        if _letters(before).casefold() in _ABBREVIATIONS:
            continue
        cuts.append(match.end())
    return sorted(set(cuts))


class _Quoted:
    """Quotation spans, for "is this position strictly inside one?" in O(log n)."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        spans = sorted(spans)
        self.starts = [a for a, _ in spans]
        self.max_ends: list[int] = []
        for _, end in spans:
            self.max_ends.append(max(end, self.max_ends[-1]) if self.max_ends else end)

    def __contains__(self, pos: int) -> bool:
        index = bisect.bisect_left(self.starts, pos) - 1
        return index >= 0 and self.max_ends[index] > pos


def _letters(word: str) -> str:
    return "".join(_LETTERS.findall(word))


def _word_before(text: str, pos: int, floor: int = 0) -> str:
    """The run of non-space chars ending at ``pos`` (opening quotes and brackets excluded)."""
    i = pos
    while i > floor and not text[i - 1].isspace() and text[i - 1] not in _WORD_STOPS:
        i -= 1
    return text[i:pos]


def _next_word(text: str, pos: int, end: int) -> str:
    """The run of non-space chars after the white space at ``pos``."""
    while pos < end and text[pos].isspace():
        pos += 1
    stop = pos
    while stop < end and not text[stop].isspace():
        stop += 1
    return text[pos:stop]


def _is_break(text: str, punct_start: int, punct_end: int, para_end: int) -> bool:
    """Whether the punctuation at ``[punct_start, punct_end)`` ends a sentence."""
    nxt = _next_word(text, punct_end, para_end)
    if not nxt:
        return False
    first = nxt[0]
    if not (first.isupper() or first.isdigit() or first in _OPENING_QUOTES or first in "-–—([¿¡…"):
        return False
    punct = text[punct_start:punct_end]
    if not punct.startswith(".") or punct.startswith(".."):
        return True  # ! ? … and "..." before a capital end a sentence.
    if len(punct) > 1:
        return True  # a full stop, then closing quotes or brackets.
    word = _word_before(text, punct_start)
    if not word:
        return True
    if _letters(word).casefold() in _ABBREVIATIONS and "-" not in word:
        return False
    if _INITIALS.fullmatch(word) and word[-1].isupper():
        # An initial ("J.") or a dotted acronym ("U.S.", "É.-U."): a break only before an opener.
        return _letters(nxt).casefold() in _SENTENCE_OPENERS
    return True
