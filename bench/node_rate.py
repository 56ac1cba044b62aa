"""Does the `hand_pose_estimator` node keep up with a 30 Hz camera, and how late are its hands?

    make                                   # once: the project's .venv
    .venv/bin/python bench/node_rate.py    # [--scenes one two] [--seconds 20] [--hz 30]

For each scene, the node runs as its own process on a private DDS domain (as the tests start it:
`hand_pose_ros.processes`), with its defaults (MediaPipe localisation, world landmarks, smoothing) on
ONNX Runtime (`--threads`, default 0: one per core; `--variant` full or lite; `--detect-every` N: the
palm detector looks for more hands every N frames while one is tracked; the last two default to the
node's defaults), `publish_overlay` false.
A camera process (this script with `--probe`) publishes one real photo with hands, letterboxed to
512x512 rgb8, with the benchmark camera's CameraInfo, at `--hz` for `--warmup-s` (not counted), pauses,
then for `--seconds`; it stamps each frame when sending it and listens to the node's left and right
hand outputs and /diagnostics. Scenes: `one` (one hand visible, data/real/mp_rock_one_hand.jpg: the
palm detector runs on every frame with `--detect-every 1`, as MediaPipe does while fewer than 2 hands
are tracked) and `two`
(two hands, data/real/mp_call_two_hands.jpg: both tracked, the landmark model reads both in one call
and the palm detector does not run).

Reported per scene: frames sent, received by the node, processed, dropped (the node's "frames
dropped": frames replaced in its one-frame slot while it was busy), lost on the way (sent, never
received), the output rate, latency from the image's stamp to both hand messages' arrival (p50 / p90 /
p99), the node's "pipeline, mean (ms)" (mean of its 1-second reports), hands found, and the cores the
node, the camera and other processes kept busy meanwhile. Writes a JSON (`--out`), prints a markdown
table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "hand_pose_ros") not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT / "hand_pose_ros"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from system_load import CpuMeter, machine  # noqa: E402

SCENES = {"one": "mp_rock_one_hand.jpg", "two": "mp_call_two_hands.jpg"}
HANDS_TOPIC = "/hands"  # the estimator in the root namespace
SETTLE_S = 2.5  # after sending: outputs under way, and two more diagnostics reports


def letterboxed_photo(name: str, size: int = 512) -> np.ndarray:
    """A photo of data/real scaled to fit size x size, centred on black, RGB."""
    import cv2

    image = cv2.cvtColor(cv2.imread(str(ROOT / "data" / "real" / name)), cv2.COLOR_BGR2RGB)
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = round(width * scale), round(height * scale)
    resized = cv2.resize(
        image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    canvas = np.zeros((size, size, 3), np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


# ---------------------------------------------------------------------------------- the camera process


def probe(args: argparse.Namespace) -> None:
    """Camera and listener in one process: publishes the frames, records what comes back, writes JSON."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from hand_pose_msgs.msg import Hands
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from hand_pose_core.bags.messages import stamp_ns
    from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
    from hand_pose_ros.messages import image_message, make_header
    from hand_pose_ros.transport import use_large_message_profile

    frame = letterboxed_photo(SCENES[args.scene])
    use_large_message_profile()
    rclpy.init()
    node = Node("node_rate_camera", enable_rosout=False)
    images = node.create_publisher(Image, "/camera/image", qos_profile_sensor_data)
    infos = node.create_publisher(CameraInfo, "/camera/camera_info", qos_profile_sensor_data)
    arrivals: dict[int, tuple[int, int]] = {}  # stamp: (arrival ns, hands)
    diagnostics: list[dict] = []
    lock = threading.Lock()

    def on_hands(message: Hands) -> None:
        with lock:
            arrivals[stamp_ns(message.header.stamp)] = (time.time_ns(), len(message.hands))

    def on_diagnostics(message: DiagnosticArray) -> None:
        for status in message.status:
            if status.name.startswith("hand_pose_estimator"):
                values = {v.key: v.value for v in status.values}
                with lock:
                    diagnostics.append(values | {"received_ns": time.time_ns()})

    reliable = QoSProfile(depth=100)
    node.create_subscription(Hands, HANDS_TOPIC, on_hands, reliable)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, reliable)
    camera = BENCHMARK_CAMERA

    def camera_info(stamp: int) -> CameraInfo:
        info = CameraInfo(
            header=make_header(stamp, "camera_optical"), width=camera.width, height=camera.height
        )
        info.k = camera.matrix.reshape(-1).tolist()
        info.p = np.hstack([camera.matrix, np.zeros((3, 1))]).reshape(-1).tolist()
        return info

    executor = SingleThreadedExecutor()
    executor.add_node(node)
    deadline = time.monotonic() + 60
    while images.get_subscription_count() == 0 or node.count_publishers(HANDS_TOPIC) == 0:
        executor.spin_once(timeout_sec=0.05)
        if time.monotonic() > deadline:
            raise SystemExit("no hand_pose_estimator to talk to")
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    time.sleep(1.0)

    def send(seconds: float) -> tuple[list[int], float, float]:
        stamps, period = [], 1.0 / args.hz
        cpu, start = time.process_time(), time.monotonic()
        for k in range(round(seconds * args.hz)):
            time.sleep(max(0.0, start + k * period - time.monotonic()))
            stamp = time.time_ns()
            infos.publish(camera_info(stamp))
            images.publish(image_message(frame, make_header(stamp, "camera_optical")))
            stamps.append(stamp)
        return stamps, time.monotonic() - start, time.process_time() - cpu

    send(args.warmup_s)
    time.sleep(SETTLE_S)
    with lock:
        before = dict(diagnostics[-1]) if diagnostics else {}
        mark = len(diagnostics)
    print("measuring", flush=True)  # the parent starts its CPU meter here
    stamps, sent_s, cpu_s = send(args.seconds)
    print("sent", flush=True)
    time.sleep(SETTLE_S)
    with lock:
        result = {
            "sent": stamps,
            "send_seconds": sent_s,
            "camera_cpu_s": cpu_s,
            "arrivals": {str(s): arrivals.get(s) for s in stamps},
            "diagnostics_before": before,
            "diagnostics": diagnostics[mark:],
        }
    Path(args.out).write_text(json.dumps(result))
    executor.shutdown()
    spinner.join(timeout=5)
    node.destroy_node()
    rclpy.shutdown()


# ------------------------------------------------------------------------------------------ the parent


def run_scene(scene: str, args: argparse.Namespace) -> dict:
    from hand_pose_ros.processes import ProcessGroup, node_command, ros_env

    parameters = {
        "publish_overlay": False,
        "backend": "onnxruntime",
        "threads": args.threads,
        "mediapipe_variant": args.variant,
        "detect_every": args.detect_every,
    }
    remaps = {"image": "/camera/image", "camera_info": "/camera/camera_info"}
    with tempfile.TemporaryDirectory() as folder, ProcessGroup(ros_env()) as group:
        out = Path(folder) / "probe.json"
        node = group.start(node_command("hand_pose_ros.estimator", parameters, remaps))
        node.wait_for("active: images from", timeout=120)
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--probe",
            "--scene",
            scene,
            "--out",
            str(out),
        ]
        command += ["--hz", str(args.hz), "--seconds", str(args.seconds), "--warmup-s", str(args.warmup_s)]
        camera = group.start(command)
        camera.wait_for("measuring", timeout=120)
        meter = CpuMeter({"node": node.process.pid, "camera": camera.process.pid})
        meter.start()
        camera.wait_for("sent", timeout=args.seconds + 60)
        load = meter.stop()
        if camera.wait(60) != 0:
            raise RuntimeError(f"camera process failed:\n{camera.output}\n--- node:\n{node.output}")
        if node.interrupt() != 0:
            raise RuntimeError(f"node failed:\n{node.output}")
        result = json.loads(out.read_text())
    return summarise(scene, result, load, node.output)


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarise(scene: str, result: dict, load: dict, node_log: str) -> dict:
    stamps = result["sent"]
    both = []  # stamps answered: (latency ms, hands found)
    for stamp in stamps:
        answer = result["arrivals"][str(stamp)]
        if answer:
            both.append(((answer[0] - stamp) / 1e6, answer[1]))
    latencies = [latency for latency, _ in both]
    reports = result["diagnostics"]
    final, before = (reports[-1] if reports else {}), result["diagnostics_before"]

    def counted(key: str) -> int | None:
        if key not in final:
            return None
        return int(final[key]) - int(before.get(key, 0) or 0)

    during = [r for r in reports if r["received_ns"] <= stamps[-1] + 1_100_000_000]
    pipeline_ms = [float(r["pipeline, mean (ms)"]) for r in during if r.get("pipeline, mean (ms)")]
    rates = [float(r["output rate (Hz)"]) for r in during[1:] if r.get("output rate (Hz)")]
    hands = [found for _, found in both]
    return {
        "scene": scene,
        "photo": SCENES[scene],
        "sent": len(stamps),
        "send_seconds": round(result["send_seconds"], 2),
        "received_by_node": counted("frames received"),
        "processed": counted("frames processed"),
        "dropped": counted("frames dropped"),
        "skipped": counted("frames skipped"),
        "lost_before_node": len(stamps) - counted("frames received") if "frames received" in final else None,
        "outputs_back": len(both),
        "output_rate_hz": len(both) / result["send_seconds"],
        "node_output_rate_hz_reports": {"median": percentile(rates, 50), "min": min(rates, default=None)},
        "latency_ms": {q: percentile(latencies, int(q[1:])) for q in ("p50", "p90", "p99")}
        | {"max": max(latencies, default=None)},
        "pipeline_mean_ms": {
            "mean_of_reports": float(np.mean(pipeline_ms)) if pipeline_ms else None,
            "reports": pipeline_ms,
        },
        "hands_per_output": {str(n): hands.count(n) for n in (0, 1, 2)},
        "camera_cpu_s": result["camera_cpu_s"],
        "while_measuring": load,
        "backend": final.get("backend"),
        "node_warnings": [line for line in node_log.splitlines() if "WARN" in line or "ERROR" in line][:10],
    }


def markdown(scenes: list[dict]) -> str:
    lines = [
        "| scene | sent | received | processed | dropped | lost | output rate Hz "
        "| latency p50 / p90 / p99 ms | pipeline mean ms | hands 0/1/2 | cores: node / camera / others |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in scenes:
        lat, load = s["latency_ms"], s["while_measuring"]
        by = load["cores_busy_by"]
        hands = "/".join(str(s["hands_per_output"][n]) for n in ("0", "1", "2"))
        pipeline = s["pipeline_mean_ms"]["mean_of_reports"]
        lines.append(
            f"| {s['scene']} ({s['photo']}) | {s['sent']} | {s['received_by_node']} | {s['processed']} "
            f"| {s['dropped']} | {s['lost_before_node']} | {s['output_rate_hz']:.1f} "
            f"| {lat['p50']:.0f} / {lat['p90']:.0f} / {lat['p99']:.0f} | {pipeline:.1f} | {hands} "
            f"| {by['node']:.2f} / {by['camera']:.2f} / {load['cores_busy_other_processes']:.2f} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    from hand_pose_ros.estimator import PARAMETERS

    node = {parameter.name: parameter.default for parameter in PARAMETERS}
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenes", nargs="+", choices=tuple(SCENES), default=list(SCENES))
    parser.add_argument("--seconds", type=float, default=20.0, help="measured sending time")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="frames sent first, not counted")
    parser.add_argument("--hz", type=float, default=30.0)
    parser.add_argument(
        "--threads", type=int, default=0, help="the node's ONNX Runtime threads (0: per core)"
    )
    parser.add_argument(
        "--variant", choices=("full", "lite"), default=node["mediapipe_variant"], help="MediaPipe's models"
    )
    parser.add_argument(
        "--detect-every",
        type=int,
        default=node["detect_every"],
        help="the node's detect_every: palm detector every N frames while a hand is tracked",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench" / "node_rate.json")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # the camera process
    parser.add_argument("--scene", choices=tuple(SCENES), help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.probe:
        probe(args)
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    scenes = []
    for scene in args.scenes:
        print(
            f"scene {scene}: {args.warmup_s:g} s warm-up, then {args.seconds:g} s at {args.hz:g} Hz",
            flush=True,
        )
        scenes.append(run_scene(scene, args))
    results = {
        "machine": machine(),
        "settings": {
            "hz": args.hz,
            "seconds": args.seconds,
            "warmup_s": args.warmup_s,
            "threads": args.threads,
            "variant": args.variant,
            "detect_every": args.detect_every,
        },
        "scenes": scenes,
    }
    args.out.write_text(json.dumps(results, indent=1))
    print(markdown(scenes))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
