"""The feeds file (``wirewatch.core.feeds``) and the ``wirewatch feeds`` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from wirewatch.cli import main
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


def test_non_utf8_file_is_a_feeds_file_error(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"feeds:\n  - url: https://caf\xe9.example/rss\n")
    with pytest.raises(FeedsFileError, match="cannot read feeds file"):
        load_feeds(path)


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
        "removed": {"id": feed_id(WIRE), "url": WIRE, "name": None, "language": None, "interval": None}
    }
    assert [f["url"] for f in _json(cli.invoke(main, ["feeds", "list", "--json"]))] == [GAZETTE]

    unknown = cli.invoke(main, ["feeds", "remove", WIRE, "--json"])
    assert json.loads(unknown.stdout) == {"removed": None}
    assert unknown.exit_code != 0  # scripts see the failure as `feeds remove` without --json does


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
