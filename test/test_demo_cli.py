"""`hand-pose synth` through the command line, and the demo (`make demo`) end to end."""

from __future__ import annotations

import json
import math

from PIL import Image

from hand_pose_core.egoexo.formats import annotation_path
from hand_pose_ros.demo import run_demo


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


def test_reduced_demo_runs_the_node_end_to_end(tmp_path):
    """`make demo` with a take of 6 frames: every output there, the metrics finite and plausible."""
    out = tmp_path / "demo"
    summary = run_demo(out, frames=6)
    report = json.loads((out / "report.json").read_text())
    assert summary.frames == 6 and summary.hands_found > 0
    assert 0 < report["num_hands"] <= summary.hands_annotated
    assert math.isfinite(report["mpjpe"]) and 0 < report["pa_mpjpe"] < report["mpjpe"] < 400
    assert 0 < summary.relative_mpjpe < 150
    for name in ("per_joint_error.png", "pck.png", "hands_3d.png", "overlay_sheet.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and min(image.size) >= 256
    assert len(list((out / "overlay").glob("*.png"))) == 6  # one per frame
    assert len(list((out / "aria_overlay").glob("*.png"))) == 3  # the real recording's 3 RGB frames
    with Image.open(next((out / "aria_overlay").glob("*.png"))) as image:
        assert image.size == (512, 512)
    latency = json.loads((out / "latency.json").read_text())
    assert latency["frames"] == 6 and 0 < latency["p50"] <= latency["p99"]
    assert "onnxruntime" in latency["backend"] or "tensorrt" in latency["backend"]
    assert (out / "pred.json").is_file() and (out / "summary.json").is_file()
