"""Change events from a frame sequence, on the principle of ESIM and v2e: each pixel remembers the log
intensity at its last event and fires each time the (linearly interpolated) log intensity moves one
contrast threshold further from it.

Per pixel: ON and OFF thresholds drawn once around their nominal values; between two frames as many
events as whole thresholds were crossed, each at the time the straight line between the frames crosses
its level; after an event the pixel is blind for the refractory period (a crossing then fires nothing
but still moves the remembered level, as a real pixel's reset does); and background noise events of
random polarity at a rate per pixel, independent of the scene.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hand_pose_core.errors import InputError
from hand_pose_core.events.arrays import Events

# Intensity (0..1) added before the log: dark pixels' few grey levels would otherwise fire at every step.
LOG_OFFSET = 0.02
MIN_THRESHOLD = 0.01  # per-pixel thresholds drawn below this are raised to it
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class SimulatorSettings:
    """The sensor's contrast thresholds (log intensity), their per-pixel spread (standard deviation),
    refractory period and background noise rate. Defaults are v2e's usual ones, rounded."""

    threshold_on: float = 0.2
    threshold_off: float = 0.2
    threshold_spread: float = 0.03
    refractory_ns: int = 500_000
    noise_hz: float = 0.1  # per pixel

    def __post_init__(self) -> None:
        if not (self.threshold_on > 0 and self.threshold_off > 0):
            raise InputError(f"event simulator: thresholds must be positive, got {self}")
        if not (self.threshold_spread >= 0 and self.refractory_ns >= 0 and self.noise_hz >= 0):
            raise InputError(f"event simulator: spread, refractory period and noise must be >= 0: {self}")


def log_intensity(frame: np.ndarray) -> np.ndarray:
    """(H, W) float64 log(intensity + LOG_OFFSET) of a grey or RGB frame, uint8 or float in [0, 1]."""
    image = np.asarray(frame)
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    image = image.astype(np.float64) / scale
    if image.ndim == 3:
        image = image @ LUMA_WEIGHTS
    return np.log(image + LOG_OFFSET)


def simulate_events(
    frames: Iterable[tuple[int, np.ndarray]],
    settings: SimulatorSettings = SimulatorSettings(),
    seed: int | Sequence[int] = 0,
) -> Events:
    """The events a sensor of the frames' size would give for frames (t_ns, image) in time order, sorted
    by time; the first frame only sets each pixel's level. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    parts: list[tuple[np.ndarray, ...]] = []
    shape = previous_t = level = previous_log = None
    for index, (t_ns, frame) in enumerate(frames):
        frame = np.asarray(frame)
        if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)):
            raise InputError(f"event simulator: frame {index} is {frame.shape}, not grey or RGB")
        current = log_intensity(frame)
        if shape is None:
            shape = current.shape
            thresholds = _thresholds(rng, shape, settings)
            level = current.copy()
            last_event_ns = np.full(shape, np.iinfo(np.int64).min // 2, np.int64)
        else:
            if current.shape != shape:
                raise InputError(f"event simulator: frame {index} is {current.shape}, the first {shape}")
            if t_ns <= previous_t:
                raise InputError(f"event simulator: frame {index} at {t_ns} ns is not after {previous_t} ns")
            parts.append(
                _crossings(
                    previous_log, current, level, thresholds, last_event_ns, previous_t, t_ns, settings
                )
            )
            parts.append(_noise(rng, shape, previous_t, t_ns, settings.noise_hz))
        previous_t, previous_log = int(t_ns), current
    if shape is None:
        raise InputError("event simulator: no frames")
    x, y, t, p = (np.concatenate([part[i] for part in parts]) if parts else np.zeros(0) for i in range(4))
    order = np.argsort(t, kind="stable")
    return Events(
        shape[1],
        shape[0],
        x[order].astype(np.uint16),
        y[order].astype(np.uint16),
        t[order].astype(np.int64),
        p[order].astype(np.uint8),
    )


def _thresholds(rng: np.random.Generator, shape: tuple[int, int], settings: SimulatorSettings) -> np.ndarray:
    """(2, H, W): each pixel's ON and OFF threshold."""
    nominal = np.array([settings.threshold_on, settings.threshold_off])[:, None, None]
    drawn = rng.normal(nominal, settings.threshold_spread, size=(2, *shape))
    return np.maximum(drawn, MIN_THRESHOLD)


def _crossings(
    start_log: np.ndarray,
    end_log: np.ndarray,
    level: np.ndarray,
    thresholds: np.ndarray,
    last_event_ns: np.ndarray,
    start_ns: int,
    end_ns: int,
    settings: SimulatorSettings,
) -> tuple[np.ndarray, ...]:
    """Threshold crossings between two frames as (x, y, t, p); updates `level` and `last_event_ns`.

    Loops over the crossings' rank (first, second, ... crossing of a pixel), vectorised over pixels,
    so that the refractory period applies to each event after its pixel's previous one."""
    change = end_log - level
    brighter = change > 0
    threshold = np.where(brighter, thresholds[0], thresholds[1])
    counts = np.floor(np.abs(change) / threshold).astype(np.int64)
    rows, cols = np.nonzero(counts)
    if rows.size == 0:
        return tuple(np.zeros(0, dtype) for dtype in (np.uint16, np.uint16, np.int64, np.uint8))
    counts, sign = counts[rows, cols], np.where(brighter[rows, cols], 1.0, -1.0)
    step = sign * threshold[rows, cols]
    base, start, slope = level[rows, cols], start_log[rows, cols], end_log[rows, cols] - start_log[rows, cols]
    last = last_event_ns[rows, cols]
    duration = end_ns - start_ns
    found: list[tuple[np.ndarray, np.ndarray]] = []  # (index into rows/cols, t) per rank
    for rank in range(1, int(counts.max()) + 1):
        active = np.nonzero(counts >= rank)[0]
        crossing = base[active] + rank * step[active]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.clip((crossing - start[active]) / slope[active], 0.0, 1.0)
        share = np.where(np.isfinite(share), share, 1.0)
        t = start_ns + np.rint(share * duration).astype(np.int64)
        fires = t - last[active] >= settings.refractory_ns
        last[active[fires]] = t[fires]
        found.append((active[fires], t[fires]))
    level[rows, cols] = base + counts * step
    last_event_ns[rows, cols] = last
    which = np.concatenate([index for index, _ in found])
    times = np.concatenate([t for _, t in found])
    polarity = (sign[which] > 0).astype(np.uint8)
    return cols[which].astype(np.uint16), rows[which].astype(np.uint16), times, polarity


def _noise(
    rng: np.random.Generator, shape: tuple[int, int], start_ns: int, end_ns: int, rate_hz: float
) -> tuple[np.ndarray, ...]:
    """Background noise events in (start_ns, end_ns] as (x, y, t, p): uniform in pixels and time."""
    count = rng.poisson(rate_hz * shape[0] * shape[1] * (end_ns - start_ns) / 1e9)
    x = rng.integers(0, shape[1], count).astype(np.uint16)
    y = rng.integers(0, shape[0], count).astype(np.uint16)
    t = end_ns - rng.integers(0, end_ns - start_ns, count)
    p = rng.integers(0, 2, count).astype(np.uint8)
    return x, y, t.astype(np.int64), p
