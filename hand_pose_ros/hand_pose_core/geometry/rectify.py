"""Raw frames of a calibrated camera made pinhole, as image_proc rectifies them: the pipeline assumes one."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import PinholeCamera

# sensor_msgs/distortion_models -> the numbers of coefficients OpenCV takes for it. image_geometry hands
# plumb_bob and rational_polynomial alike to cv::initUndistortRectifyMap, which reads 4, 5, 8, 12 or 14.
COEFFICIENT_COUNTS = {
    "plumb_bob": (4, 5, 8, 12, 14),
    "rational_polynomial": (4, 5, 8, 12, 14),
    "equidistant": (4,),
}

# How close R must be to the identity and P's left 3x3 to K for the raw image to count as rectified
# (about a thousandth of a pixel over the image).
ROTATION_TOLERANCE = 1e-6
PROJECTION_TOLERANCE_PX = 1e-3


@dataclass(frozen=True)
class CameraCalibration:
    """The numbers of a sensor_msgs/CameraInfo (`hand_pose_core.bags.messages.calibration_from_info` reads
    them), checked. Equal calibrations are equal values: the key that says when to rebuild the maps.

    `k` and `r` are 3x3 and `p` 3x4, row-major, as in the message; an all-zero R counts as the identity
    and an all-zero P as [K | 0] (drivers that leave them unset).
    """

    width: int
    height: int
    distortion_model: str
    d: tuple[float, ...]
    k: tuple[float, ...]
    r: tuple[float, ...]
    p: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"camera_info of size {self.width}x{self.height}")
        for name, count in (("k", 9), ("r", 9), ("p", 12)):
            if len(getattr(self, name)) != count:
                numbers = len(getattr(self, name))
                raise InputError(f"camera_info {name.upper()} has {numbers} numbers, not {count}")
        for name in ("d", "k", "r", "p"):
            if not np.isfinite(getattr(self, name)).all():
                raise InputError(f"camera_info {name.upper()} has non-finite numbers: {getattr(self, name)}")
        if not any(self.k) and not any(self.p):
            raise InputError("camera_info without focal lengths (K and P are zero)")
        source = "P" if any(self.p) else "K"
        if not (self.camera.fx > 0 and self.camera.fy > 0):
            raise InputError(f"camera_info {source} has focal lengths {self.camera.fx}, {self.camera.fy}")
        camera = self.camera
        if not (0 <= camera.cx <= self.width and 0 <= camera.cy <= self.height):
            raise InputError(
                f"camera_info {source} has its principal point ({camera.cx}, {camera.cy}) outside the "
                f"{self.width}x{self.height} image"
            )
        if not self.rectified and not (self.k[0] > 0 and self.k[4] > 0):
            raise InputError(f"camera_info K has focal lengths {self.k[0]}, {self.k[4]}")

    @property
    def intrinsics(self) -> np.ndarray:
        """K, the raw image's 3x3 camera matrix."""
        return np.reshape(self.k, (3, 3))

    @property
    def rotation(self) -> np.ndarray:
        """R, rectified camera frame <- raw camera frame (the identity for a monocular camera)."""
        return np.reshape(self.r, (3, 3)) if any(self.r) else np.eye(3)

    @property
    def projection(self) -> np.ndarray:
        """P, the rectified image's 3x4 projection matrix."""
        if any(self.p):
            return np.reshape(self.p, (3, 4))
        return np.hstack([self.intrinsics, np.zeros((3, 1))])

    @property
    def camera(self) -> PinholeCamera:
        """The pinhole camera of the rectified image, from P as image_proc's; 3D points are in the rectified
        frame (`rotation` times the raw camera frame). P's fourth column (a stereo baseline) is not used."""
        p = self.projection.tolist()
        return PinholeCamera(p[0][0], p[1][1], p[0][2], p[1][2], self.width, self.height)

    @property
    def rectified(self) -> bool:
        """Whether raw images are already the pinhole images P describes: no distortion, R the identity
        and P's left 3x3 K."""
        return (
            not any(self.d)
            and np.allclose(self.rotation, np.eye(3), rtol=0, atol=ROTATION_TOLERANCE)
            and np.allclose(self.projection[:, :3], self.intrinsics, rtol=0, atol=PROJECTION_TOLERANCE_PX)
        )


class Rectifier:
    """Raw frames of one calibration -> the images `camera` describes (image_proc's image_rect).

    OpenCV's maps are built once, here (tens of milliseconds for a megapixel camera); each frame is then
    one cv2.remap, bilinear, black outside the raw image. An already rectified camera needs no maps.
    """

    def __init__(self, calibration: CameraCalibration) -> None:
        self.calibration = calibration
        self.camera = calibration.camera
        self.maps = None if calibration.rectified else _rectify_maps(calibration)

    def rectify(self, image: np.ndarray) -> np.ndarray:
        """A raw (H, W) or (H, W, C) frame rectified; the same array, untouched, when no maps are needed.
        InputError when the frame is not the calibration's size."""
        self.camera.check_image(image, "raw image")
        if self.maps is None:
            return image
        return cv2.remap(image, *self.maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def rectifier_for(calibration: CameraCalibration, current: Rectifier | None) -> Rectifier:
    """`current` while its calibration is unchanged (camera_info repeats with every frame), else a new
    Rectifier; InputError for a distortion model or number of coefficients OpenCV does not take."""
    if current is not None and current.calibration == calibration:
        return current
    return Rectifier(calibration)


def _rectify_maps(calibration: CameraCalibration) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's maps (fixed-point CV_16SC2, as image_geometry builds them) from rectified to raw pixels."""
    model, coefficients = calibration.distortion_model, np.array(calibration.d)
    if any(coefficients) and model not in COEFFICIENT_COUNTS:
        raise InputError(
            f"camera_info distortion_model {model!r} not supported "
            f"(expected one of {', '.join(COEFFICIENT_COUNTS)})"
        )
    if any(coefficients) and len(coefficients) not in COEFFICIENT_COUNTS[model]:
        expected = " or ".join(map(str, COEFFICIENT_COUNTS[model]))
        raise InputError(f"camera_info {model} D has {len(coefficients)} coefficients, expected {expected}")
    arguments = (
        calibration.intrinsics,
        coefficients if any(coefficients) else None,
        calibration.rotation,
        calibration.projection[:, :3],
        (calibration.width, calibration.height),
        cv2.CV_16SC2,
    )
    if model == "equidistant" and any(coefficients):
        return cv2.fisheye.initUndistortRectifyMap(*arguments)
    return cv2.initUndistortRectifyMap(*arguments)
