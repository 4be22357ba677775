"""Human-readable alerts: the Slack message and the e-mail text, with the evidence.

Both show the tracked claim, its labels (verdict, fact-check URL, …), the matched sentence,
the article (title, URL, source, language, publication date), the score, and for a digest
"+N more reports" with the first few other URLs.
"""

from __future__ import annotations

import re
from typing import Any

from wirewatch.alerts.batch import AlertBatch

#: Other URLs listed in a Slack message or an e-mail of a digest.
LISTED_URLS = 10
#: Slack's limits: header text 150 chars, section text 3000, a field 2000, 10 fields.
_HEADER_MAX = 150
_SECTION_MAX = 3000
_FIELD_MAX = 2000
_FIELDS_MAX = 10
_SUBJECT_CLAIM_MAX = 120


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def headline(batch: AlertBatch) -> str:
    """ "Tracked claim seen" or "Tracked claim seen in N reports"."""
    kind = "Tracked claim seen"
    if batch.alert.retroactive:
        kind += " (retroactive)"
    return kind if batch.count == 1 else f"{kind} in {batch.count} reports (digest)"


def evidence(batch: AlertBatch) -> list[tuple[str, str]]:
    """(label, value) pairs shown under the claim, in order, empty values left out."""
    alert = batch.alert
    rows = [
        ("Article", _one_line(alert.title) or alert.url),
        ("URL", alert.url),
        ("Source", f"{alert.source} ({alert.source_domain})" if alert.source_domain else alert.source),
        ("Language", alert.language),
        ("Published", alert.published.isoformat() if alert.published else ""),
        ("Score", f"{alert.score:.2f}"),
        ("Stance", "disputes the claim" if alert.stance == "disputes" else "repeats the claim"),
    ]
    rows += [(key.replace("_", " ").capitalize(), value) for key, value in sorted(alert.claim_labels.items())]
    if alert.event_id:
        rows.append(("Event", alert.event_id))
    if alert.duplicate_of:
        rows.append(("Copy of", alert.duplicate_of))
    return [(label, value) for label, value in rows if value]


def other_urls(batch: AlertBatch) -> list[str]:
    """URLs of the digest's other reports, the first :data:`LISTED_URLS`."""
    return [url for url in batch.urls if url != batch.alert.url][:LISTED_URLS]


# --- Slack ------------------------------------------------------------------------------


def _mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn reserves."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str, label: str) -> str:
    safe_url = url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    return f"<{safe_url}|{_mrkdwn(label)}>"


def _value(value: str) -> str:
    return _link(value, value) if value.startswith(("http://", "https://")) else _mrkdwn(value)


def more_reports(count: int) -> str:
    """``+1 more report``, ``+5 more reports``: a digest's other alerts."""
    return f"+{count} more report{'' if count == 1 else 's'}"


def slack_message(batch: AlertBatch) -> dict[str, Any]:
    """``{"text": …, "blocks": […]}`` for a Slack-compatible incoming webhook."""
    alert = batch.alert
    title = _one_line(alert.title) or alert.url
    matched = "title" if alert.in_title else "sentence"
    claim = _mrkdwn(_one_line(alert.claim_text))
    text = f'{headline(batch)}: "{claim}" in {_mrkdwn(alert.source)}: {_link(alert.url, title)}'
    if batch.more:
        text += f" ({more_reports(batch.more)})"
    fields = [
        {"type": "mrkdwn", "text": _clip(f"*{_mrkdwn(label)}*\n{_value(value)}", _FIELD_MAX)}
        for label, value in evidence(batch)
        if label not in ("Article", "URL")
    ][:_FIELDS_MAX]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(headline(batch), _HEADER_MAX)}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(f"*Claim:* {_mrkdwn(_one_line(alert.claim_text))}", _SECTION_MAX),
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(f"*Matched {matched}:*\n>{_mrkdwn(_one_line(alert.sentence))}", _SECTION_MAX),
            },
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _clip(f"*Article:* {_link(alert.url, title)}", _SECTION_MAX)},
        },
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    if batch.more:
        lines = [f"*{more_reports(batch.more)}*"]
        lines += [f"• {_link(url, url)}" for url in other_urls(batch)]
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(lines), _SECTION_MAX)}}
        )
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"wirewatch · claim `{alert.claim_id}` · {batch.id}"}],
        }
    )
    return {"text": _clip(text, _SECTION_MAX), "blocks": blocks}


# --- E-mail -----------------------------------------------------------------------------


def email_subject(batch: AlertBatch) -> str:
    """One line: ``[wirewatch] <claim>`` plus ``(+N more)`` for a digest."""
    subject = f"[wirewatch] {_clip(_one_line(batch.alert.claim_text), _SUBJECT_CLAIM_MAX)}"
    return subject + (f" (+{batch.more} more)" if batch.more else "")


def email_text(batch: AlertBatch) -> str:
    """The plain-text body."""
    alert = batch.alert
    lines = [
        headline(batch),
        "",
        "Claim:",
        f"  {_one_line(alert.claim_text)}",
        "",
        f"Matched {'title' if alert.in_title else 'sentence'}:",
        f'  "{_one_line(alert.sentence)}"',
        "",
    ]
    width = max(len(label) for label, _ in evidence(batch))
    lines += [f"{label + ':':<{width + 1}} {value}" for label, value in evidence(batch)]
    if batch.more:
        lines += ["", f"{more_reports(batch.more)}:"]
        lines += [f"  {url}" for url in other_urls(batch)]
        if batch.more > len(other_urls(batch)):
            lines.append("  …")
    lines += ["", "--", f"wirewatch · claim {alert.claim_id} · alert {batch.id}"]
    return "\n".join(lines) + "\n"
