"""The Fast DDS profile that lets camera-sized images through (a 16 MiB shared-memory segment).

Fast DDS reads `FASTRTPS_DEFAULT_PROFILES_FILE` when a process creates its first participant, so every
executable of this package calls `use_large_message_profile()` before `rclpy.init()`. A profile the user
has set already is kept.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = "hand_pose_ros"
PROFILE_NAME = "fastdds_shm.xml"
PROFILE_VARIABLE = "FASTRTPS_DEFAULT_PROFILES_FILE"


def dds_profile_path() -> Path:
    """The shipped profile: the installed share/ copy, else the source tree's config/."""
    source = Path(__file__).resolve().parents[1] / "config" / PROFILE_NAME
    if source.is_file():
        return source
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE)) / "config" / PROFILE_NAME


def use_large_message_profile() -> str:
    """Point Fast DDS at the shipped profile unless one is set; returns the profile in use."""
    return os.environ.setdefault(PROFILE_VARIABLE, str(dds_profile_path()))
