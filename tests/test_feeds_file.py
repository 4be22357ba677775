"""The feeds file (``wirewatch.core.feeds``) and the ``wirewatch feeds`` commands."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wirewatch.cli import main
from wirewatch.core import feeds as feeds_module
from wirewatch.core.feeds import (
    MAX_FEED_INTERVAL,
    FeedsFileError,
    add_feed,
    load_feeds,
    remove_feed,
    save_feeds,
)
from wirewatch.core.ids import feed_id

GAZETTE = "https://www.harbour-gazette.example/rss.xml"
WIRE = "https://global-wire.example/feeds/en.xml"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "conf" / "feeds.yaml"


# --- the module -----------------------------------------------------------------------------------


def test_missing_or_empty_file_has_no_feeds(path: Path) -> None:
    assert load_feeds(path) == []
    path.parent.mkdir(parents=True)
    path.write_text("", encoding="utf-8")
    assert load_feeds(path) == []
    path.write_text("feeds: []\n", encoding="utf-8")
    assert load_feeds(path) == []


def test_add_list_remove_round_trip(path: Path) -> None:
    gazette, added = add_feed(path, GAZETTE, name="Harbour Gazette", language="en", interval=600)
    assert added
    assert gazette.id == feed_id(GAZETTE)
    _, added = add_feed(path, WIRE)
    assert added

    listed = load_feeds(path)
    assert [f.url for f in listed] == [GAZETTE, WIRE]  # order kept
    assert listed[0] == gazette
    assert (listed[0].name, listed[0].language, listed[0].interval) == ("Harbour Gazette", "en", 600.0)
    assert (listed[1].name, listed[1].language, listed[1].interval) == (None, None, None)

    # What is written is the documented, hand-editable format: no ids, no nulls.
    on_disk = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert on_disk == {
        "feeds": [
            {"url": GAZETTE, "name": "Harbour Gazette", "language": "en", "interval": 600.0},
            {"url": WIRE},
        ]
    }
    assert not list(path.parent.glob("*.tmp"))

    removed = remove_feed(path, GAZETTE)
    assert removed == gazette
    assert [f.url for f in load_feeds(path)] == [WIRE]
    assert remove_feed(path, GAZETTE) is None
    assert remove_feed(path, WIRE) is not None
    assert load_feeds(path) == []


def test_duplicate_add_keeps_the_existing_feed(path: Path) -> None:
    first, added = add_feed(path, GAZETTE, name="Harbour Gazette")
    assert added
    before = path.read_text(encoding="utf-8")
    variant = "HTTPS://www.Harbour-Gazette.example:443/rss.xml?utm_source=x#top"
    again, added = add_feed(path, variant, name="Another name")
    assert not added
    assert again == first
    assert again.name == "Harbour Gazette"
    assert path.read_text(encoding="utf-8") == before
    assert len(load_feeds(path)) == 1


@pytest.mark.parametrize(
    "key",
    [
        feed_id(GAZETTE),
        GAZETTE,
        "HTTPS://WWW.Harbour-Gazette.example:443/rss.xml",
        GAZETTE + "?fbclid=abc&utm_medium=social#top",
        "  " + GAZETTE + "\n",
    ],
)
def test_remove_by_id_or_url_variant(path: Path, key: str) -> None:
    feed, _ = add_feed(path, GAZETTE)
    add_feed(path, WIRE)
    assert remove_feed(path, key) == feed
    assert [f.url for f in load_feeds(path)] == [WIRE]


def test_remove_of_an_unknown_feed_changes_nothing(path: Path) -> None:
    add_feed(path, GAZETTE)
    before = path.read_text(encoding="utf-8")
    assert remove_feed(path, "https://elsewhere.example/rss.xml") is None
    assert remove_feed(path, "not a url") is None
    assert remove_feed(path, "0" * 32) is None
    assert path.read_text(encoding="utf-8") == before


def test_plain_url_entries_are_accepted(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(f"feeds:\n  - {GAZETTE}\n  - url: {WIRE}\n    language: fr\n", encoding="utf-8")
    feeds = load_feeds(path)
    assert [(f.url, f.language) for f in feeds] == [(GAZETTE, None), (WIRE, "fr")]
    assert feeds[0].id == feed_id(GAZETTE)


def test_save_then_load_is_lossless(path: Path) -> None:
    add_feed(path, GAZETTE, name="Gazette « côte »", language="fr", interval=12.5)
    feeds = load_feeds(path)
    save_feeds(path, feeds)
    assert load_feeds(path) == feeds


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("feeds: [unclosed\n  - url: x", "cannot read feeds file"),
        ("feeds:\n\t- tab: indented\n", "cannot read feeds file"),
        (f"- {GAZETTE}\n", "expected a mapping with a 'feeds' list"),
        ("just a string\n", "expected a mapping with a 'feeds' list"),
        (f"feeds:\n  url: {GAZETTE}\n", "expected a mapping with a 'feeds' list"),
        ("feeds:\n  - name: No URL\n", "feed #1 needs a 'url'"),
        (f"feeds:\n  - {GAZETTE}\n  - 42\n", "feed #2 needs a 'url'"),
        ("feeds:\n  - url: ftp://example.com/rss\n", "feed #1"),
        (f"feeds:\n  - url: {GAZETTE}\n    interval: -5\n", "feed #1"),
        (f"feeds:\n  - url: {GAZETTE}\n    interval: soon\n", "interval"),
        # Past a day: 1e12 s made the fetcher's /feeds page fail (a date past year 9999), and .inf
        # went to the feeds topic as null (the default interval), both without a word.
        (f"feeds:\n  - {WIRE}\n  - url: {GAZETTE}\n    interval: 1e12\n", "feed #2: interval: 1e+12 seconds"),
        (f"feeds:\n  - url: {GAZETTE}\n    interval: .inf\n", "feed #1: interval: inf seconds"),
        (f"feeds:\n  - url: {GAZETTE}\n    interval: 86401\n", "more than a day"),
        # The same feed twice (one canonical URL, one id): which entry's name or interval?
        (
            f"feeds:\n  - {GAZETTE}\n  - {WIRE}\n  - url: HTTPS://WWW.Harbour-Gazette.example/rss.xml#top\n",
            "feed #3 is feed #1 again",
        ),
    ],
)
def test_bad_files_raise_feeds_file_error_naming_the_path(path: Path, content: str, reason: str) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FeedsFileError) as caught:
        load_feeds(path)
    assert str(path) in str(caught.value)
    assert reason in str(caught.value)
    with pytest.raises(FeedsFileError):
        add_feed(path, WIRE)  # never overwrite a file we cannot read
    assert path.read_text(encoding="utf-8") == content


def test_an_interval_of_a_day_is_the_longest(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(f"feeds:\n  - url: {GAZETTE}\n    interval: {MAX_FEED_INTERVAL:g}\n", encoding="utf-8")
    assert [f.interval for f in load_feeds(path)] == [86_400]
    with pytest.raises(ValueError, match="more than a day"):
        add_feed(path, WIRE, interval=MAX_FEED_INTERVAL * 2)
    assert [f.url for f in load_feeds(path)] == [GAZETTE]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("0", "0 seconds is not more than 0 (at most 86400)"),
        ("-5", "-5 seconds is not more than 0 (at most 86400)"),
        ("nan", "nan is not a number of seconds (more than 0, at most 86400)"),
        ("90000", "90000 seconds is more than a day (at most 86400)"),
        ("inf", "inf seconds is more than a day (at most 86400)"),
    ],
)
def test_feeds_add_of_an_interval_out_of_bounds_is_a_usage_error(
    cli: CliRunner, path: Path, value: str, said: str
) -> None:
    """One line naming the option, as for the other bad inputs; never pydantic's report."""
    result = cli.invoke(main, ["feeds", "add", WIRE, "--interval", value, "--json"])
    assert result.exit_code == 2 and result.stdout == ""
    assert f"Error: Invalid value for '--interval': {said}\n" in result.stderr
    assert "validation error" not in result.stderr and "pydantic" not in result.stderr
    assert not path.exists()
    with pytest.raises(ValueError, match=re.escape(said)):
        add_feed(path, WIRE, interval=float(value))  # the module says the same
    assert not path.exists()


def test_non_utf8_file_is_a_feeds_file_error(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"feeds:\n  - url: https://caf\xe9.example/rss\n")
    with pytest.raises(FeedsFileError, match="cannot read feeds file"):
        load_feeds(path)


# --- edits keep the rest of the file ---------------------------------------------------------------

ANNOTATED = f"""\
# My feeds.   (kept: `feeds add` and `feeds remove` edit the list in place)

feeds:   # checked every morning
  - url: {GAZETTE}
    # paywalled, poll slowly
    interval: 3600
    name: "Harbour Gazette"

  # the wire: fast
  - {WIRE}
# more to come
"""
NEW = "https://news.example/world.xml"


def _no_warning(message: str) -> None:
    raise AssertionError(f"unexpected warning: {message}")


def test_add_appends_an_entry_and_keeps_the_rest_byte_for_byte(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(ANNOTATED, encoding="utf-8")
    feed, added = add_feed(path, NEW, name="World « news »", language="fr", interval=600, warn=_no_warning)
    assert added
    after = path.read_text(encoding="utf-8")
    entry = f"  - url: {NEW}\n    name: World « news »\n    language: fr\n    interval: 600\n"
    assert after == ANNOTATED.replace("# more to come\n", entry + "# more to come\n")
    assert [f.url for f in load_feeds(path)] == [GAZETTE, WIRE, NEW]
    assert load_feeds(path)[-1] == feed
    assert not list(path.parent.glob("*.tmp"))
    assert remove_feed(path, NEW, warn=_no_warning) == feed
    assert path.read_text(encoding="utf-8") == ANNOTATED


def test_remove_takes_only_the_entry_s_lines(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(ANNOTATED, encoding="utf-8")
    remove_feed(path, GAZETTE, warn=_no_warning)  # its lines, its comment inside, not the blank line
    assert path.read_text(encoding="utf-8") == ANNOTATED.replace(
        f"  - url: {GAZETTE}\n    # paywalled, poll slowly\n"
        '    interval: 3600\n    name: "Harbour Gazette"\n',
        "",
    )
    # A comment line above the entry is kept: it may be about the next one, or an entry commented
    # out; the user's words are not deleted on a guess.
    remove_feed(path, WIRE, warn=_no_warning)
    assert path.read_text(encoding="utf-8") == (
        "# My feeds.   (kept: `feeds add` and `feeds remove` edit the list in place)\n\n"
        "feeds:   # checked every morning\n\n  # the wire: fast\n# more to come\n"
    )
    assert load_feeds(path) == []
    add_feed(path, NEW, warn=_no_warning)
    assert [f.url for f in load_feeds(path)] == [NEW]
    assert "# the wire: fast\n" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # The format `feeds add` wrote before (yaml.safe_dump: the list not indented).
        (
            f"feeds:\n- url: {GAZETTE}\n  name: G\n",
            f"feeds:\n- url: {GAZETTE}\n  name: G\n- url: {NEW}\n  name: N\n",
        ),
        (
            f"feeds:\n    -   url: {GAZETTE}\n        name: G\n",
            f"feeds:\n    -   url: {GAZETTE}\n        name: G\n    -   url: {NEW}\n        name: N\n",
        ),
        # A list of URLs gets a URL (but a mapping when there is more than the URL to say).
        (f"feeds:\n  - {GAZETTE}\n", f"feeds:\n  - {GAZETTE}\n  - url: {NEW}\n    name: N\n"),
        # No feeds yet: `feeds: []` (what removing the last feed used to leave), `feeds:`, nothing.
        ("feeds: []  # none yet\n", f"feeds:  # none yet\n  - url: {NEW}\n    name: N\n"),
        (
            "feeds:\n  # one per outlet\nother: 1\n",
            f"feeds:\n  # one per outlet\n  - url: {NEW}\n    name: N\nother: 1\n",
        ),
        ("# nothing yet\n", f"# nothing yet\nfeeds:\n  - url: {NEW}\n    name: N\n"),
        ("", f"feeds:\n  - url: {NEW}\n    name: N\n"),
        # Line ends and a last line without one are kept.
        (
            f"feeds:\r\n  - {GAZETTE}  # g\r\n",
            f"feeds:\r\n  - {GAZETTE}  # g\r\n  - url: {NEW}\r\n    name: N\r\n",
        ),
        (f"feeds:\n  - {GAZETTE}", f"feeds:\n  - {GAZETTE}\n  - url: {NEW}\n    name: N"),
    ],
)
def test_add_follows_the_file_s_list_style(path: Path, content: str, expected: str) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(content.encode())
    add_feed(path, NEW, name="N", warn=_no_warning)
    assert path.read_bytes().decode() == expected
    assert [f.url for f in load_feeds(path)][-1] == NEW


def test_add_of_a_plain_url_to_a_list_of_urls_is_a_url(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(f"feeds:\n  - {GAZETTE}\n", encoding="utf-8")
    add_feed(path, NEW, warn=_no_warning)
    assert path.read_text(encoding="utf-8") == f"feeds:\n  - {GAZETTE}\n  - {NEW}\n"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (f"# flow style\nfeeds: [{GAZETTE}]\n", "not in the block style"),
        (f"# anchors\nsite: &g {GAZETTE}\nfeeds:\n  - url: *g\n", "anchors or aliases"),
        (f'# a quoted key\n"feeds":\n  - {GAZETTE}\n', "not in the block style"),
        (f"feeds:\n  - {{url: {GAZETTE},\n  name: G}}\n# c\n", "usual shape"),
        # A block scalar with a line that looks like a comment: the line scan would end the entry
        # before it; the parser's view of where the entry's values are says otherwise.
        (f"feeds:\n  - url: {GAZETTE}\n    name: |-\n      G\n\n      # not a comment\n", "usual shape"),
    ],
)
def test_a_layout_the_edit_does_not_know_is_rewritten_whole_with_a_warning(
    path: Path, content: str, reason: str
) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(content, encoding="utf-8")
    before = load_feeds(path)
    warnings: list[str] = []
    _, added = add_feed(path, NEW, warn=warnings.append)
    assert added
    assert len(warnings) == 1
    assert str(path) in warnings[0] and "without its comments" in warnings[0] and reason in warnings[0]
    assert load_feeds(path) == [*before, load_feeds(path)[-1]]
    assert load_feeds(path)[-1].url == NEW
    save_feeds(path.with_name("whole.yaml"), load_feeds(path))
    assert path.read_text(encoding="utf-8") == path.with_name("whole.yaml").read_text(encoding="utf-8")
    if "|-" in content:
        return  # (rewritten, the name is a quoted scalar over several lines: not the usual shape)
    # Rewritten, the file is in the shape the next edit keeps comments in.
    path.write_text("# mine\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    remove_feed(path, NEW, warn=_no_warning)
    assert path.read_text(encoding="utf-8").startswith("# mine\n")
    assert load_feeds(path) == before


def test_a_block_scalar_followed_by_blank_lines_is_edited_in_place(path: Path) -> None:
    content = f"feeds:\n  - url: {GAZETTE}\n    name: |\n      Harbour\n      Gazette\n\n# end\n"
    path.parent.mkdir(parents=True)
    path.write_text(content, encoding="utf-8")
    add_feed(path, NEW, warn=_no_warning)
    assert path.read_text(encoding="utf-8") == content.replace("\n\n# end", f"\n  - url: {NEW}\n\n# end")
    assert load_feeds(path)[0].name == "Harbour\nGazette\n"
    remove_feed(path, NEW, warn=_no_warning)
    assert path.read_text(encoding="utf-8") == content


@pytest.mark.parametrize("line", ["  - url: https://news.example/world.xml\n    interval: 0\n", "  - [\n"])
def test_an_edit_that_does_not_read_back_as_expected_is_never_written(
    path: Path, monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    """The last check: whatever the line edit wrote must load as the expected feeds (here it is
    made to write an entry load_feeds refuses, or one that does not parse)."""
    monkeypatch.setattr(feeds_module, "_entry_text", lambda *_: [line])
    path.parent.mkdir(parents=True)
    path.write_text(f"# mine\nfeeds:\n  - {GAZETTE}\n", encoding="utf-8")
    warnings: list[str] = []
    add_feed(path, NEW, warn=warnings.append)
    assert len(warnings) == 1
    assert "read back" in warnings[0] or "does not parse" in warnings[0]
    assert [f.url for f in load_feeds(path)] == [GAZETTE, NEW]


def test_removing_an_entry_an_alias_refers_to_falls_back(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(f"feeds:\n  - url: {GAZETTE}\n    name: &n Gazette\n  - url: {WIRE}\n    name: *n\n")
    warnings: list[str] = []
    remove_feed(path, GAZETTE, warn=warnings.append)
    assert len(warnings) == 1 and "anchors or aliases" in warnings[0]
    assert [(f.url, f.name) for f in load_feeds(path)] == [(WIRE, "Gazette")]


def test_a_fallback_without_warn_is_logged(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(f"feeds: [{GAZETTE}]\n", encoding="utf-8")
    add_feed(path, NEW)
    assert "rewritten whole" in caplog.text
    assert [f.url for f in load_feeds(path)] == [GAZETTE, NEW]


# Generated feeds files in the block style, with comments and blank lines anywhere.
_words = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "Zs", "P", "S")), max_size=12)
_comments = st.builds(lambda indent, text: " " * indent + "#" + text, st.integers(0, 8), _words)
_fillers = st.lists(st.one_of(_comments, st.sampled_from(["", "  ", "     "])), max_size=3)
_values = {
    "name": _words.map(lambda name: json.dumps(name, ensure_ascii=False)),
    "language": st.sampled_from(["fr", "en", "'de'"]),
    "interval": st.integers(1, 86_400).map(str),
}


@st.composite
def _feeds_files(draw: st.DrawFn) -> str:
    indent = draw(st.sampled_from([0, 2, 4]))
    offset = draw(st.sampled_from([2, 3, 4]))
    lines = draw(_fillers)
    if draw(st.booleans()):
        lines += ["title: My feeds", *draw(_fillers)]
    lines.append("feeds:" + draw(st.sampled_from(["", "  # the list", " "])))
    for n in range(draw(st.integers(0, 4))):
        lines += draw(_fillers)
        url = f"https://outlet{n}.example/rss.xml"
        dash = " " * indent + "-" + " " * (offset - 1)
        keys = draw(st.lists(st.sampled_from(sorted(_values)), unique=True, max_size=3))
        if not keys and draw(st.booleans()):
            lines.append(dash + url + draw(st.sampled_from(["", "  # plain"])))
            continue
        pairs = [("url", url), *((key, draw(_values[key])) for key in keys)]
        pairs = draw(st.permutations(pairs))
        lines.append(f"{dash}{pairs[0][0]}: {pairs[0][1]}")
        for key, value in pairs[1:]:
            lines += draw(_fillers)
            lines.append(f"{' ' * (indent + offset)}{key}: {value}")
    lines += draw(_fillers)
    if draw(st.booleans()):
        lines += ["other: [1, 2]  # after the list", *draw(_fillers)]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines) + draw(st.sampled_from([newline, ""]))


EDITS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@EDITS
@given(
    _feeds_files(),
    st.one_of(st.none(), st.text(max_size=20)),
    st.one_of(st.none(), st.sampled_from(["fr", "en"])),
    st.one_of(st.none(), st.floats(1, MAX_FEED_INTERVAL)),
)
@example("feeds:\n    #  deep, right under the header\n", None, None, None)
@example("feeds:\n- url: https://outlet0.example/rss.xml\n  #c\n#d\n", "a\n# b", None, None)
def test_add_then_remove_gives_back_the_file(
    content: str, name: str | None, language: str | None, interval: float | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "feeds.yaml"
        path.write_bytes(content.encode())
        before = load_feeds(path)
        feed, added = add_feed(path, NEW, name=name, language=language, interval=interval, warn=_no_warning)
        assert added
        assert load_feeds(path) == [*before, feed]
        after = path.read_bytes().decode()
        old_lines, new_lines = content.splitlines(), after.splitlines()
        assert all(line in new_lines for line in old_lines if line.lstrip().startswith("#"))
        kept = iter(new_lines)
        assert all(line in kept for line in old_lines)  # the old lines, in order, lines added between
        assert remove_feed(path, NEW, warn=_no_warning) == feed
        assert path.read_bytes().decode() == content


@EDITS
@given(_feeds_files(), st.integers(0, 3))
def test_remove_takes_out_one_run_of_lines_from_the_entry_s_dash(content: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "feeds.yaml"
        path.write_bytes(content.encode())
        before = load_feeds(path)
        if n >= len(before):
            return
        assert remove_feed(path, before[n].url, warn=_no_warning) == before[n]
        assert load_feeds(path) == before[:n] + before[n + 1 :]
        end = "" if content.endswith("\n") else "\r\n" if "\r\n" in content else "\n"  # (a last line kept so)
        old_lines = (content + end).splitlines(keepends=True)
        new_lines = (path.read_bytes().decode() + end).splitlines(keepends=True)
        gone = len(old_lines) - len(new_lines)  # one run of lines, from the entry's `-` line
        assert any(
            old_lines[:head] + old_lines[head + gone :] == new_lines
            and old_lines[head].lstrip(" ").startswith("-")
            and f"outlet{n}." in "".join(old_lines[head : head + gone])
            for head in range(len(new_lines) + 1)
        )


# --- the commands ---------------------------------------------------------------------------------


@pytest.fixture
def cli(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env from the working directory
    monkeypatch.setenv("WIREWATCH_FEEDS_FILE", str(path))
    return CliRunner()


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_feeds_commands_json(cli: CliRunner, path: Path) -> None:
    added = _json(
        cli.invoke(
            main,
            [
                "feeds",
                "add",
                GAZETTE,
                "--name",
                "Harbour Gazette",
                "--lang",
                "en",
                "--interval",
                "600",
                "--json",
            ],
        )
    )
    assert added == {
        "added": True,
        "feed": {
            "id": feed_id(GAZETTE),
            "url": GAZETTE,
            "name": "Harbour Gazette",
            "language": "en",
            "interval": 600.0,
        },
        "feeds_file": str(path),  # the file edited
    }
    again = _json(cli.invoke(main, ["feeds", "add", GAZETTE + "#again", "--json"]))
    assert again["added"] is False
    assert again["feed"]["id"] == feed_id(GAZETTE)
    assert again["feed"]["name"] == "Harbour Gazette"
    _json(cli.invoke(main, ["feeds", "add", WIRE, "--json"]))

    listed = _json(cli.invoke(main, ["feeds", "list", "--json"]))
    assert [f["url"] for f in listed] == [GAZETTE, WIRE]
    assert listed[0] == added["feed"]
    assert all("schema_version" not in f for f in listed)
    assert [f.url for f in load_feeds(path)] == [GAZETTE, WIRE]

    removed = _json(cli.invoke(main, ["feeds", "remove", feed_id(WIRE), "--json"]))
    assert removed == {
        "removed": {"id": feed_id(WIRE), "url": WIRE, "name": None, "language": None, "interval": None},
        "feeds_file": str(path),
    }
    assert [f["url"] for f in _json(cli.invoke(main, ["feeds", "list", "--json"]))] == [GAZETTE]

    # An error, --json or not: its line on stderr, nothing on stdout, exit 1.
    unknown = cli.invoke(main, ["feeds", "remove", WIRE, "--json"])
    assert (unknown.exit_code, unknown.stdout, unknown.stderr) == (1, "", f"error: no feed {WIRE!r}\n")
    for typed, why in (
        ("zzzzzz", "feed ids are hexadecimal: 0-9 and a-f"),
        ("ffffff", "no feed id starts with it"),
    ):
        unknown = cli.invoke(main, ["feeds", "remove", typed, "--json"])
        said = f"error: no feed {typed!r} ({why}; `wirewatch feeds list` lists them)\n"
        assert (unknown.exit_code, unknown.stdout, unknown.stderr) == (1, "", said)


def test_empty_feeds_list_is_no_feeds(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text("feeds:\n", encoding="utf-8")
    assert load_feeds(path) == []


def test_feeds_list_json_of_no_feeds_is_an_empty_list(cli: CliRunner) -> None:
    assert _json(cli.invoke(main, ["feeds", "list", "--json"])) == []


def test_feeds_text_output(cli: CliRunner, path: Path) -> None:
    result = cli.invoke(main, ["feeds", "list"])
    assert result.exit_code == 0
    assert f"no feeds in {path}" in result.stdout
    result = cli.invoke(main, ["feeds", "add", GAZETTE, "--lang", "fr"])
    assert result.exit_code == 0
    assert f"added: {GAZETTE}" in result.stdout
    result = cli.invoke(main, ["feeds", "list"])
    assert feed_id(GAZETTE)[:12] in result.stdout and "fr" in result.stdout
    result = cli.invoke(main, ["feeds", "remove", GAZETTE])
    assert result.exit_code == 0
    assert f"removed: {GAZETTE}" in result.stdout
    cli.invoke(main, ["feeds", "add", GAZETTE])
    result = cli.invoke(main, ["feeds", "remove", feed_id(GAZETTE)[:12]])  # the id as `feeds list` shows it
    assert result.exit_code == 0 and f"removed: {GAZETTE}" in result.stdout
    result = cli.invoke(main, ["feeds", "remove", feed_id(GAZETTE)[:12]])
    assert result.exit_code == 1 and f"no feed {feed_id(GAZETTE)[:12]!r}" in result.output


def test_feeds_remove_of_an_unknown_feed_fails_clearly(cli: CliRunner, path: Path) -> None:
    cli.invoke(main, ["feeds", "add", GAZETTE])
    result = cli.invoke(main, ["feeds", "remove", "https://elsewhere.example/rss.xml"])
    assert result.exit_code != 0
    assert "error: no feed 'https://elsewhere.example/rss.xml'" in result.stderr
    assert result.stdout == ""
    assert [f.url for f in load_feeds(path)] == [GAZETTE]


@pytest.mark.parametrize("url", ["ftp://example.com/rss", "not a url"])
def test_feeds_add_of_a_bad_url_fails_clearly(cli: CliRunner, path: Path, url: str) -> None:
    result = cli.invoke(main, ["feeds", "add", url, "--json"])
    assert result.exit_code != 0
    assert result.stderr.startswith("error: ")
    assert url in result.stderr
    assert not path.exists()


def test_feeds_list_names_the_bad_entry(cli: CliRunner, path: Path) -> None:
    path.parent.mkdir(parents=True)
    good = [f"https://outlet{n}.example/rss.xml" for n in range(6)]
    path.write_text(yaml.safe_dump({"feeds": [*good[:3], {"url": "not a url"}, *good[3:]]}), encoding="utf-8")
    result = cli.invoke(main, ["feeds", "list"])
    assert result.exit_code == 1
    assert result.stderr == f"error: {path}: feed #4: not an http(s) URL: 'not a url'\n"


def test_feeds_commands_report_a_broken_file(cli: CliRunner, path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text("feeds: [unclosed", encoding="utf-8")
    for args in (["feeds", "list", "--json"], ["feeds", "add", WIRE], ["feeds", "remove", WIRE]):
        result = cli.invoke(main, args)
        assert result.exit_code != 0, args
        assert str(path) in result.stderr, args
        assert "Traceback" not in result.output


def test_feeds_add_and_remove_keep_the_file_s_comments(cli: CliRunner, path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(ANNOTATED, encoding="utf-8")
    result = cli.invoke(main, ["feeds", "add", NEW])
    assert result.exit_code == 0 and result.stderr == ""
    assert path.read_text(encoding="utf-8") == ANNOTATED.replace(
        "# more to come\n", f"  - url: {NEW}\n# more to come\n"
    )
    result = cli.invoke(main, ["feeds", "remove", NEW, "--json"])
    assert result.exit_code == 0 and result.stderr == ""
    assert path.read_text(encoding="utf-8") == ANNOTATED


def test_feeds_add_says_when_the_file_was_rewritten_whole(cli: CliRunner, path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(f"feeds: [{GAZETTE}]  # flow style\n", encoding="utf-8")
    result = cli.invoke(main, ["feeds", "add", WIRE, "--json"])
    assert result.exit_code == 0
    assert _json(result)["added"] is True  # stdout stays JSON
    assert result.stderr.startswith(f"warning: {path} was rewritten whole, without its comments")
    assert [f.url for f in load_feeds(path)] == [GAZETTE, WIRE]
    result = cli.invoke(main, ["feeds", "remove", WIRE])  # now in the block style: edited in place
    assert result.exit_code == 0 and result.stderr == ""


@pytest.mark.parametrize(
    ("url", "said", "allow"),
    [
        ("http://127.0.0.1:8765/feed.xml", "127.0.0.1 is a loopback address", "127.0.0.1/32"),
        ("http://[::1]/rss.xml", "::1 is a loopback address", "::1/128"),
        ("http://10.1.2.3/rss.xml", "10.1.2.3 is a private address", "10.1.2.3/32"),
        ("http://169.254.169.254/latest/", "link-local (cloud metadata range)", "169.254.169.254/32"),
        ("http://localhost:8765/rss.xml", "localhost resolves to ", "localhost"),
    ],
)
def test_feeds_add_says_at_once_when_the_fetcher_would_refuse_the_address(
    cli: CliRunner, path: Path, monkeypatch: pytest.MonkeyPatch, url: str, said: str, allow: str
) -> None:
    """The fetcher's own SSRF guard, under the current settings: the feed is listed all the
    same (a fetcher may run with other settings), with a warning naming what would allow it."""
    monkeypatch.delenv("WIREWATCH_FETCH_ALLOW_HOSTS", raising=False)
    result = cli.invoke(main, ["feeds", "add", url])
    assert result.exit_code == 0 and result.stdout.startswith(f"added: {url} ")
    assert result.stderr.startswith(
        f"warning: with the current settings the fetcher will not poll this feed: refusing to fetch {url}: "
    )
    assert said in result.stderr
    assert result.stderr.endswith(
        f" (WIREWATCH_FETCH_ALLOW_HOSTS can allow it); to allow it: WIREWATCH_FETCH_ALLOW_HOSTS={allow}\n"
    )
    assert [f.url for f in load_feeds(path)] == [url]
    again = cli.invoke(main, ["feeds", "add", url, "--json"])  # listed already: still said
    assert _json(again)["added"] is False and "will not poll this feed" in again.stderr
    monkeypatch.setenv("WIREWATCH_FETCH_ALLOW_HOSTS", f"example.org,{allow}")
    allowed = cli.invoke(main, ["feeds", "add", url])
    assert allowed.exit_code == 0 and allowed.stderr == ""


def test_feeds_add_says_nothing_of_addresses_the_fetcher_takes_or_names_it_cannot_resolve(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIREWATCH_FETCH_ALLOW_HOSTS", "gazette.example")
    for url in ("http://8.8.8.8/rss.xml", "https://no-such-name.invalid/rss.xml", GAZETTE):
        result = cli.invoke(main, ["feeds", "add", url])
        assert result.exit_code == 0 and result.stderr == "", url
    monkeypatch.setenv("WIREWATCH_FETCH_ALLOW_HOSTS", "10.0.0.0/8")
    result = cli.invoke(main, ["feeds", "add", "http://127.0.0.2/rss.xml"])  # the allowed ones kept
    assert "to allow it: WIREWATCH_FETCH_ALLOW_HOSTS=10.0.0.0/8,127.0.0.2/32\n" in result.stderr


def test_a_whole_interval_is_written_as_the_user_wrote_it(cli: CliRunner, path: Path) -> None:
    """`--interval 15` is `interval: 15` in the file, not the `15.0` the feed model holds."""
    assert cli.invoke(main, ["feeds", "add", GAZETTE, "--interval", "15"]).exit_code == 0
    assert cli.invoke(main, ["feeds", "add", WIRE, "--interval", "7.5"]).exit_code == 0
    text = path.read_text(encoding="utf-8")
    assert f"- url: {GAZETTE}\n    interval: 15\n" in text
    assert f"- url: {WIRE}\n    interval: 7.5\n" in text
    assert [f.interval for f in load_feeds(path)] == [15, 7.5]


# --- the feeds file of a running `wirewatch up` ---------------------------------------------------


def _running_up(data_dir: Path, feeds_file: Path, allow_hosts: list[str]) -> None:
    """A live `wirewatch up` on ``data_dir`` (this process), as its endpoints file tells the CLI
    (the keys `up` writes: test_up_start.py checks them on the real `up`)."""
    from wirewatch.local.supervisor import write_endpoints

    data_dir.mkdir(parents=True, exist_ok=True)
    write_endpoints(
        data_dir / "endpoints.json",
        {
            "pid": os.getpid(),
            "kafka_bootstrap": "127.0.0.1:1",
            "es_url": "http://127.0.0.1:1",
            "services": {},
            "feeds_file": str(feeds_file),
            "fetch_allow_hosts": allow_hosts,
        },
    )


LOOPBACK_FEED = "http://127.0.0.1:8765/feed.xml"


def test_feeds_commands_edit_the_running_up_s_feeds_file(
    cli: CliRunner, path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With only WIREWATCH_DATA_DIR set, `feeds add` edited ./feeds.yaml, which the running
    fetcher does not read. Now the running `up`'s file, said; its fetcher (here: loopback allowed,
    as under `up --demo`) decides whether to warn, not the CLI's own settings."""
    data_dir, stack_file = tmp_path / "elsewhere" / "data", tmp_path / "elsewhere" / "demo-feeds.yaml"
    _running_up(data_dir, stack_file, ["127.0.0.1"])
    monkeypatch.delenv("WIREWATCH_FEEDS_FILE")
    monkeypatch.delenv("WIREWATCH_FETCH_ALLOW_HOSTS", raising=False)
    monkeypatch.setenv("WIREWATCH_DATA_DIR", str(data_dir))
    whose = f" in {stack_file} (the feeds file of the `wirewatch up` running on {data_dir})"

    added = cli.invoke(main, ["feeds", "add", LOOPBACK_FEED])
    assert added.exit_code == 0 and added.stderr == ""  # the running fetcher polls loopback
    assert added.stdout == f"added: {LOOPBACK_FEED} ({feed_id(LOOPBACK_FEED)}){whose}\n"
    assert [f.url for f in load_feeds(stack_file)] == [LOOPBACK_FEED]
    assert not (tmp_path / "feeds.yaml").exists()  # the working directory's file untouched
    assert _json(cli.invoke(main, ["feeds", "add", GAZETTE, "--json"]))["feeds_file"] == str(stack_file)
    listed = cli.invoke(main, ["feeds", "list"])
    assert listed.stdout.splitlines()[-1] == f"2 feeds{whose}"
    as_json = _json(cli.invoke(main, ["feeds", "list", "--json"]))
    assert [f["url"] for f in as_json] == [LOOPBACK_FEED, GAZETTE]
    removed = cli.invoke(main, ["feeds", "remove", GAZETTE])
    assert removed.stdout == f"removed: {GAZETTE} from{whose.removeprefix(' in')}\n"
    assert [f.url for f in load_feeds(stack_file)] == [LOOPBACK_FEED]

    # WIREWATCH_FEEDS_FILE still wins: that file, judged by the CLI's settings (no stack fetcher
    # reads it); naming the running `up`'s own file is the same as not naming one.
    monkeypatch.setenv("WIREWATCH_FEEDS_FILE", str(path))
    mine = cli.invoke(main, ["feeds", "add", LOOPBACK_FEED])
    assert mine.stdout == f"added: {LOOPBACK_FEED} ({feed_id(LOOPBACK_FEED)}) in {path}\n"
    assert "with the current settings the fetcher will not poll this feed" in mine.stderr
    assert [f.url for f in load_feeds(path)] == [LOOPBACK_FEED]
    assert cli.invoke(main, ["feeds", "list"]).stdout.splitlines()[-1] == f"1 feed in {path}"
    monkeypatch.setenv("WIREWATCH_FEEDS_FILE", str(stack_file))
    again = cli.invoke(main, ["feeds", "add", GAZETTE])
    assert again.stderr == "" and again.stdout.endswith(f"{whose}\n")

    # Once that `up` has stopped (its endpoints file gone), the CLI's own file again.
    monkeypatch.delenv("WIREWATCH_FEEDS_FILE")
    (data_dir / "endpoints.json").unlink()
    assert cli.invoke(main, ["feeds", "list"]).stdout == "no feeds in feeds.yaml\n"


def test_feeds_add_warns_as_the_running_fetcher_judges_the_address(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's environment allows loopback, the running fetcher does not: it will not poll
    the feed, so the warning is due (it was not given), naming what to start `up` with."""
    data_dir, stack_file = tmp_path / "data", tmp_path / "stack-feeds.yaml"
    _running_up(data_dir, stack_file, ["10.0.0.0/8"])
    monkeypatch.delenv("WIREWATCH_FEEDS_FILE")
    monkeypatch.setenv("WIREWATCH_FETCH_ALLOW_HOSTS", "127.0.0.1/32")
    monkeypatch.setenv("WIREWATCH_DATA_DIR", str(data_dir))
    result = cli.invoke(main, ["feeds", "add", LOOPBACK_FEED])
    assert result.exit_code == 0 and result.stdout.startswith(f"added: {LOOPBACK_FEED} ")
    assert result.stderr.startswith(
        f"warning: the fetcher of the `wirewatch up` running on {data_dir} will not poll this feed: "
        f"refusing to fetch {LOOPBACK_FEED}: "
    )
    assert result.stderr.endswith(
        "to allow it, start `wirewatch up` again with WIREWATCH_FETCH_ALLOW_HOSTS=10.0.0.0/8,127.0.0.1/32\n"
    )
    private = cli.invoke(main, ["feeds", "add", "http://10.1.2.3/rss.xml"])  # the fetcher's exception
    assert private.exit_code == 0 and private.stderr == ""


def test_ingest_warns_as_the_fetcher_of_the_running_up_judges_the_page(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`wirewatch ingest` asks the fetcher on the Kafka it talks to: a running `up`'s, found by
    the data dir, judges the page's address by its settings; an explicitly other Kafka's by the
    CLI's own."""
    sent: list[str] = []

    async def send_requests(settings: Any, requests: list[Any]) -> None:
        sent.extend(request.url for request in requests)

    monkeypatch.setattr("wirewatch.fetcher.backfill.send_requests", send_requests)
    data_dir = tmp_path / "data"
    _running_up(data_dir, tmp_path / "stack-feeds.yaml", ["127.0.0.1"])
    monkeypatch.delenv("WIREWATCH_FETCH_ALLOW_HOSTS", raising=False)
    monkeypatch.setenv("WIREWATCH_DATA_DIR", str(data_dir))
    page = "http://127.0.0.1:8765/2026/story.html"
    result = cli.invoke(main, ["ingest", page])
    assert result.exit_code == 0 and result.stderr == "" and sent == [page]
    monkeypatch.setenv("WIREWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:2")  # another Kafka: another fetcher
    result = cli.invoke(main, ["ingest", page])
    assert result.exit_code == 0
    assert "with the current settings the fetcher will not fetch this page" in result.stderr
