"""The lifter, the registry, checkpoints (ours and official), crops and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_pose_core.egoexo.constants import official_joint_stats
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.crop import BOX_SCALE, CropWindow, box_is_usable, normalize_crop, warp_crop
from hand_pose_core.models.checkpoints import build_model, load_checkpoint, save_checkpoint
from hand_pose_core.models.lifter import LifterConfig, PoseLifter
from hand_pose_core.models.normalization import JointNormalizer, KeypointNormalizer
from hand_pose_core.models.potter import PotterConfig, PotterHand
from hand_pose_core.runtime.torch_engine import TorchEngine


def test_lifter_has_the_reference_size():
    assert sum(p.numel() for p in build_model("lifter").parameters()) == 35_107


def test_lifter_ignores_joints_without_keypoints():
    torch.manual_seed(0)
    model = PoseLifter(LifterConfig()).eval()
    keypoints = torch.randn(4, 21, 2)
    present = torch.ones(4, 21, dtype=torch.bool)
    present[:, [3, 8, 20]] = False
    before = model(keypoints, present)
    with torch.no_grad():
        model.position[:, [3, 8, 20]] += 5.0  # anything about an absent joint...
    keypoints[:, [3, 8, 20]] = 100.0
    after = model(keypoints, present)
    torch.testing.assert_close(after[present], before[present])  # ...cannot reach a present one
    assert torch.isfinite(model(keypoints, torch.zeros(4, 21, dtype=torch.bool))).all()


def test_build_model_defaults_and_bad_names():
    assert build_model("potter").config == PotterConfig()
    assert build_model("lifter", depth=2).config.depth == 2
    with pytest.raises(InputError, match="model 'mano'"):
        build_model("mano")
    with pytest.raises(InputError, match="unknown LifterConfig option"):
        build_model("lifter", width=3)


def _normalizer() -> JointNormalizer:
    return JointNormalizer(*official_joint_stats())


def test_our_checkpoint_rebuilds_the_model_and_its_normalisation(tmp_path):
    model = build_model("lifter", depth=2, dim=16, heads=4, mlp_dim=32)
    inputs = KeypointNormalizer(np.array([300.0, 250.0]), np.array([60.0, 50.0]))
    path = save_checkpoint(model, tmp_path / "lifter.pt", targets=_normalizer(), inputs=inputs, epoch=3)
    loaded = load_checkpoint(path)
    assert loaded.name == "lifter" and not loaded.official and loaded.meta["epoch"] == 3
    assert loaded.model.config == model.config and not loaded.model.training
    np.testing.assert_array_equal(loaded.inputs.mean, inputs.mean)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value)
    keypoints, present = torch.randn(2, 21, 2), torch.ones(2, 21, dtype=torch.bool)
    expected = _normalizer().denormalize(model.eval()(keypoints, present).detach().double().numpy())
    predicted = TorchEngine(loaded).infer((keypoints.numpy(), present.numpy()))
    np.testing.assert_allclose(predicted, expected, atol=1e-6)  # 1 micrometre


def test_official_checkpoints_load_in_every_wrapping(tmp_path):
    weights = PotterHand(PotterConfig()).state_dict()
    variants = {
        "raw": weights,
        "nested": {"epoch": 70, "state_dict": weights, "optimizer_state_dict": {}, "val_loss": 0.4},
        "module": {"state_dict": {f"module.{k}": v for k, v in weights.items()}},
    }
    for name, payload in variants.items():
        torch.save(payload, tmp_path / f"{name}.pth")
        loaded = load_checkpoint(tmp_path / f"{name}.pth")
        assert loaded.official and loaded.name == "potter"
        np.testing.assert_array_equal(loaded.targets.mean, official_joint_stats()[0])
        torch.testing.assert_close(
            loaded.model.state_dict()["final_layer.weight"], weights["final_layer.weight"]
        )


def test_a_mismatching_checkpoint_lists_missing_and_unexpected_keys(tmp_path):
    weights = PotterHand(PotterConfig()).state_dict()
    weights.pop("final_layer.weight")
    weights["extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": weights}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match=r"1 missing: final_layer.weight; 1 unexpected: extra.weight"):
        load_checkpoint(tmp_path / "bad.pth")
    torch.save(build_model("lifter").state_dict(), tmp_path / "lifter_raw.pth")
    with pytest.raises(InputError, match=r"lifter_raw.pth \(read as an official POTTER hand checkpoint\)"):
        load_checkpoint(tmp_path / "lifter_raw.pth")


def test_a_truncated_or_missing_checkpoint_names_the_path(tmp_path):
    path = save_checkpoint(build_model("lifter"), tmp_path / "ok.pt", targets=_normalizer())
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match=rf"{truncated}: not a readable checkpoint"):
        load_checkpoint(truncated)
    with pytest.raises(InputError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "absent.pt")


def test_crop_window_follows_the_baseline_rule():
    window = CropWindow.from_box(np.array([100.0, 200.0, 180.0, 240.0]))
    np.testing.assert_allclose(window.centre, [140.0, 220.0])
    assert window.side == pytest.approx(80.0 * BOX_SCALE)
    corners = window.to_crop(np.array([[140.0 - 50.0, 220.0 - 50.0], [140.0, 220.0]]), 224)
    np.testing.assert_allclose(corners, [[0.0, 0.0], [112.0, 112.0]], atol=1e-9)
    np.testing.assert_allclose(window.to_image(corners, 224), [[90.0, 170.0], [140.0, 220.0]])
    assert box_is_usable(np.array([5.0, 5.0, 5.0, 20.0]), 512, 512) == "box of zero size"
    assert box_is_usable(np.array([600.0, 5.0, 700.0, 20.0]), 512, 512) == "box outside the image"
    assert box_is_usable(None, 512, 512) == "no box"
    assert box_is_usable(np.array([0.0, 0.0, 10.0, 10.0]), 512, 512) is None


def test_warp_samples_bilinearly_and_pads_with_zeros():
    image = np.arange(20 * 30 * 3, dtype=np.float64).reshape(20, 30, 3).astype(np.uint8)
    same = warp_crop(image, CropWindow(np.array([15.0, 10.0]), 20.0), 20)
    np.testing.assert_array_equal(same, image[:, 5:25])  # a window of its own size copies pixels
    half = warp_crop(image, CropWindow(np.array([15.0, 10.0]), 10.0), 20)
    np.testing.assert_allclose(
        half[1, 1],
        (image[5, 10].astype(float) + image[5, 11]) / 2 * 0.5
        + (image[6, 10].astype(float) + image[6, 11]) / 2 * 0.5,
    )
    outside = warp_crop(image, CropWindow(np.array([100.0, 100.0]), 10.0), 8)
    assert not outside.any()
    normalised = normalize_crop(np.full((4, 4, 3), 255.0 * 0.485, np.float32))
    assert normalised.shape == (3, 4, 4) and abs(normalised[0]).max() < 1e-6


def test_joint_normalisation_round_trips_and_matches_the_baseline_formula():
    normalizer = _normalizer()
    relative = np.random.default_rng(0).normal(0, 0.05, size=(5, 21, 3))
    relative[:, 0] = 0.0
    values = normalizer.normalize(relative)
    np.testing.assert_allclose(
        values[:, 1:], (relative[:, 1:] * 1000 - normalizer.mean[1:]) / (normalizer.std[1:] + 1e-8)
    )
    np.testing.assert_allclose(normalizer.denormalize(values), relative, atol=1e-12)
    assert JointNormalizer.from_dict(normalizer.to_dict()).mean.tolist() == normalizer.mean.tolist()
