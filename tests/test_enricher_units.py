"""The enricher's per-article analysis, without servers (duplicates: ``test_copies.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from wirewatch.core.ids import article_id, canonical_url
from wirewatch.core.models import EnrichedArticle, RawArticle
from wirewatch.core.text import content_hash
from wirewatch.enricher import service as enricher_service
from wirewatch.enricher.service import CopyLinker, RecentAnalyses, analyse

WIRE_TEXT = (
    "Voltera announced on Tuesday that it will build a battery plant near Dunkirk, investing 1.2 billion "
    "euros and hiring 1 500 people by 2028. The regional council welcomed the decision."
)
FR_TEXT = (
    "Voltera a annoncé mardi la construction d'une usine de batteries près de Dunkerque, un investissement "
    "de 1,2 milliard d'euros et 1 500 embauches d'ici 2028. Le conseil régional a salué la décision."
)


def _raw(url: str, text: str = WIRE_TEXT, **changes: Any) -> RawArticle:
    values: dict[str, Any] = {
        "id": article_id(url),
        "url": url,
        "canonical_url": canonical_url(url),
        "source": "Global Wire",
        "source_domain": "global-wire.example",
        "title": "Voltera to build battery plant near Dunkirk",
        "text": text,
        "published": datetime(2026, 3, 3, 8, 0, tzinfo=UTC),
    }
    values.update(changes)
    return RawArticle(**values)


FIRST = "https://global-wire.example/2026/03/voltera-dunkirk"
COPY = "https://harbour-gazette.example/business/voltera-dunkirk"


# --- analyse --------------------------------------------------------------------------------------


def test_analyse_sets_language_and_content_hash() -> None:
    raw = _raw(FIRST)
    article = analyse(raw)
    assert isinstance(article, EnrichedArticle)
    assert article.language == "en"
    assert 0.5 <= article.language_confidence <= 1.0
    assert article.content_hash == content_hash(WIRE_TEXT)
    assert len(article.content_hash) == 64
    assert article.duplicate_of is None
    assert not article.is_duplicate
    # Everything the raw article carried is kept as is.
    assert article.model_dump(include=set(RawArticle.model_fields)) == raw.model_dump()
    assert EnrichedArticle.from_bytes(article.to_bytes()) == article


def test_analyse_detects_french_whatever_the_hint() -> None:
    title = "Voltera construira une usine à Dunkerque"
    article = analyse(_raw(COPY, FR_TEXT, title=title, language_hint="en"))
    assert article.language == "fr"


def test_analyse_falls_back_to_the_hint_without_text() -> None:
    article = analyse(_raw(FIRST, "   ", title="", language_hint="fr-FR"))
    assert (article.language, article.language_confidence) == ("fr", 0.0)
    article = analyse(_raw(FIRST, "", title=""))
    assert article.language == "und"


def test_a_word_for_word_copy_is_analysed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    analysed: list[str] = []
    upstream = enricher_service.analyse_text

    def counting(title: str, text: str, language: str) -> Any:
        analysed.append(title)
        return upstream(title, text, language)

    monkeypatch.setattr(enricher_service, "analyse_text", counting)
    recent = RecentAnalyses(size=2)
    first = analyse(_raw(FIRST), recent)
    copy = analyse(_raw(COPY), recent)  # another outlet, the same title and text
    assert len(analysed) == 1
    assert copy.id != first.id and copy.url == COPY
    derived = set(EnrichedArticle.model_fields) - set(RawArticle.model_fields) - {"enriched_at"}
    assert copy.model_dump(include=derived) == first.model_dump(include=derived)
    assert copy.model_dump(include=derived) == analyse(_raw(COPY)).model_dump(include=derived)

    analyse(_raw(COPY, title="Voltera picks Dunkirk"), recent)  # a title of its own: analysed
    analyse(_raw(COPY, language_hint="fr"), recent)  # declared in another language: analysed
    assert len(analysed) == 4
    analyse(_raw(FIRST), recent)  # the oldest of three, pushed out of a cache of two
    assert len(analysed) == 5


def test_a_word_for_word_copy_is_fingerprinted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    printed: list[str] = []
    upstream = enricher_service.fingerprint

    def counting(text: str) -> Any:
        printed.append(text)
        return upstream(text)

    monkeypatch.setattr(enricher_service, "fingerprint", counting)
    linker, fresh = CopyLinker({}, ttl_days=30), CopyLinker({}, ttl_days=30)
    first, copy = analyse(_raw(FIRST)), analyse(_raw(COPY))
    linked = [linker.link(first, at=1.0), linker.link(copy, at=2.0)]
    assert printed == [WIRE_TEXT] and linked[1].duplicate_of == first.id
    assert linked == [fresh.link(first, at=1.0), fresh.link(copy, at=2.0)]  # as if computed again
    monkeypatch.setattr(CopyLinker, "RECENT_PRINTS_MAX_CHARS", len(WIRE_TEXT) - 1)
    linker.link(analyse(_raw(COPY + "-2")), at=3.0)
    linker.link(analyse(_raw(COPY + "-3")), at=4.0)
    assert len(printed) == 4  # the fresh linker's one, and a text longer than the bound: each time


def test_same_text_modulo_typography_has_the_same_hash() -> None:
    retyped = WIRE_TEXT.upper().replace(" ", "  ").replace("1 500", "1\u202f500")
    assert analyse(_raw(FIRST)).content_hash == analyse(_raw(COPY, retyped)).content_hash
    assert analyse(_raw(FIRST)).content_hash != analyse(_raw(COPY, FR_TEXT)).content_hash
