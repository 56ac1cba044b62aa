"""What event-camera drivers send, decoded to `Events`: one decoder per stream, bad input counted.

Packets arrive duck-typed, so rclpy messages, rosbags messages and plain objects all work:
`event_camera_msgs/EventPacket` (fields `encoding`, `events` bytes, `width`, `height`, `time_base`,
`is_bigendian`) in the `evt3` or `mono` encoding, and the older `dvs_msgs/EventArray` (`events` a list
with `x`, `y`, `ts`, `polarity`). `libcaer` and `libcaer_cmp` (iniVation's driver) have no published
layout: they are counted as unknown encodings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from hand_pose_core.events.arrays import Events
from hand_pose_core.events.evt3 import Evt3Counts, Evt3State, decode_evt3_words

NANOSECONDS = 1_000_000_000
ENCODINGS = ("evt3", "mono")


@dataclass
class DecodeReport:
    """What a stream's packets held: events kept, and every kind of bad input met (counted, never
    raised, so one bad packet does not stop a live node)."""

    packets: int = 0
    events: int = 0
    on: int = 0
    triggers: int = 0
    empty_packets: int = 0
    unknown_encodings: Counter = field(default_factory=Counter)  # encoding -> packets left undecoded
    truncated_packets: int = 0  # packets whose bytes do not end on a whole word (the rest decoded)
    out_of_range: int = 0  # events with x >= width or y >= height, dropped
    without_state: int = 0  # evt3 events before the stream gave their time, row or vector base, dropped
    time_backwards: int = 0  # events earlier than the one before them (kept)
    time_wraps: int = 0  # evt3 24-bit time periods (16.8 s) passed

    @property
    def off(self) -> int:
        return self.events - self.on

    @property
    def problems(self) -> int:
        """Bad input that lost or disordered events (wraps and empty packets are normal)."""
        unknown = sum(self.unknown_encodings.values())
        return unknown + self.truncated_packets + self.out_of_range + self.without_state + self.time_backwards

    def describe(self) -> str:
        """One line: events, triggers, packets, then each problem met."""
        line = (
            f"{self.events:,} events ({self.on:,} ON, {self.off:,} OFF), {self.triggers:,} triggers in "
            f"{self.packets:,} packets ({self.empty_packets:,} empty, {self.time_wraps:,} time wraps)"
        )
        found = [
            f"{count:,} {what}"
            for what, count in (
                *((f"packets in unknown encoding {name!r}", n) for name, n in self.unknown_encodings.items()),
                ("truncated packets", self.truncated_packets),
                ("events out of the sensor", self.out_of_range),
                ("events before the stream's time or row", self.without_state),
                ("steps back in time", self.time_backwards),
            )
            if count
        ]
        return f"{line}; problems: {', '.join(found) if found else 'none'}"


def _packet_bytes(data) -> np.ndarray:
    """A packet's `events` field as uint8 (bytes, array.array, numpy array or a list of ints)."""
    try:
        return np.frombuffer(data, np.uint8)
    except TypeError:
        return np.asarray(data, np.uint8)


class EventDecoder:
    """Decodes one stream's packets in order. EVT3 carries state (row, time, vector base, 24-bit
    wraps) from one packet to the next, so a stream needs its own decoder; the report counts what it
    met across all its packets."""

    def __init__(self) -> None:
        self.report = DecodeReport()
        self._evt3 = Evt3State()
        self._time_base: int | None = None
        self._last_t: int | None = None

    def decode(self, packet: object) -> Events:
        """The packet's events (t = time_base + event time, ns), out-of-range ones dropped."""
        self.report.packets += 1
        width, height = int(packet.width), int(packet.height)
        if hasattr(packet, "encoding"):
            events = self._event_packet(packet, width, height)
        else:
            events = self._event_array(packet, width, height)
        return self._checked(events)

    def decode_all(self, packets: Iterable[object]) -> Events:
        """A recorded stream's packets as one `Events`. Runs of evt3 packets of one sensor and time_base
        are joined and decoded in one call: the same events and counts as packet by packet, several
        times faster, since numpy's cost per call dominates small packets."""
        parts: list[Events] = []
        first, chunks = None, []
        for packet in packets:
            data = _packet_bytes(packet.events) if hasattr(packet, "encoding") else None
            joinable = data is not None and packet.encoding == "evt3" and len(data) and len(data) % 2 == 0
            if chunks and not (joinable and _stream_fields(packet) == _stream_fields(first)):
                parts.append(self._decode_joined(first, chunks))
                chunks = []
            if joinable:
                first = first if chunks else packet
                chunks.append(data)
            else:
                parts.append(self.decode(packet))
        if chunks:
            parts.append(self._decode_joined(first, chunks))
        width, height = (parts[0].width, parts[0].height) if parts else (0, 0)
        return Events.concatenate(parts, width, height)

    def _decode_joined(self, first: object, chunks: list[np.ndarray]) -> Events:
        self.report.packets += len(chunks) - 1  # decode() counts the joined packet once
        return self.decode(SimpleNamespace(**_stream_fields(first), events=np.concatenate(chunks)))

    def _event_packet(self, packet: object, width: int, height: int) -> Events:
        data = _packet_bytes(packet.events)
        if not len(data):
            self.report.empty_packets += 1
            return Events(width, height)
        encoding, order = packet.encoding, ">" if packet.is_bigendian else "<"
        if encoding not in ENCODINGS:
            self.report.unknown_encodings[encoding] += 1
            return Events(width, height)
        word_size = 2 if encoding == "evt3" else 8
        whole = len(data) - len(data) % word_size
        if whole != len(data):
            self.report.truncated_packets += 1
        words = data[:whole].view(f"{order}u{word_size}")
        if encoding == "mono":
            return _mono(words, width, height, int(packet.time_base))
        time_base = int(packet.time_base)
        if time_base != self._time_base:  # a new time origin: the sensor's clock (and stream) restarted
            self._evt3, self._time_base = Evt3State(), time_base
        counts = Evt3Counts()
        events = decode_evt3_words(words.astype(np.uint16), self._evt3, width, height, time_base, counts)
        self.report.without_state += counts.without_state
        self.report.time_wraps += counts.wraps
        return events

    def _event_array(self, packet: object, width: int, height: int) -> Events:
        """dvs_msgs/EventArray: one object per event, its time a builtin_interfaces Time."""
        items = packet.events
        if not len(items):
            self.report.empty_packets += 1
        return Events(
            width,
            height,
            np.fromiter((event.x for event in items), np.uint16, len(items)),
            np.fromiter((event.y for event in items), np.uint16, len(items)),
            np.fromiter(
                (event.ts.sec * NANOSECONDS + event.ts.nanosec for event in items), np.int64, len(items)
            ),
            np.fromiter((event.polarity for event in items), np.uint8, len(items)),
        )

    def _checked(self, events: Events) -> Events:
        """Drop and count events outside the sensor; count steps back in time; tally the rest."""
        inside = (events.x < events.width) & (events.y < events.height)
        if not inside.all():
            self.report.out_of_range += int(np.count_nonzero(~inside))
            events = Events(
                events.width,
                events.height,
                events.x[inside],
                events.y[inside],
                events.t[inside],
                events.p[inside],
                events.trigger_t,
                events.trigger_id,
                events.trigger_edge,
            )
        t = events.t
        if len(t):
            self.report.time_backwards += int(np.count_nonzero(t[1:] < t[:-1]))
            if self._last_t is not None and t[0] < self._last_t:
                self.report.time_backwards += 1
            self._last_t = int(t[-1])
        self.report.events += len(t)
        self.report.on += int(np.count_nonzero(events.p))
        self.report.triggers += len(events.trigger_t)
        return events


def _stream_fields(packet: object) -> dict:
    """What must match for packets to be decoded as one: everything but the bytes."""
    names = ("encoding", "width", "height", "time_base", "is_bigendian")
    return {name: getattr(packet, name) for name in names}


def _mono(values: np.ndarray, width: int, height: int, time_base: int) -> Events:
    """`mono`: one uint64 per event: time offset in ns (bits 31..0), x (47..32), y (62..48), polarity (63)."""
    values = values.astype(np.uint64)
    return Events(
        width,
        height,
        ((values >> np.uint64(32)) & np.uint64(0xFFFF)).astype(np.uint16),
        ((values >> np.uint64(48)) & np.uint64(0x7FFF)).astype(np.uint16),
        time_base + (values & np.uint64(0xFFFFFFFF)).astype(np.int64),
        (values >> np.uint64(63)).astype(np.uint8),
    )
