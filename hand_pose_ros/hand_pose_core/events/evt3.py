"""Prophesee's EVT 3.0 words, decoded with numpy a packet at a time and encoded for synthetic streams.

EVT3 is a stream of 16-bit little-endian words (type in bits 15..12) that send only what changed: a row
(ADDR_Y), the time's high and low 12 bits (TIME_HIGH, TIME_LOW, microseconds), then one event per column
(ADDR_X) or up to 12 neighbouring columns in one word (VECT_BASE_X, then VECT_12 or VECT_8). A driver
cuts the stream into packets anywhere, so the decoder carries that state (row, time, vector base, 24-bit
wraps) from one packet to the next. Decoding is vectorised: each event word looks up the latest state
word before it.

A TIME_HIGH resets the low 12 bits to 0, as Prophesee's reference decoder does, so an event between a
TIME_HIGH and its TIME_LOW cannot land in the future.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hand_pose_core.events.arrays import Events

ADDR_Y, ADDR_X, VECT_BASE_X, VECT_12, VECT_8, TIME_LOW, TIME_HIGH, EXT_TRIGGER = (
    0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x8, 0xA
)  # fmt: skip
WRAP_DROP = 10  # a TIME_HIGH lower than the last by more than this starts a new 24-bit period
HIGH_PERIOD = 1 << 12  # TIME_HIGH steps in one 24-bit period (16.777216 s)
US_TO_NS = 1000

# For every 12-bit vector mask: how many bits are set, and which (ascending, padded with 0).
_MASK_BITS = (np.arange(1 << 12)[:, None] >> np.arange(12)) & 1
SET_BITS_COUNT = _MASK_BITS.sum(axis=1)
SET_BITS = np.zeros((1 << 12, 12), np.int64)
for _mask, _bits in enumerate(_MASK_BITS):
    SET_BITS[_mask, : _bits.sum()] = np.flatnonzero(_bits)


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


def _latest(values: np.ndarray, index: np.ndarray, carried: int | np.ndarray) -> np.ndarray:
    """values[index] where index >= 0 (a state word in this call), else the carried value."""
    if not len(values):
        return np.broadcast_to(np.asarray(carried, np.int64), index.shape)
    return np.where(index >= 0, values[index], carried)


class _Words:
    """One call's words grouped by type, with the state they continue from."""

    def __init__(self, words: np.ndarray, state: Evt3State) -> None:
        self.kinds = words >> 12
        self.payload = words & 0xFFF
        self.state = state
        self.at = {kind: self._positions(kind) for kind in (ADDR_Y, ADDR_X, VECT_BASE_X, VECT_12, VECT_8)}
        self.at[EXT_TRIGGER] = self._positions(EXT_TRIGGER)
        # The time after each TIME_HIGH or TIME_LOW word, worked out on those words alone.
        self.time_words = np.flatnonzero((self.kinds == TIME_HIGH) | (self.kinds == TIME_LOW))
        is_high = self.kinds[self.time_words] == TIME_HIGH
        values = self.payload[self.time_words].astype(np.int64)
        highs = values[is_high]
        last_high = highs[:1] if state.high is None else [state.high]
        self.wrapped = (np.concatenate([last_high, highs[:-1]]) - highs) > WRAP_DROP
        start_high = -1 if state.high is None else state.wraps * HIGH_PERIOD + state.high
        high_full = np.concatenate(
            [[start_high], (state.wraps + np.cumsum(self.wrapped)) * HIGH_PERIOD + highs]
        )
        current_high = high_full[np.cumsum(is_high)]  # a TIME_LOW before any TIME_HIGH keeps the carried one
        self.low_after = np.where(is_high, 0, values)
        low = self.low_after
        self.time_after = np.where(current_high >= 0, current_high * HIGH_PERIOD + low, -1)  # µs, -1: unknown
        self.low_seen_after = state.seen_low | (np.cumsum(~is_high) > 0)
        self.start_time = start_high * HIGH_PERIOD + state.low if start_high >= 0 else -1
        self.highs = highs
        self.vectors = np.sort(np.concatenate([self.at[VECT_12], self.at[VECT_8]]))
        steps = np.where(self.kinds[self.vectors] == VECT_12, 12, 8)
        self.vector_steps_before = np.concatenate([[0], np.cumsum(steps)])  # per vector word, and the end

    def _positions(self, kind: int) -> np.ndarray:
        is_kind = self.kinds == kind
        return np.flatnonzero(is_kind) if is_kind.any() else np.zeros(0, np.int64)

    def time_us(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sensor time in µs, whether it is known) at word positions `at`."""
        index = np.searchsorted(self.time_words, at) - 1
        time = _latest(self.time_after, index, self.start_time)
        known = (time >= 0) & _latest(self.low_seen_after, index, self.state.seen_low).astype(bool)
        return time, known

    def row(self, at: np.ndarray) -> np.ndarray:
        """The row at word positions `at` (-1: not given yet)."""
        index = np.searchsorted(self.at[ADDR_Y], at) - 1
        rows = (self.payload[self.at[ADDR_Y]] & 0x7FF).astype(np.int64)
        return _latest(rows, index, -1 if self.state.y is None else self.state.y)

    def vector_bases(self) -> tuple[np.ndarray, np.ndarray]:
        """(first column, polarity) of every vector word (column -1: no VECT_BASE_X yet)."""
        bases_at = self.at[VECT_BASE_X]
        index = np.searchsorted(bases_at, self.vectors) - 1
        bases = (self.payload[bases_at] & 0x7FF).astype(np.int64)
        polarities = (self.payload[bases_at] >> 11).astype(np.uint8)
        first_vector_after_base = np.searchsorted(self.vectors, bases_at)
        steps = self.vector_steps_before[: len(self.vectors)]
        carried = -1 if self.state.base_x is None else self.state.base_x
        # A base counts the vector words before it out, so that adding `steps` gives each word's column.
        base = _latest(bases - self.vector_steps_before[first_vector_after_base], index, carried)
        column = np.where((index >= 0) | (carried >= 0), base + steps, -1)
        return column, _latest(polarities, index, self.state.vector_polarity).astype(np.uint8)

    def advance(self, counts: Evt3Counts) -> None:
        """Leave the state as the last word left it."""
        state, at = self.state, self.at
        if len(self.highs):
            state.high = int(self.highs[-1])
            state.wraps += int(np.count_nonzero(self.wrapped))
            counts.wraps += int(np.count_nonzero(self.wrapped))
        if len(self.time_words):
            state.low = int(self.low_after[-1])
            state.seen_low = bool(self.low_seen_after[-1])
        if len(at[ADDR_Y]):
            state.y = int(self.payload[at[ADDR_Y][-1]] & 0x7FF)
        total_steps = int(self.vector_steps_before[-1])
        if len(at[VECT_BASE_X]):
            last_base = at[VECT_BASE_X][-1]
            after = self.vector_steps_before[np.searchsorted(self.vectors, last_base)]
            state.base_x = int(self.payload[last_base] & 0x7FF) + total_steps - int(after)
            state.vector_polarity = int(self.payload[last_base] >> 11)
        elif state.base_x is not None:
            state.base_x += total_steps


def decode_evt3_words(
    words: np.ndarray, state: Evt3State, width: int, height: int, time_base: int, counts: Evt3Counts
) -> Events:
    """The events of consecutive EVT3 words (uint16), continuing from `state` (updated in place).

    t = time_base + the sensor time in ns. Coordinates are not checked here. Events (and triggers)
    before the stream has given their time, row and (for vector words) column base are dropped and
    counted."""
    stream = _Words(words, state)
    singles = stream.at[ADDR_X]
    if len(stream.vectors):
        emitting = np.sort(np.concatenate([singles, stream.vectors]))
        is_vector = stream.kinds[emitting] != ADDR_X
        masks = np.where(
            stream.kinds[emitting] == VECT_12, stream.payload[emitting], stream.payload[emitting] & 0xFF
        )
        per_word = np.where(is_vector, SET_BITS_COUNT[masks], 1)
        base = np.full(len(emitting), -1, np.int64)
        polarity = (stream.payload[emitting] >> 11).astype(np.uint8)
        base[is_vector], polarity[is_vector] = stream.vector_bases()
        time, known = stream.time_us(emitting)
        known &= (stream.row(emitting) >= 0) & (~is_vector | (base >= 0))
        word = np.repeat(np.arange(len(emitting)), per_word)
        rank = np.arange(len(word)) - np.repeat(np.cumsum(per_word) - per_word, per_word)
        x = np.where(
            is_vector[word], base[word] + SET_BITS[masks[word], rank], stream.payload[emitting][word] & 0x7FF
        )
        y, t, p, known = stream.row(emitting)[word], time[word], polarity[word], known[word]
    else:
        x = stream.payload[singles] & 0x7FF
        p = (stream.payload[singles] >> 11).astype(np.uint8)
        y = stream.row(singles)
        t, known = stream.time_us(singles)
        known &= y >= 0
    triggers = stream.at[EXT_TRIGGER]
    trigger_t, trigger_known = stream.time_us(triggers)
    counts.without_state += int(np.count_nonzero(~known)) + int(np.count_nonzero(~trigger_known))
    trigger_words = stream.payload[triggers][trigger_known]
    stream.advance(counts)
    return Events(
        width,
        height,
        x[known].astype(np.uint16),
        y[known].astype(np.uint16),
        time_base + t[known] * US_TO_NS,
        p[known],
        time_base + trigger_t[trigger_known] * US_TO_NS,
        ((trigger_words >> 8) & 0xF).astype(np.uint8),
        (trigger_words & 1).astype(np.uint8),
    )


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
