"""Per-claim throttling and digests: a story syndicated 200 times is one alert plus a count.

For each claim, with a window of ``alert_digest_seconds``:

* the first alert while the claim is quiet is sent at once and opens a window;
* every further alert of the claim before the window ends is held and counted;
* when the window ends (:meth:`Throttle.flush` with ``now`` past its end), the held alerts go
  out as ONE digest (the first held alert as evidence, the count, the ids and URLs), and a new
  window opens, so a claim that keeps coming back is at most one message per window; a window
  that ends with nothing held makes the claim quiet again;
* an alert id already sent or held is dropped (the last ``alert_remember_ids`` ids per claim
  are remembered), so a replayed or redelivered alert is never delivered twice.

An alert that arrives after its window's end but before the flush that closes it joins the
digest that flush sends. All of it is pure logic over a small JSON-able state per claim, with
an explicit ``now`` (Unix seconds): the stream keeps the states in a table keyed by claim id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from wirewatch.alerts.batch import MAX_LISTED, AlertBatch
from wirewatch.core.models import Alert
from wirewatch.core.settings import Settings

#: Version of the state dict, for a later change of layout.
STATE_VERSION = 1

Action = Literal["send", "hold", "duplicate"]
#: Resend requests remembered per claim (``ClaimState.resent``).
RESENDS_REMEMBERED = 1000


def seen_key(alert_id: str) -> str:
    """What is remembered of a delivered alert id: 64 bits of its hash (16 hex chars)."""
    return hashlib.blake2b(alert_id.encode("utf-8"), digest_size=8).hexdigest()


@dataclass
class ClaimState:
    """The throttle's memory of one claim; :meth:`to_dict` is what the stream stores."""

    window_start: float | None = None
    window_end: float | None = None
    held: int = 0
    first: dict[str, Any] | None = None  # the first held alert, as JSON
    ids: list[str] = field(default_factory=list)  # held alert ids (the first MAX_LISTED)
    urls: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # seen_key of sent and held alerts, oldest first
    # Batches being delivered: {"batch": AlertBatch as JSON, "targets": names not done with yet}
    # (wirewatch.alerts.outbox); empty but for the moments a delivery is under way.
    owed: list[dict[str, Any]] = field(default_factory=list)
    # Dead letters of the claim sent again (``wirewatch alerts resend``): ResendRequest.key() of
    # each, oldest first, so that a request made twice, or read again, is done once.
    resent: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"v": STATE_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ClaimState:
        if not data:
            return cls()
        return cls(
            window_start=data.get("window_start"),
            window_end=data.get("window_end"),
            held=int(data.get("held", 0)),
            first=data.get("first"),
            ids=list(data.get("ids", [])),
            urls=list(data.get("urls", [])),
            seen=list(data.get("seen", [])),
            owed=[dict(entry) for entry in data.get("owed", [])],
            resent=list(data.get("resent", [])),
        )

    @property
    def quiet(self) -> bool:
        """No window open and nothing held."""
        return self.window_end is None and self.held == 0

    def owe(self, batch: AlertBatch, targets: list[str]) -> None:
        """Note ``batch`` as owed to each of ``targets`` (none: nothing to note)."""
        if targets:
            self.owed.append({"batch": batch.model_dump(mode="json"), "targets": list(targets)})

    def paid(self, batch_id: str, target: str) -> None:
        """``target`` is done with ``batch_id`` (delivered, parked or given up)."""
        for entry in self.owed:
            if entry["batch"]["id"] == batch_id and target in entry["targets"]:
                entry["targets"] = [name for name in entry["targets"] if name != target]
        self.owed = [entry for entry in self.owed if entry["targets"]]

    def first_resend(self, key: str, remember: int = RESENDS_REMEMBERED) -> bool:
        """Whether the resend request ``key`` is new: then it is remembered (the last
        ``remember``), and False for it from now on."""
        if key in self.resent:
            return False
        self.resent = [*self.resent, key][-remember:]
        return True

    def owed_batches(self) -> list[tuple[AlertBatch, list[str]]]:
        """Each batch still owed, with the targets it is owed to, oldest first."""
        return [(AlertBatch.model_validate(e["batch"]), list(e["targets"])) for e in self.owed]


@dataclass(frozen=True)
class Decision:
    """What to do with an offered alert: ``send`` (``batch`` now), ``hold``, or ``duplicate``."""

    action: Action
    batch: AlertBatch | None = None


def offer(state: ClaimState, alert: Alert, now: float, window: float, remember: int = 5000) -> Decision:
    """Decide on ``alert`` (of ``state``'s claim) at ``now``; updates ``state`` in place."""
    key = seen_key(alert.id)
    if key in set(state.seen):
        return Decision("duplicate")
    state.seen.append(key)
    if len(state.seen) > remember:
        del state.seen[: len(state.seen) - remember]
    window_over = state.window_end is not None and now >= state.window_end
    if state.held == 0 and (state.window_end is None or window_over):
        state.window_start, state.window_end = (now, now + window) if window > 0 else (None, None)
        return Decision("send", AlertBatch.single(alert))
    if state.held == 0:
        state.first = alert.model_dump(mode="json")
    state.held += 1
    if len(state.ids) < MAX_LISTED:
        state.ids.append(alert.id)
        state.urls.append(alert.url)
    return Decision("hold")


def flush_state(state: ClaimState, now: float, window: float) -> AlertBatch | None:
    """Close ``state``'s window if it has ended by ``now``: the digest of what it held, or None."""
    if state.window_end is None or now < state.window_end:
        return None
    if state.held == 0 or state.first is None:
        state.window_start = state.window_end = None
        state.held = 0
        return None
    first = Alert.model_validate(state.first)
    start = state.window_start if state.window_start is not None else state.window_end
    batch = (
        AlertBatch.single(first)
        if state.held == 1
        else AlertBatch.digest(first, state.held, state.ids, state.urls, start, state.window_end)
    )
    state.window_start, state.window_end = now, now + window
    state.held, state.first, state.ids, state.urls = 0, None, [], []
    return batch


class Throttle:
    """:func:`offer` and :func:`flush_state` over every claim's state in ``states``.

    ``states`` maps claim id -> :meth:`ClaimState.to_dict` (a dict by default; in the stream, a
    Faust table). A state is always stored back whole, never mutated in place, so a table
    records every change in its changelog.
    """

    def __init__(
        self, window: float, remember: int = 5000, states: MutableMapping[str, Any] | None = None
    ) -> None:
        self.window = window
        self.remember = remember
        self.states: MutableMapping[str, Any] = {} if states is None else states

    @classmethod
    def from_settings(cls, settings: Settings, states: MutableMapping[str, Any] | None = None) -> Throttle:
        return cls(settings.alert_digest_seconds, settings.alert_remember_ids, states)

    def state(self, claim_id: str) -> ClaimState:
        return ClaimState.from_dict(self.states.get(claim_id))

    def owes(self, claim_id: str) -> bool:
        """Whether ``claim_id``'s stored state owes a batch to some target (without reading
        the rest of it)."""
        data = self.states.get(claim_id)
        return bool(data and data.get("owed"))

    def offer(self, alert: Alert, now: float) -> Decision:
        """``send``: deliver ``decision.batch`` now; ``hold``: it will be in a digest; ``duplicate``: drop."""
        decision, state = self.decide(alert, now)
        if state is not None:
            self.record(alert.claim_id, state)
        return decision

    def decide(self, alert: Alert, now: float) -> tuple[Decision, ClaimState | None]:
        """:meth:`offer` without storing: the decision, and the claim's new state (None for a
        duplicate). The stream stores a state that comes with a batch only with the batch owed
        to its targets (:class:`~wirewatch.alerts.outbox.Outbox`): stored alone, a crash before
        the delivery would have the alert read again and dropped as a duplicate, never sent."""
        state = self.state(alert.claim_id)
        decision = offer(state, alert, now, self.window, self.remember)
        return decision, (None if decision.action == "duplicate" else state)

    def record(self, claim_id: str, state: ClaimState) -> None:
        self.states[claim_id] = state.to_dict()

    def flush(self, now: float) -> list[AlertBatch]:
        """The digests due at ``now`` (one per claim whose window has ended with alerts held)."""
        due: list[AlertBatch] = []
        for claim_id, data in list(self.states.items()):
            end = data.get("window_end") if data else None
            if end is None or now < end:
                continue
            state = ClaimState.from_dict(data)
            batch = flush_state(state, now, self.window)
            self.states[claim_id] = state.to_dict()
            if batch is not None:
                due.append(batch)
        return due

    def next_due(self) -> float | None:
        """When the earliest open window ends (the next :meth:`flush` worth calling), or None."""
        ends = [
            data["window_end"] for data in self.states.values() if data and data.get("window_end") is not None
        ]
        return min(ends, default=None)
