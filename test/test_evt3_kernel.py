"""The compiled EVT3 kernel against the numpy decoder it replaced (evt3_numpy_reference.py): the same
events in the same order, the same triggers, the same state carried to the next packet and the same
counts, on the two real recordings and on random word streams (every word type, garbage, wraps, steps
back in time) cut into packets at random places."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import DATA_DIR
from evt3_numpy_reference import decode_evt3_words_numpy

from hand_pose_core.bags.takes import BagContents, read_messages
from hand_pose_core.events.arrays import Events
from hand_pose_core.events.evt3 import (
    ADDR_X,
    ADDR_Y,
    EXT_TRIGGER,
    TIME_HIGH,
    TIME_LOW,
    VECT_8,
    VECT_12,
    VECT_BASE_X,
    Evt3Counts,
    Evt3State,
    decode_evt3_words,
)

COLUMNS = ("x", "y", "t", "p", "trigger_t", "trigger_id", "trigger_edge")
GARBAGE_KINDS = (0x1, 0x7, 0x9, 0xB, 0xC, 0xD, 0xE, 0xF)  # CONTINUED, OTHERS, IMU and unassigned types


def assert_same_events(got: Events, expected: Events) -> None:
    for name in COLUMNS:
        got_column, expected_column = getattr(got, name), getattr(expected, name)
        assert got_column.dtype == expected_column.dtype, name
        np.testing.assert_array_equal(got_column, expected_column, err_msg=name)


def decode_both(packets: list[np.ndarray], width: int, height: int, time_base: int = 0) -> None:
    """Decode the packets in order with both decoders, checking events, state and counts after each."""
    kernel_state, numpy_state = Evt3State(), Evt3State()
    kernel_counts, numpy_counts = Evt3Counts(), Evt3Counts()
    for words in packets:
        got = decode_evt3_words(words, kernel_state, width, height, time_base, kernel_counts)
        expected = decode_evt3_words_numpy(words, numpy_state, width, height, time_base, numpy_counts)
        assert_same_events(got, expected)
        assert kernel_state == numpy_state
        assert kernel_counts == numpy_counts


def recorded_packets(name: str) -> tuple[list[np.ndarray], int, int]:
    path = DATA_DIR / "events" / name
    messages = [m for _, _, m in read_messages(path, {"/event_camera/events"}, BagContents(path))]
    packets = [np.frombuffer(m.events.tobytes(), "<u2").astype(np.uint16) for m in messages]
    return packets, int(messages[0].width), int(messages[0].height)


@pytest.mark.parametrize("name", ["test_events_1", "evt3_trigger"])
def test_the_recordings_decode_as_with_numpy_packet_by_packet_and_whole(name):
    packets, width, height = recorded_packets(name)
    decode_both(packets, width, height)
    decode_both([np.concatenate(packets)], width, height, time_base=1_700_000_000_000_000_000)


def random_words(rng: np.random.Generator, count: int) -> np.ndarray:
    """Words of every type, mostly the ones that carry events and state, with random payloads; TIME_HIGH
    values walk up with some steps back (within 10: no wrap) and drops (wraps)."""
    kinds = np.array(
        [ADDR_Y, ADDR_X, VECT_BASE_X, VECT_12, VECT_8, TIME_LOW, TIME_HIGH, EXT_TRIGGER, *GARBAGE_KINDS]
    )
    weights = np.array([3, 6, 2, 4, 2, 3, 1.5, 0.5, *[0.25] * len(GARBAGE_KINDS)])
    chosen = rng.choice(kinds, count, p=weights / weights.sum())
    payloads = rng.integers(0, 1 << 12, count)
    is_high = chosen == TIME_HIGH
    steps = rng.choice([0, 1, 1, 2, -3, -11, -4000], is_high.sum())
    payloads[is_high] = (rng.integers(0, 1 << 12) + np.cumsum(steps)) % (1 << 12)
    return ((chosen << 12) | payloads).astype(np.uint16)


def random_cuts(rng: np.random.Generator, words: np.ndarray) -> list[np.ndarray]:
    """The words in packets cut anywhere, empty packets included."""
    cuts = np.sort(rng.integers(0, len(words) + 1, rng.integers(0, 12)))
    return np.split(words, cuts)


def test_random_word_streams_decode_as_with_numpy():
    rng = np.random.default_rng(2026)
    for _ in range(150):
        words = random_words(rng, int(rng.integers(0, 1500)))
        decode_both(random_cuts(rng, words), 640, 480, time_base=int(rng.integers(0, 1 << 40)))


def test_carried_state_is_the_same_from_any_start():
    """A decoder that starts mid-stream (state already set, None or not) agrees with numpy."""
    rng = np.random.default_rng(7)
    starts = [
        Evt3State(),
        Evt3State(high=4090, wraps=3, low=17, seen_low=True, y=12, base_x=2040, vector_polarity=1),
        Evt3State(high=None, wraps=0, low=5, seen_low=True, y=None, base_x=96),
        Evt3State(high=3, seen_low=False, y=479),
    ]
    for start in starts:
        for _ in range(10):
            words = random_words(rng, 300)
            kernel_state, numpy_state = copy.copy(start), copy.copy(start)
            kernel_counts, numpy_counts = Evt3Counts(), Evt3Counts()
            got = decode_evt3_words(words, kernel_state, 1280, 720, 0, kernel_counts)
            expected = decode_evt3_words_numpy(words, numpy_state, 1280, 720, 0, numpy_counts)
            assert_same_events(got, expected)
            assert (kernel_state, kernel_counts) == (numpy_state, numpy_counts)


def test_read_only_and_byte_swapped_words_decode():
    """Words straight from a message's bytes (read-only) or big-endian decode like native ones."""
    values = np.array([0x8001, 0x6002, 0x0005, 0x3010, 0x4005, 0xA101], np.uint16)
    expected = decode_evt3_words(values.copy(), Evt3State(), 640, 480, 0, Evt3Counts())
    read_only = np.frombuffer(values.tobytes(), np.uint16)
    big_endian = values.astype(">u2")
    for words in (read_only, big_endian):
        assert_same_events(decode_evt3_words(words, Evt3State(), 640, 480, 0, Evt3Counts()), expected)
    assert expected.x.tolist() == [16, 18] and expected.trigger_id.tolist() == [1]


def test_full_vector_words_at_the_end_fill_exactly_their_columns():
    """The output arrays hold 8 events for a VECT_8 and 12 for a VECT_12, no more: full ones as the last
    word must not write past them (run once with NUMBA_BOUNDSCHECK=1 to check)."""
    for vector, columns in ((0x50FF, 8), (0x4FFF, 12)):
        words = np.array([0x8001, 0x6002, 0x0005, 0x3810, vector], np.uint16)
        events = decode_evt3_words(words, Evt3State(), 640, 480, 0, Evt3Counts())
        assert events.x.tolist() == list(range(16, 16 + columns)) and events.p.tolist() == [1] * columns
