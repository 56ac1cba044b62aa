"""Evaluation reports: the printed table, report.json, and plots (per-joint errors, PCK curve)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from hand_pose_core.atomic import ensure_dir, write_atomic, write_json_atomic
from hand_pose_core.geometry.skeleton import BONES, HAND_SIDES, SIDE_COLOURS, joint_colour


def _mm(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_table(report: dict[str, Any]) -> str:
    """The result as a person reads it: pooled and per side, two decimals as the official script."""
    rows = [("all", report), *((side, report["by_side"][side]) for side in HAND_SIDES)]
    lines = [f"{'hands':<7}{'count':>7}{'MPJPE mm':>11}{'PA-MPJPE mm':>14}"]
    for name, row in rows:
        lines.append(f"{name:<7}{row['num_hands']:>7}{_mm(row['mpjpe']):>11}{_mm(row['pa_mpjpe']):>14}")
    pck = report["pck"]
    lines.append(f"PCK AUC over 0-50 mm: {_fraction(pck['auc'])}, after PA: {_fraction(pck['pa_auc'])}")
    notes = []
    if report["offset"]:
        notes.append("GT wrist added to predictions (--offset)")
    if report["num_missing"]:
        notes.append(f"{report['num_missing']} hands without prediction not scored (--allow-missing)")
    if report["num_hands_without_valid_joints"]:
        notes.append(f"{report['num_hands_without_valid_joints']} hands without valid joints not scored")
    if report["num_ignored_takes"]:
        notes.append(f"{report['num_ignored_takes']} predicted takes not in the ground truth ignored")
    if report["num_ignored_nan_joints"]:
        notes.append(f"NaN at {report['num_ignored_nan_joints']} joints marked invalid ignored")
    return "\n".join(lines + [f"note: {n}" for n in notes])


def _save_figure(figure: plt.Figure, path: Path) -> Path:
    try:
        return write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(figure)


def plot_per_joint(report: dict[str, Any], path: Path) -> Path:
    """Bars of per-joint MPJPE and PA-MPJPE, coloured by finger."""
    joints = report["per_joint"]
    names = joints["names"]
    colours = [tuple(c / 255 for c in joint_colour(j)) for j in range(len(names))]
    figure, axes = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    for axis, key, title in zip(axes, ("mpjpe", "pa_mpjpe"), ("MPJPE", "PA-MPJPE"), strict=True):
        values = [float("nan") if v is None else v for v in joints[key]]
        axis.bar(range(len(names)), values, color=colours, edgecolor="black", linewidth=0.5)
        axis.set_ylabel(f"{title} (mm)")
        overall = report[key]
        axis.axhline(
            overall, color="grey", linestyle="--", linewidth=1, label=f"mean over hands {overall:.2f} mm"
        )
        axis.legend(loc="upper left")
        axis.grid(axis="y", alpha=0.3)
    axes[-1].set_xticks(range(len(names)), names, rotation=60, ha="right")
    figure.suptitle(f"Per-joint error over {report['num_hands']} hands")
    figure.tight_layout()
    return _save_figure(figure, path)


def plot_pck(report: dict[str, Any], path: Path) -> Path:
    """PCK over 0-50 mm, before and after Procrustes alignment."""
    pck = report["pck"]
    figure, axis = plt.subplots(figsize=(6, 4.5))
    axis.plot(pck["thresholds_mm"], pck["pck"], label=f"MPJPE (AUC {pck['auc']:.3f})")
    axis.plot(pck["thresholds_mm"], pck["pa_pck"], label=f"PA-MPJPE (AUC {pck['pa_auc']:.3f})")
    axis.set_xlabel("threshold (mm)")
    axis.set_ylabel("fraction of valid joints within threshold")
    axis.set_ylim(0, 1)
    axis.set_xlim(0, pck["thresholds_mm"][-1])
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    figure.tight_layout()
    return _save_figure(figure, path)


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """report.json, per_joint_error.png and pck.png under `out_dir`, each written atomically.

    report.json is written last, so it exists only when the whole report could be written.
    """
    out_dir = ensure_dir(Path(out_dir))
    plots = [
        plot_per_joint(report, out_dir / "per_joint_error.png"),
        plot_pck(report, out_dir / "pck.png"),
    ]
    return [write_json_atomic(out_dir / "report.json", report, indent=1), *plots]


def plot_hands_3d(
    frames: list[tuple[str, dict[str, tuple[np.ndarray, np.ndarray | None]]]], path: Path
) -> Path:
    """Predicted (solid) against true (dashed) camera-frame hands, one panel per frame.

    `frames`: (title, {side: (predicted (21, 3), true (21, 3) or None) metres}); NaN joints are left out.
    Axes are in millimetres, seen from behind the camera (x right, y down, z forward)."""
    figure = plt.figure(figsize=(4.2 * len(frames), 4.4))
    for index, (title, hands) in enumerate(frames):
        axis = figure.add_subplot(1, len(frames), index + 1, projection="3d")
        for side, (predicted, true) in hands.items():
            colour = tuple(c / 255 for c in SIDE_COLOURS[side])
            for joints, style in ((predicted, "-"), (true, "--")):
                if joints is None:
                    continue
                millimetres = joints * 1000.0
                for parent, child in BONES:
                    segment = millimetres[[parent, child]]
                    if np.isfinite(segment).all():
                        axis.plot(
                            segment[:, 0], segment[:, 2], -segment[:, 1], style, color=colour, linewidth=1.5
                        )
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("x (mm)")
        axis.set_ylabel("z (mm)")
        axis.set_zlabel("-y (mm)")
        axis.view_init(elev=15, azim=-80)
    truth = any(true is not None for _, hands in frames for _, true in hands.values())
    caption = "predicted (solid) and ground truth (dashed)" if truth else "predicted"
    figure.suptitle(f"camera-frame hands, {caption}; right red, left blue")
    figure.tight_layout()
    return _save_figure(figure, path)
