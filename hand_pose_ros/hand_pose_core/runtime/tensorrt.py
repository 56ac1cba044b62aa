"""TensorRT engines built from our ONNX files, cached (beside them, or in a cache folder such as the
node's `engine_cache_dir`), with GPU buffers from torch.

An engine only fits the ONNX graph, the GPU and the TensorRT version it was built with, so each engine
`X.engine` has a record `X.engine.json` with that key and the model card; `engine_for` rebuilds when any
part of the key differs, when the record is missing, or when asked to. Precision is the ONNX graph's:
an FP16 export (`hand-pose export --fp16`) gives a strongly typed FP16 engine, as TensorRT 10 and 11
both build it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hand_pose_core.atomic import file_sha256, write_atomic, write_json_atomic
from hand_pose_core.errors import InputError
from hand_pose_core.runtime.base import ENGINE_SUFFIX, ONNX_SUFFIX, Engine, export_command, read_onnx_card
from hand_pose_core.runtime.card import ModelCard

LOG = logging.getLogger(__name__)
RECORD_SUFFIX = ".json"
WORKSPACE_BYTES = 1 << 30


def tensorrt_unavailable() -> str | None:
    """Why TensorRT cannot run here, or None when the tensorrt package and CUDA are both usable.

    The package is looked for first, without importing anything: torch (for CUDA) is loaded only where
    TensorRT is installed."""
    if importlib.util.find_spec("tensorrt") is None:
        return "the tensorrt Python package is not installed"
    import torch

    if not torch.cuda.is_available():
        return "CUDA is not available"
    return None


@dataclass(frozen=True)
class EngineKey:
    """What an engine was built for; any difference means a rebuild."""

    onnx_sha256: str
    gpu: str
    tensorrt: str
    max_batch: int

    @classmethod
    def current(cls, onnx_path: Path, max_batch: int) -> EngineKey:
        import tensorrt
        import torch

        return cls(file_sha256(onnx_path), torch.cuda.get_device_name(), tensorrt.__version__, max_batch)


def record_path(engine_path: Path) -> Path:
    return engine_path.with_name(engine_path.name + RECORD_SUFFIX)


def read_record(engine_path: Path) -> dict | None:
    """The engine's record, or None when it is missing or unreadable."""
    try:
        record = json.loads(record_path(engine_path).read_text())
        EngineKey(**record["key"])
        ModelCard.from_json(record["card"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record


def cache_decision(engine_path: Path, key: EngineKey, force: bool = False) -> tuple[bool, str]:
    """(rebuild?, why) for the engine at `engine_path` against the key it must have."""
    if force:
        return True, "rebuild forced"
    if not engine_path.is_file():
        return True, "no cached engine"
    record = read_record(engine_path)
    if record is None:
        return True, f"no readable cache record {record_path(engine_path).name}"
    cached = EngineKey(**record["key"])
    for field, what in (
        ("onnx_sha256", "the ONNX file changed"),
        ("gpu", "built for another GPU"),
        ("tensorrt", "built with another TensorRT version"),
        ("max_batch", "built for another maximum batch"),
    ):
        if getattr(cached, field) != getattr(key, field):
            return True, f"{what} ({getattr(cached, field)} -> {getattr(key, field)})"
    return False, "cached engine matches the ONNX file, GPU and TensorRT version"


def build_engine(onnx_path: Path, engine_path: Path, key: EngineKey, card: ModelCard) -> Path:
    """Parse the ONNX file, build for batches 1..max_batch, write the engine and then its record."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(0 if strongly_typed is None else 1 << int(strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise InputError(f"{onnx_path}: TensorRT cannot parse it: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if card.precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # TF32 matmuls would break the 0.01 mm FP32 parity
    profile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        rest = tuple(tensor.shape)[1:]
        profile.set_shape(tensor.name, (1, *rest), (key.max_batch, *rest), (key.max_batch, *rest))
    config.add_optimization_profile(profile)
    LOG.info("building a TensorRT %s engine for %s on %s (takes a while)", card.precision, onnx_path, key.gpu)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise InputError(f"{onnx_path}: TensorRT could not build an engine (see its log above)")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(engine_path, lambda tmp: tmp.write_bytes(bytes(plan)))
    beside = onnx_path.resolve().parent == engine_path.resolve().parent
    write_json_atomic(
        record_path(engine_path),
        {"key": asdict(key), "card": card.to_json(), "onnx": onnx_path.name if beside else str(onnx_path)},
        indent=1,
    )
    return engine_path


def default_engine_cache() -> Path:
    """The user's cache folder for engines: installed models sit in a read-only share/ folder."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hand_pose_ros" / "engines"


def cached_engine_path(path: Path, cache_dir: Path | None) -> Path:
    """Where the engine of `path` lives: an engine file is itself; an ONNX file's engine is X.engine beside
    it, or in `cache_dir` named with the folder's hash too (two X.onnx in different folders differ)."""
    path = Path(path)
    if path.suffix != ONNX_SUFFIX or cache_dir is None:
        return path.with_suffix(ENGINE_SUFFIX)
    folder = hashlib.sha256(str(path.resolve().parent).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{path.stem}-{folder}{ENGINE_SUFFIX}"


def engine_for(
    path: Path, max_batch: int = 2, rebuild: bool = False, cache_dir: Path | None = None
) -> TensorRTEngine:
    """The engine for an ONNX file (cached beside it, or in `cache_dir`) or an engine file, rebuilt when
    stale."""
    path = Path(path)
    missing = tensorrt_unavailable()
    if missing is not None:
        raise InputError(f"{path}: TensorRT cannot run here: {missing}")
    engine_path = cached_engine_path(path, cache_dir)
    record = read_record(engine_path)
    onnx_path = (
        path if path.suffix == ONNX_SUFFIX else engine_path.parent / record["onnx"] if record else None
    )
    if onnx_path is None or not onnx_path.is_file():
        if record is None or not engine_path.is_file():
            raise InputError(
                f"{path}: no TensorRT engine and no ONNX file to build it from; make them with: "
                f"{export_command(engine_path, 'tensorrt')}"
            )
        LOG.info("%s: its ONNX file is gone; using the engine as it is", engine_path)
        return TensorRTEngine(engine_path)
    import onnx

    card = read_onnx_card(
        onnx_path, {p.key: p.value for p in onnx.load(onnx_path, load_external_data=False).metadata_props}
    )
    key = EngineKey.current(onnx_path, max_batch)
    stale, why = cache_decision(engine_path, key, rebuild)
    LOG.info("%s: %s", engine_path, f"rebuilding: {why}" if stale else why)
    if stale:
        build_engine(onnx_path, engine_path, key, card)
    return TensorRTEngine(engine_path)


class TensorRTEngine(Engine):
    """A deserialised engine run on torch's current CUDA stream, with torch tensors as its buffers."""

    backend = "tensorrt"

    def __init__(self, engine_path: Path) -> None:
        engine_path = Path(engine_path)
        record = read_record(engine_path)
        if record is None or not engine_path.is_file():
            raise InputError(
                f"{engine_path}: no TensorRT engine with its record; make it with: "
                f"{export_command(engine_path, 'tensorrt')}"
            )
        import tensorrt as trt
        import torch

        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise InputError(
                f"{engine_path}: not a loadable TensorRT engine (corrupt, or built elsewhere); make it again "
                f"with: {export_command(engine_path, 'tensorrt')}"
            )
        super().__init__(ModelCard.from_json(record["card"]), record["key"]["max_batch"])
        self.context = self.engine.create_execution_context()
        self.device = torch.device("cuda")

    def _run(self, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        import torch

        keep = []  # the device tensors must live until the copy back has finished
        for name, array in zip(self.card.input_names, inputs, strict=True):
            tensor = torch.from_numpy(array).to(self.device)
            keep.append(tensor)
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        output_name = self.card.output_name
        output = torch.empty(tuple(self.context.get_tensor_shape(output_name)), device=self.device)
        self.context.set_tensor_address(output_name, output.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError("TensorRT failed to enqueue the inference")
        return output.cpu().numpy()  # copies on the same stream, after the inference
