"""The ``wirewatch`` command line: run the system, manage feeds, search, inspect.

Every listing command takes ``--json`` and then prints one JSON document on stdout.

Errors, ``--json`` or not: one line ``error: …`` on stderr, nothing on stdout, a non-zero exit
(1; 2 for a usage error). The exceptions are the commands whose answer is a report that can
be bad news, ``status`` and ``feeds discover``: they print their report (JSON with ``--json``)
and exit 1 when it says something does not answer or could not be read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import textwrap
from collections.abc import Iterable
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from wirewatch.core.dates import calendar_date, not_a_date
from wirewatch.core.settings import SERVICES, Settings

if TYPE_CHECKING:
    from wirewatch.core.models import TrackedClaim
    from wirewatch.local.up import RunningFetcher


#: The most hits a listing asks for: Elasticsearch's default ``index.max_result_window``.
MAX_SIZE = 10_000


def _settings() -> Settings:
    from wirewatch.local.up import resolve_endpoints

    return resolve_endpoints(Settings())


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


#: A date as Elasticsearch reads it in a range (``strict_date_optional_time``): a year, a month,
#: a day, with a time of day and a zone or not.
_ES_DATE = (
    r"\d{4}(?:-\d{2}(?:-\d{2}(?:T\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?"
    r"(?:Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?"
)
#: Date math after ``now`` or ``date||``: ``-7d``, ``+1h``, ``/d`` (rounding), in any number.
_ES_MATH = r"(?:[+-]\d+[yMwdhHms]|/[yMwdhHms])*"
_DATE_BOUND = re.compile(rf"now{_ES_MATH}|(?P<date>{_ES_DATE})(?:\|\|{_ES_MATH})?|\d{{5,}}")


class DateBound(click.ParamType):
    """A bound of a date range as the search server takes it (``2026-03-01``,
    ``2026-03-01T08:00:00+01:00``, ``now-7d``, ``now/d``, ``2026-03-01||+1M``, epoch
    milliseconds), checked here so that a mistyped date is a usage error, not the server's
    parse error after a request."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        found = _DATE_BOUND.fullmatch(text)
        if found and found["date"] and calendar_date(found["date"]) is None:
            found = None  # the calendar: no month 13, no 30 February
        if not found:
            self.fail(not_a_date(text), param, ctx)
        return text


_LANGUAGE_TAG = re.compile(r"([a-z]{2,3})(?:[-_][a-z0-9]{1,8})*", re.IGNORECASE)


def _language(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A ``--lang`` as the pipeline names languages: ISO 639 in lower case (``FR``, ``fr-FR`` ->
    ``fr``), the way the detector writes it on articles, events and claims."""
    if value is None:
        return None
    found = _LANGUAGE_TAG.fullmatch(value.strip())
    if not found:
        raise click.BadParameter(f"{value!r} is not a language code (e.g. fr, en, fr-FR)", ctx, param)
    return found[1].lower()


class _Commands(click.Group):
    """The command group: a broker that does not answer is a one-line error, and a malformed
    setting a line naming its variable (exit 2), not a traceback. Unknown ``WIREWATCH_*``
    variables are a warning each, once (``main``)."""

    def invoke(self, ctx: click.Context) -> Any:
        from pydantic import ValidationError

        from wirewatch.core.kafka import KafkaUnavailableError
        from wirewatch.core.settings import settings_error_message, unknown_variables

        try:
            return super().invoke(ctx)
        except KafkaUnavailableError as exc:
            _fail(f"Kafka does not answer ({exc}): start `wirewatch up`, or set WIREWATCH_KAFKA_BOOTSTRAP")
        except ValidationError as exc:
            if exc.title != Settings.__name__:
                raise
            if ctx.invoked_subcommand == "run":  # not said yet (``main``): a misspelled name may be why
                for unknown in unknown_variables():
                    _warn(unknown.message)
            for line in settings_error_message(exc).splitlines():
                click.echo(f"error: {line}", err=True)
            sys.exit(2)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wirewatch")
def main() -> None:
    """wirewatch: follow news feeds, find copies, events and tracked claims."""
    # The Kafka client logs each failed connection attempt; a command says once, in its own
    # words, that the broker does not answer (``_Commands``), so those lines are only noise.
    # Not for the services (`run`, and `up`, which runs them), whose logs are for operators.
    ctx = click.get_current_context()
    if ctx.invoked_subcommand != "run":  # a service logs them itself (``runner.run``)
        from wirewatch.core.settings import unknown_variables

        for unknown in unknown_variables():
            _warn(unknown.message)
    if ctx.invoked_subcommand not in ("run", "up"):
        kafka_client = logging.getLogger("aiokafka")
        level = kafka_client.level
        kafka_client.setLevel(logging.CRITICAL)
        ctx.call_on_close(lambda: kafka_client.setLevel(level))


# --- running ----------------------------------------------------------------------------------
@main.command()
@click.option("--ephemeral", is_flag=True, help="In-memory servers (tansu + osmem-server); nothing is kept.")
@click.option("--demo", is_flag=True, help="Serve the bundled demo news site on loopback and watch it.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Where local data and logs go.")
def up(ephemeral: bool, demo: bool, data_dir: Path | None) -> None:
    """Start local servers (unless configured) and every service; Ctrl-C stops."""
    from wirewatch.core.logs import setup_logging
    from wirewatch.local.up import UpError, run_up

    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    setup_logging(settings.log_level, "console")
    try:
        code = run_up(settings, backend="ephemeral" if ephemeral else "noida", demo=demo, echo=click.echo)
    except UpError as exc:  # an unusable data dir or feeds file: nothing was started
        _fail(str(exc), exc.code)
    sys.exit(code)


@main.command()
@click.argument("service", type=click.Choice(SERVICES))
def run(service: str) -> None:
    """Run one service in the foreground (what containers and `up` run)."""
    from wirewatch.runner import run as run_service

    run_service(service, Settings())  # type: ignore[arg-type]


@main.command()
def setup() -> None:
    """Create Kafka topics and Elasticsearch index templates and indices (idempotent)."""
    from wirewatch.core.logs import setup_logging
    from wirewatch.runner import setup as do_setup

    settings = _settings()
    setup_logging(settings.log_level, settings.log_format)
    try:
        created = asyncio.run(do_setup(settings))
    except Exception as exc:
        _fail(str(exc))
    click.echo(
        f"topics created: {created['topics'] or 'none'}; indices created: {created['indices'] or 'none'}"
    )


@main.group()
def kibana() -> None:
    """Kibana dashboards (deploy/kibana/)."""


@kibana.command("import")
@click.option("--url", required=True, help="Kibana base URL, e.g. http://localhost:5601.")
@click.option("--space", help="Kibana space id (default: the default space).")
@click.option("--wait", default=300.0, show_default=True, help="Seconds to wait for Kibana to be available.")
@click.option("--ca-certs", type=click.Path(exists=True, dir_okay=False), help="CA bundle for an https URL.")
@click.option(
    "--dir", "directory", type=click.Path(exists=True, file_okay=False, path_type=Path), help="*.ndjson here."
)
def kibana_import(
    url: str, space: str | None, wait: float, ca_certs: str | None, directory: Path | None
) -> None:
    """Import the data views, visualisations and dashboards (overwrites them; idempotent).

    Logs in with WIREWATCH_ES_API_KEY or WIREWATCH_ES_USERNAME/_PASSWORD; data views point at
    the WIREWATCH_ES_INDEX_PREFIX aliases."""
    from wirewatch.kibana import KibanaError, import_objects

    click.echo(f"importing into Kibana at {url} (waiting up to {wait:g} s for it to be available)", err=True)
    try:
        result = import_objects(
            url, Settings(), directory=directory, space=space, wait=wait, verify=ca_certs or True
        )
    except KibanaError as exc:
        _fail(str(exc))
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"kibana: {result.success_count} of {result.objects} saved objects imported")


# --- feeds --------------------------------------------------------------------------------------
@main.group()
def feeds() -> None:
    """Manage the feeds file: WIREWATCH_FEEDS_FILE when set, else the one the fetcher of the
    `wirewatch up` running on the data dir (WIREWATCH_DATA_DIR) reads, else ./feeds.yaml."""


def _feeds_file(settings: Settings) -> tuple[Path, RunningFetcher | None]:
    """The feeds file the ``feeds`` commands read and edit (``settings`` from :func:`_settings`,
    which fills in a running ``up``'s file when none is configured), and the running fetcher
    that reads it, if any: its SSRF exceptions, not the CLI's, decide whether it will poll a feed."""
    from wirewatch.local.up import running_fetcher

    path = settings.feeds_file
    fetcher = running_fetcher(settings)
    return path, fetcher if fetcher is not None and fetcher.reads(path) else None


def _whose(fetcher: RunningFetcher | None) -> str:
    """Said after a feeds file's path when it is a running ``up``'s (so not ``./feeds.yaml``)."""
    return "" if fetcher is None else f" (the feeds file of the `wirewatch up` running on {fetcher.data_dir})"


def _feed_interval(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A feed's ``--interval`` within the bounds the feeds file keeps (more than 0, at most a
    day): a usage error otherwise, before the file is read."""
    from wirewatch.core.feeds import interval_problem

    problem = interval_problem(value)
    if problem is not None:
        raise click.BadParameter(problem.removeprefix("interval: "), ctx, param)
    return value


@feeds.command("add")
@click.argument("url")
@click.option("--name", help="Outlet name.")
@click.option("--lang", "language", callback=_language, help="Declared language (a hint): fr, en…")
@click.option(
    "--interval", type=float, callback=_feed_interval, help="Seconds between polls (at most a day)."
)
@click.option("--json", "as_json", is_flag=True)
def feeds_add(
    url: str, name: str | None, language: str | None, interval: float | None, as_json: bool
) -> None:
    """Add a feed."""
    from wirewatch.core.feeds import FeedsFileError, add_feed
    from wirewatch.core.ids import InvalidURLError

    settings = _settings()
    path, fetcher = _feeds_file(settings)
    try:
        feed, added = add_feed(path, url, name=name, language=language, interval=interval, warn=_warn)
    except (FeedsFileError, InvalidURLError, ValueError) as exc:
        _fail(str(exc))
    _warn_if_refused(settings, feed.url, fetcher=fetcher)
    if as_json:
        _emit_json(
            {"added": added, "feed": feed.model_dump(exclude={"schema_version"}), "feeds_file": str(path)}
        )
    else:
        said = "added" if added else "already listed"
        click.echo(f"{said}: {feed.url} ({feed.id}) in {path}{_whose(fetcher)}")


def _warn_if_refused(
    settings: Settings, url: str, doing: str = "poll this feed", *, fetcher: RunningFetcher | None = None
) -> None:
    """Warn when the fetcher's SSRF guard refuses ``url``: the running ``fetcher``'s, when the
    feed (or page) is for it, else the guard under these settings. The feed is listed (the page
    requested) all the same, since a fetcher may run, or be started again, with other settings."""
    from wirewatch.fetcher.safety import AddressPolicy, allow_entry, refusal_of

    allowed = settings.fetch_allow_hosts if fetcher is None else fetcher.fetch_allow_hosts
    reason = refusal_of(AddressPolicy.from_entries(allowed), url)
    if reason is None:
        return
    allow = ",".join([*allowed, allow_entry(url)])
    if fetcher is None:
        _warn(
            f"with the current settings the fetcher will not {doing}: {reason}; "
            f"to allow it: WIREWATCH_FETCH_ALLOW_HOSTS={allow}"
        )
    else:
        _warn(
            f"the fetcher of the `wirewatch up` running on {fetcher.data_dir} will not {doing}: {reason}; "
            f"to allow it, start `wirewatch up` again with WIREWATCH_FETCH_ALLOW_HOSTS={allow}"
        )


@feeds.command("list")
@click.option(
    "--fetcher",
    "fetchers",
    multiple=True,
    metavar="URL",
    help="A fetcher's web address (http://host:6066) to ask for each feed's health; repeat for "
    "several. Default: the fetcher of the `wirewatch up` that reads this file, if one runs.",
)
@click.option("--json", "as_json", is_flag=True)
def feeds_list(fetchers: tuple[str, ...], as_json: bool) -> None:
    """List the feeds, each with its health when a fetcher that polls it answers: last good
    poll, items seen, next poll, or why it is failing."""
    from wirewatch.core.feeds import FeedsFileError, load_feeds

    settings = _settings()
    path, fetcher = _feeds_file(settings)
    try:
        listed = load_feeds(path)
    except FeedsFileError as exc:
        _fail(str(exc))
    asked = list(fetchers)
    if not asked and fetcher is not None:
        own = _fetcher_url(settings)
        asked = [own] if own is not None else []
    health = _feeds_health(asked) if asked else None
    if as_json:
        _emit_json(
            [
                f.model_dump(exclude={"schema_version"})
                | ({} if health is None else {"health": health.get(f.url)})
                for f in listed
            ]
        )
        return
    for f in listed:
        click.echo(f"{f.id[:12]}  {f.language or '--':<3} {f.url}  {f.name or ''}")
        if health is not None:
            click.echo(f"{'':14}{_feed_health_line(health.get(f.url))}")
    count = f"{len(listed)} feed{'' if len(listed) == 1 else 's'}" if listed else "no feeds"
    click.echo(f"{count} in {path}{_whose(fetcher)}")
    if asked and health is None:
        _warn(f"no feed health: no answer at {', '.join(f'{u}/feeds' for u in asked)}")


def _feeds_health(fetchers: list[str]) -> dict[str, dict[str, Any]] | None:
    """Each feed's health record by URL, as the fetchers at ``fetchers`` (web addresses) serve
    them at ``/feeds`` (each instance its own feeds); None when none of them answers."""
    from wirewatch.status import service_page

    found: dict[str, dict[str, Any]] | None = None
    for base in fetchers:
        records = service_page(base, "/feeds")
        if records is None:
            continue
        found = found if found is not None else {}
        if isinstance(records, list):
            found.update(
                (r["url"], r) for r in records if isinstance(r, dict) and isinstance(r.get("url"), str)
            )
    return found


def _feed_health_line(record: dict[str, Any] | None) -> str:
    """A feed's health as ``feeds list`` says it, from its ``/feeds`` record (None: no fetcher
    asked reports it: it polls on another instance, or the fetcher has not read the file yet)."""
    from wirewatch.core.dates import iso_datetime

    def when(value: Any) -> str:
        moment = iso_datetime(value)
        return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else "never"

    if record is None:
        return "health unknown: not among the feeds of the fetcher(s) asked"
    failures = int(record.get("consecutive_failures") or 0)
    items = int(record.get("items_seen") or 0)
    seen = f"{items} item{'' if items == 1 else 's'} seen"
    if failures:
        times = "1 poll" if failures == 1 else f"{failures} polls in a row"
        return (
            f"FAILING ({times}): {record.get('last_error') or 'unknown error'}; "
            f"last good poll {when(record.get('last_success'))}; {seen}"
        )
    if not record.get("polls"):
        return f"not polled yet; first poll {when(record.get('next_poll'))}"
    last, upcoming = when(record.get("last_success")), when(record.get("next_poll"))
    return f"ok: last good poll {last}; {seen}; next poll {upcoming}"


@feeds.command("remove")
@click.argument("url_or_id")
@click.option("--json", "as_json", is_flag=True)
def feeds_remove(url_or_id: str, as_json: bool) -> None:
    """Remove a feed by URL or id (or its first six or more characters, as `feeds list` shows it)."""
    from wirewatch.core.feeds import FeedsFileError, load_feeds, remove_feed
    from wirewatch.core.ids import UnknownIdError, complete_id

    path, fetcher = _feeds_file(_settings())
    try:
        listed = {feed.id: feed.url for feed in load_feeds(path)}
        if "://" not in url_or_id:  # an id, or its start as `feeds list` shows it
            try:
                url_or_id = complete_id(
                    url_or_id,
                    listed,
                    "feed",
                    labels=listed,
                    listed_by="wirewatch feeds list",
                    hexadecimal=True,
                )
            except UnknownIdError as exc:
                _fail(str(exc))
        removed = remove_feed(path, url_or_id, warn=_warn)
    except FeedsFileError as exc:
        _fail(str(exc))
    if removed is None:  # an error: nothing on stdout, --json or not
        _fail(f"no feed {url_or_id!r}")
    if as_json:
        _emit_json({"removed": removed.model_dump(exclude={"schema_version"}), "feeds_file": str(path)})
    else:
        click.echo(f"removed: {removed.url} from {path}{_whose(fetcher)}")


@feeds.command("discover")
@click.argument("url")
@click.option("--add", is_flag=True, help="Add every feed and sitemap found to the feeds file.")
@click.option("--json", "as_json", is_flag=True)
def feeds_discover(url: str, add: bool, as_json: bool) -> None:
    """Find a site's feeds (home page <link rel=alternate>) and sitemaps (robots.txt).

    Exits 1 when nothing was found because the site could not be read."""
    from wirewatch.core.feeds import FeedsFileError, add_feed
    from wirewatch.fetcher.discover import discover_site
    from wirewatch.fetcher.errors import FetchError

    settings = _settings()
    path, fetcher = _feeds_file(settings)
    try:
        found = asyncio.run(discover_site(settings, url))
    except FetchError as exc:
        _fail(str(exc))
    added: list[str] = []
    if add:
        try:
            for item in [*found.feeds, *found.sitemaps]:
                feed, new = add_feed(path, item.url, name=item.title, warn=_warn)
                if new:
                    added.append(feed.url)
                    _warn_if_refused(settings, feed.url, fetcher=fetcher)
        except FeedsFileError as exc:
            _fail(str(exc))
    unreadable = bool(found.problems) and not found.feeds and not found.sitemaps  # "none found" is no answer
    if as_json:
        _emit_json({**found.as_dict(), "added": added})
        sys.exit(1 if unreadable else 0)
    for item in [*found.feeds, *found.sitemaps]:
        click.echo(f"{item.kind:<9} {item.url}  {item.title or ''}  ({item.source})")
    if not found.feeds and not found.sitemaps:
        click.echo(f"no feeds or sitemaps found for {found.site}")
    for problem in found.problems:
        click.echo(f"  ! {problem}", err=True)
    if add:
        click.echo(f"added {len(added)} to {path}{_whose(fetcher)}")
    sys.exit(1 if unreadable else 0)


@main.command()
@click.argument("url")
@click.option(
    "--since",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
    help="Only articles dated this day (UTC) or later.",
)
@click.option("--json", "as_json", is_flag=True)
def backfill(url: str, since: Any, as_json: bool) -> None:
    """Pull a site's archive (sitemap index, sitemap or feed) since a date, at low priority.

    The fetcher that polls the site's feeds does it without holding them up; progress is at
    /backfills on its web port.
    """
    from wirewatch.core.ids import InvalidURLError
    from wirewatch.fetcher.backfill import request_backfill

    settings = _settings()
    try:
        request = asyncio.run(request_backfill(settings, url, since))
    except InvalidURLError as exc:
        _fail(str(exc))
    except Exception as exc:
        _fail(f"cannot request the backfill: {exc}")
    if as_json:
        _emit_json(request.model_dump(mode="json"))
    else:
        assert request.since is not None
        click.echo(
            f"backfill {request.id} requested: {request.url} since {request.since.date()} "
            f"(progress: {_fetcher_page(settings, '/backfills')})"
        )


@main.command()
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option("--json", "as_json", is_flag=True)
def ingest(urls: tuple[str, ...], as_json: bool) -> None:
    """Put article pages into the pipeline: a URL someone sent, a story outside the feeds.

    The fetcher that polls the page's site fetches and extracts it as it does a polled article
    (SSRF guard, politeness, size limits), so copies, events and claims treat it like any other.
    A page already fetched (from a feed, a backfill, an earlier ingest) is not fetched again.
    Progress is at /backfills on the fetcher's web port; a page that gives no article is also a
    dead letter (`wirewatch dead-letters --stage fetcher.ingest`).
    """
    from wirewatch.core.ids import InvalidURLError
    from wirewatch.fetcher.backfill import new_article_requests, send_requests
    from wirewatch.local.up import running_fetcher

    settings = _settings()
    try:
        requests = new_article_requests(list(urls))  # every URL checked before any is sent
    except InvalidURLError as exc:
        _fail(str(exc))
    fetcher = running_fetcher(settings)  # the one that fetches the pages, when Kafka is its
    if fetcher is not None and fetcher.kafka_bootstrap != settings.kafka_bootstrap:
        fetcher = None
    for request in requests:
        _warn_if_refused(settings, request.url, "fetch this page", fetcher=fetcher)
    try:
        asyncio.run(send_requests(settings, requests))
    except Exception as exc:
        _fail(f"cannot request the ingest: {exc}")
    if as_json:
        _emit_json([request.model_dump(mode="json") for request in requests])
        return
    for request in requests:
        click.echo(f"ingest {request.id} requested: {request.url}")
    click.echo(
        f"progress: {_fetcher_page(settings, '/backfills')}; "
        "pages that give no article: wirewatch dead-letters --stage fetcher.ingest"
    )


def _fetcher_page(settings: Settings, path: str) -> str:
    """Where the fetcher serves ``path``: its address when a ``wirewatch up`` runs here, else said."""
    base = _fetcher_url(settings)
    return base + path if base is not None else f"{path} on the fetcher's web port"


def _fetcher_url(settings: Settings) -> str | None:
    """The web address of the fetcher of the ``wirewatch up`` running here, or None."""
    from wirewatch.local.up import running_up

    health = ((running_up(settings) or {}).get("services") or {}).get("fetcher", {}).get("health")
    if isinstance(health, str) and health.endswith("/healthz"):
        return health.removesuffix("/healthz")
    return None


@main.command("replay")
@click.option(
    "--from",
    "since",
    required=True,
    help="A date (2026-03-01, 2026-03-01T08:00:00+01:00; UTC unless a zone is given) or date math "
    "(now-7d, now/d): the messages written to the stage's input topic since then are processed again.",
)
@click.option(
    "--stage",
    type=click.Choice(["enricher", "indexer", "alerts"]),
    default="enricher",
    show_default=True,
    help="enricher: the whole analysis (and so everything after it); indexer: the documents; "
    "alerts: claim matching.",
)
@click.option("--dry-run", is_flag=True, help="Show what would move, per partition; commit nothing.")
@click.option(
    "--past-window",
    is_flag=True,
    help="Replay further back than the copies TTL / event window (those articles are decided afresh).",
)
@click.option("--json", "as_json", is_flag=True)
def replay_command(since: str, stage: str, dry_run: bool, past_window: bool, as_json: bool) -> None:
    """Reprocess history after an upgrade: move a stopped stage's consumer group back to a date.

    Stop the stage (every instance) first; start it again after. Output is not duplicated:
    documents are written by id, copies, events and alerts keep their decisions."""
    from wirewatch.replay import ReplayError, describe_plan, kafka_for_replay, parse_since, replay

    try:
        start = parse_since(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--from") from None
    try:
        with kafka_for_replay(Settings()) as settings:
            plan = asyncio.run(
                replay(
                    settings,
                    stage,  # type: ignore[arg-type]
                    start,
                    dry_run=dry_run,
                    past_window=past_window,
                )
            )
    except ReplayError as exc:
        _fail(str(exc))
    except Exception as exc:
        _fail(f"replay failed: {exc}")
    if as_json:
        _emit_json(plan.as_dict())
    else:
        for line in describe_plan(plan):
            click.echo(line)


# --- reading ------------------------------------------------------------------------------------
# ``ignore_unknown_options``: ``-word`` (leave out articles with it) is part of the query
@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("query", nargs=-1, required=True)
@click.option("--lang", callback=_language, help="Only articles in this language (fr, en…).")
@click.option(
    "--since", type=DateBound(), help="Published on or after: a date (2026-03-01) or date math (now-1d)."
)
@click.option(
    "--until", type=DateBound(), help="Published on or before: a date (the whole day) or date math."
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="Only this outlet: its name or its site (lemonde.fr); repeat for several.",
)
@click.option(
    "--sort",
    type=click.Choice(["relevance", "newest"]),
    default="relevance",
    show_default=True,
    help="Best matches first, or most recently published first.",
)
@click.option("--size", default=10, show_default=True, type=click.IntRange(1, MAX_SIZE))
@click.option("--json", "as_json", is_flag=True)
def search(
    query: tuple[str, ...],
    lang: str | None,
    since: str | None,
    until: str | None,
    sources: tuple[str, ...],
    sort: str,
    size: int,
    as_json: bool,
) -> None:
    """Full-text search over indexed articles, with each article's event.

    Every word of QUERY must appear (in the title, description or text; French and English
    words also by their stem): "a phrase" in quotes, a | b for either, -word to leave out.
    """
    from wirewatch.search import search_articles

    _no_unknown_options(query)
    settings = _settings()
    try:
        found = asyncio.run(
            search_articles(
                settings,
                " ".join(query),
                lang=lang,
                since=since,
                until=until,
                sources=sources,
                newest=sort == "newest",
                size=size,
            )
        )
    except Exception as exc:
        _fail(f"search failed: {exc}")
    hits = found.hits
    if as_json:
        _emit_json(hits)
        return
    for hit in hits:
        dup = f"  [duplicate of {hit['duplicate_of'][:12]}]" if hit.get("duplicate_of") else ""
        event = f"  event {hit['event_id']}" if hit.get("event_id") else ""
        click.echo(
            f"{(hit.get('published') or '')[:10]:<10} {hit['language']:<3} {_clip(hit['source'], 24):<24} "
            f"{_clip(hit['title'], 80)}{dup}\n{'':15}{hit['url']}{event}"
        )
    if not hits:
        click.echo("no matches")
    elif found.total > len(hits):
        total = f"{found.total:,}" + ("" if found.exact else "+")
        click.echo(f"{len(hits)} of {total} matches (--size for more)")


def _no_unknown_options(query: tuple[str, ...]) -> None:
    """A query's words may start with ``-`` (leave out); a mistyped ``--option`` is an error."""
    unknown = [word for word in query if word.startswith("--")]
    if unknown:
        raise click.UsageError(f"no such option: {unknown[0]}")


@main.group()
def claims() -> None:
    """The watchlist of tracked claims (a compacted Kafka topic; changes apply without restart)."""


def _labels(pairs: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--label")
        labels[key.strip()] = value.strip()
    return labels


@claims.command("track")
@click.argument("text")
@click.option(
    "--lang", "language", callback=_language, help="Language of the claim (ISO 639-1); detected if omitted."
)
@click.option("--label", "labels", multiple=True, help="key=value, e.g. verdict=false (repeatable).")
@click.option("--keyword", "keywords", multiple=True, help="A phrase that should appear (repeatable).")
@click.option(
    "--threshold", type=click.FloatRange(0, 1), help="Score an alert needs (default: the matcher's)."
)
@click.option("--owner", help="Who tracks it.")
@click.option("--id", "claim_id", help="Id to use (default: a hash of the normalised text).")
@click.option("--json", "as_json", is_flag=True)
def claims_track(
    text: str,
    language: str | None,
    labels: tuple[str, ...],
    keywords: tuple[str, ...],
    threshold: float | None,
    owner: str | None,
    claim_id: str | None,
    as_json: bool,
) -> None:
    """Track a claim: alerts when it comes back, and a search of the last days' articles now.

    A claim tracked already (the same id, or the same text) keeps when it was first tracked, its
    labels and its keywords: the labels given are merged in (a key given again takes the new
    value), the keywords given added, and --lang, --threshold and --owner, when given, replace."""
    from wirewatch.alerts.watchlist import (
        LOWER_CASE_WARNING,
        ClaimLine,
        all_lower_case,
        current,
        merge_claims_file,
        new_claim,
        publish,
    )

    try:
        claim = new_claim(
            text,
            id=claim_id,
            language=language,
            labels=_labels(labels),
            keywords=list(keywords),
            threshold=threshold,
            owner=owner,
        )
    except ValueError as exc:
        _fail(str(exc))
    if all_lower_case(claim.text):
        _warn(f"this claim is {LOWER_CASE_WARNING}")
    settings = _settings()
    # as one line of a claims file: the merge of `claims import`, over the claim it is, if tracked
    [tracked] = merge_claims_file(asyncio.run(current(settings)), [ClaimLine(claim, language, 0)])
    claim = tracked.claim
    asyncio.run(publish(settings, [claim]))
    if as_json:
        _emit_json(claim.model_dump(mode="json"))
    elif tracked.outcome == "new":
        click.echo(f"tracking {claim.id}: {claim.text}")
    else:
        first = f"{claim.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        said = f"already tracked {claim.id} (since {first})"
        if tracked.outcome == "tracked_again":
            said = f"tracking {claim.id} again (first tracked {first})"
        click.echo(f"{said}: {', '.join(tracked.changes) or 'nothing changed'}: {claim.text}")


@claims.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Each claim of the file, with what happened to it.")
def claims_import(path: Path, as_json: bool) -> None:
    """Track every claim of a JSON-lines file: {"text", "id"?, "language"?, "labels"?, "keywords"?, …}.

    Each line is tracked as `claims track` tracks it: a claim tracked already (the same id, or
    the same text) keeps when it was first tracked, its labels and its keywords; the line's
    labels are merged in (a key given again takes the new value), its keywords added, and its
    language, threshold and owner, when given, replace. An untracked claim in the file is
    tracked again; claims not in the file are left as they are (a line without an id is its
    text: edit the text and it is another claim). A file with an error publishes nothing.

    Only the claims the file changes are published: re-importing a file after editing a few
    lines publishes those few. An unchanged claim sent again would find nothing new (the
    retroactive search is per version: text, language, keywords, threshold; an unchanged claim
    is not searched again) but would still cost: every alerts worker embeds each claim
    it reads again and forgets the matches it remembered, and the indexer rewrites it."""
    from collections import Counter

    from wirewatch.alerts.watchlist import (
        LOWER_CASE_WARNING,
        ClaimFileError,
        all_lower_case,
        current,
        merge_claims_file,
        publish,
        read_claims_file,
    )

    try:
        lines = read_claims_file(path)
    except ClaimFileError as exc:
        _fail(str(exc))
    lower = [line.number for line in lines if all_lower_case(line.claim.text)]
    if lower:
        numbers = ", ".join(map(str, lower[:10])) + (", …" if len(lower) > 10 else "")
        _warn(f"{path}: the claims of lines {numbers} are {LOWER_CASE_WARNING}")
    settings = _settings()
    imported = merge_claims_file(asyncio.run(current(settings)), lines)
    changed = [i.claim for i in imported if i.outcome != "unchanged"]
    if changed:
        asyncio.run(publish(settings, changed))
    if as_json:
        _emit_json(
            [
                {
                    "outcome": i.outcome,
                    "changes": i.changes,
                    "lines": i.lines,
                    "claim": i.claim.model_dump(mode="json"),
                }
                for i in imported
            ]
        )
        return
    for item in imported:
        claim = item.claim
        first = f"{claim.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        if item.outcome == "tracked_again":
            said = f"tracking {claim.id} again (first tracked {first})"
        elif item.outcome == "updated":
            said = f"updated {claim.id} (tracked since {first})"
        else:
            continue  # new ones are counted (a first import may hold thousands; --json lists them)
        click.echo(f"{said}: {', '.join(item.changes) or 'nothing changed'}: {claim.text}")
    n = Counter(i.outcome for i in imported)
    again = f", {n['tracked_again']} tracked again" if n["tracked_again"] else ""
    click.echo(f"{n['new']} new, {n['updated']} updated{again}, {n['unchanged']} unchanged (from {path})")


@claims.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also the untracked ones.")
@click.option("--json", "as_json", is_flag=True)
def claims_list(show_all: bool, as_json: bool) -> None:
    """The tracked claims."""
    from wirewatch.alerts.watchlist import current

    found = [c for c in asyncio.run(current(_settings())).values() if show_all or c.active]
    if as_json:
        _emit_json([c.model_dump(mode="json") for c in found])
        return
    for claim in found:
        state = "" if claim.active else "  (untracked)"
        click.echo(f"{claim.id}  {claim.text}{state}\n{'':34}{_claim_details(claim)}")
    if not found:
        click.echo("no tracked claims")


def _claim_details(claim: TrackedClaim) -> str:
    """What decides a claim's matches, on one line: its language, the score a sentence must reach
    (the claim's own threshold, else the matcher's default, said so), keywords, owner, labels."""
    from wirewatch.matching import DEFAULT_THRESHOLD

    if claim.threshold is None:
        threshold = f"threshold {DEFAULT_THRESHOLD:.2f} (default)"
    else:
        threshold = f"threshold {claim.threshold:.2f}"
    parts = [f"language {claim.language or 'unknown'}", threshold]
    if claim.keywords:
        parts.append("keywords " + ", ".join(claim.keywords))
    if claim.owner:
        parts.append(f"owner {claim.owner}")
    if claim.labels:
        parts.append(" ".join(f"{k}={v}" for k, v in claim.labels.items()))
    return " · ".join(parts)


@claims.command("untrack")
@click.argument("claim_id")
def claims_untrack(claim_id: str) -> None:
    """Stop tracking a claim (it stays listed with --all).

    CLAIM_ID is a claim's id, or its first six or more characters. A claim untracked already
    is left as it is, and said so (exit 0: it is untracked, as asked)."""
    from wirewatch.alerts.watchlist import current, publish

    settings = _settings()
    claims = asyncio.run(current(settings))
    claim = claims[_claim_id(claim_id, claims)]
    if not claim.active:  # publishing it again would only make every alerts worker re-read it
        click.echo(f"{claim.id} was already untracked")
        return
    asyncio.run(publish(settings, [claim.model_copy(update={"active": False})]))
    click.echo(f"untracked {claim.id}")


def _claim_id(given: str, claims: dict[str, TrackedClaim]) -> str:
    """The id of the claim (tracked or not) ``given`` is, or starts with; exits if none."""
    from wirewatch.core.ids import UnknownIdError, complete_id

    try:
        labels = {i: c.text for i, c in claims.items()}
        return complete_id(
            given, claims, "tracked claim", labels=labels, listed_by="wirewatch claims list --all"
        )
    except UnknownIdError as exc:
        _fail(str(exc))


@main.group("alerts", invoke_without_command=True)
@click.option(
    "--claim", "claim_id", help="Only this claim's alerts (its id, or its first six characters or more)."
)
@click.option(
    "--event",
    "event_id",
    help="Only the alerts on this event's reports (its id, or its first six characters).",
)
@click.option("--since", type=DateBound(), help="A date (2026-03-01) or date math (now-7d).")
@click.option("--size", default=50, show_default=True, type=click.IntRange(1, MAX_SIZE))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def alerts_command(
    ctx: click.Context,
    claim_id: str | None,
    event_id: str | None,
    since: str | None,
    size: int,
    as_json: bool,
) -> None:
    """Alerts raised, newest first, with their evidence (`alerts resend`: dead-lettered
    deliveries sent again)."""
    if ctx.invoked_subcommand is not None:
        return
    from wirewatch.alerts.watchlist import current
    from wirewatch.core.kafka import KafkaUnavailableError
    from wirewatch.search import EventNotFoundError, list_alerts

    settings = _settings()
    if claim_id is not None:
        try:
            claims = asyncio.run(current(settings))
        except KafkaUnavailableError as exc:  # the alerts are in Elasticsearch: the id as given
            click.echo(f"warning: the watchlist cannot be read ({exc}): claim id taken as given", err=True)
        else:
            claim_id = _claim_id(claim_id, claims)
    try:
        found = asyncio.run(
            list_alerts(settings, claim_id=claim_id, event_id=event_id, since=since, size=size)
        )
    except EventNotFoundError as exc:
        _fail(str(exc))
    except Exception as exc:
        _fail(f"cannot read alerts: {exc}")
    if as_json:
        _emit_json(found)
        return
    for alert in found:
        retro = " (retroactive)" if alert.get("retroactive") else ""
        said = "disputes" if alert.get("stance") == "disputes" else "said  "
        pad = " " * 19
        head = f"{alert['created_at'][:16]}  {alert['score']:.2f}  {alert['source']}"
        click.echo(f"{head}: {_clip(alert['title'], 70)}{retro}")
        click.echo(f"{pad}claim  {_clip(alert['claim_text'], 90)}")
        click.echo(f"{pad}{said} {_clip(alert['sentence'], 90)}")
        click.echo(f"{pad}{alert['url']}")
    if not found:
        click.echo("no alerts")


@alerts_command.command("resend")
@click.argument("letter_ids", nargs=-1, metavar="[DEAD_LETTER_ID]...")
@click.option(
    "--since",
    type=DateBound(),
    help="Every dead-lettered delivery since this date (2026-03-01) or date math (now-1d).",
)
@click.option("--target", help="Only those to a target whose name contains this (slack, a host name).")
@click.option("--json", "as_json", is_flag=True)
def alerts_resend(letter_ids: tuple[str, ...], since: str | None, target: str | None, as_json: bool) -> None:
    """Send dead-lettered alert deliveries again, once their target is fixed.

    DEAD_LETTER_ID: as `wirewatch dead-letters --stage alerts.deliver` shows it (its first six
    characters will do). The alerts service sends each to its one target, as it sends a new
    alert: the same delivery id and body, signed afresh; parked while the target is down, a dead
    letter again if it still fails. A dead letter is sent again once, however often it is asked."""
    from wirewatch.alerts.resend import find_letters, plan, send_requests
    from wirewatch.core.ids import UnknownIdError

    if not letter_ids and since is None:
        raise click.UsageError("give dead letter ids, or --since")
    settings = _settings()
    try:
        letters = asyncio.run(find_letters(settings, letter_ids, since))
    except UnknownIdError as exc:
        _fail(str(exc))
    except Exception as exc:
        _fail(f"cannot read dead letters: {exc}")
    plans = plan(letters, target)
    named = set(letter_ids)
    for resend in plans:
        if resend.problem and any(resend.letter.id.startswith(given.strip().lower()) for given in named):
            _fail(f"dead letter {resend.letter.id} cannot be sent again: {resend.problem}")
    requests = [resend.request for resend in plans if resend.request is not None]
    if requests:
        try:
            asyncio.run(send_requests(settings, requests))
        except Exception as exc:
            _fail(f"cannot request the resends: {exc}")
    if as_json:
        _emit_json([resend.as_dict() for resend in plans])
        return
    for resend in plans:
        if resend.request is not None:
            click.echo(f"resend requested  {resend.letter.id}  alert {resend.request.batch.id}")
            click.echo(f"{'':18}to {resend.request.target}")
        else:
            click.echo(f"not sent again    {resend.letter.id}  {resend.problem}")
    if requests:
        click.echo(
            f"{_counted(len(requests), 'resend')} requested: the alerts service sends each to its target "
            "(wirewatch status shows the targets; one that fails again is a dead letter again)"
        )
    else:
        click.echo("no dead-lettered alert deliveries to send again")


@main.command("dead-letters")
@click.option("--since", type=DateBound(), help="A date (2026-03-01) or date math (now-1d).")
@click.option(
    "--stage", help="Only this stage's (fetcher.feed), or a service's (fetcher: each of its stages)."
)
@click.option("--size", default=50, show_default=True, type=click.IntRange(1, MAX_SIZE))
@click.option("--json", "as_json", is_flag=True, help="Each dead letter as stored, its payload too.")
def dead_letters_command(since: str | None, stage: str | None, size: int, as_json: bool) -> None:
    """What failed, newest first: when, in which stage, why, and on what."""
    from wirewatch.search import list_dead_letters

    try:
        found = asyncio.run(
            list_dead_letters(_settings(), since=since, stage=stage, size=size, payload=as_json)
        )
    except Exception as exc:
        _fail(f"cannot read dead letters: {exc}")
    if as_json:
        _emit_json(found)
        return
    for letter in found:
        what = letter.get("url") or letter.get("feed_url") or letter.get("key")
        click.echo(f"{letter['created_at'][:16]}  {letter['stage']}  {letter['id']}")
        for line in _wrapped(letter["reason"], 92):  # the whole reason: its end says why
            click.echo(f"{'':18}{line}")
        if what:
            click.echo(f"{'':18}{_clip(what, 110)}")
    if not found:
        click.echo("no dead letters")


@main.command("events", context_settings={"ignore_unknown_options": True})  # -word, as in search
@click.argument("query", nargs=-1)
@click.option(
    "--since",
    type=DateBound(),
    default="now-7d",
    show_default=True,
    help="Last report on or after: a date or now-2d.",
)
@click.option("--lang", callback=_language, help="Only events with reports in this language (ISO 639-1).")
@click.option(
    "--sort",
    type=click.Choice(["recent", "reports", "sources"]),
    default="recent",
    show_default=True,
    help="Most recently active, most reports or most outlets first.",
)
@click.option("--size", default=20, show_default=True, type=click.IntRange(1, MAX_SIZE))
@click.option("--json", "as_json", is_flag=True)
def events_command(
    query: tuple[str, ...], since: str, lang: str | None, sort: str, size: int, as_json: bool
) -> None:
    """Events (clusters of reports), most recently active first (or --sort reports: the
    biggest stories of the period, --sort sources: the most widely reported).

    With QUERY, only events with a report that has every word of it, in any of their
    languages (the syntax of search: "a phrase", a | b, -word)."""
    from wirewatch.search import list_events

    _no_unknown_options(query)
    try:
        found = asyncio.run(
            list_events(_settings(), query=" ".join(query), since=since, lang=lang, size=size, sort=sort)
        )
    except Exception as exc:
        _fail(f"cannot read events: {exc}")
    if as_json:
        _emit_json(found)
        return
    for event in found:
        # Reports in the last hour, as of now (list_events counts them from the reports per hour).
        growth = f"+{event['reports_last_hour']}/h" if event.get("reports_last_hour") else ""
        claims = f"  {event['claim_count']} tracked claim(s)" if event.get("claim_count") else ""
        reports, sources = (
            _counted(event["article_count"], "report"),
            _counted(event["source_count"], "source"),
        )
        click.echo(
            f"{event['id']}  {event['last_seen'][:16]}  {reports:>12} {sources:>11}  "
            f"{','.join(event.get('languages', []))} {growth}"
        )
        click.echo(f"{'':34}{_clip(event['label'], 90)}{claims}")
    if not found:
        click.echo("no events")


def _clip(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, a cut one ending in "…" (never run into the next
    column: "…near D first" read as a word of the title)."""
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _wrapped(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters (a longer word on a line of its own),
    its own line breaks kept: nothing cut."""
    return [
        wrapped
        for line in text.splitlines() or [""]
        for wrapped in textwrap.wrap(line, width, break_long_words=True, break_on_hyphens=False) or [""]
    ]


def _counted(n: int, noun: str) -> str:
    """``"1 report"``, ``"4 reports"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@main.command("event")
@click.argument("event_id")
@click.option("--json", "as_json", is_flag=True)
def event_command(event_id: str, as_json: bool) -> None:
    """One event: what it is and its articles in time order, copies marked.

    EVENT_ID is an event's id, or its first six or more characters."""
    from wirewatch.search import EventNotFoundError, event_report

    try:
        report = asyncio.run(event_report(_settings(), event_id))
    except EventNotFoundError as exc:
        _fail(str(exc))
    except Exception as exc:
        _fail(f"cannot read the event: {exc}")
    if as_json:
        _emit_json(report)
        return
    if report["requested_id"] != report["id"]:
        click.echo(f"{report['requested_id']} was merged into {report['id']}")
    click.echo(f"{report['label']}\n{report.get('summary', '')}")
    click.echo(
        f"{_counted(report['article_count'], 'report')} from {_counted(report['source_count'], 'source')} "
        f"({', '.join(report.get('languages', []))}), "
        f"{report['first_seen'][:16]} to {report['last_seen'][:16]}"
    )
    if report.get("split_from"):
        click.echo(f"  split from event {report['split_from']} (its first reports were another event)")
    for claim in report.get("claims", []):
        click.echo(f"  tracked claim: {_clip(claim, 100)}")
    for other in report.get("related_events", []):
        reports, last = _counted(other["article_count"], "report"), other["last_seen"][:10]
        click.echo(f"  related event: {other['id']}  {reports}, last {last}  {_clip(other['label'], 70)}")
    for article in report["articles"]:
        when = (article.get("published") or article.get("fetched_at") or "")[:16]
        if article.get("duplicate_of"):
            mark = f"copy of {article['duplicate_of'][:12]}"
        elif article.get("reused_from"):
            mark = f"reuses {', '.join(r[:12] for r in article['reused_from'])}"
        elif article["id"] == report.get("earliest_article_id"):
            mark = "first"
        else:
            mark = ""
        source, title = _clip(article["source"], 24), _clip(article["title"], 60)
        click.echo(f"{when:<16}  {article['language']:<3} {source:<24} {title:<60}  {mark}".rstrip())
        click.echo(f"{'':18}{article['url']}")


@main.command()
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """Topic sizes, consumer lag, index counts and service health.

    Exits 1 when Kafka, Elasticsearch or a service does not answer (for scripts and probes)."""
    from wirewatch.status import collect_status

    settings = _settings()
    report = asyncio.run(collect_status(settings))
    answering = not report["errors"] and all(info["healthy"] for info in report["services"].values())
    if as_json:
        _emit_json(report)
        sys.exit(0 if answering else 1)
    click.echo("Topics")
    for t in report["topics"]:
        click.echo(f"  {t['topic']:<32} {t['messages']:>8} messages  {t['partitions']} partitions")
    click.echo("Consumer lag")
    for g in report["lag"]:
        click.echo(f"  {g['group']:<24} {g['topic']:<32} lag {g['lag']}")
    click.echo("Elasticsearch")
    for name, count in report["indices"].items():
        click.echo(f"  {name:<32} {count:>8} documents")
    if report["services"]:
        click.echo("Services")
        for name, info in report["services"].items():
            click.echo(f"  {name:<12} {'healthy' if info['healthy'] else 'DOWN':<8} {info['health']}")
            if "alert_targets" in info:
                for line in _alert_target_lines(info["alert_targets"]):
                    click.echo(f"    {line}")
            for problem, text in info.get("warnings", {}).items():
                click.echo(f"    ! {problem}: " + "\n      ".join(text.splitlines()))
    for error in report["errors"]:
        click.echo(f"  ! {error}")
    sys.exit(0 if answering else 1)


def _alert_target_lines(targets: list[dict[str, Any]]) -> list[str]:
    """``wirewatch status``'s line for each alert target (its kind and host, and how it fares);
    why one fails is the ``alert_targets`` warning under it."""
    from wirewatch.core.alert_targets import NO_TARGETS

    if not targets:
        return [f"alert targets: {NO_TARGETS}"]
    width = max(len(target["target"]) for target in targets)
    lines = []
    for target in targets:
        delivered = target.get("last_delivered_at")
        last = f"last delivered {delivered}" if delivered else "nothing delivered yet"
        parked = f"{target['parked']} parked for retry" if target.get("parked") else ""
        failing = target.get("state") == "failing"
        head = f"FAILING since {target['failing_since']}" if failing else "ok"
        state = ", ".join(part for part in (head, parked, last) if part)
        lines.append(f"alert target {target['target']:<{width}}  {state}")
    return lines


@main.group()
def schemas() -> None:
    """JSON Schemas and index templates generated from the models."""


@schemas.command("export")
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path), default=Path("schemas"), show_default=True
)
@click.option("--check", is_flag=True, help="Fail if the files differ from the models instead of writing.")
def schemas_export(directory: Path, check: bool) -> None:
    """Write schemas/json/*.schema.json and schemas/elasticsearch/*.template.json."""
    from wirewatch.core.mappings import export_schemas, rendered_schemas

    if check:
        stale = [
            rel
            for rel, text in rendered_schemas().items()
            if not (directory / rel).exists() or (directory / rel).read_text(encoding="utf-8") != text
        ]
        if stale:
            _fail(f"out of date: {', '.join(stale)} (run `wirewatch schemas export`)")
        click.echo("schemas are up to date")
        return
    for path in export_schemas(directory):
        click.echo(str(path))


# --- evaluation ---------------------------------------------------------------------------------
@main.group("eval")
def eval_group() -> None:
    """Offline evaluation on saved pages (no servers needed)."""
    from wirewatch.runner import limit_compute_threads

    limit_compute_threads(Settings().compute_threads)  # the services' code, run as they run it


@eval_group.command("extract")
@click.option(
    "--html-dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory of saved pages: *.html and *.html.gz.",
)
@click.option(
    "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="JSON file to write."
)
@click.option("--workers", type=click.IntRange(min=1), help="Processes (default: one per core).")
def eval_extract(html_dir: Path, output: Path, workers: int | None) -> None:
    """Extract every saved page with the fetcher's extraction; write {id: {"articleBody": text}}.

    The id is the file name without .html / .html.gz. A page where extraction fails gets ""
    and is reported on stderr.
    """
    import time

    from wirewatch.evaluation import extract_files, html_files

    paths = html_files(html_dir)
    started = time.perf_counter()
    results = list(extract_files(paths, workers=workers))
    elapsed = time.perf_counter() - started
    failed = [r for r in results if r.error is not None]
    for result in failed:
        click.echo(f"no text: {result.id}: {result.error}", err=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps({r.id: {"articleBody": r.text} for r in results}, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    click.echo(
        f"{len(results)} pages, {len(failed)} without text, in {elapsed:.1f} s; wrote {output}", err=True
    )


@eval_group.command("claims")
@click.option(
    "--claims",
    "claims_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON lines {"id","text"} (optional "keywords", "language", "threshold").',
)
@click.option(
    "--queries",
    "queries_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON lines {"id","text"} (optional "language").',
)
@click.option("--top", default=5, show_default=True, type=click.IntRange(min=1), help="Claims per query.")
@click.option(
    "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Run file to write."
)
def eval_claims(claims_path: Path, queries_path: Path, top: int, output: Path) -> None:
    """Rank claims for each query with the stream's claim matcher; write a run file.

    Lines: query_id<TAB>claim_id<TAB>rank<TAB>score, best first, score calibrated in [0, 1].
    """
    import time

    from wirewatch.matching import ClaimMatcher
    from wirewatch.matching.evaluation import read_claims, read_queries, run_claims, write_run

    try:
        claims, queries = read_claims(claims_path), read_queries(queries_path)
    except ValueError as exc:  # bad JSON or a line without id / text
        _fail(str(exc))
    started = time.perf_counter()
    matcher = ClaimMatcher()
    matcher.upsert_many(claims)
    output.parent.mkdir(parents=True, exist_ok=True)
    lines = write_run(run_claims(matcher, queries, top), output)
    elapsed = time.perf_counter() - started
    click.echo(
        f"{len(matcher)} claims, {len(queries)} queries, {lines} run lines in {elapsed:.1f} s; "
        f"wrote {output}",
        err=True,
    )


#: The input and output of the offline evaluations that replay documents through a stream stage.
_documents_input = click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON lines {"id","title","text","published","lang"}, in stream order.',
)
_jsonl_output = click.option(
    "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="JSON lines to write."
)


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write ``rows`` as JSON lines (creating the folder); return them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            written.append(row)
    return written


@eval_group.command("dedup")
@_documents_input
@_jsonl_output
def eval_dedup(input_path: Path, output: Path) -> None:
    """Duplicates and text reuse, decided by the enricher's own code and defaults.

    Writes one line per document: {"id", "duplicate_of": id|null, "similarity",
    "reuses": [{"id", "share", "source_share"}]}.
    """
    from wirewatch.enricher.offline import DocumentError, dedup_rows, read_documents

    try:
        rows = _write_jsonl(output, dedup_rows(read_documents(input_path)))
    except DocumentError as exc:
        _fail(str(exc))
    duplicates = sum(row["duplicate_of"] is not None for row in rows)
    reusing = sum(bool(row["reuses"]) for row in rows)
    click.echo(
        f"{len(rows)} documents, {duplicates} duplicates, {reusing} reusing earlier text; wrote {output}",
        err=True,
    )


@eval_group.command("cluster")
@_documents_input
@_jsonl_output
def eval_cluster(input_path: Path, output: Path) -> None:
    """Events, decided by the indexer's own linking code and defaults (after the enricher's).

    Writes one line per document, in input order: {"id", "cluster"}, the cluster being the
    id of the document's event at the end of the stream (merged events under their survivor).
    """
    import time

    from wirewatch.enricher.offline import DocumentError, read_documents
    from wirewatch.events.offline import cluster_rows

    started = time.perf_counter()
    try:
        rows = cluster_rows(read_documents(input_path))
    except DocumentError as exc:
        _fail(str(exc))
    _write_jsonl(output, rows)
    click.echo(
        f"{len(rows)} documents, {len({r['cluster'] for r in rows})} events in "
        f"{time.perf_counter() - started:.1f} s; wrote {output}",
        err=True,
    )


if __name__ == "__main__":
    main()
