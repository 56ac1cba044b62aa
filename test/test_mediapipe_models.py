"""MediaPipe Hands' models re-implemented in PyTorch: the same raw outputs as the TFLite interpreter on
the official files, for real photos, from our module and from the shipped ONNX files under ONNX Runtime;
`hand-pose import-mediapipe` re-creates those files from the wheel.

Tolerance: 1e-5 of the output's largest magnitude (at least 1e-5 absolute). The three runtimes sum in
different orders (XNNPACK, PyTorch, MLAS), so float32 rounding piles up over some 60 layers to about
2e-6 of the range: 2.6e-4 on palm box values of about 135 px, 1.5e-4 on landmarks of about 170 px.
A real mistake (a pad on the wrong side, a transposed kernel, a missed activation) is far above it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from ai_edge_litert.interpreter import Interpreter
from torch import nn

from hand_pose_core.atomic import file_sha256
from hand_pose_core.models import hand_landmarks
from hand_pose_core.models.hand_landmarks import HandLandmarkConfig
from hand_pose_core.models.layers import fuse_modules
from hand_pose_core.models.palm_detector import NUM_COORDS, PalmDetectorConfig
from hand_pose_core.models.tflite import (
    OFFICIAL_SHA256,
    hand_landmarks_from_tflite,
    palm_detector_from_tflite,
    read_tflite_signature,
)
from hand_pose_core.runtime.engines import OnnxRuntimeEngine
from hand_pose_core.runtime.export import store_weights_as_fp16

REPO = Path(__file__).resolve().parents[1]
MEDIAPIPE = REPO / "data" / "mediapipe"
SHIPPED = REPO / "hand_pose_ros" / "models"
PHOTOS = sorted((REPO / "data" / "real").glob("*.jpg"))
HAND_CROP = ("mp_rock_one_hand.jpg", (12, 95, 162, 245))  # x0, y0, x1, y1 around the one hand
RELATIVE_TOLERANCE = 1e-5


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, f"unreadable photo: {path}"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def model_inputs(size: int, with_hand_crop: bool) -> np.ndarray:
    """(N, size, size, 3) float32 RGB in [0, 1]: the six photos resized, and optionally a hand crop."""
    images = [read_rgb(path) for path in PHOTOS]
    if with_hand_crop:
        name, (x0, y0, x1, y1) = HAND_CROP
        images.append(read_rgb(REPO / "data" / "real" / name)[y0:y1, x0:x1])
    resized = [cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR) for image in images]
    return np.stack(resized).astype(np.float32) / 255.0


def split_palm(packed: np.ndarray) -> list[np.ndarray]:
    return [packed[..., :NUM_COORDS], packed[..., NUM_COORDS:]]


def split_landmarks(packed: np.ndarray) -> list[np.ndarray]:
    presence, handedness = hand_landmarks.PRESENCE, hand_landmarks.HANDEDNESS
    return [
        packed[:, hand_landmarks.LANDMARKS],
        packed[:, presence : presence + 1],
        packed[:, handedness : handedness + 1],
        packed[:, hand_landmarks.WORLD_LANDMARKS],
    ]


@dataclass(frozen=True)
class Kind:
    loader: Callable[[Path], nn.Module]
    size: int
    split: Callable[[np.ndarray], list[np.ndarray]]
    output_names: tuple[str, ...]
    with_hand_crop: bool


PALM = Kind(palm_detector_from_tflite, 192, split_palm, ("Identity", "Identity_1"), False)
LANDMARK = Kind(
    hand_landmarks_from_tflite,
    224,
    split_landmarks,
    ("Identity", "Identity_1", "Identity_2", "Identity_3"),
    True,
)
MODELS = {
    "palm_detection_full": (PALM, PalmDetectorConfig()),
    "palm_detection_lite": (PALM, PalmDetectorConfig.lite()),
    "hand_landmark_full": (LANDMARK, HandLandmarkConfig()),
    "hand_landmark_lite": (LANDMARK, HandLandmarkConfig.lite()),
}


@dataclass
class Case:
    name: str
    kind: Kind
    model: nn.Module
    inputs: np.ndarray  # NHWC, as TFLite takes them
    reference: list[np.ndarray]  # the interpreter's outputs, in its order, stacked over the inputs
    engine: OnnxRuntimeEngine  # the shipped ONNX file

    @property
    def nchw(self) -> np.ndarray:
        return np.ascontiguousarray(self.inputs.transpose(0, 3, 1, 2))


def interpreter_outputs(path: Path, inputs: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (source,) = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    results = []
    for image in inputs:
        interpreter.set_tensor(source["index"], image[None])
        interpreter.invoke()
        results.append([interpreter.get_tensor(o["index"]).copy() for o in outputs])
    return [o["name"] for o in outputs], [np.concatenate(parts) for parts in zip(*results, strict=True)]


def assert_matches(ours: list[np.ndarray], reference: list[np.ndarray], names: tuple[str, ...]) -> None:
    assert len(ours) == len(reference) == len(names)
    for name, mine, theirs in zip(names, ours, reference, strict=True):
        assert mine.shape == theirs.shape, f"{name}: shape {mine.shape}, TFLite {theirs.shape}"
        tolerance = RELATIVE_TOLERANCE * max(1.0, float(np.abs(theirs).max()))
        difference = float(np.abs(mine - theirs).max())
        assert difference <= tolerance, f"{name}: max |diff| {difference:.3g} > {tolerance:.3g}"


@pytest.fixture(scope="module", params=list(MODELS))
def case(request) -> Case:
    """One model: loaded, run by the interpreter on the real inputs, and its shipped ONNX file."""
    name = request.param
    kind, _ = MODELS[name]
    path = MEDIAPIPE / f"{name}.tflite"
    inputs = model_inputs(kind.size, kind.with_hand_crop)
    names, reference = interpreter_outputs(path, inputs)
    assert tuple(names) == kind.output_names  # the interpreter's order, which our packing follows
    engine = OnnxRuntimeEngine(SHIPPED / f"mediapipe_{name}.onnx")
    return Case(name, kind, kind.loader(path), inputs, reference, engine)


def test_loader_tells_full_from_lite(case):
    assert case.model.config == MODELS[case.name][1]


def test_inputs_are_meaningful(case):
    """The comparison covers the outputs that matter: palms found, a hand seen in the crop."""
    if case.kind is PALM:
        assert (case.reference[1] > 0).any(axis=1).sum() >= 5  # most photos have a palm logit above 0
    else:
        assert case.reference[1][-1, 0] > 0.9  # presence on the hand crop


def test_inference_form_gives_the_same_numbers_to_the_last_bit(case):
    fused = fuse_modules(case.model)
    with torch.no_grad():
        inputs = torch.from_numpy(case.nchw)
        np.testing.assert_array_equal(fused(inputs).numpy(), case.model(inputs).numpy())
    if case.kind is PALM:  # its PReLUs run as relu(x) + slope * min(x, 0), faster in ONNX Runtime
        assert not any(isinstance(m, nn.PReLU) for m in fused.modules())


def test_torch_matches_tflite(case):
    with torch.no_grad():
        packed = case.model(torch.from_numpy(case.nchw)).numpy()  # all inputs in one batch
    assert_matches(case.kind.split(packed), case.reference, case.kind.output_names)


def test_shipped_onnx_matches_tflite_with_dynamic_batch(case):
    for batch in (slice(0, 1), slice(0, None)):
        packed = case.engine.infer(case.nchw[batch])
        reference = [r[batch] for r in case.reference]
        assert_matches(case.kind.split(packed), reference, case.kind.output_names)


def test_shipped_onnx_carries_its_card_and_fp16_weights(case):
    card = case.engine.card
    assert card.orientation == "portrait" and card.precision == "fp32"
    assert card.about["licence"] == "Apache-2.0" and card.about["version"] == "0.10.21"
    assert f"{case.name}.tflite" in card.about["origin"] and "input" in card.about and "output" in card.about
    assert card.about["source_sha256"] == OFFICIAL_SHA256[f"{case.name}.tflite"]
    # the weights stored in float16, as in the TFLite file: about 2 bytes a parameter, not float32's 4
    parameters = sum(p.numel() for p in case.model.parameters())
    assert case.engine.path.stat().st_size < 2.5 * parameters + 200_000


HALVES = np.linspace(-2, 2, 64 * 32, dtype=np.float16)  # weights that float16 holds exactly


def test_fp16_weight_storage_is_exact():
    weights = onnx.numpy_helper.from_array(HALVES.astype(np.float32).reshape(64, 32), "w")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 32])],
        [weights],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 20)])
    model.ir_version = 10  # one this ONNX Runtime reads
    halved = store_weights_as_fp16(model)
    assert halved.graph.initializer[0].data_type == onnx.TensorProto.FLOAT16
    x = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
    run = [ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0] for m in (model, halved)]
    np.testing.assert_array_equal(run[0], run[1])
    inexact = onnx.numpy_helper.from_array(np.full((64, 32), 0.1, np.float32), "w")
    model.graph.initializer[0].CopyFrom(inexact)
    assert store_weights_as_fp16(model).graph.initializer[0].data_type == onnx.TensorProto.FLOAT  # kept


@pytest.mark.slow
def test_import_command_recreates_the_shipped_models_from_the_wheel(tmp_path, run_cli):
    """`hand-pose import-mediapipe --wheel W` on a wheel-shaped zip of the four official files."""
    wheel = tmp_path / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for stem in ("palm_detection", "hand_landmark"):
            for variant in ("full", "lite"):
                archive.write(
                    MEDIAPIPE / f"{stem}_{variant}.tflite",
                    f"mediapipe/modules/{stem}/{stem}_{variant}.tflite",
                )
    code, out, err = run_cli("import-mediapipe", "--wheel", wheel, "--out", tmp_path / "models")
    assert code == 0, err
    for name, (kind, _) in MODELS.items():
        made = OnnxRuntimeEngine(tmp_path / "models" / f"mediapipe_{name}.onnx")
        shipped = OnnxRuntimeEngine(SHIPPED / f"mediapipe_{name}.onnx")
        assert made.card == shipped.card
        inputs = np.random.default_rng(1).random((2, 3, kind.size, kind.size), dtype=np.float32)
        np.testing.assert_allclose(made.infer(inputs), shipped.infer(inputs), rtol=0, atol=1e-5)
        assert f"mediapipe_{name}.onnx (parity with our PyTorch module" in out


def test_import_command_refuses_a_wheel_without_the_official_files(tmp_path, run_cli):
    wheel = tmp_path / "other.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(
            MEDIAPIPE / "palm_detection_lite.tflite",
            "mediapipe/modules/palm_detection/palm_detection_full.tflite",
        )
    code, _, err = run_cli("import-mediapipe", "--wheel", wheel, "--out", tmp_path / "models")
    assert code == 2 and "not the mediapipe==0.10.21 wheel" in err and "\n" not in err.strip()
    with zipfile.ZipFile(wheel, "a") as archive:
        for stem in ("palm_detection", "hand_landmark"):
            for variant in ("full", "lite"):
                name = f"mediapipe/modules/{stem}/{stem}_{variant}.tflite"
                if name not in archive.namelist():
                    archive.write(MEDIAPIPE / f"{stem}_{variant}.tflite", name)
    code, _, err = run_cli("import-mediapipe", "--wheel", wheel, "--out", tmp_path / "models")
    assert code == 2 and "palm_detection_full.tflite is not the official file" in err
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").glob("*.onnx"))


@pytest.mark.parametrize("name", list(MODELS))
def test_official_files_and_signatures(name):
    path = MEDIAPIPE / f"{name}.tflite"
    assert file_sha256(path) == OFFICIAL_SHA256[path.name]
    kind, _ = MODELS[name]
    signature = read_tflite_signature(path)
    assert [t.shape for t in signature.inputs] == [(1, kind.size, kind.size, 3)]
    assert tuple(t.name for t in signature.outputs) == kind.output_names


def test_wrong_files_are_refused(tmp_path):
    landmark_file = MEDIAPIPE / "hand_landmark_full.tflite"
    palm_file = MEDIAPIPE / "palm_detection_lite.tflite"
    with pytest.raises(ValueError, match=r"hand_landmark_full\.tflite: not a palm detector file"):
        palm_detector_from_tflite(landmark_file)
    with pytest.raises(ValueError, match=r"palm_detection_lite\.tflite: not a hand landmark model file"):
        hand_landmarks_from_tflite(palm_file)
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(palm_file.read_bytes()[: palm_file.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"truncated\.tflite: not a readable TFLite model"):
        palm_detector_from_tflite(truncated)
    with pytest.raises(ValueError, match="not a TFLite model"):
        palm_detector_from_tflite(PHOTOS[0])
    with pytest.raises(ValueError, match="no such TFLite file"):
        hand_landmarks_from_tflite(tmp_path / "missing.tflite")
    with pytest.raises(ValueError, match="sha256"):
        palm_detector_from_tflite(palm_file, sha256=OFFICIAL_SHA256["palm_detection_full.tflite"])
