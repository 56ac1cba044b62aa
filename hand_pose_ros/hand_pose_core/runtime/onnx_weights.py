"""Our ONNX files' weights back in our PyTorch modules, so that the PyTorch CUDA engine runs the same
models as ONNX Runtime (the bundled ones have no PyTorch checkpoint beside them).

An ONNX file of ours is the inference form (`models.checkpoints.inference_form`) of one of our modules,
exported by `runtime.export`. Its weights are read back into that form by name where the exporter kept
the module's names (also under the `_fp16` name of weights stored as float16, and `<conv>.weight_bias`
for a bias folded from a BatchNorm); a convolution the exporter left without its all-zero bias gets
zeros; the rest (norm affines and transposed matrix weights the exporter renamed) are taken in file
order, each the next unnamed initializer of the parameter's size whose shape is the parameter's, its
transpose or the parameter with trailing ones. Nothing is trusted: the module must then give ONNX
Runtime's outputs on fixed inputs, or the file is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from hand_pose_core.errors import InputError
from hand_pose_core.models.checkpoints import MODELS, inference_form
from hand_pose_core.models.config import config_from_dict
from hand_pose_core.models.hand_landmarks import HandLandmarkConfig, HandLandmarkModel
from hand_pose_core.models.palm_detector import PalmDetector, PalmDetectorConfig
from hand_pose_core.runtime.base import Engine
from hand_pose_core.runtime.card import ModelCard, sample_batch

ARCHITECTURES: dict[str, tuple[type, type[nn.Module]]] = {
    **MODELS,
    "palm_detector": (PalmDetectorConfig, PalmDetector),
    "hand_landmarks": (HandLandmarkConfig, HandLandmarkModel),
}
PREFIX = "model."  # the exporter's wrapper holds the module as `model`
FOLDED_BIAS_SUFFIX = ".weight_bias"
# The largest difference from ONNX Runtime allowed, relative to the output's largest magnitude: float32
# rounding of a different kernel order, nothing more.
MAPPING_TOLERANCE = 1e-4


def _initializers(graph: object) -> dict[str, np.ndarray]:
    """Every initializer as float32 by the name the graph uses it under: a weight stored as float16
    and cast back (`export.store_weights_as_fp16`) under the cast's output name."""
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Cast" and node.input[0] in values:
            values[node.output[0]] = values.pop(node.input[0]).astype(np.float32)
    return {name: value for name, value in values.items() if value.dtype == np.float32}


def _fits(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """`value` as a tensor of `shape`: the same, its transpose (matrices), or with trailing ones."""
    if value.shape == shape or value.shape == (*shape, *(1,) * (value.ndim - len(shape))):
        return value.reshape(shape)
    if value.ndim == 2 and value.shape == shape[::-1]:
        return value.T
    return None


def _state_from_graph(graph: object, expected: dict[str, torch.Tensor], where: str) -> dict[str, np.ndarray]:
    values = _initializers(graph)
    state: dict[str, np.ndarray] = {}
    for key, tensor in expected.items():
        shape = tuple(tensor.shape)
        names = [PREFIX + key]
        if key.endswith(".bias"):
            names.append(PREFIX + key.removesuffix(".bias") + FOLDED_BIAS_SUFFIX)
        found = next((values[n] for n in names if n in values and values[n].shape == shape), None)
        if found is not None:
            state[key] = found
    biasless = {
        PREFIX + node.input[1].removeprefix(PREFIX).removesuffix(".weight") + ".bias"
        for node in graph.node
        if node.op_type == "Conv" and len(node.input) == 2
    }
    for key, tensor in expected.items():
        if key not in state and PREFIX + key in biasless:
            state[key] = np.zeros(tuple(tensor.shape), np.float32)
    unnamed = iter([value for name, value in values.items() if not name.startswith(PREFIX)])
    for key, tensor in expected.items():
        if key in state:
            continue
        shape = tuple(tensor.shape)
        for value in unnamed:
            fitted = _fits(value, shape) if value.size == tensor.numel() else None
            if fitted is not None:
                state[key] = fitted
                break
        else:
            raise InputError(
                f"{where}: no weights for {key} in the file (the exporter folded them into other constants); "
                "run it with the onnxruntime backend, or its checkpoint with torch-cuda"
            )
    return state


def module_from_onnx(path: Path, reference: Engine) -> tuple[nn.Module, ModelCard]:
    """Our PyTorch module (inference form, float32, CPU, eval) with the weights of the ONNX file that
    `reference` (ONNX Runtime) runs, and its card; InputError when the file is not one of ours or the
    module does not reproduce the reference's outputs."""
    import onnx

    path = Path(path)
    card = reference.card
    if card.name not in ARCHITECTURES or card.precision != "fp32":
        raise InputError(f"{path}: a {card.precision} {card.name} model; the PyTorch engine reads fp32 ONNX")
    config_class, module_class = ARCHITECTURES[card.name]
    module = inference_form(module_class(config_from_dict(config_class, card.config)))
    graph = onnx.load(path).graph
    state = _state_from_graph(graph, module.state_dict(), f"{path} ({card.name})")
    module.load_state_dict({k: torch.from_numpy(np.array(v, np.float32)) for k, v in state.items()})
    inputs = sample_batch(card, 2)
    with torch.inference_mode():
        ours = module(*(torch.from_numpy(x) for x in inputs)).numpy()
    theirs = reference.infer_normalized(inputs)
    error = float(np.abs(ours - theirs).max() / max(1.0, float(np.abs(theirs).max())))
    if not error <= MAPPING_TOLERANCE:
        raise InputError(
            f"{path}: its weights do not fit our {card.name} module (relative difference {error:.2g}); "
            "run it with the onnxruntime backend"
        )
    return module, card
