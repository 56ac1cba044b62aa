"""Prophesee's EVT 3.0 words, decoded by a compiled (numba) kernel a packet at a time, and encoded for
synthetic streams.

EVT3 is a stream of 16-bit little-endian words (type in bits 15..12) that send only what changed: a row
(ADDR_Y), the time's high and low 12 bits (TIME_HIGH, TIME_LOW, microseconds), then one event per column
(ADDR_X) or up to 12 neighbouring columns in one word (VECT_BASE_X, then VECT_12 or VECT_8). A driver
cuts the stream into packets anywhere, so the decoder carries that state (row, time, vector base, 24-bit
wraps) from one packet to the next. The kernel walks the words once, as a state machine: numpy needed
several passes over the words (select, forward-fill the row and the time, expand the vectors) and a
large cost per call; one compiled pass is 5 to 6 times faster (docs/events.md).

A TIME_HIGH resets the low 12 bits to 0, as Prophesee's reference decoder does, so an event between a
TIME_HIGH and its TIME_LOW cannot land in the future.

numba compiles the kernel on its first call (seconds) and caches the machine code (NUMBA_CACHE_DIR, else
`__pycache__` beside this file, else the user's cache folder); where none can be written it compiles in
memory in each process. `prepare_evt3_decoder()` compiles (or loads) it ahead of the first packet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

from hand_pose_core.events.arrays import Events

ADDR_Y, ADDR_X, VECT_BASE_X, VECT_12, VECT_8, TIME_LOW, TIME_HIGH, EXT_TRIGGER = (
    0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x8, 0xA
)  # fmt: skip
WRAP_DROP = 10  # a TIME_HIGH lower than the last by more than this starts a new 24-bit period
HIGH_PERIOD = 1 << 12  # TIME_HIGH steps in one 24-bit period (16.777216 s)
US_TO_NS = 1000
UNSET = -1  # the kernel's None: rows, columns and TIME_HIGH values are never negative
EVENTS_PER_KIND = np.zeros(16, np.int64)  # the most events a word of each type can hold
EVENTS_PER_KIND[[ADDR_X, VECT_12, VECT_8]] = 1, 12, 8


@dataclass
class Evt3State:
    """What the stream said so far that later words rely on (None: not said yet)."""

    high: int | None = None  # the last TIME_HIGH's 12 bits, to count wraps
    wraps: int = 0
    low: int = 0  # the low 12 bits of the current time (0 after a TIME_HIGH until a TIME_LOW)
    seen_low: bool = False
    y: int | None = None
    base_x: int | None = None  # where the next VECT word starts
    vector_polarity: int = 0


@dataclass
class Evt3Counts:
    """What decoding met besides events, for the decode report."""

    without_state: int = 0  # events before the stream gave their time, row or vector base
    wraps: int = 0


def _compiled(function: Callable) -> Callable:
    """numba.njit with its on-disk cache; without it where no cache folder can be written (a read-only
    install and home), since numba then refuses cache=True with a RuntimeError at import."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:
        return numba.njit(nogil=True)(function)


@_compiled
def _capacity(words: np.ndarray) -> tuple:
    """The most events and triggers `words` can hold (a table, not branches: the word types come in no
    predictable order)."""
    event_bound, trigger_bound = 0, 0
    for word in words:
        event_bound += EVENTS_PER_KIND[word >> 12]
        trigger_bound += (word >> 12) == EXT_TRIGGER
    return event_bound, trigger_bound


@_compiled
def _decode_words(
    words: np.ndarray,
    carried: np.ndarray,
    time_base: np.int64,
    xs: np.ndarray,
    ys: np.ndarray,
    ts: np.ndarray,
    ps: np.ndarray,
    trigger_ts: np.ndarray,
    trigger_ids: np.ndarray,
    trigger_edges: np.ndarray,
) -> tuple:
    """One pass over `words` (uint16), continuing from `carried` (high, wraps, low, seen_low, y, base_x,
    vector_polarity; UNSET for None), which it leaves as the last word left it. Fills the events' and
    triggers' arrays (sized by `_capacity`) from the start and returns how many of each it wrote, then
    the events and triggers dropped for want of state and the 24-bit wraps passed. The caller allocates
    the arrays: numba returning them costs more than decoding a small packet. The word types are tested
    most frequent first; vector words write every column of the word and count only the set bits,
    which costs less than a branch per bit."""
    high, wraps, low, seen_low, row, base_x, vector_polarity = carried
    events, triggers, without_state, wraps_passed = 0, 0, 0, 0
    time_known = high != UNSET and seen_low != 0
    now = time_base + ((wraps * HIGH_PERIOD + high) * HIGH_PERIOD + low) * US_TO_NS
    for word in words:
        kind = np.int64(word >> 12)
        payload = np.int64(word & 0xFFF)
        if kind == ADDR_X:
            if time_known and row != UNSET:
                xs[events] = payload & 0x7FF
                ys[events] = row
                ts[events] = now
                ps[events] = payload >> 11
                events += 1
            else:
                without_state += 1
        elif kind == ADDR_Y:
            row = payload & 0x7FF
        elif kind == TIME_LOW:
            low, seen_low = payload, 1
            time_known = high != UNSET
            now = time_base + ((wraps * HIGH_PERIOD + high) * HIGH_PERIOD + low) * US_TO_NS
        elif kind == TIME_HIGH:
            if high != UNSET and high - payload > WRAP_DROP:
                wraps += 1
                wraps_passed += 1
            high, low = payload, 0
            time_known = seen_low != 0
            now = time_base + (wraps * HIGH_PERIOD + high) * HIGH_PERIOD * US_TO_NS
        elif kind in (VECT_12, VECT_8):
            columns = 12 if kind == VECT_12 else 8  # never more: `_capacity` sized the arrays by this
            mask = payload & ((1 << columns) - 1)
            if time_known and row != UNSET and base_x != UNSET:
                for bit in range(columns):
                    xs[events] = base_x + bit
                    ys[events] = row
                    ts[events] = now
                    ps[events] = vector_polarity
                    events += (mask >> bit) & 1
            else:
                while mask:
                    without_state += mask & 1
                    mask >>= 1
            if base_x != UNSET:
                base_x += columns
        elif kind == VECT_BASE_X:
            base_x, vector_polarity = payload & 0x7FF, payload >> 11
        elif kind == EXT_TRIGGER:
            if time_known:
                trigger_ts[triggers] = now
                trigger_ids[triggers] = (payload >> 8) & 0xF
                trigger_edges[triggers] = payload & 1
                triggers += 1
            else:
                without_state += 1
    carried[:] = np.array([high, wraps, low, seen_low, row, base_x, vector_polarity])
    return events, triggers, without_state, wraps_passed


def _or_unset(value: int | None) -> int:
    return UNSET if value is None else value


def _or_none(value: int) -> int | None:
    return None if value == UNSET else int(value)


def decode_evt3_words(
    words: np.ndarray, state: Evt3State, width: int, height: int, time_base: int, counts: Evt3Counts
) -> Events:
    """The events of consecutive EVT3 words (uint16), continuing from `state` (updated in place).

    t = time_base + the sensor time in ns. Coordinates are not checked here. Events (and triggers)
    before the stream has given their time, row and (for vector words) column base are dropped and
    counted. The first call in a process compiles or loads the kernel (`prepare_evt3_decoder`)."""
    carried = np.array(
        [
            _or_unset(state.high),
            state.wraps,
            state.low,
            state.seen_low,
            _or_unset(state.y),
            _or_unset(state.base_x),
            state.vector_polarity,
        ],
        np.int64,
    )
    # One array type (native, contiguous, writeable uint16) keeps numba at one compiled version.
    if words.dtype != np.uint16 or not (words.flags.c_contiguous and words.flags.writeable):
        words = np.array(words, np.uint16)
    event_bound, trigger_bound = _capacity(words)
    columns = (
        np.empty(event_bound, np.uint16),
        np.empty(event_bound, np.uint16),
        np.empty(event_bound, np.int64),
        np.empty(event_bound, np.uint8),
        np.empty(trigger_bound, np.int64),
        np.empty(trigger_bound, np.uint8),
        np.empty(trigger_bound, np.uint8),
    )
    events, triggers, without_state, wraps = _decode_words(words, carried, np.int64(time_base), *columns)
    high, state.wraps, state.low, seen_low, row, base_x, state.vector_polarity = carried.tolist()
    state.high, state.seen_low, state.y, state.base_x = (
        _or_none(high),
        bool(seen_low),
        _or_none(row),
        _or_none(base_x),
    )
    counts.without_state += without_state
    counts.wraps += wraps
    x, y, t, p, trigger_t, trigger_id, trigger_edge = columns
    return Events(
        width,
        height,
        x[:events],
        y[:events],
        t[:events],
        p[:events],
        trigger_t[:triggers],
        trigger_id[:triggers],
        trigger_edge[:triggers],
    )


def prepare_evt3_decoder() -> None:
    """Compile (or load from numba's cache) the kernel now, so the first packet is not late: a node
    calls this while it configures."""
    decode_evt3_words(np.zeros(0, np.uint16), Evt3State(), 0, 0, 0, Evt3Counts())


class Evt3Encoder:
    """EVT3 bytes for events, a packet at a time, as a sensor would send them: a TIME_HIGH and TIME_LOW
    when the time changes, an ADDR_Y when the row does, and a VECT_BASE_X with VECT_12 for 3 or more
    events of one row, polarity and microsecond within 12 columns (ADDR_X otherwise); EXT_TRIGGER words
    for the triggers. Each packet starts with its time, so only the 24-bit period count needs the
    packets before it: crossing a period, the encoder writes a TIME_HIGH 0xFFF then 0x000 per period,
    which a decoder counts as wraps. Times are rounded down to microseconds; within a microsecond the
    events come out sorted by row, polarity and column."""

    def __init__(self) -> None:
        self.wraps = 0
        self.last_us: int | None = None

    def encode(self, events: Events) -> bytes:
        """The words of `events` (at or after everything encoded before), little-endian."""
        count, triggers = len(events), len(events.trigger_t)
        is_event = np.concatenate([np.zeros(triggers, bool), np.ones(count, bool)])
        t = np.concatenate([events.trigger_t, events.t]) // US_TO_NS
        x = np.concatenate([np.zeros(triggers, np.int64), events.x])
        y = np.concatenate([np.zeros(triggers, np.int64), events.y])
        p = np.concatenate([events.trigger_edge, events.p]).astype(np.int64)
        channel = np.concatenate([events.trigger_id, np.zeros(count, np.uint8)]).astype(np.int64)
        order = np.lexsort((x, p, y, is_event, t))
        t, is_event, x, y, p, channel = (column[order] for column in (t, is_event, x, y, p, channel))
        if not len(t):
            return b""
        if t[0] < 0 or (self.last_us is not None and t[0] < self.last_us):
            raise ValueError(f"evt3: events at {t[0]} µs come before the stream's time {self.last_us} µs")
        first = np.zeros(len(t), bool)
        first[0] = True
        new_high = first | np.concatenate([[False], (t[1:] >> 12) != (t[:-1] >> 12)])
        new_time = first | np.concatenate([[False], t[1:] != t[:-1]])
        new_row = np.zeros(len(t), bool)
        rows = y[is_event]
        new_row[is_event] = np.concatenate([[True], rows[1:] != rows[:-1]]) if len(rows) else rows
        # Vector blocks: events of one microsecond, row and polarity within one 12-column block.
        block = x // 12
        group_start = first | new_time | new_row | ~is_event | np.concatenate([[False], p[1:] != p[:-1]])
        block_start = group_start | np.concatenate([[False], block[1:] != block[:-1]])
        starts = np.flatnonzero(block_start)
        sizes = np.diff(np.append(starts, len(t)))
        vector = np.repeat((sizes >= 3) & is_event[starts], sizes)
        masks = np.bitwise_or.reduceat(np.left_shift(1, x - block * 12), starts)
        continues_vector = np.zeros(len(starts), bool)  # the previous block was the vector just left of it
        continues_vector[1:] = (
            ~group_start[starts[1:]] & vector[starts[:-1]] & (block[starts[1:]] == block[starts[:-1]] + 1)
        )
        need_base = np.zeros(len(t), bool)
        need_base[starts] = vector[starts] & ~continues_vector
        main = np.where(is_event, (ADDR_X << 12) | (p << 11) | x, (EXT_TRIGGER << 12) | (channel << 8) | p)
        main[starts] = np.where(vector[starts], (VECT_12 << 12) | masks, main[starts])
        has_main = ~vector | block_start
        words = np.stack(
            [
                (TIME_HIGH << 12) | ((t >> 12) & 0xFFF),
                (TIME_LOW << 12) | (t & 0xFFF),
                (ADDR_Y << 12) | y,
                (VECT_BASE_X << 12) | (p << 11) | (block * 12),
                main,
            ],
            axis=1,
        ).astype(np.uint16)
        present = np.stack([new_high, new_time, new_row, need_base, has_main], axis=1)
        stream = words[present]
        # Each crossing into a later 24-bit period: a TIME_HIGH 0xFFF then 0x000 per period, before the
        # TIME_HIGH of the first word in it.
        wraps = t >> 24
        passed = np.diff(np.concatenate([[self.wraps], wraps]))
        at_rows = np.flatnonzero(passed > 0)
        if len(at_rows):
            word_offsets = np.cumsum(present.sum(axis=1)) - present.sum(axis=1)
            where = np.repeat(word_offsets[at_rows], 2 * passed[at_rows])
            periods = np.tile(
                np.array([(TIME_HIGH << 12) | 0xFFF, TIME_HIGH << 12], np.uint16), int(passed.sum())
            )
            stream = np.insert(stream, where, periods)
        self.wraps, self.last_us = int(wraps[-1]), int(t[-1])
        return stream.astype("<u2").tobytes()
