"""`HandPosePipeline`: one frame and its camera in, both hands out (side, score, box, 2D keypoints,
wrist-relative 3D and camera-frame 3D). The ROS 2 node, `hand-pose infer` and the demo all call it.

Localisation is `detector` (the whole-image keypoint network, with tracking between detector passes) or
`given` (boxes and 2D keypoints from an annotation file: the benchmark mode, which crops exactly as
`hand-pose infer` always has). The 3D stage is whichever pose engine it is given: POTTER on a crop of the
hand's box, or the lifter on its 2D keypoints. Bad frames give empty or partial results with the reason,
never an exception.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import PinholeCamera
from hand_pose_core.geometry.crop import (
    CropWindow,
    box_is_usable,
    is_mirrored,
    keypoint_box,
    mirror_crop,
    mirror_joints,
    normalize_crop,
    warp_crop,
)
from hand_pose_core.geometry.placement import solve_translation
from hand_pose_core.geometry.skeleton import HAND_SIDES, NUM_JOINTS
from hand_pose_core.live.detection import decode_detections, frame_input
from hand_pose_core.live.tracking import HandTracker, OneEuroFilter, Track, resolve_sides
from hand_pose_core.runtime.engines import Engine, load_engine

LOCALISATIONS = ("detector", "given")


@dataclass(frozen=True)
class PipelineConfig:
    localisation: str = "detector"
    detect_every: int = 1  # POTTER: run the detector every N frames, following hands in between
    min_score: float = 0.5  # presence probability for a detected hand to count
    smoothing: bool = False  # One-Euro on camera-frame joints (off for benchmarking)
    min_cutoff_hz: float = 1.0
    beta: float = 5.0  # per m/s of joint speed
    d_cutoff_hz: float = 1.0

    def __post_init__(self) -> None:
        if self.localisation not in LOCALISATIONS:
            raise InputError(
                f"localisation {self.localisation!r}: expected one of {', '.join(LOCALISATIONS)}"
            )
        if self.detect_every < 1:
            raise InputError(f"detect_every {self.detect_every}: must be at least 1")


@dataclass
class GivenHand:
    """A hand to predict in benchmark mode: its annotated box (POTTER) or 2D keypoints (the lifter)."""

    side: str
    box: np.ndarray | None = None
    keypoints: np.ndarray | None = None  # (21, 2) pixels, NaN where not annotated


@dataclass
class HandResult:
    side: str
    score: float  # presence probability (1 for given hands)
    box: np.ndarray  # (4,) pixels
    keypoints: np.ndarray  # (21, 2) pixels, NaN where unknown
    relative: np.ndarray  # (21, 3) metres, wrist-relative
    camera: np.ndarray | None  # (21, 3) metres in the camera frame (None without 2D keypoints)
    detected: bool = True  # False when followed from the previous frame without the detector


@dataclass
class FrameResult:
    hands: list[HandResult] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (side, or "frame"; why it gave nothing)
    seconds: dict[str, float] = field(default_factory=dict)  # per stage


def as_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W), (H, W, 1) or (H, W, 3) -> (H, W, 3); anything else is an InputError."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise InputError(f"image of type {image.dtype}: expected 8-bit pixels")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image of shape {image.shape}: expected (H, W) or (H, W, 3)")
    return image


class HandPosePipeline:
    @classmethod
    def load(
        cls,
        pose_model: Path,
        camera: PinholeCamera,
        detector_model: Path | None = None,
        config: PipelineConfig = PipelineConfig(),
        *,
        backend: str = "auto",
        threads: int | None = None,
        rebuild: bool = False,
    ) -> HandPosePipeline:
        """A pipeline from model files (checkpoints, ONNX files or TensorRT engines) on one backend."""
        if config.localisation == "detector" and detector_model is None:
            raise InputError("detector localisation needs a detector model (a checkpoint or ONNX file)")
        pose = load_engine(pose_model, backend, threads=threads, rebuild=rebuild)
        detector = (
            load_engine(detector_model, backend, threads=threads, rebuild=rebuild)
            if config.localisation == "detector"
            else None
        )
        return cls(pose, camera, detector, config)

    def __init__(
        self,
        pose: Engine,
        camera: PinholeCamera,
        detector: Engine | None = None,
        config: PipelineConfig = PipelineConfig(),
    ) -> None:
        if pose.card.name not in ("potter", "lifter"):
            raise InputError(f"the 3D stage must be POTTER or the lifter, not {pose.card.name}")
        if config.localisation == "detector" and (detector is None or detector.card.name != "detector"):
            raise InputError("detector localisation needs a detector model")
        self.pose, self.detector, self.camera, self.config = pose, detector, camera, config
        # The lifter needs fresh 2D keypoints on every frame, so it detects on every frame.
        every = config.detect_every if pose.card.name == "potter" else 1
        self.tracker = HandTracker(every, config.min_score)
        self.filters: dict[str, OneEuroFilter] = {}

    @property
    def needs_image(self) -> bool:
        """Whether frames must be read at all (not for the lifter on given keypoints)."""
        return self.config.localisation == "detector" or self.pose.card.name == "potter"

    def reset(self) -> None:
        """Forget tracks and filters (a new recording, or a jump in time)."""
        self.tracker.reset()
        self.filters.clear()

    def process(
        self, image: np.ndarray | None, stamp: float | None = None, given: list[GivenHand] | None = None
    ) -> FrameResult:
        """One frame -> its hands. `stamp` (seconds) drives smoothing; `given` is for benchmark mode."""
        result = FrameResult()
        try:
            if self.needs_image:
                image = as_rgb(image)
                self.camera.check_image(image, "frame")
            if self.config.localisation == "given":
                hands = self._given(given or [], result)
            else:
                hands = self._localise(image, result)
            if hands:
                self._lift(image, hands, result)
        except InputError as exc:
            result.hands = []
            result.skipped.append(("frame", str(exc)))
            return result
        if self.config.smoothing and stamp is not None:
            self._smooth(result.hands, stamp)
        return result

    def _given(self, given: list[GivenHand], result: FrameResult) -> list[HandResult]:
        hands = []
        for hand in given:
            keypoints = (
                np.asarray(hand.keypoints, np.float64)
                if hand.keypoints is not None
                else np.full((NUM_JOINTS, 2), np.nan)
            )
            finite = np.isfinite(keypoints).all(axis=1)
            if self.pose.card.name == "potter":
                reason = box_is_usable(hand.box, self.camera.width, self.camera.height)
                box = hand.box
            else:
                reason = None if finite.any() else "no 2D keypoints"
                box = (
                    keypoint_box(keypoints[finite], self.camera.width, self.camera.height)
                    if finite.any()
                    else None
                )
            if reason is not None:
                result.skipped.append((hand.side, reason))
                continue
            hands.append(
                HandResult(
                    hand.side, 1.0, np.asarray(box, np.float64), keypoints, np.zeros((NUM_JOINTS, 3)), None
                )
            )
        return hands

    def _localise(self, image: np.ndarray, result: FrameResult) -> list[HandResult]:
        height, width = image.shape[:2]
        if not self.tracker.needs_detection():
            self.tracker.followed(width, height)
            return [self._from_track(track, detected=False) for track in self.tracker.tracks.values()]
        start = time.perf_counter()
        packed = self.detector.infer(frame_input(image, self.detector.card.input_size)[None])[0]
        result.seconds["detector"] = time.perf_counter() - start
        found = [d for d in decode_detections(packed, width, height) if d.score >= self.config.min_score]
        self.tracker.detected(resolve_sides(found, self.tracker.tracks))
        return [self._from_track(track, detected=True) for track in self.tracker.tracks.values()]

    @staticmethod
    def _from_track(track: Track, detected: bool) -> HandResult:
        keypoints = np.where(track.visible[:, None], track.keypoints, np.nan)
        return HandResult(
            track.side, track.score, track.box.copy(), keypoints, np.zeros((NUM_JOINTS, 3)), None, detected
        )

    def _lift(self, image: np.ndarray | None, hands: list[HandResult], result: FrameResult) -> None:
        """The 3D stage for all hands of the frame in one batched call, then placement."""
        card = self.pose.card
        start = time.perf_counter()
        if card.name == "potter":
            size = card.input_size
            mirrored = [is_mirrored(card.mirror_left, h.side) for h in hands]
            crops = [warp_crop(image, CropWindow.from_box(h.box), size) for h in hands]
            crops = [normalize_crop(mirror_crop(c) if m else c) for c, m in zip(crops, mirrored, strict=True)]
            relative = self.pose.infer(np.stack(crops))
            relative = np.stack(
                [mirror_joints(j) if m else j for j, m in zip(relative, mirrored, strict=True)]
            )
        else:
            keypoints = np.stack([h.keypoints for h in hands])
            valid = np.isfinite(keypoints).all(axis=2)
            normalised = np.nan_to_num(card.inputs.normalize(keypoints)).astype(np.float32)
            relative = self.pose.infer((normalised, valid))
        result.seconds["pose"] = time.perf_counter() - start
        for hand, joints in zip(hands, relative, strict=True):
            hand.relative = joints
            self._place(hand)
        result.hands = hands

    def _place(self, hand: HandResult) -> None:
        """Camera-frame joints: solved from the 2D keypoints, or (a followed hand) moved with its track."""
        track = self.tracker.tracks.get(hand.side) if self.config.localisation == "detector" else None
        if hand.detected or track is None or track.translation is None:
            weights = np.isfinite(hand.keypoints).all(axis=1).astype(np.float64)
            placement = solve_translation(hand.relative, hand.keypoints, weights, self.camera)
            if placement is None:
                return
            hand.camera = placement.joints(hand.relative)
        else:
            hand.camera = hand.relative + track.translation
            projected = self.camera.project(hand.camera)
            inside = self.camera.contains(projected)
            hand.keypoints = np.where(inside[:, None], projected, np.nan)
            if inside.sum() >= 2:
                hand.box = keypoint_box(projected[inside], self.camera.width, self.camera.height)
            track.keypoints, track.visible, track.box = projected, inside, hand.box
        if track is not None:
            track.translation = hand.camera[0].copy()

    def _smooth(self, hands: list[HandResult], stamp: float) -> None:
        config = self.config
        for side in HAND_SIDES:
            if side not in {h.side for h in hands if h.camera is not None}:
                self.filters.pop(side, None)  # a hand that comes back starts afresh
        for hand in hands:
            if hand.camera is None:
                continue
            filter_ = self.filters.setdefault(
                hand.side, OneEuroFilter(config.min_cutoff_hz, config.beta, config.d_cutoff_hz)
            )
            hand.camera = filter_(hand.camera, stamp)
            hand.relative = hand.camera - hand.camera[0]
