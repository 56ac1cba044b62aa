"""`bag_player`: plays a bag's images, camera infos, event packets and take index on their recorded
topics.

`ros2 bag play` for machines without rosbag2 (it reads MCAP and sqlite3 through `rosbags`). Real time by
the bag's log times (scaled by `rate`), or in lockstep with the estimator: with `lockstep_topic` set (its
`hands`), each image waits for the hands stamped like it before the next is sent, so an offline
evaluation through the live node sees every frame. The take index is latched (transient local) for
recorders that join late. Like `ros2 bag play --clock`, the log time of each message goes out on /clock
first, for nodes run with use_sim_time.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from pathlib import Path

from hand_pose_msgs.msg import Hands
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock

from hand_pose_core.atomic import write_json_atomic
from hand_pose_core.bags.messages import NANOSECONDS, stamp_ns
from hand_pose_core.bags.names import CAMERA_INFO_TOPIC, EVENT_TYPES, IMAGE_TOPIC, TAKES_TOPIC
from hand_pose_core.bags.takes import BagContents, read_raw, read_topics
from hand_pose_core.errors import InputError
from hand_pose_ros.messages import clock_message
from hand_pose_ros.node_base import CLOCK_QOS, CLOCK_TOPIC, Parameter, declare_parameters, run_node

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
EVENTS_QOS = QoSProfile(depth=1000)  # reliable, as the estimator takes events: each packet matters
MAX_PAUSE_S = 1.0  # gaps between takes are played as this at most


def message_class(msgtype: str) -> type:
    """The rclpy class of a type name such as sensor_msgs/msg/Image."""
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


PARAMETERS = (
    Parameter("bag", "", "bag folder to play"),
    Parameter("rate", 1.0, "playback speed (1.0: the bag's real time)", floats=(0.01, 100.0)),
    Parameter(
        "lockstep_topic", "", "wait for the estimator's hands (hand_pose_msgs/Hands) stamped like each image"
    ),
    Parameter("publish_clock", True, "publish each message's log time on /clock (for use_sim_time)"),
    Parameter(
        "lockstep_timeout_s", 10.0, "give up waiting for one image's output after this", floats=(0.1, 600.0)
    ),
    Parameter(
        "timings_file",
        "",
        "lockstep: write each image's round trip (sent -> output received, seconds) as JSON",
    ),
    Parameter("wait_for_subscribers_s", 30.0, "wait this long for an image subscriber", floats=(0.0, 600.0)),
)


class BagPlayer(Node):
    def __init__(self) -> None:
        super().__init__("bag_player", enable_rosout=False)
        value = declare_parameters(self, PARAMETERS)
        self.bag, self.rate = Path(value["bag"]), value["rate"]
        self.lockstep_topic, self.lockstep_timeout_s = value["lockstep_topic"], value["lockstep_timeout_s"]
        self.timings_file, self.wait_for_subscribers_s = (
            value["timings_file"],
            value["wait_for_subscribers_s"],
        )
        self.round_trips: list[float] = []
        if not self.bag.exists():
            raise InputError(f"{self.bag}: no such bag (set the bag parameter)")
        self.publishers_by_topic: dict = {}
        self.event_topics: list[str] = []
        self.answered: set[int] = set()
        self.answer = threading.Condition()
        if self.lockstep_topic:
            self.create_subscription(Hands, self.lockstep_topic, self._on_output, QoSProfile(depth=100))
        self.clock = self.create_publisher(Clock, CLOCK_TOPIC, CLOCK_QOS) if value["publish_clock"] else None

    def _on_output(self, message) -> None:
        with self.answer:
            self.answered.add(stamp_ns(message.header.stamp))
            self.answer.notify_all()

    def _publisher(self, topic: str, msgtype: str) -> None:
        if msgtype in EVENT_TYPES:
            self.event_topics.append(topic)
            qos = EVENTS_QOS
        elif topic in (IMAGE_TOPIC, CAMERA_INFO_TOPIC, TAKES_TOPIC):
            qos = LATCHED if topic == TAKES_TOPIC else qos_profile_sensor_data
        else:
            return
        self.publishers_by_topic[topic] = self.create_publisher(message_class(msgtype), topic, qos)

    def _wait_for_subscriber(self, topic: str) -> None:
        deadline = time.monotonic() + self.wait_for_subscribers_s
        while self.count_subscribers(topic) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.count_subscribers(topic) == 0:
            self.get_logger().warning(f"nobody subscribes to {topic}; playing anyway")
        if self.lockstep_topic:
            while self.count_publishers(self.lockstep_topic) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
        time.sleep(0.5)  # let the matched endpoints finish discovery both ways

    def play(self) -> tuple[int, int, int, list[str]]:
        """Publish everything; returns (images sent, event packets sent, images without a lockstep answer,
        bag problems)."""
        contents = BagContents(self.bag)
        sent = packets = unanswered = 0
        for topic, msgtype in read_topics(self.bag).items():
            self._publisher(topic, msgtype)
        self._wait_for_subscriber(self.event_topics[0] if self.event_topics else IMAGE_TOPIC)
        previous_time, previous_wall = None, time.monotonic()
        for raw in read_raw(self.bag, set(self.publishers_by_topic), contents):
            publisher = self.publishers_by_topic[raw.topic]
            if previous_time is not None and not self.lockstep_topic:
                pause = min((raw.timestamp - previous_time) / NANOSECONDS, MAX_PAUSE_S) / self.rate
                time.sleep(max(0.0, previous_wall + pause - time.monotonic()))
            previous_time, previous_wall = raw.timestamp, time.monotonic()
            if self.clock is not None:
                self.clock.publish(clock_message(raw.timestamp))
            if raw.topic != IMAGE_TOPIC:
                publisher.publish(raw.data)
                packets += raw.topic in self.event_topics
                continue
            stamp = stamp_ns(raw.decode().header.stamp) if self.lockstep_topic else None
            start = time.perf_counter()
            publisher.publish(raw.data)
            sent += 1
            if stamp is None:
                continue
            if self._await_output(stamp):
                self.round_trips.append(time.perf_counter() - start)
            else:
                unanswered += 1
                self.get_logger().warning(
                    f"no output on {self.lockstep_topic} for image at {raw.timestamp} ns"
                )
        if self.timings_file:
            write_json_atomic(Path(self.timings_file), {"round_trip_s": self.round_trips})
        return sent, packets, unanswered, contents.problems

    def _await_output(self, stamp: int) -> bool:
        with self.answer:
            return self.answer.wait_for(lambda: stamp in self.answered, self.lockstep_timeout_s)


def _play(player: BagPlayer) -> int:
    """Play with the node spun in the background (for the lockstep answers); 1 when images went
    unanswered or the bag had unreadable parts."""
    executor = SingleThreadedExecutor()
    executor.add_node(player)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    sent, packets, unanswered, problems = player.play()
    logger = player.get_logger()
    logger.info(
        f"played {sent} images"
        + (f" and {packets} event packets" if packets else "")
        + f" from {player.bag}"
        + (f", {unanswered} without output" if unanswered else "")
    )
    for problem in problems:
        logger.error(problem)
    time.sleep(0.5)  # let the last messages leave before the participant goes
    executor.shutdown()
    spinner.join()
    return 1 if problems or unanswered else 0


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node("bag_player", BagPlayer, _play, args=args))


if __name__ == "__main__":
    main()
