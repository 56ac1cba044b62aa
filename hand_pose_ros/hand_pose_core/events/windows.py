"""A live event stream cut into the windows a model sees, by event time, as the node receives packets.

Time windows end at whole multiples of the output period in event time (30 Hz: every 33,333,333 ns), so
two runs over the same events give the same windows, and a take whose frames are stamped on that grid
(`events.takes`) gets an output at every annotated frame. Fixed-count windows end after every
`window_events` new events. A jump in event time of more than `NEW_RECORDING_GAP_NS` (or a step back)
starts afresh: no empty windows for the gap, and the caller resets its tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hand_pose_core.events.arrays import Events
from hand_pose_core.events.representations import EventRepresentation

NEW_RECORDING_GAP_NS = 1_000_000_000


@dataclass(frozen=True)
class EventWindow:
    end_ns: int  # the window's end in event time: its output's stamp
    events: Events  # what the representation draws (the window's events)
    new_recording: bool = False  # event time jumped before this window


class EventWindows:
    """Decoded events in, due windows out, keeping only the events a future window can still need."""

    def __init__(self, representation: EventRepresentation, period_ns: int) -> None:
        self.representation, self.period_ns = representation, period_ns
        self.buffer: Events | None = None
        self.next_end: int | None = None  # time windows: the next end on the grid
        self.since_last = 0  # count windows: events since the last window
        self.jumped = False

    def add(self, events: Events) -> list[EventWindow]:
        """The windows that `events` (the stream's next decoded events, in time order) complete."""
        if not len(events):
            return []
        if self.buffer is not None and len(self.buffer):
            last = int(self.buffer.t[-1])
            if not 0 <= int(events.t[0]) - last <= NEW_RECORDING_GAP_NS:
                self.buffer, self.next_end, self.since_last, self.jumped = None, None, 0, True
        parts = [events] if self.buffer is None else [self.buffer, events]
        self.buffer = Events.concatenate(parts, events.width, events.height)
        windows = (
            self._count_windows(len(events)) if self.representation.window_events else self._time_windows()
        )
        self._forget()
        return windows

    def _time_windows(self) -> list[EventWindow]:
        t = self.buffer.t
        if self.next_end is None:
            self.next_end = (int(t[0]) // self.period_ns + 1) * self.period_ns
        windows = []
        while self.next_end <= int(t[-1]):  # an event at or after the end: the window is complete
            windows.append(self._window(self.next_end))
            self.next_end += self.period_ns
        return windows

    def _count_windows(self, new: int) -> list[EventWindow]:
        """A window each `window_events` events, ending just after its last event."""
        windows = []
        size, t = self.representation.window_events, self.buffer.t
        self.since_last += new
        while self.since_last >= size:
            last = len(t) - (self.since_last - size) - 1
            windows.append(self._window(int(t[last]) + 1))
            self.since_last -= size
        return windows

    def _window(self, end_ns: int) -> EventWindow:
        window = EventWindow(end_ns, self.representation.window(self.buffer, end_ns), self.jumped)
        self.jumped = False
        return window

    def _forget(self) -> None:
        """Drop the events no future window reaches."""
        t = self.buffer.t
        if self.representation.window_events:
            keep_from = len(t) - self.since_last  # the next window's first event
        else:
            keep_from = int(np.searchsorted(t, self.next_end - self.representation.window_ns))
        if keep_from:
            b = self.buffer
            self.buffer = Events(
                b.width, b.height, b.x[keep_from:], b.y[keep_from:], b.t[keep_from:], b.p[keep_from:]
            )
