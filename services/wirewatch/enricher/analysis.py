"""Article analysis for the enricher: entities, keyphrases, attributions and claims, in one call.

``analyse_text`` is what the enricher stream calls for every article. It splits the text
into sentences once and hands them to each step; entities feed attributions (who is a
person, who an organisation) and both feed claims. The spaCy models load on first use
(French 1 to 7 s depending on the machine's load, English under 1 s, plus 1.5 s for
spaCy's import): call ``preload`` at service start to pay that before the first article.

Cost per article, one core: about 14 ms for a 4.5 KB English news page (entities 7.3 ms, of
which the NER model, capped at ``entities.NER_MAX_CHARS``, about 5.5; keyphrases 2.5, claims
1.5, attributions 1.0): less than trafilatura's extraction of the page. benchmarks/RESULTS.md
has the breakdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wirewatch.core.models import Attribution, Claim, Entity
from wirewatch.enricher.attributions import attributed_sources, extract_attributions
from wirewatch.enricher.claims import extract_claims
from wirewatch.enricher.entities import MODELS, alias_table, extract_entities, load_model
from wirewatch.enricher.keyphrases import extract_keyphrases
from wirewatch.enricher.sentences import split_sentences

__all__ = ["TextAnalysis", "analyse_text", "preload"]


@dataclass(frozen=True, slots=True)
class TextAnalysis:
    """What the text of one article says: who and what it names, what it is about, whom it
    cites and which of its sentences are check-worthy claims."""

    entities: list[Entity] = field(default_factory=list)
    keyphrases: list[str] = field(default_factory=list)
    attributions: list[Attribution] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)

    def _names(self, label: str) -> list[str]:
        return [e.name for e in self.entities if e.label == label]

    @property
    def people(self) -> list[str]:
        """Canonical names of the persons named, most mentioned first."""
        return self._names("person")

    @property
    def organisations(self) -> list[str]:
        """Canonical names of the organisations named, most mentioned first."""
        return self._names("organisation")

    @property
    def places(self) -> list[str]:
        """Canonical names of the places named, most mentioned first."""
        return self._names("place")

    @property
    def attributed_to(self) -> list[str]:
        """Named sources of the attributions, once each, in text order."""
        return attributed_sources(self.attributions)


def analyse_text(title: str, text: str, language: str, *, ner_max_chars: int | None = None) -> TextAnalysis:
    """Analyse one article. ``language`` is an ISO 639-1 code ("fr", "en", "und", …); languages
    without a NER model get no entities, the rest still applies. Claim offsets are into
    ``text`` (see ``wirewatch.enricher.claims`` for a title claim). ``ner_max_chars``
    overrides ``entities.NER_MAX_CHARS``, the speed/recall trade-off of the NER model."""
    language = (language or "").lower()[:2]
    sentences = split_sentences(text)
    entities = extract_entities(title, text, language, sentences=sentences, ner_max_chars=ner_max_chars)
    attributions = extract_attributions(text, entities, sentences=sentences)
    claims = extract_claims(title, text, entities=entities, attributions=attributions, sentences=sentences)
    keyphrases = extract_keyphrases(title, text, language)
    return TextAnalysis(entities=entities, keyphrases=keyphrases, attributions=attributions, claims=claims)


def preload(languages: tuple[str, ...] = tuple(MODELS)) -> None:
    """Load the NER models and the alias table now rather than on the first article."""
    alias_table()
    for language in languages:
        load_model(language)
