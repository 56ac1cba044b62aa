"""Building blocks shared by the models (in the manner of timm's layers): norms, stochastic depth,
the channel MLP, TensorFlow's SAME convolution, and `fuse_modules`, which swaps every module that has an
inference form for it."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with a single group: LayerNorm over (C, H, W) that keeps the channels-first layout."""
    return nn.GroupNorm(1, channels)


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample, rescaling the kept ones."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class Mlp(nn.Module):
    """Channel MLP as two 1x1 convs (keeps the (B, C, H, W) layout)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        x = self.drop(self.act(self.fc1(x)))
        return self.drop(self.fc2(x))


def linear_drop_paths(rate: float, count: int) -> list[float]:
    """Stochastic depth growing linearly from 0 to `rate` over `count` blocks (the PoolFormer rule)."""
    if count <= 1:
        return [0.0] * count
    return [rate * i / (count - 1) for i in range(count)]


class Standardize(nn.Module):
    """GroupNorm with one group and no affine, written so that ONNX gets one InstanceNormalization
    rather than one followed by a multiply and an add."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return F.instance_norm(x.reshape(x.shape[0], 1, -1), eps=self.eps).reshape(x.shape)


class PReLU(nn.PReLU):
    """`nn.PReLU` whose inference form is relu(x) + slope * min(x, 0): the same numbers to the last bit
    (one of the two terms is always 0), which ONNX Runtime runs in its fast layout (a PRelu operator
    takes 29 % of the palm detector's time there)."""

    def fuse(self) -> SplitPReLU:
        return SplitPReLU(self.weight.detach().clone())


class SplitPReLU(nn.Module):
    def __init__(self, slope: Tensor) -> None:
        super().__init__()
        self.register_buffer("slope", slope.reshape(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x) + self.slope * torch.clamp(x, max=0.0)


def fuse_modules(model: nn.Module) -> nn.Module:
    """An inference copy of `model`: each sub-module with a `fuse()` method replaced by what it returns
    (the same function with fewer passes over the data). The original is left as it is."""
    fused = copy.deepcopy(model).eval()
    for parent in list(fused.modules()):
        for name, child in list(parent.named_children()):
            fuse = getattr(child, "fuse", None)
            if callable(fuse):
                setattr(parent, name, fuse())
    return fused


class SameConv2d(nn.Conv2d):
    """`nn.Conv2d` with TensorFlow's SAME padding (for input sizes divisible by the stride, as in the
    MediaPipe models) and optionally the ReLU6 that TFLite fuses into the convolution.

    TFLite pads a stride-2 SAME convolution of an even-sized input one row and column more at the bottom
    and right than at the top and left. A symmetric `padding=` cannot do that, and getting it wrong shifts
    every feature by half a pixel, so the padding is explicit here."""

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
