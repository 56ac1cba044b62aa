"""The one in-memory form of change events: parallel numpy arrays, whatever the encoding they came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _empty(dtype: type) -> np.ndarray:
    return np.zeros(0, dtype)


@dataclass
class Events:
    """Change events of one sensor in stream order (time order for a well-formed stream), and its
    external triggers.

    x, y: pixel (uint16); t: ROS time in ns (int64; `time_base` + the event's own time); p: polarity
    (uint8, 1 = ON, brighter); trigger_t (int64 ns), trigger_id (uint8 channel), trigger_edge (uint8,
    1 = rising)."""

    width: int
    height: int
    x: np.ndarray = field(default_factory=lambda: _empty(np.uint16))
    y: np.ndarray = field(default_factory=lambda: _empty(np.uint16))
    t: np.ndarray = field(default_factory=lambda: _empty(np.int64))
    p: np.ndarray = field(default_factory=lambda: _empty(np.uint8))
    trigger_t: np.ndarray = field(default_factory=lambda: _empty(np.int64))
    trigger_id: np.ndarray = field(default_factory=lambda: _empty(np.uint8))
    trigger_edge: np.ndarray = field(default_factory=lambda: _empty(np.uint8))

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def concatenate(cls, parts: list[Events], width: int, height: int) -> Events:
        """One stream from consecutive parts (packets) of the same sensor."""
        names = ("x", "y", "t", "p", "trigger_t", "trigger_id", "trigger_edge")
        if not parts:
            return cls(width, height)
        columns = (np.concatenate([getattr(part, name) for part in parts]) for name in names)
        return cls(width, height, *columns)

    def between(self, start_ns: int, end_ns: int) -> Events:
        """The change events with start_ns <= t < end_ns (t must be sorted); no triggers."""
        first, last = np.searchsorted(self.t, [start_ns, end_ns], side="left")
        return self._rows(first, last)

    def last(self, count: int, end_ns: int) -> Events:
        """The last `count` change events with t < end_ns (fewer where the stream has fewer; t must be
        sorted); no triggers."""
        last = int(np.searchsorted(self.t, end_ns, side="left"))
        return self._rows(max(last - count, 0), last)

    def _rows(self, first: int, last: int) -> Events:
        return Events(
            self.width,
            self.height,
            self.x[first:last],
            self.y[first:last],
            self.t[first:last],
            self.p[first:last],
        )
