"""Whole-image hand keypoint network: the undistorted frame at reduced resolution -> for the left and the
right hand a presence score, 21 sub-pixel 2D keypoints and their visibility.

The first stage of the two-stage egocentric design (2D heatmaps, then 3D): a small convolutional encoder
to stride 32, a top-down path back to stride 4, one heatmap per side and joint, and soft-argmax over each
heatmap for sub-pixel keypoints. Presence and per-joint visibility come from the pooled deepest features.

The output is packed in one tensor, as single-shot detectors do, so every engine runs it unchanged:
(N, 2 sides, 64) = [presence logit, then 21 x (x, y, visibility logit)], x and y in [0, 1] of the image
width and height (0 the left or top edge, 1 the right or bottom edge).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

NUM_SIDES = 2  # left, right (the order of skeleton.HAND_SIDES)
OUTPUT_WIDTH = 64  # 1 presence logit + 21 x (x, y, visibility logit)


@dataclass(frozen=True)
class DetectorConfig:
    image_size: int = 128  # the 512x512 benchmark frame is resized to this square
    in_chans: int = 3  # RGB, or an event representation's channels
    widths: tuple[int, ...] = (24, 48, 96, 160)  # encoder widths at strides 4, 8, 16, 32
    head_width: int = 64  # width of the top-down path and the heatmap head
    num_joints: int = 21


class ConvBn(nn.Sequential):
    """A convolution, its BatchNorm, then what follows (a ReLU or nothing). Its inference form folds the
    BatchNorm into the convolution, as ONNX export does: one pass over the feature map fewer."""

    def fuse(self) -> nn.Sequential:
        conv, norm, *rest = self
        return nn.Sequential(fuse_conv_bn_eval(conv, norm), *rest)


def conv_bn(cin: int, cout: int, stride: int = 1) -> ConvBn:
    return ConvBn(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with an identity shortcut."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(width, width)
        self.conv2 = ConvBn(nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(self.conv1(x)))


class Encoder(nn.Module):
    """Features at strides 4, 8, 16 and 32."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        w = config.widths
        self.stem = nn.Sequential(conv_bn(config.in_chans, w[0] // 2, 2), conv_bn(w[0] // 2, w[0], 2))
        self.stages = nn.ModuleList(
            nn.Sequential(conv_bn(w[i - 1], w[i], 2) if i else nn.Identity(), ResidualBlock(w[i]))
            for i in range(len(w))
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class TopDown(nn.Module):
    """Upsample the deepest features back to stride 4, adding each shallower level (FPN style)."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(w, config.head_width, 1) for w in config.widths)
        self.smooth = conv_bn(config.head_width, config.head_width)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[-1](features[-1])
        for level in range(len(features) - 2, -1, -1):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest") + self.lateral[level](features[level])
        return self.smooth(x)


def soft_argmax(heatmaps: torch.Tensor) -> torch.Tensor:
    """(..., H, W) logits -> (..., 2) expected (x, y) in [0, 1] of the width and height."""
    height, width = heatmaps.shape[-2:]
    probabilities = heatmaps.flatten(-2).softmax(dim=-1).unflatten(-1, (height, width))
    xs = (torch.arange(width, device=heatmaps.device, dtype=heatmaps.dtype) + 0.5) / width
    ys = (torch.arange(height, device=heatmaps.device, dtype=heatmaps.dtype) + 0.5) / height
    x = (probabilities.sum(dim=-2) * xs).sum(dim=-1)
    y = (probabilities.sum(dim=-1) * ys).sum(dim=-1)
    return torch.stack([x, y], dim=-1)


class HandKeypointDetector(nn.Module):
    def __init__(self, config: DetectorConfig = DetectorConfig()) -> None:
        super().__init__()
        self.config = config
        joints = config.num_joints
        self.encoder = Encoder(config)
        self.top_down = TopDown(config)
        self.heatmap_head = nn.Conv2d(config.head_width, NUM_SIDES * joints, 1)
        self.presence_head = nn.Linear(config.widths[-1], NUM_SIDES * (1 + joints))

    def forward_with_heatmaps(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The packed output and the heatmap logits (N, 2, 21, S/4, S/4), which training supervises."""
        joints = self.config.num_joints
        features = self.encoder(image)
        heatmaps = self.heatmap_head(self.top_down(features)).unflatten(1, (NUM_SIDES, joints))
        keypoints = soft_argmax(heatmaps)  # (N, 2, 21, 2)
        pooled = features[-1].mean(dim=(2, 3))  # (N, C)
        logits = self.presence_head(pooled).unflatten(1, (NUM_SIDES, 1 + joints))  # (N, 2, 22)
        per_joint = torch.cat([keypoints, logits[..., 1:, None]], dim=-1)  # (N, 2, 21, 3)
        return torch.cat([logits[..., :1], per_joint.flatten(2)], dim=-1), heatmaps  # (N, 2, 64)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image (N, C, S, S) (ImageNet-normalised RGB, or an event representation) -> (N, 2, 64) packed as
        the module docstring says."""
        return self.forward_with_heatmaps(image)[0]
