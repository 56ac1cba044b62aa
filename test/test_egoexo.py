"""Ego-Exo4D files: the real test public fixture, round trips, old key names, layout, and bad input."""

import json
import re

import numpy as np
import pytest

from hand_pose_core.egoexo.formats import (
    annotation_path,
    annotations_to_json,
    image_path,
    load_annotations,
    load_predictions,
    missing_images,
    write_annotations,
    write_predictions,
)
from hand_pose_core.errors import InputError

HAND_FIELDS = ("3d", "2d", "bbox", "valid_3d")
RELEASE_FRAME_KEYS = [f"{side}_hand_{f}" for side in ("right", "left") for f in HAND_FIELDS] + ["metadata"]


def assert_same_annotations(actual, expected):
    assert list(actual.takes) == list(expected.takes)
    for take_uid, take in expected.takes.items():
        other = actual.takes[take_uid]
        assert (other.take_uid, other.take_name) == (take.take_uid, take.take_name)
        assert list(other.frames) == list(take.frames)
        for number, frame in take.frames.items():
            assert other.frames[number].frame_number == number
            assert set(other.frames[number].hands) == set(frame.hands)
            for side, hand in frame.hands.items():
                loaded = other.frames[number].hands[side]
                assert loaded.side == side
                for name in ("joints_3d", "joints_2d", "bbox", "valid_3d"):
                    want, got = getattr(hand, name), getattr(loaded, name)
                    if want is None:
                        assert got is None, (take_uid, number, side, name)
                    else:
                        assert got.dtype == want.dtype
                        np.testing.assert_array_equal(got, want, err_msg=f"{take_uid} {number} {side} {name}")


# ----------------------------------------------------------------------------------------- the real fixture


def test_real_test_public_file_loads_with_the_documented_counts(egoexo_test_public):
    annotations = load_annotations(egoexo_test_public)
    assert len(annotations) == 86
    assert annotations.num_frames == 5832
    hands = list(annotations.hands())
    assert len(hands) == 8772
    assert annotations.count_hands() == {"left": 4944, "right": 3828}
    assert annotations.source == str(egoexo_test_public)
    for record in hands:  # boxes only
        assert record.hand.bbox.shape == (4,)
        assert not record.hand.has_3d
        assert record.hand.joints_2d is None and record.hand.valid_3d is None
        assert record.take_name == annotations[record.take_uid].take_name != record.take_uid


def test_real_file_iterates_in_file_order_right_before_left(egoexo_test_public):
    raw = json.loads(egoexo_test_public.read_text())
    annotations = load_annotations(egoexo_test_public)
    expected = [
        (take_uid, int(frame_key), side)
        for take_uid, frames in raw.items()
        for frame_key, frame in frames.items()
        for side in ("right", "left")
        if frame[f"{side}_hand_bbox"]
    ]
    assert [(r.take_uid, r.frame_number, r.side) for r in annotations.hands()] == expected
    # and it writes back to exactly the released structure
    assert annotations_to_json(annotations, boxes_only=True) == raw


def test_hands_yield_right_before_left_whatever_the_insertion_order(gt_builder):
    gt_builder.add("t", 5, "left")
    gt_builder.add("t", 5, "right")
    gt_builder.add("t", 9, "left")
    annotations = gt_builder.build()
    assert list(annotations["t"].frames[5].hands) == ["left", "right"]
    assert [(r.frame_number, r.side) for r in annotations.hands()] == [(5, "right"), (5, "left"), (9, "left")]


# ---------------------------------------------------------------------------------------------- round trips


def test_annotations_round_trip_with_nan_literals_and_release_key_order(small_gt, tmp_path):
    path = tmp_path / "gt.json"
    assert write_annotations(small_gt, path) == path
    text = path.read_text()
    assert re.search(r"\[NaN, NaN, NaN\]", text)  # invalid joints as bare NaN literals
    assert '"NaN"' not in text
    raw = json.loads(text)
    for take_uid, frames in raw.items():
        for frame_key, frame in frames.items():
            assert list(frame) == RELEASE_FRAME_KEYS
            assert frame["metadata"] == {
                "take_uid": take_uid,
                "take_name": f"name-{take_uid}",
                "frame_number": int(frame_key),
            }
    assert raw["take-a"]["6"]["right_hand_3d"] == []  # absent hand: [] in all four fields
    assert all(raw["take-a"]["6"][f"right_hand_{f}"] == [] for f in HAND_FIELDS)
    assert raw["take-a"]["3"]["left_hand_valid_3d"][3] is False
    loaded = load_annotations(path)
    assert loaded.source == str(path)
    assert_same_annotations(loaded, small_gt)
    assert np.isnan(loaded["take-a"].frames[3].hands["left"].joints_3d[[3, 8, 20]]).all()
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_boxes_only_writes_boxes_and_metadata(small_gt, tmp_path):
    path = write_annotations(small_gt, tmp_path / "test_public.json", boxes_only=True)
    raw = json.loads(path.read_text())
    for frames in raw.values():
        for frame in frames.values():
            assert list(frame) == ["right_hand_bbox", "left_hand_bbox", "metadata"]
    loaded = load_annotations(path)
    assert list(loaded.hands()) and all(not r.hand.has_3d for r in loaded.hands())
    assert [(r.take_uid, r.frame_number, r.side) for r in loaded.hands()] == [
        (r.take_uid, r.frame_number, r.side) for r in small_gt.hands()
    ]
    for record, original in zip(loaded.hands(), small_gt.hands(), strict=True):
        np.testing.assert_array_equal(record.hand.bbox, original.hand.bbox)


def test_old_pre_release_key_names_load_the_same(small_gt, tmp_path):
    data = annotations_to_json(small_gt)
    renames = {f"{s}_hand_3d": f"{s}_hand" for s in ("left", "right")}
    renames |= {f"{s}_hand_valid_3d": f"{s}_hand_valid" for s in ("left", "right")}
    old = {
        take: {key: {renames.get(k, k): v for k, v in frame.items()} for key, frame in frames.items()}
        for take, frames in data.items()
    }
    assert "right_hand" in old["take-a"]["3"] and "right_hand_3d" not in old["take-a"]["3"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    assert_same_annotations(load_annotations(path), small_gt)


def test_predictions_round_trip_and_missing_hands_written_empty(tmp_path):
    rng = np.random.default_rng(3)
    right, left = rng.normal(size=(21, 3)), rng.normal(size=(21, 3))
    path = write_predictions(
        {"t1": {3: {"right": right}, 6: {"left": left, "right": None}}}, tmp_path / "p.json"
    )
    raw = json.loads(path.read_text())
    assert raw["t1"]["3"]["left_hand_3d"] == []
    assert raw["t1"]["6"]["right_hand_3d"] == []
    assert len(raw["t1"]["3"]["right_hand_3d"]) == 21
    loaded = load_predictions(path)
    assert list(loaded) == ["t1"] and list(loaded["t1"]) == [3, 6]
    assert list(loaded["t1"][3]) == ["right"] and list(loaded["t1"][6]) == ["left"]
    np.testing.assert_array_equal(loaded["t1"][3]["right"], right)
    np.testing.assert_array_equal(loaded["t1"][6]["left"], left)


# --------------------------------------------------------------------------------------------------- layout


def test_image_path_layout(tmp_path):
    assert (
        image_path(tmp_path, "val", "iiith_cooking_1", 42)
        == tmp_path / "val" / "iiith_cooking_1" / "000042.jpg"
    )
    assert image_path(tmp_path, "test", "t", 123456).name == "123456.jpg"


def test_annotation_path_nested_or_direct(tmp_path):
    nested = tmp_path / "nested"
    assert annotation_path(nested, "train") == nested / "annotation/manual/ego_pose_gt_anno_train_public.json"
    assert (
        annotation_path(nested, "test", public=False, anno_type="auto")
        == nested / "annotation/auto/ego_pose_gt_anno_test_private.json"
    )
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "ego_pose_gt_anno_val_public.json").write_text("{}")
    assert annotation_path(flat, "val") == flat / "ego_pose_gt_anno_val_public.json"
    with pytest.raises(InputError, match="'dev'"):
        annotation_path(tmp_path, "dev")
    with pytest.raises(InputError, match="'hand'"):
        annotation_path(tmp_path, "train", anno_type="hand")


def test_missing_images(small_gt, tmp_path):
    expected = [image_path(tmp_path, "train", r.take_name, r.frame_number) for r in small_gt.hands()]
    expected = list(dict.fromkeys(expected))  # one image per frame
    assert missing_images(small_gt, tmp_path, "train") == expected
    for path in expected:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\xff\xd8")
    assert missing_images(small_gt, tmp_path, "train") == []
    expected[2].unlink()
    assert missing_images(small_gt, tmp_path, "train") == [expected[2]]
    assert len(missing_images(small_gt, tmp_path, "val")) == 4


# ------------------------------------------------------------------------------------------------ bad input


def written(tmp_path, data, name="bad.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def gt_frame(small_gt, mutate):
    """The JSON of small_gt with `mutate(frame)` applied to take-a frame 3."""
    data = annotations_to_json(small_gt)
    mutate(data["take-a"]["3"])
    return data


def test_malformed_json_names_file_line_and_column(tmp_path):
    path = written(tmp_path, '{"t": {\n  "3": {"right_hand_3d": [1, 2,, 3]}}}')
    for load in (load_annotations, load_predictions):
        with pytest.raises(InputError) as info:
            load(path)
        assert str(path) in str(info.value)
        assert "line 2 column 32" in str(info.value)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'nope.json'}: no such prediction file")):
        load_predictions(tmp_path / "nope.json")


@pytest.mark.parametrize("load", [load_annotations, load_predictions])
def test_non_object_top_level(tmp_path, load):
    path = written(tmp_path, [1, 2])
    with pytest.raises(InputError, match=re.escape(str(path)) + ".*expected an object of takes, got list"):
        load(path)


def test_ground_truth_with_20_joints(small_gt, tmp_path):
    path = written(tmp_path, gt_frame(small_gt, lambda f: f["left_hand_3d"].pop()))
    with pytest.raises(InputError) as info:
        load_annotations(path)
    assert str(info.value) == f"{path}: take take-a frame 3 left_hand_3d: expected 21x3 numbers, got 20x3"


def test_prediction_with_20_joints(tmp_path):
    path = written(tmp_path, {"t": {"7": {"right_hand_3d": [[0.0, 0.0, 0.5]] * 20, "left_hand_3d": []}}})
    with pytest.raises(InputError) as info:
        load_predictions(path)
    assert str(info.value) == f"{path}: take t frame 7 right_hand_3d: expected 21x3 numbers, got 20x3"


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_prediction_with_a_non_finite_value(tmp_path, bad):
    joints = [[0.0, 0.0, 0.5]] * 21
    joints[4] = [0.0, bad, 0.5]
    path = written(tmp_path, {"t": {"7": {"right_hand_3d": [], "left_hand_3d": joints}}})
    assert ("NaN" if np.isnan(bad) else "Infinity") in path.read_text()
    with pytest.raises(InputError) as info:
        load_predictions(path)
    message = str(info.value)
    assert message.startswith(f"{path}: take t frame 7 left_hand_3d: non-finite value")
    assert "index 4" in message


def test_ground_truth_with_a_nan_wrist(small_gt, tmp_path):
    def nan_wrist(frame):
        frame["right_hand_3d"][0] = [float("nan")] * 3

    path = written(tmp_path, gt_frame(small_gt, nan_wrist))
    with pytest.raises(InputError, match=re.escape(f"{path}: take take-a frame 3 right_hand_3d: the wrist")):
        load_annotations(path)


def test_ground_truth_joint_flagged_valid_but_nan(small_gt, tmp_path):
    # a NaN among the valid joints would crash the Procrustes SVD in evaluation; the loader names it
    def nan_valid_joints(frame):
        frame["right_hand_3d"][5] = [float("nan")] * 3
        frame["right_hand_3d"][9][2] = float("nan")

    path = written(tmp_path, gt_frame(small_gt, nan_valid_joints))
    with pytest.raises(InputError) as info:
        load_annotations(path)
    assert str(info.value) == (
        f"{path}: take take-a frame 3 right_hand_3d: joint(s) 5, 9 flagged valid but not numbers"
    )


def test_ground_truth_with_an_infinite_joint(small_gt, tmp_path):
    def infinite(frame):
        frame["right_hand_3d"][5][1] = float("inf")

    path = written(tmp_path, gt_frame(small_gt, infinite))
    with pytest.raises(InputError, match=re.escape(f"{path}: take take-a frame 3 right_hand_3d: infinite")):
        load_annotations(path)


@pytest.mark.parametrize("old_names", [False, True])
def test_valid_flags_of_the_wrong_length(small_gt, tmp_path, old_names):
    def short_flags(frame):
        frame["left_hand_valid_3d"] = frame["left_hand_valid_3d"][:20]
        if old_names:
            frame["left_hand"] = frame.pop("left_hand_3d")
            frame["left_hand_valid"] = frame.pop("left_hand_valid_3d")

    path = written(tmp_path, gt_frame(small_gt, short_flags))
    field = "left_hand_valid" if old_names else "left_hand_valid_3d"
    with pytest.raises(InputError) as info:
        load_annotations(path)
    assert str(info.value) == f"{path}: take take-a frame 3 {field}: expected 21 booleans, got 20"


def test_metadata_frame_number_must_match_the_key(small_gt, tmp_path):
    path = written(tmp_path, gt_frame(small_gt, lambda f: f["metadata"].update(frame_number=4)))
    with pytest.raises(InputError) as info:
        load_annotations(path)
    assert str(info.value) == f"{path}: take take-a frame 3 metadata.frame_number: 4 differs from the key"


def test_metadata_take_uid_must_match_the_key(small_gt, tmp_path):
    path = written(tmp_path, gt_frame(small_gt, lambda f: f["metadata"].update(take_uid="take-z")))
    with pytest.raises(InputError, match=re.escape(f"{path}: take take-a frame 3 metadata.take_uid")):
        load_annotations(path)


def test_non_numeric_frame_key_and_non_object_frame(tmp_path):
    path = written(tmp_path, {"t": {"x1": {}}})
    with pytest.raises(InputError, match=re.escape(f"{path}: take t frame x1 frame number")):
        load_annotations(path)
    path = written(tmp_path, {"t": {"1": [1]}})
    with pytest.raises(InputError, match=re.escape(f"{path}: take t frame 1 frame: expected an object")):
        load_predictions(path)
