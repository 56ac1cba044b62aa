"""The pipeline over the frames of an annotation file: `hand-pose infer`, training's validation and the
INT8 accuracy cost all predict annotated hands this one way. The frames' pixels come from a frame
source: the release's image folder, or (event cameras) event take bags drawn as a representation.

Benchmark mode (`given` boxes) predicts every annotated hand from its box or 2D keypoints. Detector mode
predicts the annotated hands the detector finds; with 2D ground truth at hand it also scores the
detector, and with 3D ground truth the camera-frame joints (MPJPE, wrist depth error).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from hand_pose_core.egoexo.formats import Annotations, Predictions, image_path
from hand_pose_core.egoexo.frames import FrameRecord, read_image, select_frames
from hand_pose_core.egoexo.metrics import evaluate, hand_label
from hand_pose_core.errors import InputError
from hand_pose_core.events.representations import EventRepresentation
from hand_pose_core.geometry.camera import PinholeCamera
from hand_pose_core.live.detection import DetectionScores
from hand_pose_core.live.multiview import MultiViewPipeline
from hand_pose_core.live.pipeline import GivenHand, HandPosePipeline


@dataclass
class PipelineRun:
    predictions: Predictions = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (hand label, reason)
    frame_seconds: list[float] = field(default_factory=list)
    detection: DetectionScores | None = None
    wrist_depth_errors_mm: list[float] = field(default_factory=list)
    camera_mpjpe_mm: float | None = None

    @property
    def num_predicted(self) -> int:
        return sum(len(hands) for frames in self.predictions.values() for hands in frames.values())

    def latency_ms(self, percentile: float) -> float:
        return (
            float(np.percentile(self.frame_seconds, percentile) * 1000)
            if self.frame_seconds
            else float("nan")
        )


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


@dataclass(frozen=True)
class FrameInput:
    """A frame to run: its annotation record, and its image or why there is none."""

    record: FrameRecord
    image: np.ndarray | None = None
    problem: str | None = None


def annotated_frames(
    annotations: Annotations, frames: Path | FrameSource | None, split: str, needs_image: bool
) -> Iterator[FrameInput]:
    """The frames of an annotation file with their pixels: images from the release's folder layout (a
    path), or any frame source."""
    source = frame_source(frames)
    if needs_image and source is None:
        raise InputError("POTTER needs --image-dir (undistorted images)")
    for record in select_frames(annotations):
        if not needs_image:
            yield FrameInput(record)
            continue
        image = source.read(split, record.take_name, record.frame_number)
        where = source.where(split, record.take_name, record.frame_number)
        yield FrameInput(record, image, None if image is not None else f"image cannot be read: {where}")


def run_pipeline(
    pipeline: HandPosePipeline,
    frames: Iterable[FrameInput],
    *,
    absolute: bool = False,
    truth: Annotations | None = None,
    progress: bool = True,
    total: int | None = None,
) -> PipelineRun:
    """Every frame through the pipeline; each take starts with fresh tracks. Predictions are kept for the
    hands each record annotates. `truth` (the same frames with 2D and 3D ground truth) adds the detector's
    and the camera frame's scores."""
    camera = pipeline.camera
    run = PipelineRun(detection=DetectionScores() if truth is not None and pipeline.detector else None)
    previous_take = None
    for frame in tqdm(frames, desc="pipeline", unit="frame", total=total, disable=not progress, leave=False):
        record = frame.record
        if record.take_uid != previous_take:
            pipeline.reset()
            previous_take = record.take_uid
        labels = {side: hand_label(record.take_uid, record.frame_number, side) for side in record.frame.hands}
        if frame.problem is not None:
            run.skipped += [(label, frame.problem) for label in labels.values()]
            pipeline.reset()
            continue
        given = [GivenHand(side, hand.bbox, hand.joints_2d) for side, hand in record.frame.hands.items()]
        start = time.perf_counter()
        result = pipeline.process(frame.image, stamp=None, given=given)
        run.frame_seconds.append(time.perf_counter() - start)
        explained = set()
        for side, reason in result.skipped:
            skipped_sides = list(labels) if side == "frame" else [side] if side in labels else []
            explained.update(skipped_sides)
            run.skipped += [(labels[s], reason) for s in skipped_sides]
        found = {hand.side: hand for hand in result.hands}
        for side, label in labels.items():
            hand = found.get(side)
            if hand is None:
                if side not in explained:
                    run.skipped.append((label, "not detected"))
                continue
            if absolute and hand.camera is None:
                run.skipped.append(
                    (label, "not placed in the camera frame (too few 2D keypoints, or no solution)")
                )
                continue
            frames_of_take = run.predictions.setdefault(record.take_uid, {})
            frames_of_take.setdefault(record.frame_number, {})[side] = (
                hand.camera if absolute else hand.relative
            )
        if truth is not None:
            _score_frame(run, result.hands, truth, record, camera.width, camera.height)
    if truth is not None and absolute and run.predictions:
        report = evaluate(run.predictions, truth, offset=False, allow_missing=True)
        run.camera_mpjpe_mm = report["mpjpe"]
    return run


def _score_frame(
    run: PipelineRun, hands: list, truth: Annotations, record: FrameRecord, width: int, height: int
) -> None:
    take = truth.takes.get(record.take_uid)
    frame = take.frames.get(record.frame_number) if take is not None else None
    if frame is None:
        return
    if run.detection is not None:
        run.detection.add(hands, frame, width, height)
    for hand in hands:
        annotated = frame.hands.get(hand.side)
        if hand.camera is not None and annotated is not None and annotated.has_3d:
            run.wrist_depth_errors_mm.append(abs(hand.camera[0, 2] - annotated.joints_3d[0, 2]) * 1000.0)


def format_run(run: PipelineRun) -> str:
    """The pipeline's scores and latency as printed lines."""
    lines = [
        f"per-frame latency: p50 {run.latency_ms(50):.1f} ms, p90 {run.latency_ms(90):.1f} ms "
        f"over {len(run.frame_seconds)} frames"
    ]
    if run.detection is not None:
        scores = run.detection
        lines.append(
            f"detection at IoU 0.5: recall {scores.recall:.3f}, precision {scores.precision:.3f}; "
            f"2D keypoint error {scores.keypoint_error_px:.2f} px"
        )
    if run.camera_mpjpe_mm is not None:
        lines.append(f"camera-frame MPJPE {run.camera_mpjpe_mm:.2f} mm")
    if run.wrist_depth_errors_mm:
        errors = run.wrist_depth_errors_mm
        lines.append(f"wrist depth error: mean {np.mean(errors):.2f} mm, median {np.median(errors):.2f} mm")
    return "\n".join(lines)


# Stand-in 2D labels of the other views in benchmark mode: the truth projected, with the release's label
# noise (its annotators clicked keypoints in every view).
VIEW_LABEL_NOISE_PX = 1.5


@dataclass
class ViewsRun:
    """One pass of a multi-view pipeline over annotated frames: the same hands placed from the reference
    view alone (`single`) and from every view (`multi`), and what the views gave."""

    single: PipelineRun = field(default_factory=PipelineRun)
    multi: PipelineRun = field(default_factory=PipelineRun)
    fallbacks: Counter = field(default_factory=Counter)
    views_per_hand: Counter = field(default_factory=Counter)
    seen_twice: set[tuple[str, int, str]] = field(default_factory=set)  # (take, frame, side) of 2+ views


def view_folder(image_root: Path, view: str, reference: str) -> Path:
    """Where a view's undistorted frames are in a synthetic multi-view set (`hand-pose synth --slam`):
    the reference under `undistorted`, the others under their camera's label."""
    return Path(image_root) / ("undistorted" if view == reference else view)


def run_views(
    pipeline: MultiViewPipeline,
    truth: Annotations,
    image_root: Path,
    split: str,
    progress: bool = True,
) -> ViewsRun:
    """Every annotated frame of `truth` (with 3D, in the reference camera's frame) through the multi-view
    pipeline; only hands placed both ways are scored, so both scores are of the same hands. In `given`
    localisation the reference view gets the annotation's boxes and keypoints and the other views the
    truth projected into them with label noise."""
    run, reference = ViewsRun(), pipeline.views[0].name
    noise = np.random.default_rng(0)
    previous_take = None
    for record in tqdm(select_frames(truth), desc="views", unit="frame", disable=not progress, leave=False):
        if record.take_uid != previous_take:
            pipeline.reset()
            previous_take = record.take_uid
        frames = {
            view.name: read_image(
                image_path(
                    view_folder(image_root, view.name, reference),
                    split,
                    record.take_name,
                    record.frame_number,
                )
            )
            for view in pipeline.views
        }
        given = None
        if pipeline.reference.config.localisation == "given":
            given = {
                view.name: [
                    GivenHand(side, hand.bbox, hand.joints_2d)
                    if view.name == reference
                    else GivenHand(side, None, _labels(view.project(hand.joints_3d), view.camera, noise))
                    for side, hand in record.frame.hands.items()
                ]
                for view in pipeline.views
            }
        start = time.perf_counter()
        result = pipeline.process(frames, None, given)
        run.multi.frame_seconds.append(time.perf_counter() - start)
        run.fallbacks.update(result.fallbacks)
        for hand in result.frame.hands:
            annotated = record.frame.hands.get(hand.side)
            single = result.single.get(hand.side)
            if annotated is None or not annotated.has_3d or single is None or hand.camera is None:
                continue
            run.views_per_hand[len(result.used[hand.side])] += 1
            if len(result.used[hand.side]) > 1:
                run.seen_twice.add((record.take_uid, record.frame_number, hand.side))
            for scored, joints in ((run.single, single), (run.multi, hand.camera)):
                frames_of_take = scored.predictions.setdefault(record.take_uid, {})
                frames_of_take.setdefault(record.frame_number, {})[hand.side] = joints
                scored.wrist_depth_errors_mm.append(abs(joints[0, 2] - annotated.joints_3d[0, 2]) * 1000.0)
    for scored in (run.single, run.multi):
        if scored.predictions:
            scored.camera_mpjpe_mm = evaluate(scored.predictions, truth, offset=False, allow_missing=True)[
                "mpjpe"
            ]
    return run


def _labels(projected: np.ndarray, camera: PinholeCamera, noise: np.random.Generator) -> np.ndarray:
    labels = projected + noise.normal(0.0, VIEW_LABEL_NOISE_PX, projected.shape)
    return np.where(camera.contains(labels)[:, None], labels, np.nan)


def views_report(run: ViewsRun, truth: Annotations) -> dict:
    """Camera-frame MPJPE and wrist depth error (mm) of one view and of every view, for all the hands
    placed both ways and for those two or more views saw."""

    def scores(scored: PipelineRun, keep) -> dict[str, float | int]:
        predictions: Predictions = {}
        depth = []
        for take, frames in scored.predictions.items():
            for frame, hands in frames.items():
                for side, joints in hands.items():
                    if keep(take, frame, side):
                        predictions.setdefault(take, {}).setdefault(frame, {})[side] = joints
                        wrist = truth.takes[take].frames[frame].hands[side].joints_3d[0, 2]
                        depth.append(abs(joints[0, 2] - wrist) * 1000.0)
        if not predictions:
            return {"hands": 0}
        report = evaluate(predictions, truth, offset=False, allow_missing=True)
        return {"hands": len(depth), "mpjpe_mm": report["mpjpe"], "wrist_depth_mm": float(np.mean(depth))}

    subsets = {
        "all hands": lambda *key: True,
        "hands two or more views saw": lambda *key: key in run.seen_twice,
    }
    return {
        subset: {
            name: scores(scored, keep)
            for name, scored in (("one view", run.single), ("every view", run.multi))
        }
        for subset, keep in subsets.items()
    } | {
        "views per hand": dict(sorted(run.views_per_hand.items())),
        "fallbacks": dict(run.fallbacks.most_common()),
        "frame ms p50": run.multi.latency_ms(50),
    }


def format_views_report(report: dict) -> str:
    """The report as a table of lines."""
    lines = [f"{'':<42}{'hands':>7}{'camera MPJPE':>15}{'wrist depth':>13}"]
    for subset in ("all hands", "hands two or more views saw"):
        for name, scores in report[subset].items():
            if scores["hands"]:
                lines.append(
                    f"{subset + ', ' + name:<42}{scores['hands']:>7}{scores['mpjpe_mm']:>12.1f} mm"
                    f"{scores['wrist_depth_mm']:>10.1f} mm"
                )
    lines.append("views per hand: " + ", ".join(f"{n}: {c}" for n, c in report["views per hand"].items()))
    lines.append(
        "why views sat out: " + (", ".join(f"{k}: {v}" for k, v in report["fallbacks"].items()) or "-")
    )
    return "\n".join(lines)
