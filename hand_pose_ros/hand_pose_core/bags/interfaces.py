"""Our message types in `rosbags`, registered from the installed .msg files of `hand_pose_msgs`.

The .msg files are the one definition: colcon installs them under `share/hand_pose_msgs/msg` (into
.venv when `make` builds them, into a workspace's install folder on a ROS machine), and the bag tools
read them from there (`hand_pose_core.installed`), so a bag written by the node and one read here agree
on every field.
"""

from __future__ import annotations

from pathlib import Path

from rosbags.typesys import get_types_from_msg
from rosbags.typesys.store import Typestore

from hand_pose_core.errors import InputError
from hand_pose_core.installed import share_folders

MESSAGE_PACKAGE = "hand_pose_msgs"


def message_files(package: str = MESSAGE_PACKAGE) -> list[Path]:
    """The package's installed .msg files (from the first share folder that has them)."""
    for share in share_folders(package):
        files = sorted((share / "msg").glob("*.msg"))
        if files:
            return files
    raise InputError(
        f"the {package} message definitions are not installed (looked in "
        f"{', '.join(str(s) for s in share_folders(package))}): build them with `make` or colcon"
    )


def register_messages(typestore: Typestore, package: str = MESSAGE_PACKAGE) -> None:
    """Add the package's message types to `typestore` (once; later calls do nothing)."""
    files = message_files(package)
    if f"{package}/msg/{files[0].stem}" in typestore.types:
        return
    types = {}
    for path in files:
        types.update(get_types_from_msg(path.read_text(), f"{package}/msg/{path.stem}"))
    typestore.register(types)
