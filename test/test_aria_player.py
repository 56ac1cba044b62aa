"""Aria VRS playback: `vrs_frames` on the real recordings, and the `aria_vrs_player` node end to end.

The node tests run real rclpy in separate processes (player and `image_listener.py`) on a domain of their
own, with the package's Fast DDS profile, as a user's processes would.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA_DIR

from hand_pose_core.errors import InputError
from hand_pose_core.geometry.aria import RGB_LABEL, VrsFrame, vrs_frames
from hand_pose_ros.processes import ros_env

ADT = DATA_DIR / "aria" / "adt_apartment_video.vrs"
AEA = DATA_DIR / "aria" / "aea_recording.vrs"
SLAM = ("camera-slam-left", "camera-slam-right")
ALL_CAMERAS = (RGB_LABEL, *SLAM)
# Frames per stream in the fixtures: (RGB, each SLAM camera).
FRAME_COUNTS = {ADT: (3, 3), AEA: (8, 4)}
LISTENER = Path(__file__).with_name("image_listener.py")
REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("recording", [ADT, AEA], ids=lambda p: p.stem)
def test_rgb_frames_of_a_real_recording(recording):
    frames = list(vrs_frames(recording))
    assert len(frames) == FRAME_COUNTS[recording][0]
    for frame in frames:
        assert isinstance(frame, VrsFrame) and frame.label == RGB_LABEL
        assert frame.image.shape == (1408, 1408, 3) and frame.image.dtype == np.uint8
        assert frame.image.std() > 5.0  # real pixels, not a blank frame
    stamps = [frame.capture_ns for frame in frames]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    # about 30 (ADT) or 20 (AEA) frames a second, in nanoseconds of the device clock
    assert all(20e6 < b - a < 60e6 for a, b in itertools.pairwise(stamps))


@pytest.mark.parametrize("recording", [ADT, AEA], ids=lambda p: p.stem)
def test_streams_merge_in_capture_order(recording):
    merged = list(vrs_frames(recording, ALL_CAMERAS))
    rgb_count, slam_count = FRAME_COUNTS[recording]
    labels = [frame.label for frame in merged]
    assert [labels.count(label) for label in ALL_CAMERAS] == [rgb_count, slam_count, slam_count]
    stamps = [frame.capture_ns for frame in merged]
    assert stamps == sorted(stamps)
    for label in SLAM:
        alone = list(vrs_frames(recording, [label]))
        assert [f.capture_ns for f in merged if f.label == label] == [f.capture_ns for f in alone]
        assert all(f.image.shape == (480, 640) and f.image.dtype == np.uint8 for f in alone)
    # equal capture times (AEA's two SLAM cameras are triggered together) keep the order of the labels
    for first, second in itertools.pairwise(merged):
        if first.capture_ns == second.capture_ns:
            assert ALL_CAMERAS.index(first.label) < ALL_CAMERAS.index(second.label)


def test_adt_interleaves_rgb_then_slam_per_trigger():
    labels = [frame.label for frame in vrs_frames(ADT, ALL_CAMERAS)]
    assert labels == list(ALL_CAMERAS) * 3


def test_missing_file_is_an_input_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere.vrs"
    with pytest.raises(InputError, match=f"^{missing}: no such VRS recording$"):
        vrs_frames(missing)


def test_not_a_vrs_file_is_an_input_error_naming_it(tmp_path):
    fake = tmp_path / "fake.vrs"
    fake.write_bytes(b"not a recording" * 100)
    with pytest.raises(InputError, match=f"^{fake}: not a VRS recording"):
        vrs_frames(fake)


def test_unknown_label_lists_the_recording_cameras():
    with pytest.raises(InputError) as error:
        vrs_frames(ADT, [RGB_LABEL, "camera-thermal", "imu-left"])
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{ADT}: ")
    assert "'camera-thermal', 'imu-left'" in message
    assert "camera-et, camera-rgb, camera-slam-left, camera-slam-right" in message


def run_player(*parameters: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "hand_pose_ros.aria_vrs_player", "--ros-args"]
    for parameter in parameters:
        command += ["-p", parameter]
    return subprocess.run(command, env=env, cwd=REPOSITORY, capture_output=True, text=True, timeout=60)


def play_into_listener(
    out: Path, expected: list[str], env: dict, *parameters: str
) -> subprocess.CompletedProcess:
    """`image_listener.py` up first (TOPIC=COUNT each), then the player; the listener must succeed. The
    player's image publishers are overridden to reliable (a 6 MB best-effort image may be dropped on a
    loaded machine), which also checks that the override reaches them."""
    reliable = [f"qos_overrides./{entry.split('=')[0]}.publisher.reliability:=reliable" for entry in expected]
    listener = subprocess.Popen(
        [sys.executable, str(LISTENER), "--reliable", str(out), "20", *expected],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not Path(f"{out}.ready").exists():
            assert listener.poll() is None, listener.communicate()[0]
            assert time.monotonic() < deadline, "listener did not start"
            time.sleep(0.05)
        player = run_player(*parameters, *reliable, env=env)
        listener_output = listener.communicate(timeout=30)[0]
    finally:
        listener.kill()
        listener.wait()
    assert listener.returncode == 0, listener_output
    return player


def test_player_publishes_every_frame_with_device_clock_stamps(tmp_path):
    topics = {"image": RGB_LABEL, "slam_left/image": SLAM[0], "slam_right/image": SLAM[1]}
    expected = {topic: list(vrs_frames(ADT, [label])) for topic, label in topics.items()}
    env = ros_env()
    out = tmp_path / "received.json"
    player = play_into_listener(
        out, [f"{t}={len(f)}" for t, f in expected.items()], env, f"vrs_path:={ADT}", "rate:=5.0",
        "publish_slam:=true",
    )  # fmt: skip
    assert player.returncode == 0, player.stderr
    assert "published 3 frames on image, 3 frames on slam_left/image, 3 frames on slam_right/image" in (
        player.stderr
    )
    received = json.loads(out.read_text())
    stamps = sorted(m["stamp_ns"] for topic in expected for m in received[topic])
    assert received["/clock"] == stamps  # recording time on /clock, before each frame (use_sim_time)
    for topic, frames in expected.items():
        got = received[topic]
        assert [m["stamp_ns"] for m in got] == [f.capture_ns for f in frames], topic
        rgb = topic == "image"
        height, width = (1408, 1408) if rgb else (480, 640)
        for message, frame in zip(got, frames, strict=True):
            assert message["encoding"] == ("rgb8" if rgb else "mono8")
            assert (message["width"], message["height"]) == (width, height)
            assert message["step"] == width * (3 if rgb else 1)
            assert message["size"] == message["step"] * height
            assert message["crc32"] == zlib.crc32(frame.image.tobytes())
            assert (
                message["frame_id"]
                == {
                    "image": "camera_rgb",
                    "slam_left/image": "camera_slam_left",
                    "slam_right/image": "camera_slam_right",
                }[topic]
            )


def test_player_stamps_with_the_present_time_on_request(tmp_path):
    out = tmp_path / "received.json"
    before = time.time_ns()
    player = play_into_listener(out, ["image=3"], ros_env(), f"vrs_path:={ADT}", "rate:=5.0", "stamps:=now")
    after = time.time_ns()
    assert player.returncode == 0, player.stderr
    received = json.loads(out.read_text())
    stamps = [m["stamp_ns"] for m in received["image"]]
    assert len(stamps) == 3 and all(before < s < after for s in stamps) and stamps == sorted(stamps)
    assert received["/clock"] == []  # live time: nothing on /clock


@pytest.mark.parametrize("problem", ["missing", "not_vrs", "empty"])
def test_player_exits_non_zero_with_one_line_naming_the_problem(tmp_path, problem):
    path = {"missing": tmp_path / "missing.vrs", "not_vrs": tmp_path / "notes.txt", "empty": "''"}[problem]
    if problem == "not_vrs":
        path.write_text("not a recording\n" * 50)
    player = run_player(f"vrs_path:={path}", "wait_for_subscribers:=0.0", env=ros_env())
    assert player.returncode == 2
    errors = [
        line for line in player.stderr.splitlines() if "[FATAL] " in line and "[aria_vrs_player]" in line
    ]
    assert len(errors) == 1, player.stderr
    assert (str(path) if problem != "empty" else "vrs_path is empty") in errors[0]
    assert "Traceback" not in player.stderr


def test_player_rejects_a_rate_out_of_range():
    player = run_player(f"vrs_path:={ADT}", "rate:=0.0", env=ros_env())
    assert player.returncode == 2
    assert "Traceback" not in player.stderr
    assert any("[FATAL] " in line and "rate" in line for line in player.stderr.splitlines())
