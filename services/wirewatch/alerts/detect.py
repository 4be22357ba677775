"""Which tracked claims an article states: its title and check-worthy sentences, matched, and
any other sentence of its text that holds nearly all the words of a tracked claim.

Only sentences are matched, never the whole text: a sentence is the evidence an alert shows. The
enricher's check-worthy sentences are where claims usually are, and the only ones matched across
languages (by their vectors). But a tracked claim can come back in a sentence the enricher did
not find check-worthy (no figure, no attribution, a quote's second half), and a fact-checker
who sees it quoted word for word expects an alert: so every other sentence is checked for the
claims' words (``ClaimMatcher.restating``, no vectors), and those that hold them are matched too.

The stream (on arrival) and the retroactive search (when a claim is newly tracked) both call
:func:`alerts_for`, so both decide alike. One alert per (claim, article): the best-scoring
sentence is the evidence. The alert id is a hash of the pair, so a replayed article or a
retroactive hit of an article already reported gives the same alert, never a second one.
Each alert says whether its sentence repeats the claim or disputes it (:mod:`wirewatch.matching.stance`).
"""

from __future__ import annotations

from dataclasses import dataclass

from wirewatch.core.ids import stable_id
from wirewatch.core.models import Alert, EnrichedArticle
from wirewatch.enricher.sentences import split_sentences
from wirewatch.matching.matcher import ClaimMatcher
from wirewatch.matching.stance import stance


@dataclass(frozen=True, slots=True)
class Sentence:
    text: str
    start: int
    end: int
    in_title: bool = False


def alert_id(claim_id: str, article_id: str) -> str:
    return stable_id("alert", claim_id, article_id)


def sentences_of(article: EnrichedArticle, matcher: ClaimMatcher) -> list[Sentence]:
    """The title, each check-worthy sentence the enricher found, then each other sentence of the
    text that restates a tracked claim in its words; with their offsets."""
    out = [Sentence(article.title.strip(), 0, 0, in_title=True)] if article.title.strip() else []
    out.extend(Sentence(c.text, c.start, c.end) for c in article.claims)
    spans = {(c.start, c.end) for c in article.claims}
    others = [s for s in split_sentences(article.text) if (s.start, s.end) not in spans]
    restating = matcher.restating([s.text for s in others])
    out.extend(Sentence(s.text, s.start, s.end) for s, found in zip(others, restating, strict=True) if found)
    return out


def alerts_for(
    article: EnrichedArticle,
    matcher: ClaimMatcher,
    *,
    retroactive: bool = False,
    only_claim: str | None = None,
) -> list[Alert]:
    """The alerts ``article`` raises (for every claim, or only ``only_claim``)."""
    if not len(matcher):
        return []
    sentences = sentences_of(article, matcher)
    if not sentences:
        return []
    best: dict[str, tuple[float, Sentence]] = {}
    for sentence, matches in zip(
        sentences, matcher.match([s.text for s in sentences], top=5, language=article.language), strict=True
    ):
        for m in matches:
            if only_claim is not None and m.claim_id != only_claim:
                continue
            if m.claim_id not in best or m.score > best[m.claim_id][0]:
                best[m.claim_id] = (m.score, sentence)
    alerts = []
    for claim_id, (score, sentence) in best.items():
        claim = matcher.get(claim_id)
        if claim is None:
            continue
        alerts.append(
            Alert(
                id=alert_id(claim_id, article.id),
                claim_id=claim_id,
                claim_text=claim.text,
                claim_labels=claim.labels,
                article_id=article.id,
                url=article.url,
                title=article.title,
                source=article.source,
                source_domain=article.source_domain,
                language=article.language,
                published=article.published,
                sentence=sentence.text,
                in_title=sentence.in_title,
                sentence_start=sentence.start,
                sentence_end=sentence.end,
                score=round(min(max(score, 0.0), 1.0), 4),
                stance=stance(sentence.text, claim.text),
                retroactive=retroactive,
                duplicate_of=article.duplicate_of,
                reused_from=article.reused_from,
            )
        )
    return sorted(alerts, key=lambda a: a.claim_id)
