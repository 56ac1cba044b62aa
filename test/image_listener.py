"""Test helper, run as its own process: what a real subscriber receives from a player node.

    python image_listener.py [--wait-for-publishers] [--reliable] OUT.json TIMEOUT_S TOPIC=COUNT [...]

Subscribes to each sensor_msgs/Image TOPIC with the sensor-data QoS (reliable with `--reliable`, for a
publisher overridden to reliable: best effort may drop a large image on a loaded machine), creates
OUT.json.ready once the subscriptions exist, and writes OUT.json (per topic: stamp in ns, frame_id,
encoding, width, height, step, data size and CRC-32 of each message) when every topic has COUNT
messages or TIMEOUT_S has passed; also every /clock time it heard (in ns, under "/clock").
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from pathlib import Path

import rclpy
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image

from hand_pose_core.bags.messages import stamp_ns
from hand_pose_ros.transport import use_large_message_profile


def main(argv: list[str]) -> int:
    flags = {"--wait-for-publishers", "--reliable"}
    wait_for_publishers, reliable = "--wait-for-publishers" in argv, "--reliable" in argv
    argv = [arg for arg in argv if arg not in flags]
    out, timeout_s = Path(argv[0]), float(argv[1])
    expected = {topic: int(count) for topic, count in (arg.split("=") for arg in argv[2:])}
    received: dict[str, list[dict]] = {topic: [] for topic in expected}
    clock: list[int] = []

    def record(topic: str, message: Image) -> None:
        received[topic].append(
            {
                "stamp_ns": stamp_ns(message.header.stamp),
                "frame_id": message.header.frame_id,
                "encoding": message.encoding,
                "width": message.width,
                "height": message.height,
                "step": message.step,
                "size": len(message.data),
                "crc32": zlib.crc32(memoryview(message.data)),
            }
        )

    use_large_message_profile()
    rclpy.init(args=[])
    node = rclpy.create_node("image_listener")
    image_qos = QoSProfile(depth=100) if reliable else qos_profile_sensor_data
    for topic in expected:
        node.create_subscription(Image, topic, lambda message, topic=topic: record(topic, message), image_qos)
    node.create_subscription(
        Clock, "/clock", lambda m: clock.append(stamp_ns(m.clock)), QoSProfile(depth=100)
    )
    if wait_for_publishers:  # a publisher that exists already: matched both ways before "ready"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not all(node.count_publishers(t) for t in expected):
            rclpy.spin_once(node, timeout_sec=0.05)
        settle = time.monotonic() + 1.0
        while time.monotonic() < settle:
            rclpy.spin_once(node, timeout_sec=0.05)
    Path(f"{out}.ready").touch()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(len(received[t]) < n for t, n in expected.items()):
        rclpy.spin_once(node, timeout_sec=0.05)
    drain = time.monotonic() + 1.0  # /clock is another topic: its last messages may come after the frames
    while time.monotonic() < drain:
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.shutdown()
    out.write_text(json.dumps(received | {"/clock": clock}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
