"""`HandPosePipeline`: one frame and its camera in, the hands out (side, score, box, 2D keypoints,
wrist-relative 3D and camera-frame 3D). The ROS 2 node, `hand-pose detect`, `hand-pose infer` and the
demo all call it.

Localisation, where the hands are in 2D:
- `mediapipe` (the default for live frames): MediaPipe Hands' palm detector and hand landmark model,
  which have seen real hands; a hand is followed from frame to frame and the palm detector runs only
  when one is missing (`live.hand_landmarker`);
- `detector`: the trainable whole-image keypoint detector, with tracking between detector passes;
- `given`: boxes and 2D keypoints from an annotation file (the benchmark mode, as `hand-pose infer`).
3D, the hand's wrist-relative joints: the pose engine given (POTTER on a crop of the hand's box, or the
lifter on its 2D keypoints, seen through the benchmark camera), or without one the landmark model's own
metric world landmarks. Each hand is then placed in the camera frame by `geometry.placement`, and, given
MANO's model files, MANO is fitted to it (`mano.fitting`: a mesh and its parameters).

Event cameras: models trained on an event representation (their card names it) take that representation
of a window of events, an (H, W, C) float32 frame, in place of the RGB image; localisation is then the
detector (MediaPipe's models see images only), and the lifter, which takes 2D keypoints, serves both.

Orientation: every model's card says which way up it was trained (Aria's sideways landscape view, or
upright); the pipeline turns the frame (or the keypoints) to it and turns the results back, so results
are always in the frame as it was given (`PipelineConfig.orientation` says which way up that is).
Bad frames give empty or partial results with the reason, never an exception.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hand_pose_core.errors import InputError
from hand_pose_core.events.representations import EventRepresentation
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA, Orientation, PinholeCamera, Turn
from hand_pose_core.geometry.crop import (
    CropWindow,
    box_is_usable,
    crop_input,
    is_mirrored,
    keypoint_box,
    mirror_crop,
    mirror_joints,
    warp_crop,
)
from hand_pose_core.geometry.placement import solve_translation
from hand_pose_core.geometry.skeleton import HAND_SIDES, NUM_JOINTS
from hand_pose_core.live.detection import Detection, decode_detections, frame_input
from hand_pose_core.live.hand_landmarker import FoundHand, HandLandmarker, HandLandmarkerConfig, as_rgb
from hand_pose_core.live.tracking import HandTracker, OneEuroFilter, Track, resolve_sides
from hand_pose_core.mano.fitting import ManoFit, ManoFitter
from hand_pose_core.runtime.base import Engine
from hand_pose_core.runtime.bundled import model_or_bundled
from hand_pose_core.runtime.engines import load_engine

if TYPE_CHECKING:  # torch only where the engines take tensors
    from hand_pose_core.live.device_frames import DeviceFrame

LOCALISATIONS = ("mediapipe", "detector", "given")
# What may change while frames flow (the node's run-time parameters); the models stay as loaded.
TUNABLE = ("detect_every", "min_score", "smoothing", "min_cutoff_hz", "beta")


@dataclass(frozen=True)
class PipelineConfig:
    localisation: str = "mediapipe"
    # Look for hands every N frames while some are followed: MediaPipe's palm detector (mediapipe), or the
    # whole-image detector with POTTER (detector; the lifter needs its keypoints every frame).
    detect_every: int = 1
    min_score: float = 0.5  # presence probability for a found hand to count
    smoothing: bool = False  # One-Euro on camera-frame joints (off for benchmarking)
    min_cutoff_hz: float = 1.0
    beta: float = 5.0  # per m/s of joint speed
    d_cutoff_hz: float = 1.0
    orientation: Orientation = "landscape"  # which way up frames arrive (see `geometry.camera.Turn`)
    variant: str = "full"  # MediaPipe's models: full, or lite (faster, a little less exact)

    def __post_init__(self) -> None:
        if self.localisation not in LOCALISATIONS:
            raise InputError(
                f"localisation {self.localisation!r}: expected one of {', '.join(LOCALISATIONS)}"
            )
        if self.detect_every < 1:
            raise InputError(f"detect_every {self.detect_every}: must be at least 1")
        Turn(self.orientation, self.orientation)  # checks the name
        if self.variant not in ("full", "lite"):
            raise InputError(f"variant {self.variant!r}: expected full or lite")


@dataclass
class GivenHand:
    """A hand to predict in benchmark mode: its annotated box (POTTER) or 2D keypoints (the lifter)."""

    side: str
    box: np.ndarray | None = None
    keypoints: np.ndarray | None = None  # (21, 2) pixels, NaN where not annotated


def landmarker_settings(config: PipelineConfig) -> dict[str, float | int]:
    """What of the pipeline's settings MediaPipe's graph takes, under its names."""
    return {"min_presence_confidence": config.min_score, "palm_interval": config.detect_every}


@dataclass
class HandResult:
    side: str
    score: float  # presence probability (1 for given hands)
    box: np.ndarray  # (4,) pixels
    keypoints: np.ndarray  # (21, 2) pixels, NaN where unknown
    relative: np.ndarray  # (21, 3) metres, wrist-relative
    camera: np.ndarray | None  # (21, 3) metres in the camera frame (None without a placement)
    detected: bool = True  # False when followed from the previous frame without a detector pass
    mano: ManoFit | None = None  # MANO fitted to `camera`, when the pipeline fits it

    def joint_confidence(self, camera: PinholeCamera) -> np.ndarray:
        """(21,) from 0 to 1. The models score a hand, not its joints: a joint whose 2D keypoint lies in
        the image gets the hand's score, one outside it or unknown gets 0."""
        return np.where(camera.contains(self.keypoints), float(self.score), 0.0)


@dataclass
class FrameResult:
    hands: list[HandResult] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (side, or "frame"; why it gave nothing)
    seconds: dict[str, float] = field(default_factory=dict)  # per stage


class HandPosePipeline:
    @classmethod
    def load(
        cls,
        pose_model: Path | None,
        camera: PinholeCamera,
        detector_model: Path | None = None,
        config: PipelineConfig = PipelineConfig(),
        *,
        palm_model: Path | None = None,
        landmark_model: Path | None = None,
        backend: str = "auto",
        threads: int | None = None,
        rebuild: bool = False,
        engine_cache: Path | None = None,
        mano: Path | None = None,
    ) -> HandPosePipeline:
        """A pipeline from model files (checkpoints, ONNX files or TensorRT engines) on one backend.
        `pose_model` None: the landmark model's world landmarks give the 3D. MediaPipe's models default
        to the bundled ones of `config.variant`. `mano`: a folder with MANO's model files, to fit MANO."""

        files: list[Path] = []

        def engine(path: Path) -> Engine:
            files.append(Path(path))
            return load_engine(path, backend, threads=threads, rebuild=rebuild, engine_cache=engine_cache)

        pose = engine(pose_model) if pose_model is not None else None
        detector = hands = None
        if config.localisation == "detector":
            if detector_model is None:
                raise InputError("detector localisation needs a detector model (a checkpoint or ONNX file)")
            detector = engine(detector_model)
        elif config.localisation == "mediapipe":
            suffix = "" if config.variant == "full" else "_lite"
            hands = HandLandmarker(
                engine(model_or_bundled(palm_model, f"palm_detector{suffix}")),
                engine(model_or_bundled(landmark_model, f"hand_landmarks{suffix}")),
                HandLandmarkerConfig(**landmarker_settings(config)),
            )
        fitter = ManoFitter.load(mano) if mano is not None else None
        files += [model.path for model in fitter.models.values()] if fitter is not None else []
        pipeline = cls(pose, camera, detector, config, hands, fitter)
        pipeline.model_files = files
        return pipeline

    def __init__(
        self,
        pose: Engine | None,
        camera: PinholeCamera,
        detector: Engine | None = None,
        config: PipelineConfig = PipelineConfig(),
        hands: HandLandmarker | None = None,
        mano: ManoFitter | None = None,
    ) -> None:
        if pose is not None and pose.card.name not in ("potter", "lifter"):
            raise InputError(f"the 3D stage must be POTTER or the lifter, not {pose.card.name}")
        if config.localisation == "detector" and (detector is None or detector.card.name != "detector"):
            raise InputError("detector localisation needs a detector model")
        if config.localisation == "mediapipe" and hands is None:
            raise InputError("mediapipe localisation needs MediaPipe's palm detector and landmark model")
        if pose is None and config.localisation != "mediapipe":
            raise InputError("without POTTER or the lifter, 3D comes from MediaPipe's world landmarks only")
        self.events = _event_representation(pose, detector, config)
        self.pose, self.detector, self.hands, self.config = pose, detector, hands, config
        self.camera, self.mano = camera, mano
        # The lifter needs fresh 2D keypoints on every frame, so it detects on every frame.
        every = config.detect_every if pose is not None and pose.card.name == "potter" else 1
        self.tracker = HandTracker(every, config.min_score)
        self.filters: dict[str, OneEuroFilter] = {}
        self.model_files: list[Path] = []  # what `load` read, for logs

    @property
    def lifting(self) -> str:
        """Where the 3D comes from: potter, lifter, or world (MediaPipe's world landmarks)."""
        return self.pose.card.name if self.pose is not None else "world"

    def describe(self) -> str:
        """Which models run where, for logs and diagnostics, e.g. "mediapipe full on onnxruntime ->
        lifter on onnxruntime"."""
        if self.hands is not None:
            where = f"mediapipe {self.config.variant} on {self.hands.palm_engine.backend}"
        elif self.detector is not None:
            where = f"detector on {self.detector.backend}"
        else:
            where = "given boxes and keypoints"
        lift = "world landmarks" if self.pose is None else f"{self.lifting} on {self.pose.backend}"
        return f"{where} -> {lift}" + (" -> MANO" if self.mano is not None else "")

    @property
    def needs_image(self) -> bool:
        """Whether frames must be read at all (not for the lifter on given keypoints)."""
        return self.config.localisation != "given" or self.lifting == "potter"

    def sibling(self, camera: PinholeCamera) -> HandPosePipeline:
        """A pipeline for another camera on the same engines and settings, with its own tracks and
        filters (the other views of a camera rig)."""
        hands = None
        if self.hands is not None:
            hands = HandLandmarker(self.hands.palm_engine, self.hands.landmark_engine, self.hands.config)
        sibling = HandPosePipeline(self.pose, camera, self.detector, self.config, hands)
        sibling.model_files = self.model_files
        return sibling

    def set_camera(self, camera: PinholeCamera) -> None:
        """Frames from now on come from this camera: tracks and filters start afresh."""
        self.camera = camera
        self.reset()

    def tune(self, **changes: float | int | bool) -> None:
        """Change settings of `TUNABLE` between frames (not while `process` runs). New One-Euro settings
        start the filters afresh; tracks are kept."""
        unknown = set(changes) - set(TUNABLE)
        if unknown:
            raise InputError(f"cannot change {', '.join(sorted(unknown))} of a loaded pipeline")
        self.config = config = replace(self.config, **changes)
        if self.lifting == "potter":
            self.tracker.detect_every = config.detect_every
        self.tracker.min_score = config.min_score
        if self.hands is not None:
            self.hands.config = replace(self.hands.config, **landmarker_settings(config))
        if {"smoothing", "min_cutoff_hz", "beta"} & set(changes):
            self.filters.clear()

    def reset(self) -> None:
        """Forget tracks and filters (a new recording, or a jump in time)."""
        self.tracker.reset()
        if self.hands is not None:
            self.hands.reset()
        if self.mano is not None:
            self.mano.reset()
        self.filters.clear()

    def process(
        self,
        image: np.ndarray | None,
        stamp: float | None = None,
        given: list[GivenHand] | None = None,
        finish: bool = True,
    ) -> FrameResult:
        """One frame -> its hands. `stamp` (seconds) drives smoothing; `given` is for benchmark mode.
        `finish` False leaves out what follows placement (`finish`), for a caller that places the hands
        again (the multi-view pipeline)."""
        result = FrameResult()
        try:
            on_device = None
            if self.needs_image:
                image = as_rgb(image) if self.events is None else as_event_frame(image, self.events)
                self.camera.check_image(image, "frame")
                on_device = self._upload(image)
            if self.config.localisation == "given":
                hands = self._given(given or [], result)
            elif self.config.localisation == "mediapipe":
                hands = self._landmarks(image, on_device, result)
            else:
                hands = self._localise(image, result)
            if hands:
                self._lift(image, on_device, hands, result)
        except InputError as exc:
            result.hands = []
            result.skipped.append(("frame", str(exc)))
            return result
        if finish:
            self.finish(result, stamp)
        return result

    def finish(self, result: FrameResult, stamp: float | None) -> None:
        """What follows placement: One-Euro smoothing of the camera-frame joints (with a stamp, when the
        settings ask for it), then MANO fitted to them (when the pipeline fits it)."""
        self._smooth(result.hands, stamp)
        if self.mano is not None:
            self._fit_mano(result)

    def _turn_to(self, orientation: Orientation) -> Turn:
        return Turn(self.config.orientation, orientation)

    @property
    def tensor_device(self) -> object | None:
        """The torch device of the engines that cut their inputs from the frame there (MediaPipe's, or
        POTTER's), or None: the frame is then uploaded once and turned, cropped and normalised there."""
        if self.hands is not None and self.hands.tensor_device is not None:
            return self.hands.tensor_device
        if self.lifting == "potter":
            return self.pose.tensor_device
        return None

    def _upload(self, image: np.ndarray) -> DeviceFrame | None:
        if self.tensor_device is None:
            return None
        from hand_pose_core.live.device_frames import DeviceFrame

        return DeviceFrame(image, self.tensor_device)

    def _given(self, given: list[GivenHand], result: FrameResult) -> list[HandResult]:
        hands = []
        for hand in given:
            keypoints = (
                np.asarray(hand.keypoints, np.float64)
                if hand.keypoints is not None
                else np.full((NUM_JOINTS, 2), np.nan)
            )
            finite = np.isfinite(keypoints).all(axis=1)
            if self.lifting == "potter":
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

    def _landmarks(
        self, image: np.ndarray, on_device: DeviceFrame | None, result: FrameResult
    ) -> list[HandResult]:
        """MediaPipe Hands on the frame turned upright: one hand per side, in the frame's pixels, with
        its world landmarks (wrist-relative, in the frame's camera axes) as the first 3D."""
        turn = self._turn_to(self.hands.palm_engine.card.orientation)
        turned = turn.image(image)
        start = time.perf_counter()
        uploaded = on_device is not None and self.hands.tensor_device == on_device.device
        found = self.hands.process(turned, on_device.turned(turn) if uploaded else None)
        result.seconds["landmarks"] = time.perf_counter() - start
        back, (height, width) = turn.inverse, turned.shape[:2]
        return [self._found(hand, side, back, width, height) for hand, side in one_per_side(found)]

    def _found(self, hand: FoundHand, side: str, back: Turn, width: int, height: int) -> HandResult:
        """A hand of the landmark model on the turned frame (`width` x `height`), in the frame's pixels."""
        keypoints = back.points_2d(hand.keypoints, width, height)
        world = back.points_3d(hand.world)
        box = keypoint_box(keypoints, self.camera.width, self.camera.height)
        return HandResult(side, hand.presence, box, keypoints, world - world[0], None, not hand.tracked)

    def read_at(self, image: np.ndarray, keypoints: list[np.ndarray]) -> list[HandResult | None]:
        """MediaPipe's landmark model where hands are expected, from their (21, 2) keypoints in this
        camera's pixels (another camera's hands projected into this one): each hand, with the side the
        model reads, or None where none is present. For mediapipe localisation; tracks stay as they are.
        A bad frame raises InputError."""
        image = as_rgb(image)
        self.camera.check_image(image, "frame")
        turn = self._turn_to(self.hands.landmark_engine.card.orientation)
        turned = turn.image(image)
        height, width = turned.shape[:2]
        expected = [turn.points_2d(k, self.camera.width, self.camera.height) for k in keypoints]
        return [
            None if hand is None else self._found(hand, hand.side, turn.inverse, width, height)
            for hand in self.hands.read_at(turned, expected)
        ]

    def _localise(self, image: np.ndarray, result: FrameResult) -> list[HandResult]:
        if not self.tracker.needs_detection():
            self.tracker.followed(self.camera.width, self.camera.height)
            return [self._from_track(track, detected=False) for track in self.tracker.tracks.values()]
        turn = self._turn_to(self.detector.card.orientation)
        turned = turn.image(image)
        start = time.perf_counter()
        events = self.events is not None
        packed = self.detector.infer(frame_input(turned, self.detector.card.input_size, events)[None])[0]
        result.seconds["detector"] = time.perf_counter() - start
        height, width = turned.shape[:2]
        found = [
            self._in_frame(d, turn.inverse, width, height)
            for d in decode_detections(packed, width, height)
            if d.score >= self.config.min_score
        ]
        self.tracker.detected(resolve_sides(found, self.tracker.tracks))
        return [self._from_track(track, detected=True) for track in self.tracker.tracks.values()]

    def _in_frame(self, detection: Detection, back: Turn, width: int, height: int) -> Detection:
        """A detection on the turned frame, in the frame's pixels."""
        keypoints = back.points_2d(detection.keypoints, width, height)
        visible = detection.visible if detection.visible.sum() >= 2 else np.ones(NUM_JOINTS, bool)
        box = keypoint_box(keypoints[visible], self.camera.width, self.camera.height)
        return Detection(detection.side, detection.score, keypoints, detection.visibility, box)

    @staticmethod
    def _from_track(track: Track, detected: bool) -> HandResult:
        keypoints = np.where(track.visible[:, None], track.keypoints, np.nan)
        return HandResult(
            track.side, track.score, track.box.copy(), keypoints, np.zeros((NUM_JOINTS, 3)), None, detected
        )

    def _lift(
        self,
        image: np.ndarray | None,
        on_device: DeviceFrame | None,
        hands: list[HandResult],
        result: FrameResult,
    ) -> None:
        """The 3D stage for all hands of the frame in one batched call (or the world landmarks), then
        placement."""
        if self.pose is not None:
            start = time.perf_counter()
            relative = (
                self._potter(image, on_device, hands) if self.lifting == "potter" else self._lifter(hands)
            )
            result.seconds["pose"] = time.perf_counter() - start
            for hand, joints in zip(hands, relative, strict=True):
                hand.relative = joints
        for hand in hands:
            self._place(hand)
        result.hands = hands

    def _potter(
        self, image: np.ndarray, on_device: DeviceFrame | None, hands: list[HandResult]
    ) -> np.ndarray:
        """POTTER on each hand's box, cropped from the frame turned to POTTER's orientation (on POTTER's
        device when the frame is there)."""
        card = self.pose.card
        turn = self._turn_to(card.orientation)
        size, mirrored = card.input_size, [is_mirrored(card.mirror_left, h.side) for h in hands]
        windows = []
        for hand in hands:
            x1, y1, x2, y2 = hand.box
            corners = turn.points_2d(np.array([[x1, y1], [x2, y2]]), self.camera.width, self.camera.height)
            windows.append(CropWindow.from_box(np.concatenate([corners.min(axis=0), corners.max(axis=0)])))
        events = self.events is not None
        if on_device is not None and self.pose.tensor_device == on_device.device:
            relative = self.pose.infer_tensors(on_device.turned(turn).crops(windows, size, mirrored, events))
        else:
            turned = turn.image(image)
            crops = []
            for window, mirror in zip(windows, mirrored, strict=True):
                crop = warp_crop(turned, window, size)
                crops.append(crop_input(mirror_crop(crop) if mirror else crop, events))
            relative = self.pose.infer(np.stack(crops))
        relative = [mirror_joints(j) if m else j for j, m in zip(relative, mirrored, strict=True)]
        return turn.inverse.points_3d(np.stack(relative))

    def _lifter(self, hands: list[HandResult]) -> np.ndarray:
        """The lifter on each hand's keypoints as the benchmark camera, turned to the lifter's
        orientation, would see them (the same rays), so any camera serves."""
        card = self.pose.card
        turn = self._turn_to(card.orientation)
        rays = self.camera.unproject(np.stack([h.keypoints for h in hands]), 1.0)
        keypoints = BENCHMARK_CAMERA.project(turn.points_3d(rays))
        valid = np.isfinite(keypoints).all(axis=2)
        normalised = np.nan_to_num(card.inputs.normalize(keypoints)).astype(np.float32)
        return turn.inverse.points_3d(self.pose.infer((normalised, valid)))

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

    def _fit_mano(self, result: FrameResult) -> None:
        """MANO for every placed hand, both in one batch, to its camera-frame joints and 2D keypoints."""
        placed = [h for h in result.hands if h.camera is not None and np.isfinite(h.camera).all()]
        if not placed:
            return
        start = time.perf_counter()
        joints, keypoints = np.stack([h.camera for h in placed]), np.stack([h.keypoints for h in placed])
        fits = self.mano.fit([h.side for h in placed], joints, keypoints, self.camera)
        for hand, fit in zip(placed, fits, strict=True):
            hand.mano = fit
        result.seconds["mano"] = time.perf_counter() - start

    def _smooth(self, hands: list[HandResult], stamp: float | None) -> None:
        """One-Euro on the hands' camera-frame joints when the settings ask for it and there is a stamp
        (seconds)."""
        config = self.config
        if not config.smoothing or stamp is None:
            return
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


def _event_representation(
    pose: Engine | None, detector: Engine | None, config: PipelineConfig
) -> EventRepresentation | None:
    """The event representation the pipeline's image models see (None: RGB images); they must agree."""
    seeing = [e for e in (detector, pose) if e is not None and e.card.name != "lifter"]
    if config.localisation == "given" and detector is not None:
        seeing.remove(detector)
    kinds = {e.card.name: e.card.events for e in seeing}
    if len(set(kinds.values())) > 1:
        described = ", ".join(f"{name} on {r.describe() if r else 'RGB images'}" for name, r in kinds.items())
        raise InputError(f"the models see different inputs ({described}): give models of one input")
    events = next(iter(kinds.values()), None)
    if events is not None and config.localisation == "mediapipe":
        raise InputError("event models need detector localisation (MediaPipe's models see RGB images)")
    return events


def as_event_frame(frame: np.ndarray, events: EventRepresentation) -> np.ndarray:
    """A contiguous (H, W, C) float32 event frame of the representation's channels; InputError otherwise."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.float32:
        got = getattr(frame, "dtype", type(frame).__name__)
        raise InputError(f"event frame of type {got}: expected float32 ({events.describe()})")
    if frame.ndim != 3 or frame.shape[2] != events.channels:
        raise InputError(f"event frame of shape {frame.shape}: expected (H, W, {events.channels})")
    return np.ascontiguousarray(frame)


def one_per_side(hands: list[FoundHand]) -> list[tuple[FoundHand, str]]:
    """MediaPipe's hands with a side each, at most one per side: the more confident of two hands given
    the same side keeps it, the other takes the other side (a person has one of each); a third is
    dropped."""
    ranked = sorted(hands, key=lambda h: -h.presence)[: len(HAND_SIDES)]
    by_confidence = sorted(ranked, key=lambda h: -h.handedness_score)
    sides: list[tuple[FoundHand, str]] = []
    for hand in by_confidence:
        taken = {side for _, side in sides}
        side = hand.side if hand.side not in taken else next(s for s in HAND_SIDES if s not in taken)
        sides.append((hand, side))
    return sides
