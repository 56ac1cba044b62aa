"""Fast inference: PyTorch eager, ONNX Runtime and TensorRT behind one `Engine.infer(batch)`."""

from hand_pose_core.runtime.card import ModelCard
from hand_pose_core.runtime.engines import BACKENDS, Engine, OnnxRuntimeEngine, TorchEngine, load_engine

__all__ = ["BACKENDS", "Engine", "ModelCard", "OnnxRuntimeEngine", "TorchEngine", "load_engine"]
