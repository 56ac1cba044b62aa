"""The names the estimator node, the players and the bag tools share, kept in one place: the node, its
outputs, the topics of take bags and the camera's optical frame.

The node publishes its outputs under its own name (`~/right_hand` is `/hand_pose_estimator/right_hand`);
the bag tools read them back by those full names.
"""

from __future__ import annotations

from hand_pose_core.geometry.skeleton import HAND_SIDES

ESTIMATOR_NODE = "hand_pose_estimator"
# The node's outputs, relative to the node.
HAND_OUTPUTS = {side: f"{side}_hand" for side in HAND_SIDES}
MARKERS_OUTPUT = "markers"
OVERLAY_OUTPUT = "overlay"
DIAGNOSTICS_TOPIC = "/diagnostics"


def estimator_topic(output: str) -> str:
    """The full name of one of the estimator's outputs, as recorded in a bag."""
    return f"/{ESTIMATOR_NODE}/{output}"


HAND_TOPICS = {side: estimator_topic(output) for side, output in HAND_OUTPUTS.items()}
OVERLAY_TOPIC = estimator_topic(OVERLAY_OUTPUT)

# Take bags (`hand-pose egoexo2bag`): the images, their camera, and the take index.
IMAGE_TOPIC = "/camera/image"
CAMERA_INFO_TOPIC = "/camera/camera_info"
TAKES_TOPIC = "/hand_pose/takes"
# The RGB camera's optical frame: aria_vrs_player's frame_id, take bags' frame_id and RViz's fixed frame.
OPTICAL_FRAME = "camera_rgb"
