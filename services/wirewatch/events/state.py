"""One event as the linker keeps it, and its small JSON-able record.

An :class:`EventState` is what a new article is compared with: the running mean of its members'
sentence vectors (the centroid), and bags (:mod:`~wirewatch.events.bags`) summing its members'
title-and-lead terms and keyphrases (per language: words only compare within a language),
entities and figures (language-blind), each cut to its heaviest entries so an event never
grows past a few kilobytes however many reports it gets. Around that, what the event document
needs: first and last time, article count, languages and sources, the label and summary (the
first report's title and lead sentence), the earliest report, reports per hour over the last
``GROWTH_HOURS``, the tracked claims seen in it, related events, and the display form of the
names and keyphrases its bags keep (bags hold normalised keys).

While an event is small (at most the linker's ``split_max_size`` reports, all of them still in
the window) it also lists its reports in the order they joined (``member_ids``); the linker keeps
a :class:`Member` for each, so it can tell when the event is two events and split it
(:meth:`EventState.split`).

``record()`` gives a plain dict (the centroid as base64 float32), ``from_record`` takes it
back exactly, so a Faust table or an Elasticsearch document can hold the state.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wirewatch.core.text import normalise
from wirewatch.core.vectors import DIM, Vectors
from wirewatch.enricher.sentences import split_sentences
from wirewatch.events.bags import Bag, add, prune, unit
from wirewatch.events.profile import Profile, Report

#: Entries kept per bag of an event (per language for terms and keyphrases).
BAG_SIZES = {"terms": 96, "keyphrases": 48, "entities": 64, "numbers": 48}
#: Sources named in an event's state (the most frequent); the count is exact up to there. A
#: deployment follows hundreds of feeds: a story every one of them reports is counted in full.
MAX_SOURCES = 1000
#: Hours of per-hour report counts kept (before the event's last report).
GROWTH_HOURS = 48
#: Tracked claims and related events kept per event.
MAX_CLAIMS = 50
MAX_RELATED = 10
HOUR = 3600


#: Entries kept per bag of a :class:`Member` (it is written with every article's record).
MEMBER_BAG_SIZES = {"terms": 32, "keyphrases": 16, "entities": 24, "numbers": 16}


def encode_vector(vector: Vectors, dtype: str = "<f4") -> str:
    """A vector as base64 of its little-endian ``dtype`` (float32, or ``<f2``: half the size)."""
    return base64.b64encode(np.asarray(vector, dtype=dtype).tobytes()).decode("ascii")


def decode_vector(text: str, dtype: str = "<f4") -> Vectors:
    """The float32 vector of :func:`encode_vector`."""
    return np.frombuffer(base64.b64decode(text), dtype=dtype).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Member:
    """What a small event keeps of one of its reports, to score two reports against each other
    and to rebuild the event's parts when it splits: the report's profile cut small
    (``MEMBER_BAG_SIZES``, weights to 4 decimals, the vector in float16), and what an event's
    document shows of its first report. Built once (:meth:`of`); :meth:`record` and
    :meth:`from_record` round-trip it exactly, so a restored linker scores with the very same
    values."""

    id: str
    time: float
    title: str
    summary: str
    source: str | None
    profile: Profile

    @classmethod
    def of(cls, report: Report, features: Profile) -> Member:
        """The member kept of ``report``, whose features are ``features``."""
        title, summary = _heading(report)
        return cls(
            id=report.id,
            time=report.time,
            title=title,
            summary=summary,
            source=report.source,
            profile=Profile(
                vector=decode_vector(encode_vector(features.vector, "<f2"), "<f2"),
                terms=_cut(features.terms, MEMBER_BAG_SIZES["terms"]),
                keyphrases=_cut(features.keyphrases, MEMBER_BAG_SIZES["keyphrases"]),
                entities=_cut(features.entities, MEMBER_BAG_SIZES["entities"]),
                numbers=_cut(features.numbers, MEMBER_BAG_SIZES["numbers"]),
                language=features.language,
            ),
        )

    def record(self) -> dict[str, Any]:
        """The member as a JSON-able dict."""
        p = self.profile
        return {
            "id": self.id,
            "time": self.time,
            "title": self.title,
            "summary": self.summary,
            "source": self.source,
            "language": p.language,
            "vector": encode_vector(p.vector, "<f2"),
            "terms": p.terms,
            "keyphrases": p.keyphrases,
            "entities": p.entities,
            "numbers": p.numbers,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Member:
        """The member of a :meth:`record`."""
        return cls(
            id=str(record["id"]),
            time=float(record["time"]),
            title=str(record["title"]),
            summary=str(record["summary"]),
            source=record.get("source"),
            profile=Profile(
                vector=decode_vector(record["vector"], "<f2"),
                terms=_bag(record["terms"]),
                keyphrases=_bag(record["keyphrases"]),
                entities=_bag(record["entities"]),
                numbers=_bag(record["numbers"]),
                language=str(record["language"]),
            ),
        )


@dataclass
class EventState:
    """A cluster of reports about one event (see the module doc). ``seq`` is its creation rank,
    the tie-breaker of every decision."""

    id: str
    seq: int
    first_time: float
    last_time: float
    label: str
    earliest_article_id: str
    earliest_time: float
    centroid: Vectors = field(default_factory=lambda: np.zeros(DIM, dtype=np.float32))
    count: int = 0
    terms: dict[str, Bag] = field(default_factory=dict)
    keyphrases: dict[str, Bag] = field(default_factory=dict)
    entities: Bag = field(default_factory=dict)
    numbers: Bag = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    merged_from: list[str] = field(default_factory=list)
    merged_into: str | None = None
    summary: str = ""
    earliest_source: str | None = None
    earliest_title: str = ""
    #: Reports per hour: hour start (seconds since the epoch, as a string) -> count.
    hours: dict[str, int] = field(default_factory=dict)
    #: Tracked claims seen in its reports: claim id -> claim text.
    claims: dict[str, str] = field(default_factory=dict)
    related: list[str] = field(default_factory=list)
    #: Display form of the normalised entity and keyphrase keys of the bags.
    names: dict[str, str] = field(default_factory=dict)
    #: Its reports in the order they joined, while it is small enough to be split (else empty).
    member_ids: list[str] = field(default_factory=list)
    #: The event it was split from (its first reports stayed there).
    split_from: str | None = None

    @classmethod
    def open(cls, event_id: str, seq: int, report: Report) -> EventState:
        """A new, empty event started by ``report`` (add the report with :meth:`add`)."""
        title, summary = _heading(report)
        return cls._opened(event_id, seq, report.id, report.time, title, summary, report.source)

    @classmethod
    def _opened(
        cls, event_id: str, seq: int, article_id: str, at: float, title: str, summary: str, source: str | None
    ) -> EventState:
        return cls(
            id=event_id,
            seq=seq,
            first_time=at,
            last_time=at,
            label=(title or summary)[:300],
            earliest_article_id=article_id,
            earliest_time=at,
            summary=summary,
            earliest_source=source,
            earliest_title=title,
        )

    def add(self, report: Report, features: Profile) -> None:
        """Count ``report`` in: centroid, bags, times, languages, sources."""
        self._count_in(report.id, report.time, report.source, report.title, features)
        for name in (*report.entities, *report.keyphrases):
            self.names.setdefault(normalise(name), name)
        self._trim()

    def split(self, keep: list[Member], move: list[Member], new_id: str, new_seq: int) -> EventState:
        """This event is two: it becomes the event of ``keep`` (its first reports; id, claims,
        relations and merges stay here) and the event of ``move`` is returned, ``split_from``
        this one. Both are rebuilt from their members, in the order they joined, and each is a
        related event of the other."""
        moved = EventState._rebuilt(new_id, new_seq, move, self.names)
        moved.split_from = self.id
        kept = EventState._rebuilt(self.id, self.seq, keep, self.names)
        for name in ("claims", "related", "merged_from", "merged_into", "split_from"):
            setattr(kept, name, getattr(self, name))
        self.__dict__.update(kept.__dict__)
        self.add_related([new_id])  # each names the other as a related event
        moved.add_related([self.id])
        return moved

    @classmethod
    def _rebuilt(cls, event_id: str, seq: int, members: list[Member], names: dict[str, str]) -> EventState:
        """An event of ``members`` (in the order they joined); display names from ``names``."""
        first = members[0]
        event = cls._opened(event_id, seq, first.id, first.time, first.title, first.summary, first.source)
        for member in members:
            event._count_in(member.id, member.time, member.source, member.title, member.profile)
        event.member_ids = [m.id for m in members]
        event.names = dict(names)
        event._trim()
        return event

    def _count_in(
        self, article_id: str, at: float, source: str | None, title: str, features: Profile
    ) -> None:
        self.count += 1
        vector = np.asarray(features.vector, dtype=np.float32)
        self.centroid = (self.centroid + (vector - self.centroid) / np.float32(self.count)).astype(np.float32)
        lang = features.language
        self.terms[lang] = _summed(self.terms.get(lang, {}), features.terms, BAG_SIZES["terms"])
        self.keyphrases[lang] = _summed(
            self.keyphrases.get(lang, {}), features.keyphrases, BAG_SIZES["keyphrases"]
        )
        self.entities = _summed(self.entities, features.entities, BAG_SIZES["entities"])
        self.numbers = _summed(self.numbers, features.numbers, BAG_SIZES["numbers"])
        self.first_time = min(self.first_time, at)
        self.last_time = max(self.last_time, at)
        if at < self.earliest_time:
            self.earliest_time, self.earliest_article_id = at, article_id
            self.earliest_source, self.earliest_title = source, title.strip()[:300]
        self.languages[lang] = self.languages.get(lang, 0) + 1
        if source:
            self.sources[source] = self.sources.get(source, 0) + 1
            if len(self.sources) > MAX_SOURCES:
                self.sources = _top_counts(self.sources, MAX_SOURCES)
        hour = str(int(at // HOUR * HOUR))
        self.hours[hour] = self.hours.get(hour, 0) + 1

    def add_claim(self, claim_id: str, text: str) -> None:
        """A tracked claim was seen in one of its reports (idempotent)."""
        self.claims[claim_id] = text[:500]
        if len(self.claims) > MAX_CLAIMS:
            self.claims = dict(sorted(self.claims.items())[:MAX_CLAIMS])

    def add_related(self, event_ids: tuple[str, ...] | list[str]) -> None:
        """Events a report of this one came close to (most recent first, without repeats)."""
        fresh = [e for e in event_ids if e != self.id]
        self.related = [*fresh, *(e for e in self.related if e not in fresh)][:MAX_RELATED]

    def _trim(self) -> None:
        """Drop hour counts older than ``GROWTH_HOURS`` and names no bag keeps."""
        horizon = self.last_time - GROWTH_HOURS * HOUR
        self.hours = {
            h: n for h, n in sorted(self.hours.items(), key=lambda i: int(i[0])) if int(h) > horizon
        }
        keys = set(self.entities)
        for bag in self.keyphrases.values():
            keys.update(bag)
        self.names = {k: v for k, v in sorted(self.names.items()) if k in keys}

    def absorb(self, other: EventState) -> None:
        """Merge ``other`` into this event (this one survives; ``other`` is marked merged)."""
        total = self.count + other.count
        if total:
            weighted = self.centroid * np.float32(self.count) + other.centroid * np.float32(other.count)
            self.centroid = (weighted / np.float32(total)).astype(np.float32)
        for name in ("terms", "keyphrases"):
            mine: dict[str, Bag] = getattr(self, name)
            for lang, bag in sorted(getattr(other, name).items()):
                mine[lang] = _summed(mine.get(lang, {}), bag, BAG_SIZES[name])
        self.entities = _summed(self.entities, other.entities, BAG_SIZES["entities"])
        self.numbers = _summed(self.numbers, other.numbers, BAG_SIZES["numbers"])
        self.count = total
        self.first_time = min(self.first_time, other.first_time)
        self.last_time = max(self.last_time, other.last_time)
        if (other.earliest_time, other.seq) < (self.earliest_time, self.seq):
            self.earliest_time, self.earliest_article_id = other.earliest_time, other.earliest_article_id
            self.earliest_source, self.earliest_title = other.earliest_source, other.earliest_title
        for hour, n in sorted(other.hours.items()):
            self.hours[hour] = self.hours.get(hour, 0) + n
        for claim_id, text in sorted(other.claims.items()):
            self.claims.setdefault(claim_id, text)
        # Both events' relations, this one's first; none to either event or to what merged into them.
        gone = {self.id, other.id, *self.merged_from, *other.merged_from}
        kept = [e for e in self.related if e not in gone]
        self.related = [*kept, *(e for e in other.related if e not in gone and e not in kept)][:MAX_RELATED]
        for key, name in sorted(other.names.items()):
            self.names.setdefault(key, name)
        for lang, n in sorted(other.languages.items()):
            self.languages[lang] = self.languages.get(lang, 0) + n
        for source, n in sorted(other.sources.items()):
            self.sources[source] = self.sources.get(source, 0) + n
        self.sources = _top_counts(self.sources, MAX_SOURCES)
        self.merged_from = [*self.merged_from, other.id, *other.merged_from]
        self.member_ids = [*self.member_ids, *other.member_ids]
        other.merged_into = self.id
        self._trim()

    def record(self) -> dict[str, Any]:
        """The event as a JSON-able dict (:meth:`from_record` gives it back exactly)."""
        return {
            "id": self.id,
            "seq": self.seq,
            "first_time": self.first_time,
            "last_time": self.last_time,
            "label": self.label,
            "earliest_article_id": self.earliest_article_id,
            "earliest_time": self.earliest_time,
            "centroid": encode_vector(self.centroid),
            "count": self.count,
            "terms": self.terms,
            "keyphrases": self.keyphrases,
            "entities": self.entities,
            "numbers": self.numbers,
            "languages": self.languages,
            "sources": self.sources,
            "merged_from": self.merged_from,
            "merged_into": self.merged_into,
            "summary": self.summary,
            "earliest_source": self.earliest_source,
            "earliest_title": self.earliest_title,
            "hours": self.hours,
            "claims": self.claims,
            "related": self.related,
            "names": self.names,
            "member_ids": self.member_ids,
            "split_from": self.split_from,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EventState:
        """The event of a :meth:`record`."""
        return cls(
            id=str(record["id"]),
            seq=int(record["seq"]),
            first_time=float(record["first_time"]),
            last_time=float(record["last_time"]),
            label=str(record["label"]),
            earliest_article_id=str(record["earliest_article_id"]),
            earliest_time=float(record["earliest_time"]),
            centroid=decode_vector(record["centroid"]),
            count=int(record["count"]),
            terms={str(k): _bag(v) for k, v in record["terms"].items()},
            keyphrases={str(k): _bag(v) for k, v in record["keyphrases"].items()},
            entities=_bag(record["entities"]),
            numbers=_bag(record["numbers"]),
            languages={str(k): int(v) for k, v in record["languages"].items()},
            sources={str(k): int(v) for k, v in record["sources"].items()},
            merged_from=[str(x) for x in record.get("merged_from", [])],
            merged_into=record.get("merged_into"),
            summary=str(record.get("summary", "")),
            earliest_source=record.get("earliest_source"),
            earliest_title=str(record.get("earliest_title", "")),
            hours={str(k): int(v) for k, v in record.get("hours", {}).items()},
            claims={str(k): str(v) for k, v in record.get("claims", {}).items()},
            related=[str(x) for x in record.get("related", [])],
            names={str(k): str(v) for k, v in record.get("names", {}).items()},
            member_ids=[str(x) for x in record.get("member_ids", [])],
            split_from=record.get("split_from"),
        )


def _summed(total: Bag, bag: Bag, size: int) -> Bag:
    out = dict(total)
    add(out, bag)
    return prune(out, size)


def _top_counts(counts: dict[str, int], size: int) -> dict[str, int]:
    kept = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:size]
    return dict(sorted(kept))


def _bag(value: dict[str, Any]) -> Bag:
    return {str(k): float(v) for k, v in value.items()}


def _cut(bag: Bag, size: int) -> Bag:
    """``bag``'s ``size`` heaviest entries, unit length, weights to 4 decimals (short in JSON)."""
    return {key: round(weight, 4) for key, weight in unit(prune(bag, size)).items()}


def _heading(report: Report) -> tuple[str, str]:
    """The title (cut) and the lead's first sentence: what an event shows of its first report."""
    first = split_sentences(report.lead_text)
    return report.title.strip()[:300], first[0].text[:500] if first else ""
