"""Several cameras, one hand: Aria's rig, triangulation, shape fitting, the multi-view pipeline and its
fallbacks, and pairing frames of several cameras."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import DATA_DIR, GtBuilder

from hand_pose_core.geometry.aria import device_views, load_device_calibration
from hand_pose_core.geometry.views import epipolar_distance, fit_shape, triangulate
from hand_pose_core.live.hand_landmarker import HandLandmarker, HandLandmarkerConfig
from hand_pose_core.live.multiview import MultiViewPipeline, ViewFrames, draw_views, recording_views
from hand_pose_core.live.offline import run_views
from hand_pose_core.live.photos import read_picture
from hand_pose_core.live.pipeline import GivenHand, HandPosePipeline, PipelineConfig
from hand_pose_core.runtime.bundled import model_or_bundled
from hand_pose_core.runtime.engines import load_engine
from hand_pose_core.synth.generator import RIG_CALIBRATION, SynthConfig, generate, grey, rig_views

RGB, LEFT, RIGHT = 0, 1, 2


@pytest.fixture(scope="module")
def views():
    return [view for view, _ in rig_views()]


def hand_in_front(rng: np.random.Generator) -> np.ndarray:
    """(21, 3) points about a hand's size where egocentric hands are (RGB camera frame, metres)."""
    return np.array([0.2, -0.1, 0.4]) + rng.normal(0.0, 0.03, (21, 3))


def test_the_rig_is_a_real_aria_calibration_with_the_slam_cameras_beside_the_rgb(views):
    assert RIG_CALIBRATION.is_file()
    device = load_device_calibration(DATA_DIR / "aria" / "aea_recording.vrs")
    assert [v.name for v in views] == ["camera-rgb", "camera-slam-left", "camera-slam-right"]
    assert np.allclose(views[RGB].rotation, np.eye(3)) and np.allclose(views[RGB].translation, 0)
    # Aria's RGB camera sits by the left SLAM camera; the right one is across the glasses.
    assert 0.005 < np.linalg.norm(views[LEFT].translation) < 0.03
    assert 0.10 < np.linalg.norm(views[RIGHT].translation) < 0.15
    for view in views[1:]:  # the stored rig is the fixture recording's calibration
        fixture = device.get_camera_calib(view.name).get_transform_device_camera().to_matrix()
        rgb = device.get_camera_calib("camera-rgb").get_transform_device_camera().to_matrix()
        pose = np.linalg.inv(rgb) @ fixture
        assert np.allclose(pose[:3, :3], view.rotation, atol=1e-9)
        assert np.allclose(pose[:3, 3], view.translation, atol=1e-9)


def test_triangulation_recovers_joints_and_drops_an_outlying_view(views):
    rng = np.random.default_rng(0)
    joints = hand_in_front(rng)
    keypoints = np.stack([view.project(joints) for view in views])
    weights = np.stack([view.camera.contains(k) for view, k in zip(views, keypoints, strict=True)]) * 0.9
    assert weights.all()
    keypoints[LEFT, 5] += (40.0, -30.0)  # one mislabelled keypoint in one view
    solved = triangulate(views, keypoints, weights)
    assert np.abs(solved.joints - joints).max() < 1e-6
    assert not solved.used[LEFT, 5] and solved.used[:, 5].sum() == 2
    assert solved.used[:, np.arange(21) != 5].all()
    assert np.allclose(solved.weights, 0.9)


def test_rays_that_barely_part_leave_joints_unsolved(views):
    """The RGB and left SLAM cameras are 1.3 cm apart: together they cannot fix a hand's depth."""
    joints = hand_in_front(np.random.default_rng(1))
    keypoints = np.stack([view.project(joints) for view in views])
    weights = np.ones((3, 21))
    weights[RIGHT] = 0.0
    solved = triangulate(views, keypoints, weights)
    assert np.isnan(solved.joints).all() and (solved.weights == 0).all()


def test_epipolar_distance_tells_the_same_hand_from_another(views):
    rng = np.random.default_rng(2)
    joints = hand_in_front(rng)
    other = joints + np.array([0.08, 0.0, 0.0])  # across the baseline (along it, points slide on their line)
    rgb = views[RGB].project(joints) + rng.normal(0, 1.0, (21, 2))
    assert epipolar_distance(views[RGB], rgb, views[RIGHT], views[RIGHT].project(joints)) < 3.0
    assert epipolar_distance(views[RGB], rgb, views[RIGHT], views[RIGHT].project(other)) > 15.0
    unknown = np.full((21, 2), np.nan)
    assert epipolar_distance(views[RGB], rgb, views[RIGHT], unknown) == np.inf


def test_fitting_the_shape_keeps_it_and_moves_it_to_the_triangulated_joints():
    rng = np.random.default_rng(3)
    truth = hand_in_front(rng)
    shape = (truth - truth[0]) / 1.1 + rng.normal(0.0, 0.004, (21, 3))  # a smaller, noisy shape
    weights = np.ones(21)
    # Trusting the triangulated joints more (a small shape weight), the fit comes closer to them.
    errors = [np.linalg.norm(fit_shape(shape, truth, weights, w) - truth, axis=1).mean() for w in (0.1, 1.0)]
    assert errors[0] < 0.002 and errors[0] < errors[1] < 0.006
    # Few triangulated joints: the shape's other joints follow its scale and translation.
    few = np.where(np.arange(21)[:, None] < 6, truth, np.nan)
    fitted = fit_shape(shape, few, weights)
    assert np.linalg.norm(fitted - truth, axis=1).mean() < 0.01
    assert fit_shape(shape, np.where(np.arange(21)[:, None] < 2, truth, np.nan), weights) is None


def test_multi_view_places_synthetic_hands_far_better_than_one_view(tmp_path):
    """Same frames, same lifter, the views' 2D labels given: the benchmark's question of placement."""
    result = generate(tmp_path, SynthConfig(takes=3, frames=8, seed=3, slam=True), progress=False)
    assert (tmp_path / RIG_CALIBRATION.name).is_file()
    pipeline = HandPosePipeline.load(model_or_bundled(None, "lifter"), rig_views()[0][0].camera, None,
                                     PipelineConfig("given"))  # fmt: skip
    multi = MultiViewPipeline(pipeline, [view for view, _ in rig_views()])
    run = run_views(multi, result.annotations["val"], tmp_path / "image", "val", progress=False)
    assert sum(run.views_per_hand.values()) == 16 and run.views_per_hand[3] + run.views_per_hand[2] >= 10
    assert run.multi.camera_mpjpe_mm < 40.0
    assert run.multi.camera_mpjpe_mm < 0.7 * run.single.camera_mpjpe_mm
    assert np.mean(run.multi.wrist_depth_errors_mm) < np.mean(run.single.wrist_depth_errors_mm)


def test_missing_views_disagreeing_sides_and_strangers_fall_back_counted(views):
    pipeline = HandPosePipeline.load(model_or_bundled(None, "lifter"), views[0].camera, None,
                                     PipelineConfig("given"))  # fmt: skip
    multi = MultiViewPipeline(pipeline, views)
    joints = GtBuilder(1).hand_joints(wrist=(0.2, -0.1, 0.4))  # one view alone places it 6 cm deep
    projected = {view.name: view.project(joints) for view in views}

    def given(**changes):
        hands = {name: [GivenHand("right", None, keypoints)] for name, keypoints in projected.items()}
        return hands | changes

    result = multi.process({}, None, given())
    assert result.used["right"] == [view.name for view in views] and not result.fallbacks
    assert set(result.reprojection_px["right"]) == set(result.used["right"])
    assert all(np.isfinite(list(result.reprojection_px["right"].values())))
    # exact keypoints in three views: the wrist where it is; the lifter's shape of this made-up hand is
    # not exact, and the fit keeps half of its offsets
    assert np.abs(result.frame.hands[0].camera[0, 2] - joints[0, 2]) < 0.015
    assert np.abs(result.single["right"][0, 2] - joints[0, 2]) > 0.05
    assert np.linalg.norm(result.frame.hands[0].camera - joints, axis=1).mean() < 0.03

    stranger = projected["camera-slam-right"] + (0.0, 60.0)
    cases = {
        "camera-slam-right: handedness disagrees": [GivenHand("left", None, projected["camera-slam-right"])],
        "camera-slam-right: no hand on the epipolar lines": [GivenHand("right", None, stranger)],
        "camera-slam-right: no 2D keypoints": [GivenHand("right", None, np.full((21, 2), np.nan))],
        "camera-slam-right: too few joints in both views": [
            GivenHand(
                "right", None, np.where(np.arange(21)[:, None] < 2, projected["camera-slam-right"], np.nan)
            )
        ],
    }
    for why, hands in cases.items():
        result = multi.process({}, None, given(**{"camera-slam-right": hands}))
        # the left SLAM camera alone is too close to the RGB camera to triangulate: one view left
        assert result.fallbacks == {why: 1, "single view": 1}, why
        assert result.used["right"] == ["camera-rgb"]
        assert np.allclose(result.frame.hands[0].camera, result.single["right"])


def test_other_views_without_frames_sit_out_counted(views):
    """MediaPipe localisation needs the frames: a SLAM camera without one sits the frame out."""
    pipeline = HandPosePipeline.load(None, views[0].camera, config=PipelineConfig(variant="lite"))
    multi = MultiViewPipeline(pipeline, views)
    picture = read_picture(DATA_DIR / "real" / "mp_four_landscape.jpg")
    frame = np.zeros((512, 512, 3), np.uint8)
    frame[: min(512, picture.shape[0]), : min(512, picture.shape[1])] = picture[:512, :512]
    result = multi.process({"camera-rgb": frame}, 1.0)
    hands = len(result.frame.hands)
    assert result.fallbacks["camera-slam-left: no frame"] == hands
    assert result.fallbacks["single view"] == hands


def test_the_landmark_model_reads_grey_hands_where_a_colour_view_found_them():
    """MediaPipe's palm detector finds few palms in grey frames (SLAM cameras); its landmark model still
    reads a hand in a grey frame where the colour camera's hand says to look."""
    palm, landmarks = (
        load_engine(model_or_bundled(None, name)) for name in ("palm_detector", "hand_landmarks")
    )
    marker = HandLandmarker(palm, landmarks, HandLandmarkerConfig(static_image_mode=True))
    for name in ("mp_call_two_hands.jpg", "mp_four_open_palm.jpg"):
        picture = read_picture(DATA_DIR / "real" / name)
        colour = marker.process(picture)
        assert colour, name
        read = marker.read_at(grey(picture), [hand.keypoints for hand in colour])
        for found, hand in zip(read, colour, strict=True):
            assert found is not None and found.presence > 0.9, name
            size = np.ptp(hand.keypoints, axis=0).max()
            assert np.linalg.norm(found.keypoints - hand.keypoints, axis=1).mean() < 0.05 * size, name
            assert found.side == hand.side


def test_view_frames_pair_each_stamp_with_the_nearest_frame_within_the_tolerance():
    frames = ViewFrames(["a", "b"], tolerance_ns=5_000_000, wait_s=0.5)
    frames.add("a", 1_000_000_000, "a1")
    frames.add("b", 900_000_000, "b0")
    later = threading.Timer(0.05, lambda: frames.add("b", 1_000_080_000, "b1"))
    later.start()
    start = time.monotonic()
    assert frames.pair(1_000_000_000) == {"a": "a1", "b": "b1"}  # b's frame came while it waited
    assert time.monotonic() - start < 0.4
    frames.add("a", 1_100_000_000, "a2")
    frames.add("b", 1_200_000_000, "b2")
    # a has nothing near and something newer came: no wait; b has nothing within 5 ms
    assert frames.pair(1_150_000_000) == {"a": None, "b": None}
    assert frames.paired == {"a": 1, "b": 1} and frames.missing == {"a": 1, "b": 1}


def test_view_frames_wait_only_for_frames_that_are_due():
    """A SLAM camera at 10 Hz beside an RGB camera at 20 Hz: RGB frames between two SLAM frames do not
    wait for one."""
    frames = ViewFrames(["slam"], tolerance_ns=5_000_000, wait_s=0.3)
    for k in range(3):
        frames.add("slam", k * 100_000_000, k)
    start = time.monotonic()
    assert frames.pair(250_000_000) == {"slam": None}
    assert time.monotonic() - start < 0.1
    start = time.monotonic()
    assert frames.pair(300_000_000) == {"slam": None}  # due now: it waits, and none comes
    assert time.monotonic() - start >= 0.25


def test_a_recordings_cameras_are_paired_frame_by_frame_as_the_node_pairs_them(views):
    """The fixture recording: RGB at 20 Hz, both SLAM cameras at 10 Hz, captured 0.08 ms after every
    other RGB frame; each picture shows the three cameras."""
    recording = DATA_DIR / "aria" / "aea_recording.vrs"
    rig = [view for view, _ in device_views(load_device_calibration(recording), str(recording))]
    pipeline = HandPosePipeline.load(None, rig[0].camera, config=PipelineConfig(variant="lite"))
    results = list(recording_views(recording, MultiViewPipeline(pipeline, rig)))
    assert len(results) == 8
    paired = [all(frames[name] is not None for name in frames) for frames, _ in results]
    assert paired == [False, True] * 4
    frames, result = results[1]
    assert draw_views(frames, rig, result).size == (3 * 384, 384)
