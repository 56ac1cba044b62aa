"""Build ROS 2 interface packages (.msg) into this virtual environment with colcon, off a ROS install.

The Jazzy wheels on PyPI carry rosidl's generators and the message packages, but their exported CMake
files name the include folders of the manylinux container they were built in; CMake stops on those
missing paths until they name this interpreter's. After `colcon build --merge-install` into the venv the
generated modules import with nothing but the venv's python (no setup.bash). Needs gcc, g++ and cmake.

    .venv/bin/python tools/build_interfaces.py hand_pose_msgs [more package folders]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

BUILT_ELSEWHERE = re.compile(
    r"/opt/python/cp3\d+-cp3\d+/(include/python3\.\d+|lib/python3\.\d+/site-packages/numpy/_core/include)"
)


def venv_prefix() -> Path:
    if sys.prefix == sys.base_prefix:
        raise SystemExit("build_interfaces: run it with a virtual environment's python (.venv/bin/python)")
    return Path(sys.prefix)


def point_cmake_at_this_python(prefix: Path) -> int:
    """Replace the container's Python and numpy include folders in the wheels' CMake files; files changed."""
    import numpy

    local = {"include": sysconfig.get_paths()["include"], "numpy": numpy.get_include()}
    changed = 0
    for path in (prefix / "share").rglob("*.cmake"):
        text = path.read_text(errors="surrogateescape")
        fixed = BUILT_ELSEWHERE.sub(
            lambda match: local["numpy"] if "numpy" in match.group(1) else local["include"], text
        )
        if fixed != text:
            path.write_text(fixed, errors="surrogateescape")
            changed += 1
    return changed


def build(packages: list[Path], prefix: Path) -> None:
    environment = dict(os.environ)
    environment["PATH"] = f"{prefix / 'bin'}{os.pathsep}{environment.get('PATH', '')}"
    environment["AMENT_PREFIX_PATH"] = environment["CMAKE_PREFIX_PATH"] = str(prefix)
    work = prefix / "colcon"
    command = [
        str(prefix / "bin" / "colcon"),
        "--log-base",
        str(work / "log"),
        "build",
        "--merge-install",
        "--install-base",
        str(prefix),
        "--build-base",
        str(work / "build"),
        "--paths",
        *map(str, packages),
        "--cmake-args",
        "-DBUILD_TESTING=OFF",
        f"-DPython3_EXECUTABLE={prefix / 'bin' / 'python'}",
    ]
    result = subprocess.run(command, env=environment)
    if result.returncode:
        raise SystemExit(f"build_interfaces: colcon build failed; its logs are in {work / 'log'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="+", type=Path, help="interface package folders")
    args = parser.parse_args()
    for package in args.packages:
        if not (package / "package.xml").is_file():
            raise SystemExit(f"build_interfaces: {package} has no package.xml")
    prefix = venv_prefix()
    point_cmake_at_this_python(prefix)
    build(args.packages, prefix)


if __name__ == "__main__":
    main()
