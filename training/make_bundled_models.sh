#!/usr/bin/env bash
# Re-create the bundled models in models/ (see each model card there): synthetic data, training, ONNX
# export. Run from the repository root after `make` has set up .venv; takes about 11 minutes on 2 cores
# for the image models, and about 35 more for the event models (17 of them rendering event takes).
set -euo pipefail
BIN=.venv/bin
WORK=out/bundled
rm -rf "$WORK"
"$BIN/hand-pose" synth --out "$WORK/data" --takes 200 --frames 4 --seed 5
# The detector's augmentation adds frames without hands and views with hands half out of it. The cosine
# schedule settles its presence on pictures unlike any it trained on: at a high constant rate, a real
# room's swung between 0.04 and 0.96 from one epoch to the next.
"$BIN/hand-pose" train --model detector --gt-dir "$WORK/data" --image-dir "$WORK/data/image/undistorted" \
    --epochs 20 --batch-size 32 --schedule cosine --seed 0 --out "$WORK/runs/detector"
# The lifter's augmentation gives it 2D keypoints as a real detector does (noisy, some missing): it needs
# more epochs than on exact keypoints.
"$BIN/hand-pose" train --model lifter --gt-dir "$WORK/data" --epochs 40 --lr 1e-3 --augment --seed 0 \
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
# Event cameras: synthetic event takes (5 renders per video frame, 150 Hz, for the simulator), seen as
# LNES over 50 ms windows. The two models train at once, one core each.
"$BIN/hand-pose" synth --events --out "$WORK/event_data" --takes 480 --frames 4 --seed 5 --renders-per-frame 5
EVENTS=(--gt-dir "$WORK/event_data" --event-dir "$WORK/event_data/events" --representation lnes --window-ms 50)
OMP_NUM_THREADS=1 "$BIN/hand-pose" train --model detector "${EVENTS[@]}" --epochs 12 --batch-size 32 \
    --schedule cosine --seed 0 --out "$WORK/runs/detector_events" &
DETECTOR=$!
OMP_NUM_THREADS=1 "$BIN/hand-pose" train --model potter --tiny --mirror-left "${EVENTS[@]}" --lr 2e-3 \
    --augment --batch-size 32 --epochs 10 --schedule cosine --seed 0 --out "$WORK/runs/potter_events" &
POTTER=$!
wait "$DETECTOR"
wait "$POTTER"
"$BIN/hand-pose" export --checkpoint "$WORK/runs/detector_events/best.pt" --format onnx \
    --out models/detector_events_synth.onnx
"$BIN/hand-pose" export --checkpoint "$WORK/runs/potter_events/best.pt" --format onnx \
    --out models/potter_tiny_events_synth.onnx
