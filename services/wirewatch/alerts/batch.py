"""What one delivery carries: a single alert, or a digest of one claim's alerts.

The webhook body is :meth:`AlertBatch.payload` serialised by :meth:`AlertBatch.body`. Its
field names are part of wirewatch's interface (``schema_version`` 1)::

    {
      "schema_version": 1,
      "type": "alert" | "digest",
      "id": "<delivery id: the alert id, or a stable digest id>",
      "claim": {"id": "...", "text": "...", "labels": {"verdict": "false", ...}},
      "count": 1,               # alerts this delivery stands for (a digest: >= 1)
      "more": 0,                # count - 1: reports beyond the one in "alert"
      "alert": {...},           # the (first) alert, every field of the Alert schema; its
                                # "event_id" is null unless the article's event was known: the
                                # indexer links it later, in the stored alert (alerts index)
      "alert_ids": ["..."],     # ids of the alerts it stands for (at most 200 listed)
      "urls": ["..."],          # their article URLs, same order (at most 200 listed)
      "window_start": null | "2024-05-01T12:00:00Z",   # digests: the throttle window
      "window_end": null | "2024-05-01T12:10:00Z"
    }
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from wirewatch.core.ids import stable_id
from wirewatch.core.models import Alert

#: Version of the webhook payload above.
PAYLOAD_VERSION = 1
#: Alert ids and URLs listed in one digest (``count`` stays exact beyond this).
MAX_LISTED = 200


class AlertBatch(BaseModel):
    """One alert (``kind="alert"``) or a digest of a claim's alerts held in a throttle window."""

    kind: Literal["alert", "digest"]
    id: str = Field(description="Delivery id: the alert id, or a stable id for the digest.")
    alert: Alert = Field(description="The alert shown as evidence (a digest's first held alert).")
    count: int = Field(ge=1, description="Alerts this delivery stands for.")
    alert_ids: list[str] = Field(default_factory=list)
    urls: list[str] = Field(default_factory=list)
    window_start: datetime | None = None
    window_end: datetime | None = None

    @classmethod
    def single(cls, alert: Alert) -> AlertBatch:
        """A delivery of one alert, sent at once."""
        return cls(kind="alert", id=alert.id, alert=alert, count=1, alert_ids=[alert.id], urls=[alert.url])

    @classmethod
    def digest(
        cls,
        first: Alert,
        count: int,
        alert_ids: list[str],
        urls: list[str],
        window_start: float,
        window_end: float,
    ) -> AlertBatch:
        """A digest: ``count`` alerts of ``first.claim_id``; its id is stable for the same content."""
        return cls(
            kind="digest",
            id=stable_id("alerts.digest", first.claim_id, first.id, str(count)),
            alert=first,
            count=count,
            alert_ids=alert_ids[:MAX_LISTED],
            urls=urls[:MAX_LISTED],
            window_start=datetime.fromtimestamp(window_start, UTC),
            window_end=datetime.fromtimestamp(window_end, UTC),
        )

    @property
    def claim_id(self) -> str:
        return self.alert.claim_id

    @property
    def more(self) -> int:
        """Reports beyond the one shown (``count - 1``)."""
        return self.count - 1

    def payload(self) -> dict[str, Any]:
        """The JSON document a webhook receives (see the module docstring)."""
        alert = self.alert.model_dump(mode="json")
        return {
            "schema_version": PAYLOAD_VERSION,
            "type": self.kind,
            "id": self.id,
            "claim": {
                "id": self.alert.claim_id,
                "text": self.alert.claim_text,
                "labels": self.alert.claim_labels,
            },
            "count": self.count,
            "more": self.more,
            "alert": alert,
            "alert_ids": self.alert_ids,
            "urls": self.urls,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
        }

    def body(self) -> bytes:
        """The payload as compact UTF-8 JSON: the exact bytes that are signed and sent."""
        return json.dumps(self.payload(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_payload(cls, body: str | bytes) -> AlertBatch:
        """The batch whose :meth:`body` is ``body`` (a dead letter keeps it): ``from_payload(b.body())``
        equals ``b``, so a delivery sent again carries the same bytes. ValueError when it is not one."""
        try:
            data = json.loads(body)
            return cls(
                kind=data["type"],
                id=data["id"],
                alert=data["alert"],
                count=data["count"],
                alert_ids=data["alert_ids"],
                urls=data["urls"],
                window_start=data["window_start"],
                window_end=data["window_end"],
            )
        except (ValueError, TypeError, KeyError) as exc:  # pydantic's ValidationError is a ValueError
            raise ValueError(f"not an alert delivery: {exc}") from None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
