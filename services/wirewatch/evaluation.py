"""Offline evaluation of article extraction: read saved pages, extract them, score against a truth.

``wirewatch eval extract`` and ``benchmarks/bench_extraction.py`` both use this module, so the
command, the benchmark and the fetcher run exactly one extraction path: ``extract_article``.
"""

from __future__ import annotations

import gzip
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from wirewatch.fetcher.extract import ExtractionError, decode_html_bytes, extract_article

HTML_SUFFIXES = (".html.gz", ".html")
_NON_WORD = re.compile(r"\W+")


# --- reading saved pages ------------------------------------------------------------------------------


def page_id(path: Path) -> str:
    """The file name without its ``.html`` / ``.html.gz`` extension."""
    for suffix in HTML_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def html_files(directory: Path) -> list[Path]:
    """Every ``*.html`` and ``*.html.gz`` directly in ``directory``, sorted by name."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(HTML_SUFFIXES))


def read_html(path: Path) -> str:
    """A saved page as text: gunzipped when it ends in ``.gz``, decoded by ``decode_html_bytes``."""
    body = path.read_bytes()
    if path.name.endswith(".gz"):
        body = gzip.decompress(body)
    return decode_html_bytes(body)


# --- extraction -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageResult:
    id: str
    text: str
    error: str | None = None  # why there is no text (extraction or reading failed)


def extract_file(path: Path, url: str | None = None) -> PageResult:
    """Read one saved page and run ``extract_article`` on it; failures give empty text and a reason."""
    pid = page_id(path)
    try:
        html = read_html(path)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        return PageResult(pid, "", f"unreadable: {exc}")
    try:
        return PageResult(pid, extract_article(html, url).text)
    except ExtractionError as exc:
        return PageResult(pid, "", str(exc))
    except Exception as exc:  # a bug in a parser on hostile markup: one page, not the whole run
        return PageResult(pid, "", f"{type(exc).__name__}: {exc}")


def _extract_file_args(args: tuple[Path, str | None]) -> PageResult:
    return extract_file(*args)


def extract_files(
    paths: Iterable[Path],
    urls: Mapping[str, str] | None = None,
    workers: int | None = None,
) -> Iterator[PageResult]:
    """``extract_file`` over ``paths`` in input order, in a process pool (one worker per core by default).

    ``urls`` maps page ids to their URLs, when known (they help metadata, not the body).
    ``workers=1`` runs in this process.
    """
    jobs = [(p, (urls or {}).get(page_id(p))) for p in paths]
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) <= 1:
        yield from map(_extract_file_args, jobs)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        yield from pool.map(_extract_file_args, jobs, chunksize=max(1, len(jobs) // (workers * 8)))


# --- scoring --------------------------------------------------------------------------------------------


def tokens(text: str | None) -> list[str]:
    """Lowercased word tokens: ``text`` split on runs of non-word characters (``\\W+``)."""
    return [t for t in _NON_WORD.split((text or "").lower()) if t]


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float


def token_prf(predicted: str | None, truth: str | None) -> PRF:
    """Token-level precision, recall and F1 of ``predicted`` against ``truth`` (bags of word tokens).

    An empty prediction scores 0 unless the truth is empty too (then 1); likewise an empty truth.
    """
    pred, gold = Counter(tokens(predicted)), Counter(tokens(truth))
    if not pred and not gold:
        return PRF(1.0, 1.0, 1.0)
    common = sum((pred & gold).values())
    if not pred or not gold or not common:
        return PRF(0.0, 0.0, 0.0)
    precision = common / sum(pred.values())
    recall = common / sum(gold.values())
    return PRF(precision, recall, 2 * precision * recall / (precision + recall))


def mean_prf(
    predictions: Mapping[str, str], truth: Mapping[str, str], ids: Iterable[str] | None = None
) -> PRF:
    """``token_prf`` averaged over pages (``ids``, by default every page of ``truth``).

    A page missing from ``predictions`` counts as an empty prediction.
    """
    scores = [token_prf(predictions.get(i, ""), truth[i]) for i in (truth if ids is None else ids)]
    if not scores:
        return PRF(0.0, 0.0, 0.0)
    n = len(scores)
    return PRF(
        sum(s.precision for s in scores) / n,
        sum(s.recall for s in scores) / n,
        sum(s.f1 for s in scores) / n,
    )
