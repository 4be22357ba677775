"""What the CLI makes of a person's input before any server is asked: dates, sizes, language
codes, and the exit status scripts read. No servers: every refusal here comes first."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from wirewatch import status as status_module
from wirewatch.cli import DateBound, _clip, _language, main

#: Endpoints nobody listens on: a command that got past its checks would fail differently.
NOWHERE = {"WIREWATCH_ES_URL": "http://127.0.0.1:9", "WIREWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:9"}

ACCEPTED = [
    "2026-03-01",
    "2026",
    "2026-03",
    "2026-03-01T08",
    "2026-03-01T08:00:00Z",
    "2026-03-01T08:00:00.123456789+01:00",
    "2026-03-01T08:00+0100",
    "now",
    "now-7d",
    "now-1M/d",
    "now/d",
    "now+1h-30m",
    "2026-03-01||+1M/d",
    "1767225600000",
]
REFUSED = [
    "yesterday",
    "2026-13-45",
    "2026-02-30",
    "now-",
    "now-2x",
    "21/11/2026",
    "2026-11-21 10:00",  # a space where the server wants a T
    "now-7d; drop",
    "",
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_date_bounds_the_search_server_reads_are_taken_as_given(text: str) -> None:
    assert DateBound().convert(f" {text} ", None, None) == text


@pytest.mark.parametrize("text", REFUSED)
def test_other_date_bounds_are_refused_before_any_request(text: str) -> None:
    with pytest.raises(click.BadParameter, match="not a date"):
        DateBound().convert(text, None, None)


@given(st.dates(min_value=date(1000, 1, 1)), st.times(), st.sampled_from(["", "Z", "+02:00", "-0530"]))
def test_every_calendar_date_and_time_is_a_bound(day: date, time: Any, zone: str) -> None:
    text = f"{day:%Y-%m-%d}T{time:%H:%M:%S}{zone}"
    assert DateBound().convert(text, None, None) == text


@pytest.mark.parametrize(
    "command",
    [
        ["search", "Loire", "--since", "yesterday"],
        ["search", "Loire", "--until", "2026-13-45"],
        ["events", "--since", "now-2x"],
        ["alerts", "--since", "21/11/2026"],
        ["dead-letters", "--since", "last week"],
    ],
)
def test_a_mistyped_date_is_a_usage_error(command: list[str]) -> None:
    result = CliRunner().invoke(main, command, env=NOWHERE)
    assert result.exit_code == 2
    assert "not a date" in result.output and "now-7d" in result.output


@pytest.mark.parametrize("command", [["search", "Loire"], ["events"], ["alerts"], ["dead-letters"]])
@pytest.mark.parametrize("size", ["0", "-1", "10001"])
def test_a_listing_size_is_between_one_and_the_server_s_window(command: list[str], size: str) -> None:
    result = CliRunner().invoke(main, [*command, "--size", size], env=NOWHERE)
    assert result.exit_code == 2 and "--size" in result.output


def test_language_codes_are_written_as_the_pipeline_writes_them() -> None:
    ctx = click.Context(main)
    param = click.Option(["--lang"])
    assert [_language(ctx, param, code) for code in ("fr", "FR", " en ", "fr-FR", "pt_BR", None)] == [
        "fr",
        "fr",
        "en",
        "fr",
        "pt",
        None,
    ]
    for bad in ("english", "f", "fr FR", "12"):
        with pytest.raises(click.BadParameter, match="not a language code"):
            _language(ctx, param, bad)
    result = CliRunner().invoke(main, ["feeds", "add", "https://news.example/rss", "--lang", "english"])
    assert result.exit_code == 2 and "not a language code" in result.output


def test_cut_text_is_marked_so_the_next_column_does_not_read_as_part_of_it() -> None:
    assert _clip("Gigafactory near Dunkirk", 30) == "Gigafactory near Dunkirk"
    assert _clip("Gigafactory near Dunkirk", 18) == "Gigafactory near…"
    assert len(_clip("x" * 100, 60)) == 60


def _report(errors: list[str], healthy: bool = True) -> dict[str, Any]:
    return {
        "topics": [],
        "lag": [],
        "indices": {},
        "services": {"indexer": {"health": "http://127.0.0.1:1/healthz", "healthy": healthy}},
        "errors": errors,
    }


@pytest.mark.parametrize(
    ("report", "code"),
    [
        (_report([]), 0),
        (_report(["kafka: KafkaConnectionError: Unable to bootstrap"]), 1),
        (_report([], healthy=False), 1),
    ],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_status_exits_1_when_something_does_not_answer(
    report: dict[str, Any], code: int, as_json: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def collected(settings: Any) -> dict[str, Any]:
        return report

    monkeypatch.setattr(status_module, "collect_status", collected)
    result = CliRunner().invoke(main, ["status", *(["--json"] if as_json else [])], env=NOWHERE)
    assert result.exit_code == code, result.output


def test_status_shows_what_a_service_warns_of_and_still_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    report = _report([])
    report["services"]["fetcher"] = {
        "health": "http://127.0.0.1:2/healthz",
        "healthy": True,
        "warnings": {"feeds_file": "cannot read feeds file feeds.yaml: while parsing\n  in line 3"},
    }

    async def collected(settings: Any) -> dict[str, Any]:
        return report

    monkeypatch.setattr(status_module, "collect_status", collected)
    result = CliRunner().invoke(main, ["status"], env=NOWHERE)
    assert result.exit_code == 0, result.output  # the fetcher works on with its last good feeds
    assert (
        "    ! feeds_file: cannot read feeds file feeds.yaml: while parsing\n        in line 3\n"
        in result.output
    )


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("WIREWATCH_POLL_INTERVAL", "abc", "WIREWATCH_POLL_INTERVAL: Input should be a valid number"),
        ("WIREWATCH_ES_PASSWORD_FILE", "/nonexistent/pw", "WIREWATCH_ES_PASSWORD_FILE: cannot read"),
        ("WIREWATCH_FETCH_ALLOW_HOSTS", "10.0.0.0/33", "'10.0.0.0/33' is not a host name or CIDR block"),
        ("WIREWATCH_KAFKA_BOOTSTRAP", "localhost", "'localhost' has no port"),
    ],
)
@pytest.mark.parametrize(
    "command", [["status"], ["feeds", "list"], ["up", "--ephemeral"], ["run", "fetcher"]]
)
def test_a_malformed_setting_is_one_line_naming_its_variable(
    variable: str, value: str, said: str, command: list[str]
) -> None:
    result = CliRunner().invoke(main, command, env={**NOWHERE, variable: value})
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    (line,) = result.output.splitlines()  # one line, no traceback
    assert line.startswith(f"error: {variable}: ") and said in line


def test_without_a_server_address_the_cli_says_where_it_looked(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in NOWHERE:
        monkeypatch.delenv(variable, raising=False)
    result = CliRunner().invoke(main, ["search", "Loire"], env={"WIREWATCH_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert f"WIREWATCH_ES_URL is not set, and no `wirewatch up` runs on {tmp_path.resolve()}" in result.output
    assert "set WIREWATCH_DATA_DIR to the data dir of the one running" in result.output


#: A misspelled alert target: the settings ignore it, so every command and service says so.
TYPO = {"WIREWATCH_ALERT_WEBHOK_URL": "https://hooks.example/desk"}
TYPO_WARNING = (
    "warning: WIREWATCH_ALERT_WEBHOK_URL is not a wirewatch setting: ignored "
    "(did you mean WIREWATCH_ALERT_WEBHOOK_URLS?)"
)


def test_an_unknown_variable_is_warned_of_once_on_stderr(tmp_path: Any) -> None:
    """Once per command, however often it reads its settings; stdout (a --json answer) untouched."""
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - url: https://www.example.org/rss.xml\n", encoding="utf-8")
    env = {**NOWHERE, **TYPO, "WIREWATCH_FEEDS_FILE": str(feeds)}
    result = CliRunner().invoke(main, ["feeds", "list", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [TYPO_WARNING]
    assert json.loads(result.stdout)[0]["url"] == "https://www.example.org/rss.xml"


@pytest.mark.parametrize("command", [["up", "--ephemeral"], ["run", "alerts"]])
def test_an_unknown_variable_is_said_before_the_setting_error_it_may_explain(command: list[str]) -> None:
    """``run`` leaves the warning to the service's log, but a service that cannot start says it
    with the error: here the sender was misspelled, and the sender is what is missing."""
    env = {
        **NOWHERE,
        "WIREWATCH_ALERT_SMTP_HOST": "mail.example",
        "WIREWATCH_ALERT_SMTP_FORM": "wirewatch@example.org",
        "WIREWATCH_ALERT_SMTP_TO": "desk@example.org",
    }
    result = CliRunner().invoke(main, command, env=env)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "warning: WIREWATCH_ALERT_SMTP_FORM is not a wirewatch setting: ignored "
        "(did you mean WIREWATCH_ALERT_SMTP_FROM?)",
        "error: WIREWATCH_ALERT_SMTP_HOST set without WIREWATCH_ALERT_SMTP_FROM: e-mail alerts need a sender",
    ]
