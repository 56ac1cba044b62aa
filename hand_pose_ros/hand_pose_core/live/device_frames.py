"""A frame uploaded once to the device of the PyTorch CUDA engines, and the model inputs cut from it there:
MediaPipe's letterbox and hand regions, POTTER's crops, turned and normalised on the device.

The arithmetic is the host's, shared with it: the sampling comes from `live.regions.square_sampling`
and `geometry.crop.crop_taps`, computed on the host (a few small arrays per frame), and only the
per-pixel work runs here. The remap is OpenCV's fixed-point bilinear one (weights in 1/32 pixel steps
scaled to 2^15, rounded half up), so MediaPipe's inputs are the same bytes as `warp_to_square`'s; the
crops are `warp_crop`'s float32 sums in the same order.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from hand_pose_core.geometry.camera import Turn
from hand_pose_core.geometry.crop import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CropWindow,
    crop_taps,
    imagenet_normalize,
)
from hand_pose_core.live.regions import PIXEL_SCALE, SUBPIXEL_BITS, SUBPIXELS, SquareWarp, square_sampling

REMAP_BITS = 15  # OpenCV's INTER_REMAP_COEF_BITS: each weight is (32 - f)·f'·32 of 2^15
REMAP_ROUNDING = 1 << (REMAP_BITS - 1)


def remap(image: torch.Tensor, positions: np.ndarray, fractions: np.ndarray, border: int) -> torch.Tensor:
    """OpenCV's `remap` (INTER_LINEAR, fixed-point maps) of an (H, W, C) uint8 image on its device."""
    height, width = image.shape[:2]
    device = image.device
    x0 = torch.from_numpy(positions[..., 0].astype(np.int64)).to(device)
    y0 = torch.from_numpy(positions[..., 1].astype(np.int64)).to(device)
    fraction = torch.from_numpy(fractions.astype(np.int64)).to(device)
    fx, fy = fraction & (SUBPIXELS - 1), fraction >> SUBPIXEL_BITS
    pixels = image.to(torch.int32)
    total = torch.zeros((*positions.shape[:2], image.shape[2]), dtype=torch.int32, device=device)
    for dy, wy in ((0, SUBPIXELS - fy), (1, fy)):
        for dx, wx in ((0, SUBPIXELS - fx), (1, fx)):
            rows, cols = y0 + dy, x0 + dx
            sample = pixels[rows.clamp(0, height - 1), cols.clamp(0, width - 1)]
            if border == cv2.BORDER_CONSTANT:
                inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
                sample = sample * inside[..., None]
            total += sample * (wy * wx * SUBPIXELS).to(torch.int32)[..., None]
    return ((total + REMAP_ROUNDING) >> REMAP_BITS).clamp(0, 255).to(torch.uint8)


class DeviceImage:
    """One orientation of an uploaded frame, (H, W, C), and the model inputs cut from it."""

    def __init__(self, image: torch.Tensor) -> None:
        self.image = image

    @classmethod
    def upload(cls, frame: np.ndarray, device: torch.device) -> DeviceImage:
        return cls(torch.from_numpy(np.require(frame, requirements="CW")).to(device))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.image.shape)

    def square(self, warp: SquareWarp) -> torch.Tensor:
        """`live.regions.warp_to_square` on the device: (side, side, C) uint8."""
        sampling = square_sampling(warp, *self.shape[:2])
        if sampling.positions is None:
            return torch.zeros(
                (warp.side, warp.side, self.shape[2]), dtype=torch.uint8, device=self.image.device
            )
        step = sampling.decimation
        image = self.image[::step, ::step] if step > 1 else self.image
        return remap(image, sampling.positions, sampling.fractions, warp.border)

    def squares(self, warps: list[SquareWarp]) -> torch.Tensor:
        """MediaPipe's model input for each warp: (N, 3, side, side) float32 pixels / 255."""
        squares = torch.stack([self.square(warp) for warp in warps])
        return squares.permute(0, 3, 1, 2).float() * PIXEL_SCALE

    def crop(self, window: CropWindow, size: int) -> torch.Tensor:
        """`geometry.crop.warp_crop` on the device: (size, size, C) float32."""
        height, width = self.shape[:2]
        source = self.image.float()
        out = torch.zeros((size, size, self.shape[2]), dtype=torch.float32, device=self.image.device)
        for rows, cols, weight in crop_taps(window, size, width, height):
            rows_t, cols_t = (torch.from_numpy(v).to(self.image.device) for v in (rows, cols))
            out += torch.from_numpy(weight).to(self.image.device)[..., None] * source[rows_t][:, cols_t]
        return out

    def crops(self, windows: list[CropWindow], size: int, mirrored: list[bool], events: bool) -> torch.Tensor:
        """POTTER's input for each window, as `geometry.crop.crop_input` makes it from a crop flipped
        top to bottom where `mirrored`: (N, C, size, size) float32."""
        crops = torch.stack(
            [
                self.crop(window, size).flip(0) if mirror else self.crop(window, size)
                for window, mirror in zip(windows, mirrored, strict=True)
            ]
        )
        if not events:
            device = self.image.device
            mean, std = (torch.from_numpy(v).to(device) for v in (IMAGENET_MEAN, IMAGENET_STD))
            crops = imagenet_normalize(crops, mean, std)
        return crops.permute(0, 3, 1, 2).contiguous()


class DeviceFrame:
    """A frame uploaded once; its orientations are turned on the device and kept for the frame."""

    def __init__(self, frame: np.ndarray, device: torch.device) -> None:
        self.device = device
        self._turned = {0: DeviceImage.upload(frame, device)}

    def turned(self, turn: Turn) -> DeviceImage:
        """The frame as `turn.image` gives it."""
        k = turn.quarter_turns
        if k not in self._turned:
            self._turned[k] = DeviceImage(torch.rot90(self._turned[0].image, k, (0, 1)).contiguous())
        return self._turned[k]
