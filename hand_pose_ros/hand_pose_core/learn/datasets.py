"""Training samples from processed ground truth: crops for POTTER, 2D keypoints for the lifter, whole
frames for the detector. Hands that cannot be used are skipped with a reason, counted and reported by
the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from hand_pose_core.egoexo.formats import Annotations, FrameAnnotation, HandAnnotation, HandRecord
from hand_pose_core.egoexo.frames import FrameRecord
from hand_pose_core.egoexo.metrics import hand_label
from hand_pose_core.errors import InputError
from hand_pose_core.events.representations import EventRepresentation
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA, PinholeCamera
from hand_pose_core.geometry.crop import (
    CropWindow,
    box_is_usable,
    crop_input,
    is_mirrored,
    mirror_crop,
    mirror_joints,
    warp_crop,
)
from hand_pose_core.geometry.skeleton import FINGER_JOINTS, FINGERS, FINGERTIPS, HAND_SIDES, NUM_JOINTS
from hand_pose_core.live.detection import pixels_to_fractions, resize_event_frame, resize_frame
from hand_pose_core.live.offline import FrameSource, frame_source
from hand_pose_core.models.normalization import JointNormalizer, KeypointNormalizer
from hand_pose_core.synth.generator import PALM_CENTRE, PALM_CENTRE_SPREAD, SKIN_TONES, frame_mask
from hand_pose_core.synth.render import Canvas, Lighting, Surface, draw_capsule, scene_background

# Optional training augmentation of the crop window and brightness (off by default, as the baseline).
AUGMENT_SCALE = 0.1
AUGMENT_SHIFT = 0.05
AUGMENT_BRIGHTNESS = 0.2
AUGMENT_FRAME_SHIFT = 0.15  # detector: view moved by up to this fraction of the frame
AUGMENT_FRAME_SCALE = 0.2
# Detector: this share of views moves up to AUGMENT_FAR_SHIFT, so hands are often half out of view (or
# one of them wholly, which gives one-hand frames).
AUGMENT_FAR_RATE = 0.25
AUGMENT_FAR_SHIFT = 0.45
# Detector: with augmentation, NEGATIVE_SHARE extra samples per training frame show no hand at all (a new
# frame each epoch, see `FrameDataset._negative`): without them presence is 1 on anything, a black frame
# included, as every synthetic frame has hands.
NEGATIVE_SHARE = 0.5
NEGATIVE_MARGIN = 0.12  # of the frame: how far a view without hands stays from any keypoint
# The lifter's augmentation: 2D keypoints as a real 2D detector (MediaPipe Hands) gives them, with errors
# of several pixels and missing joints, rather than as annotated (see `detector_like_keypoints`). Pixels
# are of the 512x512 benchmark frame.
LIFTER_NOISE_PX = (0.5, 8.0)  # per hand, the noise's standard deviation is uniform in this range
LIFTER_TIP_NOISE = 1.5  # fingertips: this many times more
LIFTER_DROP_RATE = (0.0, 0.1)  # per hand, each joint is dropped with a probability uniform in this range
LIFTER_TIP_DROP = 2.0  # fingertips: this many times more often
LIFTER_FINGER_DROP = 0.1  # the chance that a hand misses one whole finger
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
    zeros and no valid joint without 3D (or without normalisation). Each joint keeps its own flag, the
    wrist's included, as the official loss weighs them."""
    if targets is None or not hand.has_3d:
        return np.zeros((NUM_JOINTS, 3), np.float32), np.zeros(NUM_JOINTS, np.float32)
    relative = hand.joints_3d - hand.joints_3d[0]
    normalised = targets.normalize(mirror_joints(relative) if mirror else relative)
    return np.nan_to_num(normalised).astype(np.float32), hand.valid_3d.astype(np.float32)


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
    """Samples read from the frames of one split: RGB images, or event representations (`events`)."""

    def __init__(
        self,
        records: list,
        frames: Path | FrameSource,
        split: str,
        size: int,
        augment: bool = False,
        seed: int = 0,
    ) -> None:
        self.records, self.frames, self.split, self.size = records, frame_source(frames), split, size
        self.augment, self.seed, self.epoch = augment, seed, 0
        self.events = self.frames.events is not None
        self.channels = self.frames.events.channels if self.events else 3

    def __len__(self) -> int:
        return len(self.records)

    def read(self, index: int) -> np.ndarray | None:
        """The sample's whole frame, or None when it cannot be read."""
        record = self.records[index]
        return self.frames.read(self.split, record.take_name, record.frame_number)


class CropDataset(ImageDataset):
    """Baseline crops (CHW: ImageNet-normalised RGB, or event representations) with normalised
    wrist-relative targets; left hands mirrored for a model trained with `mirror_left`.

    A frame that cannot be read gives `ok = False` and zeros, so the caller can skip and count it.
    With `cache`, crops without augmentation are kept after their first use (RGB rounded to uint8, up to
    `CROP_CACHE_BYTES`): decoding the full frame again each epoch costs more than a small model's step.
    """

    def __init__(
        self,
        records: list[HandRecord],
        frames: Path | FrameSource,
        split: str,
        size: int,
        targets: JointNormalizer | None = None,
        augment: bool = False,
        seed: int = 0,
        mirror_left: bool = False,
        cache: bool = False,
    ) -> None:
        super().__init__(records, frames, split, size, augment, seed)
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
            if keep and (len(self._crops) + 1) * crop.nbytes <= CROP_CACHE_BYTES:
                self._crops[index] = crop = crop if self.events else np.round(crop).astype(np.uint8)
        ok = crop is not None
        if ok:
            if mirror:
                crop = mirror_crop(crop)
            image_tensor = torch.from_numpy(crop_input(crop.astype(np.float32), self.events))
        else:
            image_tensor = torch.zeros(self.channels, self.size, self.size)
        return {
            "image": image_tensor,
            "target": torch.from_numpy(target),
            "valid": torch.from_numpy(valid),
            "index": torch.tensor(index),
            "ok": torch.tensor(ok),
        }

    def _crop(self, index: int) -> np.ndarray | None:
        """The (size, size, C) crop of a hand (RGB in [0, 255]; augmented when asked: moved and scaled,
        RGB also brightened or darkened), or None when its frame cannot be read."""
        window = CropWindow.from_box(self.records[index].hand.bbox)
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.augment else None
        if rng is not None:
            shift = rng.uniform(-AUGMENT_SHIFT, AUGMENT_SHIFT, size=2) * window.side
            window = CropWindow(
                window.centre + shift, window.side * rng.uniform(1 - AUGMENT_SCALE, 1 + AUGMENT_SCALE)
            )
        pixels = self.read(index)
        if pixels is None:
            return None
        crop = warp_crop(pixels, window, self.size)
        if rng is not None and not self.events:
            crop = np.clip(crop * rng.uniform(1 - AUGMENT_BRIGHTNESS, 1 + AUGMENT_BRIGHTNESS), 0, 255)
        return crop


def detector_like_keypoints(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A hand's (21, 2) 2D keypoints (NaN where missing) as a real 2D detector might give them: with
    per-hand noise, dropped joints and now and then a whole finger missing (the LIFTER_* constants);
    nothing is dropped where fewer than two keypoints would be left."""
    tips = np.isin(np.arange(NUM_JOINTS), FINGERTIPS)
    sigma = rng.uniform(*LIFTER_NOISE_PX) * np.where(tips, LIFTER_TIP_NOISE, 1.0)
    noisy = pixels + rng.normal(size=pixels.shape) * sigma[:, None]
    dropped = rng.random(NUM_JOINTS) < rng.uniform(*LIFTER_DROP_RATE) * np.where(tips, LIFTER_TIP_DROP, 1.0)
    if rng.random() < LIFTER_FINGER_DROP:
        dropped[list(FINGER_JOINTS[FINGERS[rng.integers(len(FINGERS))]])] = True
    present = np.isfinite(pixels).all(axis=1)
    if (present & ~dropped).sum() < 2:
        return noisy
    return np.where(dropped[:, None], np.nan, noisy)


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
        if self.augment:
            pixels = detector_like_keypoints(pixels, np.random.default_rng([self.seed, self.epoch, index]))
        present = np.isfinite(pixels).all(axis=1)
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

    Resized frames are kept in memory after their first use (48 KiB each at 128x128 RGB), as decoding the
    full-size JPEG would otherwise cost more than the detector's training step. Augmentation moves and
    scales the view (hands then appear where the training frames had none, or half out of view), jitters
    an RGB frame's brightness, and adds frames without hands after the records (indices from
    `len(records)`).
    """

    def __init__(
        self,
        records: list[FrameRecord],
        frames: Path | FrameSource,
        split: str,
        size: int,
        augment: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(records, frames, split, size, augment, seed)
        self._resized: dict[int, np.ndarray | None] = {}
        self._mask: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.records) + (round(NEGATIVE_SHARE * len(self.records)) if self.augment else 0)

    def _frame(self, index: int) -> np.ndarray | None:
        if index not in self._resized:
            pixels = self.read(index)
            resize = resize_event_frame if self.events else resize_frame
            self._resized[index] = None if pixels is None else resize(pixels, self.size)
        return self._resized[index]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.augment else None
        negative = index >= len(self.records)
        if negative:
            resized = self._event_negative(rng) if self.events else self._negative(rng)
        else:
            resized = self._frame(index)
        frame = FrameAnnotation(index) if negative else self.records[index].frame
        targets = frame_targets(frame, BENCHMARK_CAMERA.width, BENCHMARK_CAMERA.height)
        ok = resized is not None
        if not ok:
            image_tensor = torch.zeros(self.channels, self.size, self.size)
        elif rng is not None:
            image, targets = self._augmented(resized, targets, rng)
            image_tensor = torch.from_numpy(crop_input(image, self.events))
        else:
            image_tensor = torch.from_numpy(crop_input(resized.astype(np.float32), self.events))
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
        reach = AUGMENT_FAR_SHIFT if rng.random() < AUGMENT_FAR_RATE else AUGMENT_FRAME_SHIFT
        shift = rng.uniform(-reach, reach, size=2) * size
        window = CropWindow(
            np.full(2, (size - 1) / 2) + shift,
            size * rng.uniform(1 - AUGMENT_FRAME_SCALE, 1 + AUGMENT_FRAME_SCALE),
        )
        image = warp_crop(resized, window, size)
        if not self.events:
            image = np.clip(image * rng.uniform(1 - AUGMENT_BRIGHTNESS, 1 + AUGMENT_BRIGHTNESS), 0, 255)
        moved = (window.to_crop(targets["keypoints"] * size - 0.5, size) + 0.5) / size
        inside = (moved >= 0).all(axis=-1) & (moved <= 1).all(axis=-1)
        visible = targets["visible"] * inside
        presence = targets["presence"] * (visible.sum(axis=-1) >= 2)
        keypoints = np.where(visible[..., None] > 0, moved, 0.0).astype(np.float32)
        return image, {"presence": presence, "keypoints": keypoints, "visible": visible.astype(np.float32)}

    def _negative(self, rng: np.random.Generator) -> np.ndarray:
        """A (size, size, 3) frame without a hand, in [0, 255], before the view augmentation; one of four
        kinds: a training frame's view moved off its hands; a synthetic scene backdrop as the generator
        draws it; black, grey, a colour or noise; procedural texture with shapes and lines (clutter that is
        not a hand). The last three are masked as the synthetic frames are, or by another ellipse (real
        frames cut or resized), or not at all, so that the frame's outline says nothing about hands."""
        size = self.size
        kind = rng.integers(4)
        if kind == 0:
            away = self._view_without_hands(rng)
            if away is not None:
                return away
            kind = 1
        if kind == 1:
            image = scene_background(rng, size) * 255.0
        elif kind == 2 and rng.random() < 0.25:
            image = rng.uniform(0, 255, size=(size, size, 3))
        elif kind == 2:
            level = rng.choice([0.0, rng.uniform(0, 255)]) * (
                np.ones(3) if rng.random() < 0.5 else rng.uniform(0, 1, size=3)
            )
            image = level + rng.uniform(-1, 1, size=(size, size, 1)) * rng.choice([0.0, rng.uniform(0, 48)])
        else:
            image = _clutter(rng, size)
        if kind != 2 and rng.random() < 0.5:
            image = _limbs(rng, image)
        outline = rng.random()
        if outline < 0.5:
            image = image * self._frame_mask()[..., None]
        elif outline < 0.75:
            ys, xs = np.mgrid[:size, :size] + 0.5
            centre = size * (0.5 + rng.uniform(-0.15, 0.15, size=2))
            radii = size * rng.uniform(0.35, 0.7, size=2)
            inside = ((xs - centre[0]) / radii[0]) ** 2 + ((ys - centre[1]) / radii[1]) ** 2 < 1
            image = image * inside[..., None]
        return np.clip(image, 0, 255).astype(np.float32)

    def _event_negative(self, rng: np.random.Generator) -> np.ndarray:
        """An event frame without a hand: a training frame's view that keeps clear of its hands (the
        scene's own events as the head moves), or no events at all."""
        away = self._view_without_hands(rng) if rng.random() < 0.8 else None
        return away if away is not None else np.zeros((self.size, self.size, self.channels), np.float32)

    def _frame_mask(self) -> np.ndarray:
        """The synthetic frames' valid mask at the network's size, soft at its edge as a resized frame's."""
        if self._mask is None:
            mask = Image.fromarray(frame_mask(BENCHMARK_CAMERA).astype(np.uint8) * 255)
            self._mask = np.asarray(mask.resize((self.size, self.size), Image.BILINEAR), np.float32) / 255.0
        return self._mask

    def _view_without_hands(self, rng: np.random.Generator, tries: int = 5) -> np.ndarray | None:
        """A zoomed view of a random training frame at least NEGATIVE_MARGIN from all its keypoints; of a
        frame with both hands annotated, as a hand with too few valid joints is drawn but not annotated."""
        size = self.size
        index = int(rng.integers(len(self.records)))
        targets = frame_targets(self.records[index].frame, BENCHMARK_CAMERA.width, BENCHMARK_CAMERA.height)
        resized = self._frame(index)
        if resized is None or not targets["presence"].all():
            return None
        points = targets["keypoints"][targets["visible"] > 0] * size
        for _ in range(tries):
            side = size * rng.uniform(0.5, 1.0)
            centre = rng.uniform(side / 2, size - side / 2, size=2)
            reach = side / 2 + NEGATIVE_MARGIN * size
            if not (np.abs(points - centre) < reach).all(axis=1).any():
                return warp_crop(resized, CropWindow(centre - 0.5, side), size)
        return None


def _limbs(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """The (S, S, 3) image in [0, 255] with shaded capsules drawn over it as the renderer draws a hand's
    limbs, alone or in fans from a hub (a sleeve, a utensil, a ceiling fan), in any colour or a skin
    tone, half of them where hands usually are: the parts of a hand that do not make one."""
    size = image.shape[0]
    camera = PinholeCamera.linear(size, size, BENCHMARK_CAMERA.fx * size / BENCHMARK_CAMERA.width)
    reach = (size / 2) / camera.fx  # x / z at the image's edge
    canvas = Canvas.over(image / 255.0)
    lighting = Lighting.random(rng)
    for _ in range(rng.integers(1, 4)):
        surface = Surface((_colour(rng) / 255.0).astype(np.float32))
        depth = rng.uniform(0.2, 0.7)
        hub = np.array([*rng.uniform(-reach, reach, size=2), 1.0]) * depth
        if rng.random() < 0.5:  # where hands usually are
            centre = PALM_CENTRE[HAND_SIDES[rng.integers(2)]] + rng.normal(0.0, PALM_CENTRE_SPREAD, size=2)
            hub = np.array([*centre, 1.0]) * depth
        radius = rng.uniform(0.012, 0.04)  # thicker than fingers
        for _ in range(1 if rng.random() < 0.4 else rng.integers(2, 6)):
            direction = rng.normal(size=3)
            end = hub + rng.uniform(0.03, 0.3) * direction / np.linalg.norm(direction)
            draw_capsule(
                canvas, camera, hub, end, (radius, radius * rng.uniform(0.6, 1.2)), surface, lighting
            )
    return canvas.image * 255.0


def _colour(rng: np.random.Generator) -> np.ndarray:
    """An RGB colour in [0, 255]: any, muted as most of a room is (a grey with a tint), or a skin tone."""
    pick = rng.random()
    if pick < 0.4:
        return rng.uniform(0, 255, size=3)
    if pick < 0.8:
        return np.clip(rng.uniform(20, 230) + rng.uniform(-30, 30, size=3), 0, 255)
    return np.clip(255 * SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.6, 1.1), 0, 255)


def _clutter(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float in [0, 255]: a room in perspective, multi-scale noise or stripes, under
    random rectangles, ellipses, polygons, rounded sticks and fans of sticks (as a ceiling fan or a plant),
    drawn at twice the size and reduced as frames are: edges, texture, and skin-coloured or finger-like
    shapes that are not a hand."""
    big = 2 * size
    canvas = Image.new("RGB", (big, big))
    draw = ImageDraw.Draw(canvas)
    background = rng.integers(3)
    if background == 0:  # a back wall around the vanishing point; ceiling, floor and side walls
        x0, y0 = rng.uniform(0.15, 0.55, size=2) * big
        x1, y1 = np.array([x0, y0]) + rng.uniform(0.15, 0.45, size=2) * big
        corners = [(0, 0), (big, 0), (big, big), (0, big)]
        inner = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        for k in range(4):
            wall = [corners[k], corners[(k + 1) % 4], inner[(k + 1) % 4], inner[k]]
            draw.polygon(wall, fill=tuple(int(c) for c in _colour(rng)))
        draw.rectangle((x0, y0, x1, y1), fill=tuple(int(c) for c in _colour(rng)))
    else:
        if background == 1:
            octaves = [
                np.asarray(
                    Image.fromarray(rng.uniform(0, 255, (cells, cells)).astype(np.uint8)).resize((big, big))
                )
                * 0.5**octave
                for octave, cells in enumerate((4, 8, 16, 32, 64))
            ]
            mix = sum(octaves) / (255.0 * sum(0.5**octave for octave in range(len(octaves))))
        else:
            ys, xs = np.mgrid[:big, :big]
            angle, period = rng.uniform(0, np.pi), rng.uniform(6, size)
            mix = 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(angle) * xs + np.sin(angle) * ys) / period)
        two = np.stack([_colour(rng), _colour(rng)])
        canvas.paste(
            Image.fromarray((two[0] * (1 - mix[..., None]) + two[1] * mix[..., None]).astype(np.uint8))
        )
    for _ in range(rng.integers(3, 15)):
        fill = tuple(int(c) for c in _colour(rng))
        x0, y0 = rng.uniform(-0.1, 1.0, size=2) * big
        w, h = rng.uniform(0.03, 0.4, size=2) * big
        shape = rng.integers(5)
        if shape == 0:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=fill)
        elif shape == 1:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=fill)
        elif shape == 2:
            draw.polygon([tuple(p) for p in rng.uniform(0, big, size=(rng.integers(3, 7), 2))], fill=fill)
        else:  # one stick, or a fan of 2-6 sticks from a hub
            sticks = 1 if shape == 3 else int(rng.integers(2, 7))
            width = rng.uniform(0.01, 0.06) * big
            angles = rng.uniform(0, 2 * np.pi) + np.sort(
                rng.uniform(0, 2 * np.pi * rng.uniform(0.3, 1), sticks)
            )
            for angle, length in zip(angles, rng.uniform(0.05, 0.3, sticks) * big, strict=True):
                x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
                draw.line((x0, y0, x1, y1), fill=fill, width=int(width))
                draw.ellipse((x1 - width / 2, y1 - width / 2, x1 + width / 2, y1 + width / 2), fill=fill)
            draw.ellipse((x0 - width, y0 - width, x0 + width, y0 + width), fill=fill)
    light = np.linspace(rng.uniform(0.5, 1.2), rng.uniform(0.5, 1.2), big)  # light falling off one way
    light = light[:, None] if rng.random() < 0.5 else light[None, :]
    return np.asarray(canvas.resize((size, size), Image.BILINEAR), np.float32) * light[::2, ::2, None]


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
    events: EventRepresentation | None


def check_frames_fit(model: PoseModel, frames: FrameSource) -> None:
    """InputError unless the frames are what the model sees (RGB images, or its event representation)."""
    if frames.events != model.events:
        seen = (r.describe() if r is not None else "RGB images" for r in (model.events, frames.events))
        raise InputError("the {} model sees {}, the frames given are {}".format(model.name, *seen))


def make_dataset(
    model: PoseModel,
    selection: HandSelection,
    frames: Path | FrameSource | None,
    split: str,
    with_targets: bool = False,
) -> Dataset:
    """The dataset of a 3D model's inputs for the selected hands (with normalised targets for training)."""
    targets = model.targets if with_targets else None
    if model.name == "potter":
        if frames is None:
            raise InputError("POTTER needs --image-dir (undistorted images)")
        frames = frame_source(frames)
        check_frames_fit(model, frames)
        return CropDataset(
            selection.records, frames, split, model.input_size, targets, mirror_left=model.mirror_left
        )
    return KeypointDataset(selection.records, model.inputs, targets)
