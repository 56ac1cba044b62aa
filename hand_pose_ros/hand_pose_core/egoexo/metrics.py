"""Hand pose metrics equal to the official Ego-Exo4D hand ego-pose evaluation, plus breakdowns.

Per hand with 3D ground truth (right, then left): millimetres; optional `offset` adds the GT wrist to
wrist-relative predictions; only joints flagged valid count; MPJPE is the mean joint distance and
PA-MPJPE the same after a similarity Procrustes alignment (scale, proper rotation, translation) of the
prediction onto the ground truth. Both are pooled as a mean over hand instances.

Lenient where the official script is: predicted takes that are not in the ground truth are ignored, and
so is NaN at joints the ground truth marks invalid (the script only looks at valid joints); a warning
counts both. Where the script fails (a hand with ground truth and no prediction, NaN at a valid joint, a
wrong shape) this is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hand_pose_core.egoexo.formats import Annotations, Predictions, parse_predictions
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.skeleton import HAND_SIDES, JOINT_NAMES, NUM_JOINTS

PCK_THRESHOLDS_MM = np.linspace(0.0, 50.0, 51)
MAX_LISTED = 20  # missing hands named in an error message
LOG = logging.getLogger(__name__)


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """`pred` (N, 3) moved onto `gt` (N, 3) by the least-squares similarity transform.

    The rotation is proper: a reflection is fixed by flipping the axis of the smallest singular value.
    """
    mu_pred, mu_gt = pred.mean(axis=0), gt.mean(axis=0)
    p, g = pred - mu_pred, gt - mu_gt
    var_pred = float((p**2).sum())
    if var_pred == 0.0:
        return np.broadcast_to(mu_gt, gt.shape).copy()
    u, s, vt = np.linalg.svd(p.T @ g)  # p.T @ g = U diag(s) Vt
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rotation = vt.T @ np.diag(d) @ u.T  # maps pred axes onto gt axes
    scale = float((s * d).sum()) / var_pred
    return scale * p @ rotation.T + mu_gt


def joint_errors(pred_mm: np.ndarray, gt_mm: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint errors (21,) before and after Procrustes on the valid joints; NaN where not valid."""
    errors = np.full(NUM_JOINTS, np.nan)
    pa_errors = np.full(NUM_JOINTS, np.nan)
    errors[valid] = np.linalg.norm(pred_mm[valid] - gt_mm[valid], axis=-1)
    aligned = procrustes_align(pred_mm[valid], gt_mm[valid])
    pa_errors[valid] = np.linalg.norm(aligned - gt_mm[valid], axis=-1)
    return errors, pa_errors


@dataclass(frozen=True)
class HandResult:
    take_uid: str
    take_name: str
    frame_number: int
    side: str
    errors: np.ndarray  # (21,) mm, NaN for joints not valid
    pa_errors: np.ndarray

    @property
    def mpjpe(self) -> float:
        return float(np.nanmean(self.errors))

    @property
    def pa_mpjpe(self) -> float:
        return float(np.nanmean(self.pa_errors))


def _listed(items: list[str], separator: str) -> str:
    more = len(items) - MAX_LISTED
    return separator.join(items[:MAX_LISTED]) + (f" (and {more} more)" if more > 0 else "")


def hand_label(take_uid: str, frame_number: int, side: str) -> str:
    return f"take {take_uid} frame {frame_number} {side}_hand_3d"


@dataclass
class Ignored:
    """What the official script passes over without a word: we count it for a warning."""

    takes: list[str] = field(default_factory=list)  # predicted takes not in the ground truth
    nan_joints: int = 0  # NaN predicted at joints the ground truth marks invalid

    def warning(self, gt_source: str) -> str | None:
        parts = []
        if self.takes:
            parts.append(
                f"{len(self.takes)} predicted take(s) not in the ground truth {gt_source}: "
                f"{_listed(self.takes, ', ')}"
            )
        if self.nan_joints:
            parts.append(f"NaN at {self.nan_joints} predicted joint(s) the ground truth marks invalid")
        return "ignored, as the official evaluation does: " + "; ".join(parts) if parts else None


def score_hands(
    pred: Predictions,
    gt: Annotations,
    offset: bool = False,
    allow_missing: bool = False,
    pred_source: str = "predictions",
) -> tuple[list[HandResult], list[str], int, Ignored]:
    """Per-hand results, the missing hands (as labels), the count of hands with no valid joint, and what
    was ignored. NaN in a prediction is allowed only at joints the ground truth marks invalid."""
    ignored = Ignored(takes=sorted(set(pred) - set(gt.takes)))
    if not any(record.hand.has_3d for record in gt.hands()):
        raise InputError(
            f"{gt.source}: no 3D ground truth to score against (a test public file has boxes only)"
        )
    results: list[HandResult] = []
    missing: list[str] = []
    no_valid = 0
    for record in gt.hands():
        hand = record.hand
        if not hand.has_3d:
            continue
        predicted = pred.get(record.take_uid, {}).get(record.frame_number, {}).get(hand.side)
        if predicted is None:
            missing.append(hand_label(record.take_uid, record.frame_number, hand.side))
            continue
        if not hand.valid_3d.any():
            no_valid += 1
            continue
        unknown = np.isnan(predicted).any(axis=1)
        if (unknown & hand.valid_3d).any():
            joints = ", ".join(map(str, np.flatnonzero(unknown & hand.valid_3d)))
            label = hand_label(record.take_uid, record.frame_number, hand.side)
            raise InputError(
                f"{pred_source}: {label}: NaN at joint(s) {joints}, which the ground truth marks valid"
            )
        ignored.nan_joints += int(unknown.sum())
        gt_mm = hand.joints_3d * 1000.0
        pred_mm = predicted * 1000.0
        if offset:
            pred_mm = pred_mm + gt_mm[0]
        errors, pa_errors = joint_errors(pred_mm, gt_mm, hand.valid_3d)
        results.append(
            HandResult(record.take_uid, record.take_name, record.frame_number, hand.side, errors, pa_errors)
        )
    if missing and not allow_missing:
        raise InputError(
            f"{len(missing)} hand(s) with ground truth have no prediction: {_listed(missing, '; ')}"
        )
    return results, missing, no_valid, ignored


def pck_curve(errors: np.ndarray, thresholds: np.ndarray = PCK_THRESHOLDS_MM) -> tuple[np.ndarray, float]:
    """Fraction of joints within each threshold, and the normalised area under that curve."""
    errors = errors[np.isfinite(errors)]
    if errors.size == 0:
        return np.full(len(thresholds), np.nan), float("nan")
    pck = (errors[None, :] <= thresholds[:, None]).mean(axis=1)
    auc = float(np.trapezoid(pck, thresholds) / (thresholds[-1] - thresholds[0]))
    return pck, auc


def _summary(results: list[HandResult]) -> dict[str, Any]:
    return {
        "mpjpe": float(np.mean([r.mpjpe for r in results])) if results else float("nan"),
        "pa_mpjpe": float(np.mean([r.pa_mpjpe for r in results])) if results else float("nan"),
        "num_hands": len(results),
    }


def _nan_to_none(value: Any) -> Any:
    """Strict JSON for reports: NaN becomes null."""
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def summarise(
    results: list[HandResult], missing: list[str], no_valid: int, offset: bool, ignored: Ignored
) -> dict[str, Any]:
    """The report: pooled metrics, per side, per joint, per take, PCK; JSON-ready (NaN as null)."""
    if not results:
        raise InputError("no hand with 3D ground truth and valid joints to evaluate")
    errors = np.stack([r.errors for r in results])
    pa_errors = np.stack([r.pa_errors for r in results])
    valid_counts = np.isfinite(errors).sum(axis=0)
    denominator = np.where(valid_counts > 0, valid_counts, np.nan)
    per_joint = np.nansum(errors, axis=0) / denominator
    per_joint_pa = np.nansum(pa_errors, axis=0) / denominator
    pck, auc = pck_curve(errors.ravel())
    pa_pck, pa_auc = pck_curve(pa_errors.ravel())
    per_take: dict[str, dict[str, Any]] = {}
    for take_uid in dict.fromkeys(r.take_uid for r in results):
        take_results = [r for r in results if r.take_uid == take_uid]
        per_take[take_uid] = {"take_name": take_results[0].take_name, **_summary(take_results)}
    report = {
        **_summary(results),
        "offset": offset,
        "by_side": {side: _summary([r for r in results if r.side == side]) for side in HAND_SIDES},
        "num_missing": len(missing),
        "missing": missing[:1000],
        "num_hands_without_valid_joints": no_valid,
        "num_ignored_takes": len(ignored.takes),
        "ignored_takes": ignored.takes[:1000],
        "num_ignored_nan_joints": ignored.nan_joints,
        "per_joint": {
            "names": list(JOINT_NAMES),
            "mpjpe": per_joint.tolist(),
            "pa_mpjpe": per_joint_pa.tolist(),
            "num_valid": valid_counts.tolist(),
        },
        "pck": {
            "thresholds_mm": PCK_THRESHOLDS_MM.tolist(),
            "pck": pck.tolist(),
            "auc": auc,
            "pa_pck": pa_pck.tolist(),
            "pa_auc": pa_auc,
        },
        "per_take": per_take,
    }
    return _nan_to_none(report)


def evaluate(
    pred: Mapping[str, Any],
    gt: Annotations,
    offset: bool = False,
    allow_missing: bool = False,
    pred_source: str = "predictions",
) -> dict[str, Any]:
    """Score predictions against ground truth as the official script does, with breakdowns.

    `pred[take_uid][frame][side]` holds (21, 3) metres (a loaded submission, or the same in memory).
    Returns at least `mpjpe`, `pa_mpjpe` (millimetres, pooled over hands) and `num_hands`.
    A hand with ground truth and no prediction is an error unless `allow_missing`; what the official
    script ignores is logged as a warning and counted in the report. `pred_source` names the predictions
    in errors.
    """
    checked = parse_predictions(pred, pred_source, finite=False)
    results, missing, no_valid, ignored = score_hands(checked, gt, offset, allow_missing, pred_source)
    warning = ignored.warning(gt.source)
    if warning:
        LOG.warning("%s: %s", pred_source, warning)
    return summarise(results, missing, no_valid, offset, ignored)
