"""Event-clustering benchmark: wirewatch's ``EventLinker`` against a TF-IDF single-pass baseline.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_clustering.py ../shared/benchmarks/clustering
    .venv/bin/python benchmarks/bench_clustering.py ../shared/benchmarks/clustering --scale 20000
    .venv/bin/python benchmarks/bench_clustering.py ../shared/benchmarks/clustering --stream 100000

``--scale N`` only times linking against N live synthetic events; ``--stream N`` only runs the
indexer's linking state (``LinkerStore``) over N reports, the ECB+ documents over and over
``--minutes-apart`` (12) apart, and prints its memory and table size every tenth of the run.

Datasets (each read as its README.txt describes it), in the stream order given here:

* ``ecbplus`` — ECB+ 982 English documents, gold = ``event_cluster`` (topic x {ecb, ecbplus}: two
  events of one type per topic). No usable dates (141 documents carry one in their URL), so every
  document is undated and the stream is the file order (by topic, the ecb / ecbplus documents of a
  topic interleaved). Reported on all topics and on the test topics 36-45 alone (the defaults were
  chosen on train/dev topics only).
* ``newswcl50`` — 50 English articles, 10 events x 5 outlets, gold = ``event_id``. Title = first
  paragraph. Dates from URLs where present (37 documents); the stream is the file order (events in
  the dataset's order, outlets LL L M R RR), an undated document taking the previous one's time.
* ``gedikli`` — 100 English energy-industry articles, gold = connected components of the pairs
  labelled 1 in the main CSV (45 story chains). Stream: by date, then by URL.

Every dataset is also run in a shuffled order (a fixed seed, no dates) to show how much the online
decisions depend on the order. Documents go through the enricher first (``enrich_documents``:
language, entities, keyphrases, duplicates and reuse), exactly as ``wirewatch eval cluster`` does,
then through ``EventLinker`` with its defaults. Scores are BCubed precision / recall / F1
(per-document averages). Cost per article: the linker's time with and without the sentence
encoding; enrichment is timed apart (it is the enricher's cost, not the linker's).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench_pipeline import process_trees

csv.field_size_limit(sys.maxsize)

#: ECB+ topics of the standard split (README.txt): dev topics, and test = 36..45.
ECB_DEV = frozenset({2, 5, 12, 18, 21, 23, 34, 35})
ECB_TEST = frozenset(range(36, 46))
SHUFFLE_SEED = 13


@dataclass(frozen=True)
class Doc:
    """One benchmark document: what ``eval cluster`` reads, plus its gold cluster and split."""

    id: str
    title: str
    text: str
    published: str | None
    gold: str
    lang: str = "en"
    split: str = "all"

    def line(self) -> dict[str, Any]:
        """The ``eval cluster`` input line of this document."""
        return {
            "id": self.id,
            "title": self.title,
            "text": self.text,
            "published": self.published,
            "lang": self.lang,
        }


# --- datasets -----------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def load_ecbplus(root: Path) -> list[Doc]:
    """ECB+ in file order, undated; split = train / dev / test by topic."""
    docs = []
    for row in _read_jsonl(root / "ecbplus" / "ecbplus_docs.jsonl"):
        topic = int(row["topic"])
        split = "test" if topic in ECB_TEST else "dev" if topic in ECB_DEV else "train"
        docs.append(
            Doc(str(row["doc_id"]), row["title"] or "", row["text"], None, row["event_cluster"], split=split)
        )
    return docs


def load_newswcl50(root: Path) -> list[Doc]:
    """NewsWCL50 in file order; title = first paragraph, dates from URLs where present."""
    docs = []
    for row in _read_jsonl(root / "newswcl50" / "newswcl50_docs.jsonl"):
        paragraphs = [p.strip() for p in row["text"].split("\n") if p.strip()]
        title, body = (paragraphs[0], "\n\n".join(paragraphs[1:])) if paragraphs else ("", "")
        date = row.get("date_from_url")
        docs.append(
            Doc(
                str(row["doc_id"]),
                title,
                body,
                f"{date}T12:00:00+00:00" if date else None,
                str(row["event_id"]),
            )
        )
    return docs


def load_gedikli(root: Path) -> list[Doc]:
    """The energy-news story chains by date then URL; gold = components of the positive pairs."""
    base = root / "gedikli-story-chains"
    with (base / "gedikli-business_energy_news_dataset-2021-06-29-article_texts.csv").open(
        encoding="utf-8-sig", newline=""
    ) as handle:
        articles = list(csv.DictReader(handle))
    parent = {row["url"]: row["url"] for row in articles}

    def find(url: str) -> str:
        while parent[url] != url:
            parent[url] = parent[parent[url]]
            url = parent[url]
        return url

    with (base / "gedikli-business_energy_news_dataset-2021-06-29.csv").open(
        encoding="utf-8-sig", newline=""
    ) as handle:
        for pair in csv.DictReader(handle, delimiter=";"):
            if pair["relation"].strip() == "1":
                a, b = find(pair["url1"]), find(pair["url2"])
                if a != b:
                    parent[max(a, b)] = min(a, b)
    docs = [
        Doc(row["url"], row["title"], row["text"], row["date"][:10] + "T12:00:00+00:00", find(row["url"]))
        for row in articles
    ]
    return sorted(docs, key=lambda d: (d.published or "", d.id))


def shuffled(docs: Sequence[Doc], seed: int = SHUFFLE_SEED) -> list[Doc]:
    """``docs`` in a fixed pseudo-random order, without dates (content alone decides)."""
    out = [replace(d, published=None) for d in docs]
    random.Random(seed).shuffle(out)
    return out


DATASETS = {"ecbplus": load_ecbplus, "newswcl50": load_newswcl50, "gedikli": load_gedikli}


# --- scores -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BCubed:
    """BCubed precision, recall and F1 (averages over documents), and the cluster counts."""

    precision: float
    recall: float
    f1: float
    clusters: int
    gold_clusters: int


def bcubed(predicted: Mapping[str, str], gold: Mapping[str, str]) -> BCubed:
    """BCubed over the documents of ``gold`` (each must have a predicted cluster)."""
    by_pred: dict[str, set[str]] = defaultdict(set)
    by_gold: dict[str, set[str]] = defaultdict(set)
    for doc, cluster in gold.items():
        by_gold[cluster].add(doc)
        by_pred[predicted[doc]].add(doc)
    precision = recall = 0.0
    for doc, cluster in gold.items():
        mine, truth = by_pred[predicted[doc]], by_gold[cluster]
        both = len(mine & truth)
        precision += both / len(mine)
        recall += both / len(truth)
    n = len(gold) or 1
    p, r = precision / n, recall / n
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return BCubed(p, r, f1, len(by_pred), len(by_gold))


# --- the demo site: a cross-lingual sanity check (not a benchmark) -----------------------------

#: Story of each demo article, by words of its slug (the site has four stories, FR and EN).
DEMO_STORIES = (
    ("loire", "loire-floods"),
    ("belledonne", "hospital-ransomware"),
    ("grenoble", "hospital-ransomware"),
    ("cyberattaque", "hospital-ransomware"),
    ("voltera", "dunkirk-gigafactory"),
    ("gigafactory", "dunkirk-gigafactory"),
    ("air-traffic", "air-traffic-failure"),
    ("controle-aerien", "air-traffic-failure"),
)


def load_demo() -> list[Doc]:
    """The bundled demo site's 18 articles (French and English), by publication time."""
    site = Path(__file__).resolve().parents[1] / "services" / "wirewatch" / "demo" / "site" / "articles.json"
    data = json.loads(site.read_text(encoding="utf-8"))
    languages = {o["slug"]: o["language"] for o in data["outlets"]}
    docs = []
    for article in data["articles"]:
        slug = article["slug"]
        story = next(s for word, s in DEMO_STORIES if word in slug)
        docs.append(
            Doc(
                f"{article['outlet']}/{slug}",
                article["title"],
                "\n\n".join(article["paragraphs"]),
                article["published"],
                story,
                lang=languages[article["outlet"]],
            )
        )
    return sorted(docs, key=lambda d: (d.published or "", d.id))


# --- runs ---------------------------------------------------------------------------------------


@dataclass
class Run:
    """One system on one document stream: its clusters and its cost."""

    system: str
    order: str
    clusters: dict[str, str]
    seconds_link: float = 0.0  # linking alone
    seconds_encode: float = 0.0  # sentence encoding
    seconds_enrich: float = 0.0  # the enricher (not the linker's cost)
    merges: int = 0
    splits: int = 0
    related: int = 0  # reports whose link named at least one related event


def run_linker(docs: Sequence[Doc], order: str) -> Run:
    """``EventLinker`` with its defaults on ``docs``, through the offline path of ``eval cluster``."""
    from wirewatch.events import EventLinker
    from wirewatch.events.offline import Clusters, reports

    started = time.perf_counter()
    enriched = list(reports(d.line() for d in docs))
    run = Run("wirewatch EventLinker", order, {}, seconds_enrich=time.perf_counter() - started)
    linker = EventLinker()
    if enriched:
        linker.vector(enriched[0][1])  # load the model outside the timings
    clusters = Clusters()
    for doc, report in enriched:
        t0 = time.perf_counter()
        vector = linker.vector(report)
        t1 = time.perf_counter()
        link = linker.link(report, vector)
        t2 = time.perf_counter()
        run.seconds_encode += t1 - t0
        run.seconds_link += t2 - t1
        run.merges += len(link.merged)
        run.splits += link.split_off is not None
        run.related += bool(link.related)
        clusters.add(str(doc["id"]), link)
    run.clusters = {row["id"]: row["cluster"] for row in clusters.rows()}
    return run


def run_baseline(docs: Sequence[Doc], order: str) -> Run:
    """The TF-IDF single-pass baseline with its one threshold."""
    from wirewatch.events.baseline import TfidfSinglePass

    baseline = TfidfSinglePass()
    started = time.perf_counter()
    clusters = {d.id: baseline.add(d.id, d.title, d.text) for d in docs}
    return Run("TF-IDF single-pass baseline", order, clusters, seconds_link=time.perf_counter() - started)


# --- report -------------------------------------------------------------------------------------


def _ms(seconds: float, n: int) -> str:
    return f"{1000 * seconds / n:.1f}" if n else "—"


def table(
    name: str, docs: Sequence[Doc], runs: Sequence[Run], splits: Mapping[str, Iterable[str] | None]
) -> str:
    """A markdown table of BCubed scores and costs, one row per run and document subset."""
    lines = [
        f"### {name} ({len(docs)} documents, {len({d.gold for d in docs})} gold clusters)",
        "",
        "| system | order | subset | docs | clusters (gold) | BCubed P | BCubed R | BCubed F1 "
        "| link ms/article | + encoding ms/article |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        for subset, allowed in splits.items():
            keep = set(allowed) if allowed is not None else None
            gold = {d.id: d.gold for d in docs if keep is None or d.split in keep}
            score = bcubed(run.clusters, gold)
            n = len(docs)
            with_encoding = _ms(run.seconds_link + run.seconds_encode, n) if run.seconds_encode else "—"
            lines.append(
                f"| {run.system} | {run.order} | {subset} | {len(gold)} "
                f"| {score.clusters} ({score.gold_clusters}) | {score.precision:.3f} | {score.recall:.3f} "
                f"| {score.f1:.3f} | {_ms(run.seconds_link, n)} | {with_encoding} |"
            )
    notes = [
        f"{r.system} ({r.order}): enrichment {_ms(r.seconds_enrich, len(docs))} ms/article, "
        f"{r.merges} merges, {r.splits} splits, {r.related} reports with related events"
        for r in runs
        if r.seconds_enrich
    ]
    return "\n".join([*lines, "", *(f"- {n}" for n in notes)])


def scale_cost(docs: Sequence[Doc], live_events: int) -> str:
    """Linking cost per report with ``live_events`` events in the window: synthetic events
    (random centroids, the bags of real reports) restored from a snapshot, then ``docs`` linked
    against them (vectors computed beforehand, so encoding is not in the time)."""
    import numpy as np

    from wirewatch.core.vectors import DIM
    from wirewatch.events import EventLinker, Report
    from wirewatch.events.offline import reports
    from wirewatch.events.profile import Profile, profile
    from wirewatch.events.state import EventState

    enriched = [r for _, r in reports(d.line() for d in docs)]
    linker = EventLinker()
    vectors = [linker.vector(r) for r in enriched]
    profiles = [profile(r, v) for r, v in zip(enriched, vectors, strict=True)]
    rng = np.random.default_rng(SHUFFLE_SEED)
    now = 1.7e9
    records = []
    for i in range(live_events):
        real = profiles[i % len(profiles)]
        for member in range(3):
            centroid = rng.normal(size=DIM).astype(np.float32)
            features = Profile(
                centroid / np.linalg.norm(centroid),
                real.terms,
                real.keyphrases,
                real.entities,
                real.numbers,
                real.language,
            )
            report = Report(f"s{i}-{member}", f"synthetic {i}", "", now - float(rng.uniform(0, 6 * 86400)))
            if member == 0:
                event = EventState.open(f"synthetic-{i}", i, report)
            event.add(report, features)
        records.append(event.record())
    state = {
        "version": 1,
        "clock": now,
        "next_seq": live_events,
        "events": records,
        "merged": {},
        "articles": [],
    }
    linker = EventLinker.restore(state)
    started = time.perf_counter()
    for report, vector in zip(enriched, vectors, strict=True):
        linker.link(replace(report, id=f"x-{report.id}", time=now), vector)
    per = 1000 * (time.perf_counter() - started) / len(enriched)
    return f"{live_events} live events: linking {per:.2f} ms/report over {len(enriched)} reports"


def stream_memory(docs: Sequence[Doc], reports_total: int, minutes_apart: float) -> str:
    """The indexer's linking stage over a long stream: ``reports_total`` reports through a
    ``LinkerStore`` (its table a plain dict, as in the tests), report ``n`` being document
    ``n mod len(docs)`` under its own id, ``minutes_apart`` after report ``n - 1``. A table row
    every tenth of the run: the process's resident memory, the table's records and their JSON
    size, the live events and articles, and the linking rate over that tenth (encoding included;
    a document seen again is a cache hit of the encoder, as a wire copy is in the stream)."""
    from wirewatch.events.offline import reports
    from wirewatch.events.store import ARTICLE, EVENT, LinkerStore

    enriched = [r for _, r in reports(d.line() for d in docs)]
    table: dict[str, Any] = {}
    store = LinkerStore(table)
    start = 1.7e9
    step = max(1, reports_total // 10)
    lines = [
        f"{reports_total:,} reports, one every {minutes_apart:g} min "
        f"({reports_total * minutes_apart / 60 / 24:,.0f} days), from {len(enriched)} documents",
        "",
        "| reports linked | resident MB | table records (events / articles) | table JSON MB "
        "| live events | articles in the window | events opened | reports/s over the step |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    opened = 0
    mark = time.perf_counter()
    for n in range(reports_total):
        template = enriched[n % len(enriched)]
        decision = store.link(replace(template, id=f"r{n}", time=start + 60 * minutes_apart * n))
        opened += decision.link.reason == "new"
        if (n + 1) % step == 0 or n + 1 == reports_total:
            now = time.perf_counter()
            events = sum(1 for key in table if key.startswith(EVENT))
            articles = sum(1 for key in table if key.startswith(ARTICLE))
            size = sum(len(json.dumps(value)) for value in table.values()) / 2**20
            resident = process_trees({"self": os.getpid()})["self"].rss / 2**20
            linker = store.linker
            lines.append(
                f"| {n + 1:,} | {resident:.0f} | {events:,} / {articles:,} | {size:.1f} "
                f"| {len(linker.events):,} | {len(linker.articles):,} | {opened:,} "
                f"| {step / (now - mark):.0f} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
            mark = time.perf_counter()
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="the clustering benchmark directory")
    parser.add_argument("--datasets", nargs="*", default=[*DATASETS, "demo"], help="which ones (and 'demo')")
    parser.add_argument("--no-shuffle", action="store_true", help="skip the shuffled-order runs")
    parser.add_argument(
        "--scale", type=int, default=0, help="only time linking with this many live (synthetic) events"
    )
    parser.add_argument(
        "--stream",
        type=int,
        default=0,
        help="only run the linking stage's state over this many reports (ECB+ documents over again) "
        "and print its memory",
    )
    parser.add_argument(
        "--minutes-apart", type=float, default=12.0, help="with --stream: minutes between reports"
    )
    args = parser.parse_args(argv)
    from wirewatch.core.settings import Settings
    from wirewatch.runner import limit_compute_threads

    limit_compute_threads(Settings().compute_threads)  # as in a service: one BLAS thread by default
    if args.scale:
        print(scale_cost(load_newswcl50(args.data_dir), args.scale))
        return 0
    if args.stream:
        print(stream_memory(load_ecbplus(args.data_dir), args.stream, args.minutes_apart))
        return 0
    for name in args.datasets:
        docs = load_demo() if name == "demo" else DATASETS[name](args.data_dir)
        orders = [("stream", docs)]
        if not args.no_shuffle:
            orders.append(("shuffled", shuffled(docs)))
        runs: list[Run] = []
        for order, stream in orders:
            runs.append(run_linker(stream, order))
            runs.append(run_baseline(stream, order))
        splits: dict[str, Iterable[str] | None] = {"all": None}
        if name == "ecbplus":
            splits = {"all": None, "train+dev": ("train", "dev"), "test": ("test",)}
        print(table(name, docs, runs, splits), "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
