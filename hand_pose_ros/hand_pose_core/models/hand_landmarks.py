"""MediaPipe Hands' hand landmark model as a PyTorch module, for weights read from the official
`hand_landmark_{full,lite}.tflite` (Google, Apache-2.0) by `hand_pose_core.models.tflite`.

A MobileNetV2-like network on a 224x224 RGB crop around one hand: a 3x3 stride-2 stem, inverted
residual blocks (1x1 expansion, depthwise, 1x1 projection; ReLU6 after the first two) to stride 32, a
last expansion and depthwise convolution without projection, a global mean, then four fully connected
heads.

The output is one packed tensor, as our engines take one output per model: (N, 128) = [0:63] the 21
landmarks (x, y, z) in 224-px units of the crop, [63] the hand-presence probability, [64] the probability
that the hand is "Left" (labelled for mirrored input), [65:128] the 21 world landmarks (x, y, z) in
metres. This is the official graph's output order (Identity, Identity_1, Identity_2, Identity_3), not the
order its metadata claims.

Submodules are registered in the order the official graph runs their layers (the handedness head comes
first there); the TFLite loader maps weights by that order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hand_pose_core.models.layers import SameConv2d

NUM_LANDMARKS = 21
OUTPUT_WIDTH = 128
LANDMARKS = slice(0, 63)
PRESENCE = 63
HANDEDNESS = 64
WORLD_LANDMARKS = slice(65, 128)

# Inverted residual blocks: (kernel, stride, hidden width, output width). A block without expansion has
# its hidden width equal to its input width.
FULL_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (3, 1, 24, 16),
    (3, 2, 64, 24),
    (3, 1, 144, 24),
    (5, 2, 144, 40),
    (5, 1, 240, 40),
    (3, 2, 240, 80),
    (3, 1, 480, 80),
    (3, 1, 480, 80),
    (5, 1, 480, 112),
    (5, 1, 672, 112),
    (5, 1, 672, 112),
    (5, 2, 672, 192),
    (5, 1, 1152, 192),
    (5, 1, 1152, 192),
    (5, 1, 1152, 192),
)
LITE_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (3, 1, 24, 16),
    (3, 2, 64, 16),  # keeps its width at stride 2: the shortcut is max-pooled
    (3, 1, 96, 16),
    (5, 2, 96, 24),
    (5, 1, 144, 24),
    (3, 2, 144, 48),
    (3, 1, 288, 48),
    (3, 1, 288, 48),
    (5, 1, 288, 64),
    (5, 1, 384, 64),
    (5, 1, 384, 64),
    (5, 2, 384, 112),
    (5, 1, 672, 112),
    (5, 1, 672, 112),
    (5, 1, 672, 112),
)


@dataclass(frozen=True)
class HandLandmarkConfig:
    """The official full model by default; `lite()` gives the lite one (narrower, with a max-pool)."""

    image_size: int = 224
    stem_width: int = 24
    blocks: tuple[tuple[int, int, int, int], ...] = FULL_BLOCKS
    head_width: int = 1152  # the last expansion, pooled into the fully connected heads
    head_kernel: int = 3
    num_landmarks: int = NUM_LANDMARKS

    @classmethod
    def lite(cls) -> HandLandmarkConfig:
        return cls(blocks=LITE_BLOCKS, head_width=672)


class InvertedResidual(nn.Module):
    """1x1 expansion + ReLU6 (skipped without expansion), depthwise + ReLU6, linear 1x1 projection. A
    block that keeps its width adds its input, max-pooled 2x2 when the block strides."""

    def __init__(self, in_width: int, kernel_size: int, stride: int, hidden: int, out_width: int) -> None:
        super().__init__()
        self.stride = stride
        self.residual = in_width == out_width
        self.expand = SameConv2d(in_width, hidden, 1, relu6=True) if hidden != in_width else None
        self.depthwise = SameConv2d(hidden, hidden, kernel_size, stride, groups=hidden, relu6=True)
        self.project = SameConv2d(hidden, out_width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.expand(x) if self.expand is not None else x
        h = self.project(self.depthwise(h))
        if not self.residual:
            return h
        return h + (F.max_pool2d(x, 2) if self.stride == 2 else x)


class HandLandmarkModel(nn.Module):
    """(N, 3, 224, 224) RGB in [0, 1] -> (N, 128) landmarks, presence, handedness, world landmarks."""

    def __init__(self, config: HandLandmarkConfig = HandLandmarkConfig()) -> None:
        super().__init__()
        self.config = config
        self.stem = SameConv2d(3, config.stem_width, 3, stride=2, relu6=True)
        blocks, width = [], config.stem_width
        for kernel, stride, hidden, out_width in config.blocks:
            blocks.append(InvertedResidual(width, kernel, stride, hidden, out_width))
            width = out_width
        self.blocks = nn.Sequential(*blocks)
        head = config.head_width
        self.head_expand = SameConv2d(width, head, 1, relu6=True)
        self.head_depthwise = SameConv2d(head, head, config.head_kernel, groups=head, relu6=True)
        coords = config.num_landmarks * 3
        self.handedness = nn.Linear(head, 1)
        self.presence = nn.Linear(head, 1)
        self.landmarks = nn.Linear(head, coords)
        self.world_landmarks = nn.Linear(head, coords)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        size = self.config.image_size
        if image.dim() != 4 or tuple(image.shape[1:]) != (3, size, size):
            raise ValueError(f"hand landmark input must be (N, 3, {size}, {size}), got {tuple(image.shape)}")
        x = self.blocks(self.stem(image))
        x = self.head_depthwise(self.head_expand(x)).mean(dim=(2, 3))
        presence, handedness = torch.sigmoid(self.presence(x)), torch.sigmoid(self.handedness(x))
        return torch.cat([self.landmarks(x), presence, handedness, self.world_landmarks(x)], dim=1)
