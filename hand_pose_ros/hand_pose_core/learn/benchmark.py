"""`hand-pose bench`: latency and throughput of every usable backend against PyTorch eager, measured in
one run on the same inputs, plus the accuracy cost of INT8 on synthetic validation hands (which is why
it lives with the data, not in the runtime).

A benchmark, not a test: it reports what this machine does. Ratios compare each backend with eager
PyTorch on the same device (CPU backends with eager CPU, GPU backends with eager CUDA).
"""

from __future__ import annotations

import copy
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hand_pose_core.atomic import write_atomic
from hand_pose_core.errors import InputError
from hand_pose_core.learn.quantization import CalibrationData, model_batches, mpjpe_of
from hand_pose_core.models.checkpoints import LoadedModel, build_model, load_checkpoint
from hand_pose_core.models.normalization import JointNormalizer, KeypointNormalizer
from hand_pose_core.runtime.base import Engine
from hand_pose_core.runtime.card import sample_batch
from hand_pose_core.runtime.engines import OnnxRuntimeEngine
from hand_pose_core.runtime.export import export_int8, export_onnx
from hand_pose_core.runtime.tensorrt import engine_for, tensorrt_unavailable
from hand_pose_core.runtime.torch_engine import TorchEngine

LOG = logging.getLogger(__name__)
# Synthetic data for INT8 calibration and its accuracy cost (287 train and 48 val hands).
SYNTH_TAKES, SYNTH_FRAMES, SYNTH_SEED = 16, 12, 7
ROUNDS = 5  # turns in which the backends are timed


@dataclass
class BenchRow:
    model: str
    backend: str  # e.g. "onnxruntime int8"
    device: str  # "cpu" or "cuda"
    batch: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    hands_per_s: float
    vs_eager: float | None = None  # p50 latency over eager PyTorch's on the same device and batch


@dataclass
class BenchReport:
    rows: list[BenchRow]
    skipped: list[str]  # backends that could not run here, with why
    int8_mpjpe_mm: dict[str, dict[str, float]]  # model -> {"fp32": ..., "int8": ...}
    machine: str


def time_engines(
    engines: dict[tuple[str, str], Engine],
    inputs: tuple[np.ndarray, ...],
    warmup: int,
    iterations: int,
    rounds: int = ROUNDS,
) -> dict[tuple[str, str], list[float]]:
    """Seconds per `infer` call for each engine, timed in turns so that any drift in the machine's
    speed affects every backend alike."""
    for engine in engines.values():
        for _ in range(warmup):
            engine.infer(inputs)
    times: dict[tuple[str, str], list[float]] = {label: [] for label in engines}
    per_round = -(-iterations // rounds)
    for _ in range(rounds):
        for label, engine in engines.items():
            for _ in range(per_round):
                start = time.perf_counter()
                engine.infer(inputs)
                times[label].append(time.perf_counter() - start)
    return times


def _row(model: str, backend: str, device: str, batch: int, times: list[float]) -> BenchRow:
    p50, p90, p99 = (float(v) * 1000.0 for v in np.percentile(times, [50, 90, 99]))
    return BenchRow(model, backend, device, batch, p50, p90, p99, batch * len(times) / sum(times))


def default_model(name: str) -> LoadedModel:
    """The official-size model with seeded random weights (speed does not depend on the weights)."""
    torch.manual_seed(0)
    inputs = KeypointNormalizer.reference() if name == "lifter" else None
    return LoadedModel(name, build_model(name).eval(), JointNormalizer.official(), inputs)


def machine_description() -> str:
    import platform

    import onnxruntime

    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads{gpu}; "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}"
    )


def run_benchmark(
    models: dict[str, Path | None],
    batches: tuple[int, ...] = (1, 2),
    iterations: int = 30,
    warmup: int = 5,
    int8: bool = True,
    calibration: CalibrationData | None = None,
    threads: int | None = None,
) -> BenchReport:
    """Benchmark each model (a checkpoint, or None for the official-size default) on every backend."""
    if not batches or min(batches) < 1 or iterations < 1 or warmup < 0:
        raise InputError("bench needs batches and iterations of at least 1 (and no negative warm-up)")
    rows: list[BenchRow] = []
    skipped: list[str] = []
    int8_mpjpe: dict[str, dict[str, float]] = {}
    missing_trt = tensorrt_unavailable()
    if missing_trt is not None:
        skipped.append(f"tensorrt: {missing_trt}")
    if not torch.cuda.is_available():
        skipped.append("torch eager cuda: CUDA is not available")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if int8 and calibration is None:
            calibration = _synthetic_calibration(folder / "synth")
        for name, checkpoint in models.items():
            loaded = load_checkpoint(checkpoint) if checkpoint else default_model(name)
            if loaded.name != name:
                raise InputError(f"{checkpoint}: a {loaded.name} checkpoint, given for {name}")
            engines: dict[tuple[str, str], Engine] = {("torch eager", "cpu"): TorchEngine(loaded)}
            fp32_path = export_onnx(loaded, folder / f"{name}.onnx", max_batch=max(batches))
            engines["onnxruntime fp32", "cpu"] = OnnxRuntimeEngine(fp32_path, threads)
            if int8:
                int8_path = export_int8(
                    loaded,
                    folder / f"{name}.int8.onnx",
                    model_batches(
                        engines["torch eager", "cpu"].card,
                        calibration.split("train"),
                        calibration.image_dir,
                        "train",
                        calibration.hands,
                    ),
                    max(batches),
                )
                engines["onnxruntime int8", "cpu"] = OnnxRuntimeEngine(int8_path, threads)
                val = calibration.split("val")
                int8_mpjpe[name] = {
                    precision: mpjpe_of(
                        engines[f"onnxruntime {precision}", "cpu"], val, calibration.image_dir, "val"
                    )
                    for precision in ("fp32", "int8")
                }
            if torch.cuda.is_available():
                engines["torch eager", "cuda"] = TorchEngine(
                    replace(loaded, model=copy.deepcopy(loaded.model).cuda())
                )
            if missing_trt is None:
                for precision in ("fp32", "fp16"):
                    path = export_onnx(
                        loaded,
                        folder / f"{name}.{precision}.onnx",
                        fp16=precision == "fp16",
                        max_batch=max(batches),
                    )
                    engines[f"tensorrt {precision}", "cuda"] = engine_for(path, max(batches), rebuild=True)
            for batch in tqdm(batches, desc=f"bench {name}", unit="batch size"):
                inputs = sample_batch(engines["torch eager", "cpu"].card, batch, seed=batch)
                for (backend, device), times in time_engines(engines, inputs, warmup, iterations).items():
                    rows.append(_row(name, backend, device, batch, times))
    _add_ratios(rows)
    return BenchReport(rows, skipped, int8_mpjpe, machine_description())


def _synthetic_calibration(folder: Path) -> CalibrationData:
    from hand_pose_core.synth.generator import SynthConfig, generate

    generate(folder, SynthConfig(SYNTH_TAKES, SYNTH_FRAMES, SYNTH_SEED), progress=False)
    return CalibrationData(folder, folder / "image" / "undistorted")


def _add_ratios(rows: list[BenchRow]) -> None:
    eager = {(r.model, r.device, r.batch): r.p50_ms for r in rows if r.backend == "torch eager"}
    for row in rows:
        reference = eager.get((row.model, row.device, row.batch))
        row.vs_eager = row.p50_ms / reference if reference else None


def format_report(report: BenchReport) -> str:
    lines = [
        f"machine: {report.machine}",
        "",
        "| model | backend | device | batch | p50 ms | p90 ms | p99 ms | hands/s | x eager |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        ratio = f"{r.vs_eager:.2f}" if r.vs_eager is not None else "-"
        lines.append(
            f"| {r.model} | {r.backend} | {r.device} | {r.batch} | {r.p50_ms:.2f} | {r.p90_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.hands_per_s:.1f} | {ratio} |"
        )
    for name, scores in report.int8_mpjpe_mm.items():
        change = scores["int8"] - scores["fp32"]
        lines.append(
            f"{name} INT8 accuracy on synthetic validation hands: MPJPE {scores['fp32']:.3f} mm (FP32) -> "
            f"{scores['int8']:.3f} mm (INT8), change {change:+.3f} mm"
        )
    lines += [f"skipped {what}" for what in report.skipped]
    return "\n".join(lines)


def report_to_dict(report: BenchReport) -> dict:
    return {
        "machine": report.machine,
        "rows": [asdict(r) for r in report.rows],
        "skipped": report.skipped,
        "int8_mpjpe_mm": report.int8_mpjpe_mm,
    }


def plot_report(report: BenchReport, path: Path) -> Path:
    """Median latency per backend, one panel per model, bars per batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r.model for r in report.rows))
    figure, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4), squeeze=False)
    for axis, model in zip(axes[0], models, strict=True):
        rows = [r for r in report.rows if r.model == model]
        labels = list(dict.fromkeys(f"{r.backend}\n{r.device}" for r in rows))
        batches = sorted({r.batch for r in rows})
        width = 0.8 / len(batches)
        for offset, batch in enumerate(batches):
            values = {f"{r.backend}\n{r.device}": r.p50_ms for r in rows if r.batch == batch}
            positions = np.arange(len(labels)) + offset * width
            axis.bar(positions, [values.get(label, 0.0) for label in labels], width, label=f"batch {batch}")
        axis.set_xticks(np.arange(len(labels)) + width * (len(batches) - 1) / 2, labels, fontsize=8)
        axis.set_ylabel("p50 latency (ms)")
        axis.set_title(model)
        axis.legend()
    figure.suptitle(report.machine, fontsize=8)
    figure.tight_layout()
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))
    plt.close(figure)
    return path
