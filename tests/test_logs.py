"""The services' logging configuration (core/logs.py): JSON lines, and no hidden cost per request."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import NoReturn

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elastic_transport._node._base import BaseNode

from conftest import make_settings
from wirewatch import runner
from wirewatch.core.logs import logging_config
from wirewatch.core.settings import Settings


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Put every logger back as it was: dictConfig changes the process's logging for good."""
    root = logging.getLogger()
    saved_root = (root.level, root.handlers[:])
    saved = {
        name: (logger.level, logger.propagate, logger.handlers[:], logger.disabled)
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    try:
        yield
    finally:
        root.setLevel(saved_root[0])
        root.handlers[:] = saved_root[1]
        for name, (level, propagate, handlers, disabled) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.propagate = propagate
            logger.handlers[:] = handlers
            logger.disabled = disabled


def configure(level: str, stream: io.StringIO) -> None:
    config = logging_config(level, "json", "indexer")
    config["handlers"]["stderr"]["stream"] = stream
    logging.config.dictConfig(config)


@pytest.mark.parametrize("level", ["info", "debug"])
def test_search_client_requests_are_not_formatted_for_dropped_debug_lines(
    restored_logging: None, level: str
) -> None:
    """elastic_transport formats every request's body for its debug line whenever its node logger
    has a handler above it; the services' configuration must keep that logger cut off."""
    logging.getLogger("elastic_transport.node")  # exists before the configuration, as in a service
    configure(level, io.StringIO())
    assert not logging.getLogger("elastic_transport.node").hasHandlers()

    decoded: list[bytes] = []

    class Body(bytes):
        def decode(self, *args: object, **kwargs: object) -> str:
            decoded.append(self)
            return super().decode()

    node = BaseNode(NodeConfig("http", "127.0.0.1", 9200))
    meta = ApiResponseMeta(200, "1.1", HttpHeaders(), 0.01, node.config)
    node._log_request("POST", "/_bulk", HttpHeaders(), Body(b'{"index": {}}\n{"a": 1}\n'), meta, Body(b"{}"))
    assert decoded == []


def test_a_log_line_is_one_json_object_with_the_call_sites_fields(restored_logging: None) -> None:
    out = io.StringIO()
    configure("info", out)
    log = logging.getLogger("wirewatch.indexer")
    log.info("article indexed", extra={"article_id": "a1", "event_id": "e1"})
    log.debug("not at info")
    logging.getLogger("elastic_transport.transport").info("below the library's warning level")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["msg"] == "article indexed"
    assert entry["level"] == "info"
    assert entry["service"] == "indexer"
    assert entry["logger"] == "wirewatch.indexer"
    assert (entry["article_id"], entry["event_id"]) == ("a1", "e1")


def test_a_service_logs_each_unknown_variable_once_at_start(
    restored_logging: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``wirewatch run`` (containers, `up`): one structured warning per variable no setting reads,
    before the service is built; the CLI leaves it to the service (``main``)."""

    class Built(Exception):
        """Stands for the service: the test stops where it would start."""

    monkeypatch.setenv("WIREWATCH_ALERT_WEBHOK_URL", "https://hooks.example/desk")
    monkeypatch.setattr(runner, "limit_compute_threads", lambda threads: None)

    def build(name: str, settings: Settings) -> NoReturn:
        raise Built

    monkeypatch.setattr(runner, "build", build)
    with pytest.raises(Built):
        runner.run("alerts", make_settings())
    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert (entry["level"], entry["service"], entry["variable"], entry["did_you_mean"]) == (
        "warning",
        "alerts",
        "WIREWATCH_ALERT_WEBHOK_URL",
        "WIREWATCH_ALERT_WEBHOOK_URLS",
    )
    assert entry["msg"].startswith("WIREWATCH_ALERT_WEBHOK_URL is not a wirewatch setting: ignored")
