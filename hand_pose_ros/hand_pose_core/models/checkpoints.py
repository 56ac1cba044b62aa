"""Checkpoints of the trainable models (the POTTER hand model, the 2D-to-3D lifter and the whole-image
hand keypoint detector): building them by name, reading and writing checkpoints, ImageNet weights.

`build_model(name, **overrides)` gives the official default configuration unless overridden.
`save_checkpoint` stores the configuration and normalisation with the weights, so `load_checkpoint`
rebuilds the right model by itself; official POTTER checkpoints are recognised by their tensor names
and use the official normalisation constants.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hand_pose_core.atomic import write_atomic
from hand_pose_core.errors import InputError
from hand_pose_core.events.representations import EventRepresentation
from hand_pose_core.models.config import config_dict, config_from_dict
from hand_pose_core.models.detector import DetectorConfig, HandKeypointDetector
from hand_pose_core.models.layers import fuse_modules
from hand_pose_core.models.lifter import LifterConfig, PoseLifter
from hand_pose_core.models.normalization import JointNormalizer, KeypointNormalizer
from hand_pose_core.models.potter import PotterConfig, PotterHand

CHECKPOINT_FORMAT = "hand_pose_ros/checkpoint-1"
MODELS: dict[str, tuple[type, type[nn.Module]]] = {
    "potter": (PotterConfig, PotterHand),
    "lifter": (LifterConfig, PoseLifter),
    "detector": (DetectorConfig, HandKeypointDetector),
}
POSE_MODELS = ("potter", "lifter")  # the models that predict wrist-relative 3D joints
MAX_LISTED = 10


def build_model(name: str, **overrides: Any) -> nn.Module:
    """A new model (`potter`, `lifter` or `detector`), official defaults unless overridden."""
    if name not in MODELS:
        raise InputError(f"model {name!r}: expected one of {', '.join(MODELS)}")
    config_class, model_class = MODELS[name]
    return model_class(config_from_dict(config_class, overrides))


def inference_form(model: nn.Module) -> nn.Module:
    """The model as the engines run it: every module with an inference form in it (POTTER's blocks and
    splits, re-parameterised for speed; the same function)."""
    return fuse_modules(model)


def model_name(model: nn.Module) -> str:
    for name, (_, model_class) in MODELS.items():
        if isinstance(model, model_class):
            return name
    raise TypeError(f"{type(model).__name__} is not one of {', '.join(MODELS)}")


@dataclass
class LoadedModel:
    """A model ready for inference with the normalisation it was trained with (the detector has none)."""

    name: str
    model: nn.Module
    targets: JointNormalizer | None
    inputs: KeypointNormalizer | None = None
    official: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    mirror_left: bool = False  # trained with left hands mirrored (see hand_pose_core.geometry.crop)
    events: EventRepresentation | None = None  # the event representation it sees (None: RGB images)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def input_size(self) -> int | None:
        """The image size POTTER or the detector takes (None for the lifter)."""
        return getattr(self.model.config, "image_size", None)


def unwrap_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of a raw state dict or of a `{"state_dict": ...}` checkpoint, without `module.`."""
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError("checkpoint has no state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return dict(state)


def load_state_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load every tensor or fail listing what is missing, unexpected or of another shape."""
    expected = model.state_dict()
    problems = []
    for label, names in (
        ("missing", sorted(set(expected) - set(state))),
        ("unexpected", sorted(set(state) - set(expected))),
        ("wrong shape", sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)),
    ):
        if names:
            more = f" (and {len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else ""
            problems.append(f"{len(names)} {label}: {', '.join(names[:MAX_LISTED])}{more}")
    if problems:
        raise InputError(f"{source}: checkpoint does not fit {type(model).__name__}: {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """torch.load a checkpoint file, with an error naming the path for anything unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file")
    try:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            # Official and timm-style files pickle more than tensors; only load files you trust.
            data = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise InputError(f"{path}: not a readable checkpoint (truncated or corrupt?): {exc}") from exc
    if not isinstance(data, Mapping):
        raise InputError(f"{path}: expected a checkpoint dictionary, got {type(data).__name__}")
    return dict(data)


def save_checkpoint(
    model: nn.Module,
    path: Path,
    *,
    targets: JointNormalizer | None,
    inputs: KeypointNormalizer | None = None,
    mirror_left: bool = False,
    events: EventRepresentation | None = None,
    **meta: Any,
) -> Path:
    """Write weights, configuration, normalisation, the mirroring convention and the event representation
    (None for RGB models) atomically (`epoch`,
    `val_loss`, `optimizer_state_dict` and other metadata go in `meta`, as the official checkpoints have
    them)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": model_name(model),
        "config": config_dict(model.config),
        "state_dict": model.state_dict(),
        "targets": targets.to_dict() if targets is not None else None,
        "inputs": inputs.to_dict() if inputs is not None else None,
        "mirror_left": mirror_left,
        "events": events.to_dict() if events is not None else None,
        **meta,
    }
    return write_atomic(Path(path), lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: Path) -> LoadedModel:
    """A model ready for inference (eval mode, CPU) from one of our checkpoints or an official one."""
    return model_from_checkpoint(read_checkpoint(path), str(path))


def model_from_checkpoint(data: Mapping[str, Any], source: str) -> LoadedModel:
    """As `load_checkpoint`, from a checkpoint already read (`source` names it in errors)."""
    if data.get("format") == CHECKPOINT_FORMAT:
        config_class, model_class = MODELS[data["model"]]
        model = model_class(config_from_dict(config_class, data["config"]))
        load_state_strict(model, unwrap_state_dict(data), source)
        inputs = KeypointNormalizer.from_dict(data["inputs"]) if data.get("inputs") else None
        targets = JointNormalizer.from_dict(data["targets"]) if data.get("targets") else None
        meta = {k: v for k, v in data.items() if k not in ("state_dict", "optimizer_state_dict")}
        mirror_left = bool(data.get("mirror_left", False))
        events = EventRepresentation.from_dict(data["events"]) if data.get("events") else None
        return LoadedModel(data["model"], model.eval(), targets, inputs, False, meta, mirror_left, events)
    model = PotterHand(PotterConfig())
    try:
        state = unwrap_state_dict(data)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    load_state_strict(model, state, f"{source} (read as an official POTTER hand checkpoint)")
    meta = {k: data[k] for k in ("epoch", "val_loss") if k in data}
    return LoadedModel("potter", model.eval(), JointNormalizer.official(), None, True, meta)


def load_cls_weights(
    model: PotterHand, state_dict: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str]]:
    """Load POTTER-cls (ImageNet) weights into the basic stream of `model`, in place.

    Accepts the weights nested under a "state_dict" key and keys with a `module.` prefix (from
    DataParallel). Returns (loaded, dropped) checkpoint names, without the prefix: the classifier's
    `norm.*` and `head.*` (and anything else the basic stream lacks) are dropped. The stream's forked
    norms are loaded when present, otherwise left as they are. Raises ValueError, before changing
    anything, if a tensor has the wrong shape or one the basic stream needs is missing.
    """
    nested = state_dict.get("state_dict")
    if isinstance(nested, Mapping):
        state_dict = nested
    checkpoint = {_strip_prefix(key, "module."): torch.as_tensor(value) for key, value in state_dict.items()}
    stream = model.poolattnformer_pose.poolattn_cls
    targets = stream.state_dict()  # tensors sharing storage with the parameters

    dropped = [name for name in checkpoint if name not in targets]
    mismatched = [
        f"{name} (checkpoint {tuple(tensor.shape)}, model {tuple(targets[name].shape)})"
        for name, tensor in checkpoint.items()
        if name in targets and tensor.shape != targets[name].shape
    ]
    missing = [name for name in stream.pretrained_names() if name not in checkpoint]
    if mismatched or missing:
        problems = []
        if mismatched:
            problems.append("shape mismatch: " + ", ".join(mismatched))
        if missing:
            problems.append("missing: " + ", ".join(missing))
        raise ValueError("cannot load POTTER-cls weights into the basic stream; " + "; ".join(problems))

    loaded = [name for name in checkpoint if name in targets]
    with torch.no_grad():
        for name in loaded:
            targets[name].copy_(checkpoint[name])
    return loaded, dropped


def _strip_prefix(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name
