"""The main job on an embedded default: synthetic Ego-Exo4D data, a reference prediction, the official
evaluation, and what a person wants to look at, all under one output folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from hand_pose_core.atomic import ensure_dir, write_atomic
from hand_pose_core.baselines import mean_pose, predict_mean_pose
from hand_pose_core.egoexo import (
    annotation_path,
    image_path,
    load_annotations,
    load_predictions,
    write_predictions,
)
from hand_pose_core.metrics import evaluate
from hand_pose_core.report import format_table, write_report
from hand_pose_core.synth import SynthConfig, generate
from hand_pose_core.visualize import contact_sheet, draw_skeleton


@dataclass(frozen=True)
class DemoResult:
    report: dict
    files: list[Path]


def preview(data_root: Path, split: str, count: int = 8) -> Image.Image:
    """Frames of a split with their annotated 2D skeletons and boxes, spread over the split."""
    annotations = load_annotations(annotation_path(data_root, split, public=split != "test"))
    records = [(take, frame) for take in annotations.takes.values() for frame in take.frames.values()]
    step = max(1, len(records) // count)
    images = []
    for take, frame in records[::step][:count]:
        image = Image.open(
            image_path(data_root / "image" / "undistorted", split, take.take_name, frame.frame_number)
        )
        image = image.convert("RGB")
        for side, hand in frame.hands.items():
            draw_skeleton(image, hand.joints_2d, side, hand.bbox)
        images.append(image)
    return contact_sheet(images)


def run_demo(out: Path, config: SynthConfig, progress: bool = True) -> DemoResult:
    """Generate data under out/data, predict the mean training pose for the test boxes, score it with
    --offset against the private test file, and write the report, plots and a preview under `out`."""
    out = ensure_dir(Path(out))
    data = out / "data"
    synth = generate(data, config, progress=progress)
    poses = mean_pose(load_annotations(annotation_path(data, "train")))
    predictions_path = write_predictions(
        predict_mean_pose(poses, load_annotations(annotation_path(data, "test"))),
        out / "mean_pose_predictions.json",
    )
    report = evaluate(
        load_predictions(predictions_path),
        load_annotations(annotation_path(data, "test", public=False)),
        offset=True,
    )
    report["synth_frames_per_second"] = synth.frames_per_second
    files = [predictions_path, *write_report(report, out)]
    files.append(
        write_atomic(out / "synth_preview.png", lambda tmp: preview(data, "train").save(tmp, format="PNG"))
    )
    return DemoResult(report, files)


def summary(result: DemoResult) -> str:
    return "\n".join(
        [
            "Mean-pose reference on the synthetic test split (wrist-relative, scored with --offset):",
            format_table(result.report),
            *(f"wrote {path}" for path in result.files),
        ]
    )
