"""Each alert target's health in this worker: last delivery, last failure and why, deliveries
parked for retry.

A target that is down or wrong must not go unnoticed: its deliveries are parked (or dead-lettered
at once on a 4xx) while the stream goes on, and without this nothing would say so for the day a
parked delivery waits before it is given up. The alerts service records every try's outcome here
(:meth:`TargetHealth.delivered`, :meth:`TargetHealth.failed`) and the parked records its
redeliveries agent holds (:meth:`TargetHealth.parked`, :meth:`TargetHealth.unparked`).
:meth:`TargetHealth.warning` is what ``/readyz`` names under ``warnings.alert_targets`` while a
target is failing (its last try failed) or has deliveries parked, and ``wirewatch status`` shows
it; :meth:`TargetHealth.report` is served at ``/alert-targets`` and listed by the status too.

What one worker saw: with several alerts workers, each shows the targets as its own deliveries
and its own share of the parked ones found them; a restarted worker starts blank, then learns
again from the parked records it reads (their last reason) and its next tries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def _iso(moment: float | None) -> str | None:
    """Unix seconds as ``2026-03-05T10:01:02Z``."""
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class TargetStanding:
    """What this worker knows of one target."""

    label: str
    kind: str
    last_delivered_at: float | None = None
    last_failed_at: float | None = None
    last_failure: str = ""
    #: When the tries began to fail (the first failure after the last delivery); None: not failing.
    failing_since: float | None = None
    #: Delivery ids of the parked records this worker holds for the target.
    parked: set[str] = field(default_factory=set)

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def problem(self) -> str | None:
        """What is wrong with the target, or None while all is well."""
        parked = f"{len(self.parked)} parked for retry" if self.parked else ""
        if self.failing:
            head = f"failing since {_iso(self.failing_since)}" + (f", {parked}" if parked else "")
        elif parked:
            head = parked
        else:
            return None
        return f"{self.label}: {head}: {self.last_failure}" if self.last_failure else f"{self.label}: {head}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.label,
            "kind": self.kind,
            "state": "failing" if self.failing else ("parked" if self.parked else "ok"),
            "last_delivered_at": _iso(self.last_delivered_at),
            "last_failed_at": _iso(self.last_failed_at),
            "last_failure": self.last_failure or None,
            "failing_since": _iso(self.failing_since),
            "parked": len(self.parked),
        }


class TargetHealth:
    """The standing of each configured target (given as name -> label), by name.

    Names of targets not configured (a parked delivery for a target since removed) are ignored.
    """

    def __init__(self, labels: Mapping[str, str]) -> None:
        self._targets = {
            name: TargetStanding(label, kind=name.partition(" ")[0]) for name, label in labels.items()
        }

    def delivered(self, name: str, now: float) -> None:
        if standing := self._targets.get(name):
            standing.last_delivered_at = now
            standing.failing_since = None

    def failed(self, name: str, reason: str, now: float) -> None:
        if standing := self._targets.get(name):
            standing.last_failed_at = now
            standing.last_failure = reason
            if standing.failing_since is None:
                standing.failing_since = now

    def parked(self, name: str, delivery_id: str, reason: str) -> None:
        """A parked record of ``delivery_id`` for ``name`` is held here, until :meth:`unparked`.
        Its ``reason`` stands for the last failure until this worker tries the target itself
        (after a restart, the parked records are all it knows)."""
        if standing := self._targets.get(name):
            standing.parked.add(delivery_id)
            if not standing.last_failure:
                standing.last_failure = reason

    def unparked(self, name: str, delivery_id: str) -> None:
        """``delivery_id`` is no longer parked for ``name``: delivered, or given up."""
        if standing := self._targets.get(name):
            standing.parked.discard(delivery_id)

    def forget_parked(self) -> None:
        """A rebalance: the parked records are read again by their partitions' owners."""
        for standing in self._targets.values():
            standing.parked.clear()

    def warning(self) -> str | None:
        """One line per target failing or with parked deliveries, or None: for ``/readyz``."""
        problems = [problem for standing in self._targets.values() if (problem := standing.problem())]
        return "\n".join(problems) or None

    def report(self) -> list[dict[str, Any]]:
        """Every configured target's standing, in the order configured: for ``/alert-targets``."""
        return [standing.as_dict() for standing in self._targets.values()]
