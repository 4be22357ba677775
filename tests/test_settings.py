"""Settings read from the environment: a value that cannot work stops them at start, naming its
variable in one line (``settings_error_message``) without echoing a secret; a blank secret is
unset; a ``*_FILE`` that cannot be read is such an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.provisional import domains
from pydantic import ValidationError

from wirewatch.core.alert_targets import smtp_problem
from wirewatch.core.elastic import _auth
from wirewatch.core.hosts import MAX_HOST_NAME, host_problem, mail_address_problem, split_host_port
from wirewatch.core.settings import (
    CREDENTIALS,
    SECRET_FIELDS,
    SECRET_FILES,
    SETTING_VARIABLES,
    Settings,
    env_var,
    es_url_problem,
    redact_url,
    settings_error_message,
    unknown_variable,
    unknown_variables,
)


def from_env(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Settings:
    """Settings as a process reads them, with exactly these ``WIREWATCH_*`` variables (no ``.env``)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(env_var(name), raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def error_lines(monkeypatch: pytest.MonkeyPatch, **variables: str) -> list[str]:
    """The lines ``settings_error_message`` makes of the settings' refusal of ``variables``."""
    with pytest.raises(ValidationError) as caught:
        from_env(monkeypatch, **variables)
    return settings_error_message(caught.value).splitlines()


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"WIREWATCH_POLL_INTERVAL": "abc"},
            "WIREWATCH_POLL_INTERVAL: Input should be a valid number, unable to parse string as a number "
            "(got 'abc')",
        ),
        (
            {"WIREWATCH_FETCH_MAX_BYTES": "10MB"},
            "WIREWATCH_FETCH_MAX_BYTES: Input should be a valid integer, unable to parse string as an "
            "integer (got '10MB')",
        ),
        (
            {"WIREWATCH_ES_VERIFY_CERTS": "maybe"},
            "WIREWATCH_ES_VERIFY_CERTS: Input should be a valid boolean, unable to interpret input "
            "(got 'maybe')",
        ),
        (
            {"WIREWATCH_LOG_LEVEL": "verbose"},
            "WIREWATCH_LOG_LEVEL: Input should be 'debug', 'info', 'warning' or 'error' (got 'verbose')",
        ),
        (  # a validator's message names its variable: not named twice
            {"WIREWATCH_ES_ROLLOVER_AGE": "7"},
            "WIREWATCH_ES_ROLLOVER_AGE='7' is not an Elasticsearch time value such as 365d, 12h or 90m",
        ),
        (  # a model validator's too
            {"WIREWATCH_POLL_INTERVAL_MIN": "600", "WIREWATCH_POLL_INTERVAL_MAX": "300"},
            "WIREWATCH_POLL_INTERVAL_MIN=600 is above WIREWATCH_POLL_INTERVAL_MAX=300",
        ),
        (  # as long as a feed's own interval in the feeds file, at most (a day)
            {"WIREWATCH_POLL_INTERVAL_MAX": "1e12"},
            "WIREWATCH_POLL_INTERVAL_MAX: Input should be less than or equal to 86400 (got '1e12')",
        ),
        (  # a password in a URL is hidden wherever an input is shown
            {"WIREWATCH_ALERT_SMTP_PORT": "smtp://desk:pa55word@mail.example"},
            "WIREWATCH_ALERT_SMTP_PORT: Input should be a valid integer, unable to parse string as an "
            "integer (got 'smtp://desk:***@mail.example')",
        ),
    ],
)
def test_each_error_is_one_line_naming_the_variable(
    variables: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert error_lines(monkeypatch, **variables) == [expected]


def test_every_error_gets_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = error_lines(
        monkeypatch,
        WIREWATCH_POLL_INTERVAL="abc",
        WIREWATCH_FETCH_MAX_BYTES="10MB",
        WIREWATCH_ES_VERIFY_CERTS="maybe",
        WIREWATCH_TABLE_STORE="redis://",
    )
    assert sorted(line.split(":", 1)[0].split("=", 1)[0] for line in lines) == [
        "WIREWATCH_ES_VERIFY_CERTS",
        "WIREWATCH_FETCH_MAX_BYTES",
        "WIREWATCH_POLL_INTERVAL",
        "WIREWATCH_TABLE_STORE",
    ]


def test_secret_inputs_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret refused by type or by its JSON list says which variable, never what it held."""
    assert {"es_password", "es_api_key", "alert_slack_urls", "kafka_ssl_key_password"} <= SECRET_FIELDS
    assert "es_password_file" not in SECRET_FIELDS and "poll_interval" not in SECRET_FIELDS
    (line,) = error_lines(monkeypatch, WIREWATCH_ALERT_SLACK_URLS="[987654321]")
    assert line.startswith("WIREWATCH_ALERT_SLACK_URLS: Input should be a valid string")
    assert "987654321" not in line
    (line,) = error_lines(monkeypatch, WIREWATCH_ALERT_SLACK_URLS='["https://chat.example/T/TOPSECRET"')
    assert line.startswith("WIREWATCH_ALERT_SLACK_URLS: ") and "TOPSECRET" not in line
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, es_api_key=123456789)  # type: ignore[call-arg, arg-type]
    assert settings_error_message(caught.value).startswith("WIREWATCH_ES_API_KEY: Input should be")
    assert "123456789" not in settings_error_message(caught.value) + str(caught.value)


@pytest.mark.parametrize("variable", ["WIREWATCH_LOG_LEVEL", "WIREWATCH_LOG_FORMAT"])
def test_choices_are_read_in_any_case(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    value = {"WIREWATCH_LOG_LEVEL": "DEBUG", "WIREWATCH_LOG_FORMAT": "Console"}[variable]
    settings = from_env(monkeypatch, **{variable: value, "WIREWATCH_ALERT_SMTP_SECURITY": " TLS"})
    assert getattr(settings, variable.removeprefix("WIREWATCH_").lower()) == value.lower()
    assert settings.alert_smtp_security == "tls"


# --- secret files and blank secrets ---------------------------------------------------------


@pytest.mark.parametrize("file_field", [*SECRET_FILES.values(), "alert_slack_urls_file"])
def test_a_secret_file_that_cannot_be_read_is_named(
    file_field: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Missing, a directory or not text: a settings error naming the variable, not a raw
    FileNotFoundError/IsADirectoryError from inside the settings."""
    variable = env_var(file_field)
    missing = tmp_path / "nonexistent" / "pw"
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00secret")
    for path, reason in (
        (missing, "No such file or directory"),
        (tmp_path, "Is a directory"),
        (binary, "not UTF-8 text"),
    ):
        assert error_lines(monkeypatch, **{variable: str(path)}) == [
            f"{variable}: cannot read {path}: {reason}"
        ]


def beside(secret: str, tmp_path: Path) -> dict[str, str]:
    """The variables a Kafka secret needs beside it to be used at all."""
    pem = tmp_path / "client.pem"
    pem.write_text("stand-in\n", encoding="utf-8")
    return {
        "kafka_sasl_password": {
            "WIREWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "WIREWATCH_KAFKA_SASL_MECHANISM": "PLAIN",
            "WIREWATCH_KAFKA_SASL_USERNAME": "wirewatch",
        },
        "kafka_ssl_key_password": {
            "WIREWATCH_KAFKA_SECURITY_PROTOCOL": "SSL",
            "WIREWATCH_KAFKA_SSL_CERTFILE": str(pem),
            "WIREWATCH_KAFKA_SSL_KEYFILE": str(pem),
        },
    }.get(secret, {})


@pytest.mark.parametrize(("secret", "file_field"), sorted(SECRET_FILES.items()))
def test_a_blank_secret_is_unset(
    secret: str, file_field: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``WIREWATCH_ES_PASSWORD=`` (empty, or spaces) neither hides its ``*_FILE`` nor sets an empty
    secret; a blank file leaves it unset too."""
    variable, file_variable, needed = env_var(secret), env_var(file_field), beside(secret, tmp_path)
    (tmp_path / "pw").write_text("from-the-file\n", encoding="utf-8")
    (tmp_path / "blank").write_text(" \n", encoding="utf-8")
    for blank in ("", "  "):
        settings = from_env(monkeypatch, **needed, **{variable: blank, file_variable: str(tmp_path / "pw")})
        value = getattr(settings, secret)
        assert value is not None and value.get_secret_value() == "from-the-file"
        assert getattr(from_env(monkeypatch, **{variable: blank}), secret) is None
        assert getattr(from_env(monkeypatch, **{file_variable: blank}), file_field) is None
    given = from_env(monkeypatch, **needed, **{variable: " as given ", file_variable: str(tmp_path / "pw")})
    assert getattr(given, secret).get_secret_value() == " as given "
    if secret == "kafka_sasl_password":  # needed: unset is refused
        (line,) = error_lines(monkeypatch, **needed, **{file_variable: str(tmp_path / "blank")})
        assert line.endswith("needs WIREWATCH_KAFKA_SASL_PASSWORD (or _FILE)")
    else:
        settings = from_env(monkeypatch, **needed, **{file_variable: str(tmp_path / "blank")})
        assert getattr(settings, secret) is None


@pytest.mark.parametrize("field", CREDENTIALS)
def test_every_blank_credential_is_unset(field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert getattr(from_env(monkeypatch, **{env_var(field): " "}), field) is None


def test_a_blank_api_key_leaves_basic_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = from_env(
        monkeypatch, WIREWATCH_ES_API_KEY="", WIREWATCH_ES_USERNAME="wirewatch", WIREWATCH_ES_PASSWORD="pw"
    )
    assert settings.es_api_key is None
    assert _auth(settings) == {"basic_auth": ("wirewatch", "pw")}
    assert _auth(from_env(monkeypatch, WIREWATCH_ES_USERNAME="wirewatch", WIREWATCH_ES_PASSWORD=" ")) == {}


def test_a_blank_webhook_secret_does_not_sign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhooks need the secret: blank, it is missing (at start, not in the alerts service)."""
    hooks = {"WIREWATCH_ALERT_WEBHOOK_URLS": "https://a.example/hook"}
    assert error_lines(monkeypatch, **hooks, WIREWATCH_ALERT_WEBHOOK_SECRET=" ") == [
        "WIREWATCH_ALERT_WEBHOOK_URLS set without WIREWATCH_ALERT_WEBHOOK_SECRET (or _FILE): "
        "webhooks are signed with it"
    ]
    (tmp_path / "secret").write_text("s3cret\n", encoding="utf-8")
    settings = from_env(monkeypatch, **hooks, WIREWATCH_ALERT_WEBHOOK_SECRET_FILE=str(tmp_path / "secret"))
    assert settings.alert_webhook_secret is not None
    assert settings.alert_webhook_secret.get_secret_value() == "s3cret"


# --- values that would stop a service later ---------------------------------------------------

#: A usable e-mail target.
SMTP = {
    "WIREWATCH_ALERT_SMTP_HOST": "mail.example",
    "WIREWATCH_ALERT_SMTP_FROM": "wirewatch@example.org",
    "WIREWATCH_ALERT_SMTP_TO": "desk@example.org",
}


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"WIREWATCH_FETCH_ALLOW_HOSTS": "127.0.0.1/32, 10.0.0.0/33"},
            "WIREWATCH_FETCH_ALLOW_HOSTS: '10.0.0.0/33' is not a host name or CIDR block",
        ),
        (
            {"WIREWATCH_FETCH_ALLOW_HOSTS": '["site.test", "fe80::1/129"]'},
            "WIREWATCH_FETCH_ALLOW_HOSTS: 'fe80::1/129' is not a host name or CIDR block",
        ),
        (
            {"WIREWATCH_ALERT_WEBHOOK_URLS": "https://a.example/hook"},
            "WIREWATCH_ALERT_WEBHOOK_URLS set without WIREWATCH_ALERT_WEBHOOK_SECRET (or _FILE): "
            "webhooks are signed with it",
        ),
        (
            {"WIREWATCH_POLL_INTERVAL_MIN": "3601"},
            "WIREWATCH_POLL_INTERVAL_MIN=3601 is above WIREWATCH_POLL_INTERVAL_MAX=3600",
        ),
        (
            {"WIREWATCH_KAFKA_HEARTBEAT_INTERVAL": "10"},
            "WIREWATCH_KAFKA_HEARTBEAT_INTERVAL=10 must be shorter than WIREWATCH_KAFKA_SESSION_TIMEOUT=10: "
            "a member is dropped from its group when no heartbeat came within the session timeout",
        ),
        (
            {"WIREWATCH_USER_AGENT": ""},
            "WIREWATCH_USER_AGENT is empty: sites and robots.txt need a user agent",
        ),
        (
            {"WIREWATCH_USER_AGENT": "  "},
            "WIREWATCH_USER_AGENT is empty: sites and robots.txt need a user agent",
        ),
        (  # an empty address is every interface to the web server: the opposite of what it looks like
            {"WIREWATCH_WEB_HOST": " "},
            "WIREWATCH_WEB_HOST is empty: the address to listen on, such as 0.0.0.0 (every interface) "
            "or 127.0.0.1 (loopback only)",
        ),
        (
            {"WIREWATCH_TABLE_STORE": "redis://"},
            "WIREWATCH_TABLE_STORE='redis://' is not a table store: memory:// or rocksdb://",
        ),
        (
            {"WIREWATCH_TABLE_STORE": "memory"},
            "WIREWATCH_TABLE_STORE='memory' is not a table store: memory:// or rocksdb://",
        ),
        # Alert targets the alerts service could not build (it crash-looped on them)
        (
            {"WIREWATCH_ALERT_WEBHOOK_SECRET": "abc", "WIREWATCH_ALERT_WEBHOOK_URLS": "not-a-url"},
            "WIREWATCH_ALERT_WEBHOOK_URLS: 'not-a-url' is not an http(s) URL with a host",
        ),
        (  # shown without its password and query, which may hold a token
            {
                "WIREWATCH_ALERT_WEBHOOK_SECRET": "abc",
                "WIREWATCH_ALERT_WEBHOOK_URLS": "https://a.example/ok, ftp://desk:pa55@b.example/h?token=T0K",
            },
            "WIREWATCH_ALERT_WEBHOOK_URLS: 'ftp://desk:***@b.example/h?…' is not an http(s) URL with a host",
        ),
        (
            {"WIREWATCH_ALERT_WEBHOOK_SECRET": "abc", "WIREWATCH_ALERT_WEBHOOK_URLS": "http://[::1/hook"},
            "WIREWATCH_ALERT_WEBHOOK_URLS: 'http://[::1/hook' is not a valid URL (Invalid IPv6 URL)",
        ),
        (  # a Slack URL is a secret: named by its place, never shown
            {"WIREWATCH_ALERT_SLACK_URLS": "https://chat.example/s/A, chat.example/services/T/B/SECRET"},
            "WIREWATCH_ALERT_SLACK_URLS: URL #2 is not an http(s) URL with a host "
            "(not shown: a Slack URL is a secret)",
        ),
        (
            {"WIREWATCH_ALERT_SMTP_HOST": "mail.example", "WIREWATCH_ALERT_SMTP_TO": "desk@example.org"},
            "WIREWATCH_ALERT_SMTP_HOST set without WIREWATCH_ALERT_SMTP_FROM: e-mail alerts need a sender",
        ),
        (
            {"WIREWATCH_ALERT_SMTP_HOST": "mail.example", "WIREWATCH_ALERT_SMTP_FROM": "ww@example.org"},
            "WIREWATCH_ALERT_SMTP_HOST set without WIREWATCH_ALERT_SMTP_TO: e-mail alerts need recipients",
        ),
        (
            {**SMTP, "WIREWATCH_ALERT_SMTP_USERNAME": "alerts"},
            "WIREWATCH_ALERT_SMTP_USERNAME set without WIREWATCH_ALERT_SMTP_PASSWORD (or _FILE): "
            "SMTP AUTH needs both",
        ),
        (
            {
                **SMTP,
                "WIREWATCH_ALERT_SMTP_SECURITY": "none",
                "WIREWATCH_ALERT_SMTP_USERNAME": "alerts",
                "WIREWATCH_ALERT_SMTP_PASSWORD": "pa55word",
            },
            "WIREWATCH_ALERT_SMTP_SECURITY=none with a password, to WIREWATCH_ALERT_SMTP_HOST=mail.example "
            "(not this machine): refusing to send SMTP credentials in clear text to a remote server "
            "(use starttls or tls)",
        ),
    ],
)
def test_values_a_service_would_stop_on_are_refused_at_start(
    variables: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert error_lines(monkeypatch, **variables) == [expected]


def test_a_bad_slack_url_in_its_file_is_named_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "slack"
    path.write_text("https://chat.example/services/A\n\nchat.example/services/T/B/SECRET\n", encoding="utf-8")
    (line,) = error_lines(monkeypatch, WIREWATCH_ALERT_SLACK_URLS_FILE=str(path))
    assert line == (
        f"WIREWATCH_ALERT_SLACK_URLS_FILE: line 3 of {path} is not an http(s) URL with a host "
        "(not shown: a Slack URL is a secret)"
    )


def test_usable_alert_targets_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain SMTP with a password is fine to this machine (a local relay), and without one anywhere."""
    settings = from_env(
        monkeypatch,
        **(SMTP | {"WIREWATCH_ALERT_SMTP_HOST": "127.0.0.1"}),
        WIREWATCH_ALERT_SMTP_SECURITY="none",
        WIREWATCH_ALERT_SMTP_USERNAME="alerts",
        WIREWATCH_ALERT_SMTP_PASSWORD="pa55word",
        WIREWATCH_ALERT_WEBHOOK_URLS="http://localhost:8080/hook,https://a.example/h?token=x",
        WIREWATCH_ALERT_WEBHOOK_SECRET="abc",
        WIREWATCH_ALERT_SLACK_URLS="https://chat.example/services/T/B/X",
    )
    assert settings.alert_smtp_host == "127.0.0.1" and len(settings.alert_webhook_urls) == 2
    assert from_env(monkeypatch, **SMTP, WIREWATCH_ALERT_SMTP_SECURITY="none").alert_smtp_password is None


def test_good_values_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = from_env(
        monkeypatch,
        WIREWATCH_FETCH_ALLOW_HOSTS="127.0.0.1/32,[::1],site.test,10.0.0.0/8",
        WIREWATCH_POLL_INTERVAL_MIN="60",
        WIREWATCH_POLL_INTERVAL_MAX="60",
        WIREWATCH_KAFKA_SESSION_TIMEOUT="3",
        WIREWATCH_KAFKA_HEARTBEAT_INTERVAL="1",
        WIREWATCH_KAFKA_REBALANCE_TIMEOUT="3",
        WIREWATCH_TABLE_STORE="rocksdb://",
        WIREWATCH_USER_AGENT=" newsbot/2 (+https://desk.example/bot) ",
        WIREWATCH_ES_INDEX_PREFIX="news.desk-2",
        WIREWATCH_WEB_HOST=" 127.0.0.1 ",
    )
    assert settings.web_host == "127.0.0.1"
    assert settings.fetch_allow_hosts == ["127.0.0.1/32", "[::1]", "site.test", "10.0.0.0/8"]
    assert settings.user_agent == "newsbot/2 (+https://desk.example/bot)"
    assert settings.index("articles") == "news.desk-2-articles"


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        ("Wirewatch", "has upper case letters"),
        ("news/desk", "has '/'"),
        ("news\\desk", "has '\\\\'"),
        ("news*", "has '*'"),
        ("news?", "has '?'"),
        ('news"', "has '\"'"),
        ("<news>", "has '<', '>'"),
        ("news|desk", "has '|'"),
        ("news desk", "has ' '"),
        ("news,desk", "has ','"),
        ("news#1", "has '#'"),
        ("news:desk", "has ':'"),
        ("-news", "starts with '-'"),
        ("_news", "starts with '_'"),
        ("+news", "starts with '+'"),
        ("", "is empty"),
    ],
)
def test_index_prefixes_elasticsearch_would_refuse_are_refused(
    prefix: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (line,) = error_lines(monkeypatch, WIREWATCH_ES_INDEX_PREFIX=prefix)
    assert line.startswith(f"WIREWATCH_ES_INDEX_PREFIX={prefix!r} {problem}: Elasticsearch index names"), line


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pa55word@127.0.0.1:1", "http://user:***@127.0.0.1:1"),
        ("https://user:p%40ss@es.example:9200/path?q=a@b#x", "https://user:***@es.example:9200/path?q=a@b#x"),
        ("http://user:p@ss:w@rd@[::1]:9200/", "http://user:***@[::1]:9200/"),  # unencoded '@' and ':'
        ("http://user:@host", "http://user:***@host"),
        ("user:secret@host:9200", "user:***@host:9200"),
        ("http://user@host:9200", "http://user@host:9200"),  # no password
        ("http://host:9200/a:b@c", "http://host:9200/a:b@c"),  # '@' in the path is not user info
        ("http://127.0.0.1:9200", "http://127.0.0.1:9200"),
        ("", ""),
    ],
)
def test_redact_url_hides_only_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# --- addresses: refused at start, not when a client first connects ----------------------------


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (  # the indexer sat silent ~25 s on it, then failed obscurely
            {"WIREWATCH_ES_URL": "localhost:9200"},
            "WIREWATCH_ES_URL='localhost:9200' is not an http(s) URL with a host: write "
            "'http://localhost:9200' (or https://)",
        ),
        (  # a password is never shown, in the hint either
            {"WIREWATCH_ES_URL": "wirewatch:pa55word@es.example:9200"},
            "WIREWATCH_ES_URL='wirewatch:***@es.example:9200' is not an http(s) URL with a host: write "
            "'http://wirewatch:***@es.example:9200' (or https://)",
        ),
        (
            {"WIREWATCH_ES_URL": "es.example"},
            "WIREWATCH_ES_URL='es.example' is not an http(s) URL with a host: write 'http://es.example' "
            "(or https://)",
        ),
        (  # the Elasticsearch client refuses http without a port (https is 443)
            {"WIREWATCH_ES_URL": "http://wirewatch:pa55word@es.example/"},
            "WIREWATCH_ES_URL='http://wirewatch:***@es.example/' has no port, which the client needs for "
            "http: 'http://es.example:9200', say",
        ),
        (  # one address: the client takes the string as one URL
            {"WIREWATCH_ES_URL": "http://es1:9200,http://es2:9200"},
            "WIREWATCH_ES_URL='http://es1:9200,http://es2:9200' is several URLs: wirewatch connects to one "
            "address (a load balancer, or one node, which passes requests on to the others)",
        ),
        (
            {"WIREWATCH_ES_URL": "https://es.example:9200/?token=T0K"},
            "WIREWATCH_ES_URL='https://es.example:9200/?…' has a query or fragment, which the "
            "Elasticsearch client drops",
        ),
        (
            {"WIREWATCH_ES_URL": "ftp://es.example:9200"},
            "WIREWATCH_ES_URL='ftp://es.example:9200' is not an http(s) URL with a host",
        ),
        (
            {"WIREWATCH_ES_URL": "http://es.example:92000"},
            "WIREWATCH_ES_URL='http://es.example:92000' is not a valid URL (Port out of range 0-65535)",
        ),
        (
            {"WIREWATCH_KAFKA_BOOTSTRAP": "localhost"},
            "WIREWATCH_KAFKA_BOOTSTRAP: 'localhost' has no port: write host:port ('localhost:9092')",
        ),
        (
            {"WIREWATCH_KAFKA_BOOTSTRAP": "k1:9092, http://k2:9092"},
            "WIREWATCH_KAFKA_BOOTSTRAP: 'http://k2:9092' has a scheme: write host:port without it "
            "('k2:9092')",
        ),
        (
            {"WIREWATCH_KAFKA_BOOTSTRAP": "kafka:ninety"},
            "WIREWATCH_KAFKA_BOOTSTRAP: 'kafka:ninety' has a port that is not a number from 1 to 65535 "
            "('ninety')",
        ),
        (
            {"WIREWATCH_KAFKA_BOOTSTRAP": "::1:9092"},
            "WIREWATCH_KAFKA_BOOTSTRAP: '::1:9092' has an IPv6 address without brackets: write "
            "[address]:9092",
        ),
        (
            {"WIREWATCH_KAFKA_BOOTSTRAP": "kafka broker:9092"},
            "WIREWATCH_KAFKA_BOOTSTRAP: 'kafka broker:9092' is not a host name or IP address",
        ),
        (  # the error came when the first alert was mailed
            {**SMTP, "WIREWATCH_ALERT_SMTP_TO": "desk@example.org, not-an-address"},
            "WIREWATCH_ALERT_SMTP_TO: 'not-an-address' is not an e-mail address (name@example.org, or "
            "Name <name@example.org>)",
        ),
        (  # with no SMTP host too: wrong is wrong
            {"WIREWATCH_ALERT_SMTP_FROM": "desk@example.org, night@example.org"},
            "WIREWATCH_ALERT_SMTP_FROM='desk@example.org, night@example.org' is not an e-mail address "
            "(name@example.org, or Name <name@example.org>)",
        ),
        (
            {**SMTP, "WIREWATCH_ALERT_SMTP_HOST": "mail.example:587"},
            "WIREWATCH_ALERT_SMTP_HOST='mail.example:587' has a port: the mail server's host name or "
            "address (its port: WIREWATCH_ALERT_SMTP_PORT)",
        ),
        (
            {**SMTP, "WIREWATCH_ALERT_SMTP_HOST": "smtps://mail.example"},
            "WIREWATCH_ALERT_SMTP_HOST='smtps://mail.example' is a URL, not a host name: the mail server's "
            "host name or address (its port: WIREWATCH_ALERT_SMTP_PORT)",
        ),
        (
            {"WIREWATCH_WEB_HOST": "http://0.0.0.0"},
            "WIREWATCH_WEB_HOST='http://0.0.0.0' is a URL, not a host name: the address to listen on, such "
            "as 0.0.0.0 or 127.0.0.1 (the port: WIREWATCH_WEB_PORT)",
        ),
        (
            {"WIREWATCH_TOPIC_ALERTS": "wirewatch alerts"},
            "WIREWATCH_TOPIC_ALERTS='wirewatch alerts' is not a Kafka topic name: letters, digits, '.', "
            "'_' and '-', at most 249 of them",
        ),
        (  # no duration, size or share is infinite
            {"WIREWATCH_FETCH_TIMEOUT": "inf"},
            "WIREWATCH_FETCH_TIMEOUT: Input should be a finite number (got 'inf')",
        ),
    ],
)
def test_addresses_a_client_would_fail_on_are_refused_at_start(
    variables: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert error_lines(monkeypatch, **variables) == [expected]


def test_usable_addresses_pass_as_the_clients_take_them(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = from_env(
        monkeypatch,
        WIREWATCH_KAFKA_BOOTSTRAP=" kafka-1:9092, [::1]:9093,10.0.0.7:9094,kafka_2:9092 ",
        WIREWATCH_ES_URL=" https://wirewatch:pa55word@es.example/prefix ",  # https: port 443
        WIREWATCH_ALERT_SMTP_HOST=" mail.example ",
        WIREWATCH_ALERT_SMTP_FROM="Wirewatch <wirewatch@example.org>",
        WIREWATCH_ALERT_SMTP_TO='["desk@example.org", "Night desk <night@localhost>", "jürgen@münchen.de"]',
        WIREWATCH_WEB_HOST="::",
    )
    assert settings.kafka_bootstrap == "kafka-1:9092,[::1]:9093,10.0.0.7:9094,kafka_2:9092"
    assert settings.es_url == "https://wirewatch:pa55word@es.example/prefix"
    assert settings.alert_smtp_host == "mail.example"
    assert settings.alert_smtp_to[1] == "Night desk <night@localhost>"
    for variable in ("WIREWATCH_KAFKA_BOOTSTRAP", "WIREWATCH_ES_URL", "WIREWATCH_ALERT_SMTP_HOST"):
        # blank is unset, as before: `wirewatch up` starts its own servers; no e-mail
        assert (
            getattr(from_env(monkeypatch, **{variable: " "}), variable.lower().removeprefix("wirewatch_"))
            is None
        )


def test_the_deliverer_refuses_what_the_settings_refuse() -> None:
    """One rule (``core.alert_targets.smtp_problem``) for the settings and the e-mail target."""
    common = {"host": "mail.example", "security": "starttls", "username": None, "has_password": False}
    assert smtp_problem(sender="ww@example.org", recipients=["desk@example.org"], **common) is None
    assert smtp_problem(sender="ww@example.org", recipients=["desk"], **common) == (
        "WIREWATCH_ALERT_SMTP_TO: 'desk' is not an e-mail address (name@example.org, or "
        "Name <name@example.org>)"
    )
    assert str(smtp_problem(sender="ww", recipients=["desk@example.org"], **common)).startswith(
        "WIREWATCH_ALERT_SMTP_FROM='ww' is not an e-mail address"
    )


# Properties of the address parsers: whatever the text, an answer or the documented error; every
# well-formed address accepted, and taken apart into what it was made of.

HOSTS = st.one_of(
    domains(max_length=MAX_HOST_NAME),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda address: f"[{address}]"),
)


@given(HOSTS, st.integers(1, 65535), st.sampled_from(["", " ", "\t"]))
def test_a_host_and_port_is_read_back_as_written(host: str, port: int, space: str) -> None:
    assert split_host_port(f"{space}{host}:{port}{space}", usual_port=9092) == (host, port)


@given(st.text(max_size=60))
@example("[::1]:9092")
@example("h:١٢")
@example("[]:1")
def test_any_bootstrap_entry_is_read_or_refused_with_a_reason(text: str) -> None:
    try:
        host, port = split_host_port(text, usual_port=9092)
    except ValueError as exc:
        assert str(exc)  # a reason to follow the entry in a message
        return
    assert 1 <= port <= 65535 and host_problem(host) is None
    assert split_host_port(f"{host}:{port}", usual_port=9092) == (host, port)


@given(st.lists(st.tuples(HOSTS, st.integers(1, 65535)), min_size=1, max_size=4))
def test_a_bootstrap_list_passes_whole(servers: list[tuple[str, int]]) -> None:
    bootstrap = " , ".join(f"{host}:{port}" for host, port in servers)
    settings = Settings(_env_file=None, kafka_bootstrap=bootstrap)  # type: ignore[call-arg]
    assert settings.kafka_bootstrap == ",".join(f"{host}:{port}" for host, port in servers)


@given(st.emails(domains=domains(max_length=MAX_HOST_NAME)), st.sampled_from(["", "Desk", '"Desk, night"']))
def test_every_email_address_is_accepted(address: str, name: str) -> None:
    assert mail_address_problem(address) is None
    assert mail_address_problem(f"{name} <{address}>") is None


@given(st.text(max_size=60))
@example("a@b.c>")
@example("a@@b")
def test_any_text_is_an_email_address_or_says_why_not(text: str) -> None:
    problem = mail_address_problem(text)
    assert problem is None or problem.startswith("is not an e-mail address")
    if problem is None:
        assert "@" in text


@given(HOSTS, st.integers(1, 65535), st.sampled_from(["http", "https"]), st.sampled_from(["", "/", "/es"]))
def test_every_elasticsearch_url_is_accepted(host: str, port: int, scheme: str, path: str) -> None:
    assert es_url_problem(f"{scheme}://{host}:{port}{path}") is None


@given(st.text(max_size=60))
@example("http://[::1")
@example("http://h:99999")
def test_any_text_is_an_elasticsearch_url_or_says_why_not(text: str) -> None:
    problem = es_url_problem(text)
    assert problem is None or problem.startswith(("is ", "has "))


# --- unknown WIREWATCH_* variables: warned of, not refused ------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (  # the operator believed the alert target configured
            "WIREWATCH_ALERT_WEBHOK_URL",
            "WIREWATCH_ALERT_WEBHOK_URL is not a wirewatch setting: ignored "
            "(did you mean WIREWATCH_ALERT_WEBHOOK_URLS?)",
        ),
        (
            "WIREWATCH_KAFKA_BOOTSTRAP_SERVERS",
            "WIREWATCH_KAFKA_BOOTSTRAP_SERVERS is not a wirewatch setting: ignored "
            "(did you mean WIREWATCH_KAFKA_BOOTSTRAP?)",
        ),
        (
            "WIREWATCH_SMTP_HOST",
            "WIREWATCH_SMTP_HOST is not a wirewatch setting: ignored "
            "(did you mean WIREWATCH_ALERT_SMTP_HOST?)",
        ),
        (  # read in any case, as the settings read it
            "wirewatch_feed_file",
            "wirewatch_feed_file is not a wirewatch setting: ignored (did you mean WIREWATCH_FEEDS_FILE?)",
        ),
        (  # the secret-file convention does not reach every setting
            "WIREWATCH_ES_API_KEY_FILE",
            "WIREWATCH_ES_API_KEY_FILE is not a wirewatch setting: ignored (WIREWATCH_ES_API_KEY is not read "
            "from a file; only secrets have a _FILE form)",
        ),
        ("WIREWATCH_DEBUG", "WIREWATCH_DEBUG is not a wirewatch setting: ignored"),  # none close
    ],
)
def test_an_unknown_variable_is_named_with_the_setting_it_probably_meant(name: str, message: str) -> None:
    unknown = unknown_variable(name)
    assert unknown is not None and unknown.message == message


def test_every_setting_is_known_and_nothing_else_is_looked_at() -> None:
    assert len(SETTING_VARIABLES) == len(Settings.model_fields)
    for variable in SETTING_VARIABLES:
        assert unknown_variable(variable) is None and unknown_variable(variable.lower()) is None
    assert unknown_variable("PATH") is None and unknown_variable("ELASTIC_PASSWORD") is None


@given(st.from_regex(r"WIREWATCH_[A-Z0-9_]{0,40}", fullmatch=True))
def test_a_wirewatch_variable_is_a_setting_or_is_warned_of(name: str) -> None:
    unknown = unknown_variable(name)
    assert (unknown is None) == (name in SETTING_VARIABLES)
    if unknown is not None:
        assert unknown.meant is None or unknown.meant in SETTING_VARIABLES
        assert unknown.message.startswith(f"{name} is not a wirewatch setting: ignored")


def test_unknown_variables_of_the_environment_and_the_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each once, the environment's first (it wins over the file); a name without the prefix
    (compose's ELASTIC_PASSWORD) is not wirewatch's to judge."""
    env_file = tmp_path / ".env"
    env_file.write_text(
        "ELASTIC_PASSWORD=x\nWIREWATCH_LOG_LEVEL=info\nWIREWATCH_POLL_INTERVL=60\nWIREWATCH_TOPIC_EVENTZ=e\n",
        encoding="utf-8",
    )
    environ = {
        "PATH": "/bin",
        "WIREWATCH_POLL_INTERVL": "5",
        "WIREWATCH_ALERT_WEBHOK_URL": "https://a.example",
    }
    found = unknown_variables(environ, env_file)
    assert [(u.name, u.env_file) for u in found] == [
        ("WIREWATCH_ALERT_WEBHOK_URL", None),
        ("WIREWATCH_POLL_INTERVL", None),
        ("WIREWATCH_TOPIC_EVENTZ", env_file),
    ]
    assert found[2].message.startswith(f"WIREWATCH_TOPIC_EVENTZ (in {env_file}) is not a wirewatch setting")
    assert unknown_variables({}, tmp_path / "absent") == []
    # Not an error: the settings load (another version's variables may be there), without it.
    monkeypatch.chdir(tmp_path)
    settings = from_env(monkeypatch, **environ)
    assert settings.alert_webhook_urls == [] and settings.poll_interval == 300
