"""What the event linker knows of one article: a :class:`Report` in, a :class:`Profile` out.

A ``Report`` is the part of an enriched article that event linking reads (id, title, text, time,
language, entities, keyphrases, duplicate / reuse links). Its ``Profile`` holds the features
every candidate event is scored on:

- ``vector``: the multilingual sentence vector of the title and lead (``title + "\\n" + lead``,
  the lead being the first sentences of the text up to ``LEAD_CHARS``), from the project's one
  encoder (:func:`wirewatch.core.vectors.get_encoder`);
- ``terms``: index terms of the title and lead (:func:`wirewatch.matching.lexical.terms`: the
  project's normaliser, function words dropped, words cut to a prefix), a unit-length bag;
- ``keyphrases`` and ``entities``: the enricher's keyphrases and canonical entity names,
  normalised (:func:`wirewatch.core.text.normalise`), unit-length bags with weight 1 each;
- ``numbers``: the figures of the title and the first ``NUMBER_CHARS`` characters of the text
  (``5 000`` and ``5000`` alike; years and clock times left out) and its day-and-month dates, each
  one key (``17 octobre`` is ``10-17``, not the figure 17: two reports that both name a 17th
  are not alike for it), a unit-length bag of counts.

Bags are plain ``dict[str, float]``: small, JSON-able and cheap to compare (see ``bags``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from wirewatch.core.dates import iso_datetime
from wirewatch.core.models import EnrichedArticle
from wirewatch.core.text import normalise
from wirewatch.core.vectors import Vectors
from wirewatch.enricher.sentences import split_sentences
from wirewatch.events.bags import Bag, unit
from wirewatch.matching.agreement import calendar_dates
from wirewatch.matching.lexical import terms

#: Characters of the text (whole sentences, at least one) that make the lead.
LEAD_CHARS = 400
#: :func:`lead` cuts sentences out of this many times its limit of the text's first characters.
LEAD_SCAN = 4
#: Characters of the text whose figures are compared.
NUMBER_CHARS = 3000
#: Weight of an entity the title or lead names in the entity bag (others weigh 1).
LEAD_ENTITY_WEIGHT = 1.0
#: Years are not figures of an event: within a week's window nearly every report names the
#: current one.
_YEAR = re.compile(r"(?:19|20)\d\d$")


@dataclass(frozen=True, slots=True)
class Report:
    """One article as event linking sees it. ``time`` is seconds since the epoch: the
    publication time when known and plausible, else the time the stream saw the article."""

    id: str
    title: str
    text: str
    time: float
    language: str = "und"
    #: The outlet, as the article names it (``EnrichedArticle.source``: its site name, else its
    #: feed's name, else its host): what an event's sources and earliest source count and show.
    source: str | None = None
    entities: tuple[str, ...] = ()
    keyphrases: tuple[str, ...] = ()
    duplicate_of: str | None = None
    reused_from: tuple[str, ...] = ()
    #: The first sentences of the text (:func:`lead`), cut once: embedded, profiled, and the start
    #: of an event's summary.
    lead_text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lead_text", lead(self.title, self.text))

    @classmethod
    def from_article(cls, article: EnrichedArticle, at: float | None = None) -> Report:
        """The report of an enriched article. Its time is ``at`` when given, else the
        publication time, unless that is missing or later than the fetch (then the fetch time)."""
        if at is None:
            fetched = article.fetched_at.timestamp()
            published = article.published.timestamp() if article.published else None
            at = published if published is not None and published <= fetched else fetched
        return cls(
            id=article.id,
            title=article.title,
            text=article.text,
            time=at,
            language=article.language,
            source=article.source or article.source_domain,
            entities=tuple(e.name for e in article.entities),
            keyphrases=tuple(article.keyphrases),
            duplicate_of=article.duplicate_of,
            reused_from=tuple(article.reused_from),
        )


@dataclass(frozen=True, slots=True)
class Profile:
    """The features of one report that events are scored on (see the module doc)."""

    vector: Vectors
    terms: Bag
    keyphrases: Bag
    entities: Bag
    numbers: Bag
    language: str = "und"
    #: Keys (as in ``entities``) of the entities the title and lead name: who and where the
    #: report is about, sorted.
    lead_entities: tuple[str, ...] = ()


def lead(title: str, text: str, limit: int | None = None) -> str:
    """The first sentences of ``text`` up to ``limit`` (default ``LEAD_CHARS``) characters (at
    least one sentence), without a first sentence that only repeats the title."""
    limit = LEAD_CHARS if limit is None else limit
    sentences = [s.text for s in split_sentences(text[: limit * LEAD_SCAN])]
    if sentences and title.strip() and normalise(sentences[0]) == normalise(title):
        sentences = sentences[1:]
    out: list[str] = []
    size = 0
    for sentence in sentences:
        if out and size + len(sentence) > limit:
            break
        out.append(sentence)
        size += len(sentence) + 1
    return " ".join(out)


def vector_text(report: Report) -> str:
    """The text that is embedded: the title, a line break, the lead."""
    return f"{report.title.strip()}\n{report.lead_text}".strip()


def _names(values: Iterable[str], heavy: frozenset[str] = frozenset()) -> Bag:
    weight = LEAD_ENTITY_WEIGHT
    return unit(
        Counter({key: weight if key in heavy else 1.0 for key in (normalise(v) for v in values) if key})
    )


def named_in(names: Iterable[str], words: Iterable[str]) -> tuple[str, ...]:
    """Keys of the ``names`` whose every index term is among ``words`` (index terms of a
    text), sorted: the names that text spells out (a translated name, ``Mossoul`` for
    ``Mosul``, is not found)."""
    present = set(words)
    out = set()
    for name in names:
        key = normalise(name)
        parts = terms(name)
        if key and parts and all(p in present for p in parts):
            out.add(key)
    return tuple(sorted(out))


def language_of(report: Report) -> str:
    """The primary language subtag of the report, ``und`` when unknown."""
    code = (report.language or "und").replace("_", "-").split("-")[0].lower()
    return code or "und"


def profile_key(report: Report) -> tuple[str, str, str, tuple[str, ...], tuple[str, ...]]:
    """What :func:`profile` reads of ``report`` (its vector too is made of the title and lead):
    reports with equal keys, wire copies, have equal profiles."""
    text = report.text[: max(NUMBER_CHARS, LEAD_SCAN * LEAD_CHARS)]  # the figures' part, and the lead's
    return (report.title, text, report.language, report.entities, report.keyphrases)


def profile(report: Report, vector: Vectors) -> Profile:
    """The features of ``report``; ``vector`` is the encoding of :func:`vector_text`."""
    lead_terms = terms(f"{report.title}\n{report.lead_text}")
    in_lead = named_in(report.entities, lead_terms)
    dates, rest = calendar_dates(normalise(f"{report.title}\n{report.text[:NUMBER_CHARS]}"))
    figures = [t for t in terms(rest) if t.isdigit() and not _YEAR.match(t)]
    return Profile(
        vector=np.asarray(vector, dtype=np.float32),
        terms=unit(Counter(lead_terms)),
        keyphrases=_names(report.keyphrases),
        entities=_names(report.entities, frozenset(in_lead)),
        numbers=unit(Counter(figures + dates)),
        language=language_of(report),
        lead_entities=in_lead,
    )


def timestamp(value: str | None) -> float | None:
    """Seconds since the epoch of an ISO 8601 time (naive means UTC), or None."""
    moment = iso_datetime(value)
    return moment.timestamp() if moment is not None else None
