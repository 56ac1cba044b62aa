"""Training of the POTTER hand model, the lifter and the hand detector on processed ground truth
(`hand-pose train`).

As the Ego-Exo4D baseline: masked MSE on normalised wrist-relative targets, Adam with a constant rate,
and the best checkpoint by validation loss kept beside the last one; two options of ours make small
POTTERs learn faster (a cosine learning-rate schedule, mirrored left hands). Each epoch of a 3D model is
scored with the official metrics on the validation split, next to the mean-pose reference on the same
hands; each epoch of the detector with its recall and precision at IoU 0.5 and its keypoint error.

One loop for one process and for many: under `torchrun` each process joins the process group (nccl on
CUDA, gloo on the CPU), trains its share of every batch through DistributedDataParallel, validates its
share of the hands and gathers the rest; rank 0 alone writes checkpoints and TensorBoard. Without
torchrun the same loop runs as rank 0 of 1.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm import tqdm

from hand_pose_core.atomic import ensure_dir
from hand_pose_core.egoexo.baselines import mean_pose, predict_mean_pose
from hand_pose_core.egoexo.formats import Annotations, Predictions, annotation_path, load_annotations
from hand_pose_core.egoexo.frames import select_frames
from hand_pose_core.egoexo.metrics import evaluate
from hand_pose_core.errors import InputError
from hand_pose_core.events.representations import EventRepresentation
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
from hand_pose_core.live.offline import FrameSource, annotated_frames, run_pipeline
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
# Autocast types of --precision; "auto" is bf16 on CUDA (no loss scaling needed) and fp32 elsewhere.
AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


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
    # Event cameras: POTTER or the detector on these event frames (e.g. the event take bags of
    # `hand-pose synth --events`, drawn as a representation) instead of image_dir's images.
    event_frames: FrameSource | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    precision: str = "auto"  # a key of AUTOCAST, or auto

    def __post_init__(self) -> None:
        if self.event_frames is not None and self.model == "lifter":
            raise InputError("the lifter takes 2D keypoints: train it without event frames")

    def frame_source(self) -> Path | FrameSource | None:
        """Where the training frames come from: the image folder, or the event frames."""
        return self.image_dir if self.event_frames is None else self.event_frames

    @property
    def events(self) -> EventRepresentation | None:
        """The event representation the model is trained on (None: RGB images)."""
        return self.event_frames.events if self.event_frames is not None else None


@dataclass
class TrainResult:
    best: Path
    last: Path
    history: list[dict[str, float]]
    mean_pose: dict[str, float]  # the mean-pose reference on the same validation hands (3D models)
    skipped: dict[str, int]
    rank: int = 0  # of this process under torchrun: only rank 0 reports


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over all processes."""
        if self.world == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, value: Any) -> list[Any]:
        """Every process's `value`, in rank order."""
        if self.world == 1:
            return [value]
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, value)
        return gathered


@contextlib.contextmanager
def process_group() -> Iterator[Ranks]:
    """Join torchrun's process group for the run (nccl on CUDA, one GPU per process; gloo on the CPU),
    or the caller's when it has one (and leave it to them); without torchrun, one process on the best
    device."""
    if not dist.is_torchelastic_launched():
        yield Ranks(0, 1, pick_device())
        return
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if cuda else torch.device("cpu")
    if dist.is_initialized():
        yield Ranks(dist.get_rank(), dist.get_world_size(), device)
        return
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
    try:
        yield Ranks(dist.get_rank(), dist.get_world_size(), device)
    finally:
        dist.destroy_process_group()


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
    channels = {"in_chans": options.events.channels} if options.events is not None else {}
    model = build_model(options.model, **(options.model_options | channels))
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
    return LoadedModel(
        options.model, model, targets, inputs, mirror_left=options.mirror_left, events=options.events
    )


class Objective(nn.Module):
    """The model and its training loss as one module, so that DistributedDataParallel wraps the whole
    step (the detector's loss needs heatmaps that its forward does not return)."""

    def __init__(self, loaded: LoadedModel, ranks: Ranks) -> None:
        super().__init__()
        self.model = loaded.model
        self.loaded = loaded
        self.ranks = ranks

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss of one batch (images that could not be read weigh nothing).

        The 3D models' masked MSE is divided by the valid joints of all processes' batches (as their
        mean per process), so that the averaged gradients equal one process's over the whole batch.
        """
        device = self.ranks.device
        batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
        ok = batch["ok"]
        if self.loaded.name == "detector":
            targets = {key: batch[key] for key in ("presence", "keypoints", "visible")}
            targets["presence"] = targets["presence"] * ok[:, None]
            targets["visible"] = targets["visible"] * ok[:, None, None]
            packed, heatmaps = self.model.forward_with_heatmaps(batch["image"])
            return detector_loss(packed, heatmaps, targets, self.loaded.input_size)
        valid = batch["valid"] * ok[:, None]
        count = valid.sum()
        if self.ranks.world > 1:
            count = count.detach().clone()
            dist.all_reduce(count)
            count = count / self.ranks.world
        prediction = self.model(*model_inputs(self.loaded.name, batch))
        return masked_mse(prediction, batch["target"], valid, count)


def _validate_detector(
    objective: Objective, val_data: FrameDataset, options: TrainOptions
) -> dict[str, float]:
    """Validation loss, recall and precision at IoU 0.5 and keypoint error, in one pass: each process
    takes every world-th frame, and all score the gathered detections."""
    ranks, model = objective.ranks, objective.model
    shard = Subset(val_data, range(ranks.rank, len(val_data), ranks.world))
    total, detections = 0.0, []
    width, height = BENCHMARK_CAMERA.width, BENCHMARK_CAMERA.height
    model.eval()
    with torch.inference_mode():
        for batch in DataLoader(shard, options.batch_size, num_workers=options.workers):
            total += objective(batch).item() * len(batch["ok"])
            packed = model(batch["image"].to(ranks.device)).float().cpu().numpy()
            for index, ok, frame_output in zip(
                batch["index"].tolist(), batch["ok"].tolist(), packed, strict=True
            ):
                if ok:
                    detections.append((index, decode_detections(frame_output, width, height)))
    scores = DetectionScores()
    gathered = ranks.gather((total, detections))
    for index, found in sorted(itertools.chain(*(d for _, d in gathered)), key=lambda item: item[0]):
        scores.add(found, val_data.records[index].frame, width, height)
    return {
        "val_loss": sum(t for t, _ in gathered) / max(len(val_data), 1),
        "val_recall": scores.recall,
        "val_precision": scores.precision,
        "val_keypoint_px": scores.keypoint_error_px,
    }


def _validate(
    loaded: LoadedModel, val: Annotations, frames: Path | FrameSource | None, ranks: Ranks
) -> dict[str, float]:
    """Validation loss and the official metrics, from one pass over the validation hands, predicted the
    way the benchmark predicts them (`HandPosePipeline` in `given` mode): each process predicts every
    world-th frame, and all score the gathered predictions."""
    pipeline = HandPosePipeline(TorchEngine(loaded), BENCHMARK_CAMERA, config=PipelineConfig("given"))
    inputs = annotated_frames(val, frames, "val", pipeline.needs_image)
    run = run_pipeline(pipeline, itertools.islice(inputs, ranks.rank, None, ranks.world), progress=False)
    predictions: Predictions = {}
    for shard in ranks.gather(run.predictions):
        for take_uid, frames_of_take in shard.items():
            predictions.setdefault(take_uid, {}).update(frames_of_take)
    report = evaluate(predictions, val, offset=True, allow_missing=True)
    return {
        "val_loss": _prediction_loss(predictions, val, loaded),
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
    objective: Objective, options: TrainOptions, train_set: Annotations, val_set: Annotations
) -> tuple[Dataset, Callable[[], dict[str, float]], dict[str, int]]:
    """The training dataset, the validation pass, and how many train and val samples were skipped."""
    loaded = objective.loaded
    augment = DEFAULT_AUGMENT[options.model] if options.augment is None else options.augment
    frames = options.frame_source()
    if options.model == "detector":
        if frames is None:
            raise InputError("the detector needs --image-dir (undistorted images) or --event-dir")
        size = loaded.input_size
        train_frames, val_frames = select_frames(train_set), select_frames(val_set)
        train_data = FrameDataset(train_frames, frames, "train", size, augment, options.seed)
        val_data = FrameDataset(val_frames, frames, "val", size)
        return train_data, lambda: _validate_detector(objective, val_data, options), {"train": 0, "val": 0}
    train_hands = select_hands(train_set, options.model, with_targets=True)
    val_hands = select_hands(val_set, options.model, with_targets=True)
    for name, selection in (("train", train_hands), ("val", val_hands)):
        if not selection.records:
            raise InputError(f"{options.gt_dir}: no usable {name} hands ({len(selection.skipped)} skipped)")
    train_data = make_dataset(loaded, train_hands, frames, "train", with_targets=True)
    train_data.augment, train_data.seed = augment, options.seed
    if isinstance(train_data, CropDataset):
        train_data.cache = True
    skipped = {"train": len(train_hands.skipped), "val": len(val_hands.skipped)}
    return train_data, lambda: _validate(loaded, val_set, frames, objective.ranks), skipped


def learning_rate_schedule(
    optimizer: torch.optim.Optimizer, schedule: str, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step factors of the learning rate: 1 (constant), or a linear warm-up then cosine decay to 0
    over `total_steps` (cosine); a resumed run loads the scheduler's state."""
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if schedule != "cosine":
        raise InputError(f"schedule {schedule!r}: expected constant or cosine")
    warmup = max(1, min(WARMUP_STEPS, total_steps // 10))

    def factor(step: int) -> float:
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


def autocast_type(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast type of `--precision` on `device`; None for full precision."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision not in AUTOCAST:
        raise InputError(f"precision {precision!r}: expected auto, {', '.join(AUTOCAST)}")
    return AUTOCAST[precision]


def train(options: TrainOptions) -> TrainResult:
    """Train, validate each epoch, keep best and last checkpoints under `options.out`; under torchrun,
    as one of its processes."""
    with process_group() as ranks:
        return _train(options, ranks)


def _train(options: TrainOptions, ranks: Ranks) -> TrainResult:
    from torch.utils.tensorboard import SummaryWriter

    device = ranks.device
    dtype = autocast_type(options.precision, device)
    torch.manual_seed(options.seed)  # the same initial weights in every process
    out = ensure_dir(options.out)
    train_set, val_set = _load_split(options, "train"), _load_split(options, "val")
    epochs = options.epochs or DEFAULT_EPOCHS[options.model]
    lr = options.lr or DEFAULT_LR[options.model]
    loaded = _initial_model(options, train_set)
    state: dict[str, Any] = {}
    if options.resume is not None:
        state = read_checkpoint(options.resume)
        resumed = model_from_checkpoint(state, str(options.resume))
        if resumed.name != options.model:
            raise InputError(f"{options.resume}: a {resumed.name} checkpoint, not {options.model}")
        loaded.model.load_state_dict(resumed.model.state_dict())
        if resumed.events != loaded.events:
            raise InputError(f"{options.resume}: trained on other inputs than these (see its model card)")
        loaded.targets, loaded.inputs, loaded.mirror_left = (
            resumed.targets,
            resumed.inputs,
            resumed.mirror_left,
        )
    loaded.model.to(device)
    objective = Objective(loaded, ranks)
    # static_graph: POTTER's norm3 is in the checkpoint but never used, and DDP must know it waits for
    # no gradient of it.
    step = DistributedDataParallel(objective, static_graph=True) if ranks.world > 1 else objective
    optimizer = torch.optim.Adam(loaded.model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    train_data, validate, skipped = _data(objective, options, train_set, val_set)
    sampler = DistributedSampler(train_data, ranks.world, ranks.rank, shuffle=True, seed=options.seed)
    train_loader = DataLoader(
        train_data,
        options.batch_size,
        sampler=sampler,
        num_workers=options.workers,
        pin_memory=device.type == "cuda",
        drop_last=len(sampler) > options.batch_size,
    )
    scheduler = learning_rate_schedule(optimizer, options.schedule, epochs * len(train_loader))
    torch.manual_seed(options.seed + ranks.rank)  # each process its own dropout and drop-path draws
    start_epoch, best_loss, history = 0, float("inf"), []
    if state:
        start_epoch, best_loss, history = _restore(state, optimizer, scheduler, scaler, ranks, options.resume)
    mean_pose_scores = {}
    if options.model != "detector":
        reference = evaluate(predict_mean_pose(mean_pose(train_set), val_set), val_set, offset=True)
        mean_pose_scores = {"val_mpjpe": reference["mpjpe"], "val_pa_mpjpe": reference["pa_mpjpe"]}
    writer = SummaryWriter(str(out / "tensorboard")) if ranks.main else None
    best_path, last_path = out / "best.pt", out / "last.pt"
    unreadable = 0
    deadline = time.monotonic() + 60 * options.max_minutes if options.max_minutes else None
    for epoch in range(start_epoch, epochs):
        loaded.model.train()
        train_data.epoch = epoch
        sampler.set_epoch(epoch)
        losses, samples, started = [], 0, time.perf_counter()
        bar = tqdm(
            train_loader,
            desc=f"epoch {epoch + 1}/{epochs}",
            unit="batch",
            disable=not (options.progress and ranks.main),
        )
        for batch in bar:
            unreadable += int((~batch["ok"]).sum())
            samples += len(batch["ok"])
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = step(batch)
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
            # Every process must stop after the same step, or the others wait for it forever.
            if deadline is not None and ranks.sum([float(time.monotonic() > deadline)])[0]:
                break
        seconds = time.perf_counter() - started
        loss_sum, steps, all_samples = ranks.sum([float(np.sum(losses)), len(losses), samples])
        scores = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(steps, 1),
            "train_samples_per_s": all_samples / seconds,
            **validate(),
        }
        history.append(scores)
        improved = scores["val_loss"] < best_loss
        best_loss = min(best_loss, scores["val_loss"])
        meta = {
            "epoch": epoch + 1,
            "val_loss": scores["val_loss"],
            "best_val_loss": best_loss,
            "history": history,
            "optimizer_state_dict": optimizer.state_dict(),
            "scheduler_state_dict": scheduler.state_dict(),
            "scaler_state_dict": scaler.state_dict(),
            "rng_states": ranks.gather(_rng_state(device)),
        }
        if writer is not None:
            for key, value in scores.items():
                if key != "epoch":
                    writer.add_scalar(key, value, epoch + 1)
            saved = {
                "targets": loaded.targets,
                "inputs": loaded.inputs,
                "mirror_left": loaded.mirror_left,
                "events": loaded.events,
            }
            save_checkpoint(loaded.model, last_path, **saved, **meta)
            if improved:
                save_checkpoint(loaded.model, best_path, **saved, **meta)
            LOG.info(
                "epoch %d/%d: %s, %.0f samples/s%s",
                epoch + 1,
                epochs,
                format_scores(scores),
                scores["train_samples_per_s"],
                " (best)" if improved else "",
            )
        if deadline is not None and time.monotonic() > deadline:
            if ranks.main:
                LOG.info(
                    "stopping after epoch %d: the %.3g minute budget is spent", epoch + 1, options.max_minutes
                )
            break
    if writer is not None:
        writer.close()
    skipped["unreadable images"] = int(ranks.sum([float(unreadable)])[0])
    return TrainResult(best_path, last_path, history, mean_pose_scores, skipped, ranks.rank)


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The random state that dropout and drop-path draw from (augmentation has seeds of its own)."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore(
    state: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    ranks: Ranks,
    path: Path | None,
) -> tuple[int, float, list[dict[str, float]]]:
    """Optimizer, schedule, loss scale and each process's random state from a checkpoint; the epoch to
    start from, the best validation loss so far and the history."""
    start_epoch = int(state.get("epoch", 0))
    if "optimizer_state_dict" in state:
        optimizer.load_state_dict(state["optimizer_state_dict"])
    if "scheduler_state_dict" in state:
        scheduler.load_state_dict(state["scheduler_state_dict"])
    if "scaler_state_dict" in state:
        scaler.load_state_dict(state["scaler_state_dict"])
    rng_states = state.get("rng_states", [])
    if len(rng_states) == ranks.world:
        torch.set_rng_state(rng_states[ranks.rank]["cpu"])
        if "cuda" in rng_states[ranks.rank] and ranks.device.type == "cuda":
            torch.cuda.set_rng_state(rng_states[ranks.rank]["cuda"], ranks.device)
    elif rng_states and ranks.main:
        LOG.warning(
            "%s: random state of %d processes, resumed with %d: dropout draws start afresh",
            path,
            len(rng_states),
            ranks.world,
        )
    best_loss = float(state.get("best_val_loss", state.get("val_loss", float("inf"))))
    return start_epoch, best_loss, list(state.get("history", []))
