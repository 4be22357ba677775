"""Claim retrieval: wirewatch's ``ClaimMatcher`` against plain BM25 on CLEF 2020 CheckThat! task 2.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_claims.py ../shared/benchmarks/claims/clef2020-checkthat-task2

``DATA_DIR`` holds ``verified_claims.docs.tsv`` (id, vclaim, title) and ``{train,dev,test}/``
with ``tweets.queries.tsv`` (id, tweet) and ``tweet-vclaim-pairs.qrels`` (TREC qrels).

The data is first converted to the ``wirewatch eval claims`` format (claims: text = vclaim,
keywords = [title]; queries: the tweet as it is) under ``--work``; the matcher then ranks with
``wirewatch.matching.evaluation.run_claims``, the code behind ``wirewatch eval claims``. MAP@5
and P@1 are computed here from the qrels. Plain BM25 (k1 1.2, b 0.75, lowercased ``\\W+`` words
of vclaim + title, no stemming or stop list) runs in the same process on the same claims; the
matcher's two stages alone (ranked by cosine, by BM25) are shown too.

Cost: the watchlist is topped up to ``--scale`` claims with synthetic ones (halves of two real
claims joined), then ``match`` runs on articles of 15 sentences (test tweets, cut at sentence
ends); the time per article includes embedding the sentences. Memory: the vector matrix, and the
growth of this process's resident size while the matcher was built (the model already loaded).

``--fit`` prints fusion weights fitted on the train split and the dev scores of both the fitted
and the current weights (the test split is never used for fitting). ``--negatives FILE.jsonl``
(with ``--fit``, repeatable; lines with ``title`` and ``text``, e.g. the ECB+ documents of the
clustering benchmark) adds news: the enricher's sentences of each article against the CLEF
claims, every candidate a negative. Tweets alone teach the model that a sentence on the claim's
topic states it (every CLEF tweet is about some claim); news sentences name the same people
without stating anything of the sort.

``--news DIR`` (a folder of saved news pages, ``DIR/html/*.html.gz``, e.g. the extraction set):
do the claims cry wolf on news? Every page goes the stream's way: wirewatch's extraction, the
enricher's analysis (title and check-worthy sentences), then ``alerts_for`` against the whole
CLEF watchlist at the default thresholds. The CLEF claims were fact-checked years before those
pages were written, so an alert is most likely false: every one is printed, to be judged by
reading it. Also printed: the matching cost per news article (CPU, embedding included), and
how many sentences besides the title and check-worthy ones were matched for restating a claim.

Then claims quoted word for word: of each page, its longest sentence that is neither the title
nor check-worthy (8 words or more) is tracked as a claim too, next to the CLEF ones. Each page
should alert on its own quoted sentence: counted with every sentence ``alerts_for`` matches, and
with the title and check-worthy ones only (as before ``ClaimMatcher.restating``), in one run;
alerts of a quoted sentence on other pages are counted apart.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench_enrichment import read_pages  # the zyte pages, read as bench_enrichment reads them
from wirewatch.alerts.detect import alerts_for, sentences_of
from wirewatch.core.ids import stable_id
from wirewatch.core.memory import resident_bytes
from wirewatch.core.models import Alert, EnrichedArticle, TrackedClaim
from wirewatch.core.settings import Settings
from wirewatch.core.vectors import SentenceEncoder
from wirewatch.enricher.offline import document_article
from wirewatch.enricher.sentences import split_sentences
from wirewatch.enricher.service import analyse
from wirewatch.evaluation import tokens
from wirewatch.fetcher.extract import ExtractionError, extract_article
from wirewatch.matching import lexical
from wirewatch.matching.decision import (
    CROSSLINGUAL,
    CROSSLINGUAL_SHIFT,
    DEFAULT_THRESHOLD,
    FEATURES,
    MONOLINGUAL,
    VECTORS_ONLY,
    FusionModel,
    fit_logistic,
)
from wirewatch.matching.evaluation import (
    Query,
    RetrievalScores,
    read_claims,
    read_qrels,
    read_queries,
    run_claims,
    score_run,
)
from wirewatch.matching.matcher import ClaimMatcher, Match
from wirewatch.runner import limit_compute_threads

SPLITS = ("train", "dev", "test")
DUPLICATE_COSINE = 0.97  # a claim this close to a relevant one counts relevant when fitting


# --- conversion -----------------------------------------------------------------------------------


def _tsv(path: Path) -> list[list[str]]:
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    return rows[1:]


def convert(data_dir: Path, work: Path) -> None:
    """Write ``claims.jsonl`` and ``<split>.queries.jsonl`` (eval format) under ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    with (work / "claims.jsonl").open("w", encoding="utf-8") as out:
        for row in _tsv(data_dir / "verified_claims.docs.tsv"):
            title = row[2].strip() if len(row) > 2 else ""
            record = {"id": row[0], "text": row[1].strip(), "keywords": [title] if title else []}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    for split in SPLITS:
        with (work / f"{split}.queries.jsonl").open("w", encoding="utf-8") as out:
            for row in _tsv(data_dir / split / "tweets.queries.tsv"):
                out.write(json.dumps({"id": row[0], "text": row[1]}, ensure_ascii=False) + "\n")


# --- systems --------------------------------------------------------------------------------------


def plain_bm25(
    claims: Sequence[TrackedClaim], queries: Sequence[Query], top: int = 5
) -> dict[str, list[str]]:
    """Plain BM25 ranking (ties: the claim listed first)."""
    index = lexical.LexicalIndex(k1=1.2, b=0.75)
    for slot, claim in enumerate(claims):
        index.add(slot, tokens(" ".join([claim.text, *claim.keywords])))
    run: dict[str, list[str]] = {}
    for query in queries:
        scores, _ = index.score(tokens(query.text), len(claims))
        order = np.lexsort((np.arange(len(claims)), -scores))[:top]
        run[query.id] = [claims[i].id for i in order]
    return run


def by_feature(
    ranked: Sequence[list[Match]], queries: Sequence[Query], key: Callable[[Match], float]
) -> dict[str, list[str]]:
    """Re-rank the matcher's candidates by one feature (a stage alone)."""
    return {
        q.id: [m.claim_id for m in sorted(matches, key=lambda m: -key(m))[:5]]
        for q, matches in zip(queries, ranked, strict=True)
    }


# --- fitting --------------------------------------------------------------------------------------


def expanded_qrels(matcher: ClaimMatcher, qrels: dict[str, set[str]]) -> dict[str, set[str]]:
    """Qrels where near-duplicates (cosine >= DUPLICATE_COSINE) of a relevant claim are relevant."""
    ids = [c.id for c in matcher.claims()]
    everything = matcher.vectors(ids)
    out: dict[str, set[str]] = {}
    for query_id, relevant in qrels.items():
        rel = [c for c in relevant if c in matcher]
        sims = matcher.vectors(rel) @ everything.T if rel else np.zeros((0, len(ids)))
        out[query_id] = set(relevant) | {
            ids[j] for j in np.flatnonzero((sims >= DUPLICATE_COSINE).any(axis=0))
        }
    return out


#: Features each model uses (the others get weight 0). Chosen on dev and on NewsWCL50 as news
#: negatives: the years and names agreement add nothing (and the names get a negative weight, as
#: tweets name their authors); ``coverage`` (sentence side) adds nothing next to BM25 and
#: ``claim_coverage``. The cross-lingual model cannot use shared words, nor can the vectors-only
#: stand-in for a small watchlist (there, every shared word looks rare).
MONOLINGUAL_FEATURES = ("cosine", "bm25", "quantities", "claim_coverage")
CROSSLINGUAL_FEATURES = ("cosine", "quantities", "years", "names")
VECTORS_ONLY_FEATURES = ("cosine", "quantities")


def _fit_masked(rows: Sequence[Sequence[float]], labels: Sequence[bool], used: Sequence[str]) -> FusionModel:
    keep = [FEATURES.index(name) for name in used]
    model = fit_logistic([[row[i] for i in keep] for row in rows], labels)
    weights = [0.0] * len(FEATURES)
    for i, w in zip(keep, model.weights, strict=True):
        weights[i] = w
    return FusionModel(weights=tuple(weights), bias=model.bias)


def _fit_cross(rows: Sequence[Sequence[float]], labels: Sequence[bool]) -> FusionModel:
    model = _fit_masked(rows, labels, CROSSLINGUAL_FEATURES)
    return FusionModel(weights=model.weights, bias=model.bias, cosine_shift=CROSSLINGUAL_SHIFT)


def news_negatives(matcher: ClaimMatcher, docs_files: Sequence[Path]) -> list[list[float]]:
    """Feature rows of every candidate the matcher finds for news sentences (title, check-worthy
    sentences and those restating a claim, as the stream matches them): none of them states a
    claim."""
    rows: list[list[float]] = []
    for path in docs_files:
        with path.open(encoding="utf-8") as handle:
            docs = [json.loads(line) for line in handle if line.strip()]
        for n, doc in enumerate(docs):
            article = news_article({**doc, "id": f"{path.stem}-{n}"})
            sentences = [s.text for s in sentences_of(article, matcher)]
            for matches in matcher.rank(sentences, None, article.language):
                rows.extend(m.features.vector() for m in matches)
        print(f"news negatives: {path.name}: {len(docs)} articles, {len(rows)} candidates so far")
    return rows


def fit(
    matcher: ClaimMatcher, work: Path, data_dir: Path, negatives: Sequence[Path]
) -> tuple[FusionModel, FusionModel]:
    """Fusion models fitted on train candidates (and news negatives); dev scores printed for them
    and the defaults. The cross-lingual model is fitted on the tweets alone: the news here are
    English, like the claims, and say nothing of pairs across languages."""
    queries = read_queries(work / "train.queries.jsonl")
    qrels = expanded_qrels(matcher, read_qrels(data_dir / "train" / "tweet-vclaim-pairs.qrels"))
    rows: list[list[float]] = []
    labels: list[bool] = []
    for query, matches in zip(queries, matcher.rank([q.text for q in queries], None), strict=True):
        for m in matches:
            rows.append(m.features.vector())
            labels.append(m.claim_id in qrels.get(query.id, set()))
    print(f"train: {len(queries)} queries, {len(rows)} candidates, {sum(labels)} relevant")
    cross = _fit_cross(rows, labels)
    news = news_negatives(matcher, negatives)
    rows += news
    labels += [False] * len(news)
    mono = _fit_masked(rows, labels, MONOLINGUAL_FEATURES)
    vectors_only = _fit_masked(rows, labels, VECTORS_ONLY_FEATURES)
    print(f"MONOLINGUAL = {mono!r}")
    print(f"CROSSLINGUAL = {cross!r}")
    print(f"VECTORS_ONLY = {vectors_only!r}")
    dev = read_queries(work / "dev.queries.jsonl")
    dev_qrels = read_qrels(data_dir / "dev" / "tweet-vclaim-pairs.qrels")
    dev_expanded = expanded_qrels(matcher, dev_qrels)
    for name, model in (("defaults", MONOLINGUAL), ("fitted", mono)):
        matcher.monolingual = model
        run: dict[str, list[str]] = {}
        for row in run_claims(matcher, dev):
            run.setdefault(row.query_id, []).append(row.claim_id)
        a, b = score_run(run, dev_qrels), score_run(run, dev_expanded)
        accepted = right = 0
        for query, matches in zip(dev, matcher.rank([q.text for q in dev], None), strict=True):
            for m in matches:
                if m.accepted:
                    accepted += 1
                    right += m.claim_id in dev_expanded.get(query.id, set())
        print(
            f"dev {name}: MAP@5 {a.map_at_5:.3f} P@1 {a.precision_at_1:.3f} "
            f"(near-duplicates relevant: MAP@5 {b.map_at_5:.3f} P@1 {b.precision_at_1:.3f}); "
            f"at the default threshold {DEFAULT_THRESHOLD}: {accepted} candidates accepted for "
            f"{len(dev)} tweets, {right} ({right / max(accepted, 1):.0%}) relevant (near-duplicates counted)"
        )
    matcher.monolingual = MONOLINGUAL
    print(f"current defaults: MONOLINGUAL = {MONOLINGUAL!r}")
    print(f"                  CROSSLINGUAL = {CROSSLINGUAL!r}")
    print(f"                  VECTORS_ONLY = {VECTORS_ONLY!r}")
    return mono, cross


# --- cost -----------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def synthetic_claims(claims: Sequence[TrackedClaim], count: int, seed: int = 5) -> list[TrackedClaim]:
    """``count`` made-up claims: the first half of one real claim and the second half of another."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        a, b = rng.choice(claims).text.split(), rng.choice(claims).text.split()
        text = " ".join(a[: max(1, len(a) // 2)] + b[len(b) // 2 :])
        out.append(TrackedClaim(id=f"synthetic-{i}", text=text))
    return out


@dataclass
class Cost:
    claims: int
    articles: int
    sentences: int
    wall_ms: float  # per article, median
    cpu_ms: float  # per article, median, this process's CPU time (all threads)
    encode_cpu_ms: float  # of which embedding the 15 sentences
    full_cpu_ms: float  # every candidate scored in full (``rank``), as ``match`` did before its bound
    build_s: float
    matrix_mb: float
    rss_mb: float


def measure_cost(claims: Sequence[TrackedClaim], queries: Sequence[Query], scale: int, articles: int) -> Cost:
    """Build a matcher of ``scale`` claims and time ``match`` on articles of 15 sentences."""
    sentences = [s for q in queries for s in _SENTENCE_END.split(q.text) if len(s.split()) >= 4]
    batches = [sentences[i * 15 : (i + 1) * 15] for i in range(min(articles, len(sentences) // 15))]
    watchlist = list(claims) + synthetic_claims(claims, max(0, scale - len(claims)))
    # No vector cache: every sentence is a new one, as in an article the stream has not seen.
    encoder = SentenceEncoder(cache_size=0)
    encoder.encode(["the model is loaded before the index is measured"])
    before = resident_bytes()
    start = time.perf_counter()
    matcher = ClaimMatcher(encoder=encoder)
    matcher.upsert_many(watchlist)
    build = time.perf_counter() - start
    grown = resident_bytes() - before
    matcher.match(batches[0])  # warm
    wall, cpu, encode, full = [], [], [], []
    for batch in batches:
        c0 = time.process_time()
        matcher.encoder.encode(batch)
        c1, t1 = time.process_time(), time.perf_counter()
        matcher.match(batch)
        c2, t2 = time.process_time(), time.perf_counter()
        matcher.rank(batch, None)
        c3 = time.process_time()
        encode.append(c1 - c0)
        cpu.append(c2 - c1)
        wall.append(t2 - t1)
        full.append(c3 - c2)
    return Cost(
        claims=len(matcher),
        articles=len(batches),
        sentences=15,
        wall_ms=1000 * float(np.median(wall)),
        cpu_ms=1000 * float(np.median(cpu)),
        encode_cpu_ms=1000 * float(np.median(encode)),
        full_cpu_ms=1000 * float(np.median(full)),
        build_s=build,
        matrix_mb=matcher.memory_bytes / 2**20,
        rss_mb=grown / 2**20,
    )


# --- news -----------------------------------------------------------------------------------------


@dataclass
class NewsAlerts:
    pages: int
    articles: int  # pages with a text
    sentences: int  # title, check-worthy sentences and those restating a claim, matched
    restating: int  # of which restating a claim (not check-worthy)
    alerts: list[Alert]
    match_cpu_ms: float  # per article, mean, ``alerts_for`` (embedding included)
    restating_cpu_ms: float  # per article, mean, of that: finding the sentences restating a claim
    restated_alerts: int  # alerts whose sentence is one of those
    languages: dict[str, int]  # articles per detected language
    analysed: list[EnrichedArticle]  # the articles themselves


def news_article(doc: dict[str, Any]) -> EnrichedArticle:
    """A news document (``id``, ``title``, ``text``, ``lang``) as the enricher makes it: language,
    check-worthy sentences and the rest."""
    return analyse(document_article(doc, stable_id("news", str(doc["id"]))))


def news_alerts(matcher: ClaimMatcher, news_dir: Path) -> NewsAlerts:
    """Run the stream's extraction, analysis and ``alerts_for`` over every saved page."""
    pages = read_pages(news_dir, None)
    articles = []
    for filename, html in pages:
        name = filename.removesuffix(".html.gz")
        try:
            page = extract_article(html, f"https://news.example/{name}")
        except ExtractionError:
            continue
        articles.append(
            news_article({"id": name, "title": page.title, "text": page.text, "lang": page.language})
        )
    alerts_for(articles[0], matcher)  # warm
    found: list[Alert] = []
    cpu = 0.0
    for article in articles:
        start = time.process_time()
        found.extend(alerts_for(article, matcher))
        cpu += time.process_time() - start
    restating_cpu = 0.0
    for article in articles:
        spans = {(c.start, c.end) for c in article.claims}
        start = time.process_time()
        others = [s.text for s in split_sentences(article.text) if (s.start, s.end) not in spans]
        matcher.restating(others)
        restating_cpu += time.process_time() - start
    matched = [sentences_of(a, matcher) for a in articles]
    checked = sum(len(a.claims) + bool(a.title.strip()) for a in articles)
    claim_spans = {a.id: {(c.start, c.end) for c in a.claims} for a in articles}
    restated_alerts = sum(
        not a.in_title and (a.sentence_start, a.sentence_end) not in claim_spans[a.article_id] for a in found
    )
    return NewsAlerts(
        pages=len(pages),
        articles=len(articles),
        sentences=sum(map(len, matched)),
        restating=sum(map(len, matched)) - checked,
        alerts=sorted(found, key=lambda a: -a.score),
        match_cpu_ms=1000 * cpu / max(len(articles), 1),
        restating_cpu_ms=1000 * restating_cpu / max(len(articles), 1),
        restated_alerts=restated_alerts,
        languages=dict(Counter(a.language for a in articles).most_common()),
        analysed=articles,
    )


@dataclass
class QuotedClaims:
    pages: int  # pages with a sentence to quote
    found: int  # pages alerting on their own quoted sentence
    found_without_restating: int  # the same, matching the title and check-worthy sentences only
    elsewhere: list[Alert]  # alerts of a quoted sentence on another page


def quoted_claims(matcher: ClaimMatcher, articles: Sequence[EnrichedArticle]) -> QuotedClaims:
    """Track each page's longest sentence that is not a claim, then look for it (see the doc)."""
    quoted: dict[str, str] = {}  # claim id -> article id
    for article in articles:
        spans = {(c.start, c.end) for c in article.claims}
        others = [
            s.text
            for s in split_sentences(article.text)
            if (s.start, s.end) not in spans and s.text != article.title and len(s.text.split()) >= 8
        ]
        if others:
            text = max(others, key=len)
            claim = TrackedClaim(id=f"quoted-{article.id}", text=text)
            if claim.id not in quoted:
                quoted[claim.id] = article.id
                matcher.upsert(claim)
    found = without = 0
    elsewhere: list[Alert] = []
    for article in articles:
        for alert in alerts_for(article, matcher):
            if alert.claim_id in quoted:
                if quoted[alert.claim_id] == article.id:
                    found += 1
                else:
                    elsewhere.append(alert)
        own_claim = f"quoted-{article.id}"
        if own_claim in quoted:
            before = [article.title.strip()] if article.title.strip() else []
            matches = matcher.match(
                before + [c.text for c in article.claims], top=5, language=article.language
            )
            without += any(m.claim_id == own_claim for ms in matches for m in ms)
    for claim_id in quoted:
        matcher.remove(claim_id)
    return QuotedClaims(len(quoted), found, without, elsewhere)


def print_quoted(result: QuotedClaims) -> None:
    print()
    print("Claims quoted word for word: each page's longest sentence that is not check-worthy, tracked")
    print()
    print(
        "| pages with such a sentence | found on its page | found matching title and check-worthy "
        "only | alerts on other pages |"
    )
    print("|---:|---:|---:|---:|")
    print(f"| {result.pages} | {result.found} | {result.found_without_restating} | {len(result.elsewhere)} |")
    for alert in sorted(result.elsewhere, key=lambda a: -a.score):
        print()
        print(f"- {alert.score:.2f} on {alert.url} (quoted from another page)")
        print(f"  claim:    {alert.claim_text[:300]}")
        print(f"  sentence: {alert.sentence[:300]}")


def print_news(result: NewsAlerts, claims: int) -> None:
    print()
    print(f"News pages against {claims} tracked claims, default thresholds")
    print()
    print(
        "| pages | articles | sentences matched | of which restating a claim | alerts | "
        "of which on those | articles with an alert | matching ms/article (CPU) | "
        "of which finding the restating ones |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    alerted = len({a.article_id for a in result.alerts})
    print(
        f"| {result.pages} | {result.articles} | {result.sentences} | {result.restating} | "
        f"{len(result.alerts)} | {result.restated_alerts} | "
        f"{alerted} ({alerted / max(result.articles, 1):.1%}) | "
        f"{result.match_cpu_ms:.1f} | {result.restating_cpu_ms:.2f} |"
    )
    # The claims are English: an article in another language goes through the cross-lingual model.
    print()
    print("| article language | articles | alerts | articles with an alert |")
    print("|---|---:|---:|---:|")
    for language, count in result.languages.items():
        mine = [a for a in result.alerts if a.language == language]
        print(f"| {language} | {count} | {len(mine)} | {len({a.article_id for a in mine})} |")
    for alert in result.alerts:
        print()
        print(f"- {alert.score:.2f} {alert.stance} {alert.language} {alert.url}")
        print(f"  claim:    {alert.claim_text[:300]}")
        print(f"  sentence: {alert.sentence[:300]}")


# --- main -----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--split", default="test", choices=SPLITS)
    parser.add_argument("--work", type=Path, default=Path("/tmp/wirewatch-bench-claims"))
    parser.add_argument("--scale", type=int, default=20000, help="Claims for the cost measure (0: skip).")
    parser.add_argument("--articles", type=int, default=10)
    parser.add_argument("--fit", action="store_true", help="Fit fusion weights on train, score dev, stop.")
    parser.add_argument(
        "--negatives",
        type=Path,
        action="append",
        default=[],
        help="With --fit: news articles (JSONL with title and text) whose sentences state no claim.",
    )
    parser.add_argument("--cost-only", action="store_true", help="Only the cost measure at --scale claims.")
    parser.add_argument(
        "--news", type=Path, help="Saved news pages (DIR/html/*.html.gz): their alerts, only."
    )
    args = parser.parse_args(argv)
    # As in a service, one BLAS thread (WIREWATCH_COMPUTE_THREADS): a batch of 15 sentences gains
    # nothing from a second one, and CPU time stays meaningful.
    limit_compute_threads(Settings().compute_threads)

    convert(args.data_dir, args.work)
    claims = read_claims(args.work / "claims.jsonl")
    queries = read_queries(args.work / f"{args.split}.queries.jsonl")
    if args.news is not None:
        matcher = ClaimMatcher()
        matcher.upsert_many(claims)
        news = news_alerts(matcher, args.news)
        print_news(news, len(matcher))
        print_quoted(quoted_claims(matcher, news.analysed))
        return 0
    if not args.cost_only:
        retrieval(args, claims, queries)
    if args.scale and not args.fit:
        cost = measure_cost(claims, queries, args.scale, args.articles)
        print()
        print(
            "| claims | article | ms/article, wall | ms/article, CPU | of which embedding (CPU) | "
            "every candidate scored (CPU) | vector matrix | RSS growth | build |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        print(
            f"| {cost.claims} | {cost.sentences} sentences | {cost.wall_ms:.1f} | {cost.cpu_ms:.1f} | "
            f"{cost.encode_cpu_ms:.1f} | {cost.full_cpu_ms:.1f} | {cost.matrix_mb:.1f} MB | "
            f"{cost.rss_mb:.0f} MB | {cost.build_s:.0f} s |"
        )
        print(f"(medians over {cost.articles} articles; load average {os.getloadavg()[0]:.1f} at the end)")
    return 0


def retrieval(args: argparse.Namespace, claims: Sequence[TrackedClaim], queries: Sequence[Query]) -> None:
    """Score the matcher, its two stages alone and plain BM25 on ``args.split``; print the table."""
    start = time.perf_counter()
    matcher = ClaimMatcher()
    matcher.upsert_many(claims)
    load_s = time.perf_counter() - start
    print(
        f"{len(claims)} claims loaded in {load_s:.1f} s "
        f"({len(claims) / load_s:.0f} claims/s, embedding included)"
    )
    if args.fit:
        fit(matcher, args.work, args.data_dir, args.negatives)
        return

    qrels = read_qrels(args.data_dir / args.split / "tweet-vclaim-pairs.qrels")
    results: list[tuple[str, RetrievalScores, float]] = []

    t0 = time.perf_counter()
    bm25 = plain_bm25(claims, queries)
    results.append(
        ("plain BM25 (k1 1.2, b 0.75; vclaim + title)", score_run(bm25, qrels), time.perf_counter() - t0)
    )

    t0 = time.perf_counter()
    run: dict[str, list[str]] = {}
    for row in run_claims(matcher, queries, top=5):
        run.setdefault(row.query_id, []).append(row.claim_id)
    wall = time.perf_counter() - t0
    ranked = matcher.rank([q.text for q in queries], None)
    results.append(
        (
            "matcher: vectors alone (cosine)",
            score_run(by_feature(ranked, queries, lambda m: m.features.cosine), qrels),
            0.0,
        )
    )
    results.append(
        (
            "matcher: lexical stage alone (BM25)",
            score_run(by_feature(ranked, queries, lambda m: m.features.bm25), qrels),
            0.0,
        )
    )
    results.append(("wirewatch ClaimMatcher (fused, `eval claims`)", score_run(run, qrels), wall))

    print()
    print(
        f"CLEF 2020 CheckThat! task 2, {args.split} split: "
        f"{len(queries)} tweets, {len(claims)} verified claims"
    )
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, CPython {platform.python_version()}, {platform.machine()}"
    )
    print()
    print("| system | MAP@5 | P@1 | ms/query |")
    print("|---|---:|---:|---:|")
    for name, s, seconds in results:
        ms = f"{1000 * seconds / len(queries):.1f}" if seconds else "—"
        print(f"| {name} | {s.map_at_5:.3f} | {s.precision_at_1:.3f} | {ms} |")


if __name__ == "__main__":
    raise SystemExit(main())
