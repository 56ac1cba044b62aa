"""Synthetic Ego-Exo4D-format hand data: kinematic hands in egocentric places, rendered and annotated
by the release's rules, written in the release's layout.

Layout under the output folder:
  annotation/manual/ego_pose_gt_anno_{train,val}_public.json, ..._test_public.json (boxes only),
  ..._test_private.json; image/undistorted/{split}/{take_name}/{frame:06d}.jpg; and with raw frames,
  raw/{split}/{take_name}/{frame:06d}.jpg (1408x1408 fisheye) with raw/device_calibration.json; and with
  the SLAM cameras, image/camera-slam-{left,right}/{split}/{take_name}/{frame:06d}.jpg (grey, undistorted
  to the benchmark camera, each in its own axes) with aria_rig_calibration.json, the ground truth staying
  in the RGB camera's frame.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from hand_pose_core.atomic import atomic_path, ensure_dir, write_atomic
from hand_pose_core.egoexo.baselines import wrist_relative_statistics
from hand_pose_core.egoexo.constants import official_joint_stats
from hand_pose_core.egoexo.formats import (
    SPLITS,
    Annotations,
    FrameAnnotation,
    HandAnnotation,
    TakeAnnotation,
    annotation_path,
    image_path,
    write_annotations,
)
from hand_pose_core.egoexo.frames import VIDEO_FPS
from hand_pose_core.errors import InputError
from hand_pose_core.geometry import aria
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA, PinholeCamera
from hand_pose_core.geometry.crop import keypoint_box
from hand_pose_core.geometry.skeleton import BONES, FINGER_JOINTS, HAND_SIDES, NUM_JOINTS, PALM_BONES
from hand_pose_core.geometry.views import View
from hand_pose_core.synth.handmodel import (
    LONG_FINGERS,
    HandMotion,
    SmoothSignal,
    local_joints,
    mirror_to_left,
    rotation_from_axes,
    subject_scale,
)
from hand_pose_core.synth.render import Canvas, Lighting, draw_disc, draw_hand, scene_background

# A real Aria device's calibration (RGB and SLAM cameras only), for renders from all three cameras.
RIG_CALIBRATION = Path(__file__).with_name("aria_rig_calibration.json")
FRAME_STEP = 3  # annotated frames are mostly 3 apart in the release (30 fps video)
JPEG_QUALITY = 92
# Parallel rendering starts one process per this many takes (at most one per core): below twice this
# many, one process renders them all, as starting processes would cost more than it saves.
TAKES_PER_WORKER = 8

# The release's validity rules.
BONE_RANGE_MM = (5.0, 80.0)
PALM_BONE_RANGE_MM = (60.0, 120.0)
MAX_REPROJECTION_PX = 30.0
MIN_VALID_JOINTS = 10
TEST_BOX_SCALE = 1.5
TEST_BOX_JITTER = (0.9, 1.1)
TEST_BOX_SHIFT = 0.1

# Annotation process stand-ins: 2D label noise, label outliers, and joints too few views triangulated.
LABEL_NOISE_PX = 1.5
LABEL_OUTLIER_RATE = 0.015
UNTRIANGULATED_RATE = {"base": 0.02, "tip": 0.06}

# Where egocentric hands are in the landscape benchmark view, as (x/z, y/z) of the palm centre for a
# right-like hand (a left hand is generated mirrored): from the real test boxes, right hands sit upper
# right, left hands lower right.
PALM_CENTRE = {"right": (0.62, -0.60), "left": (0.62, -0.21)}
PALM_CENTRE_SPREAD = 0.20
DEPTH_RANGE = (0.30, 0.52)
# Hand orientation of a right-like hand in the camera frame: fingers forward and up the landscape image,
# palm down and away from the wearer. These and the hand model's grasp and thumb ranges were tuned so
# that wrist-relative joint statistics come close to the real ones (see `compare_statistics`).
DISTAL_AXIS = np.array([-0.50, 0.08, 0.86])
PALMAR_HINT = np.array([0.8, 0.0, 0.6])
BASE_ROTATION = rotation_from_axes(DISTAL_AXIS, PALMAR_HINT)
# Rotation-vector spread (radians, about the camera's x, y, z) over takes and within a take.
ORIENTATION_SPREAD = np.array([0.15, 0.1, 0.08])
ORIENTATION_MOTION = np.array([0.32, 0.22, 0.19])
SKIN_TONES = np.array([[0.93, 0.76, 0.65], [0.85, 0.64, 0.52], [0.72, 0.52, 0.39], [0.55, 0.38, 0.27]])


@dataclass(frozen=True)
class SynthConfig:
    takes: int = 6
    frames: int = 30
    seed: int = 0
    raw: bool = False
    slam: bool = False  # also the grey SLAM cameras of a real Aria device (`rig_views`)

    def __post_init__(self) -> None:
        if self.takes < len(SPLITS):
            raise InputError(f"--takes {self.takes}: need at least {len(SPLITS)} (one per split)")
        if self.frames < 1:
            raise InputError(f"--frames {self.frames}: need at least 1")


def split_of_takes(count: int) -> list[str]:
    """train/val/test for each take: about 70/15/15, at least one take each."""
    val = test = max(1, round(0.15 * count))
    return ["train"] * (count - val - test) + ["val"] * val + ["test"] * test


class HandTrack:
    """One hand through a take: smooth articulation, place and orientation, with spells out of view."""

    def __init__(self, rng: np.random.Generator, side: str, span: tuple[float, float]) -> None:
        self.side = side
        self.scale = subject_scale(rng)
        self.motion = HandMotion(rng)
        self.centre = np.array(PALM_CENTRE[side]) + rng.normal(0.0, PALM_CENTRE_SPREAD / 2, size=2)
        self.centre_signal = SmoothSignal(rng, 2)
        self.depth = rng.uniform(*DEPTH_RANGE)
        self.depth_signal = SmoothSignal(rng, 1)
        self.rotation_signal = SmoothSignal(rng, 3)
        self.rotation_offset = rng.normal(0.0, ORIENTATION_SPREAD, size=3)
        # With some chance the hand leaves the view to the right for a spell.
        self.away = None
        if rng.random() < 0.35:
            duration = span[1] - span[0]
            start = span[0] + rng.uniform(0.0, 0.7) * duration
            self.away = (start, start + rng.uniform(0.15, 0.4) * duration)

    def joints(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(21, 3) camera-frame joints (metres) at time t, and the hand's distal and palmar axes."""
        rotvec = self.rotation_offset + ORIENTATION_MOTION * self.rotation_signal(t)
        rotation = Rotation.from_rotvec(rotvec).as_matrix() @ BASE_ROTATION
        local = local_joints(self.motion(t), self.scale)
        palm_local = local[[0, *(FINGER_JOINTS[f][0] for f in LONG_FINGERS)]].mean(axis=0)
        centre = self.centre + 0.5 * PALM_CENTRE_SPREAD * self.centre_signal(t)
        if self.away is not None:
            start, end = self.away
            ramp = np.clip(min(t - start, end - t) / 0.6, 0.0, 1.0)
            centre = centre + np.array([1.6 * ramp, 0.0])
        depth = self.depth * (1.0 + 0.1 * self.depth_signal(t)[0])
        target = np.array([centre[0] * depth, centre[1] * depth, depth])
        joints = local @ rotation.T + (target - rotation @ palm_local)
        distal, palmar = rotation[:, 1], rotation[:, 2]
        if self.side == "left":
            return mirror_to_left(joints), mirror_to_left(distal), mirror_to_left(palmar)
        return joints, distal, palmar


class Occluder:
    """A disc-shaped object that drifts in front of the hands now and then."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.radius = rng.uniform(0.025, 0.06)
        self.depth = rng.uniform(0.18, 0.3)
        self.centre = np.array([rng.uniform(0.3, 0.9), rng.uniform(-0.8, 0.4)])
        self.signal = SmoothSignal(rng, 3)
        self.colour = rng.uniform(0.05, 0.95, size=3).astype(np.float32)

    def draw(self, canvas: Canvas, camera: PinholeCamera, t: float, view: View | None = None) -> None:
        """Drawn as the reference camera sees it, or `view` of the rig."""
        drift = self.signal(t)
        if drift[2] < 0.3:  # shown about a third of the time
            return
        x, y = self.centre + 0.25 * drift[:2]
        centre = np.array([x * self.depth, y * self.depth, self.depth])
        draw_disc(canvas, camera, centre if view is None else view.to_view(centre), self.radius, self.colour)


class TakeScene:
    """Everything that stays fixed or moves smoothly through one take."""

    MARGIN = 64  # background pixels around the frame for the wearer's head motion

    def __init__(self, rng: np.random.Generator, frames: int, camera: PinholeCamera) -> None:
        self.camera = camera
        self.start_frame = int(rng.integers(0, 200)) * FRAME_STEP
        self.frame_numbers = [self.start_frame + FRAME_STEP * i for i in range(frames)]
        span = (self.frame_numbers[0] / VIDEO_FPS, self.frame_numbers[-1] / VIDEO_FPS + 1.0)
        self.background = scene_background(rng, camera.width + 2 * self.MARGIN)
        self.head_motion = SmoothSignal(rng, 2)
        self.tracks = {side: HandTrack(rng, side, span) for side in HAND_SIDES}
        skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.08, size=3)
        self.skin = np.clip(skin, 0, 1).astype(np.float32)
        self.sleeve = (self.skin if rng.random() < 0.4 else rng.uniform(0.05, 0.9, size=3)).astype(np.float32)
        self.lighting = Lighting.random(rng)
        self.occluders = [Occluder(rng) for _ in range(rng.integers(0, 3))]

    def render(self, frame_number: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The undistorted frame (uint8, before masking) and each hand's true camera-frame joints, with
        the frame's random background brightness (a camera's exposure varies from frame to frame)."""
        return self.render_at(frame_number / VIDEO_FPS, rng.uniform(0.85, 1.15))

    def render_at(
        self, t: float, brightness: float = 1.0, view: View | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The frame at time t (seconds) with the background's brightness scaled by `brightness`: draws
        nothing at random, so frames rendered at any rate change only as the scene moves. With `view`, as
        that camera of a rig sees the scene (its backdrop is the same texture: only the hands, their light
        and the occluders are placed in 3D); the joints are always the reference camera's."""
        camera = self.camera if view is None else view.camera
        dx, dy = np.clip(self.head_motion(t) * self.MARGIN / 2, -self.MARGIN, self.MARGIN).astype(int)
        top, left = self.MARGIN + dy, self.MARGIN + dx
        canvas = Canvas.over(self.background[top : top + camera.height, left : left + camera.width])
        canvas.image *= brightness
        turn = np.eye(3) if view is None else view.rotation  # reference directions -> the view's
        lighting = Lighting(self.lighting.direction @ turn, self.lighting.strength)
        joints = {}
        for side, track in self.tracks.items():
            joints[side], distal, palmar = track.joints(t)
            seen = joints[side] if view is None else view.to_view(joints[side])
            draw_hand(
                canvas,
                camera,
                seen,
                distal @ turn,
                palmar @ turn,
                track.scale,
                self.skin,
                self.sleeve,
                lighting,
            )
        for occluder in self.occluders:
            occluder.draw(canvas, camera, t, view)
        return canvas.to_uint8(), joints


def _bone_ok(joints_3d: np.ndarray) -> np.ndarray:
    """Per joint, whether the bone ending at it has a plausible length (the release's rule)."""
    ok = np.ones(NUM_JOINTS, dtype=bool)
    for parent, child in BONES:
        length = np.linalg.norm(joints_3d[child] - joints_3d[parent]) * 1000.0
        low, high = PALM_BONE_RANGE_MM if (parent, child) in PALM_BONES else BONE_RANGE_MM
        ok[child] = low <= length <= high
    return ok


def _inside_mask(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    height, width = mask.shape
    inside = np.zeros(len(points), dtype=bool)
    finite = np.isfinite(points).all(axis=1)
    cols = np.rint(np.where(finite, points[:, 0], -1)).astype(int)
    rows = np.rint(np.where(finite, points[:, 1], -1)).astype(int)
    in_image = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    inside[in_image] = mask[rows[in_image], cols[in_image]]
    return inside


def train_box(points: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    """Train/val rule: tight box of the projected valid joints, padded by 20 px, clipped to the image."""
    return keypoint_box(points, camera.width, camera.height)


def test_box(points: np.ndarray, camera: PinholeCamera, rng: np.random.Generator) -> np.ndarray:
    """Test rule: tight box x1.5, width and height each x U(0.9, 1.1), centre moved up to 10 % of size."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    size = (hi - lo) * TEST_BOX_SCALE * rng.uniform(*TEST_BOX_JITTER, size=2)
    centre = (lo + hi) / 2 + rng.uniform(-TEST_BOX_SHIFT, TEST_BOX_SHIFT, size=2) * size
    return _clip_box(np.concatenate([centre - size / 2, centre + size / 2]), camera)


def _clip_box(box: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    return np.clip(box, 0.0, [camera.width - 1, camera.height - 1] * 2)


def annotate_hand(
    side: str,
    joints_3d: np.ndarray,
    camera: PinholeCamera,
    valid_mask: np.ndarray,
    split: str,
    rng: np.random.Generator,
) -> HandAnnotation | None:
    """The release's annotation of one hand, or None when fewer than 10 joints are valid."""
    projected = camera.project(joints_3d)
    labels = projected + rng.normal(0.0, LABEL_NOISE_PX, size=projected.shape)
    outliers = rng.random(NUM_JOINTS) < LABEL_OUTLIER_RATE
    labels[outliers] += rng.choice([-1, 1], size=(outliers.sum(), 2)) * rng.uniform(
        25, 60, size=(outliers.sum(), 2)
    )
    tip_rate = np.array(
        [UNTRIANGULATED_RATE["tip" if j % 4 == 0 and j else "base"] for j in range(NUM_JOINTS)]
    )
    triangulated = rng.random(NUM_JOINTS) >= tip_rate
    reprojection_ok = np.linalg.norm(labels - projected, axis=1) <= MAX_REPROJECTION_PX
    reprojection_ok[0] = True  # the wrist is exempt
    valid = (
        triangulated & _bone_ok(joints_3d) & camera.contains(projected) & _inside_mask(projected, valid_mask)
    )
    valid &= reprojection_ok
    if valid.sum() < MIN_VALID_JOINTS:
        return None
    box = train_box(projected[valid], camera) if split != "test" else test_box(projected[valid], camera, rng)
    joints = np.where(valid[:, None], joints_3d, np.nan)
    joints[0] = joints_3d[0]  # the wrist stays a real number even when flagged invalid
    labels_2d = np.where(valid[:, None] | ~np.isfinite(labels), labels, np.nan)
    return HandAnnotation(side, joints_3d=joints, joints_2d=labels_2d, bbox=box, valid_3d=valid)


@dataclass
class SynthResult:
    root: Path
    annotations: dict[str, Annotations]  # by split, full 3D (test: the private file)
    frames_written: int = 0
    seconds: float = 0.0
    files: list[Path] = field(default_factory=list)

    @property
    def combined(self) -> Annotations:
        """All splits as one set of takes (the test split with its full 3D)."""
        takes = {uid: take for split in self.annotations.values() for uid, take in split.takes.items()}
        return Annotations(takes, f"synthetic data in {self.root}")

    @property
    def frames_per_second(self) -> float:
        return self.frames_written / self.seconds if self.seconds > 0 else float("nan")


def _write_jpeg(image: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=JPEG_QUALITY)


@functools.cache
def synthetic_raw_camera() -> aria.calibration.CameraCalibration:
    """The raw RGB camera of the synthetic device calibration (parsed once per process)."""
    calibration = aria.parse_device_calibration(aria.synthetic_device_calibration())
    return aria.rgb_calibration(calibration, "synthetic calibration")


@functools.cache
def frame_mask(camera: PinholeCamera = BENCHMARK_CAMERA) -> np.ndarray:
    """(H, W) bool: the pixels of an undistorted frame that the synthetic raw camera sees (the others
    are black); kept, as the detector's training draws frames without hands from it too."""
    mask = aria.AriaUndistorter(synthetic_raw_camera(), camera).valid_mask
    mask.flags.writeable = False
    return mask


@functools.cache
def rig_views() -> list[tuple[View, aria.AriaUndistorter]]:
    """The RGB and SLAM cameras of a real Aria device (the calibration of data/aria/aea_recording.vrs),
    each undistorted to the benchmark camera and posed in the RGB camera's frame."""
    device = aria.load_device_calibration(RIG_CALIBRATION)
    return aria.device_views(device, str(RIG_CALIBRATION))


def grey(image: np.ndarray) -> np.ndarray:
    """An RGB image as a grey camera sees it (ITU-R BT.601 luma)."""
    return np.rint(image @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)


def start_take(
    config: SynthConfig, index: int, camera: PinholeCamera
) -> tuple[np.random.Generator, TakeAnnotation, TakeScene]:
    """A take's random generator, empty annotation and scene: the draws every rendering of the take
    (frames or events) starts with, so that they all show the same hands."""
    rng = np.random.default_rng([config.seed, index])
    take_uid = str(uuid.UUID(bytes=rng.bytes(16), version=4))
    take = TakeAnnotation(take_uid, f"synth_s{config.seed}_{index:03d}")
    return rng, take, TakeScene(rng, config.frames, camera)


def annotate_frame(
    frame_number: int,
    joints: dict[str, np.ndarray],
    camera: PinholeCamera,
    valid_mask: np.ndarray,
    split: str,
    rng: np.random.Generator,
) -> FrameAnnotation:
    """One frame's annotation: the hands with enough valid joints (possibly none)."""
    frame = FrameAnnotation(frame_number)
    for side in HAND_SIDES:
        hand = annotate_hand(side, joints[side], camera, valid_mask, split, rng)
        if hand is not None:
            frame.hands[side] = hand
    return frame


def _render_take(job: tuple[Path, SynthConfig, int, str]) -> TakeAnnotation:
    """One take's frames written under `root`, and its annotation."""
    root, config, index, split = job
    camera = BENCHMARK_CAMERA
    valid_mask = frame_mask(camera)
    rng, take, scene = start_take(config, index, camera)
    for frame_number in scene.frame_numbers:
        image, joints = scene.render(frame_number, rng)
        frame = annotate_frame(frame_number, joints, camera, valid_mask, split, rng)
        if not frame.hands:
            continue  # the release keeps only frames with at least one valid hand
        image[~valid_mask] = 0
        _write_jpeg(image, image_path(root / "image" / "undistorted", split, take.take_name, frame_number))
        if config.slam:
            for view, undistorter in rig_views()[1:]:
                seen, _ = scene.render_at(frame_number / VIDEO_FPS, 1.0, view)
                seen = grey(seen)
                seen[~undistorter.valid_mask] = 0
                _write_jpeg(seen, image_path(root / "image" / view.name, split, take.take_name, frame_number))
        if config.raw:
            raw = aria.distort_to_raw(image, camera, synthetic_raw_camera())
            _write_jpeg(raw, image_path(root / "raw", split, take.take_name, frame_number))
        take.frames[frame_number] = frame
    return take


def render_takes(render: Callable[[tuple], Any], jobs: list[tuple], bar: tqdm, frames: int) -> Iterator[Any]:
    """`render(job)` for every job, in order, in parallel (one process per core) when there are enough
    jobs; the bar advances `frames` per job. Each take has its own random generator, so the results do not
    depend on how many processes run."""
    workers = min(os.cpu_count() or 1, len(jobs) // TAKES_PER_WORKER)
    with contextlib.ExitStack() as stack:
        if workers > 1:
            # forked: rendering needs numpy, SciPy and Pillow only, and the caller's script is not run again
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=get_context("fork")))
            rendered = pool.map(render, jobs)
        else:
            rendered = map(render, jobs)
        for result in rendered:
            bar.update(frames)
            yield result
    bar.close()


def write_split_annotations(
    root: Path, takes: dict[str, dict[str, TakeAnnotation]], result: SynthResult
) -> None:
    """Each split's annotation file in the release layout (test: boxes only, and the private file with 3D)."""
    for split in SPLITS:
        annotations = Annotations(takes[split], f"synthetic {split}")
        result.annotations[split] = annotations
        if split == "test":
            result.files.append(write_annotations(annotations, annotation_path(root, split, public=False)))
        result.files.append(
            write_annotations(annotations, annotation_path(root, split), boxes_only=split == "test")
        )


def generate(out: Path, config: SynthConfig, progress: bool = True) -> SynthResult:
    """Generate a dataset under `out` (deterministic for a seed); returns what it wrote."""
    root = ensure_dir(Path(out))
    calibration_json = aria.synthetic_device_calibration()
    splits = split_of_takes(config.takes)
    takes: dict[str, dict[str, TakeAnnotation]] = {split: {} for split in SPLITS}
    result = SynthResult(root, {})
    start = time.perf_counter()
    bar = tqdm(total=config.takes * config.frames, desc="synth frames", unit="frame", disable=not progress)
    jobs = [(root, config, index, split) for index, split in enumerate(splits)]
    for (_, _, _, split), take in zip(
        jobs, render_takes(_render_take, jobs, bar, config.frames), strict=True
    ):
        takes[split][take.take_uid] = take
        result.frames_written += len(take.frames)
    result.seconds = time.perf_counter() - start
    write_split_annotations(root, takes, result)
    if config.raw:
        result.files.append(
            aria.write_device_calibration(calibration_json, root / "raw" / "device_calibration.json")
        )
    if config.slam:
        result.files.append(
            write_atomic(root / RIG_CALIBRATION.name, functools.partial(shutil.copyfile, RIG_CALIBRATION))
        )
    return result


def compare_statistics(annotations: Annotations) -> dict:
    """How the per-joint statistics of a data set differ from the official ones (joints 1-20; the wrist
    is 0)."""
    mean, std = wrist_relative_statistics((r.hand for r in annotations.hands()), annotations.source)
    ref_mean, ref_std = official_joint_stats()
    return {
        "mean_abs_difference_mm": np.abs(mean - ref_mean)[1:].mean(axis=0).tolist(),
        "std_ratio": (std[1:] / ref_std[1:]).mean(axis=0).tolist(),
        "finger_tip_distance_mm": {
            "synthetic": float(
                np.linalg.norm(mean[[FINGER_JOINTS[f][-1] for f in FINGER_JOINTS]], axis=1).mean()
            ),
            "real": float(
                np.linalg.norm(ref_mean[[FINGER_JOINTS[f][-1] for f in FINGER_JOINTS]], axis=1).mean()
            ),
        },
    }


def format_statistics(comparison: dict) -> str:
    """The comparison with the real constants as a small table."""
    diff, ratio = comparison["mean_abs_difference_mm"], comparison["std_ratio"]
    reach = comparison["finger_tip_distance_mm"]
    return "\n".join(
        [
            "wrist-relative joints vs the real Ego-Exo4D training statistics (joints 1-20):",
            f"{'':<22}{'x':>7}{'y':>7}{'z':>7}",
            f"{'|mean difference| mm':<22}" + "".join(f"{v:>7.1f}" for v in diff),
            f"{'std ratio synth/real':<22}" + "".join(f"{v:>7.2f}" for v in ratio),
            f"mean fingertip distance from the wrist: {reach['synthetic']:.0f} mm synthetic, "
            f"{reach['real']:.0f} mm real",
        ]
    )
