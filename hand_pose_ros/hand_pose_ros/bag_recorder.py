"""`bag_recorder`: records topics into an MCAP bag, for machines without rosbag2.

Subscribes to each named topic once a publisher appears, with the publisher's reliability and
durability (so a latched take index arrives), and stores the messages as they came (serialized, log
time = arrival). The bag appears at `out` only when recording stops (Ctrl-C): until then it is written
in a hidden folder beside it.
"""

from __future__ import annotations

import sys

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile

from hand_pose_core.bags.takes import BagWriter
from hand_pose_core.errors import InputError
from hand_pose_ros.bag_player import message_class
from hand_pose_ros.node_base import Parameter, declare_parameters, run_node

DISCOVERY_PERIOD_S = 0.1
WAKE_PERIOD_S = 0.2


PARAMETERS = (
    Parameter("out", "", "bag folder to create"),
    Parameter("topics", [""], "topics to record"),
)


class BagRecorder(Node):
    def __init__(self) -> None:
        super().__init__("bag_recorder", enable_rosout=False)
        value = declare_parameters(self, PARAMETERS)
        out, self.topics = value["out"], list(value["topics"])
        if not out or not any(self.topics):
            raise InputError("bag_recorder needs the out and topics parameters")
        self.topics = [self.resolve_topic_name(t) for t in self.topics if t]
        self.bag = BagWriter(out)
        self.subscribed: set[str] = set()
        self.discovery = self.create_timer(DISCOVERY_PERIOD_S, self._discover)

    def _discover(self) -> None:
        for topic in self.topics:
            if topic in self.subscribed:
                continue
            publishers = self.get_publishers_info_by_topic(topic)
            if not publishers:
                continue
            msgtype = publishers[0].topic_type
            offered = publishers[0].qos_profile
            qos = QoSProfile(depth=1000, reliability=offered.reliability, durability=offered.durability)
            self.create_subscription(
                message_class(msgtype),
                topic,
                lambda data, topic=topic, msgtype=msgtype: self._record(topic, msgtype, data),
                qos,
                raw=True,
            )
            self.subscribed.add(topic)
            self.get_logger().info(f"recording {topic} ({msgtype})")
        if len(self.subscribed) == len(self.topics):
            self.discovery.cancel()
            self.get_logger().info("recording all topics")

    def _record(self, topic: str, msgtype: str, data: bytes) -> None:
        self.bag.write_raw(topic, msgtype, self.get_clock().now().nanoseconds, data)

    def finish(self) -> None:
        self.bag.close()
        counts = ", ".join(f"{topic}: {n}" for topic, n in self.bag.counts.items()) or "nothing"
        self.get_logger().info(f"wrote {self.bag.out} ({counts})")


def record(node: BagRecorder) -> None:
    """Spin until Ctrl-C, waking every WAKE_PERIOD_S even when nothing arrives: a recorder left waiting
    after Ctrl-C was seen a few times in tests (always just after the recorded node had gone; cause not
    found), and this loop sees the shut-down context on its next wake whatever woke it."""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    while node.context.ok():
        executor.spin_once(timeout_sec=WAKE_PERIOD_S)


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node("bag_recorder", BagRecorder, record, BagRecorder.finish, args))


if __name__ == "__main__":
    main()
