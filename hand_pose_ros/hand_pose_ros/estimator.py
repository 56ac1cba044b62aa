"""`hand_pose_estimator`: images in, 3D hands out, as typed `hand_pose_msgs/Hands` and RViz markers.

A thin adapter over `hand_pose_core.live.pipeline.HandPosePipeline`, as a lifecycle node: configure
loads the models, activate subscribes (the launch files start the players once it is active), and with
`autostart` (the default) it does both itself. The image callback only leaves the frame in a one-frame
slot; a worker thread runs the pipeline on the newest frame, so inference never blocks the executor and
frames that arrive while it is busy are dropped and counted, never queued.

Topics are relative (`image`, or `image/compressed` with `image_transport: compressed`, and
`camera_info` in; `hands`, `markers`, `overlay` out), renamed by remapping. Raw images of a camera whose
camera_info has distortion are rectified here with OpenCV maps built once per calibration (as image_proc
would); `rectify: false` for images that are rectified already. The inputs take the sensor-data QoS of
camera drivers, the outputs are reliable; both can be overridden with
`qos_overrides.<topic>.<publisher|subscription>.<policy>` parameters. Every output carries the input
image's header; 3D joints are in the camera's optical frame (x right, y down, z forward, metres). Bad
frames are answered empty, counted in /diagnostics and logged (throttled).

Event cameras (`input`): `event_packets` takes `events` (event_camera_msgs/EventPacket, any encoding
`events.decode` knows; reliable, as decoding runs from one packet to the next), decodes each packet in
arrival order and cuts windows by event time (`events.windows`: `event_rate_hz` a second, or one per
fixed count of events, as the model's card says); each window is a frame, answered with the window's end
as its stamp. `event_frames` takes representations already drawn, `32FC<n>` images on `image`. Event
models (their card names the representation) see these in place of images; the camera is the latest
camera_info, or without one a 65-degree field of view across the sensor.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import ChainMap, Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from hand_pose_msgs.msg import Hands
from PIL import Image as PILImage
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter as RosParameter
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from hand_pose_core.bags.messages import NANOSECONDS, calibration_from_info, decode_event_frame, stamp_ns
from hand_pose_core.bags.names import (
    CAMERA_INFO_INPUT,
    DIAGNOSTICS_TOPIC,
    ESTIMATOR_NODE,
    EVENTS_INPUT,
    HANDS_OUTPUT,
    IMAGE_INPUT,
    MARKERS_OUTPUT,
    OVERLAY_OUTPUT,
    SLAM_INPUTS,
)
from hand_pose_core.errors import InputError
from hand_pose_core.events.evt3 import prepare_evt3_decoder
from hand_pose_core.events.representations import to_rgb
from hand_pose_core.events.windows import EventStream, EventWindow
from hand_pose_core.geometry.aria import (
    RGB_LABEL,
    SLAM_LABELS,
    AriaUndistorter,
    device_views,
    load_device_calibration,
)
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA, ORIENTATIONS, PinholeCamera, Turn
from hand_pose_core.geometry.rectify import Rectifier, rectifier_for
from hand_pose_core.geometry.skeleton import HAND_SIDES
from hand_pose_core.live.drawing import draw_mesh, draw_skeleton
from hand_pose_core.live.multiview import MultiViewPipeline, ViewFrames
from hand_pose_core.live.photos import default_focal
from hand_pose_core.live.pipeline import LOCALISATIONS, TUNABLE, FrameResult, HandPosePipeline, PipelineConfig
from hand_pose_core.runtime.bundled import model_or_bundled
from hand_pose_core.runtime.engines import BACKENDS
from hand_pose_core.runtime.tensorrt import default_engine_cache
from hand_pose_ros.frame_slot import LatestFrameSlot
from hand_pose_ros.messages import hand_markers, hands_message, image_array, image_message, mesh_marker
from hand_pose_ros.node_base import Parameter, declare_parameters, own_copy, run_node

NODE_NAME = ESTIMATOR_NODE
CAMERA_SOURCES = ("camera_info", "aria")
CAMERA_SETS = ("rgb", "rgb+slam")
TRANSPORTS = ("raw", "compressed")  # image_transport's names: sensor_msgs/Image, or CompressedImage
MODES = ("world", "lifter", "potter")
INPUTS = ("image", "event_frames", "event_packets")
NEW_RECORDING_GAP_NS = NANOSECONDS  # a jump in stamps (or a step back) starts fresh tracks
DIAGNOSTICS_PERIOD_S = 1.0
LOG_THROTTLE_S = 5.0
CAMERA_INFO_WAIT_S = 0.1  # an image may arrive just before the camera_info of its stamp
CAMERA_INFO_FLOWING_NS = NANOSECONDS  # camera infos stamped within a second of an image still flow
CAMERA_INFO_HISTORY = 60  # calibrations kept by stamp, for pairing (two seconds of a 30 Hz camera)
OUTPUT_QOS = QoSProfile(depth=10)  # reliable: consumers (RViz, recorders) must not miss hands
OVERRIDABLE = QoSOverridingOptions.with_default_policies()
EVENT_PACKET_DEPTH = 1000  # a second of a driver's 1 kHz packets


PARAMETERS = (
    Parameter(
        "autostart",
        True,
        "configure and activate at start; false: wait for a lifecycle manager (or `ros2 lifecycle set`)",
    ),
    Parameter(
        "input",
        "image",
        "image: camera images; event_packets: event_camera_msgs/EventPacket on events, cut into windows by "
        "event time; event_frames: event representations as 32FC<n> images on image. Events need event "
        "models (localisation detector, mode lifter or potter; the bundled event models by default)",
        choices=INPUTS,
    ),
    Parameter(
        "event_rate_hz",
        30.0,
        "event_packets with time windows: windows (outputs) per second of event time",
        floats=(0.1, 1000.0),
    ),
    Parameter(
        "camera_source",
        "camera_info",
        "camera_info: rectified pinhole images; aria: raw fisheye Aria RGB, undistorted to the "
        "benchmark's 512x512 f=150 camera",
        choices=CAMERA_SOURCES,
    ),
    Parameter("aria_calibration", "", "device calibration JSON or VRS recording (camera_source aria)"),
    Parameter(
        "cameras",
        "rgb",
        "rgb: the RGB camera alone; rgb+slam (camera_source aria, rotation landscape): also Aria's grey SLAM "
        "cameras on slam_left/image and slam_right/image, so that each hand seen by two or three cameras is "
        "triangulated in metres (hands stay in the RGB camera's frame)",
        choices=CAMERA_SETS,
    ),
    Parameter(
        "view_tolerance_s",
        0.005,
        "rgb+slam: each RGB frame is paired with each SLAM camera's frame captured nearest to it within this "
        "many seconds (Aria triggers them together); without one that camera sits the frame out",
        floats=(0.0, 1.0),
    ),
    Parameter(
        "camera_info_tolerance_s",
        0.1,
        "each image is paired with the camera_info of its stamp, or the nearest within this many seconds "
        "(raise it for a camera_info published less often than the images)",
        floats=(0.0, 3600.0),
    ),
    Parameter(
        "image_transport",
        "raw",
        "raw: sensor_msgs/Image on image; compressed: sensor_msgs/CompressedImage (JPEG or PNG) on "
        "image/compressed, as image_transport publishes it",
        choices=TRANSPORTS,
    ),
    Parameter(
        "rectify",
        True,
        "camera_info: rectify images whose camera_info has distortion (plumb_bob, rational_polynomial, "
        "equidistant); false when the input is rectified already (image_proc's image_rect, whose camera_info "
        "still carries the raw distortion)",
    ),
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
        "auto: the first usable of TensorRT, ONNX Runtime CUDA, torch-cuda, ONNX Runtime CPU",
        choices=BACKENDS,
    ),
    Parameter(
        "engine_cache_dir",
        "",
        "where TensorRT engines built from ONNX files are cached; empty: the user cache folder "
        "($XDG_CACHE_HOME or ~/.cache)/hand_pose_ros/engines (an installed share/ folder is read-only)",
    ),
    Parameter("force_engine_update", False, "rebuild cached TensorRT engines from their ONNX files"),
    Parameter("threads", 0, "ONNX Runtime CPU threads (0: one per core)", integers=(0, 256)),
    Parameter(
        "detect_every",
        5,
        "while hands are tracked, look for more every N frames: MediaPipe's palm detector (mediapipe), "
        "the detector (detector with potter)",
        integers=(1, 100),
        read_only=False,
    ),
    Parameter(
        "min_score",
        0.5,
        "presence probability for a detected hand to count",
        floats=(0.0, 1.0),
        read_only=False,
    ),
    Parameter("smoothing", True, "One-Euro filter on camera-frame joints", read_only=False),
    Parameter(
        "min_cutoff_hz", 1.0, "One-Euro minimum cutoff frequency", floats=(0.01, 100.0), read_only=False
    ),
    Parameter("beta", 5.0, "One-Euro speed coefficient (per m/s)", floats=(0.0, 1000.0), read_only=False),
    Parameter(
        "mano_dir",
        "",
        "folder with MANO_RIGHT.pkl and MANO_LEFT.pkl (from the MANO website, under its licence; not "
        "shipped): fit MANO to each hand, its parameters in hands, its mesh in markers and the overlay; "
        "empty: off",
    ),
    Parameter(
        "publish_overlay",
        True,
        "publish overlay, the processed image with the 2D skeletons (drawn only while someone listens)",
        read_only=False,
    ),
)
PARAMETERS_BY_NAME = {parameter.name: parameter for parameter in PARAMETERS}


@dataclass
class Counters:
    """What the node did since start (totals) and since the last diagnostics report (window)."""

    received: int = 0
    processed: int = 0
    frames_skipped: int = 0  # received = processed + skipped + dropped (+ the one frame in flight)
    hands_skipped: int = 0
    camera_infos_refused: int = 0
    event_packets_refused: int = 0
    reasons: Counter = field(default_factory=Counter)  # skipped frames by reason
    last_skip: str = ""
    window_received: int = 0
    window_processed: int = 0
    window_skipped: int = 0
    dropped_before_window: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    pipeline_ms: list[float] = field(default_factory=list)
    view_fallbacks: Counter = field(default_factory=Counter)  # rgb+slam: why views did not count


@dataclass(frozen=True)
class WindowFrame:
    """A window of events, as the worker takes it: stamped at the window's end in ROS time."""

    header: Header
    window: EventWindow


class FramesOnDemand(Mapping):
    """Frames by camera, each made by `make(name)` when first read."""

    def __init__(self, names: list[str], make: Callable[[str], np.ndarray | None]) -> None:
        self.names, self.make = names, make

    def __getitem__(self, name: str) -> np.ndarray | None:
        if name not in self.names:
            raise KeyError(name)
        return self.make(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


class HandPoseEstimator(LifecycleNode):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.settings = declare_parameters(self, PARAMETERS)
        if self.settings["camera_source"] == "aria" and not self.settings["aria_calibration"]:
            raise InputError("camera_source aria needs the aria_calibration parameter (a JSON or VRS file)")
        if self.settings["cameras"] == "rgb+slam" and (
            self.settings["camera_source"] != "aria" or self.settings["rotation"] != "landscape"
        ):
            raise InputError("cameras rgb+slam needs camera_source aria and rotation landscape")
        self.rotation = self.settings["rotation"]
        # Outputs go out in the input image's optical frame: for Aria the sensor's (landscape) frame.
        aria = self.settings["camera_source"] == "aria"
        self.to_output = Turn(self.rotation, "landscape" if aria else self.rotation)
        self.publish_overlay = self.settings["publish_overlay"]
        self.configure_error = ""
        self.pending: dict[str, float | int | bool] = {}  # tuning the worker applies before its next frame
        self.pipeline: HandPosePipeline | None = None
        self.undistorter: AriaUndistorter | None = None
        # cameras rgb+slam: the pipeline over every view, the SLAM cameras' undistorters and their frames
        self.multiview: MultiViewPipeline | None = None
        self.view_undistorters: dict[str, AriaUndistorter] = {}
        self.view_frames: ViewFrames | None = None
        # camera_info stamp -> (camera, rectifier or None), oldest first; the worker pairs frames with it.
        self.calibrations: OrderedDict[int, tuple[PinholeCamera, Rectifier | None]] = OrderedDict()
        self.calibration_arrived = threading.Condition()
        self.rectifier: Rectifier | None = None  # the latest, reused while the calibration repeats
        self.backend = "not configured"
        self.counters = Counters()
        self.lock = threading.Lock()
        self.window_start = time.monotonic()
        self.last_stamp: int | None = None
        self.slot: LatestFrameSlot[Image | CompressedImage | WindowFrame] = LatestFrameSlot()
        self.events: EventStream | None = None
        self.event_packet_type: type | None = None
        self.default_camera_warned = False
        self.worker: threading.Thread | None = None
        self.subscriptions_: list = []
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.diagnostics = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, OUTPUT_QOS)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)

    # ------------------------------------------------------------------------------------- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the models (the slow part of starting) and create the publishers."""
        try:
            self.pipeline = self._load_pipeline()
            self._check_event_input()
            if self.settings["camera_source"] == "aria":
                path = Path(self.settings["aria_calibration"])
                self.undistorter = AriaUndistorter.from_file(path, orientation=self.rotation)
                self.pipeline.set_camera(self.undistorter.camera)
            if self.settings["cameras"] == "rgb+slam":
                self._load_views(Path(self.settings["aria_calibration"]))
        except InputError as exc:
            self.configure_error = str(exc)
            if not self.settings["autostart"]:  # with autostart, `start` ends the node with this line
                self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.backend = self.pipeline.describe()
        self.hands_out = self.create_lifecycle_publisher(
            Hands, HANDS_OUTPUT, own_copy(OUTPUT_QOS), qos_overriding_options=OVERRIDABLE
        )
        self.markers = self.create_lifecycle_publisher(
            MarkerArray, MARKERS_OUTPUT, own_copy(OUTPUT_QOS), qos_overriding_options=OVERRIDABLE
        )
        self.overlay = self.create_lifecycle_publisher(
            Image, OVERLAY_OUTPUT, own_copy(qos_profile_sensor_data), qos_overriding_options=OVERRIDABLE
        )
        self.slot = LatestFrameSlot()
        self.worker = threading.Thread(target=self._work, name="hand_pose_inference", daemon=True)
        self.worker.start()
        self.get_logger().info(
            f"configured: {self.settings['mode']} on {self.backend}; models "
            + ", ".join(str(path) for path in self.pipeline.model_files)
        )
        return TransitionCallbackReturn.SUCCESS

    def _load_views(self, path: Path) -> None:
        """The RGB and SLAM cameras from the device calibration, each undistorted to the benchmark camera
        and posed in the RGB camera's frame."""
        views = device_views(load_device_calibration(path), str(path), (RGB_LABEL, *SLAM_LABELS))
        self.multiview = MultiViewPipeline(self.pipeline, [view for view, _ in views])
        self.view_undistorters = {view.name: undistorter for view, undistorter in views[1:]}
        tolerance_ns = round(self.settings["view_tolerance_s"] * NANOSECONDS)
        self.view_frames = ViewFrames(list(self.view_undistorters), tolerance_ns)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe: frames flow from now on."""
        for label in self.view_undistorters:
            self.subscriptions_.append(
                self.create_subscription(
                    Image,
                    SLAM_INPUTS[label][0],
                    lambda message, label=label: self.view_frames.add(
                        label, stamp_ns(message.header.stamp), message
                    ),
                    own_copy(qos_profile_sensor_data),
                    qos_overriding_options=OVERRIDABLE,
                )
            )
        if self.event_packet_type is not None:
            self.events = EventStream(self.pipeline.events, self.settings["event_rate_hz"])
            self.subscriptions_.append(
                self.create_subscription(
                    self.event_packet_type,
                    EVENTS_INPUT,
                    self._on_event_packet,
                    # Every packet matters (decoding state runs from one to the next): reliable and deep.
                    QoSProfile(depth=EVENT_PACKET_DEPTH),
                    qos_overriding_options=OVERRIDABLE,
                )
            )
        if self.undistorter is None:
            self.subscriptions_.append(
                self.create_subscription(
                    CameraInfo,
                    CAMERA_INFO_INPUT,
                    self._on_camera_info,
                    own_copy(qos_profile_sensor_data),
                    qos_overriding_options=OVERRIDABLE,
                )
            )
        compressed = self.settings["image_transport"] == "compressed"
        # As image_transport does: the base name is resolved (and remapped), then /compressed appended.
        image_topic = self.resolve_topic_name(IMAGE_INPUT) + ("/compressed" if compressed else "")
        if self.event_packet_type is not None:
            image_topic = self.resolve_topic_name(EVENTS_INPUT)
        else:
            self.subscriptions_.append(
                self.create_subscription(
                    CompressedImage if compressed else Image,
                    image_topic,
                    self._on_image,
                    own_copy(qos_profile_sensor_data),
                    qos_overriding_options=OVERRIDABLE,
                )
            )
        source = (
            f"Aria calibration {self.settings['aria_calibration']}"
            if self.undistorter
            else self.resolve_topic_name(CAMERA_INFO_INPUT)
        )
        what = "images" if self.event_packet_type is None else "event packets"
        self.get_logger().info(
            f"active: {what} from {image_topic}, camera from {source}, "
            f"hands on {self.resolve_topic_name(HANDS_OUTPUT)}"
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        for subscription in self.subscriptions_:
            self.destroy_subscription(subscription)
        self.subscriptions_ = []
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        for publisher in (self.hands_out, self.markers, self.overlay):
            self.destroy_lifecycle_publisher(publisher)
        self.pipeline, self.undistorter, self.backend = None, None, "not configured"
        self.multiview, self.view_undistorters, self.view_frames = None, {}, None
        with self.calibration_arrived:
            self.calibrations.clear()
        self.rectifier = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        return TransitionCallbackReturn.SUCCESS

    def _check_event_input(self) -> None:
        """Event input needs event models and, for packets, the event_camera_msgs package."""
        value = self.settings
        if value["input"] == "image":
            if self.pipeline.events is not None:
                raise InputError(
                    f"the models see events ({self.pipeline.events.describe()}): set input to event_packets "
                    "or event_frames"
                )
            return
        if self.pipeline.events is None:
            raise InputError(f"input {value['input']} needs event models; these see RGB images")
        if value["input"] == "event_packets":
            try:
                from event_camera_msgs.msg import EventPacket
            except ImportError as exc:
                raise InputError(
                    "input event_packets needs the event_camera_msgs package (`make` builds it into .venv; "
                    f"on ROS: apt install ros-jazzy-event-camera-msgs): {exc}"
                ) from None
            self.event_packet_type = EventPacket
            prepare_evt3_decoder()  # compiled (or loaded from numba's cache) now, not on the first packet

    def _load_pipeline(self) -> HandPosePipeline:
        """The models named by the parameters; the bundled ones where empty (event models for events)."""
        value = self.settings
        mode = value["mode"]
        events = value["input"] != "image"
        if events and (value["localisation"] != "detector" or mode == "world"):
            raise InputError(
                f"input {value['input']} needs localisation detector and mode lifter or potter (MediaPipe's "
                "models see RGB images)"
            )
        suffix = "_events" if events else ""
        pose_name = mode + suffix if mode == "potter" else mode  # one lifter serves images and events
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
        detector = config.localisation == "detector"
        return HandPosePipeline.load(
            model_or_bundled(value[f"{mode}_model"], pose_name) if mode != "world" else None,
            BENCHMARK_CAMERA,  # replaced by the real camera before the first frame is processed
            model_or_bundled(value["detector_model"], "detector" + suffix) if detector else None,
            config,
            palm_model=value["palm_model"] or None,
            landmark_model=value["landmark_model"] or None,
            backend=value["backend"],
            threads=value["threads"] or None,
            rebuild=value["force_engine_update"],
            engine_cache=Path(value["engine_cache_dir"] or default_engine_cache()),
            mano=Path(value["mano_dir"]) if value["mano_dir"] else None,
        )

    # ------------------------------------------------------------------------------------ parameters

    def _on_set_parameters(self, parameters: list[RosParameter]) -> SetParametersResult:
        """Tuning parameters change at run time, after the same checks as at start; the rest are
        read-only (ROS refuses those itself)."""
        changes = {}
        for parameter in parameters:
            spec = PARAMETERS_BY_NAME.get(parameter.name)
            if spec is None or spec.read_only:
                continue  # QoS overrides and read-only parameters: ROS's own rules apply
            problem = spec.problem(parameter.value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
            changes[parameter.name] = (
                float(parameter.value) if type(spec.default) is float else parameter.value
            )
        with self.lock:
            if "publish_overlay" in changes:
                self.publish_overlay = changes.pop("publish_overlay")
            self.pending.update(changes)
        if changes:
            self.get_logger().info(
                "tuning: " + ", ".join(f"{name}={value}" for name, value in sorted(changes.items()))
            )
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------------------------ callbacks

    def _on_camera_info(self, message: CameraInfo) -> None:
        """Keep the calibration of this stamp for the frames of the same stamp. Rectification maps are
        built here, once per calibration (camera_info repeats with every frame), never in the worker. A
        camera_info that fails its checks is refused (counted, a throttled warning), the last good one
        kept."""
        try:
            calibration = calibration_from_info(message)
            # Events are not rectified: their camera is the calibration's own pinhole part.
            if self.settings["rectify"] and self.settings["input"] == "image":
                self.rectifier = rectifier_for(calibration, self.rectifier)
                calibrated = (
                    self.rectifier.camera,
                    self.rectifier if self.rectifier.maps is not None else None,
                )
            else:
                calibrated = (calibration.camera, None)
        except InputError as exc:
            with self.lock:
                self.counters.camera_infos_refused += 1
                self.counters.last_skip = f"camera_info: {exc}"
            self.get_logger().warning(f"camera_info refused: {exc}", throttle_duration_sec=LOG_THROTTLE_S)
            return
        with self.calibration_arrived:
            latest = next(reversed(self.calibrations.values()), None)
            self.calibrations[stamp_ns(message.header.stamp)] = calibrated
            while len(self.calibrations) > CAMERA_INFO_HISTORY:
                self.calibrations.popitem(last=False)
            self.calibration_arrived.notify_all()
        if latest is None or calibrated[0] != latest[0] or calibrated[1] is not latest[1]:
            rectified = f", rectified from {calibration.distortion_model}" if calibrated[1] else ""
            self.get_logger().info(f"camera from camera_info: {calibrated[0]}{rectified}")

    def _on_image(self, message: Image | CompressedImage) -> None:
        with self.lock:
            self.counters.received += 1
            self.counters.window_received += 1
        self.slot.put(message)

    def _on_event_packet(self, packet: object) -> None:
        """Decode the packet here, in arrival order (the EVT3 kernel takes well under a millisecond for a
        driver's packet); each window it completes is a frame for the worker."""
        try:
            windows = self.events.add(packet)
        except Exception as exc:  # a packet the decoder cannot take: counted, the stream goes on
            with self.lock:
                self.counters.event_packets_refused += 1
                self.counters.last_skip = f"event packet: {type(exc).__name__}: {exc}"
            self.get_logger().warning(
                f"event packet refused: {type(exc).__name__}: {exc}", throttle_duration_sec=LOG_THROTTLE_S
            )
            return
        for window in windows:
            header = Header(frame_id=packet.header.frame_id)
            header.stamp.sec, header.stamp.nanosec = divmod(self.events.stamp_ns(window), NANOSECONDS)
            self._on_image(WindowFrame(header, window))

    # ---------------------------------------------------------------------------------------- worker

    def _work(self) -> None:
        """Every frame taken is answered (hands, or empty ones) and counted once: processed, or skipped
        with its reason, whatever happens inside."""
        while not self.slot.closed:
            message = self.slot.take(timeout=0.2)
            if message is None:
                continue
            try:
                result, image, problem = self._process(message)
            except Exception as exc:  # the node must outlive any single frame; the cause is logged
                self.get_logger().error(
                    f"frame at {stamp_ns(message.header.stamp)} ns failed: {type(exc).__name__}: {exc}",
                    throttle_duration_sec=LOG_THROTTLE_S,
                )
                result, image, problem = FrameResult(), None, f"internal error: {type(exc).__name__}"
            try:
                self._publish(message.header, result, image)
            except Exception as exc:  # an answer that cannot be sent is counted as such
                self.get_logger().error(
                    f"publishing failed: {type(exc).__name__}: {exc}", throttle_duration_sec=LOG_THROTTLE_S
                )
                problem = f"internal error: {type(exc).__name__}"
            self._count(message, problem, result.seconds.get("pipeline", 0.0) * 1000.0)

    def _process(self, message: Image | CompressedImage) -> tuple[FrameResult, np.ndarray | None, str | None]:
        """(the frame's result, the image it saw, why it was skipped or None)."""
        pipeline = self.pipeline
        with self.lock:
            changes, self.pending = self.pending, {}
        if changes:
            tunable = {name: value for name, value in changes.items() if name in TUNABLE}
            (self.multiview or pipeline).tune(**tunable)
        stamp = stamp_ns(message.header.stamp)
        if self.settings["input"] != "image":
            return self._process_events(message, stamp)
        rectifier = None
        if self.undistorter is None:
            calibrated = self._calibration_for(stamp)
            if calibrated is None:
                tolerance = self.settings["camera_info_tolerance_s"]
                return (
                    FrameResult(),
                    None,
                    (
                        f"no camera_info within {tolerance:g} s of the image stamp"
                        if self.calibrations
                        else "no camera_info yet"
                    ),
                )
            camera, rectifier = calibrated
            if camera != pipeline.camera:
                pipeline.set_camera(camera)
        try:
            image = image_array(message)
            if self.undistorter is not None:
                image = self.undistorter.undistort(image, "image")
            elif rectifier is not None:
                image = rectifier.rectify(image)
        except InputError as exc:
            return FrameResult(), None, f"image: {exc}"
        return self._run(image, stamp, self._other_views(stamp) if self.multiview is not None else None)

    def _other_views(self, stamp: int) -> Mapping[str, np.ndarray | None]:
        """The SLAM cameras' frames paired with the RGB frame's stamp, undistorted only when the
        multi-view pipeline asks for one (about 40 ms a SLAM frame: a frame without a hand in the RGB
        camera never pays it); a view without one, or whose frame does not decode, sits this frame out
        (counted by the multi-view pipeline)."""
        paired = self.view_frames.pair(stamp)
        undistorted: dict[str, np.ndarray | None] = {}

        def undistort(label: str) -> np.ndarray | None:
            if label not in undistorted:
                undistorted[label] = None
                try:
                    raw = image_array(paired[label])
                    undistorted[label] = self.view_undistorters[label].undistort(raw, label)
                except InputError as exc:
                    self.get_logger().warning(f"{label} frame: {exc}", throttle_duration_sec=LOG_THROTTLE_S)
            return undistorted[label]

        return FramesOnDemand([label for label, message in paired.items() if message is not None], undistort)

    def _process_events(
        self, message: WindowFrame | Image, stamp: int
    ) -> tuple[FrameResult, np.ndarray | None, str | None]:
        """A window of events drawn as the models' representation, or an event frame as it came."""
        try:
            if isinstance(message, WindowFrame):
                window = message.window
                frame = self.pipeline.events.render(window.events, window.end_ns)
            else:
                frame = decode_event_frame(
                    message.encoding, message.height, message.width, message.step, message.data,
                    message.is_bigendian,
                )  # fmt: skip
        except InputError as exc:
            return FrameResult(), None, f"events: {exc}"
        camera = self._event_camera(frame.shape[1], frame.shape[0])
        if camera != self.pipeline.camera:
            self.pipeline.set_camera(camera)
        return self._run(frame, stamp)

    def _event_camera(self, width: int, height: int) -> PinholeCamera:
        """The latest camera_info's camera when it fits the sensor; otherwise a 65-degree field of view
        across it (said once in the log)."""
        with self.calibration_arrived:
            latest = next(reversed(self.calibrations.values()), None)
        if latest is not None and (latest[0].width, latest[0].height) == (width, height):
            return latest[0]
        if not self.default_camera_warned:
            self.default_camera_warned = True
            self.get_logger().warning(
                f"no camera_info for the {width}x{height} event sensor: assuming a 65-degree field of view "
                "(metric depth is only as right as that guess)"
            )
        return PinholeCamera.linear(width, height, default_focal(width, height))

    def _run(
        self, image: np.ndarray, stamp: int, views: Mapping[str, np.ndarray | None] | None = None
    ) -> tuple[FrameResult, np.ndarray, str | None]:
        """The pipeline on one frame (image or event frame), or with `views` the multi-view pipeline on it
        and the other cameras' frames; the hands it cannot place left out."""
        pipeline = self.multiview or self.pipeline
        if self.last_stamp is not None and not 0 <= stamp - self.last_stamp <= NEW_RECORDING_GAP_NS:
            pipeline.reset()
        self.last_stamp = stamp
        start = time.perf_counter()
        if views is None:
            result = self.pipeline.process(image, stamp / NANOSECONDS)
        else:
            views_result = self.multiview.process(ChainMap({RGB_LABEL: image}, views), stamp / NANOSECONDS)
            result = views_result.frame
            with self.lock:
                self.counters.view_fallbacks.update(views_result.fallbacks)
        result.seconds["pipeline"] = time.perf_counter() - start
        problems = [reason for side, reason in result.skipped if side == "frame"]
        for side, reason in result.skipped:
            if side != "frame":
                self._skip_hand(f"{side}: {reason}")
        kept = []
        for hand in result.hands:
            if hand.camera is None or not np.isfinite(hand.camera).all():
                self._skip_hand(f"{hand.side}: no finite camera-frame joints")
                continue
            kept.append(hand)
        result.hands = kept
        return result, image, f"frame: {problems[0]}" if problems else None

    def _calibration_for(self, stamp: int) -> tuple[PinholeCamera, Rectifier | None] | None:
        """The calibration of the camera_info stamped like the image, or the nearest within the tolerance.
        An image may come just before its camera_info: it waits a little for it, but only while camera
        infos flow and none newer than the image has come (then its own is not on the way)."""
        tolerance_ns = self.settings["camera_info_tolerance_s"] * NANOSECONDS
        deadline = time.monotonic() + CAMERA_INFO_WAIT_S
        with self.calibration_arrived:
            while self.calibrations:
                match = self.calibrations.get(stamp)
                if match is None:
                    nearest = min(self.calibrations, key=lambda s: abs(s - stamp))
                    match = self.calibrations[nearest] if abs(nearest - stamp) <= tolerance_ns else None
                newest = next(reversed(self.calibrations))
                on_the_way = newest < stamp <= newest + CAMERA_INFO_FLOWING_NS
                left = deadline - time.monotonic()
                if match is not None or not on_the_way or left <= 0:
                    return match
                self.calibration_arrived.wait(left)
        return None

    def _publish(self, header: Header, result: FrameResult, image: np.ndarray | None = None) -> None:
        camera = self.pipeline.camera
        self.hands_out.publish(hands_message(header, result.hands, camera, self.to_output))
        found = {hand.side: hand for hand in result.hands}
        markers = MarkerArray()
        for side in HAND_SIDES:
            hand = found.get(side)
            joints = self.to_output.points_3d(hand.camera) if hand is not None else None
            markers.markers += hand_markers(header, side, joints)
            # A mesh costs tens of milliseconds to convert: only for someone who listens.
            if self.pipeline.mano is not None and self.markers.get_subscription_count() > 0:
                mesh = (
                    hand.mano.turned(self.to_output) if hand is not None and hand.mano is not None else None
                )
                markers.markers.append(mesh_marker(header, side, mesh))
        self.markers.publish(markers)
        # Drawing costs the worker time: only for someone who listens.
        if image is not None and self.publish_overlay and self.overlay.get_subscription_count() > 0:
            events = self.pipeline.events
            picture = to_rgb(image, events.kind) if events is not None else image
            canvas = PILImage.fromarray(picture).convert("RGB")
            for hand in result.hands:
                if hand.mano is not None:
                    draw_mesh(canvas, camera, hand.mano.vertices, hand.mano.faces, hand.side)
                draw_skeleton(canvas, hand.keypoints, hand.side, hand.box)
            self.overlay.publish(image_message(np.asarray(canvas), header))

    def _count(self, message: Image | CompressedImage, problem: str | None, pipeline_ms: float) -> None:
        """One answered frame: processed (with its timings), or skipped with its reason (logged,
        throttled)."""
        latency_ms = (self.get_clock().now().nanoseconds - stamp_ns(message.header.stamp)) / 1e6
        with self.lock:
            counters = self.counters
            if problem is None:
                counters.processed += 1
                counters.window_processed += 1
                counters.pipeline_ms.append(pipeline_ms)
                counters.latencies_ms.append(latency_ms)
            else:
                counters.frames_skipped += 1
                counters.reasons[problem.split(":")[0]] += 1
                counters.window_skipped += 1
                counters.last_skip = problem
        if problem is not None:
            self.get_logger().warning(f"skipped: {problem}", throttle_duration_sec=LOG_THROTTLE_S)

    def _skip_hand(self, reason: str) -> None:
        """A hand of a processed frame left out (the frame itself still counts as processed)."""
        with self.lock:
            self.counters.hands_skipped += 1
            self.counters.last_skip = reason
        self.get_logger().warning(f"hand skipped: {reason}", throttle_duration_sec=LOG_THROTTLE_S)

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
                "camera_info refused": str(counters.camera_infos_refused),
                **(self._event_values(counters) if self.events is not None else {}),
                **(self._view_values(counters) if self.view_frames is not None else {}),
                "skipped by reason": ", ".join(f"{k}: {n}" for k, n in counters.reasons.items()),
                "last skip": counters.last_skip,
                "backend": self.backend,
            }
            troubled = counters.window_skipped or self.slot.dropped > counters.dropped_before_window
            counters.window_received = counters.window_processed = counters.window_skipped = 0
            counters.dropped_before_window = self.slot.dropped
            counters.latencies_ms, counters.pipeline_ms = [], []
            self.window_start = now
        state = self._state_machine.current_state[1]
        # Images wait for their camera_info; events go on with the assumed camera meanwhile.
        waiting = self.settings["input"] == "image" and self.undistorter is None and not self.calibrations
        if state != "active":
            level, message = DiagnosticStatus.WARN, state
        else:
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

    def _view_values(self, counters: Counters) -> dict[str, str]:
        pairing = self.view_frames
        return {
            "views paired": ", ".join(f"{label}: {pairing.paired[label]}" for label in pairing.frames),
            "views missing": ", ".join(f"{label}: {pairing.missing[label]}" for label in pairing.frames),
            "view fallbacks": ", ".join(f"{why}: {n}" for why, n in counters.view_fallbacks.items()),
        }

    def _event_values(self, counters: Counters) -> dict[str, str]:
        report = self.events.decoder.report
        return {
            "event packets": str(report.packets),
            "event packets refused": str(counters.event_packets_refused),
            "events decoded": report.describe(),
        }

    def stop(self) -> None:
        self.slot.close()
        if self.worker is not None:
            self.worker.join(timeout=5.0)
            self.worker = None


def start(node: HandPoseEstimator) -> None:
    """With autostart, configure (models that do not load end the node: one line, exit 2) and
    activate; then serve until Ctrl-C."""
    if node.settings["autostart"]:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise InputError(node.configure_error or "configure failed")
        node.trigger_activate()
    rclpy.spin(node)


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node(NODE_NAME, HandPoseEstimator, start, HandPoseEstimator.stop, args))


if __name__ == "__main__":
    main()
