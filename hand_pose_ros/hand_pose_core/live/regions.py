"""Rotated regions of interest (MediaPipe's NormalizedRect) and the warps and projections built on them.

A region is a rectangle in normalized image coordinates (centre and size as fractions of the image width
and height) turned by `rotation` radians, clockwise on screen (y points down). Hand regions are square in
pixels. These follow MediaPipe 0.10.21's calculators: RectTransformationCalculator, the landmarks to
region of `hand_landmark_landmarks_to_roi.pbtxt`, AssociationNormRectCalculator for palm and tracked
regions, ImageToTensorCalculator's warp of a region into a square model input, and the projection of the
model's landmarks back into the image (`hand_landmark_cpu.pbtxt`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache

import cv2
import numpy as np

# `hand_landmark_landmarks_to_roi.pbtxt`: the landmarks that shape the next frame's region, and how it
# is grown. The hand's axis ends between the index, middle and ring MCP joints (5, 9, 13): MediaPipe's
# calculator indexes the 12-landmark subset, so its joints 4, 6, 8 are these MCPs, not the PIPs 6, 10, 14
# (with the PIPs, the regions miss MediaPipe's by up to 0.7 rad; with the MCPs they match).
REGION_LANDMARKS = np.array([0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18])
WRIST, INDEX_MCP, MIDDLE_MCP, RING_MCP = 0, 5, 9, 13
LANDMARK_REGION_SCALE = 2.0
LANDMARK_REGION_SHIFT_Y = -0.1
# AssociationNormRectCalculator: a later region replaces every earlier one it overlaps more than this.
SAME_HAND_IOU = 0.5
# OpenCV's fixed-point sampling (before 4.11, as in MediaPipe): positions in 1/32 pixel, computed per
# block of 64 output columns; remap takes images and positions below 32767 pixels.
SUBPIXEL_BITS = 5
SUBPIXELS = 1 << SUBPIXEL_BITS
WARP_BLOCK_WIDTH = 64
REMAP_MAX_SIDE = 32767
SUBPIXEL_LIMIT = float(32000 * SUBPIXELS)
FAST_MAPS_MAX_PX = 16000.0  # corners within this keep the split maps' whole pixels inside int16
PIXEL_SCALE = np.float32(1.0 / 255.0)  # MediaPipe's model inputs are pixel/255, as its float conversion
FAST_MAPS_MAX_EXCESS = 1e-5  # perspective divisor within 1 ± this: first order is exact to 1e-6 px


@dataclass(frozen=True, slots=True)
class RotatedRect:
    """A rotated rectangle: centre and size normalized by the image width and height, rotation in radians."""

    x_center: float
    y_center: float
    width: float
    height: float
    rotation: float = 0.0

    def is_usable(self, image_width: int, image_height: int) -> bool:
        """Whether it can be warped: finite, with a positive size in pixels."""
        values = (self.x_center, self.y_center, self.width, self.height, self.rotation)
        return (
            all(math.isfinite(v) for v in values)
            and self.width * image_width > 0
            and self.height * image_height > 0
        )


def normalize_radians(angle: float) -> float:
    """An angle mapped to [-pi, pi)."""
    return angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi))


def rotation_to_vertical(start_px: np.ndarray, end_px: np.ndarray) -> float:
    """The rotation that turns the vector start -> end (pixels) to point up the image."""
    dx = float(end_px[0]) - float(start_px[0])
    dy = float(end_px[1]) - float(start_px[1])
    return normalize_radians(math.pi / 2.0 - math.atan2(-dy, dx))


def transform_rect(
    rect: RotatedRect,
    image_width: int,
    image_height: int,
    scale: float,
    shift_y: float,
    shift_x: float = 0.0,
) -> RotatedRect:
    """Shift along the rect's own axes, square it on its longer pixel side, then scale, as
    RectTransformationCalculator does.

    Every hand region MediaPipe builds uses square_long, so that is not optional here."""
    width, height, rotation = rect.width, rect.height, rect.rotation
    cos_r, sin_r = math.cos(rotation), math.sin(rotation)
    shift_x_px = image_width * width * shift_x
    shift_y_px = image_height * height * shift_y
    x_center = rect.x_center + (shift_x_px * cos_r - shift_y_px * sin_r) / image_width
    y_center = rect.y_center + (shift_x_px * sin_r + shift_y_px * cos_r) / image_height
    side_px = max(width * image_width, height * image_height)
    return RotatedRect(
        x_center, y_center, side_px / image_width * scale, side_px / image_height * scale, rotation
    )


def region_from_landmarks(landmarks: np.ndarray, image_width: int, image_height: int) -> RotatedRect:
    """The region the next frame crops for a hand, from its (21, >=2) normalized landmarks.

    The hand's axis runs from the wrist to the middle of the index, middle and ring MCP joints; the
    rectangle is the tight box of 12 palm and lower-finger landmarks in that turned frame, then squared,
    doubled and moved a little towards the fingers."""
    size = np.array([image_width, image_height], dtype=np.float64)
    points_px = np.asarray(landmarks, dtype=np.float64)[:, :2] * size
    middle_px = ((points_px[INDEX_MCP] + points_px[RING_MCP]) / 2.0 + points_px[MIDDLE_MCP]) / 2.0
    rotation = rotation_to_vertical(points_px[WRIST], middle_px)
    subset = points_px[REGION_LANDMARKS]
    centre_px = (subset.min(axis=0) + subset.max(axis=0)) / 2.0
    cos_r, sin_r = math.cos(rotation), math.sin(rotation)
    offsets = subset - centre_px
    turned = offsets @ np.array([[cos_r, -sin_r], [sin_r, cos_r]])  # each row rotated by -rotation
    low, high = turned.min(axis=0), turned.max(axis=0)
    mid_x, mid_y = (low + high) / 2.0
    centre_px += np.array([cos_r * mid_x - sin_r * mid_y, sin_r * mid_x + cos_r * mid_y])
    width_px, height_px = high - low
    rect = RotatedRect(
        float(centre_px[0] / image_width),
        float(centre_px[1] / image_height),
        float(width_px / image_width),
        float(height_px / image_height),
        rotation,
    )
    return transform_rect(rect, image_width, image_height, LANDMARK_REGION_SCALE, LANDMARK_REGION_SHIFT_Y)


def axis_aligned_iou(a: RotatedRect, b: RotatedRect) -> float:
    """Intersection over union of the unrotated rectangles (MediaPipe's association ignores rotation)."""
    overlap_w = min(a.x_center + a.width / 2, b.x_center + b.width / 2) - max(
        a.x_center - a.width / 2, b.x_center - b.width / 2
    )
    overlap_h = min(a.y_center + a.height / 2, b.y_center + b.height / 2) - max(
        a.y_center - a.height / 2, b.y_center - b.height / 2
    )
    if not (overlap_w > 0 and overlap_h > 0):
        return 0.0
    intersection = overlap_w * overlap_h
    union = a.width * a.height + b.width * b.height - intersection
    return intersection / union if union > 0 else 0.0


def associate_regions(
    palm_regions: list[RotatedRect], tracked_regions: list[RotatedRect]
) -> list[tuple[RotatedRect, bool]]:
    """Merge palm and tracked regions as MediaPipe's AssociationNormRectCalculator does: in order, palms
    first, each region drops every region already listed that it overlaps by IoU > 0.5 and joins the end.
    So a tracked hand wins over the palm found on it. Returns (region, came from tracking) pairs."""
    merged: list[tuple[RotatedRect, bool]] = []
    candidates = [(r, False) for r in palm_regions] + [(r, True) for r in tracked_regions]
    for region, tracked in candidates:
        merged = [kept for kept in merged if axis_aligned_iou(region, kept[0]) <= SAME_HAND_IOU]
        merged.append((region, tracked))
    return merged


@cache
def _steps(side: int) -> np.ndarray:
    """0, 1, ..., side - 1 as float64: tensor pixel indices."""
    return np.arange(side, dtype=np.float64)


@dataclass(frozen=True)
class SquareWarp:
    """A rotated rectangle of an image (centre and size in pixels, rotation in radians) to resample into a
    (side, side) tensor, with OpenCV's border rule outside the image (BORDER_CONSTANT: black,
    BORDER_REPLICATE: edge pixels)."""

    centre_px: tuple[float, float]
    size_px: tuple[float, float]
    rotation: float
    side: int
    border: int


@dataclass(frozen=True)
class SquareSampling:
    """Where a warp samples an image: OpenCV's fixed-point maps (positions (side, side, 2) int16 of whole
    pixels, fractions (side, side) uint16 of 1/32 pixels, y then x in 5 bits each) on the image taken every
    `decimation`-th pixel; no maps for a warp that is not finite (the tensor is black)."""

    decimation: int
    positions: np.ndarray | None
    fractions: np.ndarray | None


def square_sampling(warp: SquareWarp, height: int, width: int) -> SquareSampling:
    """The sampling of a warp of a `width` x `height` image, shared by `warp_to_square` (OpenCV's remap) and
    the same remap on an engine's device (`live.device_frames`).

    Tensor pixel (u, v) samples centre + R(rotation)·((u/side - 0.5)·w, (v/side - 0.5)·h), bilinear, with
    image pixel centres at integer coordinates. MediaPipe runs OpenCV's perspective warp from the
    rectangle's corners to the tensor's corners; OpenCV before 4.11 rounded each sampling position to
    1/32 pixel and interpolated in fixed point, and newer versions do not. Our sampling maps reproduce
    the old rounding and OpenCV's fixed-point remap interpolates, so the tensor matches MediaPipe's."""
    centre_px, size_px, side = warp.centre_px, warp.size_px, warp.side
    decimation = 1 + max(height, width) // REMAP_MAX_SIDE
    if decimation > 1:  # beyond what OpenCV's remap (and so MediaPipe) takes: decimate, approximately
        centre_px = (centre_px[0] / decimation, centre_px[1] / decimation)
        size_px = (size_px[0] / decimation, size_px[1] / decimation)
    corners = cv2.boxPoints((centre_px, size_px, math.degrees(warp.rotation)))  # bottom-left, then clockwise
    _, inverse = cv2.invert(cv2.getPerspectiveTransform(corners, _tensor_corners(side)))
    m = inverse.ravel().tolist()
    if not all(math.isfinite(v) for v in m):
        return SquareSampling(decimation, None, None)
    divisors = (m[8], m[6] * side + m[8], m[7] * side + m[8], (m[6] + m[7]) * side + m[8])  # at the corners
    reach_px = max(abs(centre_px[0]), abs(centre_px[1])) + math.hypot(*size_px) / 2
    if m[1] == 0 and m[3] == 0 and all(d == 1 for d in divisors):
        maps = _unrotated_sampling_maps(tuple(m), side)
    elif reach_px < FAST_MAPS_MAX_PX and max(abs(d - 1) for d in divisors) < FAST_MAPS_MAX_EXCESS:
        maps = _sampling_maps(inverse, side)
    else:  # far outside the image (whole pixels would overflow int16), or really projective
        maps = _exact_sampling_maps(inverse, side)
    return SquareSampling(decimation, *maps)


def warp_to_square(image: np.ndarray, warp: SquareWarp) -> np.ndarray:
    """A rotated rectangle of the image resampled into a (side, side) uint8 tensor, as MediaPipe's
    ImageToTensorCalculator does (see `square_sampling`)."""
    sampling = square_sampling(warp, *image.shape[:2])
    if sampling.positions is None:
        return np.zeros((warp.side, warp.side, image.shape[2]), dtype=np.uint8)
    if sampling.decimation > 1:
        image = np.ascontiguousarray(image[:: sampling.decimation, :: sampling.decimation])
    return cv2.remap(image, sampling.positions, sampling.fractions, cv2.INTER_LINEAR, borderMode=warp.border)


@cache
def _tensor_corners(side: int) -> np.ndarray:
    """The tensor's corners in the order of cv2.boxPoints: bottom-left, top-left, top-right, bottom-right."""
    return np.array([[0, side], [0, 0], [side, 0], [side, side]], dtype=np.float32)


@lru_cache(maxsize=8)
def _unrotated_sampling_maps(inverse: tuple[float, ...], side: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's fixed-point sampling maps for an axis-aligned warp (`inverse` the 3x3 matrix, flat), in its
    exact arithmetic. Cached: a stream's palm letterbox is the same every frame.

    Position = round(32 · source coordinate), as OpenCV computes it: per block of 64 columns, the block
    start's coordinate plus the offset within the block. Ties (a palm letterbox can have them) round as
    OpenCV rounded them."""
    steps = _steps(side)
    offsets = steps % WARP_BLOCK_WIDTH
    x = (inverse[0] * (steps - offsets) + inverse[2] + inverse[0] * offsets) * SUBPIXELS
    y = (inverse[4] * steps + inverse[5]) * SUBPIXELS
    x, y = (np.rint(np.clip(v, -SUBPIXEL_LIMIT, SUBPIXEL_LIMIT)).astype(np.int32) for v in (x, y))
    positions = np.empty((side, side, 2), dtype=np.int16)
    positions[..., 0] = x >> SUBPIXEL_BITS
    positions[..., 1] = (y >> SUBPIXEL_BITS)[:, None]
    fractions = ((y & (SUBPIXELS - 1)) << SUBPIXEL_BITS)[:, None] | (x & (SUBPIXELS - 1))
    return positions, fractions.astype(np.uint16)


def _sampling_maps(inverse: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's fixed-point sampling maps for a rotated warp, with whole pixels and fractions apart.

    A source coordinate is (row part + column part) / w, w the perspective divisor: the float32 corners
    make the transform very slightly projective (w = 1 ± 1e-6), enough to move samples across 1/32-pixel
    steps, so it is kept, to first order in (w - 1). The parts' whole pixels add in integers; the rest
    (row rest + column rest - slope·column: a rank-3 matrix product per axis, small enough for BLAS to
    run on one thread) adds in float32, precise at that size, and OpenCV's convertMaps rounds it to
    1/32 pixel. Rounding the whole coordinate in float32 instead would move about 1 sample in 700."""
    steps = _steps(side)
    row_parts = np.outer(steps, inverse[:2, 1]) + inverse[:2, 2]  # (side, 2): x, y
    column_parts = np.outer(steps, inverse[:2, 0])
    # (a + b·u) / (1 + d + e·u) = a + b·u - a·d - (a·e + b·d)·u - b·e·u², to first order in d and e
    row_excess = (inverse[2, 1] * steps + (inverse[2, 2] - 1.0))[:, None]
    row_whole, column_whole = np.floor(row_parts), np.floor(column_parts)
    row_factors = np.empty((2, side, 3), dtype=np.float32)  # per axis: row rest, -slope, 1
    row_factors[:, :, 0] = (row_parts - row_whole - row_parts * row_excess).T
    row_factors[:, :, 1] = -(row_parts * inverse[2, 0] + inverse[:2, 0] * row_excess).T
    row_factors[:, :, 2] = 1.0
    column_factors = np.empty((2, 3, side), dtype=np.float32)  # per axis: 1, column, column rest
    column_factors[:, 0] = 1.0
    column_factors[:, 1] = steps
    column_factors[:, 2] = (column_parts - column_whole - column_parts * (inverse[2, 0] * steps[:, None])).T
    rests = row_factors @ column_factors
    positions, fractions = cv2.convertMaps(rests[0], rests[1], cv2.CV_16SC2)
    interleaved = positions.reshape(side, 2 * side)  # x, y of each column in turn
    interleaved += np.tile(row_whole.astype(np.int16), (1, side))
    interleaved += column_whole.astype(np.int16).reshape(1, -1)
    return positions, fractions


def _exact_sampling_maps(inverse: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's fixed-point sampling maps in full float64, for regions reaching far outside the image:
    positions are clipped there (the border rule gives the same pixel) so that they fit int16."""
    steps = np.arange(side, dtype=np.float64)
    divisor = np.add.outer(inverse[2, 1] * steps + inverse[2, 2], inverse[2, 0] * steps)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(divisor != 0, SUBPIXELS / divisor, 0.0)
    x, y = (
        np.rint(
            np.clip(
                np.add.outer(inverse[axis, 1] * steps + inverse[axis, 2], inverse[axis, 0] * steps) * scale,
                -SUBPIXEL_LIMIT,
                SUBPIXEL_LIMIT,
            )
        ).astype(np.int32)
        for axis in (0, 1)
    )
    positions = np.stack([x >> SUBPIXEL_BITS, y >> SUBPIXEL_BITS], axis=-1).astype(np.int16)
    fractions = ((y & (SUBPIXELS - 1)) << SUBPIXEL_BITS) | (x & (SUBPIXELS - 1))
    return positions, fractions.astype(np.uint16)


def region_warp(rect: RotatedRect, width: int, height: int, side: int) -> SquareWarp:
    """The landmark model's warp of a region of a `width` x `height` image: edge pixels repeated outside
    the image (ImageToTensorCalculator's BORDER_REPLICATE); a region not square in pixels is padded to its
    longer side (keep_aspect_ratio)."""
    side_px = max(rect.width * width, rect.height * height)
    centre = (rect.x_center * width, rect.y_center * height)
    return SquareWarp(centre, (side_px, side_px), rect.rotation, side, cv2.BORDER_REPLICATE)


def crop_region(image: np.ndarray, rect: RotatedRect, side: int) -> np.ndarray:
    """The landmark model's input for a region: (side, side, 3) uint8 (see `region_warp`)."""
    height, width = image.shape[:2]
    return warp_to_square(image, region_warp(rect, width, height, side))


def project_to_image(points: np.ndarray, rect: RotatedRect) -> np.ndarray:
    """(21, 3) landmarks normalized to the crop -> normalized image coordinates, as
    LandmarkProjectionCalculator does.

    x and y turn with the region about its centre; z scales with the region's width."""
    cos_r, sin_r = math.cos(rect.rotation), math.sin(rect.rotation)
    x = points[:, 0] - 0.5
    y = points[:, 1] - 0.5
    projected = np.empty_like(points)
    projected[:, 0] = (cos_r * x - sin_r * y) * rect.width + rect.x_center
    projected[:, 1] = (sin_r * x + cos_r * y) * rect.height + rect.y_center
    projected[:, 2] = points[:, 2] * rect.width
    return projected


def rotate_world(world: np.ndarray, rotation: float) -> np.ndarray:
    """(21, 3) world landmarks turned about z by the region's rotation (WorldLandmarkProjectionCalculator)."""
    cos_r, sin_r = math.cos(rotation), math.sin(rotation)
    turned = world.copy()
    turned[:, 0] = cos_r * world[:, 0] - sin_r * world[:, 1]
    turned[:, 1] = sin_r * world[:, 0] + cos_r * world[:, 1]
    return turned
