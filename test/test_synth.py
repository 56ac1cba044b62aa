"""The synthetic generator: release layout, determinism, the release's validity and box rules, motion,
statistics against the real constants, rendering, and raw fisheye frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from hand_pose_core.egoexo.formats import (
    SPLITS,
    annotation_path,
    image_path,
    load_annotations,
    missing_images,
)
from hand_pose_core.errors import InputError
from hand_pose_core.geometry import aria
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
from hand_pose_core.geometry.skeleton import BONES, PALM_BONES, bone_lengths
from hand_pose_core.synth import generator
from hand_pose_core.synth.generator import (
    SynthConfig,
    compare_statistics,
    generate,
    split_of_takes,
)
from hand_pose_core.synth.render import Canvas, Lighting, Surface, draw_capsule, draw_hand


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return generate(root, SynthConfig(takes=5, frames=24, seed=11), progress=False)


@pytest.fixture(scope="module")
def valid_mask():
    camera = aria.rgb_calibration(
        aria.parse_device_calibration(aria.synthetic_device_calibration()), "synthetic"
    )
    return aria.AriaUndistorter(camera).valid_mask


def all_hands(result):
    for split, split_annotations in result.annotations.items():
        for record in split_annotations.hands():
            yield split, record


def test_release_layout_on_disk(dataset):
    root = dataset.root
    for split in SPLITS:
        public = load_annotations(annotation_path(root, split))
        assert public.num_frames == dataset.annotations[split].num_frames > 0
        assert missing_images(public, root / "image" / "undistorted", split) == []
    test_public = json.loads(annotation_path(root, "test").read_text())
    for frames in test_public.values():
        for frame in frames.values():
            assert set(frame) == {"right_hand_bbox", "left_hand_bbox", "metadata"}
    private = load_annotations(annotation_path(root, "test", public=False))
    assert all(record.hand.has_3d for record in private.hands())
    take = next(iter(private.takes.values()))
    frame_number = next(iter(take.frames))
    image = Image.open(image_path(root / "image" / "undistorted", "test", take.take_name, frame_number))
    assert image.size == (512, 512)
    assert image.format == "JPEG"
    assert not list(root.rglob("*.tmp"))


def test_splits_need_three_takes_and_cover_all_splits():
    assert split_of_takes(3) == ["train", "val", "test"]
    assert split_of_takes(20).count("train") == 14
    with pytest.raises(InputError, match="--takes 2"):
        SynthConfig(takes=2)


def test_same_seed_same_bytes_other_seed_other_data(tmp_path, monkeypatch):
    """Also whether one process renders the takes or several do."""
    first = generate(tmp_path / "a", SynthConfig(takes=3, frames=4, seed=5), progress=False)
    monkeypatch.setattr(generator, "TAKES_PER_WORKER", 1)
    monkeypatch.setattr(generator.os, "cpu_count", lambda: 3)
    second = generate(tmp_path / "b", SynthConfig(takes=3, frames=4, seed=5), progress=False)
    other = generate(tmp_path / "c", SynthConfig(takes=3, frames=4, seed=6), progress=False)
    for split in SPLITS:
        assert (
            annotation_path(first.root, split).read_bytes()
            == annotation_path(second.root, split).read_bytes()
        )
        assert (
            annotation_path(first.root, split).read_bytes() != annotation_path(other.root, split).read_bytes()
        )
    images_a = sorted(p.relative_to(first.root) for p in first.root.rglob("*.jpg"))
    images_b = sorted(p.relative_to(second.root) for p in second.root.rglob("*.jpg"))
    assert images_a == images_b and images_a
    assert all((first.root / p).read_bytes() == (second.root / p).read_bytes() for p in images_a)


def test_validity_follows_the_release_rules(dataset, valid_mask):
    count = 0
    for _, record in all_hands(dataset):
        hand = record.hand
        valid = hand.valid_3d
        assert valid.sum() >= 10
        assert np.isfinite(hand.joints_3d[0]).all()
        assert np.isnan(hand.joints_3d[1:][~valid[1:]]).all()
        assert np.isfinite(hand.joints_3d[valid]).all()
        projected = BENCHMARK_CAMERA.project(hand.joints_3d[valid])
        assert BENCHMARK_CAMERA.contains(projected).all()
        cols, rows = np.rint(projected).astype(int).T
        assert valid_mask[rows, cols].all()
        labelled = valid.copy()
        labelled[0] = False
        error = np.linalg.norm(
            hand.joints_2d[labelled] - BENCHMARK_CAMERA.project(hand.joints_3d[labelled]), axis=1
        )
        assert (error <= 30.0).all()
        lengths = bone_lengths(hand.joints_3d) * 1000.0
        for (parent, child), length in zip(BONES, lengths, strict=True):
            if valid[parent] and valid[child]:
                low, high = (60.0, 120.0) if (parent, child) in PALM_BONES else (5.0, 80.0)
                assert low <= length <= high
        count += 1
    assert count > 100


def test_some_joints_and_hands_are_invalid_like_the_release(tmp_path):
    result = generate(tmp_path, SynthConfig(takes=8, frames=30, seed=2), progress=False)
    hands = [record.hand for _, record in all_hands(result)]
    frames = sum(a.num_frames for a in result.annotations.values())
    assert 0 < sum((~h.valid_3d).sum() for h in hands) < 0.2 * 21 * len(hands)
    assert len(hands) < 2 * frames  # some frames have one hand only
    assert all(
        any(frame.hands)
        for a in result.annotations.values()
        for t in a.takes.values()
        for frame in t.frames.values()
    )


def test_boxes_follow_train_and_test_rules(dataset):
    for split, record in all_hands(dataset):
        hand = record.hand
        points = BENCHMARK_CAMERA.project(hand.joints_3d[hand.valid_3d])
        lo, hi = points.min(axis=0), points.max(axis=0)
        box = hand.bbox
        assert (box >= 0).all() and (box <= 511).all()
        if split in ("train", "val"):
            expected = np.clip(np.concatenate([lo - 20, hi + 20]), 0, 511)
            np.testing.assert_allclose(box, expected, atol=1e-9)
        else:
            size, centre = hi - lo, (lo + hi) / 2
            unclipped = (box > 0).all() and (box < 511).all()
            if unclipped:
                box_size = box[2:] - box[:2]
                assert ((box_size >= 1.5 * 0.9 * size - 1e-9) & (box_size <= 1.5 * 1.1 * size + 1e-9)).all()
                assert (np.abs((box[:2] + box[2:]) / 2 - centre) <= 0.1 * box_size + 1e-9).all()


def test_hands_are_where_egocentric_hands_are_and_move_smoothly(dataset):
    wrists = {"left": [], "right": []}
    steps = []
    for split_annotations in dataset.annotations.values():
        for take in split_annotations.takes.values():
            previous = {}
            for frame in take.frames.values():
                for side, hand in frame.hands.items():
                    wrists[side].append(BENCHMARK_CAMERA.project(hand.joints_3d[0]))
                    if side in previous and previous[side][0] == frame.frame_number - 3:
                        steps.append(np.linalg.norm(hand.joints_3d[0] - previous[side][1]))
                    previous[side] = (frame.frame_number, hand.joints_3d[0])
    right, left = np.mean(wrists["right"], axis=0), np.mean(wrists["left"], axis=0)
    assert right[0] > 255.5 and left[0] > 255.5  # both toward the right of the landscape view
    assert right[1] < left[1]  # right hands above left hands, as in the real test boxes
    assert np.median(steps) < 0.02  # metres per 0.1 s: smooth, not random placement


def test_statistics_close_to_the_real_constants(tmp_path):
    result = generate(tmp_path, SynthConfig(takes=12, frames=20, seed=4), progress=False)
    comparison = compare_statistics(result.combined)
    assert max(comparison["mean_abs_difference_mm"]) < 15.0
    assert all(0.7 < ratio < 1.4 for ratio in comparison["std_ratio"])
    reach = comparison["finger_tip_distance_mm"]
    assert abs(reach["synthetic"] - reach["real"]) < 15.0


HEADLIGHT = Lighting(np.array([0.0, 0.0, -1.0]))
SKIN = np.array([0.6, 0.45, 0.35], np.float32)


def across_limb(surface, lighting, start=(-0.05, 0.0, 0.3), end=(0.05, 0.0, 0.3)):
    """Pixels of a 2 cm thick limb (5 px radius) along the image's x axis at the image centre: rows 3.5 px
    above its axis, on it, and 3.5 px below it, each at the limb's first and last quarter."""
    canvas = Canvas.over(np.zeros((512, 512, 3), np.float32))
    draw_capsule(canvas, BENCHMARK_CAMERA, np.array(start), np.array(end), (0.01, 0.01), surface, lighting)
    return canvas.image[[252, 255, 259]][:, [243, 267]]


def test_key_light_brightens_the_side_that_faces_it():
    from_above = across_limb(Surface(SKIN), Lighting(np.array([0.0, -1.0, 0.0])))
    from_below = across_limb(Surface(SKIN), Lighting(np.array([0.0, 1.0, 0.0])))
    assert (from_above[0] > from_above[2] + 0.05).all()  # camera y points down: row 252 is the upper side
    assert (from_below[2] > from_below[0] + 0.05).all()
    np.testing.assert_allclose(from_above[0], from_below[2], atol=1e-6)


def test_palm_side_is_lighter_and_fingertips_show_nails_on_their_back():
    toward_camera, away = np.array([0.0, 0.0, -1.0]), np.array([0.0, 0.0, 1.0])
    palm_seen = across_limb(Surface(SKIN, toward_camera), HEADLIGHT)
    back_seen = across_limb(Surface(SKIN, away), HEADLIGHT)
    assert (palm_seen[1] > back_seen[1] + 0.05).all()
    np.testing.assert_allclose(back_seen[1], across_limb(Surface(SKIN), HEADLIGHT)[1], atol=1e-6)
    tip = across_limb(Surface(SKIN, away, nail=True), HEADLIGHT)[1]  # the limb ends at the image's right
    np.testing.assert_allclose(tip[0], back_seen[1, 0], atol=1e-6)
    assert (tip[1] > back_seen[1, 1] + 0.1).all()  # the nail: lighter, nearer the nail colour
    palm_tip = across_limb(Surface(SKIN, toward_camera, nail=True), HEADLIGHT)[1]
    np.testing.assert_allclose(palm_tip, palm_seen[1], atol=1e-6)  # no nail on the palm side


def test_renderer_is_depth_aware():
    canvas = Canvas.over(np.zeros((512, 512, 3), np.float32))
    far = (np.array([-0.05, 0.0, 0.6]), np.array([0.05, 0.0, 0.6]))
    near = (np.array([0.0, -0.05, 0.3]), np.array([0.0, 0.05, 0.3]))
    red, green = np.array([1.0, 0.0, 0.0], np.float32), np.array([0.0, 1.0, 0.0], np.float32)
    draw_capsule(canvas, BENCHMARK_CAMERA, *near, (0.01, 0.01), Surface(green), HEADLIGHT)
    # The far capsule is drawn later, but it is behind.
    draw_capsule(canvas, BENCHMARK_CAMERA, *far, (0.01, 0.01), Surface(red), HEADLIGHT)
    centre = canvas.image[255, 255]
    assert centre[1] > 0.3 and centre[0] == 0.0
    assert canvas.depth[255, 255] == pytest.approx(0.3 - 0.01, abs=1e-3)
    assert canvas.image[255, 248][0] > 0.3  # the far capsule shows where the near one is not
    edge, middle = canvas.image[255, 262][1], canvas.image[255, 255][1]
    assert edge < middle  # shaded across the limb


def test_rendered_hand_covers_its_joints(dataset):
    record = next(r for _, r in all_hands(dataset) if r.hand.valid_3d.all())
    joints = record.hand.joints_3d
    canvas = Canvas.over(np.zeros((512, 512, 3), np.float32))
    skin, sleeve = np.full(3, 0.8, np.float32), np.full(3, 0.5, np.float32)
    distal, palmar = joints[9] - joints[0], np.array([0.0, 0.0, 1.0])
    draw_hand(canvas, BENCHMARK_CAMERA, joints, distal, palmar, 1.0, skin, sleeve, HEADLIGHT)
    cols, rows = np.rint(BENCHMARK_CAMERA.project(joints)).astype(int).T
    depth = canvas.depth[rows, cols]
    assert np.isfinite(depth).all()
    assert (depth <= joints[:, 2] + 0.005).all()  # what shows at a joint is never behind it
    assert (joints[:, 2] - depth < 0.03).mean() > 0.6  # mostly its own limb, within a limb radius


def test_raw_fisheye_frames_undistort_back_to_the_benchmark_images(tmp_path):
    result = generate(tmp_path, SynthConfig(takes=3, frames=2, seed=9, raw=True), progress=False)
    calibration = tmp_path / "raw" / "device_calibration.json"
    undistorter = aria.AriaUndistorter.from_file(calibration)
    take = next(iter(result.annotations["train"].takes.values()))
    frame_number = next(iter(take.frames))
    raw = np.asarray(Image.open(image_path(tmp_path / "raw", "train", take.take_name, frame_number)))
    assert raw.shape == (1408, 1408, 3)
    image = np.asarray(
        Image.open(image_path(tmp_path / "image" / "undistorted", "train", take.take_name, frame_number))
    )
    restored = undistorter.undistort(raw)
    inner = undistorter.valid_mask.copy()
    inner[:, :] &= np.roll(inner, 4, 0) & np.roll(inner, -4, 0) & np.roll(inner, 4, 1) & np.roll(inner, -4, 1)
    difference = np.abs(restored.astype(float) - image.astype(float))[inner].mean()
    other = np.abs(np.roll(image, 40, axis=1).astype(float) - image.astype(float))[inner].mean()
    assert difference < 6.0 < other
