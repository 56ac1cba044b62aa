"""Tracking between frames: when to run the detector, consistent handedness, and One-Euro smoothing.

A tracked hand's last keypoints give the next frame's crop while its score stays confident; the
detector runs every `detect_every` frames, and at once when a hand is lost (its box leaves the image or
its score drops). A detection that lands on the other side's track is given that track's side, so a
hand does not flip between left and right from one detection to the next.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hand_pose_core.geometry.crop import box_iou, box_is_usable
from hand_pose_core.geometry.skeleton import HAND_SIDES
from hand_pose_core.live.detection import Detection

SAME_HAND_IOU = 0.5  # a detection overlapping a track this much is that track's hand


class OneEuroFilter:
    """The One-Euro filter (Casiez et al., CHI 2012) on arrays: little lag when moving fast, little
    jitter when still. `min_cutoff` in Hz, `beta` per unit of speed, `d_cutoff` for the speed itself."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.value: np.ndarray | None = None
        self.speed: np.ndarray | None = None
        self.stamp: float | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, value: np.ndarray, stamp: float) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self.value is None or self.stamp is None or stamp <= self.stamp:
            self.value, self.speed, self.stamp = value, np.zeros_like(value), stamp
            return value
        dt = stamp - self.stamp
        speed = (value - self.value) / dt
        self.speed = self.speed + self._alpha(self.d_cutoff, dt) * (speed - self.speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self.speed)
        self.value = self.value + self._alpha(cutoff, dt) * (value - self.value)
        self.stamp = stamp
        return self.value


@dataclass
class Track:
    """What is remembered of one hand between frames."""

    side: str
    score: float
    keypoints: np.ndarray  # (21, 2) pixels
    visible: np.ndarray  # (21,) bool
    box: np.ndarray
    translation: np.ndarray | None = None  # the wrist in the camera frame, once placed
    frames_since_detection: int = 0


def resolve_sides(detections: list[Detection], tracks: dict[str, Track]) -> dict[str, Detection]:
    """Detections by side, with each side's track kept: a detection overlapping the other side's track
    (and not its own) takes that side; two detections of one hand keep the better-scored."""
    chosen: dict[str, Detection] = {}
    for detection in sorted(detections, key=lambda d: -d.score):
        side = detection.side
        own, other_side = tracks.get(side), next(s for s in HAND_SIDES if s != side)
        other = tracks.get(other_side)
        overlaps_own = own is not None and box_iou(detection.box, own.box) >= SAME_HAND_IOU
        if not overlaps_own and other is not None and box_iou(detection.box, other.box) >= SAME_HAND_IOU:
            side = other_side
        if side in chosen or any(box_iou(detection.box, d.box) >= SAME_HAND_IOU for d in chosen.values()):
            continue
        detection.side = side
        chosen[side] = detection
    return chosen


class HandTracker:
    """Decides per frame whether the detector runs, and keeps the tracks."""

    def __init__(self, detect_every: int = 1, min_score: float = 0.5) -> None:
        self.detect_every, self.min_score = max(1, detect_every), min_score
        self.tracks: dict[str, Track] = {}
        self.frames_since_detection = 0
        self.detected_hands = 0  # how many hands the last detector pass found

    def needs_detection(self) -> bool:
        """Detect every `detect_every` frames, and at once when no hand is tracked or one was lost."""
        lost = not self.tracks or len(self.tracks) < self.detected_hands
        return lost or self.frames_since_detection + 1 >= self.detect_every

    def detected(self, by_side: dict[str, Detection]) -> None:
        """A detector pass: its hands become the tracks (a side it did not find is dropped)."""
        self.frames_since_detection = 0
        self.detected_hands = len(by_side)
        previous = self.tracks
        self.tracks = {
            side: Track(
                side,
                d.score,
                d.keypoints,
                d.visible,
                d.box,
                previous[side].translation if side in previous else None,
            )
            for side, d in by_side.items()
        }

    def followed(self, width: int, height: int) -> None:
        """A frame without the detector: drop tracks that left the image or lost confidence."""
        self.frames_since_detection += 1
        for side, track in list(self.tracks.items()):
            track.frames_since_detection += 1
            if track.score < self.min_score or box_is_usable(track.box, width, height) is not None:
                del self.tracks[side]

    def reset(self) -> None:
        self.tracks.clear()
        self.frames_since_detection = self.detected_hands = 0
