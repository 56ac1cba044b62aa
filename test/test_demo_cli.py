"""`hand-pose synth` and `hand-pose demo` end to end through the command line."""

from __future__ import annotations

import json
import math

from PIL import Image

from hand_pose_core.egoexo import annotation_path


def test_synth_command_writes_the_dataset_and_compares_statistics(tmp_path, run_cli):
    code, out, err = run_cli("synth", "--out", tmp_path, "--takes", 3, "--frames", 5, "--seed", 1)
    assert code == 0, err
    assert "frames/s" in out
    assert "std ratio synth/real" in out
    assert "fingertip distance" in out
    assert annotation_path(tmp_path, "test", public=False).is_file()


def test_synth_command_refuses_too_few_takes(tmp_path, run_cli):
    code, _, err = run_cli("synth", "--out", tmp_path, "--takes", 2)
    assert code == 2
    assert err.strip().count("\n") == 0 and "--takes 2" in err
    assert not (tmp_path / "annotation").exists()


def test_demo_writes_report_plots_and_preview(tmp_path, run_cli):
    out_dir = tmp_path / "demo"
    code, out, err = run_cli("demo", "--out", out_dir, "--takes", 3, "--frames", 6)
    assert code == 0, err
    report = json.loads((out_dir / "report.json").read_text())
    assert report["num_hands"] > 0 and report["offset"] is True
    assert math.isfinite(report["mpjpe"]) and 0 < report["pa_mpjpe"] < report["mpjpe"] < 150
    for name in ("per_joint_error.png", "pck.png", "synth_preview.png"):
        with Image.open(out_dir / name) as image:
            assert image.format == "PNG" and min(image.size) >= 256
    assert (out_dir / "mean_pose_predictions.json").is_file()
    assert f"{report['mpjpe']:.2f}" in out
