"""Training losses: the baseline's masked MSE on normalised joints, and the hand detector's loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hand_pose_core.geometry.skeleton import NUM_JOINTS

# The detector's loss weights: keypoint L1 is in pixels of the network input; the heatmap cross-entropy
# against a Gaussian of HEATMAP_SIGMA cells makes the keypoints converge several times faster than
# soft-argmax regression alone.
KEYPOINT_WEIGHT = 0.1
HEATMAP_SIGMA = 1.0


def masked_mse(
    prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, count: torch.Tensor | None = None
) -> torch.Tensor:
    """The baseline's loss: sum over joints of mean_xyz((p - g)^2) * valid, over the sum of valid (or
    `count`, which distributed training makes the same over every process)."""
    per_joint = ((prediction - target) ** 2).mean(dim=-1)
    return (per_joint * valid).sum() / (valid.sum() if count is None else count).clamp(min=1.0)


def gaussian_heatmaps(keypoints: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., 2) fractions -> (..., H*W) Gaussian target distributions of HEATMAP_SIGMA cells."""
    xs = (torch.arange(width, dtype=keypoints.dtype) + 0.5) / width
    ys = (torch.arange(height, dtype=keypoints.dtype) + 0.5) / height
    gx = torch.exp(-(((xs - keypoints[..., :1]) * width) ** 2) / (2 * HEATMAP_SIGMA**2))
    gy = torch.exp(-(((ys - keypoints[..., 1:]) * height) ** 2) / (2 * HEATMAP_SIGMA**2))
    target = (gy[..., :, None] * gx[..., None, :]).flatten(-2)
    return target / target.sum(dim=-1, keepdim=True).clamp(min=1e-12)


def detector_loss(
    packed: torch.Tensor, heatmaps: torch.Tensor, batch: dict[str, torch.Tensor], image_size: int
) -> torch.Tensor:
    """Presence BCE + visibility BCE (present hands) + keypoint L1 in input pixels and heatmap
    cross-entropy (visible joints of present hands)."""
    presence, keypoints, visible = batch["presence"], batch["keypoints"], batch["visible"]
    per_joint = packed[..., 1:].unflatten(-1, (NUM_JOINTS, 3))  # (N, 2, 21, 3)
    present = presence[..., None].expand_as(visible)
    weight = visible * present
    count = weight.sum().clamp(min=1.0)
    presence_loss = F.binary_cross_entropy_with_logits(packed[..., 0], presence)
    visibility_loss = (
        F.binary_cross_entropy_with_logits(per_joint[..., 2], visible, reduction="none") * present
    ).sum() / present.sum().clamp(min=1.0)
    l1 = ((per_joint[..., :2] - keypoints).abs().sum(dim=-1) * weight).sum() / count * image_size
    height, width = heatmaps.shape[-2:]
    target = gaussian_heatmaps(keypoints, height, width)
    cross_entropy = -(target * heatmaps.flatten(-2).log_softmax(dim=-1)).sum(dim=-1)
    heatmap_loss = (cross_entropy * weight).sum() / count
    return presence_loss + visibility_loss + KEYPOINT_WEIGHT * l1 + heatmap_loss
