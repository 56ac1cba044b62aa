"""Decoding what event-camera drivers send: the two real evt3 recordings give exactly the upstream
decoders' values, mono and dvs EventArray decode, .raw files read, the evt3 encoder round-trips through
the decoder, and bad input is counted, never a crash."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import DATA_DIR

from hand_pose_core.bags.events import (
    event_packet,
    read_bag_events,
    write_event_bag,
)
from hand_pose_core.bags.names import EVENT_ARRAY_TYPE, EVENT_PACKET_TYPE
from hand_pose_core.bags.takes import (
    TYPESTORE,
    BagContents,
    BagWriter,
    known_type,
    read_messages,
    read_raw,
)
from hand_pose_core.events.arrays import Events
from hand_pose_core.events.decode import EventDecoder
from hand_pose_core.events.evt3 import Evt3Encoder
from hand_pose_core.events.raw import read_raw_file

EVENTS_DIR = DATA_DIR / "events"
TEST_EVENTS_1 = EVENTS_DIR / "test_events_1"
EVT3_TRIGGER = EVENTS_DIR / "evt3_trigger"
# The type hash metavision_driver's bags record for EventPacket (test_events_1/metadata.yaml).
DRIVER_TYPE_HASH = "RIHS01_d6fa176260b1f37e5a40845305315e150a0f18191241eb64f407442aa29844aa"


def packet(data: bytes, encoding: str = "evt3", width: int = 640, height: int = 480, time_base: int = 0):
    return SimpleNamespace(
        encoding=encoding, events=data, width=width, height=height, time_base=time_base, is_bigendian=False
    )


def words(*values: int) -> bytes:
    return np.array(values, "<u2").tobytes()


def test_event_packet_registered_from_our_package_has_the_drivers_type_hash():
    known_type(EVENT_PACKET_TYPE)
    assert TYPESTORE.hash_rihs01(EVENT_PACKET_TYPE) == DRIVER_TYPE_HASH


def test_test_events_1_decodes_to_the_upstream_values():
    decoded = read_bag_events(TEST_EVENTS_1)
    events, report = decoded.events, decoded.report
    assert (decoded.topic, events.width, events.height) == ("/event_camera/events", 640, 480)
    assert (len(events), int((events.p == 0).sum()), int((events.p == 1).sum())) == (
        343_474,
        218_291,
        125_183,
    )
    assert len(events.trigger_t) == 4_157
    sum_us = int((events.t // 1000).sum()) + int((events.trigger_t // 1000).sum())
    assert sum_us == 2_885_601_049_874
    assert (report.packets, report.events, report.on, report.triggers, report.problems) == (
        517, 343_474, 125_183, 4_157, 0
    )  # fmt: skip
    assert np.all(np.diff(events.t) >= 0) and decoded.problems == []


def test_evt3_trigger_decodes_to_the_upstream_values():
    events = read_bag_events(EVT3_TRIGGER).events
    assert (events.width, events.height, len(events)) == (1280, 720, 82_469)
    assert int(events.t.sum()) == 1_222_326_831_810_000
    assert (int(events.x.astype(np.int64).sum()), int(events.y.astype(np.int64).sum())) == (
        42_078_718,
        31_656_267,
    )
    assert int(events.p.astype(np.int64).sum()) == 41_439
    assert len(events.trigger_t) == 2 and int(events.trigger_t.sum()) == 29_096_982_000


def test_state_carries_from_packet_to_packet():
    """A row, time and vector base given in one packet apply to the next packet's events."""
    decoder = EventDecoder()
    first = decoder.decode(packet(words(0x8001, 0x6002, 0x0005, 0x3010)))  # time 4098 µs, y 5, base x 16
    second = decoder.decode(packet(words(0x2803, 0x4005, 0x6003, 0x5001)))
    assert len(first) == 0
    assert second.x.tolist() == [3, 16, 18, 28]  # ADDR_X ON, VECT_12 bits 0 and 2, then VECT_8 bit 0 at 28
    assert second.y.tolist() == [5] * 4 and second.p.tolist() == [1, 0, 0, 0]
    assert second.t.tolist() == [4_098_000, 4_098_000, 4_098_000, 4_099_000]
    assert decoder.report.problems == 0


def test_a_whole_stream_decodes_as_packet_by_packet():
    """decode_all joins runs of evt3 packets; an empty, a truncated and a mono packet break the runs."""
    contents = BagContents(EVT3_TRIGGER)
    packets = [message for _, _, message in read_messages(EVT3_TRIGGER, {"/event_camera/events"}, contents)]
    packets[10:10] = [packet(b"", width=1280, height=720), packet(b"\x00" * 8, "mono", 1280, 720)]
    packets[40] = packet(packets[40].events.tobytes()[:-1], width=1280, height=720)
    one_by_one = EventDecoder()
    expected = Events.concatenate([one_by_one.decode(p) for p in packets], 1280, 720)
    whole = EventDecoder()
    events = whole.decode_all(packets)
    for name in ("x", "y", "t", "p", "trigger_t", "trigger_id", "trigger_edge"):
        np.testing.assert_array_equal(getattr(events, name), getattr(expected, name))
    assert whole.report == one_by_one.report
    assert (whole.report.packets, whole.report.empty_packets, whole.report.truncated_packets) == (107, 1, 1)


def test_rclpy_event_packets_decode():
    """The node gets rclpy messages of our event_camera_msgs build: uint8[] arrives as array.array."""
    from rclpy.serialization import deserialize_message

    from event_camera_msgs.msg import EventPacket

    decoder = EventDecoder()
    contents = BagContents(EVT3_TRIGGER)
    for raw in read_raw(EVT3_TRIGGER, {"/event_camera/events"}, contents):
        decoder.decode(deserialize_message(raw.data, EventPacket))
    assert (decoder.report.events, decoder.report.triggers, decoder.report.problems) == (82_469, 2, 0)


def test_a_time_high_clears_the_low_bits_until_the_next_time_low():
    data = words(0x8001, 0x6FFF, 0x0001, 0x2001, 0x8002, 0x2002, 0x6005, 0x2003)
    events = EventDecoder().decode(packet(data))
    assert events.t.tolist() == [0x1FFF * 1000, 0x2000 * 1000, 0x2005 * 1000]


def test_time_base_and_big_endian_words():
    message = packet(np.array([0x8000, 0x6010, 0x0001, 0x2002], ">u2").tobytes(), time_base=5_000_000_000)
    message.is_bigendian = True
    events = EventDecoder().decode(message)
    assert (events.x.tolist(), events.y.tolist(), events.t.tolist()) == ([2], [1], [5_000_016_000])


def test_mono_packets_decode():
    x, y, offset_ns, polarity = (
        np.array([3, 600]),
        np.array([2, 470]),
        np.array([10, 2**32 - 1]),
        np.array([1, 0]),
    )
    values = (polarity.astype(np.uint64) << 63) | (y.astype(np.uint64) << 48) | (x.astype(np.uint64) << 32)
    values |= offset_ns.astype(np.uint64)
    events = EventDecoder().decode(packet(values.astype("<u8").tobytes(), "mono", time_base=7_000))
    assert events.x.tolist() == [3, 600] and events.y.tolist() == [2, 470] and events.p.tolist() == [1, 0]
    assert events.t.tolist() == [7_010, 7_000 + 2**32 - 1]


def dvs_array(frame_id: str, stamps_ns: list[int], xs: list[int], polarities: list[bool]):
    known_type(EVENT_ARRAY_TYPE)
    types = TYPESTORE.types
    time = types["builtin_interfaces/msg/Time"]
    items = [
        types["dvs_msgs/msg/Event"](x=x, y=x // 2, ts=time(sec=t // 10**9, nanosec=t % 10**9), polarity=p)
        for x, t, p in zip(xs, stamps_ns, polarities, strict=True)
    ]
    header = types["std_msgs/msg/Header"](stamp=time(sec=1, nanosec=0), frame_id=frame_id)
    return types[EVENT_ARRAY_TYPE](header=header, height=180, width=240, events=items)


def test_dvs_event_array_bag_decodes_whatever_the_alignment(tmp_path):
    """An odd-length frame_id shifts every event's alignment padding: a fixed stride would misread."""
    bag = tmp_path / "dvs"
    with BagWriter(bag) as writer:
        for k, frame_id in enumerate(("dvs", "camera0")):
            stamps = [10**9 * (k + 1) + 7, 10**9 * (k + 1) + 9_000]
            message = dvs_array(frame_id, stamps, [5 + k, 239], [True, False])
            writer.write("/dvs/events", EVENT_ARRAY_TYPE, stamps[-1], message)
    decoded = read_bag_events(bag)
    events = decoded.events
    assert (events.width, events.height) == (240, 180)
    assert events.x.tolist() == [5, 239, 6, 239] and events.y.tolist() == [2, 119, 3, 119]
    assert events.t.tolist() == [1_000_000_007, 1_000_009_000, 2_000_000_007, 2_000_009_000]
    assert events.p.tolist() == [1, 0, 1, 0]
    assert decoded.report.problems == 0


def random_events(rng: np.random.Generator, groups: int, start_us: int, span_us: int) -> Events:
    """Sorted events in bursts: per burst one microsecond, row and polarity, and about half of 12
    neighbouring columns (so that VECT words pay, or ADDR_X where a burst is thin); a few triggers."""
    t = np.sort(rng.integers(start_us, start_us + span_us, groups)) * 1000
    y, p = rng.integers(0, 480, groups), rng.integers(0, 2, groups)
    first_column = rng.integers(0, 628, groups)
    burst, column = np.nonzero(rng.random((groups, 12)) < rng.uniform(0.05, 0.9, (groups, 1)))
    trigger_t = np.sort(rng.integers(start_us, start_us + span_us, 5)) * 1000
    return Events(
        640,
        480,
        (first_column[burst] + column).astype(np.uint16),
        y[burst].astype(np.uint16),
        t[burst].astype(np.int64),
        p[burst].astype(np.uint8),
        trigger_t.astype(np.int64),
        rng.integers(0, 16, 5).astype(np.uint8),
        rng.integers(0, 2, 5).astype(np.uint8),
    )


def in_encoder_order(events: Events) -> tuple[np.ndarray, ...]:
    order = np.lexsort((events.x, events.p, events.y, events.t))
    return tuple(column[order] for column in (events.t, events.y, events.p, events.x))


def test_evt3_round_trip_with_vectors_and_a_24_bit_wrap():
    rng = np.random.default_rng(3)
    wrap_us = 1 << 24
    parts = [random_events(rng, 500, wrap_us - 3000, 2500), random_events(rng, 500, wrap_us + 100, 3000)]
    parts.append(random_events(rng, 20, 3 * wrap_us + 50, 100))  # two whole periods without events
    encoder, decoder = Evt3Encoder(), EventDecoder()
    encoded = [encoder.encode(part) for part in parts]
    decoded = [decoder.decode(packet(data)) for data in encoded]
    for part, back in zip(parts, decoded, strict=True):
        for expected, got in zip(in_encoder_order(part), (back.t, back.y, back.p, back.x), strict=True):
            np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(back.trigger_t, part.trigger_t)
        expected_triggers = sorted(zip(part.trigger_id, part.trigger_edge, strict=True))
        assert sorted(zip(back.trigger_id, back.trigger_edge, strict=True)) == expected_triggers
    assert decoder.report.time_wraps == 3 and decoder.report.problems == 0
    all_words = np.frombuffer(b"".join(encoded), "<u2")
    assert np.count_nonzero(all_words >> 12 == 0x4) > 100  # VECT_12 words were used
    assert len(all_words) < 0.8 * 3 * sum(
        len(part) for part in parts
    )  # fewer words than TIME_LOW+ADDR_Y+ADDR_X


def test_event_bag_written_and_read_back(tmp_path):
    events = random_events(np.random.default_rng(5), 400, 1000, 20_000)
    bag = tmp_path / "events"
    packets = write_event_bag(events, bag, packet_ns=5_000_000)
    decoded = read_bag_events(bag)
    assert packets == len(np.unique(np.concatenate([events.t, events.trigger_t]) // 5_000_000))
    assert decoded.report.packets == packets and decoded.report.problems == 0
    for expected, got in zip(in_encoder_order(events), in_encoder_order(decoded.events), strict=True):
        np.testing.assert_array_equal(got, expected)
    assert decoded.events.trigger_t.tolist() == events.trigger_t.tolist()


def test_event_packet_stamp_is_the_window_end():
    message = event_packet(Events(640, 480), b"\x00\x80", 2_001_000_000, 4, "cam")
    assert (message.header.stamp.sec, message.header.stamp.nanosec) == (2, 1_000_000)
    assert (message.time_base, message.encoding, message.seq, message.header.frame_id) == (
        0,
        "evt3",
        4,
        "cam",
    )


def test_every_kind_of_bad_input_is_counted_not_raised():
    decoder = EventDecoder()
    decoder.decode(packet(b""))  # empty
    decoder.decode(packet(b"\x01\x02\x03", "libcaer_cmp"))  # unknown encoding
    decoder.decode(packet(words(0x0001, 0x2005, 0xA001)))  # an event and a trigger before any time: dropped
    decoder.decode(packet(words(0x8010, 0x6000, 0x0001, 0x2005) + b"\x07"))  # truncated: last byte left over
    decoder.decode(packet(words(0x0200, 0x2005, 0x0001, 0x2290)))  # y 512 and x 656: out of a 640x480 sensor
    decoder.decode(packet(words(0x800F, 0x6000, 0x2006)))  # TIME_HIGH 0x00F after 0x010: back in time
    decoder.decode(packet(words(0x8000, 0x6000, 0x2007)))  # 0x000 after 0x00F: more than 10 lower, a wrap
    decoder.decode(packet(b"\x00" * 12, "mono"))  # 12 bytes: one event and a truncated rest
    report = decoder.report
    assert report.empty_packets == 1 and dict(report.unknown_encodings) == {"libcaer_cmp": 1}
    assert report.without_state == 2 and report.truncated_packets == 2 and report.out_of_range == 2
    assert report.time_wraps == 1 and report.time_backwards == 2  # TIME_HIGH 0x00F, then mono's t 0
    assert report.events == 4 and report.triggers == 0 and report.problems == 9
    line = report.describe()
    assert (
        "\n" not in line and "unknown encoding 'libcaer_cmp'" in line and "2 events out of the sensor" in line
    )


def write_raw(path: Path, header: str, data: bytes) -> Path:
    path.write_bytes(header.encode() + data)
    return path


def test_raw_files_with_and_without_an_end_line(tmp_path):
    data = words(0x8001, 0x6002, 0x0005, 0x2803, 0xA101)
    for header in (
        "% evt 3.0\n% format EVT3;height=480;width=640\n% end\n",
        "% date 2024-01-01\n% evt 3.0\n% format EVT3;width=640;height=480\n",
    ):
        events, report = read_raw_file(write_raw(tmp_path / "r.raw", header, data))
        assert (events.width, events.height, events.x.tolist(), events.y.tolist()) == (640, 480, [3], [5])
        assert events.t.tolist() == [4_098_000] and events.trigger_id.tolist() == [1]
        assert report.problems == 0


def test_events_cli_on_a_fixture(run_cli, tmp_path):
    code, out, err = run_cli("events", EVT3_TRIGGER, "--out", tmp_path / "e.npz")
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith(
        f"{EVT3_TRIGGER}: 1280x720, 1.251 s: 82,469 events (41,439 ON, 41,030 OFF), 2 triggers"
    )
    assert first.endswith("problems: none")
    saved = np.load(tmp_path / "e.npz")
    assert sorted(saved.files) == sorted(["x", "y", "t", "p", "trigger_t", "trigger_id", "trigger_edge"])
    assert int(saved["t"].sum()) == 1_222_326_831_810_000 and int(saved["trigger_t"].sum()) == 29_096_982_000
    assert saved["x"].dtype == np.uint16 and saved["p"].dtype == np.uint8


def test_raw2bag_then_events(run_cli, tmp_path):
    events = random_events(np.random.default_rng(9), 300, 0, 30_000)
    raw = write_raw(
        tmp_path / "r.raw",
        "% evt 3.0\n% format EVT3;width=640;height=480\n% end\n",
        Evt3Encoder().encode(events),
    )
    code, out, err = run_cli("raw2bag", raw, "--out", tmp_path / "bag", "--packet-ms", "10")
    assert code == 0, err
    assert "wrote" in out and "3 evt3 packets" in out
    code, out, err = run_cli("events", tmp_path / "bag", "--out", tmp_path / "e.npz")
    assert code == 0, err
    assert np.load(tmp_path / "e.npz")["t"].tolist() == in_encoder_order(events)[0].tolist()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda tmp: write_raw(tmp / "bad.raw", "% evt 2.0\n% format EVT2;width=640;height=480\n", b""),
            "not an EVT 3.0",
        ),
        (lambda tmp: tmp / "missing_bag", "no such bag"),
    ],
)
def test_events_cli_on_bad_input_exits_2_with_one_line(run_cli, tmp_path, make, message):
    path = make(tmp_path)
    code, _, err = run_cli("events", path, "--out", tmp_path / "e.npz")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert str(path) in err and message in err
    assert not (tmp_path / "e.npz").exists()


def test_events_cli_asks_for_a_topic_when_a_bag_has_several(run_cli, tmp_path):
    bag = tmp_path / "two"
    with BagWriter(bag) as writer:
        for topic in ("/left/events", "/right/events"):
            writer.write(topic, EVENT_PACKET_TYPE, 1, event_packet(Events(640, 480), b"", 1, 0, "cam"))
    code, _, err = run_cli("events", bag, "--out", tmp_path / "e.npz")
    assert code == 2 and "choose one with --topic" in err
    code, out, err = run_cli("events", bag, "--out", tmp_path / "e.npz", "--topic", "/left/events")
    assert code == 0 and "0 events" in out and "1 empty" in out
