"""The vectorised numpy EVT3 decoder that `hand_pose_core.events.evt3` replaced with a compiled kernel,
kept as the oracle the kernel must match word for word (test_evt3_kernel.py): it decodes the two real
recordings exactly, so any difference in events, order, state or counts is a change of behaviour."""

from __future__ import annotations

import numpy as np

from hand_pose_core.events.arrays import Events
from hand_pose_core.events.evt3 import (
    ADDR_X,
    ADDR_Y,
    EXT_TRIGGER,
    HIGH_PERIOD,
    TIME_HIGH,
    TIME_LOW,
    US_TO_NS,
    VECT_8,
    VECT_12,
    VECT_BASE_X,
    WRAP_DROP,
    Evt3Counts,
    Evt3State,
)

# For every 12-bit vector mask: how many bits are set, and which (ascending, padded with 0).
_MASK_BITS = (np.arange(1 << 12)[:, None] >> np.arange(12)) & 1
SET_BITS_COUNT = _MASK_BITS.sum(axis=1)
SET_BITS = np.zeros((1 << 12, 12), np.int64)
for _mask, _bits in enumerate(_MASK_BITS):
    SET_BITS[_mask, : _bits.sum()] = np.flatnonzero(_bits)


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


def decode_evt3_words_numpy(
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
