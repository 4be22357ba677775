"""One settings object for every service and command.

Every field is read from an environment variable with the ``WIREWATCH_`` prefix
(``kafka_bootstrap`` -> ``WIREWATCH_KAFKA_BOOTSTRAP``), or from a ``.env`` file in the
working directory. Secrets are ``SecretStr`` so they never show up in logs or reprs;
``WIREWATCH_ES_PASSWORD_FILE``-style file variables are honoured for container secrets. A
value that cannot work stops the settings with an error naming its variable
(:func:`settings_error_message` makes one line of each). A ``WIREWATCH_*`` variable no setting
reads is ignored, not refused, and the commands and services warn of it at start
(:func:`unknown_variables`).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from wirewatch.core.alert_targets import (
    WEBHOOK_SECRET_MISSING,
    http_url_problem,
    mail_addresses_problem,
    smtp_problem,
)
from wirewatch.core.feeds import MAX_FEED_INTERVAL
from wirewatch.core.hosts import host_problem, split_host_port

ServiceName = Literal["fetcher", "enricher", "indexer", "alerts"]
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SERVICES: tuple[ServiceName, ...] = ("fetcher", "enricher", "indexer", "alerts")
ENV_PREFIX = "WIREWATCH_"

#: Elasticsearch's time units, in seconds (a time value is a whole number and one of them: ``30d``).
TIME_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "micros": 1e-6, "nanos": 1e-9}
TIME_VALUE = re.compile(rf"(\d+)({'|'.join(sorted(TIME_UNITS, key=len, reverse=True))})")
#: An Elasticsearch byte size: a whole number and a unit (``50gb``).
BYTE_SIZE = re.compile(r"\d+(b|kb|mb|gb|tb|pb)", re.IGNORECASE)
#: What Elasticsearch refuses in an index name (besides upper case), and at its start.
INDEX_NAME_FORBIDDEN = frozenset('\\/*?"<>| ,#:')
INDEX_NAME_FORBIDDEN_START = ("-", "_", "+")
#: A Kafka topic name: what the brokers accept (``[a-zA-Z0-9._-]``, at most 249), not ``.`` or ``..``.
TOPIC_NAME = re.compile(r"(?!\.{1,2}$)[a-zA-Z0-9._-]{1,249}")
#: The Faust table stores wirewatch runs on (Faust also knows aerospike://, which needs a client
#: and options wirewatch does not pass).
TABLE_STORES = ("memory", "rocksdb")


def env_var(field: str) -> str:
    """The environment variable of a settings field (``poll_interval`` -> ``WIREWATCH_POLL_INTERVAL``)."""
    return f"{ENV_PREFIX}{field.upper()}"


def blank(value: object) -> bool:
    """Whether ``value`` is an empty or whitespace-only string (or secret): as good as unset."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    return isinstance(text, str) and not text.strip()


def not_configured(variable: str, data_dir: Path) -> str:
    """What a command says when a server's address is neither set nor known from a running
    ``wirewatch up`` (which the CLI finds by its data dir's ``endpoints.json``)."""
    return (
        f"{variable} is not set, and no `wirewatch up` runs on {data_dir.resolve()}: start one, "
        "or set WIREWATCH_DATA_DIR to the data dir of the one running, or set "
        f"{variable}"
    )


def redact_url(url: str) -> str:
    """``url`` with the password of its user info shown as ``***``
    (``http://user:pw@host:9200`` -> ``http://user:***@host:9200``): for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    end = next((i for i, char in enumerate(rest) if char in "/?#"), len(rest))
    userinfo, at, host = rest[:end].rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not at or not colon:
        return url
    return f"{scheme}{sep}{user}:***@{host}{rest[end:]}"


def shown_url(url: str) -> str:
    """``url`` as a message shows it: without a password (:func:`redact_url`), and with ``?…``
    for its query or fragment, which may hold a token."""
    base, query, _ = url.partition("?")
    base, fragment, _ = base.partition("#")
    return redact_url(base) + ("?…" if query or fragment else "")


def es_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as the Elasticsearch address, to follow it in a message (which
    shows no password), or None. One http(s) URL with a host (a path is kept: a proxy's prefix):
    the client takes one address, needs a port for http (https defaults to 443), and would drop
    a query or fragment. Without these checks a bad URL only failed when a service first
    connected, after its wait for the server (``core.elastic.connect``)."""
    if "," in url:
        return (
            "is several URLs: wirewatch connects to one address (a load balancer, or one node, "
            "which passes requests on to the others)"
        )
    if problem := http_url_problem(url):
        if "://" not in url and not problem.startswith("is not a valid"):
            return f"{problem}: write {'http://' + shown_url(url)!r} (or https://)"
        return problem
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        return "has a query or fragment, which the Elasticsearch client drops"
    if parts.scheme == "http" and parts.port is None:
        host = parts.netloc.rpartition("@")[2]
        return f"has no port, which the client needs for http: {f'http://{host}:9200'!r}, say"
    return None


def read_setting_file(field: str, path: Path) -> str:
    """The text of ``path``, the file named by the setting ``field``; a ValueError naming its
    variable if it cannot be read (missing, a directory, not UTF-8)."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{env_var(field)}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{env_var(field)}: cannot read {path}: not UTF-8 text") from None


def time_value_seconds(value: str) -> float:
    """Seconds of an Elasticsearch time value (``365d`` -> 31536000.0); ValueError if it is not one."""
    match = TIME_VALUE.fullmatch(value)
    if match is None:
        raise ValueError(f"not an Elasticsearch time value: {value!r}")
    return int(match[1]) * TIME_UNITS[match[2]]


#: Each secret and the field naming a file that may hold it instead.
SECRET_FILES = {
    "es_password": "es_password_file",
    "alert_webhook_secret": "alert_webhook_secret_file",
    "alert_smtp_password": "alert_smtp_password_file",
    "kafka_sasl_password": "kafka_sasl_password_file",
    "kafka_ssl_key_password": "kafka_ssl_key_password_file",
}
#: Secrets, user names and secret files: blank is unset (``Settings._blank_is_unset``).
CREDENTIALS = (
    *SECRET_FILES,
    *SECRET_FILES.values(),
    "es_username",
    "es_api_key",
    "alert_smtp_username",
    "kafka_sasl_username",
    "alert_slack_urls_file",
)
#: Addresses where blank is unset too (``${VAR:-}`` in a compose file: no server, no e-mail), and
#: spaces around the value are a slip (``Settings._trimmed``).
ADDRESSES = ("kafka_bootstrap", "es_url", "alert_smtp_host", "alert_smtp_from")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        # Unknown WIREWATCH_* variables are not an error (a deployment may carry another
        # version's); they are warned of at start instead (``unknown_variables``).
        extra="ignore",
        # inf and nan are no duration, size or share: refused like any other non-number.
        allow_inf_nan=False,
        # A model-level error would otherwise print every input, secrets included.
        hide_input_in_errors=True,
    )

    # --- Kafka -------------------------------------------------------------------------
    kafka_bootstrap: str | None = Field(
        default=None,
        description="host:port[,host:port]. Unset: `wirewatch up` starts a local broker.",
    )
    kafka_replication_factor: int = Field(default=1, ge=1)
    topic_partitions: int = Field(default=4, ge=1, description="Partitions for every wirewatch topic.")
    topic_raw: str = "wirewatch.articles.raw"
    topic_enriched: str = "wirewatch.articles.enriched"
    topic_claims: str = "wirewatch.claims"
    topic_alerts: str = "wirewatch.alerts"
    topic_dead_letters: str = "wirewatch.dead-letters"
    # Consumer-group timing. Defaults suit Apache Kafka; the local launcher lowers them for
    # tansu (3 s / 1 s / 3 s) and noida-db (6 s / 2 s / 6 s) so workers are ready in seconds.
    kafka_session_timeout: float = Field(default=10.0, gt=0)
    kafka_heartbeat_interval: float = Field(default=3.0, gt=0)
    kafka_rebalance_timeout: float = Field(default=10.0, gt=0)
    kafka_commit_interval: float = Field(default=2.0, gt=0)
    kafka_request_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds the services' Kafka clients wait for an answer before they drop the "
        "connection and send the request again. A consumer has one fetch in flight per broker, so a "
        "fetch left unanswered holds up every partition on that broker for this long. Must exceed "
        "the session and rebalance timeouts (a join waits up to the rebalance timeout).",
    )
    kafka_stall_check_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How often a service looks for partitions whose fetched messages were never "
        "handled (read past the committed offset, nothing in progress, no change since the last "
        "look) and reads them again from the committed offset.",
    )
    kafka_fetch_max_wait: float = Field(
        default=0.5,
        gt=0,
        le=30,
        description="Seconds a broker may hold a consumer's fetch while it has nothing to send, for "
        "every consumer (Faust fixes 1.5 s for its own). Apache Kafka answers as soon as data "
        "arrives, so this only sets how often an idle consumer asks again; tansu answers a held "
        "fetch late, by about a fifth of this at each hop (0.34 s at 1.5 s).",
    )
    kafka_empty_fetch_pause: float = Field(
        default=0.0,
        ge=0,
        le=5,
        description="Seconds a consumer waits after a fetch that brought nothing before it fetches "
        "again. 0 for Apache Kafka (and tansu), which hold an empty fetch until data comes or the "
        "fetch's max wait ends. noida-db answers an empty fetch at once: `wirewatch up` sets 0.1 there, "
        "or every idle consumer would send thousands of fetches a second.",
    )
    kafka_producer_batching: bool = Field(
        default=True,
        description="Batch produced records. `wirewatch up` and the tests turn it off on tansu, which "
        "reports a partition's end as its last batch's base offset + 1 (table recovery would stop short).",
    )
    stream_buffer: int = Field(
        default=1000,
        ge=1,
        description="Messages each stream of a service holds ahead of its processing (Faust's "
        "stream_buffer_maxsize); past it, the service stops taking from that partition until it "
        "drains. Bounds a service's memory while it has a backlog (benchmarks/bench_backlog.py).",
    )
    shutdown_timeout: float = Field(
        default=15.0,
        ge=0,
        description="Seconds a service may take to stop (drain in-flight work and commit) after "
        "SIGTERM/SIGINT; past them it exits without draining (status 3) and what its sinks had not "
        "acknowledged is delivered again. 0: wait as long as it takes (a sink that is down holds "
        "the stop for as long as it is down).",
    )
    memory_trim_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How often a service hands its freed heap memory back to the system (glibc's "
        "malloc_trim; 0: never). Without it, memory freed after a burst (a backlog drained) stays "
        "in the service's RSS. Counted as wirewatch_memory_returned_bytes_total.",
    )
    # Security: TLS and SASL, for every Kafka client (services, commands, Faust). Checked
    # together by ``_check_kafka_security``; ``wirewatch.core.kafka.client_options`` applies them.
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: KafkaSaslMechanism | None = Field(
        default=None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* protocols only)."
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="CA bundle (PEM) for the brokers' certificates; unset: the system CAs."
    )
    kafka_ssl_certfile: Path | None = Field(default=None, description="Client certificate (PEM), mutual TLS.")
    kafka_ssl_keyfile: Path | None = Field(default=None, description="The client certificate's key (PEM).")
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_key_password_file: Path | None = None
    kafka_ssl_check_hostname: bool = Field(
        default=True, description="Check that the broker's certificate names the host connected to."
    )

    # --- Elasticsearch -----------------------------------------------------------------
    es_url: str | None = Field(
        default=None,
        description="http(s)://host:port, one URL. Unset: `wirewatch up` starts a local search server.",
    )
    es_username: str | None = None
    es_password: SecretStr | None = None
    es_password_file: Path | None = None
    es_api_key: SecretStr | None = None
    es_ca_certs: Path | None = None
    es_verify_certs: bool = True
    es_request_timeout: float = Field(default=30.0, gt=0)
    es_index_prefix: str = "wirewatch"
    es_ilm: bool = Field(
        default=True,
        description="Manage index lifecycle (ILM) policies for the indices that grow with the stream "
        "(articles, events, event links, alerts, dead letters), on real Elasticsearch only (skipped "
        "with a log line on other servers).",
    )
    es_rollover_size: str = Field(
        default="50gb", description="ILM: roll an alias over when its primary shard reaches this."
    )
    es_rollover_age: str = Field(
        default="30d", description="ILM: roll an alias over when its write index is this old."
    )
    es_articles_retention: str | None = Field(
        default=None,
        description="ILM: delete an articles index this long after it rolled over (e.g. `365d`); "
        "unset keeps every index. The same for the other kinds below.",
    )
    es_events_retention: str | None = None
    es_event_links_retention: str | None = None
    es_alerts_retention: str | None = None
    es_dead_letters_retention: str | None = None
    index_batch_size: int = Field(default=500, ge=1)
    index_batch_seconds: float = Field(default=0.25, gt=0)
    index_retry_max_seconds: float = Field(default=30.0, gt=0)
    event_window_days: float | None = Field(
        default=None,
        gt=0,
        description="Event linking: days after its last report an event can still be joined "
        "(default: the linker's, 7).",
    )

    # --- Fetcher -----------------------------------------------------------------------
    feeds_file: Path = Path("feeds.yaml")
    poll_interval: float = Field(
        default=300.0, gt=0, le=MAX_FEED_INTERVAL, description="Seconds between polls of one feed."
    )
    fetch_timeout: float = Field(default=20.0, gt=0)
    fetch_max_bytes: int = Field(default=10_000_000, gt=0)
    fetch_concurrency: int = Field(default=8, ge=1)
    user_agent: str = "wirewatch/0.1 (+https://github.com/wirewatch/wirewatch)"
    fetch_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Exceptions to the SSRF guard: host names, addresses or CIDR blocks "
        "(comma-separated or a JSON list), e.g. `127.0.0.1/32` for a local test site.",
    )
    fetch_max_redirects: int = Field(default=5, ge=0, description="Redirects followed per fetch.")
    fetch_host_concurrency: int = Field(default=2, ge=1, description="Requests in flight per host.")
    fetch_host_delay: float = Field(
        default=1.0, ge=0, description="Seconds between request starts to one host (larger Crawl-delay wins)."
    )
    fetch_retries: int = Field(default=2, ge=0, description="Retries on connection errors, 408, 429 and 5xx.")
    fetch_retry_backoff: float = Field(
        default=1.0, ge=0, description="First retry's backoff in seconds; doubles each retry, with jitter."
    )
    fetch_robots_ttl: float = Field(default=3600.0, gt=0, description="Seconds a robots.txt is cached.")
    poll_interval_min: float = Field(
        default=60.0,
        gt=0,
        le=MAX_FEED_INTERVAL,
        description="Adaptive polling: shortest interval between polls of one feed.",
    )
    poll_interval_max: float = Field(
        default=3600.0,
        gt=0,
        le=MAX_FEED_INTERVAL,
        description="Adaptive polling: longest interval between polls of one feed (at most a day).",
    )
    feed_max_new_per_poll: int = Field(
        default=100,
        ge=1,
        description="New articles fetched per poll of a feed (newest first; the rest next poll).",
    )
    sitemap_max_depth: int = Field(default=2, ge=0, description="Levels of sitemap indexes followed.")
    sitemap_max_children: int = Field(
        default=20, ge=0, description="Child sitemaps fetched per poll of a sitemap index (newest first)."
    )
    topic_feeds: str = Field(
        default="wirewatch.feeds",
        description="Compacted topic the fetchers publish the feeds file to (key: feed id); its "
        "partitions are how fetcher instances share the feeds.",
    )
    topic_backfill: str = Field(
        default="wirewatch.backfill", description="Backfill requests (`wirewatch backfill`) for the fetchers."
    )
    fetch_seen_ttl_days: float = Field(
        default=30.0,
        gt=0,
        description="Days an article id stays remembered as seen after a feed of its site last listed it.",
    )
    fetch_seen_max: int = Field(
        default=50_000,
        ge=1,
        description="Article ids remembered per site (the longest unlisted go first); "
        "more than the site's largest feed.",
    )
    backfill_concurrency: int = Field(
        default=2, ge=1, description="Articles a fetcher's backfill lane fetches at once (low priority)."
    )

    # --- Enricher ------------------------------------------------------------------------
    copies_ttl_days: float = Field(
        default=30.0, gt=0, description="Days an article is remembered for duplicate and reuse detection."
    )
    copies_max_articles: int = Field(
        default=1_000_000,
        ge=1,
        description="At most this many articles are remembered for duplicate and reuse detection (the "
        "oldest go first): a bound on the enricher's memory whatever the flow (about 1 KB per article, "
        "3-4 KB more with memory:// tables).",
    )

    # --- Alerts --------------------------------------------------------------------------
    alert_digest_seconds: float = Field(
        default=600.0,
        ge=0,
        description="Per-claim digest window: the first alert goes out at once, the next ones of the "
        "same claim within this many seconds go out as one digest (0: every alert at once).",
    )
    alert_remember_ids: int = Field(
        default=5000, ge=1, description="Delivered alert ids remembered per claim (a replay is not resent)."
    )
    alert_webhook_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="JSON webhooks (comma-separated or a JSON list)."
    )
    alert_webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key of the X-Wirewatch-Signature header."
    )
    alert_webhook_secret_file: Path | None = None
    alert_slack_urls: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Slack-compatible incoming webhooks (secret URLs)."
    )
    alert_slack_urls_file: Path | None = Field(default=None, description="Slack URLs, one a line.")
    alert_smtp_host: str | None = Field(default=None, description="SMTP server; unset: no e-mail.")
    alert_smtp_port: int | None = Field(
        default=None, ge=1, le=65535, description="Default: 587 (starttls), 465 (tls), 25 (none)."
    )
    alert_smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls: required upgrade (refused if the server does not offer it); "
        "tls: implicit TLS; none: plain text (a local relay only).",
    )
    alert_smtp_username: str | None = None
    alert_smtp_password: SecretStr | None = None
    alert_smtp_password_file: Path | None = None
    alert_smtp_ca_file: Path | None = Field(default=None, description="CA bundle for the SMTP server.")
    alert_smtp_from: str | None = None
    alert_smtp_to: Annotated[list[str], NoDecode] = Field(default_factory=list)
    alert_timeout: float = Field(default=10.0, gt=0, description="Seconds per delivery attempt.")
    alert_retry_attempts: int = Field(
        default=3,
        ge=1,
        description="Tries per target in line, before a delivery is parked (or dead-lettered).",
    )
    alert_retry_backoff: float = Field(
        default=1.0, ge=0, description="Seconds before the first retry; doubles each retry, with jitter."
    )
    alert_retry_max_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest time one delivery to one target is tried in line (holding up its partition) "
        "before it is parked.",
    )
    alert_redeliver_max_delay: float = Field(
        default=60.0, gt=0, description="Longest wait between two tries of a parked delivery."
    )
    alert_redeliver_give_up_seconds: float = Field(
        default=86_400.0,
        gt=0,
        description="How long a target may keep failing before its parked deliveries become dead letters.",
    )

    # --- Tracked claims ----------------------------------------------------------------
    claims_retro_days: float = Field(
        default=90.0, ge=0, description="Days of indexed articles searched when a claim is newly tracked."
    )
    claims_retro_candidates: int = Field(
        default=500, ge=1, description="Articles the retroactive search checks closely per new claim."
    )
    claims_retro_share: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="Largest share of the time the alerts service spends on retroactive searches "
        "(between steps it rests, and live articles are matched).",
    )
    claims_retro_catchup_hours: float = Field(
        default=24.0,
        ge=0,
        description="At start, claims tracked within this many hours get their retroactive search "
        "(again): one tracked while the alerts service was down or restarting is not missed.",
    )

    # --- Services ------------------------------------------------------------------------
    table_store: str = Field(
        default="memory://",
        description="Faust table store: memory:// (rebuilt from the changelog) or rocksdb:// (on disk).",
    )
    compute_threads: int = Field(
        default=1,
        ge=1,
        description="Threads numpy's BLAS (and OpenMP) may use in each service process. One: a service "
        "is one worker, and scale-out is more processes; a thread per core in every service made them "
        "spin against each other (benchmarks/RESULTS.md). OPENBLAS_NUM_THREADS etc., when set, win.",
    )
    web_host: str = Field(
        default="0.0.0.0",
        description="Address the health and metrics web server listens on (Faust's web_bind). Every "
        "interface by default, so probes reach a container; `wirewatch up` sets 127.0.0.1: on a "
        "laptop, the services' endpoints stay off the network.",
    )
    web_port: int = Field(default=6066, ge=0, le=65535, description="Health and metrics port.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    data_dir: Path = Field(
        default=Path(".wirewatch"), description="Local data: servers (local mode), logs, Faust table stores."
    )

    @field_validator(
        "fetch_allow_hosts", "alert_webhook_urls", "alert_slack_urls", "alert_smtp_to", mode="before"
    )
    @classmethod
    def _split_lists(cls, value: object) -> object:
        """``a,b`` or a JSON list from the environment; a list from code."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator(*CREDENTIALS, mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """An empty secret, credential or secret file (``WIREWATCH_ES_PASSWORD=``) is unset: it
        neither wins over its ``*_FILE`` nor turns authentication on with nothing."""
        return None if blank(value) else value

    @field_validator(*ADDRESSES, mode="before")
    @classmethod
    def _trimmed(cls, value: object) -> object:
        """Spaces around an address dropped; blank is unset."""
        return (value.strip() or None) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        """A secret not given directly is read from its ``*_file`` (Docker/Kubernetes secrets); a
        blank file leaves it unset, like a blank variable."""
        for secret, file in SECRET_FILES.items():
            path = getattr(self, file)
            if getattr(self, secret) is None and path is not None:
                text = read_setting_file(file, path).strip()
                setattr(self, secret, None if blank(text) else SecretStr(text))
        if not self.alert_slack_urls and self.alert_slack_urls_file is not None:
            lines = read_setting_file("alert_slack_urls_file", self.alert_slack_urls_file).splitlines()
            for number, line in enumerate(lines, 1):
                if line.strip() and (problem := http_url_problem(line.strip())):
                    raise ValueError(
                        f"WIREWATCH_ALERT_SLACK_URLS_FILE: line {number} of {self.alert_slack_urls_file} "
                        f"{problem.replace(line.strip(), '…')} (not shown: a Slack URL is a secret)"
                    )
            self.alert_slack_urls = [SecretStr(line.strip()) for line in lines if line.strip()]
        return self

    @model_validator(mode="after")
    def _check_kafka_timing(self) -> Settings:
        """Heartbeats must come within the session timeout, and a request must be allowed to
        outlast a group join (Faust refuses a session timeout above the request timeout; a join is
        held for up to the rebalance timeout) and a held fetch."""
        if self.kafka_heartbeat_interval >= self.kafka_session_timeout:
            raise ValueError(
                f"WIREWATCH_KAFKA_HEARTBEAT_INTERVAL={self.kafka_heartbeat_interval:g} must be shorter than "
                f"WIREWATCH_KAFKA_SESSION_TIMEOUT={self.kafka_session_timeout:g}: a member is dropped from "
                "its group when no heartbeat came within the session timeout"
            )
        longest = max(self.kafka_session_timeout, self.kafka_rebalance_timeout)
        if self.kafka_request_timeout <= longest:
            raise ValueError(
                f"WIREWATCH_KAFKA_REQUEST_TIMEOUT={self.kafka_request_timeout:g} must exceed the session and "
                f"rebalance timeouts ({longest:g} s)"
            )
        if self.kafka_request_timeout <= self.kafka_fetch_max_wait:
            raise ValueError(
                f"WIREWATCH_KAFKA_REQUEST_TIMEOUT={self.kafka_request_timeout:g} must exceed "
                f"WIREWATCH_KAFKA_FETCH_MAX_WAIT={self.kafka_fetch_max_wait:g}: a fetch is held that long"
            )
        return self

    @field_validator(
        "es_rollover_age",
        "es_articles_retention",
        "es_events_retention",
        "es_event_links_retention",
        "es_alerts_retention",
        "es_dead_letters_retention",
    )
    @classmethod
    def _time_value(cls, value: str | None, info: ValidationInfo) -> str | None:
        """An Elasticsearch time value (``30d``, ``12h``): refused here, naming the variable,
        rather than by the lifecycle API at setup."""
        if value is not None and not TIME_VALUE.fullmatch(value):
            raise ValueError(
                f"{env_var(str(info.field_name))}={value!r} is not an Elasticsearch time value "
                "such as 365d, 12h or 90m"
            )
        return value

    @field_validator("es_rollover_size")
    @classmethod
    def _byte_size(cls, value: str) -> str:
        """An Elasticsearch byte size (``50gb``)."""
        if not BYTE_SIZE.fullmatch(value):
            raise ValueError(
                f"WIREWATCH_ES_ROLLOVER_SIZE={value!r} is not an Elasticsearch byte size "
                "such as 50gb or 500mb"
            )
        return value

    @field_validator("es_index_prefix")
    @classmethod
    def _index_prefix(cls, value: str) -> str:
        """A prefix Elasticsearch accepts in an index name (``<prefix>-articles-000001``):
        refused here rather than by index setup, after the services started."""
        problem = None
        if not value:
            problem = "is empty"
        elif value != value.lower():
            problem = "has upper case letters"
        elif bad := sorted(set(value) & INDEX_NAME_FORBIDDEN):
            problem = f"has {', '.join(repr(c) for c in bad)}"
        elif value.startswith(INDEX_NAME_FORBIDDEN_START):
            problem = f"starts with {value[0]!r}"
        if problem:
            raise ValueError(
                f"WIREWATCH_ES_INDEX_PREFIX={value!r} {problem}: Elasticsearch index names are lower "
                'case, without \\ / * ? " < > | , # : or spaces, and do not start with -, _ or +'
            )
        return value

    @field_validator("user_agent")
    @classmethod
    def _user_agent(cls, value: str) -> str:
        """Sent with every request, and its first word is the robots.txt user agent: not blank."""
        if blank(value):
            raise ValueError("WIREWATCH_USER_AGENT is empty: sites and robots.txt need a user agent")
        return value.strip()

    @field_validator("web_host")
    @classmethod
    def _web_host(cls, value: str) -> str:
        """Not blank: the web server would take an empty address for every interface, the
        opposite of what a blank looks like it asks for."""
        if blank(value):
            raise ValueError(
                "WIREWATCH_WEB_HOST is empty: the address to listen on, such as 0.0.0.0 (every "
                "interface) or 127.0.0.1 (loopback only)"
            )
        if problem := host_problem(value.strip()):
            raise ValueError(
                f"WIREWATCH_WEB_HOST={value.strip()!r} {problem}: the address to listen on, such as "
                "0.0.0.0 or 127.0.0.1 (the port: WIREWATCH_WEB_PORT)"
            )
        return value.strip()

    @field_validator("kafka_bootstrap")
    @classmethod
    def _kafka_bootstrap(cls, value: str | None) -> str | None:
        """Comma-separated ``host:port`` (:func:`split_host_port`), no scheme.
        The Kafka client took ``localhost`` (no port) or ``http://host:9092`` and failed only
        when it connected, after its wait for the broker."""
        if value is None:
            return None
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        for entry in entries:
            try:
                split_host_port(entry, usual_port=9092)
            except ValueError as exc:
                raise ValueError(f"WIREWATCH_KAFKA_BOOTSTRAP: {entry!r} {exc}") from None
        return ",".join(entries) or None

    @field_validator("es_url")
    @classmethod
    def _es_url(cls, value: str | None) -> str | None:
        """One http(s) URL (:func:`es_url_problem`), shown without a password."""
        if value is not None and (problem := es_url_problem(value)):
            raise ValueError(f"WIREWATCH_ES_URL={shown_url(value)!r} {problem}")
        return value

    @field_validator(
        "topic_raw",
        "topic_enriched",
        "topic_claims",
        "topic_alerts",
        "topic_dead_letters",
        "topic_feeds",
        "topic_backfill",
    )
    @classmethod
    def _topic(cls, value: str, info: ValidationInfo) -> str:
        """A name the brokers accept, refused here rather than when the topics are created."""
        if not TOPIC_NAME.fullmatch(value):
            raise ValueError(
                f"{env_var(str(info.field_name))}={value!r} is not a Kafka topic name: letters, digits, "
                "'.', '_' and '-', at most 249 of them"
            )
        return value

    @field_validator("alert_smtp_from")
    @classmethod
    def _mail_sender(cls, value: str | None) -> str | None:
        """An e-mail address (syntax only), refused here, not when the first alert is mailed."""
        if problem := mail_addresses_problem(value, []):
            raise ValueError(problem)
        return value

    @field_validator("alert_smtp_to")
    @classmethod
    def _mail_recipients(cls, value: list[str]) -> list[str]:
        """Each an e-mail address (syntax only), refused here, not when the first alert is mailed."""
        if problem := mail_addresses_problem(None, value):
            raise ValueError(problem)
        return value

    @field_validator("table_store")
    @classmethod
    def _table_store(cls, value: str) -> str:
        """A Faust store URL of :data:`TABLE_STORES`, refused here rather than by Faust in every
        service."""
        if "://" not in value or urlsplit(value).scheme not in TABLE_STORES:
            raise ValueError(
                f"WIREWATCH_TABLE_STORE={value!r} is not a table store: "
                f"{' or '.join(f'{store}://' for store in TABLE_STORES)}"
            )
        return value

    @field_validator("fetch_allow_hosts")
    @classmethod
    def _allow_hosts(cls, value: list[str]) -> list[str]:
        """Read as the fetcher reads them (:meth:`AddressPolicy.from_entries`), so a bad entry stops
        the settings, not the fetcher after its start."""
        if value:
            # Imported here: it brings httpx, which most commands do not need.
            from wirewatch.fetcher.safety import AddressPolicy

            try:
                AddressPolicy.from_entries(value)
            except ValueError as exc:
                raise ValueError(
                    f"WIREWATCH_FETCH_ALLOW_HOSTS: {str(exc).removeprefix('fetch_allow_hosts: ')}"
                ) from None
        return value

    @field_validator("alert_webhook_urls")
    @classmethod
    def _webhook_urls(cls, value: list[str]) -> list[str]:
        """Each an http(s) URL with a host (:func:`http_url_problem`, the rule the alerts service
        builds its targets by): refused here rather than by that service, after its start. Shown
        without a password, query or fragment, which may hold a token."""
        for url in value:
            if problem := http_url_problem(url):
                shown = shown_url(url)
                raise ValueError(f"WIREWATCH_ALERT_WEBHOOK_URLS: {shown!r} {problem.replace(url, shown)}")
        return value

    @field_validator("alert_slack_urls")
    @classmethod
    def _slack_urls(cls, value: list[SecretStr]) -> list[SecretStr]:
        """Each an http(s) URL with a host, like a webhook's; named by its place in the list,
        never shown (its path is the secret)."""
        for number, url in enumerate(value, 1):
            text = url.get_secret_value()
            if problem := http_url_problem(text):
                raise ValueError(
                    f"WIREWATCH_ALERT_SLACK_URLS: URL #{number} {problem.replace(text, '…')} "
                    "(not shown: a Slack URL is a secret)"
                )
        return value

    @field_validator("log_level", "log_format", "alert_smtp_security", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        """``DEBUG`` and ``JSON`` are accepted too."""
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_polling(self) -> Settings:
        """Adaptive polling keeps each feed's interval between the two bounds: they must be in order."""
        if self.poll_interval_min > self.poll_interval_max:
            raise ValueError(
                f"WIREWATCH_POLL_INTERVAL_MIN={self.poll_interval_min:g} is above "
                f"WIREWATCH_POLL_INTERVAL_MAX={self.poll_interval_max:g}"
            )
        return self

    @model_validator(mode="after")
    def _check_alert_targets(self) -> Settings:
        """Webhooks are signed (the receiver checks the signature): they need the secret. E-mail
        needs a sender and recipients, and sends a password over TLS only (or to this machine):
        :func:`smtp_problem`, the rule the alerts service builds its targets by. Runs after
        ``_read_secret_files``, so a secret may come from its ``*_FILE``."""
        if self.alert_webhook_urls and self.alert_webhook_secret is None:
            raise ValueError(WEBHOOK_SECRET_MISSING)
        if self.alert_smtp_host:
            problem = smtp_problem(
                host=self.alert_smtp_host,
                sender=self.alert_smtp_from,
                recipients=self.alert_smtp_to,
                security=self.alert_smtp_security,
                username=self.alert_smtp_username,
                has_password=self.alert_smtp_password is not None,
            )
            if problem:
                raise ValueError(problem)
        return self

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        """``sasl_ssl`` and ``scram-sha-512`` are accepted too."""
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Settings:
        """Refuse Kafka security settings that cannot work together, naming the variables.

        Runs after ``_read_secret_files``, so a password may come from its ``*_FILE``."""
        protocol = self.kafka_security_protocol
        sasl = protocol.startswith("SASL_")
        tls = protocol in ("SSL", "SASL_SSL")
        var = "WIREWATCH_KAFKA_"
        if sasl:
            missing = [
                f"{var}{name}"
                for name, value in (
                    ("SASL_MECHANISM", self.kafka_sasl_mechanism),
                    ("SASL_USERNAME", self.kafka_sasl_username),
                    ("SASL_PASSWORD (or _FILE)", self.kafka_sasl_password),
                )
                if value is None  # blank is unset (_blank_is_unset)
            ]
            if missing:
                raise ValueError(f"{var}SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}")
        else:
            stray = [
                f"{var}{name}"
                for name, value in (
                    ("SASL_MECHANISM", self.kafka_sasl_mechanism),
                    ("SASL_USERNAME", self.kafka_sasl_username),
                    ("SASL_PASSWORD", self.kafka_sasl_password),
                    ("SASL_PASSWORD_FILE", self.kafka_sasl_password_file),
                )
                if value is not None
            ]
            if stray:
                raise ValueError(
                    f"{', '.join(stray)} set, but {var}SECURITY_PROTOCOL={protocol} does not use SASL "
                    "(SASL_SSL or SASL_PLAINTEXT does)"
                )
        files = (
            ("SSL_CAFILE", self.kafka_ssl_cafile),
            ("SSL_CERTFILE", self.kafka_ssl_certfile),
            ("SSL_KEYFILE", self.kafka_ssl_keyfile),
        )
        if not tls:
            stray = [f"{var}{name}" for name, value in files if value is not None]
            stray += [f"{var}SSL_KEY_PASSWORD"] if self.kafka_ssl_key_password is not None else []
            if stray:
                raise ValueError(
                    f"{', '.join(stray)} set, but {var}SECURITY_PROTOCOL={protocol} does not use TLS "
                    "(SSL or SASL_SSL does)"
                )
            return self
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError(
                f"a client certificate needs both {var}SSL_CERTFILE and {var}SSL_KEYFILE "
                "(the same file if it holds both)"
            )
        if self.kafka_ssl_key_password is not None and self.kafka_ssl_keyfile is None:
            raise ValueError(f"{var}SSL_KEY_PASSWORD is set without {var}SSL_KEYFILE")
        for name, path in files:
            if path is not None and not path.is_file():
                raise ValueError(f"{var}{name}={path}: no such file")
        return self

    @property
    def topics(self) -> dict[str, str]:
        """Logical name -> configured topic name."""
        return {
            "raw": self.topic_raw,
            "enriched": self.topic_enriched,
            "claims": self.topic_claims,
            "alerts": self.topic_alerts,
            "dead_letters": self.topic_dead_letters,
        }

    def index(self, name: str) -> str:
        """Alias (or index) name for one of wirewatch's document kinds."""
        return f"{self.es_index_prefix}-{name}"

    def retention(self, kind: str) -> str | None:
        """How long an index of ``kind`` (one of ``core.elastic.ROLLING``) is kept after it rolled
        over (ILM's delete phase); None: kept."""
        return {
            "articles": self.es_articles_retention,
            "events": self.es_events_retention,
            "event-links": self.es_event_links_retention,
            "alerts": self.es_alerts_retention,
            "dead-letters": self.es_dead_letters_retention,
        }[kind]


def _holds_secret(annotation: Any) -> bool:
    """Whether a field's type is or holds a ``SecretStr``."""
    return annotation is SecretStr or any(_holds_secret(arg) for arg in get_args(annotation))


#: Fields whose input an error message must never show.
SECRET_FIELDS = frozenset(
    name for name, info in Settings.model_fields.items() if _holds_secret(info.annotation)
)


def settings_error_message(exc: ValidationError) -> str:
    """The errors of ``Settings()``, one line each, naming the environment variable: what a
    command prints instead of pydantic's report, which names fields. Pydantic's own messages get
    the input they refused (``(got 'abc')``), never that of a secret, and with any password in a
    URL hidden; the validators' messages name their variables and values themselves."""
    lines = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a model validator's, naming its variables
            lines.append(message)
            continue
        field = str(error["loc"][0])
        variable = env_var(field)
        if message.startswith(variable):
            lines.append(message)
            continue
        line = f"{variable}: {message}"
        value = error.get("input")
        if (
            error["type"] != "value_error"
            and field not in SECRET_FIELDS
            and isinstance(value, str | int | float)
        ):
            shown = redact_url(value) if isinstance(value, str) else value
            line += f" (got {shown!r})"
        lines.append(line)
    return "\n".join(lines)


#: The ``.env`` file the settings read (in the working directory).
ENV_FILE = Path(str(Settings.model_config.get("env_file")))
#: How alike a variable's name and a setting's must be for the setting to be suggested
#: (:func:`difflib.get_close_matches`; ``KAFKA_BOOTSTRAP_SERVERS`` -> ``KAFKA_BOOTSTRAP`` is 0.79).
SUGGESTION_CUTOFF = 0.75


@dataclass(frozen=True)
class UnknownVariable:
    """A ``WIREWATCH_*`` variable no setting reads: a typo, or a setting of another version of
    wirewatch. The settings ignore it (``extra="ignore"``), so the process says so at start."""

    name: str
    #: The ``.env`` file it is in; None: the environment.
    env_file: Path | None
    #: The variable it probably meant, if one is close.
    meant: str | None
    #: The setting it names with ``_FILE`` added, when that one has no ``_FILE`` form.
    without_file: str | None = None

    @property
    def message(self) -> str:
        where = f" (in {self.env_file})" if self.env_file else ""
        text = f"{self.name}{where} is not a wirewatch setting: ignored"
        if self.without_file:
            return f"{text} ({self.without_file} is not read from a file; only secrets have a _FILE form)"
        return text + (f" (did you mean {self.meant}?)" if self.meant else "")


#: Every ``WIREWATCH_*`` variable wirewatch reads: one per setting. (Nothing else reads one; a
#: secret's ``*_FILE`` is a setting of its own.)
SETTING_VARIABLES = frozenset(env_var(name) for name in Settings.model_fields)


def unknown_variable(name: str, env_file: Path | None = None) -> UnknownVariable | None:
    """``name`` as an unknown variable, with the setting it probably meant, or None when it is
    not a ``WIREWATCH_*`` variable or is a setting's (in any case, as the settings read it)."""
    upper = name.upper()
    if not upper.startswith(ENV_PREFIX) or upper in SETTING_VARIABLES:
        return None
    if upper.endswith("_FILE") and upper.removesuffix("_FILE") in SETTING_VARIABLES:
        return UnknownVariable(name, env_file, None, without_file=upper.removesuffix("_FILE"))
    # Compared without the prefix, which every name shares and would make any two look alike.
    settings = sorted(variable.removeprefix(ENV_PREFIX) for variable in SETTING_VARIABLES)
    close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), settings, n=1, cutoff=SUGGESTION_CUTOFF)
    return UnknownVariable(name, env_file, ENV_PREFIX + close[0] if close else None)


def unknown_variables(
    environ: Mapping[str, str] | None = None, env_file: Path | None = ENV_FILE
) -> list[UnknownVariable]:
    """The ``WIREWATCH_*`` variables of the environment (``os.environ`` by default) and of
    ``env_file`` (if it exists) that no setting reads, in name order, each once (the
    environment's first, as it wins over the file). Warned of, not refused: a deployment's
    environment may carry another version's settings."""
    found: dict[str, UnknownVariable] = {}
    for name in sorted(os.environ if environ is None else environ):
        if unknown := unknown_variable(name):
            found.setdefault(name.upper(), unknown)
    if env_file is not None and env_file.is_file():
        for name in sorted(dotenv_values(env_file, encoding="utf-8")):
            if unknown := unknown_variable(name, env_file):
                found.setdefault(name.upper(), unknown)
    return list(found.values())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
