"""Message types rosbags does not ship, registered in `rosbags` from their .msg files.

The .msg files are the one definition. `hand_pose_msgs` and `event_camera_msgs` are interface packages
colcon installs under `share/<package>/msg` (into .venv when `make` builds them, into a workspace's
install folder or /opt/ros from apt on a ROS machine), and the bag tools read them from there
(`hand_pose_core.installed`), so a bag written by the node and one read here agree on every field.
`dvs_msgs` (older event camera drivers) is only read from bags: its .msg text ships in
`hand_pose_core/events/dvs_msgs`.
"""

from __future__ import annotations

from pathlib import Path

from rosbags.typesys import get_types_from_msg
from rosbags.typesys.store import Typestore

from hand_pose_core.errors import InputError
from hand_pose_core.installed import share_folders

MESSAGE_PACKAGE = "hand_pose_msgs"
INSTALLED_PACKAGES = (MESSAGE_PACKAGE, "event_camera_msgs")
SHIPPED_PACKAGES = {"dvs_msgs": Path(__file__).resolve().parents[1] / "events" / "dvs_msgs"}


def message_files(package: str = MESSAGE_PACKAGE) -> list[Path]:
    """The package's .msg files: shipped ones, or the installed ones from the first share folder that
    has them."""
    if package in SHIPPED_PACKAGES:
        return sorted(SHIPPED_PACKAGES[package].glob("*.msg"))
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


def register_for(typestore: Typestore, msgtype: str) -> None:
    """Register `msgtype`'s package in `typestore` when it is one of those above (others: nothing)."""
    package = msgtype.split("/", 1)[0]
    if package in INSTALLED_PACKAGES or package in SHIPPED_PACKAGES:
        register_messages(typestore, package)
