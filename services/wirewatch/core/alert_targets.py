"""What makes an alert target usable: one definition of each rule, for the settings (which
refuse an unusable target at start, naming its variable) and for the alerts' delivery code
(which builds the targets, :mod:`wirewatch.alerts.delivery`).

Standard library only: the settings import it, and must not import the alerts modules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

from wirewatch.core.hosts import host_problem, mail_address_problem

#: The message when webhooks are configured without the key that signs them.
WEBHOOK_SECRET_MISSING = (
    "WIREWATCH_ALERT_WEBHOOK_URLS set without WIREWATCH_ALERT_WEBHOOK_SECRET (or _FILE): "
    "webhooks are signed with it"
)
#: SMTP security modes, and the port each uses by default.
SMTP_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def http_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a webhook (JSON or Slack) address, to follow its name in a
    message (``'ftp://x' is not an http(s) URL with a host``), or None when it is usable."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number in range
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL with a host"
    return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (``localhost`` or a loopback address)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def mail_addresses_problem(sender: str | None, recipients: Sequence[str]) -> str | None:
    """What is wrong with the sender or a recipient of e-mail alerts, naming its variable, or
    None (:func:`mail_address_problem`: syntax only). Several recipients are a list: each is
    one address."""
    var = "WIREWATCH_ALERT_SMTP_"
    if sender is not None and (problem := mail_address_problem(sender)):
        return f"{var}FROM={sender!r} {problem}"
    for recipient in recipients:
        if problem := mail_address_problem(recipient):
            return f"{var}TO: {recipient!r} {problem}"
    return None


def smtp_problem(
    *,
    host: str,
    sender: str | None,
    recipients: Sequence[str],
    security: str,
    username: str | None,
    has_password: bool,
) -> str | None:
    """Why e-mail alerts to ``host`` cannot work as configured, naming the variables, or None."""
    var = "WIREWATCH_ALERT_SMTP_"
    if security not in SMTP_PORTS:
        return f"{var}SECURITY={security!r} is not one of {', '.join(SMTP_PORTS)}"
    if not sender:
        return f"{var}HOST set without {var}FROM: e-mail alerts need a sender"
    if not recipients:
        return f"{var}HOST set without {var}TO: e-mail alerts need recipients"
    if problem := host_problem(host):
        return f"{var}HOST={host!r} {problem}: the mail server's host name or address (its port: {var}PORT)"
    if problem := mail_addresses_problem(sender, recipients):
        return problem
    if username is not None and not has_password:
        return f"{var}USERNAME set without {var}PASSWORD (or _FILE): SMTP AUTH needs both"
    if username is None and has_password:
        return f"{var}PASSWORD set without {var}USERNAME: SMTP AUTH needs both"
    if security == "none" and has_password and not is_loopback(host):
        return (
            f"{var}SECURITY=none with a password, to {var}HOST={host} (not this machine): refusing to "
            "send SMTP credentials in clear text to a remote server (use starttls or tls)"
        )
    return None
