"""Our real hand stage (`HandLandmarker` on the bundled ONNX models, ONNX Runtime on the CPU) against
MediaPipe's own legacy Python solution (`mediapipe.solutions.hands.Hands`, PyPI mediapipe==0.10.21), on
the same 512x512 RGB frames in one run: time per frame, hands found, and where our time goes.

    make                                   # once: the project's .venv
    .venv/bin/python bench/real_stage.py   # [--threads 1 2] [--variants full lite] [--rounds 20]

Two modes, each with MediaPipe's full models (model_complexity 1) and, by default, also the lite ones:

- `static`, detection every frame: ours calls `reset()` before each frame (palm detector and landmark
  model on every frame), MediaPipe runs with static_image_mode=True;
- `video`, tracking: a video-like sequence (each still repeated with a 1-pixel shift per frame, so that
  tracking holds), the palm detector only while fewer than 2 hands are tracked; ours reads both hands
  in one batched landmark call, MediaPipe runs with static_image_mode=False.

Frames: the photos `data/real/*.jpg` letterboxed to 512x512 and the RGB frames of the Aria recording
`data/aria/aea_recording.vrs` undistorted to the benchmark's 512x512 camera, turned upright.

MediaPipe pins numpy < 2, so it runs in a virtual environment of its own, made on first use under
`--mediapipe-venv` (`python3 -m venv`, `pip install mediapipe==0.10.21`), as a subprocess
(`bench/mediapipe_worker.py`) that reads the frames from .npy files and answers timings as JSON.

The two sides never run at the same time (they would fight for the cores): each round runs one pass of
every mode on ours, then on MediaPipe (the order flips every round), after a warm-up pass of each.
MediaPipe's XNNPACK delegate uses 1 thread on Linux (MediaPipe's default off Android and iOS); the
process's CPU time per frame is reported for both sides so that this can be checked. Ours runs once per
`--threads` value (ONNX Runtime intra-op threads).

Reported per mode: p50 / p90 ms per frame of each side and the ratios ours / MediaPipe (also the median
over rounds of the per-round ratio of means, which other load on the machine disturbs least), against
the goals: tracking at most 0.7x MediaPipe's time, detection every frame at most 1.0x. Ours is broken
down into the palm model, the landmark model (ONNX Runtime's `session.run`), the engine wrapper around
them (input copy and output cast in `Engine.infer`), and the Python graph (everything else). Writes a
JSON (`--out`) and prints markdown tables; `--profile` adds a cProfile of our graph. Video mode is also
split into the frames where our palm detector ran and those where both hands were tracked.

`--palm-interval N` adds ours in video mode as the node runs with `detect_every: N`: while a hand is
tracked, the palm detector looks for more only every N frames (MediaPipe looks on every frame while
fewer than 2 hands are tracked).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "hand_pose_ros") not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT / "hand_pose_ros"))

from hand_pose_core.geometry.aria import AriaUndistorter, vrs_frames  # noqa: E402
from hand_pose_core.live.hand_landmarker import HandLandmarker, HandLandmarkerConfig  # noqa: E402
from hand_pose_core.runtime.bundled import bundled_model  # noqa: E402
from hand_pose_core.runtime.engines import load_engine  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from system_load import CpuMeter, machine  # noqa: E402

SIZE = 512
MEDIAPIPE_VERSION = "0.10.21"
WORKER = Path(__file__).resolve().parent / "mediapipe_worker.py"
MODES = ("static", "video")
GOALS = {"video": 0.7, "static": 1.0}  # ours / MediaPipe, time per frame
SUFFIX = {"full": "", "lite": "_lite"}


# ------------------------------------------------------------------------------------------- frames


def letterbox(image: np.ndarray, size: int = SIZE) -> np.ndarray:
    """An RGB image scaled to fit a size x size square, centred on black."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = round(width * scale), round(height * scale)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    canvas = np.zeros((size, size, 3), np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


def photo_frames() -> tuple[list[np.ndarray], list[str]]:
    paths = sorted((ROOT / "data" / "real").glob("*.jpg"))
    frames = [letterbox(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)) for p in paths]
    return frames, [p.name for p in paths]


def aria_frames() -> tuple[list[np.ndarray], list[str]]:
    path = ROOT / "data" / "aria" / "aea_recording.vrs"
    undistorter = AriaUndistorter.from_file(path, orientation="portrait")
    frames, names = [], []
    for frame in vrs_frames(path, ["camera-rgb"]):
        image = frame.image if frame.image.ndim == 3 else np.repeat(frame.image[:, :, None], 3, axis=2)
        frames.append(np.ascontiguousarray(undistorter.undistort(image)))
        names.append(f"{path.name}@{frame.capture_ns}")
    return frames, names


def video_sequence(stills: list[np.ndarray], repeat: int) -> np.ndarray:
    """Each still `repeat` times, moved 1 pixel right (and every other frame 1 down) per frame."""
    frames = []
    for still in stills:
        for k in range(repeat):
            shift = np.float32([[1, 0, k], [0, 1, k // 2]])
            frames.append(cv2.warpAffine(still, shift, (SIZE, SIZE), flags=cv2.INTER_NEAREST))
    return np.stack(frames)


# ---------------------------------------------------------------------------------------------- ours


class _TimedSession:
    """An ONNX Runtime session whose `run` adds its time to a counter."""

    def __init__(self, session: object, owner: TimedEngine) -> None:
        self._session, self._owner = session, owner

    def run(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self._session.run(*args, **kwargs)
        finally:
            self._owner.run_s += time.perf_counter() - start

    def __getattr__(self, name: str):
        return getattr(self._session, name)


class TimedEngine:
    """An engine whose `infer` (what the graph calls) and `session.run` (ONNX Runtime alone) are timed."""

    def __init__(self, engine) -> None:
        self.engine, self.card, self.backend = engine, engine.card, engine.backend
        engine.session = _TimedSession(engine.session, self)
        self.infer_s = self.run_s = 0.0
        self.calls = self.items = 0

    def infer(self, batch: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        try:
            return self.engine.infer(batch)
        finally:
            self.infer_s += time.perf_counter() - start
            self.calls += 1
            self.items += len(batch)

    def snapshot(self) -> tuple[float, float, int, int]:
        return self.infer_s, self.run_s, self.calls, self.items


@dataclass
class OursSide:
    variant: str
    threads: int
    palm: TimedEngine
    landmark: TimedEngine
    palm_interval: int = 1
    landmarkers: dict[str, HandLandmarker] = field(default_factory=dict)

    @classmethod
    def load(cls, variant: str, threads: int, palm_interval: int = 1) -> OursSide:
        palm = TimedEngine(
            load_engine(bundled_model(f"palm_detector{SUFFIX[variant]}"), "onnxruntime", threads=threads)
        )
        landmark = TimedEngine(
            load_engine(bundled_model(f"hand_landmarks{SUFFIX[variant]}"), "onnxruntime", threads=threads)
        )
        side = cls(variant, threads, palm, landmark, palm_interval)
        # One tracking graph per mode; static mode resets it before every frame, as MediaPipe's static mode.
        config = HandLandmarkerConfig(max_hands=2, palm_interval=palm_interval)
        side.landmarkers = {mode: HandLandmarker(palm, landmark, config) for mode in MODES}
        return side

    @property
    def label(self) -> str:
        return f"{self.threads}" + (f", palm every {self.palm_interval}" if self.palm_interval > 1 else "")

    def run(self, mode: str, frames: np.ndarray, keypoints: bool = False) -> dict:
        """Per frame: wall ms, the models' share, hands found; the process's CPU seconds over the pass."""
        landmarker = self.landmarkers[mode]
        rows: dict[str, list] = {
            key: []
            for key in ("ms", "palm_infer_ms", "palm_run_ms", "landmark_infer_ms", "landmark_run_ms", "hands")
        }
        rows |= {"palm_ran": [], "regions": [], "keypoints": []}
        cpu_start = time.process_time()
        for frame in frames:
            palm_before, landmark_before = self.palm.snapshot(), self.landmark.snapshot()
            start = time.perf_counter()
            if mode == "static":
                landmarker.reset()
            found = landmarker.process(frame)
            rows["ms"].append((time.perf_counter() - start) * 1000.0)
            palm_after, landmark_after = self.palm.snapshot(), self.landmark.snapshot()
            rows["palm_infer_ms"].append((palm_after[0] - palm_before[0]) * 1000.0)
            rows["palm_run_ms"].append((palm_after[1] - palm_before[1]) * 1000.0)
            rows["landmark_infer_ms"].append((landmark_after[0] - landmark_before[0]) * 1000.0)
            rows["landmark_run_ms"].append((landmark_after[1] - landmark_before[1]) * 1000.0)
            rows["palm_ran"].append(landmarker.last_frame.palm_detection_ran)
            rows["regions"].append(landmark_after[3] - landmark_before[3])
            rows["hands"].append(len(found))
            if keypoints:
                rows["keypoints"].append([hand.keypoints.tolist() for hand in found])
        rows["cpu_s"] = time.process_time() - cpu_start
        return rows


# ----------------------------------------------------------------------------------------- MediaPipe


def ensure_mediapipe_venv(folder: Path, base_python: str) -> Path:
    """The virtual environment's python, with mediapipe==MEDIAPIPE_VERSION installed (made on first use)."""
    python = folder / "bin" / "python"
    marker = folder / f".mediapipe-{MEDIAPIPE_VERSION}-ready"
    if python.is_file() and marker.is_file():
        return python
    print(f"making MediaPipe's virtual environment in {folder} (first use; a few minutes)", flush=True)
    if not python.is_file():
        subprocess.run([base_python, "-m", "venv", str(folder)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"mediapipe=={MEDIAPIPE_VERSION}"], check=True
    )
    check = f"import mediapipe; assert mediapipe.__version__ == {MEDIAPIPE_VERSION!r}"
    subprocess.run([str(python), "-c", check], check=True)
    marker.write_text(MEDIAPIPE_VERSION + "\n")
    return python


class MediaPipeSide:
    """The timing worker in MediaPipe's environment, kept running for the whole benchmark."""

    def __init__(self, python: Path, static_path: Path, video_path: Path, log_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        self.log = log_path.open("w")
        self.process = subprocess.Popen(
            [str(python), str(WORKER), str(static_path), str(video_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )
        self.info = self._answer()

    def _answer(self) -> dict:
        for line in self.process.stdout:
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"MediaPipe's worker ended ({self.process.wait()}); see {self.log.name}")

    def run(self, mode: str, variant: str, start: int, count: int, keypoints: bool = False) -> dict:
        request = {"mode": mode, "variant": variant, "start": start, "count": count, "keypoints": keypoints}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write(json.dumps({"quit": True}) + "\n")
            self.process.stdin.flush()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


# ------------------------------------------------------------------------------------------ statistics


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def match_hands(ours: list[list], theirs: list[list]) -> tuple[int, list[float]]:
    """Frames with the same number of hands, and per matched hand the mean keypoint distance (px)."""
    same, distances = 0, []
    for mine, other in zip(ours, theirs, strict=True):
        same += len(mine) == len(other)
        left = [np.asarray(h) for h in other]
        for hand in map(np.asarray, mine):
            if not left:
                break
            errors = [float(np.linalg.norm(hand - o, axis=1).mean()) for o in left]
            best = int(np.argmin(errors))
            distances.append(errors[best])
            left.pop(best)
    return same, distances


def chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, count) windows going round a sequence of `total` frames forever."""
    start = 0
    while True:
        count = min(size, total - start)
        yield start, count
        start = (start + count) % total


# ---------------------------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mediapipe-venv", type=Path, default=ROOT / "out" / "bench" / "mediapipe-venv")
    parser.add_argument("--venv-python", default="python3", help="the interpreter that makes that venv")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench" / "real_stage.json")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="ONNX Runtime threads, ours")
    parser.add_argument("--variants", nargs="+", choices=("full", "lite"), default=["full", "lite"])
    parser.add_argument("--rounds", type=int, default=20, help="measured rounds (after one warm-up)")
    parser.add_argument("--video-chunk", type=int, default=28, help="video frames per side per round")
    parser.add_argument("--repeat", type=int, default=10, help="video: frames per still")
    parser.add_argument("--profile", action="store_true", help="cProfile one pass of ours per mode")
    parser.add_argument(
        "--palm-interval", type=int, default=1, help="also ours in video mode with this palm_interval (> 1)"
    )
    return parser.parse_args()


def run_profile(side: OursSide, frames: dict[str, np.ndarray], out: Path) -> str:
    text = io.StringIO()
    for mode in MODES:
        profiler = cProfile.Profile()
        profiler.enable()
        side.run(mode, frames[mode])
        profiler.disable()
        text.write(f"\n## cProfile, ours {side.variant}, {side.threads} thread(s), {mode}\n")
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
    out.write_text(text.getvalue())
    return text.getvalue()


def summarise(ours_rows: list[dict], mp_rows: list[dict]) -> dict:
    """Percentiles, ratios and our breakdown over the measured rounds of one case."""

    def flat(rows: list[dict], key: str) -> list:
        return [v for row in rows for v in row[key]]

    ours_ms, mp_ms = flat(ours_rows, "ms"), flat(mp_rows, "ms")
    per_round = [float(np.mean(o["ms"]) / np.mean(m["ms"])) for o, m in zip(ours_rows, mp_rows, strict=True)]
    frames = len(ours_ms)
    palm_run, palm_infer = np.mean(flat(ours_rows, "palm_run_ms")), np.mean(flat(ours_rows, "palm_infer_ms"))
    lm_run, lm_infer = (
        np.mean(flat(ours_rows, "landmark_run_ms")),
        np.mean(flat(ours_rows, "landmark_infer_ms")),
    )
    total = float(np.mean(ours_ms))
    breakdown = {
        "total_ms": total,
        "palm_model_ms": float(palm_run),
        "landmark_model_ms": float(lm_run),
        "engine_wrapper_ms": float(palm_infer - palm_run + lm_infer - lm_run),
        "graph_ms": float(total - palm_infer - lm_infer),
        "palm_detection_ran": float(np.mean(flat(ours_rows, "palm_ran"))),
        "landmark_regions_per_frame": float(np.mean(flat(ours_rows, "regions"))),
    }
    return {
        "frames_per_side": frames,
        "ours": {
            "p50_ms": percentile(ours_ms, 50),
            "p90_ms": percentile(ours_ms, 90),
            "mean_ms": total,
            "cpu_ms_per_frame": 1000.0 * sum(r["cpu_s"] for r in ours_rows) / frames,
            "hands_per_frame": float(np.mean(flat(ours_rows, "hands"))),
        },
        "mediapipe": {
            "p50_ms": percentile(mp_ms, 50),
            "p90_ms": percentile(mp_ms, 90),
            "mean_ms": float(np.mean(mp_ms)),
            "cpu_ms_per_frame": 1000.0 * sum(r["cpu_s"] for r in mp_rows) / frames,
            "hands_per_frame": float(np.mean(flat(mp_rows, "hands"))),
        },
        "ratio_p50": percentile(ours_ms, 50) / percentile(mp_ms, 50),
        "ratio_p90": percentile(ours_ms, 90) / percentile(mp_ms, 90),
        "ratio_mean": total / float(np.mean(mp_ms)),
        "ratio_per_round_median": float(np.median(per_round)),
        "ours_breakdown": breakdown,
        "by_frame_kind": by_frame_kind(ours_rows, mp_rows),
    }


def by_frame_kind(ours_rows: list[dict], mp_rows: list[dict]) -> dict:
    """Both sides' times on the same frames, apart for the frames where our palm detector ran and those
    where it did not (both hands tracked; MediaPipe found the same hands on them, so it skipped it too)."""
    kinds: dict[str, tuple[list[float], list[float]]] = {
        "palm detector ran": ([], []),
        "both tracked": ([], []),
    }
    for ours, theirs in zip(ours_rows, mp_rows, strict=True):
        for ran, mine, other in zip(ours["palm_ran"], ours["ms"], theirs["ms"], strict=True):
            kind = kinds["palm detector ran" if ran else "both tracked"]
            kind[0].append(mine)
            kind[1].append(other)
    return {
        name: {
            "frames": len(mine),
            "ours_p50_ms": percentile(mine, 50),
            "mediapipe_p50_ms": percentile(other, 50),
            "ratio_p50": percentile(mine, 50) / percentile(other, 50),
            "ratio_mean": float(np.mean(mine) / np.mean(other)),
        }
        for name, (mine, other) in kinds.items()
        if mine
    }


def markdown(results: dict) -> str:
    lines = [
        "| mode | models | ours (threads) | ours p50 / p90 ms | MediaPipe p50 / p90 ms | ratio p50 "
        "| ratio p90 | per-round ratio | goal | met (p50) | mean wall / CPU ms: ours; MP |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in results["cases"]:
        s = case["summary"]
        o, m = s["ours"], s["mediapipe"]
        goal = GOALS[case["mode"]]
        lines.append(
            f"| {case['mode']} | {case['variant']} | {case['ours']} | {o['p50_ms']:.1f} / {o['p90_ms']:.1f} "
            f"| {m['p50_ms']:.1f} / {m['p90_ms']:.1f} | {s['ratio_p50']:.2f} | {s['ratio_p90']:.2f} "
            f"| {s['ratio_per_round_median']:.2f} | <= {goal} | {'yes' if s['ratio_p50'] <= goal else 'NO'} "
            f"| {o['mean_ms']:.1f} / {o['cpu_ms_per_frame']:.1f}; "
            f"{m['mean_ms']:.1f} / {m['cpu_ms_per_frame']:.1f} |"
        )
    lines += [
        "",
        "| mode | models | ours (threads) | mean ms | palm model | landmark model | engine wrapper "
        "| Python graph "
        "| palm detection ran | landmark regions/frame |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in results["cases"]:
        b = case["summary"]["ours_breakdown"]
        total = b["total_ms"]

        def part(key: str, b: dict = b, total: float = total) -> str:
            return f"{b[key]:.2f} ({100 * b[key] / total:.0f}%)"

        lines.append(
            f"| {case['mode']} | {case['variant']} | {case['ours']} | {total:.2f} | {part('palm_model_ms')} "
            f"| {part('landmark_model_ms')} | {part('engine_wrapper_ms')} | {part('graph_ms')} "
            f"| {100 * b['palm_detection_ran']:.0f}% | {b['landmark_regions_per_frame']:.2f} |"
        )
    lines += [
        "",
        "| mode | models | ours (threads) | which frames | frames per side | ours p50 ms | MediaPipe p50 ms "
        "| ratio p50 | ratio of means |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in results["cases"]:
        if case["mode"] != "video":
            continue
        for kind, k in case["summary"]["by_frame_kind"].items():
            lines.append(
                f"| {case['mode']} | {case['variant']} | {case['ours']} | {kind} | {k['frames']} "
                f"| {k['ours_p50_ms']:.1f} | {k['mediapipe_p50_ms']:.1f} | {k['ratio_p50']:.2f} "
                f"| {k['ratio_mean']:.2f} |"
            )
    lines += [
        "",
        "| frames | hands ours / MediaPipe | frames with equal counts | keypoint distance p50 / max px |",
    ]
    lines.append("|---|---|---|---|")
    for key, agree in results["agreement"].items():
        lines.append(
            f"| {key} | {agree['hands_ours']} / {agree['hands_mediapipe']} | {agree['same_count']} / "
            f"{agree['frames']} | {agree['keypoint_px_p50']:.3f} / {agree['keypoint_px_max']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    photos, photo_names = photo_frames()
    aria, aria_names = aria_frames()
    stills = photos + aria
    frames = {"static": np.stack(stills), "video": video_sequence(stills, args.repeat)}
    python = ensure_mediapipe_venv(args.mediapipe_venv.resolve(), args.venv_python)
    print(f"frames: {len(photos)} photos + {len(aria)} Aria frames, 512x512; video {len(frames['video'])}")

    with tempfile.TemporaryDirectory() as folder:
        paths = {mode: Path(folder) / f"{mode}.npy" for mode in MODES}
        for mode in MODES:
            np.save(paths[mode], frames[mode])
        mediapipe = MediaPipeSide(
            python, paths["static"], paths["video"], args.out.with_suffix(".worker.log")
        )
    try:
        results = measure(args, frames, mediapipe)
    finally:
        mediapipe.close()
    results["frames"] = {"photos": photo_names, "aria": aria_names, "video_repeat": args.repeat, "size": SIZE}
    args.out.write_text(json.dumps(results, indent=1))
    print(markdown(results))
    print(f"\nwritten: {args.out}")


def measure(args: argparse.Namespace, frames: dict[str, np.ndarray], mediapipe: MediaPipeSide) -> dict:
    configs = [(threads, 1) for threads in args.threads]
    if args.palm_interval > 1:
        configs.append((args.threads[0], args.palm_interval))
    sides = {
        (variant, config): OursSide.load(variant, *config) for variant in args.variants for config in configs
    }
    totals = {mode: len(frames[mode]) for mode in MODES}
    windows: dict[tuple[str, str], Iterator[tuple[int, int]]] = {}

    def window(mode: str, variant: str) -> tuple[int, int]:
        if mode == "static":
            return 0, totals[mode]
        if (mode, variant) not in windows:
            windows[mode, variant] = chunks(totals[mode], args.video_chunk)
        return next(windows[mode, variant])

    # Warm-up: one pass over every frame on each side, which also says which hands each side finds.
    print("warm-up pass (and hands found)...", flush=True)
    agreement = {}
    for variant in args.variants:
        for mode in MODES:
            theirs = mediapipe.run(mode, variant, 0, totals[mode], keypoints=True)
            mine = {
                config: sides[variant, config].run(mode, frames[mode], keypoints=True) for config in configs
            }
            first = mine[configs[0]]
            same, distances = match_hands(first["keypoints"], theirs["keypoints"])
            agreement[f"{mode} {variant}"] = {
                "frames": totals[mode],
                "hands_ours": int(sum(first["hands"])),
                "hands_mediapipe": int(sum(theirs["hands"])),
                "same_count": same,
                "keypoint_px_p50": percentile(distances, 50),
                "keypoint_px_max": max(distances, default=float("nan")),
                "ours_configs_agree": all(m["hands"] == first["hands"] for m in mine.values()),
                "per_frame_ours": first["hands"] if mode == "static" else None,
                "per_frame_mediapipe": theirs["hands"] if mode == "static" else None,
            }
            print(
                f"  {mode} {variant}: hands ours {sum(first['hands'])}, MediaPipe {sum(theirs['hands'])} "
                f"over {totals[mode]} frames",
                flush=True,
            )
    windows.clear()  # every round's video chunk is the same frames on both sides, from the start
    records: dict[tuple[str, str, tuple[int, int]], list[dict]] = {}
    mp_records: dict[tuple[str, str], list[dict]] = {}
    meter = CpuMeter({"ours": "self", "mediapipe": mediapipe.process.pid})
    meter.start()
    for round_index in range(args.rounds):
        for variant in args.variants:
            for mode in MODES:
                start, count = window(mode, variant)
                batch = frames[mode][start : start + count]
                steps: list[tuple[tuple[int, int] | None, Callable[[], dict]]] = [
                    (config, lambda c=config, b=batch, v=variant, m=mode: sides[v, c].run(m, b))
                    for config in configs
                    if mode == "video" or config[1] == 1  # static mode resets before every frame
                ]
                # MediaPipe right after our first configuration (the product's), then our others.
                steps.insert(1, (None, lambda s=start, c=count, v=variant, m=mode: mediapipe.run(m, v, s, c)))
                if round_index % 2:
                    steps.reverse()
                for config, step in steps:
                    row = step()
                    if config is None:
                        mp_records.setdefault((mode, variant), []).append(row)
                    else:
                        records.setdefault((mode, variant, config), []).append(row)
        meter.tick()
        print(f"round {round_index + 1}/{args.rounds} done (load {os.getloadavg()[0]:.2f})", flush=True)
    load = meter.stop()
    cases = [
        {
            "mode": mode,
            "variant": variant,
            "ours": sides[variant, config].label,
            "threads": config[0],
            "palm_interval": config[1],
            "summary": summarise(rows, mp_records[mode, variant]),
        }
        for (mode, variant, config), rows in records.items()
    ]
    cases.sort(
        key=lambda c: (
            MODES.index(c["mode"]),
            c["variant"] != "full",
            c["palm_interval"],
            c["threads"],
        )
    )
    results = {
        "machine": machine() | {"while_measuring": load},
        "mediapipe": mediapipe.info
        | {
            "xnnpack_threads": "1 (MediaPipe's default off Android and iOS; compare its CPU and wall time)",
            "worker_threads_at_end": mediapipe.run("static", args.variants[0], 0, 1)["threads"],
        },
        "onnxruntime": onnxruntime_version(),
        "settings": {
            "rounds": args.rounds,
            "video_chunk": args.video_chunk,
            "threads": args.threads,
            "variants": args.variants,
            "palm_interval": args.palm_interval,
            "max_hands": 2,
        },
        "goals": GOALS,
        "agreement": agreement,
        "cases": cases,
    }
    if args.profile:
        text = run_profile(sides[args.variants[0], configs[0]], frames, args.out.with_suffix(".profile.txt"))
        print(text[:6000])
    return results


def onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


if __name__ == "__main__":
    main()
