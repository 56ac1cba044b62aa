"""`hand-pose synth` through the command line, and the demo (`make demo`) end to end."""

from __future__ import annotations

import json
import math

import pytest
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


@pytest.mark.slow
def test_reduced_demo_runs_the_node_end_to_end(tmp_path):
    """`make demo` with a take of 6 frames (and an event take of 3): every output there, the metrics finite
    and plausible."""
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
    # the real recordings' RGB frames, upright; MediaPipe finds the bare hands, not the gloved ones
    assert len(list((out / "aria_overlay" / "aea_recording").glob("*.png"))) == 8
    assert len(list((out / "aria_overlay" / "adt_apartment_video").glob("*.png"))) == 3
    with Image.open(next((out / "aria_overlay" / "aea_recording").glob("*.png"))) as image:
        assert image.size == (512, 512)
    bare, gloved = summary.real
    assert len(bare.hands) >= 2 and not gloved.hands
    for by_side in bare.hands.values():
        for joints in by_side.values():  # placed in front of the camera, within arm's reach
            assert joints.shape == (21, 3) and 0.1 < joints[0, 2] < 0.8
    with Image.open(out / "aria_hands_3d.png") as image:
        assert image.format == "PNG"
    latency = json.loads((out / "latency.json").read_text())
    assert latency["frames"] == 6 and 0 < latency["p50"] <= latency["p99"]
    assert "onnxruntime" in latency["backend"] or "tensorrt" in latency["backend"]
    assert (out / "pred.json").is_file() and (out / "summary.json").is_file()
    # event cameras: the synthetic event take (3 annotated frames) played as EVT3 packets, every annotated
    # frame answered by a window ending at its stamp, and the real recording's windows (2.08 s at 30 Hz)
    events = summary.events
    assert events.frames == events.answered == 3 and events.windows >= 3 and events.hands_found > 0
    assert 0 < events.relative_mpjpe < 100
    synthetic_overlays = {path.stem for path in (out / "event_overlay" / "synthetic").glob("*.png")}
    assert len(synthetic_overlays) == events.windows  # every window, the annotated frames by number
    assert sum(name.isdigit() and len(name) == 6 for name in synthetic_overlays) == 3
    assert 40 <= events.real_windows <= 63  # all but the first (and any the node drops when busy)
    real_overlays = sorted((out / "event_overlay" / "test_events_1").glob("*.png"))
    assert len(real_overlays) == events.real_windows
    with Image.open(real_overlays[0]) as image:
        assert image.size == (640, 480)
