"""Hand landmarks for live frames: MediaPipe Hands' tracking graph (HandLandmarkTrackingCpu) on our engines.

Per frame: palm detection runs only while fewer than `max_hands` hands are tracked (always in static
mode); palm regions and the regions tracked from the previous frame's landmarks are merged; the
landmark model runs once on all regions together; hands whose presence is above the threshold are kept
and their landmarks give the next frame's regions, as `hand_landmark_tracking_cpu.pbtxt` in MediaPipe
0.10.21 wires it (docs/real_hands.md says what we follow and where we differ). The engines are anything
with `infer(batch) -> outputs` in the layout `PalmEngine` and `LandmarkEngine` describe, so the graph
does not care which runtime runs the models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hand_pose_core.errors import InputError
from hand_pose_core.geometry.crop import box_iou
from hand_pose_core.live.palms import (
    ANCHOR_CENTRES,
    PALM_OUTPUT_WIDTH,
    PalmDetection,
    letterbox_input,
    palm_to_region,
    palms_from_output,
)
from hand_pose_core.live.regions import (
    RotatedRect,
    associate_regions,
    crop_region,
    project_to_image,
    region_from_landmarks,
    rotate_world,
)

LANDMARK_INPUT_SIZE = 224
NUM_LANDMARKS = 21
# The landmark engine's output row: landmarks, presence, P("Left"), world landmarks.
LANDMARKS, PRESENCE, LEFT_PROBABILITY, WORLD_LANDMARKS = slice(0, 63), 63, 64, slice(65, 128)
LANDMARK_OUTPUT_WIDTH = 128
Z_SCALE = 0.4  # TensorsToLandmarksCalculator's normalize_z: normalized z = raw z / 224 / 0.4
PIXEL_SCALE = np.float32(1.0 / 255.0)
SAME_HAND_IOU = 0.5  # model inputs are pixel/255, as MediaPipe's float conversion


class PalmEngine(Protocol):
    """The palm detector: (N, 3, 192, 192) float32 RGB/255 -> (N, 2016, 19): 18 regressors, score logit."""

    def infer(self, batch: np.ndarray) -> np.ndarray: ...


class LandmarkEngine(Protocol):
    """The landmark model: (N, 3, 224, 224) float32 RGB/255 -> (N, 128): 21x3 landmarks in 224-px units,
    presence, P(MediaPipe's "Left"), 21x3 world landmarks in metres."""

    def infer(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class HandLandmarkerConfig:
    """MediaPipe Hands' options (the defaults of `mediapipe/python/solutions/hands.py`), plus whether the
    frames are mirrored (selfie views)."""

    max_hands: int = 2
    min_detection_confidence: float = 0.5  # palm score threshold
    min_presence_confidence: float = 0.5  # hand presence threshold (MediaPipe's min_tracking_confidence)
    static_image_mode: bool = False  # True: every frame on its own, palm detection each time
    # While some hands are tracked, look for more every this many frames; when tracking loses a hand on a
    # frame this skipped, look on that frame at once. MediaPipe looks on every frame with fewer than
    # max_hands tracked; 1 does as it does.
    palm_interval: int = 1
    mirrored: bool = False  # True: frames are mirrored, so MediaPipe's handedness label is the person's
    # One deviation from MediaPipe: two palm regions of one hand can both yield landmarks, and MediaPipe
    # then reports (and tracks) the hand twice, often as a left and a right hand; we keep the more
    # present of two hands whose keypoint boxes overlap by more than SAME_HAND_IOU.

    def __post_init__(self) -> None:
        if self.max_hands < 1:
            raise InputError(f"max_hands must be at least 1, got {self.max_hands}")
        if self.palm_interval < 1:
            raise InputError(f"palm_interval must be at least 1, got {self.palm_interval}")
        for name in ("min_detection_confidence", "min_presence_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class FoundHand:
    """One hand in one frame, in the frame's pixels."""

    side: str  # the person's hand, "left" or "right"
    handedness_score: float  # confidence in `side`, at least 0.5
    presence: float
    keypoints: np.ndarray  # (21, 2) x, y pixels
    depth: np.ndarray  # (21,) z relative to the wrist, pixels (scaled with the image width, as MediaPipe's z)
    world: np.ndarray  # (21, 3) metres, origin near the hand's centre
    box: np.ndarray  # (4,) x1, y1, x2, y2: the tight box of the keypoints
    region: RotatedRect  # the region the landmarks were read from
    tracked: bool  # the region came from the previous frame's landmarks, not from a palm


@dataclass(frozen=True)
class FrameDiagnostics:
    """What happened inside the graph on the last frame, for tests and timing."""

    palm_detection_ran: bool
    palms: tuple[PalmDetection, ...]
    palm_regions: tuple[RotatedRect, ...]
    next_regions: tuple[RotatedRect, ...]  # from this frame's hands, for the next frame


NO_FRAME = FrameDiagnostics(False, (), (), ())


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A contiguous (H, W, 3) uint8 RGB frame from RGB or grey input; InputError for anything else."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        got = getattr(image, "dtype", type(image).__name__)
        raise InputError(f"image of type {got}: expected 8-bit pixels (a uint8 numpy array)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    raise InputError(f"image of shape {image.shape}: expected (H, W) or (H, W, 3)")


def model_input(images: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float32 pixel/255, the models' input."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)) * PIXEL_SCALE


class HandLandmarker:
    """MediaPipe Hands' graph over our engines, with its tracking state between frames."""

    def __init__(
        self,
        palm_engine: PalmEngine,
        landmark_engine: LandmarkEngine,
        config: HandLandmarkerConfig | None = None,
    ) -> None:
        self.palm_engine = palm_engine
        self.landmark_engine = landmark_engine
        self.config = config or HandLandmarkerConfig()
        self.last_frame = NO_FRAME
        self._tracked: list[RotatedRect] = []
        self._frames_since_palms = 0

    def reset(self) -> None:
        """Forget the tracked hands: the next frame starts with palm detection."""
        self._tracked = []
        self._frames_since_palms = 0
        self.last_frame = NO_FRAME

    def process(self, image: np.ndarray) -> list[FoundHand]:
        """The hands in one RGB frame (uint8 (H, W, 3), or grey (H, W) / (H, W, 1)), in MediaPipe's order."""
        frame = as_rgb(image)
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            self.reset()
            return []
        tracked = [] if self.config.static_image_mode else self._tracked
        due = not tracked or self._frames_since_palms + 1 >= self.config.palm_interval
        palm_detection_ran = len(tracked) < self.config.max_hands and due
        palms, palm_regions, hands, next_regions = self._find(frame, tracked, palm_detection_ran)
        lost = len(next_regions) < len(tracked)
        if lost and len(tracked) < self.config.max_hands and not palm_detection_ran:
            # palm_interval skipped the palm detector on a frame where MediaPipe would have run it: run it
            # now, so that a hand lost from tracking is found again on this same frame
            palm_detection_ran = True
            palms, palm_regions, hands, next_regions = self._find(frame, tracked, palm_detection_ran)
            lost = len(next_regions) < len(tracked)
        self._frames_since_palms = 0 if palm_detection_ran else self._frames_since_palms + 1
        if lost:  # a hand that left: look for hands on the next frame
            self._frames_since_palms = self.config.palm_interval
        self._tracked = next_regions
        self.last_frame = FrameDiagnostics(
            palm_detection_ran, tuple(palms), tuple(palm_regions), tuple(next_regions)
        )
        return hands

    def _find(
        self, frame: np.ndarray, tracked: list[RotatedRect], detect_palms: bool
    ) -> tuple[list[PalmDetection], list[RotatedRect], list[FoundHand], list[RotatedRect]]:
        """Palms (if `detect_palms`) and their regions, merged with the tracked regions, then the hands
        read in them and the regions for the next frame."""
        height, width = frame.shape[:2]
        palms = self._detect_palms(frame) if detect_palms else []
        palm_regions = [palm_to_region(palm, width, height) for palm in palms]
        regions = [
            (region, from_tracking)
            for region, from_tracking in associate_regions(palm_regions, tracked)
            if region.is_usable(width, height)
        ]
        return palms, palm_regions, *self._read_hands(frame, regions)

    def _detect_palms(self, frame: np.ndarray) -> list[PalmDetection]:
        """The palm detector on the whole frame: its best max_hands palms (sections B and C)."""
        tensor, padding = letterbox_input(frame)
        raw = np.asarray(self.palm_engine.infer(model_input(tensor[None])))
        if raw.shape != (1, len(ANCHOR_CENTRES), PALM_OUTPUT_WIDTH):
            raise ValueError(f"palm engine returned shape {raw.shape}, expected (1, 2016, 19)")
        return palms_from_output(raw[0], padding, self.config.min_detection_confidence, self.config.max_hands)

    def _read_hands(
        self, frame: np.ndarray, regions: list[tuple[RotatedRect, bool]]
    ) -> tuple[list[FoundHand], list[RotatedRect]]:
        """The landmark model on every region in one batch: the hands above the presence threshold and
        the regions their landmarks give for the next frame."""
        hands, next_regions = [], []
        height, width = frame.shape[:2]
        for hand in self._read(frame, regions):
            if hand is None:
                continue
            if any(
                box_iou(hand.box, other.box) > SAME_HAND_IOU and other.presence >= hand.presence
                for other in hands
            ):
                continue  # the same hand read twice from two regions (see HandLandmarkerConfig)
            kept = [i for i, other in enumerate(hands) if box_iou(hand.box, other.box) <= SAME_HAND_IOU]
            hands, next_regions = [hands[i] for i in kept], [next_regions[i] for i in kept]
            hands.append(hand)
            next_regions.append(region_from_landmarks(hand.keypoints / (width, height), width, height))
        return hands, next_regions

    def read_at(self, image: np.ndarray, keypoints: list[np.ndarray]) -> list[FoundHand | None]:
        """The landmark model in the regions that hands with these (21, 2) pixel keypoints would be read
        from next, in one batch, for each the hand or None below the presence threshold. For hands found
        elsewhere (another camera's hands projected into this one), so the palm detector is not needed
        (it finds few palms in grey frames, where the landmark model still reads hands); tracking is left
        as it was."""
        frame = as_rgb(image)
        height, width = frame.shape[:2]
        regions = [region_from_landmarks(k / (width, height), width, height) for k in keypoints]
        return self._read(frame, [(region, False) for region in regions])

    def _read(self, frame: np.ndarray, regions: list[tuple[RotatedRect, bool]]) -> list[FoundHand | None]:
        """The landmark model on every region in one batch: each region's hand, or None when it is not
        present enough."""
        if not regions:
            return []
        crops = np.stack([crop_region(frame, region, LANDMARK_INPUT_SIZE) for region, _ in regions])
        outputs = np.asarray(self.landmark_engine.infer(model_input(crops)), dtype=np.float64)
        if outputs.shape != (len(regions), LANDMARK_OUTPUT_WIDTH):
            raise ValueError(f"landmark engine returned {outputs.shape}, expected ({len(regions)}, 128)")
        height, width = frame.shape[:2]
        hands: list[FoundHand | None] = []
        for (region, from_tracking), output in zip(regions, outputs, strict=True):
            presence = float(output[PRESENCE])
            crop_points = output[LANDMARKS].reshape(NUM_LANDMARKS, 3) / LANDMARK_INPUT_SIZE
            crop_points[:, 2] /= Z_SCALE
            landmarks = project_to_image(crop_points, region)
            present = presence > self.config.min_presence_confidence and np.isfinite(landmarks).all()
            hands.append(
                self._hand(output, presence, landmarks, region, from_tracking, width, height)
                if present
                else None
            )
        return hands

    def _hand(
        self,
        output: np.ndarray,
        presence: float,
        landmarks: np.ndarray,
        region: RotatedRect,
        from_tracking: bool,
        width: int,
        height: int,
    ) -> FoundHand:
        """One kept hand in pixels. MediaPipe labels handedness as seen in a mirrored (selfie) image:
        its "Left" is the person's right hand unless the frame is mirrored."""
        p_left = float(output[LEFT_PROBABILITY])
        label_is_left = p_left >= 0.5
        is_left = label_is_left if self.config.mirrored else not label_is_left
        keypoints = landmarks[:, :2] * (width, height)
        return FoundHand(
            side="left" if is_left else "right",
            handedness_score=max(p_left, 1.0 - p_left),
            presence=presence,
            keypoints=keypoints,
            depth=landmarks[:, 2] * width,
            world=rotate_world(output[WORLD_LANDMARKS].reshape(NUM_LANDMARKS, 3), region.rotation),
            box=np.concatenate([keypoints.min(axis=0), keypoints.max(axis=0)]),
            region=region,
            tracked=from_tracking,
        )
