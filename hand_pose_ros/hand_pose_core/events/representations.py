"""Event representations: the change events of a window turned into an image-like array for a network.

Every representation is channels-last `(H, W, C)` float32 at the sensor's size, so the model pipeline
crops and resizes it like an image. Polarity channels are ordered ON (brighter) then OFF. Ranges:

- counts (C = 2): events per pixel and polarity / COUNT_SATURATION, capped at 1: [0, 1].
- time_surface (C = 2): exp(-(end - t) / decay) of each pixel's latest event of that polarity: (0, 1],
  0 where the pixel had none.
- voxel_grid (C = bins): polarity (+1 ON, -1 OFF) split bilinearly in time between the two nearest of
  B bins spread evenly over the window (bin 0 at its start, bin B - 1 at its end), summed per pixel,
  / COUNT_SATURATION, clipped: [-1, 1].
- lnes (C = 2): EvHandPose's locally normalised event surface, (t - start) / (end - start) of each
  pixel's latest event of that polarity: [0, 1), 0 where the pixel had none.

A window is either fixed in time, [end - window_ns, end), or fixed in size, the last window_events
events before end (its start is then its first event's time).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from hand_pose_core.errors import InputError
from hand_pose_core.events.arrays import Events

KINDS = ("counts", "time_surface", "voxel_grid", "lnes")
# Events per pixel (per polarity, or per voxel bin) at which counts and voxel grids saturate: a moving
# hand edge gives a few events per pixel in tens of ms, and a fixed scale keeps windows comparable.
COUNT_SATURATION = 8.0
ON_COLOUR = np.array([255.0, 96.0, 48.0])
OFF_COLOUR = np.array([48.0, 160.0, 255.0])
# A voxel grid's picture colours each pixel by when in the window its events came: old to new.
TIME_COLOURS = np.array([[90.0, 40.0, 220.0], [0.0, 190.0, 210.0], [250.0, 230.0, 40.0]])


def _is_count(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class EventRepresentation:
    """How a model sees events: what it draws, over which window. Recorded in checkpoints and model
    cards (`to_dict`), so that training and the live node render the same input."""

    kind: str
    window_ns: int | None = None
    window_events: int | None = None
    bins: int | None = None  # voxel grids only: time bins
    decay_ns: int | None = None  # time surfaces only: the exponential decay's time constant

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise InputError(f"event representation {self.to_dict()}: {problem}")

    def _problem(self) -> str | None:
        if self.kind not in KINDS:
            return f"kind {self.kind!r} is not one of {', '.join(KINDS)}"
        if (self.window_ns is None) == (self.window_events is None):
            return "give exactly one of window_ns and window_events"
        window = self.window_ns if self.window_events is None else self.window_events
        if not _is_count(window):
            return f"window {window!r} is not a positive whole number"
        if self.kind == "voxel_grid" and not _is_count(self.bins):
            return f"a voxel grid needs bins, a positive whole number (got {self.bins!r})"
        if self.kind != "voxel_grid" and self.bins is not None:
            return f"bins is for voxel grids only, not {self.kind}"
        if self.kind == "time_surface" and not _is_count(self.decay_ns):
            return f"a time surface needs decay_ns, a positive whole number (got {self.decay_ns!r})"
        if self.kind != "time_surface" and self.decay_ns is not None:
            return f"decay_ns is for time surfaces only, not {self.kind}"
        return None

    @property
    def channels(self) -> int:
        return self.bins if self.kind == "voxel_grid" else 2

    @property
    def value_range(self) -> tuple[float, float]:
        return (-1.0, 1.0) if self.kind == "voxel_grid" else (0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """E.g. "lnes over 50 ms", "voxel_grid (5 bins) over 20000 events", for messages and model cards."""
        window = (
            f"{self.window_ns / 1e6:g} ms" if self.window_ns is not None else f"{self.window_events} events"
        )
        detail = (
            f" ({self.bins} bins)"
            if self.bins
            else f" (decay {self.decay_ns / 1e6:g} ms)"
            if self.decay_ns
            else ""
        )
        return f"{self.kind}{detail} over {window}"

    @classmethod
    def from_dict(cls, data: Any, where: str = "event representation") -> EventRepresentation:
        """The representation a checkpoint or model card recorded; InputError naming `where` if it is
        not one."""
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected an object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}")
        if "kind" not in data:
            raise InputError(f"{where}: no kind")
        try:
            return cls(**data)
        except InputError as error:
            raise InputError(f"{where}: {error}") from None

    def window(self, events: Events, end_ns: int) -> Events:
        """The events this representation draws at end_ns: [end - window_ns, end) or the last
        window_events before end (events sorted by time)."""
        if self.window_ns is not None:
            return events.between(end_ns - self.window_ns, end_ns)
        return events.last(self.window_events, end_ns)

    def render(self, events: Events, end_ns: int) -> np.ndarray:
        """(H, W, channels) float32 of the window ending at end_ns, in `value_range`."""
        window = self.window(events, end_ns)
        _check_coordinates(window)
        if self.window_ns is not None:
            start_ns = end_ns - self.window_ns
        else:
            start_ns = int(window.t[0]) if len(window) else end_ns
        if self.kind == "counts":
            image = _counts(window)
        elif self.kind == "voxel_grid":
            image = _voxel_grid(window, start_ns, end_ns, self.bins)
        else:
            latest = _latest_per_polarity(window, start_ns)
            seen = latest >= 0
            if self.kind == "time_surface":
                age = (end_ns - start_ns) - latest
                image = np.where(seen, np.exp(-age / self.decay_ns), 0.0)
            else:
                image = np.where(seen, latest / max(end_ns - start_ns, 1), 0.0)
        return image.astype(np.float32)


def _check_coordinates(events: Events) -> None:
    if len(events) and (events.x.max() >= events.width or events.y.max() >= events.height):
        raise InputError(
            f"events up to x {events.x.max()}, y {events.y.max()} are outside the "
            f"{events.width}x{events.height} sensor"
        )


def _pixel_channel(events: Events, channels: int, channel: np.ndarray) -> np.ndarray:
    """Flat index into an (H, W, channels) array of each event's pixel and the given channel."""
    pixel = events.y.astype(np.int64) * events.width + events.x.astype(np.int64)
    return pixel * channels + channel


def _polarity_channel(events: Events) -> np.ndarray:
    return 1 - events.p.astype(np.int64)  # ON (1) -> channel 0, OFF (0) -> channel 1


def _counts(events: Events) -> np.ndarray:
    size = events.height * events.width * 2
    counts = np.bincount(_pixel_channel(events, 2, _polarity_channel(events)), minlength=size)
    return np.minimum(counts / COUNT_SATURATION, 1.0).reshape(events.height, events.width, 2)


def _latest_per_polarity(events: Events, start_ns: int) -> np.ndarray:
    """(H, W, 2) each pixel's latest event time per polarity, in ns after start_ns; -1 where none."""
    latest = np.full(events.height * events.width * 2, -1, np.int64)
    np.maximum.at(latest, _pixel_channel(events, 2, _polarity_channel(events)), events.t - start_ns)
    return latest.reshape(events.height, events.width, 2)


def _voxel_grid(events: Events, start_ns: int, end_ns: int, bins: int) -> np.ndarray:
    position = (events.t - start_ns) / max(end_ns - start_ns, 1) * (bins - 1)
    lower = np.floor(position).astype(np.int64)
    upper_share = position - lower
    upper = np.minimum(lower + 1, bins - 1)
    sign = np.where(events.p == 1, 1.0, -1.0)
    size = events.height * events.width * bins
    voxels = np.bincount(
        _pixel_channel(events, bins, lower), weights=sign * (1.0 - upper_share), minlength=size
    ) + np.bincount(_pixel_channel(events, bins, upper), weights=sign * upper_share, minlength=size)
    return np.clip(voxels / COUNT_SATURATION, -1.0, 1.0).reshape(events.height, events.width, bins)


def to_rgb(image: np.ndarray, kind: str) -> np.ndarray:
    """(H, W, 3) uint8 picture of a rendered representation for overlays and docs: on black, ON and OFF
    in two colours (counts brighter with more events, surfaces brighter for recent events); a voxel
    grid coloured by when in the window its events came (violet old, yellow new), brighter with more."""
    if kind not in KINDS:
        raise InputError(f"representation picture: kind {kind!r} is not one of {', '.join(KINDS)}")
    if image.ndim != 3 or (kind != "voxel_grid" and image.shape[2] != 2):
        raise InputError(f"representation picture: a {kind} image is (H, W, 2), got {image.shape}")
    if kind == "voxel_grid":
        weight = np.abs(image.astype(np.float64))
        total = weight.sum(axis=2)
        bins = image.shape[2]
        when = (weight @ np.linspace(0.0, 1.0, bins)) / np.maximum(total, 1e-12)
        anchors = np.linspace(0.0, 1.0, len(TIME_COLOURS))
        colour = np.stack([np.interp(when, anchors, TIME_COLOURS[:, c]) for c in range(3)], axis=2)
        rgb = colour * np.sqrt(np.minimum(total, 1.0))[..., None]
    else:
        strength = np.sqrt(image) if kind == "counts" else image.astype(np.float64)
        rgb = strength[..., 0:1] * ON_COLOUR + strength[..., 1:2] * OFF_COLOUR
    return (np.clip(rgb, 0.0, 255.0) + 0.5).astype(np.uint8)
