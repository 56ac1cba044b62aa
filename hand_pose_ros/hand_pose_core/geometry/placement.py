"""Metric 3D: place wrist-relative joints in the camera frame from their 2D keypoints.

The 3D models predict joints relative to the wrist; the hand's translation t (the wrist's camera-frame
position) is what makes project(joints + t) land on the 2D keypoints. It is solved by weighted least
squares: a closed-form start from the linear (algebraic) equations
    (x_j + t_x) - a_j (z_j + t_z) = 0,  (y_j + t_y) - b_j (z_j + t_z) = 0,
with (a_j, b_j) the normalised image coordinates of keypoint j, then a few Gauss-Newton steps on the
reprojection error in pixels. Joints without a keypoint get weight 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hand_pose_core.geometry.camera import PinholeCamera

GAUSS_NEWTON_STEPS = 5
MIN_JOINTS = 2  # 4 equations for 3 unknowns
MIN_DEPTH_M = 0.01


@dataclass(frozen=True)
class Placement:
    translation: np.ndarray  # (3,) metres: the wrist in the camera frame
    rms_px: float  # weighted reprojection error after the solve

    def joints(self, relative: np.ndarray) -> np.ndarray:
        """(21, 3) wrist-relative joints -> camera-frame joints."""
        return np.asarray(relative, dtype=np.float64) + self.translation


def _reprojection(
    camera: PinholeCamera, points: np.ndarray, keypoints: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Residuals (J, 2) in pixels and their Jacobians (J, 2, 3) with respect to the translation."""
    x, y, z = points.T
    residual = np.stack([camera.fx * x / z + camera.cx, camera.fy * y / z + camera.cy], axis=1) - keypoints
    jacobian = np.zeros((len(points), 2, 3))
    jacobian[:, 0, 0] = camera.fx / z
    jacobian[:, 0, 2] = -camera.fx * x / z**2
    jacobian[:, 1, 1] = camera.fy / z
    jacobian[:, 1, 2] = -camera.fy * y / z**2
    return residual, jacobian


def solve_translation(
    relative: np.ndarray, keypoints: np.ndarray, weights: np.ndarray, camera: PinholeCamera
) -> Placement | None:
    """The translation that best reprojects `relative` (21, 3) metres onto `keypoints` (21, 2) pixels.

    `weights` (21,) are per-joint confidences (0 for joints without a keypoint; NaN keypoints or weights
    count as 0). None when fewer than two joints carry weight, the camera's numbers are not finite, the
    least squares fail, or the solution puts the hand behind the camera.
    """
    relative = np.asarray(relative, dtype=np.float64)
    keypoints = np.asarray(keypoints, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    finite = np.isfinite(keypoints).all(axis=1) & np.isfinite(relative).all(axis=1) & np.isfinite(weights)
    weights = np.where(finite, weights, 0.0)
    use = weights > 0
    intrinsics = np.array([camera.fx, camera.fy, camera.cx, camera.cy])
    # Nothing that is not finite reaches LAPACK (it can fail to converge on it, or never return).
    if use.sum() < MIN_JOINTS or not np.isfinite(intrinsics).all() or not (camera.fx > 0 and camera.fy > 0):
        return None
    points, pixels, w = relative[use], keypoints[use], weights[use]
    a = (pixels[:, 0] - camera.cx) / camera.fx
    b = (pixels[:, 1] - camera.cy) / camera.fy
    ones, zeros = np.ones_like(a), np.zeros_like(a)
    system = np.concatenate([np.stack([ones, zeros, -a], 1), np.stack([zeros, ones, -b], 1)])
    rhs = np.concatenate([a * points[:, 2] - points[:, 0], b * points[:, 2] - points[:, 1]])
    root_w = np.sqrt(np.concatenate([w, w]))
    system, rhs = system * root_w[:, None], rhs * root_w
    if not (np.isfinite(system).all() and np.isfinite(rhs).all()):
        return None
    try:
        translation = np.linalg.lstsq(system, rhs, rcond=None)[0]
    except np.linalg.LinAlgError:
        return None
    for _ in range(GAUSS_NEWTON_STEPS):
        moved = points + translation
        if (moved[:, 2] < MIN_DEPTH_M).any():
            return None
        residual, jacobian = _reprojection(camera, moved, pixels)
        normal = np.einsum("j,jki,jkl->il", w, jacobian, jacobian)
        gradient = np.einsum("j,jki,jk->i", w, jacobian, residual)
        if not (np.isfinite(normal).all() and np.isfinite(gradient).all()):
            return None
        try:
            step = np.linalg.solve(normal, -gradient)
        except np.linalg.LinAlgError:
            return None
        translation = translation + step
        if np.abs(step).max() < 1e-9:
            break
    moved = points + translation
    if (moved[:, 2] < MIN_DEPTH_M).any():
        return None
    residual, _ = _reprojection(camera, moved, pixels)
    rms = float(np.sqrt((w * (residual**2).sum(axis=1)).sum() / w.sum()))
    return Placement(translation, rms)
