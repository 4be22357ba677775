"""Faust must not acknowledge an event it skipped because a rebalance came between its fetch and
its turn (``ServiceApp`` patches ``faust.Event.ack``): acknowledged, the next commit would move the
group past a message nobody processed. The e2e kill tests found that loss (issue #7)."""

from __future__ import annotations

from pathlib import Path

import faust
from faust.types.tuples import Message

from wirewatch.core import metrics
from wirewatch.core.app import ServiceApp
from wirewatch.core.settings import Settings


def event(app: faust.App, generation: int, offset: int) -> faust.Event:
    message = Message(
        "wirewatch.articles.raw", 0, offset, 0.0, 0, [], b"k", b"v", None, generation_id=generation
    )
    return faust.Event(app, b"k", b"v", [], message)


def test_an_event_from_before_a_rebalance_is_left_unacknowledged(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path)  # type: ignore[call-arg]
    app = ServiceApp("enricher", settings).app
    app.consumer_generation_id = 3
    app.flow_control.resume()
    stale_before = metrics.STALE_EVENTS._value.get()

    current = event(app, generation=3, offset=6)
    assert current.ack() and current.message.acked

    earlier = event(app, generation=2, offset=5)  # fetched before generation 3 began
    assert not earlier.ack() and not earlier.message.acked

    app.flow_control.suspend()  # a rebalance has begun: nothing read now counts as done
    during = event(app, generation=3, offset=7)
    assert not during.ack() and not during.message.acked

    app.flow_control.resume()  # the same message read again after the rebalance
    again = event(app, generation=3, offset=7)
    assert again.ack() and again.message.acked
    assert metrics.STALE_EVENTS._value.get() == stale_before + 2
