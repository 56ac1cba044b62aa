"""The annotated frames of an annotation file, their images as the release lays them out, and their
times."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from hand_pose_core.egoexo.formats import Annotations, FrameAnnotation

VIDEO_FPS = 30.0  # the takes' video frame rate


@dataclass(frozen=True)
class FrameRecord:
    """One annotated frame of a take."""

    take_uid: str
    take_name: str
    frame_number: int
    frame: FrameAnnotation


def select_frames(annotations: Annotations) -> list[FrameRecord]:
    """Every annotated frame (the release keeps only frames with at least one valid hand)."""
    return [
        FrameRecord(uid, take.take_name, number, frame)
        for uid, take in annotations.takes.items()
        for number, frame in take.frames.items()
    ]


def read_image(path: Path) -> np.ndarray | None:
    """An RGB image as (H, W, 3) uint8, or None when it cannot be read."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError):
        return None


def frame_time_ns(frame_number: float) -> int:
    """The time of a (possibly fractional) video frame of a take in ns from the take's start: the
    release's frame numbers count 30 fps video frames."""
    return round(frame_number * 1e9 / VIDEO_FPS)
