"""A consumer group whose committed offset fell below the log start (retention deleted records
while the service was stopped) goes on from the log start once, says how much it lost, and
commits again (issue #7).

Before, the commit could never move (it must begin at the committed offset), so the check for
dropped messages sought the partition back to the committed offset, the broker answered
"out of range", the consumer went back to the log start and read everything again: a loop,
every few seconds, for ever. noida-db deletes records on request (DeleteRecords); tansu does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.records_to_delete import RecordsToDelete

from conftest import run, wait_for
from test_indexer_outage import Stack, make_articles
from wirewatch.core.settings import Settings
from wirewatch.local.servers import LocalServers
from wirewatch.local.supervisor import Supervisor
from wirewatch.runner import setup

pytestmark = pytest.mark.e2e

GROUP = "wirewatch-indexer"


async def _commit_half_and_delete(settings: Settings) -> dict[TopicPartition, int]:
    """Commit half of each partition of the enriched topic for the indexer's group, then delete
    every record there: the group's offset is now below the log start. Returns the log start of
    each partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=GROUP)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(settings.topic_enriched) or set()
        tps = [TopicPartition(settings.topic_enriched, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit({tp: end // 2 for tp, end in ends.items() if end >= 2})
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        deletions = {tp: RecordsToDelete(before_offset=end) for tp, end in ends.items()}
        await admin.delete_records(deletions, timeout_ms=10_000)
    finally:
        await admin.close()
    return ends


async def _committed(settings: Settings) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=GROUP)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(settings.topic_enriched) or set()
        return {p: await consumer.committed(TopicPartition(settings.topic_enriched, p)) for p in partitions}
    finally:
        await consumer.stop()


@pytest.fixture(scope="module")
def stack(noida: LocalServers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(noida, tmp_path_factory.mktemp("retention"))
    s.env["WIREWATCH_KAFKA_STALL_CHECK_SECONDS"] = "2"
    s.supervisor = Supervisor(["indexer"], s.env, s.tmp / "logs")
    run(setup(s.settings))
    yield s
    s.supervisor.stop()


def test_a_group_committed_below_the_log_start_goes_on_from_it_once(stack: Stack) -> None:
    deleted = make_articles("gone", 10)
    stack.send(deleted)
    log_start = run(_commit_half_and_delete(stack.settings))
    assert sum(log_start.values()) == 10
    stack.expected.clear()  # the deleted ones can never be indexed
    kept = make_articles("kept", 6, start=10)
    stack.send(kept)

    stack.supervisor.start()
    assert stack.supervisor.wait_healthy(120), f"indexer not healthy:\n{stack.log_excerpt()}"
    stack.wait_until_indexed(120, "the articles produced after the deletion indexed")
    # The group commits again: at the end of every partition, not stuck below the log start.
    total = sum(log_start.values()) + len(kept)
    wait_for(
        lambda: sum(v or 0 for v in run(_committed(stack.settings)).values()) == total,
        timeout=60,
        what="the indexer's group committed past the log start",
    )
    lines = stack.log_lines()
    lost = [line for line in lines if line.get("msg", "").startswith("records deleted by retention")]
    assert lost, stack.log_excerpt()
    half_read = {tp: end - end // 2 for tp, end in log_start.items() if end >= 2}
    assert sum(int(line["lost"]) for line in lost) == sum(half_read.values())
    # No loop: once the log start is the committed offset, nothing is read twice.
    rereads = [line for line in lines if line.get("msg", "").startswith("messages fetched but never")]
    assert rereads == [], json.dumps(rereads)[:2000]
    stack.assert_exact()
