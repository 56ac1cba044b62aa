"""The official metrics on hand-made cases with exact expected values, and the report's breakdowns."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.spatial.transform import Rotation

from hand_pose_core.egoexo.metrics import PCK_THRESHOLDS_MM, evaluate, pck_curve, procrustes_align
from hand_pose_core.errors import InputError

TIGHT = 1e-9


def along_x(metres):
    return np.array([metres, 0.0, 0.0])


def one_hand_gt(gt_builder, joints_m=None, valid=None, side="right"):
    hand = gt_builder.add("take", 30, side, joints=joints_m, valid=valid)
    return gt_builder.build(), hand


def score_one(gt, pred_joints_m, side="right", **options):
    return evaluate({"take": {30: {side: pred_joints_m}}}, gt, **options)


# ---------------------------------------------------------------------------------------------- exact cases


def test_translation_by_10_mm(gt_builder, predict):
    gt, _ = one_hand_gt(gt_builder)
    report = evaluate(predict(gt, lambda j, r: j + along_x(0.010)), gt)
    assert report["mpjpe"] == pytest.approx(10.0, abs=TIGHT)
    assert report["pa_mpjpe"] == pytest.approx(0.0, abs=TIGHT)
    assert report["num_hands"] == 1


def test_similarity_transform_is_removed_by_procrustes(gt_builder, predict):
    gt, _ = one_hand_gt(gt_builder)
    rotation = Rotation.from_euler("xyz", [30, -50, 110], degrees=True)
    report = evaluate(predict(gt, lambda j, r: 1.7 * rotation.apply(j) + [0.1, -0.2, 0.3]), gt)
    assert report["pa_mpjpe"] == pytest.approx(0.0, abs=TIGHT)
    assert report["mpjpe"] > 100.0


def reflection_case(gt_builder, a=3.0, b=2.0, c=1.0):
    """Six valid joints on the axes (mm, joint 0 the wrist), pred the same with x negated."""
    points_mm = np.array([[a, 0, 0], [-a, 0, 0], [0, b, 0], [0, -b, 0], [0, 0, c], [0, 0, -c]])
    valid = np.zeros(21, dtype=bool)
    valid[:6] = True
    joints_mm = np.full((21, 3), np.nan)
    joints_mm[:6] = points_mm
    gt, hand = one_hand_gt(gt_builder, joints_mm / 1000.0, valid)
    pred_mm = np.zeros((21, 3))
    pred_mm[:6] = points_mm * [-1, 1, 1]
    return gt, hand, pred_mm / 1000.0


def test_reflection_is_not_allowed_in_procrustes(gt_builder):
    # Cross-covariance diag(-2a^2, 2b^2, 2c^2): the best proper rotation flips the axis of the
    # smallest singular value (z), scale (2a^2 + 2b^2 - 2c^2) / (2a^2 + 2b^2 + 2c^2) = 24/28 = 6/7,
    # per-point errors 3/7, 3/7, 2/7, 2/7, 13/7, 13/7: mean 6/7 mm.
    gt, hand, pred = reflection_case(gt_builder)
    assert np.isnan(hand.joints_3d[6:]).all() and not hand.valid_3d[6:].any()
    report = score_one(gt, pred)
    assert report["pa_mpjpe"] == pytest.approx(6 / 7, abs=TIGHT)
    assert report["mpjpe"] == pytest.approx(2.0, abs=TIGHT)  # the x points are 2a apart, others exact
    pa_errors = np.array(report["per_joint"]["pa_mpjpe"][:6])
    np.testing.assert_allclose(pa_errors, np.array([3, 3, 2, 2, 13, 13]) / 7, atol=TIGHT)
    assert report["per_joint"]["pa_mpjpe"][6:] == [None] * 15


def test_procrustes_align_directly_on_the_reflection_case():
    points = np.array([[3.0, 0, 0], [-3, 0, 0], [0, 2, 0], [0, -2, 0], [0, 0, 1], [0, 0, -1]])
    aligned = procrustes_align(points * [-1, 1, 1], points)
    np.testing.assert_allclose(aligned, points * [6 / 7, 6 / 7, -6 / 7], atol=TIGHT)
    np.testing.assert_allclose(procrustes_align(np.ones((4, 3)), points[:4]), np.zeros((4, 3)), atol=TIGHT)


def test_invalid_joints_are_ignored(gt_builder):
    valid = np.ones(21, dtype=bool)
    valid[[7, 15]] = False
    gt, hand = one_hand_gt(gt_builder, valid=valid)
    assert np.isnan(hand.joints_3d[7]).all()
    hand.joints_3d[15] = hand.joints_3d[14]  # a real GT value still does not count while not valid
    noise = np.random.default_rng(5).normal(scale=0.004, size=(21, 3))
    pred = np.nan_to_num(hand.joints_3d) + noise
    base = score_one(gt, pred)
    for joint in (7, 15):
        wild = pred.copy()
        wild[joint] += [50.0, -80.0, 120.0]  # 150 m off
        report = score_one(gt, wild)
        assert report["mpjpe"] == pytest.approx(base["mpjpe"], abs=TIGHT)
        assert report["pa_mpjpe"] == pytest.approx(base["pa_mpjpe"], abs=TIGHT)
    expected = np.linalg.norm(noise[valid], axis=1).mean() * 1000
    assert base["mpjpe"] == pytest.approx(expected, rel=1e-12)
    assert base["per_joint"]["num_valid"] == valid.astype(int).tolist()


def test_offset_scores_wrist_relative_predictions_like_absolute_ones(small_gt, predict):
    rng = np.random.default_rng(11)
    noise = {
        (r.take_uid, r.frame_number, r.side): rng.normal(scale=0.01, size=(21, 3)) for r in small_gt.hands()
    }

    def absolute(joints, record):
        return joints + noise[record.take_uid, record.frame_number, record.side]

    def relative(joints, record):
        return absolute(joints, record) - joints[0]

    with_offset = evaluate(predict(small_gt, relative), small_gt, offset=True)
    plain = evaluate(predict(small_gt, absolute), small_gt)
    assert with_offset["offset"] is True and plain["offset"] is False
    assert with_offset["num_hands"] == plain["num_hands"] == 6
    assert with_offset["mpjpe"] == pytest.approx(plain["mpjpe"], rel=1e-12)
    assert with_offset["pa_mpjpe"] == pytest.approx(plain["pa_mpjpe"], rel=1e-12)
    without = evaluate(predict(small_gt, relative), small_gt)
    assert without["mpjpe"] > 200  # the wrists are ~0.5 m from the camera


def test_pooling_is_a_mean_over_hands_left_and_right_together(gt_builder, predict):
    flat = gt_builder.hand_joints() * [0.0, 1.0, 1.0]  # x = 0 so the errors below are exact
    few_valid = np.zeros(21, dtype=bool)
    few_valid[:11] = True
    gt_builder.add("t1", 3, "right", flat)
    gt_builder.add("t1", 3, "left", flat, valid=few_valid)
    gt = gt_builder.build()
    shift = {"right": 0.010, "left": 0.030}
    report = evaluate(predict(gt, lambda j, r: j + along_x(shift[r.side])), gt)
    # each hand weighs 1 (a mean over joints would give (21 * 10 + 11 * 30) / 32 = 16.875)
    assert report["mpjpe"] == pytest.approx(20.0, abs=TIGHT)
    assert report["num_hands"] == 2
    assert report["by_side"]["right"] == pytest.approx(
        {"mpjpe": 10.0, "pa_mpjpe": 0.0, "num_hands": 1}, abs=TIGHT
    )
    assert report["by_side"]["left"] == pytest.approx(
        {"mpjpe": 30.0, "pa_mpjpe": 0.0, "num_hands": 1}, abs=TIGHT
    )


def test_a_side_without_hands_reports_null(gt_builder, predict):
    gt_builder.add("t1", 3, "left")
    gt = gt_builder.build()
    report = evaluate(predict(gt), gt)
    assert report["by_side"]["right"] == {"mpjpe": None, "pa_mpjpe": None, "num_hands": 0}
    assert report["by_side"]["left"]["num_hands"] == 1


# ----------------------------------------------------------------------------------------------- PA optimum


def sum_squared(pred, gt):
    return float(((pred - gt) ** 2).sum())


def rms(pred, gt):
    return float(np.sqrt(((pred - gt) ** 2).sum(axis=1).mean()))


def numeric_similarity_fit(pred, gt):
    """The least-squares similarity transform found by a general optimiser: scale (as a log, so it stays
    positive), rotation vector (always a proper rotation) and translation; best of a few starts."""

    def apply(params):
        return np.exp(params[0]) * Rotation.from_rotvec(params[1:4]).apply(pred) + params[4:]

    best = None
    for rotvec in Rotation.random(4, random_state=2).as_rotvec():
        start = np.concatenate([[0.0], rotvec, gt.mean(axis=0) - pred.mean(axis=0)])
        result = minimize(lambda p: sum_squared(apply(p), gt), start, method="BFGS", options={"gtol": 1e-10})
        if best is None or result.fun < best.fun:
            best = result
    return apply(best.x)


@pytest.mark.parametrize("case", range(4))
def test_pa_mpjpe_matches_an_independent_numeric_optimum(gt_builder, case):
    rng = np.random.default_rng(100 + case)
    valid = rng.uniform(size=21) > 0.2
    valid[0] = True
    gt, hand = one_hand_gt(gt_builder, valid=valid)
    rotation = Rotation.random(random_state=rng)
    pred = 0.8 * rotation.apply(hand.joints_3d) + [0.02, 0.01, -0.03] + rng.normal(scale=0.005, size=(21, 3))
    if case == 3:
        pred = pred * [-1, 1, 1]  # a mirrored hand: only a proper rotation is allowed
    pred = np.nan_to_num(pred)
    report = score_one(gt, pred)

    gt_mm, pred_mm = hand.joints_3d[valid] * 1000, pred[valid] * 1000
    ours = procrustes_align(pred_mm, gt_mm)
    numeric = numeric_similarity_fit(pred_mm, gt_mm)
    # The official alignment is the least-squares similarity, so its objective is the one compared: the
    # optimiser may not beat ours by more than 1e-6 mm RMS, and it does reach it. (The mean distance
    # itself is not what Procrustes minimises: an optimiser of the mean distance can go a little lower.)
    ours_rms, numeric_rms = rms(ours, gt_mm), rms(numeric, gt_mm)
    assert numeric_rms >= ours_rms - 1e-6
    assert numeric_rms == pytest.approx(ours_rms, rel=1e-6)
    assert report["pa_mpjpe"] == pytest.approx(np.linalg.norm(ours - gt_mm, axis=1).mean(), rel=1e-12)
    assert report["pa_mpjpe"] == pytest.approx(np.linalg.norm(numeric - gt_mm, axis=1).mean(), abs=1e-3)
    assert report["pa_mpjpe"] <= report["mpjpe"]


# -------------------------------------------------------------------------------------- missing and unknown


def test_missing_predictions_are_an_error_naming_them(small_gt, predict):
    skip = {("take-a", 3, "left"), ("take-b", 12, "right")}
    pred = predict(small_gt, skip=skip)
    with pytest.raises(InputError) as info:
        evaluate(pred, small_gt)
    message = str(info.value)
    assert message.startswith("2 hand(s) with ground truth have no prediction")
    assert "take take-a frame 3 left_hand_3d" in message
    assert "take take-b frame 12 right_hand_3d" in message
    del pred["take-b"]  # a whole take missing
    with pytest.raises(InputError, match=r"^4 hand\(s\)"):
        evaluate(pred, small_gt)


def test_allow_missing_counts_them_and_scores_the_rest(small_gt, predict):
    rng = np.random.default_rng(4)
    noisy = predict(small_gt, lambda j, r: j + rng.normal(scale=0.01, size=(21, 3)))
    full = evaluate(noisy, small_gt)
    del noisy["take-b"][12]
    report = evaluate(noisy, small_gt, allow_missing=True)
    assert report["num_missing"] == 1
    assert report["missing"] == ["take take-b frame 12 right_hand_3d"]
    assert report["num_hands"] == 5
    per_take_b = full["per_take"]["take-b"]
    # take-b had three hands; the two left are what remains of its sum
    expected = (full["mpjpe"] * 6 - per_take_b["mpjpe"] * 3 + report["per_take"]["take-b"]["mpjpe"] * 2) / 5
    assert report["mpjpe"] == pytest.approx(expected, rel=1e-12)
    assert report["per_take"]["take-a"] == full["per_take"]["take-a"]
    assert report["per_take"]["take-b"]["num_hands"] == 2


def test_unknown_takes_are_ignored_with_a_warning_naming_them(small_gt, predict, caplog):
    """As the official script, which only walks the ground truth's takes."""
    pred = predict(small_gt)
    pred["ghost-1"] = {3: {"left": np.zeros((21, 3))}}
    pred["ghost-2"] = {}
    report = evaluate(pred, small_gt)
    assert report == {
        **evaluate(predict(small_gt), small_gt),
        "num_ignored_takes": 2,
        "ignored_takes": ["ghost-1", "ghost-2"],
    }
    assert "2 predicted take(s) not in the ground truth" in caplog.text
    assert "ghost-1, ghost-2" in caplog.text


def test_nan_is_ignored_at_joints_marked_invalid_and_an_error_at_valid_ones(small_gt, predict, caplog):
    """The official script scores only valid joints, so NaN there changes nothing; NaN at a valid joint
    would make its mean NaN, which is an error naming the hand and joint."""
    rng = np.random.default_rng(5)
    pred = predict(small_gt, lambda j, r: j + rng.normal(scale=0.01, size=(21, 3)))
    expected = evaluate(pred, small_gt)
    assert expected["num_ignored_nan_joints"] == 0 and "ignored" not in caplog.text
    pred["take-a"][3]["left"][[3, 8, 20]] = np.nan  # the joints small_gt marks invalid
    report = evaluate(pred, small_gt)
    assert report == {**expected, "num_ignored_nan_joints": 3}
    assert "NaN at 3 predicted joint(s) the ground truth marks invalid" in caplog.text
    pred["take-a"][3]["left"][2] = np.nan
    with pytest.raises(InputError, match=r"take take-a frame 3 left_hand_3d: NaN at joint\(s\) 2, which"):
        evaluate(pred, small_gt)
    pred["take-a"][3]["left"][2] = np.inf
    with pytest.raises(InputError, match="infinite value"):
        evaluate(pred, small_gt)


def test_bad_prediction_shape_in_memory(small_gt, predict):
    pred = predict(small_gt)
    pred["take-a"][6]["left"] = np.zeros((20, 3))
    with pytest.raises(
        InputError, match=r"take take-a frame 6 left_hand_3d: expected 21x3 numbers, got 20x3"
    ):
        evaluate(pred, small_gt)


def test_boxes_only_ground_truth_cannot_be_scored(egoexo_test_public):
    from hand_pose_core.egoexo.formats import load_annotations

    with pytest.raises(InputError, match=rf"{egoexo_test_public}: no 3D ground truth to score against"):
        evaluate({}, load_annotations(egoexo_test_public))


def test_hands_without_valid_joints_leave_nothing_to_score(gt_builder):
    gt_builder.add("take-a", 0, "right", valid=np.zeros(21, dtype=bool))
    gt = gt_builder.build()
    joints = gt["take-a"].frames[0].hands["right"].joints_3d
    with pytest.raises(InputError, match="no hand with 3D ground truth and valid joints"):
        evaluate({"take-a": {0: {"right": np.nan_to_num(joints)}}}, gt)


# --------------------------------------------------------------------------------------- PCK and breakdowns


def test_pck_of_a_hand_with_all_errors_exactly_10_mm(gt_builder, predict):
    flat = gt_builder.hand_joints() * [0.0, 1.0, 1.0]  # x = 0: (0 + 0.01) * 1000 is exactly 10.0
    gt, _ = one_hand_gt(gt_builder, flat)
    report = evaluate(predict(gt, lambda j, r: j + along_x(0.010)), gt)
    thresholds = np.array(report["pck"]["thresholds_mm"])
    np.testing.assert_array_equal(thresholds, np.arange(51.0))
    pck = np.array(report["pck"]["pck"])
    assert (pck[thresholds < 10] == 0).all()
    assert (pck[thresholds >= 10] == 1).all()
    # trapezoid over unit steps: 0 up to 9, a half step from 9 to 10, then 40 full steps: 40.5 / 50
    assert report["pck"]["auc"] == pytest.approx(40.5 / 50, abs=TIGHT)
    assert (np.array(report["pck"]["pa_pck"])[1:] == 1).all()  # PA errors ~1e-14, maybe not 0
    assert report["pck"]["pa_auc"] >= 1.0 - 0.5 / 50


def test_pck_curve_directly():
    pck, auc = pck_curve(np.array([5.0, 15.0, np.nan, 60.0]))
    assert pck[0] == 0 and pck[5] == pytest.approx(1 / 3) and pck[15] == pytest.approx(2 / 3)
    assert pck[50] == pytest.approx(2 / 3)
    # trapezoid: a step of height h at threshold t adds h * (50 - t + 0.5)
    assert auc == pytest.approx((45.5 + 35.5) / 3 / 50, abs=TIGHT)
    pck, auc = pck_curve(np.array([np.nan]))
    assert np.isnan(pck).all() and np.isnan(auc)
    assert len(PCK_THRESHOLDS_MM) == 51


def test_per_joint_and_per_take_breakdowns(gt_builder, predict):
    flat_a = gt_builder.hand_joints() * [0.0, 1.0, 1.0]
    flat_b = gt_builder.hand_joints() * [0.0, 1.0, 1.0]
    valid_b = np.ones(21, dtype=bool)
    valid_b[[4, 8]] = False
    gt_builder.add("take-a", 3, "right", flat_a)
    gt_builder.add("take-a", 6, "right", flat_a)
    gt_builder.add("take-b", 3, "left", flat_b, valid=valid_b)
    gt = gt_builder.build()
    shift = {("take-a", 3): 0.010, ("take-a", 6): 0.020, ("take-b", 3): 0.060}
    pred = predict(gt, lambda j, r: j + along_x(shift[r.take_uid, r.frame_number]))
    pred["take-b"][3]["left"][8] += [5.0, 5.0, 5.0]  # not valid: ignored everywhere
    report = evaluate(pred, gt)
    per_joint = report["per_joint"]
    assert per_joint["names"][0] == "wrist" and len(per_joint["names"]) == 21
    expected = np.full(21, (10 + 20 + 60) / 3)
    expected[[4, 8]] = (10 + 20) / 2
    np.testing.assert_allclose(per_joint["mpjpe"], expected, atol=TIGHT)
    np.testing.assert_allclose(per_joint["pa_mpjpe"], np.zeros(21), atol=TIGHT)
    assert per_joint["num_valid"] == [2 if j in (4, 8) else 3 for j in range(21)]
    assert list(report["per_take"]) == ["take-a", "take-b"]
    assert report["per_take"]["take-a"] == pytest.approx(
        {"take_name": "name-take-a", "mpjpe": 15.0, "pa_mpjpe": 0.0, "num_hands": 2}, abs=TIGHT
    )
    assert report["per_take"]["take-b"] == pytest.approx(
        {"take_name": "name-take-b", "mpjpe": 60.0, "pa_mpjpe": 0.0, "num_hands": 1}, abs=TIGHT
    )
    assert report["mpjpe"] == pytest.approx(30.0, abs=TIGHT)


def test_hands_without_valid_joints_are_counted_not_scored(gt_builder, predict):
    gt_builder.add("t", 3, "right")
    none_valid = np.zeros(21, dtype=bool)
    gt_builder.add("t", 3, "left", valid=none_valid)
    gt = gt_builder.build()
    report = evaluate(predict(gt, lambda j, r: j + along_x(0.010)), gt)
    assert report["num_hands"] == 1
    assert report["num_hands_without_valid_joints"] == 1
    assert report["mpjpe"] == pytest.approx(10.0, abs=TIGHT)
