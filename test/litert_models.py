"""MediaPipe's TFLite models behind the graph's engine interface, run with ai-edge-litert (tests only).

The product runs our ONNX conversions; the tests run the original `.tflite` files so that the graph is
checked against MediaPipe on exactly MediaPipe's models. Outputs are packed by tensor name, never by
shape: the landmark model's presence and handedness outputs have the same shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

MEDIAPIPE_MODELS = Path(__file__).resolve().parents[1] / "data" / "mediapipe"
PALM_OUTPUTS = ("Identity", "Identity_1")  # regressors (2016, 18), score logits (2016, 1)
LANDMARK_OUTPUTS = ("Identity", "Identity_1", "Identity_2", "Identity_3")  # landmarks, presence, left, world


class LiteRtEngine:
    """One `.tflite` model: `infer` takes an NCHW batch and returns the named outputs, concatenated on the
    last axis, per batch item (the interpreter runs one item at a time)."""

    def __init__(self, path: Path, output_names: tuple[str, ...]) -> None:
        self.interpreter = Interpreter(model_path=str(path), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        by_name = {detail["name"]: detail["index"] for detail in self.interpreter.get_output_details()}
        self.output_indices = [by_name[name] for name in output_names]

    def infer(self, batch: np.ndarray) -> np.ndarray:
        results = []
        for item in batch:
            self.interpreter.set_tensor(self.input_index, np.ascontiguousarray(item.transpose(1, 2, 0))[None])
            self.interpreter.invoke()
            outputs = [self.interpreter.get_tensor(index)[0] for index in self.output_indices]
            results.append(np.concatenate(outputs, axis=-1))
        return np.stack(results).astype(np.float32)


def palm_engine(variant: str) -> LiteRtEngine:
    """MediaPipe's palm detector, `variant` "full" or "lite"."""
    return LiteRtEngine(MEDIAPIPE_MODELS / f"palm_detection_{variant}.tflite", PALM_OUTPUTS)


def landmark_engine(variant: str) -> LiteRtEngine:
    """MediaPipe's hand landmark model, `variant` "full" or "lite"."""
    return LiteRtEngine(MEDIAPIPE_MODELS / f"hand_landmark_{variant}.tflite", LANDMARK_OUTPUTS)
