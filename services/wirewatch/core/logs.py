"""Structured logging: one JSON object per line, with whatever context the call site adds.

Use ``log = get_logger(__name__)`` and ``log.info("article fetched", extra={"article_id": …})``:
every ``extra`` key becomes a field of the JSON line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.service:
            entry["service"] = self.service
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD_ATTRS and not k.startswith("_")
        )
        base = f"{datetime.fromtimestamp(record.created).strftime('%H:%M:%S')} {record.levelname:<7} "
        line = base + f"{record.name}: {record.getMessage()}" + (f"  {extras}" if extras else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def logging_config(level: str, fmt: str, service: str | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict (Faust's worker takes one too)."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter, "service": service} if fmt == "json" else {"()": ConsoleFormatter}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "default", "stream": sys.stderr}
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "aiokafka": {"level": "WARNING"},
            "elastic_transport": {"level": "WARNING"},
            # dictConfig makes the children of a configured logger propagate again; this one must
            # not (elastic_transport turns it off): while any handler is above it, the client
            # decodes and formats every request's whole body for a debug line that is then dropped.
            "elastic_transport.node": {"propagate": False},
            "httpx": {"level": "WARNING"},
            "trafilatura": {"level": "WARNING"},
            "htmldate": {"level": "WARNING"},
            "faust": {"level": "WARNING" if level.lower() != "debug" else "DEBUG"},
            "mode": {"level": "WARNING" if level.lower() != "debug" else "DEBUG"},
        },
    }


def setup_logging(level: str = "info", fmt: str = "json", service: str | None = None) -> None:
    import logging.config

    logging.config.dictConfig(logging_config(level, fmt, service))


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
