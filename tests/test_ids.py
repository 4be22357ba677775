"""Article identity: one article, one id, whatever URL variant it was reached by."""

from __future__ import annotations

import contextlib
import random
import re
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from wirewatch.core.ids import (
    AMP_PARAMS,
    MIN_ID_PREFIX,
    TRACKING_PARAMS,
    InvalidURLError,
    UnknownIdError,
    article_id,
    canonical_url,
    complete_id,
    feed_id,
    source_domain,
    stable_id,
)

SETTINGS = settings(max_examples=200, deadline=None)

_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
hosts = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_label, min_size=1, max_size=3),
    st.sampled_from(["com", "org", "fr", "example", "co.uk"]),
)
_segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~%", min_size=1, max_size=15)
paths = st.lists(_segment, max_size=4).map(lambda segs: "/" + "/".join(segs))
_key = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
    lambda k: (
        k not in TRACKING_PARAMS
        and not k.startswith(("utm_", "at_", "pk_", "mtm_", "hsa_"))
        and k not in AMP_PARAMS
    )  # (`amp=` asks for the AMP page: dropped, so not a parameter to keep)
)
_value = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789-", max_size=10)
params = st.lists(st.tuples(_key, _value), max_size=4, unique_by=lambda kv: kv[0])
tracking = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(sorted(TRACKING_PARAMS)),
            st.builds(lambda p, s: p + s, st.sampled_from(["utm_", "UTM_", "Utm_"]), _label),
        ),
        _value,
    ),
    min_size=1,
    max_size=3,
)
schemes = st.sampled_from(["http", "https"])
fragments = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-=&?/", max_size=12)


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" for k, v in pairs)


def _url(
    scheme: str,
    host: str,
    path: str,
    pairs: list[tuple[str, str]],
    port: int | None = None,
    fragment: str | None = None,
) -> str:
    netloc = host if port is None else f"{host}:{port}"
    url = f"{scheme}://{netloc}{path}"
    if pairs:
        url += "?" + _query(pairs)
    if fragment is not None:
        url += "#" + fragment
    return url


urls = st.builds(_url, schemes, hosts, paths, params)


# --- canonical_url --------------------------------------------------------------------------------


def test_examples() -> None:
    assert (
        canonical_url("  HTTPS://WWW.Example.COM:443/News/Story.html?b=2&utm_source=rss&a=1&fbclid=x#top ")
        == "https://www.example.com/News/Story.html?a=1&b=2"
    )
    assert canonical_url("http://example.com") == "http://example.com/"
    assert canonical_url("http://example.com:8080/a?") == "http://example.com:8080/a"
    assert canonical_url("http://example.com./a") == "http://example.com/a"
    assert canonical_url("http://[2001:DB8::1]:80/a") == "http://[2001:db8::1]/a"
    assert canonical_url("https://user:secret@example.com/a") == "https://example.com/a"


@SETTINGS
@given(urls)
@example("http://a.example/b #frag")  # whitespace before a dropped fragment
@example("http://a.example/b\x1c?utm_source=x")
@example("http://a.example/p?q=%ff&r=a+b&s=%zz&t")
def test_canonical_url_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once


@SETTINGS
@given(st.sampled_from(["http://", "https://", "HTTP://", "", "ftp://", "http:"]), st.text(max_size=60))
@example("http://", "[x/")  # unbalanced IPv6 bracket: urlsplit raises ValueError
@example("http://", "a\uff03b/")  # fullwidth '#': invalid under NFKC
@example("http://", "a:99999/")
@example("http://", "a:-1/")
@example("http://", "/no-host")
def test_arbitrary_text_is_a_url_or_an_invalid_url_error(prefix: str, rest: str) -> None:
    try:
        once = canonical_url(prefix + rest)
    except InvalidURLError:
        return
    assert once.startswith(("http://", "https://"))
    assert "#" not in once
    assert canonical_url(once) == once


@SETTINGS
@given(st.text(alphabet=st.characters(categories=["Cs", "Ll", "Po"]), max_size=10))
def test_lone_surrogates_are_an_invalid_url_error_not_a_crash(rest: str) -> None:
    with contextlib.suppress(InvalidURLError):
        canonical_url(f"http://example.com/a?q={rest}")


@SETTINGS
@given(schemes, hosts, paths, params, tracking, st.randoms())
def test_tracking_parameters_are_removed(
    scheme: str,
    host: str,
    path: str,
    pairs: list[tuple[str, str]],
    trackers: list[tuple[str, str]],
    rnd: random.Random,
) -> None:
    mixed = [*pairs, *trackers]
    rnd.shuffle(mixed)
    canonical = canonical_url(_url(scheme, host, path, mixed))
    assert canonical == canonical_url(_url(scheme, host, path, pairs))
    kept = [k for k, _ in parse_qsl(urlsplit(canonical).query, keep_blank_values=True)]
    assert sorted(kept) == sorted(k for k, _ in pairs)
    assert not any(k.lower().startswith("utm_") or k.lower() == "fbclid" for k in kept)


@SETTINGS
@given(urls, fragments)
def test_fragment_is_dropped(url: str, fragment: str) -> None:
    assert canonical_url(f"{url}#{fragment}") == canonical_url(url)


@SETTINGS
@given(hosts, paths, params)
def test_default_port_is_dropped_and_others_kept(host: str, path: str, pairs: list[tuple[str, str]]) -> None:
    assert canonical_url(_url("http", host, path, pairs, port=80)) == canonical_url(
        _url("http", host, path, pairs)
    )
    assert canonical_url(_url("https", host, path, pairs, port=443)) == canonical_url(
        _url("https", host, path, pairs)
    )
    assert canonical_url(_url("https", host, path, pairs, port=80)) != canonical_url(
        _url("https", host, path, pairs)
    )
    # Another port is kept, on the host the URL has without one (an ``amp.`` prefix goes in both).
    other = urlsplit(canonical_url(_url("https", host, path, pairs, port=8443)))
    plain = urlsplit(canonical_url(_url("https", host, path, pairs)))
    assert other.port == 8443 and other.hostname == plain.hostname


@SETTINGS
@given(schemes, hosts, paths, params, st.randoms())
def test_scheme_and_host_are_case_insensitive(
    scheme: str, host: str, path: str, pairs: list[tuple[str, str]], rnd: random.Random
) -> None:
    def scramble(text: str) -> str:
        return "".join(c.upper() if rnd.random() < 0.5 else c for c in text)

    assert canonical_url(_url(scramble(scheme), scramble(host), path, pairs)) == canonical_url(
        _url(scheme, host, path, pairs)
    )


@pytest.mark.parametrize(
    "spelling",
    [
        "https://café.example/été/un article.html",  # as a person or a feed writes it
        "https://xn--caf-dma.example/%C3%A9t%C3%A9/un%20article.html",  # as the client sends it
        "https://CAFÉ.example/%c3%a9t%c3%a9/un%20article.html",  # escapes in lower case
        "https://café.example/%C3%A9t%C3%A9/un%20%61rticle.html",  # an escaped letter
        "https://café.example/été/un\n article.html",  # a link split over two lines
    ],
)
def test_one_page_has_one_url_however_it_is_spelled(spelling: str) -> None:
    """A feed's link and the URL after a redirect (what the HTTP client sends: the host's ASCII
    form, UTF-8 escapes) named one page two ways, so it got two ids and was stored twice."""
    assert canonical_url(spelling) == "https://xn--caf-dma.example/%C3%A9t%C3%A9/un%20article.html"


_path_text = (
    st.text(alphabet=st.sampled_from("abcXYZ019-._~ éèàçüßø€中文/"), min_size=1, max_size=20)
    .filter(lambda text: not text.endswith(" "))  # (a raw URL's final spaces are not part of it)
    .map(lambda text: "/" + text)
)


@SETTINGS
@given(_path_text)
def test_a_path_written_raw_or_escaped_is_one_url(path: str) -> None:
    raw = canonical_url(f"https://news.example{path}")
    assert raw == canonical_url(f"https://news.example{quote(path)}")
    lower_escapes = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(path))
    assert raw == canonical_url(f"https://news.example{lower_escapes}")
    assert raw.isascii() and canonical_url(raw) == raw


def test_a_lone_percent_is_escaped_so_the_url_stays_one_url() -> None:
    # "%%37E" read once would be "%7E", and read again "~": the lone "%" is written "%25".
    once = canonical_url("http://a.example/%%37E")
    assert once == "http://a.example/%257E" and canonical_url(once) == once


def test_a_host_that_is_no_domain_name_is_an_invalid_url() -> None:
    with pytest.raises(InvalidURLError, match="international domain name"):
        canonical_url(f"http://{'é' * 70}.example/")


def test_path_stays_case_sensitive() -> None:
    assert canonical_url("https://example.com/News") != canonical_url("https://example.com/news")


@SETTINGS
@given(schemes, hosts, paths, params, st.randoms())
def test_query_order_is_irrelevant(
    scheme: str, host: str, path: str, pairs: list[tuple[str, str]], rnd: random.Random
) -> None:
    shuffled = list(pairs)
    rnd.shuffle(shuffled)
    assert canonical_url(_url(scheme, host, path, shuffled)) == canonical_url(_url(scheme, host, path, pairs))


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "mailto:desk@example.com",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "data:text/html,<p>x</p>",
        "//example.com/no-scheme",
        "example.com/no-scheme",
        "",
        "   ",
        "http://",
        "https:///path-only",
        "http://:80/",
        "http://example.com:port/",
    ],
)
def test_unusable_urls_are_rejected(url: str) -> None:
    with pytest.raises(InvalidURLError):
        canonical_url(url)
    with pytest.raises(InvalidURLError):
        article_id(url)


@SETTINGS
@given(st.sampled_from(["ftp", "ws", "wss", "file", "gopher", "httpx", "hxxp"]), hosts, paths)
def test_non_http_schemes_are_rejected(scheme: str, host: str, path: str) -> None:
    with pytest.raises(InvalidURLError):
        canonical_url(f"{scheme}://{host}{path}")


# --- ids ------------------------------------------------------------------------------------------


@SETTINGS
@given(urls)
def test_article_id_is_stable_hex(url: str) -> None:
    aid = article_id(url)
    assert re.fullmatch(r"[0-9a-f]{32}", aid)
    assert article_id(url) == aid
    assert article_id(canonical_url(url)) == aid


@SETTINGS
@given(schemes, hosts, paths, params, tracking, fragments, st.randoms())
def test_article_id_is_the_same_for_url_variants(
    scheme: str,
    host: str,
    path: str,
    pairs: list[tuple[str, str]],
    trackers: list[tuple[str, str]],
    fragment: str,
    rnd: random.Random,
) -> None:
    base = article_id(_url(scheme, host, path, pairs))
    variant_pairs = [*pairs, *trackers]
    rnd.shuffle(variant_pairs)
    port = 80 if scheme == "http" else 443
    variant = _url(scheme.upper(), host.upper(), path, variant_pairs, port=port, fragment=fragment)
    assert article_id(f"  {variant}\n") == base


@SETTINGS
@given(urls, urls)
def test_different_articles_have_different_ids(a: str, b: str) -> None:
    if canonical_url(a) != canonical_url(b):
        assert article_id(a) != article_id(b)


def test_ids_differ_by_kind_and_scheme() -> None:
    url = "https://example.com/rss.xml"
    assert feed_id(url) != article_id(url)
    assert re.fullmatch(r"[0-9a-f]{32}", feed_id(url))
    assert article_id("http://example.com/a") != article_id("https://example.com/a")
    assert stable_id("a", "b") != stable_id("ab")  # parts are separated, not concatenated
    assert stable_id("\ud800") == stable_id("\ud800")  # lone surrogates hash, no crash


def test_source_domain() -> None:
    assert source_domain("https://WWW.Example.co.uk:8443/a") == "example.co.uk"
    assert source_domain("https://news.example.com/a") == "news.example.com"


# --- AMP variants -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("https://amp.news.example/world/story", "https://news.example/world/story"),
        ("https://news.example/2026/03/story/amp/", "https://news.example/2026/03/story/"),
        ("https://news.example/2026/03/story/amp", "https://news.example/2026/03/story/"),
        ("https://news.example/amp/2026/03/story", "https://news.example/2026/03/story"),
        ("https://news.example/world/story.amp.html", "https://news.example/world/story.html"),
        ("https://news.example/news/world-123.amp", "https://news.example/news/world-123"),
        ("https://news.example/a?amp=1&id=7", "https://news.example/a?id=7"),
        ("https://news.example/a?amp&id=7", "https://news.example/a?id=7"),
        ("https://news.example/a?AMP=true", "https://news.example/a"),
        ("https://news.example/a?outputType=amp", "https://news.example/a"),
        (
            "https://news-example.cdn.ampproject.org/c/s/news.example/a/story.html?id=7",
            "https://news.example/a/story.html?id=7",
        ),
        (
            "https://news-example.cdn.ampproject.org/v/news.example/a/story.html",
            "http://news.example/a/story.html",
        ),
        ("https://www.google.com/amp/s/amp.news.example/a/story/amp/", "https://news.example/a/story/"),
        ("https://amp.news.example:443/a/amp/?amp=1&utm_source=x#top", "https://news.example/a/"),
    ],
)
def test_amp_variants(variant: str, expected: str) -> None:
    assert canonical_url(variant) == expected
    assert article_id(variant) == article_id(expected)


@pytest.mark.parametrize(
    "url",
    [
        "https://amp.example/a",  # "amp" is the whole name: not a prefix
        "https://news.example/amplifiers/review",  # a word starting with amp
        "https://news.example/a?amp=0",  # asks for no AMP: kept as the site wrote it
        "https://news.example/a?ampere=1",
        "https://news.example/camp/",
        "https://news.example/a/.amp",
        "https://news-example.cdn.ampproject.org/x/s/news.example/a",  # not a cache path
    ],
)
def test_not_amp(url: str) -> None:
    assert canonical_url(url) == url


_amp_segment = st.sampled_from(
    ["amp", "amp.html", "x.amp", "x.amp.html", "a", "story", "", ".amp", "amp.amp"]
)
amp_paths = st.lists(st.one_of(_amp_segment, _segment), max_size=5).map(lambda segs: "/" + "/".join(segs))
amp_hosts = st.builds(lambda n, host: "amp." * n + host, st.integers(0, 3), hosts)
amp_params = st.lists(
    st.tuples(
        st.sampled_from(["amp", "AMP", "_amp", "outputType", "output", "id", "p"]),
        st.sampled_from(["", "1", "true", "amp", "0", "x"]),
    ),
    max_size=4,
)


def _amp_cache(scheme: str, host: str, path: str) -> str:
    secure = "s/" if scheme == "https" else ""
    return f"https://{host.replace('.', '-')}.cdn.ampproject.org/c/{secure}{host}{path}"


@SETTINGS
@given(schemes, amp_hosts, amp_paths, amp_params, st.booleans())
def test_amp_canonicalisation_is_idempotent(
    scheme: str, host: str, path: str, pairs: list[tuple[str, str]], cached: bool
) -> None:
    url = _url(scheme, host, path, pairs)
    if cached:
        url = _amp_cache(scheme, host, path)
    once = canonical_url(url)
    assert canonical_url(once) == once
    parts = urlsplit(once)
    assert not (parts.hostname or "").startswith("amp.") or (parts.hostname or "").count(".") == 1
    assert not parts.path.endswith(("/amp", "/amp/", ".amp.html")) and not parts.path.startswith("/amp/")


_plain_segment = _segment.filter(lambda s: "amp" not in s)
plain_paths = st.lists(_plain_segment, min_size=1, max_size=4).map(lambda segs: "/" + "/".join(segs))


@SETTINGS
@given(schemes, hosts, plain_paths, params, st.sampled_from(["host", "suffix", "prefix", "query", "cache"]))
def test_amp_variants_share_the_article_id(
    scheme: str, host: str, path: str, pairs: list[tuple[str, str]], how: str
) -> None:
    pairs = [(k, v) for k, v in pairs if k.lower() not in ("amp", "_amp", "output", "outputtype")]
    base = _url(scheme, host, path, pairs)
    if how == "host":
        variant = _url(scheme, "amp." + host, path, pairs)
    elif how == "suffix":
        base = _url(scheme, host, path.rstrip("/") + "/", pairs)
        variant = _url(scheme, host, path.rstrip("/") + "/amp/", pairs)
    elif how == "prefix":
        variant = _url(scheme, host, "/amp" + path, pairs)
    elif how == "query":
        variant = _url(scheme, host, path, [*pairs, ("amp", "1")])
    else:
        variant = _amp_cache(scheme, host, path) + (f"?{_query(pairs)}" if pairs else "")
    assert article_id(variant) == article_id(base)


# --- ids typed by people ---------------------------------------------------------------------


def test_the_start_of_an_id_stands_for_it_when_it_fits_one() -> None:
    ids = ["211b7bf383e8", "211b7c000000", "96f5087dac7c"]
    assert complete_id("96f508", ids, "event") == "96f5087dac7c"
    assert complete_id("211b7bf", ids, "event") == "211b7bf383e8"
    assert complete_id("211b7c000000", ids, "event") == "211b7c000000"  # whole ids as they are
    with pytest.raises(UnknownIdError, match=r"no event '96f50' \(give an id, or its first 6 characters"):
        complete_id("96f50", ids, "event")  # too short to stand for an id
    with pytest.raises(UnknownIdError, match=r"^no event 'ffffff' \(no event id starts with it\)$"):
        complete_id("ffffff", ids, "event")
    listed = r"^2 claims start with '211b7b', give more of the id: 211b7bf383e8 Mosul; 211b7bff$"
    with pytest.raises(UnknownIdError, match=listed):
        complete_id("211b7b", [*ids, "211b7bff"], "claim", labels={"211b7bf383e8": "Mosul"})


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("12345", "give an id, or its first 6 characters or more"),
        ("zzzzzz", "event ids are hexadecimal: 0-9 and a-f"),
        ("zz", "event ids are hexadecimal: 0-9 and a-f"),
        ("abcdef", "no event id starts with it"),
        ("96f5087dac7c00", "no event id starts with it"),
    ],
)
def test_an_id_that_fits_none_says_why_and_where_the_ids_are(typed: str, why: str) -> None:
    """Whatever is wrong with it, one form: what was asked for, why nothing is, where to look."""
    ids = ["211b7bf383e8", "96f5087dac7c"]
    with pytest.raises(UnknownIdError) as raised:
        complete_id(typed, ids, "event", listed_by="wirewatch events", hexadecimal=True)
    assert str(raised.value) == f"no event {typed!r} ({why}; `wirewatch events` lists them)"
    with pytest.raises(
        UnknownIdError, match=r"^no tracked claim 'zzzzzz' \(no tracked claim id starts with it\)$"
    ):
        complete_id("zzzzzz", ["my-claim"], "tracked claim")  # ids chosen by people: any text
    assert complete_id("my-cla", ["my-claim"], "tracked claim", hexadecimal=False) == "my-claim"


@given(st.sets(st.text("0123456789abcdef", min_size=8, max_size=12), min_size=1, max_size=30), st.data())
def test_a_start_is_its_one_id_or_an_error_naming_every_fit(ids: set[str], data: st.DataObject) -> None:
    chosen = data.draw(st.sampled_from(sorted(ids)))
    start = chosen[: data.draw(st.integers(MIN_ID_PREFIX, len(chosen)))]
    fits = sorted(i for i in ids if i.startswith(start))
    if start in ids or len(fits) == 1:
        assert complete_id(start, ids, "event") == (start if start in ids else chosen)
    else:
        with pytest.raises(UnknownIdError) as raised:
            complete_id(start, ids, "event")
        assert str(raised.value).startswith(f"{len(fits)} events start with {start!r}")
        assert all(i in str(raised.value) for i in fits[:10])


def test_canonical_forms_are_remembered_and_errors_and_long_urls_are_not() -> None:
    from wirewatch.core.ids import REMEMBERED_URL_CHARS, _remembered_canonical_url

    url = "https://Example.com/a?utm_source=rss&b=2&a=1#top"
    first = canonical_url(url)
    hits = _remembered_canonical_url.cache_info().hits
    assert canonical_url(url) == first == "https://example.com/a?a=1&b=2"
    assert _remembered_canonical_url.cache_info().hits == hits + 1
    for _ in range(2):  # raised again, not answered from memory
        with pytest.raises(InvalidURLError):
            canonical_url("ftp://example.com/file")
    long = "https://example.com/" + "a" * REMEMBERED_URL_CHARS
    size = _remembered_canonical_url.cache_info().currsize
    assert canonical_url(long) == canonical_url(long) == long
    assert _remembered_canonical_url.cache_info().currsize == size
