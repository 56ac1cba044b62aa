"""`hand-pose`: the project's command-line tool. Thin: parse arguments, call hand_pose_core, report.

Bad input ends with one line on stderr naming what and where, and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hand_pose_core.errors import InputError

EXIT_BAD_INPUT = 2


def _eval(args: argparse.Namespace) -> None:
    from hand_pose_core.egoexo import load_annotations, load_predictions
    from hand_pose_core.metrics import evaluate
    from hand_pose_core.report import format_table, write_report

    gt = load_annotations(args.gt)
    pred = load_predictions(args.pred)
    report = evaluate(pred, gt, offset=args.offset, allow_missing=args.allow_missing)
    print(format_table(report))
    if args.out:
        for path in write_report(report, args.out):
            print(f"wrote {path}")


def _mean_pose(args: argparse.Namespace) -> None:
    from hand_pose_core.baselines import mean_pose, predict_mean_pose
    from hand_pose_core.egoexo import load_annotations, write_predictions

    predictions = predict_mean_pose(mean_pose(load_annotations(args.train)), load_annotations(args.targets))
    write_predictions(predictions, args.out)
    print(f"wrote {args.out}: mean pose for {sum(len(f) for f in predictions.values())} frames")


def _check_data(args: argparse.Namespace) -> None:
    from hand_pose_core.egoexo import SPLITS, annotation_path, load_annotations, missing_images

    found = False
    for split in SPLITS:
        for public in (True, False):
            path = annotation_path(args.gt_dir, split, public=public, anno_type=args.anno_type)
            if not path.is_file():
                continue
            found = True
            annotations = load_annotations(path)
            counts = annotations.count_hands()
            print(
                f"{path}: {len(annotations)} takes, {annotations.num_frames} frames, "
                f"{counts['left']} left and {counts['right']} right hands"
            )
            if args.image_dir and public:
                missing = missing_images(annotations, args.image_dir, split)
                if missing:
                    raise InputError(
                        f"{args.image_dir}: {len(missing)} of {annotations.num_frames} annotated {split} "
                        f"frames have no image, first {missing[0]}"
                    )
    if not found:
        raise InputError(f"{args.gt_dir}: no ego_pose_gt_anno_*.json files ({args.anno_type} annotations)")


def _synth(args: argparse.Namespace) -> None:
    from hand_pose_core.synth import (
        SynthConfig,
        compare_statistics,
        format_statistics,
        generate,
        joint_statistics,
    )

    result = generate(args.out, SynthConfig(args.takes, args.frames, args.seed, args.raw))
    for split, split_annotations in result.annotations.items():
        counts = split_annotations.count_hands()
        print(
            f"{split:<6}{len(split_annotations):>4} takes{split_annotations.num_frames:>6} frames"
            f"{counts['left']:>6} left{counts['right']:>6} right hands"
        )
    print(
        f"{result.frames_written} frames in {result.seconds:.1f} s ({result.frames_per_second:.0f} frames/s)"
    )
    print(format_statistics(compare_statistics(*joint_statistics(list(result.annotations.values())))))
    print(f"wrote {args.out}")


def _demo(args: argparse.Namespace) -> None:
    from hand_pose_core.demo import run_demo, summary
    from hand_pose_core.synth import SynthConfig

    print(summary(run_demo(args.out, SynthConfig(args.takes, args.frames, args.seed))))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hand-pose", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, run: Callable[[argparse.Namespace], None], help_text: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(run=run)
        return sub

    ev = command("eval", _eval, "Score a submission against processed ground truth, as the official script.")
    ev.add_argument("--pred", type=Path, required=True, help="submission JSON")
    ev.add_argument("--gt", type=Path, required=True, help="ground truth with 3D (e.g. test private)")
    ev.add_argument("--offset", action="store_true", help="add the GT wrist to wrist-relative predictions")
    ev.add_argument(
        "--allow-missing", action="store_true", help="count and report missing hands, not an error"
    )
    ev.add_argument("--out", type=Path, help="folder for report.json and plots")

    mp = command(
        "mean-pose", _mean_pose, "Predict the mean training pose for every hand (the reference floor)."
    )
    mp.add_argument("--train", type=Path, required=True, help="ground truth to average (train public)")
    mp.add_argument("--targets", type=Path, required=True, help="hands to predict (e.g. test public boxes)")
    mp.add_argument("--out", type=Path, required=True, help="submission JSON to write")

    cd = command(
        "check-data", _check_data, "Check a dataset: annotation files load and every frame has its image."
    )
    cd.add_argument("--gt-dir", type=Path, required=True, help="folder holding annotation/<type>/*.json")
    cd.add_argument("--image-dir", type=Path, help="undistorted image root (<split>/<take>/<frame>.jpg)")
    cd.add_argument("--anno-type", default="manual", choices=("manual", "auto"))
    sy = command("synth", _synth, "Generate a synthetic dataset in the Ego-Exo4D release layout.")
    sy.add_argument("--out", type=Path, required=True, help="output folder")
    sy.add_argument("--takes", type=int, default=6, help="takes (split about 70/15/15 into train/val/test)")
    sy.add_argument("--frames", type=int, default=30, help="frames per take (3 video frames apart)")
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--raw", action="store_true", help="also write 1408x1408 fisheye frames and calibration")

    de = command("demo", _demo, "Run the main job end to end on an embedded default.")
    de.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    de.add_argument("--takes", type=int, default=8)
    de.add_argument("--frames", type=int, default=40)
    de.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except InputError as exc:
        print(f"hand-pose {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"hand-pose {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
