"""`hand-pose`: the project's command-line tool. Thin: parse arguments, call hand_pose_core, report.

Bad input ends with one line on stderr naming what and where, and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from hand_pose_core.errors import InputError
from hand_pose_core.runtime.bundled import model_or_bundled

EXIT_BAD_INPUT = 2
EVENT_COLUMNS = ("x", "y", "t", "p", "trigger_t", "trigger_id", "trigger_edge")
KEEP_READABLE_HELP = (
    "a damaged bag (a chunk failing its checksum, a file cut short): write what could be read and exit 0; "
    "without it, the damage is an error and nothing is written"
)


def _eval(args: argparse.Namespace) -> None:
    from hand_pose_core.egoexo.formats import load_annotations, load_predictions
    from hand_pose_core.egoexo.metrics import evaluate
    from hand_pose_core.egoexo.report import format_table, write_report

    gt = load_annotations(args.gt)
    pred = load_predictions(args.pred, finite=False)
    report = evaluate(pred, gt, args.offset, args.allow_missing, str(args.pred))
    print(format_table(report))
    if args.out:
        for path in write_report(report, args.out):
            print(f"wrote {path}")


def _mean_pose(args: argparse.Namespace) -> None:
    from hand_pose_core.egoexo.baselines import mean_pose, predict_mean_pose
    from hand_pose_core.egoexo.formats import load_annotations, write_predictions

    predictions = predict_mean_pose(mean_pose(load_annotations(args.train)), load_annotations(args.targets))
    write_predictions(predictions, args.out)
    print(f"wrote {args.out}: mean pose for {sum(len(f) for f in predictions.values())} frames")


def _check_data(args: argparse.Namespace) -> None:
    from hand_pose_core.egoexo.formats import SPLITS, annotation_path, load_annotations, missing_images

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
    from hand_pose_core.synth.generator import (
        SynthConfig,
        compare_statistics,
        format_statistics,
        generate,
    )

    config = SynthConfig(args.takes, args.frames, args.seed, args.raw, args.slam)
    if args.events:
        from hand_pose_core.bags.event_takes import generate_events

        if args.raw or args.slam:
            raise InputError("--raw and --slam are for image takes; an event take is one event camera")
        result = generate_events(args.out, config, args.renders_per_frame)
    else:
        result = generate(args.out, config)
    for split, split_annotations in result.annotations.items():
        counts = split_annotations.count_hands()
        print(
            f"{split:<6}{len(split_annotations):>4} takes{split_annotations.num_frames:>6} frames"
            f"{counts['left']:>6} left{counts['right']:>6} right hands"
        )
    what = "renders" if args.events else "frames"
    rate = (
        f"{result.frames_written} {what} in {result.seconds:.1f} s ({result.frames_per_second:.0f} {what}/s)"
    )
    print(rate + (" for the event simulator" if args.events else ""))
    print(format_statistics(compare_statistics(result.combined)))
    print(f"wrote {args.out}")


def _report_skipped(skipped: list[tuple[str, str]] | dict[str, int], what: str = "hands") -> None:
    """Skipped hands (or frames), counted by reason, with the first few named."""
    if isinstance(skipped, dict):
        if any(skipped.values()):
            print("skipped: " + ", ".join(f"{count} {what}" for what, count in skipped.items() if count))
        return
    if not skipped:
        return
    reasons = Counter(reason.split(":")[0] for _, reason in skipped)
    print(f"skipped {len(skipped)} {what}: " + ", ".join(f"{n} {reason}" for reason, n in reasons.items()))
    for label, reason in skipped[:5]:
        print(f"  {label}: {reason}")


def _event_frames(args: argparse.Namespace):
    """`--event-dir`'s event take bags seen through the representation asked for (None without it)."""
    if args.event_dir is None:
        return None
    from hand_pose_core.bags.event_takes import EventTakeFrames

    if args.image_dir is not None:
        raise InputError("give --image-dir or --event-dir, not both")
    return EventTakeFrames(args.event_dir, event_representation(args))


def _train(args: argparse.Namespace) -> None:
    from hand_pose_core.learn.training import TrainOptions, train
    from hand_pose_core.models.potter import PotterConfig

    for flag, used in (("--tiny", args.tiny), ("--mirror-left", args.mirror_left)):
        if used and args.model != "potter":
            raise InputError(f"{flag} is a POTTER option: only for --model potter")
    options = TrainOptions(
        model=args.model,
        gt_dir=args.gt_dir,
        out=args.out,
        image_dir=args.image_dir,
        anno_type=args.anno_type,
        init_cls=args.init_cls,
        pretrained=args.pretrained,
        resume=args.resume,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        workers=args.workers,
        seed=args.seed,
        augment=args.augment,
        max_minutes=args.max_minutes,
        schedule=args.schedule,
        mirror_left=args.mirror_left,
        event_frames=_event_frames(args),
        model_options=dataclasses.asdict(PotterConfig.tiny()) if args.tiny else {},
        precision=args.precision,
    )
    result = train(options)
    if result.rank:
        return  # under torchrun, rank 0 reports for all
    best = min(result.history, key=lambda h: h["val_loss"])
    reference = result.mean_pose
    if reference:
        print(
            f"best epoch {best['epoch']}: val MPJPE {best['val_mpjpe']:.2f} mm, "
            f"PA-MPJPE {best['val_pa_mpjpe']:.2f} mm (mean-pose reference on the same hands: "
            f"{reference['val_mpjpe']:.2f} / {reference['val_pa_mpjpe']:.2f} mm)"
        )
    else:
        print(
            f"best epoch {best['epoch']}: val recall {best['val_recall']:.3f}, precision "
            f"{best['val_precision']:.3f} at IoU 0.5, keypoint error {best['val_keypoint_px']:.2f} px"
        )
    _report_skipped(result.skipped)
    print(f"wrote {result.best} and {result.last}")


def _infer(args: argparse.Namespace) -> None:
    from hand_pose_core.egoexo.formats import annotation_path, load_annotations, write_predictions
    from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
    from hand_pose_core.live.offline import annotated_frames, format_run, run_pipeline
    from hand_pose_core.live.pipeline import HandPosePipeline, PipelineConfig

    localisation = "given" if args.boxes == "annotation" else "detector"
    config = PipelineConfig(localisation, args.detect_every, args.min_score)
    checkpoint = model_or_bundled(args.checkpoint, "potter")
    detector = model_or_bundled(args.detector, "detector") if localisation == "detector" else None
    pipeline = HandPosePipeline.load(
        checkpoint, BENCHMARK_CAMERA, detector, config, backend=args.backend, threads=args.threads
    )
    card = pipeline.pose.card
    path = annotation_path(args.gt_dir, args.split, anno_type=args.anno_type)
    annotations = load_annotations(path)
    private = annotation_path(args.gt_dir, args.split, public=False, anno_type=args.anno_type)
    has_2d = any(r.hand.joints_2d is not None for r in annotations.hands())
    truth = annotations if has_2d else load_annotations(private) if private.is_file() else None
    if card.name == "lifter" and args.boxes == "annotation" and not has_2d:
        if truth is None:
            raise InputError(f"{path}: the lifter needs 2D keypoints and this file has none")
        path, annotations = private, truth
    official = " (official)" if card.official else ""
    print(f"{card.name} {card.precision} model {checkpoint}{official} on {pipeline.pose.backend}, {path}")
    frames = annotated_frames(annotations, args.image_dir, args.split, pipeline.needs_image)
    run = run_pipeline(pipeline, frames, absolute=args.absolute, truth=truth, total=annotations.num_frames)
    write_predictions(run.predictions, args.out)
    _report_skipped(run.skipped)
    print(format_run(run))
    frame = "camera-frame" if args.absolute else "wrist-relative"
    print(f"wrote {args.out}: {run.num_predicted} hands, {frame} joints")


def _eval_views(args: argparse.Namespace) -> None:
    from hand_pose_core.atomic import write_json_atomic
    from hand_pose_core.egoexo.formats import annotation_path, load_annotations
    from hand_pose_core.geometry.aria import device_views, load_device_calibration
    from hand_pose_core.live.multiview import MultiViewPipeline
    from hand_pose_core.live.offline import format_views_report, run_views, views_report
    from hand_pose_core.live.pipeline import HandPosePipeline, PipelineConfig
    from hand_pose_core.synth.generator import RIG_CALIBRATION

    rig = args.data / RIG_CALIBRATION.name
    if not rig.is_file():
        raise InputError(
            f"{rig}: no rig calibration; make the set with: hand-pose synth --slam --out {args.data}"
        )
    views = [view for view, _ in device_views(load_device_calibration(rig), str(rig))]
    private = annotation_path(args.data, args.split, public=args.split != "test")
    truth = load_annotations(private)
    pose = model_or_bundled(args.model, args.mode) if args.mode != "world" else None
    detector = model_or_bundled(args.detector, "detector") if args.localisation == "detector" else None
    config = PipelineConfig(args.localisation, min_score=args.min_score, variant=args.variant)
    pipeline = HandPosePipeline.load(
        pose, views[0].camera, detector, config, backend=args.backend, threads=args.threads
    )
    print(f"{pipeline.describe()} on {', '.join(v.name for v in views)}, {private}")
    run = run_views(MultiViewPipeline(pipeline, views), truth, args.data / "image", args.split)
    report = views_report(run, truth)
    print(format_views_report(report))
    if args.out is not None:
        write_json_atomic(args.out, report, indent=1)
        print(f"wrote {args.out}")


def _egoexo2bag(args: argparse.Namespace) -> None:
    from hand_pose_core.bags.takes import write_take_bag
    from hand_pose_core.egoexo.formats import annotation_path, load_annotations
    from hand_pose_core.geometry.camera import BENCHMARK_CAMERA

    annotations = load_annotations(annotation_path(args.gt_dir, args.split, anno_type=args.anno_type))
    camera = None if args.raw else BENCHMARK_CAMERA
    summary = write_take_bag(annotations, args.image_dir, args.split, args.out, camera)
    print(f"wrote {args.out}: {summary.frames} frames of {summary.takes} takes")
    _report_skipped(summary.skipped, "frames")
    if summary.skipped:
        raise InputError(f"{args.out}: {len(summary.skipped)} frames left out (listed above)")


def _decoded_events(path: Path, topic: str | None, keep_readable: bool):
    """(events, report) of a `.raw` recording or of one event topic of a bag."""
    from hand_pose_core.bags.events import read_bag_events
    from hand_pose_core.events.raw import read_raw_file

    if path.suffix == ".raw":
        if topic is not None:
            raise InputError(f"{path}: --topic is for bags; a .raw file has one stream")
        return read_raw_file(path)
    decoded = read_bag_events(path, topic)
    _check_bag_problems(decoded.problems, keep_readable)
    return decoded.events, decoded.report


def _events(args: argparse.Namespace) -> None:
    import numpy as np

    from hand_pose_core.atomic import atomic_path

    events, report = _decoded_events(args.input, args.topic, args.keep_readable)
    times = np.concatenate([events.t, events.trigger_t])
    span = f"{(times.max() - times.min()) / 1e9:.3f} s" if len(times) else "no events"
    print(f"{args.input}: {events.width}x{events.height}, {span}: {report.describe()}")
    with atomic_path(args.out) as tmp, open(tmp, "wb") as stream:
        np.savez(stream, **{name: getattr(events, name) for name in EVENT_COLUMNS})
    print(f"wrote {args.out}")


def _raw2bag(args: argparse.Namespace) -> None:
    from hand_pose_core.bags.events import write_event_bag
    from hand_pose_core.events.raw import read_raw_file

    if args.input.suffix != ".raw":
        raise InputError(f"{args.input}: not a .raw recording")
    events, report = read_raw_file(args.input)
    print(f"{args.input}: {events.width}x{events.height}: {report.describe()}")
    packets = write_event_bag(events, args.out, args.topic, packet_ns=round(args.packet_ms * 1e6))
    print(f"wrote {args.out}: {packets} evt3 packets on {args.topic}")


def _check_bag_problems(problems: list[str], keep_readable: bool) -> None:
    """A damaged bag: each problem printed (what was lost, and when); without --keep-readable that is
    an error before anything is written."""
    for problem in problems[:5]:
        print(f"  {problem}")
    if problems and not keep_readable:
        raise InputError(
            f"{len(problems)} unreadable part(s) of the bag (nothing written; --keep-readable writes what "
            f"could be read), first: {problems[0]}"
        )


def _bag2json(args: argparse.Namespace) -> None:
    from hand_pose_core.bags.takes import recorded_hands
    from hand_pose_core.egoexo.formats import write_predictions

    recorded = recorded_hands(args.bag)
    _check_bag_problems(recorded.problems, args.keep_readable)
    write_predictions(recorded.predictions, args.out)
    print(
        f"{args.bag}: {recorded.frames} frames in the take index, {recorded.frames_with_output} with the "
        f"node's output, {recorded.num_predicted} hands"
        + (
            f"; {recorded.between_frames} outputs between annotated frames (not scored)"
            if recorded.between_frames
            else ""
        )
    )
    _report_skipped(recorded.skipped, "frames")
    print(f"wrote {args.out}: camera-frame joints (score with `hand-pose eval` without --offset)")


def _eval_bag(args: argparse.Namespace) -> None:
    from hand_pose_core.atomic import ensure_dir
    from hand_pose_core.bags.event_takes import event_bag_frames
    from hand_pose_core.bags.events import event_topics
    from hand_pose_core.bags.takes import BagContents, bag_camera, bag_frames, read_take_index
    from hand_pose_core.egoexo.formats import load_annotations, write_predictions
    from hand_pose_core.egoexo.metrics import evaluate
    from hand_pose_core.egoexo.report import format_table, write_report
    from hand_pose_core.live.offline import format_run, run_pipeline
    from hand_pose_core.live.pipeline import HandPosePipeline, PipelineConfig

    truth = load_annotations(args.gt)
    config = PipelineConfig("detector", args.detect_every, args.min_score)
    events = bool(event_topics(args.bag))
    pipeline = HandPosePipeline.load(
        model_or_bundled(args.checkpoint, "lifter"),
        bag_camera(args.bag),
        model_or_bundled(args.detector, "detector_events" if events else "detector"),
        config,
        backend=args.backend,
        threads=args.threads,
    )
    contents = BagContents(args.bag)
    if events and pipeline.events is None:
        raise InputError(f"{args.bag} is an event take bag: give event models (these see RGB images)")
    if events:
        frames = event_bag_frames(args.bag, truth, pipeline.events)
    else:
        frames = bag_frames(args.bag, truth, contents)
    total = len(read_take_index(args.bag).frames)
    run = run_pipeline(pipeline, frames, absolute=True, truth=truth, total=total)
    _check_bag_problems(contents.problems, args.keep_readable)
    out = ensure_dir(args.out)
    write_predictions(run.predictions, out / "pred.json")
    _report_skipped(run.skipped)
    print(format_run(run))
    report = evaluate(run.predictions, truth, offset=False, allow_missing=True)
    print(format_table(report))
    for path in [out / "pred.json", *write_report(report, out)]:
        print(f"wrote {path}")


def _export(args: argparse.Namespace) -> None:
    if args.int8:
        from hand_pose_core.learn.quantization import CalibrationData, export_int8_checked

        if args.fp16 or args.format != "onnx":
            raise InputError(
                "INT8 is for ONNX Runtime on the CPU: use --int8 with --format onnx and without --fp16"
            )
        if args.gt_dir is None:
            raise InputError("--int8 needs --gt-dir (and --image-dir for POTTER): calibration hands")
        calibration = CalibrationData(args.gt_dir, args.image_dir, args.anno_type, args.calibration_hands)
        result = export_int8_checked(args.checkpoint, args.out, calibration, args.max_batch)
        fp32, int8 = result.mpjpe_mm["fp32"], result.mpjpe_mm["int8"]
        print(f"INT8 against PyTorch on random inputs (not images): max error {result.parity:.3f} mm")
        print(
            f"INT8 accuracy cost on validation hands: MPJPE {fp32:.3f} mm (FP32) -> {int8:.3f} mm (INT8), "
            f"change {int8 - fp32:+.3f} mm"
        )
    else:
        from hand_pose_core.runtime.export import export_model

        result = export_model(
            args.checkpoint, args.format, args.out, fp16=args.fp16, max_batch=args.max_batch
        )
        print(
            f"parity with PyTorch ({result.backend} {result.precision}): max error {result.parity:.5f} "
            f"{result.unit} (at most {result.tolerance} {result.unit} allowed)"
        )
    print("wrote " + " and ".join(str(path) for path in result.files))


def _bench(args: argparse.Namespace) -> None:
    from hand_pose_core.atomic import ensure_dir, write_json_atomic
    from hand_pose_core.learn.benchmark import format_report, plot_report, report_to_dict, run_benchmark
    from hand_pose_core.learn.quantization import CalibrationData

    checkpoints = {"potter": args.potter_checkpoint, "lifter": args.lifter_checkpoint}
    calibration = CalibrationData(args.gt_dir, args.image_dir, args.anno_type) if args.gt_dir else None
    report = run_benchmark(
        {name: checkpoints[name] for name in args.models},
        tuple(args.batches),
        args.iterations,
        args.warmup,
        int8=not args.no_int8,
        calibration=calibration,
        threads=args.threads,
    )
    print(format_report(report))
    out = ensure_dir(args.out)
    plot_report(report, out / "bench.png")
    write_json_atomic(out / "bench.json", report_to_dict(report), indent=1)
    print(f"wrote {out / 'bench.json'} and {out / 'bench.png'}")


def _import_mediapipe(args: argparse.Namespace) -> None:
    from hand_pose_core.runtime.mediapipe import WHEEL_REQUIREMENT, import_mediapipe

    print(f"{WHEEL_REQUIREMENT}: {args.wheel or 'pip download --no-deps'}")
    for model in import_mediapipe(args.out, args.wheel):
        print(f"wrote {model.path} (parity with our PyTorch module: {model.parity:.1e})")


def _detect(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from hand_pose_core.geometry.camera import BENCHMARK_CAMERA
    from hand_pose_core.live.photos import (
        detect_hands,
        image_files,
        write_hands_json,
        write_meshes,
        write_overlays,
    )
    from hand_pose_core.live.pipeline import HandPosePipeline, PipelineConfig

    paths = image_files(args.inputs)
    if args.focal is not None and not args.focal > 0:
        raise InputError(f"--focal {args.focal}: must be a positive number of pixels")
    pose = model_or_bundled(args.model, args.lifting) if args.lifting != "world" else None
    config = PipelineConfig(min_score=args.min_score, orientation=args.orientation, variant=args.variant)
    pipeline = HandPosePipeline.load(
        pose, BENCHMARK_CAMERA, config=config, backend=args.backend, threads=args.threads, mano=args.mano
    )
    images = []
    for image in tqdm(detect_hands(pipeline, paths, args.focal), total=len(paths), unit="image", leave=False):
        images.append(image)
        found = ", ".join(f"{h.side} {h.score:.2f}" for h in image.hands) or "no hand"
        tqdm.write(f"{image.path}: {found if image.problem is None else 'skipped: ' + image.problem}")
    print(f"wrote {write_hands_json(images, args.out)}")
    if args.overlays:
        print(f"wrote {len(write_overlays(images, args.overlays))} overlays in {args.overlays}")
    if args.mano:
        meshes = args.out.with_name(f"{args.out.stem}_meshes")
        print(f"wrote {len(write_meshes(images, meshes))} MANO meshes in {meshes}")
    unreadable = [image for image in images if image.problem is not None]
    if unreadable:
        raise InputError(
            f"{len(unreadable)} of {len(images)} images not processed, first {unreadable[0].path}"
        )


def add_representation_options(parser: argparse.ArgumentParser) -> None:
    """How events become a model's input: the representation and its window."""
    group = parser.add_argument_group("event representation (with event input)")
    group.add_argument(
        "--representation",
        choices=("counts", "time_surface", "voxel_grid", "lnes"),
        default="lnes",
        help="per-polarity counts, time surface, voxel grid or LNES (default, as EvHandPose)",
    )
    group.add_argument("--window-ms", type=float, default=50.0, help="window of events before each frame")
    group.add_argument(
        "--window-events", type=int, help="windows of this many events instead of a fixed time"
    )
    group.add_argument("--bins", type=int, default=5, help="voxel grid: time bins")
    group.add_argument("--decay-ms", type=float, default=10.0, help="time surface: decay time constant")


def event_representation(args: argparse.Namespace):
    """The representation `add_representation_options` asked for (validated)."""
    from hand_pose_core.events.representations import EventRepresentation

    fixed_count = args.window_events is not None
    return EventRepresentation(
        args.representation,
        window_ns=None if fixed_count else round(args.window_ms * 1e6),
        window_events=args.window_events,
        bins=args.bins if args.representation == "voxel_grid" else None,
        decay_ns=round(args.decay_ms * 1e6) if args.representation == "time_surface" else None,
    )


def _shared_options() -> dict[str, argparse.ArgumentParser]:
    """Options several commands take, declared once (argparse parents)."""
    from hand_pose_core.egoexo.formats import ANNOTATION_TYPES, SPLITS
    from hand_pose_core.runtime.engines import BACKENDS

    def parent() -> argparse.ArgumentParser:
        return argparse.ArgumentParser(add_help=False)

    annotations = parent()
    annotations.add_argument("--anno-type", default="manual", choices=ANNOTATION_TYPES)
    dataset = parent()
    dataset.add_argument("--gt-dir", type=Path, required=True, help="folder holding annotation/<type>/*.json")
    images = parent()
    images.add_argument("--image-dir", type=Path, help="undistorted image root (<split>/<take>/<frame>.jpg)")
    split = parent()
    split.add_argument("--split", default="test", choices=SPLITS)
    engines = parent()
    engines.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="auto: TensorRT, ONNX Runtime CUDA, torch CUDA, else ONNX Runtime CPU",
    )
    engines.add_argument("--threads", type=int, help="ONNX Runtime CPU threads (default: one per core)")
    presence = parent()
    presence.add_argument(
        "--min-score", type=float, default=0.5, help="presence probability for a hand to count"
    )
    tracking = parent()
    tracking.add_argument(
        "--detect-every", type=int, default=1, help="POTTER: run the detector every N frames"
    )
    return {
        "annotations": annotations,
        "dataset": dataset,
        "images": images,
        "split": split,
        "engines": engines,
        "presence": presence,
        "tracking": tracking,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hand-pose",
        description="Egocentric 3D hand pose: real and synthetic images, Ego-Exo4D evaluation, training and "
        "inference.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    shared = _shared_options()

    def command(
        name: str, run: Callable[[argparse.Namespace], None], help_text: str, *parents: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name, help=help_text, description=help_text, parents=[shared[p] for p in parents]
        )
        sub.set_defaults(run=run)
        return sub

    de = command(
        "detect",
        _detect,
        "Find the hands in image files of any size: side, score, box, 2D keypoints and 3D joints as JSON.",
        "engines",
        "presence",
    )
    de.add_argument("inputs", type=Path, nargs="+", metavar="IMAGE_OR_FOLDER", help="image files or folders")
    de.add_argument("--out", type=Path, required=True, help="JSON file to write")
    de.add_argument("--overlays", type=Path, help="folder for the images with the hands drawn (PNG)")
    de.add_argument(
        "--focal",
        type=float,
        help="focal length in pixels of every image (default: a 65-degree field of view across the longer "
        "side); it sets the hands' distance",
    )
    de.add_argument(
        "--lifting",
        choices=("world", "lifter", "potter"),
        default="world",
        help="3D: MediaPipe's world landmarks (default), or our lifter or POTTER (bundled unless --model)",
    )
    de.add_argument("--model", type=Path, help="the lifter or POTTER model file for --lifting")
    de.add_argument(
        "--orientation",
        choices=("portrait", "landscape"),
        default="portrait",
        help="portrait: upright, as photos are; landscape: turned on its side as Aria's RGB camera records",
    )
    de.add_argument("--variant", choices=("full", "lite"), default="full", help="MediaPipe's models")
    de.add_argument(
        "--mano",
        type=Path,
        metavar="DIR",
        help="folder with MANO_RIGHT.pkl and MANO_LEFT.pkl (from the MANO website): fit MANO to each hand, "
        "its parameters in the JSON, its mesh as OBJ in OUT_meshes/ (OUT without .json), drawn in overlays",
    )

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

    command(
        "check-data",
        _check_data,
        "Check a dataset: annotation files load and every frame has its image.",
        "dataset",
        "images",
        "annotations",
    )
    sy = command("synth", _synth, "Generate a synthetic dataset in the Ego-Exo4D release layout.")
    sy.add_argument("--out", type=Path, required=True, help="output folder")
    sy.add_argument("--takes", type=int, default=6, help="takes (split about 70/15/15 into train/val/test)")
    sy.add_argument("--frames", type=int, default=30, help="frames per take (3 video frames apart)")
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--raw", action="store_true", help="also write 1408x1408 fisheye frames and calibration")
    sy.add_argument(
        "--slam",
        action="store_true",
        help="also render each frame as a real Aria device's two grey SLAM cameras see it (for eval-views)",
    )
    sy.add_argument(
        "--events",
        action="store_true",
        help="event takes instead of images: rendered at a high rate, turned into events by a simulator, "
        "written per split as EventPacket (evt3) bags under OUT/events with their take index",
    )
    sy.add_argument(
        "--renders-per-frame",
        type=int,
        default=10,
        help="--events: renders per 30 fps video frame for the simulator (10: 300 Hz)",
    )

    tr = command(
        "train",
        _train,
        "Train POTTER, the lifter or the hand detector on processed ground truth (POTTER and the lifter with "
        "masked MSE and Adam, as the baselines). POTTER and the detector need --image-dir. Under torchrun "
        "(e.g. torchrun --nproc-per-node 8 -m hand_pose_core.cli train ...) each process trains its share "
        "of every batch (--batch-size per process).",
        "dataset",
        "images",
        "annotations",
    )
    tr.add_argument("--model", choices=("potter", "lifter", "detector"), required=True)
    tr.add_argument("--init-cls", type=Path, help="POTTER-cls S12 ImageNet weights for the basic stream")
    tr.add_argument("--pretrained", type=Path, help="start from this checkpoint's weights (ours or official)")
    tr.add_argument("--resume", type=Path, help="continue this checkpoint's training (optimizer, epoch)")
    tr.add_argument("--epochs", type=int, help="default: POTTER 70, lifter 30, detector 30")
    tr.add_argument("--batch-size", type=int, default=64)
    tr.add_argument("--lr", type=float, help="default: POTTER 1e-4, lifter 2e-4, detector 2e-3")
    tr.add_argument("--workers", type=int, default=0, help="data loading processes")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        help="jitter crops (POTTER), make 2D keypoints noisy and incomplete as a real detector's (the "
        "lifter), move views and add frames without hands (the detector); default: off for POTTER and the "
        "lifter, as the baselines, on for the detector",
    )
    tr.add_argument("--max-minutes", type=float, help="stop after the epoch in which this budget runs out")
    tr.add_argument(
        "--schedule",
        choices=("constant", "cosine"),
        default="constant",
        help="learning rate: constant (the baselines), or cosine decay over --epochs after a short warm-up",
    )
    tr.add_argument(
        "--mirror-left",
        action="store_true",
        help="POTTER: mirror left hands so that one model learns one kind of hand (recorded in the "
        "checkpoint; the official baseline does not mirror)",
    )
    tr.add_argument("--tiny", action="store_true", help="the small POTTER configuration (tests, demo)")
    tr.add_argument(
        "--event-dir",
        type=Path,
        help="event cameras: train POTTER or the detector on the event take bags of `synth --events` in this "
        "folder (seen through --representation) instead of --image-dir",
    )
    add_representation_options(tr)
    tr.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="autocast type of the training steps; auto: bf16 on CUDA, fp32 on the CPU; fp16 scales the "
        "loss (a gradient scaler)",
    )
    tr.add_argument("--out", type=Path, default=Path("out/train"), help="checkpoints and TensorBoard logs")

    inf = command(
        "infer",
        _infer,
        "Predict every hand of a split and write the submission format (POTTER needs --image-dir).",
        "dataset",
        "images",
        "split",
        "annotations",
        "engines",
        "presence",
        "tracking",
    )
    inf.add_argument(
        "--checkpoint",
        type=Path,
        help="a checkpoint (ours or official POTTER), an exported .onnx file or a TensorRT .engine "
        "(default: the bundled POTTER)",
    )
    inf.add_argument(
        "--boxes",
        choices=("annotation", "detector"),
        default="annotation",
        help="annotation: the file's boxes (POTTER) or 2D keypoints (lifter), as the benchmark; "
        "detector: find the hands",
    )
    inf.add_argument(
        "--detector",
        type=Path,
        help="detector checkpoint or ONNX file for --boxes detector (default: bundled)",
    )
    inf.add_argument(
        "--absolute", action="store_true", help="write camera-frame joints (score without --offset)"
    )
    inf.add_argument("--out", type=Path, required=True, help="submission JSON to write")

    evv = command(
        "eval-views",
        _eval_views,
        "Place the hands of a synthetic multi-view set (synth --slam) from the RGB camera alone and from the "
        "RGB and both SLAM cameras together, same frames, same models, and score both in the camera frame.",
        "split",
        "engines",
        "presence",
    )
    evv.add_argument("data", type=Path, help="the set's folder (hand-pose synth --slam --out DATA)")
    evv.add_argument(
        "--localisation",
        choices=("given", "detector", "mediapipe"),
        default="given",
        help="given: the annotated 2D keypoints in every view (placement alone is scored); detector or "
        "mediapipe: found in the frames",
    )
    evv.add_argument("--mode", choices=("lifter", "potter", "world"), default="lifter", help="the 3D stage")
    evv.add_argument("--model", type=Path, help="the lifter or POTTER model (default: bundled)")
    evv.add_argument(
        "--detector", type=Path, help="detector model for --localisation detector (default: bundled)"
    )
    evv.add_argument("--variant", choices=("full", "lite"), default="lite", help="MediaPipe's models")
    evv.add_argument("--out", type=Path, help="report JSON to write")

    eb = command(
        "egoexo2bag",
        _egoexo2bag,
        "Write a split's frames as an MCAP bag of images the node can play.",
        "dataset",
        "split",
        "annotations",
    )
    eb.add_argument("--image-dir", type=Path, required=True, help="undistorted image root")
    eb.add_argument(
        "--raw",
        action="store_true",
        help="the images are raw Aria fisheye frames (e.g. synth --raw's raw/): no CameraInfo is written; "
        "the node undistorts them (camera_source aria)",
    )
    eb.add_argument("--out", type=Path, required=True, help="bag folder to create")

    bj = command("bag2json", _bag2json, "Turn the node's hands recorded in a bag into the benchmark JSON.")
    bj.add_argument(
        "bag", type=Path, help="a bag of the node's hands (hand_pose_msgs/Hands) and the take index"
    )
    bj.add_argument("--out", type=Path, required=True, help="submission JSON to write (camera-frame joints)")
    bj.add_argument("--keep-readable", action="store_true", help=KEEP_READABLE_HELP)

    evs = command(
        "events",
        _events,
        "Decode event-camera data (a bag's EventPacket or dvs EventArray topic, or a Prophesee .raw file) to "
        "arrays x, y, t (ns), p (0/1) and the triggers in an .npz file.",
    )
    evs.add_argument("input", type=Path, help="a rosbag2 bag (sqlite3 or MCAP) or a .raw file")
    evs.add_argument("--out", type=Path, required=True, help=".npz file to write")
    evs.add_argument("--topic", help="the event topic, when the bag has several")
    evs.add_argument("--keep-readable", action="store_true", help=KEEP_READABLE_HELP)

    r2b = command(
        "raw2bag", _raw2bag, "Convert a Prophesee .raw (EVT 3.0) file to a bag of evt3 EventPackets."
    )
    r2b.add_argument("input", type=Path, help="a .raw recording")
    r2b.add_argument("--out", type=Path, required=True, help="bag folder to create (MCAP)")
    r2b.add_argument("--topic", default="/event_camera/events", help="topic (default: %(default)s)")
    r2b.add_argument(
        "--packet-ms",
        type=float,
        default=1.0,
        help="time per packet in ms, as a driver (default: %(default)s)",
    )

    ev_bag = command(
        "eval-bag",
        _eval_bag,
        "Run the live pipeline (the detector) over a take bag's images, or an event take bag's windows "
        "(`synth --events`; event models), and score it.",
        "engines",
        "presence",
        "tracking",
    )
    ev_bag.add_argument("bag", type=Path, help="a bag from `hand-pose egoexo2bag` or `synth --events`")
    ev_bag.add_argument("--gt", type=Path, required=True, help="ground truth with 3D for the bag's frames")
    ev_bag.add_argument("--keep-readable", action="store_true", help=KEEP_READABLE_HELP)
    ev_bag.add_argument(
        "--checkpoint", type=Path, help="POTTER or lifter model file (default: the bundled lifter)"
    )
    ev_bag.add_argument(
        "--detector", type=Path, help="detector model file (default: the bundled one, for images or events)"
    )
    ev_bag.add_argument(
        "--out", type=Path, default=Path("out/eval_bag"), help="folder for pred.json and the report"
    )

    ex = command(
        "export",
        _export,
        "Export a checkpoint to ONNX or a TensorRT engine and check it against PyTorch.",
        "annotations",
    )
    ex.add_argument("--checkpoint", type=Path, required=True, help="ours or an official POTTER checkpoint")
    ex.add_argument("--format", choices=("onnx", "tensorrt"), required=True)
    ex.add_argument(
        "--out", type=Path, required=True, help="X.onnx, or X.engine (X.onnx is written beside it)"
    )
    ex.add_argument("--fp16", action="store_true", help="compute in FP16 (for TensorRT)")
    ex.add_argument("--max-batch", type=int, default=2, help="largest batch (both hands of a frame: 2)")
    ex.add_argument(
        "--int8", action="store_true", help="static INT8 for ONNX Runtime on the CPU (calibrated)"
    )
    ex.add_argument(
        "--gt-dir", type=Path, help="INT8: calibrate on train hands, measure the cost on val hands"
    )
    ex.add_argument("--image-dir", type=Path, help="INT8 POTTER: undistorted image root")
    ex.add_argument("--calibration-hands", type=int, default=300, help="INT8: hands per split to use")

    be = command(
        "bench",
        _bench,
        "Latency and throughput of every usable backend against PyTorch eager.",
        "annotations",
    )
    be.add_argument("--models", nargs="+", choices=("potter", "lifter"), default=["potter", "lifter"])
    be.add_argument("--potter-checkpoint", type=Path, help="default: official size, seeded random weights")
    be.add_argument("--lifter-checkpoint", type=Path, help="default: reference size, seeded random weights")
    be.add_argument("--batches", nargs="+", type=int, default=[1, 2])
    be.add_argument("--iterations", type=int, default=30, help="timed calls per backend and batch")
    be.add_argument("--warmup", type=int, default=5)
    be.add_argument("--threads", type=int, help="ONNX Runtime CPU threads (default: one per core)")
    be.add_argument("--no-int8", action="store_true", help="skip INT8 quantisation")
    be.add_argument("--gt-dir", type=Path, help="INT8 calibration and accuracy data (default: synthetic)")
    be.add_argument("--image-dir", type=Path, help="undistorted image root for --gt-dir")
    be.add_argument("--out", type=Path, default=Path("out/bench"), help="folder for bench.json and bench.png")
    im = command(
        "import-mediapipe",
        _import_mediapipe,
        "Convert MediaPipe Hands' palm detector and hand landmark model (full and lite) from the PyPI wheel "
        "to ONNX files with model cards, checked against our PyTorch modules.",
    )
    im.add_argument("--out", type=Path, default=Path("models"), help="folder for the ONNX files")
    im.add_argument("--wheel", type=Path, help="a downloaded mediapipe wheel (default: pip downloads it)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # The ONNX exporter's libraries narrate every graph rewrite at INFO, and torch warns about torchvision.
    for name, level in (
        ("onnx_ir", logging.WARNING),
        ("onnxscript", logging.WARNING),
        ("torch.onnx", logging.ERROR),
    ):
        logging.getLogger(name).setLevel(level)
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
