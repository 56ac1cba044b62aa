"""ONNX export with a dynamic batch and the model card, FP16 graphs for TensorRT, static INT8
quantisation for the CPU from calibration batches, and the parity check against PyTorch after every
export. (INT8's calibration data and its accuracy cost on hands are `hand_pose_core.learn.quantization`.)"""

from __future__ import annotations

import copy
import logging
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from hand_pose_core.atomic import atomic_path, write_atomic
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
from hand_pose_core.models.checkpoints import LoadedModel, inference_form, load_checkpoint
from hand_pose_core.runtime.base import ENGINE_SUFFIX, MODEL_METADATA_KEY, ONNX_SUFFIX, Engine
from hand_pose_core.runtime.card import ModelCard, sample_batch
from hand_pose_core.runtime.engines import OnnxRuntimeEngine
from hand_pose_core.runtime.tensorrt import engine_for, record_path, tensorrt_unavailable
from hand_pose_core.runtime.torch_engine import TorchEngine

if TYPE_CHECKING:
    import onnx

LOG = logging.getLogger(__name__)
OPSET = 20  # the first with a Gelu operator, which ONNX Runtime runs as one fused kernel
DEFAULT_MAX_BATCH = 2  # both hands of a frame in one call
# What an export may change: millimetres of joint coordinates for POTTER and the lifter, pixels of the
# benchmark frame for the detector's keypoints (largest difference from PyTorch).
PARITY_TOLERANCE = {"fp32": 0.01, "fp16": 1.0}
# What INT8 quantises. POTTER's matrix products are its pooling, by small constant averaging matrices:
# cheap in FP32, and (de)quantising around them cost more than they saved. Its pixel shuffles (the
# splits) only move data, so quantising them moves bytes instead of floats and loses nothing: the
# convolution before each one already rounds to 8 bits. The lifter's matrix products are its layers.
INT8_OPERATORS = {"potter": ("Conv", "Gemm", "DepthToSpace"), "lifter": ("MatMul", "Gemm")}


class _Precision(nn.Module):
    """The model as exported: FP32 in and out, computing in FP16 when asked (a strongly typed graph,
    which TensorRT 11 requires for FP16)."""

    def __init__(self, model: nn.Module, half: bool) -> None:
        super().__init__()
        self.model, self.half = (copy.deepcopy(model).half() if half else copy.deepcopy(model)), half

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.half:
            inputs = tuple(x.half() if x.is_floating_point() else x for x in inputs)
        return self.model(*inputs).float()


def _with_tanh_gelu(model: nn.Module) -> nn.Module:
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.GELU):
                setattr(parent, name, nn.GELU(approximate="tanh"))
    return model


def export_onnx(
    loaded: LoadedModel,
    out: Path,
    *,
    fp16: bool = False,
    max_batch: int = DEFAULT_MAX_BATCH,
    tanh_gelu: bool = False,
    card: ModelCard | None = None,
    weights_fp16: bool = False,
) -> Path:
    """Write the model as one ONNX file with a dynamic batch and its model card in the metadata (the
    loaded model's, unless `card` is given). `tanh_gelu` approximates GELU (by at most 5e-4), for INT8,
    whose own error is far larger; `weights_fp16` stores the weights that are exact in float16 so."""
    import onnx

    card = card or ModelCard.of(loaded, "fp16" if fp16 else "fp32")
    example = tuple(torch.from_numpy(x) for x in sample_batch(card, 2))
    batch = torch.export.Dim("batch", min=1, max=max(max_batch, 2))
    model = inference_form(loaded.model.cpu().eval())
    wrapper = _Precision(_with_tanh_gelu(model) if tanh_gelu else model, fp16).eval()
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = Path(folder) / "model.onnx"
        torch.onnx.export(
            wrapper,
            example,
            raw,
            input_names=list(card.input_names),
            output_names=[card.output_name],
            dynamic_shapes={"inputs": tuple({0: batch} for _ in example)},
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        graph = onnx.load(raw)
    if weights_fp16:
        graph = store_weights_as_fp16(graph)
    onnx.helper.set_model_props(graph, {MODEL_METADATA_KEY: card.to_json()})
    return write_atomic(out, lambda tmp: onnx.save(graph, tmp))


def _exact_in_fp16(initializer: onnx.TensorProto, min_elements: int) -> bool:
    from onnx import TensorProto, numpy_helper

    if initializer.data_type != TensorProto.FLOAT:
        return False
    values = numpy_helper.to_array(initializer)
    round_trip = values.astype(np.float16).astype(np.float32)  # overflow and NaN never compare equal
    return values.size >= min_elements and np.array_equal(round_trip, values)


def store_weights_as_fp16(model: onnx.ModelProto, min_elements: int = 16) -> onnx.ModelProto:
    """A copy of `model` where each float32 initializer of at least `min_elements` values that float16
    represents exactly is stored as float16 plus a Cast to float32 under its original name; small ones
    (scales, shapes) stay. Weights that were float16 to begin with (MediaPipe's) all round-trip, so the
    file halves and the outputs stay identical; ONNX Runtime folds the Casts into constants when a
    session starts, so inference costs the same."""
    import onnx
    from onnx import numpy_helper

    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    graph_inputs = {i.name for i in graph.input}
    taken = {i.name for i in graph.initializer} | {o for node in graph.node for o in node.output}
    initializers, casts = [], []
    for initializer in graph.initializer:
        if not _exact_in_fp16(initializer, min_elements) or initializer.name in graph_inputs:
            initializers.append(initializer)
            continue
        halves = numpy_helper.to_array(initializer).astype(np.float16)
        half_name = f"{initializer.name}_fp16"
        while half_name in taken:
            half_name += "_"
        taken.add(half_name)
        initializers.append(numpy_helper.from_array(halves, half_name))
        casts.append(
            onnx.helper.make_node(
                "Cast", [half_name], [initializer.name], name=f"{half_name}_cast", to=onnx.TensorProto.FLOAT
            )
        )
    nodes = casts + list(graph.node)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    del graph.node[:]
    graph.node.extend(nodes)
    return result


def parity_error(engine: Engine, reference: Engine, batch: int = DEFAULT_MAX_BATCH, seed: int = 0) -> float:
    """Largest difference from the reference on fixed inputs, in the card's `output_unit`: joint
    coordinates in millimetres, detector keypoints in pixels of the benchmark frame, or raw outputs."""
    inputs = sample_batch(engine.card, batch, seed)
    difference = np.abs(engine.infer(inputs) - reference.infer(inputs))
    unit = engine.card.output_unit
    if unit == "px":
        keypoints = difference[..., 1:].reshape(*difference.shape[:-1], -1, 3)[..., :2]
        return float(keypoints.max() * BENCHMARK_CAMERA.width)
    return float(difference.max() * (1000.0 if unit == "mm" else 1.0))


def quantize_int8(fp32_onnx: Path, out: Path, calibration: Iterator[tuple[np.ndarray, ...]]) -> Path:
    """Static INT8 (QDQ, per-channel signed weights, unsigned activations) of the operators in
    `INT8_OPERATORS`, calibrated on real inputs. Depthwise convolutions stay FP32: they are cheap and
    run slower in INT8. `reduce_range` keeps the 7-bit weights that x86 CPUs without VNNI need to avoid
    overflowing their 16-bit accumulation."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(fp32_onnx)
    metadata = {p.key: p.value for p in model.metadata_props}
    card = ModelCard.from_json(metadata[MODEL_METADATA_KEY])

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = (dict(zip(card.input_names, b, strict=True)) for b in calibration if len(b[0]))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as folder:
        prepared, quantized = Path(folder) / "prepared.onnx", Path(folder) / "int8.onnx"
        quant_pre_process(str(fp32_onnx), str(prepared), skip_symbolic_shape=True)
        depthwise = [
            node.name
            for node in onnx.load(prepared).graph.node
            if node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute)
        ]
        quantize_static(
            str(prepared),
            str(quantized),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(INT8_OPERATORS[card.name]),
            nodes_to_exclude=depthwise,
        )
        result = onnx.load(quantized)
    int8_card = replace(card, precision="int8")
    onnx.helper.set_model_props(result, {**metadata, MODEL_METADATA_KEY: int8_card.to_json()})
    return write_atomic(out, lambda tmp: onnx.save(result, tmp))


def export_int8(
    loaded: LoadedModel,
    out: Path,
    calibration: Iterator[tuple[np.ndarray, ...]],
    max_batch: int = DEFAULT_MAX_BATCH,
) -> Path:
    """The CPU's INT8 model: exported with GELU in its tanh form (a cheaper kernel, about 4 % of
    POTTER's INT8 latency on 2 cores), then quantised."""
    with tempfile.TemporaryDirectory() as folder:
        source = export_onnx(loaded, Path(folder) / "fp32.onnx", max_batch=max_batch, tanh_gelu=True)
        return quantize_int8(source, out, calibration)


@dataclass
class ExportResult:
    files: list[Path]
    precision: str
    backend: str
    parity: float  # in `unit`
    unit: str
    tolerance: float | None  # None for INT8, whose cost is measured on hands instead
    mpjpe_mm: dict[str, float] = field(default_factory=dict)  # INT8: "fp32" and "int8" on validation hands


def export_model(
    checkpoint: Path,
    fmt: str,
    out: Path,
    *,
    fp16: bool = False,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> ExportResult:
    """`hand-pose export`: write the ONNX file (or the TensorRT engine and its ONNX file), then check it
    against PyTorch; a file that fails its parity check is not left behind."""
    if fmt not in ("onnx", "tensorrt"):
        raise InputError(f"format {fmt!r}: expected onnx or tensorrt")
    check_max_batch(max_batch)
    out = Path(out)
    loaded = load_checkpoint(checkpoint)
    reference = TorchEngine(loaded)
    precision = "fp16" if fp16 else "fp32"
    if fmt == "tensorrt":
        return _export_tensorrt(loaded, reference, out, fp16, max_batch)
    with atomic_path(out) as tmp:
        export_onnx(loaded, tmp, fp16=fp16, max_batch=max_batch)
        engine = OnnxRuntimeEngine(tmp)
        result = ExportResult(
            [out],
            precision,
            engine.backend,
            parity_error(engine, reference),
            engine.card.output_unit,
            PARITY_TOLERANCE[precision],
        )
        _check_parity(result, out)
    return result


def check_max_batch(max_batch: int) -> None:
    if max_batch < 1:
        raise InputError(f"--max-batch {max_batch}: must be at least 1")


def _check_parity(result: ExportResult, out: Path) -> None:
    if result.parity > result.tolerance:
        raise InputError(
            f"{out}: {result.backend} {result.precision} differs from PyTorch by {result.parity:.4f} "
            f"{result.unit} (at most {result.tolerance} {result.unit} allowed); nothing written"
        )


def _export_tensorrt(
    loaded: LoadedModel, reference: Engine, out: Path, fp16: bool, max_batch: int
) -> ExportResult:
    """The ONNX file beside the engine (X.onnx for X.engine), then the engine, checked on CUDA."""
    missing = tensorrt_unavailable()
    if missing is not None:
        raise InputError(f"{out}: cannot build a TensorRT engine here: {missing}")
    if out.suffix != ENGINE_SUFFIX:
        raise InputError(f"{out}: a TensorRT engine file must end in {ENGINE_SUFFIX}")
    onnx_path = export_onnx(loaded, out.with_suffix(ONNX_SUFFIX), fp16=fp16, max_batch=max_batch)
    engine = engine_for(onnx_path, max_batch=max_batch, rebuild=True)
    precision = "fp16" if fp16 else "fp32"
    result = ExportResult(
        [onnx_path, out],
        precision,
        engine.backend,
        parity_error(engine, reference),
        engine.card.output_unit,
        PARITY_TOLERANCE[precision],
    )
    try:
        _check_parity(result, out)
    except InputError:
        for path in (out, record_path(out)):
            path.unlink(missing_ok=True)
        raise
    return result
