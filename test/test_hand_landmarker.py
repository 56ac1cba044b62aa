"""Our MediaPipe Hands graph (hand_pose_core.live) against MediaPipe 0.10.21's own outputs on six real photos.

The models are MediaPipe's TFLite files run with ai-edge-litert (test/litert_models.py), so every
difference left is the graph's (or the runtimes' last bits). The expectations are MediaPipe's outputs,
not human labels (data/README.md). Measured: median keypoint differences about 1e-3 px, palm boxes and
regions about 1e-6 (normalized); the tolerances below leave room for a runtime's rounding, not for a
different graph.
"""

from __future__ import annotations

import json
import math
from dataclasses import astuple
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from litert_models import landmark_engine, palm_engine

from hand_pose_core.errors import InputError
from hand_pose_core.live.hand_landmarker import HandLandmarker, HandLandmarkerConfig
from hand_pose_core.live.palms import ANCHOR_CENTRES, weighted_nms
from hand_pose_core.live.regions import RotatedRect, associate_regions, crop_region, normalize_radians

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
PHOTOS = sorted(path.stem for path in REAL.glob("mp_*.json"))
NEGATIVE_PHOTO = "mp_negative_palm_no_hand"
MEDIAN_KEYPOINT_TOLERANCE_PX = 2.0  # what any faithful graph must meet
EXACT_KEYPOINT_TOLERANCE_PX = {"static": 0.05, "video": 0.5}  # max, measured 0.01 / 0.1
WORLD_TOLERANCE_M = 1e-3  # measured 1e-4
HANDEDNESS_SCORE_TOLERANCE = 1e-3
PALM_TOLERANCE = 1e-5  # normalized box and keypoints, score; measured 2e-7
PALM_REGION_TOLERANCE = 1e-4  # normalized, radians; measured 3e-6
LANDMARK_REGION_TOLERANCE = 2e-3  # measured 3e-4 (it follows the landmarks)

# (JSON section, model variant, how the frame is fed)
CASES = {
    "static_full": ("static_full_model", "full", "static"),
    "static_lite": ("static_lite_model", "lite", "static"),
    "video_frame2": ("video_full_model_frame2_same_image", "full", "video"),
    "flipped": ("static_full_model_on_horizontally_flipped_image", "full", "flipped"),
}


@cache
def engines(variant: str) -> tuple:
    return palm_engine(variant), landmark_engine(variant)


@cache
def photo(name: str) -> tuple[np.ndarray, dict]:
    image = cv2.cvtColor(cv2.imread(str(REAL / f"{name}.jpg")), cv2.COLOR_BGR2RGB)
    return image, json.loads((REAL / f"{name}.json").read_text())


@cache
def run(name: str, case: str, mirrored: bool = False, min_presence: float = 0.5):
    """Our graph on a photo as MediaPipe was run for `case`: (hands, frame diagnostics, expectation)."""
    section, variant, feed = CASES[case]
    image, expected = photo(name)
    config = HandLandmarkerConfig(
        static_image_mode=feed != "video", mirrored=mirrored, min_presence_confidence=min_presence
    )
    landmarker = HandLandmarker(*engines(variant), config)
    frame = np.ascontiguousarray(image[:, ::-1]) if feed == "flipped" else image
    hands = landmarker.process(frame)
    if feed == "video":
        hands = landmarker.process(frame)
    return hands, landmarker.last_frame, expected["detail"][section]


def matched(hands, expected_hands) -> list:
    """(our hand, MediaPipe's hand) pairs, each of MediaPipe's hands with our nearest one."""
    pairs = []
    for theirs in expected_hands:
        points = np.array(theirs["landmarks_px"])
        ours = min(hands, key=lambda hand: np.median(np.linalg.norm(hand.keypoints - points, axis=1)))
        pairs.append((ours, theirs))
    return pairs


def swapped(label: str) -> str:
    """MediaPipe's label (for mirrored images) as the person's hand in a non-mirrored photo."""
    return {"Left": "right", "Right": "left"}[label]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", PHOTOS)
def test_hands_match_mediapipe(name, case):
    hands, _, expected = run(name, case)
    assert len(hands) == len(expected["hands"])
    for ours, theirs in matched(hands, expected["hands"]):
        errors = np.linalg.norm(ours.keypoints - np.array(theirs["landmarks_px"]), axis=1)
        assert np.median(errors) <= MEDIAN_KEYPOINT_TOLERANCE_PX
        assert errors.max() <= EXACT_KEYPOINT_TOLERANCE_PX["video" if case == "video_frame2" else "static"]
        assert ours.side == swapped(theirs["handedness"])
        assert ours.handedness_score == pytest.approx(
            theirs["handedness_score"], abs=HANDEDNESS_SCORE_TOLERANCE
        )
        if "world_landmarks_m" in theirs:
            np.testing.assert_allclose(ours.world, theirs["world_landmarks_m"], atol=WORLD_TOLERANCE_M)
            image_width = photo(name)[1]["width"]
            depth = np.array(theirs["landmarks_norm_xyz"])[:, 2] * image_width
            np.testing.assert_allclose(ours.depth, depth, atol=EXACT_KEYPOINT_TOLERANCE_PX["video"])
        assert ours.box == pytest.approx([*ours.keypoints.min(axis=0), *ours.keypoints.max(axis=0)])


@pytest.mark.parametrize("case", ["static_full", "static_lite", "video_frame2"])
@pytest.mark.parametrize("name", PHOTOS)
def test_palms_and_regions_match_mediapipe(name, case):
    _, frame, expected = run(name, case)
    if "palm_detection_ran" in expected:
        assert frame.palm_detection_ran == expected["palm_detection_ran"]
    assert len(frame.palms) == len(expected["palm_detections"])
    for ours, theirs in zip(frame.palms, expected["palm_detections"], strict=True):
        box = theirs["relative_bbox"]
        xmin, ymin = box["xmin"], box["ymin"]
        expected_box = [xmin, ymin, xmin + box["width"], ymin + box["height"]]
        assert ours.score == pytest.approx(theirs["score"][0], abs=PALM_TOLERANCE)
        np.testing.assert_allclose(ours.box, expected_box, atol=PALM_TOLERANCE)
        np.testing.assert_allclose(ours.keypoints, theirs["keypoints"], atol=PALM_TOLERANCE)
    for key, ours_regions, tolerance in [
        ("hand_rects_from_palm_detections", frame.palm_regions, PALM_REGION_TOLERANCE),
        ("hand_rects_from_landmarks_for_next_frame", frame.next_regions, LANDMARK_REGION_TOLERANCE),
    ]:
        if key in expected:
            theirs_regions = [RotatedRect(**rect) for rect in expected[key]]
            assert len(ours_regions) == len(theirs_regions)
            for ours, theirs in zip(ours_regions, theirs_regions, strict=True):
                np.testing.assert_allclose(astuple(ours), astuple(theirs), atol=tolerance)


@pytest.mark.parametrize("name", PHOTOS)
def test_mirrored_frames_keep_mediapipes_label(name):
    hands, _, expected = run(name, "static_full", mirrored=True)
    assert [hand.side for hand in hands] == [hand["handedness"].lower() for hand in expected["hands"]]


def test_tracked_frame_skips_palm_detection_only_when_every_slot_is_tracked():
    hands, frame, _ = run("mp_call_two_hands", "video_frame2")
    assert not frame.palm_detection_ran and len(hands) == 2 and all(hand.tracked for hand in hands)
    hands, frame, _ = run("mp_rock_one_hand", "video_frame2")
    assert frame.palm_detection_ran and len(hands) == 1 and hands[0].tracked  # the tracked region wins
    hands, _, _ = run("mp_rock_one_hand", "static_full")
    assert not hands[0].tracked


def test_palm_interval_looks_for_more_hands_every_n_frames_and_at_once_after_a_loss():
    """A hand lost from tracking on a frame the palm detector skipped is looked for again on that frame."""
    image, _ = photo("mp_rock_one_hand")  # one hand: MediaPipe would run the palm detector every frame
    landmarker = HandLandmarker(*engines("lite"), HandLandmarkerConfig(palm_interval=3))
    ran = []
    for _ in range(7):
        assert len(landmarker.process(image)) == 1
        ran.append(landmarker.last_frame.palm_detection_ran)
    assert ran == [True, False, False, True, False, False, True]
    landmarker.process(image)
    moved = np.ascontiguousarray(image[:, ::-1])  # the hand jumps out of its tracked region ...
    assert len(landmarker.process(moved)) == 1  # ... and is found again on the same frame
    assert landmarker.last_frame.palm_detection_ran
    landmarker.process(moved)
    assert landmarker.process(np.zeros_like(image)) == []  # the hand is lost ...
    landmarker.process(image)
    assert landmarker.last_frame.palm_detection_ran  # ... so the next frame looks for hands at once


def test_negative_photo_has_a_hand_only_below_its_presence():
    assert run(NEGATIVE_PHOTO, "static_full")[0] == []
    hands = run(NEGATIVE_PHOTO, "static_full", min_presence=0.05)[0]
    assert len(hands) == 1 and 0.05 < hands[0].presence < 0.5


class CountingEngine:
    """An engine that records the batch sizes it was called with."""

    def __init__(self, engine) -> None:
        self.engine, self.batch_sizes = engine, []

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(batch))
        return self.engine.infer(batch)


def test_both_hands_go_through_the_landmark_model_in_one_call():
    palms, landmarks = (CountingEngine(engine) for engine in engines("full"))
    landmarker = HandLandmarker(palms, landmarks)
    image = photo("mp_call_two_hands")[0]
    for _ in range(3):
        assert len(landmarker.process(image)) == 2
    assert palms.batch_sizes == [1] and landmarks.batch_sizes == [2, 2, 2]
    landmarker.reset()
    landmarker.process(image)
    assert palms.batch_sizes == [1, 1]


@pytest.fixture
def tracking_landmarker():
    """A video-mode landmarker that has just tracked two hands, so it crops tracked regions next."""
    landmarker = HandLandmarker(*engines("full"))
    assert len(landmarker.process(photo("mp_call_two_hands")[0])) == 2
    return landmarker


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((1, 1, 3), np.uint8),
        np.full((2, 3000, 3), 200, np.uint8),
        np.full((40000, 2, 3), 90, np.uint8),  # beyond OpenCV's remap: decimated
        np.zeros((3000, 4000, 3), np.uint8),
        np.zeros((0, 5, 3), np.uint8),
        np.random.default_rng(0).integers(0, 256, (37, 61), dtype=np.uint8),
        np.random.default_rng(1).integers(0, 256, (64, 48, 1), dtype=np.uint8),
        np.asfortranarray(np.zeros((50, 70, 3), np.uint8)),
    ],
    ids=["1x1", "very-wide", "very-tall", "huge-black", "empty", "grey", "grey-1-channel", "fortran-order"],
)
def test_odd_frames_give_no_hands_and_never_raise(frame, tracking_landmarker):
    """Tracked regions from a 384x512 photo land partly or wholly outside these frames."""
    assert tracking_landmarker.process(frame) == []
    assert HandLandmarker(*engines("lite"), HandLandmarkerConfig(static_image_mode=True)).process(frame) == []


def test_grey_frames_are_the_rgb_frame_of_their_grey():
    grey = cv2.cvtColor(photo("mp_rock_one_hand")[0], cv2.COLOR_RGB2GRAY)
    landmarker = HandLandmarker(*engines("full"), HandLandmarkerConfig(static_image_mode=True))
    as_grey, as_channel, as_rgb = (
        landmarker.process(f) for f in (grey, grey[:, :, None], np.dstack([grey] * 3))
    )
    assert len(as_rgb) == 1
    for hands in (as_grey, as_channel):
        np.testing.assert_array_equal(hands[0].keypoints, as_rgb[0].keypoints)


@pytest.mark.parametrize(
    "frame",
    [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 4), np.uint8), np.zeros((2, 8, 8, 3), np.uint8), [[0]]],
)
def test_wrong_frames_raise_an_input_error(frame):
    with pytest.raises(InputError, match="expected"):
        HandLandmarker(*engines("lite")).process(frame)


def test_crop_of_a_region_outside_the_image_repeats_the_edge():
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, -1] = (10, 20, 30)  # the right edge column
    far_right = RotatedRect(x_center=5.0, y_center=0.5, width=0.5, height=0.75, rotation=0.3)
    np.testing.assert_array_equal(
        crop_region(image, far_right, 224), np.broadcast_to((10, 20, 30), (224, 224, 3))
    )


def test_anchors_follow_the_ssd_layout():
    assert ANCHOR_CENTRES.shape == (2016, 2)
    np.testing.assert_allclose(ANCHOR_CENTRES[:3], [[0.5 / 24, 0.5 / 24]] * 2 + [[1.5 / 24, 0.5 / 24]])
    np.testing.assert_allclose(ANCHOR_CENTRES[1152:1159], [[0.5 / 12, 0.5 / 12]] * 6 + [[1.5 / 12, 0.5 / 12]])
    np.testing.assert_allclose(ANCHOR_CENTRES[-1], [11.5 / 12, 11.5 / 12])


def test_weighted_nms_averages_each_cluster_by_score():
    scores = np.array([0.6, 0.9, 0.7, 0.65])
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.1, 0.0, 1.1, 1.0], [5.0, 5.0, 6.0, 6.0], [9.0, 9.0, 9.5, 9.5]])
    rows = np.concatenate([boxes, np.arange(4 * 14, dtype=float).reshape(4, 14)], axis=1)
    out_scores, out_rows = weighted_nms(scores, rows, max_detections=2)
    np.testing.assert_allclose(out_scores, [0.9, 0.7])
    np.testing.assert_allclose(out_rows[0], (0.9 * rows[1] + 0.6 * rows[0]) / 1.5)
    np.testing.assert_allclose(out_rows[1], rows[2])
    assert len(weighted_nms(scores, rows, max_detections=5)[0]) == 3


def test_association_lets_a_tracked_region_replace_the_palm_found_on_it():
    palm_a, palm_b = RotatedRect(0.2, 0.5, 0.2, 0.2), RotatedRect(0.7, 0.5, 0.2, 0.2)
    tracked_a = RotatedRect(0.21, 0.5, 0.2, 0.2, rotation=1.0)
    assert associate_regions([palm_a, palm_b], [tracked_a]) == [(palm_b, False), (tracked_a, True)]
    assert associate_regions([palm_a, RotatedRect(0.22, 0.5, 0.2, 0.2)], []) == [
        (RotatedRect(0.22, 0.5, 0.2, 0.2), False)
    ]


def test_normalize_radians_maps_to_minus_pi_up_to_pi():
    assert normalize_radians(math.pi) == pytest.approx(-math.pi)
    assert normalize_radians(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert normalize_radians(-0.25) == pytest.approx(-0.25)
