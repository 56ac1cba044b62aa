"""The mean-pose reference: every hand gets its side's mean wrist-relative training pose.

The floor any learned model must beat, and the demo's simple reference prediction.
"""

from __future__ import annotations

import numpy as np

from hand_pose_core.egoexo import Annotations, Predictions
from hand_pose_core.errors import InputError
from hand_pose_core.skeleton import HAND_SIDES, NUM_JOINTS


def mean_pose(train: Annotations) -> dict[str, np.ndarray]:
    """Per side, the mean over hands of wrist-relative joints (metres), each joint over its valid samples."""
    sums = {side: np.zeros((NUM_JOINTS, 3)) for side in HAND_SIDES}
    counts = {side: np.zeros(NUM_JOINTS) for side in HAND_SIDES}
    for record in train.hands():
        hand = record.hand
        if not hand.has_3d:
            continue
        relative = hand.joints_3d - hand.joints_3d[0]
        valid = hand.valid_3d.copy()
        valid[0] = True  # the wrist-relative wrist is 0 by definition
        sums[record.side][valid] += relative[valid]
        counts[record.side][valid] += 1
    for side in HAND_SIDES:
        if counts[side].min() == 0:
            raise InputError(f"{train.source}: no valid 3D {side} hands to average (a test public file?)")
    return {side: sums[side] / counts[side][:, None] for side in HAND_SIDES}


def predict_mean_pose(poses: dict[str, np.ndarray], targets: Annotations) -> Predictions:
    """The mean pose for every hand of `targets` (boxes suffice, as in the test public file)."""
    predictions: Predictions = {}
    for record in targets.hands():
        frames = predictions.setdefault(record.take_uid, {})
        frames.setdefault(record.frame_number, {})[record.side] = poses[record.side].copy()
    return predictions
