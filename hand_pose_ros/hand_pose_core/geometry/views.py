"""Several calibrated cameras seeing one hand: where each view is, which keypoints agree across views, and
joints in metres from them.

A `View` is an undistorted pinhole camera with its pose in the reference camera's frame (Aria's RGB
camera): `rotation` turns the view's axes into the reference's and `translation` is the view's centre
there, so a reference-frame point X is seen at X_view = rotation.T @ (X - translation).

Triangulation is the linear (DLT) solution in normalised image coordinates, one joint at a time with each
view's row pair weighted by its keypoint confidence; a view whose reprojection error is past the outlier
threshold is dropped and the joint solved again while two views remain. `fit_shape` then puts the 3D
stage's wrist-relative hand through the triangulated joints (rotation, translation, scale and per-joint
offsets, in closed form), so bones keep plausible lengths where triangulation is noisy or missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hand_pose_core.geometry.camera import PinholeCamera
from hand_pose_core.geometry.skeleton import NUM_JOINTS

# A triangulated joint whose reprojection is further than this from a view's keypoint drops that view.
OUTLIER_PX = 12.0
MIN_DEPTH_M = 0.05
# Rays that meet at a smaller angle fix a joint's depth too loosely to use (Aria's RGB and left SLAM
# cameras are 1.3 cm apart: about 2 degrees at arm's length; the RGB and right SLAM cameras, 13 cm: 18).
MIN_PARALLAX_DEG = 5.0
# fit_shape: how far the hand's scale may move from the 3D stage's (people's hands differ by about this).
SCALE_RANGE = (0.8, 1.25)
# fit_shape: the weight of the shape's offsets against a triangulated joint of confidence 1. Chosen on
# synthetic takes (docs/multiview.md): camera-frame MPJPE of the hands two views saw was 17.2 mm at 0.1,
# 13.5 at 1 and 12.8 at 3 (triangulated joints are noisy in depth); 1 leans less on one 3D model's shapes.
SHAPE_WEIGHT = 1.0


@dataclass(frozen=True)
class View:
    name: str
    camera: PinholeCamera
    rotation: np.ndarray  # (3, 3): the view's axes in the reference frame
    translation: np.ndarray  # (3,): the view's centre in the reference frame, metres

    @classmethod
    def reference(cls, name: str, camera: PinholeCamera) -> View:
        return cls(name, camera, np.eye(3), np.zeros(3))

    def to_view(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) reference-frame points in this view's frame (NaN points, unknown joints, stay NaN)."""
        with np.errstate(invalid="ignore"):
            return (np.asarray(points, np.float64) - self.translation) @ self.rotation

    def from_view(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) points of this view's frame in the reference frame."""
        return np.asarray(points, np.float64) @ self.rotation.T + self.translation

    def project(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) reference-frame points -> (..., 2) pixels of this view (NaN behind it)."""
        return self.camera.project(self.to_view(points))

    def normalised(self, pixels: np.ndarray) -> np.ndarray:
        """(..., 2) pixels -> (..., 2) normalised image coordinates (x/z, y/z in the view's frame)."""
        pixels = np.asarray(pixels, np.float64)
        camera = self.camera
        return np.stack(
            [(pixels[..., 0] - camera.cx) / camera.fx, (pixels[..., 1] - camera.cy) / camera.fy], -1
        )

    def projection(self) -> np.ndarray:
        """The (3, 4) matrix taking reference-frame points to this view's normalised coordinates."""
        return np.concatenate([self.rotation.T, -(self.rotation.T @ self.translation)[:, None]], axis=1)


def fundamental(a: View, b: View) -> np.ndarray:
    """F with b_pixel^T F a_pixel = 0 for the two views of one point."""
    rotation = b.rotation.T @ a.rotation  # a's axes in b's frame
    baseline = b.rotation.T @ (a.translation - b.translation)  # a's centre in b's frame
    skew = np.array(
        [[0.0, -baseline[2], baseline[1]], [baseline[2], 0.0, -baseline[0]], [-baseline[1], baseline[0], 0.0]]
    )
    essential = skew @ rotation
    return np.linalg.inv(b.camera.matrix).T @ essential @ np.linalg.inv(a.camera.matrix)


def epipolar_distance(a: View, keypoints_a: np.ndarray, b: View, keypoints_b: np.ndarray) -> float:
    """The median over joints known in both views of the symmetric distance (pixels) of each keypoint to
    the other's epipolar line: small when the two views see the same hand. Inf with fewer than 3 joints."""
    pa = np.concatenate([np.asarray(keypoints_a, np.float64), np.ones((NUM_JOINTS, 1))], axis=1)
    pb = np.concatenate([np.asarray(keypoints_b, np.float64), np.ones((NUM_JOINTS, 1))], axis=1)
    known = np.isfinite(pa).all(axis=1) & np.isfinite(pb).all(axis=1)
    if known.sum() < 3:
        return float("inf")
    f = fundamental(a, b)
    lines_b, lines_a = pa[known] @ f.T, pb[known] @ f
    algebraic = np.abs((pb[known] * lines_b).sum(axis=1))
    distance = algebraic / np.hypot(lines_b[:, 0], lines_b[:, 1]) + algebraic / np.hypot(
        lines_a[:, 0], lines_a[:, 1]
    )
    return float(np.median(distance / 2))


@dataclass(frozen=True)
class Triangulation:
    joints: np.ndarray  # (21, 3) reference frame, metres; NaN where fewer than two views agree
    used: np.ndarray  # (V, 21) bool: the views each joint was solved from
    weights: np.ndarray  # (21,) the joint's confidence: the mean weight of the views used, 0 if unsolved
    errors: np.ndarray  # (V, 21) reprojection error in pixels of each joint in each view (NaN: unknown)


def _solve(projections: np.ndarray, points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted DLT for every joint at once: projections (V, 3, 4), normalised points (V, J, 2), weights
    (V, J) -> (J, 3)."""
    rows = np.concatenate(
        [
            points[..., 0, None] * projections[:, None, 2] - projections[:, None, 0],
            points[..., 1, None] * projections[:, None, 2] - projections[:, None, 1],
        ],
        axis=0,
    )  # (2V, J, 4)
    rows = rows * np.concatenate([weights, weights])[..., None]
    _, _, vt = np.linalg.svd(np.nan_to_num(rows.transpose(1, 0, 2)))
    homogeneous = vt[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return homogeneous[:, :3] / homogeneous[:, 3:]


def _parallax_deg(views: list[View], joints: np.ndarray, used: np.ndarray) -> np.ndarray:
    """(21,) the widest angle, in degrees, between the rays from the used views' centres to each joint."""
    rays = np.stack([joints - view.translation for view in views])  # (V, 21, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
        cosines = np.einsum("ajk,bjk->abj", rays, rays)
    pairs = used[:, None] & used[None, :]
    return np.degrees(
        np.arccos(np.clip(np.where(pairs, np.nan_to_num(cosines, nan=1.0), 1.0), -1, 1).min(axis=(0, 1)))
    )


def triangulate(
    views: list[View], keypoints: np.ndarray, weights: np.ndarray, outlier_px: float = OUTLIER_PX
) -> Triangulation:
    """Joints from the keypoints (V, 21, 2) pixels of the views, with per-view, per-joint confidences
    (V, 21) (0 or a NaN keypoint: not seen). Views are dropped joint by joint, the worst first, while a
    joint reprojects further than `outlier_px` from a keypoint and more than two views remain; a joint
    whose last two views still disagree, that lands behind a view, or whose rays meet at less than
    MIN_PARALLAX_DEG is left unsolved."""
    keypoints = np.asarray(keypoints, np.float64)
    weights = np.where(
        np.isfinite(keypoints).all(axis=2), np.nan_to_num(np.asarray(weights, np.float64)), 0.0
    )
    used = weights > 0
    projections = np.stack([view.projection() for view in views])
    points = np.stack([view.normalised(k) for view, k in zip(views, keypoints, strict=True)])
    while True:
        joints = _solve(projections, points, np.where(used, weights, 0.0))
        errors = np.stack(
            [
                np.linalg.norm(view.project(joints) - k, axis=-1)
                for view, k in zip(views, keypoints, strict=True)
            ]
        )
        depths = np.stack([view.to_view(joints)[:, 2] for view in views])
        bad = used & ~((errors <= outlier_px) & (depths > MIN_DEPTH_M))
        droppable = bad.any(axis=0) & (used.sum(axis=0) > 2)
        if not droppable.any():
            break
        worst = np.argmax(np.where(used, np.nan_to_num(errors, nan=np.inf), -1.0), axis=0)
        used[worst[droppable], np.flatnonzero(droppable)] = False
    solved = (used.sum(axis=0) >= 2) & ~bad.any(axis=0) & np.isfinite(joints).all(axis=1)
    solved &= _parallax_deg(views, joints, used) >= MIN_PARALLAX_DEG
    used &= solved
    joint_weights = np.where(solved, (weights * used).sum(axis=0) / np.maximum(used.sum(axis=0), 1), 0.0)
    return Triangulation(np.where(solved[:, None], joints, np.nan), used, joint_weights, errors)


def fit_shape(
    relative: np.ndarray, triangulated: np.ndarray, weights: np.ndarray, shape_weight: float = SHAPE_WEIGHT
) -> np.ndarray | None:
    """Camera-frame joints (21, 3) from a wrist-relative hand (21, 3) and triangulated joints (21, 3)
    with confidences (21,): s R r_j + t + d_j minimising
        sum_j w_j |X_j - s R r_j - t - d_j|^2 + shape_weight * sum_j |d_j|^2
    over the scale s (kept within SCALE_RANGE), the rotation R (the 3D stage's orientation is among its
    larger errors), the translation t and the offsets d_j. For fixed s, R and t each d_j is
    w_j / (w_j + shape_weight) of joint j's residual, which leaves a weighted Procrustes problem
    (Umeyama's) for s, R and t. None with fewer than three triangulated joints."""
    relative = np.asarray(relative, np.float64)
    triangulated = np.asarray(triangulated, np.float64)
    weights = np.where(np.isfinite(triangulated).all(axis=1), np.nan_to_num(weights), 0.0)
    if (weights > 0).sum() < 3 or not np.isfinite(relative).all():
        return None
    target = np.nan_to_num(triangulated)
    effective = weights * shape_weight / (weights + shape_weight)
    total = effective.sum()
    mean_r = (effective[:, None] * relative).sum(axis=0) / total
    mean_x = (effective[:, None] * target).sum(axis=0) / total
    centred_r, centred_x = relative - mean_r, target - mean_x
    # Umeyama: the rotation from the SVD of the weighted cross-covariance, kept proper (no reflection)
    u, singular, vt = np.linalg.svd((effective[:, None] * centred_x).T @ centred_r)
    sign = np.ones(3)
    sign[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = u @ np.diag(sign) @ vt
    spread = (effective * (centred_r**2).sum(axis=1)).sum()
    scale = float(np.clip((singular * sign).sum() / spread if spread > 0 else 1.0, *SCALE_RANGE))
    shaped = scale * relative @ rotation.T + (mean_x - scale * rotation @ mean_r)
    offsets = (weights / (weights + shape_weight))[:, None] * (target - shaped)
    return shaped + offsets
