"""A camera and a listener in one process, for the node tests and the latency measurement.

    python test/ros_probe.py SCENARIO --image FRAME.jpg --out result.json [--frames N --hz R]
        [--image-topic /camera/image --camera-info-topic /camera/camera_info --node /hand_pose_estimator
         --hands-topic /hands --reliable-images --best-effort-hands --manage-lifecycle --overlays F.npz]

`bad_input`: an image before any camera_info, then camera_info, then a wrong encoding, a wrong step,
an empty image, an image of the wrong size and finally a good one. `rate`: N good frames at R Hz,
stamped when sent. `interfaces`: the lifecycle states (configure and activate from here with
--manage-lifecycle), the QoS each side offers, good frames, then `min_score` changed to 1 while running,
then a value out of range and a read-only parameter refused. `compressed` (--overlays FILE.npz): the
photo as JPEG CompressedImages with its pinhole camera_info, then `DOT_FRAMES` frames of dots seen
through a distorted camera (`DOTS_K`, `DOTS_D`: plumb_bob) as lossless PNG, whose overlays (the
rectified frames) it saves. `fuzz`: N malformed images and camera infos of many kinds, then the photo
twice. `pairing`: images matched to the camera_info of their stamp (see `pairing`). `event_frames`
(--image FRAMES.npz, array `frames` of (N, H, W, C) float32 event representations): each as a `32FC<C>`
image with its camera_info, then an rgb8 image, which event input cannot take. `views` (--image
RECORDING.vrs): an Aria recording's RGB and SLAM cameras (see `views`). Writes what came
back (hand messages with their stamps and arrival times, every diagnostics report, what `interfaces`
saw) as JSON. The photo's camera_info fits it (f = its width).
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from hand_pose_msgs.msg import Hands
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from PIL import Image as PILImage
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from hand_pose_core.bags.messages import stamp_ns
from hand_pose_ros.messages import image_message, make_header
from hand_pose_ros.transport import use_large_message_profile

# A 640x480 camera with strong plumb_bob distortion, and points seen through it (pixels, distorted).
DOTS_SIZE = (640, 480)
DOTS_K = np.array([[420.0, 0.0, 322.0], [0.0, 418.0, 236.0], [0.0, 0.0, 1.0]])
DOTS_D = np.array([-0.28, 0.09, 0.0008, -0.0005, -0.012])
DOTS_P = np.array([[380.0, 0.0, 318.0, 0.0], [0.0, 380.0, 240.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
DOT_FRAMES = 2
DOT_SIGMA_PX = 1.0


def distorted_dots() -> np.ndarray:
    """(N, 2) pixels in the distorted image of a grid of points, kept clear of the borders."""
    xs, ys = np.meshgrid(np.linspace(-0.55, 0.55, 7), np.linspace(-0.4, 0.4, 5))
    points = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)], axis=1)
    pixels, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), DOTS_K, DOTS_D)
    return pixels.reshape(-1, 2)


def dots_frame() -> np.ndarray:
    """A grey frame with a Gaussian dot at each of `distorted_dots`."""
    width, height = DOTS_SIZE
    v, u = np.mgrid[0:height, 0:width]
    frame = np.zeros((height, width))
    for x, y in distorted_dots():
        frame += 255 * np.exp(-((u - x) ** 2 + (v - y) ** 2) / (2 * DOT_SIGMA_PX**2))
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


class Probe(Node):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__("probe", enable_rosout=False)
        reliable = QoSProfile(depth=100)
        self.node = args.node
        image_qos = reliable if args.reliable_images else qos_profile_sensor_data
        self.images = self.create_publisher(Image, args.image_topic, image_qos)
        self.infos = self.create_publisher(CameraInfo, args.camera_info_topic, image_qos)
        self.hands_topic = args.hands_topic
        self.hands: list[dict] = []
        self.markers: list[dict] = []
        self.diagnostics: list[dict[str, str]] = []  # every report, oldest first
        self.interfaces: dict = {}  # what the interfaces scenario saw
        hands_qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.create_subscription(
            Hands, self.hands_topic, self._on_hands, hands_qos if args.best_effort_hands else reliable
        )
        self.create_subscription(
            MarkerArray, f"{self.hands_topic.rpartition('/')[0]}/markers", self._on_markers, reliable
        )
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)
        self.compressed = self.create_publisher(CompressedImage, f"{args.image_topic}/compressed", image_qos)
        self.overlays: dict[int, np.ndarray] = {}
        overlay = f"{self.hands_topic.rpartition('/')[0]}/overlay"
        self.create_subscription(Image, overlay, self._on_overlay, qos_profile_sensor_data)

    def _on_hands(self, message: Hands) -> None:
        self.hands.append(
            {
                "stamp": stamp_ns(message.header.stamp),
                "frame_id": message.header.frame_id,
                "size": [message.width, message.height],
                "hands": [
                    {
                        "side": hand.side,
                        "score": float(hand.score),
                        "box": [float(v) for v in hand.box],
                        "keypoints": [[p.x, p.y] for p in hand.keypoints],
                        "joints": [[p.x, p.y, p.z] for p in hand.joints],
                        "confidence": [float(c) for c in hand.confidence],
                    }
                    for hand in message.hands
                ],
                "arrival": time.time_ns(),
            }
        )

    def _on_overlay(self, message: Image) -> None:
        pixels = np.frombuffer(message.data, np.uint8).reshape(message.height, message.width, -1)
        self.overlays[stamp_ns(message.header.stamp)] = pixels[:, :, 0].copy()

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

    def camera_info(self, stamp: int, frame: np.ndarray) -> CameraInfo:
        height, width = frame.shape[:2]
        info = CameraInfo(header=make_header(stamp, "camera_optical"), width=width, height=height)
        matrix = np.array([[width, 0, (width - 1) / 2], [0, width, (height - 1) / 2], [0, 0, 1]], float)
        info.k = matrix.reshape(-1).tolist()
        info.p = np.hstack([matrix, np.zeros((3, 1))]).reshape(-1).tolist()
        return info

    def call(self, client, request, timeout: float = 30.0):
        """A service call from the main thread while the executor spins in another."""
        assert client.wait_for_service(timeout_sec=timeout), client.srv_name
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        return future.result()

    def lifecycle_state(self) -> str:
        client = self.create_client(GetState, f"{self.node}/get_state")
        return self.call(client, GetState.Request()).current_state.label

    def change_state(self, transition: int) -> bool:
        client = self.create_client(ChangeState, f"{self.node}/change_state")
        return self.call(client, ChangeState.Request(transition=Transition(id=transition)), 120.0).success

    def set_parameter(self, name: str, value) -> tuple[bool, str]:
        client = AsyncParameterClient(self, self.node)
        assert client.wait_for_services(timeout_sec=30)
        future = client.set_parameters([Parameter(name, value=value)])
        deadline = time.monotonic() + 30
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        (result,) = future.result().results
        return result.successful, result.reason

    def qos(self, topic: str, side: str) -> list[str]:
        infos = (
            self.get_publishers_info_by_topic(topic)
            if side == "publisher"
            else self.get_subscriptions_info_by_topic(topic)
        )
        return [f"{info.node_name}:{info.qos_profile.reliability.name}" for info in infos]


def bad_input(probe: Probe, frame: np.ndarray, _args) -> list[int]:
    stamps = []

    def send(message: Image, info: bool = True) -> None:
        stamp = time.time_ns()
        message.header = make_header(stamp, "camera_optical")
        if info:
            probe.infos.publish(probe.camera_info(stamp, frame))
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
        probe.infos.publish(probe.camera_info(stamp, frame))
        probe.images.publish(image_message(frame, make_header(stamp, "camera_optical")))
        stamps.append(stamp)
    return stamps


def event_frames(probe: Probe, frames: np.ndarray, _args) -> list[int]:
    stamps = []
    for frame in [*frames, np.zeros((*frames.shape[1:3], 3), np.uint8)]:
        stamp = time.time_ns()
        header = make_header(stamp, "event_camera")
        if frame.dtype == np.uint8:
            message = image_message(frame, header)
        else:
            height, width, channels = frame.shape
            data = np.ascontiguousarray(frame, "<f4").tobytes()
            message = Image(header=header, height=height, width=width, encoding=f"32FC{channels}")
            message.step, message.data = width * channels * 4, data
        probe.infos.publish(probe.camera_info(stamp, frame))
        probe.images.publish(message)
        stamps.append(stamp)
        time.sleep(0.5)
    return stamps


def send_frames(probe: Probe, frame: np.ndarray, count: int) -> list[int]:
    stamps = []
    for _ in range(count):
        stamp = time.time_ns()
        probe.infos.publish(probe.camera_info(stamp, frame))
        probe.images.publish(image_message(frame, make_header(stamp, "camera_optical")))
        stamps.append(stamp)
        time.sleep(0.5)
    return stamps


def malformed_image(rng: np.random.Generator, stamp: int) -> Image:
    """One of the ways an Image can be wrong (or, a quarter of the time, a small valid frame)."""
    width, height = int(rng.integers(1, 96)), int(rng.integers(1, 72))
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    message = image_message(pixels, make_header(stamp, "camera_optical"))
    kind = int(rng.integers(8))
    if kind == 0:
        message.encoding = str(rng.choice(["32FC1", "bayer_rggb8", "", "rgb8 ", "mono12"]))
    elif kind == 1:
        message.step = int(rng.integers(0, 3 * width))  # short rows
    elif kind == 2:
        message.data = bytes(message.data)[: int(rng.integers(0, len(message.data)))]  # truncated
    elif kind == 3:
        message.height, message.width = 0, 0
    elif kind == 4:
        message.width, message.height = 60000, 60000  # claims far more than it carries
    elif kind == 5:
        message.encoding = "yuv422"  # odd widths and wrong sizes among them
    return message


def malformed_camera_info(rng: np.random.Generator, stamp: int) -> CameraInfo:
    """One of the ways a CameraInfo can be wrong (or, a quarter of the time, a plausible one)."""
    width, height = int(rng.integers(1, 96)), int(rng.integers(1, 72))
    info = CameraInfo(header=make_header(stamp, "camera_optical"), width=width, height=height)
    matrix = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], float)
    kind = int(rng.integers(8))
    bad = {0: np.nan, 1: np.inf, 2: -1.0, 3: 1e9}
    if kind in bad:
        matrix[(0, 0) if kind != 3 else (0, 2)] = bad[kind]  # NaN, infinite, negative focal; far centre
    elif kind == 4:
        info.distortion_model, info.d = "fisheye_of_the_future", [0.1, 0.2, 0.0, 0.0]
    elif kind == 5:
        info.width = 0
    info.k = matrix.reshape(-1).tolist()
    info.p = np.hstack([matrix, np.zeros((3, 1))]).reshape(-1).tolist()
    return info


def fuzz(probe: Probe, frame: np.ndarray, args) -> list[int]:
    """`args.frames` malformed images and camera infos at about 100 Hz, stamps jumping back and forth,
    then the photo with its camera_info twice: those two must come back with their hand."""
    rng = np.random.default_rng(7)
    base = time.time_ns()
    for k in range(args.frames):
        stamp = base + int(rng.integers(-5_000_000_000, 5_000_000_000))
        if rng.random() < 0.5:
            probe.infos.publish(malformed_camera_info(rng, stamp))
        probe.images.publish(malformed_image(rng, stamp))
        if k % 10 == 0:
            time.sleep(0.1)
    probe.interfaces["fuzz images sent"] = args.frames
    time.sleep(2.0)
    return send_frames(probe, frame, 2)


def pairing(probe: Probe, frame: np.ndarray, args) -> list[int]:
    """Frames of two sizes, each after a camera_info of its own stamp and size (both infos first, then
    both frames); a refused camera_info (NaN focal length) just before a good one of the same stamp;
    then a frame with no camera_info near its stamp."""
    small = np.ascontiguousarray(frame[::2, ::2])
    base = time.time_ns()
    stamps = [base, base + 40_000_000, base + 80_000_000, base + 5_000_000_000]
    probe.infos.publish(probe.camera_info(stamps[0], frame))
    probe.infos.publish(probe.camera_info(stamps[1], small))
    time.sleep(0.3)
    probe.images.publish(image_message(frame, make_header(stamps[0], "camera_optical")))
    time.sleep(0.5)
    probe.images.publish(image_message(small, make_header(stamps[1], "camera_optical")))
    time.sleep(0.5)
    broken = probe.camera_info(stamps[2], frame)
    broken.k[0] = broken.p[0] = float("nan")
    probe.infos.publish(broken)
    probe.infos.publish(probe.camera_info(stamps[2], frame))
    time.sleep(0.3)
    probe.images.publish(image_message(frame, make_header(stamps[2], "camera_optical")))
    time.sleep(0.5)
    probe.images.publish(image_message(frame, make_header(stamps[3], "camera_optical")))
    return stamps


def compressed(probe: Probe, frame: np.ndarray, args) -> list[int]:
    stamps = []
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
    for _ in range(3):
        stamp = time.time_ns()
        probe.infos.publish(probe.camera_info(stamp, frame))
        header = make_header(stamp, "camera_optical")
        probe.compressed.publish(
            CompressedImage(header=header, format="rgb8; jpeg compressed bgr8", data=jpeg.tobytes())
        )
        stamps.append(stamp)
        time.sleep(0.5)
    png = cv2.imencode(".png", dots_frame())[1].tobytes()
    for _ in range(DOT_FRAMES):
        stamp = time.time_ns()
        info = CameraInfo(
            header=make_header(stamp, "camera_optical"), width=DOTS_SIZE[0], height=DOTS_SIZE[1]
        )
        info.distortion_model, info.d = "plumb_bob", DOTS_D.tolist()
        info.k, info.r, info.p = DOTS_K.ravel().tolist(), np.eye(3).ravel().tolist(), DOTS_P.ravel().tolist()
        probe.infos.publish(info)
        header = make_header(stamp, "camera_optical")
        probe.compressed.publish(
            CompressedImage(header=header, format="mono8; png compressed mono8", data=png)
        )
        stamps.append(stamp)
        time.sleep(0.5)
    time.sleep(1.0)
    np.savez(args.overlays, **{str(stamp): image for stamp, image in probe.overlays.items()})
    return stamps


def views(probe: Probe, _frame, args) -> list[int]:
    """The Aria recording `--image` (a VRS file) as the glasses send it: raw RGB frames on the image topic
    and the SLAM cameras' on slam_left/image and slam_right/image, in capture order with their capture
    stamps, a frame every 0.3 s; the left SLAM camera's first frame replaced by one of the wrong size."""
    from hand_pose_core.geometry.aria import CAMERA_LABELS, vrs_frames

    topic = {"camera-slam-left": "/slam_left/image", "camera-slam-right": "/slam_right/image"}
    publishers = {
        label: probe.create_publisher(Image, name, QoSProfile(depth=10)) for label, name in topic.items()
    }
    deadline = time.monotonic() + 30
    while any(p.get_subscription_count() == 0 for p in publishers.values()):
        assert time.monotonic() < deadline, "the estimator does not subscribe to the SLAM cameras"
        time.sleep(0.05)
    stamps, broken = [], False
    for frame in vrs_frames(args.image, CAMERA_LABELS):
        pixels = frame.image
        if frame.label == "camera-slam-left" and not broken:
            pixels, broken = pixels[::2, ::2].copy(), True
        message = image_message(pixels, make_header(frame.capture_ns, frame.label.replace("-", "_")))
        if frame.label == "camera-rgb":
            time.sleep(0.3)
            probe.images.publish(message)
            stamps.append(frame.capture_ns)
        else:
            publishers[frame.label].publish(message)
    time.sleep(1.5)
    return stamps


def interfaces(probe: Probe, frame: np.ndarray, args) -> list[int]:
    seen = probe.interfaces
    seen["image subscription"] = probe.qos(args.image_topic, "subscription")
    seen["hands publisher"] = probe.qos(args.hands_topic, "publisher")
    stamps = send_frames(probe, frame, 3)
    seen["min_score=1.0"] = probe.set_parameter("min_score", 1.0)
    time.sleep(0.5)
    seen["tuned from"] = time.time_ns()
    stamps += send_frames(probe, frame, 3)
    seen["min_score=2.0"] = probe.set_parameter("min_score", 2.0)
    seen["mode=potter"] = probe.set_parameter("mode", "potter")
    return stamps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "scenario",
        choices=("bad_input", "rate", "interfaces", "compressed", "fuzz", "pairing", "event_frames", "views"),
    )
    parser.add_argument("--overlays", help="compressed: where to save the overlays received (npz)")
    parser.add_argument("--image", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--hz", type=float, default=30.0)
    parser.add_argument("--image-topic", default="/camera/image")
    parser.add_argument("--camera-info-topic", default="/camera/camera_info")
    parser.add_argument("--node", default="/hand_pose_estimator")
    parser.add_argument("--hands-topic", default="/hands")
    parser.add_argument("--reliable-images", action="store_true")
    parser.add_argument("--best-effort-hands", action="store_true")
    parser.add_argument("--manage-lifecycle", action="store_true")
    args = parser.parse_args()
    if args.image.endswith(".npz"):
        frame = np.load(args.image)["frames"]
    elif args.image.endswith(".vrs"):
        frame = None
    else:
        frame = np.asarray(PILImage.open(args.image).convert("RGB"))
    use_large_message_profile()
    rclpy.init()
    probe = Probe(args)
    executor = SingleThreadedExecutor()
    executor.add_node(probe)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    if args.manage_lifecycle:
        probe.interfaces["states"] = [probe.lifecycle_state()]
        probe.interfaces["configured"] = probe.change_state(Transition.TRANSITION_CONFIGURE)
        probe.interfaces["states"].append(probe.lifecycle_state())
        probe.interfaces["activated"] = probe.change_state(Transition.TRANSITION_ACTIVATE)
        probe.interfaces["states"].append(probe.lifecycle_state())
    deadline = time.monotonic() + 60
    images = probe.compressed if args.scenario == "compressed" else probe.images
    while images.get_subscription_count() == 0 or probe.count_publishers(args.hands_topic) == 0:
        time.sleep(0.05)
        if time.monotonic() > deadline:
            raise SystemExit("no hand_pose_estimator to talk to")
    time.sleep(1.0)
    scenarios = {
        "bad_input": bad_input,
        "rate": rate,
        "interfaces": interfaces,
        "compressed": compressed,
        "fuzz": fuzz,
        "pairing": pairing,
        "event_frames": event_frames,
        "views": views,
    }
    stamps = scenarios[args.scenario](probe, frame, args)
    time.sleep(2.5)  # outputs still under way, and one more diagnostics report
    result = {
        "sent": stamps,
        "hands": probe.hands,
        "markers": probe.markers,
        "diagnostics": probe.diagnostics,
        "interfaces": probe.interfaces,
    }
    with open(args.out, "w") as file:
        json.dump(result, file)
    print("probe done", flush=True)
    executor.shutdown()
    spinner.join()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
