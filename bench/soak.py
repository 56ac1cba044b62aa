"""Does the `hand_pose_estimator` node's memory stay flat over a long run at 30 Hz?

    .venv/bin/python bench/soak.py --minutes 30                 # resident memory, sampled every 10 s
    .venv/bin/python bench/soak.py --minutes 8 --tracemalloc    # where Python memory grows, and by what

The node runs with its defaults (MediaPipe lite, world landmarks, smoothing) as its own process on a
private DDS domain; the camera is `bench/node_rate.py --probe` (one real photo with a hand, 512x512, with
its CameraInfo) at `--hz` for the whole run. The node's resident memory (VmRSS) is read from /proc every
`--sample-s` while the camera sends. Growth is measured from the end of the warm-up (`--warmup-min`: the
models' arenas and caches fill) to the last sample at full rate. With `--tracemalloc` the node runs
under tracemalloc (which slows it) and dumps a snapshot after the warm-up and at the end; the largest
differences by call stack are reported. Writes JSON and a plot of memory over time to `--out`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "hand_pose_ros") not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT / "hand_pose_ros"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from system_load import machine  # noqa: E402

SNAPSHOT_FRAMES = 25


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def traced_node(folder: Path, warmup_s: float, ros_args: list[str]) -> None:
    """The estimator under tracemalloc: a snapshot after the warm-up and one on each `end` request
    (the file `folder/end` appearing), both dumped into `folder`."""
    tracemalloc.start(SNAPSHOT_FRAMES)

    def snapshots() -> None:
        time.sleep(warmup_s)
        tracemalloc.take_snapshot().dump(str(folder / "after_warmup.snapshot"))
        while not (folder / "end").exists():
            time.sleep(0.5)
        tracemalloc.take_snapshot().dump(str(folder / "end.snapshot"))
        (folder / "dumped").touch()

    threading.Thread(target=snapshots, daemon=True).start()
    from hand_pose_ros.estimator import main

    main(ros_args)


def growth_by_line(folder: Path, top: int = 12) -> list[dict]:
    """The largest differences between the two snapshots, by allocating call stack; each named by its
    innermost line and the innermost line of ours (hand_pose_*) that led to it."""
    before = tracemalloc.Snapshot.load(str(folder / "after_warmup.snapshot"))
    after = tracemalloc.Snapshot.load(str(folder / "end.snapshot"))
    rows = []
    for stat in after.compare_to(before, "traceback")[:top]:
        frames = list(stat.traceback)[::-1]  # tracemalloc lists the oldest call first
        ours = next((f for f in frames if "hand_pose" in f.filename), None)
        rows.append(
            {
                "where": f"{frames[0].filename}:{frames[0].lineno}",
                "from our code": f"{ours.filename}:{ours.lineno}" if ours else "",
                "kib": round(stat.size_diff / 1024, 1),
                "count": stat.count_diff,
            }
        )
    return rows


def soak(args: argparse.Namespace) -> dict:
    from hand_pose_ros.processes import ProcessGroup, node_command, ros_env

    parameters = {"publish_overlay": False}
    remaps = {"image": "/camera/image", "camera_info": "/camera/camera_info"}
    seconds, warmup_s = args.minutes * 60, args.warmup_min * 60
    with tempfile.TemporaryDirectory() as work, ProcessGroup(ros_env()) as group:
        work = Path(work)
        command = node_command("hand_pose_ros.estimator", parameters, remaps)
        if args.tracemalloc:
            ros_args = command[command.index("--ros-args") :]
            command = [sys.executable, __file__, "--traced-node", str(work), str(warmup_s), *ros_args]
        node = group.start(command)
        node.wait_for("active: images from", timeout=120)
        camera = group.start(
            [sys.executable, str(ROOT / "bench" / "node_rate.py"), "--probe", "--scene", "one",
             "--out", str(work / "probe.json"), "--hz", str(args.hz), "--seconds", str(seconds - 1),
             "--warmup-s", "1"]
        )  # fmt: skip
        camera.wait_for("measuring", timeout=120)
        start, samples = time.monotonic(), []
        while "sent" not in camera.lines and camera.process.poll() is None:  # until the last frame
            samples.append((time.monotonic() - start, resident_mib(node.process.pid)))
            time.sleep(args.sample_s)
        if camera.wait(60) != 0:
            raise RuntimeError(f"camera process failed:\n{camera.output}\n--- node:\n{node.output}")
        lines = []
        if args.tracemalloc:
            (work / "end").touch()
            deadline = time.monotonic() + 120
            while not (work / "dumped").exists() and time.monotonic() < deadline:
                time.sleep(0.5)
            lines = growth_by_line(work)
        result = json.loads((work / "probe.json").read_text())
        if node.interrupt() != 0:
            raise RuntimeError(f"node failed:\n{node.output}")
    after_warmup = next(mib for t, mib in samples if t >= warmup_s)
    final = samples[-1][1]
    diagnostics = result["diagnostics"][-1] if result["diagnostics"] else {}
    return {
        "minutes": args.minutes,
        "hz": args.hz,
        "tracemalloc": args.tracemalloc,
        "frames sent": len(result["sent"]),
        "frames processed": diagnostics.get("frames processed"),
        "frames dropped": diagnostics.get("frames dropped"),
        "resident MiB after warm-up": after_warmup,
        "resident MiB at the end": final,
        "resident MiB max": max(mib for _, mib in samples),
        "growth after warm-up (%)": 100 * (final - after_warmup) / after_warmup,
        "samples (s, MiB)": samples,
        "python growth by line (after warm-up)": lines,
    }


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times, mib = zip(*report["samples (s, MiB)"], strict=True)
    figure, axes = plt.subplots(figsize=(8, 3.5))
    axes.plot([t / 60 for t in times], mib)
    axes.axvline(report["warmup minutes"], color="grey", linestyle=":")
    axes.set_xlabel(f"minutes at {report['hz']:g} Hz")
    axes.set_ylabel("node resident memory (MiB)")
    axes.set_title(f"hand_pose_estimator soak: {report['growth after warm-up (%)']:+.2f} % after warm-up")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--traced-node":
        traced_node(Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warmup-min", type=float, default=3.0)
    parser.add_argument("--hz", type=float, default=30.0)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench" / "soak")
    args = parser.parse_args()
    report = soak(args) | {"warmup minutes": args.warmup_min, "machine": machine()}
    args.out.mkdir(parents=True, exist_ok=True)
    name = "soak_tracemalloc" if args.tracemalloc else "soak"
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1))
    plot(report, args.out / f"{name}.png")
    for key, value in report.items():
        if key != "samples (s, MiB)":
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
