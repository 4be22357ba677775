"""Offline evaluation of claim retrieval: JSONL claims and queries in, a TREC-like run out, scores.

``wirewatch eval claims`` and ``benchmarks/bench_claims.py`` both rank with ``run_claims``, which
asks a ``ClaimMatcher`` built with the stream's defaults, so what is measured is what runs.

Formats: claims and queries are JSON lines ``{"id", "text"}`` (a claim may also carry
``keywords``, ``language`` and ``threshold``, as ``TrackedClaim`` does; a query ``language``);
a run has lines ``query_id<TAB>claim_id<TAB>rank<TAB>score``; qrels lines
``query_id 0 claim_id relevance`` (TREC).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wirewatch.core.models import TrackedClaim
from wirewatch.matching.matcher import ClaimMatcher


@dataclass(frozen=True)
class Query:
    """A text to find claims for."""

    id: str
    text: str
    language: str | None = None


@dataclass(frozen=True)
class RunRow:
    """One line of a run: a claim ranked for a query."""

    query_id: str
    claim_id: str
    rank: int  # 1-based
    score: float


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines file (blank lines skipped); a bad line raises ValueError."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            if not isinstance(record, dict) or "id" not in record or "text" not in record:
                raise ValueError(f"{path}:{number}: expected an object with 'id' and 'text'")
            yield record


def read_claims(path: Path) -> list[TrackedClaim]:
    """Claims of a JSON-lines file, as tracked claims."""
    fields = ("keywords", "language", "threshold", "labels", "owner", "active")
    return [
        TrackedClaim(id=str(r["id"]), text=str(r["text"]), **{k: r[k] for k in fields if k in r})
        for r in read_jsonl(path)
    ]


def read_queries(path: Path) -> list[Query]:
    """Queries of a JSON-lines file."""
    return [Query(str(r["id"]), str(r["text"]), r.get("language")) for r in read_jsonl(path)]


def run_claims(
    matcher: ClaimMatcher, queries: Sequence[Query], top: int = 5, batch: int = 64
) -> Iterator[RunRow]:
    """The ``top`` claims of each query, ranked by ``matcher.rank`` (the stream's ranking)."""
    for start in range(0, len(queries), batch):
        chunk = queries[start : start + batch]
        languages = {q.language for q in chunk}
        if len(languages) == 1:
            ranked = matcher.rank([q.text for q in chunk], top, languages.pop())
        else:
            ranked = [matcher.search(q.text, top, q.language) for q in chunk]
        for query, matches in zip(chunk, ranked, strict=True):
            for rank, match in enumerate(matches, 1):
                yield RunRow(query.id, match.claim_id, rank, match.score)


def write_run(rows: Iterable[RunRow], path: Path) -> int:
    """Write ``rows`` as a run file; the number of lines written."""
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(f"{row.query_id}\t{row.claim_id}\t{row.rank}\t{row.score:.6f}\n")
            count += 1
    return count


def read_run(path: Path) -> dict[str, list[str]]:
    """A run file as query id -> claim ids in rank order."""
    ranked: dict[str, list[tuple[int, str]]] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                query_id, claim_id, rank, _score = line.rstrip("\n").split("\t")
                ranked.setdefault(query_id, []).append((int(rank), claim_id))
    return {q: [c for _, c in sorted(rows)] for q, rows in ranked.items()}


def read_qrels(path: Path) -> dict[str, set[str]]:
    """TREC qrels as query id -> relevant claim ids (relevance > 0)."""
    relevant: dict[str, set[str]] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 4 and int(parts[3]) > 0:
                relevant.setdefault(parts[0], set()).add(parts[2])
    return relevant


def average_precision(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """AP@k: precision at each relevant rank within k, summed, over min(|relevant|, k)."""
    hits, total = 0, 0.0
    for i, claim_id in enumerate(ranked[:k], 1):
        if claim_id in relevant:
            hits += 1
            total += hits / i
    return total / min(len(relevant), k) if relevant else 0.0


@dataclass(frozen=True)
class RetrievalScores:
    """Mean scores of a run over the queries of the qrels."""

    map_at_5: float
    precision_at_1: float
    queries: int


def score_run(run: Mapping[str, Sequence[str]], qrels: Mapping[str, set[str]]) -> RetrievalScores:
    """MAP@5 and P@1 of ``run`` over every query of ``qrels`` (a query absent from the run scores 0)."""
    if not qrels:
        return RetrievalScores(0.0, 0.0, 0)
    ap = [average_precision(run.get(q, []), rel, 5) for q, rel in qrels.items()]
    p1 = [bool(run.get(q)) and run[q][0] in rel for q, rel in qrels.items()]
    return RetrievalScores(sum(ap) / len(ap), sum(p1) / len(p1), len(qrels))
