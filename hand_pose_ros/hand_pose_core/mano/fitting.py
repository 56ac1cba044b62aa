"""MANO fitted to the pipeline's hands: each hand's pose, shape, global rotation and translation, so that
MANO's 21 joints meet its camera-frame joints (and, given the camera, project onto its 2D keypoints).

Levenberg-Marquardt on both hands of a frame in one batch, each hand with its own damping. Residuals:
joint distances over `JOINT_SIGMA_M`, keypoint distances over `KEYPOINT_SIGMA_PX`, and two priors for
what joints alone leave open (a finger's twist about its bones, shape traded against pose): the finger
pose as PCA coefficients of MANO's own training poses (`hands_components`, `hands_coeffs`) over their
spread, and the shape coefficients, which MANO scales to unit variance. The data terms' Jacobian is by
forward differences, every hand's 61 perturbations posed in one batched call of the joints-only forward
model; the priors are linear. A hand seen in the previous frame starts from that frame's parameters and
takes `WARM_STEPS`; a new one starts from MANO's mean pose turned onto its joints (Kabsch), and its
frame takes `COLD_STEPS` (for the whole batch). Error and speed: docs/mano.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from hand_pose_core.geometry.camera import PinholeCamera, Turn
from hand_pose_core.mano.model import (
    NUM_BETAS,
    PARAMETER_SIZE,
    POSE_SIZE,
    ManoModel,
    RestShape,
    egoexo_joints,
    load_mano,
    pose,
)

JOINT_SIGMA_M = 0.005  # a joint this far from its target costs as much as one standard deviation of prior
KEYPOINT_SIGMA_PX = 5.0
POSE_PRIOR_WEIGHT = 0.02
SHAPE_PRIOR_WEIGHT = 0.02
COLD_STEPS, WARM_STEPS = 12, 3
DIFFERENCE_STEP = 1e-6  # forward differences, in radians, shape units and metres
INITIAL_DAMPING = 1e-3
FINGER_POSE = slice(3, POSE_SIZE)
BETAS = slice(POSE_SIZE, POSE_SIZE + NUM_BETAS)


@dataclass
class ManoFit:
    """One hand's fitted MANO: its parameters and, in the same frame, its mesh and 21 joints."""

    side: str
    parameters: np.ndarray  # (61,): global rotation, 15 finger joints (axis-angle), betas, translation
    pivot: np.ndarray  # (3,) the shaped wrist joint, about which the global rotation turns
    vertices: np.ndarray  # (778, 3) metres
    faces: np.ndarray  # (1538, 3) vertex indices
    joints: np.ndarray  # (21, 3) Ego-Exo4D order
    error_m: float  # mean distance of the joints from those fitted to

    @property
    def global_orient(self) -> np.ndarray:
        return self.parameters[:3]

    @property
    def hand_pose(self) -> np.ndarray:
        return self.parameters[FINGER_POSE]

    @property
    def betas(self) -> np.ndarray:
        return self.parameters[BETAS]

    @property
    def transl(self) -> np.ndarray:
        return self.parameters[-3:]

    def turned(self, turn: Turn) -> ManoFit:
        """The same hand in the turn's target frame: the global rotation and translation change with the
        mesh and joints (the translation so that the wrist, not the origin, stays the pivot)."""
        if turn.identity:
            return self
        rotation = turn.points_3d(np.eye(3)).T
        parameters = self.parameters.copy()
        parameters[:3] = Rotation.from_matrix(
            rotation @ Rotation.from_rotvec(self.global_orient).as_matrix()
        ).as_rotvec()
        parameters[-3:] = rotation @ (self.pivot + self.transl) - self.pivot
        return ManoFit(
            self.side, parameters, self.pivot, turn.points_3d(self.vertices), self.faces,
            turn.points_3d(self.joints), self.error_m,
        )  # fmt: skip

    def to_dict(self) -> dict:
        """The parameters as JSON, named as smplx's MANO layer takes them (flat_hand_mean, no PCA)."""
        return {
            "global_orient": _rounded(self.global_orient),
            "hand_pose": _rounded(self.hand_pose),
            "betas": _rounded(self.betas),
            "transl": _rounded(self.transl),
            "joint_error_m": round(self.error_m, 6),
        }


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]


class ManoFitter:
    """Fits MANO to each frame's hands, warm-started from the previous frame's fit of the same side."""

    def __init__(self, models: dict[str, ManoModel]) -> None:
        self.models = models
        self.sides = tuple(models)
        tips = [vars(models[side].tips()).values() for side in self.sides]
        self._tips = RestShape(*(np.stack(arrays) for arrays in zip(*tips, strict=True)))
        # The priors are linear: residuals = jacobian @ parameters - offset, per side.
        self._prior_jacobian = np.zeros((len(self.sides), 45 + NUM_BETAS, PARAMETER_SIZE))
        for jacobian, side in zip(self._prior_jacobian, self.sides, strict=True):
            jacobian[:45, FINGER_POSE] = np.sqrt(POSE_PRIOR_WEIGHT) * models[side].pose_whitening
            jacobian[45:, BETAS] = np.sqrt(SHAPE_PRIOR_WEIGHT) * np.eye(NUM_BETAS)
        means = np.stack([models[side].hands_mean for side in self.sides])
        self._prior_offset = np.einsum("smp,sp->sm", self._prior_jacobian[:, :, FINGER_POSE], means)
        self._mean_joints = {
            side: model.forward(self._mean_parameters(side))[1] for side, model in models.items()
        }
        self.previous: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, folder: Path) -> ManoFitter:
        """From a folder holding MANO_RIGHT.pkl and MANO_LEFT.pkl."""
        return cls(load_mano(folder))

    def reset(self) -> None:
        """Forget the previous frame (a new recording, another camera): every hand starts cold."""
        self.previous.clear()

    def fit(
        self,
        sides: list[str],
        joints: np.ndarray,
        keypoints: np.ndarray | None = None,
        camera: PinholeCamera | None = None,
    ) -> list[ManoFit]:
        """MANO for each hand: `joints` (B, 21, 3) camera-frame metres in Ego-Exo4D order, and optionally
        `keypoints` (B, 21, 2) pixels of `camera` (NaN where unknown)."""
        joints = np.asarray(joints, np.float64)
        if keypoints is not None and camera is None:
            raise ValueError("keypoints need the camera they are pixels of")
        index = np.array([self.sides.index(side) for side in sides])
        warm = all(side in self.previous for side in sides)
        start = np.stack(
            [
                self.previous[side] if side in self.previous else self._aligned_start(side, target)
                for side, target in zip(sides, joints, strict=True)
            ]
        )
        problem = _Problem(
            self._tips.take(index[:, None]), joints, keypoints, camera, self._prior_jacobian[index],
            self._prior_offset[index],
        )  # fmt: skip
        solved = problem.solve(start, WARM_STEPS if warm else COLD_STEPS)
        self.previous = dict(zip(sides, solved, strict=True))
        return [self._result(side, x, target) for side, x, target in zip(sides, solved, joints, strict=True)]

    def _mean_parameters(self, side: str) -> np.ndarray:
        parameters = np.zeros(PARAMETER_SIZE)
        parameters[FINGER_POSE] = self.models[side].hands_mean
        return parameters

    def _aligned_start(self, side: str, target: np.ndarray) -> np.ndarray:
        """MANO's mean hand turned and moved onto the target joints (least squares over all 21)."""
        source = self._mean_joints[side]
        rotation, _ = Rotation.align_vectors(target - target.mean(axis=0), source - source.mean(axis=0))
        matrix = rotation.as_matrix()
        wrist = self.models[side].rest.joints[0]
        parameters = self._mean_parameters(side)
        parameters[:3] = rotation.as_rotvec()
        parameters[-3:] = target.mean(axis=0) - matrix @ source.mean(axis=0) + matrix @ wrist - wrist
        return parameters

    def _result(self, side: str, parameters: np.ndarray, target: np.ndarray) -> ManoFit:
        model = self.models[side]
        vertices, joints = model.forward(parameters)
        pivot = model.rest.joints[0] + model.rest.joint_shapes[0] @ parameters[BETAS]
        error = float(np.linalg.norm(joints - target, axis=-1).mean())
        return ManoFit(side, parameters, pivot, vertices, model.faces, joints, error)


class _Problem:
    """One frame's least-squares problem: the hands' targets and the residuals that measure a fit."""

    def __init__(
        self,
        tips: RestShape,
        joints: np.ndarray,
        keypoints: np.ndarray | None,
        camera: PinholeCamera | None,
        prior_jacobian: np.ndarray,
        prior_offset: np.ndarray,
    ) -> None:
        self.tips, self.joints, self.camera = tips, joints, camera
        self.keypoints = None if keypoints is None else np.asarray(keypoints, np.float64)
        self.prior_jacobian, self.prior_offset = prior_jacobian, prior_offset

    def data(self, parameters: np.ndarray) -> np.ndarray:
        """(B, K, 61) parameter sets -> (B, K, M) joint (and keypoint) residuals."""
        mano_joints, tips = pose(self.tips, parameters)
        fitted = egoexo_joints(mano_joints, tips)
        batch, sets = parameters.shape[:2]
        residuals = [((fitted - self.joints[:, None]) / JOINT_SIGMA_M).reshape(batch, sets, -1)]
        if self.keypoints is not None:
            missed = (self.camera.project(fitted) - self.keypoints[:, None]) / KEYPOINT_SIGMA_PX
            residuals.append(np.nan_to_num(missed).reshape(batch, sets, -1))  # unknown keypoints count 0
        return np.concatenate(residuals, axis=-1)

    def prior(self, parameters: np.ndarray) -> np.ndarray:
        return np.einsum("bmp,bp->bm", self.prior_jacobian, parameters) - self.prior_offset

    def cost(self, parameters: np.ndarray) -> np.ndarray:
        return (self.data(parameters[:, None])[:, 0] ** 2).sum(axis=-1) + (self.prior(parameters) ** 2).sum(
            -1
        )

    def solve(self, parameters: np.ndarray, steps: int) -> np.ndarray:
        """Levenberg-Marquardt from `parameters` (B, 61): each hand keeps a step only if it lowers its
        cost, and damps more after a refused one."""
        perturbations = np.concatenate(
            [np.zeros((1, PARAMETER_SIZE)), DIFFERENCE_STEP * np.eye(PARAMETER_SIZE)]
        )
        damping = np.full(len(parameters), INITIAL_DAMPING)
        cost = self.cost(parameters)
        for _ in range(steps):
            data = self.data(parameters[:, None] + perturbations)
            jacobian = np.concatenate(
                [((data[:, 1:] - data[:, :1]) / DIFFERENCE_STEP).transpose(0, 2, 1), self.prior_jacobian],
                axis=1,
            )
            residuals = np.concatenate([data[:, 0], self.prior(parameters)], axis=1)
            # einsum, not matmul: OpenBLAS's threads made this product 3x slower with the cores busy
            normal = np.einsum("bmp,bmq->bpq", jacobian, jacobian)
            gradient = np.einsum("bmp,bm->bp", jacobian, residuals)
            diagonal = np.einsum("bii->bi", normal)
            damped = normal + damping[:, None, None] * (np.eye(PARAMETER_SIZE) * diagonal[:, None, :])
            candidate = parameters - np.linalg.solve(damped, gradient[..., None])[..., 0]
            candidate_cost = self.cost(candidate)
            better = candidate_cost < cost
            parameters = np.where(better[:, None], candidate, parameters)
            cost = np.where(better, candidate_cost, cost)
            damping = np.where(better, damping / 3.0, damping * 4.0)
        return parameters
