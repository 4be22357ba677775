"""Models, JSON Schemas and Elasticsearch templates: one source of truth, no drift."""

from __future__ import annotations

import json
import types
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from wirewatch.cli import main
from wirewatch.core.mappings import all_templates, export_schemas, rendered_schemas
from wirewatch.core.models import (
    DOCUMENTS,
    MESSAGES,
    Alert,
    BackfillRequest,
    DeadLetter,
    EnrichedArticle,
    Event,
    EventLink,
    Feed,
    Message,
    MessageError,
    RawArticle,
    TrackedClaim,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"
FIX = "run `wirewatch schemas export`"

WHEN = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
ARTICLE_ID = "0f3c9a1e5b7d4c2a8e6f1b3d5a7c9e0f"
RAW: dict[str, Any] = {
    "id": ARTICLE_ID,
    "url": "https://www.harbour-gazette.example/business/voltera-battery-plant?utm_source=rss",
    "canonical_url": "https://www.harbour-gazette.example/business/voltera-battery-plant",
    "feed_url": "https://www.harbour-gazette.example/rss.xml",
    "source": "Harbour Gazette",
    "source_domain": "harbour-gazette.example",
    "title": "Voltera to build a battery plant near Dunkirk",
    "text": "Voltera said on Tuesday it would invest 1.2 billion euros in a plant employing 1 500 people.",
    "description": "The plant would open in 2028.",
    "author": "Jeanne Martin",
    "published": WHEN,
    "fetched_at": WHEN,
    "language_hint": "en-GB",
    "html_sha256": "ab" * 32,
    "html_bytes": 48_213,
    "http_status": 200,
    "content_type": "text/html; charset=utf-8",
}
EXAMPLES: dict[str, Message] = {
    "feed": Feed(
        id="5d41402abc4b2a76b9719d911017c592",
        url="https://www.harbour-gazette.example/rss.xml",
        name="Harbour Gazette",
        language="en",
        interval=600.0,
    ),
    "backfill-request": BackfillRequest(
        id="9a0364b9e99bb480dd25e1f0284c8555",
        url="https://www.harbour-gazette.example/sitemap_index.xml",
        since=datetime(2026, 10, 1, tzinfo=UTC),
        requested_at=datetime(2026, 11, 21, 9, 30, tzinfo=UTC),
    ),
    "raw-article": RawArticle(**RAW),
    "article": EnrichedArticle(
        **RAW,
        language="en",
        language_confidence=0.97,
        content_hash="cd" * 32,
        duplicate_of="1" * 32,
        is_duplicate=True,
        enriched_at=WHEN,
    ),
    "event": Event(
        id="e" * 32,
        label="Voltera battery plant in Dunkirk",
        first_seen=WHEN,
        last_seen=WHEN,
        article_count=3,
        source_count=2,
        sources=["Global Wire", "Harbour Gazette"],
        languages=["en", "fr"],
        earliest_article_id="1" * 32,
    ),
    "event-link": EventLink(
        id=ARTICLE_ID,
        article_id=ARTICLE_ID,
        event_id="e" * 32,
        joined_event_id="e" * 32,
        event_label="Voltera battery plant in Dunkirk",
        reason="similar",
        score=0.61,
        title="Voltera to build battery plant in Dunkirk",
        source="Harbour Gazette",
        source_domain="harbour-gazette.example",
        language="en",
        time=WHEN,
    ),
    "claim": TrackedClaim(
        id="claim-voltera-jobs",
        text="Voltera's plant will create 1 500 jobs",
        language="en",
        keywords=["Voltera", "Dunkirk"],
        labels={"desk": "business"},
        threshold=0.6,
        owner="desk@example.org",
        created_at=WHEN,
    ),
    "alert": Alert(
        id="a" * 32,
        claim_id="claim-voltera-jobs",
        claim_text="Voltera's plant will create 1 500 jobs",
        article_id=ARTICLE_ID,
        url=RAW["url"],
        title=RAW["title"],
        source="Harbour Gazette",
        language="en",
        published=WHEN,
        sentence="The plant will employ 1 500 people.",
        sentence_start=120,
        sentence_end=155,
        score=0.82,
        created_at=WHEN,
    ),
    "dead-letter": DeadLetter(
        id="d" * 32,
        stage="fetcher.article",
        reason="HTTP 404 for https://www.harbour-gazette.example/gone",
        error_type="FetchError",
        source_topic="wirewatch.articles.raw",
        partition=2,
        offset=41,
        key=ARTICLE_ID,
        payload="<html>…</html>",
        url="https://www.harbour-gazette.example/gone",
        feed_url="https://www.harbour-gazette.example/rss.xml",
        created_at=WHEN,
    ),
}


# --- committed files ------------------------------------------------------------------------------


def test_committed_schemas_match_the_models() -> None:
    rendered = rendered_schemas()
    on_disk = {
        path.relative_to(SCHEMAS).as_posix(): path.read_text(encoding="utf-8")
        for path in SCHEMAS.rglob("*.json")
    }
    missing = sorted(set(rendered) - set(on_disk))
    extra = sorted(set(on_disk) - set(rendered))
    stale = sorted(rel for rel in set(rendered) & set(on_disk) if rendered[rel] != on_disk[rel])
    assert not (missing or extra or stale), (
        f"schemas/ is out of date with wirewatch.core.models ({FIX}): "
        f"missing {missing}, not generated by any model {extra}, stale {stale}"
    )


def test_every_message_and_document_has_a_committed_schema() -> None:
    for name in MESSAGES:
        assert (SCHEMAS / "json" / f"{name}.schema.json").is_file(), f"{name}: {FIX}"
    for name in DOCUMENTS:
        assert (SCHEMAS / "elasticsearch" / f"{name}.template.json").is_file(), f"{name}: {FIX}"


# --- messages -------------------------------------------------------------------------------------


def test_examples_cover_every_message() -> None:
    assert set(EXAMPLES) == set(MESSAGES), "add a realistic example for every model in MESSAGES"
    for name, example in EXAMPLES.items():
        assert type(example) is MESSAGES[name]


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_example_round_trips_through_bytes(name: str) -> None:
    model = MESSAGES[name]
    example = EXAMPLES[name]
    data = example.to_bytes()
    assert isinstance(data, bytes)
    decoded = json.loads(data)
    assert decoded["schema_version"] == 1
    again = model.from_bytes(data)
    assert again == example
    assert again.to_bytes() == data
    assert model.from_bytes(data.decode("utf-8")) == example  # str input too


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_example_validates_against_its_json_schema_shape(name: str) -> None:
    """Every field the model writes is a property of its published JSON Schema, and required fields
    are present."""
    schema = json.loads((SCHEMAS / "json" / f"{name}.schema.json").read_text(encoding="utf-8"))
    written = json.loads(EXAMPLES[name].to_bytes())
    assert set(written) <= set(schema["properties"])
    assert set(schema.get("required", [])) <= {k for k, v in written.items() if v is not None}


def test_unknown_fields_are_ignored() -> None:
    data = json.loads(EXAMPLES["feed"].to_bytes())
    data["added_by_a_newer_producer"] = {"x": 1}
    assert Feed.from_bytes(json.dumps(data)) == EXAMPLES["feed"]


@pytest.mark.parametrize(
    "data",
    [b"", b"not json at all", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b"null", b'"a string"', b"{"],
)
def test_garbage_is_a_message_error(data: bytes) -> None:
    with pytest.raises(MessageError, match="invalid raw-article message"):
        RawArticle.from_bytes(data)


def _raw_json(**changes: Any) -> bytes:
    data = json.loads(EXAMPLES["raw-article"].to_bytes())
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"text": ...}, "text"),
        ({"id": ...}, "id"),
        ({"text": 42}, "text"),
        ({"text": ["a", "b"]}, "text"),
        ({"published": "last Tuesday"}, "published"),
        ({"http_status": "OK"}, "http_status"),
        ({"html_bytes": 1.5}, "html_bytes"),
        ({"schema_version": 2}, "schema_version"),
        ({"schema_version": "one"}, "schema_version"),
    ],
)
def test_bad_fields_are_reported_by_name(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(MessageError) as caught:
        RawArticle.from_bytes(_raw_json(**changes))
    message = str(caught.value)
    assert message.startswith("invalid raw-article message: ")
    assert f"{field}: " in message, message
    assert "\n" not in message  # one readable line, not pydantic's multi-line dump


def test_constraints_are_enforced() -> None:
    data = json.loads(EXAMPLES["article"].to_bytes())
    data["language_confidence"] = 1.5
    with pytest.raises(MessageError, match="language_confidence"):
        EnrichedArticle.from_bytes(json.dumps(data))
    data = json.loads(EXAMPLES["feed"].to_bytes())
    data["interval"] = 0
    with pytest.raises(MessageError, match="interval"):
        Feed.from_bytes(json.dumps(data))


def test_many_errors_are_summarised() -> None:
    with pytest.raises(MessageError, match=r"\(\+\d+ more\)"):
        Alert.from_bytes(b"{}")


def test_a_raw_article_is_not_an_enriched_one() -> None:
    with pytest.raises(MessageError, match="language"):
        EnrichedArticle.from_bytes(EXAMPLES["raw-article"].to_bytes())


# --- Elasticsearch templates ----------------------------------------------------------------------


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        assert len(args) == 1, f"unexpected union {annotation!r}"
        return args[0]
    return annotation


def _allowed_es_types(annotation: Any) -> set[str]:
    """Elasticsearch field types that can hold values of ``annotation`` (derived independently)."""
    annotation = _strip_optional(annotation)
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _allowed_es_types(get_args(annotation)[0])
    if origin is Literal:
        values = get_args(annotation)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return {"integer", "long", "short", "byte"}
        return {"keyword"}
    if origin in (list, tuple, set, frozenset):
        return _allowed_es_types(get_args(annotation)[0])
    if origin is dict:
        return {"object", "flattened"}
    if annotation is bool:
        return {"boolean"}
    if annotation is int:
        return {"long", "integer"}
    if annotation is float:
        return {"float", "double", "half_float", "scaled_float"}
    if annotation is datetime:
        return {"date", "date_nanos"}
    if annotation is str:
        return {"keyword", "text", "match_only_text", "wildcard"}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"object", "nested"}
    raise AssertionError(f"no expected Elasticsearch type for {annotation!r}: extend this test")


@pytest.mark.parametrize("index", sorted(DOCUMENTS))
def test_template_maps_every_field_with_a_consistent_type(index: str) -> None:
    model = DOCUMENTS[index]
    template = json.loads((SCHEMAS / "elasticsearch" / f"{index}.template.json").read_text(encoding="utf-8"))
    mappings = template["template"]["mappings"]
    assert mappings["dynamic"] == "strict"
    _check_properties(index, model, mappings["properties"])


def _check_properties(where: str, model: type[BaseModel], properties: dict[str, Any]) -> None:
    assert set(properties) == set(model.model_fields), f"{where}: every field mapped, nothing else"
    for name, field in model.model_fields.items():
        mapping = properties[name]
        allowed = _allowed_es_types(field.annotation)
        assert mapping.get("type", "object") in allowed, f"{where}.{name}: {mapping} for {field.annotation!r}"
        if mapping.get("type") == "keyword" and mapping.get("index", True):
            assert mapping.get("ignore_above", 0) > 0, f"{where}.{name}: unbounded keyword"
        if "properties" in mapping:  # a nested model: its own fields, checked the same way
            inner = _strip_optional(field.annotation)
            while get_origin(inner) in (list, typing.Annotated):
                inner = get_args(inner)[0]
            _check_properties(f"{where}.{name}", inner, mapping["properties"])


def test_templates_cover_their_indices() -> None:
    templates = all_templates(prefix="news")
    assert set(templates) == set(DOCUMENTS)
    for name, template in templates.items():
        assert template["index_patterns"] == [f"news-{name}-*"]
        assert template["template"]["mappings"]["dynamic"] == "strict"
        assert template["_meta"]["model"] == DOCUMENTS[name].__name__


def test_full_text_fields_are_text() -> None:
    articles = all_templates()["articles"]["template"]["mappings"]["properties"]
    assert articles["text"]["type"] == "text"
    assert articles["title"]["type"] == "text"
    assert articles["title"]["fields"]["keyword"]["type"] == "keyword"
    assert articles["published"]["type"] == "date"
    assert articles["is_duplicate"]["type"] == "boolean"
    payload = all_templates()["dead-letters"]["template"]["mappings"]["properties"]["payload"]
    assert payload["index"] is False


# --- `wirewatch schemas export` -------------------------------------------------------------------


def test_export_check_passes_in_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(main, ["schemas", "export", "--check"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_export_check_fails_on_an_altered_file(tmp_path: Path) -> None:
    runner = CliRunner()
    written = runner.invoke(main, ["schemas", "export", "--dir", str(tmp_path)])
    assert written.exit_code == 0, written.output
    assert {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json")} == set(rendered_schemas())
    ok = runner.invoke(main, ["schemas", "export", "--check", "--dir", str(tmp_path)])
    assert ok.exit_code == 0, ok.output

    altered = tmp_path / "elasticsearch" / "articles.template.json"
    text = altered.read_text(encoding="utf-8").replace('"date"', '"keyword"', 1)
    altered.write_text(text, encoding="utf-8")
    result = runner.invoke(main, ["schemas", "export", "--check", "--dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "elasticsearch/articles.template.json" in result.stderr
    assert "wirewatch schemas export" in result.stderr
    assert "json/" not in result.stderr  # only the altered file is named
    assert altered.read_text(encoding="utf-8") == text  # --check never writes


def test_export_check_fails_on_a_missing_file(tmp_path: Path) -> None:
    export_schemas(tmp_path)
    (tmp_path / "json" / "feed.schema.json").unlink()
    result = CliRunner().invoke(main, ["schemas", "export", "--check", "--dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "json/feed.schema.json" in result.stderr
