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


@dataclass(frozen=True)
class Turn:
    """A frame seen in another orientation: its image, pixels, camera-frame points and camera.

    Landscape is Aria's RGB sensor as it records (the world turned on its side; the benchmark's default),
    portrait is upright. Landscape -> portrait turns the image 90 degrees clockwise: pixels map as
    x' = H - 1 - y, y' = x, and camera-frame points as x' = -y, y' = x, z' = z. Portrait -> landscape is
    the inverse; a turn between equal orientations changes nothing.
    """

    source: Orientation
    target: Orientation

    def __post_init__(self) -> None:
        for orientation in (self.source, self.target):
            if orientation not in ORIENTATIONS:
                raise InputError(f"orientation {orientation!r}: expected one of {', '.join(ORIENTATIONS)}")

    @property
    def identity(self) -> bool:
        return self.source == self.target

    @property
    def inverse(self) -> Turn:
        return Turn(self.target, self.source)

    @property
    def _clockwise(self) -> bool:
        return self.target == "portrait"

    @property
    def quarter_turns(self) -> int:
        """The image's turn as `np.rot90`'s (and `torch.rot90`'s) k: 0, -1 (clockwise) or 1."""
        return 0 if self.identity else -1 if self._clockwise else 1

    def image(self, image: np.ndarray) -> np.ndarray:
        """The image (H, W) or (H, W, C) in the target orientation."""
        if self.identity:
            return image
        return np.ascontiguousarray(np.rot90(image, k=self.quarter_turns))

    def points_2d(self, points: np.ndarray, source_width: int, source_height: int) -> np.ndarray:
        """Pixels (..., 2) of a `source_width` x `source_height` image of the source orientation, in the
        target orientation's image."""
        points = np.asarray(points, dtype=np.float64)
        if self.identity:
            return points
        x, y = points[..., 0], points[..., 1]
        if self._clockwise:
            return np.stack([source_height - 1 - y, x], axis=-1)
        return np.stack([y, source_width - 1 - x], axis=-1)

    def points_3d(self, points: np.ndarray) -> np.ndarray:
        """Camera-frame points (..., 3) of the source orientation in the target orientation's frame."""
        points = np.asarray(points, dtype=np.float64)
        if self.identity:
            return points
        return points @ (PORTRAIT_FROM_LANDSCAPE.T if self._clockwise else PORTRAIT_FROM_LANDSCAPE)

    def camera(self, camera: PinholeCamera) -> PinholeCamera:
        """The pinhole camera that sees the turned image."""
        if self.identity:
            return camera
        if self._clockwise:
            return PinholeCamera(
                camera.fy, camera.fx, camera.height - 1 - camera.cy, camera.cx, camera.height, camera.width
            )
        return PinholeCamera(
            camera.fy, camera.fx, camera.cy, camera.width - 1 - camera.cx, camera.height, camera.width
        )
