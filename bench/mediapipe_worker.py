"""MediaPipe's own legacy Python solution (`mediapipe.solutions.hands.Hands`) timed on given frames: the
worker that `bench/real_stage.py` runs inside its own virtual environment (mediapipe==0.10.21 pins
numpy < 2, so it cannot share the project's). It imports nothing from the project.

    MEDIAPIPE_VENV/bin/python bench/mediapipe_worker.py static.npy video.npy

Frames are (N, H, W, 3) uint8 RGB .npy files, one for static mode (every frame on its own) and one for
video mode (a sequence that MediaPipe tracks through). Requests come on stdin, one JSON object a line:
{"mode": "static" | "video", "variant": "full" | "lite", "start": i, "count": n, "keypoints": bool};
each answer is one JSON line on stdout: per-frame wall ms, hands found per frame, the process's CPU
seconds over the request (all threads), and with `keypoints` the hands' 21 x/y pixels. One Hands object
per mode and variant lives for the whole run, so video mode keeps its tracking state between requests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

MODEL_COMPLEXITY = {"full": 1, "lite": 0}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("static_frames", help="(N, H, W, 3) uint8 RGB .npy for static mode")
    parser.add_argument("video_frames", help="(N, H, W, 3) uint8 RGB .npy for video mode")
    parser.add_argument("--max-hands", type=int, default=2)
    args = parser.parse_args()
    # MediaPipe's C++ logging goes to stderr; stdout carries only our JSON lines.
    import mediapipe as mp

    frames = {"static": np.load(args.static_frames), "video": np.load(args.video_frames)}
    solutions: dict[tuple[str, str], object] = {}

    def hands_for(mode: str, variant: str):
        key = (mode, variant)
        if key not in solutions:
            solutions[key] = mp.solutions.hands.Hands(
                static_image_mode=mode == "static",
                max_num_hands=args.max_hands,
                model_complexity=MODEL_COMPLEXITY[variant],
                min_detection_confidence=0.5,
                min_tracking_confidence=0.5,
            )
        return solutions[key]

    ready = {
        "ready": True,
        "mediapipe": mp.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "threads_at_start": len(os.listdir("/proc/self/task")),
    }
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("quit"):
            break
        hands = hands_for(request["mode"], request["variant"])
        batch = frames[request["mode"]][request["start"] : request["start"] + request["count"]]
        height, width = batch.shape[1:3]
        times_ms, counts, keypoints = [], [], []
        cpu_start = time.process_time()
        for frame in batch:
            start = time.perf_counter()
            result = hands.process(frame)
            times_ms.append((time.perf_counter() - start) * 1000.0)
            found = result.multi_hand_landmarks or []
            counts.append(len(found))
            if request.get("keypoints"):
                keypoints.append([[[p.x * width, p.y * height] for p in hand.landmark] for hand in found])
        answer = {
            "ms": times_ms,
            "hands": counts,
            "cpu_s": time.process_time() - cpu_start,
            "threads": len(os.listdir("/proc/self/task")),
        }
        if request.get("keypoints"):
            answer["keypoints"] = keypoints
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
