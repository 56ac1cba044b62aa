"""Conversions between ROS 2 messages and the numpy arrays `hand_pose_core` works with.

Pixel decoding itself (encodings, row padding) is `hand_pose_core.bags.messages`, shared with the offline bag
tools; this module only builds and unpacks rclpy message objects.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Point32, Vector3
from hand_pose_msgs.msg import Hand, Hands
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker

from hand_pose_core.bags.messages import NANOSECONDS, decode_compressed_image, decode_image, encoding_of
from hand_pose_core.geometry.camera import PinholeCamera, Turn
from hand_pose_core.geometry.skeleton import BONES, SIDE_COLOURS
from hand_pose_core.live.pipeline import HandResult
from hand_pose_core.mano.fitting import ManoFit

JOINTS_ID, BONES_ID, MESH_ID = 0, 1, 2
JOINT_DIAMETER_M = 0.012
BONE_WIDTH_M = 0.005


def ns_to_stamp(nanoseconds: int) -> Time:
    return Time(sec=int(nanoseconds // NANOSECONDS), nanosec=int(nanoseconds % NANOSECONDS))


def clock_message(nanoseconds: int) -> Clock:
    """/clock at a recording's time, for nodes that run with use_sim_time."""
    return Clock(clock=ns_to_stamp(nanoseconds))


def make_header(stamp_ns: int, frame_id: str) -> Header:
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


def image_message(image: np.ndarray, header: Header) -> Image:
    """A uint8 (H, W) or (H, W, 3) array as mono8 or rgb8, rows unpadded."""
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    message = Image(header=header, height=height, width=width, encoding=encoding_of(image))
    message.step = image.strides[0]
    message.data = image.tobytes()
    return message


def image_array(message: Image | CompressedImage) -> np.ndarray:
    """The pixels of an Image or CompressedImage message as (H, W) or (H, W, 3) RGB uint8; InputError
    when they cannot be read."""
    if isinstance(message, CompressedImage):
        return decode_compressed_image(message.format, message.data)
    return decode_image(
        message.encoding, message.height, message.width, message.step, message.data, message.is_bigendian
    )


def hands_message(header: Header, hands: list[HandResult], camera: PinholeCamera, to_output: Turn) -> Hands:
    """One frame's hands: 2D in the processed image (of `camera`), 3D (and MANO) turned to the input
    image's optical frame by `to_output`."""
    message = Hands(header=header, width=camera.width, height=camera.height)
    for hand in hands:
        joints = to_output.points_3d(hand.camera)
        keypoints = np.nan_to_num(hand.keypoints, nan=0.0)
        mano = {}
        if hand.mano is not None:
            fit = hand.mano.turned(to_output)
            mano = {
                f"mano_{name}": getattr(fit, name).astype(np.float32)
                for name in ("global_orient", "hand_pose", "betas", "transl")
            }
        message.hands.append(
            Hand(
                side=hand.side,
                score=float(hand.score),
                box=np.asarray(hand.box, np.float32),
                keypoints=[Point32(x=float(x), y=float(y)) for x, y in keypoints],
                joints=[Point(x=float(x), y=float(y), z=float(z)) for x, y, z in joints],
                confidence=hand.joint_confidence(camera).astype(np.float32),
                **mano,
            )
        )
    return message


def _colour(rgb: tuple[int, int, int], alpha: float = 1.0) -> ColorRGBA:
    red, green, blue = (channel / 255.0 for channel in rgb)
    return ColorRGBA(r=red, g=green, b=blue, a=alpha)


def hand_markers(header: Header, side: str, joints: np.ndarray | None) -> list[Marker]:
    """RViz markers of one hand: joint spheres and bone lines in the side's colour, or the deletion of
    both when the hand is absent (so a lost hand disappears at once)."""
    namespace = f"{side}_hand"
    if joints is None:
        return [
            Marker(header=header, ns=namespace, id=i, action=Marker.DELETE) for i in (JOINTS_ID, BONES_ID)
        ]
    points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in joints]
    colour = SIDE_COLOURS[side]
    spheres = Marker(header=header, ns=namespace, id=JOINTS_ID, type=Marker.SPHERE_LIST, action=Marker.ADD)
    spheres.scale = Vector3(x=JOINT_DIAMETER_M, y=JOINT_DIAMETER_M, z=JOINT_DIAMETER_M)
    spheres.color = _colour(colour)
    spheres.points = points
    spheres.pose.orientation.w = 1.0
    bones = Marker(header=header, ns=namespace, id=BONES_ID, type=Marker.LINE_LIST, action=Marker.ADD)
    bones.scale.x = BONE_WIDTH_M
    bones.color = _colour(colour, 0.8)
    bones.points = [points[i] for bone in BONES for i in bone]
    bones.pose.orientation.w = 1.0
    return [spheres, bones]


def mesh_marker(header: Header, side: str, mesh: ManoFit | None) -> Marker:
    """One hand's MANO mesh as an RViz TRIANGLE_LIST in the side's colour (three points a face), or its
    deletion when the hand is absent."""
    namespace = f"{side}_hand"
    if mesh is None:
        return Marker(header=header, ns=namespace, id=MESH_ID, action=Marker.DELETE)
    marker = Marker(header=header, ns=namespace, id=MESH_ID, type=Marker.TRIANGLE_LIST, action=Marker.ADD)
    marker.scale = Vector3(x=1.0, y=1.0, z=1.0)
    marker.color = _colour(SIDE_COLOURS[side], 0.6)
    marker.points = [
        Point(x=float(x), y=float(y), z=float(z)) for x, y, z in mesh.vertices[mesh.faces.ravel()]
    ]
    marker.pose.orientation.w = 1.0
    return marker
