"""The alerts stream: tracked claims found in articles, and told to people.

- ``follow_watchlist`` (a task in every worker) follows the compacted claims topic and keeps
  the in-process :class:`~wirewatch.matching.matcher.ClaimMatcher` current: a claim tracked or
  untracked takes effect within a poll, without a restart.
- ``match_articles`` reads enriched articles (parallel over partitions) once the watchlist is
  loaded, matches their title, check-worthy sentences and any sentence holding a claim's words
  (:mod:`~wirewatch.alerts.detect`), and sends each alert to the alerts
  topic, keyed by claim id (one claim's alerts meet on one partition, for throttling).
- ``search_retroactively`` looks for each newly tracked claim (or new version of one: text,
  language, keywords, threshold) in the articles already indexed
  (:mod:`~wirewatch.alerts.retro`); hits are alerts marked ``retroactive``. Every worker sees
  the new claim and asks, through the service's retro-requests topic keyed by claim id; the
  owner of the claim's partition searches, once per version of the claim: the
  ``retro-searched`` table remembers what was searched, across workers and restarts (the
  catch-up of claims tracked in the last day, at start, finds them done). Alert ids hash
  (claim, article): a hit already reported is the same alert.
- ``deliver`` reads the alerts topic and tells people: a log line, and the webhooks, Slack
  webhooks and e-mail addresses configured (:mod:`~wirewatch.alerts.delivery`), through the
  per-claim throttle (:mod:`~wirewatch.alerts.throttle`): the first alert of a claim goes out at
  once, the rest of its window as one digest; an alert id already delivered is never sent
  again. The claim's state is stored with a batch owed to each target before it is sent, and
  again as each target is done, so a crash re-sends only to the targets not done yet
  (:mod:`~wirewatch.alerts.outbox`). A delivery still failing after its in-line tries is
  parked on the service's redeliveries topic and ``redeliver`` tries it again later, without
  holding up the alerts behind it (:mod:`~wirewatch.alerts.redelivery`); a target that fails
  for good (a 4xx, or down past ``alert_redeliver_give_up_seconds``) gives a dead letter. The
  indexer writes the alerts topic to the alerts index.
- ``resend_dead_letters`` sends a dead-lettered delivery again to its one target, on request
  (``wirewatch alerts resend``, :mod:`~wirewatch.alerts.resend`), through ``outbox.send`` as
  ``deliver`` does, once per request.

Each try's outcome is kept per target (:mod:`~wirewatch.alerts.health`): ``/readyz`` warns
(``alert_targets``) while a target fails or has deliveries parked, ``/alert-targets`` shows each
target's last delivery and failure, and ``wirewatch_alerts_total`` counts deliveries by target.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from faust import StreamT
from faust.types import EventT
from faust.web import Request, Response, View

from wirewatch.alerts.batch import AlertBatch
from wirewatch.alerts.delivery import Deliverer, dead_letter_for
from wirewatch.alerts.detect import alerts_for
from wirewatch.alerts.health import TargetHealth
from wirewatch.alerts.outbox import Outbox
from wirewatch.alerts.redelivery import DeliveredLately, Outages, ParkedDelivery, RedeliveryPolicy
from wirewatch.alerts.resend import RESEND_TOPIC, ResendRequest
from wirewatch.alerts.retro import retroactive_alerts
from wirewatch.alerts.retry import DeliveryResult
from wirewatch.alerts.throttle import Throttle, flush_state
from wirewatch.alerts.watchlist import Watchlist, search_version
from wirewatch.core import metrics
from wirewatch.core.alert_targets import NO_TARGETS
from wirewatch.core.app import ServiceApp, describe_exception, fetched_before_rebalance
from wirewatch.core.elastic import connect
from wirewatch.core.lanes import KeyedLanes
from wirewatch.core.logs import get_logger
from wirewatch.core.models import Alert, DeadLetter, EnrichedArticle, TrackedClaim
from wirewatch.core.settings import Settings
from wirewatch.core.vectors import get_encoder
from wirewatch.matching.matcher import ClaimMatcher

log = get_logger(__name__)

#: How often the timer looks for digests whose window has ended.
DIGEST_CHECK_SECONDS = 5.0
#: How long a retroactive search waits for its claim to reach this worker's watchlist.
RETRO_WATCHLIST_WAIT = 30.0


async def give_up_delivery(
    service: ServiceApp, batch: AlertBatch, result: DeliveryResult, label: str
) -> DeadLetter:
    """A delivery that failed for good: counted (``wirewatch_alerts_total{outcome="failed"}``, with
    its target's ``label``), and a dead letter through :meth:`ServiceApp.send_dead_letter` (logged
    once, as "alert delivery failed" with its target, alert and claim; counted; sent)."""
    metrics.ALERTS.labels(outcome="failed", target=label).inc()
    letter = dead_letter_for(batch, result)
    return await service.send_dead_letter(
        letter, "alert delivery failed", target=result.target, alert_id=batch.id, claim_id=batch.claim_id
    )


def create(settings: Settings) -> ServiceApp:
    service = ServiceApp("alerts", settings)
    app = service.app
    enriched_topic = service.topic(settings.topic_enriched)
    alerts_topic = service.topic(settings.topic_alerts)
    matcher = ClaimMatcher()
    newly_tracked: asyncio.Queue[TrackedClaim] = asyncio.Queue()

    # Claims are embedded in batches as they are read (an untracked one leaves the matcher).
    watchlist = Watchlist(settings, on_change=matcher.upsert_many, on_new=newly_tracked.put_nowait)

    # Delivery: per-claim throttling state in a table co-partitioned with the alerts topic
    # (keyed by claim id); digests fall due on a timer, which asks the partition's owner,
    # through an internal topic, to send them (tables are written from stream events only).
    throttle_states = app.Table(
        "alert-throttle", default=None, partitions=settings.topic_partitions, key_type=str, value_type=None
    )
    throttle = Throttle.from_settings(settings, states=throttle_states)
    # A claim's state is read, its batch sent, then the state stored: one claim at a time across
    # the alerts and digest agents (co-partitioned, so one worker holds both of a claim's).
    claim_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
    digest_ticks = service.topic(f"{app.conf.id}-digest-ticks", internal=True)
    deliverer = Deliverer.from_settings(settings)
    # A target still failing after its in-line tries gets the batch later, from this topic
    # (keyed by target): the alerts behind it go on (wirewatch.alerts.redelivery).
    redeliveries = service.topic(f"{app.conf.id}-redeliveries", internal=True)
    redelivery = RedeliveryPolicy.from_settings(settings)
    # Retroactive searches, one per claim version whichever worker saw the claim first.
    retro_requests = service.topic(f"{app.conf.id}-retro-requests", internal=True)
    retro_searched = app.Table(
        "retro-searched", default=None, partitions=settings.topic_partitions, key_type=str, value_type=None
    )
    outages = Outages()
    delivered_lately = DeliveredLately()
    # Dead-lettered deliveries to send again (`wirewatch alerts resend`), keyed by claim id.
    resend_requests = service.topic(RESEND_TOPIC, internal=True)
    # Each target's last delivery, last failure and parked deliveries: /readyz warns of those
    # failing, /alert-targets shows them all (`wirewatch status` prints both).
    health = TargetHealth(deliverer.labels)
    service.warnings["alert_targets"] = health.warning

    async def give_up(batch: AlertBatch, result: DeliveryResult) -> None:
        health.unparked(result.target, batch.id)
        await give_up_delivery(service, batch, result, deliverer.label(result.target))

    async def park(parked: ParkedDelivery) -> None:
        """Write ``parked`` to the redeliveries topic; its target counts as down until then."""
        outages.down(parked.target, parked.not_before)
        sent = await redeliveries.send(key=parked.key(), value=parked.to_bytes())
        await sent  # on the broker before the claim's state says the target is done with it

    async def park_new(parked: ParkedDelivery) -> None:
        """A batch that leaves the alerts stream for the redeliveries topic (counted once)."""
        metrics.ALERTS.labels(outcome="parked", target=deliverer.label(parked.target)).inc()
        log.warning(
            "alert delivery parked",
            extra={
                "target": parked.target,
                "alert_id": parked.batch.id,
                "claim_id": parked.batch.claim_id,
                "tries": parked.tries,
                "next_try_in": round(parked.not_before - time.time(), 1),
                "reason": parked.reason,
            },
        )
        await park(parked)

    async def settle(batch: AlertBatch, result: DeliveryResult, parked: ParkedDelivery | None) -> None:
        """After a try: delivered, parked (again) for a later try, or given up."""
        now = time.time()
        if result.ok:
            metrics.ALERTS.labels(outcome="delivered", target=deliverer.label(result.target)).inc()
            outages.up(result.target)
            health.delivered(result.target, now)
            health.unparked(result.target, batch.id)
            return
        health.failed(result.target, result.reason, now)
        if parked is not None:
            following = redelivery.after_failure(parked, result, now)
            if following is not None:
                await park(following)
                return
        elif result.retryable:
            await park_new(redelivery.park(batch, result, now))
            return
        await give_up(batch, result)

    async def send_to(batch: AlertBatch, name: str) -> None:
        """One target's part of a batch: delivered, parked, or given up."""
        target = deliverer.target(name)
        if target is None:
            return
        now = time.time()
        until = outages.until(name, now)
        if until is not None:  # down: behind its parked deliveries, without a request
            await park_new(redelivery.park_behind(batch, name, until, now))
            return
        [result] = await deliverer.deliver(batch, [target])
        await settle(batch, result, None)

    # The claim's state is stored with the batch owed to each target before any request, and
    # again as each target is done: a crash re-sends only to the targets not done yet.
    outbox = Outbox(throttle, send_to)
    target_names = [target.name for target in deliverer.targets]

    async def wait_until(moment: float) -> bool:
        """Sleep until ``moment``; False when a rebalance or a stop cut the wait short. A stop
        waits for every record in hand to be acknowledged (Faust's ``wait_empty``): a parked
        delivery waiting here for its next try (up to ``alert_redeliver_max_delay``, or its
        target's outage) held the stop past ``shutdown_timeout``."""
        while (remaining := moment - time.time()) > 0:
            if app.rebalancing or app.should_stop:
                return False
            await asyncio.sleep(min(remaining, 0.5))
        return True

    async def send(alerts: list[Alert]) -> None:
        for alert in alerts:
            await alerts_topic.send(key=alert.claim_id.encode(), value=alert.to_bytes())
            metrics.ALERTS.labels(outcome="raised", target="").inc()

    @service.on_prepare
    async def _name_the_targets(_: Settings) -> None:
        labels = list(deliverer.labels.values())
        log.info(f"alert targets: {', '.join(labels) or NO_TARGETS}", extra={"targets": labels})

    @service.on_prepare
    async def _load_model(_: Settings) -> None:
        get_encoder().encode(["warm up"])  # the sentence encoder, before the first article

    @app.page("/alert-targets")
    class AlertTargets(View):
        """Each configured target's health in this worker: last delivery, last failure and its
        reason, deliveries parked for retry (:meth:`TargetHealth.report`)."""

        async def get(self, request: Request) -> Response:
            return self.json(health.report())

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(app: object, revoked: object, **_: object) -> None:
        health.forget_parked()  # their records are read again by their partitions' next owners

    @app.task
    async def follow_watchlist() -> None:
        await watchlist.run()

    @app.task
    async def request_retroactive_searches() -> None:
        while True:
            claim = await newly_tracked.get()
            await retro_requests.send(key=claim.id.encode(), value=claim.to_bytes())

    async def in_watchlist(claim: TrackedClaim) -> bool:
        """Whether ``claim`` is (still) tracked here: the request may come from a worker whose
        watchlist read it a poll earlier than this one."""
        await watchlist.ready.wait()
        for _ in range(int(RETRO_WATCHLIST_WAIT / 0.5)):  # the watchlist polls twice a second
            if claim.id in matcher:
                return True
            await asyncio.sleep(0.5)
        return claim.id in matcher

    @app.agent(retro_requests)
    async def search_retroactively(stream: StreamT[bytes]) -> None:
        es = await connect(settings, wait=3600)
        try:
            async for event in stream.events():
                claim = await service.parse(TrackedClaim, event, "alerts.retroactive")
                if claim is None:
                    continue
                version = search_version(claim)
                if retro_searched.get(claim.id) == version:
                    metrics.RETRO_SEARCHES.labels(outcome="skipped").inc()
                    continue  # searched already (asked by another worker, or again after a restart)
                if not await in_watchlist(claim):
                    continue  # untracked again meanwhile
                try:
                    await send(await retroactive_alerts(es, settings, matcher, claim))
                except Exception as exc:
                    await service.dead_letter(
                        "alerts.retroactive", describe_exception(exc), key=claim.id, payload=event.value
                    )
                    continue
                retro_searched[claim.id] = version
                metrics.RETRO_SEARCHES.labels(outcome="searched").inc()
        finally:
            await es.close()

    @app.agent(enriched_topic)
    async def match_articles(stream: StreamT[bytes]) -> None:
        await watchlist.ready.wait()
        async for event in stream.events():
            article = await service.parse(EnrichedArticle, event, "alerts.parse")
            if article is None:
                continue
            try:
                alerts = await asyncio.to_thread(alerts_for, article, matcher)
            except Exception as exc:
                await service.dead_letter(
                    "alerts.match", describe_exception(exc), payload=event.value, event=event
                )
                continue
            await send(alerts)

    @app.agent(alerts_topic)
    async def deliver(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            alert = await service.parse(Alert, event, "alerts.parse")
            if alert is None:
                metrics.ALERTS.labels(outcome="invalid", target="").inc()
                continue
            log.warning(
                "tracked claim seen",
                extra={
                    "alert_id": alert.id,
                    "claim_id": alert.claim_id,
                    "claim": alert.claim_text,
                    "article_id": alert.article_id,
                    "url": alert.url,
                    "source": alert.source,
                    "sentence": alert.sentence,
                    "score": alert.score,
                    "retroactive": alert.retroactive,
                },
            )
            async with claim_locks[alert.claim_id]:
                await outbox.resume(alert.claim_id, target_names)  # what a crash left owed
                decision, state = throttle.decide(alert, time.time())
                if state is not None and decision.batch is not None:
                    await outbox.send(alert.claim_id, state, decision.batch, target_names)
                elif state is not None:  # held for a digest
                    throttle.record(alert.claim_id, state)
            metrics.ALERTS.labels(outcome=decision.action, target="").inc()

    @app.timer(interval=DIGEST_CHECK_SECONDS)
    async def digests_due() -> None:
        now = time.time()
        for claim_id, data in list(throttle_states.items()):
            if data and data.get("window_end") is not None and data["window_end"] <= now:
                await digest_ticks.send(key=claim_id.encode(), value=b"")

    @app.agent(digest_ticks)
    async def send_digests(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            claim_id = (event.key or b"").decode()
            async with claim_locks[claim_id]:
                await outbox.resume(claim_id, target_names)  # what a crash left owed
                state = throttle.state(claim_id)
                batch = flush_state(state, time.time(), throttle.window)
                if batch is not None:
                    await outbox.send(claim_id, state, batch, target_names)
                else:
                    throttle.record(claim_id, state)

    @app.agent(resend_requests)
    async def resend_dead_letters(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            request = await service.parse(ResendRequest, event, "alerts.resend")
            if request is None:
                continue
            claim_id, batch, name = request.batch.claim_id, request.batch, request.target
            context = {"target": name, "alert_id": batch.id, "claim_id": claim_id}
            async with claim_locks[claim_id]:
                await outbox.resume(claim_id, target_names)  # what a crash left owed
                state = throttle.state(claim_id)
                if not state.first_resend(request.key()):
                    log.info("alert resend already done", extra=context)
                    continue
                if name not in target_names:
                    throttle.record(claim_id, state)
                    gone = "not sent again: the target is no longer configured"
                    await give_up(batch, DeliveryResult(name, False, 0, 0.0, gone))
                    continue
                log.warning("alert resent", extra=context | {"dead_letter_id": request.dead_letter_id})
                await outbox.send(claim_id, state, batch, [name])  # as a new alert goes, to this target only

    async def try_again(parked: ParkedDelivery) -> None:
        """A parked delivery once it is due: delivered, parked again, or given up."""
        target = deliverer.target(parked.target)
        if target is None:
            await give_up(parked.batch, parked.as_result("the target is no longer configured"))
            return
        if (parked.target, parked.batch.id) in delivered_lately:
            health.unparked(parked.target, parked.batch.id)
            return  # a copy of a record delivered already (read again after a crash)
        if not await wait_until(parked.not_before):  # rebalancing or stopping: read again (by the
            await park(parked)  # partition's next owner, or after the restart), not lost
            return
        now = time.time()
        until = outages.until(parked.target, now)
        if until is not None:  # another parked delivery found it still down: the next round
            following = redelivery.wait_again(parked, until, now)
            if following is None:
                await give_up(parked.batch, parked.as_result("gave up: the target stayed down"))
            else:
                await park(following)
            return
        for result in await deliverer.deliver(parked.batch, [target]):
            if result.ok:
                delivered_lately.add((parked.target, parked.batch.id))
            await settle(parked.batch, result, parked)

    async def lane_failed(exc: BaseException) -> None:
        log.error("parked delivery failed", extra={"reason": describe_exception(exc)})
        await app.crash(exc)  # its record stays unacknowledged: read again after the restart

    @app.agent(redeliveries)
    async def redeliver(stream: StreamT[bytes]) -> None:
        # One lane per target: a record waiting for its target (minutes, when it is down) holds
        # up that target's records only, not those of the other targets on the partition. Each
        # event is acknowledged by its lane once handled, so the commit stays at the oldest
        # record still waiting (read again after a crash) while the ones behind it go on.
        manual = stream.noack()  # type: ignore[attr-defined]

        async def handle(item: tuple[EventT[bytes], ParkedDelivery]) -> None:
            event, parked = item
            if fetched_before_rebalance(event):
                return  # its partition's owner reads it again from the committed offset
            await try_again(parked)
            await manual.ack(event)

        lanes: KeyedLanes[tuple[EventT[bytes], ParkedDelivery]] = KeyedLanes(handle, lane_failed)
        try:
            async for event in manual.events():
                parked = await service.parse(ParkedDelivery, event, "alerts.redeliver")
                if parked is None:
                    await manual.ack(event)
                    continue
                health.parked(parked.target, parked.batch.id, parked.reason)
                lanes.put(parked.target, (event, parked))
        finally:
            await lanes.close()

    return service
