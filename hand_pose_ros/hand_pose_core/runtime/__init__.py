"""Running models fast: one `Engine.infer` over PyTorch, ONNX Runtime, TensorRT; export with model cards."""
