"""Training and inference on synthetic data: evidence that both models learn, checkpoints, resume,
`hand-pose infer` scored by `hand-pose eval`, and counted skips for unusable hands."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

import numpy as np
import pytest
import torch
from conftest import SHARED_DIR

from hand_pose_core.egoexo import annotation_path, image_path, load_annotations, load_predictions
from hand_pose_core.errors import InputError
from hand_pose_core.metrics import evaluate
from hand_pose_core.models import load_checkpoint
from hand_pose_core.models.potter import PotterConfig, PotterHand
from hand_pose_core.synth import SynthConfig, generate
from hand_pose_core.training import TrainOptions, train


@pytest.fixture(scope="module")
def learning_data(tmp_path_factory):
    """Many short takes: varied subjects and poses (about 1,250 training hands)."""
    root = tmp_path_factory.mktemp("learning")
    generate(root, SynthConfig(takes=60, frames=15, seed=2), progress=False)
    return root


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    generate(root, SynthConfig(takes=3, frames=4, seed=3), progress=False)
    return root


def report_learning(name, result, budget):
    best = min(result.history, key=lambda h: h["val_loss"])
    reference = result.mean_pose["val_mpjpe"]
    print(
        f"\n{name}: {budget}: val MPJPE {best['val_mpjpe']:.2f} mm, PA-MPJPE {best['val_pa_mpjpe']:.2f} mm; "
        f"mean pose {reference:.2f} / {result.mean_pose['val_pa_mpjpe']:.2f} mm"
    )
    return best["val_mpjpe"], reference


def test_lifter_beats_the_mean_pose_by_half(learning_data, tmp_path):
    options = TrainOptions(
        "lifter", learning_data, tmp_path, epochs=60, lr=1e-3, augment=True, progress=False
    )
    mpjpe, reference = report_learning("lifter", train(options), "60 epochs")
    assert mpjpe <= 0.5 * reference


def test_small_potter_fits_its_training_hands(small_data, tmp_path):
    options = TrainOptions(
        "potter",
        small_data,
        tmp_path,
        image_dir=small_data / "image" / "undistorted",
        epochs=30,
        lr=1e-3,
        batch_size=8,
        model_options=asdict(PotterConfig.tiny()),
        progress=False,
    )
    history = train(options).history
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]


def test_init_cls_loads_imagenet_weights_into_the_basic_stream(small_data, tmp_path, run_cli, caplog):
    rows = (SHARED_DIR / "reference" / "potter_cls_s12_state_dict.tsv").read_text().splitlines()
    weights = {}
    for row in rows:
        name, shape = row.split("\t")
        weights[f"module.{name}"] = torch.randn(
            *json.loads(shape.replace("(", "[").replace(",)", "]").replace(")", "]"))
        )
    torch.save({"state_dict": weights, "epoch": 300}, tmp_path / "potter_s12.pth.tar")
    caplog.set_level(logging.INFO)
    code, _, err = run_cli(
        "train",
        "--model",
        "potter",
        "--gt-dir",
        small_data,
        "--image-dir",
        small_data / "image" / "undistorted",
        "--init-cls",
        tmp_path / "potter_s12.pth.tar",
        "--epochs",
        1,
        "--batch-size",
        2,
        "--max-minutes",
        0.001,
        "--out",
        tmp_path / "run",
    )
    assert code == 0, err
    assert (
        "loaded 224 tensors into the basic stream, dropped head.bias, head.weight, norm.bias, norm.weight"
        in (caplog.text)
    )
    trained = load_checkpoint(tmp_path / "run" / "last.pt")
    assert trained.model.config == PotterConfig()


def test_checkpoints_tensorboard_and_resume(small_data, tmp_path):
    options = TrainOptions("lifter", small_data, tmp_path, epochs=2, batch_size=8, progress=False)
    first = train(options)
    assert first.best.is_file() and first.last.is_file()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    resumed = train(
        TrainOptions(
            "lifter", small_data, tmp_path, epochs=3, batch_size=8, resume=first.last, progress=False
        )
    )
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    last = torch.load(resumed.last, weights_only=True)
    assert last["epoch"] == 3 and "optimizer_state_dict" in last
    assert not list(tmp_path.glob("*.tmp"))


def test_infer_writes_a_submission_that_eval_scores(small_data, tmp_path, run_cli):
    code, _, err = run_cli(
        "train",
        "--model",
        "lifter",
        "--gt-dir",
        small_data,
        "--epochs",
        2,
        "--batch-size",
        8,
        "--out",
        tmp_path / "run",
    )
    assert code == 0, err
    pred = tmp_path / "pred.json"
    code, out, err = run_cli(
        "infer",
        "--checkpoint",
        tmp_path / "run" / "best.pt",
        "--gt-dir",
        small_data,
        "--split",
        "test",
        "--out",
        pred,
    )
    assert code == 0, err
    assert "test_private" in out  # the lifter needs 2D: the public test file has boxes only
    private = load_annotations(annotation_path(small_data, "test", public=False))
    direct = evaluate(load_predictions(pred), private, offset=True)
    assert direct["num_hands"] == sum(1 for r in private.hands())
    code, out, _ = run_cli(
        "eval", "--pred", pred, "--gt", annotation_path(small_data, "test", public=False), "--offset"
    )
    assert code == 0 and f"{direct['mpjpe']:.2f}" in out


def test_official_potter_checkpoint_infers_on_test_boxes_and_counts_skips(small_data, tmp_path, run_cli):
    torch.manual_seed(0)
    checkpoint = tmp_path / "official.pth"
    torch.save(
        {"epoch": 1, "state_dict": PotterHand(PotterConfig()).state_dict(), "val_loss": 1.0}, checkpoint
    )
    data = tmp_path / "data"
    (data / "annotation" / "manual").mkdir(parents=True)
    public = json.loads(annotation_path(small_data, "test").read_text())
    take_uid = next(iter(public))
    frames = list(public[take_uid])
    public[take_uid][frames[0]]["right_hand_bbox"] = [10.0, 10.0, 10.0, 40.0]  # zero width
    annotation_path(data, "test").write_text(json.dumps(public))
    images = data / "image" / "undistorted"
    take_name = public[take_uid][frames[1]]["metadata"]["take_name"]
    for take in public.values():
        for frame_key, frame in take.items():
            name = frame["metadata"]["take_name"]
            source = image_path(small_data / "image" / "undistorted", "test", name, int(frame_key))
            target = image_path(images, "test", name, int(frame_key))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    image_path(images, "test", take_name, int(frames[1])).write_bytes(b"not a jpeg")
    pred = tmp_path / "pred.json"
    code, out, err = run_cli(
        "infer",
        "--checkpoint",
        checkpoint,
        "--gt-dir",
        data,
        "--image-dir",
        images,
        "--split",
        "test",
        "--out",
        pred,
    )
    assert code == 0, err
    assert "(official)" in out
    unreadable = sum(1 for side in ("left", "right") if public[take_uid][frames[1]][f"{side}_hand_bbox"])
    assert f"1 box of zero size, {unreadable} image cannot be read" in out
    predictions = load_predictions(pred)
    boxes = sum(
        1 for t in public.values() for f in t.values() for s in ("left", "right") if f[f"{s}_hand_bbox"]
    )
    assert sum(len(h) for f in predictions.values() for h in f.values()) == boxes - 1 - unreadable
    joints = next(iter(next(iter(predictions.values())).values()))
    assert all(np.abs(j[0]).max() < 1e-6 for j in joints.values())  # wrist-relative


def test_bad_training_inputs_are_clear_errors(small_data, tmp_path):
    empty = tmp_path / "empty"
    (empty / "annotation" / "manual").mkdir(parents=True)
    for split in ("train", "val"):
        annotation_path(empty, split).write_text("{}")
    with pytest.raises(InputError, match="the train split is empty"):
        train(TrainOptions("lifter", empty, tmp_path / "out", progress=False))
    lifter = train(
        TrainOptions("lifter", small_data, tmp_path / "lift", epochs=1, batch_size=8, progress=False)
    )
    with pytest.raises(InputError, match="a lifter checkpoint, not potter"):
        train(TrainOptions("potter", small_data, tmp_path / "p", pretrained=lifter.best, progress=False))
    assert load_checkpoint(lifter.best).name == "lifter"
