"""Real hands on real frames through `HandPosePipeline` and `hand-pose detect`, with the shipped ONNX models.

The real photos' expectations are MediaPipe 0.10.21's own outputs (data/README.md): our stage must find the
same hands at the same places (median keypoint difference at most 2 px; measured about 1e-3 px), and none
on the pictures without hands. Orientation: a frame given sideways or upright yields the same hands. Bad
frames of any size give empty or partial results, never an exception.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hand_pose_core.egoexo.constants import official_joint_stats
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA, PinholeCamera, Turn
from hand_pose_core.geometry.skeleton import PALM_BONES, bone_lengths
from hand_pose_core.live.photos import default_focal
from hand_pose_core.live.pipeline import HandPosePipeline, PipelineConfig, one_per_side
from hand_pose_core.runtime.bundled import bundled_model
from hand_pose_core.runtime.engines import load_engine

DATA = Path(__file__).resolve().parents[1] / "data"
PHOTOS = sorted((DATA / "real").glob("mp_*.jpg"))
NEGATIVES = sorted((DATA / "negatives").iterdir())
MEDIAN_KEYPOINT_TOLERANCE_PX = 2.0
SWAPPED = {"Left": "right", "Right": "left"}  # MediaPipe labels as if the photo were mirrored


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def camera_of(image: np.ndarray) -> PinholeCamera:
    height, width = image.shape[:2]
    return PinholeCamera.linear(width, height, default_focal(width, height))


@cache
def pipeline(variant: str = "full", lifting: str = "world") -> HandPosePipeline:
    pose = None if lifting == "world" else bundled_model(lifting)
    config = PipelineConfig(orientation="portrait", variant=variant)
    return HandPosePipeline.load(pose, BENCHMARK_CAMERA, config=config)


def hands_on(path: Path, variant: str = "full", lifting: str = "world") -> list:
    image = read(path)
    stage = pipeline(variant, lifting)
    stage.set_camera(camera_of(image))  # each photo on its own, as MediaPipe's static mode
    result = stage.process(image)
    assert not result.skipped, result.skipped
    return result.hands


def expected(path: Path, section: str) -> list[dict]:
    return json.loads(path.with_suffix(".json").read_text())["detail"][section]["hands"]


def median_px(ours: np.ndarray, theirs: list) -> float:
    return float(np.median(np.linalg.norm(ours - np.array(theirs), axis=1)))


@pytest.mark.parametrize(
    ("variant", "section"), [("full", "static_full_model"), ("lite", "static_lite_model")]
)
@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.stem)
def test_the_real_stage_finds_mediapipes_hands_where_mediapipe_does(path, variant, section):
    hands, theirs = hands_on(path, variant), expected(path, section)
    assert len(hands) == len(theirs)  # none on the palm-like negative photo, as MediaPipe
    for hand_theirs in theirs:
        ours = min(hands, key=lambda h: median_px(h.keypoints, hand_theirs["landmarks_px"]))
        assert median_px(ours.keypoints, hand_theirs["landmarks_px"]) <= MEDIAN_KEYPOINT_TOLERANCE_PX
        assert ours.side == SWAPPED[hand_theirs["handedness"]]  # the person's hand in an unmirrored photo


@pytest.mark.parametrize("path", NEGATIVES, ids=lambda p: p.name)
def test_no_hand_on_pictures_without_hands(path):
    assert hands_on(path) == []


def palm_size(relative: np.ndarray) -> float:
    """Median length of the wrist-to-finger-base bones, metres."""
    return float(np.median(bone_lengths(relative)[[child - 1 for _, child in PALM_BONES]]))


def test_real_hands_are_placed_in_metres_with_hand_sized_bones():
    """MediaPipe's world landmarks (the default 3D) place every real hand in front of the camera with a
    hand's proportions: its palm within 40 % of the Ego-Exo4D training mean's."""
    reference = palm_size(official_joint_stats()[0] / 1000.0)
    placed = 0
    for path in PHOTOS:
        for hand in hands_on(path):
            assert hand.camera is not None and np.isfinite(hand.camera).all()
            assert 0.15 < hand.camera[0, 2] < 5.0  # metres, in front of the camera
            np.testing.assert_allclose(hand.camera - hand.camera[0], hand.relative, atol=1e-9)
            assert 0.6 < palm_size(hand.relative) / reference < 1.4, path.name
            placed += 1
    assert placed == 7


@pytest.mark.parametrize("lifting", ["lifter", "potter"])
def test_our_3d_stages_run_on_the_real_stages_hands(lifting):
    """The lifter and POTTER take the real stage's keypoints and boxes (any camera, any orientation).
    The bundled ones know synthetic hands only: their placements are refused where their shape does not
    fit the 2D (docs/real_hands.md counts how often), but what they give is a hand in metres."""
    for path in PHOTOS:
        for hand in hands_on(path, lifting=lifting):
            assert np.isfinite(hand.relative).all() and 0.04 < palm_size(hand.relative) < 0.15
            assert hand.camera is None or 0.15 < hand.camera[0, 2] < 10.0


def turned_pipeline(localisation: str, orientation: str, camera: PinholeCamera) -> HandPosePipeline:
    config = PipelineConfig(
        localisation, orientation=orientation, min_score=0.0 if localisation == "detector" else 0.5
    )
    detector = bundled_model("detector") if localisation == "detector" else None
    stage = HandPosePipeline.load(bundled_model("lifter"), camera, detector, config)
    return stage


@pytest.mark.parametrize(
    ("localisation", "frame"),
    [("mediapipe", "mp_call_two_hands.jpg"), ("detector", "synthetic")],
)
def test_a_frame_given_sideways_or_upright_yields_the_same_hands(localisation, frame, synth_data):
    if frame == "synthetic":  # a benchmark frame, as the detector was trained: landscape
        image, orientation = (
            read(next((synth_data / "image" / "undistorted" / "val").rglob("*.jpg"))),
            "landscape",
        )
    else:  # a photo, upright
        image, orientation = read(DATA / "real" / frame), "portrait"
    other = "landscape" if orientation == "portrait" else "portrait"
    turn = Turn(orientation, other)
    camera = camera_of(image) if localisation == "mediapipe" else BENCHMARK_CAMERA
    as_given = turned_pipeline(localisation, orientation, camera).process(image).hands
    turned = turned_pipeline(localisation, other, turn.camera(camera)).process(turn.image(image)).hands
    assert len(as_given) == len(turned) >= 1
    height, width = turn.image(image).shape[:2]
    for ours in as_given:
        theirs = next(h for h in turned if h.side == ours.side)
        back = turn.inverse.points_2d(theirs.keypoints, width, height)
        assert np.nanmax(np.abs(back - ours.keypoints)) < 1.0  # pixels
        np.testing.assert_allclose(turn.inverse.points_3d(theirs.camera), ours.camera, atol=1e-6)


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((1, 1, 3), np.uint8),
        np.zeros((2, 3), np.uint8),
        np.full((480, 640, 1), 90, np.uint8),
        np.zeros((3000, 4000, 3), np.uint8),
        np.full((20, 2000, 3), 200, np.uint8),
    ],
    ids=["1x1", "2x3 grey", "mono (H, W, 1)", "4000x3000", "20x2000"],
)
def test_frames_of_any_size_and_kind_give_results_not_exceptions(frame):
    stage = pipeline()
    stage.set_camera(camera_of(frame))
    result = stage.process(frame)
    assert result.hands == [] and result.skipped == []


def test_a_hand_cut_by_the_frame_edge_is_clipped_not_a_crash():
    image = read(DATA / "real" / "mp_rock_one_hand.jpg")
    (whole,) = hands_on(DATA / "real" / "mp_rock_one_hand.jpg")
    x1, _y1, x2, _y2 = whole.box.astype(int)
    cut = np.ascontiguousarray(image[:, (x1 + x2) // 2 :])  # the hand's left half is gone
    stage = pipeline()
    stage.set_camera(camera_of(cut))
    result = stage.process(cut)
    assert result.skipped == []
    for hand in result.hands:
        assert np.isfinite(hand.keypoints).all() and hand.box[0] >= 0


def test_bad_frame_types_are_skipped_with_the_reason():
    stage = pipeline()
    stage.set_camera(PinholeCamera.linear(4, 4, 4.0))
    for frame, reason in (
        (np.zeros((4, 4, 3), np.float32), "8-bit"),
        (np.zeros((4, 4, 4), np.uint8), "shape"),
    ):
        result = stage.process(frame)
        assert result.hands == [] and reason in result.skipped[0][1]


class Found:
    def __init__(self, side: str, handedness: float, presence: float) -> None:
        self.side, self.handedness_score, self.presence = side, handedness, presence


def test_one_hand_per_side():
    sure, unsure, faint = Found("right", 0.9, 0.9), Found("right", 0.6, 0.95), Found("left", 0.99, 0.6)
    assert [(h, s) for h, s in one_per_side([unsure, sure])] == [(sure, "right"), (unsure, "left")]
    assert [s for _, s in one_per_side([sure, unsure, faint])] == ["right", "left"]  # the faintest goes


def test_detect_writes_every_hand_of_every_picture(tmp_path, run_cli):
    out, overlays = tmp_path / "hands.json", tmp_path / "overlays"
    code, _stdout, err = run_cli(
        "detect", DATA / "real", DATA / "negatives", "--out", out, "--overlays", overlays
    )
    assert code == 0, err
    images = json.loads(out.read_text())["images"]
    assert [Path(image["path"]).name for image in images] == [p.name for p in [*PHOTOS, *NEGATIVES]]
    counts = {Path(image["path"]).name: len(image["hands"]) for image in images}
    assert counts == {p.name: len(expected(p, "static_full_model")) for p in PHOTOS} | dict.fromkeys(
        (p.name for p in NEGATIVES), 0
    )
    hand = images[0]["hands"][0]
    assert set(hand) == {"side", "score", "box", "keypoints_2d", "joints_relative", "joints_camera"}
    assert len(hand["keypoints_2d"]) == 21 and len(hand["joints_camera"][0]) == 3
    assert images[0]["width"] == 384 and images[0]["height"] == 512
    assert len(list(overlays.glob("*.png"))) == len(images)
    code, _, _ = run_cli("detect", DATA / "real" / "mp_rock_one_hand.jpg", "--out", out, "--focal", "800")
    (image,) = json.loads(out.read_text())["images"]
    assert image["camera"]["fx"] == 800.0


def test_detect_names_what_it_cannot_read(tmp_path, run_cli):
    code, _, err = run_cli("detect", tmp_path / "missing.jpg", "--out", tmp_path / "h.json")
    assert code == 2 and "missing.jpg: no such image or folder" in err
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    code, _stdout, err = run_cli(
        "detect", tmp_path, DATA / "negatives" / "grey.png", "--out", tmp_path / "h.json"
    )
    assert code == 2 and "1 of 2 images not processed" in err and err.strip().count("\n") == 0
    images = json.loads((tmp_path / "h.json").read_text())["images"]
    assert "not a readable image" in images[0]["error"] and images[1]["hands"] == []
    code, _, err = run_cli("detect", DATA / "negatives", "--out", tmp_path / "h.json", "--focal", "0")
    assert code == 2 and "--focal" in err


def test_engines_of_the_real_stage_run_on_onnx_runtime():
    engine = load_engine(bundled_model("palm_detector"))
    assert engine.backend == "onnxruntime" and engine.card.name == "palm_detector"
