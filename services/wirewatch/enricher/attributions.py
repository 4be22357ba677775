# ruff: noqa: RUF001 - typographic quotes and dashes are what this module reads.
"""Attributions: who the article says its information comes from.

Rule-based, French and English patterns together (an article misdetected as the other
language loses nothing), one sentence at a time:

* introducers: "selon …", "d'après …", "à en croire …", "de source …", "cité par …",
  "according to …", "cited by …";
* reporting verbs, in both orders: "X a affirmé que", "», a déclaré le général X",
  "rapporte l'AFP", "a-t-il indiqué" / "X said", "…, said X", "told Reuters" (the outlet
  told is a source too, as is "a confié à Newsweek");
* source lines: "Sources: AFP, RT", "Source : …", "(avec AFP)", "— Reuters", and the
  dateline "MOSCOW (Reuters) -".

The source phrase is then resolved: a pronoun ("selon lui", "conclut-il") is the last person
quoted; an agency or outlet of the alias table gives kind agency or media; an entity found
in the article gives person or organisation (a country stands for its government); "des
sources militaires", "officials" give unnamed; "un rapport", "les chiffres" give document.
``start`` and ``end`` are the attributing sentence's offsets in the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from wirewatch.core.models import Attribution, Entity
from wirewatch.enricher.caseless import Caseless, Found
from wirewatch.enricher.entities import alias_table, surface_index, trie_pattern
from wirewatch.enricher.sentences import Sentence, split_sentences

__all__ = ["Kind", "attributed_sources", "extract_attributions", "has_attribution_cue"]

Kind = Literal["agency", "media", "person", "organisation", "document", "unnamed"]


def _alternatives(block: str) -> str:
    """A regex matching any of the ``|``-separated words of ``block`` (as a fast char trie)."""
    return "(?:" + trie_pattern({w.strip() for w in block.replace("\n", "|").split("|") if w.strip()}) + ")"


# French past participles (after avoir) and present forms of reporting verbs.
_FR_PARTICIPLES = _alternatives(
    """déclaré|affirmé|indiqué|annoncé|précisé|assuré|souligné|expliqué|ajouté|estimé|noté|confirmé|dit|
    reconnu|averti|prévenu|répondu|rapporté|révélé|démenti|admis|martelé|insisté|signalé|rappelé|déploré|
    dénoncé|confié|raconté|témoigné|écrit|tweeté|twitté|supposé|conclu|observé|constaté|relevé|commenté|
    fait savoir|laissé entendre|soutenu|avancé|détaillé|prétendu|certifié|mis en garde|accusé|nié|
    démenti|informé|confirmé|révélé|ajouté|annoncé|communiqué|publié"""
)
_FR_PRESENT = _alternatives(
    """déclare|affirme|indique|annonce|précise|assure|souligne|explique|ajoute|estime|note|confirme|dit|
    reconnaît|reconnait|avertit|prévient|répond|rapporte|révèle|dément|admet|martèle|insiste|signale|
    rappelle|déplore|dénonce|confie|raconte|témoigne|écrit|conclut|observe|constate|relève|commente|
    fait savoir|soutient|avance|détaille|prétend|accuse|nie|informe|cite|
    déclarent|affirment|indiquent|annoncent|précisent|assurent|soulignent|expliquent|ajoutent|estiment|
    notent|confirment|disent|reconnaissent|rapportent|révèlent|admettent|signalent|rappellent|dénoncent|
    écrivent|concluent|observent|constatent|accusent|nient|citent"""
)
_EN_VERBS = _alternatives(
    """said|says|told|tells|stated|states|announced|announces|claimed|claims|confirmed|confirms|added|
    adds|noted|notes|wrote|writes|tweeted|warned|warns|denied|denies|insisted|insists|reported|reports|
    explained|explains|acknowledged|acknowledges|admitted|admits|argued|argues|alleged|alleges|estimated|
    revealed|reveals|disclosed|declared|declares|asserted|asserts|maintained|indicated|indicates|
    recalled|stressed|stresses|emphasised|emphasized|cautioned|conceded|concluded|observed|pointed out|
    wrote on|posted"""
)
_FR_AUX = r"(?:a|ont|avait|avaient|aurait|auraient|avoir|aura|auront)"
_PRONOUN_SUFFIX = r"(?:-t-(?:il|elle|on)|-(?:il|elle|ils|elles|on))"

# The reporting-verb and introducer cues, as case-insensitive regexes that begin with a
# look-behind, found by ``Caseless`` (same matches, half the time).
_FR_PAST = Caseless(
    rf"(?P<aux>{_FR_AUX})(?P<pron>{_PRONOUN_SUFFIX})?\s+(?:(?:encore|également|aussi|notamment|ainsi|"
    rf"pour sa part|quant à lui|de son côté|déjà|même|bien)\s+)?(?P<verb>{_FR_PARTICIPLES})(?:e|s|es)?\b"
)
_FR_NOW = Caseless(rf"(?P<verb>{_FR_PRESENT})(?P<pron>{_PRONOUN_SUFFIX})?(?![\w-])", edge="'’-")
_EN_VERB = Caseless(rf"(?P<verb>{_EN_VERBS})\b", ignore_case=False)
_EN_VERB_WORD = re.compile(_EN_VERBS)
_INTRODUCERS = Caseless(
    r"(?P<cue>selon|d['’]après|à en croire|de sources?|de source|citée?s? par|rapportée?s? par|"
    r"according to|cited by|quoted by|reported by|as reported by|per)(?![\w'’])\s*",
    edge="'’",
)
_SOURCE_LINE = re.compile(
    r"^\W{0,3}(?P<cue>sources?|crédits?|credits?|avec|with|par|by)\s*(?::|\s)\s*(?P<rest>.{2,120}?)[\s.)]*$",
    re.IGNORECASE,
)
_FOR = re.compile(r"^(?P<cue>Pour|For)\s+")
_WITH_AGENCY = re.compile(r"\((?P<cue>avec|with)\s+(?P<rest>[^()]{2,60})\)", re.IGNORECASE)
_DASH_LINE = re.compile(r"^\s*[—–-]\s*(?P<rest>[^\W\d][\w .&'’-]{1,40}?)\s*\.?$")
_DATELINE = re.compile(r"\(\s*(?P<rest>[^()]{2,30}?)\s*\)\s*[—–-]")
_RECIPIENT = re.compile(r"^\s*(?:à|au|aux|to)\s+(?P<rest>[^,.;:!?()«»\"“”]{2,80})", re.IGNORECASE)

_CLAUSE_END = re.compile(
    r"[,.;:!?()«»\"“”\n]|\s(?:qui|que|qu['’]|dont|lorsque|quand|who|which|that|when|while|because)\s",
    re.IGNORECASE,
)
_LEADING_FILLER = re.compile(
    r"^(?:(?:lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|hier|aujourd['’]hui|ce matin|ce soir|"
    r"encore|également|aussi|notamment|ainsi|mardi soir|on Monday|on Tuesday|on Wednesday|on Thursday|"
    r"on Friday|on Saturday|on Sunday|yesterday|today|also|later|earlier|this week|last week|ce\s+\w+)\s+)+",
    re.IGNORECASE,
)
_PRONOUNS = frozenset(
    ["il", "elle", "ils", "elles", "lui", "eux", "on", "he", "she", "they", "him", "her", "them"]
)
_UNNAMED = re.compile(
    r"\b(?:sources?|responsables?|officiels?|témoins?|observateurs?|diplomates?|informations?|rumeurs?|"
    r"médias|experts?|analystes?|habitants?|militants?|activistes?|spécialistes?|proches?|entourage|"
    r"officials?|witnesses?|residents?|insiders?|people familiar|aides?|diplomats?|activists?|analysts?|"
    r"observers?|media reports?|reports?)\b",
    re.IGNORECASE,
)
_QUANTIFIER = re.compile(
    r"^(?:(?:certaine?s?|plusieurs|quelques|nombreu(?:x|ses)|diverses|d['’]autres|some|several|other|many|"
    r"two|three|four|deux|trois|quatre|nos|our|ses|his|her|their|leurs?)\s+)+",
    re.IGNORECASE,
)
_DOCUMENT = re.compile(
    r"\b(?:rapport|communiqué|document|étude|chiffres?|données|bilan|sondage|enquête|note|lettre|mémo|"
    r"décret|jugement|arrêt|dossier|statistiques?|archives?|report|statement|study|figures|data|survey|"
    r"memo|letter|filing|document|court papers|records?|statistics|census|poll)\b",
    re.IGNORECASE,
)
_ORGANISATION_WORDS = re.compile(
    r"\b(?:armée|ministère|gouvernement|police|gendarmerie|parquet|préfecture|mairie|présidence|"
    r"état-major|commandement|agence|centre|conseil|commission|service|défense|kremlin|élysée|"
    r"army|ministry|government|police|military|department|office|agency|council|commission|command|"
    r"prosecutors?|white house|kremlin|pentagon)\b",
    re.IGNORECASE,
)
_ROLE_WORDS = re.compile(
    r"\b(?:porte-parole|chef|ministre|général|président|directeur|commandant|ambassadeur|secrétaire|"
    r"spokesman|spokeswoman|spokesperson|head|chief|minister|general|president|director|commander|"
    r"ambassador|secretary)\b",
    re.IGNORECASE,
)
_CAPITAL_RUN = re.compile(
    r"[A-ZÀ-ÖØ-ÞŒ][\w'’.-]+(?:\s+(?:(?:de|du|al|el|bin|van|von|le)\s+)?[A-ZÀ-ÖØ-ÞŒ][\w'’.-]+)*"
)
_ARTICLE = re.compile(
    r"^(?:(?:le|la|les|the|a|an|un|une|des|du|de la)\s+|(?:l|d|de l)['’]\s*)+", re.IGNORECASE
)
# "l'expert", "le général", "the spokesman": in an attribution, the person last quoted.
_DEFINITE_NOUN = re.compile(
    r"(?:l['’]|le\s+|la\s+|the\s+)(?:expert|experte|analyste|spécialiste|chercheur|chercheuse|responsable|"
    r"porte-parole|ministre|général|président|présidente|directeur|directrice|commandant|ambassadeur|"
    r"expert|analyst|researcher|official|spokesman|spokeswoman|spokesperson|minister|general|president|"
    r"director|commander|ambassador)",
    re.IGNORECASE,
)
_INVERSION_BEFORE = re.compile(r"(?:^|[,»”\"—–:]|\s[-—–])\s*$")


@dataclass(frozen=True, slots=True)
class _Resolver:
    """Turns a source phrase into (source, kind) with the article's entities."""

    index: dict[str, Entity]

    def resolve(self, phrase: str, last_person: str | None) -> tuple[str, Kind] | None:
        phrase = _LEADING_FILLER.sub("", " ".join(phrase.split())).strip(" ,.;:'’\"«»“”-—–")
        if not phrase:
            return None
        if phrase.casefold() in _PRONOUNS:
            return (last_person, "person") if last_person else None
        if last_person and _DEFINITE_NOUN.fullmatch(phrase) and not alias_table().scan(phrase):
            return last_person, "person"
        table = alias_table()
        hits = table.scan(phrase)
        for _, _, entry in hits:
            if entry.kind is not None:
                return entry.name, entry.kind
        entity = self._entity_in(phrase)
        if entity is not None and not (_UNNAMED.search(phrase) and entity.label == "place"):
            return entity.name, _kind_of(entity.label)
        if hits:
            _, _, entry = hits[0]
            return entry.name, _kind_of(entry.label)
        bare = _ARTICLE.sub("", phrase)
        words = bare.split()
        if not words:
            return None
        if _is_unnamed(bare):
            return " ".join(phrase.split()[:7]), "unnamed"
        if _DOCUMENT.search(phrase):
            return " ".join(phrase.split()[:7]), "document"
        run = _CAPITAL_RUN.search(bare)
        if _ORGANISATION_WORDS.search(phrase):
            return " ".join(words[:7]), "organisation"
        if run is not None and run.start() == 0:
            name = run.group(0)
            if 2 <= len(name.split()) <= 4 and not name.isupper():
                return name, "person"
            return name, "organisation"
        return None

    def _entity_in(self, phrase: str) -> Entity | None:
        """The entity the phrase names: a person if any, else the one named first."""
        best: tuple[int, int, int, Entity] | None = None
        for surface, entity in self.index.items():
            pos = _find_word(phrase, surface)
            if pos < 0:
                continue
            rank = (0 if entity.label == "person" else 1, pos, -len(surface), entity)
            if best is None or rank[:3] < best[:3]:
                best = rank
        return best[3] if best else None


def _is_unnamed(bare: str) -> bool:
    """Whether the phrase is headed by "sources", "responsables", "officials", …: its first
    noun (French "des sources militaires") or its last word (English "Russian officials")."""
    words = _QUANTIFIER.sub("", bare).split()
    return bool(words) and any(_UNNAMED.fullmatch(w.strip(".,;:")) for w in (words[0], words[-1]))


def _find_word(text: str, word: str) -> int:
    pos = text.find(word)
    while pos >= 0:
        end = pos + len(word)
        if (pos == 0 or not text[pos - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
            return pos
        pos = text.find(word, pos + 1)
    return -1


def _kind_of(label: str) -> Kind:
    return "person" if label == "person" else "organisation"


def _phrase_after(text: str) -> str:
    """The noun phrase at the start of ``text``: up to the end of its clause, 12 words at most."""
    text = _LEADING_FILLER.sub("", text.lstrip())
    end = _CLAUSE_END.search(text)
    phrase = text[: end.start()] if end else text
    return " ".join(phrase.split()[:12])


def _phrases_before(text: str) -> tuple[str, ...]:
    """Subjects just before a verb, to try in order: the last clause of ``text``; a name before
    an apposition ("Gen. Joseph Votel, head of Central Command,") is tried first; for "qui" /
    "who" the noun phrase before it."""
    cut = max(text.rfind(c) for c in '«»“”";:()\n')
    segment = re.split(r"\s(?:que|qu['’]|that|et|and|mais|but)\s", text[cut + 1 :])[-1]
    relative = re.search(r"[\s,]+(?:qui|who|which)\s*$", segment, re.IGNORECASE)
    if relative:
        words = segment[: relative.start()].split(",")[-1].split()[-4:]
        while words and words[0].casefold() in ("par", "de", "du", "à", "by", "of", "from", "to", "with"):
            words = words[1:]
        return (" ".join(words),) if words else ()
    parts = [p.strip() for p in segment.rstrip(" ,").split(",") if p.strip()]
    if not parts:
        return ()
    last = " ".join(parts[-1].split()[-16:])
    if len(parts) > 1 and _ROLE_WORDS.match(_ARTICLE.sub("", last)):
        return (" ".join(parts[-2].split()[-16:]), last)
    return (last,)


def _split_sources(rest: str) -> list[str]:
    return [p for p in re.split(r"\s*(?:,|;|/|&|\bet\b|\band\b|\+)\s*", rest) if p.strip()]


def extract_attributions(
    text: str,
    entities: Iterable[Entity] = (),
    sentences: Sequence[Sentence] | None = None,
) -> list[Attribution]:
    """Attributions in ``text``, in text order, one per (source, sentence)."""
    if sentences is None:
        sentences = split_sentences(text)
    resolver = _Resolver(surface_index(entities))
    found: list[Attribution] = []
    seen: set[tuple[str, int]] = set()
    last_person: str | None = None

    def emit(
        groups: tuple[tuple[str, ...], ...], cue: str, sentence: Sentence, kinds: frozenset[Kind] | None
    ) -> None:
        nonlocal last_person
        for group in groups:
            options = [r for r in (resolver.resolve(p, last_person) for p in group) if r is not None]
            if options:
                break
        else:
            return
        # Within a group ("Depuis Paris, le secrétaire … Ashton Carter"), a person wins.
        source, kind = next((r for r in options if r[1] == "person"), options[0])
        if kinds is not None and kind not in kinds:
            return
        if kind == "person":
            last_person = source
        if (source, sentence.start) in seen:
            return
        seen.add((source, sentence.start))
        found.append(
            Attribution(
                source=source, kind=kind, cue=" ".join(cue.split()), start=sentence.start, end=sentence.end
            )
        )

    for sentence in sentences:
        for _, cue, groups, kinds in _candidates(sentence.text):
            emit(groups, cue, sentence, kinds)
    return found


#: (position in the sentence, cue, groups of source phrases to try in order, kinds allowed or None).
_Candidate = tuple[int, str, tuple[tuple[str, ...], ...], frozenset[Kind] | None]
#: Chars around a cue that its source phrase is looked for in (bounds the work on huge sentences).
_WINDOW = 300
_OUTLETS: frozenset[Kind] = frozenset({"agency", "media"})
_PEOPLE: frozenset[Kind] = frozenset({"person", "agency", "media"})


def _candidates(sentence: str) -> list[_Candidate]:
    """Attribution candidates in one sentence, in order."""
    out: list[_Candidate] = []
    line = _SOURCE_LINE.match(sentence)
    if line and len(sentence) <= 140:
        cue = line.group("cue")
        is_list = cue.casefold().startswith(("source", "crédit", "credit"))
        for item in _split_sources(line.group("rest")):
            out.append((0, f"{cue}:" if is_list else cue, ((item,),), None if is_list else _OUTLETS))
    dash = _DASH_LINE.match(sentence)
    if dash:
        out.append((0, "—", ((dash.group("rest"),),), _OUTLETS))
    for match in _WITH_AGENCY.finditer(sentence):
        for item in _split_sources(match.group("rest")):
            out.append((match.start(), f"({match.group('cue')})", ((item,),), _OUTLETS))
    for match in _DATELINE.finditer(sentence[:80]):
        out.append((match.start(), "dateline", ((match.group("rest"),),), _OUTLETS))
    lead = _FOR.match(sentence)
    if lead:
        # "Pour l'expert russe X, …": an attribution when it names a person (not "Pour la première fois").
        out.append(
            (0, lead.group("cue"), ((_phrase_after(sentence[lead.end() : lead.end() + _WINDOW]),),), _PEOPLE)
        )
    lowered = sentence.lower()
    for found in _INTRODUCERS.finditer(sentence, lowered):
        cue = found.group("cue")
        if cue.casefold() == "per" and not sentence[found.end() : found.end() + 1].isupper():
            continue
        phrase = _phrase_after(sentence[found.end() : found.end() + _WINDOW])
        out.append((found.start(), cue, ((_apposed_name(sentence, found.end(), phrase),), (phrase,)), None))
    for cues in (_FR_PAST, _FR_NOW, _EN_VERB):
        for found in cues.finditer(sentence, lowered):
            out.extend(_verb_candidates(sentence, found, present=cues is _FR_NOW))
    out.sort(key=lambda item: item[0])
    return out


def _apposed_name(sentence: str, start: int, phrase: str) -> str:
    """ "selon le porte-parole du ministère, Igor Konachenkov, …": the name after a role phrase."""
    if not _ROLE_WORDS.search(phrase):
        return phrase
    rest = sentence[start : start + _WINDOW].lstrip()
    after = rest[rest.find(phrase) + len(phrase) :] if phrase in rest else ""
    match = re.match(r"\s*,\s*(" + _CAPITAL_RUN.pattern + r")\s*[,«“\"]", after)
    return match.group(1) if match else phrase


def _verb_candidates(sentence: str, match: Found, present: bool) -> list[_Candidate]:
    """Candidates for one reporting verb: its subject, and for "told X" / "a confié à X" the outlet."""
    cue = match.group(0)
    verb = match.group("verb").casefold()
    before = sentence[max(0, match.start() - _WINDOW) : match.start()]
    after = sentence[match.end() : match.end() + _WINDOW]
    out: list[_Candidate] = []
    pronoun = match.optional("pron")
    told = verb in ("told", "tells")
    if pronoun:
        out.append((match.start(), cue, ((pronoun.split("-")[-1],),), None))
    elif _INVERSION_BEFORE.search(before) and not told and _subject_like(_phrase_after(after), before, verb):
        # ", a déclaré le général X" / '", said X"': the subject follows (else it is before).
        out.append((match.start(), cue, ((_phrase_after(after),), _phrases_before(before)), None))
    elif not present or re.match(r"\s*(?:que|qu['’]|:)", after, re.IGNORECASE):
        subjects = _phrases_before(before)
        if subjects:
            out.append((match.start(), cue, (subjects,), None))
    if told:
        out.append((match.end(), cue, ((_phrase_after(after),),), _OUTLETS))
    else:
        recipient = _RECIPIENT.match(after)
        if recipient:
            to = "to" if verb.isascii() and _EN_VERB_WORD.fullmatch(match.group("verb")) else "à"
            out.append((match.end(), f"{cue} {to}", ((_phrase_after(recipient.group("rest")),),), _OUTLETS))
    return out


def _subject_like(phrase: str, before: str, verb: str) -> bool:
    """Whether a phrase after a verb can be its subject: a name or, in French or after a
    quotation, a determined noun phrase (English ", said the offensive" is no inversion)."""
    if not phrase or not (phrase[0].isupper() or _ARTICLE.match(phrase)):
        return False
    if not (verb.isascii() and _EN_VERB_WORD.fullmatch(verb)):
        return True
    # English: '"…," said the minister' or ", said Votel." (a short name closing the clause).
    return bool(re.search(r"[»”\"]\s*,?\s*$", before)) or (phrase[0].isupper() and len(phrase.split()) <= 4)


def has_attribution_cue(sentence: str, lowered: str | None = None) -> bool:
    """Whether ``sentence`` has an attributing expression ("selon", "a déclaré", "said", …)
    (``lowered``: ``sentence.lower()`` if already made)."""
    lowered = sentence.lower() if lowered is None else lowered
    return bool(
        _INTRODUCERS.search(sentence, lowered)
        or _FR_PAST.search(sentence, lowered)
        or _EN_VERB.search(sentence)
        or _SOURCE_LINE.match(sentence)
        or _WITH_AGENCY.search(sentence)
    )


def attributed_sources(attributions: Iterable[Attribution]) -> list[str]:
    """Named sources, once each, in order of first attribution: for facets, so unnamed sources
    ("des sources militaires") and documents ("nos données") are left out."""
    return list(dict.fromkeys(a.source for a in attributions if a.kind not in ("unnamed", "document")))
