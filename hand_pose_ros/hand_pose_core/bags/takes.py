"""Ego-Exo4D takes as rosbag2 bags and the node's recorded hands back as the benchmark JSON, with no ROS
runtime: `rosbags` reads and writes MCAP and sqlite3 bags and the CDR of ROS 2 messages.

A take bag (`hand-pose egoexo2bag`) holds, per annotated frame, the undistorted image on `IMAGE_TOPIC`
and its `CameraInfo` (or, with `--raw`, the raw Aria fisheye frame alone), and once, on `TAKES_TOPIC`,
the take index: for every take its uid, name and the exact header stamp of each frame. Stamps are
`START_NS + take * TAKE_GAP_NS + frame * FRAME_PERIOD_NS`, so the node (which copies input headers to
its outputs) sees one take after another with a gap it treats as a new recording, and every output maps
back to its take and frame through the index. A bag the node's outputs were recorded into carries the
index too (the player republishes it, latched).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from tqdm import tqdm

from hand_pose_core.atomic import ensure_dir
from hand_pose_core.bags.integrity import add_chunk_checksums, mcap_topics, read_mcap
from hand_pose_core.bags.interfaces import register_for
from hand_pose_core.bags.messages import NANOSECONDS, camera_from_info, decode_image, encoding_of, stamp_ns
from hand_pose_core.bags.names import CAMERA_INFO_TOPIC, HANDS_TYPE, IMAGE_TOPIC, OPTICAL_FRAME, TAKES_TOPIC
from hand_pose_core.egoexo.formats import Annotations, FrameAnnotation, Predictions
from hand_pose_core.egoexo.frames import FrameRecord
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import PinholeCamera
from hand_pose_core.geometry.skeleton import HAND_SIDES
from hand_pose_core.live.offline import FrameInput, annotated_frames

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
IMAGE_TYPE, CAMERA_INFO_TYPE = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"
STRING_TYPE = "std_msgs/msg/String"

START_NS = 1_000_000_000_000_000_000  # an arbitrary epoch well clear of zero
TAKE_GAP_NS = 100_000_000_000  # 100 s between takes: far more than the node's new-recording gap
FRAME_PERIOD_NS = 33_333_333  # 30 fps video frames


def known_type(msgtype: str) -> str:
    """`msgtype`, registered in TYPESTORE first when it is one of the packages rosbags does not ship."""
    register_for(TYPESTORE, msgtype)
    return msgtype


def frame_stamp_ns(take_index: int, frame_number: int) -> int:
    return START_NS + take_index * TAKE_GAP_NS + frame_number * FRAME_PERIOD_NS


@dataclass
class TakeIndex:
    """Which take and frame each header stamp of a take bag stands for."""

    takes: dict[str, str]  # take_uid -> take_name, in bag order
    frames: dict[int, tuple[str, int]]  # stamp (ns) -> (take_uid, frame_number)

    def to_json(self) -> str:
        by_take: dict[str, list[list[int]]] = {uid: [] for uid in self.takes}
        for stamp, (uid, frame_number) in self.frames.items():
            by_take[uid].append([frame_number, stamp])
        return json.dumps(
            {
                "takes": [
                    {"take_uid": uid, "take_name": name, "frames": by_take[uid]}
                    for uid, name in self.takes.items()
                ]
            }
        )

    @classmethod
    def from_json(cls, text: str, where: str) -> TakeIndex:
        try:
            takes = json.loads(text)["takes"]
            index = cls({t["take_uid"]: t["take_name"] for t in takes}, {})
            for take in takes:
                for frame_number, stamp in take["frames"]:
                    index.frames[int(stamp)] = (take["take_uid"], int(frame_number))
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise InputError(f"{where}: take index on {TAKES_TOPIC} is not valid ({exc})") from exc
        return index


# ------------------------------------------------------------------------------------------------ writing


def bag_camera_info(header, camera: PinholeCamera):
    """A rosbags sensor_msgs/CameraInfo of a pinhole camera (no distortion)."""
    msg = TYPESTORE.types[CAMERA_INFO_TYPE]
    return msg(
        header=header,
        height=camera.height,
        width=camera.width,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=camera.matrix.reshape(-1),
        r=np.eye(3).reshape(-1),
        p=np.hstack([camera.matrix, np.zeros((3, 1))]).reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=TYPESTORE.types["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        ),
    )


def bag_header(stamp: int, frame_id: str = OPTICAL_FRAME):
    """A rosbags std_msgs/Header at `stamp` ns (in the RGB camera's optical frame unless told)."""
    types = TYPESTORE.types
    time = types["builtin_interfaces/msg/Time"](sec=stamp // NANOSECONDS, nanosec=stamp % NANOSECONDS)
    return types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def bag_image(header, image: np.ndarray):
    """A rosbags sensor_msgs/Image of a uint8 grey or RGB array."""
    image = np.ascontiguousarray(image)
    msg = TYPESTORE.types[IMAGE_TYPE]
    return msg(
        header=header,
        height=image.shape[0],
        width=image.shape[1],
        encoding=encoding_of(image),
        is_bigendian=0,
        step=image.strides[0],
        data=image.reshape(-1),
    )


@dataclass
class BagSummary:
    frames: int = 0
    takes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (take/frame, reason)


class BagWriter:
    """A new MCAP bag, written in a hidden folder beside `out` and moved into place by `close()`, so
    readers never see half a bag. Connections are made on a topic's first message."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        if self.out.exists():
            raise InputError(f"{self.out}: already exists; give a new bag folder")
        parent = ensure_dir(self.out.parent)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", dir=parent))
        self.writer = Writer(self.tmp / self.out.name, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.connections: dict[str, Connection] = {}
        self.counts: Counter = Counter()

    def write_raw(self, topic: str, msgtype: str, timestamp: int, data: bytes) -> None:
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(
                topic, known_type(msgtype), typestore=TYPESTORE
            )
        self.writer.write(self.connections[topic], timestamp, data)
        self.counts[topic] += 1

    def write(self, topic: str, msgtype: str, timestamp: int, message: object) -> None:
        self.write_raw(topic, msgtype, timestamp, TYPESTORE.serialize_cdr(message, msgtype))

    def close(self, keep: bool = True) -> None:
        """Finish the bag and move it to `out` (or, with keep False, throw it away)."""
        try:
            self.writer.close()
            for mcap in (self.tmp / self.out.name).glob("*.mcap"):
                add_chunk_checksums(mcap)
            if keep:
                os.replace(self.tmp / self.out.name, self.out)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        self.close(keep=error_type is None)


def write_take_bag(
    annotations: Annotations,
    image_root: Path,
    split: str,
    out: Path,
    camera: PinholeCamera | None,
    progress: bool = True,
) -> BagSummary:
    """The annotated frames of a split, with their images, as an MCAP bag at `out` (a new folder).
    With `camera` None the images are raw Aria frames: no CameraInfo is written, and the node
    undistorts them with the device calibration. Frames whose image cannot be read are left out and
    listed."""
    take_numbers = {uid: k for k, uid in enumerate(annotations.takes)}
    index = TakeIndex({uid: take.take_name for uid, take in annotations.takes.items()}, {})
    summary = BagSummary(takes=len(annotations.takes))
    with BagWriter(out) as bag:
        frames = annotated_frames(annotations, image_root, split, needs_image=True)
        for frame in tqdm(frames, "bag", total=annotations.num_frames, unit="frame", disable=not progress):
            record = frame.record
            where = f"take {record.take_name} frame {record.frame_number}"
            problem = frame.problem
            if (
                problem is None
                and camera is not None
                and frame.image.shape[:2] != (camera.height, camera.width)
            ):
                problem = f"image is {frame.image.shape[1]}x{frame.image.shape[0]}, not the camera's size"
            if problem is not None:
                summary.skipped.append((where, problem))
                continue
            stamp = frame_stamp_ns(take_numbers[record.take_uid], record.frame_number)
            index.frames[stamp] = (record.take_uid, record.frame_number)
            header = bag_header(stamp)
            if camera is not None:
                bag.write(CAMERA_INFO_TOPIC, CAMERA_INFO_TYPE, stamp, bag_camera_info(header, camera))
            bag.write(IMAGE_TOPIC, IMAGE_TYPE, stamp, bag_image(header, frame.image))
            summary.frames += 1
        write_take_index(bag, index)
    return summary


def write_take_index(bag: BagWriter, index: TakeIndex) -> None:
    """The take index on TAKES_TOPIC, logged just before the first frame (the player latches it)."""
    first = min(index.frames, default=START_NS)
    bag.write(TAKES_TOPIC, STRING_TYPE, first - 1, TYPESTORE.types[STRING_TYPE](data=index.to_json()))


# ------------------------------------------------------------------------------------------------ reading


@dataclass
class BagContents:
    """What a bag gave: its messages in log order, and the problems met (unreadable parts)."""

    path: Path
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BagMessage:
    topic: str
    msgtype: str
    timestamp: int  # log time, ns
    data: bytes  # CDR

    def decode(self) -> object:
        return TYPESTORE.deserialize_cdr(self.data, known_type(self.msgtype))


def _open(path: Path) -> Reader:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such bag")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:  # rosbags raises several types for unreadable metadata or storage
        raise InputError(f"{path}: not a readable rosbag2 bag ({exc})") from exc
    return reader


def _mcap_files(path: Path) -> list[Path]:
    """The MCAP files of a bag folder (read with `bags.integrity`, which survives damage); none for a
    sqlite3 bag, which rosbags reads."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such bag")
    return sorted(path.glob("*.mcap")) if path.is_dir() else [path] if path.suffix == ".mcap" else []


def read_topics(path: Path) -> dict[str, str]:
    """The bag's topics and their message types."""
    files = _mcap_files(path)
    if files:
        return {topic: msgtype for file in files for topic, msgtype in mcap_topics(file).items()}
    reader = _open(path)
    try:
        return {connection.topic: connection.msgtype for connection in reader.connections}
    finally:
        reader.close()


def read_raw(path: Path, topics: set[str], contents: BagContents) -> Iterator[BagMessage]:
    """The chosen topics' messages in the bag's order, undecoded. What cannot be read (a damaged chunk,
    a file cut short, a sqlite3 bag's unreadable part) is noted in `contents.problems`; the rest is
    kept."""
    files = _mcap_files(path)
    if files:
        for file in files:
            for message in read_mcap(file, topics, contents.problems):
                yield BagMessage(*message)
        return
    reader = _open(path)
    try:
        connections = [c for c in reader.connections if c.topic in topics]
        if not connections:  # rosbags reads every topic when given none
            return
        messages = reader.messages(connections=connections)
        while True:
            try:
                connection, timestamp, data = next(messages)
            except StopIteration:
                break
            except Exception as exc:  # a corrupt part ends what the storage can give
                contents.problems.append(f"{path}: unreadable from here on ({type(exc).__name__}: {exc})")
                break
            yield BagMessage(connection.topic, connection.msgtype, timestamp, bytes(data))
    finally:
        reader.close()


def read_messages(path: Path, topics: set[str], contents: BagContents) -> Iterator[tuple[str, int, object]]:
    """(topic, log time, decoded message); a message that does not decode is noted and skipped."""
    for raw in read_raw(path, topics, contents):
        try:
            message = raw.decode()
        except Exception as exc:  # malformed CDR in one message
            contents.problems.append(
                f"{path}: a {raw.topic} message at {raw.timestamp} ns does not decode ({exc})"
            )
            continue
        yield raw.topic, raw.timestamp, message


def read_take_index(path: Path) -> TakeIndex:
    contents = BagContents(Path(path))
    for _, _, message in read_messages(path, {TAKES_TOPIC}, contents):
        return TakeIndex.from_json(message.data, str(path))
    raise InputError(f"{path}: no take index on {TAKES_TOPIC} (bags from `hand-pose egoexo2bag` carry one)")


def bag_camera(path: Path) -> PinholeCamera:
    """The camera of a take bag, from its first CameraInfo."""
    contents = BagContents(Path(path))
    for _, _, message in read_messages(path, {CAMERA_INFO_TOPIC}, contents):
        return camera_from_info(message)
    raise InputError(f"{path}: no {CAMERA_INFO_TOPIC} message")


def bag_frames(path: Path, truth: Annotations, contents: BagContents) -> Iterator[FrameInput]:
    """The images of a take bag as pipeline inputs, each with its ground-truth record (an empty record
    for a frame the ground truth does not have, so nothing of it is scored)."""
    index = read_take_index(path)
    for _, _, message in read_messages(path, {IMAGE_TOPIC}, contents):
        stamp = stamp_ns(message.header.stamp)
        if stamp not in index.frames:
            contents.problems.append(f"{path}: image stamped {stamp} ns is not a frame of the take index")
            continue
        take_uid, frame_number = index.frames[stamp]
        take = truth.takes.get(take_uid)
        frame = take.frames.get(frame_number) if take is not None else None
        record = FrameRecord(
            take_uid, index.takes[take_uid], frame_number, frame or FrameAnnotation(frame_number)
        )
        try:
            image = decode_image(message.encoding, message.height, message.width, message.step, message.data)
        except InputError as exc:
            yield FrameInput(record, problem=str(exc))
            continue
        yield FrameInput(record, image)


def hand_joints(hand) -> np.ndarray:
    """(21, 3) metres from a hand_pose_msgs/Hand's joints."""
    return np.array([[p.x, p.y, p.z] for p in hand.joints], dtype=np.float64)


def hands_topics(path: Path) -> list[str]:
    """The bag's topics of the node's hands (hand_pose_msgs/msg/Hands), whatever they were called."""
    topics = [topic for topic, msgtype in read_topics(path).items() if msgtype == HANDS_TYPE]
    if not topics:
        raise InputError(
            f"{path}: no {HANDS_TYPE} topic (record the estimator's hands output; a take bag holds inputs)"
        )
    return topics


@dataclass
class RecordedHands:
    """The node's hands recorded in a bag, as predictions, with every frame of the index accounted for."""

    predictions: Predictions = field(default_factory=dict)
    frames: int = 0  # in the take index
    frames_with_output: int = 0
    # Outputs stamped between annotated frames: a continuous input (an event stream) is answered at a
    # fixed rate, and only the annotated frames are scored.
    between_frames: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (take/frame, reason)
    problems: list[str] = field(default_factory=list)

    @property
    def num_predicted(self) -> int:
        return sum(len(hands) for frames in self.predictions.values() for hands in frames.values())


def recorded_hands(path: Path) -> RecordedHands:
    """The benchmark predictions in a bag of the node's `hands` output (the one topic of that type)."""
    topics = hands_topics(path)
    if len(topics) > 1:
        raise InputError(f"{path}: {len(topics)} {HANDS_TYPE} topics ({', '.join(topics)}): expected one")
    index = read_take_index(path)
    contents = BagContents(Path(path))
    result = RecordedHands(frames=len(index.frames))
    seen: set[int] = set()
    for topic, _, message in read_messages(path, set(topics), contents):
        stamp = stamp_ns(message.header.stamp)
        if stamp not in index.frames:
            result.between_frames += 1
            continue
        take_uid, frame_number = index.frames[stamp]
        seen.add(stamp)
        for hand in message.hands:
            joints = hand_joints(hand)
            where = f"{path}: {topic} at take {take_uid} frame {frame_number}"
            if hand.side not in HAND_SIDES:
                result.problems.append(f"{where}: a hand of side {hand.side!r}")
            elif not np.isfinite(joints).all():
                result.problems.append(f"{where}: NaN joints")
            else:
                result.predictions.setdefault(take_uid, {}).setdefault(frame_number, {})[hand.side] = joints
    result.problems += contents.problems
    result.frames_with_output = len(seen)
    for stamp, (take_uid, frame_number) in sorted(index.frames.items()):
        where = f"take {index.takes[take_uid]} frame {frame_number}"
        if stamp not in seen:
            result.skipped.append((where, "the node published nothing for it (dropped, or never received)"))
        elif frame_number not in result.predictions.get(take_uid, {}):
            result.skipped.append((where, "the node found no hand in it (see its log and /diagnostics)"))
    return result
