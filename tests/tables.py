"""A dict that refuses writes outside stream iteration, as a Faust table does.

The enricher and the indexer rebuild their windows from their tables as soon as the tables are
recovered (``Table.on_recover``), before the stream hands them an event: a write there would
raise "Cannot modify table outside of agent/stream". Tests rebuild a window from a
``StreamTable`` to show that the rebuild only reads, then set ``in_stream`` to link.
"""

from __future__ import annotations

from typing import Any


class OutsideStreamError(RuntimeError):
    pass


class StreamTable(dict[str, Any]):
    in_stream = False

    def _check(self) -> None:
        if not self.in_stream:
            raise OutsideStreamError("Cannot modify table outside of agent/stream.")

    def __setitem__(self, key: str, value: Any) -> None:
        self._check()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._check()
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self._check()
        return super().pop(key, *default)
