"""A small z-buffered rasteriser for synthetic egocentric frames: shaded capsules for limbs.

Pure NumPy, working only inside each primitive's bounding box, so a 512x512 frame with two hands
renders in a few milliseconds. Limbs are lit by a directional key light and show a lighter palm side
and fingernails, the cues a real hand gives to which way it faces and how its fingers bend.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from PIL import Image

from hand_pose_core.geometry.camera import PinholeCamera
from hand_pose_core.geometry.skeleton import (
    BONES,
    FINGER_COLOURS,
    FINGER_JOINTS,
    FINGERS,
    FINGERTIPS,
    finger_of,
)

NEAR = 0.08  # metres: limbs are cut at this depth
# Radii (metres) of finger bones at their base; each narrows to 80 % at its tip.
FINGER_RADIUS = {"thumb": 0.0105, "index": 0.0090, "middle": 0.0092, "ring": 0.0086, "pinky": 0.0075}
FOREARM_LENGTH = 0.25
FOREARM_RADIUS = (0.026, 0.034)  # at the wrist, at the elbow end
FINGER_TINT = 0.4  # how far each finger's colour leans to its skeleton colour (a learnable cue)
# Shading: a soft fill from the camera plus a directional key light, in shares of the light's strength.
AMBIENT, FILL, KEY = 0.25, 0.25, 0.6
PALM_LIGHTENING = 0.35  # how far the palm side's colour moves from the skin toward white
NAIL_START = 0.5  # nails cover the back of a fingertip bone from this fraction of its length
NAIL_COLOUR = np.array([0.96, 0.82, 0.80], np.float32)


@dataclass(frozen=True)
class Lighting:
    """A directional key light: `direction` is the unit vector toward the light (camera frame)."""

    direction: np.ndarray
    strength: float = 1.0

    @classmethod
    def random(cls, rng: np.random.Generator) -> Lighting:
        """A light from above the wearer's view (camera y points down), anywhere left to right."""
        toward = np.array([rng.uniform(-0.7, 0.7), rng.uniform(-1.0, -0.2), rng.uniform(-0.8, 0.3)])
        return cls(toward / np.linalg.norm(toward), float(rng.uniform(0.75, 1.1)))


@dataclass(frozen=True)
class Surface:
    """A limb's colour; with `palmar` (camera-frame direction of the palm side) its palm side is lighter,
    and with `nail` the back of its far end is a fingernail."""

    colour: np.ndarray
    palmar: np.ndarray | None = None
    nail: bool = False


@dataclass
class Canvas:
    """A float RGB image in [0, 1] with a depth buffer (metres; inf where nothing was drawn)."""

    image: np.ndarray  # (H, W, 3) float32
    depth: np.ndarray  # (H, W) float32

    @classmethod
    def over(cls, background: np.ndarray) -> Canvas:
        return cls(background.astype(np.float32), np.full(background.shape[:2], np.inf, np.float32))

    def to_uint8(self) -> np.ndarray:
        return (np.clip(self.image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _box(
    canvas: Canvas, lo: np.ndarray, hi: np.ndarray
) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
    """The image window covering [lo, hi] (pixels) with its column (1, w) and row (h, 1) coordinates."""
    height, width = canvas.depth.shape
    x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
    x1, y1 = min(int(hi[0]) + 2, width), min(int(hi[1]) + 2, height)
    if x0 >= x1 or y0 >= y1:
        return None
    xs = np.arange(x0, x1, dtype=np.float32)[None, :]
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    return slice(y0, y1), slice(x0, x1), xs, ys


def _project(camera: PinholeCamera, point: np.ndarray) -> np.ndarray:
    return np.array(
        [camera.fx * point[0] / point[2] + camera.cx, camera.fy * point[1] / point[2] + camera.cy]
    )


def draw_capsule(
    canvas: Canvas,
    camera: PinholeCamera,
    start: np.ndarray,
    end: np.ndarray,
    radii: tuple[float, float],
    surface: Surface,
    lighting: Lighting,
) -> None:
    """A shaded, depth-tested cone-capped capsule between two 3D points (metres, camera frame)."""
    start, end = _clip_near(start, end)
    if start is None:
        return
    p0, p1 = _project(camera, start), _project(camera, end)
    r0, r1 = camera.fx * radii[0] / start[2], camera.fx * radii[1] / end[2]
    reach = max(r0, r1)
    box = _box(canvas, np.minimum(p0, p1) - reach, np.maximum(p0, p1) + reach)
    if box is None:
        return
    rows, cols, xs, ys = box
    axis = p1 - p0
    length2 = float(axis @ axis)
    dx, dy = xs - p0[0], ys - p0[1]
    if length2 < 1e-9:
        t = np.zeros((ys.shape[0], xs.shape[1]), np.float32)
    else:
        t = np.clip((dx * axis[0] + dy * axis[1]) / length2, 0.0, 1.0)
    off_x, off_y = dx - t * axis[0], dy - t * axis[1]
    dist = np.hypot(off_x, off_y)
    radius = r0 + t * (r1 - r0)
    rows_in, cols_in = np.nonzero(dist < radius)
    if rows_in.size == 0:
        return
    t_in, radius_in = t[rows_in, cols_in], radius[rows_in, cols_in]
    facing = np.sqrt(np.maximum(1.0 - (dist[rows_in, cols_in] / radius_in) ** 2, 0.0))
    depth = start[2] + t_in * (end[2] - start[2]) - facing * (radii[0] + t_in * (radii[1] - radii[0]))
    window_depth = canvas.depth[rows, cols]
    closer = depth < window_depth[rows_in, cols_in]
    if not closer.any():
        return
    rows_in, cols_in, facing, depth = rows_in[closer], cols_in[closer], facing[closer], depth[closer]
    t_in, radius_in = t_in[closer], radius_in[closer]
    # Signed offset across the limb in the image, -1 to 1, and from it each pixel's surface normal.
    across = np.array([-axis[1], axis[0]]) / np.sqrt(length2) if length2 >= 1e-9 else np.zeros(2)
    side = (off_x[rows_in, cols_in] * across[0] + off_y[rows_in, cols_in] * across[1]) / radius_in
    sideways, toward_camera = _limb_frame(camera, start, end, across)
    normals = side[:, None] * sideways[None, :] + facing[:, None] * toward_camera[None, :]
    colours = np.broadcast_to(surface.colour, (normals.shape[0], 3))
    if surface.palmar is not None:
        palmar = normals @ _across_axis(surface.palmar, end - start)
        palm_colour = surface.colour + PALM_LIGHTENING * (1.0 - surface.colour)
        palm_share = np.clip(0.5 + 2.0 * palmar, 0.0, 1.0)[:, None]
        colours = (1.0 - palm_share) * colours + palm_share * palm_colour
        if surface.nail:
            nail = (t_in > NAIL_START) & (palmar < -0.4)
            colours = np.where(nail[:, None], 0.5 * colours + 0.5 * NAIL_COLOUR, colours)
    # Dimmer with distance from the camera.
    distance = float(np.clip(0.45 / max(0.5 * (start[2] + end[2]), NEAR), 0.55, 1.25)) ** 0.5
    key = np.maximum(normals @ lighting.direction, 0.0)
    shade = (AMBIENT + FILL * facing + KEY * key) * (lighting.strength * distance)
    canvas.image[rows, cols][rows_in, cols_in] = shade[:, None] * colours
    window_depth[rows_in, cols_in] = depth


def _across_axis(direction: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """The unit part of `direction` perpendicular to `axis` (zero when they are nearly parallel)."""
    axis = axis / max(np.linalg.norm(axis), 1e-9)
    across = direction - (direction @ axis) * axis
    norm = np.linalg.norm(across)
    return across / norm if norm > 1e-6 else np.zeros(3)


def _limb_frame(
    camera: PinholeCamera, start: np.ndarray, end: np.ndarray, across: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Unit 3D directions perpendicular to the limb: one toward the camera and one sideways, the latter
    signed to match `across`, the image direction in which the signed offset grows."""
    middle = 0.5 * (start + end)
    to_camera = -middle / np.linalg.norm(middle)
    toward_camera = _across_axis(to_camera, end - start)
    if not toward_camera.any():  # a limb pointing at the camera: its end faces it
        return np.zeros(3), to_camera
    sideways = np.cross(end - start, toward_camera)
    sideways /= np.linalg.norm(sideways)
    if (_project(camera, middle + 0.01 * sideways) - _project(camera, middle)) @ across < 0:
        sideways = -sideways
    return sideways, toward_camera


def _clip_near(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Cut a segment at the near plane; None if it is wholly behind it."""
    if start[2] < NEAR and end[2] < NEAR:
        return None, None
    if start[2] < NEAR or end[2] < NEAR:
        t = (NEAR - start[2]) / (end[2] - start[2])
        cut = start + t * (end - start)
        start, end = (cut, end) if start[2] < NEAR else (start, cut)
    return start, end


def draw_disc(
    canvas: Canvas, camera: PinholeCamera, centre: np.ndarray, radius: float, colour: np.ndarray
) -> None:
    """A flat, camera-facing disc (an occluding object) at the centre's depth."""
    if centre[2] < NEAR:
        return
    c = _project(camera, centre)
    r = camera.fx * radius / centre[2]
    box = _box(canvas, c - r, c + r)
    if box is None:
        return
    rows, cols, xs, ys = box
    dist2 = ((xs - c[0]) ** 2 + (ys - c[1]) ** 2) / (r * r)
    target_depth = canvas.depth[rows, cols]
    drawn = (dist2 < 1.0) & (centre[2] < target_depth)
    shade = 1.0 - 0.35 * dist2
    canvas.image[rows, cols][drawn] = (shade[..., None] * colour[None, None, :])[drawn]
    target_depth[drawn] = centre[2]


def finger_colours(skin: np.ndarray) -> dict[str | None, np.ndarray]:
    """Skin tinted toward each finger's skeleton colour; the palm (None) is plain skin."""
    colours: dict[str | None, np.ndarray] = {None: skin}
    for finger in FINGERS:
        hue = np.array(FINGER_COLOURS[finger], np.float32) / 255.0
        colours[finger] = (1 - FINGER_TINT) * skin + FINGER_TINT * skin.mean() * 1.6 * hue
    return colours


def draw_hand(
    canvas: Canvas,
    camera: PinholeCamera,
    joints: np.ndarray,
    distal: np.ndarray,
    palmar: np.ndarray,
    scale: float,
    skin: np.ndarray,
    sleeve: np.ndarray,
    lighting: Lighting,
) -> None:
    """A hand (21x3 camera-frame joints) with its palm and forearm; `distal` is the hand's finger axis
    and `palmar` the direction its palm faces."""
    colours = finger_colours(skin)
    palm = Surface(skin, palmar)
    wrist = joints[0]
    elbow = wrist - FOREARM_LENGTH * distal / np.linalg.norm(distal)
    draw_capsule(canvas, camera, wrist, elbow, FOREARM_RADIUS, Surface(sleeve), lighting)
    bases = [FINGER_JOINTS[f][0] for f in FINGERS[1:]]
    palm_centre = joints[[0, *bases]].mean(axis=0)
    draw_capsule(canvas, camera, wrist, palm_centre, (0.024 * scale, 0.030 * scale), palm, lighting)
    for base in bases:
        draw_capsule(canvas, camera, wrist, joints[base], (0.017 * scale, 0.011 * scale), palm, lighting)
    for a, b in itertools.pairwise(bases):
        draw_capsule(canvas, camera, joints[a], joints[b], (0.011 * scale, 0.011 * scale), palm, lighting)
    for parent, child in BONES:
        finger = finger_of(child)
        if parent == 0 and finger != "thumb":
            continue  # metacarpals are inside the palm
        radius = FINGER_RADIUS[finger] * scale
        surface = Surface(colours[finger], palmar, nail=child in FINGERTIPS)
        draw_capsule(canvas, camera, joints[parent], joints[child], (radius, 0.8 * radius), surface, lighting)


def scene_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A varied indoor-like backdrop (size x size x 3, float in [0, 1]): a lit gradient, blurred
    low-frequency colour, and a few flat objects."""
    base = rng.uniform(0.15, 0.8, size=(2, 3))
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    mix = (np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None] + 1.0) / 2.0
    image = base[0] * (1 - mix[..., None]) + base[1] * mix[..., None]
    coarse = rng.uniform(-0.12, 0.12, size=(8, 8, 3))
    blur = Image.fromarray(((coarse + 0.5) * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    image += np.asarray(blur, dtype=np.float32) / 255.0 - 0.5
    for _ in range(rng.integers(4, 10)):
        x0, y0 = rng.integers(0, size, size=2)
        w, h = rng.integers(size // 12, size // 3, size=2)
        colour = rng.uniform(0.05, 0.95, size=3)
        if rng.random() < 0.5:
            image[y0 : y0 + h, x0 : x0 + w] = colour
        else:
            ys, xs = np.ogrid[:size, :size]
            image[((xs - x0) / w) ** 2 + ((ys - y0) / h) ** 2 < 1.0] = colour
    return np.clip(image, 0.0, 1.0).astype(np.float32)
