"""Does `hand_pose_estimator` survive a storm of malformed messages, answer and count every frame?

    .venv/bin/python bench/storm.py --messages 10000

The node runs with its defaults; `test/ros_probe.py fuzz` (the suite's fuzz test, at scale) sends
`--messages` malformed images and camera infos of many kinds (bad encodings, steps and sizes, truncated
data, NaN, infinite or negative focal lengths, principal points far outside, unknown distortion, stamps
jumping back and forth), at about 100 a second, then a real photo twice. The inputs are reliable with a
deep queue so that DDS delivers everything and the counts are the node's own. Reported: whether the
node lived, whether the photo came back with its hand, the node's final counters and whether
processed + skipped + dropped = received, the skips by reason, and the wall time. Writes JSON to
`--out`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "hand_pose_ros") not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT / "hand_pose_ros"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from system_load import machine  # noqa: E402

PHOTO = ROOT / "data" / "real" / "mp_rock_one_hand.jpg"
CAMERA = {"image": "/camera/image", "camera_info": "/camera/camera_info"}


def storm(messages: int) -> dict:
    from hand_pose_ros.processes import ProcessGroup, node_command, ros_env

    parameters = {"smoothing": False} | {
        f"qos_overrides.{topic}.subscription.{policy}": value
        for topic in CAMERA.values()
        for policy, value in (("reliability", "reliable"), ("depth", 1000))
    }
    with tempfile.TemporaryDirectory() as work, ProcessGroup(ros_env()) as group:
        out = Path(work) / "probe.json"
        node = group.start(node_command("hand_pose_ros.estimator", parameters, CAMERA))
        node.wait_for("active: images from", timeout=120)
        start = time.monotonic()
        probe = group.start(
            [sys.executable, str(ROOT / "test" / "ros_probe.py"), "fuzz", "--image", str(PHOTO),
             "--out", str(out), "--frames", str(messages), "--reliable-images"]
        )  # fmt: skip
        if probe.wait(3600) != 0:
            raise RuntimeError(f"probe failed:\n{probe.output}\n--- node:\n{node.output}")
        seconds = time.monotonic() - start
        alive = node.process.poll() is None
        code = node.interrupt() if alive else node.process.returncode
        result = json.loads(out.read_text())
    final = result["diagnostics"][-1]
    counts = {what: int(final[f"frames {what}"]) for what in ("received", "processed", "skipped", "dropped")}
    answered = {message["stamp"]: message for message in result["hands"]}
    return {
        "messages": messages,
        "seconds": round(seconds, 1),
        "node alive after the storm": alive,
        "node exit code on Ctrl-C": code,
        "tracebacks in the node's log": node.output.count("Traceback"),
        "photo afterwards: hands found": [len(answered.get(s, {}).get("hands", [])) for s in result["sent"]],
        **counts,
        "processed + skipped + dropped == received": counts["processed"]
        + counts["skipped"]
        + counts["dropped"]
        == counts["received"],
        "answers published": len(result["hands"]),
        "camera_info refused": int(final["camera_info refused"]),
        "skipped by reason": final["skipped by reason"],
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench" / "storm.json")
    args = parser.parse_args()
    report = storm(args.messages)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    for key, value in report.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
