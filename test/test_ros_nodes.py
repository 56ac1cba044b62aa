"""The ROS 2 side with real rclpy, each node in its own process: the take bag round trip
(egoexo2bag -> bag_player -> hand_pose_estimator -> bag_recorder -> bag2json) against `hand-pose infer`,
the offline `eval-bag`, bad input the node must survive, and the bag tools' errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
import yaml
from conftest import DATA_DIR
from mcap.records import Chunk
from mcap.stream_reader import StreamReader
from PIL import Image as PILImage
from rclpy.parameter import Parameter as RosParameter
from rclpy.qos import ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import Image

from hand_pose_core.bags.interfaces import register_messages
from hand_pose_core.bags.messages import decode_image
from hand_pose_core.bags.names import CAMERA_INFO_TOPIC, HANDS_TYPE, IMAGE_TOPIC, TAKES_TOPIC
from hand_pose_core.bags.takes import (
    IMAGE_TYPE,
    STRING_TYPE,
    TYPESTORE,
    BagWriter,
    TakeIndex,
    bag_header,
    bag_image,
    frame_stamp_ns,
    read_take_index,
    recorded_hands,
    write_take_bag,
)
from hand_pose_core.egoexo.formats import annotation_path, image_path, load_annotations, load_predictions
from hand_pose_core.egoexo.frames import frame_time_ns
from hand_pose_core.egoexo.metrics import evaluate
from hand_pose_core.geometry.aria import vrs_frames
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
from hand_pose_core.geometry.skeleton import NUM_JOINTS
from hand_pose_core.runtime.bundled import bundled_model
from hand_pose_core.runtime.engines import load_engine
from hand_pose_core.synth.events import render_event_take
from hand_pose_core.synth.generator import SynthConfig
from hand_pose_ros.estimator import PARAMETERS
from hand_pose_ros.frame_slot import LatestFrameSlot
from hand_pose_ros.node_base import own_copy
from hand_pose_ros.processes import ProcessGroup, node_command, ros_env

SPLIT = "val"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def take_bag(varied_data, tmp_path_factory):
    """The validation split of `varied_data` (about 30 takes of 4 frames) as a take bag."""
    bag = tmp_path_factory.mktemp("bags") / "val_take"
    annotations = load_annotations(annotation_path(varied_data, SPLIT))
    summary = write_take_bag(
        annotations, varied_data / "image" / "undistorted", SPLIT, bag, BENCHMARK_CAMERA, progress=False
    )
    assert summary.frames == annotations.num_frames and not summary.skipped
    return bag


def estimator_parameters(lifter: Path, detector: Path) -> dict:
    return {
        "localisation": "detector",
        "mode": "lifter",
        "lifter_model": lifter,
        "detector_model": detector,
        "smoothing": False,
        "publish_overlay": False,
    }


CAMERA_REMAPS = {"image": IMAGE_TOPIC, "camera_info": "/camera/camera_info"}


@pytest.mark.slow
def test_take_bag_maps_every_stamp_back_to_its_frame(take_bag, varied_data):
    annotations = load_annotations(annotation_path(varied_data, SPLIT))
    index = read_take_index(take_bag)
    expected = {(uid, n) for uid, take in annotations.takes.items() for n in take.frames}
    assert set(index.frames.values()) == expected and len(index.frames) == len(expected)
    assert index.takes == {uid: take.take_name for uid, take in annotations.takes.items()}


@pytest.mark.slow
def test_round_trip_through_the_live_node_matches_infer(take_bag, varied_data, models, tmp_path, run_cli):
    """The bundled detector, trained on this recipe's training split, so that hands are found; random
    lifter weights, as only equality counts."""
    lifter, detector = models["lifter"], bundled_model("detector")
    env = ros_env()
    recording = tmp_path / "recorded"
    topics = ["/hands", TAKES_TOPIC]
    with ProcessGroup(env) as group:
        recorder = group.start(
            node_command("hand_pose_ros.bag_recorder", {"out": recording, "topics": json.dumps(topics)})
        )
        node = group.start(
            node_command("hand_pose_ros.estimator", estimator_parameters(lifter, detector), CAMERA_REMAPS)
        )
        node.wait_for("active: images from")
        recorder.wait_for("recording /hands")
        player = group.start(
            node_command("hand_pose_ros.bag_player", {"bag": take_bag, "lockstep_topic": "/hands"})
        )
        assert player.wait(180) == 0, player.output
        assert node.interrupt() == 0, node.output
        assert recorder.interrupt() == 0, recorder.output
    truth_path = annotation_path(varied_data, SPLIT)
    truth = load_annotations(truth_path)
    recorded = recorded_hands(recording)
    assert recorded.problems == []
    assert recorded.frames == recorded.frames_with_output == truth.num_frames  # no frame lost

    code, _, err = run_cli("bag2json", recording, "--out", tmp_path / "node.json")
    assert code == 0, err
    code, _, err = run_cli(
        "infer", "--checkpoint", lifter, "--boxes", "detector", "--detector", detector, "--absolute",
        "--gt-dir", varied_data, "--image-dir", varied_data / "image" / "undistorted", "--split", SPLIT,
        "--out", tmp_path / "infer.json",
    )  # fmt: skip
    assert code == 0, err
    node_predictions = load_predictions(tmp_path / "node.json")
    infer_predictions = load_predictions(tmp_path / "infer.json")
    compared = 0
    for take, frames in infer_predictions.items():
        for frame, hands in frames.items():
            for side, joints in hands.items():
                assert np.abs(node_predictions[take][frame][side] - joints).max() < 1e-5
                compared += 1
    assert compared >= 0.8 * sum(truth.count_hands().values())  # the detector finds most hands
    node_report = evaluate(node_predictions, truth, allow_missing=True)
    infer_report = evaluate(infer_predictions, truth, allow_missing=True)
    assert node_report["num_hands"] == infer_report["num_hands"] > 0
    assert abs(node_report["mpjpe"] - infer_report["mpjpe"]) < 0.01

    code, _, err = run_cli(
        "eval-bag", take_bag, "--gt", truth_path, "--checkpoint", lifter, "--detector", detector,
        "--out", tmp_path / "eval_bag",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads((tmp_path / "eval_bag" / "report.json").read_text())
    assert abs(report["mpjpe"] - infer_report["mpjpe"]) < 0.01


def test_node_skips_bad_frames_counts_them_and_keeps_running(synth_data, models, tmp_path):
    env = ros_env()
    annotations = load_annotations(annotation_path(synth_data, SPLIT))
    take = next(iter(annotations.takes.values()))
    frame = image_path(synth_data / "image" / "undistorted", SPLIT, take.take_name, next(iter(take.frames)))
    result_path = tmp_path / "probe.json"
    with ProcessGroup(env) as group:
        node = group.start(
            node_command(
                "hand_pose_ros.estimator",
                estimator_parameters(models["lifter"], models["detector"]),
                CAMERA_REMAPS,
            )
        )
        node.wait_for("active: images from")
        probe = group.start(
            [
                sys.executable,
                str(ROOT / "test" / "ros_probe.py"),
                "bad_input",
                "--image",
                frame,
                "--out",
                result_path,
            ]
        )
        assert probe.wait(120) == 0, probe.output + "\n" + node.output
        assert node.process.poll() is None, node.output  # still running
        assert node.interrupt() == 0
    result = json.loads(result_path.read_text())
    diagnostics = result["diagnostics"][-1]
    assert diagnostics["frames received"] == "6" and diagnostics["frames dropped"] == "0"
    assert (diagnostics["frames skipped"], diagnostics["frames processed"]) == ("5", "1"), diagnostics
    # no camera_info; wrong encoding, wrong step, empty; the wrong size for the camera
    assert diagnostics["skipped by reason"] == "no camera_info yet: 1, image: 3, frame: 1"
    # Every frame got its output with its own header: empty for the bad ones.
    by_stamp = {hand["stamp"]: hand for hand in result["hands"]}
    assert sorted(by_stamp) == sorted(result["sent"])
    assert [len(by_stamp[s]["hands"]) for s in result["sent"][:5]] == [0] * 5
    assert all(hand["frame_id"] == "camera_optical" for hand in result["hands"])
    assert "skipped: no camera_info yet" in node.output  # the log, throttled


def test_node_takes_event_frames_and_answers_each_with_its_hands(tmp_path):
    """`input: event_frames`: LNES frames of a synthetic event take as 32FC2 images, each answered with
    the bundled event detector's hands at its stamp; an rgb8 image is skipped and counted."""
    take = render_event_take(SynthConfig(takes=3, frames=3, seed=0), 2, renders_per_frame=5)
    lnes = load_engine(bundled_model("detector_events"), "onnxruntime").card.events
    frames = np.stack([lnes.render(take.events, frame_time_ns(n)) for n in take.annotation.frames])
    np.savez(tmp_path / "frames.npz", frames=frames)
    result_path = tmp_path / "probe.json"
    parameters = {"input": "event_frames", "localisation": "detector", "mode": "lifter", "smoothing": False}
    with ProcessGroup(ros_env()) as group:
        node = group.start(node_command("hand_pose_ros.estimator", parameters, CAMERA_REMAPS))
        node.wait_for("active: images from")
        probe = group.start(
            [sys.executable, ROOT / "test" / "ros_probe.py", "event_frames", "--image",
             tmp_path / "frames.npz", "--out", result_path, "--reliable-images"]
        )  # fmt: skip
        assert probe.wait(120) == 0, probe.output + "\n" + node.output
        assert node.interrupt() == 0, node.output
    result = json.loads(result_path.read_text())
    by_stamp = {hand["stamp"]: hand for hand in result["hands"]}
    assert sorted(by_stamp) == sorted(result["sent"])  # every frame answered at its own stamp
    found = [len(by_stamp[stamp]["hands"]) for stamp in result["sent"][:3]]
    assert sum(found) >= 4 and by_stamp[result["sent"][3]]["hands"] == []
    diagnostics = result["diagnostics"][-1]
    assert (diagnostics["frames processed"], diagnostics["frames skipped"]) == ("3", "1"), diagnostics
    assert diagnostics["skipped by reason"] == "events: 1"


def hands_message(header, joints: np.ndarray):
    """A hand_pose_msgs/Hands with one right hand at `joints`, as rosbags writes it."""
    register_messages(TYPESTORE)
    types = TYPESTORE.types
    point, point32 = types["geometry_msgs/msg/Point"], types["geometry_msgs/msg/Point32"]
    hand = types["hand_pose_msgs/msg/Hand"](
        side="right",
        score=1.0,
        box=np.zeros(4, np.float32),
        keypoints=[point32(x=0.0, y=0.0, z=0.0)] * NUM_JOINTS,
        joints=[point(x=x, y=y, z=z) for x, y, z in joints],
        confidence=np.ones(NUM_JOINTS, np.float32),
        **{
            f"mano_{name}": np.zeros(0, np.float32)
            for name in ("global_orient", "hand_pose", "betas", "transl")
        },
    )
    return types[HANDS_TYPE](header=header, width=512, height=512, hands=[hand])


def _chunk_offsets(path: Path) -> list[int]:
    """Byte offsets of the MCAP file's chunk records (opcode 0x06 after the 8-byte magic)."""
    data = path.read_bytes()
    offsets, position = [], 8
    while position + 9 <= len(data):
        opcode, length = data[position], int.from_bytes(data[position + 1 : position + 9], "little")
        if opcode == 0x06:
            offsets.append(position)
        position += 9 + length
    return offsets


FRAMES_IN_BAG = 30


@pytest.fixture
def recording(tmp_path) -> Path:
    """A bag as the recorder writes it: a take index, and per frame an image (so that the bag spans
    several chunks) and the node's hands."""
    stamps = [frame_stamp_ns(0, n) for n in range(FRAMES_IN_BAG)]
    index = TakeIndex({"take-a": "take_a"}, {stamp: ("take-a", n) for n, stamp in enumerate(stamps)})
    path = tmp_path / "recorded"
    with BagWriter(path) as bag:
        bag.write(TAKES_TOPIC, STRING_TYPE, 0, TYPESTORE.types[STRING_TYPE](data=index.to_json()))
        for n, stamp in enumerate(stamps):
            pixels = np.full((200, 200, 3), n, np.uint8)
            bag.write(IMAGE_TOPIC, IMAGE_TYPE, stamp, bag_image(bag_header(stamp), pixels))
            bag.write(
                "/hands", HANDS_TYPE, stamp, hands_message(bag_header(stamp), np.full((NUM_JOINTS, 3), 0.4))
            )
    return path


def test_bags_are_written_with_chunk_checksums_and_read_whole(recording, tmp_path, run_cli):
    (mcap,) = recording.glob("*.mcap")
    crcs = [
        r.uncompressed_crc for r in StreamReader(str(mcap), emit_chunks=True).records if isinstance(r, Chunk)
    ]
    assert len(crcs) >= 4 and all(crcs)
    code, _, err = run_cli("bag2json", recording, "--out", tmp_path / "pred.json")
    assert code == 0, err
    assert len(load_predictions(tmp_path / "pred.json")["take-a"]) == FRAMES_IN_BAG


def test_a_damaged_chunk_is_reported_and_the_rest_kept_on_request(recording, tmp_path, run_cli):
    """A flipped byte inside a chunk: its messages are lost (how many, from when), the chunks after it
    are still read; without --keep-readable nothing is written and the exit code is 2."""
    (mcap,) = recording.glob("*.mcap")
    chunks = _chunk_offsets(mcap)
    data = bytearray(mcap.read_bytes())
    data[chunks[len(chunks) // 2] + 200] ^= 0x40  # inside the middle chunk's records
    mcap.write_bytes(bytes(data))
    code, _, err = run_cli("bag2json", recording, "--out", tmp_path / "pred.json")
    assert code == 2 and "damaged chunk" in err and "nothing written" in err
    assert not (tmp_path / "pred.json").exists()
    code, out, err = run_cli("bag2json", recording, "--out", tmp_path / "pred.json", "--keep-readable")
    assert code == 0, err
    assert re.search(r"a damaged chunk \(CRCValidationError.*\): \d+ messages from \d+ to \d+ ns lost", out)
    kept = sorted(load_predictions(tmp_path / "pred.json")["take-a"])
    assert 0 < len(kept) < FRAMES_IN_BAG and kept[-1] == FRAMES_IN_BAG - 1  # frames after it are kept
    assert "the node published nothing for it" in out


def test_a_bag_cut_short_gives_what_came_before_the_cut(recording, tmp_path, run_cli):
    (mcap,) = recording.glob("*.mcap")
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) * 3 // 4])  # a recorder killed: no summary, no footer
    code, _, err = run_cli("bag2json", recording, "--out", tmp_path / "pred.json")
    assert code == 2 and "ends early" in err
    code, out, err = run_cli("bag2json", recording, "--out", tmp_path / "pred.json", "--keep-readable")
    assert code == 0 and "it ends early: no footer" in out, err
    kept = sorted(load_predictions(tmp_path / "pred.json")["take-a"])
    assert 0 < len(kept) < FRAMES_IN_BAG and kept == list(range(len(kept)))


def test_bag_tools_refuse_what_is_not_a_bag(tmp_path, run_cli):
    code, _, err = run_cli("bag2json", tmp_path / "missing", "--out", tmp_path / "pred.json")
    assert code == 2 and "no such bag" in err and not (tmp_path / "pred.json").exists()
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("bag2json", tmp_path / "empty", "--out", tmp_path / "pred.json")
    assert code == 2 and "not a readable rosbag2 bag" in err
    with BagWriter(tmp_path / "inputs") as bag:  # a bag of the node's inputs, not of its hands
        bag.write(TAKES_TOPIC, STRING_TYPE, 0, TYPESTORE.types[STRING_TYPE](data="{}"))
    code, _, err = run_cli("bag2json", tmp_path / "inputs", "--out", tmp_path / "pred.json")
    assert code == 2 and f"no {HANDS_TYPE} topic" in err and "Traceback" not in err
    with BagWriter(tmp_path / "outputs") as bag:  # a bag of the node's hands, no camera
        bag.write(TAKES_TOPIC, STRING_TYPE, 0, TYPESTORE.types[STRING_TYPE](data='{"takes": []}'))
        bag.write("/hands", HANDS_TYPE, 1, hands_message(bag_header(1), np.zeros((NUM_JOINTS, 3))))
    gt = tmp_path / "gt.json"
    gt.write_text("{}")
    code, _, err = run_cli("eval-bag", tmp_path / "outputs", "--gt", gt, "--out", tmp_path / "report")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "outputs" in lines[0] and CAMERA_INFO_TOPIC in lines[0], err


def test_image_buffers_honour_encoding_and_step():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    padded = np.zeros((2, 12), np.uint8)
    padded[:, :9] = rgb[:, :, ::-1].reshape(2, 9)  # bgr8 rows padded to 12 bytes
    assert np.array_equal(decode_image("bgr8", 2, 3, 12, padded.tobytes()), rgb)
    assert decode_image("mono8", 2, 3, 3, bytes(6)).shape == (2, 3)


def test_config_file_sets_exactly_the_declared_parameters():
    config = yaml.safe_load((ROOT / "hand_pose_ros" / "config" / "hand_pose.yaml").read_text())
    values = config["/**"]["ros__parameters"]
    declared = {parameter.name: parameter.default for parameter in PARAMETERS}
    assert values == declared  # the defaults live in the declarations; the file repeats them, nothing else
    for name, value in values.items():
        assert type(value) is type(declared[name]), name  # ROS refuses a YAML value of another type
    assert all(parameter.description for parameter in PARAMETERS)


def test_a_qos_override_stays_on_its_own_topic():
    """rclpy writes a topic's QoS overrides into the profile object it is given: each topic gets its own
    copy, or one override would change every topic created after it."""
    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    try:
        override = RosParameter("qos_overrides./first.publisher.reliability", value="reliable")
        node = rclpy.create_node("qos_probe", context=context, parameter_overrides=[override])
        options = QoSOverridingOptions.with_default_policies()
        first, second = (
            node.create_publisher(
                Image, name, own_copy(qos_profile_sensor_data), qos_overriding_options=options
            )
            for name in ("first", "second")
        )
        assert first.qos_profile.reliability == ReliabilityPolicy.RELIABLE
        assert second.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        assert qos_profile_sensor_data.reliability == ReliabilityPolicy.BEST_EFFORT
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_latest_frame_slot_keeps_only_the_newest_and_counts_drops():
    slot = LatestFrameSlot()
    assert slot.take(timeout=0.01) is None
    assert slot.put(1) is False and slot.put(2) is True and slot.put(3) is True
    assert slot.take(timeout=0.01) == 3 and slot.dropped == 2
    assert slot.take(timeout=0.01) is None
    slot.close()
    assert slot.closed and slot.take() is None  # a closed slot never blocks


def test_node_undistorts_raw_aria_frames_played_from_a_real_recording(models, tmp_path):
    """aria_vrs_player -> hand_pose_estimator (camera_source aria, portrait) -> overlay images, every
    link overridden to reliable: the test counts every frame, and best effort may drop a 6 MB image."""
    recording = DATA_DIR / "aria" / "adt_apartment_video.vrs"
    stamps = [frame.capture_ns for frame in vrs_frames(recording)]
    env = ros_env()
    parameters = estimator_parameters(models["lifter"], models["detector"]) | {
        "camera_source": "aria",
        "aria_calibration": recording,
        "rotation": "portrait",
        "publish_overlay": True,
        "qos_overrides./image.subscription.reliability": "reliable",
        "qos_overrides./overlay.publisher.reliability": "reliable",
    }
    out = tmp_path / "overlay.json"
    with ProcessGroup(env) as group:
        node = group.start(node_command("hand_pose_ros.estimator", parameters))
        listener = group.start(
            [
                sys.executable,
                ROOT / "test" / "image_listener.py",
                "--wait-for-publishers",
                "--reliable",
                out,
                "120",
                f"/overlay={len(stamps)}",
            ]
        )
        node.wait_for("active: images from")
        deadline = time.monotonic() + 60
        while not Path(f"{out}.ready").exists():  # the listener's subscription exists
            assert time.monotonic() < deadline and listener.process.poll() is None, listener.output
            time.sleep(0.05)
        player = group.start(
            node_command(
                "hand_pose_ros.aria_vrs_player",
                {"vrs_path": recording, "rate": 0.1}
                | {"qos_overrides./image.publisher.reliability": "reliable"},
            )
        )
        assert player.wait(120) == 0, player.output
        assert listener.wait(150) == 0, listener.output
        assert node.interrupt() == 0, node.output
    overlays = json.loads(out.read_text())["/overlay"]
    assert [o["stamp_ns"] for o in overlays] == stamps  # every frame, device-clock stamps carried over
    assert all(
        (o["width"], o["height"], o["encoding"], o["frame_id"]) == (512, 512, "rgb8", "camera_rgb")
        for o in overlays
    )


def test_node_with_the_slam_cameras_pairs_them_with_each_rgb_frame_and_answers_every_frame(tmp_path):
    """cameras rgb+slam on a real recording's three cameras (RGB at 20 Hz, SLAM at 10 Hz): every RGB
    frame answered at its stamp; each SLAM camera paired with the 4 frames it has a frame for; the left
    camera's frame of the wrong size sits out, counted."""
    recording = DATA_DIR / "aria" / "aea_recording.vrs"
    result_path = tmp_path / "probe.json"
    parameters = {
        "camera_source": "aria",
        "aria_calibration": recording,
        "cameras": "rgb+slam",
        "smoothing": False,
        "qos_overrides./image.subscription.reliability": "reliable",
        "qos_overrides./slam_left/image.subscription.reliability": "reliable",
        "qos_overrides./slam_right/image.subscription.reliability": "reliable",
    }
    with ProcessGroup(ros_env()) as group:
        node = group.start(node_command("hand_pose_ros.estimator", parameters))
        node.wait_for("active: images from")
        probe = group.start(
            [sys.executable, ROOT / "test" / "ros_probe.py", "views", "--image", recording, "--out",
             result_path, "--image-topic", "/image", "--reliable-images"]
        )  # fmt: skip
        assert probe.wait(120) == 0, probe.output + "\n" + node.output
        assert node.interrupt() == 0, node.output
    result = json.loads(result_path.read_text())
    assert len(result["sent"]) == 8
    assert sorted(h["stamp"] for h in result["hands"]) == result["sent"]
    assert all(h["frame_id"] == "camera_rgb" for h in result["hands"])
    diagnostics = result["diagnostics"][-1]
    assert diagnostics["frames processed"] == "8", diagnostics
    assert diagnostics["views paired"] == "camera-slam-left: 4, camera-slam-right: 4", diagnostics
    assert diagnostics["views missing"] == "camera-slam-left: 4, camera-slam-right: 4", diagnostics
    assert "camera-slam-left frame: " in node.output  # the frame of the wrong size, logged


def test_node_interfaces_lifecycle_names_qos_typed_hands_and_live_tuning(tmp_path):
    """In a namespace, inputs remapped, QoS overridden both ways, started by lifecycle transitions from
    outside: typed hands for a real photo, then `min_score` changed while running empties them, and a
    value out of range or a read-only parameter is refused."""
    env = ros_env()
    photo = DATA_DIR / "real" / "mp_rock_one_hand.jpg"
    result_path = tmp_path / "probe.json"
    parameters = {
        "autostart": False,
        "smoothing": False,
        "qos_overrides./cam/image_raw.subscription.reliability": "reliable",
        "qos_overrides./test_ns/hands.publisher.reliability": "best_effort",
    }
    remaps = {"__ns": "/test_ns", "image": "/cam/image_raw", "camera_info": "/cam/camera_info"}
    with ProcessGroup(env) as group:
        node = group.start(node_command("hand_pose_ros.estimator", parameters, remaps))
        probe = group.start(
            [
                sys.executable, ROOT / "test" / "ros_probe.py", "interfaces", "--image", photo,
                "--out", result_path, "--image-topic", "/cam/image_raw",
                "--camera-info-topic", "/cam/camera_info", "--node", "/test_ns/hand_pose_estimator",
                "--hands-topic", "/test_ns/hands", "--reliable-images", "--best-effort-hands",
                "--manage-lifecycle",
            ]
        )  # fmt: skip
        assert probe.wait(180) == 0, probe.output + "\n" + node.output
        assert node.interrupt() == 0, node.output
    result = json.loads(result_path.read_text())
    seen = result["interfaces"]
    assert seen["states"] == ["unconfigured", "inactive", "active"]
    assert seen["configured"] and seen["activated"]
    assert seen["image subscription"] == ["hand_pose_estimator:RELIABLE"]
    assert seen["hands publisher"] == ["hand_pose_estimator:BEST_EFFORT"]
    before = [m for m in result["hands"] if m["arrival"] < seen["tuned from"]]
    after = [m for m in result["hands"] if m["arrival"] > seen["tuned from"]]
    assert len(before) == 3 and len(after) == 3, result["hands"]
    for message in before:
        assert message["frame_id"] == "camera_optical" and message["stamp"] in result["sent"]
        (hand,) = message["hands"]
        width, height = message["size"]
        keypoints = np.array(hand["keypoints"])
        assert hand["side"] in ("left", "right") and 0.5 < hand["score"] <= 1.0
        assert ((keypoints >= 0) & (keypoints <= [width - 1, height - 1])).all()
        assert hand["confidence"] == [pytest.approx(hand["score"])] * NUM_JOINTS
        joints = np.array(hand["joints"])
        assert joints.shape == (NUM_JOINTS, 3) and (joints[:, 2] > 0).all()  # in front of the camera
        x0, y0, x1, y1 = hand["box"]
        assert x0 < keypoints[:, 0].mean() < x1 and y0 < keypoints[:, 1].mean() < y1
    assert all(message["hands"] == [] for message in after)  # min_score 1.0: no hand is that sure
    assert seen["min_score=1.0"] == [True, ""]
    assert seen["min_score=2.0"][0] is False and "out of range" in seen["min_score=2.0"][1]
    assert seen["mode=potter"][0] is False  # read-only
    assert "tuning: min_score=1.0" in node.output


@pytest.mark.parametrize(
    "parameter, message",
    [
        ("threads:=-5", "threads"),
        ("min_score:=abc", "min_score"),
        ("mode:=crystal", "mode"),
        ("landmark_model:=/nowhere/landmarks.onnx", "/nowhere/landmarks.onnx: no such ONNX model"),
        ("input:=event_packets", "needs localisation detector and mode lifter or potter"),
        ("mano_dir:=/nowhere/mano", "/nowhere/mano: no such folder (expected one with MANO_RIGHT.pkl"),
    ],
)
def test_bad_parameters_at_start_end_in_one_line_and_exit_code_2(parameter, message):
    command = [sys.executable, "-m", "hand_pose_ros.estimator", "--ros-args", "-p", parameter]
    result = subprocess.run(command, env=ros_env(), capture_output=True, text=True, timeout=60)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 2, lines
    assert len(lines) == 1 and "[FATAL]" in lines[0] and message in lines[0], lines


def test_node_reads_compressed_images_and_rectifies_a_distorted_camera(tmp_path):
    """image_transport compressed: a JPEG photo gives its hand; PNG frames of dots seen through a
    plumb_bob camera come out rectified (the overlay) with each dot within 0.5 px of where OpenCV's
    undistortPoints puts it."""
    from ros_probe import DOT_FRAMES, DOTS_D, DOTS_K, DOTS_P, distorted_dots

    env = ros_env()
    photo = DATA_DIR / "real" / "mp_rock_one_hand.jpg"
    result_path, overlays_path = tmp_path / "probe.json", tmp_path / "overlays.npz"
    parameters = {"image_transport": "compressed", "smoothing": False}
    with ProcessGroup(env) as group:
        node = group.start(node_command("hand_pose_ros.estimator", parameters, CAMERA_REMAPS))
        probe = group.start(
            [sys.executable, ROOT / "test" / "ros_probe.py", "compressed", "--image", photo,
             "--out", result_path, "--overlays", overlays_path]
        )  # fmt: skip
        assert probe.wait(180) == 0, probe.output + "\n" + node.output
        assert node.interrupt() == 0, node.output
    assert "images from /camera/image/compressed" in node.output
    result = json.loads(result_path.read_text())
    by_stamp = {message["stamp"]: message for message in result["hands"]}
    photos, dots = result["sent"][:3], result["sent"][3:]
    assert all(len(by_stamp[stamp]["hands"]) == 1 for stamp in photos)  # the hand in the JPEG
    assert all(by_stamp[stamp]["size"] == [640, 480] for stamp in dots)
    assert "rectified from plumb_bob" in node.output
    overlays = np.load(overlays_path)
    expected = cv2.undistortPoints(distorted_dots().reshape(-1, 1, 2), DOTS_K, DOTS_D, P=DOTS_P).reshape(
        -1, 2
    )
    assert len(dots) == DOT_FRAMES and all(str(stamp) in overlays for stamp in dots)
    for stamp in dots:
        image = overlays[str(stamp)].astype(float)
        errors = []
        for x, y in expected:
            u0, v0 = round(x), round(y)
            window = image[v0 - 4 : v0 + 5, u0 - 4 : u0 + 5]
            v, u = np.mgrid[v0 - 4 : v0 + 5, u0 - 4 : u0 + 5]
            centroid = np.array([(window * u).sum(), (window * v).sum()]) / window.sum()
            errors.append(np.hypot(*(centroid - [x, y])))
        assert max(errors) < 0.5, max(errors)


def test_bag_player_publishes_the_log_time_on_clock(tmp_path):
    """Like `ros2 bag play --clock`: each message's log time on /clock before it, for use_sim_time."""
    bag, log_times = tmp_path / "three_images", [5_000_000_000 + k * 40_000_000 for k in range(3)]
    with BagWriter(bag) as writer:
        for stamp in log_times:
            writer.write(
                IMAGE_TOPIC, IMAGE_TYPE, stamp, bag_image(bag_header(stamp), np.zeros((8, 8), np.uint8))
            )
    env, out = ros_env(), tmp_path / "received.json"
    with ProcessGroup(env) as group:
        listener = group.start(
            [sys.executable, ROOT / "test" / "image_listener.py", out, "30", f"{IMAGE_TOPIC}=3"]
        )
        deadline = time.monotonic() + 30
        while not Path(f"{out}.ready").exists():
            assert time.monotonic() < deadline and listener.process.poll() is None, listener.output
            time.sleep(0.05)
        player = group.start(node_command("hand_pose_ros.bag_player", {"bag": bag}))
        assert player.wait(60) == 0, player.output
        assert listener.wait(60) == 0, listener.output
    received = json.loads(out.read_text())
    assert [m["stamp_ns"] for m in received[IMAGE_TOPIC]] == log_times
    assert received["/clock"] == log_times


def test_node_survives_a_storm_of_malformed_messages_answers_and_counts_every_frame(tmp_path):
    """A few hundred malformed images and camera infos over DDS (bad encodings, steps, sizes, truncated
    data, NaN, infinite or negative focal lengths, far principal points, unknown distortion, stamps
    going back and forth): the node lives, every frame it takes is answered and counted once, and the
    photo that follows gets its hand."""
    env = ros_env()
    photo = DATA_DIR / "real" / "mp_rock_one_hand.jpg"
    result_path = tmp_path / "probe.json"
    with ProcessGroup(env) as group:
        # Reliable and deep inputs, so that DDS delivers all of it and the counts are the node's own.
        parameters = {"smoothing": False} | {
            f"qos_overrides.{topic}.subscription.{policy}": value
            for topic in CAMERA_REMAPS.values()
            for policy, value in (("reliability", "reliable"), ("depth", 1000))
        }
        node = group.start(node_command("hand_pose_ros.estimator", parameters, CAMERA_REMAPS))
        probe = group.start(
            [sys.executable, ROOT / "test" / "ros_probe.py", "fuzz", "--image", photo, "--out", result_path,
             "--frames", "300", "--reliable-images"]
        )  # fmt: skip
        assert probe.wait(240) == 0, probe.output + "\n" + node.output
        assert node.process.poll() is None, node.output  # still running
        assert node.interrupt() == 0, node.output
    assert "Traceback" not in node.output
    result = json.loads(result_path.read_text())
    final = result["diagnostics"][-1]
    received, processed, skipped, dropped = (
        int(final[f"frames {what}"]) for what in ("received", "processed", "skipped", "dropped")
    )
    assert received == processed + skipped + dropped, final
    assert received == 300 + 2 and skipped > 50 and int(final["camera_info refused"]) > 50, final
    answered = {message["stamp"]: message for message in result["hands"]}
    assert len(result["hands"]) == processed + skipped  # one answer per frame taken, none for drops
    for stamp in result["sent"]:  # the photo after the storm
        (hand,) = answered[stamp]["hands"]
        assert hand["score"] > 0.5 and np.isfinite(hand["joints"]).all()


def test_each_image_is_paired_with_the_camera_info_of_its_stamp(tmp_path):
    env = ros_env()
    photo = DATA_DIR / "real" / "mp_rock_one_hand.jpg"
    result_path = tmp_path / "probe.json"
    with ProcessGroup(env) as group:
        node = group.start(node_command("hand_pose_ros.estimator", {"smoothing": False}, CAMERA_REMAPS))
        probe = group.start(
            [
                sys.executable,
                ROOT / "test" / "ros_probe.py",
                "pairing",
                "--image",
                photo,
                "--out",
                result_path,
            ]
        )
        assert probe.wait(120) == 0, probe.output + "\n" + node.output
        assert node.interrupt() == 0, node.output
    result = json.loads(result_path.read_text())
    full, small, after_refused, unpaired = result["sent"]
    answered = {message["stamp"]: message for message in result["hands"]}
    width, height = PILImage.open(photo).size
    assert answered[full]["size"] == [width, height] and len(answered[full]["hands"]) == 1
    assert answered[small]["size"] == [(width + 1) // 2, (height + 1) // 2]  # its own camera, not the last
    assert len(answered[after_refused]["hands"]) == 1  # the refused camera_info changed nothing
    assert answered[unpaired]["hands"] == []
    final = result["diagnostics"][-1]
    assert (final["frames processed"], final["frames skipped"], final["camera_info refused"]) == (
        "3",
        "1",
        "1",
    )
    assert final["skipped by reason"] == "no camera_info within 0.1 s of the image stamp: 1"
    assert "camera_info refused: camera_info K has non-finite numbers" in node.output
