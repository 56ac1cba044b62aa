"""Training of the POTTER hand model, the lifter and the hand detector on processed ground truth
(`hand-pose train`).

As the Ego-Exo4D baseline: masked MSE on normalised wrist-relative targets, Adam with a constant rate,
and the best checkpoint by validation loss kept beside the last one; two options of ours make small
POTTERs learn faster (a cosine learning-rate schedule, mirrored left hands). Each epoch of a 3D model is
scored with the official metrics on the validation split, next to the mean-pose reference on the same
hands; each epoch of the detector with its recall and precision at IoU 0.5 and its keypoint error.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from hand_pose_core.atomic import ensure_dir
from hand_pose_core.egoexo.baselines import mean_pose, predict_mean_pose
from hand_pose_core.egoexo.formats import Annotations, Predictions, annotation_path, load_annotations
from hand_pose_core.egoexo.frames import select_frames
from hand_pose_core.egoexo.metrics import evaluate
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
from hand_pose_core.geometry.crop import is_mirrored, mirror_joints
from hand_pose_core.learn.datasets import (
    CropDataset,
    FrameDataset,
    make_dataset,
    model_inputs,
    select_hands,
    target_joints,
)
from hand_pose_core.learn.losses import detector_loss, masked_mse
from hand_pose_core.live.detection import DetectionScores, decode_detections
from hand_pose_core.live.offline import annotated_frames, run_pipeline
from hand_pose_core.live.pipeline import HandPosePipeline, PipelineConfig
from hand_pose_core.models.checkpoints import (
    LoadedModel,
    build_model,
    load_checkpoint,
    load_cls_weights,
    model_from_checkpoint,
    read_checkpoint,
    save_checkpoint,
    unwrap_state_dict,
)
from hand_pose_core.models.normalization import JointNormalizer, KeypointNormalizer
from hand_pose_core.runtime.torch_engine import TorchEngine, pick_device

LOG = logging.getLogger(__name__)
# The references' recipes: POTTER 70 epochs at 1e-4, the lifter 30 at 2e-4, both batch 64. The
# detector's (ours): 30 epochs at 2e-3.
DEFAULT_EPOCHS = {"potter": 70, "lifter": 30, "detector": 30}
DEFAULT_LR = {"potter": 1e-4, "lifter": 2e-4, "detector": 2e-3}
# The baselines train without augmentation; the detector overfits its training frames without it.
DEFAULT_AUGMENT = {"potter": False, "lifter": False, "detector": True}
WARMUP_STEPS = 100  # of the cosine schedule (at most a tenth of the run)


@dataclass(frozen=True)
class TrainOptions:
    model: str
    gt_dir: Path
    out: Path
    image_dir: Path | None = None
    anno_type: str = "manual"
    init_cls: Path | None = None
    pretrained: Path | None = None
    resume: Path | None = None
    epochs: int | None = None
    batch_size: int = 64
    lr: float | None = None
    workers: int = 0
    seed: int = 0
    augment: bool | None = None  # None: the model's default (DEFAULT_AUGMENT)
    max_minutes: float | None = None
    schedule: str = "constant"  # or "cosine"
    mirror_left: bool = False  # POTTER: mirror left hands (see hand_pose_core.geometry.crop)
    model_options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True


@dataclass
class TrainResult:
    best: Path
    last: Path
    history: list[dict[str, float]]
    mean_pose: dict[str, float]  # the mean-pose reference on the same validation hands (3D models)
    skipped: dict[str, int]


def _load_split(options: TrainOptions, split: str) -> Annotations:
    path = annotation_path(options.gt_dir, split, anno_type=options.anno_type)
    annotations = load_annotations(path)
    if not annotations.takes:
        raise InputError(f"{path}: the {split} split is empty")
    return annotations


def _initial_model(options: TrainOptions, train: Annotations) -> LoadedModel:
    """A new model (optionally with ImageNet weights), or the weights and normalisation of a checkpoint."""
    if options.pretrained is not None:
        loaded = load_checkpoint(options.pretrained)
        if loaded.name != options.model:
            raise InputError(f"{options.pretrained}: a {loaded.name} checkpoint, not {options.model}")
        if options.mirror_left and not loaded.mirror_left:
            raise InputError(f"{options.pretrained}: trained without --mirror-left; it cannot go on with it")
        if loaded.name == "lifter" and loaded.inputs is None:
            loaded.inputs = KeypointNormalizer.fit(train)
        return loaded
    model = build_model(options.model, **options.model_options)
    if options.init_cls is not None:
        if options.model != "potter":
            raise InputError("--init-cls loads POTTER-cls ImageNet weights: only for --model potter")
        try:
            loaded_names, dropped = load_cls_weights(
                model, unwrap_state_dict(read_checkpoint(options.init_cls))
            )
        except ValueError as exc:
            raise InputError(f"{options.init_cls}: {exc}") from None
        LOG.info(
            "%s: loaded %d tensors into the basic stream, dropped %s",
            options.init_cls,
            len(loaded_names),
            ", ".join(sorted(dropped)) or "none",
        )
    inputs = KeypointNormalizer.fit(train) if options.model == "lifter" else None
    targets = JointNormalizer.fit(train, options.mirror_left) if options.model != "detector" else None
    return LoadedModel(options.model, model, targets, inputs, mirror_left=options.mirror_left)


def _loss(loaded: LoadedModel, batch: dict[str, torch.Tensor], device: torch.device) -> torch.Tensor:
    """The training loss of one batch (images that could not be read weigh nothing)."""
    ok = batch["ok"].to(device)
    if loaded.name == "detector":
        targets = {key: batch[key].to(device) for key in ("presence", "keypoints", "visible")}
        targets["presence"] = targets["presence"] * ok[:, None]
        targets["visible"] = targets["visible"] * ok[:, None, None]
        packed, heatmaps = loaded.model.forward_with_heatmaps(batch["image"].to(device))
        return detector_loss(packed, heatmaps, targets, loaded.input_size)
    valid = batch["valid"].to(device) * ok[:, None]
    prediction = loaded.model(*(x.to(device) for x in model_inputs(loaded.name, batch)))
    return masked_mse(prediction, batch["target"].to(device), valid)


def _validate_detector(
    loaded: LoadedModel, val_data: FrameDataset, options: TrainOptions
) -> dict[str, float]:
    """Validation loss, recall and precision at IoU 0.5 and keypoint error, in one pass."""
    device = loaded.device
    scores, total, count = DetectionScores(), 0.0, 0
    loaded.model.eval()
    with torch.inference_mode():
        for batch in DataLoader(val_data, options.batch_size, num_workers=options.workers):
            total += _loss(loaded, batch, device).item() * len(batch["ok"])
            count += len(batch["ok"])
            packed = loaded.model(batch["image"].to(device)).float().cpu().numpy()
            for index, ok, frame_output in zip(
                batch["index"].tolist(), batch["ok"].tolist(), packed, strict=True
            ):
                if ok:
                    width, height = BENCHMARK_CAMERA.width, BENCHMARK_CAMERA.height
                    frame = val_data.records[index].frame
                    scores.add(decode_detections(frame_output, width, height), frame, width, height)
    return {
        "val_loss": total / max(count, 1),
        "val_recall": scores.recall,
        "val_precision": scores.precision,
        "val_keypoint_px": scores.keypoint_error_px,
    }


def _validate(loaded: LoadedModel, val: Annotations, options: TrainOptions) -> dict[str, float]:
    """Validation loss and the official metrics, from one pass over the validation hands, predicted the
    way the benchmark predicts them (`HandPosePipeline` in `given` mode)."""
    pipeline = HandPosePipeline(TorchEngine(loaded), BENCHMARK_CAMERA, config=PipelineConfig("given"))
    frames = annotated_frames(val, options.image_dir, "val", pipeline.needs_image)
    run = run_pipeline(pipeline, frames, progress=False)
    report = evaluate(run.predictions, val, offset=True, allow_missing=True)
    return {
        "val_loss": _prediction_loss(run.predictions, val, loaded),
        "val_mpjpe": report["mpjpe"],
        "val_pa_mpjpe": report["pa_mpjpe"],
    }


def _prediction_loss(predictions: Predictions, truth: Annotations, loaded: LoadedModel) -> float:
    """The training loss of predicted wrist-relative joints: each normalised (and mirrored) as the
    model's raw output was, against the hand's training targets."""
    outputs, targets, valids = [], [], []
    for take_uid, frames in predictions.items():
        for frame_number, hands in frames.items():
            for side, joints in hands.items():
                hand = truth.takes[take_uid].frames[frame_number].hands[side]
                mirror = is_mirrored(loaded.mirror_left, side)
                target, valid = target_joints(hand, loaded.targets, mirror)
                outputs.append(loaded.targets.normalize(mirror_joints(joints) if mirror else joints))
                targets.append(target)
                valids.append(valid)
    if not outputs:
        return float("nan")
    stacked = (torch.from_numpy(np.stack(a).astype(np.float32)) for a in (outputs, targets, valids))
    return masked_mse(*stacked).item()


def _data(
    loaded: LoadedModel, options: TrainOptions, train_set: Annotations, val_set: Annotations
) -> tuple[Dataset, Callable[[], dict[str, float]], dict[str, int]]:
    """The training dataset, the validation pass, and how many train and val samples were skipped."""
    augment = DEFAULT_AUGMENT[options.model] if options.augment is None else options.augment
    if options.model == "detector":
        if options.image_dir is None:
            raise InputError("the detector needs --image-dir (undistorted images)")
        size = loaded.input_size
        train_frames, val_frames = select_frames(train_set), select_frames(val_set)
        train_data = FrameDataset(train_frames, options.image_dir, "train", size, augment, options.seed)
        val_data = FrameDataset(val_frames, options.image_dir, "val", size)
        return train_data, lambda: _validate_detector(loaded, val_data, options), {"train": 0, "val": 0}
    train_hands = select_hands(train_set, options.model, with_targets=True)
    val_hands = select_hands(val_set, options.model, with_targets=True)
    for name, selection in (("train", train_hands), ("val", val_hands)):
        if not selection.records:
            raise InputError(f"{options.gt_dir}: no usable {name} hands ({len(selection.skipped)} skipped)")
    train_data = make_dataset(loaded, train_hands, options.image_dir, "train", with_targets=True)
    train_data.augment, train_data.seed = augment, options.seed
    if isinstance(train_data, CropDataset):
        train_data.cache = True
    skipped = {"train": len(train_hands.skipped), "val": len(val_hands.skipped)}
    return train_data, lambda: _validate(loaded, val_set, options), skipped


def learning_rate_schedule(
    optimizer: torch.optim.Optimizer, schedule: str, total_steps: int, first_step: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step factors of the learning rate: 1 (constant), or a linear warm-up then cosine decay to 0
    over `total_steps` (cosine); a resumed run starts at `first_step`."""
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if schedule != "cosine":
        raise InputError(f"schedule {schedule!r}: expected constant or cosine")
    warmup = max(1, min(WARMUP_STEPS, total_steps // 10))

    def factor(step: int) -> float:
        step += first_step
        return (
            min(1.0, (step + 1) / warmup)
            * 0.5
            * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def format_scores(scores: dict[str, float]) -> str:
    """One epoch's scores as a log line."""
    text = f"train loss {scores['train_loss']:.4f}, val loss {scores['val_loss']:.4f}"
    if "val_recall" in scores:
        return (
            f"{text}, val recall {scores['val_recall']:.3f}, precision {scores['val_precision']:.3f}, "
            f"keypoint error {scores['val_keypoint_px']:.2f} px"
        )
    return f"{text}, val MPJPE {scores['val_mpjpe']:.2f} mm, PA-MPJPE {scores['val_pa_mpjpe']:.2f} mm"


def train(options: TrainOptions) -> TrainResult:
    """Train, validate each epoch, keep best and last checkpoints under `options.out`."""
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(options.seed)
    out = ensure_dir(options.out)
    train_set, val_set = _load_split(options, "train"), _load_split(options, "val")
    epochs = options.epochs or DEFAULT_EPOCHS[options.model]
    lr = options.lr or DEFAULT_LR[options.model]
    loaded = _initial_model(options, train_set)
    device = pick_device()
    loaded.model.to(device)
    optimizer = torch.optim.Adam(loaded.model.parameters(), lr=lr)
    start_epoch, best_loss, history = 0, float("inf"), []
    if options.resume is not None:
        state = read_checkpoint(options.resume)
        resumed = model_from_checkpoint(state, str(options.resume))
        if resumed.name != options.model:
            raise InputError(f"{options.resume}: a {resumed.name} checkpoint, not {options.model}")
        loaded.model.load_state_dict(resumed.model.state_dict())
        loaded.targets, loaded.inputs, loaded.mirror_left = (
            resumed.targets,
            resumed.inputs,
            resumed.mirror_left,
        )
        if "optimizer_state_dict" in state:
            optimizer.load_state_dict(state["optimizer_state_dict"])
        start_epoch = int(state.get("epoch", 0))
        best_loss = float(state.get("best_val_loss", state.get("val_loss", float("inf"))))
        history = list(state.get("history", []))

    train_data, validate, skipped = _data(loaded, options, train_set, val_set)
    generator = torch.Generator().manual_seed(options.seed)
    train_loader = DataLoader(
        train_data,
        options.batch_size,
        shuffle=True,
        num_workers=options.workers,
        generator=generator,
        drop_last=len(train_data) > options.batch_size,
    )
    scheduler = learning_rate_schedule(
        optimizer, options.schedule, epochs * len(train_loader), start_epoch * len(train_loader)
    )
    mean_pose_scores = {}
    if options.model != "detector":
        reference = evaluate(predict_mean_pose(mean_pose(train_set), val_set), val_set, offset=True)
        mean_pose_scores = {"val_mpjpe": reference["mpjpe"], "val_pa_mpjpe": reference["pa_mpjpe"]}
    writer = SummaryWriter(str(out / "tensorboard"))
    best_path, last_path = out / "best.pt", out / "last.pt"
    unreadable = 0
    deadline = time.monotonic() + 60 * options.max_minutes if options.max_minutes else None
    for epoch in range(start_epoch, epochs):
        loaded.model.train()
        train_data.epoch = epoch
        losses = []
        bar = tqdm(
            train_loader, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", disable=not options.progress
        )
        for batch in bar:
            unreadable += int((~batch["ok"]).sum())
            loss = _loss(loaded, batch, device)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
            if deadline is not None and time.monotonic() > deadline:
                break
        scores = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)),
            **validate(),
        }
        history.append(scores)
        for key, value in scores.items():
            if key != "epoch":
                writer.add_scalar(key, value, epoch + 1)
        improved = scores["val_loss"] < best_loss
        best_loss = min(best_loss, scores["val_loss"])
        meta = {
            "epoch": epoch + 1,
            "val_loss": scores["val_loss"],
            "best_val_loss": best_loss,
            "history": history,
            "optimizer_state_dict": optimizer.state_dict(),
        }
        saved = {"targets": loaded.targets, "inputs": loaded.inputs, "mirror_left": loaded.mirror_left}
        save_checkpoint(loaded.model, last_path, **saved, **meta)
        if improved:
            save_checkpoint(loaded.model, best_path, **saved, **meta)
        LOG.info("epoch %d/%d: %s%s", epoch + 1, epochs, format_scores(scores), " (best)" if improved else "")
        if deadline is not None and time.monotonic() > deadline:
            LOG.info(
                "stopping after epoch %d: the %.3g minute budget is spent", epoch + 1, options.max_minutes
            )
            break
    writer.close()
    skipped["unreadable images"] = unreadable
    return TrainResult(best_path, last_path, history, mean_pose_scores, skipped)
