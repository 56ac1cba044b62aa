"""A one-frame mailbox between a subscription callback and an inference thread.

The callback never waits: it replaces whatever frame is waiting, and that older frame is counted as
dropped. The worker always gets the newest frame, and memory never grows with the input rate.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

Item = TypeVar("Item")


class LatestFrameSlot(Generic[Item]):
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: Item | None = None
        self._closed = False
        self.dropped = 0

    def put(self, item: Item) -> bool:
        """Offer a frame; returns True when it replaced one the worker had not taken (a drop)."""
        with self._condition:
            replaced = self._item is not None
            self.dropped += replaced
            self._item = item
            self._condition.notify()
            return replaced

    def take(self, timeout: float | None = None) -> Item | None:
        """The newest frame, waiting up to `timeout` seconds; None on timeout or once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake the worker for good (node shutdown)."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
