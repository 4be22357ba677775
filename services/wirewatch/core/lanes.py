"""Lanes: work in order within a key, and no key waiting for another.

A Kafka partition is read in order, but its records may belong to independent things: the
alerts service's parked deliveries of several webhooks share the partitions of one topic, and
a record waiting ten minutes for its webhook to come back must not hold up the records of a
webhook that is up. ``KeyedLanes`` gives each key one queue and one task: items of a key are
handled one at a time, in the order they were put; keys are handled side by side.

Whoever puts an item also decides when it is done with respect to Kafka: the alerts service
acknowledges each record's event when its lane has handled it, and Faust commits only the
run of acknowledged offsets without a gap, so a record still waiting in a lane keeps the
commit at it (read again after a crash) while the records behind it are handled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["KeyedLanes"]

T = TypeVar("T")


class KeyedLanes(Generic[T]):
    """One queue and one task per key; ``handle`` is awaited for each item of a key in order.

    An exception from ``handle`` goes to ``on_error`` (awaited) and the lane goes on with its
    next item. ``close`` cancels every lane (items not yet handled are dropped: a caller that
    acknowledges after handling has them read again)."""

    def __init__(
        self, handle: Callable[[T], Awaitable[None]], on_error: Callable[[BaseException], Awaitable[None]]
    ) -> None:
        self._handle = handle
        self._on_error = on_error
        self._queues: dict[str, asyncio.Queue[T]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._waiting: dict[str, int] = {}

    def put(self, key: str, item: T) -> None:
        """Queue ``item`` behind the items of ``key`` not yet handled."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            self._tasks[key] = asyncio.create_task(self._run(key, queue), name=f"lane {key}")
        self._waiting[key] = self._waiting.get(key, 0) + 1
        queue.put_nowait(item)

    def waiting(self) -> dict[str, int]:
        """Items put and not yet handled (the one in hand included), per key."""
        return dict(self._waiting)

    async def join(self) -> None:
        """Wait until every item put so far has been handled."""
        for queue in list(self._queues.values()):
            await queue.join()

    async def close(self) -> None:
        """Stop every lane now."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._queues.clear()
        self._tasks.clear()
        self._waiting.clear()

    async def _run(self, key: str, queue: asyncio.Queue[T]) -> None:
        while True:
            item = await queue.get()
            try:
                await self._handle(item)
            except Exception as exc:
                await self._on_error(exc)
            finally:
                self._waiting[key] -= 1
                queue.task_done()
