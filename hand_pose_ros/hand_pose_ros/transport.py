"""The Fast DDS profile that lets camera-sized images through (a 16 MiB shared-memory segment).

Fast DDS reads `FASTRTPS_DEFAULT_PROFILES_FILE` when a process creates its first participant, so every
executable of this package calls `use_large_message_profile()` before `rclpy.init()`. A profile the user
has set already is kept.
"""

from __future__ import annotations

import os
from pathlib import Path

from hand_pose_core.errors import InputError
from hand_pose_core.installed import share_folders

PACKAGE = "hand_pose_ros"
PROFILE_NAME = "fastdds_shm.xml"
PROFILE_VARIABLE = "FASTRTPS_DEFAULT_PROFILES_FILE"


def dds_profile_path() -> Path:
    """The shipped profile: the source tree's config/, else the installed share/ copy."""
    places = [Path(__file__).resolve().parents[1], *share_folders(PACKAGE)]
    for folder in places:
        if (folder / "config" / PROFILE_NAME).is_file():
            return folder / "config" / PROFILE_NAME
    raise InputError(f"{PROFILE_NAME} not found in {', '.join(str(f / 'config') for f in places)}")


def use_large_message_profile() -> str:
    """Point Fast DDS at the shipped profile unless one is set; returns the profile in use."""
    return os.environ.setdefault(PROFILE_VARIABLE, str(dds_profile_path()))
