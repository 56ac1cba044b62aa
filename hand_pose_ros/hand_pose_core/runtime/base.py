"""What every engine shares: the `Engine` interface, the model card an exported file carries, and the
command that makes a missing model file. Imports neither torch nor any runtime library, so that a node
running ONNX models never loads torch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from hand_pose_core.errors import InputError
from hand_pose_core.runtime.card import ModelCard

MODEL_METADATA_KEY = "hand_pose_ros.model_card"
ONNX_SUFFIX, ENGINE_SUFFIX = ".onnx", ".engine"

Batch = np.ndarray | tuple[np.ndarray, ...]


def export_command(path: Path, kind: str = "onnx", checkpoint: Path | str = "CHECKPOINT") -> str:
    """The command that makes a missing or broken model file, for error messages."""
    return f"hand-pose export --checkpoint {checkpoint} --format {kind} --out {path}"


class Engine(ABC):
    """A loaded model behind one backend."""

    backend: str
    tensor_device: object | None = None  # a torch device the engine also takes inputs on (`infer_tensors`)

    def __init__(self, card: ModelCard, max_batch: int | None = None) -> None:
        self.card, self.max_batch = card, max_batch

    def infer(self, batch: Batch) -> np.ndarray:
        """Normalised inputs -> wrist-relative joints in metres, (N, 21, 3) float64; for the detector its
        packed output (N, 2, 64) (see `hand_pose_core.models.detector`), which needs no normalisation."""
        output = self.infer_normalized(batch).astype(np.float64)
        return output if self.card.targets is None else self.card.targets.denormalize(output)

    def infer_normalized(self, batch: Batch) -> np.ndarray:
        """The raw model output: (N, 21, 3) normalised as the training targets, or the detector's."""
        inputs = self._check(batch)
        step = self.max_batch or len(inputs[0])
        if len(inputs[0]) <= step:
            return self._run(inputs)
        return np.concatenate(
            [self._run(tuple(x[i : i + step] for x in inputs)) for i in range(0, len(inputs[0]), step)]
        )

    def _check(self, batch: Batch) -> tuple[np.ndarray, ...]:
        inputs = batch if isinstance(batch, tuple) else (batch,)
        names = self.card.input_names
        if len(inputs) != len(names):
            raise ValueError(
                f"{self.card.name} takes {len(names)} input(s) ({', '.join(names)}), got {len(inputs)}"
            )
        if len({len(x) for x in inputs}) != 1 or not len(inputs[0]):
            raise ValueError(f"{self.card.name}: inputs must share one non-empty batch dimension")
        return tuple(
            np.ascontiguousarray(x, dtype=bool if name == "valid" else np.float32)
            for name, x in zip(names, inputs, strict=True)
        )

    @abstractmethod
    def _run(self, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        """One batch of at most `max_batch` through the runtime -> the raw output, float32."""


def read_onnx_card(path: Path, metadata: dict[str, str]) -> ModelCard:
    if MODEL_METADATA_KEY not in metadata:
        raise InputError(
            f"{path}: an ONNX file without a hand_pose_ros model card; make it with: {export_command(path)}"
        )
    try:
        return ModelCard.from_json(metadata[MODEL_METADATA_KEY])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: unreadable model card ({exc}); make it again with: {export_command(path)}"
        ) from None
