"""Pictures of each event representation for a window of events, and the synthetic event take's rates:

    .venv/bin/python bench/event_pictures.py [--frames 30] [--out docs/images]
    .venv/bin/python bench/event_pictures.py --npz decoded.npz --width 1280 --height 720 [--end-ns T]

Without --npz it renders take 0 of a synthetic set (seed 0) as events, prints how fast (renders per
second with the simulator, the renderer alone, events per take) and draws the window ending at the take's
middle annotated frame, with that frame's annotated joints as white dots. With --npz (arrays x, y, t, p
of decoded events, t in ns and sorted) it draws the window ending at --end-ns (default: just after the
last event). Writes events_<kind>.png for each kind under --out.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hand_pose_core.events.arrays import Events
from hand_pose_core.events.representations import EventRepresentation, to_rgb
from hand_pose_core.synth.events import (
    EVENT_CAMERA,
    RENDERS_PER_VIDEO_FRAME,
    frame_time_ns,
    render_event_take,
)
from hand_pose_core.synth.generator import VIDEO_FPS, SynthConfig, start_take

ROOT = Path(__file__).resolve().parents[1]
WINDOW_NS = 66_700_000  # EvHandPose's LNES window
PICTURED = (
    EventRepresentation("counts", window_ns=WINDOW_NS),
    EventRepresentation("time_surface", window_ns=WINDOW_NS, decay_ns=20_000_000),
    EventRepresentation("voxel_grid", window_ns=WINDOW_NS, bins=5),
    EventRepresentation("lnes", window_ns=WINDOW_NS),
)


def load_npz(path: Path, width: int, height: int) -> Events:
    with np.load(path) as data:
        return Events(
            width,
            height,
            data["x"].astype(np.uint16),
            data["y"].astype(np.uint16),
            data["t"].astype(np.int64),
            data["p"].astype(np.uint8),
        )


def renderer_rate(config: SynthConfig, renders: int = 60) -> float:
    """Renders per second of take 0's scene alone, without the simulator."""
    _, _, scene = start_take(config, 0, EVENT_CAMERA)
    start = time.perf_counter()
    for number in range(renders):
        scene.render_at((scene.start_frame + number / RENDERS_PER_VIDEO_FRAME) / VIDEO_FPS)
    return renders / (time.perf_counter() - start)


def synthetic_window(frames: int) -> tuple[Events, int, list[np.ndarray]]:
    """Take 0's events, the time of its middle annotated frame and that frame's 2D joints; prints rates."""
    config = SynthConfig(frames=frames, seed=0)
    start = time.perf_counter()
    take = render_event_take(config, 0, progress=True)
    seconds = time.perf_counter() - start
    numbers = list(take.annotation.frames)
    renders, events = take.renders, take.events
    span_s = (events.t[-1] - events.t[0]) / 1e9
    print(
        f"take 0 ({frames} annotated frames, {renders} renders, {RENDERS_PER_VIDEO_FRAME} per video frame): "
        f"{seconds:.1f} s, {renders / seconds:.1f} renders/s with the simulator, "
        f"{renderer_rate(config):.1f} renders/s for the renderer alone; "
        f"{len(events):,} events ({len(events) / span_s / 1e6:.2f} Mev/s of scene time, "
        f"{len(events) / renders:,.0f} per render)"
    )
    middle = numbers[len(numbers) // 2]
    joints = [hand.joints_2d for hand in take.annotation.frames[middle].hands.values()]
    return events, frame_time_ns(middle), joints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", type=Path, help="decoded events: arrays x, y, t (ns, sorted), p")
    parser.add_argument("--width", type=int, help="sensor width (with --npz)")
    parser.add_argument("--height", type=int, help="sensor height (with --npz)")
    parser.add_argument("--end-ns", type=int, help="the window's end (with --npz)")
    parser.add_argument("--frames", type=int, default=30, help="annotated frames of the synthetic take")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    if args.npz:
        if not (args.width and args.height):
            parser.error("--npz needs --width and --height")
        events = load_npz(args.npz, args.width, args.height)
        end_ns = args.end_ns if args.end_ns is not None else int(events.t[-1]) + 1
        joints: list[np.ndarray] = []
    else:
        events, end_ns, joints = synthetic_window(args.frames)
    args.out.mkdir(parents=True, exist_ok=True)
    for representation in PICTURED:
        picture = Image.fromarray(to_rgb(representation.render(events, end_ns), representation.kind))
        draw = ImageDraw.Draw(picture)
        for hand in joints:
            for x, y in hand[np.isfinite(hand).all(axis=1)]:
                draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=(255, 255, 255))
        path = args.out / f"events_{representation.kind}.png"
        picture.save(path)
        print(f"{path}: {representation.to_dict()}")


if __name__ == "__main__":
    main()
