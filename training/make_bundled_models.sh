#!/usr/bin/env bash
# Re-create the bundled models in models/ (see each model card there): synthetic data, training, ONNX
# export. Run from the repository root after `make` has set up .venv; takes about 11 minutes on 2 cores.
set -euo pipefail
BIN=.venv/bin
WORK=out/bundled
rm -rf "$WORK"
"$BIN/hand-pose" synth --out "$WORK/data" --takes 200 --frames 4 --seed 5
"$BIN/hand-pose" train --model detector --gt-dir "$WORK/data" --image-dir "$WORK/data/image/undistorted" \
    --epochs 15 --batch-size 32 --seed 0 --out "$WORK/runs/detector"
"$BIN/hand-pose" train --model lifter --gt-dir "$WORK/data" --epochs 10 --lr 1e-3 --augment --seed 0 \
    --out "$WORK/runs/lifter"
# POTTER learns more from many short takes than from a few long ones, and more from more hands than
# from more epochs over fewer.
"$BIN/hand-pose" synth --out "$WORK/potter_data" --takes 2400 --frames 2 --seed 5
"$BIN/hand-pose" train --model potter --tiny --mirror-left --schedule cosine --gt-dir "$WORK/potter_data" \
    --image-dir "$WORK/potter_data/image/undistorted" --lr 2e-3 --batch-size 32 --epochs 6 --seed 0 \
    --out "$WORK/runs/potter"
"$BIN/hand-pose" export --checkpoint "$WORK/runs/detector/best.pt" --format onnx --out models/detector_synth.onnx
"$BIN/hand-pose" export --checkpoint "$WORK/runs/lifter/best.pt" --format onnx --out models/lifter_synth.onnx
"$BIN/hand-pose" export --checkpoint "$WORK/runs/potter/best.pt" --format onnx --out models/potter_tiny_synth.onnx
