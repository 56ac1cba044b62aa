"""Event topics of rosbag2 bags (sqlite3 or MCAP) read as `Events`, and EVT3 event bags written.

Reading takes every `event_camera_msgs/EventPacket` (any encoding the decoder knows) and
`dvs_msgs/EventArray` topic, one decoder per topic since EVT3 state runs from packet to packet.
Writing cuts events into EVT3 packets by time as metavision_driver does: `time_base` 0, so an event's t
is the sensor time, and `header.stamp` the end of the packet's time window.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hand_pose_core.bags.names import EVENT_PACKET_TYPE, EVENT_TYPES
from hand_pose_core.bags.takes import (
    TYPESTORE,
    BagContents,
    BagWriter,
    bag_header,
    known_type,
    read_messages,
    read_topics,
)
from hand_pose_core.errors import InputError
from hand_pose_core.events.arrays import Events
from hand_pose_core.events.decode import DecodeReport, EventDecoder
from hand_pose_core.events.evt3 import Evt3Encoder

EVENTS_TOPIC = "/event_camera/events"  # metavision_driver's topic
EVENT_FRAME = "event_camera"
PACKET_NS = 1_000_000  # metavision_driver's default: a packet per millisecond


def event_topics(path: Path) -> dict[str, str]:
    """The bag's event topics and their message types."""
    return {topic: msgtype for topic, msgtype in read_topics(path).items() if msgtype in EVENT_TYPES}


def read_event_packets(
    path: Path, topics: set[str], contents: BagContents, decoders: dict[str, EventDecoder]
) -> Iterator[tuple[str, int, Events]]:
    """(topic, log time ns, the packet's events) in the bag's order; each topic's decoder (and its
    report) is kept in `decoders`. Unreadable parts of the bag are noted in `contents.problems`."""
    for topic, timestamp, message in read_messages(path, topics, contents):
        decoder = decoders.setdefault(topic, EventDecoder())
        yield topic, timestamp, decoder.decode(message)


@dataclass
class BagEvents:
    """One event topic of a bag, decoded."""

    topic: str
    events: Events
    report: DecodeReport
    problems: list[str] = field(default_factory=list)  # unreadable parts of the bag


def choose_event_topic(path: Path, topic: str | None) -> str:
    """`topic`, or the bag's only event topic; an InputError names the choices otherwise."""
    topics = event_topics(path)
    if topic is not None and topic not in topics:
        raise InputError(f"{path}: no event topic {topic} (event topics: {', '.join(topics) or 'none'})")
    if topic is None and len(topics) != 1:
        if not topics:
            raise InputError(f"{path}: no event topics ({' or '.join(EVENT_TYPES)})")
        raise InputError(
            f"{path}: {len(topics)} event topics ({', '.join(sorted(topics))}): choose one with --topic"
        )
    return topic or next(iter(topics))


def read_bag_events(path: Path, topic: str | None = None) -> BagEvents:
    """All events of one event topic (the only one unless `topic` names it), in one `Events`."""
    topic = choose_event_topic(path, topic)
    contents, decoder = BagContents(Path(path)), EventDecoder()
    events = decoder.decode_all(message for _, _, message in read_messages(path, {topic}, contents))
    return BagEvents(topic, events, decoder.report, contents.problems)


def event_packet(
    events: Events, data: bytes, stamp: int, seq: int, frame_id: str, time_base: int = 0
) -> object:
    """A rosbags EventPacket of EVT3 bytes, stamped `stamp` ns (time_base 0, as metavision_driver)."""
    return TYPESTORE.types[known_type(EVENT_PACKET_TYPE)](
        header=bag_header(stamp, frame_id),
        height=events.height,
        width=events.width,
        seq=seq,
        time_base=time_base,
        encoding="evt3",
        is_bigendian=False,
        events=np.frombuffer(data, np.uint8),
    )


def _window(events: Events, start: int, end: int) -> Events:
    """Change events and triggers with start <= t < end (both sorted)."""
    part = events.between(start, end)
    first, last = np.searchsorted(events.trigger_t, [start, end])
    part.trigger_t = events.trigger_t[first:last]
    part.trigger_id = events.trigger_id[first:last]
    part.trigger_edge = events.trigger_edge[first:last]
    return part


def write_event_bag(
    events: Events,
    out: Path,
    topic: str = EVENTS_TOPIC,
    frame_id: str = EVENT_FRAME,
    packet_ns: int = PACKET_NS,
) -> int:
    """Write `events` (t: sensor time in ns, sorted) as an MCAP bag of EVT3 EventPackets, one per
    `packet_ns` window that has events; returns the number of packets."""
    for name, times in (("events", events.t), ("triggers", events.trigger_t)):
        if len(times) and (times[0] < 0 or np.any(np.diff(times) < 0)):
            raise ValueError(f"write_event_bag: the {name}' times must be sorted and not negative")
    with BagWriter(out) as bag:
        return write_event_packets(bag, events, topic, frame_id, packet_ns)


def write_event_packets(
    bag: BagWriter,
    events: Events,
    topic: str = EVENTS_TOPIC,
    frame_id: str = EVENT_FRAME,
    packet_ns: int = PACKET_NS,
    time_base: int = 0,
    seq: int = 0,
    encoder: Evt3Encoder | None = None,
) -> int:
    """`events` (t from `time_base`, sorted) into an open bag as EVT3 EventPackets, one per `packet_ns`
    window that has events, numbered from `seq` and stamped at the window's end (time_base + its end);
    returns the number of packets. Parts of one stream written in turn share one `encoder` (it counts
    the 24-bit clock's periods)."""
    windows = np.unique(np.concatenate([events.t, events.trigger_t]) // packet_ns)
    encoder = encoder or Evt3Encoder()
    for offset, window in enumerate(windows.tolist()):
        start, end = window * packet_ns, (window + 1) * packet_ns
        data = encoder.encode(_window(events, start, end))
        stamp = time_base + end
        message = event_packet(events, data, stamp, seq + offset, frame_id, time_base)
        bag.write(topic, EVENT_PACKET_TYPE, stamp, message)
    return len(windows)
