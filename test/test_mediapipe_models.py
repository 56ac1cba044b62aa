"""MediaPipe Hands' models re-implemented in PyTorch: the same raw outputs as the TFLite interpreter on
the official files, for real photos, from our module and from its ONNX export under ONNX Runtime.

Tolerance: 1e-5 of the output's largest magnitude (at least 1e-5 absolute). The three runtimes sum in
different orders (XNNPACK, PyTorch, MLAS), so float32 rounding piles up over some 60 layers to about
2e-6 of the range: 2.6e-4 on palm box values of about 135 px, 1.5e-4 on landmarks of about 170 px.
A real mistake (a pad on the wrong side, a transposed kernel, a missed activation) is far above it.
"""

from __future__ import annotations

import warnings
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
from hand_pose_core.models.palm_detector import NUM_COORDS, PalmDetectorConfig
from hand_pose_core.models.tflite import (
    OFFICIAL_SHA256,
    hand_landmarks_from_tflite,
    palm_detector_from_tflite,
    read_tflite_signature,
)
from hand_pose_core.runtime.export import store_weights_as_fp16

REPO = Path(__file__).resolve().parents[1]
MEDIAPIPE = REPO / "data" / "mediapipe"
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
    onnx_path: Path

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


def export_onnx(model: nn.Module, size: int, path: Path) -> Path:
    batch = torch.export.Dim("batch", min=1, max=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.rand(2, 3, size, size),),
            path,
            input_names=["image"],
            output_names=["output"],
            dynamic_shapes={"image": {0: batch}},
            opset_version=20,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    return path


def run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": images})[0]


def assert_matches(ours: list[np.ndarray], reference: list[np.ndarray], names: tuple[str, ...]) -> None:
    assert len(ours) == len(reference) == len(names)
    for name, mine, theirs in zip(names, ours, reference, strict=True):
        assert mine.shape == theirs.shape, f"{name}: shape {mine.shape}, TFLite {theirs.shape}"
        tolerance = RELATIVE_TOLERANCE * max(1.0, float(np.abs(theirs).max()))
        difference = float(np.abs(mine - theirs).max())
        assert difference <= tolerance, f"{name}: max |diff| {difference:.3g} > {tolerance:.3g}"


@pytest.fixture(scope="module", params=list(MODELS))
def case(request, tmp_path_factory) -> Case:
    """One model: loaded, run by the interpreter on the real inputs and exported to ONNX, once."""
    name = request.param
    kind, _ = MODELS[name]
    path = MEDIAPIPE / f"{name}.tflite"
    inputs = model_inputs(kind.size, kind.with_hand_crop)
    names, reference = interpreter_outputs(path, inputs)
    assert tuple(names) == kind.output_names  # the interpreter's order, which our packing follows
    model = kind.loader(path)
    onnx_path = export_onnx(model, kind.size, tmp_path_factory.mktemp(name) / f"{name}.onnx")
    return Case(name, kind, model, inputs, reference, onnx_path)


def test_loader_tells_full_from_lite(case):
    assert case.model.config == MODELS[case.name][1]


def test_inputs_are_meaningful(case):
    """The comparison covers the outputs that matter: palms found, a hand seen in the crop."""
    if case.kind is PALM:
        assert (case.reference[1] > 0).any(axis=1).sum() >= 5  # most photos have a palm logit above 0
    else:
        assert case.reference[1][-1, 0] > 0.9  # presence on the hand crop


def test_torch_matches_tflite(case):
    with torch.no_grad():
        packed = case.model(torch.from_numpy(case.nchw)).numpy()  # all inputs in one batch
    assert_matches(case.kind.split(packed), case.reference, case.kind.output_names)


def test_onnx_matches_tflite_with_dynamic_batch(case):
    for batch in (slice(0, 1), slice(0, None)):
        packed = run_onnx(case.onnx_path, case.nchw[batch])
        reference = [r[batch] for r in case.reference]
        assert_matches(case.kind.split(packed), reference, case.kind.output_names)


def test_fp16_weight_storage_is_exact(case, tmp_path):
    original = onnx.load(case.onnx_path)
    halved = tmp_path / "fp16.onnx"
    onnx.save(store_weights_as_fp16(original), halved)
    assert halved.stat().st_size < 0.6 * case.onnx_path.stat().st_size
    np.testing.assert_array_equal(run_onnx(halved, case.nchw), run_onnx(case.onnx_path, case.nchw))


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
