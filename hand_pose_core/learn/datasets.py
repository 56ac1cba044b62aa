"""Training samples from processed ground truth: crops for POTTER, 2D keypoints for the lifter, whole
frames for the detector. Hands that cannot be used are skipped with a reason, counted and reported by
the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from hand_pose_core.egoexo.formats import Annotations, FrameAnnotation, HandAnnotation, HandRecord, image_path
from hand_pose_core.egoexo.frames import FrameRecord, read_image
from hand_pose_core.egoexo.metrics import hand_label
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
from hand_pose_core.geometry.crop import (
    CropWindow,
    box_is_usable,
    is_mirrored,
    mirror_crop,
    mirror_joints,
    normalize_crop,
    warp_crop,
)
from hand_pose_core.geometry.skeleton import HAND_SIDES, NUM_JOINTS
from hand_pose_core.live.detection import pixels_to_fractions, resize_frame
from hand_pose_core.models.normalization import JointNormalizer, KeypointNormalizer

# Optional training augmentation of the crop window and brightness (off by default, as the baseline).
AUGMENT_SCALE = 0.1
AUGMENT_SHIFT = 0.05
AUGMENT_BRIGHTNESS = 0.2
AUGMENT_KEYPOINT_NOISE_PX = 1.5
AUGMENT_FRAME_SHIFT = 0.15  # detector: view moved by up to this fraction of the frame
AUGMENT_FRAME_SCALE = 0.2
# Training crops without augmentation are the same every epoch: they are kept (as uint8) up to this size.
CROP_CACHE_BYTES = 2 << 30


@dataclass
class HandSelection:
    """The hands a model can use, and the others with why not."""

    records: list[HandRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (hand label, reason)

    def skip(self, record: HandRecord, reason: str) -> None:
        self.skipped.append((hand_label(record.take_uid, record.frame_number, record.side), reason))


def select_hands(annotations: Annotations, model: str, with_targets: bool) -> HandSelection:
    """POTTER needs a usable box, the lifter 2D keypoints; training also needs valid 3D joints."""
    selection = HandSelection()
    for record in annotations.hands():
        hand = record.hand
        if model == "potter":
            reason = box_is_usable(hand.bbox, BENCHMARK_CAMERA.width, BENCHMARK_CAMERA.height)
        elif hand.joints_2d is None or not np.isfinite(hand.joints_2d).all(axis=1).any():
            reason = "no 2D keypoints"
        else:
            reason = None
        if reason is None and with_targets and not (hand.has_3d and hand.valid_3d.any()):
            reason = "no valid 3D joints"
        if reason is None:
            selection.records.append(record)
        else:
            selection.skip(record, reason)
    return selection


def target_joints(
    hand: HandAnnotation, targets: JointNormalizer | None, mirror: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """A hand's normalised wrist-relative joints (21, 3) and their validity (21,), as training targets;
    zeros and no valid joint without 3D (or without normalisation)."""
    if targets is None or not hand.has_3d:
        return np.zeros((NUM_JOINTS, 3), np.float32), np.zeros(NUM_JOINTS, np.float32)
    relative = hand.joints_3d - hand.joints_3d[0]
    normalised = targets.normalize(mirror_joints(relative) if mirror else relative)
    valid = hand.valid_3d.copy()
    valid[0] = True  # the wrist-relative wrist is exactly 0
    return np.nan_to_num(normalised).astype(np.float32), valid.astype(np.float32)


def frame_targets(frame: FrameAnnotation, width: int, height: int) -> dict[str, np.ndarray]:
    """Training targets of one frame: presence (2,), keypoint fractions (2, 21, 2), visibility (2, 21)."""
    presence = np.zeros(len(HAND_SIDES), np.float32)
    keypoints = np.zeros((len(HAND_SIDES), NUM_JOINTS, 2), np.float32)
    visible = np.zeros((len(HAND_SIDES), NUM_JOINTS), np.float32)
    for index, side in enumerate(HAND_SIDES):
        hand = frame.hands.get(side)
        if hand is None or hand.joints_2d is None:
            continue
        finite = np.isfinite(hand.joints_2d).all(axis=1)
        if finite.sum() < 2:
            continue
        presence[index] = 1.0
        visible[index] = finite
        keypoints[index][finite] = pixels_to_fractions(hand.joints_2d[finite], width, height)
    return {"presence": presence, "keypoints": keypoints, "visible": visible}


class ImageDataset(Dataset):
    """Samples read from the images of one split (`path(index)` names a sample's image)."""

    def __init__(
        self, records: list, image_root: Path, split: str, size: int, augment: bool = False, seed: int = 0
    ) -> None:
        self.records, self.image_root, self.split, self.size = records, Path(image_root), split, size
        self.augment, self.seed, self.epoch = augment, seed, 0

    def __len__(self) -> int:
        return len(self.records)

    def path(self, index: int) -> Path:
        record = self.records[index]
        return image_path(self.image_root, self.split, record.take_name, record.frame_number)


class CropDataset(ImageDataset):
    """Baseline crops (ImageNet-normalised, CHW) with normalised wrist-relative targets; left hands
    mirrored for a model trained with `mirror_left`.

    An image that cannot be read gives `ok = False` and zeros, so the caller can skip and count it.
    With `cache`, crops without augmentation are kept after their first use (rounded to uint8, up to
    `CROP_CACHE_BYTES`): decoding the full frame again each epoch costs more than a small model's step.
    """

    def __init__(
        self,
        records: list[HandRecord],
        image_root: Path,
        split: str,
        size: int,
        targets: JointNormalizer | None = None,
        augment: bool = False,
        seed: int = 0,
        mirror_left: bool = False,
        cache: bool = False,
    ) -> None:
        super().__init__(records, image_root, split, size, augment, seed)
        self.targets, self.mirror_left, self.cache = targets, mirror_left, cache
        self._crops: dict[int, np.ndarray] = {}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        record = self.records[index]
        mirror = is_mirrored(self.mirror_left, record.side)
        target, valid = target_joints(record.hand, self.targets, mirror)
        crop = self._crops.get(index)
        if crop is None:
            crop = self._crop(index)
            keep = self.cache and not self.augment and crop is not None
            if keep and (len(self._crops) + 1) * crop.size <= CROP_CACHE_BYTES:
                self._crops[index] = crop = np.round(crop).astype(np.uint8)
        ok = crop is not None
        if ok:
            if mirror:
                crop = mirror_crop(crop)
            image_tensor = torch.from_numpy(normalize_crop(crop.astype(np.float32)))
        else:
            image_tensor = torch.zeros(3, self.size, self.size)
        return {
            "image": image_tensor,
            "target": torch.from_numpy(target),
            "valid": torch.from_numpy(valid),
            "index": torch.tensor(index),
            "ok": torch.tensor(ok),
        }

    def _crop(self, index: int) -> np.ndarray | None:
        """The (size, size, 3) crop of a hand in [0, 255] (augmented when asked), or None when its image
        cannot be read."""
        window = CropWindow.from_box(self.records[index].hand.bbox)
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.augment else None
        if rng is not None:
            shift = rng.uniform(-AUGMENT_SHIFT, AUGMENT_SHIFT, size=2) * window.side
            window = CropWindow(
                window.centre + shift, window.side * rng.uniform(1 - AUGMENT_SCALE, 1 + AUGMENT_SCALE)
            )
        pixels = read_image(self.path(index))
        if pixels is None:
            return None
        crop = warp_crop(pixels, window, self.size)
        if rng is not None:
            crop = np.clip(crop * rng.uniform(1 - AUGMENT_BRIGHTNESS, 1 + AUGMENT_BRIGHTNESS), 0, 255)
        return crop


class KeypointDataset(Dataset):
    """Normalised 2D keypoints with a validity mask, and normalised wrist-relative targets."""

    def __init__(
        self,
        records: list[HandRecord],
        inputs: KeypointNormalizer,
        targets: JointNormalizer | None = None,
        augment: bool = False,
        seed: int = 0,
    ) -> None:
        self.records, self.inputs, self.targets = records, inputs, targets
        self.augment, self.seed, self.epoch = augment, seed, 0

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        record = self.records[index]
        pixels = record.hand.joints_2d
        present = np.isfinite(pixels).all(axis=1)
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            pixels = pixels + rng.normal(0.0, AUGMENT_KEYPOINT_NOISE_PX, size=pixels.shape)
        keypoints = np.nan_to_num(self.inputs.normalize(pixels)).astype(np.float32)
        target, valid = target_joints(record.hand, self.targets)
        return {
            "keypoints": torch.from_numpy(keypoints),
            "present": torch.from_numpy(present),
            "target": torch.from_numpy(target),
            "valid": torch.from_numpy(valid),
            "index": torch.tensor(index),
            "ok": torch.tensor(True),
        }


class FrameDataset(ImageDataset):
    """Whole frames resized for the detector, with per-side presence, keypoint and visibility targets.

    Resized frames are kept in memory after their first use (48 KiB each at 128x128), as decoding the
    full-size JPEG would otherwise cost more than the detector's training step. Augmentation moves and
    scales the view (hands then appear where the training frames had none) and jitters brightness.
    """

    def __init__(
        self,
        records: list[FrameRecord],
        image_root: Path,
        split: str,
        size: int,
        augment: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(records, image_root, split, size, augment, seed)
        self._resized: dict[int, np.ndarray | None] = {}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index not in self._resized:
            pixels = read_image(self.path(index))
            self._resized[index] = None if pixels is None else resize_frame(pixels, self.size)
        resized = self._resized[index]
        targets = frame_targets(self.records[index].frame, BENCHMARK_CAMERA.width, BENCHMARK_CAMERA.height)
        ok = resized is not None
        if not ok:
            image_tensor = torch.zeros(3, self.size, self.size)
        elif self.augment:
            image, targets = self._augmented(
                resized, targets, np.random.default_rng([self.seed, self.epoch, index])
            )
            image_tensor = torch.from_numpy(normalize_crop(image))
        else:
            image_tensor = torch.from_numpy(normalize_crop(resized.astype(np.float32)))
        return {
            "image": image_tensor,
            **{key: torch.from_numpy(value) for key, value in targets.items()},
            "index": torch.tensor(index),
            "ok": torch.tensor(ok),
        }

    def _augmented(
        self, resized: np.ndarray, targets: dict[str, np.ndarray], rng: np.random.Generator
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """A moved and scaled view of the frame with its targets; keypoints that leave it are invisible."""
        size = self.size
        shift = rng.uniform(-AUGMENT_FRAME_SHIFT, AUGMENT_FRAME_SHIFT, size=2) * size
        window = CropWindow(
            np.full(2, (size - 1) / 2) + shift,
            size * rng.uniform(1 - AUGMENT_FRAME_SCALE, 1 + AUGMENT_FRAME_SCALE),
        )
        image = warp_crop(resized, window, size)
        image = np.clip(image * rng.uniform(1 - AUGMENT_BRIGHTNESS, 1 + AUGMENT_BRIGHTNESS), 0, 255)
        moved = (window.to_crop(targets["keypoints"] * size - 0.5, size) + 0.5) / size
        inside = (moved >= 0).all(axis=-1) & (moved <= 1).all(axis=-1)
        visible = targets["visible"] * inside
        presence = targets["presence"] * (visible.sum(axis=-1) >= 2)
        keypoints = np.where(visible[..., None] > 0, moved, 0.0).astype(np.float32)
        return image, {"presence": presence, "keypoints": keypoints, "visible": visible.astype(np.float32)}


def model_inputs(model: str, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The tensors a model's forward takes, from a batch of its dataset."""
    return (batch["keypoints"], batch["present"]) if model == "lifter" else (batch["image"],)


class PoseModel(Protocol):
    """What a dataset needs of a 3D model: a loaded checkpoint or an engine's model card."""

    name: str
    targets: JointNormalizer | None
    inputs: KeypointNormalizer | None
    mirror_left: bool
    input_size: int | None


def make_dataset(
    model: PoseModel,
    selection: HandSelection,
    image_root: Path | None,
    split: str,
    with_targets: bool = False,
) -> Dataset:
    """The dataset of a 3D model's inputs for the selected hands (with normalised targets for training)."""
    targets = model.targets if with_targets else None
    if model.name == "potter":
        if image_root is None:
            raise InputError("POTTER needs --image-dir (undistorted images)")
        return CropDataset(
            selection.records, image_root, split, model.input_size, targets, mirror_left=model.mirror_left
        )
    return KeypointDataset(selection.records, model.inputs, targets)
