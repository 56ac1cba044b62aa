"""The mean-pose reference: every hand gets its side's mean wrist-relative training pose.

The floor any learned model must beat, and the demo's simple reference prediction.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hand_pose_core.egoexo.formats import Annotations, HandAnnotation, Predictions
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.skeleton import HAND_SIDES, NUM_JOINTS


def wrist_relative_moments(hands: Iterable[HandAnnotation]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums (21, 3) and squared sums (21, 3) in millimetres, and counts (21,), of the valid
    wrist-relative joints of the 3D hands (the wrist, 0 by definition, always counts)."""
    sums, squares, counts = np.zeros((NUM_JOINTS, 3)), np.zeros((NUM_JOINTS, 3)), np.zeros(NUM_JOINTS)
    for hand in hands:
        if not hand.has_3d:
            continue
        relative = (hand.joints_3d - hand.joints_3d[0]) * 1000.0
        valid = hand.valid_3d.copy()
        valid[0] = True
        sums[valid] += relative[valid]
        squares[valid] += relative[valid] ** 2
        counts[valid] += 1
    return sums, squares, counts


def wrist_relative_statistics(hands: Iterable[HandAnnotation], where: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint mean and std (21, 3) in millimetres of the valid wrist-relative joints (the wrist 0/0)."""
    sums, squares, counts = wrist_relative_moments(hands)
    if counts.min() == 0:
        raise InputError(f"{where}: some joint is never valid; cannot compute its statistics")
    mean = sums / counts[:, None]
    std = np.sqrt(np.maximum(squares / counts[:, None] - mean**2, 0.0))
    mean[0], std[0] = 0.0, 0.0
    return mean, std


def mean_pose(train: Annotations) -> dict[str, np.ndarray]:
    """Per side, the mean over hands of wrist-relative joints (metres), each joint over its valid samples."""
    poses = {}
    for side in HAND_SIDES:
        sums, _, counts = wrist_relative_moments(r.hand for r in train.hands() if r.side == side)
        if counts.min() == 0:
            raise InputError(f"{train.source}: no valid 3D {side} hands to average (a test public file?)")
        poses[side] = sums / counts[:, None] / 1000.0
    return poses


def predict_mean_pose(poses: dict[str, np.ndarray], targets: Annotations) -> Predictions:
    """The mean pose for every hand of `targets` (boxes suffice, as in the test public file)."""
    predictions: Predictions = {}
    for record in targets.hands():
        frames = predictions.setdefault(record.take_uid, {})
        frames.setdefault(record.frame_number, {})[record.side] = poses[record.side].copy()
    return predictions
