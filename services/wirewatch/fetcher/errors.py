"""Why a fetch gave no usable body: one exception class per reason, all ``FetchError``.

The message of each is the one-line reason that goes into the log and the dead letter, so it
names the URL and the limit or rule that stopped the fetch.
"""

from __future__ import annotations

#: How an SSRF-guard refusal ends (``AddressPolicy.check_url``): the setting that lifts it. A
#: reason ending so is a refusal by policy (:func:`refused_by_policy`), not the site's fault.
ALLOW_HOSTS_HINT = "(WIREWATCH_FETCH_ALLOW_HOSTS can allow it)"


def refused_by_policy(reason: str | None) -> bool:
    """True if ``reason`` (an error's message, as kept in a feed's state) is the SSRF guard
    refusing an address that ``fetch_allow_hosts`` could allow."""
    return reason is not None and reason.endswith(ALLOW_HOSTS_HINT)


class FetchError(RuntimeError):
    """An HTTP fetch that did not give a usable body (status, size, network, policy)."""


class UnsafeURLError(FetchError):
    """The URL (or a redirect to it) points where the fetcher must not go (SSRF guard)."""


class RedirectError(FetchError):
    """Too many redirects, a redirect loop, or a redirect without a usable ``Location``."""


class BodyTooLargeError(FetchError):
    """The (decoded) body grew past ``fetch_max_bytes``."""


class ContentTypeError(FetchError):
    """The response's media type is not one the fetcher reads for this kind of fetch.

    ``media_type`` is the one refused (lower case, no parameters): an HTML page where a feed was
    expected, or a feed where an article page was, gets a reason naming the right command."""

    def __init__(self, message: str, media_type: str) -> None:
        super().__init__(message)
        self.media_type = media_type


class DeadlineError(FetchError):
    """The request did not complete (headers and whole body) within ``fetch_timeout``."""


class HTTPStatusError(FetchError):
    """The server answered with an error status."""

    def __init__(self, message: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class TransportError(FetchError):
    """The connection failed (DNS, connect, reset, protocol error)."""


class RobotsDisallowedError(FetchError):
    """The site's robots.txt disallows this URL for our user agent."""


class RobotsUnavailableError(FetchError):
    """robots.txt could not be read (5xx, unreachable): the host is retried later."""
