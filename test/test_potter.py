"""POTTER hand model: the reference state dict, the golden output, ImageNet weight loading, small configs."""

from __future__ import annotations

import ast
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import DATA_DIR

from hand_pose_core.models.checkpoints import load_cls_weights
from hand_pose_core.models.layers import fuse_modules
from hand_pose_core.models.potter import (
    PatchSplit,
    PoolAttnBlock,
    PoolingAttention,
    PotterConfig,
    PotterHand,
    SubPixelSplit,
)

REFERENCE_DIR = DATA_DIR / "reference"
BASIC = "poolattnformer_pose.poolattn_cls."
CLASSIFIER_ONLY = ["head.bias", "head.weight", "norm.bias", "norm.weight"]


def read_shapes(name: str) -> list[tuple[str, tuple[int, ...]]]:
    """(tensor name, shape) rows of a reference TSV, in file order."""
    rows = []
    for line in (REFERENCE_DIR / name).read_text().splitlines():
        if line.strip():
            tensor_name, shape = line.split("\t")
            rows.append((tensor_name, tuple(ast.literal_eval(shape))))
    return rows


def recipe_state_dict(rows: list[tuple[str, tuple[int, ...]]]) -> dict[str, torch.Tensor]:
    """The golden file's weights: tensor i from default_rng(i), norm scales around 1."""
    weights = {}
    for i, (name, shape) in enumerate(rows):
        values = np.random.default_rng(i).standard_normal(int(np.prod(shape))) * 0.05
        if len(shape) == 1 and name.endswith(".weight"):
            values = 1.0 + values
        weights[name] = torch.from_numpy(values.reshape(shape).astype(np.float32))
    return weights


def random_cls_state_dict(seed: int = 3) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    rows = read_shapes("potter_cls_s12_state_dict.tsv")
    return {name: torch.randn(shape, generator=generator) for name, shape in rows}


@pytest.fixture(scope="module")
def official() -> PotterHand:
    torch.manual_seed(0)
    return PotterHand()


@pytest.fixture(scope="module")
def hand_rows() -> list[tuple[str, tuple[int, ...]]]:
    return read_shapes("potter_hand_state_dict.tsv")


def snapshot(model: PotterHand) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


# ---------------------------------------------------------------------------------------------------
# The official configuration


def test_default_config_is_the_official_one():
    config = PotterConfig()
    assert config.image_size == 224 and config.feature_size == 56 and config.depth_bins == 56
    assert config.embed_dims == (64, 128, 320, 512) and config.layers == (2, 2, 6, 2)
    assert config.hr_depths == (2, 2, 4) and config.hr_mlp_ratios == (2.0, 2.0, 4.0)
    assert config.head_channels == 256 and config.num_joints == 21
    assert PotterHand().config == config


def test_state_dict_matches_reference_exactly(official, hand_rows):
    state = official.state_dict()
    assert len(hand_rows) == 416
    assert {name: tuple(t.shape) for name, t in state.items()} == dict(hand_rows)
    assert sum(p.numel() for p in official.parameters()) == 14_572_363
    assert list(official.buffers()) == []
    # Same order as the reference too (not needed for loading, but makes diffs readable).
    assert list(state) == [name for name, _ in hand_rows]


def test_golden_output(official, hand_rows):
    golden = json.loads((REFERENCE_DIR / "potter_hand_golden.json").read_text())
    expected = golden["output"]
    expected = np.asarray(json.loads(expected) if isinstance(expected, str) else expected, dtype=np.float64)
    official.load_state_dict(recipe_state_dict(hand_rows), strict=True)
    official.eval()
    images = torch.from_numpy(np.random.default_rng(12345).random((2, 3, 224, 224)).astype(np.float32))

    captured = {}
    handle = official.poolattnformer_pose.norm0.register_forward_hook(
        lambda module, inputs, output: captured.setdefault("hr", output.detach())
    )
    try:
        with torch.no_grad():
            output = official(images)
    finally:
        handle.remove()

    assert list(output.shape) == golden["output_shape"] == [2, 21, 3]
    np.testing.assert_allclose(output.numpy(), expected, rtol=0, atol=1e-4)
    hr = captured["hr"]
    assert list(hr.shape) == golden["hr_feature_shape"]
    np.testing.assert_allclose(hr.mean(dim=(1, 2, 3)).numpy(), golden["hr_feature_mean"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(hr.abs().mean(dim=(1, 2, 3)).numpy(), golden["hr_feature_abs_mean"], atol=1e-5)


# ---------------------------------------------------------------------------------------------------
# ImageNet weights for the basic stream


@pytest.mark.parametrize("wrapping", ["plain", "module_prefix", "nested_state_dict"])
def test_load_cls_weights(official, wrapping):
    cls_weights = random_cls_state_dict()
    checkpoint: dict = cls_weights
    if wrapping in ("module_prefix", "nested_state_dict"):
        checkpoint = {f"module.{name}": tensor for name, tensor in cls_weights.items()}
    if wrapping == "nested_state_dict":
        checkpoint = {"epoch": 300, "state_dict": checkpoint, "arch": "poolattnformer_s12"}
    before = snapshot(official)

    loaded, dropped = load_cls_weights(official, checkpoint)

    assert len(loaded) == 224 and len(set(loaded)) == 224
    assert sorted(dropped) == CLASSIFIER_ONLY
    after = official.state_dict()
    for name in loaded:
        assert torch.equal(after[BASIC + name], cls_weights[name]), name
    # Everything else (HR stream, forked norms, head) is untouched.
    loaded_full = {BASIC + name for name in loaded}
    untouched = [name for name in after if name not in loaded_full]
    assert len(untouched) == 416 - 224
    assert any(name.startswith(BASIC + "norm0") for name in untouched)
    for name in untouched:
        assert torch.equal(after[name], before[name]), name


def test_load_cls_weights_rejects_wrong_shape_without_loading(official):
    checkpoint = random_cls_state_dict()
    checkpoint["network.4.2.mlp.fc1.weight"] = torch.zeros(1280, 320, 3, 3)
    before = snapshot(official)
    with pytest.raises(ValueError, match=r"network\.4\.2\.mlp\.fc1\.weight"):
        load_cls_weights(official, checkpoint)
    after = official.state_dict()
    assert all(torch.equal(after[name], before[name]) for name in after)


def test_load_cls_weights_rejects_missing_tensor(official):
    checkpoint = random_cls_state_dict()
    del checkpoint["network.6.1.layer_scale_2"]
    with pytest.raises(ValueError, match=r"missing.*network\.6\.1\.layer_scale_2"):
        load_cls_weights(official, checkpoint)


def test_load_cls_weights_into_a_narrower_model_fails_loudly():
    with pytest.raises(ValueError, match=r"patch_embed\.proj\.weight"):
        load_cls_weights(PotterHand(PotterConfig.tiny()), random_cls_state_dict())


# ---------------------------------------------------------------------------------------------------
# Small configurations


def literal_mixer(mixer: PoolingAttention, x: torch.Tensor) -> torch.Tensor:
    """Pooling attention written with adaptive pooling, as models.md describes it."""
    b, c, h, w = x.shape
    patch = F.adaptive_avg_pool2d(x, (h, 4)) @ F.adaptive_avg_pool2d(x, (4, w))
    tokens = x.flatten(2).transpose(1, 2).reshape(b, h * w, 32, c // 32)
    embed = F.adaptive_avg_pool2d(tokens, (32, 4)) @ F.adaptive_avg_pool2d(tokens, (4, c // 32))
    embed = embed.reshape(b, h * w, c).transpose(1, 2).reshape(b, c, h, w)
    return mixer.proj2(mixer.norm(mixer.proj0(patch) + mixer.proj1(embed)))


@pytest.mark.parametrize(("channels", "size"), [(32, 2), (64, 7), (96, 5), (320, 14), (128, 8)])
def test_pooling_attention_equals_adaptive_pooling(channels, size):
    # Covers pooled axes shorter than, not divisible by, and divisible by the 4 bins.
    torch.manual_seed(channels + size)
    mixer = PoolingAttention(channels)
    x = torch.randn(2, channels, size, size + 1)
    with torch.no_grad():
        np.testing.assert_allclose(mixer(x).numpy(), literal_mixer(mixer, x).numpy(), rtol=1e-5, atol=1e-5)


def test_tiny_config_forward_and_gradients():
    config = PotterConfig.tiny()
    assert config.image_size == 64 and config.depth_bins == 16
    torch.manual_seed(1)
    model = PotterHand(config).train()
    images = torch.randn(2, 3, config.image_size, config.image_size)
    output = model(images)
    assert output.shape == (2, 21, 3) and torch.isfinite(output).all()

    output.square().mean().backward()
    for name, parameter in model.named_parameters():
        if name.startswith("poolattnformer_pose.norm3."):
            assert parameter.grad is None, name  # present in the checkpoint, unused in forward
        else:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_folded_head_equals_the_reference_head():
    torch.manual_seed(2)
    model = PotterHand(PotterConfig.tiny()).eval()
    side = model.config.feature_size
    with torch.no_grad():
        for parameter in model.parameters():  # move away from the default init (zero biases, unit scales)
            parameter.add_(0.1 * torch.randn_like(parameter))
        feature = torch.randn(3, 32, side, side)
        expected = model.forward_head_reference(feature).numpy()
        np.testing.assert_allclose(model.forward_head(feature).numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm", [True, False])
@pytest.mark.parametrize(("height", "width"), [(1, 1), (5, 7), (4, 4)])
def test_sub_pixel_split_equals_upsampling_then_convolving(norm, height, width):
    torch.manual_seed(height * width)
    split = PatchSplit(24, 16, norm=norm).eval()
    x = torch.randn(2, 24, height, width)
    with torch.no_grad():
        expected = split(x).numpy()
        np.testing.assert_allclose(SubPixelSplit(split)(x).numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("config", [PotterConfig.tiny(), PotterConfig()], ids=["tiny", "official"])
def test_inference_form_equals_the_model(config):
    torch.manual_seed(3)
    model = PotterHand(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # layer scales and norm affines far from 1e-5, 1 and 0
            parameter.add_(0.1 * torch.randn_like(parameter))
    images = torch.randn(2, 3, config.image_size, config.image_size)
    fused = fuse_modules(model)
    assert not any(isinstance(m, (PoolAttnBlock, PatchSplit)) for m in fused.modules())
    assert not any("layer_scale" in name for name, _ in fused.named_parameters())
    with torch.no_grad():
        expected = model(images).numpy()
        np.testing.assert_allclose(fused(images).numpy(), expected, rtol=1e-5, atol=2e-5)
    assert any(isinstance(m, PoolAttnBlock) for m in model.modules())  # the model itself is unchanged


def test_small_custom_config():
    config = PotterConfig(
        image_size=64,
        embed_dims=(32, 32, 64, 64),
        layers=(1, 0, 1, 1),
        hr_depths=(0, 1, 1),
        head_channels=32,
        pose_hidden=16,
        num_joints=5,
        drop_path_rate=0.2,
    )
    model = PotterHand(config)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5, 3)
    assert model.final_layer.out_channels == 5 * 16
    with pytest.raises(ValueError, match="expects images"):
        model(torch.randn(1, 3, 96, 96))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"embed_dims": (32, 64, 100, 128)}, r"multiple of 32.*100"),
        ({"embed_dims": (48, 64, 96, 128)}, r"multiple of 32.*48"),
        ({"embed_dims": (32, 64, 96)}, "4 values"),
        ({"hr_depths": (1, 1)}, "3 values"),
        ({"image_size": 100}, "image_size"),
        ({"drop_path_rate": 1.0}, "drop_path_rate"),
    ],
)
def test_invalid_config_raises(overrides, message):
    with pytest.raises(ValueError, match=message):
        PotterConfig(**overrides)


def test_default_regularisation_is_the_official_configuration():
    """DROP_RATE and DROP_PATH_RATE of potter_pose_3d_ego4d.yaml (0.1 each); stochastic depth ramps over
    the basic stream's 12 blocks, then restarts in each group of the high-resolution stream, as the
    official code gives them (torch.linspace(0, 0.1, depth) per group)."""
    model = PotterHand(PotterConfig())
    stream = model.poolattnformer_pose
    basic = [block.drop_path.drop_prob for stage in stream.poolattn_cls.network[::2] for block in stage]
    official_basic = [0.1 * i / 11 for i in range(12)]
    official_groups = {"Block1": [0.0, 0.1], "Block2": [0.0, 0.1], "Block3": [0.0, 0.1 / 3, 0.2 / 3, 0.1]}
    np.testing.assert_allclose(basic, official_basic, atol=1e-12)
    for name, rates in official_groups.items():
        blocks = getattr(stream.stage1, name)
        np.testing.assert_allclose([b.drop_path.drop_prob for b in blocks], rates, atol=1e-12)
    dropouts = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert dropouts == {0.1}
    assert PotterConfig.tiny().drop_rate == PotterConfig.tiny().drop_path_rate == 0.0


def test_drop_rates_act_in_training_only():
    torch.manual_seed(0)
    model = PotterHand(replace(PotterConfig.tiny(), drop_rate=0.1, drop_path_rate=0.1))
    images = torch.randn(2, 3, 64, 64)
    model.eval()
    assert torch.equal(model(images), model(images))
    model.train()
    assert not torch.equal(model(images), model(images))
