"""Alert delivery against real local servers: an HTTP receiver and an SMTP server on loopback.

The webhook receiver is an aiohttp server on 127.0.0.1 (free port) that answers a scripted
series of statuses; the SMTP server is aiosmtpd's protocol on 127.0.0.1 (free port), with
STARTTLS, implicit TLS and AUTH, on a self-signed certificate made here with the openssl
command (those tests are skipped without it). Backoffs are a few milliseconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr, ValidationError

from conftest import make_settings
from wirewatch.alerts.batch import AlertBatch
from wirewatch.alerts.delivery import (
    STAGE,
    ConfigError,
    Deliverer,
    EmailTarget,
    SlackTarget,
    WebhookTarget,
    dead_letter_for,
    http_client,
    undelivered,
)
from wirewatch.alerts.health import TargetHealth
from wirewatch.alerts.outbox import Outbox
from wirewatch.alerts.redelivery import DeliveredLately, Outages, ParkedDelivery, RedeliveryPolicy
from wirewatch.alerts.render import email_subject, email_text, slack_message
from wirewatch.alerts.resend import plan
from wirewatch.alerts.retry import Attempt, DeliveryResult, RetryPolicy, run_with_retries
from wirewatch.alerts.service import give_up_delivery
from wirewatch.alerts.signing import verify
from wirewatch.alerts.throttle import ClaimState, Throttle
from wirewatch.core import metrics
from wirewatch.core.alert_targets import NO_TARGETS, configured_target_names, describe_targets, target_label
from wirewatch.core.app import ServiceApp
from wirewatch.core.ids import stable_id
from wirewatch.core.models import Alert, DeadLetter
from wirewatch.core.settings import Settings

pytestmark = pytest.mark.timeout(60)

SECRET = "s3cret-shared-key"
FAST = RetryPolicy(attempts=4, backoff=0.01, max_seconds=10.0, timeout=2.0)
CLAIM = "The US-led coalition let 5,000 ISIS fighters leave Mosul for Syria"
SENTENCE = "quelque 5 000 combattants de Daech avaient quitté Mossoul vers Raqqa"


def make_alert(n: int = 0, claim_id: str = "claim-mosul", **overrides: Any) -> Alert:
    article_id = stable_id("article", str(n))
    values: dict[str, Any] = {
        "id": stable_id(claim_id, article_id),
        "claim_id": claim_id,
        "claim_text": CLAIM,
        "claim_labels": {"verdict": "disputed", "fact_check_url": "https://factcheck.example/mosul"},
        "article_id": article_id,
        "url": f"https://news{n}.example.fr/article-{n}",
        "title": "Mossoul : le convoi de Daech vers Raqqa",
        "source": f"Le Journal {n}",
        "source_domain": f"news{n}.example.fr",
        "language": "fr",
        "published": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        "sentence": SENTENCE,
        "sentence_start": 120,
        "sentence_end": 189,
        "score": 0.91,
        "event_id": "event-42",
    }
    values.update(overrides)
    return Alert(**values)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "alert_webhook_secret": SECRET,
        "alert_retry_attempts": FAST.attempts,
        "alert_retry_backoff": FAST.backoff,
        "alert_retry_max_seconds": FAST.max_seconds,
        "alert_timeout": FAST.timeout,
    }
    values.update(overrides)
    return make_settings(**values)


# --- A real webhook receiver -------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next scripted (status, headers), then 200."""

    server: TestServer
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)

    def url(self, path: str = "/hook") -> str:
        return str(self.server.make_url(path))

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(Received(request.path, dict(request.headers), body))
        status, headers = self.script.pop(0) if self.script else (200, {})
        return web.Response(status=status, headers=headers, text="ok" if status < 300 else "busy")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = web.Application()
    server = TestServer(app, host="127.0.0.1")
    rec = Receiver(server)
    app.router.add_post("/{tail:.*}", rec.handle)
    await server.start_server()
    yield rec
    await server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def check_signature(req: Received) -> None:
    """Verify X-Wirewatch-Signature independently: HMAC-SHA256 of ts.id.body with the secret."""
    timestamp = req.headers["X-Wirewatch-Timestamp"]
    alert_id = req.headers["X-Wirewatch-Alert-Id"]
    material = f"{timestamp}.{alert_id}.".encode() + req.body
    expected = "sha256=" + hmac.new(SECRET.encode(), material, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["X-Wirewatch-Signature"], expected)
    assert abs(time.time() - int(timestamp)) < 60


# --- Webhooks ----------------------------------------------------------------------------


async def test_webhook_delivers_signed_json(receiver: Receiver) -> None:
    alert = make_alert()
    batch = AlertBatch.single(alert)
    async with Deliverer.from_settings(settings(alert_webhook_urls=[receiver.url()])) as deliverer:
        [result] = await deliverer.deliver(batch)
    assert result.ok and result.attempts == 1 and result.status == 200
    [req] = receiver.requests
    check_signature(req)
    assert req.headers["X-Wirewatch-Alert-Id"] == alert.id
    assert req.headers["Content-Type"].startswith("application/json")
    payload = req.json()
    assert payload["schema_version"] == 1 and payload["type"] == "alert" and payload["id"] == alert.id
    assert payload["claim"] == {"id": "claim-mosul", "text": CLAIM, "labels": alert.claim_labels}
    assert payload["count"] == 1 and payload["more"] == 0
    assert payload["alert"]["sentence"] == SENTENCE and payload["alert"]["url"] == alert.url
    assert payload["alert_ids"] == [alert.id] and payload["window_start"] is None
    # The library's own check agrees, and refuses a changed body or a stale timestamp.
    assert verify(SECRET, req.headers, req.body)
    assert not verify(SECRET, req.headers, req.body.replace(b"0.91", b"0.99"))
    assert not verify(SECRET, req.headers, req.body, now=time.time() + 3600)
    assert not verify("other-secret", req.headers, req.body)


async def test_webhook_retries_after_two_503s(receiver: Receiver) -> None:
    receiver.script = [(503, {}), (503, {"Retry-After": "0"})]
    async with http_client(settings()) as client:
        target = WebhookTarget(client, receiver.url(), SECRET, FAST)
        result = await target.send(AlertBatch.single(make_alert()))
    assert result.ok and result.attempts == 3
    assert len(receiver.requests) == 3
    assert len({r.headers["X-Wirewatch-Alert-Id"] for r in receiver.requests}) == 1
    for req in receiver.requests:
        check_signature(req)  # every try is signed afresh


@pytest.mark.parametrize("down", ["refused", "always-500"])
async def test_target_down_past_its_tries_is_retryable_and_its_dead_letter_keeps_the_payload(
    receiver: Receiver, down: str
) -> None:
    if down == "refused":
        url = f"http://127.0.0.1:{closed_port()}/hook"
    else:
        receiver.script = [(500, {})] * 10
        url = receiver.url()
    batch = AlertBatch.single(make_alert())
    async with http_client(settings()) as client:
        result = await WebhookTarget(client, url, SECRET, FAST).send(batch)
    assert not result.ok and result.attempts == FAST.attempts
    assert ("connection error" if down == "refused" else "HTTP 500") in result.reason
    assert "gave up after 4 attempts" in result.reason
    assert result.retryable  # parked for later, not given up (see the redelivery tests below)
    letter = dead_letter_for(batch, result)
    assert isinstance(letter, DeadLetter)
    assert letter.stage == "alerts.deliver"
    assert letter.reason.startswith(f"webhook {url}: ")
    assert letter.key == batch.claim_id and letter.url == batch.alert.url
    assert json.loads(letter.payload or "")["id"] == batch.id
    assert letter.id == dead_letter_for(batch, result).id  # stable: a replayed failure is one record
    DeadLetter.from_bytes(letter.to_bytes())  # valid on the dead-letter topic


@dataclass
class RecordingTopic:
    """Stands in for the dead-letter topic of a service not started: what was sent to it."""

    sent: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def send(self, *, key: bytes, value: bytes) -> None:
        self.sent.append((key, value))


async def test_a_delivery_given_up_is_a_counted_dead_letter(
    receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Given up for good, a delivery is a dead letter counted in wirewatch_dead_letters_total
    under its stage, like every other dead letter (it once went to the topic directly, uncounted),
    and its log line names the alert."""
    receiver.script = [(400, {})]
    batch = AlertBatch.single(make_alert())
    async with http_client(settings()) as client:
        result = await WebhookTarget(client, receiver.url(), SECRET, FAST).send(batch)
    assert not result.ok and not result.retryable
    service = ServiceApp("alerts", settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path))
    topic = RecordingTopic()
    service.dead_letter_topic = topic  # type: ignore[assignment]
    dead_letters = metrics.DEAD_LETTERS.labels(stage=STAGE)
    label = target_label(result.target)
    assert label == f"webhook 127.0.0.1:{receiver.server.port}"  # kind and host: no path
    failed = metrics.ALERTS.labels(outcome="failed", target=label)
    before, failed_before = dead_letters._value.get(), failed._value.get()
    with caplog.at_level(logging.ERROR):
        letter = await give_up_delivery(service, batch, result, label)
    [failed_line] = [r for r in caplog.records if r.getMessage() == "alert delivery failed"]
    assert failed_line.__dict__["alert_id"] == batch.id and failed_line.__dict__["target"] == result.target
    assert dead_letters._value.get() == before + 1
    assert failed._value.get() == failed_before + 1
    assert topic.sent == [(letter.id.encode(), letter.to_bytes())]
    assert letter.stage == STAGE and letter.id == dead_letter_for(batch, result).id


async def test_client_errors_are_not_retried(receiver: Receiver) -> None:
    receiver.script = [(400, {})]
    async with http_client(settings()) as client:
        result = await WebhookTarget(client, receiver.url(), SECRET, FAST).send(
            AlertBatch.single(make_alert())
        )
    assert not result.ok and result.attempts == 1 and result.status == 400
    assert "not retryable" in result.reason and not result.retryable


async def test_redirects_to_other_hosts_are_refused(receiver: Receiver) -> None:
    port = receiver.server.port
    receiver.script = [(308, {"Location": "/moved"}), (307, {"Location": f"http://localhost:{port}/x"})]
    async with http_client(settings()) as client:
        result = await WebhookTarget(client, receiver.url(), SECRET, FAST).send(
            AlertBatch.single(make_alert())
        )
    assert not result.ok and result.attempts == 1
    assert "another host (localhost) refused" in result.reason
    assert [r.path for r in receiver.requests] == ["/hook", "/moved"]  # same host: followed once

    receiver.requests.clear()
    receiver.script = [(302, {"Location": "/elsewhere"})]
    async with http_client(settings()) as client:
        result = await WebhookTarget(client, receiver.url(), SECRET, FAST).send(
            AlertBatch.single(make_alert())
        )
    assert not result.ok and "redirect not followed" in result.reason and len(receiver.requests) == 1


async def test_retry_after_is_honoured_within_the_budget() -> None:
    sleeps: list[float] = []
    answers = [Attempt.retry("HTTP 429", "HTTPStatus", 429, retry_after=7.0), Attempt.delivered(200)]

    async def attempt(timeout: float) -> Attempt:
        return answers.pop(0)

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    policy = RetryPolicy(attempts=3, backoff=0.01, max_seconds=60.0)
    result = await run_with_retries("t", attempt, policy, sleep=sleep)
    assert result.ok and result.attempts == 2 and sleeps == [7.0]

    answers = [Attempt.retry("HTTP 503", "HTTPStatus", 503, retry_after=600.0)]
    result = await run_with_retries("t", attempt, policy, sleep=sleep)
    assert not result.ok and result.attempts == 1 and "would pass the 60 s budget" in result.reason


# --- Slack -------------------------------------------------------------------------------


async def test_slack_payload_shape(receiver: Receiver) -> None:
    alerts = [make_alert(n) for n in range(6)]
    digest = AlertBatch.digest(
        alerts[0], 6, [a.id for a in alerts], [a.url for a in alerts], time.time() - 60, time.time()
    )
    async with http_client(settings()) as client:
        target = SlackTarget(client, receiver.url("/services/T000/B000/XXXXSECRET"), FAST)
        assert "XXXXSECRET" not in target.name and "XXXXSECRET" not in repr(target)
        assert (await target.send(AlertBatch.single(alerts[0]))).ok
        assert (await target.send(digest)).ok
    single, many = (r.json() for r in receiver.requests)
    assert set(single) == {"text", "blocks"}
    assert CLAIM in single["text"] and alerts[0].url in single["text"]
    kinds = [b["type"] for b in single["blocks"]]
    assert kinds[0] == "header" and kinds[-1] == "context" and "section" in kinds
    flat = json.dumps(single["blocks"], ensure_ascii=False)
    for evidence in (CLAIM, SENTENCE, alerts[0].title, alerts[0].url, "Le Journal 0", "0.91", "disputed"):
        assert evidence in flat
    assert "<https://factcheck.example/mosul|https://factcheck.example/mosul>" in flat
    assert "more report" not in flat
    flat = json.dumps(many["blocks"], ensure_ascii=False)
    assert "+5 more reports" in flat and "+5 more reports" in many["text"]
    pair = AlertBatch.digest(
        alerts[0], 2, [a.id for a in alerts[:2]], [a.url for a in alerts[:2]], 0.0, 600.0
    )
    one_more = slack_message(pair)
    assert one_more["text"].endswith("(+1 more report)") and "more reports" not in json.dumps(one_more)
    assert "+1 more report:" in email_text(pair) and "more reports" not in email_text(pair)
    assert alerts[3].url in flat and "6 reports" in many["blocks"][0]["text"]["text"]


def test_slack_text_is_escaped() -> None:
    message = slack_message(AlertBatch.single(make_alert(sentence="<!channel> & co")))
    assert "&lt;!channel&gt; &amp; co" in json.dumps(message)


# --- Parked deliveries (a target down for longer than its in-line tries) ---------------


def failure(
    target: str = "webhook http://127.0.0.1:9/hook", *, attempts: int = 2, retryable: bool = True
) -> DeliveryResult:
    return DeliveryResult(target, False, attempts, 1.0, "HTTP 503: busy", "HTTPStatus", 503, retryable)


def test_a_parked_delivery_waits_longer_each_round_up_to_the_cap_then_is_given_up() -> None:
    policy = RedeliveryPolicy(backoff=1.0, max_delay=60.0, give_up_seconds=600.0)
    batch = AlertBatch.single(make_alert())
    parked = policy.park(batch, failure(attempts=3), now=1000.0)
    assert parked.tries == 3 and parked.first_failed_at == 1000.0
    assert 1000.0 + 2.0 <= parked.not_before < 1000.0 + 6.0  # 1 s * 2**2, jittered by [0.5, 1.5)
    assert ParkedDelivery.from_bytes(parked.to_bytes()) == parked  # what the redeliveries topic carries
    assert parked.key() == b"webhook http://127.0.0.1:9/hook"
    waits, now, rounds = [], parked.not_before, 0
    current: ParkedDelivery | None = parked
    while current is not None:
        rounds += 1
        current = policy.after_failure(current, failure(attempts=1), now)
        if current is not None:
            waits.append(current.not_before - now)
            now = current.not_before
    assert max(waits) <= 60.0 and waits[-1] == 60.0  # capped
    assert waits[0] < waits[2]  # growing
    assert 600.0 - 60.0 <= now - 1000.0 <= 600.0  # given up at the horizon, not before
    assert 10 <= rounds <= 20  # ten minutes of tries at most a minute apart


def test_a_parked_delivery_that_meets_a_client_error_is_given_up_at_once() -> None:
    policy = RedeliveryPolicy()
    parked = policy.park(AlertBatch.single(make_alert()), failure(), now=0.0)
    assert policy.after_failure(parked, failure(attempts=1, retryable=False), now=5.0) is None


def test_a_down_target_is_probed_by_one_delivery_at_a_time() -> None:
    policy = RedeliveryPolicy(backoff=1.0, max_delay=30.0, give_up_seconds=100.0)
    outages = Outages()
    target = "webhook http://127.0.0.1:9/hook"
    first = policy.park(AlertBatch.single(make_alert(1)), failure(target), now=0.0)
    outages.down(target, first.not_before)
    # A batch raised meanwhile is parked behind, untried, due with the first one.
    until = outages.until(target, now=0.5)
    assert until == first.not_before
    behind = policy.park_behind(AlertBatch.single(make_alert(2)), target, until, now=0.5)
    assert behind.tries == 0 and behind.not_before == first.not_before
    # The first one fails again: the one behind waits for the next round without a request.
    again = policy.after_failure(first, failure(target, attempts=1), now=first.not_before)
    assert again is not None
    outages.down(target, again.not_before)
    assert outages.until(target, now=first.not_before + 0.01) == again.not_before
    waiting = policy.wait_again(behind, again.not_before, now=first.not_before + 0.01)
    assert waiting is not None and waiting.not_before == again.not_before and waiting.tries == 0
    # Past the horizon it is given up; once the target answers, nothing waits.
    assert policy.wait_again(behind, 200.0, now=150.0) is None
    outages.up(target)
    assert outages.until(target, now=first.not_before) is None
    assert outages.until("smtp mail.example:587", now=0.0) is None


def test_copies_of_a_delivered_parked_record_are_recognised() -> None:
    lately = DeliveredLately(size=3)
    for n in range(4):
        lately.add(("webhook a", f"alert-{n}"))
    assert ("webhook a", "alert-3") in lately and ("webhook a", "alert-1") in lately
    assert ("webhook a", "alert-0") not in lately  # the oldest is forgotten
    assert ("webhook b", "alert-3") not in lately  # per target


async def test_deliverer_sends_to_the_targets_it_is_given(receiver: Receiver) -> None:
    async with Deliverer.from_settings(
        settings(alert_webhook_urls=[receiver.url("/one"), receiver.url("/two")])
    ) as deliverer:
        _, two = deliverer.targets
        assert deliverer.target(two.name) is two and deliverer.target("webhook http://elsewhere/") is None
        results = await deliverer.deliver(AlertBatch.single(make_alert()), [two])
    assert [r.target for r in results] == [two.name] and results[0].ok
    assert [r.path for r in receiver.requests] == ["/two"]


# --- E-mail ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (also its own CA), made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@dataclass
class Mailbox:
    """What the SMTP server received."""

    port: int = 0
    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((envelope, message))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == b"alerts" and data.password == b"pa55"
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)


async def smtp_server(
    mailbox: Mailbox, *, implicit: ssl.SSLContext | None = None, **kwargs: Any
) -> asyncio.Server:
    """aiosmtpd's SMTP protocol served on a free loopback port, in this event loop."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(mailbox, hostname="smtp.test", authenticator=mailbox.authenticate, **kwargs),
        "127.0.0.1",
        0,
        ssl=implicit,
    )
    mailbox.port = server.sockets[0].getsockname()[1]
    return server


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def email_target(mailbox: Mailbox, security: str, ca: Path | None, password: str = "pa55") -> EmailTarget:
    return EmailTarget(
        host="127.0.0.1",
        port=mailbox.port,
        security=security,
        username="alerts",
        password=password,
        sender="wirewatch@newsroom.test",
        recipients=["desk@newsroom.test", "editor@newsroom.test"],
        ca_file=str(ca) if ca else None,
        policy=FAST,
    )


def check_mail(mailbox: Mailbox, batch: AlertBatch) -> None:
    [(envelope, message)] = mailbox.messages
    assert envelope.mail_from == "wirewatch@newsroom.test"
    assert envelope.rcpt_tos == ["desk@newsroom.test", "editor@newsroom.test"]
    assert message["Subject"] == email_subject(batch) and CLAIM in message["Subject"]
    assert message["X-Wirewatch-Alert-Id"] == batch.id
    body = message.get_content()
    for evidence in (CLAIM, SENTENCE, batch.alert.title, batch.alert.url, "Le Journal 0", "0.91", "disputed",
                     "https://factcheck.example/mosul"):  # fmt: skip
        assert evidence in body
    assert mailbox.logins == ["alerts"]


async def test_email_over_starttls_with_auth(certificate: tuple[Path, Path]) -> None:
    mailbox = Mailbox()
    server = await smtp_server(mailbox, tls_context=server_tls(certificate), require_starttls=True)
    try:
        batch = AlertBatch.single(make_alert())
        result = await email_target(mailbox, "starttls", certificate[0]).send(batch)
        assert result.ok, result.reason
        check_mail(mailbox, batch)
        # The certificate is checked: without its CA, no mail and no retry.
        result = await email_target(mailbox, "starttls", None).send(batch)
        assert not result.ok and result.attempts == 1 and len(mailbox.messages) == 1
    finally:
        server.close()


async def test_email_over_implicit_tls(certificate: tuple[Path, Path]) -> None:
    mailbox = Mailbox()
    # aiosmtpd does not see that an implicit-TLS connection is TLS: let it offer AUTH anyway.
    server = await smtp_server(mailbox, implicit=server_tls(certificate), auth_require_tls=False)
    try:
        batch = AlertBatch.single(make_alert())
        result = await email_target(mailbox, "tls", certificate[0]).send(batch)
        assert result.ok, result.reason
        check_mail(mailbox, batch)
    finally:
        server.close()


async def test_email_starttls_required_and_bad_password_not_retried(certificate: tuple[Path, Path]) -> None:
    mailbox = Mailbox()
    server = await smtp_server(mailbox)  # no TLS offered
    try:
        result = await email_target(mailbox, "starttls", certificate[0]).send(AlertBatch.single(make_alert()))
        assert not result.ok and result.attempts == 1 and "STARTTLS" in result.reason
    finally:
        server.close()
    server = await smtp_server(mailbox, tls_context=server_tls(certificate))
    try:
        target = email_target(mailbox, "starttls", certificate[0], password="wrong")
        result = await target.send(AlertBatch.single(make_alert()))
        assert not result.ok and result.attempts == 1 and "535" in result.reason
        assert "wrong" not in result.reason and mailbox.messages == []
    finally:
        server.close()


async def test_email_plain_with_auth_on_loopback() -> None:
    mailbox = Mailbox()
    server = await smtp_server(mailbox, auth_require_tls=False)
    try:
        batch = AlertBatch.single(make_alert())
        result = await email_target(mailbox, "none", None).send(batch)
        assert result.ok, result.reason
        check_mail(mailbox, batch)
    finally:
        server.close()
    with pytest.raises(ConfigError, match="clear text"):
        EmailTarget(host="smtp.example", security="none", username="u", password="p", sender="a@b",
                    recipients=["c@d"], policy=FAST)  # fmt: skip


def test_email_text_of_a_digest() -> None:
    alerts = [make_alert(n) for n in range(30)]
    digest = AlertBatch.digest(alerts[0], 30, [a.id for a in alerts], [a.url for a in alerts], 0.0, 600.0)
    assert email_subject(digest).endswith("(+29 more)")
    text = email_text(digest)
    assert "+29 more reports:" in text and alerts[1].url in text and alerts[29].url not in text
    subject = email_subject(AlertBatch.single(make_alert(claim_text="a\r\nBcc: evil@x " + "y" * 300)))
    assert "\n" not in subject and len(subject) < 150


# --- Throttling and replays ---------------------------------------------------------------


def test_200_syndicated_copies_are_one_alert_and_one_digest() -> None:
    throttle = Throttle(window=600.0)
    alerts = [make_alert(n) for n in range(200)]
    t0 = 1_700_000_000.0
    decisions = [throttle.offer(alert, t0 + n) for n, alert in enumerate(alerts)]
    sent = [d.batch for d in decisions if d.action == "send"]
    assert len(sent) == 1 and sent[0] is not None and sent[0].id == alerts[0].id
    assert [d.action for d in decisions[1:]] == ["hold"] * 199
    assert throttle.flush(t0 + 599) == []  # the window is still open
    assert throttle.next_due() == t0 + 600
    [digest] = throttle.flush(t0 + 600)
    assert digest.kind == "digest" and digest.count == 199 and digest.more == 198
    assert digest.alert.id == alerts[1].id and digest.claim_id == "claim-mosul"
    assert digest.alert_ids == [a.id for a in alerts[1:]] and digest.urls[0] == alerts[1].url
    assert digest.window_start == datetime.fromtimestamp(t0, UTC)
    assert digest.id == AlertBatch.digest(alerts[1], 199, [], [], 0.0, 1.0).id  # stable
    # Replays of every alert, during and after the next window: nothing again.
    assert {throttle.offer(alert, t0 + 700).action for alert in alerts} == {"duplicate"}
    assert throttle.flush(t0 + 1200) == []
    assert throttle.state("claim-mosul").quiet
    assert {throttle.offer(alert, t0 + 5000).action for alert in alerts} == {"duplicate"}
    # A new report after the claim went quiet is sent at once again.
    assert throttle.offer(make_alert(500), t0 + 5000).action == "send"


def test_throttle_state_is_small_json_and_per_claim() -> None:
    states: dict[str, Any] = {}
    throttle = Throttle(window=60.0, remember=10, states=states)
    for n in range(25):
        throttle.offer(make_alert(n), 100.0)
    assert throttle.offer(make_alert(0, claim_id="other"), 100.0).action == "send"
    assert set(states) == {"claim-mosul", "other"}
    state = states["claim-mosul"]
    assert json.loads(json.dumps(state)) == state
    assert len(state["seen"]) == 10 and state["held"] == 24 and len(state["ids"]) == 24
    assert ClaimState.from_dict(state).to_dict() == state
    [digest] = throttle.flush(200.0)
    assert digest.count == 24 and digest.claim_id == "claim-mosul"
    assert throttle.state("other").quiet  # it held nothing: its window just closed
    # One held alert goes out as itself.
    throttle2 = Throttle(window=60.0)
    throttle2.offer(make_alert(1), 0.0)
    throttle2.offer(make_alert(2), 1.0)
    [one] = throttle2.flush(60.0)
    assert one.kind == "alert" and one.id == make_alert(2).id


def test_no_window_means_every_alert_at_once() -> None:
    throttle = Throttle(window=0.0)
    actions = [throttle.offer(make_alert(n % 3), float(n)).action for n in range(6)]
    assert actions == ["send"] * 3 + ["duplicate"] * 3
    assert throttle.flush(100.0) == []


async def test_throttled_delivery_to_a_real_receiver_and_replay(receiver: Receiver) -> None:
    throttle = Throttle(window=600.0)
    alerts = [make_alert(n) for n in range(200)]
    async with Deliverer.from_settings(settings(alert_webhook_urls=[receiver.url()])) as deliverer:
        for pass_number in range(2):  # the second pass is a replay of the same alerts
            for n, alert in enumerate(alerts):
                decision = throttle.offer(alert, 1000.0 + n + pass_number * 700)
                if decision.batch is not None:
                    await deliverer.deliver(decision.batch)
            for batch in throttle.flush(1600.0 + pass_number * 700):
                await deliverer.deliver(batch)
    assert [r.json()["type"] for r in receiver.requests] == ["alert", "digest"]
    assert receiver.requests[1].json()["count"] == 199
    for req in receiver.requests:
        check_signature(req)


# --- Settings ----------------------------------------------------------------------------


def test_settings_lists_and_secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secret").write_text("from-a-file\n")
    (tmp_path / "password").write_text("smtp-pass\n")
    (tmp_path / "slack").write_text(
        "https://chat.example/services/A/B/C\n\nhttps://chat.example/services/D/E/F\n"
    )
    monkeypatch.setenv("WIREWATCH_ALERT_WEBHOOK_URLS", "https://a.example/hook, https://b.example/hook")
    monkeypatch.setenv("WIREWATCH_ALERT_WEBHOOK_SECRET_FILE", str(tmp_path / "secret"))
    monkeypatch.setenv("WIREWATCH_ALERT_SLACK_URLS_FILE", str(tmp_path / "slack"))
    monkeypatch.setenv("WIREWATCH_ALERT_SMTP_HOST", "smtp.example")
    monkeypatch.setenv("WIREWATCH_ALERT_SMTP_USERNAME", "alerts")
    monkeypatch.setenv("WIREWATCH_ALERT_SMTP_PASSWORD_FILE", str(tmp_path / "password"))
    monkeypatch.setenv("WIREWATCH_ALERT_SMTP_FROM", "wirewatch@example.org")
    monkeypatch.setenv("WIREWATCH_ALERT_SMTP_TO", '["desk@example.org", "night@example.org"]')
    loaded = make_settings()
    assert loaded.alert_webhook_urls == ["https://a.example/hook", "https://b.example/hook"]
    assert loaded.alert_webhook_secret is not None
    assert loaded.alert_webhook_secret.get_secret_value() == "from-a-file"
    assert [u.get_secret_value() for u in loaded.alert_slack_urls][1] == "https://chat.example/services/D/E/F"
    assert loaded.alert_smtp_to == ["desk@example.org", "night@example.org"]
    assert (
        "smtp-pass" not in repr(loaded) and "from-a-file" not in repr(loaded) and "/B/C" not in repr(loaded)
    )
    deliverer = Deliverer.from_settings(loaded)
    names = [t.name for t in deliverer.targets]
    assert names[:2] == ["webhook https://a.example/hook", "webhook https://b.example/hook"]
    assert names[-1] == "smtp smtp.example:587" and len(names) == 5
    assert not any("/B/C" in name or "/E/F" in name for name in names)
    asyncio.run(deliverer.aclose())


def test_unusable_settings_are_refused() -> None:
    unsigned = {"alert_webhook_secret": None, "alert_webhook_urls": ["https://a.example/h"]}
    with pytest.raises(
        ValidationError, match="WIREWATCH_ALERT_WEBHOOK_URLS set without WIREWATCH_ALERT_WEBHOOK_SECRET"
    ):
        settings(**unsigned)  # refused at start
    with pytest.raises(ConfigError, match="SECRET"):  # and by the deliverer, given such settings
        Deliverer.from_settings(settings().model_copy(update=unsigned))
    # The settings and the deliverer refuse by the same rules (wirewatch.core.alert_targets).
    for update, rule in [
        ({"alert_webhook_urls": ["ftp://a.example/h"]}, "http"),
        ({"alert_slack_urls": [SecretStr("chat.example/services/T/B/TOPSECRET")]}, "http"),
        ({"alert_smtp_host": "smtp.example", "alert_smtp_to": ["a@b"]}, "FROM"),
        ({"alert_smtp_host": "smtp.example", "alert_smtp_from": "a@b"}, "_TO"),
    ]:
        with pytest.raises(ValidationError, match=rule):
            settings(**update)
        with pytest.raises(ConfigError, match=rule) as refused:
            Deliverer.from_settings(settings().model_copy(update=update))
        assert "TOPSECRET" not in str(refused.value)


async def test_secrets_stay_out_of_logs_and_dead_letters(caplog: pytest.LogCaptureFixture) -> None:
    slack = f"http://127.0.0.1:{closed_port()}/services/T1/B1/TOPSECRET"
    batch = AlertBatch.single(make_alert())
    with caplog.at_level(logging.DEBUG):
        async with Deliverer.from_settings(settings(alert_slack_urls=[slack], alert_retry_attempts=2)) as d:
            [result] = await d.deliver(batch)
    assert not result.ok
    letter = dead_letter_for(batch, result)
    assert "TOPSECRET" not in caplog.text and "TOPSECRET" not in letter.reason
    assert "TOPSECRET" not in letter.model_dump_json() and "alert delivery failed" in caplog.text


def test_a_decision_is_remembered_only_once_recorded() -> None:
    """Deciding stores nothing: the stream stores the claim's state itself, with the batch
    owed to its targets (the Outbox tests below), so a crash before it has the alert read
    again and sent, not dropped as already seen."""
    throttle = Throttle(window=600)
    alert = make_alert(1)
    decision, state = throttle.decide(alert, 100.0)
    assert decision.action == "send" and state is not None
    assert throttle.decide(alert, 101.0)[0].action == "send"  # not recorded yet: a crash resends it
    throttle.record(alert.claim_id, state)
    again, nothing = throttle.decide(alert, 102.0)
    assert again.action == "duplicate" and nothing is None


# --- Outbox: what a crash in the middle of a delivery sends again ------------------------------


def test_a_batch_is_owed_to_each_target_until_it_is_done_with_it() -> None:
    state = ClaimState()
    single, other = AlertBatch.single(make_alert(1)), AlertBatch.single(make_alert(2))
    state.owe(single, ["webhook a", "slack b"])
    state.owe(other, ["webhook a"])
    state.owe(other, [])  # no target: nothing owed
    state.paid(single.id, "slack b")
    state.paid(single.id, "email c")  # not owed: no change
    # What the table stores and gives back after a restart.
    restored = ClaimState.from_dict(json.loads(json.dumps(state.to_dict())))
    throttle = Throttle(window=0, states={"claim": state.to_dict(), "other": ClaimState().to_dict()})
    assert throttle.owes("claim") and not throttle.owes("other") and not throttle.owes("unknown")
    assert restored.owed_batches() == [(single, ["webhook a"]), (other, ["webhook a"])]
    restored.paid(single.id, "webhook a")
    restored.paid(other.id, "webhook a")
    assert restored.owed == [] and ClaimState.from_dict({"v": 1}).owed == []  # a state of before


@dataclass
class Outlets:
    """Two webhook receivers on one loopback server: ``/chat`` answers at once, ``/slow`` only
    once ``release`` is set. Each request is kept as (path, alert id, the claim states then)."""

    states: dict[str, Any]
    release: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        seen = json.loads(json.dumps(self.states))
        self.requests.append((request.path, request.headers["X-Wirewatch-Alert-Id"], seen))
        if request.path == "/slow":
            await self.release.wait()
        return web.Response(text="ok")


async def test_a_crash_while_one_target_is_slow_resends_only_to_that_target() -> None:
    """One target answers at once, the other hangs, and the worker dies meanwhile: the claim's
    state (its table, recovered after the restart) owes the batch to the slow one only, so
    the alert read again goes to it and not again to the first."""
    states: dict[str, Any] = {}
    outlets = Outlets(states)
    app = web.Application()
    app.router.add_post("/{tail:.*}", outlets.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    urls = [str(server.make_url("/chat")), str(server.make_url("/slow"))]
    try:
        async with Deliverer.from_settings(settings(alert_webhook_urls=urls)) as deliverer:
            names = [target.name for target in deliverer.targets]
            slow = names[1]

            async def send_to(batch: AlertBatch, name: str) -> None:
                target = deliverer.target(name)
                assert target is not None
                [result] = await deliverer.deliver(batch, [target])
                assert result.ok

            throttle = Throttle(window=0, states=states)
            alert = make_alert(1)
            decision, state = throttle.decide(alert, 100.0)
            assert decision.batch is not None and state is not None
            sending = asyncio.create_task(
                Outbox(throttle, send_to).send(alert.claim_id, state, decision.batch, names)
            )

            def owed_to() -> list[list[str]]:
                return [entry["targets"] for entry in states.get(alert.claim_id, {}).get("owed", [])]

            for _ in range(500):
                if owed_to() == [[slow]] and len(outlets.requests) == 2:
                    break
                await asyncio.sleep(0.01)
            assert owed_to() == [[slow]]  # the chat target is done with it, the slow one is not
            sending.cancel()  # the worker dies
            with pytest.raises(asyncio.CancelledError):
                await sending

            # The restarted worker: the states its table recovers, and the alert read again.
            recovered = Throttle(window=0, states=json.loads(json.dumps(states)))
            outlets.release.set()
            assert await Outbox(recovered, send_to).resume(alert.claim_id, names) == 1
            assert recovered.decide(alert, 101.0)[0].action == "duplicate"
            assert recovered.state(alert.claim_id).owed == []
            assert await Outbox(recovered, send_to).resume(alert.claim_id, names) == 0  # nothing more
    finally:
        await server.close()
    assert sorted((path, alert_id) for path, alert_id, _ in outlets.requests) == [
        ("/chat", alert.id),
        ("/slow", alert.id),
        ("/slow", alert.id),
    ]
    # The state owing the batch to both was stored before either target got it.
    first_states = [seen for path, _, seen in outlets.requests[:2]]
    assert all(seen[alert.claim_id]["owed"][0]["batch"]["id"] == alert.id for seen in first_states)


async def test_a_batch_owed_to_a_target_no_longer_configured_is_dropped(receiver: Receiver) -> None:
    states: dict[str, Any] = {}
    throttle = Throttle(window=0, states=states)
    alert = make_alert(3)
    decision, state = throttle.decide(alert, 100.0)
    assert decision.batch is not None and state is not None
    state.owe(decision.batch, ["webhook http://gone.example/hook", "webhook http://kept.example/hook"])
    throttle.record(alert.claim_id, state)  # what a crash left
    sent: list[str] = []

    async def send_to(batch: AlertBatch, name: str) -> None:
        sent.append(name)

    assert await Outbox(throttle, send_to).resume(alert.claim_id, ["webhook http://kept.example/hook"]) == 1
    assert sent == ["webhook http://kept.example/hook"]
    assert throttle.state(alert.claim_id).owed == []


# --- Naming the targets, their health, resending dead letters --------------------------------


def test_targets_are_labelled_by_kind_and_host_only_and_told_apart() -> None:
    """The labels (metrics, start line, `up`, `status`) show no path, query, user info or Slack
    secret; the names computed from the settings are the deliverer's; two targets of one kind on
    one host get labels of their own."""
    configured = settings(
        alert_webhook_urls=[
            "https://user:pw@hooks.example.org:8443/alerts/TOKENPATH?token=QUERYSECRET",
            "https://hooks.example.org:8443/audit",
        ],
        alert_slack_urls=[SecretStr("https://hooks.slack.example/services/T/B/SLACKSECRET")],
        alert_smtp_host="mail.example.org",
        alert_smtp_from="wirewatch@example.org",
        alert_smtp_to=["desk@example.org"],
    )
    deliverer = Deliverer.from_settings(configured)
    names = [t.name for t in deliverer.targets]
    assert configured_target_names(configured) == names
    labels = list(deliverer.labels.values())
    assert labels[2:] == ["slack hooks.slack.example", "smtp mail.example.org:587"]
    assert labels[0].startswith("webhook hooks.example.org:8443 #") and labels[1].startswith(
        "webhook hooks.example.org:8443 #"
    )
    assert labels[0] != labels[1]
    shown = describe_targets(configured)
    assert shown == ", ".join(labels)
    for secret in ("TOKENPATH", "QUERYSECRET", "pw@", "SLACKSECRET", "/audit", "/services"):
        assert secret not in shown
    assert describe_targets(settings()) == NO_TARGETS
    asyncio.run(deliverer.aclose())


def test_a_target_is_failing_from_its_first_failure_to_its_next_delivery() -> None:
    name = "webhook http://hooks.example.org/alerts"
    health = TargetHealth({name: "webhook hooks.example.org", "smtp m:25": "smtp m:25"})
    assert health.warning() is None
    health.delivered(name, 1_000.0)
    health.failed(name, "HTTP 404: no such hook (not retryable; 1 attempt, 0.0 s)", 1_060.0)
    health.failed(name, "HTTP 404: still not (not retryable; 1 attempt, 0.0 s)", 1_120.0)
    health.parked(name, "delivery-1", "connection refused")
    assert health.warning() == (
        "webhook hooks.example.org: failing since 1970-01-01T00:17:40Z, 1 parked for retry: "
        "HTTP 404: still not (not retryable; 1 attempt, 0.0 s)"
    )
    [webhook, smtp] = health.report()
    assert webhook["state"] == "failing" and webhook["parked"] == 1
    assert webhook["last_delivered_at"] == "1970-01-01T00:16:40Z" and smtp["state"] == "ok"
    health.delivered(name, 1_200.0)
    still = "HTTP 404: still not (not retryable; 1 attempt, 0.0 s)"
    assert health.warning() == f"webhook hooks.example.org: 1 parked for retry: {still}"
    health.unparked(name, "delivery-1")
    assert health.warning() is None
    health.failed("webhook http://gone.example/", "x", 1_300.0)  # not configured: ignored
    assert health.warning() is None


async def test_a_dead_letter_gives_back_its_target_and_batch(receiver: Receiver) -> None:
    receiver.script = [(410, {})]
    batch = AlertBatch.digest(make_alert(1), 3, ["a1", "a2", "a3"], ["u1", "u2", "u3"], 1e9, 1e9 + 60)
    async with http_client(settings()) as client:
        result = await WebhookTarget(client, receiver.url(), SECRET, FAST).send(batch)
    letter = dead_letter_for(batch, result)
    target, again = undelivered(letter)
    assert target == result.target and again == batch and again.body() == batch.body()
    with pytest.raises(ValueError, match="cut at 64 KiB"):
        undelivered(letter.model_copy(update={"payload": (letter.payload or "")[:-10]}))
    with pytest.raises(ValueError, match="does not name the target"):
        undelivered(letter.model_copy(update={"reason": "webhook http://other.example/: HTTP 410"}))
    with pytest.raises(ValueError, match="not an alert delivery"):
        undelivered(letter.model_copy(update={"stage": "fetcher.feed"}))


def test_a_resend_request_is_done_once_per_dead_letter_as_of_its_date() -> None:
    letter = dead_letter_for(
        AlertBatch.single(make_alert(4)),
        DeliveryResult("webhook http://hooks.example.org/a", False, 1, 0.0, "HTTP 404", "HTTPStatus", 404),
    )
    [first] = plan([letter])
    [later] = plan([letter.model_copy(update={"created_at": datetime(2030, 1, 1, tzinfo=UTC)})])
    assert first.request is not None and later.request is not None
    state = ClaimState()
    assert state.first_resend(first.request.key())
    assert not state.first_resend(first.request.key())  # asked twice, or read again after a crash
    assert ClaimState.from_dict(state.to_dict()).resent == state.resent  # stored with the claim
    assert state.first_resend(later.request.key())  # it failed again: a new dead letter
    assert plan([letter], target="slack") == [] and len(plan([letter], target="HOOKS.example")) == 1
