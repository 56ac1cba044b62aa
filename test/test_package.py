"""The ament_python package as ROS 2 tooling and pip see it, and the layering rule."""

from __future__ import annotations

import ast
import configparser
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "hand_pose_ros"  # the ament_python package, a folder of its own (colcon)
ROSDEP_KEYS = {"rclpy", "sensor_msgs", "visualization_msgs", "geometry_msgs", "std_msgs", "diagnostic_msgs"}


def test_package_xml_is_format_3_ament_python_with_rosdep_keys():
    root = ET.parse(PACKAGE_DIR / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "hand_pose_ros"
    assert root.find("export/build_type").text == "ament_python"
    depends = {e.text for e in root if e.tag.endswith("depend")}
    assert depends >= ROSDEP_KEYS


def imported_top_level(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names


def test_package_xml_lists_every_ros_package_the_code_imports():
    root = ET.parse(PACKAGE_DIR / "package.xml").getroot()
    depends = {e.text for e in root if e.tag.endswith("depend")}
    imported = imported_top_level(PACKAGE_DIR / "hand_pose_ros") | imported_top_level(
        PACKAGE_DIR / "hand_pose_core"
    )
    ros = {
        name
        for name in imported
        if name.endswith(("_msgs", "_interfaces")) or name in {"rclpy", "ament_index_python"}
    }
    assert ros and ros <= depends, ros - depends


def test_setup_installs_ament_markers_and_scripts_where_ros2_run_looks():
    assert (PACKAGE_DIR / "resource" / "hand_pose_ros").is_file()
    config = configparser.ConfigParser()
    config.read(PACKAGE_DIR / "setup.cfg")
    assert config["develop"]["script_dir"] == "$base/lib/hand_pose_ros"
    assert config["install"]["install_scripts"] == "$base/lib/hand_pose_ros"
    setup = (PACKAGE_DIR / "setup.py").read_text()
    for expected in (
        "share/ament_index/resource_index/packages",
        "package.xml",
        "launch/*.launch.py",
        "config/*.yaml",
        "hand-pose = hand_pose_core.cli:main",
    ):
        assert expected in setup


def test_hand_pose_core_never_imports_rclpy():
    for path in (PACKAGE_DIR / "hand_pose_core").rglob("*.py"):
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


# The rooms of hand_pose_core from the bottom up: a module imports only from its own room or lower ones.
ROOMS = (
    "errors",
    "atomic",
    "installed",
    "events",
    "geometry",
    "mano",
    "egoexo",
    "synth",
    "models",
    "runtime",
    "live",
    "learn",
    "bags",
    "cli",
)


def core_imports() -> dict[str, set[str]]:
    """Module -> the hand_pose_core modules it imports (at the top or inside functions)."""
    graph = {}
    for path in (PACKAGE_DIR / "hand_pose_core").rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE_DIR).with_suffix("").parts).removesuffix(".__init__")
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hand_pose_core"):
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names if a.name.startswith("hand_pose_core."))
        graph[module] = imported
    return graph


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "package"


def test_rooms_depend_downwards_only():
    upward = [
        f"{module} -> {target}"
        for module, targets in core_imports().items()
        for target in targets
        if room(module) in ROOMS and ROOMS.index(room(target)) > ROOMS.index(room(module))
    ]
    assert not upward


def test_the_import_graph_has_no_cycle():
    graph = core_imports()
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            assert state.get(target) != "open", " -> ".join([*path, module, target])
            if target not in state:
                visit(target, [*path, module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_every_room_says_what_lives_there():
    for folder in (PACKAGE_DIR / "hand_pose_core").iterdir():
        if folder.is_dir() and folder.name != "__pycache__":
            docstring = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
            assert docstring and len(docstring.splitlines()) == 1, folder


def test_nothing_reads_the_folder_beside_the_repository():
    beside = "/".join(["..", "shared"])  # spelt in pieces so that this file does not match itself
    climbing = re.compile(r"parents\[2\]\s*/\s*[\"']shared[\"']")
    sources = [
        path
        for pattern in ("*.py", "*.sh", "Makefile", "run", "*.yaml", "*.toml", "*.cfg")
        for path in ROOT.rglob(pattern)
        if not {".venv", "out", ".git"} & set(path.relative_to(ROOT).parts)
    ]
    assert len(sources) > 50
    readers = [
        str(path.relative_to(ROOT))
        for path in sources
        if beside in path.read_text(errors="replace") or climbing.search(path.read_text(errors="replace"))
    ]
    assert not readers


def test_an_onnx_pipeline_and_the_node_never_load_torch():
    script = """
import sys
import numpy as np
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
from hand_pose_core.live.pipeline import HandPosePipeline
from hand_pose_core.runtime.bundled import bundled_model
import hand_pose_ros.estimator
pipeline = HandPosePipeline.load(bundled_model("lifter"), BENCHMARK_CAMERA, bundled_model("detector"))
pipeline.process(np.zeros((512, 512, 3), np.uint8))
assert "torch" not in sys.modules, "torch was imported"
print("no torch")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "no torch" in result.stdout, result.stderr
