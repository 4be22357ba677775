"""Stable identifiers: one article, one id, whatever URL variant it was reached by."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: Query parameters that only track the reader; they never change the article.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "yclid",
        "_ga",
        "_gl",
        "ref",
        "ref_src",
        "cmpid",
        "xtor",
        "at_medium",
        "at_campaign",
        "ocid",
        "smid",
        "soc_src",
        "soc_trk",
        "ito",
        "ns_mchannel",
        "ns_source",
    }
)
TRACKING_PREFIXES = ("utm_", "at_", "pk_", "mtm_", "hsa_")
DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidURLError(ValueError):
    """A URL wirewatch cannot fetch or identify (no http(s) scheme or no host)."""


def canonical_url(url: str) -> str:
    """Normalise a URL so that variants of one article compare equal.

    Lower-cases scheme and host, drops the fragment, default ports, tracking parameters
    and a trailing ``?``, and sorts the remaining query parameters. Idempotent.
    Raises ``InvalidURLError`` (and nothing else) for anything it cannot normalise.
    """
    try:
        return _canonical_url(url)
    except InvalidURLError:
        raise
    except ValueError as exc:  # urlsplit: unbalanced IPv6 brackets, NFKC-invalid netloc; lone surrogates
        raise InvalidURLError(f"unparseable URL: {url.strip()[:200]!r}: {exc}") from exc


def _canonical_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURLError(f"not an http(s) URL: {url[:200]!r}")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise InvalidURLError(f"URL has no host: {url[:200]!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(f"bad port in URL: {url[:200]!r}") from exc
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    ]
    query.sort()
    path = parts.path or "/"
    # Strip again: whitespace that ended the path before a dropped fragment or query would
    # otherwise be stripped only on the next pass, breaking idempotence.
    return urlunsplit((scheme, netloc, path, urlencode(query), "")).strip()


def stable_id(*parts: str) -> str:
    """sha256 over the parts (NUL-separated), 32 hex characters."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def article_id(url: str) -> str:
    """The article id: a hash of the canonical URL."""
    return stable_id(canonical_url(url))


def feed_id(url: str) -> str:
    return stable_id("feed", canonical_url(url))


def source_domain(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host
