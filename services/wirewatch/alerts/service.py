"""The alerts stream: one log line per alert, with its evidence.

Later deliveries (webhooks, e-mail, the alerts index) plug in here; each is keyed by the
alert id so a redelivered alert is never sent twice.
"""

from __future__ import annotations

from faust import StreamT

from wirewatch.core import metrics
from wirewatch.core.app import ServiceApp
from wirewatch.core.logs import get_logger
from wirewatch.core.models import Alert, MessageError
from wirewatch.core.settings import Settings

log = get_logger(__name__)


def create(settings: Settings) -> ServiceApp:
    service = ServiceApp("alerts", settings)
    alerts_topic = service.topic(settings.topic_alerts)

    @service.app.agent(alerts_topic)
    async def deliver(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                alert = Alert.from_bytes(event.value)
            except MessageError as exc:
                metrics.ALERTS.labels(outcome="invalid").inc()
                await service.dead_letter("alerts.parse", exc, payload=event.value, event=event)
                continue
            metrics.ALERTS.labels(outcome="logged").inc()
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
                    "score": round(alert.score, 4),
                    "retroactive": alert.retroactive,
                },
            )

    return service
