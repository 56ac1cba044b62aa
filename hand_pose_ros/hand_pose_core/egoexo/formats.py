"""Ego-Exo4D hand ego-pose files: processed ground truth, submissions, and the release's folder layout.

Ground truth: `{take_uid: {frame_number_string: frame}}`, each frame carrying per hand `*_hand_3d`
(21x3 metres, absolute, NaN for invalid joints), `*_hand_2d`, `*_hand_bbox`, `*_hand_valid_3d`, and
`metadata`. An absent hand has `[]` in all its fields; the test public file keeps only the boxes.
Older pre-release files say `*_hand` and `*_hand_valid` for `*_hand_3d` and `*_hand_valid_3d`.
Submissions: `{take_uid: {frame_number_string: {"left_hand_3d": 21x3 or [], "right_hand_3d": ...}}}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hand_pose_core.atomic import write_json_atomic
from hand_pose_core.errors import InputError
from hand_pose_core.geometry.skeleton import HAND_SIDES, NUM_JOINTS

SPLITS = ("train", "val", "test")
ANNOTATION_TYPES = ("manual", "auto")

# take_uid -> frame number -> side -> (21, 3) metres
Predictions = dict[str, dict[int, dict[str, np.ndarray]]]


@dataclass
class HandAnnotation:
    """One hand of one frame. Fields a file does not carry (the test public file) are None."""

    side: str
    joints_3d: np.ndarray | None = None  # (21, 3) metres, camera frame; NaN where not annotated
    joints_2d: np.ndarray | None = None  # (21, 2) undistorted pixels; NaN where not annotated
    bbox: np.ndarray | None = None  # (4,) x1, y1, x2, y2 undistorted pixels
    valid_3d: np.ndarray | None = None  # (21,) bool

    @property
    def has_3d(self) -> bool:
        return self.joints_3d is not None


@dataclass
class FrameAnnotation:
    frame_number: int
    hands: dict[str, HandAnnotation] = field(default_factory=dict)  # present hands only


@dataclass
class TakeAnnotation:
    take_uid: str
    take_name: str
    frames: dict[int, FrameAnnotation] = field(default_factory=dict)


@dataclass(frozen=True)
class HandRecord:
    """A hand with the take and frame it belongs to, as iteration yields it."""

    take_uid: str
    take_name: str
    frame_number: int
    hand: HandAnnotation

    @property
    def side(self) -> str:
        return self.hand.side


@dataclass
class Annotations(Mapping[str, TakeAnnotation]):
    """Processed ground truth: takes by uid, in file order."""

    takes: dict[str, TakeAnnotation]
    source: str = "<memory>"

    def __getitem__(self, take_uid: str) -> TakeAnnotation:
        return self.takes[take_uid]

    def __iter__(self) -> Iterator[str]:
        return iter(self.takes)

    def __len__(self) -> int:
        return len(self.takes)

    @property
    def num_frames(self) -> int:
        return sum(len(take.frames) for take in self.takes.values())

    def hands(self) -> Iterator[HandRecord]:
        """Every present hand: takes and frames in file order, right before left (the release order)."""
        for take in self.takes.values():
            for frame in take.frames.values():
                for side in HAND_SIDES:
                    hand = frame.hands.get(side)
                    if hand is not None:
                        yield HandRecord(take.take_uid, take.take_name, frame.frame_number, hand)

    def count_hands(self) -> dict[str, int]:
        counts = dict.fromkeys(HAND_SIDES, 0)
        for record in self.hands():
            counts[record.side] += 1
        return counts


# ---------------------------------------------------------------------------------------------- reading


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file (bare NaN literals accepted) or raise an InputError naming the place."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read {what} file ({exc})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply to be a {what} file") from None


class _Where:
    """Builds 'file: take T frame F field' prefixes for error messages."""

    def __init__(self, path: str, take: str = "", frame: str = "") -> None:
        self.path, self.take, self.frame = path, take, frame

    def at(self, take: str = "", frame: str = "") -> _Where:
        return _Where(self.path, take or self.take, frame or self.frame)

    def error(self, field_name: str, problem: str) -> InputError:
        parts = [
            f"take {self.take}" if self.take else "",
            f"frame {self.frame}" if self.frame else "",
            field_name,
        ]
        return InputError(f"{self.path}: {' '.join(p for p in parts if p)}: {problem}")


def _describe_shape(value: Any) -> str:
    try:
        return "x".join(map(str, np.asarray(value, dtype=np.float64).shape)) or "a scalar"
    except (TypeError, ValueError):
        return f"ragged or non-numeric {type(value).__name__}"


def parse_array(
    value: Any, shape: tuple[int, ...], where: _Where, field_name: str, finite: bool
) -> np.ndarray:
    """A numeric array of exactly `shape`; NaN allowed unless `finite`."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != shape:
        raise where.error(
            field_name, f"expected {'x'.join(map(str, shape))} numbers, got {_describe_shape(value)}"
        )
    if finite and not np.isfinite(array).all():
        bad = sorted({int(i) for i in np.argwhere(~np.isfinite(array))[:, 0]})
        raise where.error(
            field_name, f"non-finite value (NaN or infinity) at index {', '.join(map(str, bad))}"
        )
    if not finite and np.isinf(array).any():
        raise where.error(field_name, "infinite value")
    return array


def _first_key(frame: Mapping[str, Any], *names: str) -> tuple[str, Any]:
    for name in names:
        if name in frame:
            return name, frame[name]
    return names[0], []


def _parse_hand(frame: Mapping[str, Any], side: str, where: _Where) -> HandAnnotation | None:
    key_3d, raw_3d = _first_key(frame, f"{side}_hand_3d", f"{side}_hand")
    key_valid, raw_valid = _first_key(frame, f"{side}_hand_valid_3d", f"{side}_hand_valid")
    key_2d, raw_2d = f"{side}_hand_2d", frame.get(f"{side}_hand_2d", [])
    key_box, raw_box = f"{side}_hand_bbox", frame.get(f"{side}_hand_bbox", [])
    if all(isinstance(v, list) and not v for v in (raw_3d, raw_valid, raw_2d, raw_box)):
        return None
    hand = HandAnnotation(side)
    if raw_box != []:
        hand.bbox = parse_array(raw_box, (4,), where, key_box, finite=True)
    if raw_2d != []:
        hand.joints_2d = parse_array(raw_2d, (NUM_JOINTS, 2), where, key_2d, finite=False)
    if raw_3d != []:
        hand.joints_3d = parse_array(raw_3d, (NUM_JOINTS, 3), where, key_3d, finite=False)
        if not np.isfinite(hand.joints_3d[0]).all():
            raise where.error(key_3d, "the wrist (joint 0) must be a real number when the hand is present")
        if not (isinstance(raw_valid, list) and len(raw_valid) == NUM_JOINTS):
            raise where.error(key_valid, f"expected {NUM_JOINTS} booleans, got {_describe_shape(raw_valid)}")
        if not all(isinstance(v, bool) or v in (0, 1) for v in raw_valid):
            raise where.error(key_valid, "expected booleans")
        hand.valid_3d = np.array(raw_valid, dtype=bool)
        unset = np.flatnonzero(hand.valid_3d & ~np.isfinite(hand.joints_3d).all(axis=1))
        if unset.size:
            raise where.error(key_3d, f"joint(s) {', '.join(map(str, unset))} flagged valid but not numbers")
    elif raw_valid != []:
        raise where.error(key_valid, f"validity flags without {key_3d}")
    return hand


def parse_annotations(data: Any, source: str = "<memory>") -> Annotations:
    """Typed records from the JSON structure of a processed ground-truth file."""
    where = _Where(source)
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected an object of takes, got {type(data).__name__}")
    takes: dict[str, TakeAnnotation] = {}
    for take_uid, frames in data.items():
        take_where = where.at(take=take_uid)
        if not isinstance(frames, dict):
            raise take_where.error("frames", f"expected an object of frames, got {type(frames).__name__}")
        take = TakeAnnotation(take_uid, take_name="")
        for frame_key, frame in frames.items():
            frame_where = take_where.at(frame=frame_key)
            if not (isinstance(frame_key, str) and frame_key.isdigit()):
                raise frame_where.error("frame number", "expected a non-negative integer")
            if not isinstance(frame, dict):
                raise frame_where.error("frame", f"expected an object, got {type(frame).__name__}")
            frame_number = int(frame_key)
            metadata = frame.get("metadata", {})
            if not isinstance(metadata, dict):
                raise frame_where.error("metadata", "expected an object")
            if metadata.get("take_uid", take_uid) != take_uid:
                raise frame_where.error(
                    "metadata.take_uid", f"{metadata['take_uid']!r} differs from the take key"
                )
            if metadata.get("frame_number", frame_number) != frame_number:
                raise frame_where.error(
                    "metadata.frame_number", f"{metadata['frame_number']!r} differs from the key"
                )
            take.take_name = take.take_name or str(metadata.get("take_name", ""))
            parsed = FrameAnnotation(frame_number)
            for side in HAND_SIDES:
                hand = _parse_hand(frame, side, frame_where)
                if hand is not None:
                    parsed.hands[side] = hand
            take.frames[frame_number] = parsed
        take.take_name = take.take_name or take_uid
        takes[take_uid] = take
    return Annotations(takes, source)


def load_annotations(path: Path) -> Annotations:
    """Load a processed ground-truth file (train/val public, test public or private, old key names)."""
    return parse_annotations(read_json(path, "annotation"), str(path))


# ---------------------------------------------------------------------------------------------- writing


def _array_or_empty(value: np.ndarray | None) -> list:
    return [] if value is None else np.asarray(value).tolist()


def annotations_to_json(annotations: Annotations, boxes_only: bool = False) -> dict:
    """The release's JSON structure: right hand fields before left, then metadata.

    `boxes_only` gives the test public variant (boxes and metadata only).
    """
    out: dict[str, dict[str, dict]] = {}
    for take in annotations.takes.values():
        frames: dict[str, dict] = {}
        for frame in take.frames.values():
            entry: dict[str, Any] = {}
            for side in HAND_SIDES:
                hand = frame.hands.get(side) or HandAnnotation(side)
                if not boxes_only:
                    entry[f"{side}_hand_3d"] = _array_or_empty(hand.joints_3d)
                    entry[f"{side}_hand_2d"] = _array_or_empty(hand.joints_2d)
                entry[f"{side}_hand_bbox"] = _array_or_empty(hand.bbox)
                if not boxes_only:
                    entry[f"{side}_hand_valid_3d"] = _array_or_empty(hand.valid_3d)
            entry["metadata"] = {
                "take_uid": take.take_uid,
                "take_name": take.take_name,
                "frame_number": frame.frame_number,
            }
            frames[str(frame.frame_number)] = entry
        out[take.take_uid] = frames
    return out


def write_annotations(annotations: Annotations, path: Path, boxes_only: bool = False) -> Path:
    """Write a processed ground-truth file atomically (bare NaN literals, as the release)."""
    return write_json_atomic(path, annotations_to_json(annotations, boxes_only))


def _prediction_array(value: Any, where: _Where, field_name: str, finite: bool) -> np.ndarray | None:
    if value is None or (isinstance(value, list) and not value):
        return None
    return parse_array(value, (NUM_JOINTS, 3), where, field_name, finite=finite)


def parse_predictions(data: Any, source: str = "<memory>", finite: bool = True) -> Predictions:
    """Validated predictions from a submission's JSON structure (or the same nested mapping in memory).

    `finite=False` lets NaN through for the metric, which ignores it at joints the ground truth marks
    invalid, as the official script does (infinity is still an error)."""
    where = _Where(source)
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: expected an object of takes, got {type(data).__name__}")
    predictions: Predictions = {}
    for take_uid, frames in data.items():
        take_where = where.at(take=str(take_uid))
        if not isinstance(frames, Mapping):
            raise take_where.error("frames", f"expected an object of frames, got {type(frames).__name__}")
        take: dict[int, dict[str, np.ndarray]] = {}
        for frame_key, frame in frames.items():
            frame_where = take_where.at(frame=str(frame_key))
            try:
                frame_number = int(frame_key)
            except (TypeError, ValueError):
                raise frame_where.error("frame number", "expected an integer") from None
            if not isinstance(frame, Mapping):
                raise frame_where.error("frame", f"expected an object, got {type(frame).__name__}")
            hands = {}
            for side in HAND_SIDES:
                field_name = f"{side}_hand_3d"
                value = frame.get(field_name, frame.get(side))
                array = _prediction_array(value, frame_where, field_name, finite)
                if array is not None:
                    hands[side] = array
            take[frame_number] = hands
        predictions[str(take_uid)] = take
    return predictions


def load_predictions(path: Path, finite: bool = True) -> Predictions:
    """Load a submission file; shapes and finiteness are checked, errors name take, frame and hand."""
    return parse_predictions(read_json(path, "prediction"), str(path), finite)


def predictions_to_json(predictions: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> dict:
    checked = parse_predictions(predictions)
    return {
        take_uid: {
            str(frame_number): {
                f"{side}_hand_3d": _array_or_empty(hands.get(side)) for side in ("left", "right")
            }
            for frame_number, hands in frames.items()
        }
        for take_uid, frames in checked.items()
    }


def write_predictions(predictions: Mapping[str, Mapping[int, Mapping[str, Any]]], path: Path) -> Path:
    """Write a submission file atomically. `predictions[take_uid][frame][side]` is 21x3 metres
    (`side` is "left" or "right"; a missing or None hand is written as [])."""
    return write_json_atomic(path, predictions_to_json(predictions))


# ---------------------------------------------------------------------------------------------- layout


def annotation_path(gt_dir: Path, split: str, public: bool = True, anno_type: str = "manual") -> Path:
    """`<gt_dir>/annotation/<type>/ego_pose_gt_anno_<split>_<public|private>.json`, or the file directly
    under `gt_dir` when it has no `annotation` folder."""
    if split not in SPLITS:
        raise InputError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
    if anno_type not in ANNOTATION_TYPES:
        raise InputError(f"annotation type {anno_type!r}: expected one of {', '.join(ANNOTATION_TYPES)}")
    name = f"ego_pose_gt_anno_{split}_{'public' if public else 'private'}.json"
    gt_dir = Path(gt_dir)
    nested = gt_dir / "annotation" / anno_type / name
    return nested if (gt_dir / "annotation").is_dir() or not (gt_dir / name).exists() else gt_dir / name


def image_path(image_root: Path, split: str, take_name: str, frame_number: int) -> Path:
    """`<image_root>/<split>/<take_name>/<frame:06d>.jpg`, the release's undistorted image layout."""
    return Path(image_root) / split / take_name / f"{frame_number:06d}.jpg"


def missing_images(annotations: Annotations, image_root: Path, split: str) -> list[Path]:
    """Annotated frames whose image file is absent."""
    return [
        path
        for take in annotations.takes.values()
        for frame_number in take.frames
        if not (path := image_path(image_root, split, take.take_name, frame_number)).is_file()
    ]
