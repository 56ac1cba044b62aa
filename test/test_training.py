"""Training and inference on synthetic data: evidence that the models learn (the lifter trained here, the
bundled small POTTER on unseen hands), checkpoints, resume, `hand-pose infer` scored by `hand-pose eval`,
and counted skips for unusable hands."""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DATA_DIR, synthetic_data

import hand_pose_core
from hand_pose_core.egoexo.baselines import mean_pose, predict_mean_pose
from hand_pose_core.egoexo.formats import annotation_path, image_path, load_annotations, load_predictions
from hand_pose_core.egoexo.metrics import evaluate
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
from hand_pose_core.learn.datasets import CropDataset, detector_like_keypoints, select_hands, target_joints
from hand_pose_core.learn.training import TrainOptions, autocast_type, learning_rate_schedule, train
from hand_pose_core.live.offline import annotated_frames, run_pipeline
from hand_pose_core.live.pipeline import HandPosePipeline, PipelineConfig
from hand_pose_core.models.checkpoints import load_checkpoint
from hand_pose_core.models.normalization import JointNormalizer
from hand_pose_core.models.potter import PotterConfig, PotterHand
from hand_pose_core.runtime.bundled import bundled_model
from hand_pose_core.runtime.engines import load_engine
from hand_pose_core.runtime.torch_engine import TorchEngine


@pytest.fixture(scope="module")
def learning_data(tmp_path_factory):
    """Many short takes: varied subjects and poses (about 1,250 training hands)."""
    return synthetic_data(tmp_path_factory, "learning", takes=60, frames=15, seed=2)


@pytest.fixture(scope="module")
def unseen_data(tmp_path_factory):
    """Hands the bundled models never trained on (they trained on seed 5): 300 takes of 2 frames."""
    return synthetic_data(tmp_path_factory, "unseen", takes=300, frames=2, seed=7)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    return synthetic_data(tmp_path_factory, "small", takes=3, frames=4, seed=3)


@pytest.fixture(scope="module")
def distributed_data(tmp_path_factory):
    """Enough training hands for several steps of batch 8 (8 takes of 4 frames)."""
    return synthetic_data(tmp_path_factory, "distributed", takes=8, frames=4, seed=3)


def tiny_potter(data, out, **options):
    """Training options for the small POTTER on a synthetic data set."""
    return TrainOptions(
        "potter",
        data,
        out,
        image_dir=data / "image" / "undistorted",
        model_options=asdict(PotterConfig.tiny()),
        progress=False,
        **options,
    )


def report_learning(name, result, budget):
    best = min(result.history, key=lambda h: h["val_loss"])
    reference = result.mean_pose["val_mpjpe"]
    print(
        f"\n{name}: {budget}: val MPJPE {best['val_mpjpe']:.2f} mm, PA-MPJPE {best['val_pa_mpjpe']:.2f} mm; "
        f"mean pose {reference:.2f} / {result.mean_pose['val_pa_mpjpe']:.2f} mm"
    )
    return best["val_mpjpe"], reference


@pytest.fixture(scope="module")
def trained_lifter(learning_data, tmp_path_factory):
    """The lifter after 60 epochs on `learning_data` with its augmentation (detector-like 2D)."""
    options = TrainOptions(
        "lifter",
        learning_data,
        tmp_path_factory.mktemp("lifter"),
        epochs=60,
        lr=1e-3,
        augment=True,
        progress=False,
    )
    return train(options)


def detector_like(annotations, seed: int = 0):
    """A copy of the annotations whose 2D keypoints are as a real detector gives them (seeded per hand)."""
    noisy = copy.deepcopy(annotations)
    for index, record in enumerate(noisy.hands()):
        record.hand.joints_2d = detector_like_keypoints(
            record.hand.joints_2d, np.random.default_rng([seed, index])
        )
    return noisy


def lifter_scores(checkpoint, inputs, truth) -> tuple[float, float]:
    """MPJPE and PA-MPJPE (mm) of the lifter on the 2D keypoints of `inputs`, against the 3D of `truth`."""
    pipeline = HandPosePipeline(
        TorchEngine(load_checkpoint(checkpoint)), BENCHMARK_CAMERA, config=PipelineConfig("given")
    )
    run = run_pipeline(pipeline, annotated_frames(inputs, None, "val", False), progress=False)
    report = evaluate(run.predictions, truth, offset=True, allow_missing=True)
    return report["mpjpe"], report["pa_mpjpe"]


@pytest.mark.slow
def test_lifter_beats_the_mean_pose_by_half(trained_lifter):
    mpjpe, reference = report_learning("lifter", trained_lifter, "60 epochs")
    assert mpjpe <= 0.5 * reference


@pytest.mark.slow
def test_lifter_copes_with_a_real_detectors_noisy_and_missing_keypoints(learning_data, trained_lifter):
    """Trained on 2D keypoints as a real detector gives them (its augmentation), the lifter beats the mean
    pose clearly on such keypoints, and keeps the articulation (PA-MPJPE) at least as well as the mean
    pose. Measured: 25.43 / 12.40 mm against 51.12 / 13.93; trained with the former augmentation (1.5 px
    noise) instead, 30.82 / 18.95."""
    truth = load_annotations(annotation_path(learning_data, "val"))
    noisy = detector_like(truth)
    missing = [np.isnan(record.hand.joints_2d).any(axis=1).sum() for record in noisy.hands()]
    assert np.mean(missing) > np.mean([np.isnan(r.hand.joints_2d).any(axis=1).sum() for r in truth.hands()])
    reference, reference_pa = trained_lifter.mean_pose["val_mpjpe"], trained_lifter.mean_pose["val_pa_mpjpe"]
    mpjpe, pa_mpjpe = lifter_scores(trained_lifter.best, noisy, truth)
    print(
        f"\nlifter on detector-like 2D: MPJPE {mpjpe:.2f}, PA-MPJPE {pa_mpjpe:.2f} mm; "
        f"mean pose {reference:.2f} / {reference_pa:.2f} mm"
    )
    assert mpjpe <= 0.55 * reference
    assert pa_mpjpe <= reference_pa


@pytest.mark.slow
def test_bundled_small_potter_beats_the_mean_pose_by_30_percent_on_unseen_hands(unseen_data):
    """The models issue's aim, held by the bundled small POTTER (`models/potter_tiny_synth.md`: 6 epochs of
    6,720 hands, mirrored left hands, a cosine schedule; about 12 CPU minutes here, so the recipe is not
    re-run by the tests) on validation hands of another seed, predicted as the benchmark predicts them.
    Measured: 31.59 mm against the mean training pose's 48.15 (34 % below; seed 8: 31.31 / 50.57)."""
    train_set, val_set = (load_annotations(annotation_path(unseen_data, split)) for split in ("train", "val"))
    reference = evaluate(predict_mean_pose(mean_pose(train_set), val_set), val_set, offset=True)["mpjpe"]
    engine = load_engine(bundled_model("potter"), "onnxruntime")
    assert engine.card.name == "potter" and engine.card.mirror_left
    pipeline = HandPosePipeline(engine, BENCHMARK_CAMERA, config=PipelineConfig("given"))
    frames = annotated_frames(val_set, unseen_data / "image" / "undistorted", "val", pipeline.needs_image)
    report = evaluate(run_pipeline(pipeline, frames, progress=False).predictions, val_set, offset=True)
    print(f"\nbundled small POTTER, unseen hands: MPJPE {report['mpjpe']:.2f} mm; mean pose {reference:.2f}")
    assert report["num_hands"] == sum(val_set.count_hands().values())
    assert report["mpjpe"] <= 0.7 * reference


def test_cosine_schedule_warms_up_then_decays_to_zero():
    parameter = torch.nn.Parameter(torch.zeros(1))
    rates = {}
    for name in ("constant", "cosine"):
        optimizer = torch.optim.Adam([parameter], lr=1.0)
        scheduler = learning_rate_schedule(optimizer, name, total_steps=1000)
        rates[name] = []
        for _ in range(1000):
            rates[name].append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
    assert rates["constant"] == [1.0] * 1000
    cosine = np.array(rates["cosine"])
    decay = 0.5 * (1 + np.cos(np.pi * np.arange(1000) / 1000))
    np.testing.assert_allclose(cosine, np.minimum(1.0, np.arange(1, 1001) / 100) * decay, rtol=1e-6)
    assert np.all(np.diff(cosine[:100]) > 0) and np.all(np.diff(cosine[100:]) < 0)
    assert cosine[500] == pytest.approx(0.5) and cosine[-1] < 1e-4
    optimizer = torch.optim.Adam([parameter], lr=1.0)
    halfway = learning_rate_schedule(optimizer, "cosine", 1000)
    for _ in range(500):
        optimizer.step()
        halfway.step()
    resumed_optimizer = torch.optim.Adam([parameter], lr=1.0)
    resumed = learning_rate_schedule(resumed_optimizer, "cosine", 1000)
    resumed_optimizer.load_state_dict(optimizer.state_dict())
    resumed.load_state_dict(halfway.state_dict())
    assert resumed_optimizer.param_groups[0]["lr"] == pytest.approx(cosine[500])
    resumed.step()
    assert resumed_optimizer.param_groups[0]["lr"] == pytest.approx(cosine[501])
    with pytest.raises(InputError, match="schedule 'step'"):
        learning_rate_schedule(torch.optim.Adam([parameter]), "step", 10)


def test_targets_keep_the_wrists_own_validity(small_data):
    """The official loss weighs the wrist by its own flag: a wrist the release marks invalid (a real
    number all the same) weighs nothing."""
    hand = copy.deepcopy(next(load_annotations(annotation_path(small_data, "train")).hands()).hand)
    targets = JointNormalizer.official()
    hand.valid_3d[:] = True
    assert target_joints(hand, targets)[1][0] == 1.0
    hand.valid_3d[0] = False
    target, valid = target_joints(hand, targets)
    assert valid[0] == 0.0 and valid[1:].all()
    assert np.isfinite(target).all()


def test_mirrored_left_hands_in_targets_normalisation_and_crops(small_data, tmp_path):
    train_set = load_annotations(annotation_path(small_data, "train"))
    plain, mirrored = JointNormalizer.fit(train_set), JointNormalizer.fit(train_set, mirror_left=True)
    relative = [
        (r.hand.joints_3d - r.hand.joints_3d[0]) * (-1.0 if r.side == "left" else 1.0)
        for r in train_set.hands()
        if r.hand.has_3d
    ]
    y = np.array([np.where(np.isfinite(j[:, 1]), j[:, 1], np.nan) for j in relative]) * 1000.0
    np.testing.assert_allclose(mirrored.mean[1:, 1], np.nanmean(y, axis=0)[1:], atol=1e-6)
    np.testing.assert_allclose(mirrored.mean[:, [0, 2]], plain.mean[:, [0, 2]])

    records = select_hands(train_set, "potter", with_targets=True).records
    root = small_data / "image" / "undistorted"
    ours = CropDataset(records, root, "train", 64, mirrored, mirror_left=True, cache=True)
    theirs = CropDataset(records, root, "train", 64, mirrored)
    sides = set()
    for index, record in enumerate(records):
        sample, reference = ours[index], theirs[index]
        flip = record.side == "left"
        expected = reference["image"].flip(1) if flip else reference["image"]
        assert (sample["image"] - expected).abs().max() < 0.6 / 255 / 0.224  # uint8 rounding of the cache
        joints = mirrored.denormalize(sample["target"].numpy().astype(np.float64))
        truth = record.hand.joints_3d - record.hand.joints_3d[0]
        valid = sample["valid"].numpy() > 0
        np.testing.assert_allclose(joints[valid] * ([1, -1, 1] if flip else 1), truth[valid], atol=1e-6)
        sides.add(record.side)
    assert sides == {"left", "right"}
    moved = tmp_path / "moved"
    root.rename(moved)  # the cached crops no longer need their images
    try:
        assert all(ours[i]["ok"] for i in range(len(records)))
        assert not theirs[0]["ok"]
    finally:
        moved.rename(root)


def test_mirror_left_is_for_potter_and_sticks_to_its_checkpoint(small_data, tmp_path, run_cli):
    code, _, stderr = run_cli("train", "--model", "lifter", "--mirror-left", "--gt-dir", small_data)
    assert code == 2 and "--mirror-left is a POTTER option" in stderr
    lifter = TrainOptions("lifter", small_data, tmp_path / "l", epochs=1, batch_size=8, progress=False)
    plain = tiny_potter(small_data, tmp_path / "p", epochs=1, batch_size=8)
    assert not load_checkpoint(train(lifter).best).mirror_left
    first = train(plain)
    with pytest.raises(InputError, match="trained without --mirror-left"):
        train(replace(plain, out=tmp_path / "q", pretrained=first.best, mirror_left=True))


def test_small_potter_fits_its_training_hands(small_data, tmp_path):
    history = train(tiny_potter(small_data, tmp_path, epochs=30, lr=1e-3, batch_size=8)).history
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]


def test_init_cls_loads_imagenet_weights_into_the_basic_stream(small_data, tmp_path, run_cli, caplog):
    rows = (DATA_DIR / "reference" / "potter_cls_s12_state_dict.tsv").read_text().splitlines()
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


# ------------------------------------------------------------------------------------ distributed training


def torchrun(runs: list[TrainOptions], folder: Path) -> None:
    """Run the trainings one after the other under `torchrun --nproc-per-node 2` on the CPU (gloo)."""
    spec = folder / "runs.json"
    spec.write_text(
        json.dumps([{k: str(v) if isinstance(v, Path) else v for k, v in asdict(r).items()} for r in runs])
    )
    package_root = str(Path(hand_pose_core.__file__).parents[1])  # this checkout's, in the subprocesses too
    paths = [package_root, *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    script = Path(__file__).with_name("torchrun_training.py")
    result = subprocess.run(
        [*command, str(script), str(spec)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]


def checkpoint(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def scores(history: list[dict], *keys: str) -> np.ndarray:
    return np.array([[h[k] for k in keys] for h in history])


@pytest.mark.slow
def test_two_processes_follow_one_with_the_whole_batch_and_resume_continues(distributed_data, tmp_path):
    """Two processes of batch 4 take the data in the order of one process of batch 8 (the distributed
    sampler's share of every batch) and average their gradients: their losses, validation and weights
    follow the one process's within float rounding, for the small POTTER and the lifter. A run stopped
    after an epoch and resumed (optimizer, loss scale, each process's random state for POTTER's dropout
    and drop-path) continues the curve of a run that never stopped, bit for bit. Checkpoints and
    TensorBoard come from rank 0 alone."""
    lifter = TrainOptions("lifter", distributed_data, tmp_path, epochs=2, schedule="cosine", progress=False)
    potter = replace(tiny_potter(distributed_data, tmp_path), epochs=2, schedule="cosine", lr=2e-3)
    dropping = replace(
        potter,
        schedule="constant",
        model_options={**potter.model_options, "drop_rate": 0.1, "drop_path_rate": 0.1},
    )
    torchrun(
        [
            replace(lifter, batch_size=4, out=tmp_path / "lifter2"),
            replace(potter, batch_size=4, out=tmp_path / "potter2"),
            replace(dropping, batch_size=4, out=tmp_path / "whole"),
            replace(dropping, batch_size=4, out=tmp_path / "stopped", epochs=1),
            replace(dropping, batch_size=4, out=tmp_path / "stopped", resume=tmp_path / "stopped/last.pt"),
        ],
        tmp_path,
    )
    keys = ("train_loss", "val_loss", "val_mpjpe", "val_pa_mpjpe")
    for name, options in (("lifter", lifter), ("potter", potter)):
        one = train(replace(options, batch_size=8, out=tmp_path / f"{name}1"))
        two, ours = checkpoint(tmp_path / f"{name}2" / "last.pt"), checkpoint(one.last)
        assert len(two["rng_states"]) == 2
        steps = float(ours["optimizer_state_dict"]["state"][0]["step"])
        assert float(two["optimizer_state_dict"]["state"][0]["step"]) == steps >= 6
        np.testing.assert_allclose(scores(two["history"], *keys), scores(one.history, *keys), rtol=1e-5)
        for key, value in ours["state_dict"].items():
            # Adam scales a gradient of rounding noise up to a whole step: compared as tensors, not
            # elements. The attention key biases change no output, so their gradient is only that noise.
            if not key.endswith("attn.in_proj_bias"):
                difference = torch.linalg.vector_norm(two["state_dict"][key] - value)
                assert difference <= 1e-4 * torch.linalg.vector_norm(value) + 1e-6, key
        events = list((tmp_path / f"{name}2" / "tensorboard").glob("events.out.tfevents.*"))
        assert len(events) == 1
    whole, resumed = checkpoint(tmp_path / "whole" / "last.pt"), checkpoint(tmp_path / "stopped" / "last.pt")
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert scores(resumed["history"], *keys).tolist() == scores(whole["history"], *keys).tolist()
    for key, value in whole["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key
    assert not list(tmp_path.rglob("*.tmp"))


def test_mixed_precision_steps_and_their_defaults(small_data, tmp_path):
    """bf16 autocast, and fp16 with a gradient scaler, train to finite losses close to full precision's
    (both run on the CPU too; `auto` takes bf16 on CUDA only)."""
    options = TrainOptions("lifter", small_data, tmp_path, epochs=1, batch_size=8, progress=False)
    runs = {p: train(replace(options, precision=p, out=tmp_path / p)) for p in ("fp32", "bf16", "fp16")}
    losses = {p: r.history[0]["train_loss"] for p, r in runs.items()}
    for precision in ("bf16", "fp16"):
        assert losses[precision] != losses["fp32"]  # autocast was on
        assert losses[precision] == pytest.approx(losses["fp32"], rel=0.05)
    assert checkpoint(runs["fp16"].last)["scaler_state_dict"]["scale"] > 1.0
    assert checkpoint(runs["bf16"].last)["scaler_state_dict"] == {}
    assert autocast_type("auto", torch.device("cpu")) is None
    assert autocast_type("auto", torch.device("cuda")) is torch.bfloat16
    with pytest.raises(InputError, match="precision 'fp8'"):
        autocast_type("fp8", torch.device("cpu"))
