"""Tracked claims without servers: making claims, reading claim files, and the alerts one
article raises (the code the stream and the retroactive search share)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError

from claim_texts import CLAIM_EN, OTHER_FR, REPORT_FR, REPORT_FR_2
from conftest import make_settings, run, settings_for
from wirewatch.alerts.detect import alert_id, alerts_for
from wirewatch.alerts.retro import CANDIDATES_PER_STEP, Pacer, retroactive_alerts
from wirewatch.alerts.watchlist import (
    ClaimFileError,
    ClaimLine,
    Watchlist,
    all_lower_case,
    by_claim_text,
    claim_id,
    find_tracked,
    merge_claims_file,
    new_claim,
    read_claims_file,
)
from wirewatch.core.elastic import connect
from wirewatch.core.ids import stable_id
from wirewatch.core.models import Alert, EnrichedArticle, RawArticle, TrackedClaim
from wirewatch.core.settings import Settings
from wirewatch.core.text import normalise
from wirewatch.enricher.service import analyse
from wirewatch.local.servers import LocalServers
from wirewatch.matching.matcher import ClaimMatcher
from wirewatch.runner import setup


def _article(n: int, text: str, title: str = "") -> EnrichedArticle:
    url = f"https://outlet.example/{n}"
    return analyse(
        RawArticle(
            id=f"{n:032x}",
            url=url,
            canonical_url=url,
            source="Outlet",
            source_domain="outlet.example",
            title=title,
            text=text,
        )
    )


def test_a_claim_gets_a_stable_id_and_its_language() -> None:
    claim = new_claim(f"  {CLAIM_EN} ", labels={"verdict": "false"})
    assert claim.id == claim_id(CLAIM_EN) == new_claim(CLAIM_EN.upper()).id  # normalised text
    assert claim.text == CLAIM_EN
    assert claim.language == "en"
    assert new_claim(CLAIM_EN, language="fr").language == "fr"  # given wins
    with pytest.raises(ValueError, match="needs a text"):
        new_claim("   ")
    # with or without its full stop or the quotes around it, one claim; other words, another
    assert claim_id(CLAIM_EN.rstrip(".")) == claim_id(f"« {CLAIM_EN} »") == claim.id
    assert claim_id(CLAIM_EN.replace("3,000", "4,000")) != claim.id


def test_a_claim_is_found_by_its_text_under_an_id_of_its_own_or_an_older_default_id() -> None:
    older = new_claim(CLAIM_EN, id=stable_id("claim", normalise(CLAIM_EN)))  # ids before edges left out
    given = new_claim("The bridge will stay closed until March.", id="bridge")
    tracked = {c.id: c for c in (older, given)}
    by_text = by_claim_text(tracked)
    assert find_tracked(tracked, by_text, new_claim(CLAIM_EN.rstrip("."))) is older
    assert find_tracked(tracked, by_text, new_claim("the bridge will stay closed until march")) is given
    assert find_tracked(tracked, by_text, new_claim(CLAIM_EN, id="other")) is None  # an id given wins
    [merged] = merge_claims_file(tracked, [ClaimLine(new_claim(CLAIM_EN, labels={"desk": "x"}), None, 1)])
    assert merged.claim.id == older.id and merged.outcome == "updated"


def test_a_claim_all_in_lower_case_is_told_apart() -> None:
    assert all_lower_case(CLAIM_EN.lower())
    assert not all_lower_case(CLAIM_EN) and not all_lower_case("fake news")  # too short to say


def test_claims_file(tmp_path: Path) -> None:
    path = tmp_path / "claims.jsonl"
    first_line = json.dumps({"text": CLAIM_EN, "labels": {"verdict": "false"}})
    lines = [first_line, "", '{"id": "c2", "text": "Autre"}']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    first, second = read_claims_file(path)
    assert first.claim.labels == {"verdict": "false"} and second.claim.id == "c2"
    assert (first.number, second.number) == (1, 3)
    # The language a line gives, apart from the one detected (which does not replace a tracked
    # claim's own when the file is imported again).
    assert first.claim.language == "en" and first.language is None
    path.write_text(json.dumps({"text": CLAIM_EN, "language": "fr"}) + "\n", encoding="utf-8")
    [given] = read_claims_file(path)
    assert given.claim.language == given.language == "fr"
    path.write_text('{"text": "ok"}\n{"labels": {}}\n', encoding="utf-8")
    with pytest.raises(ClaimFileError, match=r"claims\.jsonl:2: a claim needs a text"):
        read_claims_file(path)
    path.write_text('{"text": 42}\n', encoding="utf-8")
    with pytest.raises(ClaimFileError, match=r"claims\.jsonl:1: \"text\" must be a string, not int"):
        read_claims_file(path)
    path.write_text('{"text": "ok"}\n{"text": "ok", "label": {"verdict": "false"}}\n', encoding="utf-8")
    with pytest.raises(ClaimFileError, match=r"claims\.jsonl:2: unknown key\(s\) 'label': expected"):
        read_claims_file(path)


def test_a_claims_file_merges_into_the_watchlist_as_claims_track_does() -> None:
    """Each line over the claim it is (by id, or by text): created_at, labels and keywords kept,
    the line's merged in; an untracked claim tracked again; two lines for one claim merged in
    file order, one result; a claim the file says nothing new about is unchanged, the very claim
    tracked (nothing to publish)."""
    long_ago = datetime(2025, 1, 2, tzinfo=UTC)
    tracked = {
        c.id: c
        for c in (
            new_claim(
                CLAIM_EN,
                labels={"verdict": "false", "desk": "paris"},
                keywords=["Tarvos"],
                created_at=long_ago,
            ),
            new_claim(
                "The bridge will stay closed until March.", id="bridge", created_at=long_ago, active=False
            ),
            new_claim("The mayor resigned on Tuesday.", owner="desk", threshold=0.7, created_at=long_ago),
            new_claim("The strike ended after nine days.", id="strike", created_at=long_ago),
        )
    }

    def line(number: int, text: str, language: str | None = None, **fields: object) -> ClaimLine:
        return ClaimLine(new_claim(text, language=language, **fields), language, number)

    lines = [
        line(1, CLAIM_EN.upper(), labels={"verdict": "misleading"}, keywords=["Kelmar", "Tarvos"]),
        line(2, "The bridge will stay closed until March.", id="bridge"),
        line(3, "The mayor resigned on Tuesday."),
        line(4, "The ferry to Ostrel runs again.", labels={"a": "1"}),
        line(5, "The ferry to Ostrel runs again.", labels={"b": "2"}, owner="web"),
    ]
    by_id = {i.claim.id: i for i in merge_claims_file(tracked, lines)}
    assert list(by_id) == [
        claim_id(CLAIM_EN),
        "bridge",
        claim_id("The mayor resigned on Tuesday."),
        claim_id("The ferry to Ostrel runs again."),
    ]
    merged = by_id[claim_id(CLAIM_EN)]
    assert merged.outcome == "updated" and merged.lines == [1]
    assert merged.changes == ["text updated", "labels updated", "keywords added"]
    assert merged.claim.labels == {"verdict": "misleading", "desk": "paris"}
    assert merged.claim.keywords == ["Tarvos", "Kelmar"] and merged.claim.created_at == long_ago
    assert merged.claim.language == "en"
    bridge = by_id["bridge"]
    assert bridge.outcome == "tracked_again" and bridge.changes == []
    assert bridge.claim.active and bridge.claim.created_at == long_ago
    mayor = by_id[claim_id("The mayor resigned on Tuesday.")]
    assert mayor.outcome == "unchanged" and mayor.changes == []
    assert mayor.claim == tracked[mayor.claim.id]  # owner and threshold not given: kept
    ferry = by_id[claim_id("The ferry to Ostrel runs again.")]
    assert ferry.outcome == "new" and ferry.lines == [4, 5]
    assert ferry.claim.labels == {"a": "1", "b": "2"} and ferry.claim.owner == "web"
    # A language given replaces the claim's; the one detected for a line that gives none does not.
    french = new_claim(CLAIM_EN, language="fr", created_at=long_ago)
    [kept] = merge_claims_file({french.id: french}, [line(1, CLAIM_EN)])
    assert kept.outcome == "unchanged" and kept.claim.language == "fr"
    [replaced] = merge_claims_file({french.id: french}, [line(1, CLAIM_EN, language="en")])
    assert replaced.outcome == "updated" and replaced.changes == ["language updated"]
    # Two lines for a tracked claim: their changes against what was tracked, not line to line.
    [back] = merge_claims_file(
        tracked,
        [line(1, "x", id="strike", owner="a"), line(2, "The strike ended after nine days.", id="strike")],
    )
    assert back.outcome == "updated" and back.changes == ["owner updated"] and back.claim.owner == "a"


@pytest.fixture(scope="module")
def matcher() -> ClaimMatcher:
    m = ClaimMatcher()
    m.upsert(new_claim(CLAIM_EN, labels={"verdict": "unproven"}))
    return m


def test_reports_in_another_language_raise_one_alert_each(matcher: ClaimMatcher) -> None:
    cid = claim_id(CLAIM_EN)
    for n, text in enumerate((REPORT_FR, REPORT_FR_2), 1):
        article = _article(n, text)
        [alert] = alerts_for(article, matcher)
        assert alert.id == alert_id(cid, article.id)
        assert alert.claim_labels == {"verdict": "unproven"}
        assert article.text[alert.sentence_start : alert.sentence_end] == alert.sentence
        assert "3 000" in alert.sentence
        assert 0.4 <= alert.score <= 1.0 and not alert.retroactive
        # The same article again (a replay) gives the very same alert, not another one.
        assert alerts_for(article, matcher)[0].id == alert.id


def test_other_figures_and_places_raise_nothing(matcher: ClaimMatcher) -> None:
    assert alerts_for(_article(3, OTHER_FR), matcher) == []


def test_only_claim_and_retroactive_marks(matcher: ClaimMatcher) -> None:
    article = _article(4, REPORT_FR)
    assert alerts_for(article, matcher, only_claim="another") == []
    [alert] = alerts_for(article, matcher, retroactive=True, only_claim=claim_id(CLAIM_EN))
    assert alert.retroactive


def test_the_pacer_keeps_background_work_to_its_share() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def steps() -> None:
        await Pacer(0.25, sleep).rest(1.0)
        await Pacer(0.5, sleep).rest(0.2)
        await Pacer(1.0, sleep).rest(5.0)  # all of the time: no rest

    run(steps())
    assert slept == pytest.approx([3.0, 0.2])
    with pytest.raises(ValueError):
        Pacer(0.0)


def test_an_article_denying_the_claim_raises_an_alert_that_says_it_disputes_it(matcher: ClaimMatcher) -> None:
    """The denial speaks of the claim (same figures, places, actors: a high score), and the
    fact-checker sees it is a denial; the report stating it repeats it."""
    denial = _article(
        7,
        "Contrairement à ce qu'affirment plusieurs médias, l'armée n'a pas laissé 3 000 combattants "
        "rebelles quitter Tarvos pour la ville frontalière de Kelmar, a assuré mardi le commandement "
        "militaire.",
    )
    [disputed] = alerts_for(denial, matcher)
    assert disputed.stance == "disputes" and disputed.score >= 0.9
    [repeated] = alerts_for(_article(8, REPORT_FR), matcher)
    assert repeated.stance == "repeats"


#: A sentence the enricher does not find check-worthy (no figure, attribution or quotation).
QUIET_CLAIM = "Le vieux pont suspendu restera fermé aux poids lourds jusqu'à la fin des travaux."
QUIET_TEXT = (
    "Le conseil municipal de Varenne s'est réuni jeudi soir pour la dernière fois de l'année. "
    "Le vieux pont suspendu restera fermé aux poids lourds jusqu'à la fin des travaux de renforcement. "
    "Les commerçants du centre s'inquiètent pour les fêtes."
)


def test_a_claim_quoted_in_a_sentence_that_is_not_check_worthy_raises_an_alert() -> None:
    """Only the title and check-worthy sentences are matched by meaning, but a sentence holding
    nearly all of a tracked claim's words is matched too: a fact-checker expects an alert when a
    claim comes back word for word, wherever it stands."""
    article = _article(9, QUIET_TEXT, "Varenne : le conseil municipal se réunit")
    claim = new_claim(QUIET_CLAIM)
    assert all("pont" not in c.text for c in article.claims)  # not check-worthy
    matcher = ClaimMatcher()
    matcher.upsert(claim)
    [alert] = alerts_for(article, matcher)
    assert alert.claim_id == claim.id and alert.score >= 0.9 and not alert.in_title
    assert alert.sentence.startswith("Le vieux pont suspendu")
    assert article.text[alert.sentence_start : alert.sentence_end] == alert.sentence
    # the same words elsewhere, not stating it: nothing
    assert alerts_for(_article(10, "Le pont restera ouvert. Les travaux sont finis."), matcher) == []


def test_retroactive_search_matches_in_steps_and_rests_between_them(servers: LocalServers) -> None:
    """Over a real search server: the reports already indexed are found, the others are not, and
    the matching runs in steps of CANDIDATES_PER_STEP with a rest after each."""
    settings = settings_for(servers)
    run(setup(settings))
    reports = [_article(100 + n, REPORT_FR if n % 2 else REPORT_FR_2) for n in range(CANDIDATES_PER_STEP + 5)]
    others = [_article(200 + n, OTHER_FR) for n in range(3)]
    claim = new_claim(CLAIM_EN, id="claim-retro-steps")
    matcher = ClaimMatcher()
    matcher.upsert(claim)
    rests: list[float] = []

    async def sleep(seconds: float) -> None:
        rests.append(seconds)

    async def search() -> list[str]:
        es = await connect(settings)
        try:
            for article in reports + others:
                await es.index(
                    index=settings.index("articles"), id=article.id, document=article.model_dump(mode="json")
                )
            await es.indices.refresh(index=settings.index("articles"))
            found = await retroactive_alerts(es, settings, matcher, claim, Pacer(0.25, sleep))
        finally:
            await es.close()
        assert all(alert.retroactive and alert.claim_id == claim.id for alert in found)
        return found

    found = run(search())
    assert sorted(alert.article_id for alert in found) == sorted(article.id for article in reports)
    # The search leaves the bodies on the server, and each alert is the one the article raised on
    # arrival all the same: sentence, offsets, score, links.
    by_id = {article.id: article for article in reports}
    differ = {"retroactive", "created_at"}
    for alert in found:
        [on_arrival] = alerts_for(by_id[alert.article_id], matcher, only_claim=claim.id)
        assert alert.model_dump(exclude=differ) == on_arrival.model_dump(exclude=differ)
    assert len(rests) >= 2 and all(rest > 0 for rest in rests)  # two steps at least, a rest after each


def test_retroactive_search_finds_a_claim_quoted_outside_the_check_worthy_sentences(
    servers: LocalServers,
) -> None:
    """The search leaves the bodies on the server, so it reads the text of the candidates whose
    text holds the claim's words, and raises the alert the article raised on arrival."""
    settings = settings_for(servers, es_index_prefix="quiet")
    run(setup(settings))
    quoted = _article(300, QUIET_TEXT, "Varenne : le conseil municipal se réunit")
    unrelated = _article(301, "Le pont restera ouvert. Les travaux sont finis.", "Le pont de Varenne")
    claim = new_claim(QUIET_CLAIM)
    matcher = ClaimMatcher()
    matcher.upsert(claim)

    async def search() -> list[Alert]:
        es = await connect(settings)
        try:
            for article in (quoted, unrelated):
                await es.index(
                    index=settings.index("articles"), id=article.id, document=article.model_dump(mode="json")
                )
            await es.indices.refresh(index=settings.index("articles"))
            return await retroactive_alerts(es, settings, matcher, claim, Pacer(1.0))
        finally:
            await es.close()

    [alert] = run(search())
    [on_arrival] = alerts_for(quoted, matcher)
    assert alert.retroactive and alert.article_id == quoted.id
    assert alert.model_dump(exclude={"retroactive", "created_at"}) == on_arrival.model_dump(
        exclude={"retroactive", "created_at"}
    )


def test_claims_tracked_while_the_service_was_down_get_their_retroactive_search() -> None:
    """At load, a claim tracked recently is passed on for the retroactive search (it was new to
    nobody if tracked while the alerts service was down); an old one, an untracked one and
    those applied once loaded (passed on as they come) are not passed on by the catch-up; a
    claim tracked again is passed on when its search version changed."""
    settings = make_settings(claims_retro_catchup_hours=24)
    passed: list[str] = []
    watchlist = Watchlist(settings, on_change=lambda _: None, on_new=lambda c: passed.append(c.id))
    now = datetime.now(UTC)
    recent = new_claim("The bridge will stay closed until March.", created_at=now - timedelta(hours=2))
    old = new_claim("The vaccine was tested on 40,000 people.", created_at=now - timedelta(days=3))
    dropped = new_claim("The mayor resigned on Tuesday.", created_at=now)
    run(watchlist.apply([recent, old, dropped]))
    run(watchlist.apply([dropped.model_copy(update={"active": False})]))
    assert passed == []  # nothing while loading
    watchlist.ready.set()
    watchlist._catch_up()
    assert passed == [recent.id]
    later = new_claim("The strike ended after nine days.")
    run(watchlist.apply([later]))
    assert passed == [recent.id, later.id]
    # Tracked again with what its search depends on changed, it is searched again; a label is not.
    run(watchlist.apply([later.model_copy(update={"labels": {"verdict": "false"}})]))
    assert passed == [recent.id, later.id]
    run(watchlist.apply([later.model_copy(update={"keywords": ["strike"]})]))
    assert passed == [recent.id, later.id, later.id]


def test_a_poll_of_claims_reaches_the_matcher_as_one_batch_and_a_tombstone_untracks() -> None:
    """Loading thousands of claims embeds them together (one encoder call per poll, not one per
    claim); a tombstone on the topic takes its claim off the matcher."""
    settings = make_settings()
    matcher = ClaimMatcher()
    batches: list[int] = []

    def on_change(claims: Sequence[TrackedClaim]) -> None:
        batches.append(len(claims))
        matcher.upsert_many(claims)

    watchlist = Watchlist(settings, on_change=on_change)
    claims = [new_claim(f"The council approved {n} new homes in Ostrel.") for n in range(1, 41)]
    run(watchlist.apply(claims))
    assert batches == [40]
    assert len(matcher.claims()) == 40 and watchlist.versions.keys() == {c.id for c in claims}
    tombstone = Watchlist._claim(claims[0].id.encode(), None)
    assert tombstone is not None and not tombstone.active
    run(watchlist.apply([tombstone]))
    assert claims[0].id not in {c.id for c in matcher.claims()}
    assert claims[0].id not in watchlist.versions
    assert Watchlist._claim(None, b"not json") is None


def test_claims_are_named_on_the_command_line_by_the_start_of_their_id(
    servers: LocalServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from wirewatch.alerts.watchlist import current, publish
    from wirewatch.cli import main
    from wirewatch.core.kafka import read_topic

    settings = settings_for(servers)
    run(setup(settings))
    claims = [new_claim(text, id=i) for text, i in ((CLAIM_EN, "c1a1m5-one"), (OTHER_FR, "c1a1m5-two"))]
    run(publish(settings, claims))
    for name, value in servers.env().items():
        monkeypatch.setenv(name, value)
    both = CliRunner().invoke(main, ["claims", "untrack", "c1a1m5"])
    assert both.exit_code == 1 and "2 tracked claims start with 'c1a1m5'" in both.output
    assert "c1a1m5-one " + CLAIM_EN[:50] in both.output
    untracked = CliRunner().invoke(main, ["claims", "untrack", "c1a1m5-t"])
    assert untracked.exit_code == 0 and "untracked c1a1m5-two" in untracked.output
    active = {i: c.active for i, c in run(current(settings)).items()}
    assert active == {"c1a1m5-one": True, "c1a1m5-two": False}
    versions = len(run(read_topic(settings, settings.topic_claims)))
    again = CliRunner().invoke(main, ["claims", "untrack", "c1a1m5-two"])  # untracked already
    assert again.exit_code == 0 and again.output == "c1a1m5-two was already untracked\n"
    assert len(run(read_topic(settings, settings.topic_claims))) == versions  # nothing published
    listed = CliRunner().invoke(main, ["alerts", "--claim", "c1a1m5-o"])
    assert listed.exit_code == 0 and listed.output.strip() == "no alerts"
    unknown = CliRunner().invoke(main, ["alerts", "--claim", "nosuchclaim"])
    assert unknown.exit_code == 1 and "no tracked claim 'nosuchclaim'" in unknown.output
    unknown = CliRunner().invoke(main, ["alerts", "--claim", "nosuchclaim", "--json"])
    assert unknown.exit_code == 1 and unknown.stdout == "" and "no tracked claim" in unknown.stderr


def _cli_on(servers: LocalServers, monkeypatch: pytest.MonkeyPatch, topic: str) -> Settings:
    """Settings with claims on a topic of their own, set up, and the CLI's environment for them."""
    settings = settings_for(servers, topic_claims=topic)
    run(setup(settings))
    for name, value in servers.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WIREWATCH_TOPIC_CLAIMS", settings.topic_claims)
    return settings


def test_tracking_a_claim_again_keeps_its_labels_keywords_and_creation_time(
    servers: LocalServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second `claims track` of a text (or id) updates the claim it is rather than replacing
    it: labels merged (a key given again wins), keywords added, created_at kept, and it says so."""
    from click.testing import CliRunner

    from wirewatch.alerts.watchlist import current
    from wirewatch.cli import main

    settings = _cli_on(servers, monkeypatch, "wirewatch.claims-retrack")

    def track(*args: str) -> str:
        result = CliRunner().invoke(main, ["claims", "track", *args])
        assert result.exit_code == 0, result.output
        return result.output

    cid = claim_id(CLAIM_EN)
    first = track(CLAIM_EN, "--label", "verdict=false", "--label", "source=afp", "--keyword", "Mosul")
    assert first == f"tracking {cid}: {CLAIM_EN}\n"
    created = run(current(settings))[cid].created_at
    again = track(CLAIM_EN)
    since = f"{created:%Y-%m-%d %H:%M} UTC"
    assert again == f"already tracked {cid} (since {since}): nothing changed: {CLAIM_EN}\n"
    claim = run(current(settings))[cid]
    assert claim.labels == {"verdict": "false", "source": "afp"} and claim.keywords == ["Mosul"]
    assert claim.created_at == created
    updated = track(CLAIM_EN, "--label", "verdict=misleading", "--keyword", "Raqqa", "--keyword", "Mosul")
    assert "): labels updated, keywords added: " in updated
    claim = run(current(settings))[cid]
    assert claim.labels == {"verdict": "misleading", "source": "afp"}
    assert claim.keywords == ["Mosul", "Raqqa"] and claim.created_at == created and claim.language == "en"
    untracked = CliRunner().invoke(main, ["claims", "untrack", cid])
    assert untracked.exit_code == 0, untracked.output
    back = track(CLAIM_EN, "--owner", "desk")
    assert back.startswith(f"tracking {cid} again (first tracked ") and "owner updated" in back
    claim = run(current(settings))[cid]
    assert claim.active and claim.owner == "desk" and claim.created_at == created
    assert claim.labels == {"verdict": "misleading", "source": "afp"}
    # without its full stop, or in lower case, it is the same claim; lower case is warned of
    plain = track(CLAIM_EN.rstrip("."))
    assert plain.startswith(f"already tracked {cid} ") and "text updated" in plain
    lower = CliRunner().invoke(main, ["claims", "track", CLAIM_EN.lower()])
    assert lower.exit_code == 0 and "warning: this claim is all in lower case" in lower.stderr
    assert lower.stdout.startswith(f"already tracked {cid} ")
    assert len([c for c in run(current(settings)).values() if c.active]) == 1
    listed = CliRunner().invoke(main, ["claims", "list"])
    assert listed.exit_code == 0 and listed.output.startswith(f"{cid}  ")
    details = listed.output.splitlines()[1].strip()
    assert details == (
        "language en · threshold 0.40 (default) · keywords Mosul, Raqqa · owner desk"
        " · verdict=misleading source=afp"
    )


def test_importing_a_claims_file_again_updates_the_claims_it_holds_and_publishes_only_changes(
    servers: LocalServers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A team's claims file imported, then edited by hand on the watchlist, then imported again:
    each claim keeps when it was first tracked and the labels added since; an untracked one is
    tracked again; a claim not in the file is left alone; only what changed is published; and
    a file with an error publishes nothing."""
    from click.testing import CliRunner

    from wirewatch.alerts.watchlist import current
    from wirewatch.cli import main
    from wirewatch.core.kafka import read_topic

    settings = _cli_on(servers, monkeypatch, "wirewatch.claims-import")

    def claims(*args: str) -> str:
        result = CliRunner().invoke(main, ["claims", *args])
        assert result.exit_code == 0, result.output
        return result.output

    def records() -> int:
        return len(run(read_topic(settings, settings.topic_claims)))

    cid, bridge, other = claim_id(CLAIM_EN), "imp-bridge", claim_id(OTHER_FR)
    path = tmp_path / "claims.jsonl"

    def write(*lines: dict[str, object]) -> None:
        path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")

    team = {"text": CLAIM_EN, "labels": {"verdict": "false"}, "keywords": ["Tarvos"]}
    bridge_line = {"id": bridge, "text": "The bridge will stay closed until March."}
    write(team, bridge_line)
    assert claims("import", str(path)) == f"2 new, 0 updated, 0 unchanged (from {path})\n"
    created = {i: c.created_at for i, c in run(current(settings)).items()}
    # By hand, since: a label, an untracked claim, and a claim the file does not hold.
    claims("track", CLAIM_EN, "--label", "reviewer=ana")
    claims("untrack", bridge)
    claims("track", OTHER_FR, "--label", "verdict=true")
    before = records()

    again = claims("import", str(path))
    assert again.splitlines() == [
        f"tracking {bridge} again (first tracked {created[bridge]:%Y-%m-%d %H:%M} UTC): nothing changed: "
        "The bridge will stay closed until March.",
        f"0 new, 0 updated, 1 tracked again, 1 unchanged (from {path})",
    ]
    assert records() == before + 1  # the claim tracked again, not the unchanged one
    now = run(current(settings))
    assert now[cid].labels == {"verdict": "false", "reviewer": "ana"} and now[cid].keywords == ["Tarvos"]
    assert now[cid].created_at == created[cid] and now[bridge].created_at == created[bridge]
    assert now[bridge].active and now[other].active and now[other].labels == {"verdict": "true"}

    write(
        {**team, "labels": {"verdict": "misleading"}},
        bridge_line,
        {"text": "The strike ended after nine days."},
    )
    result = CliRunner().invoke(main, ["claims", "import", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = {item["claim"]["id"]: item for item in json.loads(result.output)}
    assert {i: (item["outcome"], item["changes"], item["lines"]) for i, item in report.items()} == {
        cid: ("updated", ["labels updated"], [1]),
        bridge: ("unchanged", [], [2]),
        claim_id("The strike ended after nine days."): ("new", [], [3]),
    }
    assert report[cid]["claim"]["labels"] == {"verdict": "misleading", "reviewer": "ana"}
    assert records() == before + 3
    assert run(current(settings))[cid].created_at == created[cid]

    path.write_text(
        json.dumps({"text": "The ferry to Ostrel runs again."}) + '\n{"label": {}}\n', encoding="utf-8"
    )
    broken = CliRunner().invoke(main, ["claims", "import", str(path)])
    assert broken.exit_code == 1 and f"error: {path}:2: unknown key(s) 'label': expected" in broken.output
    assert records() == before + 3  # not even the good first line


def test_with_no_broker_the_watchlist_commands_say_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from wirewatch.cli import main

    monkeypatch.setenv("WIREWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("WIREWATCH_ES_URL", "http://127.0.0.1:9")
    path = tmp_path / "claims.jsonl"
    path.write_text(json.dumps({"text": CLAIM_EN}) + "\n", encoding="utf-8")
    for command in (
        ["claims", "list"],
        ["claims", "untrack", "c1a1m5"],
        ["claims", "track", CLAIM_EN],
        ["claims", "import", str(path)],
    ):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1, (command, result.output)
        assert "error: Kafka does not answer" in result.output
        assert "WIREWATCH_KAFKA_BOOTSTRAP" in result.output and "Traceback" not in result.output
    # The alerts are in Elasticsearch: a claim's id is then taken as given.
    alerts = CliRunner().invoke(main, ["alerts", "--claim", "c1a1m5"])
    assert "claim id taken as given" in alerts.output and "cannot read alerts" in alerts.output


def test_the_watchlist_waits_for_a_broker_that_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The claims topic unreadable (no broker there): the watchlist tries again every second
    instead of raising, which would crash the alerts service; once a try gets through it follows."""
    from wirewatch.alerts import watchlist as module
    from wirewatch.local.servers import free_port

    monkeypatch.setattr(module, "RETRY_SECONDS", 0.1)
    settings = make_settings(kafka_bootstrap=f"127.0.0.1:{free_port()}")
    watchlist = Watchlist(settings, on_change=lambda _: None)

    async def for_a_while() -> None:
        with pytest.raises(TimeoutError):  # still trying, not failed
            await asyncio.wait_for(watchlist.run(), 2.0)

    run(for_a_while())
    tries: list[int] = []

    async def follow() -> None:
        tries.append(1)
        if len(tries) < 3:
            raise KafkaConnectionError("Unable to bootstrap")
        watchlist.ready.set()  # got through: it follows the topic until cancelled
        await asyncio.Event().wait()

    monkeypatch.setattr(watchlist, "_follow", follow)

    async def until_through() -> None:
        task = asyncio.ensure_future(watchlist.run())
        await asyncio.wait_for(watchlist.ready.wait(), 5.0)
        task.cancel()

    run(until_through())
    assert len(tries) >= 3
