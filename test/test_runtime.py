"""Runtime engines: ONNX export parity (tiny and official size, FP32 and FP16), INT8 and its measured
cost, the TensorRT engine cache decisions, clean skips without CUDA or TensorRT, errors for missing or
corrupt model files, `hand-pose infer` on every backend, and `hand-pose bench`."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from hand_pose_core.egoexo.formats import load_predictions
from hand_pose_core.errors import InputError
from hand_pose_core.models.checkpoints import build_model, load_checkpoint, save_checkpoint
from hand_pose_core.models.normalization import JointNormalizer, KeypointNormalizer
from hand_pose_core.runtime.card import ModelCard, sample_batch
from hand_pose_core.runtime.engines import OnnxRuntimeEngine, choose_backend, load_engine
from hand_pose_core.runtime.export import export_model, export_onnx, parity_error
from hand_pose_core.runtime.tensorrt import (
    EngineKey,
    TensorRTEngine,
    cache_decision,
    cached_engine_path,
    default_engine_cache,
    engine_for,
    record_path,
    tensorrt_unavailable,
)
from hand_pose_core.runtime.torch_engine import TorchEngine

NO_TENSORRT = tensorrt_unavailable()
needs_tensorrt = pytest.mark.skipif(
    NO_TENSORRT is not None, reason=f"TensorRT cannot run here: {NO_TENSORRT}"
)


@pytest.fixture(scope="module")
def data(synth_data):
    return synth_data


@pytest.fixture(scope="module")
def onnx_files(models, tmp_path_factory):
    """Both models exported once, as `hand-pose export --format onnx` does (parity checked)."""
    root = tmp_path_factory.mktemp("onnx")
    return {name: export_model(models[name], "onnx", root / f"{name}.onnx") for name in ("potter", "lifter")}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["potter", "lifter"])
def test_onnx_export_matches_pytorch_within_a_hundredth_of_a_millimetre(name, models, onnx_files):
    result = onnx_files[name]
    assert result.backend == "onnxruntime" and result.precision == "fp32"
    assert result.parity <= result.tolerance == 0.01
    engine, reference = OnnxRuntimeEngine(result.files[0]), TorchEngine(load_checkpoint(models[name]))
    assert engine.card.name == name and engine.card.precision == "fp32"
    for batch in (1, 2, 5):  # the batch is dynamic
        inputs = sample_batch(engine.card, batch, seed=10 + batch)
        joints = engine.infer(inputs)
        assert joints.shape == (batch, 21, 3)
        assert np.abs(joints - reference.infer(inputs)).max() * 1000 <= 0.01


def gelu_form(node: onnx.NodeProto) -> str:
    return next((a.s.decode() for a in node.attribute if a.name == "approximate"), "none")


@pytest.mark.slow
def test_official_size_potter_exports_within_a_hundredth_of_a_millimetre(tmp_path):
    import torch

    torch.manual_seed(1)
    path = tmp_path / "official.pt"
    save_checkpoint(build_model("potter"), path, targets=JointNormalizer.official())
    loaded = load_checkpoint(path)
    engine = OnnxRuntimeEngine(export_onnx(loaded, tmp_path / "official.onnx"))
    assert engine.card.config == load_checkpoint(path).meta["config"]
    assert parity_error(engine, TorchEngine(loaded), batch=2) <= 0.01
    graph = onnx.load(tmp_path / "official.onnx").graph
    operators = {node.op_type for node in graph.node}
    assert "DepthToSpace" in operators and "Resize" not in operators  # the inference form's splits
    assert {gelu_form(node) for node in graph.node if node.op_type == "Gelu"} == {"none"}


@pytest.mark.slow
def test_fp16_export_stays_within_a_millimetre(models, tmp_path, run_cli):
    out = tmp_path / "potter16.onnx"
    code, stdout, stderr = run_cli(
        "export", "--checkpoint", models["potter"], "--format", "onnx", "--fp16", "--out", out
    )
    assert code == 0, stderr
    assert "parity with PyTorch (onnxruntime fp16)" in stdout
    engine = OnnxRuntimeEngine(out)
    assert engine.card.precision == "fp16"
    error = parity_error(engine, TorchEngine(load_checkpoint(models["potter"])))
    assert 0 < error <= 1.0  # FP16 differs, slightly


@pytest.mark.slow
def test_int8_is_calibrated_and_its_accuracy_cost_printed(models, data, tmp_path, run_cli):
    out = tmp_path / "potter.int8.onnx"
    code, stdout, stderr = run_cli(
        "export",
        "--checkpoint",
        models["potter"],
        "--format",
        "onnx",
        "--int8",
        "--gt-dir",
        data,
        "--image-dir",
        data / "image" / "undistorted",
        "--calibration-hands",
        100,
        "--out",
        out,
    )
    assert code == 0, stderr
    line = next(line for line in stdout.splitlines() if line.startswith("INT8 accuracy cost"))
    change = float(line.rsplit("change ", 1)[1].split()[0])
    assert abs(change) <= 0.5
    engine = OnnxRuntimeEngine(out)
    assert engine.card.precision == "int8"
    graph = onnx.load(out).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in graph.node}
    assert {gelu_form(node) for node in graph.node if node.op_type == "Gelu"} == {"tanh"}
    # The splits' pixel shuffles sit between a dequantise and a quantise, so they move 8-bit data.
    producers = {output: node.op_type for node in graph.node for output in node.output}
    consumers = {name: node.op_type for node in graph.node for name in node.input}
    shuffles = [node for node in graph.node if node.op_type == "DepthToSpace"]
    assert shuffles
    for node in shuffles:
        assert (producers[node.input[0]], consumers[node.output[0]]) == ("DequantizeLinear", "QuantizeLinear")


def test_int8_needs_calibration_data(models, tmp_path, run_cli):
    code, _, stderr = run_cli(
        "export",
        "--checkpoint",
        models["potter"],
        "--format",
        "onnx",
        "--int8",
        "--out",
        tmp_path / "q.onnx",
    )
    assert code == 2 and "--int8 needs --gt-dir" in stderr
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["potter", "lifter"])
def test_infer_gives_the_same_predictions_on_every_backend(name, models, data, tmp_path, run_cli):
    onnx_path = tmp_path / f"{name}.onnx"
    assert run_cli("export", "--checkpoint", models[name], "--format", "onnx", "--out", onnx_path)[0] == 0
    common = ["--gt-dir", data, "--image-dir", data / "image" / "undistorted", "--split", "val"]
    predictions = {}
    for backend, model in (("torch", models[name]), ("onnxruntime", onnx_path), ("auto", onnx_path)):
        out = tmp_path / f"{backend}.json"
        code, stdout, stderr = run_cli(
            "infer", "--checkpoint", model, "--backend", backend, *common, "--out", out
        )
        assert code == 0, stderr
        assert f"on {'onnxruntime' if backend == 'auto' else backend}" in stdout
        predictions[backend] = load_predictions(out)
    joints = {
        backend: np.array(
            [hands[side] for frames in p.values() for hands in frames.values() for side in sorted(hands)]
        )
        for backend, p in predictions.items()
    }
    assert len(joints["torch"]) > 10
    assert np.abs(joints["onnxruntime"] - joints["torch"]).max() * 1000 <= 0.01
    assert np.array_equal(joints["auto"], joints["onnxruntime"])


def test_auto_prefers_tensorrt_and_says_why_when_it_cannot(tmp_path, caplog):
    backend, why = choose_backend(tmp_path / "m.onnx")
    if NO_TENSORRT is None:
        assert backend == "tensorrt"
    else:
        assert backend == "onnxruntime" and NO_TENSORRT in why
    assert choose_backend(tmp_path / "m.pt")[0] == "torch"
    assert choose_backend(tmp_path / "m.engine")[0] == "tensorrt"


@pytest.mark.parametrize(
    ("path", "backend", "expected"),
    [
        ("m.pt", "onnxruntime", "export it first: hand-pose export --checkpoint"),
        ("m.onnx", "torch", "the torch backend runs checkpoints"),
        ("m.engine", "onnxruntime", "runs only with the tensorrt backend"),
        ("m.onnx", "fast", "expected one of auto, torch, torch-cuda, onnxruntime, tensorrt"),
    ],
)
def test_a_backend_that_cannot_run_the_file_is_refused(tmp_path, path, backend, expected):
    with pytest.raises(InputError, match=expected):
        choose_backend(tmp_path / path, backend)


@pytest.mark.slow
def test_missing_or_corrupt_onnx_names_the_file_and_the_export_command(onnx_files, tmp_path, run_cli):
    missing = tmp_path / "missing.onnx"
    with pytest.raises(InputError) as error:
        load_engine(missing, "onnxruntime")
    assert str(missing) in str(error.value) and "hand-pose export" in str(error.value)

    good = onnx_files["lifter"].files[0]
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    code, _, stderr = run_cli(
        "infer",
        "--checkpoint",
        corrupt,
        "--gt-dir",
        tmp_path,
        "--split",
        "test",
        "--out",
        tmp_path / "p.json",
    )
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1
    assert str(corrupt) in stderr and "truncated or corrupt" in stderr and "hand-pose export" in stderr

    bare = onnx.load(good)
    del bare.metadata_props[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    with pytest.raises(InputError, match="without a hand_pose_ros model card"):
        OnnxRuntimeEngine(tmp_path / "bare.onnx")
    onnx.helper.set_model_props(bare, {"hand_pose_ros.model_card": "{not json"})
    onnx.save(bare, tmp_path / "garbled.onnx")
    with pytest.raises(InputError, match=r"garbled\.onnx: unreadable model card"):
        OnnxRuntimeEngine(tmp_path / "garbled.onnx")


def test_missing_engine_names_the_file_and_the_export_command(tmp_path):
    engine = tmp_path / "potter.engine"
    with pytest.raises(InputError) as error:
        TensorRTEngine(engine)
    assert str(engine) in str(error.value)
    assert f"hand-pose export --checkpoint CHECKPOINT --format tensorrt --out {engine}" in str(error.value)


# ------------------------------------------------------------------------------------ engine cache


@pytest.fixture
def cached_engine(tmp_path):
    """An engine file with its record, as `build_engine` leaves them (the bytes are not an engine)."""
    engine = tmp_path / "potter.engine"
    engine.write_bytes(b"serialized engine")
    key = EngineKey("a" * 64, "NVIDIA H100 80GB HBM3", "11.4.0", 2)
    card = ModelCard("lifter", {}, JointNormalizer.official(), KeypointNormalizer.reference())
    record_path(engine).write_text(
        json.dumps({"key": asdict(key), "card": card.to_json(), "onnx": "potter.onnx"})
    )
    return engine, key


def test_engine_cache_is_used_when_everything_matches(cached_engine):
    engine, key = cached_engine
    assert cache_decision(engine, key) == (
        False,
        "cached engine matches the ONNX file, GPU and TensorRT version",
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"onnx_sha256": "b" * 64}, "the ONNX file changed"),
        ({"gpu": "NVIDIA H200"}, "built for another GPU (NVIDIA H100 80GB HBM3 -> NVIDIA H200)"),
        ({"tensorrt": "10.13.0"}, "built with another TensorRT version (11.4.0 -> 10.13.0)"),
        ({"max_batch": 4}, "built for another maximum batch (2 -> 4)"),
    ],
)
def test_engine_cache_rebuilds_when_the_key_differs(cached_engine, change, reason):
    engine, key = cached_engine
    rebuild, why = cache_decision(engine, replace(key, **change))
    assert rebuild and why.startswith(reason)


def test_engine_cache_rebuilds_when_forced_missing_or_unrecorded(cached_engine):
    engine, key = cached_engine
    assert cache_decision(engine, key, force=True) == (True, "rebuild forced")
    record_path(engine).write_text("{not json")
    assert cache_decision(engine, key) == (True, f"no readable cache record {record_path(engine).name}")
    engine.unlink()
    assert cache_decision(engine, key) == (True, "no cached engine")


def test_engines_are_cached_in_the_cache_folder_when_one_is_given(tmp_path, monkeypatch):
    onnx_file = tmp_path / "share" / "models" / "lifter.onnx"
    assert cached_engine_path(onnx_file, None) == onnx_file.with_suffix(".engine")  # beside it
    cache = tmp_path / "cache"
    engine = cached_engine_path(onnx_file, cache)
    assert engine.parent == cache and engine.name.startswith("lifter-") and engine.suffix == ".engine"
    other = cached_engine_path(tmp_path / "elsewhere" / "lifter.onnx", cache)
    assert other != engine  # two lifter.onnx files in different folders do not share an engine
    given = tmp_path / "my.engine"
    assert cached_engine_path(given, cache) == given  # an engine file is used where it is
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_engine_cache() == tmp_path / "xdg" / "hand_pose_ros" / "engines"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_engine_cache() == Path.home() / ".cache" / "hand_pose_ros" / "engines"


def test_without_cuda_or_tensorrt_the_tensorrt_paths_fail_cleanly(models, tmp_path, run_cli):
    if NO_TENSORRT is None:
        pytest.skip("TensorRT is usable here; the GPU tests cover it")
    with pytest.raises(InputError, match=f"TensorRT cannot run here: {NO_TENSORRT}"):
        engine_for(tmp_path / "m.onnx")
    code, _, stderr = run_cli(
        "export",
        "--checkpoint",
        models["potter"],
        "--format",
        "tensorrt",
        "--out",
        tmp_path / "p.engine",
    )
    assert code == 2 and NO_TENSORRT in stderr
    assert not list(tmp_path.iterdir())


@needs_tensorrt
@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 0.01), ("fp16", 1.0)])
def test_tensorrt_engine_matches_pytorch_and_is_cached(models, tmp_path, run_cli, precision, tolerance):
    out = tmp_path / "potter.engine"
    flags = ["--fp16"] if precision == "fp16" else []
    code, stdout, stderr = run_cli(
        "export", "--checkpoint", models["potter"], "--format", "tensorrt", *flags, "--out", out
    )
    assert code == 0, stderr
    assert f"parity with PyTorch (tensorrt {precision})" in stdout
    loaded = load_checkpoint(models["potter"])
    loaded.model.cuda()
    engine = load_engine(out.with_suffix(".onnx"))
    assert engine.backend == "tensorrt" and engine.card.precision == precision
    assert parity_error(engine, TorchEngine(loaded), batch=2) <= tolerance
    assert engine.infer(sample_batch(engine.card, 5)).shape == (5, 21, 3)  # split into max-batch calls
    built = out.stat().st_mtime_ns
    load_engine(out)
    assert out.stat().st_mtime_ns == built  # a cache hit does not rebuild


# ------------------------------------------------------------------------------------------ bench


@pytest.mark.slow
def test_bench_measures_every_usable_backend_against_eager(tmp_path, run_cli):
    out = tmp_path / "bench"
    code, stdout, stderr = run_cli(
        "bench", "--models", "lifter", "--iterations", 3, "--warmup", 1, "--out", out
    )
    assert code == 0, stderr
    report = json.loads((out / "bench.json").read_text())
    rows = {(r["backend"], r["batch"]): r for r in report["rows"]}
    assert set(rows) >= {
        (b, n) for b in ("torch eager", "onnxruntime fp32", "onnxruntime int8") for n in (1, 2)
    }
    for row in rows.values():
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        assert row["hands_per_s"] > 0
    assert rows[("torch eager", 1)]["vs_eager"] == 1.0
    ratio = rows[("onnxruntime fp32", 2)]["p50_ms"] / rows[("torch eager", 2)]["p50_ms"]
    assert rows[("onnxruntime fp32", 2)]["vs_eager"] == pytest.approx(ratio)
    assert set(report["int8_mpjpe_mm"]["lifter"]) == {"fp32", "int8"}
    if NO_TENSORRT is not None:
        assert f"tensorrt: {NO_TENSORRT}" in report["skipped"]
    assert (out / "bench.png").stat().st_size > 10_000
    assert "| lifter | onnxruntime int8 | cpu | 1 |" in stdout
