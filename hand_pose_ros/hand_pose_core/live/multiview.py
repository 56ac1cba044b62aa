"""`MultiViewPipeline`: hands in metres from several calibrated cameras at once (Aria's RGB camera and its
two SLAM cameras), where one camera alone misjudges a hand's depth by centimetres.

Per set of synchronised frames:
1. the reference view (the RGB camera) runs the single-view pipeline: its hands, sides and 3D shapes, each
   placed on its own (`geometry.placement`);
2. every other view gives its hands: with MediaPipe, the landmark model reads each reference hand where
   its single-view placement projects into that view (MediaPipe's palm detector finds few palms in grey
   SLAM frames, its landmark model reads hands there; see docs/multiview.md); with the detector or given
   keypoints, that view's own pipeline;
3. each reference hand takes, per view, the hand whose keypoints lie closest to its epipolar lines, if
   close enough (`MAX_EPIPOLAR_PX`) and of the same side;
4. its joints are triangulated from the views that took it (`geometry.views.triangulate`, weighted by
   keypoint confidence, outliers dropped) and the 3D stage's shape is fitted through them
   (`geometry.views.fit_shape`). A hand seen in one view only, or with too few joints triangulated, keeps
   its single-view placement.
A missing frame, a view without the hand, a disagreeing side: fewer views, counted in `fallbacks`, never
an exception.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hand_pose_core.errors import InputError
from hand_pose_core.geometry.aria import VrsFrame, device_views, load_device_calibration, vrs_frames
from hand_pose_core.geometry.views import View, epipolar_distance, fit_shape, triangulate
from hand_pose_core.live.drawing import contact_sheet, draw_skeleton
from hand_pose_core.live.hand_landmarker import as_rgb
from hand_pose_core.live.pipeline import FrameResult, GivenHand, HandPosePipeline, HandResult

MAX_EPIPOLAR_PX = 8.0  # median keypoint distance to the reference hand's epipolar lines
MIN_TRIANGULATED_JOINTS = 6
MIN_JOINTS_IN_VIEW = 11  # a reference hand is looked for in a view where this many of its joints project
VIEW_HISTORY = 30  # frames kept per view for pairing (a second of Aria's SLAM cameras)
VIEW_WAIT_S = 0.05  # how long a reference frame waits for another view's frame that is on its way
VIEW_FLOWING_NS = 1_000_000_000  # a view whose newest frame is this close to the stamp still flows


@dataclass
class MultiViewResult:
    frame: FrameResult  # the reference view's hands, placed from every view that saw them
    views: dict[str, list[HandResult]] = field(default_factory=dict)  # what each other view gave
    used: dict[str, list[str]] = field(default_factory=dict)  # side -> the views its joints came from
    # side -> view -> mean distance (pixels) of the placed joints, projected, from the view's keypoints
    reprojection_px: dict[str, dict[str, float]] = field(default_factory=dict)
    fallbacks: Counter = field(default_factory=Counter)  # why views did not count, and single-view hands
    single: dict[str, np.ndarray] = field(default_factory=dict)  # side -> the single-view placement


class MultiViewPipeline:
    """One `HandPosePipeline` per view on shared engines; `views[0]` is the reference, the frame results
    are in. The reference pipeline given is used as it is, its camera set to the reference view's."""

    def __init__(self, reference: HandPosePipeline, views: list[View]) -> None:
        if len(views) < 2:
            raise InputError("a multi-view pipeline needs at least two views")
        reference.set_camera(views[0].camera)
        self.reference, self.views = reference, views
        self.pipelines = {view.name: reference.sibling(view.camera) for view in views[1:]}

    @property
    def names(self) -> list[str]:
        return [view.name for view in self.views]

    def tune(self, **changes: float | int | bool) -> None:
        for pipeline in (self.reference, *self.pipelines.values()):
            pipeline.tune(**changes)

    def reset(self) -> None:
        for pipeline in (self.reference, *self.pipelines.values()):
            pipeline.reset()

    def process(
        self,
        frames: Mapping[str, np.ndarray | None],
        stamp: float | None = None,
        given: dict[str, list[GivenHand]] | None = None,
    ) -> MultiViewResult:
        """One set of frames by view name (None or absent: that view has no frame this time) -> the
        reference view's hands in metres. `given`, by view name, is for benchmark mode. Another view's
        frame is read only when the reference view has hands (a mapping may make frames on demand)."""
        given = given or {}
        reference = self.views[0]
        result = MultiViewResult(
            self.reference.process(frames.get(reference.name), None, given.get(reference.name), finish=False)
        )
        hands = result.frame.hands
        for view in self.views[1:]:
            result.views[view.name] = self._view_hands(view, frames, hands, given, result)
        for hand in hands:
            self._place(hand, result)
        self.reference.finish(result.frame, stamp)  # smoothing and MANO, on the joints of every view
        return result

    def _view_hands(
        self,
        view: View,
        frames: Mapping[str, np.ndarray | None],
        hands: list[HandResult],
        given: dict[str, list[GivenHand]],
        result: MultiViewResult,
    ) -> list[HandResult]:
        """The hands `view` gives for the reference hands: read where they project (MediaPipe) or found
        by the view's own pipeline."""
        if not hands:
            return []
        pipeline = self.pipelines[view.name]
        frame = frames.get(view.name)
        if frame is None and pipeline.needs_image:
            result.fallbacks[f"{view.name}: no frame"] += len(hands)
            return []
        if pipeline.config.localisation != "mediapipe":
            found = pipeline.process(frame, None, given.get(view.name))
            for _, why in found.skipped:
                result.fallbacks[f"{view.name}: {why}"] += 1
            return found.hands
        expected = [view.project(h.camera) if h.camera is not None else None for h in hands]
        looked = [
            k for k in expected if k is not None and view.camera.contains(k).sum() >= MIN_JOINTS_IN_VIEW
        ]
        result.fallbacks[f"{view.name}: hand outside the view"] += len(hands) - len(looked)
        try:
            read = pipeline.read_at(frame, looked)
        except InputError as exc:
            result.fallbacks[f"{view.name}: {exc}"] += len(looked)
            return []
        return [hand for hand in read if hand is not None]

    def _place(self, hand: HandResult, result: MultiViewResult) -> None:
        """Triangulate a reference hand from the views that saw it and fit its shape through the joints;
        otherwise it keeps its single-view placement."""
        reference = self.views[0]
        if hand.camera is not None:
            result.single[hand.side] = hand.camera.copy()
        seen = [(reference, hand)]
        for view in self.views[1:]:
            match = self._match(hand, view, result)
            if match is not None:
                seen.append((view, match))
        camera = None
        if len(seen) >= 2:
            keypoints = np.stack([h.keypoints for _, h in seen])
            weights = np.stack([h.joint_confidence(view.camera) for view, h in seen])
            solved = triangulate([view for view, _ in seen], keypoints, weights)
            if np.isfinite(solved.joints).all(axis=1).sum() >= MIN_TRIANGULATED_JOINTS:
                camera = fit_shape(hand.relative, solved.joints, solved.weights)
        if camera is None:
            result.fallbacks["single view"] += 1
            seen = seen[:1]
        else:
            hand.camera, hand.relative = camera, camera - camera[0]
        result.used[hand.side] = [view.name for view, _ in seen]
        if hand.camera is not None:
            result.reprojection_px[hand.side] = {
                view.name: float(np.nanmean(np.linalg.norm(view.project(hand.camera) - h.keypoints, axis=1)))
                for view, h in seen
            }

    def _match(self, hand: HandResult, view: View, result: MultiViewResult) -> HandResult | None:
        """The hand of `view` on `hand`'s epipolar lines, if it is close enough and of the same side."""
        candidates = result.views[view.name]
        if not candidates:
            return None
        distances = [epipolar_distance(self.views[0], hand.keypoints, view, c.keypoints) for c in candidates]
        best = int(np.argmin(distances))
        if distances[best] > MAX_EPIPOLAR_PX:
            why = (
                "too few joints in both views"
                if np.isinf(distances[best])
                else "no hand on the epipolar lines"
            )
            result.fallbacks[f"{view.name}: {why}"] += 1
            return None
        if candidates[best].side != hand.side:
            result.fallbacks[f"{view.name}: handedness disagrees"] += 1
            return None
        return candidates[best]


class ViewFrames:
    """The recent frames of the other views by capture stamp, so that each reference frame is paired with
    each view's nearest frame within a tolerance (cameras of one rig are triggered together, but their
    frames arrive one by one). A view's frame may come just after the reference frame: `pair` waits a
    little for it, but only while that view's frames flow and none newer than the stamp has come. Safe to
    call from a subscription callback (`add`) and a worker (`pair`) at once."""

    def __init__(self, names: list[str], tolerance_ns: int, wait_s: float = VIEW_WAIT_S) -> None:
        self.frames: dict[str, OrderedDict[int, Any]] = {name: OrderedDict() for name in names}
        self.tolerance_ns, self.wait_s = tolerance_ns, wait_s
        self.arrived = threading.Condition()
        self.paired: Counter = Counter()  # view -> reference frames it had a frame for
        self.missing: Counter = Counter()  # view -> reference frames it had none for

    def add(self, name: str, stamp_ns: int, frame: Any) -> None:
        with self.arrived:
            frames = self.frames[name]
            frames[stamp_ns] = frame
            while len(frames) > VIEW_HISTORY:
                frames.popitem(last=False)
            self.arrived.notify_all()

    def pair(self, stamp_ns: int) -> dict[str, Any]:
        """Each view's frame nearest to `stamp_ns` within the tolerance, or None (counted either way)."""
        deadline = time.monotonic() + self.wait_s
        paired = {}
        with self.arrived:
            for name, frames in self.frames.items():
                while True:
                    match = self._nearest(frames, stamp_ns)
                    left = deadline - time.monotonic()
                    if match is not None or not self._on_the_way(frames, stamp_ns) or left <= 0:
                        break
                    self.arrived.wait(left)
                paired[name] = match
                (self.paired if match is not None else self.missing)[name] += 1
        return paired

    def _on_the_way(self, frames: OrderedDict[int, Any], stamp_ns: int) -> bool:
        """Whether a frame of the view captured within the tolerance of `stamp_ns` may still come: the
        view flows, nothing newer than the stamp has come, and (once its rate is known) its next frames
        are due near the stamp. A camera at half the reference's rate so costs no wait on the frames it
        does not take."""
        stamps = list(frames)
        if not stamps or not stamp_ns - VIEW_FLOWING_NS <= stamps[-1] < stamp_ns:
            return False
        if len(stamps) < 2:
            return True
        period = float(np.median(np.diff(stamps[-5:])))
        if period <= 0:
            return True
        due = stamps[-1] + max(1, round((stamp_ns - stamps[-1]) / period)) * period
        return abs(due - stamp_ns) <= self.tolerance_ns + period / 10

    def _nearest(self, frames: OrderedDict[int, Any], stamp_ns: int) -> Any:
        if not frames:
            return None
        nearest = min(frames, key=lambda s: abs(s - stamp_ns))
        return frames[nearest] if abs(nearest - stamp_ns) <= self.tolerance_ns else None


def draw_views(
    frames: dict[str, np.ndarray | None], views: list[View], result: MultiViewResult
) -> Image.Image:
    """The views side by side, turned upright: in each, the hands it gave (thin) and the placed reference
    hands projected back into it (thick: where the 3D joints say the hand is)."""
    tiles = []
    for view in views:
        frame = frames.get(view.name)
        blank = np.zeros((view.camera.height, view.camera.width, 3), np.uint8)
        tile = Image.fromarray(as_rgb(frame) if frame is not None else blank)
        seen = result.frame.hands if view is views[0] else result.views.get(view.name, [])
        for hand in seen:
            draw_skeleton(tile, hand.keypoints, hand.side, width=1)
        for hand in result.frame.hands:
            if hand.camera is not None:
                projected = view.project(hand.camera)
                draw_skeleton(
                    tile,
                    np.where(view.camera.contains(projected)[:, None], projected, np.nan),
                    hand.side,
                    width=3,
                )
        tiles.append(tile.rotate(-90, expand=True))
    return contact_sheet(tiles, columns=len(tiles), tile=384)


def recording_views(
    path: Path, pipeline: MultiViewPipeline, tolerance_ns: int = 5_000_000
) -> Iterator[tuple[dict[str, np.ndarray | None], MultiViewResult]]:
    """Each RGB frame of an Aria recording with the other cameras' frames captured within `tolerance_ns`
    of it, all undistorted, through the multi-view pipeline (which must have the recording's own views).
    Frames are read one at a time in capture order: an RGB frame goes through once a frame captured after
    its tolerance has come, paired as the node pairs them (`ViewFrames`)."""
    names = pipeline.names
    calibration = load_device_calibration(path)
    undistorters = {view.name: u for view, u in device_views(calibration, str(path), names)}
    others = ViewFrames(names[1:], tolerance_ns, wait_s=0.0)
    waiting: list[VrsFrame] = []

    def run(reference: VrsFrame) -> tuple[dict[str, np.ndarray | None], MultiViewResult]:
        frames: dict[str, np.ndarray | None] = {names[0]: undistorters[names[0]].undistort(reference.image)}
        for name, raw in others.pair(reference.capture_ns).items():
            frames[name] = undistorters[name].undistort(raw) if raw is not None else None
        return frames, pipeline.process(frames, reference.capture_ns / 1e9)

    for frame in vrs_frames(path, names):
        while waiting and frame.capture_ns > waiting[0].capture_ns + tolerance_ns:
            yield run(waiting.pop(0))
        if frame.label == names[0]:
            waiting.append(frame)
        else:
            others.add(frame.label, frame.capture_ns, frame.image)
    for reference in waiting:
        yield run(reference)
