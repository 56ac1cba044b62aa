"""The PyTorch CUDA engine on the CPU where torch allows it (FP16 and BF16 parity, the weights read back
from the bundled ONNX files, the inputs cut on the engine's device against the host's, the live frame on
it), `auto`'s order with each runtime made usable in turn, and on a GPU the graphs against eager."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from conftest import DATA_DIR

from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import PinholeCamera, Turn
from hand_pose_core.geometry.crop import CropWindow, crop_input, mirror_crop, warp_crop
from hand_pose_core.live.device_frames import DeviceFrame, DeviceImage, remap
from hand_pose_core.live.hand_landmarker import HandLandmarker
from hand_pose_core.live.palms import letterbox_input, letterbox_warp
from hand_pose_core.live.photos import default_focal, read_picture
from hand_pose_core.live.pipeline import GivenHand, HandPosePipeline, PipelineConfig
from hand_pose_core.live.regions import RotatedRect, crop_region, region_warp
from hand_pose_core.models.checkpoints import LoadedModel, build_model, inference_form
from hand_pose_core.models.normalization import JointNormalizer
from hand_pose_core.runtime import engines
from hand_pose_core.runtime.bundled import bundled_model
from hand_pose_core.runtime.card import ModelCard
from hand_pose_core.runtime.engines import OnnxRuntimeEngine, choose_backend, load_engine
from hand_pose_core.runtime.export import parity_error
from hand_pose_core.runtime.onnx_weights import module_from_onnx
from hand_pose_core.runtime.torch_cuda import TorchCudaEngine

NO_CUDA = "no CUDA GPU here: graphs, pinned buffers and compile run only on CUDA"


def onnx_and_torch(name: str, precision: str = "fp32") -> tuple[OnnxRuntimeEngine, TorchCudaEngine]:
    reference = OnnxRuntimeEngine(bundled_model(name), threads=2)
    module, card = module_from_onnx(bundled_model(name), reference)
    return reference, TorchCudaEngine(module, card, device="cpu", precision=precision)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return read_picture(DATA_DIR / "real" / "mp_call_two_hands.jpg")


def test_the_bundled_weights_read_back_reproduce_onnxruntime_and_fp16_stays_within_the_aims():
    """FP16 is the default because BF16's 8-bit mantissa misses the aims (about 1.3 mm, 1.5 px here)."""
    for name, aim in (("lifter", 1.0), ("detector", 0.5)):
        reference, fp32 = onnx_and_torch(name)
        module, card = fp32.forward.module, fp32.card
        assert parity_error(fp32, reference) <= 0.01
        half = {p: TorchCudaEngine(module, card, device="cpu", precision=p) for p in ("fp16", "bf16")}
        errors = {p: parity_error(engine, reference) for p, engine in half.items()}
        assert errors["fp16"] <= aim < errors["bf16"], (name, errors)


def test_potter_files_are_refused_with_the_reason(tmp_path):
    with pytest.raises(InputError, match="folded them into other constants"):
        module_from_onnx(bundled_model("potter"), OnnxRuntimeEngine(bundled_model("potter"), threads=1))


def test_the_device_remap_is_opencvs_bit_for_bit():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    positions = np.stack([rng.integers(-3, 62, (40, 40)), rng.integers(-3, 52, (40, 40))], -1).astype(
        np.int16
    )
    fractions = rng.integers(0, 1024, (40, 40)).astype(np.uint16)
    fractions[:5] = 0  # whole-pixel positions: one weight of the full 2^15
    for border in (cv2.BORDER_CONSTANT, cv2.BORDER_REPLICATE):
        expected = cv2.remap(image, positions, fractions, cv2.INTER_LINEAR, borderMode=border)
        assert np.array_equal(remap(torch.from_numpy(image), positions, fractions, border).numpy(), expected)


def test_mediapipes_inputs_cut_on_the_device_are_the_hosts(photo):
    height, width = photo.shape[:2]
    on_device = DeviceImage.upload(photo, torch.device("cpu"))
    letterbox, _ = letterbox_warp(width, height)
    regions = [
        RotatedRect(0.4, 0.5, 0.3, 0.4, 0.7),
        RotatedRect(0.95, 0.1, 0.5, 0.2, -2.0),
    ]  # one over the edge
    inputs = on_device.squares([letterbox]).numpy()
    expected = letterbox_input(photo)[0].transpose(2, 0, 1)[None] * np.float32(1 / 255)
    assert np.array_equal(inputs, expected)
    crops = on_device.squares([region_warp(r, width, height, 224) for r in regions]).numpy()
    expected = np.stack([crop_region(photo, r, 224).transpose(2, 0, 1) for r in regions]) * np.float32(
        1 / 255
    )
    assert np.array_equal(crops, expected)


def test_potters_crops_cut_on_the_device_are_the_hosts(photo):
    turn = Turn("landscape", "portrait")
    turned = turn.image(photo)
    on_device = DeviceFrame(photo, torch.device("cpu")).turned(turn)
    windows = [CropWindow(np.array([200.5, 150.25]), 180.0), CropWindow(np.array([-20.0, 30.0]), 90.0)]
    crops = on_device.crops(windows, 64, [False, True], events=False).numpy()
    expected = [
        crop_input(warp_crop(turned, windows[0], 64)),
        crop_input(mirror_crop(warp_crop(turned, windows[1], 64))),
    ]
    assert np.abs(crops - np.stack(expected)).max() <= 1e-5


def test_the_live_frame_on_torch_engines_finds_the_hands_onnxruntime_finds(photo):
    height, width = photo.shape[:2]
    camera = PinholeCamera.linear(width, height, default_focal(width, height))
    results = {}
    pairs = [onnx_and_torch(name) for name in ("palm_detector_lite", "hand_landmarks_lite", "lifter")]
    for kind in ("onnx", "torch"):
        chosen = [pair[0] if kind == "onnx" else pair[1] for pair in pairs]
        hands = HandLandmarker(chosen[0], chosen[1])
        pipeline = HandPosePipeline(chosen[2], camera, None, PipelineConfig(orientation="portrait"), hands)
        assert (pipeline.tensor_device is not None) == (kind == "torch")
        results[kind] = sorted(pipeline.process(photo).hands, key=lambda h: h.side)
    assert [h.side for h in results["torch"]] == [h.side for h in results["onnx"]] == ["left", "right"]
    for ours, theirs in zip(results["torch"], results["onnx"], strict=True):
        assert np.abs(ours.keypoints - theirs.keypoints).max() <= 0.05
        assert np.abs(ours.camera - theirs.camera).max() <= 1e-4


def test_potter_on_the_device_path_predicts_what_the_host_path_does(photo):
    torch.manual_seed(0)
    module = inference_form(
        build_model(
            "potter",
            image_size=64,
            embed_dims=(32, 64, 96, 128),
            layers=(1, 1, 1, 1),
            hr_depths=(1, 1, 1),
            head_channels=64,
            pose_hidden=128,
        )
    )
    card = ModelCard.of(LoadedModel("potter", module, JointNormalizer.official(), mirror_left=True))
    on_device = TorchCudaEngine(module, card, device="cpu", precision="fp32")
    on_host = copy.copy(on_device)
    on_host.tensor_device = None
    height, width = photo.shape[:2]
    camera = PinholeCamera.linear(width, height, default_focal(width, height))
    given = [
        GivenHand("left", np.array([100.0, 80.0, 260.0, 240.0])),
        GivenHand("right", np.array([300.0, 50.0, 420.0, 200.0])),
    ]
    predicted = {}
    for name, engine in (("device", on_device), ("host", on_host)):
        pipeline = HandPosePipeline(engine, camera, None, PipelineConfig(localisation="given"))
        predicted[name] = np.stack([h.relative for h in pipeline.process(photo, given=given).hands])
    assert np.abs(predicted["device"] - predicted["host"]).max() <= 1e-6


@pytest.mark.parametrize(
    ("usable", "expected"),
    [
        ({"tensorrt", "onnxruntime", "torch"}, "tensorrt"),
        ({"onnxruntime", "torch"}, "onnxruntime"),
        ({"torch"}, "torch-cuda"),
        (set(), "onnxruntime"),
    ],
)
def test_auto_takes_tensorrt_then_onnxruntime_cuda_then_torch_cuda_then_the_cpu(
    monkeypatch, tmp_path, usable, expected
):
    for name, key in (
        ("tensorrt_unavailable", "tensorrt"),
        ("onnxruntime_cuda_unavailable", "onnxruntime"),
        ("torch_cuda_unavailable", "torch"),
    ):
        monkeypatch.setattr(engines, name, lambda key=key: None if key in usable else f"no {key} here")
    backend, why = choose_backend(tmp_path / "m.onnx")
    assert backend == expected
    if not usable:
        assert why.startswith("on the CPU") and all(
            f"no {k} here" in why for k in ("tensorrt", "onnxruntime", "torch")
        )
    assert choose_backend(tmp_path / "m.pt")[0] == ("torch-cuda" if "torch" in usable else "torch")


def test_without_a_gpu_auto_says_so_and_torch_cuda_is_refused(tmp_path):
    backend, why = choose_backend(bundled_model("lifter"))
    if engines.torch_cuda_unavailable() is not None:
        assert backend == "onnxruntime" and "torch-cuda: " in why
        with pytest.raises(InputError, match="needs CUDA"):
            load_engine(bundled_model("lifter"), "torch-cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_graphs_give_eagers_outputs_for_host_and_device_inputs():
    reference, eager = onnx_and_torch("hand_landmarks")
    module, card = eager.forward.module, eager.card
    graphed = TorchCudaEngine(module, card, precision="fp32", batch_sizes=(2,))
    inputs = np.random.default_rng(0).random((3, 3, 224, 224), dtype=np.float32)
    expected = reference.infer(inputs)
    assert np.abs(graphed.infer(inputs) - expected).max() <= 1e-3  # chunks of 2, the last padded
    assert np.abs(graphed.infer_tensors(torch.from_numpy(inputs).cuda()) - expected).max() <= 1e-3


def test_the_device_script_runs_end_to_end_on_the_cpu(tmp_path):
    """The dry run of bench/device.py (no graphs, FP32, few calls): everything but CUDA works."""
    script = DATA_DIR.parent / "bench" / "device.py"
    command = [sys.executable, str(script), "--device", "cpu", "--quick", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "device.json").read_text())
    assert set(report["parity"]) == {
        "palm_detector",
        "hand_landmarks",
        "lifter",
        "detector",
        "potter_tiny",
        "potter_official",
    }
    assert all(result["meets"] for engines in report["parity"].values() for result in engines.values())
    assert {f["hands_found"]["eager fp32"] for f in report["live_frame"].values()} == {1, 2}
    assert "| official-size POTTER |" in (tmp_path / "device.md").read_text()
