"""Shared fixtures: the real Ego-Exo4D fixture file, hand-made ground truth with full 3D, and a CLI runner."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hand_pose_core import cli
from hand_pose_core.egoexo.formats import (
    Annotations,
    FrameAnnotation,
    HandAnnotation,
    Predictions,
    TakeAnnotation,
)
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
from hand_pose_core.geometry.skeleton import FINGERS, NUM_JOINTS
from hand_pose_core.models.checkpoints import build_model, save_checkpoint
from hand_pose_core.models.normalization import JointNormalizer, KeypointNormalizer
from hand_pose_core.models.potter import PotterConfig

# The repository's real files (data/README.md says what each one is).
DATA_DIR = Path(__file__).resolve().parents[1] / "data"
EGOEXO_TEST_PUBLIC = DATA_DIR / "egoexo4d" / "ego_pose_gt_anno_test_public.json"


@pytest.fixture(scope="session")
def egoexo_test_public() -> Path:
    """The real test public file of the release (boxes only)."""
    assert EGOEXO_TEST_PUBLIC.is_file(), f"fixture missing: {EGOEXO_TEST_PUBLIC}"
    return EGOEXO_TEST_PUBLIC


class GtBuilder:
    """Hand-made processed ground truth with full 3D, 2D (projected) and boxes.

    `add` takes joints in metres; joints not valid become NaN (the wrist always stays a real number,
    as in the release). Takes are named `name-<uid>`.
    """

    def __init__(self, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        self.entries: list[tuple[str, int, HandAnnotation]] = []

    def hand_joints(self, wrist=(0.05, 0.08, 0.45)) -> np.ndarray:
        """(21, 3) metres: a roughly hand-shaped skeleton in a random pose in front of the camera."""
        joints_mm = np.zeros((NUM_JOINTS, 3))
        segments = (40.0, 28.0, 22.0, 18.0)
        for i, _ in enumerate(FINGERS):
            angle = np.deg2rad(-60.0 + 30.0 * i + self.rng.uniform(-5, 5))
            direction = np.array([np.sin(angle), -np.cos(angle), 0.0])
            position = np.zeros(3)
            for k, length in enumerate(segments):
                if k == 0 and i > 0:
                    length = 75.0 + self.rng.uniform(-10, 10)  # palm: wrist to finger base
                curl = np.array([0.0, 0.0, self.rng.uniform(0.0, 0.4) * k])
                step = direction + curl
                position = position + length * step / np.linalg.norm(step)
                joints_mm[1 + 4 * i + k] = position
        rotation = Rotation.random(random_state=self.rng)
        return rotation.apply(joints_mm) / 1000.0 + np.asarray(wrist, dtype=float)

    def add(self, take_uid: str, frame: int, side: str, joints=None, valid=None) -> HandAnnotation:
        joints = self.hand_joints() if joints is None else np.array(joints, dtype=float)
        valid = np.ones(NUM_JOINTS, dtype=bool) if valid is None else np.array(valid, dtype=bool)
        wrist = joints[0].copy()
        joints[~valid] = np.nan
        joints[0] = wrist
        points_2d = BENCHMARK_CAMERA.project(joints)
        seen = points_2d[np.isfinite(points_2d).all(axis=1)]
        bbox = None
        if len(seen):
            bbox = np.clip(np.concatenate([seen.min(axis=0), seen.max(axis=0)]), 0.0, 511.0)
        hand = HandAnnotation(side, joints_3d=joints, joints_2d=points_2d, bbox=bbox, valid_3d=valid)
        self.entries.append((take_uid, frame, hand))
        return hand

    def build(self, source: str = "<memory>") -> Annotations:
        takes: dict[str, TakeAnnotation] = {}
        for take_uid, frame_number, hand in self.entries:
            take = takes.setdefault(take_uid, TakeAnnotation(take_uid, f"name-{take_uid}"))
            frame = take.frames.setdefault(frame_number, FrameAnnotation(frame_number))
            frame.hands[hand.side] = hand
        return Annotations(takes, source)


@pytest.fixture
def gt_builder() -> GtBuilder:
    return GtBuilder()


@pytest.fixture
def small_gt(gt_builder) -> Annotations:
    """Two takes, four frames, six hands; some joints not valid (NaN)."""
    some_invalid = np.ones(NUM_JOINTS, dtype=bool)
    some_invalid[[3, 8, 20]] = False
    gt_builder.add("take-a", 3, "right")
    gt_builder.add("take-a", 3, "left", valid=some_invalid)
    gt_builder.add("take-a", 6, "left")
    gt_builder.add("take-b", 0, "right", valid=some_invalid)
    gt_builder.add("take-b", 0, "left")
    gt_builder.add("take-b", 12, "right")
    return gt_builder.build()


def predict_from_gt(gt: Annotations, transform=None, skip=()) -> Predictions:
    """Predictions for every 3D hand of `gt`: `transform(joints_m, record)` of its joints (identity by
    default), NaN replaced by 0 (predictions must be finite). Hands whose (take, frame, side) is in
    `skip` are left out."""
    predictions: Predictions = {}
    for record in gt.hands():
        if not record.hand.has_3d or (record.take_uid, record.frame_number, record.side) in skip:
            continue
        joints = record.hand.joints_3d.copy()
        if transform is not None:
            joints = transform(joints, record)
        frames = predictions.setdefault(record.take_uid, {})
        frames.setdefault(record.frame_number, {})[record.side] = np.nan_to_num(joints)
    return predictions


@pytest.fixture
def predict():
    return predict_from_gt


@pytest.fixture
def run_cli(capsys):
    """Run `hand-pose ARGS...` in-process; return (exit code, stdout, stderr)."""

    def run(*args) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


def synthetic_data(tmp_path_factory, name: str, takes: int, frames: int, seed: int) -> Path:
    """A synthetic data set in the release's layout, in a fresh temporary folder."""
    from hand_pose_core.synth.generator import SynthConfig, generate

    root = tmp_path_factory.mktemp(name)
    generate(root, SynthConfig(takes=takes, frames=frames, seed=seed), progress=False)
    return root


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> Path:
    """A small synthetic dataset (6 takes of 8 frames) shared by the runtime and pipeline tests."""
    return synthetic_data(tmp_path_factory, "synth_data", takes=6, frames=8, seed=4)


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Seeded random weights: a tiny POTTER (also as trained with mirrored left hands), a lifter and a
    detector."""
    root = tmp_path_factory.mktemp("pipeline_models")
    torch.manual_seed(0)
    potter = build_model("potter", **asdict(PotterConfig.tiny()))
    lifter = build_model("lifter")
    return {
        "potter": save_checkpoint(potter, root / "potter.pt", targets=JointNormalizer.official()),
        "potter_mirrored": save_checkpoint(
            potter, root / "potter_mirrored.pt", targets=JointNormalizer.official(), mirror_left=True
        ),
        "lifter": save_checkpoint(
            lifter,
            root / "lifter.pt",
            targets=JointNormalizer.official(),
            inputs=KeypointNormalizer.reference(),
        ),
        "detector": save_checkpoint(build_model("detector"), root / "detector.pt", targets=None),
    }


@pytest.fixture(scope="session")
def varied_data(tmp_path_factory) -> Path:
    """Many takes of few frames: hands of many subjects, places and poses (about 560 training frames); the
    bundled detector's recipe, so its validation frames are hands that detector never saw."""
    return synthetic_data(tmp_path_factory, "varied", takes=200, frames=4, seed=5)
