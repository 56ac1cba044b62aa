"""PyTorch eager: the reference the other backends are checked and timed against."""

from __future__ import annotations

import numpy as np
import torch

from hand_pose_core.models.checkpoints import LoadedModel
from hand_pose_core.runtime.base import Engine
from hand_pose_core.runtime.card import ModelCard


def pick_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TorchEngine(Engine):
    """PyTorch eager: the reference the other backends are checked and timed against."""

    backend = "torch"

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__(ModelCard.of(loaded))
        self.loaded = loaded
        loaded.model.eval()

    def _run(self, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        device = self.loaded.device
        with torch.inference_mode():
            output = self.loaded.model(*(torch.from_numpy(x).to(device) for x in inputs))
        return output.float().cpu().numpy()
