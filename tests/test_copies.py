"""Duplicates and text reuse: fingerprints, the copy index, the linker and ``eval dedup``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from reuse_texts import OTHER_EN, OTHER_FR, REPOST_EN, REWRITE_FR, WIRE_EN, WIRE_FR, change_words
from tables import StreamTable
from wirewatch.cli import main
from wirewatch.core.models import EnrichedArticle, RawArticle
from wirewatch.core.text import content_hash
from wirewatch.enricher.copies import CopyIndex
from wirewatch.enricher.fingerprints import GUARANTEED_WORDS, fingerprint, words
from wirewatch.enricher.offline import dedup_rows
from wirewatch.enricher.service import CopyLinker, analyse

DAY = 86400.0


def _id(n: int) -> str:
    return f"{n:032x}"


def _link(index: CopyIndex, n: int, text: str, at: float | None = None) -> Any:
    return index.link(_id(n), fingerprint(text), content_hash(text), float(n) if at is None else at)


# --- fingerprints ---------------------------------------------------------------------------------


def test_words_are_normalised_with_their_spans() -> None:
    text = "Quelque 5\u202f000 combattants, selon l\u2019AFP. Some 5,000 FIGHTERS"
    w = words(text)
    spans = [text[s:e] for s, e in zip(w.starts, w.ends, strict=True)]
    assert spans == ["Quelque", "5\u202f000", "combattants", "selon", "l", "AFP", "Some", "5,000", "FIGHTERS"]
    assert w.hashes[1] == w.hashes[7]  # 5 000 and 5,000 are one number
    assert words("fighters").hashes[0] == w.hashes[8]  # case does not matter


def test_a_shared_run_of_guaranteed_length_always_shares_a_fingerprint() -> None:
    shared = " ".join(f"mot{i}" for i in range(GUARANTEED_WORDS))
    a = fingerprint("Début propre au premier texte, rien en commun. " + shared + " Et une fin à lui.")
    b = fingerprint("Un tout autre préambule pour le second. " + shared + " Fin différente encore.")
    assert set(a.hashes.tolist()) & set(b.hashes.tolist())


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_fingerprints_never_crash_and_point_into_the_text(text: str) -> None:
    fp = fingerprint(text)
    assert len(fp.hashes) == len(fp.starts) == len(fp.ends)
    assert np.all(fp.starts < fp.ends) if len(fp) else True
    assert all(0 <= int(s) < int(e) <= len(text) for s, e in zip(fp.starts, fp.ends, strict=True))
    assert list(fp.starts) == sorted(fp.starts)
    assert fingerprint(text).hashes.tolist() == fp.hashes.tolist()  # deterministic


# --- the copy index -------------------------------------------------------------------------------


@pytest.mark.parametrize("wire", [WIRE_EN, WIRE_FR])
def test_planted_near_duplicate_with_3_percent_of_words_changed_is_found(wire: str) -> None:
    index = CopyIndex()
    _link(index, 1, wire)
    planted = change_words(wire, 0.03)
    assert planted != wire and content_hash(planted) != content_hash(wire)
    decision = _link(index, 2, planted)
    assert decision.duplicate_of == _id(1)
    assert decision.similarity is not None and 0.85 <= decision.similarity < 1.0
    assert decision.reuses == []


def test_exact_copy_has_similarity_one_and_copies_of_copies_point_at_the_original() -> None:
    index = CopyIndex()
    _link(index, 1, WIRE_EN)
    first_copy = _link(index, 2, WIRE_EN.upper())  # same normalised text
    assert (first_copy.duplicate_of, first_copy.similarity) == (_id(1), 1.0)
    near_copy_of_copy = _link(index, 3, change_words(WIRE_EN.upper(), 0.02))
    assert near_copy_of_copy.duplicate_of == _id(1)


@pytest.mark.parametrize(
    ("wire", "reuser", "share_range"),
    [(WIRE_EN, REPOST_EN, (0.35, 0.6)), (WIRE_FR, REWRITE_FR, (0.35, 0.75))],
)
def test_rewrite_that_keeps_some_paragraphs_reuses_the_original(
    wire: str, reuser: str, share_range: tuple[float, float]
) -> None:
    index = CopyIndex()
    _link(index, 1, wire)
    decision = _link(index, 2, reuser)
    assert decision.duplicate_of is None
    [reuse] = decision.reuses
    assert reuse.id == _id(1)
    assert share_range[0] <= reuse.share <= share_range[1]
    assert 0.2 <= reuse.source_share < 0.85
    # Every passage is text that really is in both articles.
    for p in reuse.passages:
        borrowed = reuser[p.start : p.end]
        assert len(borrowed.split()) >= 5
        assert borrowed in wire
        assert wire.index(borrowed) == pytest.approx(p.source_start, abs=len(borrowed))
    # The reposted paragraphs are covered, the writer's own introduction is not.
    intro_end = reuser.index("\n")
    assert all(p.start >= intro_end for p in reuse.passages)


@pytest.mark.parametrize("texts", [(WIRE_EN, OTHER_EN), (WIRE_FR, OTHER_FR), (REPOST_EN, OTHER_EN)])
def test_same_event_in_other_words_is_neither_duplicate_nor_reuse(texts: tuple[str, str]) -> None:
    index = CopyIndex()
    _link(index, 1, texts[0])
    decision = _link(index, 2, texts[1])
    assert decision.duplicate_of is None
    assert decision.reuses == []


def test_linking_again_gives_the_same_answer_and_never_points_forward() -> None:
    index = CopyIndex()
    first = _link(index, 1, WIRE_FR)
    second = _link(index, 2, REWRITE_FR)
    copy = _link(index, 3, WIRE_FR)
    for _ in range(2):
        assert _link(index, 1, WIRE_FR) == first  # the original does not become a copy of its copy
        assert _link(index, 2, REWRITE_FR) == second
        assert _link(index, 3, WIRE_FR) == copy
    assert len(index) == 3


def test_articles_expire_after_the_ttl() -> None:
    index = CopyIndex(ttl=30 * DAY)
    _link(index, 1, WIRE_EN, at=0.0)
    assert _link(index, 2, WIRE_EN, at=29 * DAY).duplicate_of == _id(1)
    _link(index, 3, OTHER_FR, at=31 * DAY)
    assert index.pop_expired() == [_id(1)]
    # The original is forgotten, and its copy (a duplicate) was never an original itself.
    assert _link(index, 4, WIRE_EN, at=31 * DAY).duplicate_of is None
    assert len(index) == 3


def test_at_most_max_articles_are_remembered_the_oldest_go_first() -> None:
    index = CopyIndex(ttl=30 * DAY, max_articles=2)
    _link(index, 1, WIRE_EN)
    _link(index, 2, OTHER_FR)
    assert index.pop_expired() == [] and len(index) == 2
    _link(index, 3, OTHER_EN)
    assert index.pop_expired() == [_id(1)] and len(index) == 2
    # The first original is forgotten; the second is still found.
    assert _link(index, 4, WIRE_EN).duplicate_of is None
    assert _link(index, 5, OTHER_EN).duplicate_of == _id(3)
    with pytest.raises(ValueError, match="at least 1"):
        CopyIndex(max_articles=0)


def test_a_linker_with_a_smaller_bound_forgets_the_oldest_records_of_its_table() -> None:
    table: dict[str, Any] = {}
    linker = CopyLinker(table, ttl_days=30)
    for n, text in enumerate([WIRE_EN, OTHER_FR, OTHER_EN], start=1):
        linker.link(_article(n, text), at=float(n))
    assert set(table) == {_id(1), _id(2), _id(3)}
    # e.g. after the setting was lowered; rebuilt when the table is recovered, where writes are refused
    recovered = StreamTable(table)
    restarted = CopyLinker(recovered, ttl_days=30, max_articles=2)
    assert len(restarted.index) == 2 and set(recovered) == {_id(1), _id(2), _id(3)}
    recovered.in_stream = True
    restarted.link(_article(4, REPOST_EN), at=4.0)  # the first link deletes what the rebuild forgot
    assert set(recovered) == {_id(3), _id(4)}


def test_index_memory_stays_small() -> None:
    index = CopyIndex()
    for n in range(300):
        _link(index, n, change_words(WIRE_EN + WIRE_FR, 0.5, seed=n))
    assert index.nbytes / len(index) < 1024


def test_records_rebuild_an_index_that_decides_the_same() -> None:
    live = CopyIndex()
    records: dict[str, dict[str, Any]] = {}
    for n, text in enumerate([WIRE_EN, WIRE_FR, WIRE_EN], 1):
        fp = fingerprint(text)
        decision = live.link(_id(n), fp, content_hash(text), float(n))
        records[_id(n)] = json.loads(
            json.dumps(live.record(_id(n), fp, content_hash(text), float(n), decision))
        )
    rebuilt = CopyIndex()
    for key, rec in sorted(records.items(), key=lambda kv: kv[1]["seq"]):
        rebuilt.restore(key, rec)
    for index in (live, rebuilt):
        assert _link(index, 4, REWRITE_FR).reuses[0].id == _id(2)
        assert _link(index, 5, change_words(WIRE_EN, 0.03)).duplicate_of == _id(1)


# --- the linker (what the stream runs, with a dict for the Faust table) ----------------------------


def _article(n: int, text: str) -> EnrichedArticle:
    url = f"https://outlet{n}.example/article"
    return analyse(
        RawArticle(
            id=_id(n),
            url=url,
            canonical_url=url,
            source=f"Outlet {n}",
            source_domain=f"outlet{n}.example",
            text=text,
            fetched_at=datetime(2026, 3, 1, tzinfo=UTC),
        )
    )


def test_linker_state_lives_in_its_table_and_survives_a_restart() -> None:
    table: dict[str, Any] = {}
    linker = CopyLinker(table, ttl_days=30)
    original = linker.link(_article(1, WIRE_EN))
    assert not original.is_duplicate and original.reuses == []
    assert set(table) == {_id(1)}
    json.dumps(table)  # what a changelog-backed Faust table stores: plain JSON

    restarted = CopyLinker({k: json.loads(json.dumps(v)) for k, v in table.items()}, ttl_days=30)
    copy = restarted.link(_article(2, change_words(WIRE_EN, 0.03)))
    assert copy.duplicate_of == _id(1) and copy.is_duplicate
    repost = restarted.link(_article(3, REPOST_EN))
    assert repost.reused_from == [_id(1)]
    assert repost.reuses[0].share > 0.3
    assert EnrichedArticle.from_bytes(repost.to_bytes()) == repost


def test_linker_forgets_expired_articles_in_its_table() -> None:
    table: dict[str, Any] = {}
    linker = CopyLinker(table, ttl_days=1)
    linker.link(_article(1, WIRE_EN), at=0.0)
    linker.link(_article(2, WIRE_FR), at=2 * DAY)
    assert set(table) == {_id(2)}


# --- wirewatch eval dedup -------------------------------------------------------------------------


def _docs() -> list[dict[str, Any]]:
    texts = [
        ("wire-en", WIRE_EN),
        ("wire-fr", WIRE_FR),
        ("repost", REPOST_EN),
        ("other-en", OTHER_EN),
        ("rewrite-fr", REWRITE_FR),
        ("copy-en", change_words(WIRE_EN, 0.03)),
    ]
    return [{"id": i, "title": "", "text": t, "published": None, "lang": None} for i, t in texts]


def test_dedup_rows_name_documents_by_their_own_ids() -> None:
    rows = {r["id"]: r for r in dedup_rows(_docs())}
    assert rows["copy-en"]["duplicate_of"] == "wire-en"
    assert [r["id"] for r in rows["repost"]["reuses"]] == ["wire-en"]
    assert [r["id"] for r in rows["rewrite-fr"]["reuses"]] == ["wire-fr"]
    assert rows["other-en"] == {"id": "other-en", "duplicate_of": None, "similarity": None, "reuses": []}


def test_eval_dedup_command(tmp_path: Path) -> None:
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(d) + "\n" for d in _docs()), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["eval", "dedup", "--input", str(source), "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [d["id"] for d in _docs()]
    assert set(rows[0]) == {"id", "duplicate_of", "similarity", "reuses"}
    assert "6 documents, 1 duplicates, 2 reusing" in result.output

    source.write_text('{"id": "a", "text": "fine"}\nnot json\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", "dedup", "--input", str(source), "--output", str(out)])
    assert result.exit_code != 0
    assert "docs.jsonl:2: not JSON" in result.output

    for published, shown in (('"yesterday"', "'yesterday'"), ("12345", "12345")):
        source.write_text(f'{{"id": "a", "text": "fine", "published": {published}}}\n', encoding="utf-8")
        result = CliRunner().invoke(main, ["eval", "dedup", "--input", str(source), "--output", str(out)])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # a line, no traceback
        assert f'docs.jsonl:1: "published" must be an ISO 8601 date or null, not {shown}' in result.output


@settings(max_examples=200, deadline=None)
@given(
    runs=st.lists(
        st.lists(st.tuples(st.integers(0, 12), st.integers(0, 50), st.integers(0, 99)), max_size=30),
        max_size=6,
    ),
    key=st.integers(0, 12),
)
def test_postings_lookup_of_one_key_is_lookup_of_that_key(
    runs: list[list[tuple[int, int, int]]], key: int
) -> None:
    """``lookup_one`` (an article id's lookup) finds what ``lookup`` finds for that key, in its
    order, through runs added and merged in any sizes."""
    from wirewatch.enricher.copies import _Postings

    postings = _Postings()
    for run in runs:
        if run:
            h, d, p = (np.array(column, dtype=np.uint32) for column in zip(*run, strict=True))
            postings.add(h, d, p)
    _, docs, positions = postings.lookup(np.array([key], dtype=np.uint32))
    one_docs, one_positions = postings.lookup_one(np.uint32(key))
    assert one_docs.tolist() == docs.tolist() and one_positions.tolist() == positions.tolist()
    assert sorted(zip(one_docs.tolist(), one_positions.tolist(), strict=True)) == sorted(
        (d, p) for run in runs for h, d, p in run if h == key
    )
