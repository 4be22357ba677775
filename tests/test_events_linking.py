"""Online event linking (``wirewatch.events``): decisions, copies, merges, windows, state.

Every text here is invented for these tests. Reports carry the entities and keyphrases the
enricher would have given them, so only the sentence encoder (loaded once per process) runs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from wirewatch.cli import main
from wirewatch.core.ids import stable_id
from wirewatch.core.vectors import Vectors
from wirewatch.events import EventLinker, Link, LinkerConfig, Report, linking
from wirewatch.events.bags import cosine, prune, unit
from wirewatch.events.baseline import TfidfSinglePass
from wirewatch.events.profile import Profile, lead, named_in, profile, timestamp
from wirewatch.events.state import EventState
from wirewatch.matching.lexical import terms

DAY = 86400.0
T0 = 1_760_000_000.0

FIRE_EN = Report(
    id="fire-en",
    title="Fire at Norvalis chemical plant near Lyon forces 2,400 residents from their homes",
    text=(
        "A fire broke out on Tuesday night at the Norvalis chemical plant in Saint-Fons, south of Lyon, "
        "forcing 2,400 residents to leave their homes, the Rhône prefecture said. About 180 firefighters "
        "were deployed and the blaze was under control by 4 a.m. Three workers were taken to hospital "
        "with minor injuries. The plant makes solvents for the paint industry and is classified as a "
        "high-risk site."
    ),
    time=T0,
    language="en",
    source="northern-ledger.example",
    entities=("Norvalis", "Saint-Fons", "Lyon", "Rhône"),
    keyphrases=("Norvalis chemical plant", "residents", "fire", "Saint-Fons"),
)
FIRE_FR = Report(
    id="fire-fr",
    title="Incendie à l'usine chimique Norvalis de Saint-Fons : 2 400 habitants évacués",
    text=(
        "Un incendie s'est déclaré mardi soir dans l'usine chimique Norvalis de Saint-Fons, au sud de Lyon, "
        "obligeant 2 400 habitants à quitter leur domicile, a indiqué la préfecture du Rhône. Quelque 180 "
        "pompiers ont été mobilisés et le feu était maîtrisé vers 4 heures du matin. Trois salariés ont été "
        "hospitalisés, légèrement blessés. L'usine fabrique des solvants pour l'industrie de la peinture."
    ),
    time=T0 + 3 * 3600,
    language="fr",
    source="courrier-du-matin.example",
    entities=("Norvalis", "Saint-Fons", "Lyon", "Rhône"),
    keyphrases=("usine chimique Norvalis", "habitants", "incendie", "Saint-Fons"),
)
# Same kind of event, other place, other figures, four days later.
FIRE_WALES = Report(
    id="fire-wales",
    title="Fire at Bexmoor paper mill in Port Talbot forces 300 residents to leave",
    text=(
        "A fire broke out on Saturday afternoon at the Bexmoor paper mill in Port Talbot, Wales, forcing "
        "300 residents to leave their homes, South Wales Fire and Rescue said. Sixty firefighters fought "
        "the blaze through the night. Nobody was hurt. The mill, which employs 90 people, had been due to "
        "close in the spring."
    ),
    time=T0 + 4 * DAY,
    language="en",
    source="harbour-gazette.example",
    entities=("Bexmoor", "Port Talbot", "Wales", "South Wales Fire and Rescue"),
    keyphrases=("Bexmoor paper mill", "residents", "fire", "Port Talbot"),
)
ELECTION = Report(
    id="election",
    title="Vallmora votes in a tight presidential run-off",
    text=(
        "Voters in Vallmora went to the polls on Sunday for the second round of the presidential election, "
        "with opinion polls giving Ines Carvel a lead of two points over Tomas Reyl. Turnout at noon was 31 "
        "percent, the electoral commission said."
    ),
    time=T0 + 1 * DAY,
    language="en",
    source="global-wire.example",
    entities=("Vallmora", "Ines Carvel", "Tomas Reyl"),
    keyphrases=("presidential election", "Vallmora", "run-off", "Ines Carvel"),
)
# Two thin first reports of one event (nothing in common but the event), then one that has both.
BLAST = Report(
    id="blast",
    title="Explosion heard at Norvalis solvent plant",
    text="A loud explosion was heard at the Norvalis solvent plant early on Wednesday, witnesses said.",
    time=T0 + 10 * DAY,
    language="en",
    entities=("Norvalis",),
    keyphrases=("Norvalis solvent plant", "explosion"),
)
STAY_IN = Report(
    id="stay-in",
    title="Saint-Fons residents told to stay indoors",
    text=(
        "The Rhône prefecture told the 2,400 residents of Saint-Fons to stay indoors and keep their "
        "windows shut on Wednesday morning."
    ),
    time=T0 + 10 * DAY + 1800,
    language="en",
    entities=("Saint-Fons", "Rhône"),
    keyphrases=("Saint-Fons residents", "prefecture"),
)
BRIDGE = Report(
    id="bridge",
    title="Explosion at Norvalis plant: Saint-Fons residents told to stay indoors",
    text=(
        "An explosion at the Norvalis solvent plant early on Wednesday sent smoke over Saint-Fons, and the "
        "Rhône prefecture told the town's 2,400 residents to stay indoors with their windows shut, "
        "witnesses and officials said."
    ),
    time=T0 + 10 * DAY + 3600,
    language="en",
    entities=("Norvalis", "Saint-Fons", "Rhône"),
    keyphrases=("Norvalis solvent plant", "Saint-Fons residents", "explosion"),
)


@pytest.fixture(scope="module")
def vectors() -> dict[str, Vectors]:
    """Each fixture report's vector, encoded once for the module (the encoder loads here)."""
    linker = EventLinker()
    reports = (FIRE_EN, FIRE_FR, FIRE_WALES, ELECTION, BLAST, STAY_IN, BRIDGE)
    return {r.id: linker.vector(r) for r in reports}


def link_all(linker: EventLinker, reports: list[Report], vectors: dict[str, Vectors]) -> list[Link]:
    return [linker.link(r, vectors.get(r.id)) for r in reports]


def test_two_reports_of_one_event_in_two_languages_join(vectors: dict[str, Vectors]) -> None:
    linker = EventLinker()
    first, second = link_all(linker, [FIRE_EN, FIRE_FR], vectors)
    assert first.reason == "new"
    assert second.reason == "similar"
    assert second.event_id == first.event_id
    event = linker.event(first.event_id)
    assert event is not None
    assert event.count == 2
    assert event.languages == {"en": 1, "fr": 1}
    assert event.label == FIRE_EN.title
    assert event.earliest_article_id == "fire-en"


def test_same_kind_of_event_elsewhere_and_later_is_another_event(vectors: dict[str, Vectors]) -> None:
    linker = EventLinker()
    links = link_all(linker, [FIRE_EN, ELECTION, FIRE_FR, FIRE_WALES], vectors)
    fire, election, fire_fr, wales = links
    assert fire_fr.event_id == fire.event_id
    assert len({fire.event_id, election.event_id, wales.event_id}) == 3
    assert wales.reason == "new"


def test_event_id_is_the_hash_of_its_first_article(vectors: dict[str, Vectors]) -> None:
    link = EventLinker().link(FIRE_EN, vectors["fire-en"])
    assert link.event_id == stable_id("event", "fire-en")


def test_a_duplicate_joins_its_originals_event_whatever_its_content(vectors: dict[str, Vectors]) -> None:
    linker = EventLinker()
    original, _ = link_all(linker, [FIRE_EN, ELECTION], vectors)
    # Text of the election, marked as a copy of the fire report: the copy link decides.
    copy = replace(ELECTION, id="copy", duplicate_of="fire-en", time=T0 + 2 * DAY)
    reuse = replace(ELECTION, id="reuse", reused_from=("unknown-article", "fire-en"), time=T0 + 2 * DAY)
    assert linker.link(copy).reason == "duplicate"
    assert linker.event_of("copy") == original.event_id
    link = linker.link(reuse)
    assert (link.reason, link.event_id) == ("reuse", original.event_id)


def test_a_wire_copy_is_profiled_once(monkeypatch: pytest.MonkeyPatch, vectors: dict[str, Vectors]) -> None:
    profiled: list[str] = []

    def counted(report: Report, vector: Vectors) -> Profile:
        profiled.append(report.id)
        return profile(report, vector)

    monkeypatch.setattr(linking, "profile", counted)
    linker = EventLinker()
    first = linker.link(FIRE_EN)
    copy = replace(FIRE_EN, id="fire-en-copy", time=FIRE_EN.time + 600, source="Other outlet")
    named = replace(FIRE_EN, id="fire-en-named", time=FIRE_EN.time + 900, entities=("Lyon", "Rhône"))
    assert linker.link(copy).event_id == first.event_id
    assert linker.link(named).event_id == first.event_id
    assert profiled == ["fire-en", "fire-en-named"]  # other entities: another profile
    assert linker.profile(copy) is linker.profile(FIRE_EN)
    assert linker.event(first.event_id).count == 3  # type: ignore[union-attr]


def test_a_duplicate_of_an_unknown_article_is_scored_like_any_report(vectors: dict[str, Vectors]) -> None:
    linker = EventLinker()
    link_all(linker, [FIRE_EN], vectors)
    link = linker.link(replace(FIRE_FR, duplicate_of="never-seen"), vectors["fire-fr"])
    assert link.reason == "similar"


def test_two_events_linked_strongly_by_one_report_merge_into_the_older(vectors: dict[str, Vectors]) -> None:
    linker = EventLinker()
    blast, stay_in, bridge = link_all(linker, [BLAST, STAY_IN, BRIDGE], vectors)
    assert blast.event_id != stay_in.event_id
    assert bridge.merged == (stay_in.event_id,)
    assert bridge.event_id == blast.event_id  # the older event survives, its id stays
    assert linker.resolve(stay_in.event_id) == blast.event_id
    assert linker.event(stay_in.event_id) is linker.event(blast.event_id)
    assert linker.event_of("stay-in") == blast.event_id
    survivor = linker.event(blast.event_id)
    assert survivor is not None
    assert survivor.count == 3
    assert survivor.merged_from == [stay_in.event_id]
    assert linker.snapshot()["merged"] == {stay_in.event_id: blast.event_id}


def test_a_survivor_keeps_the_related_events_of_the_event_merged_into_it(vectors: dict[str, Vectors]) -> None:
    linker = EventLinker()
    blast, stay_in = link_all(linker, [BLAST, STAY_IN], vectors)
    survivor, merged = linker.event(blast.event_id), linker.event(stay_in.event_id)
    assert survivor is not None and merged is not None
    survivor.add_related(["older-story"])
    # Related to the survivor itself, to a story the survivor already names, and to another.
    merged.add_related([blast.event_id, "older-story", "sister-story"])
    bridge = linker.link(BRIDGE, vectors["bridge"])
    assert bridge.merged == (stay_in.event_id,)
    assert survivor.related == ["older-story", "sister-story"]
    assert survivor.record()["related"] == ["older-story", "sister-story"]


def test_events_leave_the_window(vectors: dict[str, Vectors]) -> None:
    linker = EventLinker(LinkerConfig(window_days=7))
    first = linker.link(FIRE_EN, vectors["fire-en"])
    late = replace(FIRE_FR, time=T0 + 9 * DAY)
    link = linker.link(late, vectors["fire-fr"])
    assert link.expired == (first.event_id,)
    assert link.reason == "new"
    assert linker.event(first.event_id) is None
    assert linker.event_of("fire-en") is None


def test_a_replayed_report_gets_its_event_back_and_changes_nothing(vectors: dict[str, Vectors]) -> None:
    linker = EventLinker()
    _, second = link_all(linker, [FIRE_EN, FIRE_FR], vectors)
    before = json.dumps(linker.snapshot(), sort_keys=True)
    again = linker.link(FIRE_FR, vectors["fire-fr"])
    assert (again.reason, again.event_id) == ("known", second.event_id)
    assert json.dumps(linker.snapshot(), sort_keys=True) == before


def test_restore_from_a_snapshot_continues_identically(vectors: dict[str, Vectors]) -> None:
    stream = [FIRE_EN, ELECTION, BLAST, FIRE_FR, FIRE_WALES, STAY_IN, BRIDGE]
    stream = [replace(r, time=T0 + i * 3600) for i, r in enumerate(stream)]
    original = EventLinker()
    link_all(original, stream[:3], vectors)
    snapshot = json.loads(json.dumps(original.snapshot()))  # through JSON, as a table would
    restored = EventLinker.restore(snapshot)
    assert json.dumps(restored.snapshot(), sort_keys=True) == json.dumps(snapshot, sort_keys=True)
    rest_original = link_all(original, stream[3:], vectors)
    rest_restored = link_all(restored, stream[3:], vectors)
    assert rest_original == rest_restored
    assert any(link.merged for link in rest_original)
    assert json.dumps(original.snapshot(), sort_keys=True) == json.dumps(restored.snapshot(), sort_keys=True)


def test_event_records_are_small_and_exact(vectors: dict[str, Vectors]) -> None:
    linker = EventLinker()
    link = link_all(linker, [FIRE_EN, FIRE_FR], vectors)[0]
    event = linker.event(link.event_id)
    assert event is not None
    record = json.loads(json.dumps(event.record()))
    assert len(json.dumps(record)) < 8000
    back = EventState.from_record(record)
    assert back.record() == event.record()
    assert (back.centroid == event.centroid).all()


def test_a_snapshot_of_another_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        EventLinker.restore({"version": 99})


def test_bags_are_deterministic_and_bounded() -> None:
    a = unit({"b": 1.0, "a": 1.0})
    assert list(a) == ["a", "b"]
    assert cosine(a, {"a": 2.0}) == pytest.approx(2**-0.5)
    assert cosine({}, a) == 0.0
    assert prune({"x": 1.0, "y": 3.0, "a": 1.0}, 2) == {"a": 1.0, "y": 3.0}


def test_lead_skips_a_repeated_title_and_stops_near_the_limit() -> None:
    text = "Title here.\nFirst sentence of the body. " + "Another sentence follows here. " * 30
    got = lead("Title here.", text, limit=80)
    assert got.startswith("First sentence of the body.")
    assert len(got) <= 80
    assert timestamp("2021-06-14") == timestamp("2021-06-14T00:00:00+00:00")
    assert timestamp(None) is None


def test_figures_are_counts_and_dates_are_whole_dates() -> None:
    """A day of the month is part of a date, not a figure: "17 octobre" and "17 septembre" share
    nothing, while two reports of "le 17 octobre" share that date and "5 000" is 5000."""
    zero = np.zeros(512, dtype=np.float32)

    def numbers(text: str) -> set[str]:
        return set(profile(Report("r", "", text, T0, "fr"), zero).numbers)

    october = numbers("Quelque 5 000 combattants ont quitté Mossoul le 17 octobre à 10h30.")
    assert october == {"5000", "10-17"}
    assert numbers("Le 17 octobre, 300 familles ont fui.") & october == {"10-17"}
    assert not numbers("Une frappe le 17 septembre 2016 a tué 40 soldats.") & october
    assert numbers("On October 17th, 5,000 fighters left, in 2016.") == october


def test_tfidf_baseline_groups_near_copies_only() -> None:
    baseline = TfidfSinglePass(threshold=0.3)
    a = baseline.add("a", FIRE_EN.title, FIRE_EN.text)
    b = baseline.add("b", FIRE_EN.title, FIRE_EN.text.replace("Tuesday", "Monday"))
    c = baseline.add("c", ELECTION.title, ELECTION.text)
    assert a == b == "a"
    assert c == "c"


def test_eval_cluster_command(tmp_path: Path) -> None:
    docs = [
        {
            "id": "en",
            "title": FIRE_EN.title,
            "text": FIRE_EN.text,
            "published": "2025-10-09T08:00:00+00:00",
            "lang": "en",
        },
        {
            "id": "vote",
            "title": ELECTION.title,
            "text": ELECTION.text,
            "published": "2025-10-09T09:00:00+00:00",
            "lang": "en",
        },
        {
            "id": "fr",
            "title": FIRE_FR.title,
            "text": FIRE_FR.text,
            "published": "2025-10-09T11:00:00+00:00",
            "lang": "fr",
        },
        {"id": "copy", "title": FIRE_EN.title, "text": FIRE_EN.text, "published": None, "lang": "en"},
    ]
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["eval", "cluster", "--input", str(source), "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["en", "vote", "fr", "copy"]
    cluster = {r["id"]: r["cluster"] for r in rows}
    assert cluster["en"] == cluster["fr"] == cluster["copy"] != cluster["vote"]
    assert "4 documents, 2 events" in result.output


# --- related events, lifetimes, lead names (issue #6) -------------------------------------------


def test_related_events_are_named_and_never_joined(vectors: dict[str, Vectors]) -> None:
    # The Welsh fire is another event of the same kind: related to the Norvalis fire at a low
    # bar, never to the election, and nothing is joined or merged because of it.
    linker = EventLinker(LinkerConfig(related_threshold=0.2))
    fire, election, _, wales = link_all(linker, [FIRE_EN, ELECTION, FIRE_FR, FIRE_WALES], vectors)
    assert wales.reason == "new"
    assert wales.related == (fire.event_id,)
    assert election.event_id not in wales.related
    assert wales.merged == ()
    fire_event = linker.event(fire.event_id)
    assert fire_event is not None and fire_event.count == 2
    # The default bar is higher: the Welsh fire scores about 0.23 against the Norvalis one.
    default = link_all(EventLinker(), [FIRE_EN, ELECTION, FIRE_FR, FIRE_WALES], vectors)
    assert default[3].related == ()


def test_related_excludes_the_joined_and_merged_events_and_is_bounded(vectors: dict[str, Vectors]) -> None:
    linker = EventLinker(LinkerConfig(related_threshold=0.0, max_related=1))
    links = link_all(linker, [FIRE_EN, ELECTION, FIRE_WALES, BLAST, STAY_IN, BRIDGE], vectors)
    for link in links:
        assert link.event_id not in link.related
        assert not set(link.merged) & set(link.related)
        assert len(link.related) <= 1
        assert all(linker.resolve(r) == r for r in link.related)
    # Best first: the Welsh fire's one related event is the Norvalis fire, not the election.
    assert links[2].related == (links[0].event_id,)


def test_events_of_several_reports_live_longer(vectors: dict[str, Vectors]) -> None:
    config = LinkerConfig(window_days=7, long_window_days=30, time_decay=0.0)
    linker = EventLinker(config)
    fire, _ = link_all(linker, [FIRE_EN, FIRE_FR], vectors)
    single = linker.link(replace(ELECTION, time=T0 + 1 * DAY), vectors["election"])
    later = linker.link(replace(FIRE_WALES, id="later", time=T0 + 20 * DAY), vectors["fire-wales"])
    assert later.expired == (single.event_id,)  # one report: gone after 7 days
    assert linker.event(fire.event_id) is not None  # two reports: still joinable
    back = replace(FIRE_FR, id="fire-fr-again", time=T0 + 21 * DAY)
    assert linker.link(back, vectors["fire-fr"]).event_id == fire.event_id
    gone = linker.link(replace(ELECTION, id="vote-2", time=T0 + 60 * DAY), vectors["election"])
    assert fire.event_id in gone.expired


def test_lead_entities_and_the_novelty_penalty(vectors: dict[str, Vectors]) -> None:
    assert named_in(["Mayadin", "Fox News", "Mosul"], terms("Daesh à Mayadin, selon Fox News")) == (
        "fox news",
        "mayadin",
    )
    plain = EventLinker()
    strict = EventLinker(LinkerConfig(novelty_penalty=0.3))
    for linker in (plain, strict):
        link_all(linker, [FIRE_EN], vectors)
    # Every name of the French report's lead is in the event: no penalty.
    same = profile(FIRE_FR, vectors["fire-fr"])
    assert same.lead_entities == ("lyon", "norvalis", "rhône", "saint-fons")
    assert plain._score_candidates(same, T0)[0][0] == strict._score_candidates(same, T0)[0][0]
    # One of three lead names unknown to the event: a third of the penalty.
    novel = replace(
        STAY_IN,
        entities=("Saint-Fons", "Rhône", "Vénissieux"),
        text=STAY_IN.text + " Vénissieux was told the same.",
    )
    features = profile(novel, vectors["stay-in"])
    assert features.lead_entities == ("rhône", "saint-fons", "vénissieux")
    gap = plain._score_candidates(features, T0)[0][0] - strict._score_candidates(features, T0)[0][0]
    assert gap == pytest.approx(0.3 / 3)


SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
#: Publication dates of the seed texts of issue #6 (read from the texts).
SEED_DATES = {
    "003": "2016-10-25",
    "002": "2016-10-27",
    "000": "2016-12-11",
    "001": "2016-12-14",
    "004": "2017-04-25",
}
#: Settings under which the dated seed scenario comes out right too (not the defaults: see
#: RESULTS.md).
SEED_CONFIG = LinkerConfig(
    threshold=0.36, time_decay=0.0, long_window_days=60, novelty_penalty=0.3, novelty_floor=0.5
)


def _seed_links(dated: bool, config: LinkerConfig | None) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each seed's final event and its link's related events, through ``eval cluster``'s path."""
    from wirewatch.events.offline import Clusters, reports

    docs = [
        {
            "id": p.name[:3],
            "title": "",
            "text": p.read_text(encoding="utf-8"),
            "published": None,
            "lang": "fr",
        }
        for p in sorted(SEEDS.glob("*.txt"))
    ]
    if dated:
        docs = sorted(
            ({**d, "published": f"{SEED_DATES[d['id']]}T12:00:00+00:00"} for d in docs),
            key=lambda d: d["published"],
        )
    linker = EventLinker(config)
    clusters = Clusters()
    related = {}
    for doc, report in reports(docs):
        link = linker.link(report)
        clusters.add(doc["id"], link)
        related[doc["id"]] = tuple(clusters.final(r) for r in link.related)
    return {row["id"]: (row["cluster"], related[row["id"]]) for row in clusters.rows()}


def _seeds_right(links: dict[str, tuple[str, tuple[str, ...]]]) -> bool:
    mosul = {links[k][0] for k in ("000", "001", "002", "003")}
    return len(mosul) == 1 and links["004"][0] not in mosul


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed texts of issue #6 are not here")
@pytest.mark.parametrize("dated", [True, False], ids=["dated", "undated"])
def test_seed_scenarios_with_the_seed_settings(dated: bool) -> None:
    links = _seed_links(dated, SEED_CONFIG)
    assert _seeds_right(links), links
    if not dated:  # all at one time: 004 is shown as related to the Mosul event
        assert links["000"][0] in links["004"][1]


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed texts of issue #6 are not here")
def test_seed_scenario_with_the_defaults() -> None:
    """The five seeds arriving together (as the end-to-end test publishes them): 000-003 are one
    event, 004 another, shown as related to it."""
    links = _seed_links(False, None)
    assert _seeds_right(links), links
    assert links["000"][0] in links["004"][1]


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed texts of issue #6 are not here")
@pytest.mark.xfail(
    strict=True,
    reason="at their publication dates, 000-003 span seven weeks: more than the 7-day window of the "
    "defaults (benchmarks/RESULTS.md)",
)
def test_dated_seed_scenario_with_the_defaults() -> None:
    assert _seeds_right(_seed_links(True, None))
