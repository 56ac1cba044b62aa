"""MANO: the official files read without chumpy, the forward model, fitting, and what the tools make of it.

MANO's files are licence-bound, so the model is the stand-in of MANO's sizes and layout
(`mano.stand_in`), written as the official files are: Python 2 era pickles whose `shapedirs` is a chumpy
`Select` of a chumpy `Ch`, whose `J_regressor` is a scipy CSC matrix, and whose globals are the old
module names (numpy.core, scipy.sparse.csc); the chumpy classes are stand-ins under the real module
names, gone again before the files are read.
"""

from __future__ import annotations

import json
import pickle
import sys
import types
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from scipy.sparse import csc_matrix
from scipy.spatial.transform import Rotation

from hand_pose_core.errors import InputError
from hand_pose_core.geometry.camera import PinholeCamera, Turn
from hand_pose_core.geometry.skeleton import FINGER_JOINTS
from hand_pose_core.mano.fitting import ManoFitter
from hand_pose_core.mano.model import FINGERTIP_VERTICES, MODEL_FILES, ManoModel, load_mano
from hand_pose_core.mano.stand_in import sample_parameters, stand_in_arrays

SIDES = ("right", "left")
REAL_PHOTO = Path(__file__).resolve().parents[1] / "data" / "real" / "mp_rock_one_hand.jpg"
# MANO's own joints of each finger (base to tip), the tip being a vertex.
MANO_FINGERS = {
    "thumb": (13, 14, 15),
    "index": (1, 2, 3),
    "middle": (4, 5, 6),
    "ring": (10, 11, 12),
    "pinky": (7, 8, 9),
}


def fake_chumpy() -> dict[str, types.ModuleType]:
    """Modules `chumpy.ch` (Ch) and `chumpy.reordering` (Select) whose objects pickle as chumpy's do:
    their attributes as the state, the array of a Ch in `x`."""
    ch, reordering = types.ModuleType("chumpy.ch"), types.ModuleType("chumpy.reordering")

    class Ch:
        def __init__(self, x: np.ndarray) -> None:
            self.x, self._dirty_vars = x, {"x"}

    class Select:
        def __init__(self, a: Ch, idxs: np.ndarray, preferred_shape: tuple[int, ...]) -> None:
            self.a, self.idxs, self.preferred_shape = a, idxs, preferred_shape

    for cls, module in ((Ch, ch), (Select, reordering)):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
    ch.Ch, reordering.Select = Ch, Select
    return {"chumpy": types.ModuleType("chumpy"), "chumpy.ch": ch, "chumpy.reordering": reordering}


def write_model_file(path: Path, arrays: dict, chumpy: bool) -> Path:
    """A MANO pickle as distributed (`chumpy`), or as chumpy-free conversion scripts leave it (numpy
    arrays only)."""
    contents = dict(arrays)
    if not chumpy:
        path.write_bytes(pickle.dumps(contents, protocol=2))
        return path
    modules = fake_chumpy()
    with mock.patch.dict(sys.modules, modules):
        shapedirs = contents["shapedirs"]
        reversed_source = modules["chumpy.ch"].Ch(shapedirs.ravel()[::-1].copy())
        indices = np.arange(shapedirs.size)[::-1].copy()
        contents["shapedirs"] = modules["chumpy.reordering"].Select(reversed_source, indices, shapedirs.shape)
        contents["J"] = modules["chumpy.ch"].Ch(contents["J_regressor"] @ contents["v_template"])
        contents["J_regressor"] = csc_matrix(contents["J_regressor"])
        data = pickle.dumps(contents, protocol=2)
    for new, old in (
        (b"numpy._core.multiarray", b"numpy.core.multiarray"),
        (b"scipy.sparse._csc", b"scipy.sparse.csc"),
    ):
        data = data.replace(b"\n" + new + b"\n", b"\n" + old + b"\n").replace(
            b"c" + new + b"\n", b"c" + old + b"\n"
        )
    assert b"chumpy.ch\nCh" in data and b"numpy._core" not in data and b"scipy.sparse.csc\n" in data
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def mano_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mano")
    for side, name in MODEL_FILES.items():
        write_model_file(folder / name, stand_in_arrays(side), chumpy=True)
    return folder


@pytest.fixture(scope="module")
def models(mano_folder: Path) -> dict[str, ManoModel]:
    return load_mano(mano_folder)


@pytest.mark.parametrize("chumpy", [True, False], ids=["as distributed", "converted"])
def test_the_loader_reads_model_files_without_chumpy(tmp_path: Path, chumpy: bool) -> None:
    arrays = stand_in_arrays("left", seed=3)
    model = ManoModel.load(write_model_file(tmp_path / "MANO_LEFT.pkl", arrays, chumpy), "left")
    assert "chumpy" not in sys.modules
    np.testing.assert_array_equal(model.rest.points, arrays["v_template"])
    np.testing.assert_array_equal(model.rest.point_shapes, arrays["shapedirs"])
    np.testing.assert_allclose(model.rest.joints, arrays["J_regressor"] @ arrays["v_template"])
    np.testing.assert_array_equal(model.faces, arrays["f"])
    assert model.rest.point_poses.shape == (778, 3, 135) and model.rest.weights.shape == (778, 16)


def corrupt(path: Path, change: str) -> None:
    arrays = stand_in_arrays("right")
    if change == "truncated":
        write_model_file(path, arrays, chumpy=True)
        path.write_bytes(path.read_bytes()[:5000])
    elif change == "nine betas":
        write_model_file(path, arrays | {"shapedirs": arrays["shapedirs"][..., :9]}, chumpy=True)
    elif change == "no weights":
        write_model_file(path, {k: v for k, v in arrays.items() if k != "weights"}, chumpy=False)
    elif change == "code":
        path.write_bytes(pickle.dumps({"v_template": print}, protocol=2))
    elif change == "a list":
        path.write_bytes(pickle.dumps([1, 2], protocol=2))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing", "MANO_RIGHT.pkl: no such file (MANO's model files come from the MANO website"),
        ("truncated", "MANO_RIGHT.pkl: not a MANO model file (UnpicklingError"),
        (
            "nine betas",
            "MANO_RIGHT.pkl: not a MANO model file: shapedirs is (778, 3, 9), expected (778, 3, 10)",
        ),
        ("no weights", "MANO_RIGHT.pkl: not a MANO model file: it has no weights"),
        ("code", "MANO_RIGHT.pkl: not a MANO model file (UnpicklingError: it refers to __builtin__.print"),
        ("a list", "MANO_RIGHT.pkl: not a MANO model file (it holds a list, not a dict)"),
    ],
)
def test_bad_model_files_are_one_line_errors_naming_the_file(
    tmp_path: Path, change: str, message: str
) -> None:
    write_model_file(tmp_path / "MANO_LEFT.pkl", stand_in_arrays("left"), chumpy=False)
    corrupt(tmp_path / "MANO_RIGHT.pkl", change)
    with pytest.raises(InputError) as error:
        load_mano(tmp_path)
    assert message in str(error.value) and "\n" not in str(error.value)


def reference_forward(model: ManoModel, parameters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MANO as its paper writes it, one 4x4 transform per joint down the tree: vertices, and the 16
    joints where the transforms put them."""
    rotations = Rotation.from_rotvec(parameters[:48].reshape(16, 3)).as_matrix()
    betas, translation = parameters[48:58], parameters[58:]
    shaped = model.rest.points + model.rest.point_shapes @ betas
    joints = model.rest.joints + model.rest.joint_shapes @ betas
    posed = shaped + model.rest.point_poses @ (rotations[1:] - np.eye(3)).ravel()
    parents = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
    world = []
    for joint, parent in enumerate(parents):
        local = np.eye(4)
        local[:3, :3] = rotations[joint]
        local[:3, 3] = joints[joint] - (joints[parent] if parent >= 0 else 0)
        world.append(local if parent < 0 else world[parent] @ local)
    unposed = [
        w @ np.block([[np.eye(3), -joints[j][:, None]], [np.zeros((1, 3)), 1]]) for j, w in enumerate(world)
    ]
    skinning = np.einsum("vj,jab->vab", model.rest.weights, np.stack(unposed))
    vertices = np.einsum("vab,vb->va", skinning, np.c_[posed, np.ones(len(posed))])[:, :3]
    return vertices + translation, np.stack([w[:3, 3] for w in world]) + translation


@pytest.mark.parametrize("side", SIDES)
def test_the_forward_model_poses_joints_and_vertices_as_mano_defines_them(
    models: dict[str, ManoModel], side: str
) -> None:
    model = models[side]
    for parameters in sample_parameters(model, np.random.default_rng(1), 3):
        vertices, joints = model.forward(parameters)
        expected_vertices, mano_joints = reference_forward(model, parameters)
        np.testing.assert_allclose(vertices, expected_vertices, atol=1e-12)
        # Ego-Exo4D's order: the wrist, then each finger's three MANO joints and its tip vertex.
        tips = dict(zip(("thumb", "index", "middle", "ring", "pinky"), FINGERTIP_VERTICES[side], strict=True))
        np.testing.assert_allclose(joints[0], mano_joints[0], atol=1e-12)
        for finger, ours in FINGER_JOINTS.items():
            expected = np.vstack([mano_joints[list(MANO_FINGERS[finger])], expected_vertices[tips[finger]]])
            np.testing.assert_allclose(joints[list(ours)], expected, atol=1e-12)


def synthetic_hands(models: dict[str, ManoModel], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Both hands' true parameters (2, 61) and joints (2, 21, 3)."""
    truth = np.stack([sample_parameters(models[side], rng, 1)[0] for side in SIDES])
    return truth, np.stack([models[side].forward(x)[1] for side, x in zip(SIDES, truth, strict=True)])


def test_fitting_recovers_synthetic_hands_to_within_a_millimetre(models: dict[str, ManoModel]) -> None:
    fitter, rng = ManoFitter(models), np.random.default_rng(7)
    camera = PinholeCamera.linear(640, 480, 500.0)
    for with_keypoints in (False, True):
        for _ in range(3):  # new hands: cold starts
            truth, joints = synthetic_hands(models, rng)
            fitter.reset()
            keypoints = camera.project(joints) if with_keypoints else None
            fits = fitter.fit(list(SIDES), joints, keypoints, camera if with_keypoints else None)
            for fit, target in zip(fits, joints, strict=True):
                assert np.linalg.norm(fit.joints - target, axis=-1).max() < 0.001
                assert fit.error_m < 0.0005
        moved = truth + rng.normal(0, 0.03, truth.shape)  # the next frame: warm starts
        joints = np.stack([models[side].forward(x)[1] for side, x in zip(SIDES, moved, strict=True)])
        fits = fitter.fit(list(SIDES), joints, camera.project(joints) if with_keypoints else None, camera)
        assert all(
            np.linalg.norm(f.joints - j, axis=-1).max() < 0.001 for f, j in zip(fits, joints, strict=True)
        )


def test_a_fit_turned_to_another_frame_is_the_same_mesh_there(models: dict[str, ManoModel]) -> None:
    fitter = ManoFitter(models)
    _, joints = synthetic_hands(models, np.random.default_rng(2))
    turn = Turn("landscape", "portrait")
    for fit in fitter.fit(list(SIDES), joints):
        turned = fit.turned(turn)
        vertices, turned_joints = models[fit.side].forward(turned.parameters)
        np.testing.assert_allclose(vertices, turn.points_3d(fit.vertices), atol=1e-9)
        np.testing.assert_allclose(turned.vertices, vertices, atol=1e-9)
        np.testing.assert_allclose(turned_joints, turn.points_3d(fit.joints), atol=1e-9)


def test_the_mesh_marker_is_a_triangle_list_in_the_side_colour(models: dict[str, ManoModel]) -> None:
    from visualization_msgs.msg import Marker

    from hand_pose_ros.messages import mesh_marker

    fit = ManoFitter(models).fit(["left"], synthetic_hands(models, np.random.default_rng(4))[1][1:])[0]
    marker = mesh_marker(None, "left", fit)
    assert marker.type == Marker.TRIANGLE_LIST and marker.ns == "left_hand" and len(marker.points) == 3 * 1538
    corner = fit.vertices[fit.faces[5, 2]]
    assert (marker.points[17].x, marker.points[17].y, marker.points[17].z) == tuple(corner)
    assert mesh_marker(None, "left", None).action == Marker.DELETE


def test_detect_writes_mano_meshes_parameters_and_overlays(
    mano_folder: Path, tmp_path: Path, run_cli
) -> None:
    out, overlays = tmp_path / "hands.json", tmp_path / "overlays"
    code, printed, _ = run_cli(
        "detect", REAL_PHOTO, "--out", out, "--overlays", overlays, "--mano", mano_folder
    )
    assert code == 0, printed
    (image,) = json.loads(out.read_text())["images"]
    (hand,) = image["hands"]
    assert [len(hand["mano"][k]) for k in ("global_orient", "hand_pose", "betas", "transl")] == [3, 45, 10, 3]
    mesh = (tmp_path / "hands_meshes" / f"{REAL_PHOTO.stem}_{hand['side']}.obj").read_text().splitlines()
    assert (
        sum(line.startswith("v ") for line in mesh) == 778
        and sum(line.startswith("f ") for line in mesh) == 1538
    )
    assert (overlays / f"{REAL_PHOTO.stem}.png").is_file()
    code, _, error = run_cli("detect", REAL_PHOTO, "--out", out, "--mano", tmp_path / "nothing")
    assert code == 2 and "nothing: no such folder" in error


def test_the_hand_message_carries_the_parameters_in_the_output_frame(models: dict[str, ManoModel]) -> None:
    from std_msgs.msg import Header

    from hand_pose_core.live.pipeline import HandResult
    from hand_pose_ros.messages import hands_message

    fit = ManoFitter(models).fit(["right"], synthetic_hands(models, np.random.default_rng(5))[1][:1])[0]
    plain = HandResult("right", 0.9, np.zeros(4), np.zeros((21, 2)), fit.joints - fit.joints[0], fit.joints)
    fitted = HandResult(**vars(plain) | {"mano": fit})
    turn = Turn("portrait", "landscape")
    without, with_mano = hands_message(
        Header(), [plain, fitted], PinholeCamera.linear(64, 64, 50.0), turn
    ).hands
    assert len(without.mano_betas) == len(without.mano_hand_pose) == 0
    turned = fit.turned(turn)
    for name in ("global_orient", "hand_pose", "betas", "transl"):
        np.testing.assert_allclose(getattr(with_mano, f"mano_{name}"), getattr(turned, name), atol=1e-6)


def test_multi_view_fits_mano_to_the_joints_placed_from_every_view(mano_folder: Path) -> None:
    from hand_pose_core.geometry.aria import device_views, load_device_calibration
    from hand_pose_core.live.multiview import MultiViewPipeline, recording_views
    from hand_pose_core.live.pipeline import HandPosePipeline, PipelineConfig

    recording = Path(__file__).resolve().parents[1] / "data" / "aria" / "aea_recording.vrs"
    rig = [view for view, _ in device_views(load_device_calibration(recording), str(recording))]
    pipeline = HandPosePipeline.load(
        None, rig[0].camera, config=PipelineConfig(variant="lite"), mano=mano_folder
    )
    calls = []  # the joints each fit was given
    fit = pipeline.mano.fit
    pipeline.mano.fit = lambda sides, joints, *rest: (calls.append(joints.copy()), fit(sides, joints, *rest))[
        1
    ]
    frames = [result.frame for _, result in recording_views(recording, MultiViewPipeline(pipeline, rig))]
    hands = [hand for frame in frames for hand in frame.hands]
    assert hands and all(hand.mano is not None for hand in hands)
    # Once a frame with hands, to the joints as placed from every view (not the reference view's first).
    placed = [np.stack([hand.camera for hand in frame.hands]) for frame in frames if frame.hands]
    assert len(calls) == len(placed)
    for given, final in zip(calls, placed, strict=True):
        np.testing.assert_array_equal(given, final)
    for hand in hands:
        assert np.linalg.norm(hand.mano.joints - hand.camera, axis=-1).mean() == pytest.approx(
            hand.mano.error_m
        )


def test_multi_view_fits_mano_once_to_the_triangulated_joints(mano_folder: Path) -> None:
    """Three views of a hand with its keypoints given: the fit gets the joints placed from every view,
    which differ from the reference view's own placement."""
    from conftest import GtBuilder

    from hand_pose_core.live.multiview import MultiViewPipeline
    from hand_pose_core.live.pipeline import GivenHand, HandPosePipeline, PipelineConfig
    from hand_pose_core.runtime.bundled import model_or_bundled
    from hand_pose_core.synth.generator import rig_views

    rig = [view for view, _ in rig_views()]
    lifter = model_or_bundled(None, "lifter")
    pipeline = HandPosePipeline.load(lifter, rig[0].camera, None, PipelineConfig("given"), mano=mano_folder)
    calls = []
    fit = pipeline.mano.fit
    pipeline.mano.fit = lambda sides, joints, *rest: (calls.append(joints.copy()), fit(sides, joints, *rest))[
        1
    ]
    joints = GtBuilder(1).hand_joints(wrist=(0.2, -0.1, 0.4))
    given = {view.name: [GivenHand("right", None, view.project(joints))] for view in rig}
    result = MultiViewPipeline(pipeline, rig).process({}, None, given)
    (hand,) = result.frame.hands
    assert len(result.used["right"]) == 3 and len(calls) == 1
    np.testing.assert_array_equal(calls[0][0], hand.camera)
    assert np.abs(hand.camera - result.single["right"]).max() > 0.01
