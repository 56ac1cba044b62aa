"""The annotated frames of an annotation file, and where their pixels come from: the images as the
release lays them out, or (for event cameras) a representation of the events before each frame."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from hand_pose_core.egoexo.formats import Annotations, FrameAnnotation, image_path
from hand_pose_core.events.representations import EventRepresentation


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


class FrameSource(Protocol):
    """The pixels of a split's annotated frames: RGB images (`events` None), or the event representation
    `events` of the window that ends at each frame."""

    events: EventRepresentation | None

    def read(self, split: str, take_name: str, frame_number: int) -> np.ndarray | None:
        """The frame, or None when it cannot be read."""

    def where(self, split: str, take_name: str, frame_number: int) -> str:
        """Where the frame comes from, for messages."""


@dataclass(frozen=True)
class ImageFolder:
    """The release's undistorted images: `<root>/<split>/<take_name>/<frame:06d>.jpg`."""

    root: Path
    events: None = None

    def read(self, split: str, take_name: str, frame_number: int) -> np.ndarray | None:
        return read_image(image_path(self.root, split, take_name, frame_number))

    def where(self, split: str, take_name: str, frame_number: int) -> str:
        return str(image_path(self.root, split, take_name, frame_number))


def frame_source(frames: Path | FrameSource | None) -> FrameSource | None:
    """A frame source from an image folder's path (or the source itself, or None)."""
    return ImageFolder(Path(frames)) if isinstance(frames, (str, Path)) else frames
