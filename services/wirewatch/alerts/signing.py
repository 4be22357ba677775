"""Webhook signatures: what is signed, and how a receiver checks it.

Every webhook request carries::

    X-Wirewatch-Alert-Id:  <delivery id>            (the alert id, or the digest id)
    X-Wirewatch-Timestamp: <unix seconds, integer>  (when this attempt was sent)
    X-Wirewatch-Signature: sha256=<hex>

where ``<hex>`` is the lower-case hex HMAC-SHA256, keyed with the shared secret
(``WIREWATCH_ALERT_WEBHOOK_SECRET``, UTF-8), of the bytes::

    <timestamp> "." <alert id> "." <raw request body>

A receiver recomputes it over the raw body (before any JSON parsing), compares in constant
time, rejects a timestamp more than a few minutes from its clock (a replayed request), and
keeps the alert ids it accepted for that long (a retried delivery has a fresh timestamp and
signature but the same id: acknowledge it without acting twice).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Wirewatch-Signature"
ALERT_ID_HEADER = "X-Wirewatch-Alert-Id"
TIMESTAMP_HEADER = "X-Wirewatch-Timestamp"
#: Default tolerance of :func:`verify` between the timestamp and the receiver's clock.
DEFAULT_TOLERANCE = 300.0


def signed_material(timestamp: str, alert_id: str, body: bytes) -> bytes:
    """The exact bytes the signature covers."""
    return timestamp.encode("ascii") + b"." + alert_id.encode("utf-8") + b"." + body


def sign(secret: str, timestamp: str, alert_id: str, body: bytes) -> str:
    """The ``X-Wirewatch-Signature`` value: ``sha256=<hex>``."""
    mac = hmac.new(secret.encode("utf-8"), signed_material(timestamp, alert_id, body), hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_headers(secret: str, alert_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The three headers of one attempt, signed at ``now`` (default: the current time)."""
    timestamp = str(int(time.time() if now is None else now))
    return {
        ALERT_ID_HEADER: alert_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, alert_id, body),
    }


def verify(
    secret: str,
    headers: dict[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """A receiver's check: signature matches and the timestamp is within ``tolerance`` seconds.

    ``headers`` is looked up case-insensitively. Replays inside the tolerance are the receiver's
    to catch, by remembering the alert ids it has accepted.
    """
    lower = {key.lower(): value for key, value in headers.items()}
    timestamp = lower.get(TIMESTAMP_HEADER.lower(), "")
    alert_id = lower.get(ALERT_ID_HEADER.lower(), "")
    given = lower.get(SIGNATURE_HEADER.lower(), "")
    # ASCII digits only (str.isdigit() also says yes to "²", which int() refuses), and not more of
    # them than int() parses: whatever the headers hold, the answer is yes or no, never an exception.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 20):
        return False
    if not alert_id or not given:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(given, sign(secret, timestamp, alert_id, body))
