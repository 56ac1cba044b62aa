"""Camera input as drivers send it: compressed images, 16-bit and YUV 4:2:2 encodings, and distorted
cameras rectified as image_proc does, checked against OpenCV's own point undistortion."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from hand_pose_core.bags.messages import (
    calibration_from_info,
    camera_from_info,
    decode_compressed_image,
    decode_image,
    eight_bit,
)
from hand_pose_core.bags.takes import CAMERA_INFO_TYPE, TYPESTORE
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import PinholeCamera
from hand_pose_core.geometry.rectify import Rectifier, rectifier_for

RNG_SEED = 5
TOLERANCE_PX = 0.5

# ------------------------------------------------------------------------------------------- compressed


def scene(height: int = 120, width: int = 160) -> np.ndarray:
    """A smooth RGB test picture with edges (JPEG's worst case is noise, which no camera sends)."""
    y, x = np.mgrid[:height, :width]
    image = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=-1)
    image = image.astype(np.uint8)
    cv2.rectangle(image, (20, 30), (70, 90), (250, 240, 10), -1)
    cv2.circle(image, (120, 60), 25, (10, 20, 200), -1)
    return image


def encoded(extension: str, image: np.ndarray, *params: int) -> bytes:
    ok, data = cv2.imencode(extension, image, list(params))
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("image_format", ["png", "rgb8; png compressed bgr8", "bgr8; png compressed bgr8"])
def test_png_colour_round_trip_is_exact(image_format):
    rgb = np.random.default_rng(RNG_SEED).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    data = encoded(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))  # the plugin compresses bgr8
    decoded = decode_compressed_image(image_format, data)
    assert decoded.dtype == np.uint8 and np.array_equal(decoded, rgb)


def test_png_grey_and_alpha_round_trips_are_exact():
    grey = np.random.default_rng(RNG_SEED).integers(0, 256, (48, 64), dtype=np.uint8)
    assert np.array_equal(decode_compressed_image("mono8; png compressed mono8", encoded(".png", grey)), grey)
    rgba = np.random.default_rng(RNG_SEED + 1).integers(0, 256, (48, 64, 4), dtype=np.uint8)
    bgra = encoded(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert np.array_equal(decode_compressed_image("bgra8; png compressed bgra8", bgra), rgba[:, :, :3])


@pytest.mark.parametrize(
    "image_format", ["jpeg", "JPEG", "rgb8; jpeg compressed bgr8", "bgr8; jpeg compressed bgr8"]
)
def test_jpeg_colour_round_trip_is_close(image_format):
    rgb = scene()
    data = encoded(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), cv2.IMWRITE_JPEG_QUALITY, 95)
    decoded = decode_compressed_image(image_format, np.frombuffer(data, np.uint8))  # rclpy: an array
    assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
    error = np.abs(decoded.astype(int) - rgb)
    # JPEG halves colour resolution, so strong colour edges differ; swapped channels would be ~60 off
    assert np.median(error) <= 1 and error.mean() < 3


def test_jpeg_grey_round_trip_is_close():
    grey = cv2.cvtColor(scene(), cv2.COLOR_RGB2GRAY)
    data = encoded(".jpg", grey, cv2.IMWRITE_JPEG_QUALITY, 95)
    decoded = decode_compressed_image("mono8; jpeg compressed mono8", data)
    assert decoded.shape == grey.shape and np.abs(decoded.astype(int) - grey).mean() < 1.5


def test_16_bit_png_is_scaled_as_raw_16_bit_images():
    raw = np.random.default_rng(RNG_SEED).integers(0, 65536, (40, 50), dtype=np.uint16)
    raw[0, :4] = (0, 128 * 257, 65535, 255)
    decoded = decode_compressed_image("16UC1; png compressed", encoded(".png", raw))
    assert decoded.dtype == np.uint8 and decoded.shape == raw.shape
    assert decoded[0, :4].tolist() == [0, 128, 255, 1]
    assert np.array_equal(decoded, decode_image("16UC1", 40, 50, 100, raw.tobytes()))
    assert np.abs(decoded.astype(int) - (raw >> 8)).max() <= 1  # the high byte, within one level


@pytest.mark.parametrize(
    "image_format", ["16UC1; compressedDepth png", "tiff", "rgb8; webp compressed bgr8", "", "h264"]
)
def test_compressed_formats_other_than_jpeg_or_png_are_refused_by_name(image_format):
    with pytest.raises(InputError, match="compressed image format") as error:
        decode_compressed_image(image_format, encoded(".png", scene()))
    assert repr(image_format) in str(error.value)


@pytest.mark.parametrize("data", [b"", b"\xff\xd8\xff\xe0 not really a jpeg", bytes(100)])
def test_undecodable_compressed_data_is_an_input_error(data):
    with pytest.raises(InputError, match=r"'rgb8; jpeg compressed bgr8'.*could not be decoded"):
        decode_compressed_image("rgb8; jpeg compressed bgr8", data)


# -------------------------------------------------------------------------------------------- raw encodings

# BT.601 video-range YUV of pure colours (what cameras send) -> RGB
YUV_COLOURS = {(81, 90, 240): (255, 0, 0), (145, 54, 34): (0, 255, 0), (41, 240, 110): (0, 0, 255)}
YUV_COLOURS |= {(235, 128, 128): (255, 255, 255), (16, 128, 128): (0, 0, 0)}


@pytest.mark.parametrize("encoding", ["uyvy", "yuv422", "yuyv", "yuv422_yuy2"])
def test_yuv422_gives_the_known_colours(encoding):
    """Each colour is a pair of pixels sharing U and V; rows padded by 6 bytes."""
    pairs = []
    for y, u, v in YUV_COLOURS:
        pairs += [u, y, v, y] if encoding in ("uyvy", "yuv422") else [y, u, y, v]
    width, step = 2 * len(YUV_COLOURS), 4 * len(YUV_COLOURS) + 6
    rows = np.zeros((3, step), np.uint8)
    rows[:, : 4 * len(YUV_COLOURS)] = pairs
    rgb = decode_image(encoding, 3, width, step, rows.tobytes())
    expected = np.repeat(np.array(list(YUV_COLOURS.values())), 2, axis=0)
    assert rgb.shape == (3, width, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - expected).max() <= 2


def test_yuv422_of_odd_width_is_an_input_error():
    with pytest.raises(InputError, match="yuyv image of odd width 3"):
        decode_image("yuyv", 2, 3, 6, bytes(12))


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
def test_16_bit_grey_is_scaled_to_8_bits(encoding, big_endian):
    grey = np.array([[0, 255, 256, 32896], [40000, 65279, 65534, 65535]], np.uint16)
    rows = np.zeros((2, 10), np.uint8)  # step 10: 2 bytes of padding a row
    rows[:, :8] = grey.astype(">u2" if big_endian else "<u2").view(np.uint8)
    decoded = decode_image(encoding, 2, 4, 10, rows.tobytes(), is_bigendian=big_endian)
    assert decoded.dtype == np.uint8
    assert decoded.tolist() == [[0, 1, 1, 128], [156, 254, 255, 255]]
    assert np.array_equal(decoded, eight_bit(grey))


@pytest.mark.parametrize(
    ("encoding", "order"), [("rgba8", [0, 1, 2]), ("bgra8", [2, 1, 0]), ("bgr8", [2, 1, 0])]
)
def test_colour_encodings_come_out_rgb_with_padded_rows(encoding, order):
    rgb = np.random.default_rng(RNG_SEED).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    channels = len(encoding) - 1
    pixels = np.full((3, 5, channels), 77, np.uint8)
    pixels[:, :, :3] = rgb[:, :, order]
    rows = np.zeros((3, 5 * channels + 4), np.uint8)
    rows[:, : 5 * channels] = pixels.reshape(3, -1)
    decoded = decode_image(encoding, 3, 5, rows.shape[1], rows.tobytes())
    assert np.array_equal(decoded, rgb) and decoded.flags.c_contiguous and decoded.flags.writeable


@pytest.mark.parametrize("encoding", ["bayer_rggb8", "32FC1", "rgb16", "nv21"])
def test_unsupported_encodings_are_refused_by_name(encoding):
    with pytest.raises(InputError, match=f"image encoding '{encoding}' not supported"):
        decode_image(encoding, 2, 2, 8, bytes(16))


# ------------------------------------------------------------------------------------------- camera_info


def camera_info(width, height, model, d, k, r=None, p=None) -> SimpleNamespace:
    """A stand-in sensor_msgs/CameraInfo (rclpy and rosbags messages have these fields)."""
    k = np.asarray(k, np.float64)
    p = np.hstack([k, np.zeros((3, 1))]) if p is None else np.asarray(p, np.float64)
    return SimpleNamespace(
        width=width,
        height=height,
        distortion_model=model,
        d=list(d),
        k=k.reshape(-1),
        r=np.eye(3).reshape(-1) if r is None else np.asarray(r, np.float64).reshape(-1),
        p=p.reshape(-1),
    )


K_VGA = np.array([[525.3, 0.0, 322.1], [0.0, 523.9, 241.7], [0.0, 0.0, 1.0]])
PLUMB_BOB = [-0.28, 0.09, 0.0012, -0.0007, -0.012]


def rosbags_camera_info(info: SimpleNamespace):
    msg = TYPESTORE.types[CAMERA_INFO_TYPE]
    types = TYPESTORE.types
    return msg(
        header=types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id=""
        ),
        height=info.height,
        width=info.width,
        distortion_model=info.distortion_model,
        d=np.array(info.d, np.float64),
        k=info.k,
        r=info.r,
        p=info.p,
        binning_x=0,
        binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        ),
    )


def test_rosbags_and_stand_in_camera_infos_read_alike():
    p = np.hstack([K_VGA * [[0.9], [0.9], [1.0]], np.zeros((3, 1))])
    info = camera_info(640, 480, "plumb_bob", PLUMB_BOB, K_VGA, p=p)
    calibration = calibration_from_info(rosbags_camera_info(info))
    assert calibration == calibration_from_info(info) and hash(calibration) == hash(
        calibration_from_info(info)
    )
    assert camera_from_info(info) == PinholeCamera(p[0, 0], p[1, 1], p[0, 2], p[1, 2], 640, 480)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"k": np.r_[np.nan, K_VGA.reshape(-1)[1:]]}, "K has non-finite numbers"),
        ({"p": np.r_[np.inf, np.zeros(11)]}, "P has non-finite numbers"),
        ({"d": [0.1, np.nan, 0, 0, 0]}, "D has non-finite numbers"),
        ({"p": np.r_[-500.0, 0, 320, 0, 0, 500, 240, 0, 0, 0, 1, 0]}, "P has focal lengths -500.0, 500.0"),
        ({"k": np.zeros(9), "p": np.zeros(12)}, "without focal lengths"),
        ({"k": np.zeros(9)}, "K has focal lengths 0.0, 0.0"),  # distorted: K is needed too
        ({"k": np.ones(4)}, "K has 4 numbers, not 9"),
        ({"width": 0}, "camera_info of size 0x480"),
        ({"p": np.r_[500.0, 0, 3200, 0, 0, 500, 240, 0, 0, 0, 1, 0]}, r"principal point \(3200.0, 240.0\)"),
        ({"p": np.r_[500.0, 0, 320, 0, 0, 500, -5, 0, 0, 0, 1, 0]}, "outside the 640x480 image"),
    ],
)
def test_bad_camera_info_numbers_are_input_errors(change, message):
    p = np.hstack([K_VGA, np.zeros((3, 1))])
    info = camera_info(640, 480, "plumb_bob", PLUMB_BOB, K_VGA, p=p)
    for name, value in change.items():
        setattr(info, name, value)
    with pytest.raises(InputError, match=message):
        camera_from_info(info)


@pytest.mark.parametrize(
    "info",
    [
        camera_info(640, 480, "plumb_bob", [0.0] * 5, K_VGA),
        camera_info(640, 480, "", [], K_VGA, r=np.zeros((3, 3)), p=np.zeros((3, 4))),  # R and P unset
        camera_info(640, 480, "some_future_model", [0.0] * 9, K_VGA),
    ],
)
def test_rectified_input_is_passed_through_untouched(info):
    rectifier = rectifier_for(calibration_from_info(info), None)
    assert rectifier.maps is None
    assert rectifier.camera == camera_from_info(info) == PinholeCamera(525.3, 523.9, 322.1, 241.7, 640, 480)
    frame = np.zeros((480, 640, 3), np.uint8)
    assert rectifier.rectify(frame) is frame


def test_a_rotation_or_another_p_alone_still_needs_the_remap():
    rotated = camera_info(
        640, 480, "plumb_bob", [0.0] * 5, K_VGA, cv2.Rodrigues(np.array([0.0, 0.02, 0.0]))[0]
    )
    wider = np.diag([0.8, 0.8, 1.0]) @ K_VGA  # focal lengths and principal point 80 %
    zoomed = camera_info(640, 480, "plumb_bob", [0.0] * 5, K_VGA, p=np.hstack([wider, np.zeros((3, 1))]))
    for info in (rotated, zoomed):
        rectifier = Rectifier(calibration_from_info(info))
        assert rectifier.maps is not None
        assert rectifier.rectify(np.zeros((480, 640), np.uint8)).shape == (480, 640)


def test_maps_are_built_once_per_calibration(monkeypatch):
    built = []
    build = cv2.initUndistortRectifyMap
    monkeypatch.setattr(cv2, "initUndistortRectifyMap", lambda *args: built.append(args) or build(*args))
    first = rectifier_for(calibration_from_info(camera_info(640, 480, "plumb_bob", PLUMB_BOB, K_VGA)), None)
    current = first
    for _ in range(5):  # camera_info comes with every frame: new messages, the same numbers
        current = rectifier_for(
            calibration_from_info(camera_info(640, 480, "plumb_bob", PLUMB_BOB, K_VGA)), current
        )
    assert current is first and len(built) == 1
    recalibrated = [-0.27, *PLUMB_BOB[1:]]
    current = rectifier_for(
        calibration_from_info(camera_info(640, 480, "plumb_bob", recalibrated, K_VGA)), current
    )
    assert current is not first and len(built) == 2
    assert not np.array_equal(current.maps[0], first.maps[0])


@pytest.mark.parametrize("model", ["fisheye624", "kannala_brandt", ""])
def test_unknown_distortion_models_are_refused_by_name(model):
    calibration = calibration_from_info(camera_info(640, 480, model, [0.1, 0.01, 0, 0, 0], K_VGA))
    with pytest.raises(InputError, match=f"distortion_model {model!r} not supported"):
        Rectifier(calibration)


@pytest.mark.parametrize(
    ("model", "count"), [("plumb_bob", 3), ("rational_polynomial", 6), ("equidistant", 5)]
)
def test_wrong_numbers_of_coefficients_are_refused(model, count):
    calibration = calibration_from_info(camera_info(640, 480, model, [0.01] * count, K_VGA))
    with pytest.raises(InputError, match=f"{model} D has {count} coefficients"):
        Rectifier(calibration)


def test_a_frame_of_another_size_is_an_input_error():
    rectifier = Rectifier(calibration_from_info(camera_info(640, 480, "plumb_bob", PLUMB_BOB, K_VGA)))
    with pytest.raises(InputError, match="raw image: image is 320x240, the camera expects 640x480"):
        rectifier.rectify(np.zeros((240, 320), np.uint8))


# --------------------------------------------------------------------------------- distorted cameras


def plumb_bob_camera() -> SimpleNamespace:
    """A VGA camera with k1, k2, p1, p2, k3, a small stereo-like rotation R, and P as camera_calibration
    computes it (alpha 0: only valid pixels)."""
    rotation = cv2.Rodrigues(np.array([0.01, -0.015, 0.005]))[0]
    new_k, _ = cv2.getOptimalNewCameraMatrix(K_VGA, np.array(PLUMB_BOB), (640, 480), 0.0)
    return camera_info(
        640, 480, "plumb_bob", PLUMB_BOB, K_VGA, rotation, np.hstack([new_k, np.zeros((3, 1))])
    )


def rational_polynomial_camera() -> SimpleNamespace:
    """A wide colour camera with 8 coefficients (k1, k2, p1, p2, k3, k4, k5, k6) of the kind an Azure Kinect
    publishes, and P = K."""
    k = np.array([[480.0, 0.0, 319.2], [0.0, 479.6, 238.8], [0.0, 0.0, 1.0]])
    d = [0.45, -2.7, 0.0006, -0.0002, 1.6, 0.33, -2.5, 1.5]
    return camera_info(640, 480, "rational_polynomial", d, k)


def equidistant_camera() -> SimpleNamespace:
    """A RealSense T265-like fisheye (848x800, k1..k4 as it publishes them, some 170 degrees across), with
    P a centred pinhole of 70 % of its focal length (some 130 degrees across)."""
    k = np.array([[285.7, 0.0, 411.2], [0.0, 286.1, 396.3], [0.0, 0.0, 1.0]])
    d = [-0.0044, 0.0398, -0.0371, 0.0062]
    p = np.array([[200.0, 0.0, 423.5, 0.0], [0.0, 200.0, 399.5, 0.0], [0.0, 0.0, 1.0, 0.0]])
    return camera_info(848, 800, "equidistant", d, k, p=p)


DISTORTED = {
    "plumb_bob": plumb_bob_camera,
    "rational_polynomial": rational_polynomial_camera,
    "equidistant": equidistant_camera,
}


def distorted_points(info: SimpleNamespace) -> tuple[np.ndarray, np.ndarray]:
    """(points in the raw camera frame, their pixels in the raw image): a grid over the rectified image at
    depths 0.3 to 1.2 m, kept where the raw image sees them (30 px in from its edges, room for a blob)."""
    calibration = calibration_from_info(info)
    camera = calibration.camera
    u, v = np.meshgrid(np.linspace(0.1, 0.9, 6) * camera.width, np.linspace(0.1, 0.9, 5) * camera.height)
    pixels = np.stack([u.ravel(), v.ravel()], axis=-1)
    depths = np.random.default_rng(RNG_SEED).uniform(0.3, 1.2, len(pixels))
    points = camera.unproject(pixels, depths) @ calibration.rotation  # rectified frame -> raw frame
    raw = project_raw(info, points)
    inside = (raw >= 30).all(axis=1) & (raw[:, 0] < info.width - 30) & (raw[:, 1] < info.height - 30)
    assert inside.sum() >= 15
    return points[inside], raw[inside]


def project_raw(info: SimpleNamespace, points: np.ndarray) -> np.ndarray:
    k, d = info.k.reshape(3, 3), np.asarray(info.d, np.float64)
    if info.distortion_model == "equidistant":
        return cv2.fisheye.projectPoints(points[:, None], np.zeros(3), np.zeros(3), k, d)[0][:, 0]
    return cv2.projectPoints(points, np.zeros(3), np.zeros(3), k, d)[0][:, 0]


def opencv_undistorted(info: SimpleNamespace, raw: np.ndarray) -> np.ndarray:
    """Where OpenCV's point undistortion puts raw pixels in the rectified image (R and P applied)."""
    k, d = info.k.reshape(3, 3), np.asarray(info.d, np.float64)
    r, p = info.r.reshape(3, 3), info.p.reshape(3, 4)
    if info.distortion_model == "equidistant":
        return cv2.fisheye.undistortPoints(raw[:, None], k, d, R=r, P=p)[:, 0]
    return cv2.undistortPoints(raw[:, None], k, d, R=r, P=p)[:, 0]


def blobs(height: int, width: int, centres: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """A black uint8 image with a Gaussian dot (peak 250) at each sub-pixel centre.

    The dots are small because a warp that magnifies unevenly moves a dot's centroid off the warped centre,
    by about its size squared: in the fisheye's corners, where the rectified image stretches a raw pixel
    5 times radially and more so further out, a dot of sigma 2.5 px comes out with its centroid 1.4 px
    outward of where the point goes (the maps themselves are right to 1/64 px). Sigma 1 px keeps this
    under 0.3 px; the rectified dots have sigmas of 0.7 to 5 px, sampled finely enough for sub-pixel
    centroids.
    """
    y, x = np.mgrid[:height, :width]
    image = np.zeros((height, width))
    for cx, cy in centres:
        image = np.maximum(image, 250.0 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)))
    return np.round(image).astype(np.uint8)


def centroid(image: np.ndarray, near: np.ndarray, radius: int = 25) -> np.ndarray:
    """The intensity-weighted centre of the dot within `radius` pixels of `near`."""
    x0, y0 = np.round(near).astype(int) - radius
    window = image[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1].astype(np.float64)
    y, x = np.mgrid[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1]
    return np.array([(window * x).sum(), (window * y).sum()]) / window.sum()


@pytest.mark.parametrize("model", list(DISTORTED))
def test_rectified_camera_projects_where_opencv_undistorts(model):
    info = DISTORTED[model]()
    rectifier = rectifier_for(calibration_from_info(info), None)
    points, raw = distorted_points(info)
    ours = rectifier.camera.project(points @ rectifier.calibration.rotation.T)
    assert np.abs(ours - opencv_undistorted(info, raw)).max() < TOLERANCE_PX


@pytest.mark.parametrize("model", list(DISTORTED))
def test_rectified_images_put_dots_where_opencv_undistorts(model):
    info = DISTORTED[model]()
    rectifier = rectifier_for(calibration_from_info(info), None)
    _, raw = distorted_points(info)
    raw_image = blobs(info.height, info.width, raw)
    rectified = rectifier.rectify(raw_image)
    assert rectified.shape == raw_image.shape and rectified.dtype == np.uint8
    expected = opencv_undistorted(info, raw)
    found = np.array([centroid(rectified, position) for position in expected])
    assert np.linalg.norm(found - expected, axis=1).max() < TOLERANCE_PX
    colour = rectifier.rectify(np.dstack([raw_image, raw_image // 2, raw_image // 4]))
    assert np.array_equal(colour[:, :, 0], rectified)  # colour frames are remapped channel by channel
