"""One inference interface over three runtimes: `engine.infer(batch)` -> the model's output in real units:
wrist-relative joints in metres for POTTER and the lifter, packed detections for the detector.

`batch` is the model's normalised input as numpy: POTTER crops or detector frames (N, 3, S, S), or for
the lifter a tuple (keypoints (N, 21, 2), valid (N, 21) bool), exactly what the datasets produce.
Backends:

- `torch`: the checkpoint in PyTorch eager (CUDA when present), the reference;
- `torch-cuda`: a checkpoint, or an ONNX file whose weights map back onto our module
  (`runtime.onnx_weights`), in FP16 with CUDA graphs (`hand_pose_core.runtime.torch_cuda`);
- `onnxruntime`: an exported ONNX file, CPU (or CUDA with onnxruntime-gpu);
- `tensorrt`: an engine built from the ONNX file and cached (see `hand_pose_core.runtime.tensorrt`).

`load_engine(path, "auto")` picks the fastest backend that can run the file and logs which and why: for
an ONNX file TensorRT, then ONNX Runtime's CUDA provider, then the PyTorch CUDA engine, then ONNX
Runtime on the CPU; for a checkpoint the PyTorch CUDA engine, else eager PyTorch. torch is imported
only when a torch or TensorRT engine is made, or to ask CUDA once a GPU device file is there (or
TensorRT is installed), so a node that runs ONNX models on a machine without a GPU never loads it.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
from pathlib import Path

import numpy as np

from hand_pose_core.errors import InputError
from hand_pose_core.runtime.base import ENGINE_SUFFIX, ONNX_SUFFIX, Engine, export_command, read_onnx_card
from hand_pose_core.runtime.tensorrt import tensorrt_unavailable

LOG = logging.getLogger(__name__)
BACKENDS = ("auto", "torch", "torch-cuda", "onnxruntime", "tensorrt")
TORCH_BACKENDS = ("torch", "torch-cuda")
NVIDIA_DEVICE_FILES = "/dev/nvidia[0-9]*"


def torch_cuda_unavailable() -> str | None:
    """Why torch cannot run on a GPU here, or None when it can. torch is imported only once a GPU device
    file is there."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    if not glob.glob(NVIDIA_DEVICE_FILES):
        return "no NVIDIA GPU (no /dev/nvidia0)"
    import torch

    if not torch.cuda.is_available():
        return "torch sees no CUDA device (a CPU build of torch, or a driver it cannot use)"
    return None


def onnxruntime_cuda_unavailable() -> str | None:
    """Why ONNX Runtime cannot run on a GPU here (onnxruntime-gpu's CUDA provider), or None."""
    if not glob.glob(NVIDIA_DEVICE_FILES):
        return "no NVIDIA GPU (no /dev/nvidia0)"
    if "CUDAExecutionProvider" not in onnxruntime_providers():
        return "onnxruntime has no CUDA provider (onnxruntime-gpu is not installed)"
    return None


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
    """The backend for a model file and why. ONNX files: TensorRT, then ONNX Runtime's CUDA provider,
    then the PyTorch CUDA engine, then ONNX Runtime on the CPU, the first usable; checkpoints: the
    PyTorch CUDA engine on a GPU, else eager PyTorch."""
    if backend not in BACKENDS:
        raise InputError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    path = Path(path)
    suffix = path.suffix
    if suffix == ENGINE_SUFFIX:
        if backend not in ("auto", "tensorrt"):
            raise InputError(f"{path}: a TensorRT engine runs only with the tensorrt backend")
        return "tensorrt", "a TensorRT engine file"
    if suffix != ONNX_SUFFIX:
        if backend not in ("auto", *TORCH_BACKENDS):
            target = path.with_suffix(ENGINE_SUFFIX if backend == "tensorrt" else ONNX_SUFFIX)
            command = export_command(target, "tensorrt" if backend == "tensorrt" else "onnx", path)
            raise InputError(f"{path}: a PyTorch checkpoint; for {backend}, export it first: {command}")
        if backend != "auto":
            return backend, "asked for"
        no_cuda = torch_cuda_unavailable()
        if no_cuda is None:
            return "torch-cuda", "a PyTorch checkpoint, and CUDA is usable"
        return "torch", f"a PyTorch checkpoint; torch-cuda not used: {no_cuda}"
    if backend == "torch":
        raise InputError(f"{path}: an ONNX file; the torch backend runs checkpoints (torch-cuda runs both)")
    if backend != "auto":
        return backend, "asked for"
    reasons = []
    for chosen, unavailable, why in (
        ("tensorrt", tensorrt_unavailable, "CUDA and TensorRT are usable"),
        ("onnxruntime", onnxruntime_cuda_unavailable, "onnxruntime-gpu's CUDA provider is usable"),
        ("torch-cuda", torch_cuda_unavailable, "torch's CUDA is usable (no TensorRT, no onnxruntime-gpu)"),
    ):
        missing = unavailable()
        if missing is None:
            return chosen, why + (f"; not {'; not '.join(reasons)}" if reasons else "")
        reasons.append(f"{chosen if chosen != 'onnxruntime' else 'onnxruntime cuda'}: {missing}")
    return "onnxruntime", f"on the CPU; not {'; not '.join(reasons)}"


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
    if chosen == "torch-cuda":
        return _torch_cuda_engine(path, max_batch, fall_back=backend == "auto", threads=threads)
    if chosen == "onnxruntime":
        return OnnxRuntimeEngine(path, threads)
    from hand_pose_core.runtime.tensorrt import engine_for

    return engine_for(path, max_batch=max_batch, rebuild=rebuild, cache_dir=engine_cache)


def _torch_cuda_engine(path: Path, max_batch: int, *, fall_back: bool, threads: int | None) -> Engine:
    """The PyTorch CUDA engine of a checkpoint or of an ONNX file of ours; `auto` falls back to ONNX
    Runtime for an ONNX file whose weights do not map back onto our module (POTTER's, whose exporter
    folds its norms and head into other constants)."""
    from hand_pose_core.runtime.card import ModelCard
    from hand_pose_core.runtime.torch_cuda import TorchCudaEngine

    if path.suffix != ONNX_SUFFIX:
        from hand_pose_core.models.checkpoints import inference_form, load_checkpoint

        loaded = load_checkpoint(path)
        module, card = inference_form(loaded.model), ModelCard.of(loaded)
        return TorchCudaEngine(module, card, batch_sizes=tuple(range(1, max_batch + 1)))
    from hand_pose_core.runtime.onnx_weights import module_from_onnx

    reference = OnnxRuntimeEngine(path, threads)
    try:
        module, card = module_from_onnx(path, reference)
    except InputError as exc:
        if not fall_back:
            raise
        LOG.info("%s: onnxruntime backend instead (%s)", path, exc)
        return reference
    return TorchCudaEngine(module, card, batch_sizes=tuple(range(1, max_batch + 1)))
