"""Event take bags: synthetic event takes (`hand-pose synth --events`) written as EventPacket bags with
their take index, and the annotated frames of such bags as model inputs (training and `eval-bag`).

A split's bag holds every take's events as EVT3 packets on `EVENTS_TOPIC` (`PACKET_NS` each, stamped at
their end), the camera's CameraInfo at 10 Hz, and on `TAKES_TOPIC` the take index. Take k's events are
stamped from its start START_NS + k x TAKE_GAP_NS plus their scene time; the packets' `time_base` is the
take's first event (so the EVT3 times count from there and the 24-bit clock, 16.8 s, does not wrap
within a take of a few seconds), and an annotated frame's stamp is the take's start plus its scene time,
frame_number / 30 s. Those stamps lie on the live node's 30 Hz window grid (`events.windows`), so the
node answers every annotated frame with a window that ends exactly there, and `bag2json` maps its outputs
back to them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hand_pose_core.atomic import ensure_dir
from hand_pose_core.bags.events import (
    EVENT_FRAME,
    choose_event_topic,
    read_event_packets,
    write_event_packets,
)
from hand_pose_core.bags.names import CAMERA_INFO_TOPIC
from hand_pose_core.bags.takes import (
    CAMERA_INFO_TYPE,
    START_NS,
    TAKE_GAP_NS,
    BagContents,
    BagWriter,
    TakeIndex,
    bag_camera_info,
    bag_header,
    read_take_index,
    write_take_index,
)
from hand_pose_core.egoexo.formats import SPLITS, Annotations, FrameAnnotation, TakeAnnotation
from hand_pose_core.egoexo.frames import FrameRecord, frame_time_ns
from hand_pose_core.errors import InputError
from hand_pose_core.events.arrays import Events
from hand_pose_core.events.evt3 import Evt3Encoder
from hand_pose_core.events.representations import EventRepresentation
from hand_pose_core.geometry.camera import PinholeCamera
from hand_pose_core.live.offline import FrameInput
from hand_pose_core.synth.events import EVENT_CAMERA, RENDERS_PER_VIDEO_FRAME, EventTake, render_event_take
from hand_pose_core.synth.generator import SynthConfig, SynthResult, render_takes, write_split_annotations

CAMERA_INFO_PERIOD_NS = 100_000_000  # 10 Hz, as camera drivers publish camera_info


def take_start_ns(take_index: int) -> int:
    return START_NS + take_index * TAKE_GAP_NS


def write_event_take_bag(takes: list[tuple[TakeAnnotation, Events]], camera: PinholeCamera, out: Path) -> int:
    """Takes (one split's, in order: each annotation with its events, t from the take's start) of an
    event camera as an event take bag at `out` (a new folder); returns the number of packets. The
    camera's CameraInfo goes out every CAMERA_INFO_PERIOD_NS of each take, before its events, as a
    driver publishes it, so a reader that joins late still gets it."""
    index = TakeIndex({annotation.take_uid: annotation.take_name for annotation, _ in takes}, {})
    packets = 0
    with BagWriter(out) as bag:
        for number, (annotation, events) in enumerate(takes):
            start = take_start_ns(number)
            for frame_number in annotation.frames:
                index.frames[start + frame_time_ns(frame_number)] = (annotation.take_uid, frame_number)
            # The packets' time_base is the take's first microsecond: EVT3 times count from there.
            first = int(events.t[0]) // 1000 * 1000 if len(events) else 0
            relative = Events(events.width, events.height, events.x, events.y, events.t - first, events.p)
            encoder = Evt3Encoder()
            for begin in range(0, int(relative.t[-1]) + 1 if len(relative) else 0, CAMERA_INFO_PERIOD_NS):
                stamp = start + first + begin
                bag.write(
                    CAMERA_INFO_TOPIC,
                    CAMERA_INFO_TYPE,
                    stamp,
                    bag_camera_info(bag_header(stamp, EVENT_FRAME), camera),
                )
                part = relative.between(begin, begin + CAMERA_INFO_PERIOD_NS)
                packets += write_event_packets(
                    bag, part, time_base=start + first, seq=packets, encoder=encoder
                )
        write_take_index(bag, index)
    return packets


@dataclass
class EventTakeBag:
    """One split's event take bag, decoded: each take's events (stamped from its start) and the index."""

    index: TakeIndex
    events: dict[str, Events]  # by take name

    @classmethod
    def read(cls, path: Path) -> EventTakeBag:
        """Every event of the bag's one event topic, cut into takes by the index's stamps."""
        index = read_take_index(path)
        contents = BagContents(Path(path))
        topic = choose_event_topic(path, None)
        parts = [events for _, _, events in read_event_packets(path, {topic}, contents, {})]
        if contents.problems:
            raise InputError(contents.problems[0])
        if not parts:
            raise InputError(f"{path}: no events on {topic}")
        stream = Events.concatenate(parts, parts[0].width, parts[0].height)
        stamps: dict[str, list[int]] = {}
        for stamp, (take_uid, _) in index.frames.items():
            stamps.setdefault(index.takes[take_uid], []).append(stamp)
        events = {}
        for name, take_stamps in stamps.items():
            # A take's events lie within TAKE_GAP_NS of its frames, and takes lie TAKE_GAP_NS apart.
            first = min(take_stamps) - TAKE_GAP_NS // 2
            events[name] = stream.between(first, max(take_stamps) + 1)
        return cls(index, events)


def event_bag_frames(path: Path, truth: Annotations, events: EventRepresentation) -> Iterator[FrameInput]:
    """Each annotated frame of an event take bag as a pipeline input: `events` drawn over the window
    ending at its stamp, with its ground-truth record (empty for a frame the truth does not have)."""
    bag = EventTakeBag.read(path)
    for stamp, (take_uid, frame_number) in sorted(bag.index.frames.items()):
        name = bag.index.takes[take_uid]
        take = truth.takes.get(take_uid)
        frame = take.frames.get(frame_number) if take is not None else None
        record = FrameRecord(take_uid, name, frame_number, frame or FrameAnnotation(frame_number))
        yield FrameInput(record, events.render(bag.events[name], stamp))


class EventTakeFrames:
    """A frame source (`egoexo.frames.FrameSource`) over the event take bags `<root>/<split>` of
    `hand-pose synth --events`: each annotated frame is `events` drawn over the window ending at its
    stamp. A split's bag is read once, on first use."""

    def __init__(self, root: Path, events: EventRepresentation) -> None:
        self.root, self.events = Path(root), events
        self._bags: dict[str, EventTakeBag] = {}
        self._stamps: dict[str, dict[tuple[str, int], int]] = {}

    def bag(self, split: str) -> EventTakeBag:
        if split not in self._bags:
            path = self.root / split
            if not path.exists():
                raise InputError(
                    f"{path}: no event take bag of the {split} split (`hand-pose synth --events`)"
                )
            bag = self._bags[split] = EventTakeBag.read(path)
            self._stamps[split] = {
                (bag.index.takes[uid], number): stamp for stamp, (uid, number) in bag.index.frames.items()
            }
        return self._bags[split]

    def read(self, split: str, take_name: str, frame_number: int) -> np.ndarray | None:
        bag = self.bag(split)
        stamp = self._stamps[split].get((take_name, frame_number))
        if stamp is None or take_name not in bag.events:
            return None
        return self.events.render(bag.events[take_name], stamp)

    def where(self, split: str, take_name: str, frame_number: int) -> str:
        return f"{self.root / split} take {take_name} frame {frame_number}"


def _render_job(job: tuple[SynthConfig, int, int]) -> EventTake:
    config, index, renders_per_frame = job
    return render_event_take(config, index, renders_per_frame)


def generate_events(
    out: Path, config: SynthConfig, renders_per_frame: int = RENDERS_PER_VIDEO_FRAME, progress: bool = True
) -> SynthResult:
    """A synthetic data set as an event camera sees it, under `out`: the annotation files in the release
    layout (as `generate` writes them) and each split's takes as an event take bag `out/events/<split>`
    (this module); deterministic for a seed."""
    root = ensure_dir(Path(out))
    for split in SPLITS:
        if (root / "events" / split).exists():
            raise InputError(f"{root / 'events' / split}: already exists; give a new output folder")
    result = SynthResult(root, {})
    start = time.perf_counter()
    bar = tqdm(
        total=config.takes * config.frames, desc="synth event takes", unit="frame", disable=not progress
    )
    jobs = [(config, index, renders_per_frame) for index in range(config.takes)]
    by_split: dict[str, list[EventTake]] = {split: [] for split in SPLITS}
    for take in render_takes(_render_job, jobs, bar, config.frames):
        by_split[take.split].append(take)
        result.frames_written += take.renders
    result.seconds = time.perf_counter() - start
    write_split_annotations(
        root,
        {split: {t.annotation.take_uid: t.annotation for t in takes} for split, takes in by_split.items()},
        result,
    )
    for split, takes in by_split.items():
        path = root / "events" / split
        write_event_take_bag([(take.annotation, take.events) for take in takes], EVENT_CAMERA, path)
        result.files.append(path)
    return result
