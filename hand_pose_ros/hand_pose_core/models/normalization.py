"""Normalisation of model targets and inputs: one implementation for training, inference and nodes.

Targets are wrist-relative joints normalised per joint, as the Ego-Exo4D baseline does:
(x_mm - mean) / (std + 1e-8), with the wrist row 0/0. The lifter's 2D inputs are pixels normalised
per axis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from hand_pose_core.egoexo.baselines import wrist_relative_statistics
from hand_pose_core.egoexo.constants import official_joint_stats
from hand_pose_core.egoexo.formats import Annotations
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.crop import is_mirrored, mirror_joints

EPSILON = 1e-8


@dataclass(frozen=True)
class Statistics:
    """A mean and a std, kept in checkpoints and model cards as `mean_<unit>` and `std_<unit>`."""

    mean: np.ndarray
    std: np.ndarray
    unit: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {f"mean_{self.unit}": self.mean.tolist(), f"std_{self.unit}": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Statistics:
        return cls(*(np.array(data[f"{name}_{cls.unit}"], dtype=np.float64) for name in ("mean", "std")))


@dataclass(frozen=True)
class JointNormalizer(Statistics):
    """Per-joint statistics (21, 3) of wrist-relative joints in millimetres."""

    unit: ClassVar[str] = "mm"

    @classmethod
    def official(cls) -> JointNormalizer:
        """The constants the official POTTER baseline was trained with."""
        return cls(*official_joint_stats())

    @classmethod
    def fit(cls, annotations: Annotations, mirror_left: bool = False) -> JointNormalizer:
        """Statistics of the valid wrist-relative joints of every 3D hand, left and right pooled (left
        hands reflected first for a model trained with `mirror_left`)."""
        hands = (
            replace(record.hand, joints_3d=mirror_joints(record.hand.joints_3d))
            if is_mirrored(mirror_left, record.side) and record.hand.has_3d
            else record.hand
            for record in annotations.hands()
        )
        return cls(*wrist_relative_statistics(hands, f"{annotations.source} (normalisation)"))

    def normalize(self, relative_m: np.ndarray) -> np.ndarray:
        """(..., 21, 3) wrist-relative metres -> normalised values (NaN stays NaN)."""
        return (np.asarray(relative_m) * 1000.0 - self.mean) / (self.std + EPSILON)

    def denormalize(self, values: np.ndarray) -> np.ndarray:
        """Normalised (..., 21, 3) -> wrist-relative metres."""
        return (np.asarray(values) * (self.std + EPSILON) + self.mean) / 1000.0


@dataclass(frozen=True)
class KeypointNormalizer(Statistics):
    """Per-axis statistics (2,) of 2D keypoints in pixels."""

    unit: ClassVar[str] = "px"

    @classmethod
    def reference(cls) -> KeypointNormalizer:
        """The lifting reference's constants (Ego-Exo4D training 2D)."""
        return cls(np.array([282.579, 337.413]), np.array([65.292, 50.378]))

    @classmethod
    def fit(cls, annotations: Annotations) -> KeypointNormalizer:
        points = [
            record.hand.joints_2d[np.isfinite(record.hand.joints_2d).all(axis=1)]
            for record in annotations.hands()
            if record.hand.joints_2d is not None
        ]
        if not points or not sum(len(p) for p in points):
            raise InputError(f"{annotations.source}: no 2D keypoints to fit normalisation")
        stacked = np.concatenate(points)
        return cls(stacked.mean(axis=0), stacked.std(axis=0))

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        return (np.asarray(pixels) - self.mean) / (self.std + EPSILON)
