"""Pinhole camera maths and the benchmark's image orientations.

Camera frame: x right, y down, z forward, metres. Pixel centres are at integer coordinates.
The benchmark's virtual camera is projectaria-tools' linear calibration (512, 512, 150), whose
principal point is at (size - 1) / 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from hand_pose_core.errors import InputError

Orientation = Literal["landscape", "portrait"]
ORIENTATIONS: tuple[Orientation, ...] = ("landscape", "portrait")


@dataclass(frozen=True)
class PinholeCamera:
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def linear(cls, width: int, height: int, focal: float) -> PinholeCamera:
        """A camera as projectaria-tools' get_linear_camera_calibration makes it."""
        return cls(focal, focal, (width - 1) / 2, (height - 1) / 2, width, height)

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 intrinsic matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def project(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame points -> (..., 2) pixels; points at z <= 0 give NaN."""
        points = np.asarray(points, dtype=np.float64)
        z = points[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(z > 0, z, np.nan)
            u = self.fx * points[..., 0] / z + self.cx
            v = self.fy * points[..., 1] / z + self.cy
        return np.stack([u, v], axis=-1)

    def unproject(self, pixels: np.ndarray, depth: np.ndarray | float) -> np.ndarray:
        """(..., 2) pixels and depths z -> (..., 3) camera-frame points."""
        pixels = np.asarray(pixels, dtype=np.float64)
        z = np.broadcast_to(np.asarray(depth, dtype=np.float64), pixels.shape[:-1])
        x = (pixels[..., 0] - self.cx) / self.fx * z
        y = (pixels[..., 1] - self.cy) / self.fy * z
        return np.stack([x, y, z], axis=-1)

    def contains(self, pixels: np.ndarray) -> np.ndarray:
        """Whether pixels fall inside the image (pixel centres 0 .. size-1; NaN is outside)."""
        pixels = np.asarray(pixels, dtype=np.float64)
        u, v = pixels[..., 0], pixels[..., 1]
        with np.errstate(invalid="ignore"):
            return (u >= 0) & (u <= self.width - 1) & (v >= 0) & (v <= self.height - 1)

    def check_image(self, image: np.ndarray, where: str) -> None:
        """Raise an InputError naming `where` unless the image has this camera's size."""
        if image.ndim < 2 or image.shape[:2] != (self.height, self.width):
            raise InputError(
                f"{where}: image is {'x'.join(map(str, image.shape[1::-1]))}, "
                f"the camera expects {self.width}x{self.height}"
            )


# The Ego-Exo4D hand benchmark's undistorted camera.
BENCHMARK_CAMERA = PinholeCamera.linear(512, 512, 150.0)

# Landscape -> portrait is a 90 degree clockwise turn of the image; in the camera frame x' = -y, y' = x.
PORTRAIT_FROM_LANDSCAPE = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def _check_orientation(orientation: str) -> None:
    if orientation not in ORIENTATIONS:
        raise InputError(f"orientation {orientation!r}: expected one of {', '.join(ORIENTATIONS)}")


def rotate_image(image: np.ndarray, orientation: Orientation) -> np.ndarray:
    """A landscape (Aria native) image in the given orientation."""
    _check_orientation(orientation)
    return image if orientation == "landscape" else np.ascontiguousarray(np.rot90(image, k=-1))


def rotate_points_2d(points: np.ndarray, height: int, orientation: Orientation) -> np.ndarray:
    """Landscape pixels (..., 2) of an image `height` rows tall, in the given orientation."""
    _check_orientation(orientation)
    points = np.asarray(points, dtype=np.float64)
    if orientation == "landscape":
        return points
    return np.stack([height - 1 - points[..., 1], points[..., 0]], axis=-1)


def rotate_points_3d(points: np.ndarray, orientation: Orientation) -> np.ndarray:
    """Landscape camera-frame points (..., 3) in the given orientation's camera frame."""
    _check_orientation(orientation)
    points = np.asarray(points, dtype=np.float64)
    return points if orientation == "landscape" else points @ PORTRAIT_FROM_LANDSCAPE.T


def unrotate_points_3d(points: np.ndarray, orientation: Orientation) -> np.ndarray:
    """Camera-frame points (..., 3) of the given orientation back in the landscape (sensor) frame."""
    _check_orientation(orientation)
    points = np.asarray(points, dtype=np.float64)
    return points if orientation == "landscape" else points @ PORTRAIT_FROM_LANDSCAPE


def rotate_camera(camera: PinholeCamera, orientation: Orientation) -> PinholeCamera:
    """The pinhole camera that sees a landscape image after rotate_image."""
    _check_orientation(orientation)
    if orientation == "landscape":
        return camera
    return PinholeCamera(
        camera.fy, camera.fx, camera.height - 1 - camera.cy, camera.cx, camera.height, camera.width
    )
