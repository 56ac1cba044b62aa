"""How fast and how well does MANO fitting follow two hands? The numbers in docs/mano.md, repeatable:

    .venv/bin/python bench/mano_fit.py [--frames 300] [--seed 0]

MANO's own files are licence-bound, so the model is the stand-in of the real sizes (`mano.stand_in`):
the speed is MANO's, the accuracy says how well the fitter recovers hands its model can make. A synthetic
30 Hz sequence of both hands (poses, shapes, rotations and positions eased between random key poses of
the model's own priors, a key pose a second), fitted frame by frame in one batch of two, warm-started as
the pipeline does: per frame, the wall time and the CPU time of the fitting thread (less sensitive to
other work on a shared machine; the first frame, cold, apart), and each hand's mean distance of MANO's
joints from the true ones; then the same with Gaussian noise on the joints, as a pose model's output
would have it. What else kept the machine busy meanwhile is reported (`system_load`). Last, what the
node's mesh marker of one hand costs rclpy: building it, and serialising it as publishing does.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from hand_pose_core.mano.fitting import ManoFit, ManoFitter
from hand_pose_core.mano.model import ManoModel
from hand_pose_core.mano.stand_in import sample_parameters, stand_in_arrays

sys.path.insert(0, str(Path(__file__).resolve().parent))
from system_load import CpuMeter, machine

SIDES = ("right", "left")
FRAME_RATE = 30.0


def sequence(models: dict[str, ManoModel], frames: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """(frames, 61) parameters per side, eased (smoothstep) from one key pose to the next each second."""
    keys = int(np.ceil(frames / FRAME_RATE)) + 1
    eased = {}
    for side in SIDES:
        key_poses = sample_parameters(models[side], rng, keys)
        time_in_keys = np.arange(frames) / FRAME_RATE
        start = time_in_keys.astype(int)
        fraction = time_in_keys - start
        weight = (fraction * fraction * (3 - 2 * fraction))[:, None]
        eased[side] = (1 - weight) * key_poses[start] + weight * key_poses[start + 1]
    return eased


def run(fitter: ManoFitter, truth: dict[str, np.ndarray], noise_m: float, rng: np.random.Generator) -> dict:
    frames = len(truth[SIDES[0]])
    true_joints = np.stack([fitter.models[side].forward(truth[side])[1] for side in SIDES], axis=1)
    seen = true_joints + rng.normal(0, noise_m, true_joints.shape)
    fitter.reset()
    seconds, cpu_seconds, errors = [], [], []
    for frame in range(frames):
        start, cpu_start = time.perf_counter(), time.thread_time()
        fits = fitter.fit(list(SIDES), seen[frame])
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.thread_time() - cpu_start)
        errors.append(
            [np.linalg.norm(fit.joints - true_joints[frame, i], axis=-1).mean() for i, fit in enumerate(fits)]
        )
    warm_ms, errors_mm = np.array(seconds[1:]) * 1000, np.array(errors) * 1000
    return {
        "cold_ms": seconds[0] * 1000,
        "warm_cpu_ms": float(np.median(cpu_seconds[1:]) * 1000),
        "warm_ms": {q: float(np.percentile(warm_ms, q)) for q in (50, 90, 99)},
        "warm_max_ms": float(warm_ms.max()),
        "error_mm": {
            "mean": float(errors_mm.mean()),
            "p99": float(np.percentile(errors_mm, 99)),
            "max": float(errors_mm.max()),
        },
    }


def marker_ms(fit: ManoFit, repeats: int = 10) -> tuple[float, float]:
    """Milliseconds to build one hand's mesh marker, and to serialise it (median of `repeats`)."""
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from hand_pose_ros.messages import mesh_marker

    built, serialised = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        marker = mesh_marker(Header(), fit.side, fit)
        middle = time.perf_counter()
        serialize_message(marker)
        built.append(middle - start)
        serialised.append(time.perf_counter() - middle)
    return float(np.median(built) * 1000), float(np.median(serialised) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    models = {
        side: ManoModel(side, Path(f"stand-in {side}"), stand_in_arrays(side, args.seed)) for side in SIDES
    }
    fitter = ManoFitter(models)
    truth = sequence(models, args.frames, rng)
    print(machine(), f"{args.frames} frames")
    for noise_m in (0.0, 0.005):
        meter = CpuMeter({"bench": os.getpid()})
        meter.start()
        report = run(fitter, truth, noise_m, rng)
        load = meter.stop()
        warm = ", ".join(f"p{q} {ms:.1f}" for q, ms in report["warm_ms"].items())
        error = report["error_mm"]
        print(
            f"joint noise {noise_m * 1000:.0f} mm: both hands per frame, cold {report['cold_ms']:.1f} ms, "
            f"warm {warm}, max {report['warm_max_ms']:.1f} ms (CPU p50 {report['warm_cpu_ms']:.1f} ms); MANO "
            f"joints from the true ones: mean {error['mean']:.3f} mm, p99 {error['p99']:.3f} mm, max "
            f"{error['max']:.3f} mm; cores kept busy by other processes "
            f"{load['cores_busy_other_processes']}, load {load['loadavg_1min']['max']}"
        )
    build, serialise = marker_ms(
        fitter.fit(["right"], fitter.models["right"].forward(truth["right"][0])[1][None])[0]
    )
    print(f"one hand's mesh marker: built in {build:.1f} ms, serialised in {serialise:.1f} ms")


if __name__ == "__main__":
    main()
