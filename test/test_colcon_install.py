"""The repository as a ROS user builds it: in a workspace's `src/`, `colcon build` finds its three packages,
and the installed `hand_pose_estimator` (after sourcing the install's setup.bash, as `ros2 run` would
find it) loads its bundled models from the install and answers a real photo with hands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA_DIR

from hand_pose_ros.processes import ProcessGroup, ros_env

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)


def build_environment() -> dict[str, str]:
    """What tools/build_interfaces.py sets: the venv's tools first, its prefix as the ament index."""
    env = ros_env()
    env["PATH"] = f"{VENV / 'bin'}:{env['PATH']}"
    env["AMENT_PREFIX_PATH"] = env["CMAKE_PREFIX_PATH"] = str(VENV)
    return env


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    workspace = tmp_path_factory.mktemp("workspace")
    (workspace / "src").mkdir()
    (workspace / "src" / "hand_pose_ros").symlink_to(ROOT, target_is_directory=True)
    listed = subprocess.run(
        [VENV / "bin" / "colcon", "list", "--names-only"],
        cwd=workspace, env=build_environment(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert sorted(listed.stdout.split()) == ["event_camera_msgs", "hand_pose_msgs", "hand_pose_ros"]
    build = subprocess.run(
        [VENV / "bin" / "colcon", "build", "--cmake-args", "-DBUILD_TESTING=OFF",
         f"-DPython3_EXECUTABLE={VENV / 'bin' / 'python'}"],
        cwd=workspace, env=build_environment(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    return workspace


def installed(workspace: Path, command: str) -> list[str]:
    """A shell command run as a user would after `source install/setup.bash`."""
    return ["bash", "-c", f"source {workspace / 'install' / 'setup.bash'} && {command}"]


@pytest.mark.slow
def test_colcon_build_installs_models_config_and_messages(workspace):
    install = workspace / "install"
    share = install / "hand_pose_ros" / "share" / "hand_pose_ros"
    assert (share / "models" / "mediapipe_hand_landmark_lite.onnx").is_file()
    assert (share / "config" / "hand_pose.yaml").is_file()
    assert (share / "launch" / "hand_pose.launch.py").is_file()
    assert (install / "hand_pose_msgs" / "share" / "hand_pose_msgs" / "msg" / "Hands.msg").is_file()
    assert (
        install / "event_camera_msgs" / "share" / "event_camera_msgs" / "msg" / "EventPacket.msg"
    ).is_file()
    script = (
        "import hand_pose_core.runtime.bundled as b, hand_pose_msgs.msg as m, event_camera_msgs.msg as e; "
    )
    script += "print(b.__file__); print(b.bundled_model('palm_detector_lite')); "
    script += "print(m.__file__); print(e.__file__)"
    result = subprocess.run(
        installed(workspace, f"{VENV / 'bin' / 'python'} -c \"{script}\""),
        cwd=workspace, env=ros_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    module, model, *messages = result.stdout.split()
    assert all(Path(path).is_relative_to(install) for path in (module, model, *messages)), result.stdout


@pytest.mark.slow
def test_the_installed_estimator_answers_a_real_photo_with_hands(workspace, tmp_path):
    executable = workspace / "install" / "hand_pose_ros" / "lib" / "hand_pose_ros" / "hand_pose_estimator"
    assert executable.is_file()
    photo = DATA_DIR / "real" / "mp_rock_one_hand.jpg"
    result_path = tmp_path / "probe.json"
    env = ros_env()
    with ProcessGroup(env) as group:
        node = group.start(
            installed(workspace, f"exec {executable} --ros-args -r image:=/camera/image "
                      "-r camera_info:=/camera/camera_info")
        )  # fmt: skip
        probe = group.start(
            [sys.executable, ROOT / "test" / "ros_probe.py", "rate", "--image", photo, "--out", result_path,
             "--frames", "4", "--hz", "2"]
        )  # fmt: skip
        assert probe.wait(180) == 0, probe.output + "\n" + node.output
        assert node.interrupt() == 0, node.output
    assert str(workspace / "install") in node.output  # the backend line names the installed models
    result = json.loads(result_path.read_text())
    answered = {message["stamp"]: message for message in result["hands"]}
    assert set(result["sent"]) <= set(answered)
    assert all(len(answered[stamp]["hands"]) == 1 for stamp in result["sent"][1:])
