"""The contents of ROS messages without ROS: image buffers, camera intrinsics and stamps.

One implementation for the node (rclpy messages) and the bag tools (rosbags messages), which have the
same fields. Images: `encoding`, `height`, `width`, `step` and bytes <-> numpy; colour comes out as RGB,
grey as (H, W); rows may be padded (`step` > width x pixel size).
"""

from __future__ import annotations

import numpy as np

from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import PinholeCamera

NANOSECONDS = 1_000_000_000

# encoding -> (channels, the channel order that gives RGB)
ENCODINGS = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0,)),
    "8UC1": (1, (0,)),
    "8UC3": (3, (0, 1, 2)),
}


def encoding_of(image: np.ndarray) -> str:
    """The encoding for a uint8 (H, W) or (H, W, 3) RGB array."""
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise InputError(f"image {image.dtype} {image.shape}: expected uint8 (H, W) or (H, W, 3)")
    return "mono8" if image.ndim == 2 else "rgb8"


def decode_image(encoding: str, height: int, width: int, step: int, data: bytes | np.ndarray) -> np.ndarray:
    """The pixels as uint8 (H, W) grey or (H, W, 3) RGB; InputError naming what does not fit."""
    if encoding not in ENCODINGS:
        raise InputError(
            f"image encoding {encoding!r} not supported (expected one of {', '.join(ENCODINGS)})"
        )
    channels, order = ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise InputError(f"empty image ({width}x{height})")
    row = width * channels
    if step < row:
        raise InputError(f"image step {step} is less than width x channels = {row} for {encoding}")
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8)
    if buffer.size != step * height:
        raise InputError(f"image data is {buffer.size} bytes, step x height = {step * height}")
    pixels = buffer.reshape(height, step)[:, :row].reshape(height, width, channels)
    if channels == 1:
        return pixels[:, :, 0].copy()
    return np.ascontiguousarray(pixels[:, :, list(order)])


def stamp_ns(stamp) -> int:
    """A builtin_interfaces/Time in nanoseconds."""
    return stamp.sec * NANOSECONDS + stamp.nanosec


def camera_from_info(info) -> PinholeCamera:
    """The rectified pinhole camera of a sensor_msgs/CameraInfo: P when set, else K."""
    if info.width <= 0 or info.height <= 0:
        raise InputError(f"camera_info of size {info.width}x{info.height}")
    p, k = np.asarray(info.p, np.float64), np.asarray(info.k, np.float64)
    fx, fy, cx, cy = (p[0], p[5], p[2], p[6]) if p[0] > 0 else (k[0], k[4], k[2], k[5])
    if not (fx > 0 and fy > 0):
        raise InputError("camera_info without focal lengths (K and P are zero)")
    return PinholeCamera(float(fx), float(fy), float(cx), float(cy), int(info.width), int(info.height))
