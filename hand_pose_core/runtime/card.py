"""The model card an exported model carries, so that an ONNX file or a TensorRT engine is usable alone:
the model kind, its configuration, the normalisation it was trained with and its precision."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from hand_pose_core.models import LoadedModel, config_dict
from hand_pose_core.normalization import JointNormalizer, KeypointNormalizer
from hand_pose_core.skeleton import NUM_JOINTS

# Names of the graph inputs, in the order the model's forward takes them, and of the output.
INPUT_NAMES = {"potter": ("image",), "lifter": ("keypoints", "valid")}
OUTPUT_NAME = "joints"
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ModelCard:
    name: str
    config: dict[str, Any]
    targets: JointNormalizer
    inputs: KeypointNormalizer | None = None
    official: bool = False
    precision: str = "fp32"

    @classmethod
    def of(cls, loaded: LoadedModel, precision: str = "fp32") -> ModelCard:
        return cls(
            loaded.name,
            config_dict(loaded.model.config),
            loaded.targets,
            loaded.inputs,
            loaded.official,
            precision,
        )

    @property
    def input_size(self) -> int | None:
        """The crop size of a POTTER model (None for the lifter)."""
        return self.config.get("image_size") if self.name == "potter" else None

    @property
    def input_names(self) -> tuple[str, ...]:
        return INPUT_NAMES[self.name]

    def to_json(self) -> str:
        return json.dumps(
            {
                "model": self.name,
                "config": self.config,
                "targets": self.targets.to_dict(),
                "inputs": self.inputs.to_dict() if self.inputs is not None else None,
                "official": self.official,
                "precision": self.precision,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        data = json.loads(text)
        inputs = KeypointNormalizer.from_dict(data["inputs"]) if data.get("inputs") else None
        return cls(
            data["model"],
            dict(data["config"]),
            JointNormalizer.from_dict(data["targets"]),
            inputs,
            bool(data.get("official", False)),
            data.get("precision", "fp32"),
        )


def sample_batch(card: ModelCard, batch: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Fixed inputs of the model's shapes for parity checks and benchmarks: ImageNet-normalised-like
    noise for POTTER; normalised keypoints with about one joint in ten missing for the lifter."""
    rng = np.random.default_rng(seed)
    if card.name == "potter":
        size = card.input_size
        return (rng.standard_normal((batch, 3, size, size)).astype(np.float32),)
    keypoints = rng.standard_normal((batch, NUM_JOINTS, 2)).astype(np.float32)
    return keypoints, rng.random((batch, NUM_JOINTS)) > 0.1
