"""The feeds file: a YAML list of feeds to poll, edited by ``wirewatch feeds …``.

A feed URL may serve RSS, Atom, JSON Feed, an XML sitemap, a sitemap index or a Google News
sitemap (gzipped or not): the fetcher tells them apart by their content.
``wirewatch feeds discover URL --add`` adds what a site's home page and robots.txt announce.

Format::

    feeds:
      - url: https://www.example.org/rss.xml
        name: Example News        # optional
        language: fr              # optional hint
        interval: 600             # optional, seconds (at most a day)

Each feed is listed once (one canonical URL, one feed id). A file with an entry that is not
valid is refused whole, naming the entry: ``wirewatch up`` does not start on it, and a running
fetcher keeps the feeds it last published.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from wirewatch.core.files import write_atomically
from wirewatch.core.ids import InvalidURLError, canonical_url, feed_id
from wirewatch.core.models import Feed

#: The longest ``interval`` a feed may set, in seconds: a day, 24 times the longest adaptive
#: interval by default (``poll_interval_max``). A failing feed backs off to 8 intervals at most,
#: so it is polled again well within the 30 days its articles' ids are remembered
#: (``fetch_seen_ttl_days``); and an interval stays a time a clock or date can add.
MAX_FEED_INTERVAL = 86_400.0


class FeedsFileError(ValueError):
    """The feeds file cannot be read or is not in the expected shape."""


def interval_problem(interval: float | None) -> str | None:
    """Why a feed's ``interval`` is refused (not finite, longer than a day), or None."""
    if interval is None or interval <= MAX_FEED_INTERVAL:  # (False for inf and nan)
        return None
    return f"interval: {interval:g} seconds is more than a day (at most {MAX_FEED_INTERVAL:g})"


def load_feeds(path: Path) -> list[Feed]:
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise FeedsFileError(f"cannot read feeds file {path}: {exc}") from exc
    entries = (data.get("feeds") or []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise FeedsFileError(f"{path}: expected a mapping with a 'feeds' list")
    feeds: list[Feed] = []
    positions: dict[str, int] = {}  # feed id -> its entry's number
    for n, entry in enumerate(entries, 1):
        if isinstance(entry, str):
            entry = {"url": entry}
        if not isinstance(entry, dict) or "url" not in entry:
            raise FeedsFileError(f"{path}: feed #{n} needs a 'url'")
        if not isinstance(entry["url"], str):  # (never str() it: a YAML alias bomb expands)
            raise FeedsFileError(f"{path}: feed #{n}: 'url' must be a string")
        # The id is always the URL's (an ``id:`` in the file is not used); keys that are not
        # strings (``1: 2``) are ignored like any unknown key.
        fields = {str(key): value for key, value in entry.items()}
        try:
            feed = Feed.model_validate({**fields, "id": feed_id(entry["url"])})
        except InvalidURLError as exc:
            raise FeedsFileError(f"{path}: feed #{n}: {exc}") from exc
        except ValidationError as exc:  # named by field; pydantic's text would repr the whole input
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)[:5]
            )
            raise FeedsFileError(f"{path}: feed #{n}: {problems}") from exc
        problem = interval_problem(feed.interval)
        if problem is not None:
            raise FeedsFileError(f"{path}: feed #{n}: {problem}")
        if feed.id in positions:  # the same canonical URL: which entry's name or interval?
            raise FeedsFileError(
                f"{path}: feed #{n} is feed #{positions[feed.id]} again ({feed.url}): list each feed once"
            )
        positions[feed.id] = n
        feeds.append(feed)
    return feeds


def save_feeds(path: Path, feeds: list[Feed]) -> None:
    entries: list[dict[str, Any]] = []
    for feed in feeds:
        entry: dict[str, Any] = {"url": feed.url}
        for key in ("name", "language", "interval"):
            value = getattr(feed, key)
            if value is not None:
                entry[key] = value
        entries.append(entry)
    write_atomically(path, yaml.safe_dump({"feeds": entries}, allow_unicode=True, sort_keys=False))


def add_feed(
    path: Path, url: str, name: str | None = None, language: str | None = None, interval: float | None = None
) -> tuple[Feed, bool]:
    """Add a feed; returns (feed, added). An existing feed (same canonical URL) is kept."""
    problem = interval_problem(interval)
    if problem is not None:
        raise ValueError(problem)
    feeds = load_feeds(path)
    new = Feed(id=feed_id(url), url=url, name=name, language=language, interval=interval)
    for feed in feeds:
        if feed.id == new.id:
            return feed, False
    feeds.append(new)
    save_feeds(path, feeds)
    return new, True


def remove_feed(path: Path, url_or_id: str) -> Feed | None:
    feeds = load_feeds(path)
    try:
        wanted = {url_or_id, feed_id(url_or_id), canonical_url(url_or_id)}
    except InvalidURLError:
        wanted = {url_or_id}
    for feed in feeds:
        if feed.id in wanted or feed.url in wanted:
            save_feeds(path, [f for f in feeds if f.id != feed.id])
            return feed
    return None
