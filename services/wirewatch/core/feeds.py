"""The feeds file: a YAML list of feeds to poll, edited by ``wirewatch feeds …``.

A feed URL may serve RSS, Atom, JSON Feed, an XML sitemap, a sitemap index or a Google News
sitemap (gzipped or not): the fetcher tells them apart by their content.
``wirewatch feeds discover URL --add`` adds what a site's home page and robots.txt announce.

Format::

    feeds:
      - url: https://www.example.org/rss.xml
        name: Example News        # optional
        language: fr              # optional hint
        interval: 600             # optional, seconds (more than 0, at most a day)

Each feed is listed once (one canonical URL, one feed id). A file with an entry that is not
valid is refused whole, naming the entry: ``wirewatch up`` does not start on it, and a running
fetcher keeps the feeds it last published.

``feeds add`` and ``feeds remove`` edit the file in place: the user's comments, blank lines and
layout are kept (see "editing the file in place" below).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from wirewatch.core.files import write_atomically
from wirewatch.core.ids import InvalidURLError, canonical_url, feed_id
from wirewatch.core.models import Feed

_log = logging.getLogger(__name__)

#: The longest ``interval`` a feed may set, in seconds: a day, 24 times the longest adaptive
#: interval by default (``poll_interval_max``). A failing feed backs off to 8 intervals at most,
#: so it is polled again well within the 30 days its articles' ids are remembered
#: (``fetch_seen_ttl_days``); and an interval stays a time a clock or date can add.
MAX_FEED_INTERVAL = 86_400.0


class FeedsFileError(ValueError):
    """The feeds file cannot be read or is not in the expected shape."""


def interval_problem(interval: float | None) -> str | None:
    """Why a feed's ``interval`` is refused (not a number, not more than 0, longer than a day:
    the bounds the feed model and the file keep), or None."""
    if interval is None or 0 < interval <= MAX_FEED_INTERVAL:  # (False for nan)
        return None
    if math.isnan(interval):
        return (
            f"interval: {interval:g} is not a number of seconds (more than 0, at most {MAX_FEED_INTERVAL:g})"
        )
    if interval <= 0:
        return f"interval: {interval:g} seconds is not more than 0 (at most {MAX_FEED_INTERVAL:g})"
    return f"interval: {interval:g} seconds is more than a day (at most {MAX_FEED_INTERVAL:g})"


def load_feeds(path: Path) -> list[Feed]:
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise FeedsFileError(f"cannot read feeds file {path}: {exc}") from exc
    return _feeds_in(path, data)


def _feeds_in(path: Path, data: Any) -> list[Feed]:
    """The feeds of a feeds file's parsed YAML (``path`` names it in errors): FeedsFileError
    when it is not a mapping with a 'feeds' list, or an entry is not a valid feed."""
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
    """Write the whole file from ``feeds``, in the documented format (the file's comments, layout
    and any other keys are not kept: ``add_feed`` and ``remove_feed`` edit it in place instead)."""
    entries: list[dict[str, Any]] = []
    for feed in feeds:
        entries.append(_entry(feed))
    write_atomically(path, yaml.safe_dump({"feeds": entries}, allow_unicode=True, sort_keys=False))


def _entry(feed: Feed) -> dict[str, Any]:
    """A feed as the file lists it: its URL, and its name, language and interval when set. A
    whole number of seconds is written as one (``interval: 15``, as a user writes it, not the
    ``15.0`` the model holds); a fraction as it is (``7.5``)."""
    entry: dict[str, Any] = {"url": feed.url}
    for key in ("name", "language", "interval"):
        value = getattr(feed, key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if value is not None:
            entry[key] = value
    return entry


def add_feed(
    path: Path,
    url: str,
    name: str | None = None,
    language: str | None = None,
    interval: float | None = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[Feed, bool]:
    """Add a feed; returns (feed, added). An existing feed (same canonical URL) is kept.

    The entry is appended to the file's ``feeds:`` list, the rest of the file kept byte for byte
    (see ``_edit``); ``warn`` is told when the file had to be rewritten whole instead."""
    problem = interval_problem(interval)
    if problem is not None:
        raise ValueError(problem)
    feeds = load_feeds(path)
    new = Feed(id=feed_id(url), url=url, name=name, language=language, interval=interval)
    for feed in feeds:
        if feed.id == new.id:
            return feed, False
    _edit(path, feeds, [*feeds, new], added=new, warn=warn)
    return new, True


def remove_feed(path: Path, url_or_id: str, warn: Callable[[str], None] | None = None) -> Feed | None:
    """Remove a feed (by URL, in any form with the same canonical URL, or by id); returns it, or
    None when it is not listed. Only its entry's lines go (see ``_edit``); ``warn`` is told when
    the file had to be rewritten whole instead."""
    feeds = load_feeds(path)
    try:
        wanted = {url_or_id, feed_id(url_or_id), canonical_url(url_or_id)}
    except InvalidURLError:
        wanted = {url_or_id}
    for n, feed in enumerate(feeds):
        if feed.id in wanted or feed.url in wanted:
            _edit(path, feeds, [f for f in feeds if f.id != feed.id], removed=n, warn=warn)
            return feed
    return None


# --- editing the file in place -------------------------------------------------------------------
#
# ``feeds add`` and ``feeds remove`` edit the file's text rather than dump the list again, so the
# user's comments ("# paywalled, poll slowly"), blank lines, key order and quoting stay. The edit
# knows one shape, the block list the documentation shows (at any indentation, plain-URL entries
# or mappings):
#
#     # a comment anywhere
#     feeds:                      # or `feeds: []`, or `feeds:` with no entry yet
#       - url: https://…          # an entry: its `-` line, then lines indented more than the `-`
#         name: …
#         # a comment inside the entry goes with it
#       # this comment, at the `-`'s indentation or less, or after a blank line, stays
#       - https://…
#     other: …                    # anything else in the file is left alone
#
# Adding appends an entry after the last one (after the comment lines, indented more than its
# `-`, that directly follow it), indented like the first entry (or `  - ` when there is none
# yet, after any indented comment lines right under `feeds:`); a file without a `feeds:` key
# gets one at its end. Removing deletes the entry's lines and the comment lines indented more
# than its `-` that directly follow it; a comment line above the entry (often about the next
# one, or a commented-out entry) is kept: deleting a user's words we are not sure of is worse
# than leaving one behind. So adding a feed then removing it gives back the file byte for byte.
#
# The edited text is parsed again before it is written: it must load (``load_feeds``'s checks)
# to exactly the expected feeds, and hold the same data as before apart from the one entry. In
# any other case (a flow list `feeds: [a, b]`, anchors and aliases, an entry the line scan does
# not read as YAML does) the file is rewritten whole, as ``save_feeds`` does, and ``warn`` says
# its comments were not kept: the command does what it was asked, as it did before the edit in
# place existed, rather than refuse a file it accepts everywhere else; and the rewritten file is
# (but for a value on several lines) in the shape the next edit keeps comments in.


class _Unsupported(Exception):
    """The file's layout is not one the line edit handles; the message says why."""


_HEADER = re.compile(r"feeds[ \t]*:(?P<empty>[ \t]+\[[ \t]*\])?(?P<comment>[ \t]+#.*)?[ \t]*")
_DEFAULT_INDENT = 2  # the documented format: `  - url: …`


def _edit(
    path: Path,
    before: list[Feed],
    after: list[Feed],
    *,
    added: Feed | None = None,
    removed: int | None = None,
    warn: Callable[[str], None] | None,
) -> None:
    try:
        text = _edited(path, before, after, added=added, removed=removed)
    except _Unsupported as exc:
        save_feeds(path, after)
        message = f"{path} was rewritten whole, without its comments or layout ({exc})"
        (warn or _log.warning)(message)
        return
    write_atomically(path, text)


def _edited(
    path: Path, before: list[Feed], after: list[Feed], *, added: Feed | None, removed: int | None
) -> str:
    """The file's text with ``added`` appended or entry number ``removed`` (from 0) taken out,
    checked to load as ``after``; raises _Unsupported when it cannot be done safely."""
    try:
        with path.open(encoding="utf-8", newline="") as file:  # (no newline translation)
            text = file.read()
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise _Unsupported(f"cannot read it again: {exc}") from exc
    old, root = _parsed(text)
    try:
        if not isinstance(old, dict | None) or _feeds_in(path, old or {}) != before:
            raise _Unsupported("it changed while being edited")
    except FeedsFileError as exc:
        raise _Unsupported("it changed while being edited") from exc
    old_entries = list((old or {}).get("feeds") or [])
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    text = text.removeprefix(bom)
    nl = "\r\n" if "\r\n" in text else "\n"
    if "\r" in text.replace("\r\n", "") or any(c in text for c in "\x85\u2028\u2029"):
        raise _Unsupported("it has line breaks other than LF or CRLF")
    final_nl = not text or text.endswith("\n")  # (kept: a file without one still ends without)
    lines = _split(text if final_nl else text + nl)
    layout = _Layout.scan(
        lines, nl, _entry_lines(root), has_feeds_key=isinstance(old, dict) and "feeds" in old
    )
    if len(layout.entries) != len(old_entries):
        raise _Unsupported("its 'feeds' entries are not each a `- …` line and more indented lines")

    if added is not None:
        entry = _entry(added)
        plain = len(entry) == 1 and bool(old_entries) and all(isinstance(e, str) for e in old_entries)
        new_entries: list[Any] = [*old_entries, entry["url"] if plain else entry]
        new_lines = layout.add(_entry_text(entry["url"] if plain else entry, layout))
    elif removed is not None:
        new_entries = old_entries[:removed] + old_entries[removed + 1 :]
        new_lines = layout.remove(removed)
    else:  # pragma: no cover (one or the other)
        raise _Unsupported("nothing to do")
    new_text = "".join(new_lines)
    if not final_nl:
        new_text = new_text.removesuffix(nl)
    new_text = bom + new_text

    new, _ = _parsed(new_text)
    if not isinstance(new, dict) or (new.get("feeds") or []) != new_entries:
        raise _Unsupported("the edit did not read back as expected")
    if {k: v for k, v in new.items() if k != "feeds"} != {
        k: v for k, v in (old or {}).items() if k != "feeds"
    }:
        raise _Unsupported("the edit did not read back as expected")
    try:
        if _feeds_in(path, new) != after:
            raise _Unsupported("the edit did not read back as expected")
    except FeedsFileError as exc:  # (never write a file load_feeds refuses)
        raise _Unsupported(f"the edit did not read back as expected: {exc}") from exc
    return new_text


def _parsed(text: str) -> tuple[Any, yaml.Node | None]:
    """The YAML data of ``text``, and its node (which says where each part of it is in the
    text); _Unsupported when it uses anchors or aliases (an entry may define what another part
    of the file refers to; and comparing the data an alias bomb expands would never end)."""
    try:
        for token in yaml.scan(text):
            if isinstance(token, yaml.AnchorToken | yaml.AliasToken):
                raise _Unsupported("it uses YAML anchors or aliases")
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            return (loader.construct_document(node) if node is not None else None), node
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _Unsupported(f"it does not parse as expected: {exc}") from exc


def _entry_lines(root: yaml.Node | None) -> list[tuple[int, int]]:
    """For each entry of the ``feeds`` list (in block style) of a parsed file, the first and
    the last line its values are on (from 0), as the YAML parser saw them."""
    if not isinstance(root, yaml.MappingNode):
        return []
    lists = [value for key, value in root.value if isinstance(key, yaml.ScalarNode) and key.value == "feeds"]
    if not lists or not isinstance(lists[-1], yaml.SequenceNode):
        return []
    spans = []
    for item in lists[-1].value:
        leaves = list(_leaves(item))
        spans.append((min(first for first, _ in leaves), max(last for _, last in leaves)))
    return spans


def _leaves(node: yaml.Node) -> Iterator[tuple[int, int]]:
    """The first and last lines of a node's scalars and flow collections (a block collection's
    end is where the next token starts, after any comment lines: not where its text ends)."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        end = node.end_mark
        yield node.start_mark.line, end.line if end.column > 0 else end.line - 1
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _leaves(key)
            yield from _leaves(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _leaves(item)


def _split(text: str) -> list[str]:
    """The lines of ``text`` (which ends in a line break, or is empty), each with its break."""
    return [line + "\n" for line in text.split("\n")[:-1]]


def _kind(line: str) -> tuple[str, int]:
    """A line's kind ("blank", "comment" or "content") and indentation (spaces before it)."""
    body = line.rstrip("\r\n")
    stripped = body.lstrip(" ")
    indent = len(body) - len(stripped)
    if not stripped.strip(" \t"):
        return "blank", indent
    if stripped.lstrip("\t").startswith("#"):
        return "comment", indent
    return "content", indent


def _is_item(line: str) -> bool:
    """Whether a content line starts a block list item (``- …`` or ``-`` alone)."""
    stripped = line.rstrip("\r\n").lstrip(" ")
    return stripped == "-" or stripped.startswith(("- ", "-\t"))


class _Layout:
    """Where the ``feeds:`` list of a file's lines is: its header line, its entries' line ranges
    (each: the ``-`` line to the end of the comment lines that follow it and belong to it), the
    entries' indentation and where their keys start after the ``-``."""

    def __init__(self, lines: list[str], nl: str) -> None:
        self.lines = lines
        self.nl = nl
        self.header: int | None = None
        self.empty_flow = False  # `feeds: []`
        self.indent = _DEFAULT_INDENT
        self.offset = 2  # from the `-` to the entry's first key: `- url`
        self.entries: list[tuple[int, int]] = []  # [start, end) line ranges

    @classmethod
    def scan(
        cls, lines: list[str], nl: str, parsed: list[tuple[int, int]], *, has_feeds_key: bool
    ) -> _Layout:
        """The layout of ``lines``, whose feeds entries' values are on the ``parsed`` lines (see
        ``_entry_lines``); _Unsupported when the list is not in the shape the edit knows, or an
        entry's lines as scanned here are not where the YAML parser found its values."""
        layout = cls(lines, nl)
        headers = [n for n, line in enumerate(lines) if _HEADER.fullmatch(line.rstrip("\r\n"))]
        if len(headers) > 1:
            raise _Unsupported("it has more than one 'feeds:' line")
        if not headers:
            if has_feeds_key:
                raise _Unsupported("its 'feeds' list is not in the block style: `feeds:`, then `- …` lines")
            return layout  # no feeds yet: a header is appended
        layout.header = headers[0]
        match = _HEADER.fullmatch(lines[layout.header].rstrip("\r\n"))
        layout.empty_flow = bool(match and match["empty"])
        indent: int | None = None  # the entries' `-` column
        spans: list[list[int]] = []  # each entry's `-` line and last content line
        for n in range(layout.header + 1, len(lines)):
            kind, at = _kind(lines[n])
            if kind != "content":
                continue
            item = _is_item(lines[n])
            if indent is None and item and not layout.empty_flow:
                indent = at
                spans.append([n, n])
            elif indent is not None and at > indent:
                spans[-1][1] = n
            elif indent is not None and at == indent and item:
                spans.append([n, n])
            elif at == 0:
                break  # the next top-level key: the list ends
            else:
                raise _Unsupported(f"line {n + 1} is not in the 'feeds:' list's usual shape")
        if len(spans) != len(parsed):
            raise _Unsupported("its 'feeds' entries are not each a `- …` line and more indented lines")
        for (start, last), (first, final) in zip(spans, parsed, strict=True):
            end = last + 1  # and the comment lines right after, indented more than the `-`
            while (
                end < len(lines)
                and _kind(lines[end])[0] == "comment"
                and _kind(lines[end])[1] > (indent or 0)
            ):
                end += 1
            # (A block scalar's text can hold a line that looks like a comment, and ends after
            # the blank lines that follow it.)
            if first < start or any(_kind(line)[0] != "blank" for line in lines[end : final + 1]):
                raise _Unsupported(f"the entry on line {start + 1} is not in the usual shape")
            layout.entries.append((start, end))
        if spans:
            layout.indent = indent or 0
            after_dash = lines[spans[0][0]].rstrip("\r\n")[layout.indent + 1 :]
            spaces = len(after_dash) - len(after_dash.lstrip(" "))
            if spaces and after_dash.strip(" "):
                layout.offset = 1 + spaces
        return layout

    def add(self, entry: list[str]) -> list[str]:
        """The lines with ``entry``'s appended to the list (a ``feeds:`` header first if none)."""
        lines = list(self.lines)
        if self.header is None:
            return [*lines, "feeds:" + self.nl, *entry]
        if self.entries:
            at = self.entries[-1][1]
        else:  # after the comment lines about the list right under `feeds:`, if any
            at = self.header + 1
            while at < len(lines) and _kind(lines[at])[0] == "comment" and _kind(lines[at])[1] > 0:
                at += 1
        if self.empty_flow:  # `feeds: []  # note` -> `feeds:  # note`
            header = lines[self.header].rstrip("\r\n")
            match = _HEADER.fullmatch(header)
            assert match is not None
            lines[self.header] = "feeds:" + (match["comment"] or "") + lines[self.header][len(header) :]
        return lines[:at] + entry + lines[at:]

    def remove(self, n: int) -> list[str]:
        """The lines without entry number ``n``'s (from 0)."""
        start, end = self.entries[n]
        return self.lines[:start] + self.lines[end:]


def _entry_text(entry: str | dict[str, Any], layout: _Layout) -> list[str]:
    """The lines of a new entry (a URL, or a mapping), indented as the file's entries are: one
    line per key, so that the entry's lines are what the line scan reads as its lines."""
    if isinstance(entry, str):
        lines = [_scalar(entry)]
    else:
        lines = [f"{key}: {_scalar(value)}" for key, value in entry.items()]
    first = " " * layout.indent + "-" + " " * (layout.offset - 1) + lines[0]
    rest = [" " * (layout.indent + layout.offset) + line for line in lines[1:]]
    return [line + layout.nl for line in [first, *rest]]


def _scalar(value: Any) -> str:
    """A value as YAML on one line (a string with line breaks double-quoted, its breaks escaped)."""
    dumped = yaml.safe_dump([value], allow_unicode=True, width=2**20)
    if dumped.count("\n") > 1 or any(c in dumped for c in "\r\x85\u2028\u2029"):
        dumped = yaml.safe_dump([value], allow_unicode=True, width=2**20, default_style='"')
    return dumped.removeprefix("- ").removesuffix("\n")
