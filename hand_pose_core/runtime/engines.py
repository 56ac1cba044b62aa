"""One inference interface over three runtimes: `engine.infer(batch)` -> the model's output in real units:
wrist-relative joints in metres for POTTER and the lifter, packed detections for the detector.

`batch` is the model's normalised input as numpy: POTTER crops or detector frames (N, 3, S, S), or for
the lifter a tuple (keypoints (N, 21, 2), valid (N, 21) bool), exactly what the datasets produce.
Backends:

- `torch`: the checkpoint in PyTorch eager (CUDA when present);
- `onnxruntime`: an exported ONNX file, CPU (or CUDA with onnxruntime-gpu);
- `tensorrt`: an engine built from the ONNX file and cached (see `hand_pose_core.runtime.tensorrt`).

`load_engine(path, "auto")` picks the fastest backend that can run the file and logs which and why.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch

from hand_pose_core.errors import InputError
from hand_pose_core.models import LoadedModel, load_checkpoint
from hand_pose_core.runtime.card import ModelCard

LOG = logging.getLogger(__name__)
BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
MODEL_METADATA_KEY = "hand_pose_ros.model_card"
ONNX_SUFFIX, ENGINE_SUFFIX = ".onnx", ".engine"

Batch = np.ndarray | tuple[np.ndarray, ...]


def export_command(path: Path, kind: str = "onnx", checkpoint: Path | str = "CHECKPOINT") -> str:
    """The command that makes a missing or broken model file, for error messages."""
    return f"hand-pose export --checkpoint {checkpoint} --format {kind} --out {path}"


def pick_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Engine(ABC):
    """A loaded model behind one backend."""

    backend: str

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


class TorchEngine(Engine):
    """PyTorch eager: the reference the other backends are checked and timed against."""

    backend = "torch"

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__(ModelCard.of(loaded))
        self.loaded = loaded
        loaded.model.eval()

    def _run(self, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        device = self.loaded.device
        with torch.inference_mode():
            output = self.loaded.model(*(torch.from_numpy(x).to(device) for x in inputs))
        return output.float().cpu().numpy()


def onnxruntime_providers() -> list[str]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


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
    from hand_pose_core.runtime.tensorrt import tensorrt_unavailable

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
) -> Engine:
    """An engine for a checkpoint, an ONNX file or a TensorRT engine; `auto` logs its choice and why."""
    from hand_pose_core.runtime.tensorrt import engine_for

    path = Path(path)
    chosen, why = choose_backend(path, backend)
    LOG.info("%s: %s backend (%s)", path, chosen, why)
    if chosen == "torch":
        loaded = load_checkpoint(path)
        loaded.model.to(pick_device())
        return TorchEngine(loaded)
    if chosen == "onnxruntime":
        return OnnxRuntimeEngine(path, threads)
    return engine_for(path, max_batch=max_batch, rebuild=rebuild)
