"""The 21-joint hand skeleton in Ego-Exo4D order, the same for left and right hands.

0 wrist; 1-4 thumb, 5-8 index, 9-12 middle, 13-16 ring, 17-20 pinky (base to tip in each finger).
"""

from __future__ import annotations

import numpy as np

NUM_JOINTS = 21
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
# Joint indices of each finger, base to tip.
FINGER_JOINTS = {name: tuple(range(1 + 4 * i, 5 + 4 * i)) for i, name in enumerate(FINGERS)}
JOINT_NAMES = ("wrist", *(f"{name}_{k}" for name in FINGERS for k in range(1, 5)))
FINGERTIPS = tuple(joints[-1] for joints in FINGER_JOINTS.values())

# Parent of each joint (the wrist has none): bones are (PARENTS[j], j) for j >= 1.
PARENTS = np.array([-1] + [0 if (j - 1) % 4 == 0 else j - 1 for j in range(1, NUM_JOINTS)])
BONES = tuple((int(PARENTS[j]), j) for j in range(1, NUM_JOINTS))
# Bones from the wrist to the base of the four long fingers (the release's 60-120 mm rule).
PALM_BONES = tuple((0, FINGER_JOINTS[name][0]) for name in FINGERS[1:])

# Release order of hands in files and in the evaluation: right first, then left.
HAND_SIDES = ("right", "left")

# RGB in [0, 255]; the wrist takes the palm colour.
FINGER_COLOURS = {
    "thumb": (230, 80, 60),
    "index": (240, 180, 40),
    "middle": (70, 190, 80),
    "ring": (60, 140, 230),
    "pinky": (170, 90, 210),
}
PALM_COLOUR = (200, 200, 200)
# Left and right drawn apart in 3D views and markers.
SIDE_COLOURS = {"right": (235, 90, 60), "left": (50, 130, 235)}


def finger_of(joint: int) -> str | None:
    """The finger a joint belongs to, None for the wrist."""
    return None if joint == 0 else FINGERS[(joint - 1) // 4]


def joint_colour(joint: int) -> tuple[int, int, int]:
    finger = finger_of(joint)
    return PALM_COLOUR if finger is None else FINGER_COLOURS[finger]


def bone_colour(bone: tuple[int, int]) -> tuple[int, int, int]:
    """A bone takes the colour of the finger of its child joint."""
    return joint_colour(bone[1])


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Lengths of the 20 bones of (..., 21, 3) joints, in the joints' units."""
    joints = np.asarray(joints)
    return np.linalg.norm(joints[..., 1:, :] - joints[..., PARENTS[1:], :], axis=-1)
