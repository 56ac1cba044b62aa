"""The names the estimator node, the players and the bag tools share, kept in one place: the node, its
topics, the topics of take bags and the camera's optical frame.

The node's topics are relative names, resolved in its namespace (`hands` is `/hands`, or
`/left_cam/hands` under the namespace `left_cam`) and renamed by remapping; the bag tools find the
node's hands in a bag by their type, whatever the topic was called.
"""

from __future__ import annotations

ESTIMATOR_NODE = "hand_pose_estimator"
# The node's inputs and outputs, relative to its namespace.
IMAGE_INPUT = "image"
CAMERA_INFO_INPUT = "camera_info"
EVENTS_INPUT = "events"  # event cameras' packets (event_camera_msgs/EventPacket)
# Aria's grey SLAM cameras by calibration label: (topic, frame_id), as aria_vrs_player publishes them.
SLAM_INPUTS = {
    "camera-slam-left": ("slam_left/image", "camera_slam_left"),
    "camera-slam-right": ("slam_right/image", "camera_slam_right"),
}
HANDS_OUTPUT = "hands"
MARKERS_OUTPUT = "markers"
OVERLAY_OUTPUT = "overlay"
DIAGNOSTICS_TOPIC = "/diagnostics"
HANDS_TYPE = "hand_pose_msgs/msg/Hands"
# Event cameras' messages: the drivers' packets, and older drivers' arrays.
EVENT_PACKET_TYPE = "event_camera_msgs/msg/EventPacket"
EVENT_ARRAY_TYPE = "dvs_msgs/msg/EventArray"
EVENT_TYPES = (EVENT_PACKET_TYPE, EVENT_ARRAY_TYPE)

# Take bags (`hand-pose egoexo2bag`): the images, their camera, and the take index.
IMAGE_TOPIC = "/camera/image"
CAMERA_INFO_TOPIC = "/camera/camera_info"
TAKES_TOPIC = "/hand_pose/takes"
# The RGB camera's optical frame: aria_vrs_player's frame_id, take bags' frame_id and RViz's fixed frame.
OPTICAL_FRAME = "camera_rgb"
