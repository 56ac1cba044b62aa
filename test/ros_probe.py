"""A camera and a listener in one process, for the node tests and the latency measurement.

    python test/ros_probe.py SCENARIO --image FRAME.jpg --out result.json [--frames N --hz R]

`bad_input`: an image before any camera_info, then camera_info, then a wrong encoding, a wrong step,
an empty image, an image of the wrong size and finally a good one. `rate`: N good frames at R Hz,
stamped when sent. Writes what came back (hand messages with their stamps and arrival times, every
diagnostics report) as JSON.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from PIL import Image as PILImage
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from hand_pose_core.bags.messages import stamp_ns
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
from hand_pose_ros.messages import image_message, make_header
from hand_pose_ros.transport import use_large_message_profile

NODE = "/hand_pose_estimator"


class Probe(Node):
    def __init__(self) -> None:
        super().__init__("probe", enable_rosout=False)
        self.images = self.create_publisher(Image, "/camera/image", qos_profile_sensor_data)
        self.infos = self.create_publisher(CameraInfo, "/camera/camera_info", qos_profile_sensor_data)
        self.hands: list[dict] = []
        self.markers: list[dict] = []
        self.diagnostics: list[dict[str, str]] = []  # every report, oldest first
        reliable = QoSProfile(depth=100)
        self.create_subscription(PoseArray, f"{NODE}/right_hand", self._on_hand, reliable)
        self.create_subscription(MarkerArray, f"{NODE}/markers", self._on_markers, reliable)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)

    def _on_hand(self, message: PoseArray) -> None:
        self.hands.append(
            {
                "stamp": stamp_ns(message.header.stamp),
                "frame_id": message.header.frame_id,
                "poses": len(message.poses),
                "arrival": time.time_ns(),
            }
        )

    def _on_markers(self, message: MarkerArray) -> None:
        stamps = {stamp_ns(m.header.stamp) for m in message.markers}
        self.markers.append(
            {"stamps": sorted(stamps), "arrival": time.time_ns(), "count": len(message.markers)}
        )

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        for status in message.status:
            if status.name.startswith("hand_pose_estimator"):
                values = {v.key: v.value for v in status.values}
                self.diagnostics.append(values | {"level": int.from_bytes(status.level)})

    def camera_info(self, stamp: int) -> CameraInfo:
        camera = BENCHMARK_CAMERA
        info = CameraInfo(
            header=make_header(stamp, "camera_optical"), width=camera.width, height=camera.height
        )
        info.k = camera.matrix.reshape(-1).tolist()
        info.p = np.hstack([camera.matrix, np.zeros((3, 1))]).reshape(-1).tolist()
        return info


def bad_input(probe: Probe, frame: np.ndarray, _args) -> list[int]:
    stamps = []

    def send(message: Image, info: bool = True) -> None:
        stamp = time.time_ns()
        message.header = make_header(stamp, "camera_optical")
        if info:
            probe.infos.publish(probe.camera_info(stamp))
        probe.images.publish(message)
        stamps.append(stamp)
        time.sleep(1.5)

    good = image_message(frame, make_header(0, ""))
    send(good, info=False)  # no calibration yet
    wrong_encoding = image_message(frame, make_header(0, ""))
    wrong_encoding.encoding = "32FC1"  # float depth: no hand pose from it
    send(wrong_encoding)
    wrong_step = image_message(frame, make_header(0, ""))
    wrong_step.step += 7
    send(wrong_step)
    send(Image(height=0, width=0, encoding="rgb8", step=0))
    send(image_message(frame[::2, ::2].copy(), make_header(0, "")))
    send(image_message(frame, make_header(0, "")))
    return stamps


def rate(probe: Probe, frame: np.ndarray, args) -> list[int]:
    stamps = []
    period = 1.0 / args.hz
    start = time.monotonic()
    for k in range(args.frames):
        time.sleep(max(0.0, start + k * period - time.monotonic()))
        stamp = time.time_ns()
        probe.infos.publish(probe.camera_info(stamp))
        probe.images.publish(image_message(frame, make_header(stamp, "camera_optical")))
        stamps.append(stamp)
    return stamps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=("bad_input", "rate"))
    parser.add_argument("--image", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--hz", type=float, default=30.0)
    args = parser.parse_args()
    frame = np.asarray(PILImage.open(args.image).convert("RGB"))
    use_large_message_profile()
    rclpy.init()
    probe = Probe()
    executor = SingleThreadedExecutor()
    executor.add_node(probe)
    deadline = time.monotonic() + 30
    while probe.images.get_subscription_count() == 0 or probe.count_publishers(f"{NODE}/right_hand") == 0:
        executor.spin_once(timeout_sec=0.05)
        if time.monotonic() > deadline:
            raise SystemExit("no hand_pose_estimator to talk to")
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    stamps = {"bad_input": bad_input, "rate": rate}[args.scenario](probe, frame, args)
    time.sleep(2.5)  # outputs still under way, and one more diagnostics report
    result = {
        "sent": stamps,
        "hands": probe.hands,
        "markers": probe.markers,
        "diagnostics": probe.diagnostics,
    }
    with open(args.out, "w") as file:
        json.dump(result, file)
    print("probe done", flush=True)
    executor.shutdown()
    spinner.join()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
