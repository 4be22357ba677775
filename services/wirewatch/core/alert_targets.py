"""What makes an alert target usable, and what it is called: one definition of each rule, for
the settings (which refuse an unusable target at start, naming its variable), for the alerts'
delivery code (which builds the targets, :mod:`wirewatch.alerts.delivery`) and for what names
the configured targets (the alerts service's start line, ``wirewatch up``, ``wirewatch status``).

A target has two names, neither with a secret in it:

* its *name* (``webhook https://hooks.example.org/alerts``, ``slack https://hooks.slack.com/…#1a2b3c4d``,
  ``smtp mail.example.org:587``): the identity its parked deliveries, the claims' owed batches
  and its dead letters (id and reason) go by; a webhook's path is kept, its query and user info
  are not;
* its *label* (``webhook hooks.example.org``): kind and host only, for the metrics, the logs'
  list of targets and the status; two targets of one kind on one host are told apart by a
  short hash of their name (``slack hooks.slack.com #3fa2b1``).

Standard library only (and :mod:`wirewatch.core.ids`): the settings import it, and must not
import the alerts modules.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from wirewatch.core.hosts import host_problem, mail_address_problem
from wirewatch.core.ids import stable_id

if TYPE_CHECKING:
    from wirewatch.core.settings import Settings

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


def webhook_name(url: str) -> str:
    """``webhook https://host/path``: no user info, query or fragment."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"webhook {parts.scheme}://{parts.hostname}{port}{parts.path}"


def slack_name(url: str) -> str:
    """``slack https://host/…#abcd1234``: the path of an incoming webhook is its secret."""
    parts = urlsplit(url)
    return f"slack {parts.scheme}://{parts.hostname}/…#{stable_id('slack', url)[:8]}"


def smtp_name(host: str, port: int) -> str:
    """``smtp host:port``."""
    return f"smtp {host}:{port}"


def configured_target_names(settings: Settings) -> list[str]:
    """The names of the targets ``settings`` configure, in the order the alerts service builds
    them (webhooks, Slack webhooks, e-mail): the same names, computed without building them."""
    names = [webhook_name(url) for url in settings.alert_webhook_urls]
    names += [slack_name(url.get_secret_value()) for url in settings.alert_slack_urls]
    if settings.alert_smtp_host:
        port = settings.alert_smtp_port or SMTP_PORTS.get(settings.alert_smtp_security, 0)
        names.append(smtp_name(settings.alert_smtp_host, port))
    return names


def target_label(name: str) -> str:
    """The kind and host of the target called ``name`` (``webhook hooks.example.org:8443``)."""
    kind, _, rest = name.partition(" ")
    host = urlsplit(rest).netloc if "://" in rest else rest
    return f"{kind} {host}".strip()


def target_labels(names: Sequence[str]) -> dict[str, str]:
    """Each name's :func:`target_label`, with a short hash of the name added where two names
    would share one (two webhooks on one host), so that each target has its own."""
    labels = {name: target_label(name) for name in names}
    shared = {label for label in labels.values() if list(labels.values()).count(label) > 1}
    return {
        name: f"{label} #{hashlib.sha256(name.encode('utf-8')).hexdigest()[:6]}" if label in shared else label
        for name, label in labels.items()
    }


#: What the lists of alert targets say when there are none.
NO_TARGETS = "none (alerts go to the alerts topic and index only)"


def describe_targets(settings: Settings) -> str:
    """The labels of the targets ``settings`` configure, comma-separated (or :data:`NO_TARGETS`),
    for ``wirewatch up``'s banner."""
    return ", ".join(target_labels(configured_target_names(settings)).values()) or NO_TARGETS
