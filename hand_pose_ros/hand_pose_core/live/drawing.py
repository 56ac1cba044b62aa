"""2D drawings people look at: skeletons and meshes over frames, and contact sheets of several frames."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageDraw

from hand_pose_core.geometry.camera import PinholeCamera
from hand_pose_core.geometry.skeleton import BONES, SIDE_COLOURS, bone_colour, joint_colour


def draw_skeleton(
    image: Image.Image, keypoints: np.ndarray, side: str, bbox: np.ndarray | None = None, width: int = 2
) -> Image.Image:
    """Draw one hand's 2D keypoints (21x2 pixels; NaN rows skipped) and box onto `image` in place."""
    draw = ImageDraw.Draw(image)
    finite = np.isfinite(keypoints).all(axis=1)
    if bbox is not None:
        draw.rectangle([float(v) for v in bbox], outline=SIDE_COLOURS[side], width=width)
    for parent, child in BONES:
        if finite[parent] and finite[child]:
            line = [tuple(map(float, keypoints[parent])), tuple(map(float, keypoints[child]))]
            draw.line(line, fill=bone_colour((parent, child)), width=width)
    radius = width + 1
    for joint in np.flatnonzero(finite):
        x, y = map(float, keypoints[joint])
        draw.ellipse(
            [x - radius, y - radius, x + radius, y + radius], fill=joint_colour(joint), outline=(0, 0, 0)
        )
    return image


def draw_mesh(
    image: Image.Image, camera: PinholeCamera, vertices: np.ndarray, faces: np.ndarray, side: str
) -> Image.Image:
    """Draw a camera-frame mesh (V x 3 metres, F x 3 vertex indices) onto `image` in place, see-through
    in the side's colour: faces turned to the camera, farthest first, lit as they face it."""
    corners = vertices[faces]  # (F, 3, 3)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    centres = corners.mean(axis=1)
    facing = -(normals * centres).sum(axis=1) / (
        np.linalg.norm(normals, axis=1) * np.linalg.norm(centres, axis=1) + 1e-12
    )
    pixels = camera.project(corners)
    shown = (facing > 0) & np.isfinite(pixels).all(axis=(1, 2))
    layer = Image.new("RGBA", image.size)
    draw = ImageDraw.Draw(layer)
    colour = np.array(SIDE_COLOURS[side], np.float64)
    for face in np.flatnonzero(shown)[np.argsort(-centres[shown, 2])]:
        red, green, blue = (colour * (0.35 + 0.65 * facing[face])).astype(int)
        draw.polygon([tuple(point) for point in pixels[face].tolist()], fill=(red, green, blue, 150))
    image.paste(Image.alpha_composite(image.convert("RGBA"), layer).convert(image.mode))
    return image


def contact_sheet(images: Iterable[Image.Image], columns: int = 4, tile: int = 256) -> Image.Image:
    """Tiles of the images (resized to `tile` pixels square), row by row."""
    tiles = [image.convert("RGB").resize((tile, tile), Image.BILINEAR) for image in images]
    rows = max(1, -(-len(tiles) // columns))
    sheet = Image.new("RGB", (columns * tile, rows * tile))
    for index, image in enumerate(tiles):
        sheet.paste(image, ((index % columns) * tile, (index // columns) * tile))
    return sheet
