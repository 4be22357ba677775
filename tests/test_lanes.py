"""KeyedLanes: the items of a key in order, one at a time; no key waits for another."""

from __future__ import annotations

import asyncio

from wirewatch.core.lanes import KeyedLanes


async def test_a_key_waiting_holds_up_its_own_items_only() -> None:
    done: list[tuple[str, int, float]] = []
    release_a = asyncio.Event()
    start = asyncio.get_running_loop().time()

    async def handle(item: tuple[str, int]) -> None:
        key, n = item
        if key == "a":
            await release_a.wait()  # a target that is down: its first record waits
        done.append((key, n, asyncio.get_running_loop().time() - start))

    async def on_error(exc: BaseException) -> None:
        raise AssertionError(exc)

    lanes: KeyedLanes[tuple[str, int]] = KeyedLanes(handle, on_error)
    for key, n in (("a", 1), ("b", 1), ("a", 2), ("b", 2), ("b", 3)):
        lanes.put(key, (key, n))
    await asyncio.sleep(0.05)
    assert [(k, n) for k, n, _ in done] == [("b", 1), ("b", 2), ("b", 3)]
    assert lanes.waiting() == {"a": 2, "b": 0}
    release_a.set()
    await asyncio.wait_for(lanes.join(), 1)
    assert [(k, n) for k, n, _ in done if k == "a"] == [("a", 1), ("a", 2)]
    await lanes.close()


async def test_a_failed_item_is_reported_and_the_lane_goes_on() -> None:
    handled: list[int] = []
    errors: list[str] = []

    async def handle(n: int) -> None:
        if n == 2:
            raise ValueError("broken record")
        handled.append(n)

    async def on_error(exc: BaseException) -> None:
        errors.append(str(exc))

    lanes: KeyedLanes[int] = KeyedLanes(handle, on_error)
    for n in (1, 2, 3):
        lanes.put("k", n)
    await asyncio.wait_for(lanes.join(), 1)
    assert handled == [1, 3]
    assert errors == ["broken record"]
    await lanes.close()


async def test_close_stops_every_lane_and_drops_what_waits() -> None:
    started = asyncio.Event()
    cancelled: list[int] = []
    handled: list[int] = []

    async def handle(n: int) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        handled.append(n)

    async def on_error(exc: BaseException) -> None:
        raise AssertionError(exc)

    lanes: KeyedLanes[int] = KeyedLanes(handle, on_error)
    lanes.put("k", 1)
    lanes.put("k", 2)
    await asyncio.wait_for(started.wait(), 1)
    await asyncio.wait_for(lanes.close(), 1)
    assert lanes.waiting() == {}
    assert cancelled == [1]
    assert handled == []
