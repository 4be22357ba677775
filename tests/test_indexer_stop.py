"""The indexer stops cleanly: its one search client is closed, nothing is left to the garbage
collector at exit (which logged "Unclosed client session" on about one stop in three).

The stages that need Elasticsearch each asked for the worker's client as their first batch came;
when two came at once (a backlog on two topics at the start) each made one, the last one was kept,
and the other was never closed. The kept one was never closed either.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from conftest import make_settings, run, search_docs, settings_for, wait_for
from test_indexer_outage import make_articles
from wirewatch.core.app import ServiceApp
from wirewatch.core.kafka import produce
from wirewatch.core.models import DeadLetter
from wirewatch.indexer import service as indexer_service
from wirewatch.indexer.service import Indexer
from wirewatch.local.servers import LocalServers
from wirewatch.local.supervisor import Supervisor
from wirewatch.runner import setup

#: What a client left unclosed makes the process write as it ends (asyncio's error log lines,
#: or the interpreter's report of an exception in a finaliser).
LEFT_UNCLOSED = ("Unclosed client session", "Unclosed connector", "Exception ignored in")


class _Client:
    """Stands in for the search client: records whether it was closed."""

    closed = False

    async def __aenter__(self) -> _Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closed = True


def test_the_stages_share_one_search_client_closed_when_the_app_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[_Client] = []

    async def connect(settings: Any, *, wait: float) -> _Client:
        await asyncio.sleep(0.05)  # the wait for the cluster's answer, during which others ask
        made.append(_Client())
        return made[-1]

    monkeypatch.setattr(indexer_service, "connect", connect)
    settings = make_settings(data_dir=tmp_path, kafka_bootstrap="127.0.0.1:9", es_url="http://127.0.0.1:9")

    async def scenario() -> None:
        service = ServiceApp("indexer", settings)
        indexer = Indexer(service)
        clients = await asyncio.gather(*(indexer.es() for _ in range(4)))  # four stages at once
        assert len(made) == 1 and all(client is made[0] for client in clients)
        assert await indexer.es() is made[0] and not made[0].closed
        await service.app.stop()  # what the worker does on SIGTERM, once the agents have stopped
        assert made[0].closed

    run(scenario())


def indexed(es_url: str) -> tuple[set[str], set[str]]:
    """The ids of the articles and of the dead letters searchable now."""
    return (
        {doc["id"] for doc in search_docs(es_url, "articles")},
        {doc["id"] for doc in search_docs(es_url, "dead-letters")},
    )


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_a_stopped_indexer_leaves_no_client_unclosed(servers: LocalServers, tmp_path: Path) -> None:
    """The real indexer, started twice with a backlog on two topics (articles and dead letters,
    written by two stages at once) and stopped with SIGTERM each time: exit code 0 and not one
    line about an unclosed client (the old code wrote one on about half of these stops)."""
    settings = settings_for(servers, data_dir=tmp_path / "data")
    run(setup(settings))
    env = {
        **servers.env(),
        "WIREWATCH_INDEX_BATCH_SECONDS": "0.3",
        "WIREWATCH_LOG_FORMAT": "json",
        "WIREWATCH_DATA_DIR": str(tmp_path / "data"),
    }
    articles: set[str] = set()
    letters: set[str] = set()
    for start in range(2):
        new = make_articles(f"stop{start}", 3)
        dead = [
            DeadLetter(id=f"stop-{start}-{n}", stage="fetcher.feed", reason="unreachable", error_type="E")
            for n in range(3)
        ]
        run(produce(settings, settings.topic_enriched, [(a.id.encode(), a.to_bytes()) for a in new]))
        run(produce(settings, settings.topic_dead_letters, [(d.id.encode(), d.to_bytes()) for d in dead]))
        articles.update(a.id for a in new)
        letters.update(d.id for d in dead)

        log_dir = tmp_path / f"logs-{start}"
        supervisor = Supervisor(["indexer"], env, log_dir)
        supervisor.start()
        try:
            wait_for(
                lambda: indexed(servers.es_url) == (articles, letters),
                timeout=120,
                what="the backlog indexed",
            )
        finally:
            supervisor.stop()
        process = supervisor.children["indexer"].process
        assert process is not None
        output = (log_dir / "indexer.log").read_text(errors="replace")
        left = [line for line in output.splitlines() if any(text in line for text in LEFT_UNCLOSED)]
        assert left == [], "\n".join(left)
        assert process.returncode == 0, output[-3000:]  # stopped by SIGTERM, not killed after 20 s
