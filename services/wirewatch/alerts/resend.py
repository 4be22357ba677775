"""Dead-lettered alert deliveries sent again, once their target is fixed: ``wirewatch alerts resend``.

A delivery its target refused (HTTP 4xx, a bad certificate, refused credentials), or that kept
failing for ``alert_redeliver_give_up_seconds``, is a dead letter of stage ``alerts.deliver``
whose payload is the whole delivery (:func:`~wirewatch.alerts.delivery.dead_letter_for`). It is
not sent again by itself, and ``wirewatch replay`` does not send it either: the claim's throttle
remembers the alert id as sent.

``wirewatch alerts resend`` finds such letters in the dead-letters index (by id, or since a date;
optionally only those of one target) and puts one :class:`ResendRequest` per letter on the alerts
service's resend-requests topic, keyed by claim id like the alerts topic. The alerts service
(``resend_dead_letters``) delivers it to that one target only, through the path a new alert
takes: the claim's state owes it to the target before the request (a crash resumes it), then it
is delivered, parked when the target is still down, or given up, a dead letter again (same id, a
new date). It is the same delivery: the same id (``X-Wirewatch-Alert-Id``), the same body,
signed afresh with the same key. The other targets, which had it, get nothing.

Each request is done once: the claim's state remembers it (:meth:`ResendRequest.key`: the
letter's id and date), so a resend run twice, or a request read again after a crash, delivers
nothing more; a letter that failed again has a new date, and may be sent again in its turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field

from wirewatch.alerts.batch import AlertBatch
from wirewatch.alerts.delivery import STAGE, undelivered
from wirewatch.alerts.throttle import seen_key
from wirewatch.core.alert_targets import target_label
from wirewatch.core.ids import MIN_ID_PREFIX, complete_id
from wirewatch.core.models import DeadLetter, Message
from wirewatch.core.settings import Settings

#: The alerts service's topic of resend requests (``f"{app id}-resend-requests"``; key: claim id,
#: so a request meets its claim's throttle state, as the alerts do).
RESEND_TOPIC = "wirewatch-alerts-resend-requests"


class ResendRequest(Message):
    """One dead-lettered delivery to send again to its target: a record of the resend-requests
    topic (internal: written by ``wirewatch alerts resend``, read by the alerts service)."""

    schema_name: ClassVar[str] = "alert-resend-request"

    target: str = Field(description="The target's name, as in the dead letter's reason.")
    batch: AlertBatch
    dead_letter_id: str
    dead_letter_created_at: datetime

    def key(self) -> str:
        """What the claim's state remembers of the request: its letter, as of its date."""
        return seen_key(f"{self.dead_letter_id}@{self.dead_letter_created_at.isoformat()}")


@dataclass(frozen=True)
class Resend:
    """One dead letter considered for sending again: its request, or why there is none."""

    letter: DeadLetter
    request: ResendRequest | None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        request = self.request
        return {
            "dead_letter_id": self.letter.id,
            "created_at": self.letter.created_at.isoformat(),
            "target": request.target if request else None,
            "alert_id": request.batch.id if request else None,
            "claim_id": request.batch.claim_id if request else self.letter.key,
            "requested": request is not None,
            "problem": self.problem,
        }


def plan(letters: Sequence[DeadLetter], target: str | None = None) -> list[Resend]:
    """A :class:`Resend` for each letter: its request, or why it cannot be sent again. With
    ``target``, only the letters whose target's name or label contains it (case aside)."""
    plans = []
    for letter in letters:
        try:
            name, batch = undelivered(letter)
        except ValueError as exc:
            plans.append(Resend(letter, None, str(exc)))
            continue
        wanted = target.lower() if target else None
        if wanted and wanted not in name.lower() and wanted not in target_label(name).lower():
            continue
        request = ResendRequest(
            target=name, batch=batch, dead_letter_id=letter.id, dead_letter_created_at=letter.created_at
        )
        plans.append(Resend(letter, request))
    return plans


async def find_letters(
    settings: Settings, ids: Sequence[str] = (), since: str | None = None, size: int = 10_000
) -> list[DeadLetter]:
    """The dead letters of alert deliveries named by ``ids`` (each an id or its first
    :data:`MIN_ID_PREFIX` characters or more), then those since ``since`` (a date or date
    math), newest first, payload included. Raises :class:`~wirewatch.core.ids.UnknownIdError`
    for an id that names none."""
    from wirewatch.search import date_range, reading

    index = settings.index("dead-letters")
    stage = {"term": {"stage": STAGE}}
    found: dict[str, DeadLetter] = {}
    async with reading(settings, "dead-letters") as es:
        for given in ids:
            given = given.strip().lower()
            hits: dict[str, dict[str, Any]] = {}
            if len(given) >= MIN_ID_PREFIX:
                response = await es.search(
                    index=index,
                    query={"bool": {"filter": [stage, {"prefix": {"id": given}}]}},
                    size=100,
                )
                hits = {hit["_source"]["id"]: hit["_source"] for hit in response["hits"]["hits"]}
            letter_id = complete_id(
                given,
                hits,
                "dead-lettered alert delivery",
                labels={i: source.get("reason", "") for i, source in hits.items()},
                listed_by="wirewatch dead-letters --stage alerts.deliver",
                hexadecimal=True,
            )
            found[letter_id] = DeadLetter.model_validate(hits[letter_id])
        if since is not None:
            response = await es.search(
                index=index,
                query={"bool": {"filter": [stage, *date_range("created_at", since)]}},
                sort=[{"created_at": {"order": "desc"}}],
                size=size,
            )
            for hit in response["hits"]["hits"]:
                found.setdefault(hit["_source"]["id"], DeadLetter.model_validate(hit["_source"]))
    return list(found.values())


async def send_requests(settings: Settings, requests: Sequence[ResendRequest]) -> None:
    """Put ``requests`` on the resend-requests topic (created, as the alerts service would,
    when it does not exist yet), keyed by claim id."""
    from wirewatch.core.kafka import create_topics, produce

    await create_topics(settings, {RESEND_TOPIC: {}})
    await produce(settings, RESEND_TOPIC, [(r.batch.claim_id.encode(), r.to_bytes()) for r in requests])
