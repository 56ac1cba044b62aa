"""The Ego-Exo4D baseline's hand crop: one implementation for training, inference and the node.

A box becomes a centre and a square side (max of width and height, times 1.25; the baseline expresses
it in units of pixel_std = 200, which cancels out). The square is warped without rotation to the
model's input size with bilinear sampling (pixel centres at integer coordinates, zeros outside), and
normalised with the ImageNet mean and std.

Models of ours may be trained with left hands mirrored (`mirror_left` in their checkpoint and model
card): a left hand's crop is flipped top to bottom, so that it looks like a right hand, and its joints
are reflected through the camera's x-z plane (y -> -y) on the way in and back out. One model then learns
one kind of hand. The official baseline does not mirror.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

BOX_SCALE = 1.25
# The train/val box rule of the release: the tight box of a hand's valid 2D joints, padded by 20 pixels
# and clipped to the image. Detected keypoints become boxes by the same rule, so crops at run time match
# the crops the 3D model was trained on.
KEYPOINT_BOX_PAD_PX = 20.0
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
MIRRORED_SIDE = "left"
MIRROR_Y = np.array([1.0, -1.0, 1.0])
ArrayLike = Any  # a numpy array or a torch tensor


@dataclass(frozen=True)
class CropWindow:
    """A square window of the image: its centre and side in image pixels."""

    centre: np.ndarray  # (2,)
    side: float

    @classmethod
    def from_box(cls, bbox: np.ndarray, scale: float = BOX_SCALE) -> CropWindow:
        x1, y1, x2, y2 = (float(v) for v in bbox)
        return cls(np.array([(x1 + x2) / 2, (y1 + y2) / 2]), max(x2 - x1, y2 - y1) * scale)

    def to_crop(self, points: np.ndarray, size: int) -> np.ndarray:
        """Image pixels (..., 2) -> crop pixels."""
        return (np.asarray(points) - self.centre) * (size / self.side) + size / 2

    def to_image(self, points: np.ndarray, size: int) -> np.ndarray:
        """Crop pixels (..., 2) -> image pixels."""
        return (np.asarray(points) - size / 2) * (self.side / size) + self.centre


def keypoint_box(points: np.ndarray, width: int, height: int, pad: float = KEYPOINT_BOX_PAD_PX) -> np.ndarray:
    """(K, 2) pixels (finite) -> (4,) x1, y1, x2, y2: tight box + `pad`, clipped to the image."""
    points = np.asarray(points, dtype=np.float64)
    box = np.concatenate([points.min(axis=0) - pad, points.max(axis=0) + pad])
    return np.clip(box, 0.0, [width - 1, height - 1, width - 1, height - 1])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0.0) * max(height, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def box_is_usable(bbox: np.ndarray | None, width: int, height: int) -> str | None:
    """Why a box cannot be cropped (None when it can): missing, empty, or wholly outside the image."""
    if bbox is None:
        return "no box"
    x1, y1, x2, y2 = bbox
    if not (x2 > x1 and y2 > y1):
        return "box of zero size"
    if x2 < 0 or y2 < 0 or x1 > width - 1 or y1 > height - 1:
        return "box outside the image"
    return None


CropTap = tuple[np.ndarray, np.ndarray, np.ndarray]  # rows (size,), columns (size,), weights (size, size)


def crop_taps(window: CropWindow, size: int, width: int, height: int) -> list[CropTap]:
    """Where each pixel of a crop samples a `width` x `height` image: the four bilinear taps, each as the
    image rows and columns it reads (clipped into the image) and its float32 weights, zero where the tap
    falls outside. Shared by `warp_crop` and the crops cut on an engine's device (`live.device_frames`)."""
    steps = np.arange(size, dtype=np.float64)
    xs, ys = window.to_image(
        np.stack([steps, steps], axis=1), size
    ).T  # image x of each column, y of each row
    x0, y0 = np.floor(xs).astype(np.int64), np.floor(ys).astype(np.int64)
    fx, fy = (xs - x0).astype(np.float32), (ys - y0).astype(np.float32)
    taps = []
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        rows = y0 + dy
        row_ok = (rows >= 0) & (rows < height)
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            cols = x0 + dx
            col_ok = (cols >= 0) & (cols < width)
            weight = (wy * row_ok)[:, None] * (wx * col_ok)[None, :]
            taps.append((np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1), weight))
    return taps


def warp_crop(image: np.ndarray, window: CropWindow, size: int) -> np.ndarray:
    """(H, W, C) -> (size, size, C) float32, bilinear, zeros outside the image (C: RGB's 3, or an event
    representation's channels)."""
    height, width = image.shape[:2]
    out = np.zeros((size, size, image.shape[2]), dtype=np.float32)
    source = image.astype(np.float32)
    for rows, cols, weight in crop_taps(window, size, width, height):
        out += weight[..., None] * source[rows][:, cols]
    return out


def imagenet_normalize(
    crop: ArrayLike, mean: ArrayLike = IMAGENET_MEAN, std: ArrayLike = IMAGENET_STD
) -> ArrayLike:
    """(..., 3) float in [0, 255], channels last -> ImageNet-normalised; numpy, or torch tensors with
    `mean` and `std` as tensors (the crops cut on an engine's device), the same arithmetic."""
    return (crop / 255.0 - mean) / std


def normalize_crop(crop: np.ndarray) -> np.ndarray:
    """(S, S, 3) float in [0, 255] -> (3, S, S) float32 with ImageNet normalisation."""
    return np.ascontiguousarray(imagenet_normalize(crop).transpose(2, 0, 1), np.float32)


def crop_input(crop: np.ndarray, events: bool = False) -> np.ndarray:
    """A (S, S, C) crop -> the model's (C, S, S) float32 input: an RGB crop in [0, 255] ImageNet-normalised,
    an event representation's crop as it is (its fixed range is the model's input range)."""
    if not events:
        return normalize_crop(crop)
    return np.ascontiguousarray(crop.transpose(2, 0, 1), np.float32)


def is_mirrored(mirror_left: bool, side: str) -> bool:
    """Whether a hand of this side is mirrored for a model trained with `mirror_left`."""
    return mirror_left and side == MIRRORED_SIDE


def mirror_crop(crop: np.ndarray) -> np.ndarray:
    """(size, size, C) crop flipped top to bottom: the image of the hand reflected as by `mirror_joints`."""
    return np.ascontiguousarray(crop[::-1])


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points reflected through the x-z plane (its own inverse)."""
    return np.asarray(joints) * MIRROR_Y
