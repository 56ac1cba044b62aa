"""The contents of ROS messages without ROS: image buffers, compressed images, camera calibrations, stamps.

One implementation for the node (rclpy messages) and the bag tools (rosbags messages), which have the
same fields. Images: `encoding`, `height`, `width`, `step` and bytes <-> numpy; colour comes out as RGB,
grey as (H, W), both uint8; rows may be padded (`step` > width x pixel size).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import cv2
import numpy as np

from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import PinholeCamera
from hand_pose_core.geometry.rectify import CameraCalibration

NANOSECONDS = 1_000_000_000


def eight_bit(pixels: np.ndarray) -> np.ndarray:
    """16-bit pixels (either byte order) as uint8, scaled by 255 / 65535 and rounded; uint8 as they are.

    cv_bridge's 16 -> 8 bit conversion (the high byte, within one level): a fixed scale, so full-range
    16-bit grey maps onto full-range 8-bit and brightness does not flicker from frame to frame as scaling
    by each frame's maximum would. A sensor that fills only the low 10 or 12 bits comes out dark; its
    driver should publish mono8 instead.
    """
    if pixels.dtype.itemsize == 2:
        return cv2.convertScaleAbs(pixels.astype(np.uint16, copy=False), alpha=255 / 65535)
    return pixels


def _converted(code: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda pixels: cv2.cvtColor(pixels, code)


def _first_channel(pixels: np.ndarray) -> np.ndarray:
    return eight_bit(pixels[:, :, 0]) if pixels.dtype.itemsize == 2 else pixels[:, :, 0].copy()


# encoding -> (channels, element type, conversion of the (H, W, channels) elements into a new uint8 (H, W)
# grey or (H, W, 3) RGB array)
ENCODINGS: dict[str, tuple[int, type, Callable[[np.ndarray], np.ndarray]]] = {
    "rgb8": (3, np.uint8, np.copy),
    "bgr8": (3, np.uint8, _converted(cv2.COLOR_BGR2RGB)),
    "rgba8": (4, np.uint8, _converted(cv2.COLOR_RGBA2RGB)),
    "bgra8": (4, np.uint8, _converted(cv2.COLOR_BGRA2RGB)),
    "mono8": (1, np.uint8, _first_channel),
    "8UC1": (1, np.uint8, _first_channel),
    "8UC3": (3, np.uint8, np.copy),
    "mono16": (1, np.uint16, _first_channel),
    "16UC1": (1, np.uint16, _first_channel),
    # YUV 4:2:2, two bytes a pixel; "yuv422" and "yuv422_yuy2" are the names from before ROS 2 Jazzy
    "uyvy": (2, np.uint8, _converted(cv2.COLOR_YUV2RGB_UYVY)),
    "yuv422": (2, np.uint8, _converted(cv2.COLOR_YUV2RGB_UYVY)),
    "yuyv": (2, np.uint8, _converted(cv2.COLOR_YUV2RGB_YUY2)),
    "yuv422_yuy2": (2, np.uint8, _converted(cv2.COLOR_YUV2RGB_YUY2)),
}


def encoding_of(image: np.ndarray) -> str:
    """The encoding for a uint8 (H, W) or (H, W, 3) RGB array."""
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise InputError(f"image {image.dtype} {image.shape}: expected uint8 (H, W) or (H, W, 3)")
    return "mono8" if image.ndim == 2 else "rgb8"


def decode_image(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: bytes | np.ndarray,
    is_bigendian: bool = False,
) -> np.ndarray:
    """The pixels as uint8 (H, W) grey or (H, W, 3) RGB; InputError naming what does not fit.

    16-bit grey (mono16, 16UC1) is scaled to 8 bits by `eight_bit`; `is_bigendian` is the message's
    field, which only 16-bit encodings read. YUV 4:2:2 (uyvy / yuv422, yuyv / yuv422_yuy2) is converted
    to RGB by OpenCV (BT.601).
    """
    if encoding not in ENCODINGS:
        raise InputError(
            f"image encoding {encoding!r} not supported (expected one of {', '.join(ENCODINGS)})"
        )
    channels, element, convert = ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise InputError(f"empty image ({width}x{height})")
    if channels == 2 and width % 2:
        raise InputError(f"{encoding} image of odd width {width} (YUV 4:2:2 pairs pixels)")
    row = width * channels * np.dtype(element).itemsize
    if step < row:
        raise InputError(f"image step {step} is less than width x pixel size = {row} for {encoding}")
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8)
    if buffer.size != step * height:
        raise InputError(f"image data is {buffer.size} bytes, step x height = {step * height}")
    rows = buffer.reshape(height, step)[:, :row]
    if element is not np.uint8:
        rows = rows.view(np.dtype(element).newbyteorder(">" if is_bigendian else "<"))
    return convert(rows.reshape(height, width, channels))


FLOAT_ENCODING = re.compile(r"32FC(\d+)")


def decode_event_frame(
    encoding: str, height: int, width: int, step: int, data: bytes | np.ndarray, is_bigendian: bool = False
) -> np.ndarray:
    """An event frame, a representation carried as a `32FC<n>` image, as (H, W, n) float32; InputError
    naming what does not fit."""
    match = FLOAT_ENCODING.fullmatch(encoding)
    if match is None or int(match.group(1)) < 1:
        raise InputError(f"event frame encoding {encoding!r}: expected 32FC<channels> (e.g. 32FC2)")
    channels = int(match.group(1))
    if height <= 0 or width <= 0:
        raise InputError(f"empty event frame ({width}x{height})")
    row = width * channels * 4
    if step < row:
        raise InputError(f"event frame step {step} is less than width x pixel size = {row} for {encoding}")
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8)
    if buffer.size != step * height:
        raise InputError(f"event frame data is {buffer.size} bytes, step x height = {step * height}")
    rows = (
        buffer.reshape(height, step)[:, :row]
        .copy()
        .view(np.dtype(np.float32).newbyteorder(">" if is_bigendian else "<"))
    )
    return rows.reshape(height, width, channels).astype(np.float32)


# A CompressedImage's `format`: "jpeg" or "png", or as image_transport's compressed plugin writes it,
# "<encoding>; <jpeg|png> compressed [<encoding>]": "rgb8; jpeg compressed bgr8", "16UC1; png compressed"
COMPRESSED_FORMAT = re.compile(r"(?:[^;]*;\s*)?(jpeg|jpg|png)(?:\s+compressed(?:\s+\S+)?)?", re.IGNORECASE)


def decode_compressed_image(image_format: str, data: bytes | np.ndarray) -> np.ndarray:
    """A sensor_msgs/CompressedImage (JPEG or PNG) as `decode_image` gives pixels: uint8 (H, W) grey or
    (H, W, 3) RGB; 16-bit PNGs scaled to 8 bits as raw 16-bit images are (`eight_bit`), alpha dropped.

    OpenCV decodes whatever the bytes hold; the colour order is OpenCV's (BGR), whatever encoding the
    format names, because the compressed plugin converts colour to bgr8 before compressing. InputError
    naming the format for a format other than JPEG or PNG (compressedDepth included) or undecodable data.
    """
    if not COMPRESSED_FORMAT.fullmatch(image_format.strip()):
        raise InputError(
            f"compressed image format {image_format!r} not supported "
            "(expected JPEG or PNG: 'jpeg', 'png', 'bgr8; jpeg compressed bgr8', 'mono16; png compressed')"
        )
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8)
    try:
        pixels = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
    except cv2.error:
        pixels = None
    if pixels is None or pixels.dtype not in (np.uint8, np.uint16):
        raise InputError(f"compressed image ({image_format!r}, {buffer.size} bytes) could not be decoded")
    pixels = eight_bit(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        return np.ascontiguousarray(pixels[:, :, 0])
    if pixels.ndim == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB if pixels.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return pixels


def stamp_ns(stamp) -> int:
    """A builtin_interfaces/Time in nanoseconds."""
    return stamp.sec * NANOSECONDS + stamp.nanosec


def calibration_from_info(info) -> CameraCalibration:
    """The numbers of a sensor_msgs/CameraInfo (rclpy or rosbags message, or anything with its fields):
    size, distortion model and D, K, R, P. InputError for a wrong size, a matrix of the wrong length or
    with non-finite numbers, or focal lengths that are not positive."""

    def numbers(values) -> tuple[float, ...]:
        return tuple(np.asarray(values, np.float64).reshape(-1).tolist())

    return CameraCalibration(
        width=int(info.width),
        height=int(info.height),
        distortion_model=str(info.distortion_model),
        d=numbers(info.d),
        k=numbers(info.k),
        r=numbers(info.r),
        p=numbers(info.p),
    )


def camera_from_info(info) -> PinholeCamera:
    """The rectified pinhole camera of a sensor_msgs/CameraInfo: P when set, else K; InputError as
    `calibration_from_info`."""
    return calibration_from_info(info).camera
