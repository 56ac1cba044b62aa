"""What camera input as drivers send it costs per frame: OpenCV's rectification and decoding.

    .venv/bin/python bench/camera_input.py   # [--rounds 40] [--threads 1 2]

- Rectifying a 1408x1408 frame (the Aria RGB sensor's size) with `Rectifier.rectify` (cv2.remap, bilinear,
  on the fixed-point CV_16SC2 maps image_geometry also builds), for an equidistant fisheye and a
  plumb_bob camera, RGB and grey; the same remap on float (CV_32FC1) maps for comparison; and building the
  maps, which the node does once per calibration.
- Decoding a 1280x720 frame with `decode_compressed_image`: JPEG at quality 80 and 95, grey JPEG, PNG;
  and with `decode_image`, raw bgr8 and yuv422, for comparison.

Frames: the first RGB frame of the Aria recording `data/aria/aea_recording.vrs` (1408x1408), and its
centre 1280x720 for the decoding. Each measurement runs once per `--threads` value (cv2.setNumThreads),
after a warm-up. Prints a markdown table (median and 90th percentile ms per frame) and how busy other
processes kept the cores meanwhile, and writes both to a JSON (`--out`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "hand_pose_ros") not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT / "hand_pose_ros"))

from hand_pose_core.bags.messages import (  # noqa: E402
    calibration_from_info,
    decode_compressed_image,
    decode_image,
)
from hand_pose_core.geometry.aria import RGB_LABEL, vrs_frames  # noqa: E402
from hand_pose_core.geometry.rectify import Rectifier  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from system_load import CpuMeter, machine  # noqa: E402

RAW_SIZE = 1408
DECODE_SIZE = (1280, 720)


def camera_info(model: str, d: list[float], focal: float, rectified_focal: float) -> SimpleNamespace:
    """A 1408x1408 camera_info: K of `focal`, P a centred pinhole of `rectified_focal`."""
    centre = (RAW_SIZE - 1) / 2
    k = np.array([[focal, 0.0, centre], [0.0, focal, centre], [0.0, 0.0, 1.0]])
    p = np.array(
        [[rectified_focal, 0.0, centre, 0.0], [0.0, rectified_focal, centre, 0.0], [0.0, 0.0, 1.0, 0.0]]
    )
    return SimpleNamespace(
        width=RAW_SIZE,
        height=RAW_SIZE,
        distortion_model=model,
        d=d,
        k=k.ravel(),
        r=np.eye(3).ravel(),
        p=p.ravel(),
    )


CAMERAS = {
    "equidistant": camera_info("equidistant", [0.03, -0.012, 0.004, -0.0006], 610.0, 450.0),
    "plumb_bob": camera_info("plumb_bob", [-0.28, 0.09, 0.0012, -0.0007, -0.012], 1150.0, 1000.0),
}


def timings(work: Callable[[], object], rounds: int) -> dict[str, float]:
    """Median and 90th percentile ms of `rounds` calls, after 3 warm-up calls."""
    for _ in range(3):
        work()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000.0)
    return {"p50_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90))}


def encoded(extension: str, image: np.ndarray, *params: int) -> bytes:
    ok, data = cv2.imencode(extension, image, list(params))
    assert ok, extension
    return data.tobytes()


def uyvy(rgb: np.ndarray) -> np.ndarray:
    """The frame as yuv422 (UYVY) bytes: Y of every pixel, U and V of every even one."""
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)
    packed = np.empty((rgb.shape[0], rgb.shape[1], 2), np.uint8)
    packed[:, :, 1] = yuv[:, :, 0]
    packed[:, 0::2, 0] = yuv[:, 0::2, 1]
    packed[:, 1::2, 0] = yuv[:, 0::2, 2]
    return packed


def measurements(raw: np.ndarray) -> dict[str, Callable[[], object]]:
    """What to time, by name, each a call that handles one frame."""
    work: dict[str, Callable[[], object]] = {}
    grey = cv2.cvtColor(raw, cv2.COLOR_RGB2GRAY)
    for model, info in CAMERAS.items():
        calibration = calibration_from_info(info)
        rectifier = Rectifier(calibration)
        float_maps = cv2.convertMaps(*rectifier.maps, cv2.CV_32FC1)
        work[f"rectify {model} RGB 1408x1408"] = lambda r=rectifier: r.rectify(raw)
        work[f"rectify {model} grey 1408x1408"] = lambda r=rectifier: r.rectify(grey)
        work[f"remap {model} RGB, float maps"] = lambda m=float_maps: cv2.remap(raw, *m, cv2.INTER_LINEAR)
        work[f"build {model} maps (once per calibration)"] = lambda c=calibration: Rectifier(c)
    width, height = DECODE_SIZE
    top, left = (RAW_SIZE - height) // 2, (RAW_SIZE - width) // 2
    frame = np.ascontiguousarray(raw[top : top + height, left : left + width])
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    compressed = {
        "JPEG q80": ("rgb8; jpeg compressed bgr8", encoded(".jpg", bgr, cv2.IMWRITE_JPEG_QUALITY, 80)),
        "JPEG q95": ("rgb8; jpeg compressed bgr8", encoded(".jpg", bgr, cv2.IMWRITE_JPEG_QUALITY, 95)),
        "grey JPEG q95": (
            "mono8; jpeg compressed mono8",
            encoded(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.IMWRITE_JPEG_QUALITY, 95),
        ),
        "PNG": ("rgb8; png compressed bgr8", encoded(".png", bgr)),
    }
    for name, (image_format, data) in compressed.items():
        work[f"decode {name} 1280x720 ({len(data) // 1024} KiB)"] = lambda f=image_format, d=data: (
            decode_compressed_image(f, d)
        )
    raw_bgr, raw_uyvy = bgr.tobytes(), uyvy(frame).tobytes()
    work["decode raw bgr8 1280x720"] = lambda: decode_image("bgr8", height, width, width * 3, raw_bgr)
    work["decode raw yuv422 1280x720"] = lambda: decode_image("yuv422", height, width, width * 2, raw_uyvy)
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="timed calls of each measurement")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="cv2.setNumThreads values")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench" / "camera_input.json")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    raw = next(iter(vrs_frames(ROOT / "data" / "aria" / "aea_recording.vrs", [RGB_LABEL]))).image
    work = measurements(raw)
    results = {name: {} for name in work}
    meter = CpuMeter({"bench": os.getpid()})
    meter.start()
    for threads in args.threads:
        cv2.setNumThreads(threads)
        for name, call in work.items():
            results[name][threads] = timings(call, args.rounds)
            meter.tick()
    load = meter.stop()
    print()
    print(
        "| per frame, ms (median / p90) | " + " | ".join(f"{t} OpenCV thread(s)" for t in args.threads) + " |"
    )
    print("|---|" + "---|" * len(args.threads))
    for name, by_threads in results.items():
        cells = [f"{by_threads[t]['p50_ms']:.2f} / {by_threads[t]['p90_ms']:.2f}" for t in args.threads]
        print(f"| {name} | " + " | ".join(cells) + " |")
    report = {
        "machine": machine() | {"opencv": cv2.__version__, "while_measuring": load},
        "settings": {"rounds": args.rounds, "threads": args.threads},
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\nother processes kept {load['cores_busy_other_processes']} cores busy meanwhile")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
