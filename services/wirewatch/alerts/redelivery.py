"""Parked deliveries: a target that is down does not hold up the stream, and loses nothing.

A delivery is first tried in line, within ``alert_retry_attempts`` and ``alert_retry_max_seconds``
(:mod:`~wirewatch.alerts.retry`). When it still fails with an error worth retrying (connection
refused, timeout, HTTP 408/425/429/5xx, SMTP 4xx), it is *parked*: a :class:`ParkedDelivery`
(the target's name, the whole batch, when it first failed, when to try next) is written to the
alerts service's internal redeliveries topic, keyed by target, and the alert's offset moves on.
So one target down for hours blocks neither the other targets nor the alerts behind it, and the
parked record, not the process's memory, is what remembers the delivery: a restart or a kill -9
reads it again.

The redeliveries topic is read in order per target. Each record waits until its ``not_before``
(the wait ends early when the worker is rebalancing or stopping: the record is then written
again, unchanged, for the partition's next owner or the restarted worker, so a stop never waits
for a parked delivery's next try) and is tried once more. The waits double from
``alert_retry_backoff`` up to ``alert_redeliver_max_delay``; a target is tried by one parked
delivery at a time: while :class:`Outages` says it is down (its last try failed), the records
behind it are parked again for the next round without a request. After
``alert_redeliver_give_up_seconds`` of failing, the delivery becomes a dead letter with the last
reason, as a non-retryable failure does at once.

A target that comes back gets each parked delivery once, in the order they were parked (copies
of a record read again after a crash are dropped by :class:`DeliveredLately`); a delivery that
was sent but not yet recorded as sent when the worker died is sent again with the same
``X-Wirewatch-Alert-Id`` (the receiver acknowledges an id it has already accepted).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field

from wirewatch.alerts.batch import AlertBatch
from wirewatch.alerts.retry import DeliveryResult
from wirewatch.core.models import Message
from wirewatch.core.recent import RecentKeys
from wirewatch.core.settings import Settings
from wirewatch.fetcher.politeness import backoff_delay


class ParkedDelivery(Message):
    """One batch for one target, waiting for its next try: a record of the alerts service's own
    redeliveries topic (internal: written and read only by the alerts service)."""

    schema_name: ClassVar[str] = "parked-delivery"

    target: str = Field(description="The target's name (as in logs: no secret).")
    batch: AlertBatch
    tries: int = Field(ge=0, description="Tries so far, in line and parked.")
    first_failed_at: float = Field(description="Unix seconds of the first failure.")
    not_before: float = Field(description="Unix seconds: the next try is not made before this.")
    reason: str = Field(default="", description="Why the last try failed.")
    error_type: str = ""
    status: int | None = None

    def key(self) -> bytes:
        """One target's parked deliveries share a partition, so they are tried in order."""
        return self.target.encode("utf-8")

    def as_result(self, note: str) -> DeliveryResult:
        """The failure this parked delivery ends as (for its dead letter)."""
        reason = f"{self.reason} ({note})"
        return DeliveryResult(self.target, False, self.tries, 0.0, reason, self.error_type, self.status)


@dataclass(frozen=True)
class RedeliveryPolicy:
    """When a parked delivery is tried again, and when it is given up."""

    backoff: float = 1.0
    max_delay: float = 60.0
    give_up_seconds: float = 86_400.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RedeliveryPolicy:
        return cls(
            backoff=max(settings.alert_retry_backoff, 0.1),
            max_delay=settings.alert_redeliver_max_delay,
            give_up_seconds=settings.alert_redeliver_give_up_seconds,
        )

    def delay(self, tries: int, rng: random.Random | None = None) -> float:
        """Seconds before the next try after ``tries`` failed ones (doubling, jittered, capped)."""
        return min(backoff_delay(max(tries - 1, 0), self.backoff, rng), self.max_delay)

    def park(self, batch: AlertBatch, result: DeliveryResult, now: float) -> ParkedDelivery:
        """The parked record of a delivery whose in-line tries failed with ``result``."""
        return ParkedDelivery(
            target=result.target,
            batch=batch,
            tries=result.attempts,
            first_failed_at=now,
            not_before=now + self.delay(result.attempts),
            reason=result.reason,
            error_type=result.error_type,
            status=result.status,
        )

    def park_behind(self, batch: AlertBatch, target: str, until: float, now: float) -> ParkedDelivery:
        """The parked record of a batch not tried at all: ``target`` is down until ``until``."""
        return ParkedDelivery(
            target=target,
            batch=batch,
            tries=0,
            first_failed_at=now,
            not_before=max(until, now),
            reason="not tried: the target is down (its earlier deliveries are parked)",
            error_type="TargetDown",
        )

    def after_failure(
        self, parked: ParkedDelivery, result: DeliveryResult, now: float
    ) -> ParkedDelivery | None:
        """The next parked record after another failed try, or None: give up (a dead letter)."""
        if not result.retryable:
            return None
        tries = parked.tries + result.attempts
        update = {
            "tries": tries,
            "reason": result.reason,
            "error_type": result.error_type,
            "status": result.status,
            "not_before": now + self.delay(tries),
        }
        following = parked.model_copy(update=update)
        return None if self.expired(following) else following

    def wait_again(self, parked: ParkedDelivery, until: float, now: float) -> ParkedDelivery | None:
        """``parked`` again, not tried (its target is down until ``until``), or None: give up."""
        following = parked.model_copy(update={"not_before": max(until, now)})
        return None if self.expired(following) else following

    def expired(self, parked: ParkedDelivery) -> bool:
        """Whether the next try would come after the give-up horizon (``not_before`` is never
        earlier than now, so a horizon already past counts too)."""
        return parked.not_before - parked.first_failed_at > self.give_up_seconds


class Outages:
    """Targets known to be down in this worker, and until when the next try waits.

    A failed try marks its target down until its next try; a delivered one marks it up. While a
    target is down, new batches for it are parked behind the earlier ones without a request, and
    only one parked delivery at a time probes it.
    """

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def down(self, target: str, until: float) -> None:
        self._until[target] = max(until, self._until.get(target, 0.0))

    def up(self, target: str) -> None:
        self._until.pop(target, None)

    def until(self, target: str, now: float) -> float | None:
        """When ``target`` may be tried again, if it is down at ``now``; else None."""
        until = self._until.get(target)
        return until if until is not None and until > now else None


class DeliveredLately(RecentKeys[tuple[str, str]]):
    """The last ``size`` (target, delivery id) pairs this worker delivered from parked records.

    A parked record is written again each round its target stays down; after a crash, copies
    whose offsets were not committed yet are read again beside their newer copies. The first copy
    to be delivered is remembered here, and the others are dropped instead of sent twice.
    """

    def __init__(self, size: int = 10_000) -> None:
        super().__init__(size)
