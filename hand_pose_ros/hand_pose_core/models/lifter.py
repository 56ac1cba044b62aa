"""2D-to-3D lifting transformer: 21 2D keypoints (pixels) -> 21 wrist-relative 3D joints.

The reference size (35,107 parameters): a joint embedding Linear(2 -> 32) plus a learned positional
embedding, 4 pre-norm blocks (multi-head self-attention with 8 heads, MLP 32 -> 64 -> 32), and a
LayerNorm + Linear(32 -> 3) head. Unlike the reference, joints without a 2D keypoint are removed from
attention as keys, so they cannot leak into valid joints; they still receive a prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LifterConfig:
    num_joints: int = 21
    dim: int = 32
    depth: int = 4
    heads: int = 8
    mlp_dim: int = 64
    dropout: float = 0.0


class LifterBlock(nn.Module):
    """Pre-norm transformer block over joints."""

    def __init__(self, config: LifterConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.dim)
        self.attn = nn.MultiheadAttention(config.dim, config.heads, dropout=config.dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(config.dim)
        self.mlp = nn.Sequential(
            nn.Linear(config.dim, config.mlp_dim),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.mlp_dim, config.dim),
            nn.Dropout(config.dropout),
        )

    def forward(self, x: torch.Tensor, ignore: torch.Tensor) -> torch.Tensor:
        # x: (N, J, dim); ignore: (N, J) True for joints that must not be attended to
        h = self.norm1(x)
        x = x + self.attn(h, h, h, key_padding_mask=ignore, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class PoseLifter(nn.Module):
    def __init__(self, config: LifterConfig = LifterConfig()) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Linear(2, config.dim)
        self.position = nn.Parameter(torch.zeros(1, config.num_joints, config.dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(LifterBlock(config) for _ in range(config.depth))
        self.head = nn.Sequential(nn.LayerNorm(config.dim), nn.Linear(config.dim, 3))

    def forward(self, keypoints: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """keypoints (N, J, 2) normalised pixels, valid (N, J) bool -> (N, J, 3) normalised joints."""
        x = self.embed(keypoints.masked_fill(~valid[..., None], 0.0)) + self.position  # (N, J, dim)
        # A hand with no valid keypoint attends to all joints rather than to none (which gives NaN).
        ignore = ~valid & valid.any(dim=1, keepdim=True)
        for block in self.blocks:
            x = block(x, ignore)
        return self.head(x)
