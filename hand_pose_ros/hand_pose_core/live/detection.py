"""Hand localisation with the whole-image keypoint detector: its input, its output decoded into hands,
and its scores (recall and precision at IoU 0.5, keypoint error in pixels).

A detected hand's box follows the release's train/val rule on its visible keypoints
(`crop.keypoint_box`), the rule the ground-truth boxes of the training data follow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from hand_pose_core.egoexo.formats import FrameAnnotation
from hand_pose_core.geometry.crop import box_iou, crop_input, keypoint_box
from hand_pose_core.geometry.skeleton import HAND_SIDES, NUM_JOINTS

PRESENCE_THRESHOLD = 0.5
VISIBILITY_THRESHOLD = 0.5
MATCH_IOU = 0.5


def resize_frame(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 frame -> (size, size, 3) uint8, bilinear with antialiasing."""
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def resize_event_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) float32 event representation -> (size, size, C), averaged over each output pixel's area."""
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA).reshape(size, size, -1)


def frame_input(image: np.ndarray, size: int, events: bool = False) -> np.ndarray:
    """The detector's (C, size, size) float32 input: an (H, W, 3) uint8 frame ImageNet-normalised, or an
    (H, W, C) event representation as it is."""
    if events:
        return crop_input(resize_event_frame(image, size), events=True)
    return crop_input(resize_frame(image, size).astype(np.float32))


def fractions_to_pixels(fractions: np.ndarray, width: int, height: int) -> np.ndarray:
    """Keypoints as fractions of the image (0 = left/top edge) -> pixels (integer pixel centres)."""
    return np.asarray(fractions, dtype=np.float64) * [width, height] - 0.5


def pixels_to_fractions(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    return (np.asarray(pixels, dtype=np.float64) + 0.5) / [width, height]


@dataclass
class Detection:
    """One hand found in a frame, in the frame's pixels."""

    side: str
    score: float  # presence probability
    keypoints: np.ndarray  # (21, 2) pixels
    visibility: np.ndarray  # (21,) probability that the joint is visible
    box: np.ndarray  # (4,) x1, y1, x2, y2

    @property
    def visible(self) -> np.ndarray:
        return self.visibility >= VISIBILITY_THRESHOLD


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def decode_detections(packed: np.ndarray, width: int, height: int) -> list[Detection]:
    """One frame's packed detector output (2, 64) -> a Detection per side (scores not thresholded)."""
    detections = []
    for side, row in zip(HAND_SIDES, np.asarray(packed, dtype=np.float64), strict=True):
        per_joint = row[1:].reshape(NUM_JOINTS, 3)
        keypoints = fractions_to_pixels(per_joint[:, :2], width, height)
        visibility = _sigmoid(per_joint[:, 2])
        visible = visibility >= VISIBILITY_THRESHOLD
        box = keypoint_box(keypoints[visible] if visible.sum() >= 2 else keypoints, width, height)
        detections.append(Detection(side, float(_sigmoid(row[0])), keypoints, visibility, box))
    return detections


def ground_truth_box(joints_2d: np.ndarray, width: int, height: int) -> np.ndarray | None:
    """The train/val box of a hand's annotated 2D keypoints (None with fewer than 2)."""
    finite = np.isfinite(joints_2d).all(axis=1)
    return keypoint_box(joints_2d[finite], width, height) if finite.sum() >= 2 else None


class LocatedHand(Protocol):
    """What detection scoring needs of a hand: a Detection, or a pipeline result."""

    side: str
    score: float
    keypoints: np.ndarray
    box: np.ndarray


@dataclass
class DetectionScores:
    """Hands matched at IoU >= 0.5 with the right side, and the keypoint error of the matched ones."""

    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    keypoint_errors: list[float] = field(default_factory=list)  # mean pixels per matched hand

    @property
    def recall(self) -> float:
        found = self.true_positives + self.false_negatives
        return self.true_positives / found if found else float("nan")

    @property
    def precision(self) -> float:
        claimed = self.true_positives + self.false_positives
        return self.true_positives / claimed if claimed else float("nan")

    @property
    def keypoint_error_px(self) -> float:
        return float(np.mean(self.keypoint_errors)) if self.keypoint_errors else float("nan")

    def add(self, detections: Iterable[LocatedHand], frame: FrameAnnotation, width: int, height: int) -> None:
        """Score one frame's detections (those above the presence threshold) against its annotation."""
        found = {d.side: d for d in detections if d.score >= PRESENCE_THRESHOLD}
        for side in HAND_SIDES:
            hand = frame.hands.get(side)
            truth = (
                ground_truth_box(hand.joints_2d, width, height)
                if hand and hand.joints_2d is not None
                else None
            )
            detection = found.get(side)
            if truth is None:
                self.false_positives += detection is not None
            elif detection is None:
                self.false_negatives += 1
            elif box_iou(detection.box, truth) >= MATCH_IOU:
                self.true_positives += 1
                finite = np.isfinite(hand.joints_2d).all(axis=1)
                error = np.linalg.norm(detection.keypoints[finite] - hand.joints_2d[finite], axis=1)
                self.keypoint_errors.append(float(error.mean()))
            else:
                self.false_positives += 1
                self.false_negatives += 1

    def to_dict(self) -> dict[str, float]:
        return {
            "recall": self.recall,
            "precision": self.precision,
            "keypoint_error_px": self.keypoint_error_px,
            "hands": self.true_positives + self.false_negatives,
        }
