"""TensorFlow-style convolution for the MediaPipe re-implementations: SAME padding and a fused ReLU6.

TFLite pads a stride-2 SAME convolution of an even-sized input one row and column more at the bottom
and right than at the top and left. A symmetric `padding=` cannot do that, and getting it wrong shifts
every feature by half a pixel, so the padding is explicit here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SameConv2d(nn.Conv2d):
    """`nn.Conv2d` with TensorFlow's SAME padding (for input sizes divisible by the stride, as in the
    MediaPipe models) and optionally the ReLU6 that TFLite fuses into the convolution."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        relu6: bool = False,
    ) -> None:
        total = max(kernel_size - stride, 0)  # SAME's padding when the size is a multiple of the stride
        before, after = total // 2, total - total // 2
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=before if before == after else 0,
            groups=groups,
        )
        self.pad_before, self.pad_after = before, after
        self.explicit_padding = before != after
        self.relu6 = relu6

    @property
    def depthwise(self) -> bool:
        return self.groups == self.in_channels == self.out_channels and self.groups > 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.explicit_padding:
            x = F.pad(x, (self.pad_before, self.pad_after, self.pad_before, self.pad_after))
        x = super().forward(x)
        return F.relu6(x) if self.relu6 else x
