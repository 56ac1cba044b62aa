"""`hand_pose_estimator`: images in, 3D hands out, as RViz markers and pose arrays.

A thin adapter over `hand_pose_core.pipeline.HandPosePipeline`. The image callback only leaves the frame
in a one-frame slot; a worker thread runs the pipeline on the newest frame, so inference never blocks the
executor and frames that arrive while it is busy are dropped and counted, never queued. Every output
carries the input image's header; 3D joints are in the camera's optical frame (x right, y down,
z forward, metres). Bad frames are skipped, counted in /diagnostics and logged (throttled), and the node
keeps running.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseArray
from PIL import Image as PILImage
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from hand_pose_core.bags.messages import NANOSECONDS, camera_from_info, stamp_ns
from hand_pose_core.bags.names import (
    DIAGNOSTICS_TOPIC,
    ESTIMATOR_NODE,
    HAND_OUTPUTS,
    MARKERS_OUTPUT,
    OVERLAY_OUTPUT,
)
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.aria import AriaUndistorter
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA, ORIENTATIONS, Turn
from hand_pose_core.geometry.skeleton import HAND_SIDES
from hand_pose_core.live.drawing import draw_skeleton
from hand_pose_core.live.pipeline import LOCALISATIONS, FrameResult, HandPosePipeline, PipelineConfig
from hand_pose_core.runtime.bundled import model_or_bundled
from hand_pose_core.runtime.engines import BACKENDS
from hand_pose_ros.frame_slot import LatestFrameSlot
from hand_pose_ros.messages import hand_markers, image_array, image_message, pose_array
from hand_pose_ros.node_base import Parameter, declare_parameters, run_node

NODE_NAME = ESTIMATOR_NODE
CAMERA_SOURCES = ("camera_info", "aria")
MODES = ("world", "lifter", "potter")
NEW_RECORDING_GAP_NS = NANOSECONDS  # a jump in stamps (or a step back) starts fresh tracks
DIAGNOSTICS_PERIOD_S = 1.0
LOG_THROTTLE_S = 5.0
CAMERA_INFO_GRACE_S = 1.0  # a first image may arrive just before its camera_info
OUTPUT_QOS = QoSProfile(depth=10)  # reliable: consumers (RViz, recorders) must not miss hands


PARAMETERS = (
    Parameter("image_topic", "image", "sensor_msgs/Image input (sensor-data QoS)"),
    Parameter("camera_info_topic", "camera_info", "sensor_msgs/CameraInfo of the rectified image"),
    Parameter(
        "camera_source",
        "camera_info",
        "camera_info: rectified pinhole images; aria: raw fisheye Aria RGB, undistorted to the "
        "benchmark's 512x512 f=150 camera",
        choices=CAMERA_SOURCES,
    ),
    Parameter("aria_calibration", "", "device calibration JSON or VRS recording (camera_source aria)"),
    Parameter(
        "rotation",
        "landscape",
        "which way up frames are processed and drawn: landscape (as Aria's RGB sensor records, sideways) or "
        "portrait (upright). Aria: the undistorted frame is turned so; camera_info: the images arrive so. "
        "Each model gets the frame turned its own way, so this changes only the overlay, not the results "
        "(3D is in the input image's optical frame)",
        choices=ORIENTATIONS,
    ),
    Parameter(
        "localisation",
        "mediapipe",
        "where the hands are in 2D: mediapipe (MediaPipe Hands' models, real hands) or detector (our "
        "trainable whole-image detector; the bundled one knows synthetic hands only)",
        choices=LOCALISATIONS[:2],
    ),
    Parameter(
        "mode",
        "world",
        "3D stage: world (MediaPipe's metric world landmarks; localisation mediapipe), lifter (2D "
        "keypoints to 3D) or potter (image crop to 3D)",
        choices=MODES,
    ),
    Parameter(
        "mediapipe_variant",
        "lite",
        "MediaPipe's models: lite (holds 30 Hz with two hands on 2 CPU cores), or full (a little more exact)",
        choices=("full", "lite"),
    ),
    Parameter("palm_model", "", "MediaPipe palm detector ONNX file; empty: bundled"),
    Parameter("landmark_model", "", "MediaPipe hand landmark ONNX file; empty: bundled"),
    Parameter("lifter_model", "", "lifter checkpoint (.pt), ONNX file or TensorRT engine; empty: bundled"),
    Parameter("potter_model", "", "POTTER checkpoint (.pt), ONNX file or TensorRT engine; empty: bundled"),
    Parameter(
        "detector_model", "", "detector checkpoint (.pt), ONNX file or TensorRT engine; empty: bundled"
    ),
    Parameter(
        "backend",
        "auto",
        "auto: TensorRT when usable, else ONNX Runtime (checkpoints: PyTorch)",
        choices=BACKENDS,
    ),
    Parameter("force_engine_update", False, "rebuild cached TensorRT engines from their ONNX files"),
    Parameter("threads", 0, "ONNX Runtime CPU threads (0: one per core)", integers=(0, 256)),
    Parameter(
        "detect_every",
        5,
        "while hands are tracked, look for more every N frames: MediaPipe's palm detector (mediapipe), "
        "the detector (detector with potter)",
        integers=(1, 100),
    ),
    Parameter("min_score", 0.5, "presence probability for a detected hand to count", floats=(0.0, 1.0)),
    Parameter("smoothing", True, "One-Euro filter on camera-frame joints"),
    Parameter("min_cutoff_hz", 1.0, "One-Euro minimum cutoff frequency", floats=(0.01, 100.0)),
    Parameter("beta", 5.0, "One-Euro speed coefficient (per m/s)", floats=(0.0, 1000.0)),
    Parameter("publish_overlay", True, "publish ~/overlay, the processed image with the 2D skeletons"),
)


@dataclass
class Counters:
    """What the node did since start (totals) and since the last diagnostics report (window)."""

    received: int = 0
    processed: int = 0
    frames_skipped: int = 0
    hands_skipped: int = 0
    reasons: Counter = field(default_factory=Counter)  # every skip: frames, hands, camera infos
    last_skip: str = ""
    window_received: int = 0
    window_processed: int = 0
    window_skipped: int = 0
    dropped_before_window: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    pipeline_ms: list[float] = field(default_factory=list)


class HandPoseEstimator(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        value = declare_parameters(self, PARAMETERS)
        self.rotation = value["rotation"]
        config = PipelineConfig(
            value["localisation"],
            value["detect_every"],
            value["min_score"],
            value["smoothing"],
            value["min_cutoff_hz"],
            value["beta"],
            orientation=self.rotation,
            variant=value["mediapipe_variant"],
        )
        self.undistorter = None
        self.camera_ready = threading.Event()
        self.pipeline = self._load_pipeline(value, config)
        self.publish_overlay = value["publish_overlay"]
        self.backend = self.pipeline.describe()
        # Outputs go out in the input image's optical frame: for Aria the sensor's (landscape) frame.
        self.to_output = Turn(
            self.rotation, "landscape" if value["camera_source"] == "aria" else self.rotation
        )
        if value["camera_source"] == "aria":
            path = value["aria_calibration"]
            if not path:
                raise InputError(
                    "camera_source aria needs the aria_calibration parameter (a JSON or VRS file)"
                )
            self.undistorter = AriaUndistorter.from_file(Path(path), orientation=self.rotation)
            self.pipeline.set_camera(self.undistorter.camera)
            self.camera_ready.set()
        else:
            self.create_subscription(
                CameraInfo, value["camera_info_topic"], self._on_camera_info, qos_profile_sensor_data
            )
        self.create_subscription(Image, value["image_topic"], self._on_image, qos_profile_sensor_data)
        self.hand_publishers = {
            side: self.create_publisher(PoseArray, f"~/{HAND_OUTPUTS[side]}", OUTPUT_QOS)
            for side in HAND_SIDES
        }
        self.markers = self.create_publisher(MarkerArray, f"~/{MARKERS_OUTPUT}", OUTPUT_QOS)
        self.overlay = self.create_publisher(Image, f"~/{OVERLAY_OUTPUT}", qos_profile_sensor_data)
        self.diagnostics = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, OUTPUT_QOS)
        self.counters = Counters()
        self.lock = threading.Lock()
        self.window_start = time.monotonic()
        self.last_stamp: int | None = None
        self.slot: LatestFrameSlot[Image] = LatestFrameSlot()
        self.worker = threading.Thread(target=self._work, name="hand_pose_inference", daemon=True)
        self.worker.start()
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        source = (
            "Aria calibration " + value["aria_calibration"]
            if self.undistorter
            else value["camera_info_topic"]
        )
        image_topic = self.resolve_topic_name(value["image_topic"])
        self.get_logger().info(
            f"{value['mode']} on {self.backend}; images from {image_topic}, camera from {source}"
        )

    def _load_pipeline(self, value: dict, config: PipelineConfig) -> HandPosePipeline:
        """The models named by the parameters; the bundled ones where empty."""
        mode = value["mode"]
        detector = config.localisation == "detector"
        return HandPosePipeline.load(
            model_or_bundled(value[f"{mode}_model"], mode) if mode != "world" else None,
            BENCHMARK_CAMERA,  # replaced by the real camera before the first frame is processed
            model_or_bundled(value["detector_model"], "detector") if detector else None,
            config,
            palm_model=value["palm_model"] or None,
            landmark_model=value["landmark_model"] or None,
            backend=value["backend"],
            threads=value["threads"] or None,
            rebuild=value["force_engine_update"],
        )

    # ------------------------------------------------------------------------------------ callbacks

    def _on_camera_info(self, message: CameraInfo) -> None:
        try:
            camera = camera_from_info(message)
        except InputError as exc:
            self._skip(f"camera_info: {exc}", what="camera_info")
            return
        if not self.camera_ready.is_set() or camera != self.pipeline.camera:
            self.pipeline.set_camera(camera)
            self.camera_ready.set()
            self.get_logger().info(f"camera from camera_info: {camera}")

    def _on_image(self, message: Image) -> None:
        with self.lock:
            self.counters.received += 1
            self.counters.window_received += 1
        self.slot.put(message)

    # ---------------------------------------------------------------------------------------- worker

    def _work(self) -> None:
        while not self.slot.closed:
            message = self.slot.take(timeout=0.2)
            if message is None:
                continue
            try:
                self._process(message)
            except Exception as exc:  # the node must outlive any single frame; the cause is logged
                self.get_logger().error(
                    f"frame at {stamp_ns(message.header.stamp)} ns failed: {type(exc).__name__}: {exc}",
                    throttle_duration_sec=LOG_THROTTLE_S,
                )
                self._skip(f"internal error: {type(exc).__name__}")

    def _process(self, message: Image) -> None:
        header = message.header
        if not self.camera_ready.wait(CAMERA_INFO_GRACE_S):
            self._skip("no calibration yet: waiting for camera_info")
            self._publish(header, FrameResult())
            return
        try:
            image = image_array(message)
            if self.undistorter is not None:
                image = self.undistorter.undistort(image, "image")
        except InputError as exc:
            self._skip(f"image: {exc}")
            self._publish(header, FrameResult())
            return
        pipeline = self.pipeline
        stamp = stamp_ns(header.stamp)
        if self.last_stamp is not None and not 0 <= stamp - self.last_stamp <= NEW_RECORDING_GAP_NS:
            pipeline.reset()
        self.last_stamp = stamp
        start = time.perf_counter()
        result = pipeline.process(image, stamp / NANOSECONDS)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        for side, reason in result.skipped:
            self._skip(f"{side}: {reason}", what="frame" if side == "frame" else "hand")
        kept = []
        for hand in result.hands:
            if hand.camera is None or not np.isfinite(hand.camera).all():
                self._skip(f"{hand.side}: no finite camera-frame joints", what="hand")
                continue
            kept.append(hand)
        result.hands = kept
        self._publish(header, result, image)
        latency_ms = (self.get_clock().now().nanoseconds - stamp) / 1e6
        with self.lock:
            self.counters.processed += 1
            self.counters.window_processed += 1
            self.counters.pipeline_ms.append(elapsed_ms)
            self.counters.latencies_ms.append(latency_ms)

    def _publish(self, header: Header, result: FrameResult, image: np.ndarray | None = None) -> None:
        found = {hand.side: hand for hand in result.hands}
        markers = MarkerArray()
        for side in HAND_SIDES:
            hand = found.get(side)
            joints = self.to_output.points_3d(hand.camera) if hand is not None else None
            self.hand_publishers[side].publish(pose_array(header, joints))
            markers.markers += hand_markers(header, side, joints)
        self.markers.publish(markers)
        # Drawing costs the worker time: only for someone who listens.
        if image is not None and self.publish_overlay and self.overlay.get_subscription_count() > 0:
            canvas = PILImage.fromarray(image).convert("RGB")
            for hand in result.hands:
                draw_skeleton(canvas, hand.keypoints, hand.side, hand.box)
            self.overlay.publish(image_message(np.asarray(canvas), header))

    def _skip(self, reason: str, what: str = "frame") -> None:
        """Count and log (throttled) a frame, hand or camera_info message that gave no output."""
        with self.lock:
            self.counters.frames_skipped += what == "frame"
            self.counters.hands_skipped += what == "hand"
            self.counters.reasons[reason.split(":")[0]] += 1
            self.counters.window_skipped += 1
            self.counters.last_skip = reason
        self.get_logger().warning(f"skipped: {reason}", throttle_duration_sec=LOG_THROTTLE_S)

    # ----------------------------------------------------------------------------------- diagnostics

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        with self.lock:
            counters, seconds = self.counters, max(now - self.window_start, 1e-9)
            latencies, pipeline_ms = counters.latencies_ms, counters.pipeline_ms
            values = {
                "input rate (Hz)": f"{counters.window_received / seconds:.2f}",
                "output rate (Hz)": f"{counters.window_processed / seconds:.2f}",
                "latency from stamp, mean (ms)": f"{np.mean(latencies):.1f}" if latencies else "",
                "latency from stamp, max (ms)": f"{np.max(latencies):.1f}" if latencies else "",
                "pipeline, mean (ms)": f"{np.mean(pipeline_ms):.2f}" if pipeline_ms else "",
                "frames received": str(counters.received),
                "frames processed": str(counters.processed),
                "frames dropped": str(self.slot.dropped),
                "frames skipped": str(counters.frames_skipped),
                "hands skipped": str(counters.hands_skipped),
                "skipped by reason": ", ".join(f"{k}: {n}" for k, n in counters.reasons.items()),
                "last skip": counters.last_skip,
                "backend": self.backend,
            }
            troubled = counters.window_skipped or self.slot.dropped > counters.dropped_before_window
            counters.window_received = counters.window_processed = counters.window_skipped = 0
            counters.dropped_before_window = self.slot.dropped
            counters.latencies_ms, counters.pipeline_ms = [], []
            self.window_start = now
        waiting = not self.camera_ready.is_set()
        level = DiagnosticStatus.WARN if waiting or troubled else DiagnosticStatus.OK
        message = "waiting for camera_info" if waiting else f"{values['output rate (Hz)']} Hz out"
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_name()}: pipeline",
            message=message,
            hardware_id=self.backend,
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics.publish(array)

    def stop(self) -> None:
        self.slot.close()
        self.worker.join(timeout=5.0)


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node(NODE_NAME, HandPoseEstimator, rclpy.spin, HandPoseEstimator.stop, args))


if __name__ == "__main__":
    main()
