"""`hand-pose detect`: the live pipeline on image files of any size, each on its own, written as JSON
(and, when asked, as overlays): what a person tries first on their own pictures.

Each image gets a centred pinhole camera of the given focal length, or by default one with a 65-degree
field of view across its longer side (about a phone camera's), so that the hands can be placed in
metres; a wrong focal length scales the distance, not the hand's shape.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hand_pose_core.atomic import ensure_dir, write_atomic, write_json_atomic
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import PinholeCamera
from hand_pose_core.live.drawing import draw_mesh, draw_skeleton
from hand_pose_core.live.pipeline import HandPosePipeline, HandResult
from hand_pose_core.mano.model import write_obj

DEFAULT_FIELD_OF_VIEW_DEG = 65.0
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class ImageHands:
    """One image's hands, or why it could not be read."""

    path: Path
    width: int = 0
    height: int = 0
    camera: PinholeCamera | None = None
    hands: list[HandResult] = field(default_factory=list)
    problem: str | None = None

    def to_dict(self) -> dict:
        if self.problem is not None:
            return {"path": str(self.path), "error": self.problem}
        camera = self.camera
        return {
            "path": str(self.path),
            "width": self.width,
            "height": self.height,
            "camera": {"fx": camera.fx, "fy": camera.fy, "cx": camera.cx, "cy": camera.cy},
            "hands": [hand_to_dict(hand) for hand in self.hands],
        }


def hand_to_dict(hand: HandResult) -> dict:
    """A hand as JSON: pixels for 2D, metres for 3D (Ego-Exo4D joint order); NaN becomes null."""

    def listed(values: np.ndarray | None) -> list | None:
        if values is None:
            return None
        return [[None if not math.isfinite(v) else round(float(v), 6) for v in row] for row in values]

    fields = {
        "side": hand.side,
        "score": round(float(hand.score), 6),
        "box": [round(float(v), 3) for v in hand.box],
        "keypoints_2d": listed(hand.keypoints),
        "joints_relative": listed(hand.relative),
        "joints_camera": listed(hand.camera),
    }
    return fields | ({"mano": hand.mano.to_dict()} if hand.mano is not None else {})


def default_focal(width: int, height: int) -> float:
    """The focal length in pixels of a 65-degree field of view across the longer side."""
    return max(width, height) / (2.0 * math.tan(math.radians(DEFAULT_FIELD_OF_VIEW_DEG) / 2.0))


def image_files(inputs: Sequence[Path]) -> list[Path]:
    """The image files named, and those in the folders named (sorted); a missing path is an error."""
    files = []
    for path in map(Path, inputs):
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path}: no such image or folder")
    if not files:
        raise InputError(f"no image files in {', '.join(map(str, inputs))}")
    return files


def read_picture(path: Path) -> np.ndarray:
    """An image file as upright RGB (as viewers show it, EXIF orientation applied)."""
    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from None


def detect_hands(
    pipeline: HandPosePipeline, paths: Iterable[Path], focal: float | None = None
) -> Iterator[ImageHands]:
    """Every image through the pipeline on its own (no tracking from one image to the next)."""
    for path in paths:
        try:
            image = read_picture(path)
        except InputError as exc:
            yield ImageHands(path, problem=str(exc))
            continue
        height, width = image.shape[:2]
        camera = PinholeCamera.linear(width, height, focal or default_focal(width, height))
        pipeline.set_camera(camera)
        result = pipeline.process(image)
        problem = "; ".join(reason for side, reason in result.skipped if side == "frame") or None
        yield ImageHands(path, width, height, camera, result.hands, problem)


def write_hands_json(images: list[ImageHands], out: Path) -> Path:
    return write_json_atomic(out, {"images": [image.to_dict() for image in images]}, indent=1)


def write_overlays(images: list[ImageHands], folder: Path) -> list[Path]:
    """Each readable image with its hands' skeletons and boxes drawn, as PNG (names made unique)."""
    folder = ensure_dir(folder)
    written = []
    for name, image in _named(images):
        canvas = Image.fromarray(read_picture(image.path))
        width = max(2, round(max(image.width, image.height) / 300))
        for hand in image.hands:
            if hand.mano is not None:
                draw_mesh(canvas, image.camera, hand.mano.vertices, hand.mano.faces, hand.side)
            draw_skeleton(canvas, hand.keypoints, hand.side, hand.box, width=width)
        written.append(write_atomic(folder / f"{name}.png", lambda tmp, c=canvas: c.save(tmp, format="PNG")))
    return written


def write_meshes(images: list[ImageHands], folder: Path) -> list[Path]:
    """Each hand's MANO mesh as an OBJ file in its image's camera frame (metres), named IMAGE_SIDE.obj."""
    folder = ensure_dir(folder)
    return [
        write_obj(folder / f"{name}_{hand.side}.obj", hand.mano.vertices, hand.mano.faces)
        for name, image in _named(images)
        for hand in image.hands
        if hand.mano is not None
    ]


def _named(images: list[ImageHands]) -> Iterator[tuple[str, ImageHands]]:
    """The readable images, each with a file name of its own (its stem, made unique)."""
    used = set()
    for image in images:
        if image.problem is not None:
            continue
        name = image.path.stem
        while name in used:
            name += "_"
        used.add(name)
        yield name, image
