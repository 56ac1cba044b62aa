"""Which 3D stage should the live pipeline use on the real hand stage's hands? The measurement behind the
default (MediaPipe's world landmarks), repeatable:

    .venv/bin/python bench/three_d_stages.py [--takes 60] [--lifter models/lifter_synth.onnx]

For each 3D stage (the landmark model's world landmarks, our lifter, our POTTER), on the hands the real
stage finds:
- real frames (the photos in data/real and the real Aria recording with bare hands), which have no 3D
  ground truth: how often the hand can be placed in the camera frame (the translation solver refuses a
  3D shape that does not fit the 2D keypoints), the reprojection error of the placed hands, and the
  palm's size against the Ego-Exo4D training mean;
- synthetic frames (`synth`, with 3D ground truth; the real stage finds only some of the rendered hands):
  wrist-relative MPJPE and PA-MPJPE against the ground truth hand nearest in 2D (not by side: the real
  stage may call a rendered hand the wrong side), and the camera-frame MPJPE.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from hand_pose_core.egoexo.constants import official_joint_stats
from hand_pose_core.egoexo.formats import annotation_path, image_path, load_annotations
from hand_pose_core.egoexo.frames import read_image, select_frames
from hand_pose_core.egoexo.metrics import joint_errors
from hand_pose_core.geometry.aria import RGB_LABEL, AriaUndistorter, vrs_frames
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA, PinholeCamera
from hand_pose_core.geometry.placement import solve_translation
from hand_pose_core.geometry.skeleton import PALM_BONES, bone_lengths
from hand_pose_core.live.photos import default_focal
from hand_pose_core.live.pipeline import HandPosePipeline, PipelineConfig
from hand_pose_core.runtime.bundled import bundled_model
from hand_pose_core.synth.generator import SynthConfig, generate

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("world", "lifter", "potter")
MATCH_PX = 30.0  # a found hand and a ground truth hand this close (median keypoint distance) are one


def palm_size(relative: np.ndarray) -> float:
    return float(np.median(bone_lengths(relative)[[child - 1 for _, child in PALM_BONES]]))


def real_frames() -> list[tuple[str, np.ndarray, PinholeCamera, str]]:
    """(name, image, camera, orientation): the photos upright, the Aria frames as the sensor sees them."""
    frames = []
    for path in sorted((ROOT / "data" / "real").glob("*.jpg")):
        image = np.asarray(Image.open(path).convert("RGB"))
        height, width = image.shape[:2]
        frames.append(
            (path.name, image, PinholeCamera.linear(width, height, default_focal(width, height)), "portrait")
        )
    recording = ROOT / "data" / "aria" / "aea_recording.vrs"
    undistorter = AriaUndistorter.from_file(recording)
    for index, frame in enumerate(vrs_frames(recording, [RGB_LABEL])):
        name = f"{recording.stem} frame {index}"
        frames.append((name, undistorter.undistort(frame.image), undistorter.camera, "landscape"))
    return frames


def pipeline(stage: str, orientation: str, models: dict[str, Path]) -> HandPosePipeline:
    pose = None if stage == "world" else models[stage]
    return HandPosePipeline.load(pose, BENCHMARK_CAMERA, config=PipelineConfig(orientation=orientation))


def real_scores(stage: str, models: dict[str, Path]) -> dict[str, float]:
    reference = palm_size(official_joint_stats()[0] / 1000.0)
    found = placed = 0
    rms, palms = [], []
    for _, image, camera, orientation in real_frames():
        live = pipeline(stage, orientation, models)
        live.set_camera(camera)
        for hand in live.process(image).hands:
            found += 1
            palms.append(palm_size(hand.relative) / reference)
            if hand.camera is None:
                continue
            placed += 1
            weights = np.isfinite(hand.keypoints).all(axis=1).astype(float)
            rms.append(solve_translation(hand.relative, hand.keypoints, weights, camera).rms_px)
    return {
        "hands": found,
        "placed": placed / max(found, 1),
        "rms_px": float(np.median(rms)) if rms else float("nan"),
        "palm_ratio_median": float(np.median(palms)),
        "palm_ratio_spread": float(np.std(palms)),
    }


def synthetic_scores(stage: str, models: dict[str, Path], data: Path) -> dict[str, float]:
    annotations = load_annotations(annotation_path(data, "train"))
    live = pipeline(stage, "landscape", models)
    relative, aligned, camera_frame, annotated = [], [], [], 0
    for record in select_frames(annotations):
        image = read_image(
            image_path(data / "image" / "undistorted", "train", record.take_name, record.frame_number)
        )
        live.reset()
        truths = [hand for hand in record.frame.hands.values() if hand.has_3d and hand.joints_2d is not None]
        annotated += len(truths)
        for hand in live.process(image).hands:
            distances = [np.nanmedian(np.linalg.norm(hand.keypoints - t.joints_2d, axis=1)) for t in truths]
            if not distances or min(distances) > MATCH_PX:
                continue
            truth = truths[int(np.argmin(distances))]
            gt_relative = (truth.joints_3d - truth.joints_3d[0]) * 1000.0
            errors, pa_errors = joint_errors(hand.relative * 1000.0, gt_relative, truth.valid_3d)
            relative.append(np.nanmean(errors))
            aligned.append(np.nanmean(pa_errors))
            if hand.camera is not None:
                camera_frame.append(
                    np.nanmean(np.linalg.norm(hand.camera - truth.joints_3d, axis=1)) * 1000.0
                )
    return {
        "annotated": annotated,
        "matched": len(relative),
        "mpjpe_relative_mm": float(np.mean(relative)),
        "pa_mpjpe_mm": float(np.mean(aligned)),
        "placed": len(camera_frame) / max(len(relative), 1),
        "mpjpe_camera_mm": float(np.mean(camera_frame)) if camera_frame else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--takes", type=int, default=60, help="synthetic takes (70 % of them are scored)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--lifter", type=Path, default=bundled_model("lifter"))
    parser.add_argument("--potter", type=Path, default=bundled_model("potter"))
    args = parser.parse_args()
    models = {"lifter": args.lifter, "potter": args.potter}
    print("| 3D stage | real hands | placed | reprojection p50 px | palm / Ego-Exo4D mean (median, spread) |")
    print("|---|---|---|---|---|")
    for stage in STAGES:
        s = real_scores(stage, models)
        print(
            f"| {stage} | {s['hands']} | {s['placed']:.0%} | {s['rms_px']:.2f} | "
            f"{s['palm_ratio_median']:.2f}, {s['palm_ratio_spread']:.2f} |"
        )
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        generate(data, SynthConfig(takes=args.takes, frames=4, seed=args.seed), progress=False)
        print()
        print(
            "| 3D stage | synthetic hands found / annotated | wrist-relative MPJPE mm | PA-MPJPE mm | placed "
            "| camera-frame MPJPE mm |"
        )
        print("|---|---|---|---|---|---|")
        for stage in STAGES:
            s = synthetic_scores(stage, models, data)
            print(
                f"| {stage} | {s['matched']} / {s['annotated']} | {s['mpjpe_relative_mm']:.1f} | "
                f"{s['pa_mpjpe_mm']:.1f} | {s['placed']:.0%} | {s['mpjpe_camera_mm']:.1f} |"
            )


if __name__ == "__main__":
    main()
