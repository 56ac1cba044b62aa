"""The PyTorch CUDA engine measured against eager FP32 PyTorch on the same GPU, in one run:

- parity of FP16 and BF16 (CUDA graphs) with eager FP32 on the same inputs, for every model: the joints
  of POTTER and the lifter and MediaPipe's world landmarks in mm (aim: at most 1 mm), the 2D outputs in
  pixels (aim: at most 0.5 px): the detector's keypoints in the 512-px benchmark frame, MediaPipe's
  palm regressors and landmarks in their 192- and 224-px model inputs;
- latency p50 / p99 per model at batch 1 and 2, and of the whole live frame (MediaPipe's palm detector
  and landmark model, then the lifter or POTTER, then placement in metres) on a one-hand and a two-hand
  photo, each engine against eager FP32 with the ratio of p50s (aims: the live frame under 3 ms; POTTER
  FP16 with graphs at most 0.2x eager FP32 at batch 1);
- the official-size POTTER's throughput at batch 64.

    bash bench/device.sh                                   # on the device machine: writes into $OUT
    .venv/bin/python bench/device.py --device cpu --quick  # the same script on the CPU, as a dry run

Models: MediaPipe's full palm detector and landmark model, the lifter and the detector with their bundled
weights (read back from the ONNX files by `runtime.onnx_weights`); POTTER, the bundled tiny one's size and
the official size, with seeded random weights, since its ONNX graph does not map back onto the module
and no checkpoint is in the repository (speed does not depend on the weights; parity does a little).
Engines are timed in turns (rounds of calls after a warm-up), so that drift affects them alike. On the
CPU the graphs are left out (they are CUDA's), and `--quick` cuts the calls and runs the graphed engine in
FP32 (the CPU's half-precision kernels take seconds a call), so the dry run checks the script, not the
speed or the parity. Imports nothing of ROS, projectaria-tools or TensorRT.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hand_pose_ros"))

from hand_pose_core.geometry.camera import PinholeCamera  # noqa: E402
from hand_pose_core.live.hand_landmarker import HandLandmarker  # noqa: E402
from hand_pose_core.live.photos import default_focal, read_picture  # noqa: E402
from hand_pose_core.live.pipeline import HandPosePipeline, PipelineConfig  # noqa: E402
from hand_pose_core.models.checkpoints import LoadedModel, build_model, inference_form  # noqa: E402
from hand_pose_core.models.normalization import JointNormalizer  # noqa: E402
from hand_pose_core.runtime.base import Engine  # noqa: E402
from hand_pose_core.runtime.bundled import bundled_model  # noqa: E402
from hand_pose_core.runtime.card import ModelCard, sample_batch  # noqa: E402
from hand_pose_core.runtime.engines import OnnxRuntimeEngine  # noqa: E402
from hand_pose_core.runtime.export import parity_error  # noqa: E402
from hand_pose_core.runtime.onnx_weights import module_from_onnx  # noqa: E402
from hand_pose_core.runtime.torch_cuda import TorchCudaEngine  # noqa: E402
from hand_pose_core.runtime.torch_engine import TorchEngine  # noqa: E402

PHOTOS = {"one hand": "mp_four_open_palm.jpg", "two hands": "mp_call_two_hands.jpg"}
HALF = ("fp16", "bf16")
AIM_3D_MM, AIM_2D_PX = 1.0, 0.5
AIM_FRAME_MS, AIM_POTTER_RATIO = 3.0, 0.2
THROUGHPUT_BATCH = 64


@dataclass
class Model:
    name: str  # as reported
    module: torch.nn.Module  # inference form, float32, CPU
    card: ModelCard


def bundled(name: str) -> Model:
    path = bundled_model(name)
    module, card = module_from_onnx(path, OnnxRuntimeEngine(path, threads=1))
    return Model(name, module, card)


def random_potter(name: str, **config: object) -> Model:
    """POTTER with seeded random weights and the official joint statistics."""
    torch.manual_seed(0)
    module = inference_form(build_model("potter", **config))
    return Model(name, module, ModelCard.of(LoadedModel("potter", module, JointNormalizer.official())))


def eager(model: Model, device: torch.device) -> TorchEngine:
    """Eager FP32 PyTorch on the device: the baseline."""
    module = copy.deepcopy(model.module).to(device)
    loaded = LoadedModel(model.card.name, module, model.card.targets, model.card.inputs)
    engine = TorchEngine(loaded)
    engine.card = model.card
    return engine


def graphed(model: Model, device: torch.device, precision: str, **options: object) -> TorchCudaEngine:
    return TorchCudaEngine(model.module, model.card, device=device, precision=precision, **options)


def parity(model: Model, engine: Engine, reference: Engine) -> dict[str, float]:
    """The largest differences from the reference at batch 2, in the units of the aims."""
    inputs = sample_batch(model.card, 2, seed=1)
    if model.card.name in ("potter", "lifter", "detector"):
        return {model.card.output_unit: parity_error(engine, reference)}
    difference = np.abs(engine.infer(inputs) - reference.infer(inputs))
    if model.card.name == "palm_detector":
        return {"px": float(difference[..., :18].max()), "score_logit": float(difference[..., 18].max())}
    return {
        "px": float(difference[:, :63].reshape(-1, 21, 3)[..., :2].max()),
        "mm": float(difference[:, 65:].max() * 1000.0),
        "probability": float(difference[:, 63:65].max()),
    }


def meets(result: dict[str, float]) -> bool:
    return result.get("mm", 0.0) <= AIM_3D_MM and result.get("px", 0.0) <= AIM_2D_PX


def time_in_turns(
    calls: dict[str, Callable[[], object]], rounds: int, per_round: int, warmup: int
) -> dict[str, dict[str, float]]:
    """p50 / p99 ms of each call, timed in turns: each round runs `per_round` calls of each."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        for _ in range(warmup):
            call()
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(per_round):
                start = time.perf_counter()
                call()
                times[name].append((time.perf_counter() - start) * 1000.0)
    return {
        name: {"p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99)), "calls": len(t)}
        for name, t in times.items()
    }


def with_ratios(timings: dict[str, dict[str, float]], baseline: str) -> dict[str, dict[str, float]]:
    for timing in timings.values():
        timing["x_eager"] = timing["p50_ms"] / timings[baseline]["p50_ms"]
    return timings


def pipeline(engines: dict[str, Engine], lifting: str, camera: PinholeCamera) -> HandPosePipeline:
    """The live frame: MediaPipe's models, then `lifting` (lifter or POTTER), then placement."""
    hands = HandLandmarker(engines["palm_detector"], engines["hand_landmarks"])
    return HandPosePipeline(engines[lifting], camera, None, PipelineConfig(orientation="portrait"), hands)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument(
        "--quick", action="store_true", help="a dry run: few calls, official POTTER on 64-px crops, batch 4"
    )
    parser.add_argument("--compile", action="store_true", help="also POTTER with torch.compile, graphed")
    args = parser.parse_args()
    started = time.perf_counter()
    device = torch.device(args.device)
    rounds, per_round, warmup = (1, 2, 1) if args.quick else (5, 40, 20)
    precisions = ("fp32",) if args.quick else HALF  # the CPU's half-precision kernels take seconds
    throughput_batch = 4 if args.quick else THROUGHPUT_BATCH
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    report: dict[str, object] = {
        "device": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "quick": args.quick,
        "graphs": device.type == "cuda",
    }
    print(f"{gpu}, torch {torch.__version__}; loading models", flush=True)

    models = [
        bundled("palm_detector"),
        bundled("hand_landmarks"),
        bundled("lifter"),
        bundled("detector"),
        random_potter("potter_tiny", **bundled_model_config("potter")),
        random_potter("potter_official", **({"image_size": 64} if args.quick else {})),
    ]
    engines: dict[str, dict[str, Engine]] = {}
    parities, latencies = {}, {}
    for model in models:
        engines[model.name] = {"eager fp32": eager(model, device)}
        for precision in precisions:
            engines[model.name][f"graphs {precision}"] = graphed(model, device, precision)
        if args.compile and model.name == "potter_official":
            try:
                engines[model.name]["compiled graphs fp16"] = graphed(
                    model, device, "fp16", compile_module=True
                )
            except Exception as exc:  # compile fails in many ways; the rest of the run still counts
                report["compile_error"] = f"{type(exc).__name__}: {exc}"[:2000]
        reference = engines[model.name]["eager fp32"]
        parities[model.name] = {
            name: {**parity(model, engine, reference), "meets": None}
            for name, engine in engines[model.name].items()
            if name != "eager fp32"
        }
        for result in parities[model.name].values():
            result["meets"] = meets(result)
        for batch in (1, 2):
            inputs = sample_batch(model.card, batch, seed=2)
            calls = {
                name: (lambda e=engine, x=inputs: e.infer(x)) for name, engine in engines[model.name].items()
            }
            latencies[f"{model.name} batch {batch}"] = with_ratios(
                time_in_turns(calls, rounds, per_round, warmup), "eager fp32"
            )
        report["parity"], report["latency"] = parities, latencies
        save(report, args.out)  # what a run stopped by its time limit measured so far
        print(f"{model.name}: {time.perf_counter() - started:.0f} s", flush=True)

    frames = {}
    for scene, photo in PHOTOS.items():
        image = read_picture(ROOT / "data" / "real" / photo)
        height, width = image.shape[:2]
        camera = PinholeCamera.linear(width, height, default_focal(width, height))
        for lifting, pose in (("lifter", "lifter"), ("potter", "potter_tiny"), ("potter", "potter_official")):
            pipelines = {}
            for name in ("eager fp32", f"graphs {precisions[0]}"):
                chosen = {m: engines[m][name] for m in ("palm_detector", "hand_landmarks")}
                pipelines[name] = pipeline({**chosen, lifting: engines[pose][name]}, lifting, camera)
            found = {name: len(p.process(image).hands) for name, p in pipelines.items()}
            calls = {}
            for name, p in pipelines.items():
                calls[f"{name}, palm every frame"] = lambda p=p, x=image: (p.reset(), p.process(x))
                calls[f"{name}, tracking"] = lambda p=p, x=image: p.process(x)
            timings = time_in_turns(calls, rounds, per_round, warmup)
            for mode in ("palm every frame", "tracking"):
                base = timings[f"eager fp32, {mode}"]["p50_ms"]
                for name in pipelines:
                    timings[f"{name}, {mode}"]["x_eager"] = timings[f"{name}, {mode}"]["p50_ms"] / base
            frames[f"{scene}, {pose}"] = {"hands_found": found, "timings": timings}
            report["live_frame"] = frames
            save(report, args.out)
        print(f"live frame, {scene}: {time.perf_counter() - started:.0f} s", flush=True)

    official = next(m for m in models if m.name == "potter_official")
    batch = sample_batch(official.card, throughput_batch, seed=3)
    big = {
        "eager fp32": eager(official, device),
        f"graphs {precisions[0]}": graphed(official, device, precisions[0], batch_sizes=(throughput_batch,)),
    }
    timings = time_in_turns({n: (lambda e=e: e.infer(batch)) for n, e in big.items()}, rounds, 2, 2)
    report["potter_official_throughput"] = {
        name: {**t, "batch": throughput_batch, "hands_per_s": throughput_batch / t["p50_ms"] * 1000.0}
        for name, t in timings.items()
    }
    report["seconds"] = time.perf_counter() - started
    save(report, args.out)
    table = markdown(report)
    (args.out / "device.md").write_text(table)
    print(table)


def save(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "device.json").write_text(json.dumps(report, indent=1))


def bundled_model_config(name: str) -> dict[str, object]:
    """The configuration on a bundled model's card."""
    return dict(OnnxRuntimeEngine(bundled_model(name), threads=1).card.config)


def markdown(report: dict) -> str:
    """The short tables of the report."""
    lines = [
        f"{report['device']}, torch {report['torch']}, CUDA graphs: {report['graphs']}"
        f"{' (quick: not a measurement)' if report['quick'] else ''}; {report['seconds']:.0f} s",
        "",
        "| model | engine | parity | aim met |",
        "|---|---|---|---|",
    ]
    for model, engines in report["parity"].items():
        for engine, result in engines.items():
            values = ", ".join(f"{v:.3g} {k}" for k, v in result.items() if k != "meets")
            lines.append(f"| {model} | {engine} | {values} | {'yes' if result['meets'] else '**no**'} |")
    lines += ["", "| model, batch | engine | p50 ms | p99 ms | x eager |", "|---|---|---|---|---|"]
    for where, timings in report["latency"].items():
        for engine, t in timings.items():
            lines.append(
                f"| {where} | {engine} | {t['p50_ms']:.3f} | {t['p99_ms']:.3f} | {t['x_eager']:.2f} |"
            )
    lines += [
        "",
        "| live frame | engines, mode | hands | p50 ms | p99 ms | x eager |",
        "|---|---|---|---|---|---|",
    ]
    for where, frame in report["live_frame"].items():
        for engine, t in frame["timings"].items():
            hands = frame["hands_found"][engine.split(",")[0]]
            times = f"{t['p50_ms']:.3f} | {t['p99_ms']:.3f} | {t['x_eager']:.2f}"
            lines.append(f"| {where} | {engine} | {hands} | {times} |")
    lines += ["", "| official-size POTTER | batch | p50 ms | hands/s |", "|---|---|---|---|"]
    for engine, t in report["potter_official_throughput"].items():
        lines.append(f"| {engine} | {t['batch']} | {t['p50_ms']:.2f} | {t['hands_per_s']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
