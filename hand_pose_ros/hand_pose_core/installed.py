"""Where installed ROS packages keep their files (models, config, .msg definitions), found without ROS.

colcon installs a package's data under `<prefix>/share/<package>`, and its environment lists every
prefix in AMENT_PREFIX_PATH (the ament index); `make` installs into this Python's prefix (.venv). This
is the search `ament_index_python` does, written out so that `hand_pose_core` works where ROS is not.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def share_folders(package: str) -> list[Path]:
    """Where a package's share folder may be, in order: each AMENT_PREFIX_PATH entry, then sys.prefix."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    if sys.prefix not in prefixes:
        prefixes.append(sys.prefix)
    return [Path(prefix) / "share" / package for prefix in prefixes]
