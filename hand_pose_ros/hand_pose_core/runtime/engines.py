"""One inference interface over three runtimes: `engine.infer(batch)` -> the model's output in real units:
wrist-relative joints in metres for POTTER and the lifter, packed detections for the detector.

`batch` is the model's normalised input as numpy: POTTER crops or detector frames (N, 3, S, S), or for
the lifter a tuple (keypoints (N, 21, 2), valid (N, 21) bool), exactly what the datasets produce.
Backends:

- `torch`: the checkpoint in PyTorch eager (CUDA when present);
- `onnxruntime`: an exported ONNX file, CPU (or CUDA with onnxruntime-gpu);
- `tensorrt`: an engine built from the ONNX file and cached (see `hand_pose_core.runtime.tensorrt`).

`load_engine(path, "auto")` picks the fastest backend that can run the file and logs which and why.
torch is imported only when a torch or TensorRT engine is made (or TensorRT is installed and asked
about), so a node that runs ONNX models with ONNX Runtime never loads it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from hand_pose_core.errors import InputError
from hand_pose_core.runtime.base import ENGINE_SUFFIX, ONNX_SUFFIX, Engine, export_command, read_onnx_card
from hand_pose_core.runtime.tensorrt import tensorrt_unavailable

LOG = logging.getLogger(__name__)
BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")


def onnxruntime_providers() -> list[str]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class OnnxRuntimeEngine(Engine):
    """ONNX Runtime with every graph optimisation, one inference thread per core and no spinning
    threads between frames (they would steal the CPU from the rest of the robot)."""

    backend = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such ONNX model; make it with: {export_command(path)}")
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=onnxruntime_providers())
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                f"{path}: not a readable ONNX model (truncated or corrupt?): {first_line}; "
                f"make it again with: {export_command(path)}"
            ) from None
        super().__init__(read_onnx_card(path, self.session.get_modelmeta().custom_metadata_map))
        self.path, self.threads = path, options.intra_op_num_threads

    def _run(self, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        feeds = dict(zip(self.card.input_names, inputs, strict=True))
        return self.session.run(None, feeds)[0]


def choose_backend(path: Path, backend: str = "auto") -> tuple[str, str]:
    """The backend for a model file and why: TensorRT for ONNX files when CUDA and TensorRT are usable,
    else ONNX Runtime; checkpoints run in PyTorch."""
    if backend not in BACKENDS:
        raise InputError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    path = Path(path)
    suffix = path.suffix
    if suffix == ENGINE_SUFFIX:
        if backend not in ("auto", "tensorrt"):
            raise InputError(f"{path}: a TensorRT engine runs only with the tensorrt backend")
        return "tensorrt", "a TensorRT engine file"
    if suffix != ONNX_SUFFIX:
        if backend not in ("auto", "torch"):
            target = path.with_suffix(ENGINE_SUFFIX if backend == "tensorrt" else ONNX_SUFFIX)
            command = export_command(target, "tensorrt" if backend == "tensorrt" else "onnx", path)
            raise InputError(f"{path}: a PyTorch checkpoint; for {backend}, export it first: {command}")
        return "torch", "a PyTorch checkpoint (export it to ONNX for ONNX Runtime or TensorRT)"
    if backend == "torch":
        raise InputError(f"{path}: an ONNX file; the torch backend runs checkpoints")
    if backend != "auto":
        return backend, "asked for"
    missing = tensorrt_unavailable()
    if missing is None:
        return "tensorrt", "CUDA and TensorRT are usable"
    return "onnxruntime", f"TensorRT not used: {missing}"


def load_engine(
    path: Path,
    backend: str = "auto",
    *,
    threads: int | None = None,
    max_batch: int = 2,
    rebuild: bool = False,
    engine_cache: Path | None = None,
) -> Engine:
    """An engine for a checkpoint, an ONNX file or a TensorRT engine; `auto` logs its choice and why.
    TensorRT engines built from ONNX files are cached in `engine_cache` (None: beside the ONNX file)."""
    path = Path(path)
    chosen, why = choose_backend(path, backend)
    LOG.info("%s: %s backend (%s)", path, chosen, why)
    if chosen == "torch":
        from hand_pose_core.models.checkpoints import load_checkpoint
        from hand_pose_core.runtime.torch_engine import TorchEngine, pick_device

        loaded = load_checkpoint(path)
        loaded.model.to(pick_device())
        return TorchEngine(loaded)
    if chosen == "onnxruntime":
        return OnnxRuntimeEngine(path, threads)
    from hand_pose_core.runtime.tensorrt import engine_for

    return engine_for(path, max_batch=max_batch, rebuild=rebuild, cache_dir=engine_cache)
