"""Reading MediaPipe Hands' official `.tflite` files: their weights into our PyTorch re-implementations
(`PalmDetector`, `HandLandmarkModel`) and their input/output tensor shapes.

The modules are built from a config and the file must fit it; no generic op-by-op interpreter, so the
architecture stays readable in `palm_detector.py` and `hand_landmarks.py`. How the layouts were found
and are verified:
- read op by op from the four official files (every operator with its tensor shapes, strides, padding
  and fused activation, through the `tflite` flatbuffer schema) and written down as the configs;
- on load, the file's convolution, depthwise, PReLU and fully connected operators, in the graph's
  order, are matched one to one with the module's layers (registered in that order): operator kind,
  stride, SAME padding where the kernel is larger than 1x1, fused activation and every weight shape must
  agree; every weight of the file must be used and every parameter filled; each head must feed the
  graph output it is packed as (the landmark model's metadata lists its outputs in a wrong order).
  Each operator's weights go to one layer, but one tensor may feed several operators: the converter
  stores identical constants once (the palm models' all-zero depthwise biases, one per width);
- `test/test_mediapipe_models.py` compares the outputs with the TFLite interpreter on real photos.

Full or lite is told from the graph: the file is fitted to each layout in turn. Weights are FLOAT16
constants fed through DEQUANTIZE ops; they are cast to float32 exactly as TFLite does.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from hand_pose_core.atomic import file_sha256
from hand_pose_core.models.hand_landmarks import HandLandmarkConfig, HandLandmarkModel
from hand_pose_core.models.layers import SameConv2d
from hand_pose_core.models.palm_detector import NUM_COORDS, PalmDetector, PalmDetectorConfig

# sha256 of the files in the mediapipe 0.10.21 wheel (MediaPipe Hands' official models)
PALM_DETECTION_FULL_SHA256 = "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54"
PALM_DETECTION_LITE_SHA256 = "e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18"
HAND_LANDMARK_FULL_SHA256 = "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3"
HAND_LANDMARK_LITE_SHA256 = "048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6"
OFFICIAL_SHA256 = {
    "palm_detection_full.tflite": PALM_DETECTION_FULL_SHA256,
    "palm_detection_lite.tflite": PALM_DETECTION_LITE_SHA256,
    "hand_landmark_full.tflite": HAND_LANDMARK_FULL_SHA256,
    "hand_landmark_lite.tflite": HAND_LANDMARK_LITE_SHA256,
}

WEIGHTED_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "PRELU", "FULLY_CONNECTED"})
PALM_OPS = frozenset(
    {
        *("CONV_2D", "DEPTHWISE_CONV_2D", "PRELU", "ADD", "MAX_POOL_2D", "PAD"),
        *("RESIZE_BILINEAR", "RESHAPE", "CONCATENATION"),
    }
)
LANDMARK_OPS = frozenset(
    {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MAX_POOL_2D", "MEAN", "LOGISTIC"}
)
# ops between a head's layer and the graph output it feeds
PASS_THROUGH_OPS = frozenset({"LOGISTIC", "RESHAPE", "CONCATENATION"})
MAX_LISTED = 10
# how reading a flatbuffer that is cut short or corrupt fails
UNREADABLE = (ValueError, IndexError, KeyError, TypeError, AttributeError, UnicodeDecodeError, struct.error)

Model = TypeVar("Model", bound=nn.Module)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Signature:
    """A model file's input and output tensors, in the interpreter's order."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def describe(self) -> str:
        def specs(items: tuple[TensorSpec, ...]) -> str:
            return ", ".join(f"{t.name}{list(t.shape)}" for t in items)

        return f"inputs {specs(self.inputs)}; outputs {specs(self.outputs)}"


@dataclass(frozen=True)
class GraphOp:
    index: int  # position in the file's operator list
    kind: str  # builtin operator name, e.g. "CONV_2D"
    inputs: tuple[int, ...]  # tensor indices, -1 for an omitted optional input
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TfliteGraph:
    """The main subgraph of a `.tflite` file, with its float weights already dequantised."""

    signature: Signature
    ops: tuple[GraphOp, ...]  # in execution order, DEQUANTIZE ops left out
    weights: dict[int, np.ndarray]  # float constants (float32) by the tensor index the ops read
    tensor_names: tuple[str, ...]
    output_indices: tuple[int, ...]


def _enum_names(enum_class: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)}


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise ValueError(f"{path}: no such TFLite file")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError(f"{path}: not a TFLite model (no TFL3 file identifier)")
    return data


def _tensor_spec(subgraph: Any, index: int) -> TensorSpec:
    tensor = subgraph.Tensors(index)
    return TensorSpec(tensor.Name().decode(), tuple(int(d) for d in tensor.ShapeAsNumpy()))


def _signature(subgraph: Any) -> Signature:
    return Signature(
        tuple(_tensor_spec(subgraph, int(i)) for i in subgraph.InputsAsNumpy()),
        tuple(_tensor_spec(subgraph, int(i)) for i in subgraph.OutputsAsNumpy()),
    )


def _parse(path: Path, read: Callable[[bytes, Any], Any]) -> Any:
    import tflite

    data = _read_bytes(Path(path))
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() != 1:
            raise ValueError(f"expected one subgraph, found {model.SubgraphsLength()}")
        return read(data, model)
    except UNREADABLE as exc:
        problem = "not a readable TFLite model (truncated, corrupt or unsupported)"
        raise ValueError(f"{path}: {problem}: {exc!r}") from exc


def read_tflite_signature(path: Path) -> Signature:
    """The input and output tensor names and shapes, so a loader can refuse a file of the wrong kind."""
    return _parse(path, lambda _, model: _signature(model.Subgraphs(0)))


def _options(op: Any, kind: str) -> dict[str, Any]:
    import tflite

    table = op.BuiltinOptions()
    if table is None:
        return {}
    padding = _enum_names(tflite.Padding)
    activation = _enum_names(tflite.ActivationFunctionType)
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        options = tflite.Conv2DOptions() if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions()
        options.Init(table.Bytes, table.Pos)
        values = {
            "stride": (options.StrideH(), options.StrideW()),
            "padding": padding[options.Padding()],
            "activation": activation[options.FusedActivationFunction()],
            "dilation": (options.DilationHFactor(), options.DilationWFactor()),
        }
        if kind == "DEPTHWISE_CONV_2D":
            values["depth_multiplier"] = options.DepthMultiplier()
        return values
    if kind == "FULLY_CONNECTED":
        options = tflite.FullyConnectedOptions()
        options.Init(table.Bytes, table.Pos)
        return {"activation": activation[options.FusedActivationFunction()]}
    if kind == "RESIZE_BILINEAR":
        options = tflite.ResizeBilinearOptions()
        options.Init(table.Bytes, table.Pos)
        return {"align_corners": options.AlignCorners(), "half_pixel_centers": options.HalfPixelCenters()}
    return {}


def _buffer_bytes(data: bytes, model: Any, buffer_index: int) -> bytes:
    buffer = model.Buffers(buffer_index)
    if buffer.Offset() > 1:  # stored after the flatbuffer (files over 2 GB)
        start, size = buffer.Offset(), buffer.Size()
        if start + size > len(data):
            raise ValueError(f"buffer {buffer_index} runs past the end of the file")
        return data[start : start + size]
    return buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""


def _constant(data: bytes, model: Any, subgraph: Any, index: int, dtype: str) -> np.ndarray:
    tensor = subgraph.Tensors(index)
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy())
    raw = _buffer_bytes(data, model, tensor.Buffer())
    values = np.frombuffer(raw, dtype=dtype)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"tensor {index} ({tensor.Name().decode()}): {values.size} values for shape {shape}")
    return values.reshape(shape).astype(np.float32)


def _read_graph(data: bytes, model: Any) -> TfliteGraph:
    import tflite

    op_names = _enum_names(tflite.BuiltinOperator)
    subgraph = model.Subgraphs(0)
    ops, weights = [], {}
    for position in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(position)
        code = model.OperatorCodes(op.OpcodeIndex())
        # codes above 127 live only in BuiltinCode, older files fill only DeprecatedBuiltinCode
        kind = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        inputs = tuple(int(i) for i in op.InputsAsNumpy())
        outputs = tuple(int(i) for i in op.OutputsAsNumpy())
        if kind == "DEQUANTIZE":
            source = subgraph.Tensors(inputs[0])
            if source.Type() != tflite.TensorType.FLOAT16:
                raise ValueError(f"operator {position} dequantises a non-float16 tensor")
            weights[outputs[0]] = _constant(data, model, subgraph, inputs[0], "<f2")
            continue
        ops.append(GraphOp(position, kind, inputs, outputs, _options(op, kind)))
    for index in range(subgraph.TensorsLength()):  # weights stored as float32 need no DEQUANTIZE
        tensor = subgraph.Tensors(index)
        if tensor.Type() == tflite.TensorType.FLOAT32 and _buffer_bytes(data, model, tensor.Buffer()):
            weights[index] = _constant(data, model, subgraph, index, "<f4")
    names = tuple(subgraph.Tensors(i).Name().decode() for i in range(subgraph.TensorsLength()))
    outputs = tuple(int(i) for i in subgraph.OutputsAsNumpy())
    return TfliteGraph(_signature(subgraph), tuple(ops), weights, names, outputs)


def read_tflite_graph(path: Path) -> TfliteGraph:
    """The operators and dequantised float weights of a `.tflite` file's main subgraph."""
    return _parse(path, _read_graph)


def _layer_weights(layer: nn.Module, op: GraphOp, graph: TfliteGraph) -> dict[str, np.ndarray]:
    """The op's weights in PyTorch layout for `layer`, after checking the op is that layer."""

    def weight(position: int) -> np.ndarray:
        index = op.inputs[position] if position < len(op.inputs) else -1
        if index not in graph.weights:
            raise ValueError(f"input {position} is not a constant float weight")
        return graph.weights[index]

    if isinstance(layer, SameConv2d):
        kind = "DEPTHWISE_CONV_2D" if layer.depthwise else "CONV_2D"
        expected = {
            "stride": tuple(layer.stride),
            "activation": "RELU6" if layer.relu6 else "NONE",
            "dilation": (1, 1),
        }
        if max(layer.kernel_size) > 1:
            expected["padding"] = "SAME"
        if layer.depthwise:
            expected["depth_multiplier"] = 1
        values = weight(1)
        if values.ndim == 4:  # TFLite depthwise 1HWO -> (O, 1, H, W); convolution OHWI -> OIHW
            values = values.transpose(3, 0, 1, 2) if layer.depthwise else values.transpose(0, 3, 1, 2)
        tensors = {"weight": values, "bias": weight(2)}
    elif isinstance(layer, nn.PReLU):
        kind, expected = "PRELU", {}
        alpha = weight(1)
        tensors = {"weight": alpha.reshape(-1) if alpha.size == alpha.shape[-1] else alpha}  # [1, 1, C]
    elif isinstance(layer, nn.Linear):
        kind, expected = "FULLY_CONNECTED", {"activation": "NONE"}
        tensors = {"weight": weight(1), "bias": weight(2)}
    else:
        raise TypeError(f"no TFLite operator for {type(layer).__name__}")
    if op.kind != kind:
        raise ValueError(f"found {op.kind}, expected {kind}")
    wrong = {k: op.options.get(k) for k, v in expected.items() if op.options.get(k) != v}
    if wrong:
        raise ValueError(f"options {wrong}, expected { {k: expected[k] for k in wrong} }")
    for name, values in tensors.items():
        parameter = getattr(layer, name)
        if parameter is None or tuple(values.shape) != tuple(parameter.shape):
            have = None if parameter is None else tuple(parameter.shape)
            raise ValueError(f"{name} of shape {tuple(values.shape)} in the file, the module has {have}")
    return tensors


def _graph_order_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    weighted = (SameConv2d, nn.PReLU, nn.Linear)
    return [(name, m) for name, m in model.named_modules() if isinstance(m, weighted)]


def _output_reached(graph: TfliteGraph, tensor: int) -> tuple[str | None, tuple[str, ...]]:
    """The graph output a layer's result flows into through pass-through ops, and those ops' kinds."""
    consumers = {i: op for op in graph.ops for i in op.inputs if op.kind in PASS_THROUGH_OPS}
    path = []
    while tensor not in graph.output_indices and tensor in consumers:
        op = consumers[tensor]
        path.append(op.kind)
        tensor = op.outputs[0]
    return (graph.tensor_names[tensor] if tensor in graph.output_indices else None), tuple(path)


def _fit(model: Model, graph: TfliteGraph, heads: Mapping[nn.Module, tuple[str, tuple[str, ...]]]) -> Model:
    """Fill every parameter of `model` from the graph, strictly, or raise ValueError saying what differs."""
    layers = _graph_order_layers(model)
    ops = [op for op in graph.ops if op.kind in WEIGHTED_OPS]
    if len(ops) != len(layers):
        raise ValueError(f"{len(ops)} weighted operators in the file, the layout has {len(layers)} layers")
    state, used = {}, set()
    for (name, layer), op in zip(layers, ops, strict=True):
        try:
            tensors = _layer_weights(layer, op, graph)
            if layer in heads:
                reached = _output_reached(graph, op.outputs[0])
                if reached != heads[layer]:
                    output, through = reached
                    raise ValueError(f"feeds output {output} through {list(through)}, not {heads[layer]}")
        except ValueError as exc:
            raise ValueError(f"operator {op.index} ({op.kind}) as layer {name}: {exc}") from None
        used.update(i for i in op.inputs[1:] if i in graph.weights)
        for key, values in tensors.items():
            state[f"{name}.{key}"] = torch.from_numpy(np.ascontiguousarray(values))
    unused = sorted(graph.tensor_names[i] for i in set(graph.weights) - used)
    if unused:
        more = f" (and {len(unused) - MAX_LISTED} more)" if len(unused) > MAX_LISTED else ""
        raise ValueError(f"{len(unused)} weights of the file unused: {', '.join(unused[:MAX_LISTED])}{more}")
    missing = sorted(set(model.state_dict()) - set(state))
    if missing:
        raise ValueError(f"parameters not in the file: {', '.join(missing[:MAX_LISTED])}")
    model.load_state_dict(state, strict=True)
    return model.eval()


def _load(
    path: Path,
    what: str,
    signature: Signature,
    allowed_ops: frozenset[str],
    layouts: Mapping[str, Callable[[], Model]],
    heads: Callable[[Model], Mapping[nn.Module, tuple[str, tuple[str, ...]]]],
    sha256: str | None,
) -> Model:
    path = Path(path)
    graph = read_tflite_graph(path)
    if graph.signature != signature:
        raise ValueError(
            f"{path}: not a {what} file: it has {graph.signature.describe()}; "
            f"a {what} has {signature.describe()}"
        )
    if sha256 is not None and (actual := file_sha256(path)) != sha256:
        raise ValueError(f"{path}: sha256 {actual} is not the expected {sha256}")
    unexpected = sorted({op.kind for op in graph.ops} - allowed_ops)
    if unexpected:
        raise ValueError(f"{path}: operators a {what} does not have: {', '.join(unexpected)}")
    half_pixel = {"align_corners": False, "half_pixel_centers": True}  # as F.interpolate(align_corners=False)
    for op in graph.ops:
        if op.kind == "RESIZE_BILINEAR" and op.options != half_pixel:
            raise ValueError(f"{path}: operator {op.index} resizes with {op.options}, expected {half_pixel}")
    problems = []
    for layout, build in layouts.items():
        model = build()
        try:
            return _fit(model, graph, heads(model))
        except ValueError as exc:
            problems.append(f"as the {layout} layout: {exc}")
    raise ValueError(f"{path}: does not fit our {what}: {'; '.join(problems)}")


def palm_detector_from_tflite(path: Path, sha256: str | None = None) -> PalmDetector:
    """Our `PalmDetector` (eval mode) with the weights of `palm_detection_{full,lite}.tflite`, the layout
    told from the graph. `sha256`, when given, must match the file (see `OFFICIAL_SHA256`)."""
    config = PalmDetectorConfig()
    size, anchors = config.image_size, config.num_anchors
    signature = Signature(
        (TensorSpec("input_1", (1, size, size, 3)),),
        (TensorSpec("Identity", (1, anchors, NUM_COORDS)), TensorSpec("Identity_1", (1, anchors, 1))),
    )

    def heads(model: PalmDetector) -> dict[nn.Module, tuple[str, tuple[str, ...]]]:
        through = ("RESHAPE", "CONCATENATION")
        return {
            layer: (output, through)
            for head in (model.head8, model.head16)
            for layer, output in ((head.score, "Identity_1"), (head.regressors, "Identity"))
        }

    layouts = {
        "full": lambda: PalmDetector(PalmDetectorConfig()),
        "lite": lambda: PalmDetector(PalmDetectorConfig.lite()),
    }
    return _load(path, "palm detector", signature, PALM_OPS, layouts, heads, sha256)


def hand_landmarks_from_tflite(path: Path, sha256: str | None = None) -> HandLandmarkModel:
    """Our `HandLandmarkModel` (eval mode) with the weights of `hand_landmark_{full,lite}.tflite`, the
    layout told from the graph. `sha256`, when given, must match the file (see `OFFICIAL_SHA256`)."""
    config = HandLandmarkConfig()
    size, coords = config.image_size, config.num_landmarks * 3
    signature = Signature(
        (TensorSpec("input_1", (1, size, size, 3)),),
        (
            TensorSpec("Identity", (1, coords)),
            TensorSpec("Identity_1", (1, 1)),
            TensorSpec("Identity_2", (1, 1)),
            TensorSpec("Identity_3", (1, coords)),
        ),
    )

    def heads(model: HandLandmarkModel) -> dict[nn.Module, tuple[str, tuple[str, ...]]]:
        return {
            model.landmarks: ("Identity", ()),
            model.presence: ("Identity_1", ("LOGISTIC",)),
            model.handedness: ("Identity_2", ("LOGISTIC",)),
            model.world_landmarks: ("Identity_3", ()),
        }

    layouts = {
        "full": lambda: HandLandmarkModel(HandLandmarkConfig()),
        "lite": lambda: HandLandmarkModel(HandLandmarkConfig.lite()),
    }
    return _load(path, "hand landmark model", signature, LANDMARK_OPS, layouts, heads, sha256)
