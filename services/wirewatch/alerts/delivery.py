"""Alert delivery targets: signed JSON webhooks, Slack-compatible webhooks, e-mail over SMTP.

Each target has ``async send(batch) -> DeliveryResult`` (it never raises for a delivery
failure): retries with backoff happen inside, and a failed result becomes a dead letter with
:func:`dead_letter_for`. :class:`Deliverer` builds the targets from settings, shares one HTTP
client, and sends one batch to every target at once::

    async with Deliverer.from_settings(settings) as deliverer:
        for result in await deliverer.deliver(batch):
            if not result.ok:
                letter = dead_letter_for(batch, result)
                await service.send_dead_letter(letter)  # logged, counted, sent

HTTP targets never follow a redirect to another host: only a 307/308 to the same host (and
not from https down to http) is followed, up to three hops; any other 3xx fails the delivery.
Names shown in results, logs and dead letters hide secrets: a webhook is shown without its
query string or user info, a Slack URL only by its host and a short hash; metrics and the lists
of targets show only each target's kind and host, its *label*
(:mod:`wirewatch.core.alert_targets`).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from types import TracebackType
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import aiosmtplib
import httpx

from wirewatch.alerts.batch import AlertBatch
from wirewatch.alerts.render import email_subject, email_text, slack_message
from wirewatch.alerts.retry import Attempt, DeliveryResult, RetryPolicy, run_with_retries
from wirewatch.alerts.signing import signature_headers
from wirewatch.core.alert_targets import (
    SMTP_PORTS,
    WEBHOOK_SECRET_MISSING,
    http_url_problem,
    slack_name,
    smtp_name,
    smtp_problem,
    target_label,
    target_labels,
    webhook_name,
)
from wirewatch.core.ids import stable_id
from wirewatch.core.logs import get_logger
from wirewatch.core.models import DeadLetter
from wirewatch.core.settings import Settings
from wirewatch.fetcher.politeness import parse_retry_after

log = get_logger(__name__)

#: Dead-letter stage of a delivery that kept failing.
STAGE = "alerts.deliver"
#: Statuses worth another try.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Same-host 307/308 redirects followed per request.
MAX_REDIRECTS = 3
#: Bytes of an error response kept for the reason.
ERROR_SNIPPET = 300
USER_AGENT = "wirewatch-alerts/0.1"


class ConfigError(ValueError):
    """Alert targets that cannot be built (the settings refuse such values at start, by the same
    rules: :mod:`wirewatch.core.alert_targets`)."""


class Target(Protocol):
    """Somewhere alerts go."""

    @property
    def name(self) -> str:
        """A label safe to log (no secret)."""
        ...

    async def send(self, batch: AlertBatch) -> DeliveryResult:
        """Deliver ``batch``, retrying as the policy allows; failures are returned, not raised."""
        ...


# --- HTTP --------------------------------------------------------------------------------


def _check_http_url(url: str, what: str) -> None:
    """ConfigError unless ``url`` is an http(s) URL with a host; the URL is not shown (a Slack
    URL is a secret, a webhook's query may hold a token)."""
    if problem := http_url_problem(url):
        raise ConfigError(f"{what} {problem.replace(url, '…')}")


class HttpPost:
    """One POST of a fixed body to a fixed URL, as an :class:`Attempt`; redirects checked."""

    def __init__(self, client: httpx.AsyncClient, url: str, name: str) -> None:
        self.client = client
        self.url = url
        self.name = name

    async def __call__(self, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
        url = self.url
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                request = self.client.build_request(
                    "POST", url, content=body, headers=headers, timeout=timeout
                )
                response = await self.client.send(request, stream=True, follow_redirects=False)
                try:
                    if response.status_code in (307, 308) and "location" in response.headers:
                        target = urljoin(url, response.headers["location"])
                        refusal = _redirect_refusal(url, target)
                        if refusal:
                            return Attempt.fail(
                                f"HTTP {response.status_code}: {refusal}", "Redirect", response.status_code
                            )
                        url = target
                        continue
                    return await _classify(response)
                finally:
                    await response.aclose()
            return Attempt.fail(f"more than {MAX_REDIRECTS} redirects", "Redirect")
        except httpx.TimeoutException as exc:
            return Attempt.retry(f"timeout after {timeout:g} s ({type(exc).__name__})", "TimeoutError")
        except httpx.TransportError as exc:
            reason = f"connection error: {self._scrub(str(exc)) or type(exc).__name__}"
            if _certificate_error(exc):  # will not heal by itself
                return Attempt.fail(reason, "SSLCertVerificationError")
            return Attempt.retry(reason, type(exc).__name__)

    def _scrub(self, text: str) -> str:
        """Error text without the secret parts of the URL."""
        parts = urlsplit(self.url)
        for secret in (self.url, parts.path, parts.query):
            if secret and secret != "/":
                text = text.replace(secret, "…")
        return text


def _redirect_refusal(source: str, target: str) -> str | None:
    """Why a redirect from ``source`` to ``target`` is not followed, or None to follow it."""
    old, new = urlsplit(source), urlsplit(target)
    if new.scheme not in ("http", "https"):
        return "redirect to a non-http URL refused"
    if (new.hostname or "").lower() != (old.hostname or "").lower():
        return f"redirect to another host ({new.hostname}) refused"
    if old.scheme == "https" and new.scheme == "http":
        return "redirect from https to http refused"
    return None


async def _classify(response: httpx.Response) -> Attempt:
    status = response.status_code
    if 200 <= status < 300:
        return Attempt.delivered(status)
    snippet = b""
    async for chunk in response.aiter_bytes():
        snippet += chunk
        if len(snippet) >= ERROR_SNIPPET:
            break
    text = " ".join(snippet[:ERROR_SNIPPET].decode("utf-8", "replace").split())
    reason = f"HTTP {status}" + (f": {text}" if text else "")
    if status in RETRY_STATUSES:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return Attempt.retry(reason, "HTTPStatus", status, retry_after)
    if 300 <= status < 400:
        return Attempt.fail(f"{reason} (redirect not followed; configure the final URL)", "Redirect", status)
    return Attempt.fail(reason, "HTTPStatus", status)


class WebhookTarget:
    """POSTs the batch's JSON (:meth:`AlertBatch.body`), signed as :mod:`wirewatch.alerts.signing` says."""

    def __init__(self, client: httpx.AsyncClient, url: str, secret: str, policy: RetryPolicy) -> None:
        _check_http_url(url, "a webhook URL")
        if not secret:
            raise ConfigError(WEBHOOK_SECRET_MISSING)
        self._post = HttpPost(client, url, webhook_name(url))
        self._secret = secret
        self.policy = policy

    @property
    def name(self) -> str:
        return self._post.name

    def __repr__(self) -> str:
        return f"WebhookTarget({self.name!r})"

    async def send(self, batch: AlertBatch) -> DeliveryResult:
        body = batch.body()

        async def attempt(timeout: float) -> Attempt:
            headers = {"Content-Type": "application/json; charset=utf-8"}
            headers |= signature_headers(self._secret, batch.id, body)  # signed afresh on every try
            return await self._post(body, headers, timeout)

        return await run_with_retries(self.name, attempt, self.policy)


class SlackTarget:
    """POSTs ``{"text", "blocks"}`` (:func:`wirewatch.alerts.render.slack_message`)."""

    def __init__(self, client: httpx.AsyncClient, url: str, policy: RetryPolicy) -> None:
        _check_http_url(url, "a Slack webhook URL")
        self._post = HttpPost(client, url, slack_name(url))
        self.policy = policy

    @property
    def name(self) -> str:
        return self._post.name

    def __repr__(self) -> str:
        return f"SlackTarget({self.name!r})"

    async def send(self, batch: AlertBatch) -> DeliveryResult:
        body = json.dumps(slack_message(batch), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}

        async def attempt(timeout: float) -> Attempt:
            return await self._post(body, headers, timeout)

        return await run_with_retries(self.name, attempt, self.policy)


# --- E-mail ------------------------------------------------------------------------------


class EmailTarget:
    """Sends a plain-text e-mail per batch over SMTP: STARTTLS, implicit TLS or (locally) plain."""

    def __init__(
        self,
        *,
        host: str,
        sender: str,
        recipients: Sequence[str],
        policy: RetryPolicy,
        port: int | None = None,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        problem = smtp_problem(
            host=host,
            sender=sender,
            recipients=recipients,
            security=security,
            username=username,
            has_password=password is not None,
        )
        if problem:
            raise ConfigError(problem)
        self.host = host
        self.port = port or SMTP_PORTS[security]
        self.security = security
        self.sender = sender
        self.recipients = list(recipients)
        self.policy = policy
        self._username = username
        self._password = password
        self._tls = ssl.create_default_context(cafile=ca_file) if security != "none" else None

    @property
    def name(self) -> str:
        return smtp_name(self.host, self.port)

    def __repr__(self) -> str:
        return f"EmailTarget({self.name!r}, security={self.security!r})"

    def message(self, batch: AlertBatch) -> EmailMessage:
        """The e-mail for ``batch``: subject with the claim, plain-text evidence."""
        msg = EmailMessage()
        msg["Subject"] = email_subject(batch)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(idstring=batch.id, domain="wirewatch.invalid")
        msg["X-Wirewatch-Alert-Id"] = batch.id
        msg.set_content(email_text(batch))
        return msg

    async def send(self, batch: AlertBatch) -> DeliveryResult:
        msg = self.message(batch)

        async def attempt(timeout: float) -> Attempt:
            try:
                await aiosmtplib.send(
                    msg,
                    sender=self.sender,
                    recipients=self.recipients,
                    hostname=self.host,
                    port=self.port,
                    username=self._username,
                    password=self._password,
                    use_tls=self.security == "tls",
                    start_tls=self.security == "starttls",
                    tls_context=self._tls,
                    timeout=timeout,
                )
            except (aiosmtplib.SMTPException, OSError) as exc:
                return _smtp_failure(exc)
            return Attempt.delivered()

        return await run_with_retries(self.name, attempt, self.policy)


def _smtp_failure(exc: aiosmtplib.SMTPException | OSError) -> Attempt:
    """Retry on connection trouble and SMTP 4xx; give up on 5xx, bad certificates, missing TLS/AUTH."""
    kind = type(exc).__name__
    if _certificate_error(exc):
        return Attempt.fail(f"TLS: {exc}", "SSLCertVerificationError")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        reason = "recipients refused: " + "; ".join(f"{e.code} {e.message}" for e in exc.recipients)
        transient = all(400 <= error.code < 500 for error in exc.recipients)
        return Attempt.retry(reason, kind) if transient else Attempt.fail(reason, kind)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reason = f"SMTP {exc.code}: {exc.message}"
        return Attempt.retry(reason, kind) if 400 <= exc.code < 500 else Attempt.fail(reason, kind)
    connection = (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError)
    if isinstance(exc, (*connection, OSError)):
        return Attempt.retry(f"connection error: {exc}", kind)
    return Attempt.fail(f"SMTP: {exc}", kind)  # no STARTTLS offered, no AUTH offered, …


def _certificate_error(exc: BaseException) -> bool:
    """Whether ``exc`` or what caused it is a failed certificate check."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# --- All targets -------------------------------------------------------------------------


class Deliverer:
    """Every configured target, one shared HTTP client; ``async with`` closes the client."""

    def __init__(self, targets: Sequence[Target], client: httpx.AsyncClient | None = None) -> None:
        self.targets = list(targets)
        self._client = client
        #: Each target's label by name: kind and host only, for metrics and the status.
        self.labels = target_labels([target.name for target in self.targets])

    def label(self, name: str) -> str:
        """The label of the target called ``name`` (configured or not: a parked delivery may
        name a target configured no longer)."""
        return self.labels.get(name) or target_label(name)

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient | None = None) -> Deliverer:
        """Targets from the ``alert_*`` settings; raises :class:`ConfigError` on unusable ones."""
        client = client or http_client(settings)
        return cls(targets_from_settings(settings, client), client)

    def target(self, name: str) -> Target | None:
        """The configured target called ``name``, or None (no longer configured)."""
        return next((target for target in self.targets if target.name == name), None)

    async def deliver(
        self, batch: AlertBatch, targets: Sequence[Target] | None = None
    ) -> list[DeliveryResult]:
        """Send ``batch`` to ``targets`` (default: every target) concurrently; one result per
        target, in order."""
        chosen = self.targets if targets is None else targets
        results = list(await asyncio.gather(*(_safe_send(target, batch) for target in chosen)))
        for result in results:
            extra = {
                "target": result.target,
                "alert_id": batch.id,
                "claim_id": batch.claim_id,
                "count": batch.count,
                "attempts": result.attempts,
            }
            if result.ok:
                log.info("alert delivered", extra=extra)
            else:
                log.warning("alert delivery failed", extra=extra | {"reason": result.reason})
        return results

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> Deliverer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


async def _safe_send(target: Target, batch: AlertBatch) -> DeliveryResult:
    """``target.send``, with an unexpected error (a bug) turned into a failed result."""
    try:
        return await target.send(batch)
    except Exception as exc:
        log.exception("alert target raised", extra={"target": target.name, "alert_id": batch.id})
        return DeliveryResult(target.name, False, 1, 0.0, f"unexpected error: {exc}", type(exc).__name__)


def http_client(settings: Settings) -> httpx.AsyncClient:
    """The client HTTP targets share: no automatic redirects, settings' timeout."""
    return httpx.AsyncClient(
        follow_redirects=False,
        timeout=httpx.Timeout(settings.alert_timeout),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
    )


def targets_from_settings(settings: Settings, client: httpx.AsyncClient) -> list[Target]:
    """The webhook, Slack and e-mail targets the settings configure (possibly none)."""
    policy = RetryPolicy.from_settings(settings)
    secret = settings.alert_webhook_secret.get_secret_value() if settings.alert_webhook_secret else ""
    targets: list[Target] = [
        WebhookTarget(client, url, secret, policy) for url in settings.alert_webhook_urls
    ]
    targets += [SlackTarget(client, url.get_secret_value(), policy) for url in settings.alert_slack_urls]
    if settings.alert_smtp_host:
        password = settings.alert_smtp_password
        targets.append(
            EmailTarget(
                host=settings.alert_smtp_host,
                port=settings.alert_smtp_port,
                security=settings.alert_smtp_security,
                username=settings.alert_smtp_username,
                password=password.get_secret_value() if password else None,
                sender=settings.alert_smtp_from or "",  # refused by EmailTarget when unset
                recipients=settings.alert_smtp_to,
                ca_file=str(settings.alert_smtp_ca_file) if settings.alert_smtp_ca_file else None,
                policy=policy,
            )
        )
    return targets


def dead_letter_for(
    batch: AlertBatch,
    result: DeliveryResult,
    *,
    source_topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> DeadLetter:
    """The dead letter of a failed delivery: stage ``alerts.deliver``, the target's name at the
    start of the reason (``<name>: <why>``), the webhook payload as the payload (what
    ``wirewatch alerts resend`` delivers again: :func:`undelivered`). Its id is stable per
    (target, delivery id), so a replayed failure is one record."""
    return DeadLetter(
        id=stable_id(STAGE, result.target, batch.id),
        stage=STAGE,
        reason=f"{result.target}: {result.reason}"[:4000],
        error_type=result.error_type or "DeliveryError",
        source_topic=source_topic,
        partition=partition,
        offset=offset,
        key=batch.claim_id,
        payload=batch.body().decode("utf-8")[: 64 * 1024],
        url=batch.alert.url,
    )


def undelivered(letter: DeadLetter) -> tuple[str, AlertBatch]:
    """The target and the batch of a dead letter :func:`dead_letter_for` made: the inverse, for
    delivering it again. Raises ValueError when ``letter`` is not one (another stage, a payload
    cut at 64 KiB, a reason that does not start with the target the id was made from)."""
    if letter.stage != STAGE:
        raise ValueError(f"a dead letter of stage {letter.stage}, not {STAGE}: not an alert delivery")
    if not letter.payload:
        raise ValueError("its payload (the delivery) was not kept")
    try:
        batch = AlertBatch.from_payload(letter.payload)
    except ValueError as exc:
        raise ValueError(f"its payload is not a whole delivery (cut at 64 KiB?): {exc}") from None
    target = letter.reason.partition(": ")[0]
    if stable_id(STAGE, target, batch.id) != letter.id:
        raise ValueError("its reason does not name the target it was made for")
    return target, batch
