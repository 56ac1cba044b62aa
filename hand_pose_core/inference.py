"""Batched wrist-relative predictions for the hands of an annotation file: `hand-pose infer` (any
backend) and the validation of training both go through `predict_hands`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from hand_pose_core.crop import is_mirrored, mirror_joints
from hand_pose_core.data import (
    CropDataset,
    HandSelection,
    KeypointDataset,
    masked_mse,
    model_inputs,
    select_hands,
)
from hand_pose_core.egoexo import Annotations, Predictions
from hand_pose_core.errors import InputError
from hand_pose_core.metrics import hand_label
from hand_pose_core.models import LoadedModel
from hand_pose_core.runtime.card import ModelCard
from hand_pose_core.runtime.engines import Engine


@dataclass
class InferenceResult:
    predictions: Predictions
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (hand label, reason)
    loss: float | None = None  # masked MSE against the annotations, when asked for

    @property
    def num_predicted(self) -> int:
        return sum(len(hands) for frames in self.predictions.values() for hands in frames.values())


def make_dataset(
    loaded: LoadedModel | ModelCard,
    selection: HandSelection,
    image_root: Path | None,
    split: str,
    with_targets: bool = False,
) -> Dataset:
    targets = loaded.targets if with_targets else None
    if loaded.name == "potter":
        if image_root is None:
            raise InputError("POTTER needs --image-dir (undistorted images)")
        return CropDataset(
            selection.records, image_root, split, loaded.input_size, targets, mirror_left=loaded.mirror_left
        )
    return KeypointDataset(selection.records, loaded.inputs, targets)


def predict_hands(
    engine: Engine,
    annotations: Annotations,
    image_root: Path | None,
    split: str,
    batch_size: int = 64,
    workers: int = 0,
    progress: bool = True,
    with_loss: bool = False,
) -> InferenceResult:
    """Predict every usable hand; the others (no box or 2D, unreadable image) are listed as skipped.

    `with_loss` also scores the raw outputs with the training loss in the same pass (validation).
    """
    card = engine.card
    selection = select_hands(annotations, card.name, with_targets=False)
    if not selection.records:
        raise InputError(f"{annotations.source}: no hand to predict ({len(selection.skipped)} skipped)")
    dataset = make_dataset(card, selection, image_root, split, with_targets=with_loss)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    result = InferenceResult({}, list(selection.skipped))
    total, weight = 0.0, 0.0
    for batch in tqdm(loader, desc=f"predict {split}", unit="batch", disable=not progress, leave=False):
        output = engine.infer_normalized(tuple(x.numpy() for x in model_inputs(card.name, batch)))
        if with_loss:
            valid = batch["valid"] * batch["ok"][:, None]
            total += masked_mse(torch.from_numpy(output), batch["target"], valid).item() * valid.sum().item()
            weight += valid.sum().item()
        joints = card.targets.denormalize(output.astype(np.float64))
        for index, ok, hand_joints in zip(batch["index"].tolist(), batch["ok"].tolist(), joints, strict=True):
            record = selection.records[index]
            if not ok:
                path = dataset.path(index) if isinstance(dataset, CropDataset) else ""
                label = hand_label(record.take_uid, record.frame_number, record.side)
                result.skipped.append((label, f"image cannot be read: {path}"))
                continue
            if is_mirrored(card.mirror_left, record.side):
                hand_joints = mirror_joints(hand_joints)
            frames = result.predictions.setdefault(record.take_uid, {})
            frames.setdefault(record.frame_number, {})[record.side] = hand_joints
    if with_loss:
        result.loss = total / max(weight, 1.0)
    return result
