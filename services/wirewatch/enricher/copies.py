"""Which earlier article is this a copy of, and what did it borrow from which?

:class:`CopyIndex` remembers the winnowed fingerprints (:mod:`~wirewatch.enricher.fingerprints`)
of every original article of the last ``ttl`` seconds (and at most ``max_articles`` articles:
the oldest go first) and, for each new article, decides:

- **exact duplicate**: same normalised text as an earlier original (similarity 1.0);
- **near-duplicate**: the two texts cover each other almost entirely (both shares at least
  ``near_duplicate``), e.g. a wire copy with a few words changed;
- **reuse**: the article shares passages with one or more earlier originals (a rewrite that
  keeps some paragraphs, a blog reposting a dispatch under its own introduction). Each source
  gets the share of this article found in it, the share of the source found here, and the
  passages, aligned by chaining matching fingerprints that sit in the same order and at the
  same distances in both texts.

Duplicates point at the earliest copy (the original) and are not indexed themselves, so a
later copy of a copy still points at the original. Order is the order of :meth:`link` calls:
in the stream that is the order of one partition (see ``enricher/service.py``).

Memory: per original article, one row (~40 bytes) plus 12 bytes per fingerprint (~75 for a
5 KB article) in sorted numpy runs merged like a log-structured merge tree; duplicates cost
one row and one entry. Expired articles are dropped in bulk; ``max_articles`` bounds the memory
whatever the flow, where ``ttl`` alone lets it grow with the articles per day. Every decision can be rebuilt:
:meth:`record` gives a small JSON-able record per article that :meth:`restore` takes back
(the stream keeps them in a changelog-backed Faust table).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from wirewatch.core.models import Reuse, ReusedPassage
from wirewatch.enricher.fingerprints import Fingerprints

U32 = npt.NDArray[np.uint32]

#: Positions at or above this mark are not fingerprints but keys (id, content hash).
_ID_MARK = np.uint32(0xFFFFFFFF)
_EXACT_MARK = np.uint32(0xFFFFFFFE)
_FIRST_MARK = _EXACT_MARK


def _u32(key: str) -> np.uint32:
    """32 bits of a key (an article id or a content hash), spread whatever the key looks like."""
    return np.uint32(int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "little"))


def _u64(hex_digest: str) -> np.uint64:
    return np.uint64(int(hex_digest[:16], 16))


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When shared text makes a duplicate or a reuse."""

    #: Both texts must cover each other at least this much to be near-duplicates.
    near_duplicate: float = 0.85
    #: A reuse: at least this share of the new article found in the source ...
    min_share: float = 0.15
    #: ... or at least this share of the source found in the new article ...
    min_source_share: float = 0.5
    #: ... and in any case at least this many words of shared passages.
    min_words: int = 25
    #: Two matching fingerprints belong to one passage if they are at most this many chars
    #: apart and the text between them has the same length in both texts, give or take
    #: ``drift_chars`` (the same text with a few words changed).
    gap_chars: int = 1000
    drift_chars: int = 40
    #: A passage starting (ending) within this many chars of the start (end) of both texts,
    #: as far from it in both, is taken to run to it: fingerprints are sparse near the edges.
    edge_chars: int = 200
    #: Candidate sources examined per article (the ones sharing most fingerprints).
    max_candidates: int = 20


@dataclass(frozen=True, slots=True)
class CopyDecision:
    """What :meth:`CopyIndex.link` found for one article."""

    duplicate_of: str | None = None
    similarity: float | None = None
    reuses: list[Reuse] = field(default_factory=list)

    @property
    def is_duplicate(self) -> bool:
        return self.duplicate_of is not None


class _Postings:
    """A multimap ``hash -> (doc, position)`` in sorted runs, merged when two are alike in size."""

    def __init__(self) -> None:
        self._runs: list[tuple[U32, U32, U32]] = []

    def __len__(self) -> int:
        return sum(len(h) for h, _, _ in self._runs)

    @property
    def nbytes(self) -> int:
        return sum(h.nbytes + d.nbytes + p.nbytes for h, d, p in self._runs)

    def add(self, hashes: U32, docs: U32, positions: U32) -> None:
        order = np.argsort(hashes, kind="stable")
        self._runs.append((hashes[order], docs[order], positions[order]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            newer = self._runs.pop()
            older = self._runs.pop()
            self._runs.append(self._merge(older, newer))

    @staticmethod
    def _merge(*runs: tuple[U32, U32, U32]) -> tuple[U32, U32, U32]:
        h = np.concatenate([r[0] for r in runs])
        d = np.concatenate([r[1] for r in runs])
        p = np.concatenate([r[2] for r in runs])
        order = np.argsort(h, kind="stable")
        return h[order], d[order], p[order]

    def lookup(self, query: U32) -> tuple[npt.NDArray[np.intp], U32, U32]:
        """Every entry whose hash is in ``query``: (index into query, doc, position)."""
        qs, ds, ps = [], [], []
        for h, d, p in self._runs:
            left = np.searchsorted(h, query, side="left")
            right = np.searchsorted(h, query, side="right")
            counts = right - left
            total = int(counts.sum())
            if not total:
                continue
            qi = np.repeat(np.arange(len(query)), counts)
            offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            idx = np.repeat(left, counts) + offsets
            qs.append(qi)
            ds.append(d[idx])
            ps.append(p[idx])
        if not qs:
            empty = np.zeros(0, dtype=np.uint32)
            return np.zeros(0, dtype=np.intp), empty, empty
        return np.concatenate(qs), np.concatenate(ds), np.concatenate(ps)

    def lookup_one(self, key: np.uint32) -> tuple[U32, U32]:
        """Every entry under the one hash ``key``: (doc, position), in ``lookup``'s order, without
        its set-up for many keys (an article's id is looked up this way at least once)."""
        docs: list[U32] = []
        positions: list[U32] = []
        for h, d, p in self._runs:
            left = int(h.searchsorted(key, side="left"))
            right = int(h.searchsorted(key, side="right"))
            if right > left:
                docs.append(d[left:right])
                positions.append(p[left:right])
        if not docs:
            empty = np.zeros(0, dtype=np.uint32)
            return empty, empty
        return np.concatenate(docs), np.concatenate(positions)

    def drop_docs_below(self, first_live: int) -> None:
        """Forget every entry of docs numbered below ``first_live``, in one merged run."""
        if not self._runs:
            return
        h, d, p = self._merge(*self._runs) if len(self._runs) > 1 else self._runs[0]
        keep = d >= first_live
        self._runs = [(h[keep].copy(), d[keep].copy(), p[keep].copy())] if keep.any() else []


@dataclass(frozen=True, slots=True)
class _Row:
    seq: int
    article_id: str
    at: float
    words: int
    chars: int
    content_hash: str
    root: int  # seq of the original if a duplicate, else -1


_COLUMNS = ("ids", "times", "words", "chars", "content", "root")


class _Docs:
    """One row per article, numbered in arrival order (``seq``); growable numpy columns."""

    def __init__(self) -> None:
        self.base = 0  # seq of row 0
        self.size = 0
        cap = 1024
        self.ids = np.zeros(cap, dtype="V16")  # raw 16 bytes (S16 would drop trailing NULs)
        self.times = np.zeros(cap, dtype=np.float64)
        self.words = np.zeros(cap, dtype=np.uint32)
        self.chars = np.zeros(cap, dtype=np.uint32)
        self.content = np.zeros(cap, dtype=np.uint64)
        self.root = np.zeros(cap, dtype=np.int64)  # seq of the original, or -1 for originals

    @property
    def next_seq(self) -> int:
        return self.base + self.size

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (getattr(self, c) for c in _COLUMNS))

    def append(self, row: _Row) -> None:
        if self.size == 0:
            self.base = row.seq
        i = row.seq - self.base
        if i < self.size:
            raise ValueError(f"article seq {row.seq} is not after {self.next_seq - 1}")
        if i >= len(self.ids):
            self._grow(i + 1)
        self.ids[i] = np.void(bytes.fromhex(row.article_id[:32].ljust(32, "0")))
        self.times[i] = row.at
        self.words[i] = row.words
        self.chars[i] = row.chars
        self.content[i] = int(row.content_hash[:16], 16)
        self.root[i] = row.root
        self.size = i + 1

    def _grow(self, needed: int) -> None:
        cap = max(needed, 2 * len(self.ids))
        for name in _COLUMNS:
            old = getattr(self, name)
            new = np.zeros(cap, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def row(self, seq: int) -> int:
        return seq - self.base

    def id_of(self, seq: int) -> str:
        return bytes(self.ids[self.row(seq)]).hex()

    def drop_before(self, seq: int) -> None:
        cut = min(max(seq - self.base, 0), self.size)
        if not cut:
            return
        for name in _COLUMNS:
            old = getattr(self, name)
            rest = old[cut : self.size]
            new = np.zeros(max(1024, 2 * len(rest)), dtype=old.dtype)
            new[: len(rest)] = rest
            setattr(self, name, new)
        self.base += cut
        self.size -= cut


@dataclass
class _Pair:
    new_start: int
    new_end: int
    src_start: int


class CopyIndex:
    """Duplicates and text reuse among the articles of the last ``ttl`` seconds, at most the
    ``max_articles`` latest of them (None: no count bound)."""

    def __init__(
        self, ttl: float = 30 * 86400, thresholds: Thresholds | None = None, max_articles: int | None = None
    ) -> None:
        if max_articles is not None and max_articles < 1:
            raise ValueError(f"max_articles must be at least 1, not {max_articles}")
        self.ttl = ttl
        self.max_articles = max_articles
        self.thresholds = thresholds or Thresholds()
        self._docs = _Docs()
        self._postings = _Postings()
        self._first_live = 0  # seq of the oldest article not expired
        self._now = float("-inf")
        self._expired: list[str] = []

    # --- size -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Articles remembered (not expired)."""
        return self._docs.next_seq - self._first_live

    @property
    def nbytes(self) -> int:
        """Bytes held by the index's arrays."""
        return self._docs.nbytes + self._postings.nbytes

    # --- deciding ----------------------------------------------------------------------------------

    def link(self, article_id: str, fingerprints: Fingerprints, content_hash: str, at: float) -> CopyDecision:
        """Decide for one article and remember it (idempotent for an article seen before)."""
        known = self._seq_of(article_id)
        decision = self._decide(article_id, fingerprints, content_hash, before=known)
        if known is None:
            self._remember(self._docs.next_seq, article_id, fingerprints, content_hash, at, decision)
        self._advance(at)
        return decision

    def _seq_of(self, article_id: str) -> int | None:
        docs, pos = self._postings.lookup_one(_u32(article_id))
        want = bytes.fromhex(article_id[:32].ljust(32, "0"))
        for seq in docs[pos == _ID_MARK]:
            s = int(seq)
            if s >= self._first_live and bytes(self._docs.ids[self._docs.row(s)]) == want:
                return s
        return None

    def _live(self, docs: U32, before: int | None) -> npt.NDArray[np.bool_]:
        mask = docs >= self._first_live
        if before is not None:
            mask &= docs < before
        return mask

    def _decide(
        self, article_id: str, fp: Fingerprints, content_hash: str, before: int | None
    ) -> CopyDecision:
        t = self.thresholds
        # Exact copy: same normalised text.
        _, docs, pos = self._postings.lookup(np.array([_u32(content_hash[:16])], dtype=np.uint32))
        same = docs[(pos == _EXACT_MARK) & self._live(docs, before)]
        content = _u64(content_hash)
        for seq in sorted(int(s) for s in same):
            if self._docs.content[self._docs.row(seq)] == content:
                return CopyDecision(duplicate_of=self._docs.id_of(seq), similarity=1.0)
        if not len(fp):
            return CopyDecision()
        # Shared fingerprints, per earlier article.
        qi, docs, pos = self._postings.lookup(fp.hashes)
        keep = (pos < _FIRST_MARK) & self._live(docs, before)
        qi, docs, pos = qi[keep], docs[keep], pos[keep]
        if not len(docs):
            return CopyDecision()
        candidates, counts = np.unique(docs, return_counts=True)
        best = np.argsort(-counts, kind="stable")[: t.max_candidates]
        n_words = len(fp.words)
        near: tuple[float, int] | None = None
        reuses: list[tuple[int, Reuse]] = []
        for seq in sorted(candidates[best].tolist()):
            row = self._docs.row(seq)
            sel = docs == seq
            pairs = [
                _Pair(int(fp.starts[q]), int(fp.ends[q]), int(p))
                for q, p in zip(qi[sel], pos[sel], strict=True)
            ]
            passages = self._passages(
                pairs, new_chars=int(fp.words.ends[-1]), src_chars=int(self._docs.chars[row])
            )
            covered = _covered_words(fp, passages)
            share = covered / n_words
            source_share = min(1.0, covered / max(1, int(self._docs.words[row])))
            if share >= t.near_duplicate and source_share >= t.near_duplicate:
                # Text in common, both ways; 1.0 is kept for exact copies.
                similarity = min(share, source_share, 0.999)
                if near is None or similarity > near[0]:
                    near = (similarity, seq)
                continue
            if covered >= t.min_words and (share >= t.min_share or source_share >= t.min_source_share):
                reuses.append(
                    (
                        seq,
                        Reuse(
                            id=self._docs.id_of(seq),
                            share=round(share, 4),
                            source_share=round(source_share, 4),
                            passages=passages,
                        ),
                    )
                )
        if near is not None:
            return CopyDecision(duplicate_of=self._docs.id_of(near[1]), similarity=round(near[0], 4))
        return CopyDecision(reuses=[r for _, r in sorted(reuses, key=lambda item: item[0])])

    def _passages(self, pairs: list[_Pair], new_chars: int, src_chars: int) -> list[ReusedPassage]:
        """Chain matching fingerprints that keep their order and spacing into passages."""
        t = self.thresholds
        gap = t.gap_chars
        pairs.sort(key=lambda p: (p.new_start, p.src_start))
        chains: list[list[_Pair]] = []
        for pair in pairs:
            for chain in reversed(chains[-4:]):
                last = chain[-1]
                step = pair.new_start - last.new_start
                drift = abs((pair.src_start - last.src_start) - step)
                # In order in both texts, the same distance apart in both (give or take a few
                # changed words), and not too far apart.
                if (
                    step >= 0
                    and pair.src_start >= last.src_start
                    and drift <= t.drift_chars
                    and pair.new_start - last.new_end <= gap
                ):
                    chain.append(pair)
                    break
            else:
                chains.append([pair])
        passages = []
        for chain in chains:
            first, last = chain[0], max(chain, key=lambda p: p.new_end)
            new_start, new_end = first.new_start, last.new_end
            src_start = first.src_start
            src_end = last.src_start + (last.new_end - last.new_start)
            edge = t.edge_chars
            if new_start <= edge and src_start <= edge and abs(new_start - src_start) <= t.drift_chars:
                new_start, src_start = 0, 0
            new_rest, src_rest = new_chars - new_end, src_chars - src_end
            if new_rest <= edge and src_rest <= edge and abs(new_rest - src_rest) <= t.drift_chars:
                new_end, src_end = new_chars, src_chars
            passages.append(
                ReusedPassage(start=new_start, end=new_end, source_start=src_start, source_end=src_end)
            )
        return _merge_overlapping(passages)

    # --- remembering ---------------------------------------------------------------------------------

    def _remember(
        self,
        seq: int,
        article_id: str,
        fp: Fingerprints,
        content_hash: str,
        at: float,
        decision: CopyDecision,
    ) -> None:
        root = self._seq_of(decision.duplicate_of) if decision.duplicate_of else None
        self._docs.append(
            _Row(
                seq=seq,
                article_id=article_id,
                at=at,
                words=len(fp.words),
                chars=int(fp.words.ends[-1]) if len(fp.words) else 0,
                content_hash=content_hash,
                root=-1 if root is None else root,
            )
        )
        keys = [(_u32(article_id), _ID_MARK)]
        if decision.is_duplicate:
            hashes = np.array([k for k, _ in keys], dtype=np.uint32)
            positions = np.array([m for _, m in keys], dtype=np.uint32)
        else:
            keys.append((_u32(content_hash[:16]), _EXACT_MARK))
            hashes = np.concatenate([fp.hashes, np.array([k for k, _ in keys], dtype=np.uint32)])
            positions = np.concatenate([fp.starts, np.array([m for _, m in keys], dtype=np.uint32)])
        self._postings.add(hashes, np.full(len(hashes), seq, dtype=np.uint32), positions)

    def _advance(self, at: float) -> None:
        """Move stream time to ``at`` and expire what is older than ``ttl``, and the oldest
        articles beyond ``max_articles``."""
        docs = self._docs
        first = self._first_live
        if at > self._now:
            self._now = at
            cutoff = at - self.ttl
            while first < docs.next_seq and docs.times[docs.row(first)] < cutoff:
                first += 1
        if self.max_articles is not None:
            first = max(first, docs.next_seq - self.max_articles)
        if first == self._first_live:
            return
        self._expired.extend(docs.id_of(seq) for seq in range(self._first_live, first))
        self._first_live = first
        # Reclaim memory in bulk, once a quarter of what is held has expired.
        if first - docs.base >= max(1024, docs.size // 4):
            self._postings.drop_docs_below(first)
            docs.drop_before(first)

    def pop_expired(self) -> list[str]:
        """Ids of the articles that expired since the last call (to delete their records)."""
        expired, self._expired = self._expired, []
        return expired

    # --- persistence ---------------------------------------------------------------------------------

    def record(
        self, article_id: str, fp: Fingerprints, content_hash: str, at: float, decision: CopyDecision
    ) -> dict[str, Any]:
        """What to keep (in a changelog-backed table, under the article id) to rebuild this entry."""
        seq = self._seq_of(article_id)
        rec: dict[str, Any] = {
            "seq": seq,
            "at": at,
            "content": content_hash[:16],
            "words": len(fp.words),
            "chars": int(fp.words.ends[-1]) if len(fp.words) else 0,
            "duplicate_of": decision.duplicate_of,
        }
        if not decision.is_duplicate:
            rec["hashes"] = base64.b64encode(fp.hashes.astype("<u4").tobytes()).decode()
            rec["starts"] = base64.b64encode(fp.starts.astype("<u4").tobytes()).decode()
        return rec

    def restore(self, article_id: str, rec: dict[str, Any]) -> None:
        """Take back one :meth:`record` (call in ``seq`` order after a restart)."""
        seq = int(rec["seq"])
        root = self._seq_of(rec["duplicate_of"]) if rec.get("duplicate_of") else None
        prints = np.frombuffer(base64.b64decode(rec.get("hashes", "")), dtype="<u4").astype(np.uint32)
        self._docs.append(
            _Row(
                seq=seq,
                article_id=article_id,
                at=float(rec["at"]),
                words=int(rec["words"]),
                chars=int(rec["chars"]),
                content_hash=rec["content"],
                root=-1 if root is None else root,
            )
        )
        hashes = [np.array([_u32(article_id)], dtype=np.uint32)]
        positions = [np.array([_ID_MARK], dtype=np.uint32)]
        if "hashes" in rec:
            hashes += [
                prints,
                np.array([_u32(rec["content"])], dtype=np.uint32),
            ]
            positions += [
                np.frombuffer(base64.b64decode(rec["starts"]), dtype="<u4").astype(np.uint32),
                np.array([_EXACT_MARK], dtype=np.uint32),
            ]
        h = np.concatenate(hashes)
        self._postings.add(h, np.full(len(h), seq, dtype=np.uint32), np.concatenate(positions))
        self._advance(float(rec["at"]))


def _merge_overlapping(passages: list[ReusedPassage]) -> list[ReusedPassage]:
    out: list[ReusedPassage] = []
    for p in sorted(passages, key=lambda p: p.start):
        if out and p.start <= out[-1].end:
            last = out[-1]
            if p.end > last.end:
                out[-1] = last.model_copy(
                    update={"end": p.end, "source_end": max(last.source_end, p.source_end)}
                )
            continue
        out.append(p)
    return out


def _covered_words(fp: Fingerprints, passages: list[ReusedPassage]) -> int:
    if not passages:
        return 0
    starts = fp.words.starts
    covered = np.zeros(len(starts), dtype=bool)
    for p in passages:
        covered |= (starts >= p.start) & (starts < p.end)
    return int(covered.sum())
