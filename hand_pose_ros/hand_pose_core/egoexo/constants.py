"""The official Ego-Exo4D POTTER normalisation constants, shipped with the package.

Per-joint mean and std (millimetres, wrist-relative, 21x3) of the benchmark's training joints: an
official checkpoint's output is de-normalised with them, and synthetic data is compared against them.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import numpy as np


@cache
def official_joint_stats() -> tuple[np.ndarray, np.ndarray]:
    """(mean, std), each (21, 3) millimetres."""
    text = resources.files("hand_pose_core.egoexo").joinpath("egoexo4d_potter_joint_stats.json").read_text()
    data = json.loads(text)
    mean, std = np.array(data["joint_mean"]), np.array(data["joint_std"])
    mean.flags.writeable = std.flags.writeable = False
    return mean, std
