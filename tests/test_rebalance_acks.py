"""Faust must not acknowledge an event it skipped because a rebalance came between its fetch and
its turn (``ServiceApp`` patches ``faust.Event.ack``): acknowledged, the next commit would move the
group past a message nobody processed. The e2e kill tests found that loss (issue #7)."""

from __future__ import annotations

from pathlib import Path

import faust
from aiokafka.errors import KafkaTimeoutError
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from conftest import make_settings
from wirewatch.core import metrics
from wirewatch.core.app import DroppedMessages, ServiceApp


def event(app: faust.App, generation: int, offset: int) -> faust.Event:
    message = ConsumerMessage(
        "wirewatch.articles.raw", 0, offset, 0.0, 0, [], b"k", b"v", None, generation_id=generation
    )
    return faust.Event(app, b"k", b"v", [], message)


def test_an_event_from_before_a_rebalance_is_left_unacknowledged(tmp_path: Path) -> None:
    settings = make_settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path)
    app = ServiceApp("enricher", settings).app
    app.consumer_generation_id = 3
    app.flow_control.resume()
    stale_before = metrics.STALE_EVENTS._value.get()

    current = event(app, generation=3, offset=6)
    current.ack()
    assert current.message.acked

    earlier = event(app, generation=2, offset=5)  # fetched before generation 3 began
    assert not earlier.ack() and not earlier.message.acked

    app.flow_control.suspend()  # a rebalance has begun: what Faust skips now is not done
    during = event(app, generation=3, offset=7)
    assert not during.ack() and not during.message.acked
    handled = event(app, generation=3, offset=8)
    handled.message.tracked = True  # an agent had it: done, the rebalance waits for its ack
    handled.ack()
    assert handled.message.acked

    app.flow_control.resume()  # the same message read again after the rebalance
    again = event(app, generation=3, offset=7)
    again.ack()
    assert again.message.acked
    assert metrics.STALE_EVENTS._value.get() == stale_before + 2


def test_a_partition_read_past_its_commit_with_nothing_in_progress_is_found_dropped() -> None:
    """Faust can lose a fetched batch in a rebalance race and never fetch it again (CI: an
    article stayed unenriched after every service restarted). A partition read past its committed
    offset, with nothing queued or in progress, unchanged over two looks, is found; one whose
    messages are still being handled, or that moved, is not."""
    dropped = DroppedMessages()
    assert dropped.look({"raw-0": (2, 3), "raw-1": (4, 4)}, busy=False) == []  # first sighting
    assert dropped.look({"raw-0": (2, 3), "raw-1": (4, 4)}, busy=False) == ["raw-0"]
    assert dropped.look({"raw-0": (2, 3)}, busy=False) == []  # sought back: a fresh start
    # Being handled: queued or in progress work resets what was seen.
    assert dropped.look({"raw-2": (7, 9)}, busy=False) == []
    assert dropped.look({"raw-2": (7, 9)}, busy=True) == []
    assert dropped.look({"raw-2": (7, 9)}, busy=False) == []
    # Progress between the looks: not dropped.
    assert dropped.look({"raw-2": (8, 9)}, busy=False) == []
    assert dropped.look({"raw-2": (8, 9)}, busy=False) == ["raw-2"]


def test_the_commit_never_moves_past_an_unacknowledged_message(tmp_path: Path) -> None:
    """Faust accepted acknowledged offsets starting one past the committed offset (which is the
    next one to read), so a dropped message was committed past for good."""
    settings = make_settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path)
    consumer = ServiceApp("enricher", settings).app.consumer
    tp = TP("wirewatch.articles.raw", 2)

    def acknowledged(*offsets: int) -> None:
        consumer._acked[tp].extend(offsets)
        consumer._acked_index[tp].update(offsets)

    consumer._committed_offset[tp] = 1  # offset 0 done; 1 was dropped, 2 and 3 handled
    acknowledged(2, 3)
    assert consumer._new_offset(tp) is None
    acknowledged(1)  # read again and handled
    assert consumer._new_offset(tp) == 4
    # A compaction gap counts as handled: 4 and 5 are gone from the topic.
    consumer._committed_offset[tp] = 4
    consumer._gap[tp].addi(4, 6)
    acknowledged(6)
    assert consumer._new_offset(tp) == 7


async def test_a_dropped_first_message_is_waited_for_at_offset_0_and_at_the_log_start(
    tmp_path: Path,
) -> None:
    """Faust stored a committed offset of 0 as "unknown", as it does a partition never
    committed, and with nothing known the commit went past a dropped first message as soon as the
    next one was handled (what test_replay's rare CI failure looks like: after ``wirewatch
    replay`` put the enricher back at 0, one article was never enriched again, and the enricher
    had committed every partition to its end)."""
    settings = make_settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path)
    consumer = ServiceApp("enricher", settings).app.consumer
    topic = settings.topic_raw
    consumer.app.topics._acking_topics.add(topic)  # an agent reads it
    replayed, never, table = TP(topic, 0), TP(topic, 1), TP("wirewatch-enricher-copies-changelog", 0)
    log_start = {never: 5}

    async def seek_to_committed() -> dict[TP, int | None]:
        return {replayed: 0, never: None, table: None}

    async def earliest_offsets(*partitions: TP) -> dict[TP, int]:
        assert set(partitions) == {never}  # only the partitions agents read
        return {tp: log_start[tp] for tp in partitions}

    consumer.seek_to_committed = seek_to_committed  # type: ignore[method-assign]
    consumer.earliest_offsets = earliest_offsets  # type: ignore[method-assign]
    await consumer.perform_seek()
    assert consumer._committed_offset[replayed] == 0
    assert consumer._committed_offset[never] == 5
    assert consumer._committed_offset[table] is None
    assert consumer._read_offset[replayed] == 0 and consumer._read_offset[never] is None

    for tp, first in ((replayed, 0), (never, 5)):
        consumer._acked[tp].append(first + 1)  # the first was dropped, the next one handled
        consumer._acked_index[tp].add(first + 1)
        assert consumer._new_offset(tp) is None  # waits: DroppedMessages has it read again
        consumer._acked[tp].append(first)
        consumer._acked_index[tp].add(first)
        assert consumer._new_offset(tp) == first + 2


async def test_a_jump_in_offsets_counts_as_handled_only_in_a_compacted_topic(tmp_path: Path) -> None:
    """Faust takes any jump between two offsets it reads for a compaction gap and commits past
    it. Outside compacted topics the jump means it discarded fetched records (e2e: parked
    deliveries skipped after an alerts restart and never delivered): the commit must wait there."""
    settings = make_settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path)
    consumer = ServiceApp("indexer", settings).app.consumer
    skipped_before = metrics.SKIPPED_RECORDS._value.get()

    parked = TP("wirewatch-alerts-redeliveries", 0)
    consumer._committed_offset[parked] = 2  # offsets 0 and 1 handled
    await consumer._add_gap(parked, 2, 9)  # read 1, then 9: 2..8 were fetched and discarded
    consumer._acked[parked].append(9)
    consumer._acked_index[parked].add(9)
    assert not consumer._gap[parked]
    assert consumer._new_offset(parked) is None  # waits at 2: DroppedMessages reads 2.. again
    assert metrics.SKIPPED_RECORDS._value.get() == skipped_before + 7

    for compacted in (TP(settings.topic_claims, 0), TP("wirewatch-indexer-events-changelog", 0)):
        consumer._committed_offset[compacted] = 2
        await consumer._add_gap(compacted, 2, 9)  # compaction removed 2..8
        consumer._acked[compacted].append(9)
        consumer._acked_index[compacted].add(9)
        assert consumer._new_offset(compacted) == 10


async def test_a_stall_check_while_the_broker_does_not_answer_does_not_crash_the_service(
    tmp_path: Path,
) -> None:
    """A broker outage looks like a stall: a partition read past its commit, nothing moving. The
    check then asks the broker for the partitions' log starts; unanswered, the error used to
    escape the timer and crash the service (the noida-db e2e run, broker frozen for a minute).
    Now it waits for the next check, and seeks once the broker answers."""
    settings = make_settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path)
    service = ServiceApp("enricher", settings)
    app, consumer = service.app, service.app.consumer
    service.ready = True
    app.flow_control.resume()
    tp = TP(settings.topic_raw, 0)
    consumer._committed_offset[tp] = 2
    answering = False
    sought: list[tuple[TP, int]] = []

    async def position(_: TP) -> int:
        return 3

    async def earliest_offsets(*partitions: TP) -> dict[TP, int]:
        if not answering:
            raise KafkaTimeoutError("Failed to get offsets by times in 15000 ms")
        return {p: 0 for p in partitions}

    async def seek(partition: TP, offset: int) -> None:
        sought.append((partition, offset))

    consumer.assignment = lambda: {tp}  # type: ignore[method-assign]
    consumer.position = position  # type: ignore[method-assign]
    consumer.earliest_offsets = earliest_offsets  # type: ignore[method-assign]
    consumer.seek = seek  # type: ignore[method-assign]

    assert await service.read_dropped_again() == []  # first sighting
    assert await service.read_dropped_again() == []  # stalled, but the broker does not answer
    assert sought == [] and not app.crashed
    answering = True
    assert await service.read_dropped_again() == []  # seen again: a first sighting once more
    assert await service.read_dropped_again() == [tp]
    assert sought == [(tp, 2)]
