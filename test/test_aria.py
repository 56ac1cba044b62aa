"""Aria FISHEYE624 undistortion to the benchmark camera, on the real recordings' calibrations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA_DIR
from projectaria_tools.core import data_provider

from hand_pose_core.errors import InputError
from hand_pose_core.geometry import aria
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA, Turn

RECORDINGS = sorted((DATA_DIR / "aria").glob("*.vrs"))
# Points in front of the camera, within the benchmark view (metres, landscape camera frame).
POINTS = np.array([[0.0, 0.0, 1.0], [0.3, -0.2, 0.8], [-0.25, 0.3, 0.6], [0.5, 0.4, 1.2], [-0.4, -0.5, 1.5]])


def test_both_real_recordings_are_present():
    assert [p.name for p in RECORDINGS] == ["adt_apartment_video.vrs", "aea_recording.vrs"]


@pytest.mark.parametrize("recording", RECORDINGS, ids=lambda p: p.stem)
@pytest.mark.parametrize("orientation", ["landscape", "portrait"])
def test_points_land_where_the_benchmark_camera_projects_them(recording, orientation):
    undistorter = aria.AriaUndistorter.from_file(recording, orientation=orientation)
    raw = np.zeros(undistorter.raw_shape, np.uint8)
    for point in POINTS:
        u, v = np.rint(undistorter.source.project(point)).astype(int)
        raw[v - 3 : v + 4, u - 3 : u + 4] = 255
    image = undistorter.undistort(raw)
    assert image.shape == (512, 512)
    expected = (
        Turn("landscape", orientation)
        .camera(BENCHMARK_CAMERA)
        .project(Turn("landscape", orientation).points_3d(POINTS))
    )
    assert undistorter.camera == Turn("landscape", orientation).camera(BENCHMARK_CAMERA)
    for u, v in expected:
        window = image[int(v) - 6 : int(v) + 7, int(u) - 6 : int(u) + 7].astype(float)
        assert window.sum() > 0, f"no dot near {(u, v)}"
        rows, cols = np.mgrid[int(v) - 6 : int(v) + 7, int(u) - 6 : int(u) + 7]
        found = np.array([(cols * window).sum(), (rows * window).sum()]) / window.sum()
        assert np.linalg.norm(found - (u, v)) < 1.0


def test_real_frame_undistorts_with_a_fisheye_valid_mask():
    recording = RECORDINGS[0]
    provider = data_provider.create_vrs_data_provider(str(recording))
    stream = provider.get_stream_id_from_label(aria.RGB_LABEL)
    raw = provider.get_image_data_by_index(stream, 0)[0].to_numpy_array()
    landscape = aria.AriaUndistorter.from_file(recording)
    portrait = aria.AriaUndistorter.from_file(recording, orientation="portrait")
    image = landscape.undistort(raw)
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    assert 0.5 < landscape.valid_mask.mean() < 0.8
    assert landscape.valid_mask[255, 255] and not landscape.valid_mask[0, 0]
    assert image[landscape.valid_mask].mean() > 5 * max(image[~landscape.valid_mask].mean(), 1e-3)
    np.testing.assert_array_equal(portrait.undistort(raw), Turn("landscape", "portrait").image(image))
    np.testing.assert_array_equal(
        portrait.valid_mask, Turn("landscape", "portrait").image(landscape.valid_mask)
    )


def test_synthetic_calibration_round_trips_through_a_file(tmp_path):
    path = aria.write_device_calibration(aria.synthetic_device_calibration(), tmp_path / "calib.json")
    camera = aria.rgb_calibration(aria.load_device_calibration(path), str(path))
    assert tuple(camera.get_image_size()) == (1408, 1408)
    assert camera.get_focal_lengths()[0] == pytest.approx(aria.SYNTHETIC_RGB_PARAMS[0])


def test_wrong_frame_size_names_both_sizes():
    undistorter = aria.AriaUndistorter.from_file(RECORDINGS[0])
    with pytest.raises(InputError, match=r"frame: raw frame is 640x480, the calibration expects 1408x1408"):
        undistorter.undistort(np.zeros((480, 640), np.uint8), "frame")


def test_bad_calibration_files_name_the_path(tmp_path):
    with pytest.raises(InputError, match="no such calibration file"):
        aria.load_device_calibration(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"CameraCalibrations": "nope"}))
    with pytest.raises(InputError, match=rf"{broken}: not a device calibration JSON"):
        aria.load_device_calibration(broken)
    no_rgb = aria.synthetic_device_calibration()
    no_rgb["CameraCalibrations"][0]["Label"] = "camera-slam-left"
    path = aria.write_device_calibration(no_rgb, tmp_path / "slam_only.json")
    with pytest.raises(InputError, match="has no 'camera-rgb' camera"):
        aria.AriaUndistorter.from_file(path)
