"""`hand_pose_demo` (what `make demo` runs): the product end to end on an embedded default.

1. A short synthetic egocentric take (both hands moving), written as raw Aria-style fisheye frames with
   a device calibration, into an MCAP bag with its take index.
2. `hand_pose_estimator` (the bundled models, ONNX Runtime, or TensorRT where usable) undistorts and
   processes them, fed in lockstep by `bag_player`; `bag_recorder` records its hands, overlays and
   diagnostics. Each node is its own process, as `ros2 launch` would start them.
3. The recorder's bag goes through `bag2json`'s conversion and the official evaluation.
4. Under the output folder: the report and plots, the overlay images, a 3D plot of predicted against
   true hands, a latency summary.
5. The same node, with its defaults (MediaPipe Hands' models, world landmarks), on the two real Aria
   recordings in data/aria (bare hands, and gloved hands), through `aria_vrs_player`: overlays of the
   hands found, a 3D plot of them in the camera frame, and a line saying what was found; given MANO's
   model files (--mano), the node also fits MANO there and the overlays show the meshes.
6. Event cameras: a synthetic event take (EVT3 packets in a bag) through the node with `input:
   event_packets` and the bundled event models, scored the same way, with event-frame overlays; then
   the real event recording data/events/test_events_1 (an arm swinging, no hands annotated) through the
   same node: overlays, and a line saying what the synthetic-trained event models made of it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hand_pose_core.atomic import ensure_dir, write_atomic, write_json_atomic
from hand_pose_core.bags.event_takes import write_event_take_bag
from hand_pose_core.bags.events import EVENTS_TOPIC
from hand_pose_core.bags.messages import decode_image, stamp_ns
from hand_pose_core.bags.names import (
    CAMERA_INFO_TOPIC,
    DIAGNOSTICS_TOPIC,
    HANDS_OUTPUT,
    IMAGE_TOPIC,
    OVERLAY_OUTPUT,
    TAKES_TOPIC,
)
from hand_pose_core.bags.takes import (
    BagContents,
    hand_joints,
    read_messages,
    read_take_index,
    recorded_hands,
    write_take_bag,
)
from hand_pose_core.egoexo.baselines import mean_pose, predict_mean_pose
from hand_pose_core.egoexo.formats import (
    Annotations,
    annotation_path,
    load_annotations,
    write_annotations,
    write_predictions,
)
from hand_pose_core.egoexo.metrics import evaluate
from hand_pose_core.egoexo.report import format_table, plot_hands_3d, write_report
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.aria import device_views, load_device_calibration
from hand_pose_core.geometry.camera import Turn
from hand_pose_core.live.drawing import contact_sheet
from hand_pose_core.live.multiview import MultiViewPipeline, draw_views, recording_views
from hand_pose_core.live.pipeline import HandPosePipeline, PipelineConfig
from hand_pose_core.synth.events import EVENT_CAMERA, render_event_take
from hand_pose_core.synth.generator import SynthConfig, generate, split_of_takes
from hand_pose_ros.processes import ProcessGroup, node_command, ros_env

# The estimator runs in the root namespace: its relative outputs are these.
HANDS_TOPIC, OVERLAY_TOPIC = f"/{HANDS_OUTPUT}", f"/{OVERLAY_OUTPUT}"
DEMO_SPLIT = "test"  # the take scored (the synthetic data set has one take per split)
# The repository's real Aria recordings (data/README.md, beside the package folder), and what they show.
REPOSITORY_DATA = Path(__file__).resolve().parents[2] / "data"
REAL_RECORDINGS = {
    REPOSITORY_DATA / "aria" / "aea_recording.vrs": "bare hands",
    REPOSITORY_DATA / "aria" / "adt_apartment_video.vrs": "gloved hands",
}
# The synthetic take is scored with the models trained on synthetic hands.
SYNTHETIC_MODELS = {"localisation": "detector", "mode": "lifter"}
# Event input: the bundled event models (detector on events, the lifter's 3D).
EVENT_MODELS = {
    "input": "event_packets",
    "localisation": "detector",
    "mode": "lifter",
    "smoothing": False,
    # Every window's overlay recorded: the demo's overlays are the event take as a video.
    f"qos_overrides.{OVERLAY_TOPIC}.publisher.reliability": "reliable",
}
EVENT_REMAPS = {"events": EVENTS_TOPIC, "camera_info": CAMERA_INFO_TOPIC}
REAL_EVENTS = REPOSITORY_DATA / "events" / "test_events_1"
EVENT_RENDERS_PER_FRAME = 5
EVENT_PLAY_RATE = 0.25  # quarter speed: the worker answers every window, even on a busy machine
NODE_START_S = 120.0
# The recorder has matched the node's publishers when it says so; the node's side may lag a little.
DISCOVERY_SETTLE_S = 1.0
PLAY_LIMIT_S = 600.0


@dataclass
class RealRecording:
    """What the node found on a real recording: the hands by frame stamp, in the camera frame."""

    path: Path
    what: str
    stamps: list[int]  # every frame the node answered, in order
    hands: dict[int, dict[str, np.ndarray]]

    def line(self) -> str:
        found = sum(len(by_side) for by_side in self.hands.values())
        return (
            f"real Aria frames, {self.path.name} ({self.what}): {len(self.stamps)} frames, {found} hands "
            f"found in {len(self.hands)} of them"
        )


@dataclass
class EventDemo:
    """What the node made of event input: the synthetic event take, scored, and the real recording."""

    frames: int  # annotated frames of the take
    answered: int  # annotated frames the node answered (a window ending at the frame's stamp)
    windows: int  # windows the node answered
    hands_found: int
    hands_annotated: int
    report: dict
    relative_mpjpe: float
    real_windows: int
    real_hands: int
    real_windows_with_hands: int

    def lines(self, mean_pose_mpjpe: float) -> list[str]:
        return [
            f"synthetic event take: {self.windows} windows answered, {self.answered} of its {self.frames} "
            f"annotated frames among them; hands published there: {self.hands_found}; annotated: "
            f"{self.hands_annotated}",
            f"events, camera frame: MPJPE {self.report['mpjpe']:.2f} mm, PA-MPJPE "
            f"{self.report['pa_mpjpe']:.2f} mm; wrist-relative MPJPE {self.relative_mpjpe:.2f} mm (the mean "
            f"training pose: {mean_pose_mpjpe:.2f} mm)",
            f"real events, {REAL_EVENTS.name} (an arm swinging, no hand annotations): {self.real_windows} "
            f"windows, {self.real_hands} hands in {self.real_windows_with_hands} of them (models trained on "
            "synthetic events only: on real events they are not to be trusted)",
        ]


@dataclass
class DemoSummary:
    frames: int
    hands_found: int
    hands_annotated: int
    report: dict
    relative_mpjpe: float
    mean_pose_mpjpe: float
    latency_ms: dict[str, float]
    backend: str
    real: list[RealRecording]
    views: list[str]
    events: EventDemo
    seconds: float

    def lines(self) -> list[str]:
        return [
            f"frames: {self.frames}; hands published: {self.hands_found}; annotated: {self.hands_annotated}, "
            f"scored: {self.report['num_hands']}",
            f"camera frame: MPJPE {self.report['mpjpe']:.2f} mm, PA-MPJPE {self.report['pa_mpjpe']:.2f} mm",
            f"wrist-relative: MPJPE {self.relative_mpjpe:.2f} mm (the mean training pose: "
            f"{self.mean_pose_mpjpe:.2f} mm)",
            f"latency image -> hands p50 {self.latency_ms['p50']:.1f} ms, "
            f"p99 {self.latency_ms['p99']:.1f} ms; backend {self.backend}",
            *(recording.line() for recording in self.real),
            *self.views,
            *self.events.lines(self.mean_pose_mpjpe),
            f"demo took {self.seconds:.0f} s",
        ]


def _run_node(
    env: dict, recording: Path, topics: list[str], parameters: dict, remaps: dict, player: list[str]
) -> None:
    """The demo's one shape of ROS run: a recorder and the estimator up, a player into them, all stopped."""
    with ProcessGroup(env) as group:
        recorder = group.start(
            node_command("hand_pose_ros.bag_recorder", {"out": recording, "topics": json.dumps(topics)})
        )
        node = group.start(
            node_command("hand_pose_ros.estimator", parameters | {"publish_overlay": True}, remaps)
        )
        node.wait_for("active: ", NODE_START_S)
        recorder.wait_for(f"recording {OVERLAY_TOPIC}", NODE_START_S)
        time.sleep(DISCOVERY_SETTLE_S)
        playing = group.start(player)
        if playing.wait(PLAY_LIMIT_S) != 0:
            raise InputError(f"{player[2]} failed:\n{playing.output}")
        time.sleep(1.0)  # the last messages on their way to the recorder
        # The recorder stops first, while its publishers are still there: stopped just after the node,
        # it sometimes outlived Ctrl-C (3 times in this session's runs, not understood yet).
        recorder.interrupt()
        node.interrupt()


def _save_overlays(bag: Path, folder: Path, names: dict[int, str]) -> list[Path]:
    """The node's overlay images in a recorded bag as PNG files, named by frame."""
    ensure_dir(folder)
    files = []
    for _, _, message in read_messages(bag, {OVERLAY_TOPIC}, BagContents(bag)):
        stamp = stamp_ns(message.header.stamp)
        image = decode_image(message.encoding, message.height, message.width, message.step, message.data)
        path = folder / f"{names.get(stamp, str(stamp))}.png"
        files.append(
            write_atomic(path, lambda tmp, image=image: Image.fromarray(image).save(tmp, format="PNG"))
        )
    return files


def _last_diagnostics(bag: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for _, _, message in read_messages(bag, {DIAGNOSTICS_TOPIC}, BagContents(bag)):
        for status in message.status:
            if status.name.startswith("hand_pose_estimator"):
                values = {item.key: item.value for item in status.values}
    return values


def _relative(predictions: dict) -> dict:
    """Camera-frame predictions made wrist-relative, to score them against the mean pose."""
    return {
        take: {
            frame: {side: joints - joints[0] for side, joints in hands.items()}
            for frame, hands in by_frame.items()
        }
        for take, by_frame in predictions.items()
    }


def _plot_frames(predictions: dict, truth: Annotations, path: Path, count: int = 4) -> Path:
    both = [
        (take, frame)
        for take in truth.takes.values()
        for frame in take.frames.values()
        if set(predictions.get(take.take_uid, {}).get(frame.frame_number, {})) & set(frame.hands)
    ]
    chosen = both[:: max(1, len(both) // count)][:count]
    panels = []
    for take, frame in chosen:
        predicted = predictions[take.take_uid][frame.frame_number]
        hands = {s: (predicted[s], frame.hands[s].joints_3d) for s in predicted if s in frame.hands}
        panels.append((f"{take.take_name} frame {frame.frame_number}", hands))
    return plot_hands_3d(panels, path)


def run_demo(
    out: Path,
    frames: int = 24,
    seed: int = 0,
    real_recordings: dict[Path, str] = REAL_RECORDINGS,
    mano: Path | None = None,
) -> DemoSummary:
    start = time.perf_counter()
    out = ensure_dir(Path(out))
    stale_folders = ("data", "take_bag", "recorded", "aria_recorded", "overlay", "aria_overlay")
    for stale in (*stale_folders, "event_bag", "event_recorded", "event_overlay", "event_real"):
        shutil.rmtree(out / stale, ignore_errors=True)
    print(f"[1/6] a synthetic take of {frames} raw Aria frames with its device calibration", flush=True)
    data = out / "data"
    generate(data, SynthConfig(takes=3, frames=frames, seed=seed, raw=True), progress=False)
    truth = load_annotations(annotation_path(data, DEMO_SPLIT, public=False))
    calibration = data / "raw" / "device_calibration.json"
    bag = out / "take_bag"
    write_take_bag(truth, data / "raw", DEMO_SPLIT, bag, camera=None, progress=False)

    print("[2/6] hand_pose_estimator on the bag (bag_player in lockstep, bag_recorder)", flush=True)
    env = ros_env()
    recording = out / "recorded"
    topics = [HANDS_TOPIC, TAKES_TOPIC, OVERLAY_TOPIC, DIAGNOSTICS_TOPIC]
    aria = {"camera_source": "aria", "aria_calibration": calibration, "smoothing": False, **SYNTHETIC_MODELS}
    timings = out / "timings.json"
    player = {"bag": bag, "lockstep_topic": HANDS_TOPIC, "timings_file": timings}
    _run_node(
        env, recording, topics, aria, {"image": IMAGE_TOPIC}, node_command("hand_pose_ros.bag_player", player)
    )

    print("[3/6] the recording -> benchmark JSON -> evaluation", flush=True)
    recorded = recorded_hands(recording)
    if recorded.problems:
        raise InputError(f"{recording}: {recorded.problems[0]}")
    write_predictions(recorded.predictions, out / "pred.json")
    report = evaluate(recorded.predictions, truth, allow_missing=True)
    files = write_report(report, out)
    train = load_annotations(annotation_path(data, "train"))
    reference = evaluate(predict_mean_pose(mean_pose(train), truth), truth, offset=True)
    relative_report = evaluate(_relative(recorded.predictions), truth, offset=True, allow_missing=True)

    print("[4/6] overlays, 3D plot, latency", flush=True)
    index = read_take_index(bag)
    names = {stamp: f"{frame:06d}" for stamp, (_, frame) in index.frames.items()}
    overlays = _save_overlays(recording, out / "overlay", names)
    if overlays:
        sheet = contact_sheet(Image.open(path) for path in overlays[:8])
        files.append(write_atomic(out / "overlay_sheet.png", lambda tmp: sheet.save(tmp, format="PNG")))
    files.append(_plot_frames(recorded.predictions, truth, out / "hands_3d.png"))
    round_trips = np.array(json.loads(timings.read_text())["round_trip_s"]) * 1000.0
    diagnostics = _last_diagnostics(recording)
    latency = {
        "p50": float(np.percentile(round_trips, 50)),
        "p90": float(np.percentile(round_trips, 90)),
        "p99": float(np.percentile(round_trips, 99)),
        "frames_per_second_in_lockstep": float(1000.0 / round_trips.mean()),
    }
    backend = diagnostics.get("backend", "unknown")
    files.append(
        write_json_atomic(
            out / "latency.json",
            {
                "what": "image published by bag_player -> the node's hands received (lockstep, raw "
                "1408x1408 frames, undistortion included), milliseconds",
                **latency,
                "frames": len(round_trips),
                "backend": backend,
                "node_diagnostics": diagnostics,
            },
            indent=1,
        )
    )

    print("[5/6] the real Aria recordings through aria_vrs_player and the node", flush=True)
    real = [_real_recording(out, env, vrs, what, mano) for vrs, what in real_recordings.items()]
    files += _plot_real_hands(real, out / "aria_hands_3d.png")
    views = [line for vrs in real_recordings for line in _real_views(vrs, out / "aria_views" / vrs.stem)]

    print(
        "[6/6] event cameras: a synthetic event take, then a real event recording, through the node",
        flush=True,
    )
    events = _event_demo(out, env, frames // 2, seed)
    summary = DemoSummary(
        frames=recorded.frames,
        hands_found=recorded.num_predicted,
        hands_annotated=sum(truth.count_hands().values()),
        report=report,
        relative_mpjpe=relative_report["mpjpe"],
        mean_pose_mpjpe=reference["mpjpe"],
        latency_ms=latency,
        backend=backend,
        real=real,
        views=views,
        events=events,
        seconds=time.perf_counter() - start,
    )
    write_json_atomic(out / "summary.json", {"lines": summary.lines()}, indent=1)
    print(format_table(report))
    for path in [*files, out / "pred.json", out / "overlay", out / "aria_overlay", out / "event_overlay"]:
        print(f"wrote {path}")
    return summary


def _event_demo(out: Path, env: dict, frames: int, seed: int) -> EventDemo:
    """The test take of a small synthetic set as an event camera sees it, played as EVT3 packets into the
    node (windows cut by event time), its hands recorded and scored; then the real event recording."""
    config = SynthConfig(takes=len(split_of_takes(3)), frames=frames, seed=seed)
    take = render_event_take(config, split_of_takes(config.takes).index(DEMO_SPLIT), EVENT_RENDERS_PER_FRAME)
    truth = Annotations({take.annotation.take_uid: take.annotation}, "the synthetic event take")
    write_annotations(truth, out / "event_truth.json")
    bag = out / "event_bag"
    write_event_take_bag([(take.annotation, take.events)], EVENT_CAMERA, bag)
    recording = out / "event_recorded"
    player = node_command("hand_pose_ros.bag_player", {"bag": bag, "rate": EVENT_PLAY_RATE})
    _run_node(env, recording, [HANDS_TOPIC, TAKES_TOPIC, OVERLAY_TOPIC], EVENT_MODELS, EVENT_REMAPS, player)
    recorded = recorded_hands(recording)
    if recorded.problems:
        raise InputError(f"{recording}: {recorded.problems[0]}")
    write_predictions(recorded.predictions, out / "event_pred.json")
    names = {stamp: f"{frame:06d}" for stamp, (_, frame) in read_take_index(bag).frames.items()}
    _save_overlays(recording, out / "event_overlay" / "synthetic", names)

    real = out / "event_real"
    player = node_command("hand_pose_ros.bag_player", {"bag": REAL_EVENTS, "rate": EVENT_PLAY_RATE})
    _run_node(env, real, [HANDS_TOPIC, OVERLAY_TOPIC], EVENT_MODELS, {"events": EVENTS_TOPIC}, player)
    windows = {}
    for _, _, message in read_messages(real, {HANDS_TOPIC}, BagContents(real)):
        windows[stamp_ns(message.header.stamp)] = len(message.hands)
    real_names = {stamp: f"{number:03d}" for number, stamp in enumerate(sorted(windows))}
    _save_overlays(real, out / "event_overlay" / REAL_EVENTS.name, real_names)
    return EventDemo(
        frames=recorded.frames,
        answered=recorded.frames_with_output,
        windows=recorded.frames_with_output + recorded.between_frames,
        hands_found=recorded.num_predicted,
        hands_annotated=sum(truth.count_hands().values()),
        report=evaluate(recorded.predictions, truth, allow_missing=True),
        relative_mpjpe=evaluate(_relative(recorded.predictions), truth, offset=True, allow_missing=True)[
            "mpjpe"
        ],
        real_windows=len(windows),
        real_hands=sum(windows.values()),
        real_windows_with_hands=sum(1 for count in windows.values() if count),
    )


def _real_recording(out: Path, env: dict, vrs: Path, what: str, mano: Path | None) -> RealRecording:
    """The node, with its defaults, on a real Aria recording (raw fisheye, undistorted and drawn upright):
    its overlays (with MANO's meshes, given its model files), and the hands it published."""
    if not vrs.is_file():
        raise InputError(f"{vrs}: no such Aria recording")
    recording = out / "aria_recorded" / vrs.stem
    parameters = {"camera_source": "aria", "aria_calibration": vrs, "rotation": "portrait"}
    parameters |= {"mano_dir": mano} if mano is not None else {}
    player = node_command("hand_pose_ros.aria_vrs_player", {"vrs_path": vrs, "rate": 0.1})
    _run_node(env, recording, [OVERLAY_TOPIC, HANDS_TOPIC], parameters, {}, player)
    names = {}
    for _, _, message in read_messages(recording, {OVERLAY_TOPIC}, BagContents(recording)):
        names[stamp_ns(message.header.stamp)] = f"{len(names):03d}"
    _save_overlays(recording, out / "aria_overlay" / vrs.stem, names)
    hands: dict[int, dict[str, np.ndarray]] = {}
    for _, _, message in read_messages(recording, {HANDS_TOPIC}, BagContents(recording)):
        for hand in message.hands:
            hands.setdefault(stamp_ns(message.header.stamp), {})[hand.side] = hand_joints(hand)
    return RealRecording(vrs, what, sorted(names), hands)


def _real_views(vrs: Path, folder: Path) -> list[str]:
    """The RGB and SLAM cameras of a real recording together (MediaPipe, world landmarks): per frame a
    picture of the hands each camera gave and the placed hands drawn back into all three; the lines say
    how many hands each camera gave and how far, in pixels, the placed hands land from them."""
    device = load_device_calibration(vrs)
    views = [view for view, _ in device_views(device, str(vrs))]
    pipeline = HandPosePipeline.load(None, views[0].camera, config=PipelineConfig(variant="lite"))
    multi = MultiViewPipeline(pipeline, views)
    found, reprojection, fallbacks, placed = Counter(), {}, Counter(), Counter()
    ensure_dir(folder)
    for index, (frames, result) in enumerate(recording_views(vrs, multi)):
        draw_views(frames, views, result).save(folder / f"frame_{index:02d}.png")
        found.update({view.name: len(result.views.get(view.name, result.frame.hands)) for view in views})
        fallbacks.update(result.fallbacks)
        placed.update(len(used) for used in result.used.values())
        for by_view in result.reprojection_px.values():
            for name, error in by_view.items():
                reprojection.setdefault(name, []).append(error)
    return [
        f"{vrs.name}, RGB and SLAM cameras together: hands per camera "
        + ", ".join(f"{name} {count}" for name, count in found.items())
        + "; hands placed from "
        + (", ".join(f"{n} camera(s): {c}" for n, c in sorted(placed.items())) or "none"),
        "placed hands drawn back, mean distance from each camera's keypoints: "
        + (", ".join(f"{name} {np.mean(e):.1f} px" for name, e in reprojection.items()) or "no hands")
        + "; why cameras sat out: "
        + (", ".join(f"{why} {count}" for why, count in fallbacks.most_common()) or "-")
        + f" (pictures in {folder})",
    ]


def _plot_real_hands(recordings: list[RealRecording], path: Path, count: int = 4) -> list[Path]:
    """Up to `count` real frames' hands in the camera frame, turned upright as the overlays are (no
    plot when no hand was found)."""
    upright = Turn("landscape", "portrait")
    panels = [
        (
            f"{recording.path.stem}, frame {recording.stamps.index(stamp)}",
            {side: (upright.points_3d(joints), None) for side, joints in by_side.items()},
        )
        for recording in recordings
        for stamp, by_side in sorted(recording.hands.items())
    ]
    return [plot_hands_3d(panels[:count], path)] if panels else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hand_pose_demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument("--frames", type=int, default=24, help="frames of the synthetic take")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--aria-recording",
        type=Path,
        action="append",
        help="a real Aria VRS recording (repeat for more; default: the two in data/aria)",
    )
    parser.add_argument(
        "--mano",
        type=Path,
        metavar="DIR",
        help="folder with MANO_RIGHT.pkl and MANO_LEFT.pkl (from the MANO website): MANO meshes in the real "
        "recordings' overlays",
    )
    args = parser.parse_args(argv)
    try:
        recordings = (
            dict.fromkeys(args.aria_recording, "your recording") if args.aria_recording else REAL_RECORDINGS
        )
        summary = run_demo(args.out, args.frames, args.seed, recordings, args.mano)
    except InputError as exc:
        print(f"hand_pose_demo: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(["", "summary:", *summary.lines()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
