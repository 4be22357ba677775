"""The indexer rides out an Elasticsearch outage mid-stream (issue #6).

Only the indexer runs, as a child process under the supervisor ``wirewatch up`` uses; the
test produces enriched articles itself. The search server (osmem-server) is frozen with
SIGSTOP for a minute while articles keep arriving: connections hang, bulk requests time out.
The indexer must stay up, retry, and once the server is back (SIGCONT) index every article
exactly once, with its event, and dead-letter none of them. The last test checks, on the same
running indexer, that a merge reaches the merged event's articles older than its window.

Every text here is invented for this test.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import run, search_docs, settings_for, wait_for
from test_event_indexing import article as event_article
from test_events_linking import BLAST, BRIDGE, DAY, STAY_IN
from wirewatch.core.app import EXIT_SHUTDOWN_TIMEOUT
from wirewatch.core.ids import article_id, stable_id
from wirewatch.core.kafka import produce, read_topic
from wirewatch.core.models import DeadLetter, EnrichedArticle
from wirewatch.core.settings import Settings
from wirewatch.local.servers import LocalServers
from wirewatch.local.supervisor import Supervisor
from wirewatch.runner import setup

pytestmark = pytest.mark.e2e

#: How long the search server stays frozen (the issue says a minute).
OUTAGE_SECONDS = 60.0
#: How the indexer's log lines saying it retries begin: a bulk request, or the read a batch
#: needs first (each stage asks the rolling aliases for their indices before each write).
RETRY_MESSAGE = "elasticsearch unavailable, retrying"
#: WIREWATCH_SHUTDOWN_TIMEOUT of the indexer here (the supervisor's SIGKILL comes at 20 s).
SHUTDOWN_TIMEOUT = 4.0
GAVE_UP_MESSAGE = "shutdown did not finish in time"


@dataclass(frozen=True)
class Story:
    title: str
    lead: str
    details: tuple[str, ...]
    entities: tuple[str, ...]
    keyphrases: tuple[str, ...]


STORIES = (
    Story(
        title="Flooding on the Merrow river cuts the road to Halbeck",
        lead=(
            "The Merrow river burst its banks near Halbeck overnight, cutting the only road into the "
            "town and flooding {n} homes, the county emergency office said."
        ),
        details=(
            "Rescue crews used boats to reach residents on the lower streets.",
            "The water level at the Halbeck gauge reached 4.2 metres, a record for the station.",
            "Schools in the valley stay closed until the road reopens.",
        ),
        entities=("Merrow", "Halbeck"),
        keyphrases=("Merrow river", "flooding", "Halbeck road"),
    ),
    Story(
        title="Teralink rail strike halts trains between Ostby and Varnholm",
        lead=(
            "Drivers at the Teralink rail company walked out on Monday, halting {n} daily trains "
            "between Ostby and Varnholm in a dispute over rosters, the union said."
        ),
        details=(
            "Teralink said it would run replacement buses on the coastal line.",
            "The union wants a cap on night shifts and a new overtime rate.",
            "Talks at the labour mediation office are set to resume on Thursday.",
        ),
        entities=("Teralink", "Ostby", "Varnholm"),
        keyphrases=("rail strike", "Teralink drivers", "trains cancelled"),
    ),
    Story(
        title="Quellen observatory reports a bright comet visible at dawn",
        lead=(
            "Astronomers at the Quellen observatory said a newly found comet will be visible to the "
            "naked eye at dawn for about {n} days, low over the eastern horizon."
        ),
        details=(
            "The comet was first spotted on survey images taken on the Quellen plateau.",
            "Its tail already stretches over two degrees of sky, the observatory said.",
            "Amateur astronomers are advised to look about an hour before sunrise.",
        ),
        entities=("Quellen",),
        keyphrases=("comet", "Quellen observatory", "dawn sky"),
    ),
    Story(
        title="Brandvik council approves a new harbour bridge",
        lead=(
            "The Brandvik city council approved a new bascule bridge over the harbour on Wednesday, "
            "a project costing {n} million crowns that should open in four years."
        ),
        details=(
            "The bridge will carry trams, cyclists and pedestrians, but no cars.",
            "Fishing boats will keep access to the inner harbour when it opens.",
            "Opposition councillors asked for a referendum, which the majority rejected.",
        ),
        entities=("Brandvik",),
        keyphrases=("harbour bridge", "Brandvik council", "bascule bridge"),
    ),
    Story(
        title="Salmonella outbreak traced to a Kessling dairy",
        lead=(
            "Health officials traced a salmonella outbreak that has made {n} people ill to raw-milk "
            "cheese from a dairy in Kessling, and ordered a recall of every batch sold since May."
        ),
        details=(
            "Most of the patients live in the districts around Kessling and Dornau.",
            "The dairy has stopped production while inspectors take samples.",
            "Officials asked anyone holding the cheese to return it to the shop.",
        ),
        entities=("Kessling", "Dornau"),
        keyphrases=("salmonella outbreak", "raw-milk cheese", "product recall"),
    ),
)
OUTLETS = ("north-courier", "valley-post", "harbour-times", "morning-wire", "city-ledger")
BASE_TIME = datetime(2026, 4, 14, 6, 0, tzinfo=UTC)


def make_articles(prefix: str, count: int, start: int = 0) -> list[EnrichedArticle]:
    """``count`` distinct articles: reports of the five stories by the five outlets in turn."""
    out = []
    for i in range(start, start + count):
        story = STORIES[i % len(STORIES)]
        outlet = OUTLETS[(i // len(STORIES)) % len(OUTLETS)]
        # Each report has its own figure and its own order of details: a distinct text.
        details = story.details[i % 3 :] + story.details[: i % 3]
        text = " ".join((story.lead.format(n=100 + 7 * i), *details, f"(Report {prefix}-{i} by {outlet}.)"))
        url = f"https://{outlet}.example/{prefix}/{i:04d}-news.html"
        when = BASE_TIME + timedelta(minutes=3 * i)
        out.append(
            EnrichedArticle(
                id=article_id(url),
                url=url,
                canonical_url=url,
                source=outlet.replace("-", " ").title(),
                source_domain=f"{outlet}.example",
                title=f"{story.title} ({outlet} {i})",
                text=text,
                published=when,
                fetched_at=when + timedelta(minutes=1),
                language="en",
                language_confidence=0.99,
                content_hash=hashlib.sha256(text.encode()).hexdigest(),
                entities=[{"name": e, "label": "place", "mentions": 1} for e in story.entities],
                places=list(story.entities),
                keyphrases=list(story.keyphrases),
            )
        )
    return out


class Stack:
    """The indexer alone, fed by the test, and the search server it writes to."""

    def __init__(self, servers: LocalServers, tmp: Path) -> None:
        self.servers = servers
        self.tmp = tmp
        self.settings: Settings = settings_for(servers)
        self.env = {
            **servers.env(),
            "WIREWATCH_INDEX_BATCH_SECONDS": "0.3",
            "WIREWATCH_INDEX_RETRY_MAX_SECONDS": "2",
            "WIREWATCH_ES_REQUEST_TIMEOUT": "3",
            "WIREWATCH_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
            "WIREWATCH_LOG_FORMAT": "json",
            "WIREWATCH_DATA_DIR": str(tmp / "data"),
        }
        self.supervisor = Supervisor(["indexer"], self.env, tmp / "logs")
        self.expected: set[str] = set()
        # osmem-server on the ephemeral backend (None on noida-db, which is Kafka too).
        self.search_server = servers.process("osmem")

    # -- the search server ---------------------------------------------------------------

    def freeze_search(self) -> None:
        assert self.search_server is not None
        os.kill(self.search_server.pid, signal.SIGSTOP)

    def thaw_search(self) -> None:
        if self.search_server is not None and self.search_server.poll() is None:
            os.kill(self.search_server.pid, signal.SIGCONT)

    # -- the indexer ---------------------------------------------------------------------

    @property
    def indexer(self) -> subprocess.Popen[bytes]:
        process = self.supervisor.children["indexer"].process
        assert process is not None
        return process

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in (self.tmp / "logs" / "indexer.log").read_text(errors="replace").splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict):
                lines.append(line)
        return lines

    def retries(self) -> list[dict[str, Any]]:
        """The indexer's log lines saying it retries a request (Elasticsearch unavailable)."""
        return [line for line in self.log_lines() if str(line.get("msg", "")).startswith(RETRY_MESSAGE)]

    def log_excerpt(self, last: int = 40) -> str:
        text = (self.tmp / "logs" / "indexer.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-last:])

    # -- Kafka and search ----------------------------------------------------------------

    def send(self, articles: list[EnrichedArticle]) -> None:
        messages: list[tuple[bytes, bytes | None]] = [(a.id.encode(), a.to_bytes()) for a in articles]
        run(produce(self.settings, self.settings.topic_enriched, messages))
        self.expected.update(a.id for a in articles)

    def search(
        self, index: str, query: dict[str, Any] | None = None, size: int = 1000
    ) -> list[dict[str, Any]]:
        return search_docs(self.servers.es_url, index, query, size)

    def count(self, index: str) -> int:
        response = httpx.post(
            f"{self.servers.es_url}/wirewatch-{index}/_count", json={"query": {"match_all": {}}}, timeout=10
        )
        response.raise_for_status()
        return int(response.json()["count"])

    def articles(self) -> list[dict[str, Any]]:
        return self.search("articles")

    def wait_until_indexed(self, timeout: float, what: str) -> list[dict[str, Any]]:
        """Every expected article searchable (and nothing else), with its event."""

        def done() -> list[dict[str, Any]] | None:
            docs = self.articles()
            if {d["id"] for d in docs} == self.expected and all(d.get("event_id") for d in docs):
                return docs
            return None

        try:
            return wait_for(done, timeout=timeout, interval=1.0, what=what)
        except AssertionError as exc:
            docs = self.articles()
            ids = [d["id"] for d in docs]
            raise AssertionError(
                f"{exc}\nindexed {len(ids)} ({len(set(ids))} distinct) of {len(self.expected)}, "
                f"missing {len(self.expected - set(ids))}, without event "
                f"{sum(1 for d in docs if not d.get('event_id'))}, "
                f"indexer alive: {self.indexer.poll() is None}\n"
                f"indexer log (tail):\n{self.log_excerpt()}"
            ) from None

    def indexer_dead_letters(self) -> list[DeadLetter]:
        letters = [
            DeadLetter.from_bytes(v)
            for _, v in run(read_topic(self.settings, self.settings.topic_dead_letters))
            if v is not None
        ]
        return [x for x in letters if x.stage.startswith("indexer.")]

    def assert_exact(self) -> None:
        """Exactly the expected articles, once each, each with an event and one link record."""
        docs = self.articles()
        ids = [d["id"] for d in docs]
        assert len(ids) == len(set(ids)), "an article stored twice"
        assert set(ids) == self.expected
        assert self.count("articles") == len(self.expected)
        assert all(d.get("event_id") for d in docs)
        links = wait_for(
            lambda: (lambda ls: ls if len(ls) >= len(self.expected) else None)(self.search("event-links")),
            timeout=60,
            what="one event-link record per article",
        )
        assert sorted(r["article_id"] for r in links) == sorted(self.expected)
        assert self.count("event-links") == len(self.expected)
        linked = {r["article_id"]: r["event_id"] for r in links}
        assert all(linked[d["id"]] == d["event_id"] for d in docs)
        assert not self.indexer_dead_letters()
        assert not [d for d in self.search("dead-letters") if d["stage"].startswith("indexer.")]


@pytest.fixture(scope="module")
def stack(servers: LocalServers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(servers, tmp_path_factory.mktemp("outage"))
    run(setup(s.settings))
    s.supervisor.start()
    try:
        assert s.supervisor.wait_healthy(90), f"indexer not healthy:\n{s.log_excerpt()}"
        yield s
    finally:
        s.thaw_search()
        s.supervisor.stop()


def test_indexer_survives_a_minute_long_search_outage_and_indexes_every_article_once(stack: Stack) -> None:
    first, second = make_articles("a", 40), make_articles("a", 60, start=40)
    stack.send(first)
    stack.wait_until_indexed(90, "the first 40 articles indexed and linked")
    pid = stack.indexer.pid
    retries_before = len(stack.retries())

    stack.freeze_search()
    try:
        frozen_at = time.monotonic()
        stack.send(second)
        while time.monotonic() - frozen_at < OUTAGE_SECONDS:
            time.sleep(5)
            assert stack.indexer.poll() is None, f"the indexer died during the outage:\n{stack.log_excerpt()}"
        retries = stack.retries()[retries_before:]
        assert retries, f"no '{RETRY_MESSAGE}' during the outage:\n{stack.log_excerpt()}"
        assert all(line.get("level") == "warning" for line in retries)
    finally:
        stack.thaw_search()
    thawed_at = time.monotonic()

    wait_for(
        lambda: {d["id"] for d in stack.articles()} == stack.expected,
        timeout=120,
        interval=0.5,
        what="all 100 articles searchable after the outage",
    )
    indexed_in = time.monotonic() - thawed_at
    stack.wait_until_indexed(120, "all 100 articles indexed and linked after the outage")
    linked_in = time.monotonic() - thawed_at
    assert stack.indexer.pid == pid, "the indexer was restarted (it crashed) during the outage"
    assert stack.supervisor.children["indexer"].restarts == 0
    stack.assert_exact()
    assert len(stack.expected) == 100
    print(
        f"retries logged during the outage: {len(retries)}; after SIGCONT: all articles indexed "
        f"in {indexed_in:.1f}s, all linked to events in {linked_in:.1f}s"
    )


def test_indexer_restarted_right_after_an_outage_keeps_the_index_exact(stack: Stack) -> None:
    before = stack.indexer.pid
    stack.freeze_search()
    try:
        stack.send(make_articles("b", 30))
        time.sleep(15)
        assert stack.indexer.poll() is None, f"the indexer died during the outage:\n{stack.log_excerpt()}"
    finally:
        stack.thaw_search()
    # Killed as the server comes back: the retried bulk may or may not have gone through,
    # and the offsets are not committed. The restarted indexer reads the batch again.
    stack.supervisor.kill("indexer", signal.SIGKILL)
    wait_for(lambda: stack.indexer.pid != before, timeout=30, what="the supervisor to restart the indexer")
    stack.send(make_articles("b", 20, start=30))
    stack.wait_until_indexed(180, "all 150 articles indexed and linked after the restart")
    stack.assert_exact()
    assert len(stack.expected) == 150


def test_indexer_told_to_stop_during_an_outage_exits_in_time_and_its_batch_is_indexed_once(
    stack: Stack,
) -> None:
    """SIGTERM while a request is being retried: draining cannot finish while the server is
    down, so the indexer exits at its shutdown deadline without committing; the restarted one
    reads the batch again."""
    stack.send(make_articles("c", 5))
    stack.wait_until_indexed(90, "5 articles indexed before the outage")
    retries_before = len(stack.retries())
    stack.freeze_search()
    try:
        stack.send(make_articles("c", 20, start=5))
        wait_for(
            lambda: len(stack.retries()) > retries_before,
            timeout=60,
            what="a request retried while the search server is frozen",
        )
        process = stack.indexer
        asked_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
        took = time.monotonic() - asked_at
    finally:
        stack.thaw_search()
    assert code == EXIT_SHUTDOWN_TIMEOUT, f"exit status {code}:\n{stack.log_excerpt()}"
    assert SHUTDOWN_TIMEOUT <= took < SHUTDOWN_TIMEOUT + 5, took
    gave_up = [line for line in stack.log_lines() if str(line.get("msg", "")).startswith(GAVE_UP_MESSAGE)]
    assert gave_up and gave_up[-1]["level"] == "error"
    wait_for(
        lambda: stack.indexer.pid != process.pid, timeout=30, what="the supervisor to restart the indexer"
    )
    stack.wait_until_indexed(180, "every article indexed and linked after the stop")
    stack.assert_exact()


def test_a_merge_in_the_running_indexer_gives_the_merged_events_older_article_the_survivors_id(
    stack: Stack,
) -> None:
    """Two events joined by a report that bridges them: the merged event's article that left
    the linking stage's window long ago gets the survivor's id in the index too, so a dashboard
    counting articles by event shows one event."""
    later = (BASE_TIME + timedelta(days=60)).timestamp() - BLAST.time  # after the module's articles
    blast, stay_in, bridge = (replace(r, time=r.time + later) for r in (BLAST, STAY_IN, BRIDGE))
    stay_in_event = stable_id("event", stay_in.id)  # an event's id: the hash of its first report
    old = replace(stay_in, id="stay-in-long-ago", time=stay_in.time - 30 * DAY)
    # The old report as the linking stage wrote it a month ago.
    httpx.put(
        f"{stack.servers.es_url}/wirewatch-articles/_doc/{old.id}",
        content=event_article(old, event_id=stay_in_event).to_bytes(),
        headers={"content-type": "application/json"},
        timeout=10,
    ).raise_for_status()

    def event_of(article_id: str) -> str | None:
        docs = stack.search("articles", {"ids": {"values": [article_id]}})
        return docs[0].get("event_id") if docs else None

    # One after the other: a merge keeps the event opened first (the enriched topic's partitions
    # would not keep the order of two articles sent together).
    stack.send([event_article(blast)])
    wait_for(lambda: event_of(blast.id), timeout=60, what="the first report linked")
    stack.send([event_article(stay_in)])
    wait_for(lambda: event_of(stay_in.id), timeout=60, what="the second report linked")
    blast_event = event_of(blast.id)
    assert event_of(stay_in.id) == stay_in_event != blast_event
    stack.send([event_article(bridge)])
    wait_for(
        lambda: event_of(old.id) == blast_event,
        timeout=60,
        what="the merged event's old article given the survivor's id",
    )
    assert event_of(stay_in.id) == event_of(bridge.id) == blast_event
    assert not stack.search("articles", {"term": {"event_id": stay_in_event}})
    merged = stack.search("events", {"ids": {"values": [stay_in_event]}})
    assert merged and merged[0]["merged_into"] == blast_event
    assert not stack.indexer_dead_letters()
