"""Project Aria cameras: device calibrations and FISHEYE624 undistortion to the benchmark camera, for the
RGB camera and, as posed views (`device_views`), the SLAM cameras beside it.

All fisheye maths is projectaria-tools'; this module only picks the calls the benchmark makes
(`distort_by_calibration(image, dst, src)`, destination first) and keeps their results consistent with
`hand_pose_core.geometry.camera`. `vrs_frames` reads a recording's camera streams for the ROS 2 player,
so that node stays a thin publisher.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from projectaria_tools.core import calibration

from hand_pose_core.atomic import write_json_atomic
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA, Orientation, PinholeCamera, Turn
from hand_pose_core.geometry.views import View

RGB_LABEL = "camera-rgb"
SLAM_LABELS = ("camera-slam-left", "camera-slam-right")
CAMERA_LABELS = (RGB_LABEL, *SLAM_LABELS)
RAW_RGB_SIZE = 1408

# An Aria-like RGB camera for synthetic raw frames: FisheyeRadTanThinPrism (FISHEYE624) parameters
# fx, cx, cy, k0..k5, p0, p1, s0..s3, rounded to typical values of the device; no tangential terms.
SYNTHETIC_RGB_PARAMS = [610.0, 703.5, 703.5, 0.4, -0.5, 0.17, 1.1, -1.7, 0.65] + [0.0] * 6


def load_device_calibration(path: Path) -> calibration.DeviceCalibration:
    """A device calibration from a JSON file (projectaria-tools format) or a VRS recording."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such calibration file")
    if path.suffix == ".vrs":
        from projectaria_tools.core import data_provider

        provider = data_provider.create_vrs_data_provider(str(path))
        device = provider.get_device_calibration() if provider is not None else None
        if device is None:
            raise InputError(f"{path}: not a VRS recording with a device calibration")
        return device
    try:
        return calibration.device_calibration_from_json_string(path.read_text())
    except (RuntimeError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a device calibration JSON ({exc})") from exc


def rgb_calibration(
    device: calibration.DeviceCalibration, where: str, label: str = RGB_LABEL
) -> calibration.CameraCalibration:
    """One camera of a device calibration (the RGB camera unless `label` names another)."""
    camera = device.get_camera_calib(label)
    if camera is None:
        raise InputError(f"{where}: device calibration has no {label!r} camera")
    return camera


def device_views(
    device: calibration.DeviceCalibration,
    where: str,
    labels: Sequence[str] = CAMERA_LABELS,
    target: PinholeCamera = BENCHMARK_CAMERA,
) -> list[tuple[View, AriaUndistorter]]:
    """Each camera undistorted to `target` (landscape, the camera's own axes) with its pose in the RGB
    camera's frame from the factory extrinsics, and the undistorter that makes its frames."""
    rgb_from_device = rgb_calibration(device, where).get_transform_device_camera().inverse()
    views = []
    for label in labels:
        camera = rgb_calibration(device, where, label)
        pose = (rgb_from_device @ camera.get_transform_device_camera()).to_matrix()
        views.append((View(label, target, pose[:3, :3], pose[:3, 3]), AriaUndistorter(camera, target)))
    return views


def synthetic_device_calibration() -> dict:
    """The JSON of a device calibration with one Aria-like RGB camera (identity extrinsics)."""
    rgb = {
        "Calibrated": True,
        "Label": RGB_LABEL,
        "ConfigData": {
            "ImageWidth": RAW_RGB_SIZE,
            "ImageHeight": RAW_RGB_SIZE,
            "MaxSolidAngle": 1.0,
            "ValidRadius": RAW_RGB_SIZE / 2 + 3.5,
        },
        "Projection": {
            "Name": "FisheyeRadTanThinPrism",
            "Description": "fx, cx, cy, k_0, k_1, k_2, k_3, k_4, k_5, p_0, p_1, s_0, s_1, s_2, s_3",
            "Params": SYNTHETIC_RGB_PARAMS,
        },
        "SerialNumber": "synthetic",
        "T_Device_Camera": {"Translation": [0.0, 0.0, 0.0], "UnitQuaternion": [1.0, [0.0, 0.0, 0.0]]},
    }
    return {
        "AlgorithmName": "hand_pose_ros synthetic",
        "AlgorithmVersion": "1",
        "CalibrationSource": "Synthetic",
        "DeviceClassInfo": {"BuildVersion": "DVT-L", "DeviceClass": "Aria"},
        "FileFormat": {"Tags": [], "Timestamp": "", "UnixTime": 0, "Version": 3},
        "OriginSpecification": {"ChildLabel": "camera-slam-left", "Type": "Custom"},
        "Serial": "synthetic",
        "CameraCalibrations": [rgb],
        "ImuCalibrations": [],
        "MagCalibrations": [],
        "BaroCalibrations": [],
        "MicCalibrations": [],
    }


def parse_device_calibration(data: dict) -> calibration.DeviceCalibration:
    """A device calibration from its JSON structure."""
    return calibration.device_calibration_from_json_string(json.dumps(data))


def write_device_calibration(data: dict, path: Path) -> Path:
    """Write a calibration JSON after checking that projectaria-tools reads it back."""
    parse_device_calibration(data)
    return write_json_atomic(path, data, indent=1)


def _linear_calibration(camera: PinholeCamera) -> calibration.CameraCalibration:
    if camera.fx != camera.fy or (camera.cx, camera.cy) != ((camera.width - 1) / 2, (camera.height - 1) / 2):
        raise InputError(f"{camera}: only centred square-pixel pinhole targets are supported")
    return calibration.get_linear_camera_calibration(camera.width, camera.height, camera.fx)


class AriaUndistorter:
    """Raw (sideways, fisheye) Aria RGB frames -> the benchmark's pinhole images and valid mask.

    `orientation="portrait"` turns the undistorted image upright (90 degrees clockwise), and `camera`
    is then the rotated pinhole camera, so 2D and 3D results stay consistent with the image.
    """

    def __init__(
        self,
        source: calibration.CameraCalibration,
        target: PinholeCamera = BENCHMARK_CAMERA,
        orientation: Orientation = "landscape",
    ) -> None:
        self.source = source
        self.orientation = orientation
        self._target = _linear_calibration(target)
        self.turn = Turn("landscape", orientation)
        self.camera = self.turn.camera(target)
        width, height = (int(v) for v in source.get_image_size())
        self.raw_shape = (height, width)
        full = np.full(self.raw_shape, 255, dtype=np.uint8)
        self.valid_mask = self.undistort(full, "valid mask") > 0

    @classmethod
    def from_file(cls, path: Path, **kwargs) -> AriaUndistorter:
        """From a device calibration JSON or a VRS recording's RGB camera."""
        return cls(rgb_calibration(load_device_calibration(path), str(path)), **kwargs)

    def undistort(self, raw: np.ndarray, where: str = "image") -> np.ndarray:
        """A raw frame (H, W) or (H, W, C) in the sensor's native orientation -> the target image."""
        if raw.ndim not in (2, 3) or raw.shape[:2] != self.raw_shape:
            raise InputError(
                f"{where}: raw frame is {'x'.join(map(str, raw.shape[1::-1]))}, "
                f"the calibration expects {self.raw_shape[1]}x{self.raw_shape[0]}"
            )
        image = calibration.distort_by_calibration(np.ascontiguousarray(raw), self._target, self.source)
        return self.turn.image(image)


def distort_to_raw(
    image: np.ndarray, source: PinholeCamera, raw: calibration.CameraCalibration
) -> np.ndarray:
    """A landscape pinhole image as the raw fisheye camera would see it (for synthetic raw frames)."""
    return calibration.distort_by_calibration(np.ascontiguousarray(image), raw, _linear_calibration(source))


@dataclass(frozen=True)
class VrsFrame:
    """One camera frame of a VRS recording, in the sensor's native orientation (Aria RGB is sideways)."""

    label: str  # the stream's label, e.g. "camera-rgb"
    capture_ns: int  # device clock
    image: np.ndarray  # uint8 (H, W) grey or (H, W, 3) RGB


def _open_vrs(path: Path):
    from projectaria_tools.core import data_provider

    if not path.is_file():
        raise InputError(f"{path}: no such VRS recording")
    provider = data_provider.create_vrs_data_provider(str(path))
    if provider is None:
        raise InputError(f"{path}: not a VRS recording (projectaria-tools cannot open it)")
    return provider


def _stream_frames(provider, stream, label: str) -> Iterator[VrsFrame]:
    for index in range(provider.get_num_data(stream)):
        image, record = provider.get_image_data_by_index(stream, index)
        if image.is_valid():  # a record whose image does not decode is skipped, not fatal
            yield VrsFrame(label, int(record.capture_timestamp_ns), image.to_numpy_array())


def vrs_frames(path: Path, labels: Sequence[str] = (RGB_LABEL,)) -> Iterator[VrsFrame]:
    """The frames of the chosen camera streams of an Aria VRS recording, merged in capture-time order.

    The file and labels are checked when this is called, not at the first frame, so a player can report
    a bad path before it starts; frames are then decoded one at a time (a recording does not fit in
    memory). Frames with equal capture times come in the order of `labels`.
    """
    from projectaria_tools.core.sensor_data import SensorDataType

    path = Path(path)
    provider = _open_vrs(path)
    cameras = {
        provider.get_label_from_stream_id(stream): stream
        for stream in provider.get_all_streams()
        if provider.get_sensor_data_type(stream) == SensorDataType.IMAGE
    }
    unknown = [label for label in labels if label not in cameras]
    if unknown or not labels:
        wanted = ", ".join(map(repr, unknown)) if unknown else "labels given"
        raise InputError(
            f"{path}: no camera stream {wanted} (the recording has {', '.join(sorted(cameras)) or 'none'})"
        )
    streams = [_stream_frames(provider, cameras[label], label) for label in labels]
    return heapq.merge(*streams, key=lambda frame: frame.capture_ns)
