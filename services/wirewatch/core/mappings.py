"""Elasticsearch index templates and JSON Schemas, derived from the models.

``schemas/`` in the repository holds the output of :func:`export_schemas`; the test suite
regenerates it and fails on any difference, so models, schemas and templates cannot drift.
"""

from __future__ import annotations

import copy
import json
import re
import types
import typing
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from wirewatch.core.models import DOCUMENTS, MESSAGES, Es, Message

#: Analyzer of every text field: the multilingual fallback (no stemming, so any language).
MULTILINGUAL = "wirewatch_multilingual"
#: Language subfield (``title.fr``) -> its analyzer; every text field gets one of each.
LANGUAGE_ANALYZERS: dict[str, str] = {"fr": "wirewatch_french", "en": "wirewatch_english"}

#: Custom analyzers, after Elasticsearch's own ``french`` and ``english`` analyzers.
#: The French chain lowercases *before* the elision filter so ``L'armée`` loses its ``L'`` on
#: servers that ignore ``articles_case``; asciifolding comes after the stop words (they have
#: accents) and the stemmer, so ``armees`` and ``armées`` meet.
ANALYSIS: dict[str, Any] = {
    "filter": {
        "wirewatch_french_elision": {
            "type": "elision",
            "articles_case": True,
            "articles": ["l", "m", "t", "qu", "n", "s", "j", "d", "c", "jusqu", "quoiqu", "lorsqu", "puisqu"],
        },
        "wirewatch_french_stop": {"type": "stop", "stopwords": "_french_"},
        "wirewatch_french_stemmer": {"type": "stemmer", "language": "light_french"},
        "wirewatch_english_possessive": {"type": "stemmer", "language": "possessive_english"},
        "wirewatch_english_stop": {"type": "stop", "stopwords": "_english_"},
        "wirewatch_english_stemmer": {"type": "stemmer", "language": "english"},
    },
    "analyzer": {
        MULTILINGUAL: {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]},
        LANGUAGE_ANALYZERS["fr"]: {
            "type": "custom",
            "tokenizer": "standard",
            "filter": [
                "lowercase",
                "wirewatch_french_elision",
                "wirewatch_french_stop",
                "wirewatch_french_stemmer",
                "asciifolding",
            ],
        },
        LANGUAGE_ANALYZERS["en"]: {
            "type": "custom",
            "tokenizer": "standard",
            "filter": [
                "wirewatch_english_possessive",
                "lowercase",
                "wirewatch_english_stop",
                "wirewatch_english_stemmer",
            ],
        },
    },
}

#: Index settings shared by every wirewatch index (replicas are a deployment choice;
#: lifecycle settings are added at setup time, on Elasticsearch only: see core/elastic.py).
INDEX_SETTINGS: dict[str, Any] = {"number_of_shards": 1, "refresh_interval": "1s", "analysis": ANALYSIS}


def _strip_optional(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _mapping_for(annotation: Any, metadata: list[Any]) -> dict[str, Any]:
    for item in metadata:
        if isinstance(item, Es):
            return with_languages(copy.deepcopy(item.mapping))
    annotation = _strip_optional(annotation)
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = get_args(annotation)
        return _mapping_for(base, list(extra))
    if origin is Literal:
        values = get_args(annotation)
        if all(isinstance(v, int) for v in values):
            return {"type": "integer"}
        return {"type": "keyword", "ignore_above": 256}
    if origin in (list, tuple, set, frozenset):
        (item,) = get_args(annotation)[:1]
        return _mapping_for(item, [])
    if origin is dict:
        return {"type": "object", "dynamic": True}
    if isinstance(annotation, type):
        if issubclass(annotation, bool):
            return {"type": "boolean"}
        if issubclass(annotation, int):
            return {"type": "long"}
        if issubclass(annotation, float):
            return {"type": "float"}
        if issubclass(annotation, datetime):
            return {"type": "date"}
        if issubclass(annotation, str):
            return {"type": "keyword", "ignore_above": 2048}
        if issubclass(annotation, BaseModel):
            return {"properties": properties_for(annotation)}
    raise TypeError(f"no Elasticsearch mapping for {annotation!r}; add Es(...) metadata")


def with_languages(mapping: dict[str, Any]) -> dict[str, Any]:
    """A text field without its own analyzer: the multilingual analyzer, plus ``.fr``/``.en``."""
    if mapping.get("type") != "text" or "analyzer" in mapping:
        return mapping
    languages = {lang: {"type": "text", "analyzer": name} for lang, name in LANGUAGE_ANALYZERS.items()}
    return {**mapping, "analyzer": MULTILINGUAL, "fields": {**mapping.get("fields", {}), **languages}}


def language_fields(fields: list[str], language: str) -> list[str]:
    """``["title^2", "text"]``, ``"fr"`` -> ``["title.fr^2", "text.fr"]`` (boosts kept)."""
    out = []
    for field in fields:
        name, caret, boost = field.partition("^")
        out.append(f"{name}.{language}{caret}{boost}")
    return out


#: Words a person's search (``every_word``) may have. Each word is a clause per field and
#: language subfield, so a pasted paragraph would be thousands of clauses: Elasticsearch caps
#: them (``indices.query.bool.max_clause_count``) and the local noida-db server overflows its
#: stack on ~1,000 words. A question is asked in fewer.
MAX_QUERY_WORDS = 64
_WORD = re.compile(r"\w+")


class QueryTooLongError(ValueError):
    """A search with more than ``MAX_QUERY_WORDS`` words."""


def text_query(
    query: str, fields: list[str], language: str | None = None, *, every_word: bool = False
) -> dict[str, Any]:
    """Full-text query over multilingual text ``fields`` and their language subfields.

    With ``language`` (the documents are known to be in it): the fields and that language's
    subfields. Without: the fields (the multilingual analyzer, any language), and each
    language's subfields only for documents whose ``language`` is that one, so French
    stemming is never applied to English articles and the other way round.

    By default any of the words matches, the more the better (a claim's retroactive search
    ranks candidates that share some of its words). ``every_word``: a person's search, in the
    syntax of ``simple_query_string``: every word must appear in one of the fields,
    ``"a phrase"`` in quotes, ``a | b`` either, ``-word`` not; a syntax error is never an error,
    more than ``MAX_QUERY_WORDS`` words is (``QueryTooLongError``).
    """
    if every_word:
        words = len(_WORD.findall(query))
        if words > MAX_QUERY_WORDS:
            raise QueryTooLongError(f"a search has at most {MAX_QUERY_WORDS} words; this one has {words}")

    def matching(names: list[str]) -> dict[str, Any]:
        if every_word:
            return {"simple_query_string": {"query": query, "fields": names, "default_operator": "and"}}
        return {"multi_match": {"query": query, "fields": names}}

    if language is not None:
        extra = language_fields(fields, language) if language in LANGUAGE_ANALYZERS else []
        return matching([*fields, *extra])
    should: list[dict[str, Any]] = [matching(list(fields))]
    for lang in LANGUAGE_ANALYZERS:
        should.append(
            {
                "bool": {
                    "filter": [{"term": {"language": lang}}],
                    "must": [matching(language_fields(fields, lang))],
                }
            }
        )
    return {"bool": {"should": should, "minimum_should_match": 1}}


def properties_for(model: type[BaseModel]) -> dict[str, Any]:
    return {
        name: _mapping_for(field.annotation, list(field.metadata))
        for name, field in sorted(model.model_fields.items())
    }


def index_template(name: str, model: type[Message], prefix: str = "wirewatch") -> dict[str, Any]:
    """Composable index template for ``<prefix>-<name>-*`` (versioned indices behind an alias)."""
    return {
        "index_patterns": [f"{prefix}-{name}-*"],
        "priority": 200,
        "template": {
            "settings": copy.deepcopy(INDEX_SETTINGS),
            "mappings": {"dynamic": "strict", "properties": properties_for(model)},
        },
        "_meta": {"managed_by": "wirewatch", "model": model.__name__, "schema_version": 1},
    }


def all_templates(prefix: str = "wirewatch") -> dict[str, dict[str, Any]]:
    return {name: index_template(name, model, prefix) for name, model in DOCUMENTS.items()}


def json_schema(model: type[Message]) -> dict[str, Any]:
    return model.model_json_schema(mode="validation")


def rendered_schemas() -> dict[str, str]:
    """Relative path under ``schemas/`` -> file text, for every schema wirewatch publishes."""
    out: dict[str, str] = {}
    for name, model in MESSAGES.items():
        out[f"json/{name}.schema.json"] = _dump(json_schema(model))
    for name, template in all_templates().items():
        out[f"elasticsearch/{name}.template.json"] = _dump(template)
    return out


def export_schemas(directory: Path) -> list[Path]:
    written = []
    for rel, text in rendered_schemas().items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
