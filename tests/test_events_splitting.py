"""Splitting an event that turned out to be two (``EventLinker``'s step 6, ``LinkerStore``).

Every text here is invented for these tests. The sentence vectors are made here too (two
directions, one per event, a little noise per report), so no model runs: what is tested is
the split itself, its state and its records.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from wirewatch.core.ids import stable_id
from wirewatch.core.vectors import DIM, Vectors
from wirewatch.events import EventLinker, Link, LinkerConfig, Report
from wirewatch.events.linking import bisect
from wirewatch.events.offline import Clusters
from wirewatch.events.state import EventState, Member
from wirewatch.events.store import ARTICLE, EVENT, LinkerStore

DAY = 86400.0
T0 = 1_760_000_000.0
#: Everything joins the first event unless a split says otherwise.
JOIN_ALL = LinkerConfig(threshold=0.0, merge_threshold=2.0)

_rng = np.random.default_rng(7)
_QESHM_DIRECTION = _rng.normal(size=DIM)
_BAM_DIRECTION = _rng.normal(size=DIM)
_SHARED = _rng.normal(size=DIM)


def quake(kind: str, n: int, at: float = T0) -> Report:
    """The ``n``-th report of one of two earthquakes of one kind (``qeshm`` or ``bam``)."""
    if kind == "qeshm":
        return Report(
            id=f"qeshm-{n}",
            title=f"Magnitude 5.9 earthquake on Qeshm island kills 10 ({n})",
            text=(
                "A magnitude 5.9 earthquake struck Qeshm island in Hormozgan province on Sunday, killing 10 "
                "people and destroying seven villages, the Red Crescent said. Rescuers from Bandar Abbas "
                f"searched the rubble through the night. Report number {n} of the island's quake."
            ),
            time=at,
            language="en",
            source=f"outlet-{n}.example",
            entities=("Qeshm", "Hormozgan", "Red Crescent", "Bandar Abbas"),
            keyphrases=("Qeshm island", "Red Crescent", "villages"),
        )
    return Report(
        id=f"bam-{n}",
        title=f"Magnitude 6.6 earthquake flattens Bam, 26,000 dead ({n})",
        text=(
            "A magnitude 6.6 earthquake flattened the ancient city of Bam in Kerman province on Friday, "
            "killing 26,000 people, the United Nations said. The citadel of Arg-e Bam was destroyed. "
            f"Report number {n} of the city's quake."
        ),
        time=at,
        language="en",
        source=f"outlet-{n}.example",
        entities=("Bam", "Kerman", "United Nations", "Arg-e Bam"),
        keyphrases=("Bam citadel", "United Nations", "ancient city"),
    )


def vector(report: Report) -> Vectors:
    """The report's made-up sentence vector: its event's direction plus a little noise."""
    seed = sum(map(ord, report.id))
    noise = np.random.default_rng(seed).normal(size=DIM)
    direction = _QESHM_DIRECTION if report.id.startswith("qeshm") else _BAM_DIRECTION
    v = _SHARED + 0.6 * direction + 0.2 * noise
    return (v / np.linalg.norm(v)).astype(np.float32)


def link_all(linker: EventLinker, reports: list[Report]) -> list[Link]:
    return [linker.link(r, vector(r)) for r in reports]


#: Three reports of Qeshm, then the first reports of Bam join that event, then both go on.
MIXED = [
    quake("qeshm", 1),
    quake("qeshm", 2),
    quake("qeshm", 3),
    quake("bam", 1),
    quake("bam", 2),
    quake("qeshm", 4),
    quake("bam", 3),
    quake("bam", 4),
]


def test_an_event_that_is_two_events_splits_and_the_first_reports_keep_its_id() -> None:
    linker = EventLinker(JOIN_ALL)
    links = link_all(linker, MIXED)
    original = stable_id("event", "qeshm-1")
    assert all(link.event_id == original and link.split_off is None for link in links[:-1])

    last = links[-1]  # the eighth report: the event is large enough to be looked at
    new_id = stable_id("event", original, "split", "bam-1")
    assert last.split_off == new_id and last.event_id == new_id
    assert last.moved == ("bam-1", "bam-2", "bam-3")  # bam-4 is the report itself
    assert {a: linker.event_of(a) for a in ("qeshm-1", "qeshm-4", "bam-1", "bam-4")} == {
        "qeshm-1": original,
        "qeshm-4": original,
        "bam-1": new_id,
        "bam-4": new_id,
    }

    kept, split = linker.events[original], linker.events[new_id]
    assert (kept.count, split.count) == (4, 4)
    assert kept.member_ids == ["qeshm-1", "qeshm-2", "qeshm-3", "qeshm-4"]
    assert split.member_ids == ["bam-1", "bam-2", "bam-3", "bam-4"]
    assert split.split_from == original and kept.split_from is None
    assert (kept.related, split.related) == ([new_id], [original])
    assert kept.label == quake("qeshm", 1).title and split.label == quake("bam", 1).title
    assert split.earliest_article_id == "bam-1" and "bam" in split.entities and "bam" not in kept.entities

    # From now on each event's reports find their own event.
    after = link_all(linker, [quake("bam", 5), quake("qeshm", 5)])
    assert [link.event_id for link in after] == [new_id, original]
    assert all(link.split_off is None for link in after)


def test_the_eval_clusters_follow_the_articles_a_split_moved() -> None:
    linker = EventLinker(JOIN_ALL)
    clusters = Clusters()
    for report in MIXED:
        clusters.add(f"doc-{report.id}", linker.link(report, vector(report)))
    rows = {row["id"]: row["cluster"] for row in clusters.rows()}
    assert len({rows[f"doc-qeshm-{n}"] for n in range(1, 5)}) == 1
    assert len({rows[f"doc-bam-{n}"] for n in range(1, 5)}) == 1
    assert rows["doc-qeshm-1"] != rows["doc-bam-1"]


def test_one_event_s_reports_do_not_split() -> None:
    linker = EventLinker(JOIN_ALL)
    links = link_all(linker, [quake("qeshm", n) for n in range(1, 13)])
    assert len({link.event_id for link in links}) == 1
    assert all(link.split_off is None for link in links)


def test_splits_can_be_turned_off() -> None:
    linker = EventLinker(LinkerConfig(threshold=0.0, merge_threshold=2.0, split_ratio=0.0))
    links = link_all(linker, MIXED)
    assert len({link.event_id for link in links}) == 1 and not linker.members
    assert all(not e.member_ids for e in linker.events.values())


def test_a_large_event_is_no_longer_looked_at_and_forgets_its_members() -> None:
    config = LinkerConfig(threshold=0.0, merge_threshold=2.0, split_min_size=6, split_max_size=7)
    linker = EventLinker(config)
    reports = [*(quake("qeshm", n) for n in range(1, 6)), *(quake("bam", n) for n in range(1, 4))]
    links = link_all(linker, reports)
    assert len({link.event_id for link in links}) == 1  # at 7, the Bam group was 2: too small
    (event,) = linker.events.values()
    assert event.count == 8 and event.member_ids == [] and not linker.members


def test_an_event_whose_first_reports_left_the_window_is_no_longer_split() -> None:
    config = LinkerConfig(threshold=0.0, merge_threshold=2.0, time_decay=0.0, window_days=2)
    linker = EventLinker(config)
    early = [quake("qeshm", n, T0) for n in range(1, 4)]
    late = [quake("bam", n, T0 + 1.5 * DAY + n) for n in range(1, 4)]
    link_all(linker, [*early, *late, quake("qeshm", 4, T0 + 2.5 * DAY)])
    (event,) = linker.events.values()  # qeshm 1-3 are out of the article window now
    assert event.member_ids == [] and not linker.members
    links = link_all(linker, [quake("bam", 4, T0 + 2.6 * DAY)])
    assert links[0].split_off is None and event.count == 8


def _snapshot_round_trip(linker: EventLinker) -> EventLinker:
    return EventLinker.restore(json.loads(json.dumps(linker.snapshot())), linker.config)


def test_a_restored_linker_splits_exactly_as_the_one_it_came_from() -> None:
    straight = EventLinker(JOIN_ALL)
    head, tail = MIXED[:5], [*MIXED[5:], quake("bam", 5), quake("qeshm", 5)]
    link_all(straight, head)
    restored = _snapshot_round_trip(straight)
    assert restored.events[stable_id("event", "qeshm-1")].member_ids == [r.id for r in head]
    assert link_all(restored, tail) == link_all(straight, tail)
    assert json.dumps(restored.snapshot(), sort_keys=True) == json.dumps(straight.snapshot(), sort_keys=True)


def test_members_round_trip_exactly_and_are_small() -> None:
    report = quake("bam", 1)
    from wirewatch.events.profile import profile

    member = Member.of(report, profile(report, vector(report)))
    text = json.dumps(member.record())
    again = Member.from_record(json.loads(text))
    assert again.record() == member.record()
    assert np.array_equal(again.profile.vector, member.profile.vector)
    assert len(text) < 2500
    assert member.summary.startswith("A magnitude 6.6 earthquake") and member.title == report.title


def test_the_table_holds_the_split_and_a_restart_continues_identically() -> None:
    table: dict[str, Any] = {}
    store = LinkerStore(table, JOIN_ALL)
    decisions = [store.link(r) for r in MIXED[:7]]
    assert all(d.link.split_off is None and d.split is None for d in decisions)
    for r in MIXED[:7]:
        assert table[ARTICLE + r.id][4]["id"] == r.id  # each record carries its member

    decision = store.link(MIXED[7])
    original = stable_id("event", "qeshm-1")
    new_id = decision.link.split_off
    assert new_id is not None and decision.link.event_id == new_id
    assert decision.split is not None and decision.split.id == original  # the other part's state
    assert decision.moved == (("bam-1", new_id), ("bam-2", new_id), ("bam-3", new_id))
    assert [table[ARTICLE + f"bam-{n}"][0] for n in range(1, 5)] == [new_id] * 4
    assert table[EVENT + original]["member_ids"] == [f"qeshm-{n}" for n in range(1, 5)]
    assert table[EVENT + new_id]["split_from"] == original

    restarted = LinkerStore(dict(table), JOIN_ALL)
    tail = [quake("bam", 5), quake("qeshm", 5), quake("bam", 6)]
    assert [restarted.link(r).link for r in tail] == [store.link(r).link for r in tail]
    assert _state(restarted.linker) == _state(store.linker)


def _state(linker: EventLinker) -> str:
    """The linker's snapshot, its articles and members in one order (a table has none)."""
    snapshot = linker.snapshot()
    snapshot["articles"].sort()
    snapshot["members"].sort(key=lambda m: m["id"])
    return json.dumps(snapshot, sort_keys=True)


def test_an_event_state_splits_into_two_rebuilt_events() -> None:
    from wirewatch.events.profile import profile

    reports = [quake("qeshm", 1), quake("bam", 1), quake("qeshm", 2), quake("bam", 2)]
    event = EventState.open("e", 3, reports[0])
    members = []
    for report in reports:
        features = profile(report, vector(report))
        event.add(report, features)
        members.append(Member.of(report, features))
    event.add_claim("claim-1", "10 people were killed")
    new = event.split([members[0], members[2]], [members[1], members[3]], "e2", 4)
    assert (event.id, event.seq, event.count, new.id, new.seq, new.count) == ("e", 3, 2, "e2", 4, 2)
    assert event.claims == {"claim-1": "10 people were killed"} and new.claims == {}
    assert set(event.sources) == {"outlet-1.example", "outlet-2.example"}
    assert "qeshm" in event.entities and "bam" not in event.entities
    assert event.names["qeshm"] == "Qeshm" and new.names["bam"] == "Bam"
    assert event.summary.startswith("A magnitude 5.9") and new.summary.startswith("A magnitude 6.6")


@given(
    st.integers(min_value=2, max_value=12).flatmap(
        lambda n: st.lists(st.floats(min_value=-1, max_value=1), min_size=n * n, max_size=n * n).map(
            lambda values: np.array(values).reshape(n, n)
        )
    )
)
def test_bisect_cuts_every_index_into_two_groups(values: np.ndarray) -> None:
    scores = (values + values.T) / 2
    first, second = bisect(scores)
    assert first and second
    assert sorted(first + second) == list(range(len(scores)))
    assert first == sorted(first) and second == sorted(second)
    assert bisect(scores) == (first, second)  # deterministic


def test_bisect_finds_two_blocks() -> None:
    blocks = np.full((7, 7), 0.2)
    members = [0, 2, 5]
    for i in members:
        for j in members:
            blocks[i, j] = 0.9
    others = [1, 3, 4, 6]
    for i in others:
        for j in others:
            blocks[i, j] = 0.8
    assert sorted(bisect(blocks)) == [members, others]
