"""INT8 for the CPU, measured on hands: calibration batches from a split's hands, and the change in
wrist-relative MPJPE that quantisation costs on another split's hands (`hand-pose export --int8`,
`hand-pose bench`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from hand_pose_core.atomic import atomic_path
from hand_pose_core.egoexo.formats import Annotations, annotation_path, load_annotations
from hand_pose_core.egoexo.metrics import evaluate
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
from hand_pose_core.learn.datasets import make_dataset, model_inputs, select_hands
from hand_pose_core.live.offline import annotated_frames, run_pipeline
from hand_pose_core.live.pipeline import HandPosePipeline, PipelineConfig
from hand_pose_core.models.checkpoints import load_checkpoint
from hand_pose_core.runtime.base import Engine
from hand_pose_core.runtime.card import ModelCard
from hand_pose_core.runtime.engines import OnnxRuntimeEngine
from hand_pose_core.runtime.export import (
    DEFAULT_MAX_BATCH,
    INT8_OPERATORS,
    ExportResult,
    check_max_batch,
    export_int8,
    parity_error,
)
from hand_pose_core.runtime.torch_engine import TorchEngine


@dataclass(frozen=True)
class CalibrationData:
    """Hands for INT8: calibration crops from `train`, the accuracy cost measured on `val`."""

    gt_dir: Path
    image_dir: Path | None
    anno_type: str = "manual"
    hands: int = 300

    def split(self, name: str) -> Annotations:
        return leading_takes(
            load_annotations(annotation_path(self.gt_dir, name, anno_type=self.anno_type)), self.hands
        )


def leading_takes(annotations: Annotations, hands: int) -> Annotations:
    """The first takes of a split holding at least `hands` hands (a bounded, reproducible subset)."""
    takes, count = {}, 0
    for uid, take in annotations.takes.items():
        if count >= hands:
            break
        takes[uid] = take
        count += sum(len(frame.hands) for frame in take.frames.values())
    return Annotations(takes, annotations.source)


def model_batches(
    card: ModelCard,
    annotations: Annotations,
    image_root: Path | None,
    split: str,
    limit: int,
    batch: int = 16,
) -> Iterator[tuple[np.ndarray, ...]]:
    """Model inputs for up to `limit` hands of a split (calibration data), as numpy batches."""
    selection = select_hands(annotations, card.name, with_targets=False)
    selection.records = selection.records[:limit]
    if not selection.records:
        raise InputError(f"{annotations.source}: no usable hands for calibration")
    dataset = make_dataset(card, selection, image_root, split)
    for items in DataLoader(dataset, batch_size=batch):
        ok = items["ok"].numpy()
        yield tuple(x.numpy()[ok] for x in model_inputs(card.name, items))


def mpjpe_of(engine: Engine, annotations: Annotations, image_root: Path | None, split: str) -> float:
    """Wrist-relative MPJPE (mm) of an engine's predictions for the hands of `annotations`, from their
    annotated boxes or 2D keypoints (the benchmark's way: `HandPosePipeline` in `given` mode)."""
    pipeline = HandPosePipeline(engine, BENCHMARK_CAMERA, config=PipelineConfig("given"))
    frames = annotated_frames(annotations, image_root, split, pipeline.needs_image)
    run = run_pipeline(pipeline, frames, progress=False)
    return float(evaluate(run.predictions, annotations, offset=True, allow_missing=True)["mpjpe"])


def export_int8_checked(
    checkpoint: Path, out: Path, calibration: CalibrationData, max_batch: int = DEFAULT_MAX_BATCH
) -> ExportResult:
    """`hand-pose export --int8`: calibrate on train hands, then measure on val hands what INT8 costs in
    MPJPE against PyTorch (INT8 has no fixed tolerance: its cost is the measurement)."""
    check_max_batch(max_batch)
    loaded = load_checkpoint(checkpoint)
    if loaded.name not in INT8_OPERATORS:
        raise InputError(
            f"{checkpoint}: INT8 export is for {' and '.join(INT8_OPERATORS)}, not {loaded.name}"
        )
    reference = TorchEngine(loaded)
    with atomic_path(Path(out)) as tmp:
        batches = model_batches(
            reference.card, calibration.split("train"), calibration.image_dir, "train", calibration.hands
        )
        export_int8(loaded, tmp, batches, max_batch)
        val = calibration.split("val")
        engine = OnnxRuntimeEngine(tmp)
        mpjpe = {
            "fp32": mpjpe_of(reference, val, calibration.image_dir, "val"),
            "int8": mpjpe_of(engine, val, calibration.image_dir, "val"),
        }
        return ExportResult(
            [Path(out)],
            "int8",
            engine.backend,
            parity_error(engine, reference),
            engine.card.output_unit,
            None,
            mpjpe,
        )
