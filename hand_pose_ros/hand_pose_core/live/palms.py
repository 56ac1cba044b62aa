"""MediaPipe's palm detector around its model: letterbox, SSD anchors, decoding, weighted NMS, hand regions.

The model sees the whole image letterboxed into 192x192 (black bars) and answers, for each of its 2016
anchors, 18 regressor values (a box and 7 keypoints, in 192-pixel units from the anchor centre) and a
score logit. The steps follow MediaPipe 0.10.21's `palm_detection_cpu.pbtxt` and
`palm_detection_detection_to_roi.pbtxt`: SsdAnchorsCalculator, letterbox, TensorsToDetectionsCalculator,
NonMaxSuppressionCalculator (weighted), detection to hand region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import groupby

import cv2
import numpy as np

from hand_pose_core.live.regions import (
    RotatedRect,
    SquareWarp,
    rotation_to_vertical,
    transform_rect,
    warp_to_square,
)

PALM_INPUT_SIZE = 192
NUM_PALM_KEYPOINTS = 7
PALM_OUTPUT_WIDTH = 4 + 2 * NUM_PALM_KEYPOINTS + 1  # box, keypoints, score logit
SCORE_LOGIT_CLIP = 100.0
NMS_IOU_THRESHOLD = 0.3
# `palm_detection_detection_to_roi.pbtxt`: the wrist and middle-finger MCP keypoints set the hand's
# direction; the box grows to a region around the whole hand.
WRIST_KEYPOINT, MIDDLE_MCP_KEYPOINT = 0, 2
PALM_REGION_SCALE = 2.6
PALM_REGION_SHIFT_Y = -0.5


@dataclass(frozen=True)
class PalmDetection:
    """One palm after NMS and letterbox removal, in normalized image coordinates."""

    score: float
    box: np.ndarray  # (4,) xmin, ymin, xmax, ymax
    keypoints: np.ndarray  # (7, 2) x, y


def ssd_anchor_centres(
    input_size: int = PALM_INPUT_SIZE,
    strides: tuple[int, ...] = (8, 16, 16, 16),
    anchors_per_layer: int = 2,
    offset: float = 0.5,
) -> np.ndarray:
    """(2016, 2) float32 anchor centres in the model's order.

    Layers of equal stride share one grid, each adding `anchors_per_layer` anchors per cell (aspect ratio
    1 and the interpolated one); the order is grid by grid, row, column, then anchor. Anchor sizes are all
    1 (fixed_anchor_size), so only the centres matter."""
    centres = []
    for stride, layers in groupby(strides):
        grid = math.ceil(input_size / stride)
        per_cell = anchors_per_layer * len(list(layers))
        rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        cell_centres = np.stack([(cols.ravel() + offset) / grid, (rows.ravel() + offset) / grid], axis=1)
        centres.append(np.repeat(cell_centres, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


ANCHOR_CENTRES = ssd_anchor_centres()
# Added to the regressors / 192 of each anchor: its centre to the box centre and to every keypoint.
ANCHOR_OFFSETS = np.concatenate(
    [ANCHOR_CENTRES, np.zeros_like(ANCHOR_CENTRES), np.tile(ANCHOR_CENTRES, NUM_PALM_KEYPOINTS)], axis=1
)


def letterbox_warp(width: int, height: int) -> tuple[SquareWarp, np.ndarray]:
    """The palm model's warp of a `width` x `height` image: the image centred on a black square of its
    longer side, resampled to 192x192; and the padding fractions (left, top, right, bottom) that undo it."""
    long_side = max(width, height)
    pad_x = (1.0 - width / long_side) / 2.0
    pad_y = (1.0 - height / long_side) / 2.0
    warp = SquareWarp(
        (width / 2.0, height / 2.0), (long_side, long_side), 0.0, PALM_INPUT_SIZE, cv2.BORDER_CONSTANT
    )
    return warp, np.array([pad_x, pad_y, pad_x, pad_y])


def letterbox_input(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The palm model's input for an RGB image, (192, 192, 3) uint8, and the padding fractions (see
    `letterbox_warp`)."""
    height, width = image.shape[:2]
    warp, padding = letterbox_warp(width, height)
    return warp_to_square(image, warp), padding


def decode_palms(raw: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """The anchors scoring at least `min_score` (TensorsToDetectionsCalculator), decoded in the
    letterboxed input's normalized coordinates: scores (K,) and rows (K, 18) of box xmin, ymin, xmax,
    ymax then 7 keypoints x, y; anchor order."""
    raw = np.asarray(raw, dtype=np.float32)
    with np.errstate(over="ignore"):  # exp(100) is inf in float32, and the score 0, as in MediaPipe
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw[:, -1], -SCORE_LOGIT_CLIP, SCORE_LOGIT_CLIP)))
    keep = np.flatnonzero(scores >= min_score)
    rows = raw[keep, :-1] / np.float32(PALM_INPUT_SIZE) + ANCHOR_OFFSETS[keep]
    centres, half_sizes = rows[:, 0:2].copy(), rows[:, 2:4] / 2
    rows[:, 0:2] = centres - half_sizes
    rows[:, 2:4] = centres + half_sizes
    valid = np.all(half_sizes >= 0, axis=1)  # drops negative and NaN sizes
    return scores[keep[valid]], rows[valid]


def weighted_nms(
    scores: np.ndarray, rows: np.ndarray, max_detections: int, iou_threshold: float = NMS_IOU_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression (NonMaxSuppressionCalculator, WEIGHTED) on (K,)
    scores and (K, >=4) rows that start with the box xmin, ymin, xmax, ymax: the best `max_detections`,
    best first (the graph keeps only the best max_hands, ClipDetectionVectorSizeCalculator, so the rest
    need not be computed).

    The best remaining detection gathers every remaining one overlapping it by IoU > threshold; the
    output keeps its score, with its row (box edges and keypoints) averaged over the group, weighted by
    score."""
    order = np.argsort(-scores, kind="stable")
    scores, rows = scores[order], rows[order].astype(np.float64)
    boxes = rows[:, :4]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    remaining = np.ones(len(scores), dtype=bool)
    kept_scores, kept_rows = [], []
    for top in range(len(scores)):
        if len(kept_scores) == max_detections:
            break
        if not remaining[top]:
            continue
        overlap = np.minimum(boxes[top, 2:], boxes[:, 2:]) - np.maximum(boxes[top, :2], boxes[:, :2])
        intersection = np.maximum(overlap[:, 0], 0.0) * np.maximum(overlap[:, 1], 0.0)
        group = remaining & (intersection > iou_threshold * (areas[top] + areas - intersection))
        group[top] = True
        total = scores[group].sum()
        weights = scores[group] / total if total > 0 else np.full(group.sum(), 1.0 / group.sum())
        kept_scores.append(scores[top])
        kept_rows.append(weights @ rows[group])
        remaining &= ~group
    return np.array(kept_scores, dtype=np.float64), np.array(kept_rows).reshape(-1, rows.shape[1])


def remove_letterbox(rows: np.ndarray, padding: np.ndarray) -> np.ndarray:
    """Rows of x, y pairs in letterboxed-input coordinates -> normalized image coordinates
    (DetectionLetterboxRemovalCalculator)."""
    left, top, right, bottom = padding
    pairs = rows.reshape(len(rows), rows.shape[1] // 2, 2)
    return ((pairs - (left, top)) / (1.0 - left - right, 1.0 - top - bottom)).reshape(rows.shape)


def palms_from_output(
    raw: np.ndarray, padding: np.ndarray, min_score: float, max_palms: int
) -> list[PalmDetection]:
    """The palm model's (2016, 19) output for one image -> its best `max_palms` palms."""
    scores, rows = weighted_nms(*decode_palms(raw, min_score), max_detections=max_palms)
    rows = remove_letterbox(rows, padding)
    return [
        PalmDetection(float(score), row[:4], row[4:].reshape(NUM_PALM_KEYPOINTS, 2))
        for score, row in zip(scores, rows, strict=True)
    ]


def palm_to_region(palm: PalmDetection, image_width: int, image_height: int) -> RotatedRect:
    """The hand region a palm implies: its box turned so the wrist -> middle-finger direction
    points up, squared, grown 2.6 times and moved half a box towards the fingers."""
    xmin, ymin, xmax, ymax = (float(v) for v in palm.box)
    size = np.array([image_width, image_height])
    rotation = rotation_to_vertical(
        palm.keypoints[WRIST_KEYPOINT] * size, palm.keypoints[MIDDLE_MCP_KEYPOINT] * size
    )
    box_rect = RotatedRect((xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin, ymax - ymin, rotation)
    return transform_rect(box_rect, image_width, image_height, PALM_REGION_SCALE, PALM_REGION_SHIFT_Y)
