"""A live event stream cut into the windows a model sees, by event time, as packets arrive.

Time windows end on a fixed grid in event time, round(k x 1e9 / rate) ns for whole k (at 30 Hz every
33,333,333.3 ns), so two runs over the same events give the same windows, and a take whose frames are
stamped on that grid (`events.takes`) gets an output at every annotated frame. Fixed-count windows end
after every `window_events` new events. A jump in event time of more than `NEW_RECORDING_GAP_NS` (or a
step back) starts afresh: no empty windows for the gap (the node resets its tracks on the same jump in
its stamps).

Stamps: a driver that sets `time_base` (or dvs_msgs, whose event times are ROS times) gives event times
in ROS time. metavision_driver sends `time_base` 0, so its event times are the sensor's clock; the
stream then maps them to ROS time by the offset between the first packet's header stamp and its last
event, so outputs line up with the host clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from hand_pose_core.events.arrays import Events
from hand_pose_core.events.decode import EventDecoder
from hand_pose_core.events.representations import EventRepresentation

NEW_RECORDING_GAP_NS = 1_000_000_000


@dataclass(frozen=True)
class EventWindow:
    end_ns: int  # the window's end in event time
    events: Events  # what the representation draws (the window's events)


class EventWindows:
    """Decoded events in, completed windows out, keeping only the events a later window can need."""

    def __init__(self, representation: EventRepresentation, rate_hz: float) -> None:
        self.representation = representation
        self.period = Fraction(10**9) / Fraction(rate_hz).limit_denominator(10**6)  # ns, exact
        self.buffer: Events | None = None
        self.next_k: int | None = None  # time windows: the next end is the k-th of the grid
        self.since_last = 0  # count windows: events since the last window
        self.last_t: int | None = None

    def add(self, events: Events) -> list[EventWindow]:
        """The windows that `events` (the stream's next decoded events, in time order) complete."""
        if not len(events):
            return []
        if self.last_t is not None and not 0 <= int(events.t[0]) - self.last_t <= NEW_RECORDING_GAP_NS:
            self.buffer, self.next_k, self.since_last = None, None, 0
        self.last_t = int(events.t[-1])
        parts = [events] if self.buffer is None else [self.buffer, events]
        self.buffer = Events.concatenate(parts, events.width, events.height)
        if self.representation.window_events:
            windows = self._count_windows(len(events))
        else:
            windows = self._time_windows()
        self._forget()
        return windows

    def _end(self, k: int) -> int:
        """round(k x period) in whole ns."""
        return (2 * k * self.period.numerator + self.period.denominator) // (2 * self.period.denominator)

    def _time_windows(self) -> list[EventWindow]:
        t = self.buffer.t
        if self.next_k is None:
            self.next_k = int(t[0]) * self.period.denominator // self.period.numerator + 1
        windows = []
        while self._end(self.next_k) <= int(t[-1]):  # an event at or after the end: the window is complete
            windows.append(self._window(self._end(self.next_k)))
            self.next_k += 1
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
        return EventWindow(end_ns, self.representation.window(self.buffer, end_ns))

    def _forget(self) -> None:
        """Drop the events no later window reaches."""
        t = self.buffer.t
        if self.representation.window_events:
            keep_from = len(t) - self.since_last  # the next window's first event
        else:
            keep_from = int(np.searchsorted(t, self._end(self.next_k) - self.representation.window_ns))
        if keep_from:
            b = self.buffer
            self.buffer = Events(
                b.width, b.height, b.x[keep_from:], b.y[keep_from:], b.t[keep_from:], b.p[keep_from:]
            )


class EventStream:
    """One event topic, live: its packets decoded in order, cut into windows, stamped in ROS time."""

    def __init__(self, representation: EventRepresentation, rate_hz: float) -> None:
        self.decoder = EventDecoder()
        self.windows = EventWindows(representation, rate_hz)
        self.offset_ns: int | None = None  # ROS time - event time

    def add(self, packet: object) -> list[EventWindow]:
        """The windows a packet (EventPacket or dvs_msgs EventArray) completes."""
        events = self.decoder.decode(packet)
        if self.offset_ns is None and len(events):
            sensor_clock = getattr(packet, "encoding", None) is not None and not int(packet.time_base)
            stamp = packet.header.stamp
            self.offset_ns = stamp.sec * 10**9 + stamp.nanosec - int(events.t[-1]) if sensor_clock else 0
        return self.windows.add(events)

    def stamp_ns(self, window: EventWindow) -> int:
        """The ROS time of a window's end: its output's header stamp."""
        return window.end_ns + (self.offset_ns or 0)
