"""The PyTorch CUDA engine: our modules in half precision, fixed batch sizes (1 and 2 by default: both
hands of a frame in one replay) each captured once as a CUDA graph, a smaller batch padded to the next
captured size, inputs and outputs through pinned host buffers, optionally `torch.compile`d first.

Why: eager PyTorch on a GPU is bound by launching many small kernels (POTTER at batch 1 keeps the GPU
mostly idle); a graph replays them all in one launch, and half precision halves the bytes moved. The
inputs stay float32 (the engines' contract) and are cast inside the graph, so replays need no host work
beyond two copies.

The same engine runs on the CPU without graphs or pinned buffers (graphs are CUDA's), so that its
half-precision parity is tested on machines without a GPU. Inputs already on the engine's device
(`infer_tensors`, from `live.device_frames`) skip the upload.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from hand_pose_core.errors import InputError
from hand_pose_core.runtime.base import Engine
from hand_pose_core.runtime.card import ModelCard, sample_batch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
WARMUP_CALLS = 3  # before capture, on a side stream, as CUDA graphs need (cuDNN picks its kernels)


class _Computing(nn.Module):
    """The module as the engine runs it: float32 in and out, computing in `dtype`."""

    def __init__(self, module: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.module, self.dtype = module, dtype

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        cast = tuple(x.to(self.dtype) if x.is_floating_point() else x for x in inputs)
        return self.module(*cast).float()


class _Graph:
    """One batch size captured: device inputs and output that the graph reads and writes, and pinned
    host copies of them."""

    def __init__(
        self, forward: nn.Module, example: tuple[torch.Tensor, ...], pool: tuple[int, int] | None
    ) -> None:
        self.inputs = tuple(x.clone() for x in example)
        self.host_inputs = tuple(torch.empty_like(x, device="cpu").pin_memory() for x in example)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(WARMUP_CALLS):
                forward(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool), torch.inference_mode():
            self.output = forward(*self.inputs)
        self.host_output = torch.empty_like(self.output, device="cpu").pin_memory()

    def run_host(self, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        """The outputs of the first len(inputs[0]) rows (the rest of a padded batch is left as it was)."""
        count = len(inputs[0])
        for host, device, x in zip(self.host_inputs, self.inputs, inputs, strict=True):
            host.numpy()[:count] = x
            device[:count].copy_(host[:count], non_blocking=True)
        return self._replay(count)

    def run_device(self, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
        count = len(inputs[0])
        for device, x in zip(self.inputs, inputs, strict=True):
            device[:count].copy_(x)
        return self._replay(count)

    def _replay(self, count: int) -> np.ndarray:
        self.graph.replay()
        self.host_output[:count].copy_(self.output[:count], non_blocking=True)
        torch.cuda.current_stream().synchronize()
        return self.host_output[:count].numpy().copy()


class TorchCudaEngine(Engine):
    """One of our modules on a torch device, in `precision` (fp32, fp16 or bf16); on CUDA with a graph
    for each of `batch_sizes` (larger batches run in chunks of the largest), optionally compiled."""

    backend = "torch-cuda"

    def __init__(
        self,
        module: nn.Module,
        card: ModelCard,
        *,
        device: torch.device | str = "cuda",
        precision: str = "fp16",
        batch_sizes: tuple[int, ...] = (1, 2),
        compile_module: bool = False,
    ) -> None:
        if precision not in DTYPES:
            raise InputError(f"precision {precision!r}: expected one of {', '.join(DTYPES)}")
        if not batch_sizes or min(batch_sizes) < 1:
            raise InputError(f"batch sizes {batch_sizes}: need at least one, each at least 1")
        self.tensor_device = torch.device(device)
        if self.tensor_device.type == "cuda" and not torch.cuda.is_available():
            raise InputError("the torch-cuda backend needs CUDA, and torch sees no GPU here")
        super().__init__(card, max(batch_sizes))
        self.precision = precision
        dtype = DTYPES[precision]
        module = copy.deepcopy(module).eval().to(self.tensor_device, dtype)
        forward = _Computing(module, dtype)
        self.forward = torch.compile(forward) if compile_module else forward
        self.graphs: dict[int, _Graph] = {}
        if self.tensor_device.type == "cuda":
            pool = torch.cuda.graph_pool_handle()
            for size in sorted(set(batch_sizes)):
                example = tuple(torch.from_numpy(x).to(self.tensor_device) for x in sample_batch(card, size))
                self.graphs[size] = _Graph(self.forward, example, pool)

    def _graph(self, count: int) -> _Graph | None:
        """The graph of the smallest captured batch size that holds `count` rows (None on the CPU)."""
        return next((self.graphs[size] for size in sorted(self.graphs) if size >= count), None)

    def _run(self, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        graph = self._graph(len(inputs[0]))
        if graph is not None:
            return graph.run_host(inputs)
        return self._eager(tuple(torch.from_numpy(x).to(self.tensor_device) for x in inputs))

    def _eager(self, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
        with torch.inference_mode():
            return self.forward(*inputs).cpu().numpy()

    def infer_tensors(self, batch: torch.Tensor | tuple[torch.Tensor, ...]) -> np.ndarray:
        """As `infer`, for inputs already on the engine's device (float32, bool for the lifter's mask)."""
        inputs = batch if isinstance(batch, tuple) else (batch,)
        if len(inputs) != len(self.card.input_names) or any(x.device != self.tensor_device for x in inputs):
            count = len(self.card.input_names)
            raise ValueError(f"{self.card.name}: expected {count} tensor(s) on {self.tensor_device}")
        outputs = []
        for start in range(0, len(inputs[0]), self.max_batch):
            chunk = tuple(x[start : start + self.max_batch] for x in inputs)
            graph = self._graph(len(chunk[0]))
            outputs.append(graph.run_device(chunk) if graph is not None else self._eager(chunk))
        output = np.concatenate(outputs).astype(np.float64)
        return output if self.card.targets is None else self.card.targets.denormalize(output)
