"""The syntax of the network addresses settings name: a host, a ``host:port``, an e-mail address.

Checked when the settings load, so that ``WIREWATCH_KAFKA_BOOTSTRAP=localhost`` or an SMTP
recipient ``not-an-address`` stops the process at start, naming its variable, instead of a
client failing obscurely later. Syntax only: no name is looked up (a broker or mail server
may not resolve from where the settings are checked).

Standard library only: the settings import it.
"""

from __future__ import annotations

import ipaddress
import re
from email.utils import parseaddr

#: One label of a host name: letters (any script: an international name), digits, hyphens,
#: and underscores (container and compose service names have them); not starting or ending
#: with a hyphen. Names are looked up as written, so nothing stricter is asked.
_LABEL = r"(?!-)[\w-]{1,63}(?<!-)"
HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
#: The longest host name DNS carries.
MAX_HOST_NAME = 253
#: A port: one to five ASCII digits (``str.isdigit`` also takes other scripts' digits).
_PORT = re.compile(r"[0-9]{1,5}")
#: The local part of an e-mail address: RFC 5322's dot-atom (non-ASCII letters too, which
#: SMTPUTF8 servers take), or a quoted string.
_LOCAL_PART = re.compile(r"""(?:[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*|"[^"\\\r\n]*")""")


def host_problem(host: str) -> str | None:
    """What is wrong with ``host`` as a host name or IP address, to follow it in a message
    (``'smtp://mail' is a URL, not a host name``), or None when it is one. An IPv6 address
    is taken with or without brackets."""
    if "://" in host:
        return "is a URL, not a host name"
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(literal)
        return None
    except ValueError:
        pass
    if ":" in host:
        name, _, port = host.rpartition(":")
        if _PORT.fullmatch(port) and name and ":" not in name:
            return "has a port"
        return "is not a host name or IP address"
    if not HOST_NAME.fullmatch(host) or len(host) > MAX_HOST_NAME:
        return "is not a host name or IP address"
    labels = host.rstrip(".").split(".")
    if all(label.isascii() and label.isdigit() for label in labels):
        return "is not an IP address"  # 999.1.1.1, 10.1: digits only, yet no address
    return None


def split_host_port(entry: str, *, usual_port: int) -> tuple[str, int]:
    """``host:port`` (an IPv6 address in brackets: ``[::1]:9092``) -> ``(host, port)``, the
    host as written (brackets kept). ValueError saying what is wrong, to follow the entry in a
    message; ``usual_port`` is the one it suggests when the port is missing."""
    text = entry.strip()
    if "://" in text:
        after = text.split("://", 1)[1].split("/", 1)[0]
        raise ValueError(f"has a scheme: write host:port without it ({after or 'host:port'!r})")
    if text.startswith("["):
        address, bracket, rest = text[1:].partition("]")
        try:
            ok = bool(bracket) and ipaddress.ip_address(address).version == 6
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("is not an IPv6 address in brackets ([::1]:9092)")
        host = f"[{address}]"
        colon, port = rest[:1], rest[1:]
    else:
        host, colon, port = text.rpartition(":")
        if not colon:
            host, port = text, ""
        elif ":" in host:
            raise ValueError(f"has an IPv6 address without brackets: write [address]:{usual_port}")
        if problem := host_problem(host):
            raise ValueError(problem)
    if not colon or not port:
        raise ValueError(f"has no port: write host:port ({f'{host}:{usual_port}'!r})")
    if not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise ValueError(f"has a port that is not a number from 1 to 65535 ({port!r})")
    return host, int(port)


def mail_address_problem(text: str) -> str | None:
    """What is wrong with ``text`` as one e-mail address (``name@example.org``, or with a
    display name: ``Desk <desk@example.org>``), to follow it in a message, or None. Syntax
    only: the domain is not looked up."""
    stripped = text.strip()
    _, address = parseaddr(stripped)
    whole = stripped == address or stripped.endswith(f"<{address}>")
    local, at, domain = address.rpartition("@")
    if (
        not address
        or not whole
        or not at
        or not _LOCAL_PART.fullmatch(local)
        or not domain
        or host_problem(domain)
    ):
        return "is not an e-mail address (name@example.org, or Name <name@example.org>)"
    return None
