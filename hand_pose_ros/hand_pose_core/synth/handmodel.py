"""A kinematic hand for synthetic data: anatomical bone lengths, joint-angle limits, smooth motion.

Local frame of a right hand (right-handed): x toward the thumb (radial), y along the straight fingers
(distal), z out of the palm (palmar); flexion bends fingers toward +z. A left hand is the mirror
image of a right hand through the camera's y = 0 plane (see `mirror_to_left`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from hand_pose_core.geometry.skeleton import FINGER_JOINTS, NUM_JOINTS

LONG_FINGERS = ("index", "middle", "ring", "pinky")

# Adult bone lengths in metres before the per-subject scale.
# Wrist to the base of each long finger (metacarpal), then proximal, middle, distal phalanx to the tip.
METACARPAL = {"index": 0.092, "middle": 0.096, "ring": 0.091, "pinky": 0.084}
PHALANGES = {
    "index": (0.040, 0.024, 0.021),
    "middle": (0.044, 0.028, 0.022),
    "ring": (0.041, 0.027, 0.022),
    "pinky": (0.033, 0.020, 0.019),
    "thumb": (0.040, 0.031, 0.027),  # base (CMC) to MCP, proximal, distal to the tip
}
THUMB_BASE = 0.040  # wrist to the thumb's CMC joint
# Direction of each metacarpal in the palm plane, radians from +y toward the thumb (+x).
SPREAD = {"index": 0.26, "middle": 0.05, "ring": -0.15, "pinky": -0.34}
THUMB_BASE_DIRECTION = np.array([0.8, 0.6, 0.0])  # wrist -> thumb CMC, in the palm plane

# Joint-angle limits in radians (flexion positive toward the palm).
MCP_FLEXION = (-0.30, 1.50)
MCP_ABDUCTION = 0.22  # +- around the finger's rest direction
PIP_FLEXION = (0.0, 1.85)
DIP_PER_PIP = 0.7  # the distal joint follows the middle one
DIP_FLEXION = (0.0, 1.35)
THUMB_SPREAD = (0.4, 1.1)  # thumb direction in the palm plane, from +y toward +x
THUMB_OPPOSITION = (-0.2, 0.5)  # tilt of the thumb toward the palm
THUMB_MCP_FLEXION = (0.0, 0.9)
THUMB_IP_FLEXION = (-0.15, 1.3)

# Mean and spread over takes of how closed the hands are (0 is half-way between the flexion limits).
GRASP_BIAS = (-1.3, 0.5)
# Within a take: amplitude of the shared grasp signal and of each finger's own signal.
GRASP_MOTION = 1.2
FINGER_MOTION = 0.6

# Subject size spread: scale ~ N(1, 0.06), kept within these bounds.
SCALE_SIGMA = 0.06
SCALE_RANGE = (0.86, 1.14)


@dataclass(frozen=True)
class HandPose:
    """Articulation of one hand (angles in radians), independent of where it is."""

    mcp_flexion: np.ndarray  # (4,) index..pinky
    mcp_abduction: np.ndarray  # (4,)
    pip_flexion: np.ndarray  # (4,)
    dip_flexion: np.ndarray  # (4,)
    thumb: np.ndarray  # (4,) spread, opposition, MCP flexion, IP flexion


def _chain(base: np.ndarray, forward: np.ndarray, bend: np.ndarray, lengths, flexions) -> list[np.ndarray]:
    """Joint positions of a planar chain starting at `base`, bending from `forward` toward `bend`."""
    points, point, angle = [], base, 0.0
    for length, flexion in zip(lengths, flexions, strict=True):
        angle += flexion
        point = point + length * (np.cos(angle) * forward + np.sin(angle) * bend)
        points.append(point)
    return points


def local_joints(pose: HandPose, scale: float = 1.0) -> np.ndarray:
    """(21, 3) joints of a right hand in its local frame (metres), wrist at the origin."""
    joints = np.zeros((NUM_JOINTS, 3))
    palmar = np.array([0.0, 0.0, 1.0])
    for i, finger in enumerate(LONG_FINGERS):
        spread = SPREAD[finger]
        base = METACARPAL[finger] * np.array([np.sin(spread), np.cos(spread), 0.0])
        direction = spread + pose.mcp_abduction[i]
        forward = np.array([np.sin(direction), np.cos(direction), 0.0])
        flexions = (pose.mcp_flexion[i], pose.pip_flexion[i], pose.dip_flexion[i])
        chain = _chain(base, forward, palmar, PHALANGES[finger], flexions)
        joints[list(FINGER_JOINTS[finger])] = [base, *chain]
    spread, opposition, mcp, ip = pose.thumb
    base = THUMB_BASE * THUMB_BASE_DIRECTION / np.linalg.norm(THUMB_BASE_DIRECTION)
    in_plane = np.array([np.sin(spread), np.cos(spread), 0.0])
    forward = np.cos(opposition) * in_plane + np.sin(opposition) * palmar
    toward_fingers = np.array([-np.cos(spread), np.sin(spread), 0.0])
    bend = 0.6 * toward_fingers + 0.8 * palmar
    bend -= bend.dot(forward) * forward
    bend /= np.linalg.norm(bend)
    chain = _chain(base, forward, bend, PHALANGES["thumb"], (0.0, mcp, ip))
    joints[list(FINGER_JOINTS["thumb"])] = [base, *chain]
    return joints * scale


def mirror_to_left(points: np.ndarray) -> np.ndarray:
    """The mirror image through the camera's y = 0 plane: a right hand becomes a left hand."""
    return np.asarray(points) * np.array([1.0, -1.0, 1.0])


class SmoothSignal:
    """A smooth zero-mean, unit-variance random signal of time: a few sinusoids (0.05-0.6 Hz)."""

    def __init__(self, rng: np.random.Generator, count: int, components: int = 3) -> None:
        self.frequency = rng.uniform(0.05, 0.6, size=(components, count))
        self.phase = rng.uniform(0, 2 * np.pi, size=(components, count))
        weights = rng.uniform(0.3, 1.0, size=(components, count))
        self.amplitude = weights * np.sqrt(2.0 / (weights**2).sum(axis=0))

    def __call__(self, t: float) -> np.ndarray:
        return (self.amplitude * np.sin(2 * np.pi * self.frequency * t + self.phase)).sum(axis=0)


def _within(limits: tuple[float, float], z: np.ndarray) -> np.ndarray:
    """Map unbounded values into the limits smoothly (a logistic squash)."""
    low, high = limits
    return low + (high - low) / (1.0 + np.exp(-z))


class HandMotion:
    """Smooth articulation over a take: a shared grasp signal plus per-finger signals, within limits."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.grasp = SmoothSignal(rng, 1)
        self.fingers = SmoothSignal(rng, 8)
        self.thumb = SmoothSignal(rng, 4)
        self.grasp_bias = rng.normal(*GRASP_BIAS)
        self.finger_bias = rng.normal(0.0, 0.5, size=4)

    def __call__(self, t: float) -> HandPose:
        grasp = GRASP_MOTION * self.grasp(t)[0] + self.grasp_bias
        own = self.fingers(t)
        flex = grasp + self.finger_bias + FINGER_MOTION * own[:4]
        pip = _within(PIP_FLEXION, flex - 0.3)
        thumb_signal = self.thumb(t)
        return HandPose(
            mcp_flexion=_within(MCP_FLEXION, flex),
            mcp_abduction=MCP_ABDUCTION * np.tanh(0.8 * own[4:]),
            pip_flexion=pip,
            dip_flexion=np.clip(DIP_PER_PIP * pip, *DIP_FLEXION),
            thumb=np.array(
                [
                    _within(THUMB_SPREAD, 0.8 * thumb_signal[0]),
                    _within(THUMB_OPPOSITION, 0.8 * thumb_signal[1] + 0.5 * grasp),
                    _within(THUMB_MCP_FLEXION, 0.8 * thumb_signal[2] + 0.5 * grasp),
                    _within(THUMB_IP_FLEXION, 0.8 * thumb_signal[3] + 0.5 * grasp),
                ]
            ),
        )


def subject_scale(rng: np.random.Generator) -> float:
    return float(np.clip(rng.normal(1.0, SCALE_SIGMA), *SCALE_RANGE))


def rotation_from_axes(distal: np.ndarray, palmar_hint: np.ndarray) -> np.ndarray:
    """The rotation taking the local frame to one whose y is `distal` and z is nearest `palmar_hint`."""
    y = distal / np.linalg.norm(distal)
    z = palmar_hint - palmar_hint.dot(y) * y
    z /= np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z], axis=1)


def random_rotation_near(rng: np.random.Generator, base: np.ndarray, sigma: float) -> np.ndarray:
    """`base` turned by a random rotation vector with per-axis standard deviation `sigma` (radians)."""
    return Rotation.from_rotvec(rng.normal(0.0, sigma, size=3)).as_matrix() @ base
