"""The ament_python package as ROS 2 tooling and pip see it, and the layering rule."""

from __future__ import annotations

import ast
import configparser
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROSDEP_KEYS = {"rclpy", "sensor_msgs", "visualization_msgs", "geometry_msgs", "std_msgs", "diagnostic_msgs"}


def test_package_xml_is_format_3_ament_python_with_rosdep_keys():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "hand_pose_ros"
    assert root.find("export/build_type").text == "ament_python"
    depends = {e.text for e in root if e.tag.endswith("depend")}
    assert depends >= ROSDEP_KEYS


def test_setup_installs_ament_markers_and_scripts_where_ros2_run_looks():
    assert (ROOT / "resource" / "hand_pose_ros").is_file()
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["develop"]["script_dir"] == "$base/lib/hand_pose_ros"
    assert config["install"]["install_scripts"] == "$base/lib/hand_pose_ros"
    setup = (ROOT / "setup.py").read_text()
    for expected in (
        "share/ament_index/resource_index/packages",
        "package.xml",
        "launch/*.launch.py",
        "config/*.yaml",
        "hand-pose = hand_pose_core.cli:main",
    ):
        assert expected in setup


def test_hand_pose_core_never_imports_rclpy():
    for path in (ROOT / "hand_pose_core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n == "rclpy" or n.startswith("rclpy.") for n in names), path


def test_ci_runs_make_test_and_nothing_else():
    commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands[-1] == "make test"
    assert all(c.startswith(("set ", "cd ")) for c in commands[:-1])
