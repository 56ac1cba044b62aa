"""The mean-pose reference: every hand gets its side's mean wrist-relative training pose.

The floor any learned model must beat, and the demo's simple reference prediction.
"""

from __future__ import annotations

import numpy as np

from hand_pose_core.egoexo import Annotations, Predictions
from hand_pose_core.errors import InputError
from hand_pose_core.normalization import wrist_relative_moments
from hand_pose_core.skeleton import HAND_SIDES


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
