"""Synthetic event takes: a synthetic take rendered at a high frame rate and turned into change events,
with the same annotation as the take's image frames.

The sensor is the benchmark camera itself (512x512, f = 150 px, the fisheye's valid mask black): the
hands, their 2D labels and boxes are those of the image take with the same seed, pixel for pixel. (A
256x256 sensor would render only about 20 % faster: drawing the hands, not the pixel count, dominates.)
Event times are the scene's times, frame_number / VIDEO_FPS s, in ns, so an annotated frame's stamp is
`frame_time_ns(frame_number)`. The stream starts FRAME_STEP video frames before the first annotated
frame (at 0 at the earliest), so that the first annotated frame has a window of events behind it, and
ends a video frame after the last, so that a live reader, which closes a window when an event at or after
its end arrives, closes the last annotated frame's window too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from hand_pose_core.egoexo.formats import TakeAnnotation
from hand_pose_core.egoexo.frames import VIDEO_FPS, frame_time_ns
from hand_pose_core.errors import InputError
from hand_pose_core.events.arrays import Events
from hand_pose_core.events.simulate import SimulatorSettings, simulate_events
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
from hand_pose_core.synth.generator import (
    FRAME_STEP,
    SynthConfig,
    TakeScene,
    annotate_frame,
    frame_mask,
    split_of_takes,
    start_take,
)

RENDERS_PER_VIDEO_FRAME = 10  # 300 renders/s: joints move at most about 2 px between renders
EVENT_CAMERA = BENCHMARK_CAMERA
SIMULATOR_STREAM = 1  # seeds the simulator apart from the scene: [seed, take index, SIMULATOR_STREAM]


@dataclass
class EventTake:
    """A synthetic take as an event camera sees it: its events and the image take's annotation."""

    events: Events
    annotation: TakeAnnotation
    split: str
    renders: int  # frames rendered for the simulator


def render_event_take(
    config: SynthConfig,
    index: int,
    renders_per_frame: int = RENDERS_PER_VIDEO_FRAME,
    settings: SimulatorSettings | None = None,
    progress: bool = False,
) -> EventTake:
    """Take `index` of a synthetic set (as `generate(config)` makes it) as events and its annotation;
    deterministic for (config.seed, index)."""
    if not 0 <= index < config.takes:
        raise InputError(f"synthetic event take {index}: the set has takes 0 to {config.takes - 1}")
    if renders_per_frame < 1:
        raise InputError(f"renders per video frame {renders_per_frame}: need at least 1")
    split = split_of_takes(config.takes)[index]
    valid_mask = frame_mask(EVENT_CAMERA)
    rng, take, scene = start_take(config, index, EVENT_CAMERA)
    for frame_number in scene.frame_numbers:
        # Rendered as the image take renders it, drawing its brightness, so the label noise and test
        # boxes drawn after it are the image take's too.
        _, joints = scene.render(frame_number, rng)
        frame = annotate_frame(frame_number, joints, EVENT_CAMERA, valid_mask, split, rng)
        if frame.hands:
            take.frames[frame_number] = frame
    first = max(scene.frame_numbers[0] - FRAME_STEP, 0) * renders_per_frame
    last = (scene.frame_numbers[-1] + 1) * renders_per_frame
    render_numbers = range(first, last + 1)
    bar = tqdm(render_numbers, desc=f"event take {index}", unit="render", disable=not progress)
    frames = _renders(scene, bar, renders_per_frame, valid_mask)
    events = simulate_events(frames, settings or SimulatorSettings(), [config.seed, index, SIMULATOR_STREAM])
    return EventTake(events, take, split, len(render_numbers))


def _renders(
    scene: TakeScene, render_numbers: Iterable[int], renders_per_frame: int, valid_mask: np.ndarray
) -> Iterator[tuple[int, np.ndarray]]:
    """(t_ns, frame) of each render, without the image take's brightness jitter, masked as its frames."""
    for number in render_numbers:
        frame_number = number / renders_per_frame
        image, _ = scene.render_at(frame_number / VIDEO_FPS)
        image[~valid_mask] = 0
        yield frame_time_ns(frame_number), image
