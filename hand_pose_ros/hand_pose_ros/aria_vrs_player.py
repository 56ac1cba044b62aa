"""ROS 2 node `aria_vrs_player`: replays the cameras of a Project Aria VRS recording as sensor_msgs/Image.

It stands in for the glasses when there are none: frames go out at the pace they were captured (scaled by
`rate`) and are stamped with their device-clock capture time, published on /clock too, so the estimator
and a recorder downstream see the recording's own timing (run them with use_sim_time for latencies that
mean something); or, with `stamps: now`, stamped with the present time as a live camera would be. RGB
frames stay raw (sideways, fisheye) for the estimator's `camera_source: aria`. Reading the recording is
`hand_pose_core.aria.vrs_frames`; this node only paces and publishes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image

from hand_pose_core.bags.names import OPTICAL_FRAME, SLAM_INPUTS
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.aria import RGB_LABEL, VrsFrame, vrs_frames
from hand_pose_ros.messages import clock_message, image_message, make_header
from hand_pose_ros.node_base import CLOCK_QOS, CLOCK_TOPIC, Parameter, declare_parameters, own_copy, run_node

NODE_NAME = "aria_vrs_player"
RGB_TOPIC = "image"
# Discovery matches each side on its own: when our publishers see a subscriber, the subscriber may not
# have matched us yet and would drop the first best-effort frames; a short margin covers that.
DISCOVERY_SETTLE_S = 0.3


PARAMETERS = (
    Parameter("vrs_path", "", "Aria VRS recording to play (required)"),
    Parameter(
        "rate",
        1.0,
        "playback speed: 1.0 is real time by the device clock, 2.0 twice as fast (may change while playing)",
        floats=(0.01, 100.0),
        read_only=False,
    ),
    Parameter(
        "loop",
        False,
        "start again from the first frame at the end (may change while playing)",
        read_only=False,
    ),
    Parameter(
        "publish_slam", False, "also publish the grey SLAM cameras on slam_left/image and slam_right/image"
    ),
    Parameter("frame_id", OPTICAL_FRAME, "frame_id of the RGB images (the camera's optical frame)"),
    Parameter(
        "stamps",
        "recorded",
        "recorded: the device-clock capture times, also published on /clock (for use_sim_time); now: the "
        "present time when each frame is sent, as a live camera",
        choices=("recorded", "now"),
    ),
    Parameter(
        "wait_for_subscribers",
        5.0,
        "seconds to wait, before the first frame, until every published topic has a subscriber "
        "(0: start right away)",
        floats=(0.0, 600.0),
    ),
)


class AriaVrsPlayer(Node):
    """Publishes a recording's frames in capture order, sleeping (capture time difference / rate)."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        value = declare_parameters(self, PARAMETERS)
        self.vrs_path, self.publish_slam = value["vrs_path"], value["publish_slam"]
        self.wait_for_subscribers, frame_id = value["wait_for_subscribers"], value["frame_id"]
        if not self.vrs_path:
            raise InputError("parameter vrs_path is empty: give the recording with -p vrs_path:=FILE.vrs")
        self.streams = {RGB_LABEL: (RGB_TOPIC, frame_id)}
        if self.publish_slam:
            self.streams.update(SLAM_INPUTS)
        self._first_pass = vrs_frames(Path(self.vrs_path), list(self.streams))
        overridable = QoSOverridingOptions.with_default_policies()
        self.publishers_by_label = {
            label: self.create_publisher(
                Image, topic, own_copy(qos_profile_sensor_data), qos_overriding_options=overridable
            )
            for label, (topic, _) in self.streams.items()
        }
        self.recorded_stamps = value["stamps"] == "recorded"
        self.clock = self.create_publisher(Clock, CLOCK_TOPIC, CLOCK_QOS) if self.recorded_stamps else None
        self.published = dict.fromkeys(self.streams, 0)

    def play(self) -> None:
        """Publish every frame once, or forever with `loop`; returns at the end of the recording."""
        self._wait_for_subscribers()
        self.get_logger().info(
            f"playing {self.vrs_path} at rate {self._rate():g} on "
            + ", ".join(self.resolve_topic_name(topic) for topic, _ in self.streams.values())
        )
        frames: Iterator[VrsFrame] = self._first_pass
        while True:
            if not self._play_pass(frames):
                self.get_logger().warning(f"{self.vrs_path}: the chosen streams have no frames")
                return
            if not self.get_parameter("loop").value:
                return
            frames = vrs_frames(Path(self.vrs_path), list(self.streams))

    def summary(self) -> str:
        return "published " + ", ".join(
            f"{count} frames on {self.streams[label][0]}" for label, count in self.published.items()
        )

    def _rate(self) -> float:
        return self.get_parameter("rate").value

    def _play_pass(self, frames: Iterator[VrsFrame]) -> int:
        """Each frame is due (capture time difference / rate) after the previous frame was due, so a late
        frame does not delay the rest and a rate change applies from the next frame."""
        previous: tuple[float, int] | None = None  # (monotonic seconds it was due, capture_ns)
        count = 0
        for frame in frames:
            if previous is None:
                due = time.monotonic()
            else:
                due = previous[0] + max(frame.capture_ns - previous[1], 0) / 1e9 / self._rate()
            self._sleep_until(due)
            previous = (due, frame.capture_ns)
            topic_frame_id = self.streams[frame.label][1]
            stamp = frame.capture_ns if self.recorded_stamps else self.get_clock().now().nanoseconds
            if self.clock is not None:
                self.clock.publish(clock_message(stamp))
            message = image_message(frame.image, make_header(stamp, topic_frame_id))
            self.publishers_by_label[frame.label].publish(message)
            self.published[frame.label] += 1
            count += 1
        return count

    def _sleep_until(self, due: float) -> None:
        """Wait for a frame's time while still serving this node's parameter services."""
        while self.context.ok() and (remaining := due - time.monotonic()) > 0:
            rclpy.spin_once(self, timeout_sec=remaining)
        if not self.context.ok():  # Ctrl-C or SIGTERM: rclpy's signal handler shut the context down
            raise ExternalShutdownException

    def _wait_for_subscribers(self) -> None:
        if self.wait_for_subscribers <= 0:
            return
        deadline = time.monotonic() + self.wait_for_subscribers
        while time.monotonic() < deadline and self._unsubscribed():
            rclpy.spin_once(self, timeout_sec=0.05)
        missing = self._unsubscribed()
        if missing:
            self.get_logger().warning(
                f"no subscriber on {', '.join(missing)} after {self.wait_for_subscribers:g} s; playing anyway"
            )
        else:
            self._sleep_until(time.monotonic() + DISCOVERY_SETTLE_S)

    def _unsubscribed(self) -> list[str]:
        return [
            self.streams[label][0]
            for label, publisher in self.publishers_by_label.items()
            if publisher.get_subscription_count() == 0
        ]


def _play(node: AriaVrsPlayer) -> None:
    node.play()
    node.get_logger().info(f"end of {node.vrs_path}: {node.summary()}")


def main(args: list[str] | None = None) -> int:
    return run_node(NODE_NAME, AriaVrsPlayer, _play, args=args)


if __name__ == "__main__":
    sys.exit(main())
