"""A made-up model in MANO's format, of its real sizes and joint tree, for the tests and the benchmark
(MANO's own files are licence-bound and never in the repository): a hand-like skeleton with vertices
about each bone, a joint regressor that averages rings of vertices centred on the joints, skinning to
each bone and its parent, a linear shape space, small random pose blend shapes and a random pose PCA
with decaying spread. Its numbers mean nothing; its layout is MANO's.
"""

from __future__ import annotations

import numpy as np

from hand_pose_core.mano.fitting import FINGER_POSE
from hand_pose_core.mano.model import (
    FINGERTIP_VERTICES,
    MANO_PARENTS,
    NUM_BETAS,
    NUM_FACES,
    NUM_MANO_JOINTS,
    NUM_POSE_FEATURES,
    NUM_VERTICES,
    PARAMETER_SIZE,
    ManoModel,
)

# Right hand, metres: the wrist at the origin, fingers along +x. Finger bases (index, middle, pinky,
# ring, thumb, MANO's order), their directions, and the lengths of each finger's three bones.
_BASES = np.array(
    [[0.09, 0.025, 0.0], [0.095, 0.004, 0.0], [0.08, -0.034, 0.0], [0.09, -0.016, 0.0], [0.03, 0.03, -0.01]]
)
_DIRECTIONS = np.array(
    [[1.0, 0.08, 0.0], [1.0, 0.0, 0.0], [1.0, -0.15, 0.0], [1.0, -0.07, 0.0], [0.6, 0.75, -0.25]]
)
_LENGTHS = np.array(
    [
        [0.04, 0.025, 0.02],
        [0.045, 0.028, 0.022],
        [0.03, 0.02, 0.018],
        [0.042, 0.027, 0.02],
        [0.035, 0.03, 0.025],
    ]
)
# Each finger's last joint, in the fingertips' order (thumb, index, middle, ring, pinky).
_LAST_JOINTS = np.array([15, 3, 6, 12, 9])
_RING = 8  # vertices about each joint whose mean is the joint
POSE_TRAINING_HANDS = 1554  # as many as MANO's hands_coeffs


def _skeleton() -> tuple[np.ndarray, np.ndarray]:
    """(16, 3) rest joints and (16, 3) the end of each joint's bone (a fingertip for the last ones)."""
    joints, ends = np.zeros((NUM_MANO_JOINTS, 3)), np.zeros((NUM_MANO_JOINTS, 3))
    ends[0] = _BASES[1]
    for finger, (base, direction, lengths) in enumerate(zip(_BASES, _DIRECTIONS, _LENGTHS, strict=True)):
        unit = direction / np.linalg.norm(direction)
        along = base + unit * np.concatenate([[0.0], np.cumsum(lengths)])[:, None]
        joints[1 + 3 * finger : 4 + 3 * finger] = along[:3]
        ends[1 + 3 * finger : 4 + 3 * finger] = along[1:]
    return joints, ends


def stand_in_arrays(side: str, seed: int = 0) -> dict[str, np.ndarray | str]:
    """The entries of a MANO model file (the left one mirrors the right in x, as MANO's do), with
    `J_regressor` dense, `kintree_table` and `f` unsigned as the files store them."""
    rng = np.random.default_rng(seed)
    joints, ends = _skeleton()
    owner = np.arange(NUM_VERTICES) % NUM_MANO_JOINTS  # the bone each vertex lies about
    tips = np.array(FINGERTIP_VERTICES[side])
    owner[tips] = _LAST_JOINTS
    vertices = joints[owner] + rng.uniform(0, 1, (NUM_VERTICES, 1)) * (ends - joints)[owner]
    vertices += rng.normal(0, 0.004, vertices.shape)
    regressor = np.zeros((NUM_MANO_JOINTS, NUM_VERTICES))
    offsets = np.concatenate([np.eye(3), -np.eye(3), [[1, 1, 0], [-1, -1, 0]]]) * 0.006
    for joint in range(NUM_MANO_JOINTS):
        ring = np.flatnonzero(owner == joint)[:_RING]
        vertices[ring] = joints[joint] + offsets
        regressor[joint, ring] = 1.0 / _RING
    vertices[tips] = ends[_LAST_JOINTS]
    weights = np.zeros((NUM_VERTICES, NUM_MANO_JOINTS))
    weights[np.arange(NUM_VERTICES), owner] = 0.8
    weights[np.arange(NUM_VERTICES), np.maximum(MANO_PARENTS[owner], 0)] += 0.2
    deformations = rng.normal(0, 0.03, (NUM_BETAS, 3, 3))  # each shape coefficient deforms the hand linearly
    shapedirs = np.einsum("kab,vb->vak", deformations, vertices) + rng.normal(
        0, 0.0005, (NUM_VERTICES, 3, NUM_BETAS)
    )
    components = np.linalg.qr(rng.normal(size=(45, 45)))[0].T
    spread = 0.5 * 0.9 ** np.arange(45)
    arrays = {
        "v_template": vertices,
        "shapedirs": shapedirs,
        "posedirs": rng.normal(0, 0.0003, (NUM_VERTICES, 3, NUM_POSE_FEATURES)),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": np.stack([MANO_PARENTS, np.arange(NUM_MANO_JOINTS)]).astype(np.uint32),
        "f": rng.integers(0, NUM_VERTICES, (NUM_FACES, 3)).astype(np.uint32),
        "hands_components": components,
        "hands_mean": rng.normal(0, 0.15, 45),
        "hands_coeffs": rng.normal(size=(POSE_TRAINING_HANDS, 45)) * spread,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    if side == "left":
        mirror = np.array([-1.0, 1.0, 1.0])
        arrays["v_template"] = arrays["v_template"] * mirror
        arrays["shapedirs"] = arrays["shapedirs"] * mirror[:, None]
        arrays["f"] = arrays["f"][:, ::-1].copy()
    return arrays


def sample_parameters(model: ManoModel, rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 61) hands drawn from the model's own priors, about half a metre in front of a camera."""
    parameters = np.zeros((count, PARAMETER_SIZE))
    parameters[:, :3] = rng.normal(0, 1.0, (count, 3))
    coefficients = rng.normal(size=(count, 45))
    parameters[:, FINGER_POSE] = model.hands_mean + np.linalg.solve(model.pose_whitening, coefficients.T).T
    parameters[:, FINGER_POSE.stop : -3] = rng.normal(size=(count, NUM_BETAS))
    parameters[:, -3:] = rng.normal([0.0, 0.05, 0.45], 0.05, (count, 3))
    return parameters
