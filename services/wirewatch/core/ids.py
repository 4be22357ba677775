"""Stable identifiers: one article, one id, whatever URL variant it was reached by."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import string
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

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
#: Query parameters that ask for the AMP rendering of a page, with the values that do (lower-case).
AMP_PARAMS = {
    "amp": {"", "1", "true", "yes"},
    "_amp": {"", "1", "true"},
    "outputtype": {"amp"},
    "output": {"amp"},
}
#: Hosts of the Google AMP cache: ``https://www-example-com.cdn.ampproject.org/c/s/www.example.com/a``.
AMP_CACHE_SUFFIX = ".cdn.ampproject.org"


#: What a path holds as it is (RFC 3986: unreserved characters, sub-delimiters, ``:``, ``@``,
#: ``/``), with the ``%`` of its escapes; anything else is written as UTF-8 percent-escapes.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})?")
#: Tab and line breaks, which browsers remove from anywhere in a URL (a link split over lines).
_URL_BREAKS = re.compile(r"[\t\n\r]")


class InvalidURLError(ValueError):
    """A URL wirewatch cannot fetch or identify (no http(s) scheme or no host)."""


#: URLs whose canonical form is remembered: a feed's items are read at every poll that changed it
#: (50 items for one new), so most of its links were canonicalised a poll before.
CANONICAL_CACHE_SIZE = 8192
#: Longer URLs are canonicalised every time, not remembered (a hostile feed's megabyte links).
REMEMBERED_URL_CHARS = 2048


def canonical_url(url: str) -> str:
    """Normalise a URL so that variants of one article compare equal.

    Lower-cases scheme and host, drops the fragment, default ports, user info, tracking
    parameters and a trailing ``?``, and sorts the remaining query parameters. A URL is written
    one way as the server gets it: an international domain name in its ASCII form
    (``café.fr`` -> ``xn--caf-dma.fr``), the path with UTF-8 percent-escapes for what it cannot
    hold as it is (``/été`` -> ``/%C3%A9t%C3%A9``, a space -> ``%20``) in upper case, escapes of
    letters, digits and ``-._~`` decoded, tabs and line breaks removed (RFC 3986, 6.2.2; what
    browsers send): a feed's link and the URL it redirects to name the same page. AMP variants
    become the page they render: an ``amp.`` host prefix, a leading ``/amp/`` or trailing
    ``/amp`` path segment, ``.amp`` / ``.amp.html`` endings, ``?amp=1`` (and ``outputType=amp``…),
    and Google AMP cache URLs (``*.cdn.ampproject.org/c/s/…``, ``google.com/amp/s/…``).
    Idempotent. Raises ``InvalidURLError`` (and nothing else) for anything it cannot normalise.
    The last ``CANONICAL_CACHE_SIZE`` answers are remembered (errors are not; nor URLs longer
    than ``REMEMBERED_URL_CHARS``).

    (courlan's ``normalize_url`` was compared: in strict mode it drops every query parameter
    not on its own list, ``?id=7`` included, so distinct articles would share an id.)
    """
    if len(url) <= REMEMBERED_URL_CHARS:
        return _remembered_canonical_url(url)
    return _checked_canonical_url(url)


@functools.lru_cache(maxsize=CANONICAL_CACHE_SIZE)
def _remembered_canonical_url(url: str) -> str:
    return _checked_canonical_url(url)


def _checked_canonical_url(url: str) -> str:
    try:
        return _canonical_url(url)
    except InvalidURLError:
        raise
    except ValueError as exc:  # urlsplit: unbalanced IPv6 brackets, NFKC-invalid netloc; lone surrogates
        raise InvalidURLError(f"unparseable URL: {url.strip()[:200]!r}: {exc}") from exc


def _amp_cache_origin(scheme: str, host: str, path: str, query: str) -> str | None:
    """The origin URL behind a Google AMP cache URL, or None."""
    if host.endswith(AMP_CACHE_SUFFIX):
        rest = path.split("/", 3)  # ["", "c" | "v" | "i" | "wp", "s" | host, …]
        if len(rest) < 4 or rest[1] not in ("c", "v", "i", "wp"):
            return None
        secure = rest[2] == "s"
        target = rest[3] if secure else "/".join(rest[2:])
    elif host in ("google.com", "www.google.com") and path.startswith("/amp/"):
        target = path[len("/amp/") :]
        secure = target.startswith("s/")
        target = target[2:] if secure else target
    else:
        return None
    if not target or target.startswith("/"):
        return None
    return f"{'https' if secure else 'http'}://{target}" + (f"?{query}" if query else "")


def _strip_amp_path(path: str) -> str:
    """The path without its AMP markers, until none is left.

    ``/amp/a`` -> ``/a``; ``/a/amp/`` and ``/a/amp`` -> ``/a/``; ``/a.amp.html`` -> ``/a.html``;
    ``/a.amp`` -> ``/a``."""
    while True:
        before = path
        if path.startswith("/amp/"):
            path = path[len("/amp") :]
        if path.endswith("/amp/"):
            path = path[: -len("amp/")]
        elif path.endswith("/amp"):
            path = path[: -len("amp")]
        if path.endswith(".amp.html"):
            path = path[: -len(".amp.html")] + ".html"
        elif path.endswith(".amp") and not path.endswith("/.amp"):
            path = path[: -len(".amp")]
        if path == before:
            return path


def _is_amp_param(key: str, value: str) -> bool:
    values = AMP_PARAMS.get(key.lower())
    return values is not None and value.lower() in values


def _normal_path(path: str) -> str:
    """The path in one spelling: see :func:`canonical_url` (a lone ``%`` becomes ``%25``)."""

    def escape(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "%25"
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return quote(_PERCENT.sub(escape, path), safe=_PATH_SAFE, errors="surrogatepass")


def _ascii_host(host: str) -> str:
    """An international domain name's ASCII form (IDNA), as the fetcher's client sends it."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidURLError(f"not a valid international domain name: {host[:200]!r}: {exc}") from exc


def _canonical_url(url: str) -> str:
    url = _URL_BREAKS.sub("", url.strip())
    parts = urlsplit(url)
    origin = _amp_cache_origin(
        parts.scheme.lower(), (parts.hostname or "").lower().rstrip("."), parts.path, parts.query
    )
    if origin is not None:
        parts = urlsplit(origin)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURLError(f"not an http(s) URL: {url[:200]!r}")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise InvalidURLError(f"URL has no host: {url[:200]!r}")
    host = _ascii_host(host)
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(f"bad port in URL: {url[:200]!r}") from exc
    while host.startswith("amp.") and "." in host[len("amp.") :]:
        host = host[len("amp.") :]
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS
        and not k.lower().startswith(TRACKING_PREFIXES)
        and not _is_amp_param(k, v)
    ]
    query.sort()
    path = _strip_amp_path(_normal_path(parts.path)) or "/"
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
    """The site of a URL: its host, ``www.`` aside, an international name in its ASCII form (as
    the fetched page's URL has it, so ``--source café.fr`` finds it)."""
    host = (urlsplit(url).hostname or "").lower()
    with contextlib.suppress(InvalidURLError):
        host = _ascii_host(host)
    return host[4:] if host.startswith("www.") else host


# --- ids typed by people --------------------------------------------------------------------------

#: The fewest characters of an id that the CLI takes for the whole id, as git takes the start of
#: a commit's hash.
MIN_ID_PREFIX = 6
_HEX = re.compile(r"[0-9a-fA-F]+")


class UnknownIdError(LookupError):
    """No id, or more than one, is the one given (the message says which)."""


def complete_id(
    given: str,
    ids: Iterable[str],
    what: str,
    labels: Mapping[str, str] | None = None,
    *,
    listed_by: str | None = None,
    hexadecimal: bool = False,
) -> str:
    """``given`` if it is one of ``ids``, else the one id that starts with it (at least
    :data:`MIN_ID_PREFIX` characters). Raises :class:`UnknownIdError` naming the ``what``
    (``"event"``, ``"claim"``), and listing the ids it fits, with their ``labels``, when several.

    When none fits, the message is always ``no <what> '<given>' (<why>; `<listed_by>` lists
    them)``: why is that ``given`` is not hexadecimal (when the ids are: ``hexadecimal``, as
    hashes are), or too short to stand for an id, or that no id starts with it; ``listed_by``,
    the command that shows the ids, when given."""
    known = sorted(set(ids))
    if given in known:
        return given
    fits = [i for i in known if i.startswith(given)] if len(given) >= MIN_ID_PREFIX else []
    if len(fits) == 1:
        return fits[0]
    if len(fits) > 1:
        named = [f"{i} {(labels or {}).get(i, '')[:50]}".rstrip() for i in fits[:10]]
        more = f" and {len(fits) - 10} more" if len(fits) > 10 else ""
        raise UnknownIdError(
            f"{len(fits)} {what}s start with {given!r}, give more of the id: {'; '.join(named)}{more}"
        )
    if hexadecimal and not _HEX.fullmatch(given):
        why = f"{what} ids are hexadecimal: 0-9 and a-f"
    elif len(given) < MIN_ID_PREFIX:
        why = f"give an id, or its first {MIN_ID_PREFIX} characters or more"
    else:
        why = f"no {what} id starts with it"
    listed = f"; `{listed_by}` lists them" if listed_by else ""
    raise UnknownIdError(f"no {what} {given!r} ({why}{listed})")
