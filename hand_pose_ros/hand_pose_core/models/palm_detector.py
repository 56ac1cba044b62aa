"""MediaPipe Hands' palm detector (BlazePalm) as a PyTorch module, for weights read from the official
`palm_detection_{full,lite}.tflite` (Google, Apache-2.0) by `hand_pose_core.models.tflite`.

A single-shot detector on a 192x192 RGB image: a 5x5 stride-2 stem, five stages of BlazeBlocks (5x5
depthwise + 1x1 convolution with a residual, then PReLU) at strides 2 to 32, and a top-down path that
upsamples stride 32 -> 16 -> 8, feeding anchor heads on the 12x12 and 24x24 maps.

The output is one packed tensor, as our engines take one output per model: (N, 2016, 19) = per anchor
the 18 raw regressors (box x, y, w, h, then 7 keypoints x, y, in 192-px units relative to the anchor)
and the raw score logit (no sigmoid). Anchors are in the model's order: the 24x24 map first (2 per
cell), then the 12x12 map (6 per cell), each by row, column, then slot.

Submodules are registered in the order the official graph runs their layers; the TFLite loader maps
weights by that order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hand_pose_core.models.layers import PReLU, SameConv2d

NUM_ANCHORS = 2016
NUM_COORDS = 18  # box (x, y, w, h) and 7 keypoints (x, y)
OUTPUT_WIDTH = NUM_COORDS + 1  # the regressors, then the score logit
SCORE = NUM_COORDS  # index of the score logit in the packed output


@dataclass(frozen=True)
class PalmDetectorConfig:
    """The official full model by default; `lite()` gives the lite one (one block fewer per stage)."""

    image_size: int = 192
    widths: tuple[int, ...] = (32, 64, 128, 256, 256)  # stages at strides 2, 4, 8, 16, 32
    depths: tuple[int, ...] = (4, 5, 5, 5, 5)  # blocks per stage; stages after the first open at stride 2
    kernel_size: int = 5
    head_depth: int = 2  # blocks after each upsampling
    anchors_per_cell: tuple[int, int] = (2, 6)  # at stride 8 (24x24) and stride 16 (12x12)

    @classmethod
    def lite(cls) -> PalmDetectorConfig:
        return cls(depths=(3, 4, 4, 4, 4))

    @property
    def num_anchors(self) -> int:
        cells8, cells16 = (self.image_size // 8) ** 2, (self.image_size // 16) ** 2
        return cells8 * self.anchors_per_cell[0] + cells16 * self.anchors_per_cell[1]


class BlazeBlock(nn.Module):
    """Depthwise + 1x1 convolution added to the input, then PReLU. A stride-2 block max-pools the
    shortcut and zero-pads its channels up to the new width."""

    def __init__(self, in_width: int, out_width: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.extra_channels = out_width - in_width
        self.depthwise = SameConv2d(in_width, in_width, kernel_size, stride, groups=in_width)
        self.pointwise = SameConv2d(in_width, out_width, 1)
        self.act = PReLU(out_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = F.max_pool2d(x, 2) if self.stride == 2 else x
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return self.act(shortcut + self.pointwise(self.depthwise(x)))


class UpsampleMerge(nn.Module):
    """One top-down step: upsample the deeper map 2x (bilinear, half-pixel centres, as TFLite's
    RESIZE_BILINEAR here), 1x1 convolution + PReLU to the skip's width, add the skip, refine."""

    def __init__(self, deep_width: int, width: int, kernel_size: int, depth: int) -> None:
        super().__init__()
        self.project = SameConv2d(deep_width, width, 1)
        self.act = PReLU(width)
        self.blocks = nn.Sequential(*(BlazeBlock(width, width, kernel_size) for _ in range(depth)))

    def forward(self, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        upsampled = F.interpolate(deep, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.blocks(skip + self.act(self.project(upsampled)))


class AnchorHead(nn.Module):
    """Per-anchor regressors and score logit from one map: (N, H*W*anchors, 19), by row, column, slot."""

    def __init__(self, width: int, anchors_per_cell: int) -> None:
        super().__init__()
        self.score = SameConv2d(width, anchors_per_cell, 1)
        self.regressors = SameConv2d(width, anchors_per_cell * NUM_COORDS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        scores = self.score(x).permute(0, 2, 3, 1).reshape(batch, -1, 1)
        regressors = self.regressors(x).permute(0, 2, 3, 1).reshape(batch, -1, NUM_COORDS)
        return torch.cat([regressors, scores], dim=-1)


class PalmDetector(nn.Module):
    """(N, 3, 192, 192) RGB in [0, 1] -> (N, 2016, 19) raw regressors and score logits per anchor."""

    def __init__(self, config: PalmDetectorConfig = PalmDetectorConfig()) -> None:
        super().__init__()
        self.config = config
        widths, kernel = config.widths, config.kernel_size
        if len(widths) != 5 or len(config.depths) != 5:
            raise ValueError("the palm detector has five stages (strides 2 to 32)")
        self.stem = SameConv2d(3, widths[0], kernel, stride=2)
        self.stem_act = PReLU(widths[0])
        stages = []
        for i, (width, depth) in enumerate(zip(widths, config.depths, strict=True)):
            in_width, stride = (widths[i - 1], 2) if i else (width, 1)
            blocks = [BlazeBlock(in_width, width, kernel, stride)]
            blocks += [BlazeBlock(width, width, kernel) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.up16 = UpsampleMerge(widths[4], widths[3], kernel, config.head_depth)
        self.head16 = AnchorHead(widths[3], config.anchors_per_cell[1])
        self.up8 = UpsampleMerge(widths[3], widths[2], kernel, config.head_depth)
        self.head8 = AnchorHead(widths[2], config.anchors_per_cell[0])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        size = self.config.image_size
        if image.dim() != 4 or tuple(image.shape[1:]) != (3, size, size):
            raise ValueError(f"palm detector input must be (N, 3, {size}, {size}), got {tuple(image.shape)}")
        x = self.stem_act(self.stem(image))
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        stride16 = self.up16(features[4], features[3])
        stride8 = self.up8(stride16, features[2])
        return torch.cat([self.head8(stride8), self.head16(stride16)], dim=1)
