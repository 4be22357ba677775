"""Reading dates: as people type them (``--since``, ``--until``, ``replay --from``), in the forms
the search server reads in a range: the one reading of a calendar date for the CLI's check
(``cli.DateBound``) and for the replay, which needs the date itself (``replay.parse_since``);
and as data carries them (pages, sitemaps, saved state: :func:`iso_datetime`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

#: What a command says after a date it cannot read.
DATE_EXAMPLES = "expected e.g. 2026-03-01, 2026-03-01T08:00:00Z, now-7d or now/d"


def not_a_date(text: str) -> str:
    """The message for ``text``, which is not a date."""
    return f"not a date: {text!r} ({DATE_EXAMPLES})"


def iso_datetime(value: object) -> datetime | None:
    """An ISO 8601 / W3C date or time that data carries (a page's date, a sitemap's ``lastmod``,
    a saved record: ``2026-03-01``, ``2026-03-01T10:00:00+01:00``, ``…Z``) as an aware datetime
    (no zone: UTC); None when ``value`` is empty or not one. Never raises."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def calendar_date(text: str) -> datetime | None:
    """A date of the calendar (``2026``, ``2026-03``, ``2026-03-01``,
    ``2026-03-01T08:00:00,123456789+01:00``; no zone: UTC) as an aware datetime; None when it is
    none (``2026-13-45``, 30 February). A year or a month alone is its first day, and digits of
    a second beyond the microsecond are dropped, as the search server reads them."""
    if re.match(r"\d{4}", text):
        text = {4: f"{text}-01-01", 7: f"{text}-01"}.get(len(text), text)
    try:
        when = datetime.fromisoformat(re.sub(r"[.,](\d{1,6})\d*", r".\1", text))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
