"""Events through the product: live windows cut by event time, event take bags written and read back,
event models recorded in checkpoints and cards, the pipeline on event frames, training on event takes,
and the bundled event models against the mean pose on synthetic event takes they never saw."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hand_pose_core.bags.event_takes import (
    EventTakeFrames,
    event_bag_frames,
    take_start_ns,
    write_event_take_bag,
)
from hand_pose_core.bags.messages import decode_event_frame
from hand_pose_core.bags.takes import bag_camera, read_take_index
from hand_pose_core.egoexo.baselines import mean_pose, predict_mean_pose
from hand_pose_core.egoexo.formats import Annotations, FrameAnnotation, TakeAnnotation
from hand_pose_core.egoexo.frames import frame_time_ns
from hand_pose_core.egoexo.metrics import evaluate
from hand_pose_core.errors import InputError
from hand_pose_core.events.arrays import Events
from hand_pose_core.events.decode import EventDecoder
from hand_pose_core.events.evt3 import Evt3Encoder
from hand_pose_core.events.representations import EventRepresentation
from hand_pose_core.events.windows import NEW_RECORDING_GAP_NS, EventStream, EventWindows
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
from hand_pose_core.live.offline import run_pipeline
from hand_pose_core.live.pipeline import HandPosePipeline, PipelineConfig
from hand_pose_core.models.checkpoints import build_model, load_checkpoint, save_checkpoint
from hand_pose_core.runtime.bundled import bundled_model
from hand_pose_core.runtime.card import ModelCard
from hand_pose_core.runtime.engines import load_engine
from hand_pose_core.runtime.torch_engine import TorchEngine
from hand_pose_core.synth.events import EVENT_CAMERA, render_event_take
from hand_pose_core.synth.generator import SynthConfig, generate

LNES = EventRepresentation("lnes", window_ns=50_000_000)
PERIOD_30_HZ = 1e9 / 30


def events_at(times_ns, width: int = 64, height: int = 48, seed: int = 0) -> Events:
    rng = np.random.default_rng(seed)
    count = len(times_ns)
    return Events(
        width,
        height,
        rng.integers(0, width, count).astype(np.uint16),
        rng.integers(0, height, count).astype(np.uint16),
        np.asarray(times_ns, np.int64),
        rng.integers(0, 2, count).astype(np.uint8),
    )


def test_time_windows_end_on_the_30_hz_grid_with_the_events_before_each_end():
    stream = events_at(np.arange(0, 300_000_000, 250_000) + 5_000_000_000)  # 0.3 s of events, 4 kHz
    windows = EventWindows(LNES, 30.0)
    found = [
        w for part in np.array_split(np.arange(len(stream)), 37) for w in windows.add(_rows(stream, part))
    ]
    ends = [w.end_ns for w in found]
    assert ends == [round(k * PERIOD_30_HZ) for k in range(151, 159)]  # every end passed by an event
    for window in found:
        expected = stream.between(window.end_ns - LNES.window_ns, window.end_ns)
        assert np.array_equal(window.events.t, expected.t) and np.array_equal(window.events.x, expected.x)
    assert len(windows.buffer) <= LNES.window_ns // 250_000 + 1  # only what a later window can need


def test_a_jump_in_event_time_starts_afresh_without_empty_windows():
    windows = EventWindows(LNES, 30.0)
    first = windows.add(events_at(np.arange(0, 100_000_000, 1_000_000)))
    later = windows.add(events_at(np.arange(0, 100_000_000, 1_000_000) + 3 * NEW_RECORDING_GAP_NS))
    assert len(first) == 2 and len(later) == 2  # not a hundred empty windows for the gap
    assert [w.end_ns for w in later] == [round(k * PERIOD_30_HZ) for k in (91, 92)]
    assert all(w.events.t.min() >= 3 * NEW_RECORDING_GAP_NS for w in later)  # nothing from before


def test_fixed_count_windows_hold_the_last_n_events():
    count = EventRepresentation("counts", window_events=100)
    windows = EventWindows(count, 30.0)
    stream = events_at(np.arange(1_000) * 1_000)
    found = [w for part in np.array_split(np.arange(1_000), 7) for w in windows.add(_rows(stream, part))]
    assert [w.end_ns for w in found] == [int(stream.t[k]) + 1 for k in range(99, 1_000, 100)]
    assert all(len(w.events) == 100 for w in found)


def _rows(events: Events, rows: np.ndarray) -> Events:
    return Events(events.width, events.height, events.x[rows], events.y[rows], events.t[rows], events.p[rows])


def _packet(events: Events, data: bytes, stamp_ns: int, time_base: int) -> SimpleNamespace:
    sec, nanosec = divmod(stamp_ns, 10**9)
    return SimpleNamespace(
        header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id="event_camera"),
        encoding="evt3",
        is_bigendian=False,
        width=events.width,
        height=events.height,
        time_base=time_base,
        events=data,
    )


def test_a_drivers_sensor_clock_is_mapped_to_the_packets_ros_time():
    """metavision_driver's time_base 0: event times are the sensor's; outputs are stamped in ROS time."""
    sensor = events_at(np.arange(0, 80_000_000, 500_000) + 7_000_000_000)
    encoder, stream = Evt3Encoder(), EventStream(LNES, 30.0)
    host_minus_sensor = 1_700_000_000_000_000_000
    windows, first_packet = [], None
    for part in np.array_split(np.arange(len(sensor)), 8):
        piece = _rows(sensor, part)
        stamp = host_minus_sensor + int(piece.t[-1])  # the host time of the packet's last event
        first_packet = first_packet or stamp
        windows += stream.add(_packet(piece, encoder.encode(piece), stamp, time_base=0))
    first_last = int(_rows(sensor, np.array_split(np.arange(len(sensor)), 8)[0]).t[-1])
    assert stream.offset_ns == first_packet - first_last // 1000 * 1000  # EVT3 times are microseconds
    assert windows and all(stream.stamp_ns(w) == w.end_ns + stream.offset_ns for w in windows)
    assert abs(stream.offset_ns - host_minus_sensor) < 1000


def test_the_decoder_starts_a_new_time_line_when_time_base_changes():
    """Event take bags give each take its own time_base and EVT3 clock from 0."""
    decoder = EventDecoder()
    takes = [events_at(np.arange(0, 3_000_000_000, 9_000_000), seed=k) for k in range(3)]
    for number, take in enumerate(takes):
        encoder = Evt3Encoder()
        for part in np.array_split(np.arange(len(take)), 5):
            piece = _rows(take, part)
            decoded = decoder.decode(_packet(piece, encoder.encode(piece), 0, take_start_ns(number)))
            assert np.array_equal(decoded.t, piece.t + take_start_ns(number))
            assert np.array_equal(decoded.x, piece.x) and np.array_equal(decoded.p, piece.p)
    assert decoder.report.time_wraps == 0 and decoder.report.problems == 0


def _annotated(uid: str, name: str, frames: list[int]) -> TakeAnnotation:
    take = TakeAnnotation(uid, name)
    for number in frames:
        take.frames[number] = FrameAnnotation(number)
    return take


def test_an_event_take_bag_gives_back_each_frames_window_and_the_camera(tmp_path):
    # Scene times from 16.5 s: across the EVT3 clock's 24-bit period (16.78 s) if it counted from 0.
    frames = [498, 501, 504]
    takes = [
        (
            _annotated(f"uid-{k}", f"take_{k}", frames),
            events_at(
                np.sort(np.random.default_rng(k).integers(0, 320_000_000, 5_000)) + 16_500_000_000,
                512,
                512,
                k,
            ),
        )
        for k in range(2)
    ]
    bag = tmp_path / "events" / "train"
    packets = write_event_take_bag(takes, EVENT_CAMERA, bag)
    assert packets > 200
    index = read_take_index(bag)
    assert sorted(index.frames) == sorted(
        take_start_ns(k) + frame_time_ns(f) for k in range(2) for f in frames
    )
    assert bag_camera(bag) == EVENT_CAMERA
    source = EventTakeFrames(tmp_path / "events", LNES)
    for annotation, events in takes:
        in_microseconds = Events(
            events.width, events.height, events.x, events.y, events.t // 1000 * 1000, events.p
        )
        for frame_number in annotation.frames:  # the same window, EVT3 keeping whole microseconds
            expected = LNES.render(in_microseconds, frame_time_ns(frame_number))
            got = source.read("train", annotation.take_name, frame_number)
            assert np.array_equal(got, expected)
    truth = Annotations({a.take_uid: a for a, _ in takes})
    inputs = list(event_bag_frames(bag, truth, LNES))
    assert [(i.record.take_name, i.record.frame_number) for i in inputs] == [
        (f"take_{k}", f) for k in range(2) for f in frames
    ]
    assert source.read("train", "take_0", 499) is None  # not an annotated frame
    with pytest.raises(InputError, match="no event take bag of the val split"):
        source.read("val", "take_0", 498)


def test_event_frames_as_32fc_images_decode_and_bad_ones_are_named():
    frame = np.random.default_rng(0).random((6, 5, 3)).astype(np.float32)
    padded = np.zeros((6, 5 * 3 * 4 + 8), np.uint8)
    padded[:, : 5 * 3 * 4] = frame.view(np.uint8).reshape(6, -1)
    assert np.array_equal(decode_event_frame("32FC3", 6, 5, 68, padded.tobytes()), frame)
    big = frame.astype(">f4").tobytes()
    assert np.array_equal(decode_event_frame("32FC3", 6, 5, 60, big, is_bigendian=True), frame)
    with pytest.raises(InputError, match="expected 32FC<channels>"):
        decode_event_frame("rgb8", 6, 5, 60, big)
    with pytest.raises(InputError, match="data is 10 bytes"):
        decode_event_frame("32FC3", 6, 5, 60, bytes(10))


def _event_detector(tmp_path, events: EventRepresentation = LNES):
    torch.manual_seed(0)
    model = build_model("detector", in_chans=events.channels)
    return save_checkpoint(model, tmp_path / "detector_events.pt", targets=None, events=events)


def test_checkpoints_and_model_cards_record_the_event_representation(tmp_path):
    voxels = EventRepresentation("voxel_grid", window_events=20_000, bins=5)
    loaded = load_checkpoint(_event_detector(tmp_path, voxels))
    assert loaded.events == voxels and loaded.model.config.in_chans == 5
    card = ModelCard.of(loaded)
    assert ModelCard.from_json(card.to_json()).events == voxels and card.input_channels == 5


def test_the_pipeline_runs_event_models_on_event_frames_and_refuses_images(tmp_path):
    detector = TorchEngine(load_checkpoint(_event_detector(tmp_path)))
    lifter = load_engine(bundled_model("lifter"), "onnxruntime")
    pipeline = HandPosePipeline(lifter, BENCHMARK_CAMERA, detector, PipelineConfig("detector", min_score=0.0))
    assert pipeline.events == LNES
    frame = LNES.render(events_at(np.arange(0, 50_000_000, 10_000), 512, 512), 50_000_000)
    result = pipeline.process(frame, 0.0)
    assert not result.skipped and result.hands  # min_score 0: whatever the random detector finds
    assert all(h.camera is not None and np.isfinite(h.camera).all() for h in result.hands)
    rgb = pipeline.process(np.zeros((512, 512, 3), np.uint8), 0.1)
    assert not rgb.hands and "event frame of type uint8" in rgb.skipped[0][1]
    potter_rgb = TorchEngine(load_checkpoint(save_checkpoint(
        build_model("potter", image_size=64, embed_dims=(32, 64, 96, 128), layers=(1, 1, 1, 1)),
        tmp_path / "potter.pt", targets=lifter.card.targets,
    )))  # fmt: skip
    with pytest.raises(InputError, match="the models see different inputs"):
        HandPosePipeline(potter_rgb, BENCHMARK_CAMERA, detector, PipelineConfig("detector"))


def test_training_on_event_takes_makes_an_event_model(tmp_path, run_cli):
    code, out, err = run_cli(
        "synth", "--events", "--out", tmp_path, "--takes", "3", "--frames", "2", "--renders-per-frame", "2"
    )
    assert code == 0, err
    assert "renders/s) for the event simulator" in out
    code, out, err = run_cli(
        "train", "--model", "detector", "--gt-dir", tmp_path, "--event-dir", tmp_path / "events",
        "--representation", "voxel_grid", "--bins", "3", "--window-ms", "40", "--epochs", "1",
        "--batch-size", "4", "--out", tmp_path / "run",
    )  # fmt: skip
    assert code == 0, err
    loaded = load_checkpoint(tmp_path / "run" / "best.pt")
    assert loaded.events == EventRepresentation("voxel_grid", window_ns=40_000_000, bins=3)
    assert loaded.model.config.in_chans == 3
    code, out, err = run_cli(
        "train", "--model", "potter", "--tiny", "--mirror-left", "--gt-dir", tmp_path, "--event-dir",
        tmp_path / "events", "--window-events", "5000", "--epochs", "1", "--batch-size", "4", "--out",
        tmp_path / "potter",
    )  # fmt: skip
    assert code == 0, err
    assert "val MPJPE" in out  # validated as the benchmark predicts, on the event frames
    loaded = load_checkpoint(tmp_path / "potter" / "best.pt")
    assert loaded.events == EventRepresentation("lnes", window_events=5000) and loaded.mirror_left
    code, _, err = run_cli(
        "train", "--model", "lifter", "--gt-dir", tmp_path, "--event-dir", tmp_path / "events", "--out",
        tmp_path / "lifter",
    )  # fmt: skip
    assert code == 2 and "the lifter takes 2D keypoints" in err


@pytest.mark.slow
def test_bundled_event_models_beat_the_mean_pose_on_unseen_event_takes(tmp_path):
    """Synthetic event takes of a seed never trained on (tight boxes, as the training hands have):
    POTTER on LNES crops of the annotated boxes, as the benchmark predicts, beats the mean training pose
    by 30 % MPJPE; the event detector finds the hands, and with the lifter on its keypoints beats the mean
    pose too (wrist-relative)."""
    config = SynthConfig(takes=6, frames=4, seed=11)
    takes = [render_event_take(config, index, renders_per_frame=5) for index in range(5)]  # not test
    truth = Annotations({t.annotation.take_uid: t.annotation for t in takes})
    bag = tmp_path / "events" / "val"
    write_event_take_bag([(t.annotation, t.events) for t in takes], EVENT_CAMERA, bag)
    train = generate(tmp_path / "train", SynthConfig(takes=30, frames=2, seed=5), progress=False)
    reference = evaluate(predict_mean_pose(mean_pose(train.annotations["train"]), truth), truth, offset=True)

    potter = HandPosePipeline.load(
        bundled_model("potter_events"), EVENT_CAMERA, None, PipelineConfig("given")
    )
    given = run_pipeline(potter, event_bag_frames(bag, truth, potter.events), progress=False)
    ours = evaluate(given.predictions, truth, offset=True)
    assert ours["num_hands"] == reference["num_hands"] >= 30
    assert ours["mpjpe"] < 0.7 * reference["mpjpe"], (ours["mpjpe"], reference["mpjpe"])

    live = HandPosePipeline.load(
        bundled_model("lifter"), EVENT_CAMERA, bundled_model("detector_events"), PipelineConfig("detector")
    )
    found = run_pipeline(live, event_bag_frames(bag, truth, live.events), truth=truth, progress=False)
    assert found.detection.recall > 0.8 and found.detection.precision > 0.8
    relative = {
        take: {frame: {side: j - j[0] for side, j in hands.items()} for frame, hands in frames.items()}
        for take, frames in found.predictions.items()
    }
    assert evaluate(relative, truth, offset=True, allow_missing=True)["mpjpe"] < reference["mpjpe"]


def test_bundled_event_models_name_their_representation():
    for name in ("detector_events", "potter_events"):
        card = load_engine(bundled_model(name), "onnxruntime").card
        assert card.events == LNES, name
        assert card.input_channels == LNES.channels
