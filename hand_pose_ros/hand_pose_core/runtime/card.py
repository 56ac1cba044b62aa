"""The model card an exported model carries, so that an ONNX file or a TensorRT engine is usable alone:
the model kind, its configuration, the normalisation and hand mirroring it was trained with, its
precision, the frame orientation it expects, and where it comes from."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hand_pose_core.events.representations import EventRepresentation
from hand_pose_core.geometry.camera import Orientation
from hand_pose_core.geometry.skeleton import NUM_JOINTS
from hand_pose_core.models.config import config_dict
from hand_pose_core.models.normalization import JointNormalizer, KeypointNormalizer

if TYPE_CHECKING:  # checkpoints import torch; a card must not
    from hand_pose_core.models.checkpoints import LoadedModel

# Names of the graph inputs, in the order the model's forward takes them, and of the output.
INPUT_NAMES = {
    "potter": ("image",),
    "lifter": ("keypoints", "valid"),
    "detector": ("image",),
    "palm_detector": ("image",),
    "hand_landmarks": ("image",),
}
OUTPUT_NAMES = {
    "potter": "joints",
    "lifter": "joints",
    "detector": "hands",
    "palm_detector": "palms",
    "hand_landmarks": "hand",
}
PRECISIONS = ("fp32", "fp16", "int8")
# MediaPipe's models take RGB pixels / 255, ours ImageNet-normalised crops.
PIXEL_INPUT_MODELS = ("palm_detector", "hand_landmarks")


@dataclass(frozen=True)
class ModelCard:
    name: str
    config: dict[str, Any]
    targets: JointNormalizer | None  # None for the detector
    inputs: KeypointNormalizer | None = None
    official: bool = False
    precision: str = "fp32"
    mirror_left: bool = False
    # The frame orientation the model was trained on (see `geometry.camera`): Ego-Exo4D's and our
    # synthetic models see Aria's sideways landscape view, MediaPipe's models see upright (portrait) frames.
    orientation: Orientation = "landscape"
    # Where a model comes from when it is not ours: origin, version, licence, input and output layout.
    about: dict[str, str] = field(default_factory=dict)
    events: EventRepresentation | None = None  # the event representation it sees (None: RGB images)

    @classmethod
    def of(cls, loaded: LoadedModel, precision: str = "fp32") -> ModelCard:
        return cls(
            loaded.name,
            config_dict(loaded.model.config),
            loaded.targets,
            loaded.inputs,
            loaded.official,
            precision,
            loaded.mirror_left,
            events=loaded.events,
        )

    @property
    def input_size(self) -> int | None:
        """The image size POTTER or the detector takes (None for the lifter)."""
        return self.config.get("image_size")

    @property
    def input_channels(self) -> int:
        """Channels of POTTER's or the detector's input: RGB's 3, or the event representation's."""
        return self.events.channels if self.events is not None else 3

    @property
    def input_names(self) -> tuple[str, ...]:
        return INPUT_NAMES[self.name]

    @property
    def output_name(self) -> str:
        return OUTPUT_NAMES[self.name]

    @property
    def output_unit(self) -> str:
        """What export parity is measured in: joint millimetres, detector keypoint pixels, or the raw
        outputs of MediaPipe's models."""
        if self.targets is not None:
            return "mm"
        return "px" if self.name == "detector" else "raw"

    def to_json(self) -> str:
        return json.dumps(
            {
                "model": self.name,
                "config": self.config,
                "targets": self.targets.to_dict() if self.targets is not None else None,
                "inputs": self.inputs.to_dict() if self.inputs is not None else None,
                "official": self.official,
                "precision": self.precision,
                "mirror_left": self.mirror_left,
                "orientation": self.orientation,
                "about": self.about,
                "events": self.events.to_dict() if self.events is not None else None,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        data = json.loads(text)
        inputs = KeypointNormalizer.from_dict(data["inputs"]) if data.get("inputs") else None
        return cls(
            data["model"],
            dict(data["config"]),
            JointNormalizer.from_dict(data["targets"]) if data.get("targets") else None,
            inputs,
            bool(data.get("official", False)),
            data.get("precision", "fp32"),
            bool(data.get("mirror_left", False)),
            data.get("orientation", "landscape"),
            dict(data.get("about", {})),
            EventRepresentation.from_dict(data["events"]) if data.get("events") else None,
        )


def sample_batch(card: ModelCard, batch: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Fixed inputs of the model's shapes for parity checks and benchmarks: ImageNet-normalised-like
    noise for POTTER and the detector (with the event representation's channels for event models),
    pixels/255 for MediaPipe's models; normalised keypoints with about one joint in ten missing for the
    lifter."""
    rng = np.random.default_rng(seed)
    if card.name in PIXEL_INPUT_MODELS:
        size = card.input_size
        return (rng.random((batch, 3, size, size)).astype(np.float32),)
    if card.name != "lifter":
        size = card.input_size
        return (rng.standard_normal((batch, card.input_channels, size, size)).astype(np.float32),)
    keypoints = rng.standard_normal((batch, NUM_JOINTS, 2)).astype(np.float32)
    return keypoints, rng.random((batch, NUM_JOINTS)) > 0.1
