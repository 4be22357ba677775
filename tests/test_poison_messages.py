"""Poison messages on every topic a service reads, on real servers (issue #7).

The enricher, the indexer and the alerts service run as child processes under the supervisor
``wirewatch up`` uses, against tansu and osmem-server, once for the module. On each input
topic the test produces, on one partition, bytes that are not JSON, invalid UTF-8, JSON of the
wrong shape, a message of a future schema version, an empty value, an oversized message (16 MB:
tansu takes well over 100 MB, wirewatch reads at most ``MAX_MESSAGE_BYTES``) and, where a null
value means nothing, a tombstone, each followed by a valid message. Every poison message must
become a dead letter of each service that reads the topic, naming the stage, the offset and
the problem; every valid message must get through; no service may crash or restart.

Every text here is invented for this test.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from conftest import run, settings_for, wait_for
from wirewatch.core.ids import article_id, stable_id
from wirewatch.core.kafka import read_topic
from wirewatch.core.models import (
    MAX_MESSAGE_BYTES,
    Alert,
    DeadLetter,
    EnrichedArticle,
    Message,
    MessageError,
    RawArticle,
    TrackedClaim,
)
from wirewatch.core.settings import Settings
from wirewatch.local.servers import LocalServers
from wirewatch.local.supervisor import Supervisor
from wirewatch.runner import setup

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

OVERSIZED = 16_000_000
WHEN = datetime(2026, 4, 14, 6, 0, tzinfo=UTC)
SENTENCES = (
    "The Merrow river burst its banks near Halbeck overnight, flooding {n} homes, the county office said.",
    "Drivers at the Teralink rail company walked out on Monday, halting {n} trains to Varnholm.",
    "Astronomers at the Quellen observatory said a new comet will be visible at dawn for {n} days.",
    "The Brandvik council approved a bascule bridge over the harbour, a project costing {n} million crowns.",
)


def _text(case: str, i: int) -> str:
    lead = SENTENCES[i % len(SENTENCES)].format(n=100 + 7 * i)
    return f"{lead} Officials gave no further details. (Report {case}-{i}.)"


def raw_article(case: str, i: int) -> RawArticle:
    url = f"https://poison-{case}.example/news/{i:03d}.html"
    return RawArticle(
        id=article_id(url),
        url=url,
        canonical_url=url,
        source="Poison Post",
        source_domain=f"poison-{case}.example",
        title=f"Report {i} of the {case} case",
        text=_text(case, i),
        published=WHEN,
        fetched_at=WHEN,
        language_hint="en",
    )


def enriched_article(case: str, i: int) -> EnrichedArticle:
    raw = raw_article(case, i)
    return EnrichedArticle(
        **raw.model_dump(),
        language="en",
        language_confidence=0.99,
        content_hash=hashlib.sha256(raw.text.encode()).hexdigest(),
    )


def alert(case: str, i: int) -> Alert:
    article = raw_article(case, i)
    sentence = article.text.split(" Officials")[0]
    return Alert(
        id=stable_id("alert", case, str(i)),
        claim_id=stable_id("claim", case),
        claim_text="A river flooded homes in Halbeck.",
        article_id=article.id,
        url=article.url,
        title=article.title,
        source=article.source,
        language="en",
        sentence=sentence,
        sentence_start=0,
        sentence_end=len(sentence),
        score=0.9,
        created_at=WHEN,
    )


def tracked_claim(case: str, i: int) -> TrackedClaim:
    return TrackedClaim(
        id=stable_id("claim", case, str(i)), text=f"Poison case {case}: {_text(case, i)}", language="en"
    )


def dead_letter(case: str, i: int) -> DeadLetter:
    return DeadLetter(
        id=stable_id("letter", case, str(i)),
        stage="test.valid",
        reason=f"a valid dead letter ({case} {i})",
        error_type="Error",
    )


@dataclass(frozen=True)
class Poison:
    name: str
    value: bytes | None
    #: What the dead letter's reason must say (a regex).
    reason: str


def poisons(valid: bytes, *, tombstone: bool) -> list[Poison]:
    data = json.loads(valid)
    future = json.dumps({**data, "schema_version": 2}).encode()
    first_string = next(key for key, value in data.items() if isinstance(value, str))
    bad_utf8 = json.dumps({**data, first_string: "@@"}).encode().replace(b"@@", b"caf\xe9 \xff\xfe")
    found = [
        Poison("not JSON", b"\x00\x01\x02 this is not JSON at all", r"Invalid JSON"),
        Poison("invalid UTF-8", bad_utf8, r"Invalid JSON: invalid unicode code point"),
        Poison("an array", b"[1, 2, 3]", r"<root>: Input should be an object"),
        Poison("wrong field types", b'{"id": 5, "text": ["a", "b"]}', r"id: Input should be a valid string"),
        Poison("a future schema version", future, r"schema_version: Input should be 1"),
        Poison("empty", b"", r"Invalid JSON: EOF while parsing"),
        Poison(
            "oversized",
            b'{"id": "' + b"x" * OVERSIZED + b'"}',
            rf"{OVERSIZED + 10} bytes, larger than the {MAX_MESSAGE_BYTES}-byte message limit",
        ),
    ]
    if tombstone:
        found.append(Poison("a tombstone", None, r"no value \(a tombstone\)"))
    return found


@dataclass(frozen=True)
class Case:
    """One input topic: how to make its valid messages, which index they end up in, and which
    services' stages must dead-letter a poison message read from it."""

    name: str
    topic: Callable[[Settings], str]
    make: Callable[[str, int], Message]
    index: str
    stages: frozenset[str]
    tombstone: bool = False


CASES = [
    # The enricher's input; a valid article goes on through the indexer.
    Case(
        "raw", lambda s: s.topic_raw, raw_article, "articles", frozenset({"enricher.parse"}), tombstone=True
    ),
    # Read by both the indexer and the alerts service.
    Case(
        "enriched",
        lambda s: s.topic_enriched,
        enriched_article,
        "articles",
        frozenset({"indexer.articles", "alerts.parse"}),
    ),
    Case("alerts", lambda s: s.topic_alerts, alert, "alerts", frozenset({"indexer.alerts", "alerts.parse"})),
    # Compacted: a null value untracks a claim; the alerts workers' watchlist only logs a bad one.
    Case("claims", lambda s: s.topic_claims, tracked_claim, "claims", frozenset({"indexer.claims"})),
    # A broken dead letter is counted, never dead-lettered again (no loop).
    Case("dead-letters", lambda s: s.topic_dead_letters, dead_letter, "dead-letters", frozenset()),
]


class Stack:
    def __init__(self, servers: LocalServers, tmp: Path) -> None:
        self.servers = servers
        self.tmp = tmp
        self.settings = settings_for(servers)
        env = {
            **servers.env(),
            "WIREWATCH_INDEX_BATCH_SECONDS": "0.3",
            "WIREWATCH_LOG_FORMAT": "json",
            "WIREWATCH_DATA_DIR": str(tmp / "data"),
        }
        self.supervisor = Supervisor(["enricher", "indexer", "alerts"], env, tmp / "logs")

    def log_tail(self, service: str, lines: int = 30) -> str:
        path = self.tmp / "logs" / f"{service}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def produce(self, topic: str, messages: list[tuple[bytes, bytes | None]]) -> list[int]:
        """Send each message to partition 0, in order; their offsets."""

        async def send() -> list[int]:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.servers.kafka_bootstrap, acks="all", max_request_size=64 * 1024 * 1024
            )
            await producer.start()
            try:
                return [
                    (await producer.send_and_wait(topic, key=key, value=value, partition=0)).offset
                    for key, value in messages
                ]
            finally:
                await producer.stop()

        return list(run(send()))

    def dead_letters(self) -> list[DeadLetter]:
        letters = []
        for _, value in run(read_topic(self.settings, self.settings.topic_dead_letters, timeout=10)):
            try:
                letters.append(DeadLetter.from_bytes(value))
            except MessageError:  # the poison the dead-letters case puts there itself
                continue
        return letters

    def indexed(self, index: str, ids: list[str]) -> set[str]:
        es = self.servers.es_url
        httpx.post(f"{es}/wirewatch-{index}/_refresh", timeout=10)
        response = httpx.post(
            f"{es}/wirewatch-{index}/_search",
            json={"query": {"ids": {"values": ids}}, "size": len(ids), "_source": False},
            timeout=10,
        )
        response.raise_for_status()
        return {hit["_id"] for hit in response.json()["hits"]["hits"]}


@pytest.fixture(scope="module")
def stack(servers: LocalServers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(servers, tmp_path_factory.mktemp("poison"))
    run(setup(s.settings))
    s.supervisor.start()
    try:
        healthy = s.supervisor.wait_healthy(120)
        assert healthy, f"services not healthy: {s.supervisor.healthy()}\n{s.log_tail('enricher')}"
        yield s
    finally:
        s.supervisor.stop()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_poison_messages_are_dead_lettered_and_the_stream_goes_on(stack: Stack, case: Case) -> None:
    topic = case.topic(stack.settings)
    first = case.make(case.name, 0)
    bad = poisons(first.to_bytes(), tombstone=case.tombstone)
    valid = [first] + [case.make(case.name, i) for i in range(1, len(bad) + 1)]
    messages: list[tuple[bytes, bytes | None]] = [(b"key-0", valid[0].to_bytes())]
    for poison, good in zip(bad, valid[1:], strict=True):
        messages += [(f"poison-{poison.name}".encode(), poison.value), (b"key-good", good.to_bytes())]
    offsets = stack.produce(topic, messages)
    poisoned = {offsets[1 + 2 * n]: poison for n, poison in enumerate(bad)}
    wanted = [str(getattr(m, "id")) for m in valid]  # noqa: B009 - every message here has an id

    def letters_for_this_case() -> list[DeadLetter]:
        return [x for x in stack.dead_letters() if x.source_topic == topic and x.offset in set(offsets)]

    def done() -> bool:
        letters = letters_for_this_case()
        stages_seen = {(x.offset, x.stage) for x in letters}
        every_letter = all((o, s) in stages_seen for o in poisoned for s in case.stages)
        return every_letter and stack.indexed(case.index, wanted) == set(wanted)

    try:
        wait_for(done, timeout=90, interval=1.0, what=f"dead letters and valid messages of {topic}")
    except AssertionError as exc:
        letters = letters_for_this_case()
        raise AssertionError(
            f"{exc}\nindexed {sorted(stack.indexed(case.index, wanted))} of {wanted}\n"
            f"letters: {[(x.offset, x.stage, x.reason[:100]) for x in letters]}\n"
            + "\n".join(f"--- {n}\n{stack.log_tail(n)}" for n in ("enricher", "indexer", "alerts"))
        ) from None

    letters = letters_for_this_case()
    # Only the poison messages are dead letters, each once per stage that read it, with the reason.
    assert {x.offset for x in letters} <= set(poisoned)
    for offset, poison in poisoned.items():
        mine = [x for x in letters if x.offset == offset]
        assert sorted(x.stage for x in mine) == sorted(case.stages), (poison.name, mine)
        for letter in mine:
            assert re.search(poison.reason, letter.reason), (poison.name, letter.stage, letter.reason)
            assert letter.error_type == "MessageError"
            assert letter.partition == 0
            assert letter.key == f"poison-{poison.name}"
            if poison.value is not None:
                assert letter.payload is not None and len(letter.payload) <= 64 * 1024
                assert poison.value.decode("utf-8", "replace").startswith(letter.payload)
    if not case.stages:  # the dead-letter topic: a broken dead letter is not dead-lettered again
        assert not [x for x in stack.dead_letters() if x.source_topic == topic]
    # Nothing crashed or restarted on the way.
    for name, child in stack.supervisor.children.items():
        assert child.running() and child.restarts == 0, f"{name} restarted:\n{stack.log_tail(name)}"


def test_an_article_too_large_once_enriched_is_dead_lettered_and_the_stream_goes_on(stack: Stack) -> None:
    """A valid raw article under the limit whose enrichment (claims quote its sentences) would
    pass it: analysed (for seconds, off the event loop: the consumer keeps its session), then
    dead-lettered instead of crashing the agent on a producer error; the next one flows."""
    topic = stack.settings.topic_raw
    # 2 MB of text: about 5 MB once enriched (every check-worthy sentence is quoted in ``claims``).
    long_text = " ".join(_text("long", i) for i in range(20_000))[:2_000_000]
    big = raw_article("long", 0).model_copy(update={"text": long_text})
    assert len(big.to_bytes()) < MAX_MESSAGE_BYTES
    after = raw_article("long", 1)
    offsets = stack.produce(topic, [(b"big", big.to_bytes()), (b"after", after.to_bytes())])

    def letter() -> DeadLetter | None:
        found = [x for x in stack.dead_letters() if x.source_topic == topic and x.offset == offsets[0]]
        return found[0] if found and stack.indexed("articles", [after.id]) else None

    found = wait_for(letter, timeout=120, interval=1.0, what="the dead letter of the big article")
    assert found.stage == "enricher.analyse"
    too_large = rf"enriched article of \d+ bytes is larger than the {MAX_MESSAGE_BYTES}-byte message limit"
    assert re.search(too_large, found.reason), found.reason
    assert stack.indexed("articles", [big.id]) == set()
    for name, child in stack.supervisor.children.items():
        assert child.running() and child.restarts == 0, f"{name} restarted:\n{stack.log_tail(name)}"
