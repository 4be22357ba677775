"""Online event clustering: each new report joins the event it belongs to, or opens a new one.

:class:`EventLinker` is single-pass and deterministic for a given input order (ties go to the
older event). For each :class:`~wirewatch.events.profile.Report`:

1. **Copies first.** A duplicate joins its original's event, a text reuse its (first known)
   source's event — whatever their content scores.
2. **Candidates.** Events whose time span is within ``window_days`` of the report's time; the
   ``candidates`` nearest by centroid cosine are scored in full.
3. **Score**: a weighted mean of five similarities between
   the report's :class:`~wirewatch.events.profile.Profile` and the event —
   sentence-vector cosine to the centroid, and cosines of the bags of title-and-lead terms and
   keyphrases (same language only), entities and figures. A bag that either side lacks (no
   entities found, no figures, a language the event has no words in) leaves the mean instead
   of counting as 0, so a French report is compared with an English event on vectors, names and
   figures (a report with fewer than ``full_figures`` figures gives its figures less weight).
   Minus ``time_decay`` times the time gap in windows (at most 1). When nothing but
   the vectors can be compared, the report joins only if the cosine alone reaches
   ``vector_only_threshold`` (unrelated news is near 0.2 and two events of one kind near 0.5).
4. **Decision.** The best event at or above ``threshold`` is joined; else a new event opens,
   its id ``stable_id("event", first article id)``.
5. **Merge.** When the report scores at least ``merge_threshold`` with two or more events, they
   are one event: they merge into the oldest (first seen, then created), the others are
   recorded as ``merged_into`` it, and their ids resolve to it from then on (:meth:`resolve`).

6. **Split.** While an event is small (``split_min_size`` to ``split_max_size`` reports, every
   one still in the window), each report that joins it is scored against each of its reports
   (the same fused similarity, both ways, averaged; :meth:`EventLinker.pair_score`), and the
   reports are cut in two by average-linkage clustering of those scores. When both groups have
   ``split_min_part`` reports or more and their mean score across is under ``split_ratio``
   times their mean score within, the event was two events (typically: the first reports of a
   second event of the same kind joined the first, and the rest followed them): the group
   with the event's first report keeps its id, the other becomes a new event (``split_from``
   it; its id ``stable_id("event", old id, "split", its first article id)``), and its articles
   move there (``Link.moved``). Both events are rebuilt from what they keep of their reports
   (:class:`~wirewatch.events.state.Member`).

7. **Related.** Other candidates scoring at least ``related_threshold`` (the joined and merged
   events aside) are returned as ``Link.related``, at most ``max_related``, best first (ties:
   older event): a story-level link for display. Nothing is joined or merged because of it.

Opt-in (off by default, see ``benchmarks/RESULTS.md``): events of ``long_count`` reports or more
stay joinable ``long_window_days`` after their last report (``late_decay`` per window of gap
beyond the first); ``novelty_penalty`` lowers the score when the entities the report's title and
lead spell out (``Profile.lead_entities``) are missing from the event, past ``novelty_floor``.

Events leave the state ``window_days`` after their last report (or ``long_window_days``),
articles (kept to find the event of a duplicate's original) ``window_days`` after their own time.

State: :meth:`snapshot` gives a JSON-able dict of small records (one per live event, ~5 KB,
plus one short triple per recent article and the merge map); :meth:`restore` takes it back and
continues exactly as the linker it came from would have.

Decisions depend on the order of reports, so the stream must run one linker over one ordered
sequence: a single-partition stage after the enricher (as the enricher's copy linking does),
its state in a table. Cost: one sentence encoding (a few milliseconds) plus one to two
milliseconds of scoring per report, splits included (``benchmarks/RESULTS.md``).

The defaults (:class:`LinkerConfig`) were chosen once and are used unchanged on every dataset
and in the stream: weights and threshold on the train and dev topics of ECB+ only
(``benchmarks/bench_clustering.py``); window, time decay, merge threshold and the vector-only
bar set beforehand (ECB+ has no dates and never needed a merge); the split's ratio and sizes
later, on the same ECB+ topics only, with the rest unchanged (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from wirewatch.core.ids import stable_id
from wirewatch.core.recent import RecentResults
from wirewatch.core.vectors import DIM, SentenceEncoder, Vectors, get_encoder
from wirewatch.events.bags import Bag, cosine
from wirewatch.events.profile import Profile, Report, profile, profile_key, vector_text
from wirewatch.events.state import EventState, Member

if TYPE_CHECKING:
    from wirewatch.core.settings import Settings

SNAPSHOT_VERSION = 1
DAY = 86400.0

Reason = Literal["new", "similar", "duplicate", "reuse", "known"]


@dataclass(frozen=True)
class Weights:
    """Weights of the similarities in the score (they need not sum to 1)."""

    vector: float = 0.30
    terms: float = 0.20
    keyphrases: float = 0.10
    entities: float = 0.25
    numbers: float = 0.15


@dataclass(frozen=True)
class LinkerConfig:
    """Every setting of the linker. The defaults are the production and benchmark defaults."""

    #: Events a report can join: those with a report within this many days of it.
    window_days: float = 7.0
    #: Score a report needs to join an event (else it opens one).
    threshold: float = 0.38
    #: Score a report needs with each of two or more events to merge them.
    merge_threshold: float = 0.60
    #: Score lost at a time gap of one window (proportionally less for shorter gaps).
    time_decay: float = 0.10
    #: Cosine needed when only the sentence vectors can be compared.
    vector_only_threshold: float = 0.66
    #: Distinct figures a report needs for the figures to weigh in full (fewer: less).
    full_figures: int = 3
    #: Events, nearest by centroid cosine, whose full score is computed.
    candidates: int = 48
    #: Events of at least ``long_count`` reports stay joinable this many days after their last
    #: report (a single report: ``window_days``).
    long_window_days: float = 7.0
    long_count: int = 2
    #: Score lost per window of time gap beyond the first window (the first costs ``time_decay``).
    late_decay: float = 0.0
    #: Score lost when none of the entities the report's title and lead name is in the event
    #: (proportionally less when some are).
    novelty_penalty: float = 0.0
    #: Share of those entities that may be missing at no cost (the penalty grows from there).
    novelty_floor: float = 0.0
    #: Score (below the join) that makes another event *related* to the report; at most
    #: ``max_related`` of them, best first.
    related_threshold: float = 0.28
    max_related: int = 3
    #: An event of ``split_min_size`` to ``split_max_size`` reports splits in two groups of at
    #: least ``split_min_part`` when their mean pair score across is under ``split_ratio`` times
    #: their mean pair score within (0: never split).
    split_ratio: float = 0.75
    split_min_size: int = 8
    split_max_size: int = 24
    split_min_part: int = 3
    weights: Weights = field(default_factory=Weights)

    @classmethod
    def from_settings(cls, settings: Settings) -> LinkerConfig:
        """The defaults, with the window of ``WIREWATCH_EVENT_WINDOW_DAYS`` when it is set."""
        return cls(window_days=settings.event_window_days) if settings.event_window_days else cls()


@dataclass(frozen=True)
class Link:
    """What happened to one report: the event it is in now (a survivor id, never a merged one),
    why, its score (None for copies and new events) and the events merged into it."""

    article_id: str
    event_id: str
    reason: Reason
    score: float | None = None
    merged: tuple[str, ...] = ()
    expired: tuple[str, ...] = ()
    #: Other live events the report came close to without joining (a story-level link, for
    #: "related events"); never merged.
    related: tuple[str, ...] = ()
    #: The event split off the joined one by this report (see the module doc), and the earlier
    #: articles that moved to it (this report may be among its articles too: ``event_id``).
    split_off: str | None = None
    moved: tuple[str, ...] = ()


class EventLinker:
    """Online single-pass event clustering with its state (see the module doc)."""

    #: Profiles of the last reports linked, by what a profile is made of: a wire copy is not
    #: profiled again (nor embedded).
    RECENT_PROFILES = 512

    def __init__(self, config: LinkerConfig | None = None, encoder: SentenceEncoder | None = None) -> None:
        self.config = config or LinkerConfig()
        self._encoder = encoder
        self._profiles: RecentResults[tuple[Any, ...], Profile] = RecentResults(
            "profiles", self.RECENT_PROFILES
        )
        self.events: dict[str, EventState] = {}
        self.merged: dict[str, str] = {}
        self.articles: dict[str, tuple[str, float]] = {}
        #: What small events keep of their reports (article id -> member), to split them.
        self.members: dict[str, Member] = {}
        self._pairs: dict[str, dict[tuple[str, str], float]] = {}  # event id -> pair scores
        self.clock = float("-inf")
        self.next_seq = 0
        # Unit centroids of live events, one row per slot, for the candidate search.
        self._matrix = np.zeros((64, DIM), dtype=np.float32)
        self._first = np.zeros(64, dtype=np.float64)
        self._last = np.zeros(64, dtype=np.float64)
        self._until = np.zeros(64, dtype=np.float64)
        self._seq = np.zeros(64, dtype=np.int64)
        self._alive = np.zeros(64, dtype=bool)
        self._used = 0  # slots ever used (live or free)
        self._slot: dict[str, int] = {}
        self._free: list[int] = []
        self._slot_event: dict[int, str] = {}

    # --- public API -----------------------------------------------------------------------------

    @property
    def encoder(self) -> SentenceEncoder:
        """The sentence encoder (the process-wide one unless another was given)."""
        if self._encoder is None:
            self._encoder = get_encoder()
        return self._encoder

    def vector(self, report: Report) -> Vectors:
        """The sentence vector :meth:`link` uses for ``report``."""
        return self.encoder.encode_one(vector_text(report))

    def profile(self, report: Report) -> Profile:
        """The profile :meth:`link` uses for ``report``, from the recent ones when a report with
        the same title, text, language, entities and keyphrases (a wire copy) was profiled."""
        key = profile_key(report)
        features = self._profiles.get(key)
        if features is None:
            features = profile(report, self.vector(report))
            self._profiles.put(key, features)
        return features

    def link(self, report: Report, vector: Vectors | None = None) -> Link:
        """Link one report (``vector``: its :meth:`vector`, when already computed) and update
        the state. A report already linked gets its event back and changes nothing."""
        expired = self._advance(report.time)
        known = self.articles.get(report.id)
        if known is not None:
            return Link(report.id, self.resolve(known[0]), "known", expired=expired)
        features = self.profile(report) if vector is None else profile(report, vector)
        source = self._copy_source(report)
        if source is not None:
            event, reason = source
            self._join(event, report, features)
            return self._split_link(Link(report.id, event.id, reason, expired=expired), event)
        scored = self._score_candidates(features, report.time)
        if not scored or scored[0][0] < self.config.threshold:
            related = self._related(scored, ())
            event = self._open(report, features)
            return Link(report.id, event.id, "new", expired=expired, related=related)
        best_score, _, best = scored[0]
        strong = [e for s, _, e in scored if s >= self.config.merge_threshold]
        merged: tuple[str, ...] = ()
        if len(strong) > 1 and best in strong:
            best, merged = self._merge(strong)
        related = self._related(scored, (best.id, *merged))
        self._join(best, report, features)
        link = Link(report.id, best.id, "similar", round(best_score, 6), merged, expired, related)
        return self._split_link(link, best)

    def pair_score(self, a: Member, b: Member) -> float:
        """How alike two reports are: the fused similarity of each to the other, averaged
        (no time decay: an event's reports are compared whatever their gap)."""
        return (
            self._member_similarity(a.profile, b.profile) + self._member_similarity(b.profile, a.profile)
        ) / 2

    def _member_similarity(self, mine: Profile, theirs: Profile) -> float:
        same = mine.language == theirs.language  # words compare within a language only
        return self._similarity(
            mine,
            theirs.vector,
            theirs.terms if same else {},
            theirs.keyphrases if same else {},
            theirs.entities,
            theirs.numbers,
        )

    @property
    def horizon(self) -> float:
        """The start of the window: articles dated before it are dropped at the next report."""
        return self.clock - self.config.window_days * DAY

    def resolve(self, event_id: str) -> str:
        """The live id of ``event_id``: itself, or the event it was merged into (transitively)."""
        seen = 0
        while event_id in self.merged and seen < 1000:
            event_id = self.merged[event_id]
            seen += 1
        return event_id

    def event_of(self, article_id: str) -> str | None:
        """The (resolved) event of a recent article, or None."""
        known = self.articles.get(article_id)
        return self.resolve(known[0]) if known is not None else None

    def event(self, event_id: str) -> EventState | None:
        """The live state of an event (merged ids resolve to their survivor), or None."""
        return self.events.get(self.resolve(event_id))

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-able records (see :meth:`restore`)."""
        return {
            "version": SNAPSHOT_VERSION,
            "config": asdict(self.config),
            "clock": self.clock if self.clock != float("-inf") else None,
            "next_seq": self.next_seq,
            "events": [e.record() for e in sorted(self.events.values(), key=lambda e: e.seq)],
            "merged": dict(self.merged),
            "articles": [[aid, eid, t] for aid, (eid, t) in self.articles.items()],
            "members": [m.record() for m in self.members.values()],
        }

    @classmethod
    def restore(
        cls,
        snapshot: dict[str, Any],
        config: LinkerConfig | None = None,
        encoder: SentenceEncoder | None = None,
    ) -> EventLinker:
        """A linker in the state of ``snapshot``; it decides exactly as the one that made it."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unknown event-linker snapshot version: {snapshot.get('version')!r}")
        linker = cls(config, encoder)
        clock = snapshot.get("clock")
        linker.clock = float(clock) if clock is not None else float("-inf")
        linker.next_seq = int(snapshot["next_seq"])
        for record in sorted(snapshot["events"], key=lambda r: int(r["seq"])):
            linker._add_live(EventState.from_record(record))
        linker.merged = {str(k): str(v) for k, v in snapshot["merged"].items()}
        linker.articles = {str(a): (str(e), float(t)) for a, e, t in snapshot["articles"]}
        members = {m.id: m for m in map(Member.from_record, snapshot.get("members", []))}
        for event in linker.events.values():
            ids = event.member_ids
            if ids and len(ids) == event.count and all(i in members and i in linker.articles for i in ids):
                linker.members.update((i, members[i]) for i in ids)
            else:  # some of its reports left the window (or it grew): it is no longer split
                event.member_ids = []
        return linker

    # --- steps ----------------------------------------------------------------------------------

    def _advance(self, at: float) -> tuple[str, ...]:
        """Move the clock to ``at`` (never back) and drop what left the window."""
        if at <= self.clock:
            return ()
        self.clock = at
        horizon = self.horizon
        used = self._used
        old = np.flatnonzero(self._alive[:used] & (self._until[:used] < at))
        expired = sorted((self.events[self._slot_event[int(s)]] for s in old), key=lambda e: e.seq)
        for event in expired:
            self._forget_members(event)
            self._drop_live(event.id)
            for merged_id in event.merged_from:
                self.merged.pop(merged_id, None)
        # Articles come roughly in time order: drop from the oldest insertion until a recent one.
        stale: list[str] = []
        for article_id, (_, t) in self.articles.items():
            if t >= horizon:
                break
            stale.append(article_id)
        for article_id in stale:
            event_id, _ = self.articles.pop(article_id)
            if article_id in self.members:  # its event can no longer be split
                owner = self.events.get(self.resolve(event_id))
                if owner is not None:
                    self._forget_members(owner)
        return tuple(e.id for e in expired)

    def _related(
        self, scored: list[tuple[float, int, EventState]], taken: tuple[str, ...]
    ) -> tuple[str, ...]:
        """Ids of the best-scoring other events at or above ``related_threshold``."""
        out = [e.id for s, _, e in scored if s >= self.config.related_threshold and e.id not in taken]
        return tuple(out[: self.config.max_related])

    def _lifetime(self, event: EventState) -> float:
        """Seconds an event stays joinable after its last report."""
        c = self.config
        days = c.long_window_days if event.count >= c.long_count else c.window_days
        return max(days, c.window_days) * DAY

    def _copy_source(self, report: Report) -> tuple[EventState, Reason] | None:
        """The event of the report's original (duplicate) or first known reused source."""
        links: list[tuple[str, Reason]] = []
        if report.duplicate_of:
            links.append((report.duplicate_of, "duplicate"))
        links.extend((source, "reuse") for source in report.reused_from)
        for article_id, reason in links:
            event_id = self.event_of(article_id)
            if event_id is not None and event_id in self.events:
                return self.events[event_id], reason
        return None

    def _score_candidates(self, features: Profile, at: float) -> list[tuple[float, int, EventState]]:
        """Candidates with their scores, best first (ties: older event first)."""
        if not self.events:
            return []
        window = self.config.window_days * DAY
        used = self._used
        # Rounded, and ties to the older event: the same choice whatever the rows' layout.
        near_all = np.round(self._matrix[:used] @ np.asarray(features.vector, dtype=np.float32), 5)
        ok = self._alive[:used] & (self._until[:used] >= at) & (self._first[:used] <= at + window)
        slots = np.flatnonzero(ok)
        near = near_all[slots]
        top = self.config.candidates
        if len(slots) > top:  # keep every slot that ties with the last one kept, then sort those
            bar = np.partition(near, len(near) - top)[len(near) - top]
            keep = near >= bar
            slots, near = slots[keep], near[keep]
        order = np.lexsort((self._seq[slots], -near))[:top]
        out: list[tuple[float, int, EventState]] = []
        for position in order:
            event = self.events[self._slot_event[int(slots[position])]]
            gap = max(0.0, at - event.last_time, event.first_time - at)
            out.append((self._score(features, event, gap / window), event.seq, event))
        out.sort(key=lambda item: (-item[0], item[1]))
        return out

    def _score(self, features: Profile, event: EventState, gap: float) -> float:
        """The fused score of ``features`` against ``event``; ``gap`` in windows."""
        lang = features.language
        mean = self._similarity(
            features,
            event.centroid,
            event.terms.get(lang, {}),
            event.keyphrases.get(lang, {}),
            event.entities,
            event.numbers,
        )
        c = self.config
        if c.novelty_penalty > 0 and features.lead_entities and event.entities:
            missing = sum(1 for key in features.lead_entities if key not in event.entities)
            share = missing / len(features.lead_entities)
            mean -= c.novelty_penalty * max(0.0, share - c.novelty_floor) / (1.0 - c.novelty_floor)
        return mean - c.time_decay * min(1.0, gap) - c.late_decay * max(0.0, gap - 1.0)

    def _similarity(
        self, features: Profile, centroid: Vectors, terms: Bag, keyphrases: Bag, entities: Bag, numbers: Bag
    ) -> float:
        """The weighted mean of the similarities of ``features`` and an event's (or a report's)
        centroid and bags (terms and keyphrases: those of the report's language); see step 3."""
        w = self.config.weights
        centre = centroid.astype(np.float64)
        length = float(np.sqrt(centre @ centre))
        vector = float(features.vector.astype(np.float64) @ centre) / length if length > 0 else 0.0
        parts: list[tuple[float, float]] = [(w.vector, vector)]
        for weight, mine, theirs in (
            (w.terms, features.terms, terms),
            (w.keyphrases, features.keyphrases, keyphrases),
            (w.entities, features.entities, entities),
            (
                w.numbers * min(1.0, len(features.numbers) / self.config.full_figures),
                features.numbers,
                numbers,
            ),
        ):
            if weight > 0 and mine and theirs:
                parts.append((weight, _cosine(mine, theirs)))
        if len(parts) == 1:  # nothing but the vector to go on: it must be close on its own
            return vector - (self.config.vector_only_threshold - self.config.threshold)
        total = sum(weight for weight, _ in parts)
        return sum(weight * value for weight, value in parts) / total

    def _open(self, report: Report, features: Profile) -> EventState:
        event = EventState.open(stable_id("event", report.id), self.next_seq, report)
        self.next_seq += 1
        self._add_live(event)
        self._join(event, report, features)
        return event

    def _join(self, event: EventState, report: Report, features: Profile) -> None:
        event.add(report, features)
        self.articles[report.id] = (event.id, report.time)
        self._remember(event, report, features)
        self._set_row(event)

    # --- splits -----------------------------------------------------------------------------------

    def _remember(self, event: EventState, report: Report, features: Profile) -> None:
        """Keep the new report's member while ``event`` may still be split."""
        c = self.config
        if c.split_ratio <= 0:
            return
        if len(event.member_ids) == event.count - 1 and event.count <= c.split_max_size:
            event.member_ids.append(report.id)
            self.members[report.id] = Member.of(report, features)
        else:
            self._forget_members(event)

    def _forget_members(self, event: EventState) -> None:
        for article_id in event.member_ids:
            self.members.pop(article_id, None)
        event.member_ids = []
        self._pairs.pop(event.id, None)

    def _split_link(self, link: Link, event: EventState) -> Link:
        """``link`` after the split of ``event`` its report may have caused."""
        moved = self._split(event)
        if moved is None:
            return link
        now = self.articles[link.article_id][0]
        others = tuple(m.id for m in moved.members if m.id != link.article_id)
        return replace(link, event_id=now, split_off=moved.event.id, moved=others)

    def _split(self, event: EventState) -> _Split | None:
        """Split ``event`` in two when its reports are two groups (see the module doc)."""
        c = self.config
        ids = event.member_ids
        if c.split_ratio <= 0 or not c.split_min_size <= event.count <= c.split_max_size:
            return None
        if len(ids) != event.count or not all(i in self.articles for i in ids):
            return None
        members = [self.members[i] for i in ids]
        pairs = self._pair_matrix(event.id, members)
        first, second = bisect(pairs)
        if min(len(first), len(second)) < c.split_min_part:
            return None
        across = float(pairs[np.ix_(first, second)].mean())
        within = (pairs[np.ix_(first, first)].sum() + pairs[np.ix_(second, second)].sum()) / (
            len(first) * (len(first) - 1) + len(second) * (len(second) - 1)
        )
        if across >= c.split_ratio * float(within):
            return None
        keep, move = (first, second) if 0 in first else (second, first)
        kept = [members[i] for i in keep]
        moving = [members[i] for i in move]
        new_id = stable_id("event", event.id, "split", moving[0].id)
        new = event.split(kept, moving, new_id, self.next_seq)
        self.next_seq += 1
        self._add_live(new)
        self._set_row(event)
        for member in moving:
            self.articles[member.id] = (new.id, self.articles[member.id][1])
        cache = self._pairs.pop(event.id, {})
        for part in (event, new):
            mine = set(part.member_ids)
            self._pairs[part.id] = {k: v for k, v in cache.items() if k[0] in mine and k[1] in mine}
        return _Split(new, tuple(moving))

    def _pair_matrix(self, event_id: str, members: list[Member]) -> np.ndarray:
        """The pair scores of ``members`` (computed once per pair while the event lives)."""
        cache = self._pairs.setdefault(event_id, {})
        n = len(members)
        out = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                key = (members[i].id, members[j].id)
                value = cache.get(key)
                if value is None:
                    value = cache[key] = self.pair_score(members[i], members[j])
                out[i, j] = out[j, i] = value
        return out

    def _merge(self, strong: list[EventState]) -> tuple[EventState, tuple[str, ...]]:
        """Merge ``strong`` events into the oldest; the survivor and the merged ids."""
        ordered = sorted(strong, key=lambda e: (e.first_time, e.seq))
        survivor, others = ordered[0], ordered[1:]
        for other in others:
            whole = len(survivor.member_ids) == survivor.count and len(other.member_ids) == other.count
            survivor.absorb(other)  # their reports in one list: the survivor's, then the other's
            self.merged[other.id] = survivor.id
            self._drop_live(other.id)
            self._pairs.pop(other.id, None)
            if not whole:
                self._forget_members(survivor)
        self._set_row(survivor)
        return survivor, tuple(o.id for o in others)

    # --- live events and their matrix rows -------------------------------------------------------

    def _add_live(self, event: EventState) -> None:
        self.events[event.id] = event
        if self._free:
            slot = self._free.pop()
        else:
            slot = self._used
            self._used += 1
            if slot >= len(self._matrix):
                self._grow()
        self._slot[event.id] = slot
        self._slot_event[slot] = event.id
        self._alive[slot] = True
        self._set_row(event)

    def _grow(self) -> None:
        size = len(self._matrix)
        matrix = np.zeros((size * 2, DIM), dtype=np.float32)
        matrix[:size] = self._matrix
        self._matrix = matrix
        self._first = np.concatenate([self._first, np.zeros(size)])
        self._last = np.concatenate([self._last, np.zeros(size)])
        self._until = np.concatenate([self._until, np.zeros(size)])
        self._seq = np.concatenate([self._seq, np.zeros(size, dtype=np.int64)])
        self._alive = np.concatenate([self._alive, np.zeros(size, dtype=bool)])

    def _drop_live(self, event_id: str) -> None:
        self.events.pop(event_id, None)
        slot = self._slot.pop(event_id, None)
        if slot is not None:
            del self._slot_event[slot]
            self._alive[slot] = False
            self._matrix[slot] = 0.0
            self._free.append(slot)

    def _set_row(self, event: EventState) -> None:
        slot = self._slot.get(event.id)
        if slot is None:
            return
        length = float(np.linalg.norm(event.centroid))
        self._matrix[slot] = event.centroid / length if length > 0 else 0.0
        self._first[slot], self._last[slot], self._seq[slot] = event.first_time, event.last_time, event.seq
        self._until[slot] = event.last_time + self._lifetime(event)


@dataclass(frozen=True)
class _Split:
    event: EventState  # the new event
    members: tuple[Member, ...]  # its reports


def bisect(scores: np.ndarray) -> tuple[list[int], list[int]]:
    """Two groups of the indices of a symmetric matrix of pair scores (at least two rows), by
    average-linkage agglomeration: the two closest groups (highest mean score) join until two
    are left. Deterministic: ties go to the lowest indices. Each group is sorted."""
    n = len(scores)
    linkage = scores.astype(np.float64).copy()
    np.fill_diagonal(linkage, -np.inf)
    sizes = np.ones(n)
    groups: dict[int, list[int]] = {i: [i] for i in range(n)}
    for _ in range(n - 2):
        a, b = divmod(int(np.argmax(linkage)), n)
        a, b = min(a, b), max(a, b)
        row = (sizes[a] * linkage[a] + sizes[b] * linkage[b]) / (sizes[a] + sizes[b])
        linkage[a], linkage[:, a] = row, row
        linkage[b], linkage[:, b] = -np.inf, -np.inf
        linkage[a, a] = -np.inf
        sizes[a] += sizes[b]
        groups[a].extend(groups.pop(b))
    first, second = (sorted(g) for g in groups.values())
    return first, second


def _cosine(a: Bag, b: Bag) -> float:
    return max(0.0, min(1.0, cosine(a, b)))
