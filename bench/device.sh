#!/usr/bin/env bash
# The PyTorch CUDA engine measured on the device machine, unchanged from the repository's root:
#   bash bench/device.sh    (the device machine's python3 with torch and CUDA; writes into $OUT)
# Needs no wheel carried: torch, onnx, onnxruntime, opencv and numpy are on that machine; nothing of
# ROS, projectaria-tools or TensorRT is imported. Aimed at under 8 minutes on one H200 (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-out/device}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv | tee "$out/gpu.txt" || true
timeout 450 python3 bench/device.py --out "$out" --compile 2>&1 | tee "$out/log.txt"
