"""``wirewatch eval extract``, the token P/R/F1 measure and the bytes-to-text decoding it relies on."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from wirewatch.cli import main
from wirewatch.evaluation import PRF, html_files, mean_prf, page_id, read_html, token_prf, tokens
from wirewatch.fetcher.extract import ExtractionError, decode_html_bytes, extract_article


def _article(title: str, paragraphs: list[str], charset: str = "utf-8") -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="{charset}">'
        f"<title>{title} | Example News</title>"
        '<meta property="og:site_name" content="Example News"></head><body>'
        '<header><nav><a href="/">Home</a> <a href="/politics">Politics</a> <a href="/sport">Sport</a></nav>'
        f"</header><main><article><h1>{title}</h1>{body}</article></main>"
        "<footer><p>All rights reserved.</p></footer></body></html>"
    )


PLAIN = _article(
    "Council approves budget",
    [
        "The city council approved a budget of 5 million euros on Tuesday after a long debate about "
        "public transport and schools, which had divided the majority for weeks.",
        "Opposition members said the plan did not do enough for housing, and promised amendments next "
        "month when the committee meets again to review the spending lines one by one.",
        "The mayor said the vote was a turning point for the city and thanked residents for their "
        "patience during the consultation, which drew more than two thousand written submissions.",
    ],
)
GZIPPED = _article(
    "Harbour reopens after storm",
    [
        "The harbour reopened on Friday morning after three days of closure caused by the storm that "
        "swept the coast, damaging two piers and several fishing boats moored in the old basin.",
        "Port authorities said divers had inspected the channel overnight and found no obstruction, "
        "although speed limits will apply to every vessel until the buoys are replaced next week.",
        "Fishermen welcomed the decision but asked for compensation for the lost days at sea, a request "
        "the regional council said it would examine at its next session.",
    ],
)
LATIN1 = _article(
    "Le café de la gare a fermé",
    [
        "Le café de la gare a fermé ses portes samedi soir après quarante ans d'activité, au grand regret "
        "des habitués qui s'y retrouvaient chaque matin avant le premier train pour la ville.",
        "La propriétaire, âgée de soixante-dix ans, a expliqué qu'elle partait à la retraite et qu'aucun "
        "repreneur ne s'était présenté malgré plusieurs annonces publiées depuis l'été dernier.",
        "La mairie étudie la possibilité de racheter les murs pour y installer une épicerie solidaire, "
        "un projet qui sera présenté au prochain conseil municipal au début du mois prochain.",
    ],
    charset="iso-8859-1",
)
NAV_ONLY = (
    "<!DOCTYPE html><html lang='en'><head><title>Example News</title></head><body><header><nav><ul>"
    + "".join(f"<li><a href='/section-{i}'>Section {i}</a></li>" for i in range(15))
    + "</ul></nav></header></body></html>"
)


@pytest.fixture
def html_dir(tmp_path: Path) -> Path:
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "plain.html").write_text(PLAIN, encoding="utf-8")
    (pages / "zipped.html.gz").write_bytes(gzip.compress(GZIPPED.encode("utf-8")))
    (pages / "latin.html").write_bytes(LATIN1.encode("iso-8859-1"))
    (pages / "menu.html").write_text(NAV_ONLY, encoding="utf-8")
    (pages / "junk.html.gz").write_bytes(b"\x00\x01 not gzip, not html")
    (pages / "notes.txt").write_text("not a page", encoding="utf-8")
    return pages


@pytest.mark.parametrize("workers", [["--workers", "1"], []])
def test_eval_extract_writes_the_text_extract_article_gives(
    html_dir: Path, tmp_path: Path, workers: list[str]
) -> None:
    out = tmp_path / "out" / "extracted.json"
    result = CliRunner().invoke(
        main, ["eval", "extract", "--html-dir", str(html_dir), "--output", str(out), *workers]
    )
    assert result.exit_code == 0, result.output + result.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert sorted(data) == ["junk", "latin", "menu", "plain", "zipped"]
    assert all(
        list(item) == ["articleBody"] and isinstance(item["articleBody"], str) for item in data.values()
    )

    assert data["plain"]["articleBody"] == extract_article(PLAIN).text
    assert data["zipped"]["articleBody"] == extract_article(GZIPPED).text
    assert data["latin"]["articleBody"] == extract_article(LATIN1).text
    assert "approved a budget of 5 million euros" in data["plain"]["articleBody"]
    assert "All rights reserved" not in data["plain"]["articleBody"]
    assert "no obstruction" in data["zipped"]["articleBody"]
    assert "Le café de la gare a fermé ses portes" in data["latin"]["articleBody"]

    # Failures: empty text, each named on stderr, and counted.
    with pytest.raises(ExtractionError):
        extract_article(NAV_ONLY)
    assert data["menu"]["articleBody"] == "" and data["junk"]["articleBody"] == ""
    assert "menu:" in result.stderr and "junk:" in result.stderr
    assert "5 pages, 2 without text" in result.stderr


def test_eval_extract_requires_an_existing_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["eval", "extract", "--html-dir", str(tmp_path / "nope"), "--output", str(tmp_path / "o.json")]
    )
    assert result.exit_code != 0
    assert not (tmp_path / "o.json").exists()


def test_saved_pages_are_listed_and_named_by_their_id(html_dir: Path) -> None:
    assert [p.name for p in html_files(html_dir)] == [
        "junk.html.gz",
        "latin.html",
        "menu.html",
        "plain.html",
        "zipped.html.gz",
    ]
    assert page_id(html_dir / "zipped.html.gz") == "zipped"
    assert page_id(Path("a.b.html")) == "a.b"
    assert read_html(html_dir / "zipped.html.gz") == GZIPPED
    assert read_html(html_dir / "latin.html") == LATIN1


# --- decoding ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ('<meta charset="iso-8859-1">café'.encode("latin-1"), None, '<meta charset="iso-8859-1">café'),
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">мир'.encode("cp1251"),
            None,
            '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">мир',
        ),
        ("<p>café</p>".encode(), None, "<p>café</p>"),  # no declaration: UTF-8
        (b"<p>caf\xe9</p>", None, "<p>caf\xe9</p>"),  # not UTF-8: read as windows-1252, no error
        ("<p>café</p>".encode("latin-1"), "text/html; charset=ISO-8859-1", "<p>café</p>"),  # header first
        (b"\xef\xbb\xbf<p>caf\xc3\xa9</p>", "text/html; charset=latin-1", "<p>café</p>"),  # BOM wins
        (b"<meta charset=base64><p>x</p>", None, "<meta charset=base64><p>x</p>"),  # not a text codec
        (b"<meta charset=undefined><p>x</p>", None, "<meta charset=undefined><p>x</p>"),
        (b"<meta charset=utf-16><p>x</p>", None, "<meta charset=utf-16><p>x</p>"),  # ASCII-declared: UTF-8
        (b"<meta charset=no-such-codec><p>\xff</p>", None, "<meta charset=no-such-codec><p>\xff</p>"),
    ],
)
def test_decode_html_bytes(body: bytes, content_type: str | None, expected: str) -> None:
    assert decode_html_bytes(body, content_type) == expected


@pytest.mark.parametrize("label", ["idna", "punycode", "rot13", "zip", "hex", "utf-7", "x-unknown", '"', ""])
def test_decode_html_bytes_never_raises(label: str) -> None:
    body = f"<meta charset={label}><p>".encode() + bytes(range(256))
    assert isinstance(decode_html_bytes(body), str)
    assert isinstance(decode_html_bytes(body, f"text/html; charset={label}"), str)


# --- scoring ---------------------------------------------------------------------------------------------


def test_tokens_are_lowercased_words() -> None:
    assert tokens("Hello, World! It's 5-4 — café_au_lait.") == [
        "hello",
        "world",
        "it",
        "s",
        "5",
        "4",
        "café_au_lait",
    ]
    assert tokens("") == [] and tokens(None) == [] and tokens(" ...  ") == []


def test_token_prf_counts_a_multiset_intersection() -> None:
    # predicted: a a b c (4 tokens); truth: a b b d e (5 tokens); common: a, b = 2
    score = token_prf("A a, b c", "a b b d e")
    assert score.precision == pytest.approx(2 / 4)
    assert score.recall == pytest.approx(2 / 5)
    assert score.f1 == pytest.approx(2 * 0.5 * 0.4 / 0.9)
    assert token_prf("The cat sat.", "the CAT sat") == PRF(1.0, 1.0, 1.0)
    assert token_prf("word order does not matter", "matter not does order word").f1 == 1.0


def test_token_prf_on_empty_texts() -> None:
    assert token_prf("", "some truth") == PRF(0.0, 0.0, 0.0)
    assert token_prf(None, "some truth") == PRF(0.0, 0.0, 0.0)
    assert token_prf("some output", "") == PRF(0.0, 0.0, 0.0)
    assert token_prf("", "") == PRF(1.0, 1.0, 1.0)
    assert token_prf("...", "  ") == PRF(1.0, 1.0, 1.0)  # no word tokens on either side
    assert token_prf("nothing shared", "completely different") == PRF(0.0, 0.0, 0.0)


def test_mean_prf_averages_over_pages_and_counts_missing_pages_as_empty() -> None:
    truth = {"a": "one two", "b": "three four", "c": "five"}
    score = mean_prf({"a": "one two", "b": "three"}, truth)
    assert score.precision == pytest.approx((1 + 1 + 0) / 3)
    assert score.recall == pytest.approx((1 + 0.5 + 0) / 3)
    assert score.f1 == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert mean_prf({"a": "one two"}, truth, ids=["a"]) == PRF(1.0, 1.0, 1.0)
    assert mean_prf({}, {}) == PRF(0.0, 0.0, 0.0)
