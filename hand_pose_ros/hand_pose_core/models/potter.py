"""POTTER hand model: pooling-attention transformer with a high-resolution stream and a 3D heatmap head.

The Ego-Exo4D hand ego-pose baseline. A POTTER-cls S12 "basic stream" gives four feature maps at
strides 4/8/16/32; a "high-resolution stream" splits (upsamples) the coarse maps back to stride 4 and
refines them with further pooling-attention blocks; a head turns the stride-4 feature into a volume of
per-joint scores with one depth bin per feature row, sums it to x/y/z marginals and regresses the
normalised wrist-relative 3D joints with a small MLP.

Module and parameter names follow the public reference so that an official checkpoint loads with
`strict=True` (416 tensors, 14,572,363 parameters, no buffers, at the default configuration).
`fuse()` on the blocks and splits gives their inference forms (`models.layers.fuse_modules` swaps them
in): the same function with fewer passes over the feature maps, for export.

Input: (N, 3, S, S) ImageNet-normalised RGB crops, S = `config.image_size`.
Output: (N, num_joints, 3), the raw normalised joints (no softmax, no soft-argmax): de-normalise with
the per-joint training statistics to get millimetres.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hand_pose_core.models.layers import (
    DropPath,
    Mlp,
    Standardize,
    group_norm,
    linear_drop_paths,
)

__all__ = ["PotterConfig", "PotterHand"]

# The embed-wise half of the pooling attention views every token's C channels as a (32, C/32) grid.
EMBED_GROUPS = 32
# Both halves pool one axis of their 2D grid to this many bins before the low-rank product.
POOL_BINS = 4


@dataclass(frozen=True)
class PotterConfig:
    """Hyper-parameters of the POTTER hand model; the defaults are the official Ego-Exo4D ones.

    `hr_depths` / `hr_mlp_ratios` are for Block1..Block3 of the high-resolution stream (the official
    code lists four values, [2, 2, 2, 4], whose first belongs to the basic stream's stage and is unused).
    Every channel count seen by the pooling-attention mixer (all of `embed_dims`) must be divisible by
    32, and `image_size` by 32 so that the split feature maps line up with the finer ones.
    """

    image_size: int = 224
    in_chans: int = 3
    embed_dims: tuple[int, ...] = (64, 128, 320, 512)
    layers: tuple[int, ...] = (2, 2, 6, 2)
    mlp_ratios: tuple[float, ...] = (4.0, 4.0, 4.0, 4.0)
    hr_depths: tuple[int, ...] = (2, 2, 4)
    hr_mlp_ratios: tuple[float, ...] = (2.0, 2.0, 4.0)
    head_channels: int = 256
    pose_hidden: int = 512
    num_joints: int = 21
    # The official configuration's DROP_RATE and DROP_PATH_RATE (potter_pose_3d_ego4d.yaml); they act in
    # train mode only, so eval outputs and the state dict do not depend on them.
    drop_rate: float = 0.1
    drop_path_rate: float = 0.1
    layer_scale_init: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("embed_dims", "layers", "mlp_ratios", "hr_depths", "hr_mlp_ratios"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name, length in (("embed_dims", 4), ("layers", 4), ("mlp_ratios", 4)):
            if len(getattr(self, name)) != length:
                raise ValueError(
                    f"PotterConfig.{name} needs {length} values (one per stage), got {getattr(self, name)}"
                )
        for name in ("hr_depths", "hr_mlp_ratios"):
            if len(getattr(self, name)) != 3:
                raise ValueError(
                    f"PotterConfig.{name} needs 3 values (Block1..Block3), got {getattr(self, name)}"
                )
        bad = [d for d in self.embed_dims if d <= 0 or d % EMBED_GROUPS]
        if bad:
            raise ValueError(
                f"PotterConfig.embed_dims {self.embed_dims}: pooling attention needs every channel count "
                f"to be a positive multiple of {EMBED_GROUPS}; not: {bad}"
            )
        if any(n < 0 for n in (*self.layers, *self.hr_depths)):
            raise ValueError(
                f"PotterConfig: negative block count in layers={self.layers} / hr_depths={self.hr_depths}"
            )
        if any(r <= 0 for r in (*self.mlp_ratios, *self.hr_mlp_ratios)):
            raise ValueError("PotterConfig: mlp ratios must be positive")
        if self.image_size <= 0 or self.image_size % 32:
            raise ValueError(
                f"PotterConfig.image_size must be a positive multiple of 32, got {self.image_size}"
            )
        for name in ("in_chans", "head_channels", "pose_hidden", "num_joints"):
            if getattr(self, name) <= 0:
                raise ValueError(f"PotterConfig.{name} must be positive, got {getattr(self, name)}")
        for name in ("drop_rate", "drop_path_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"PotterConfig.{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def feature_size(self) -> int:
        """Side of the high-resolution (stride 4) feature map."""
        return self.image_size // 4

    @property
    def depth_bins(self) -> int:
        """Depth bins of the joint volume: the head assumes a cube, so equal to `feature_size`."""
        return self.image_size // 4

    @classmethod
    def tiny(cls) -> PotterConfig:
        """A narrow, shallow 64x64 model (16 depth bins) for CPU demos and tests.

        Same topology as the official model, so every module kind is exercised: 0.8 M parameters
        (official: 14.6 M), about 190 samples/s training on a 2-core CPU. No dropout or stochastic depth:
        the bundled small model's recipe (docs/training.md) was measured without them.
        """
        return cls(
            image_size=64,
            embed_dims=(32, 64, 96, 128),
            layers=(1, 1, 1, 1),
            mlp_ratios=(4.0, 4.0, 4.0, 4.0),
            hr_depths=(1, 1, 1),
            hr_mlp_ratios=(2.0, 2.0, 2.0),
            head_channels=64,
            pose_hidden=128,
            drop_rate=0.0,
            drop_path_rate=0.0,
        )


DEFAULT_CONFIG = PotterConfig()


# ---------------------------------------------------------------------------------------------------
# Building blocks


class PatchEmbed(nn.Module):
    """Strided conv that changes resolution and width (stem 7x7/4, between stages 3x3/2)."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, out_chans, kernel_size, stride, padding)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class PatchSplit(nn.Module):
    """The inverse of a patch merge: nearest 2x upsample, 3x3 conv to fewer channels, optional norm."""

    def __init__(self, in_chans: int, out_chans: int, norm: bool) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, out_chans, kernel_size=3, stride=1, padding=1)
        self.norm = group_norm(out_chans) if norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # (B, Cin, 2H, 2W)
        return self.norm(self.proj(x))

    def fuse(self) -> SubPixelSplit:
        """The inference form: the same function as a sub-pixel convolution."""
        return SubPixelSplit(self)


def _pool_bins(size: int, bins: int) -> list[tuple[int, int]]:
    """[start, end) of each bin of `adaptive_avg_pool` over an axis: [floor(k*size/bins),
    ceil((k+1)*size/bins)), as PyTorch computes them (bins overlap, or repeat when size < bins)."""
    return [((k * size) // bins, -(-((k + 1) * size) // bins)) for k in range(bins)]


def _averaging_matrix(size: int, columns: tuple[tuple[tuple[int, int], ...], ...]) -> Tensor:
    """(size, len(columns)) matrix whose column j adds up the averages over the bins in columns[j].

    As a matmul the pooling needs no transposed copies and has a cheap backward. Cached in eager
    mode; built afresh while exporting or compiling, whose fake tensors must not outlive the trace.
    """
    if torch.compiler.is_compiling():
        return _build_averaging_matrix(size, columns)
    return _cached_averaging_matrix(size, columns)


def _build_averaging_matrix(size: int, columns: tuple[tuple[tuple[int, int], ...], ...]) -> Tensor:
    """`_averaging_matrix`, uncached. Always a normal tensor: one made under `torch.inference_mode`
    and cached would break any later forward that autograd records."""
    with torch.inference_mode(False):
        matrix = torch.zeros(size, len(columns))
        for j, bins in enumerate(columns):
            for start, end in bins:
                matrix[start:end, j] += 1.0 / (end - start)
    return matrix


_cached_averaging_matrix = functools.lru_cache(maxsize=64)(_build_averaging_matrix)


def _avg_pool_matrix(size: int) -> Tensor:
    """(size, 4): adaptive average pooling of one axis to 4 bins, one bin per column."""
    return _averaging_matrix(size, tuple((b,) for b in _pool_bins(size, POOL_BINS)))


def _embed_pool_matrices(s: int) -> tuple[Tensor, Tensor]:
    """The embed-wise poolings of a token's (32, s) channel grid: over s, (s, U), and over the 32
    rows, (U, 32), for a sum of U outer products.

    Pooling s < 4 columns into 4 bins repeats bins. The outer products of a repeated bin are merged
    into one by adding up their row poolings, so U is the number of distinct bins (2 for the 64
    channels of the high-resolution stream, where the feature maps are largest).
    """
    column_bins = _pool_bins(s, POOL_BINS)
    row_bins = _pool_bins(EMBED_GROUPS, POOL_BINS)
    distinct = list(dict.fromkeys(column_bins))
    pool_s = _averaging_matrix(s, tuple((b,) for b in distinct))
    merged_rows = tuple(
        tuple(row for row, column in zip(row_bins, column_bins, strict=True) if column == b) for b in distinct
    )
    return pool_s, _averaging_matrix(EMBED_GROUPS, merged_rows).t()


class PoolingAttention(nn.Module):
    """POTTER's "PAT" token mixer: two low-rank, pooled stand-ins for attention, linear in H*W.

    Patch-wise: a (H, 4) and a (4, W) pooled summary of every channel multiply to an (H, W) map that
    mixes information across rows and columns. Embed-wise: the same trick on each token's channels
    viewed as a (32, C/32) grid. Both are smoothed by depthwise 3x3 convs and fused.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim % EMBED_GROUPS:
            raise ValueError(f"PoolingAttention needs channels divisible by {EMBED_GROUPS}, got {dim}")
        self.norm = group_norm(dim)
        self.proj0 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.proj1 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.proj2 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        pool_w = _avg_pool_matrix(w).to(x)  # (W, 4)
        pool_h = _avg_pool_matrix(h).to(x)  # (H, 4)
        # Patch-wise: pool W -> (B, C, H, 4), pool H -> (B, C, 4, W); product (B, C, H, W).
        rows = x @ pool_w
        cols = pool_h.t() @ x
        patch = self.proj0(rows @ cols)

        # Embed-wise, for every token t: its channels as a (32, s) grid G_t, s = C/32; pool s -> 4 gives
        # (32, 4), pool 32 -> 4 gives (4, s), product (32, s). Kept channels-first: (B, 32, s, HW).
        s = c // EMBED_GROUPS
        grid = x.reshape(b, EMBED_GROUPS, s, h * w)
        pool_s, pool_g = (m.to(x) for m in _embed_pool_matrices(s))  # (s, U), (U, 32); U <= 4
        terms = pool_s.shape[1]
        pooled_s = pool_s.t() @ grid  # (B, 32, U, HW)
        pooled_g = (pool_g @ grid.reshape(b, EMBED_GROUPS, s * h * w)).reshape(b, terms, s, h * w)
        # (32, U) @ (U, s) per token, as a sum of U broadcast outer products -> (B, 32, s, HW).
        embed = sum(pooled_s[:, :, k : k + 1] * pooled_g[:, k : k + 1] for k in range(terms))
        embed = self.proj1(embed.reshape(b, c, h, w))
        return self.proj2(self.norm(patch + embed))


class PoolAttnBlock(nn.Module):
    """MetaFormer block with the pooling-attention mixer and per-channel layer scales.

    Layer scales start tiny (1e-5) so that every block begins close to the identity.
    """

    def __init__(
        self,
        dim: int,
        mlp_ratio: float,
        drop: float = 0.0,
        drop_path: float = 0.0,
        layer_scale_init: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm1 = group_norm(dim)
        self.token_mixer = PoolingAttention(dim)
        self.norm2 = group_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path)
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), layer_scale_init))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), layer_scale_init))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.token_mixer(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))

    def fuse(self) -> FusedPoolAttnBlock:
        """The inference form: layer scales and norm2's affine folded into convs."""
        return FusedPoolAttnBlock(self)


def _blocks(
    dim: int, depth: int, mlp_ratio: float, drop: float, drop_paths: Sequence[float], ls: float
) -> nn.Sequential:
    return nn.Sequential(*(PoolAttnBlock(dim, mlp_ratio, drop, drop_paths[i], ls) for i in range(depth)))


# ---------------------------------------------------------------------------------------------------
# Streams


class BasicStream(nn.Module):
    """POTTER-cls S12 with feature forking: `network` alternates stages (0, 2, 4, 6) and downsamplers
    (1, 3, 5); `norm{i}` normalises stage i's output. Names match the ImageNet classifier's so that its
    weights load directly; the forked norms are new.
    """

    def __init__(self, config: PotterConfig) -> None:
        super().__init__()
        dims = config.embed_dims
        self.patch_embed = PatchEmbed(config.in_chans, dims[0], kernel_size=7, stride=4, padding=2)
        drop_paths = linear_drop_paths(config.drop_path_rate, sum(config.layers))
        network: list[nn.Module] = []
        start = 0
        for i, depth in enumerate(config.layers):
            stage_paths = drop_paths[start : start + depth]
            network.append(
                _blocks(
                    dims[i],
                    depth,
                    config.mlp_ratios[i],
                    config.drop_rate,
                    stage_paths,
                    config.layer_scale_init,
                )
            )
            start += depth
            if i < len(dims) - 1:
                network.append(PatchEmbed(dims[i], dims[i + 1], kernel_size=3, stride=2, padding=1))
        self.network = nn.ModuleList(network)
        self.fork_indices = (0, 2, 4, 6)
        for i, index in enumerate(self.fork_indices):
            self.add_module(f"norm{index}", group_norm(dims[i]))

    def pretrained_names(self) -> list[str]:
        """Names (relative to this module) that the ImageNet classifier provides: all but the forked norms."""
        forked = tuple(f"norm{index}." for index in self.fork_indices)
        return [name for name in self.state_dict() if not name.startswith(forked)]

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, S, S) -> normalised features at strides 4, 8, 16, 32 (dims[0..3] channels)."""
        x = self.patch_embed(x)
        outs = []
        for index, module in enumerate(self.network):
            x = module(x)
            if index in self.fork_indices:
                outs.append(getattr(self, f"norm{index}")(x))
        return outs


class HighResolutionStream(nn.Module):
    """Brings the coarser features up to stride 4 one after another and refines the running sum.

    x1' = Block1(split(x1) + x0); x2' = Block2(split^2(x2) + x1'); x3' = Block3(split^3(x3) + x2').
    In every chain of splits all but the last (which lands on dims[0] channels) are normalised.
    Stochastic depth ramps from 0 to the full rate within each group of blocks, as the official stream
    does (one ramp per group, not one over the whole stream).
    """

    def __init__(self, config: PotterConfig) -> None:
        super().__init__()
        dims = config.embed_dims

        def blocks(i: int) -> nn.Sequential:
            paths = linear_drop_paths(config.drop_path_rate, config.hr_depths[i])
            return _blocks(
                dims[0],
                config.hr_depths[i],
                config.hr_mlp_ratios[i],
                config.drop_rate,
                paths,
                config.layer_scale_init,
            )

        def splits(level: int) -> list[PatchSplit]:
            # level 1: dims[1] -> dims[0]; level 3: dims[3] -> dims[2] -> dims[1] -> dims[0].
            return [PatchSplit(dims[k], dims[k - 1], norm=k > 1) for k in range(level, 0, -1)]

        self.patch_emb1 = splits(1)[0]
        self.Block1 = blocks(0)
        self.patch_emb2 = nn.Sequential(*splits(2))
        self.Block2 = blocks(1)
        self.patch_emb3 = nn.Sequential(*splits(3))
        self.Block3 = blocks(2)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        x0, x1, x2, x3 = features
        x = self.Block1(self.patch_emb1(x1) + x0)
        x = self.Block2(self.patch_emb2(x2) + x)
        return self.Block3(self.patch_emb3(x3) + x)  # (B, dims[0], S/4, S/4)


class PoolAttnFormerHR(nn.Module):
    """Basic stream + high-resolution stream -> the normalised stride-4 feature.

    `norm3` (over the last stage's width) exists in the reference checkpoint but is never used.
    """

    def __init__(self, config: PotterConfig) -> None:
        super().__init__()
        self.poolattn_cls = BasicStream(config)
        self.stage1 = HighResolutionStream(config)
        self.norm0 = group_norm(config.embed_dims[0])
        self.norm3 = group_norm(config.embed_dims[3])  # unused, kept for checkpoint compatibility

    def forward(self, x: Tensor) -> Tensor:
        return self.norm0(self.stage1(self.poolattn_cls(x)))


# ---------------------------------------------------------------------------------------------------
# The hand model


class PotterHand(nn.Module):
    """POTTER hand pose: image crop (N, 3, S, S) -> normalised wrist-relative joints (N, J, 3)."""

    def __init__(self, config: PotterConfig = DEFAULT_CONFIG) -> None:
        super().__init__()
        self.config = config
        j, d, c = config.num_joints, config.depth_bins, config.head_channels
        self.poolattnformer_pose = PoolAttnFormerHR(config)
        self.norm1 = group_norm(c)
        self.up_sample = nn.Sequential(nn.Conv2d(config.embed_dims[0], c, 1), nn.GELU())
        self.final_layer = nn.Conv2d(c, j * d, 1)
        # A per-voxel MLP over the joint axis (1x1x1 convs), with a per-joint GroupNorm.
        self.pose_layer = nn.Sequential(nn.Conv3d(j, j, 1), nn.GELU(), nn.GroupNorm(j, j), nn.Conv3d(j, j, 1))
        self.pose_3d_head = nn.Sequential(
            nn.Linear(3 * d, config.pose_hidden),
            nn.ReLU(),
            nn.GroupNorm(j, j),
            nn.Linear(config.pose_hidden, 3),
        )
        self._init_linear()

    def _init_linear(self) -> None:
        # Convs keep PyTorch's default init; linears get the usual transformer truncated normal.
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward_features(self, images: Tensor) -> Tensor:
        """(N, 3, S, S) -> the normalised high-resolution feature (N, dims[0], S/4, S/4)."""
        return self.poolattnformer_pose(images)

    def forward_head_reference(self, feature: Tensor) -> Tensor:
        """(N, dims[0], S/4, S/4) -> (N, J, 3), written as the reference does: the joint volume
        (N, J, D, H, W), the per-voxel MLP on it, then its x, y and z marginals into `pose_3d_head`.
        `forward_head` computes the same with far less memory traffic; this form says what it means."""
        n, _, h, w = feature.shape
        volume = self.final_layer(self.norm1(self.up_sample(feature)))
        volume = self.pose_layer(volume.reshape(n, self.config.num_joints, self.config.depth_bins, h, w))
        marginals = torch.cat((volume.sum(dim=(2, 3)), volume.sum(dim=(2, 4)), volume.sum(dim=(3, 4))), dim=2)
        return self.pose_3d_head(marginals)

    def forward_head(self, feature: Tensor) -> Tensor:
        """(N, dims[0], S/4, S/4) -> (N, J, 3), equal to `forward_head_reference`.

        Computes exactly final_layer -> reshape (N, J, D, H, W) -> pose_layer -> marginal sums ->
        pose_3d_head, but cheaper: the joint volume is the bulk of the model's memory traffic, so
        everything that can leave it does. final_layer and pose_layer[0] (both linear over channels) are
        folded into one 1x1 conv; the per-joint GroupNorm, an affine map per joint once its statistics
        are known, and pose_layer[3] (linear over joints) are applied after the sums, which they commute
        with. What stays on the volume: the conv, the GELU, the sums and the sum of squares.
        """
        n, _, h, w = feature.shape
        j, d = self.config.num_joints, self.config.depth_bins
        conv_in, act, norm, conv_out = self.pose_layer
        x = self.norm1(self.up_sample(feature))  # (N, C, H, W)
        weight, bias = self._folded_volume_conv(conv_in)
        volume = act(F.conv2d(x, weight, bias).reshape(n, j, d, h, w))  # = act(conv_in(final_layer(x)))
        # Marginals: x from the W axis, y from the H axis, z from the depth axis.
        plane = volume.sum(dim=2)  # (N, J, H, W)
        # (N, J, W) ++ (N, J, H) ++ (N, J, D) -> (N, J, W+H+D)
        sums = torch.cat((plane.sum(dim=2), plane.sum(dim=3), volume.sum(dim=(3, 4))), dim=2)
        # Voxels behind each sum: an affine term (a bias, a mean) counts once per voxel.
        counts = torch.tensor([d * h] * w + [d * w] * h + [h * w] * d, dtype=x.dtype, device=x.device)
        voxels = d * h * w
        mean = plane.sum(dim=(2, 3)) / voxels  # (N, J)
        variance = (volume * volume).sum(dim=(2, 3, 4)) / voxels - mean * mean
        scale = norm.weight * torch.rsqrt(variance + norm.eps)  # (N, J)
        marginals = scale[..., None] * (sums - mean[..., None] * counts) + norm.bias[:, None] * counts
        marginals = torch.einsum("kj,njm->nkm", conv_out.weight.reshape(j, j), marginals)
        marginals = marginals + conv_out.bias[:, None] * counts
        return self.pose_3d_head(marginals)  # (N, J, 3D) -> (N, J, 3)

    def _folded_volume_conv(self, conv_in: nn.Conv3d) -> tuple[Tensor, Tensor]:
        """Weight and bias of the 1x1 conv equal to final_layer followed by the joint-mixing conv_in."""
        j, d = self.config.num_joints, self.config.depth_bins
        c = self.final_layer.in_channels
        mix = conv_in.weight.reshape(j, j)
        weight = (mix @ self.final_layer.weight.reshape(j, d * c)).reshape(j * d, c, 1, 1)
        bias = (mix @ self.final_layer.bias.reshape(j, d) + conv_in.bias[:, None]).reshape(j * d)
        return weight, bias

    def forward(self, images: Tensor) -> Tensor:
        size = self.config.image_size
        if images.ndim != 4 or images.shape[1] != self.config.in_chans or images.shape[2:] != (size, size):
            channels = self.config.in_chans
            raise ValueError(
                f"PotterHand expects images (N, {channels}, {size}, {size}), got {tuple(images.shape)}"
            )
        return self.forward_head(self.forward_features(images))


# ---------------------------------------------------------------------------------------------------
# Inference form: the same function with fewer passes over the feature maps (for export)


def _scale_output_channels(conv: nn.Conv2d, scale: Tensor) -> None:
    conv.weight.mul_(scale[:, None, None, None])
    conv.bias.mul_(scale)


class FusedPoolAttnBlock(nn.Module):
    """A PoolAttnBlock for inference: each layer scale folded into the last conv of its branch, and
    norm2's affine into fc1 (a 1x1 conv), so neither costs a pass over the feature map."""

    def __init__(self, block: PoolAttnBlock) -> None:
        super().__init__()
        self.norm1, self.token_mixer, self.mlp = block.norm1, block.token_mixer, block.mlp
        self.norm2 = Standardize(block.norm2.eps)
        with torch.no_grad():
            _scale_output_channels(self.token_mixer.proj2, block.layer_scale_1)
            _scale_output_channels(self.mlp.fc2, block.layer_scale_2)
            fc1 = self.mlp.fc1
            fc1.bias.add_(fc1.weight.flatten(1) @ block.norm2.bias)
            fc1.weight.mul_(block.norm2.weight[None, :, None, None])

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.token_mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _collapse_taps(kernel: Tensor, dim: int, phase: int) -> Tensor:
    """3 taps along `dim` -> the 2 that a nearest-upsampled row of this phase sees on the coarse map."""
    first, middle, last = kernel.split(1, dim)
    pair = (first, middle + last) if phase == 0 else (first + middle, last)
    return torch.cat(pair, dim)


class SubPixelSplit(nn.Module):
    """A PatchSplit for inference: a 2x2 conv on the coarse map and a pixel shuffle, 4 taps per output
    pixel instead of 9.

    Fine row 2i+a of the upsampled map sees coarse rows (i-1, i, i) when a = 0 and (i, i, i+1) when
    a = 1, so the 3x3 kernel collapses to 2 taps per axis and phase. A 2x2 conv with padding 1 sees
    coarse rows (o-1, o) at output o: phase 0 at o = i, phase 1 at o = i+1. The pixel shuffle puts
    slot s of o at 2o+s; with phase 1-s in slot s, both phases land one row (and column) past their
    place, so one crop aligns them all.
    """

    def __init__(self, split: PatchSplit) -> None:
        super().__init__()
        weight = split.proj.weight.detach()  # (Cout, Cin, 3, 3)
        out_chans, in_chans = weight.shape[:2]
        slots = [
            _collapse_taps(_collapse_taps(weight, 2, 1 - row), 3, 1 - col) for row in (0, 1) for col in (0, 1)
        ]
        self.proj = nn.Conv2d(in_chans, 4 * out_chans, kernel_size=2, padding=1)
        with torch.no_grad():
            self.proj.weight.copy_(torch.stack(slots, 1).reshape(4 * out_chans, in_chans, 2, 2))
            self.proj.bias.copy_(split.proj.bias.repeat_interleave(4))
        self.norm = split.norm

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[2:]
        x = F.pixel_shuffle(self.proj(x), 2)  # (B, Cout, 2H+2, 2W+2)
        return self.norm(x[:, :, 1 : 2 * h + 1, 1 : 2 * w + 1])
