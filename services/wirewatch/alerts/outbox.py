"""A batch owed to each target, recorded before it is sent and as each target is done with it.

The alerts service delivers a batch (an alert, or a digest) to every target at once. The claim's
throttle state records what was sent; a kill -9 before that record has the alert or digest tick
read again after the restart, and sent again. If the state were stored only once every target
was done, a target that is slow or down (tried in line for up to
``alert_retry_max_seconds`` before it is parked) would hold that window open for all the others:
a crash then would send the alert again to a Slack channel or an inbox that had it long before,
and those cannot drop a repeated ``X-Wirewatch-Alert-Id`` as a webhook receiver can.

So the claim's state is stored first with the batch *owed* to every target, and stored again as
each target is done with it (delivered, parked for a later try, or given up). The alert or tick
that was being handled is read again after a crash (its offset is committed only once handled),
and :meth:`Outbox.resume` first sends what the state still owes, to the targets still owed only.
A target gets a batch twice only if the worker dies between its answer and the state stored
after it: milliseconds, for each target on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection

from wirewatch.alerts.batch import AlertBatch
from wirewatch.alerts.throttle import ClaimState, Throttle
from wirewatch.core.logs import get_logger

log = get_logger(__name__)

#: Delivers (or parks, or gives up on) one batch for one target, named as in ``Target.name``.
SendTo = Callable[[AlertBatch, str], Awaitable[None]]


class Outbox:
    """Sends batches through ``send_to``, keeping each claim's owed batches in ``throttle``'s states.

    One claim at a time: the caller holds the claim's lock around :meth:`send` and :meth:`resume`.
    """

    def __init__(self, throttle: Throttle, send_to: SendTo) -> None:
        self.throttle = throttle
        self.send_to = send_to

    async def send(self, claim_id: str, state: ClaimState, batch: AlertBatch, targets: list[str]) -> None:
        """Deliver ``batch`` to ``targets``; ``state`` (the claim's state after the decision that
        gave the batch) is stored before the first request and after each target is done."""
        state.owe(batch, targets)
        self.throttle.record(claim_id, state)
        await self._pay(claim_id, state, batch, targets)

    async def resume(self, claim_id: str, configured: Collection[str]) -> int:
        """Send what ``claim_id``'s state still owes (left by a crash), to the targets still owed
        that are ``configured``; returns the number of batches resumed."""
        if not self.throttle.owes(claim_id):  # the usual case, checked before every alert
            return 0
        state = self.throttle.state(claim_id)
        owed = state.owed_batches()
        for batch, targets in owed:
            gone = [name for name in targets if name not in configured]
            for name in gone:  # the configuration changed meanwhile
                state.paid(batch.id, name)
            kept = [name for name in targets if name in configured]
            log.warning(
                "alert delivery resumed",
                extra={"alert_id": batch.id, "claim_id": claim_id, "targets": kept, "dropped": gone},
            )
            self.throttle.record(claim_id, state)
            await self._pay(claim_id, state, batch, kept)
        return len(owed)

    async def _pay(self, claim_id: str, state: ClaimState, batch: AlertBatch, targets: list[str]) -> None:
        async def one(target: str) -> None:
            await self.send_to(batch, target)
            state.paid(batch.id, target)
            self.throttle.record(claim_id, state)

        await asyncio.gather(*(one(target) for target in targets))
