"""The Kibana saved objects in deploy/kibana/ against the index templates, and their import.

Field types come from the templates generated from the models at test time
(``wirewatch.core.mappings.all_templates``), so a model change that breaks a dashboard fails
here: every field a data view, Lens column, saved search, KQL query or runtime script uses must
exist in its index with a type that suits the use. The import is tested against a small local
HTTP server standing in for Kibana's saved-objects API.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from conftest import make_settings, serving
from wirewatch.cli import main
from wirewatch.core.mappings import all_templates
from wirewatch.core.settings import Settings
from wirewatch.kibana import FILE_PREFIX, KibanaError, import_objects, load_objects, objects_dir, read_objects

ROOT = Path(__file__).resolve().parent.parent
KIBANA_DIR = ROOT / "deploy" / "kibana"
GRID_COLUMNS = 48  # a dashboard is 48 grid units wide

NUMERIC = frozenset(
    {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"}
)
DATES = frozenset({"date", "date_nanos"})
AGGREGATABLE = NUMERIC | DATES | {"keyword", "constant_keyword", "boolean", "ip"}
RUNTIME_TYPES = frozenset({"keyword", "long", "double", "date", "boolean", "ip", "geo_point"})
RECORDS = "___records___"  # Lens' sourceField for a plain document count

#: Lens operation -> the field types it accepts (None: any existing field).
LENS_OPERATIONS: dict[str, frozenset[str] | None] = {
    "date_histogram": DATES,
    "terms": NUMERIC | {"keyword", "constant_keyword", "boolean", "ip"},
    "count": None,
    "unique_count": AGGREGATABLE,
    "last_value": AGGREGATABLE,
    "min": NUMERIC | DATES,
    "max": NUMERIC | DATES,
    "average": NUMERIC,
    "sum": NUMERIC,
    "median": NUMERIC,
    "percentile": NUMERIC,
    "percentile_rank": NUMERIC,
    "standard_deviation": NUMERIC,
    "range": NUMERIC,
}
#: Operations whose column has the field's own data type (the others produce numbers).
KEEPS_FIELD_TYPE = frozenset({"date_histogram", "terms", "min", "max", "last_value"})


def lens_data_type(es_type: str) -> str:
    if es_type in NUMERIC:
        return "number"
    if es_type in DATES:
        return "date"
    if es_type == "boolean":
        return "boolean"
    if es_type == "ip":
        return "ip"
    return "string"


# --- the index side ------------------------------------------------------------------------------


def flatten(properties: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Dotted path -> mapping, object fields and multi-fields (``label.keyword``) included."""
    out: dict[str, dict[str, Any]] = {}
    for name, mapping in properties.items():
        path = f"{prefix}{name}"
        if "properties" in mapping:
            out[path] = {"type": "object"}
            out.update(flatten(mapping["properties"], f"{path}."))
            continue
        out[path] = mapping
        for sub, sub_mapping in (mapping.get("fields") or {}).items():
            out[f"{path}.{sub}"] = sub_mapping
    return out


def es_type(mapping: dict[str, Any]) -> str:
    return str(mapping.get("type", "object"))


def is_aggregatable(mapping: dict[str, Any]) -> bool:
    return es_type(mapping) in AGGREGATABLE and mapping.get("doc_values", True) is not False


def is_searchable(mapping: dict[str, Any]) -> bool:
    return es_type(mapping) != "object" and mapping.get("index", True) is not False


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    return all_templates(FILE_PREFIX)


@pytest.fixture(scope="module")
def index_fields(templates: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Alias (``wirewatch-articles``) -> its fields."""
    return {
        f"{FILE_PREFIX}-{name}": flatten(template["template"]["mappings"]["properties"])
        for name, template in templates.items()
    }


# --- the Kibana side -----------------------------------------------------------------------------

OBJECTS = read_objects(KIBANA_DIR)
BY_KEY = {(obj["type"], obj["id"]): obj for obj in OBJECTS}


def of_type(kind: str) -> list[dict[str, Any]]:
    return [obj for obj in OBJECTS if obj["type"] == kind]


def ids(objs: list[dict[str, Any]]) -> list[str]:
    return [obj["id"] for obj in objs]


@dataclass
class DataView:
    id: str
    title: str
    fields: dict[str, dict[str, Any]]
    runtime: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def data_views(index_fields: dict[str, dict[str, dict[str, Any]]]) -> dict[str, DataView]:
    views = {}
    for obj in of_type("index-pattern"):
        attributes = obj["attributes"]
        title = attributes["title"]
        assert title in index_fields, f"data view {obj['id']}: title {title!r} is not a wirewatch alias"
        runtime = json.loads(attributes.get("runtimeFieldMap") or "{}")
        fields = dict(index_fields[title])
        for name, spec in runtime.items():
            fields[name] = {"type": spec["type"], "runtime": True}
        views[obj["id"]] = DataView(obj["id"], title, fields, runtime)
    return views


def view_of(obj: dict[str, Any], ref_name: str, views: dict[str, DataView]) -> DataView:
    refs = {ref["name"]: ref for ref in obj["references"]}
    assert ref_name in refs, f"{obj['type']} {obj['id']}: no reference named {ref_name!r}"
    ref = refs[ref_name]
    assert ref["type"] == "index-pattern", f"{obj['id']}: {ref_name} is a {ref['type']}"
    assert ref["id"] in views, f"{obj['id']}: {ref_name} -> unknown data view {ref['id']!r}"
    return views[ref["id"]]


def field_of(view: DataView, name: str, where: str) -> dict[str, Any]:
    mapping = view.fields.get(name)
    assert mapping is not None, f"{where}: field {name!r} is not in {view.title}"
    assert es_type(mapping) != "object", f"{where}: {name!r} is an object in {view.title}, not a field"
    return mapping


QUOTED = re.compile(r'"(?:\\.|[^"\\])*"')
KQL_FIELD = re.compile(r"(?<![\w.*@])([A-Za-z_@][\w.@]*)\s*(:|<=|>=|<|>)")


def query_fields(query: str) -> list[tuple[str, str]]:
    """(field, operator) of every ``field : value`` / ``field >= value`` in a KQL or Lucene query."""
    return [(m[1], m[2]) for m in KQL_FIELD.finditer(QUOTED.sub('""', query))]


def check_query(query: Any, view: DataView, where: str) -> None:
    if not query:
        return
    text = query["query"] if isinstance(query, dict) else str(query)
    if isinstance(query, dict):
        assert query.get("language") in {"kuery", "lucene"}, f"{where}: unknown query language"
    for name, operator in query_fields(str(text)):
        mapping = field_of(view, name, f"{where} (query {text!r})")
        assert is_searchable(mapping) or mapping.get("runtime"), f"{where}: {name!r} is not indexed"
        if operator != ":":
            assert es_type(mapping) in NUMERIC | DATES, f"{where}: range on {name!r} ({es_type(mapping)})"


def check_filters(filters: list[Any], view: DataView, where: str) -> None:
    for item in filters:
        key = (item.get("meta") or {}).get("key")
        if key:
            field_of(view, key, f"{where} (filter)")
        if isinstance(item.get("query"), dict) and "query" in item["query"]:
            check_query(item["query"], view, f"{where} (filter)")


def test_the_files_are_found_and_parse() -> None:
    assert objects_dir() == KIBANA_DIR
    files = sorted(KIBANA_DIR.glob("*.ndjson"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n"), f"{path.name}: end the last line with a newline"
        for number, line in enumerate(text.splitlines(), 1):
            assert line.strip(), f"{path.name}:{number}: blank line"
            obj = json.loads(line)
            assert isinstance(obj, dict), f"{path.name}:{number}: not an object"
            assert "exportedCount" not in obj, f"{path.name}:{number}: drop the export summary line"


def test_ids_are_unique_stable_and_readable() -> None:
    all_ids = ids(OBJECTS)
    duplicates = sorted({i for i in all_ids if all_ids.count(i) > 1})
    assert not duplicates, f"ids used twice: {duplicates}"
    for obj in OBJECTS:
        assert re.fullmatch(r"wirewatch-[a-z0-9-]+", obj["id"]), f"id {obj['id']!r}: wirewatch-<words>"
        assert obj["type"] in {"index-pattern", "lens", "search", "dashboard"}, obj["type"]
        # Without them Kibana would run every migration since 7.0 on these modern documents.
        for key in ("coreMigrationVersion", "typeMigrationVersion"):
            assert re.fullmatch(r"\d+\.\d+\.\d+", str(obj.get(key))), f"{obj['id']}: {key}"
        assert obj["attributes"].get("title"), f"{obj['id']}: no title"


def test_the_four_dashboards_exist() -> None:
    assert sorted(ids(of_type("dashboard"))) == [
        "wirewatch-dashboard-claims",
        "wirewatch-dashboard-events",
        "wirewatch-dashboard-ingestion",
        "wirewatch-dashboard-sources",
    ]


def test_every_reference_resolves() -> None:
    for obj in OBJECTS:
        names = [ref["name"] for ref in obj["references"]]
        assert len(names) == len(set(names)), f"{obj['id']}: reference names repeat"
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in BY_KEY, f"{obj['id']}: {ref['name']} -> missing {ref}"


def test_every_visualisation_is_on_a_dashboard() -> None:
    shown = {(ref["type"], ref["id"]) for dash in of_type("dashboard") for ref in dash["references"]}
    for obj in of_type("lens") + of_type("search"):
        assert (obj["type"], obj["id"]) in shown, f"{obj['id']} is on no dashboard"
    used_views = {ref["id"] for obj in OBJECTS for ref in obj["references"] if ref["type"] == "index-pattern"}
    assert used_views == set(ids(of_type("index-pattern")))


# --- data views ----------------------------------------------------------------------------------


def test_data_views_are_the_index_aliases(
    templates: dict[str, dict[str, Any]], data_views: dict[str, DataView]
) -> None:
    titles = {view.title for view in data_views.values()}
    assert titles == {make_settings().index(name) for name in templates}
    for view in data_views.values():
        assert view.id == view.title, "a data view's id is its alias (default prefix)"
        name = view.title.removeprefix(f"{FILE_PREFIX}-")
        # The alias fronts the versioned indices the template applies to.
        assert templates[name]["index_patterns"] == [f"{view.title}-*"]


def test_data_view_fields_exist(data_views: dict[str, DataView]) -> None:
    for obj in of_type("index-pattern"):
        view = data_views[obj["id"]]
        attributes = obj["attributes"]
        time_field = attributes.get("timeFieldName")
        assert time_field, f"{view.id}: every wirewatch data view has a time field"
        assert es_type(field_of(view, time_field, f"{view.id} timeFieldName")) in DATES
        for name in json.loads(attributes.get("fieldFormatMap") or "{}"):
            field_of(view, name, f"{view.id} fieldFormatMap")
        for name in json.loads(attributes.get("fieldAttrs") or "{}"):
            field_of(view, name, f"{view.id} fieldAttrs")
        assert json.loads(attributes.get("fields") or "[]") == [], "let Kibana read the fields from the index"


def test_runtime_fields_read_existing_doc_values(
    data_views: dict[str, DataView], index_fields: dict[str, dict[str, dict[str, Any]]]
) -> None:
    for view in data_views.values():
        mapped = index_fields[view.title]
        for name, spec in view.runtime.items():
            assert name not in mapped, f"{view.id}: runtime field {name!r} shadows a mapped field"
            assert spec["type"] in RUNTIME_TYPES, f"{view.id}: runtime {name}: type {spec['type']!r}"
            script = spec["script"]["source"]
            used = re.findall(r"doc\[['\"]([^'\"]+)['\"]\]", script)
            assert used, f"{view.id}: runtime {name} reads no doc values"
            for source in used:
                mapping = mapped.get(source)
                assert mapping is not None, f"{view.id}: runtime {name} reads unknown {source!r}"
                assert is_aggregatable(mapping), f"{view.id}: runtime {name}: {source!r} has no doc values"
                if f"doc['{source}'].value.toInstant()" in script:
                    assert es_type(mapping) in DATES, f"{view.id}: runtime {name}: {source!r} is not a date"


# --- Lens ----------------------------------------------------------------------------------------


def lens_ids() -> list[str]:
    return ids(of_type("lens"))


LIST_ACCESSORS = frozenset({"accessors", "primaryGroups", "secondaryGroups", "metrics"})


def accessors(visualization: Any) -> set[str]:
    """Column ids a Lens visualisation state points at."""
    found: set[str] = set()
    if isinstance(visualization, dict):
        for key, value in visualization.items():
            if key in {"xAccessor", "splitAccessor", "metricAccessor", "columnId", "maxAccessor"}:
                if isinstance(value, str):
                    found.add(value)
            elif key in LIST_ACCESSORS and isinstance(value, list):
                found.update(v for v in value if isinstance(v, str))
            else:
                found |= accessors(value)
    elif isinstance(visualization, list):
        for item in visualization:
            found |= accessors(item)
    return found


@pytest.mark.parametrize("lens_id", lens_ids())
def test_lens_columns_use_fields_of_the_right_type(lens_id: str, data_views: dict[str, DataView]) -> None:
    obj = BY_KEY[("lens", lens_id)]
    state = obj["attributes"]["state"]
    layers = state["datasourceStates"]["formBased"]["layers"]
    assert layers, f"{lens_id}: no layers"
    column_ids: set[str] = set()
    for layer_id, layer in layers.items():
        view = view_of(obj, f"indexpattern-datasource-layer-{layer_id}", data_views)
        columns = layer["columns"]
        assert sorted(layer["columnOrder"]) == sorted(columns), f"{lens_id}: columnOrder vs columns"
        assert not layer.get("incompleteColumns"), f"{lens_id}: incomplete columns"
        column_ids |= set(columns)
        for column_id, column in columns.items():
            where = f"{lens_id} column {column_id}"
            operation = column["operationType"]
            assert operation in LENS_OPERATIONS, f"{where}: teach this test about {operation!r}"
            source = column.get("sourceField")
            assert source, f"{where}: no sourceField"
            if operation == "count" and source == RECORDS:
                assert column["dataType"] == "number"
            else:
                mapping = field_of(view, source, where)
                allowed = LENS_OPERATIONS[operation]
                kind = es_type(mapping)
                if allowed is not None:
                    assert kind in allowed, f"{where}: {operation} on {source!r} ({kind})"
                if operation != "count" and allowed is not None and allowed <= AGGREGATABLE:
                    assert is_aggregatable(mapping) or mapping.get("runtime"), f"{where}: {source!r}"
                expected = lens_data_type(kind) if operation in KEEPS_FIELD_TYPE else "number"
                assert column["dataType"] == expected, f"{where}: dataType {column['dataType']!r}"
            params = column.get("params") or {}
            if operation == "terms" and params.get("orderBy", {}).get("type") == "column":
                assert params["orderBy"]["columnId"] in columns, f"{where}: orders by a missing column"
            if operation == "last_value":
                assert es_type(field_of(view, params["sortField"], where)) in DATES
            if column.get("filter"):
                check_query(column["filter"], view, where)
        check_query(state.get("query"), view, f"{lens_id} query")
        check_filters(state.get("filters") or [], view, lens_id)
    missing = accessors(state["visualization"]) - column_ids
    assert not missing, f"{lens_id}: the chart uses missing columns {missing}"
    layer_refs = {f"indexpattern-datasource-layer-{layer_id}" for layer_id in layers}
    assert {ref["name"] for ref in obj["references"]} == layer_refs, f"{lens_id}: stray references"


# --- saved searches ------------------------------------------------------------------------------


@pytest.mark.parametrize("search_id", ids(of_type("search")))
def test_saved_searches_use_existing_fields(search_id: str, data_views: dict[str, DataView]) -> None:
    obj = BY_KEY[("search", search_id)]
    attributes = obj["attributes"]
    source = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
    view = view_of(obj, source["indexRefName"], data_views)
    assert attributes["columns"], f"{search_id}: no columns"
    for column in attributes["columns"]:
        if column != "_source":
            field_of(view, column, f"{search_id} columns")
    for name, direction in attributes.get("sort", []):
        assert direction in {"asc", "desc"}
        assert is_aggregatable(field_of(view, name, f"{search_id} sort")), (
            f"{search_id}: cannot sort on {name}"
        )
    check_query(source.get("query"), view, f"{search_id} query")
    check_filters(source.get("filter") or [], view, search_id)


# --- dashboards ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dashboard_id", ids(of_type("dashboard")))
def test_dashboard_panels(dashboard_id: str) -> None:
    obj = BY_KEY[("dashboard", dashboard_id)]
    attributes = obj["attributes"]
    panels = json.loads(attributes["panelsJSON"])
    assert 4 <= len(panels) <= 8, f"{dashboard_id}: {len(panels)} panels"
    refs = {ref["name"]: ref for ref in obj["references"]}
    assert len(refs) == len(panels), f"{dashboard_id}: one reference per panel"
    cells: set[tuple[int, int]] = set()
    indices = [panel["panelIndex"] for panel in panels]
    assert len(set(indices)) == len(indices), f"{dashboard_id}: panelIndex repeats"
    for panel in panels:
        where = f"{dashboard_id} panel {panel['panelIndex']}"
        assert "panelRefName" in panel, f"{where}: by-value panel (save the visualisation to the library)"
        ref = refs.get(f"{panel['panelIndex']}:{panel['panelRefName']}")
        assert ref is not None, f"{where}: no reference {panel['panelIndex']}:{panel['panelRefName']}"
        assert ref["type"] == panel["type"], f"{where}: panel type {panel['type']} vs {ref['type']}"
        grid = panel["gridData"]
        assert grid["i"] == panel["panelIndex"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= GRID_COLUMNS, where
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{where} overlaps another panel"
                cells.add((x, y))
    json.loads(attributes["optionsJSON"])
    search_source = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert not search_source.get("query", {}).get("query"), "a dashboard-wide query has no single index"
    assert not search_source.get("filter")


# --- loading with another prefix -------------------------------------------------------------------


def test_load_objects_points_data_views_at_the_configured_prefix(templates: dict[str, Any]) -> None:
    settings = make_settings(es_index_prefix="newsroom")
    loaded = load_objects(KIBANA_DIR, settings.es_index_prefix)
    assert len(loaded) == len(OBJECTS)
    for original, obj in zip(OBJECTS, loaded, strict=True):
        assert obj["id"] == original["id"]
        if obj["type"] == "index-pattern":
            name = original["attributes"]["title"].removeprefix(f"{FILE_PREFIX}-")
            assert obj["attributes"]["title"] == settings.index(name)
            assert name in templates
        else:
            assert obj == original


def test_load_objects_refuses_a_data_view_on_an_unknown_index(tmp_path: Path) -> None:
    view = {"type": "index-pattern", "id": "x", "attributes": {"title": "logs-*"}, "references": []}
    (tmp_path / "x.ndjson").write_text(json.dumps(view) + "\n", encoding="utf-8")
    with pytest.raises(KibanaError, match="not a wirewatch index alias"):
        load_objects(tmp_path)


# --- import against a stand-in Kibana ------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeKibana:
    """Answers /api/status with ``statuses`` in turn (the last one repeats) and the import with
    ``import_answer``."""

    url: str = ""
    statuses: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    import_answer: tuple[int, dict[str, Any]] = (200, {"success": True, "successCount": 0})
    requests: list[Recorded] = field(default_factory=list)

    def imports(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/api/saved_objects/_import")]


AVAILABLE = (200, {"status": {"overall": {"level": "available"}}})
STARTING = (503, {"status": {"overall": {"level": "unavailable"}}})


@pytest.fixture
def kibana() -> Iterator[FakeKibana]:
    fake = FakeKibana(statuses=[STARTING, AVAILABLE])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Recorded:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            recorded = Recorded(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length) if length else b"",
            )
            fake.requests.append(recorded)
            return recorded

        def do_GET(self) -> None:
            if self._record().path != "/api/status":
                self._answer(404, {})
                return
            status = fake.statuses.pop(0) if len(fake.statuses) > 1 else fake.statuses[0]
            self._answer(*status)

        def do_POST(self) -> None:
            if not self._record().path.endswith("/api/saved_objects/_import"):
                self._answer(404, {})
                return
            self._answer(*fake.import_answer)

    with serving(Handler) as fake.url:
        yield fake


def multipart_parts(request: Recorded) -> list[Message]:
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = message_from_bytes(head + request.body, policy=HTTP)
    assert message.is_multipart()
    return list(message.iter_parts())  # type: ignore[attr-defined]


def settings(**values: Any) -> Settings:
    return make_settings(**values)


def test_import_waits_for_kibana_then_posts_every_object(kibana: FakeKibana) -> None:
    kibana.import_answer = (200, {"success": True, "successCount": len(OBJECTS)})
    config = settings(es_username="elastic", es_password="s3cret", es_index_prefix="newsroom")
    result = import_objects(kibana.url, config, space="ops", wait=10, interval=0.01)

    assert (result.objects, result.success_count) == (len(OBJECTS), len(OBJECTS))
    statuses = [r for r in kibana.requests if r.path == "/api/status"]
    assert len(statuses) == 2, "polled /api/status until available"
    (request,) = kibana.imports()
    assert kibana.requests[-1] is request, "nothing is imported before Kibana is available"
    assert request.method == "POST"
    assert request.path == "/s/ops/api/saved_objects/_import"
    assert request.query == {"overwrite": ["true"]}
    assert request.headers["kbn-xsrf"] == "true"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"elastic:s3cret").decode()
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")

    (part,) = multipart_parts(request)
    assert part.get_param("name", header="content-disposition") == "file"
    assert str(part.get_filename()).endswith(".ndjson")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes) and payload.endswith(b"\n")
    sent = [json.loads(line) for line in payload.decode().splitlines()]
    assert sent == load_objects(KIBANA_DIR, "newsroom")
    titles = {obj["attributes"]["title"] for obj in sent if obj["type"] == "index-pattern"}
    assert titles and all(title.startswith("newsroom-") for title in titles)


def test_import_uses_the_api_key_and_the_default_space(kibana: FakeKibana) -> None:
    kibana.import_answer = (200, {"success": True, "successCount": len(OBJECTS)})
    import_objects(kibana.url, settings(es_api_key="a2V5OnNlY3JldA=="), wait=10, interval=0.01)
    (request,) = kibana.imports()
    assert request.path == "/api/saved_objects/_import"
    assert request.headers["authorization"] == "ApiKey a2V5OnNlY3JldA=="


def test_import_reports_what_kibana_rejected(kibana: FakeKibana) -> None:
    error = {
        "id": "wirewatch-dashboard-events",
        "type": "dashboard",
        "error": {"type": "missing_references", "references": [{"type": "lens", "id": "wirewatch-gone"}]},
    }
    kibana.import_answer = (200, {"success": False, "successCount": 3, "errors": [error]})
    with pytest.raises(KibanaError, match=r"dashboard:wirewatch-dashboard-events.*lens:wirewatch-gone"):
        import_objects(kibana.url, settings(), wait=10, interval=0.01)


def test_import_stops_at_once_on_refused_credentials(kibana: FakeKibana) -> None:
    kibana.statuses = [(401, {"statusCode": 401, "error": "Unauthorized"})]
    with pytest.raises(KibanaError, match="refused the credentials"):
        import_objects(
            kibana.url, settings(es_username="elastic", es_password="wrong"), wait=30, interval=0.01
        )
    assert len(kibana.requests) == 1 and not kibana.imports()


def test_import_gives_up_when_kibana_never_becomes_available(kibana: FakeKibana) -> None:
    kibana.statuses = [(200, {"status": {"overall": {"level": "degraded"}}})]
    with pytest.raises(KibanaError, match=r"not available after .*last: degraded"):
        import_objects(kibana.url, settings(), wait=0.2, interval=0.02)
    assert not kibana.imports()


def test_cli_kibana_import(kibana: FakeKibana, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    kibana.import_answer = (200, {"success": True, "successCount": len(OBJECTS)})
    monkeypatch.chdir(tmp_path)  # no .env
    env = {
        "WIREWATCH_ES_USERNAME": "elastic",
        "WIREWATCH_ES_PASSWORD": "pw",
        "WIREWATCH_ES_INDEX_PREFIX": "ww",
    }
    result = CliRunner().invoke(main, ["kibana", "import", "--url", kibana.url, "--wait", "10"], env=env)
    assert result.exit_code == 0, result.output
    assert f"{len(OBJECTS)} of {len(OBJECTS)} saved objects imported" in result.output
    (request,) = kibana.imports()
    (part,) = multipart_parts(request)
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes) and b'"title": "ww-articles"' in payload

    kibana.requests.clear()
    kibana.import_answer = (500, {"message": "boom"})
    result = CliRunner().invoke(main, ["kibana", "import", "--url", kibana.url, "--wait", "10"], env=env)
    assert result.exit_code == 1 and "HTTP 500" in result.output
