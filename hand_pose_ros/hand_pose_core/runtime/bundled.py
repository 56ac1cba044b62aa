"""The models shipped in models/ (each has a model card there): MediaPipe Hands' palm detector and hand
landmark model, which have seen real hands, and our small models, trained on synthetic hands only.

They make every tool work out of the box. For POTTER or the lifter on real images, train on Ego-Exo4D
(`hand-pose train`) or take the official POTTER baseline checkpoint, which loads as it is.
"""

from __future__ import annotations

from pathlib import Path

from hand_pose_core.errors import InputError
from hand_pose_core.installed import share_folders

BUNDLED_FILES = {
    "potter": "potter_tiny_synth.onnx",
    "lifter": "lifter_synth.onnx",
    "detector": "detector_synth.onnx",
    "detector_events": "detector_events_synth.onnx",
    "potter_events": "potter_tiny_events_synth.onnx",
    "palm_detector": "mediapipe_palm_detection_full.onnx",
    "hand_landmarks": "mediapipe_hand_landmark_full.onnx",
    "palm_detector_lite": "mediapipe_palm_detection_lite.onnx",
    "hand_landmarks_lite": "mediapipe_hand_landmark_lite.onnx",
}
PACKAGE = "hand_pose_ros"
SOURCE_MODELS = Path(__file__).resolve().parents[2] / "models"  # a checkout, or an editable install


def search_path() -> list[Path]:
    """The source tree, then the installed package's share/ folders (a colcon install, or a venv)."""
    return [SOURCE_MODELS, *(share / "models" for share in share_folders(PACKAGE))]


def bundled_model(name: str) -> Path:
    """The bundled model file of one of `BUNDLED_FILES`."""
    if name not in BUNDLED_FILES:
        raise InputError(f"no bundled {name!r} model (there are: {', '.join(BUNDLED_FILES)})")
    folders = search_path()
    for folder in folders:
        path = folder / BUNDLED_FILES[name]
        if path.is_file():
            return path
    places = " or ".join(str(folder) for folder in folders)
    raise InputError(f"bundled {name} model {BUNDLED_FILES[name]} not found in {places}")


def model_or_bundled(path: Path | str | None, name: str) -> Path:
    """`path` when one is named, else the bundled model."""
    return Path(path) if path else bundled_model(name)
