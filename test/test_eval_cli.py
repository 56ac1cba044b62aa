"""`hand-pose eval`, `mean-pose` and `check-data` end to end, and bad input through the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hand_pose_core.egoexo.formats import (
    annotation_path,
    image_path,
    load_annotations,
    load_predictions,
    write_annotations,
    write_predictions,
)
from hand_pose_core.egoexo.metrics import evaluate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def gt_file(small_gt, tmp_path):
    return write_annotations(small_gt, tmp_path / "gt.json")


def noisy(seed=0, scale=0.01):
    rng = np.random.default_rng(seed)
    return lambda joints, record: joints + rng.normal(scale=scale, size=(21, 3))


@pytest.fixture
def pred_file(small_gt, predict, tmp_path):
    return write_predictions(predict(small_gt, noisy()), tmp_path / "pred.json")


def leftovers(root):
    """Report files and temporary files anywhere under `root`."""
    return sorted(str(p) for p in Path(root).rglob("*") if p.name == "report.json" or p.name.endswith(".tmp"))


def assert_one_line_error(code, err, *names):
    assert code == 2
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("hand-pose ")
    for name in names:
        assert str(name) in err


# ----------------------------------------------------------------------------------------------------- eval


def test_eval_prints_the_table_and_writes_report_and_plots(run_cli, gt_file, pred_file, tmp_path):
    out = tmp_path / "out" / "eval"
    code, stdout, err = run_cli("eval", "--pred", pred_file, "--gt", gt_file, "--out", out)
    assert (code, err) == (0, "")
    expected = evaluate(load_predictions(pred_file), load_annotations(gt_file))
    report = json.loads((out / "report.json").read_text())
    for key in ("mpjpe", "pa_mpjpe", "num_hands"):
        assert report[key] == expected[key]
    assert report["num_hands"] == 6 and report["offset"] is False
    lines = stdout.splitlines()
    assert lines[0].split() == ["hands", "count", "MPJPE", "mm", "PA-MPJPE", "mm"]
    assert lines[1].split() == ["all", "6", f"{expected['mpjpe']:.2f}", f"{expected['pa_mpjpe']:.2f}"]
    assert lines[2].split()[:2] == ["right", "3"] and lines[3].split()[:2] == ["left", "3"]
    assert "PCK AUC" in stdout and str(out / "report.json") in stdout
    for name in ("per_joint_error.png", "pck.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 5000
    assert leftovers(tmp_path) == [str(out / "report.json")]


def test_eval_without_out_writes_nothing(run_cli, gt_file, pred_file, tmp_path):
    code, stdout, _ = run_cli("eval", "--pred", pred_file, "--gt", gt_file)
    assert code == 0 and "MPJPE" in stdout and "wrote" not in stdout
    assert leftovers(tmp_path) == []


def test_eval_offset(run_cli, small_gt, predict, gt_file, tmp_path):
    add_noise = noisy()
    relative = predict(small_gt, lambda joints, record: add_noise(joints, record) - joints[0])
    pred_file = write_predictions(relative, tmp_path / "relative.json")
    code, _, _ = run_cli("eval", "--pred", pred_file, "--gt", gt_file, "--offset", "--out", tmp_path / "o")
    assert code == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    absolute = evaluate(predict(small_gt, noisy()), small_gt)
    assert report["offset"] is True
    assert report["mpjpe"] == pytest.approx(absolute["mpjpe"], rel=1e-9)
    assert report["pa_mpjpe"] == pytest.approx(absolute["pa_mpjpe"], rel=1e-9)
    code, stdout, _ = run_cli("eval", "--pred", pred_file, "--gt", gt_file)
    assert code == 0 and "--offset" not in stdout


def test_eval_allow_missing(run_cli, small_gt, predict, gt_file, tmp_path):
    pred_file = write_predictions(
        predict(small_gt, noisy(), skip={("take-b", 0, "left")}), tmp_path / "p.json"
    )
    code, stdout, err = run_cli("eval", "--pred", pred_file, "--gt", gt_file)
    assert_one_line_error(code, err, "take take-b frame 0 left_hand_3d")
    assert stdout == ""
    code, stdout, err = run_cli(
        "eval", "--pred", pred_file, "--gt", gt_file, "--allow-missing", "--out", tmp_path
    )
    assert (code, err) == (0, "")
    assert "1 hands without prediction" in stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["num_missing"], report["num_hands"]) == (1, 5)


def test_mean_pose_then_eval(run_cli, small_gt, gt_file, tmp_path):
    targets = write_annotations(small_gt, tmp_path / "targets.json", boxes_only=True)
    pred_file = tmp_path / "mean.json"
    code, stdout, err = run_cli("mean-pose", "--train", gt_file, "--targets", targets, "--out", pred_file)
    assert (code, err) == (0, "")
    assert str(pred_file) in stdout
    predictions = load_predictions(pred_file)
    left = predictions["take-a"][6]["left"]
    np.testing.assert_array_equal(left[0], 0.0)  # wrist-relative
    np.testing.assert_allclose(predictions["take-b"][0]["left"], left)  # one pose per side
    code, stdout, err = run_cli("eval", "--pred", pred_file, "--gt", gt_file, "--offset")
    assert (code, err) == (0, "")
    assert stdout.splitlines()[1].split()[:2] == ["all", "6"]


def test_mean_pose_for_the_real_test_public_boxes(run_cli, gt_file, egoexo_test_public, tmp_path):
    pred_file = tmp_path / "mean.json"
    code, _, err = run_cli(
        "mean-pose", "--train", gt_file, "--targets", egoexo_test_public, "--out", pred_file
    )
    assert (code, err) == (0, "")
    predictions = load_predictions(pred_file)
    assert len(predictions) == 86
    assert sum(len(frames) for frames in predictions.values()) == 5832
    assert sum(len(hands) for frames in predictions.values() for hands in frames.values()) == 8772


def test_mean_pose_needs_3d_training_hands(run_cli, egoexo_test_public, tmp_path):
    out = tmp_path / "mean.json"
    code, _, err = run_cli(
        "mean-pose", "--train", egoexo_test_public, "--targets", egoexo_test_public, "--out", out
    )
    assert_one_line_error(code, err, egoexo_test_public)
    assert not out.exists()


# ----------------------------------------------------------------------------------------------- check-data


@pytest.fixture
def dataset(small_gt, tmp_path):
    gt_dir, image_dir = tmp_path / "gt", tmp_path / "images"
    write_annotations(small_gt, annotation_path(gt_dir, "train"))
    write_annotations(small_gt, annotation_path(gt_dir, "test"), boxes_only=True)
    for split in ("train", "test"):
        for take in small_gt.takes.values():
            for number in take.frames:
                path = image_path(image_dir, split, take.take_name, number)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"\xff\xd8\xff")
    return gt_dir, image_dir


def test_check_data_passes(run_cli, dataset):
    gt_dir, image_dir = dataset
    code, stdout, err = run_cli("check-data", "--gt-dir", gt_dir, "--image-dir", image_dir)
    assert (code, err) == (0, "")
    lines = stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(
        "ego_pose_gt_anno_train_public.json: 2 takes, 4 frames, 3 left and 3 right hands"
    )
    assert "ego_pose_gt_anno_test_public.json" in lines[1]


def test_check_data_fails_on_a_missing_image(run_cli, dataset):
    gt_dir, image_dir = dataset
    missing = image_path(image_dir, "test", "name-take-b", 12)
    missing.unlink()
    code, _, err = run_cli("check-data", "--gt-dir", gt_dir, "--image-dir", image_dir)
    assert_one_line_error(code, err, missing, "1 of 4")


def test_check_data_without_annotations(run_cli, tmp_path):
    code, _, err = run_cli("check-data", "--gt-dir", tmp_path)
    assert_one_line_error(code, err, tmp_path, "no ego_pose_gt_anno_")


# ------------------------------------------------------------------------------------------------ bad input


def bad_prediction_files(tmp_path, small_gt, predict):
    good = json.loads(write_predictions(predict(small_gt), tmp_path / "good.json").read_text())

    def variant(name, change):
        data = json.loads(json.dumps(good))
        change(data)
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return path

    malformed = tmp_path / "malformed.json"
    malformed.write_text(json.dumps(good)[:-10])
    return {
        "malformed": (malformed, ["line 1 column"]),
        "shape": (
            variant("shape.json", lambda d: d["take-a"]["3"]["left_hand_3d"].pop()),
            ["take take-a frame 3 left_hand_3d", "21x3", "20x3"],
        ),
        "nan": (
            variant("nan.json", lambda d: d["take-b"]["12"]["right_hand_3d"][2].__setitem__(1, float("nan"))),
            ["take take-b frame 12 right_hand_3d", "NaN at joint(s) 2, which the ground truth marks valid"],
        ),
        "missing file": (tmp_path / "absent.json", ["no such prediction file"]),
    }


@pytest.mark.parametrize("case", ["malformed", "shape", "nan", "missing file"])
def test_bad_predictions_exit_2_with_one_line(run_cli, small_gt, predict, gt_file, tmp_path, case):
    pred_file, words = bad_prediction_files(tmp_path, small_gt, predict)[case]
    out = tmp_path / "out"
    code, _, err = run_cli("eval", "--pred", pred_file, "--gt", gt_file, "--out", out)
    assert_one_line_error(code, err, pred_file, *words)
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_eval_ignores_what_the_official_script_ignores_with_a_warning(
    run_cli, small_gt, predict, gt_file, tmp_path, caplog
):
    """A predicted take not in the ground truth, and NaN at joints the ground truth marks invalid
    (take-a frame 3 left: 3, 8 and 20), are passed over and counted; the scores are those without them."""
    good = write_predictions(predict(small_gt, noisy()), tmp_path / "good.json")
    data = json.loads(good.read_text())
    data["ghost-take"] = {"1": {"right_hand_3d": [[0.0, 0.0, 0.0]] * 21}}
    for joint in (3, 8, 20):
        data["take-a"]["3"]["left_hand_3d"][joint] = [float("nan")] * 3
    lenient = tmp_path / "lenient.json"
    lenient.write_text(json.dumps(data))
    code, stdout, err = run_cli("eval", "--pred", lenient, "--gt", gt_file, "--out", tmp_path / "out")
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    expected = evaluate(load_predictions(good), small_gt)
    assert (report["mpjpe"], report["pa_mpjpe"]) == pytest.approx((expected["mpjpe"], expected["pa_mpjpe"]))
    assert (report["num_ignored_takes"], report["ignored_takes"], report["num_ignored_nan_joints"]) == (
        1,
        ["ghost-take"],
        3,
    )
    assert "note: 1 predicted takes not in the ground truth ignored" in stdout
    assert "note: NaN at 3 joints marked invalid ignored" in stdout
    warning = f"{lenient}: ignored, as the official evaluation does: 1 predicted take(s) not in the ground"
    assert warning in caplog.text and "NaN at 3 predicted joint(s)" in caplog.text


def test_bad_ground_truth_exit_2(run_cli, pred_file, tmp_path):
    gt = tmp_path / "gt_bad.json"
    gt.write_text('{"take-a": {"3": {"right_hand_3d": [[0, 0, NaN]]}}}')
    code, _, err = run_cli("eval", "--pred", pred_file, "--gt", gt)
    assert_one_line_error(code, err, gt, "take take-a frame 3 right_hand_3d", "1x3")


def test_json_nested_too_deeply_is_one_line_not_a_recursion_error(run_cli, gt_file, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 10_000_000)
    code, _, err = run_cli("eval", "--pred", deep, "--gt", gt_file)
    assert_one_line_error(code, err, deep, "nested too deeply")


def test_unwritable_output_folder(run_cli, gt_file, pred_file, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = blocker / "report"
    code, _, err = run_cli("eval", "--pred", pred_file, "--gt", gt_file, "--out", out)
    assert_one_line_error(code, err, out, "cannot create output folder")
    assert blocker.read_text() == "not a folder"
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "gt.json", "pred.json"]


def test_a_plot_that_cannot_be_written_leaves_no_report(run_cli, gt_file, pred_file, tmp_path):
    out = tmp_path / "out"
    (out / "pck.png").mkdir(parents=True)  # the last plot's place is taken by a folder
    code, _, err = run_cli("eval", "--pred", pred_file, "--gt", gt_file, "--out", out)
    assert_one_line_error(code, err, out / "pck.png", "cannot write")
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in out.iterdir()) == ["pck.png", "per_joint_error.png"]
    assert (out / "per_joint_error.png").read_bytes().startswith(PNG_MAGIC)


def test_unwritable_mean_pose_output(run_cli, gt_file, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, _, err = run_cli("mean-pose", "--train", gt_file, "--targets", gt_file, "--out", blocker / "p.json")
    assert_one_line_error(code, err, blocker)
    assert leftovers(tmp_path) == []


def test_installed_console_script_reports_bad_input(tmp_path, gt_file):
    script = Path(sys.executable).parent / "hand-pose"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = subprocess.run(
        [str(script), "eval", "--pred", str(bad), "--gt", str(gt_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n")
    assert str(bad) in result.stderr and "malformed JSON at line 1 column 2" in result.stderr


def test_eval_against_a_boxes_only_file_names_it(tmp_path, run_cli, egoexo_test_public):
    pred = tmp_path / "pred.json"
    pred.write_text("{}")
    code, _, err = run_cli("eval", "--pred", pred, "--gt", egoexo_test_public)
    assert code == 2
    assert f"{egoexo_test_public}: no 3D ground truth" in err and err.strip().count("\n") == 0
