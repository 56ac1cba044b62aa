"""MANO (Romero et al. 2017) read from the official `MANO_RIGHT.pkl` / `MANO_LEFT.pkl`, and its forward
model in numpy: shape and pose blend shapes, the joint regressor, linear blend skinning, and the five
fingertip vertices that MANO's 16 joints lack, giving the 21 joints in Ego-Exo4D order.

The files are licence-bound (the MANO website gives them to each user): the product never ships them.
They are Python 2 pickles holding chumpy objects (`chumpy.ch.Ch`, `chumpy.reordering.Select`) and a
scipy sparse matrix; chumpy no longer installs on current Python, so an unpickler maps those classes to
inert records of their pickled state and the arrays are rebuilt here (a `Ch` keeps its array in `x`, a
`Select` picks `idxs` of its source's flattened array and takes `preferred_shape`). Only the globals of
the official files are allowed, so a file that is not one can run nothing while it is read.

Why not the `smplx` package's MANO layer (or manopth): both are torch modules, and a node that runs ONNX
models never loads torch (docs/layout.md); the forward model is a few einsums; and the fitter
(`mano.fitting`) poses about a hundred parameter sets per step for two hands, which a batched numpy
forward of the joints alone does in well under a millisecond.
"""

from __future__ import annotations

import codecs
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from hand_pose_core.atomic import write_atomic
from hand_pose_core.errors import InputError

MODEL_FILES = {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}
NUM_VERTICES, NUM_FACES, NUM_MANO_JOINTS, NUM_BETAS = 778, 1538, 16, 10
NUM_POSE_FEATURES = 9 * (NUM_MANO_JOINTS - 1)  # lrotmin: R - I of each joint but the root
# Parameters of one hand, flat: axis-angle of the root (global rotation) and of the 15 finger joints
# in MANO's joint order (the full rotations, as smplx's layer with flat_hand_mean), shape, translation.
POSE_SIZE = 3 * NUM_MANO_JOINTS
PARAMETER_SIZE = POSE_SIZE + NUM_BETAS + 3
# MANO's joints: 0 wrist, 1-3 index, 4-6 middle, 7-9 pinky, 10-12 ring, 13-15 thumb (base to tip).
MANO_PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14])
# Fingertip vertices (thumb, index, middle, ring, pinky) as manopth and Hand4Whole take them; the left
# mesh's middle tip is one vertex over.
FINGERTIP_VERTICES = {"right": (745, 317, 444, 556, 673), "left": (745, 317, 445, 556, 673)}
# Ego-Exo4D's 21 joints (wrist, thumb, index, middle, ring, pinky) from MANO's 16 joints and the 5 tips.
EGOEXO_FROM_MANO = np.array([0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20])
# The joints of each depth of the tree: posing goes level by level, every finger at once.
_LEVELS = tuple(np.arange(first, NUM_MANO_JOINTS, 3) for first in (1, 2, 3))
_SHAPES = {
    "v_template": (NUM_VERTICES, 3),
    "shapedirs": (NUM_VERTICES, 3, NUM_BETAS),
    "posedirs": (NUM_VERTICES, 3, NUM_POSE_FEATURES),
    "J_regressor": (NUM_MANO_JOINTS, NUM_VERTICES),
    "weights": (NUM_VERTICES, NUM_MANO_JOINTS),
    "kintree_table": (2, NUM_MANO_JOINTS),
    "f": (NUM_FACES, 3),
    "hands_components": (45, 45),
    "hands_mean": (45,),
    "hands_coeffs": (-1, 45),  # MANO's training poses as PCA coefficients, any number of them
}


class _PickledState:
    """A chumpy object or scipy sparse matrix of the files: its pickled state, nothing run."""

    def __setstate__(self, state: object) -> None:
        self.state = state


class _ChumpyArray(_PickledState):
    pass


class _ChumpySelect(_PickledState):
    pass


class _SparseColumns(_PickledState):
    pass


_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's array unpickling function, wherever numpy keeps it
# What the official files (Python 2, numpy 1, old scipy) and the same written today refer to.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("__builtin__", "set"): set,
    ("builtins", "set"): set,
    ("_codecs", "encode"): codecs.encode,
    ("chumpy.ch", "Ch"): _ChumpyArray,
    ("chumpy.reordering", "Select"): _ChumpySelect,
    ("scipy.sparse.csc", "csc_matrix"): _SparseColumns,
    ("scipy.sparse._csc", "csc_matrix"): _SparseColumns,
}


class _ModelUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        found = _ALLOWED_GLOBALS.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a MANO model file does not")
        return found


def _array(value: object, key: str) -> np.ndarray:
    """The numeric array a file's entry holds (chumpy and sparse ones rebuilt); ValueError otherwise."""
    if isinstance(value, (_ChumpyArray, _ChumpySelect, _SparseColumns)) and not isinstance(value.state, dict):
        raise ValueError(f"{key} is a {type(value).__name__[1:]} without its state")
    if isinstance(value, _ChumpyArray):
        value = value.state.get("x")
    elif isinstance(value, _ChumpySelect):
        source = _array(value.state.get("a"), key).ravel()
        indices = np.asarray(value.state.get("idxs"))
        if indices.dtype.kind not in "iu" or (
            indices.size and not 0 <= indices.min() <= indices.max() < source.size
        ):
            raise ValueError(f"{key}'s chumpy selection has indices outside its source")
        value = source[indices].reshape(value.state.get("preferred_shape", indices.shape))
    elif isinstance(value, _SparseColumns):
        state = value.state
        data, rows, starts = (np.asarray(state.get(k)) for k in ("data", "indices", "indptr"))
        shape = tuple(state.get("_shape", ()))
        if len(shape) != 2 or starts.shape != (shape[1] + 1,) or rows.shape != data.shape:
            raise ValueError(f"{key} is a sparse matrix of inconsistent sizes")
        dense = np.zeros(shape)
        np.add.at(dense, (rows, np.repeat(np.arange(shape[1]), np.diff(starts))), data)
        value = dense
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        raise ValueError(f"{key} is not a numeric array ({type(value).__name__})")
    if not np.isfinite(value).all():
        raise ValueError(f"{key} has values that are not finite")
    return value


def _read_model_file(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a MANO pickle, checked for the real sizes; InputError naming the file otherwise."""
    try:
        with open(path, "rb") as stream:
            contents = _ModelUnpickler(stream, encoding="latin1").load()
    except FileNotFoundError:
        raise InputError(
            f"{path}: no such file (MANO's model files come from the MANO website, mano.is.tue.mpg.de, "
            "under its licence: put MANO_RIGHT.pkl and MANO_LEFT.pkl in one folder)"
        ) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except Exception as exc:  # a corrupt pickle raises almost anything (EOF, key, value, type errors)
        raise InputError(f"{path}: not a MANO model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(contents, dict):
        raise InputError(f"{path}: not a MANO model file (it holds a {type(contents).__name__}, not a dict)")
    for key, expected in (("bs_style", "lbs"), ("bs_type", "lrotmin")):
        if contents.get(key) != expected:
            raise InputError(f"{path}: {key} is {contents.get(key)!r}, MANO's is {expected!r}")
    arrays = {}
    try:
        for key, shape in _SHAPES.items():
            if key not in contents:
                raise ValueError(f"it has no {key}")
            arrays[key] = array = _array(contents[key], key)
            if len(array.shape) != len(shape) or any(
                e not in (-1, n) for n, e in zip(array.shape, shape, strict=False)
            ):
                raise ValueError(f"{key} is {array.shape}, expected {shape} (-1: any size)")
    except (ValueError, TypeError, IndexError) as exc:  # the arrays' checks, or state of another form
        raise InputError(f"{path}: not a MANO model file: {exc}") from None
    return arrays


@dataclass(frozen=True)
class RestShape:
    """What posing needs of a model for some of its vertices; each array may carry leading batch axes
    (the fitter stacks the two sides' models)."""

    joints: np.ndarray  # (..., 16, 3) template joints
    joint_shapes: np.ndarray  # (..., 16, 3, 10) the joints' shape blend shapes (regressed)
    points: np.ndarray  # (..., V, 3) template vertices
    point_shapes: np.ndarray  # (..., V, 3, 10)
    point_poses: np.ndarray  # (..., V, 3, 135)
    weights: np.ndarray  # (..., V, 16) skinning weights

    def take(self, index: np.ndarray) -> RestShape:
        """Rest shapes stacked on a leading axis, picked by `index` (e.g. each hand's side)."""
        return RestShape(*(np.asarray(a)[index] for a in vars(self).values()))


class ManoModel:
    """One side's MANO model as numpy arrays (metres), read from its official file."""

    def __init__(self, side: str, path: Path, arrays: dict[str, np.ndarray]) -> None:
        tree = arrays["kintree_table"].astype(np.int64)
        # The root's parent is -1, or 2**32 - 1 as the files store it unsigned.
        if not (np.array_equal(tree[0, 1:], MANO_PARENTS[1:]) and np.array_equal(tree[1], np.arange(16))):
            raise InputError(f"{path}: kintree_table is not MANO's joint tree")
        faces = arrays["f"].astype(np.int64)
        if faces.min() < 0 or faces.max() >= NUM_VERTICES:
            raise InputError(f"{path}: faces refer to vertices that do not exist")
        spread = arrays["hands_coeffs"].std(axis=0)
        if not (spread > 0).all():
            raise InputError(f"{path}: hands_coeffs has a pose component without spread")
        self.side, self.path, self.faces = side, Path(path), faces
        self.hands_mean = arrays["hands_mean"].astype(np.float64)
        # The pose prior's whitening: each finger pose as its PCA coefficients over their spread.
        self.pose_whitening = arrays["hands_components"] / spread[:, None]
        regressor = arrays["J_regressor"].astype(np.float64)
        self.rest = RestShape(
            regressor @ arrays["v_template"],
            np.einsum("jv,vck->jck", regressor, arrays["shapedirs"]),
            arrays["v_template"].astype(np.float64),
            arrays["shapedirs"].astype(np.float64),
            arrays["posedirs"].astype(np.float64),
            arrays["weights"].astype(np.float64),
        )
        self.fingertips = np.array(FINGERTIP_VERTICES[side])

    @classmethod
    def load(cls, path: Path, side: str) -> ManoModel:
        return cls(side, path, _read_model_file(Path(path)))

    def tips(self) -> RestShape:
        """The rest shape of the fingertip vertices alone: all the 21 joints need."""
        rest, tips = self.rest, self.fingertips
        points = (rest.points[tips], rest.point_shapes[tips], rest.point_poses[tips], rest.weights[tips])
        return RestShape(rest.joints, rest.joint_shapes, *points)

    def forward(self, parameters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(..., 61) parameters -> vertices (..., 778, 3) and the 21 joints (..., 21, 3) in Ego-Exo4D
        order, in the parameters' frame (metres)."""
        joints, vertices = pose(self.rest, parameters)
        return vertices, egoexo_joints(joints, vertices[..., self.fingertips, :])


def load_mano(folder: Path) -> dict[str, ManoModel]:
    """Both sides' models from a folder holding MANO_RIGHT.pkl and MANO_LEFT.pkl."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder (expected one with MANO_RIGHT.pkl and MANO_LEFT.pkl)")
    return {side: ManoModel.load(folder / name, side) for side, name in MODEL_FILES.items()}


def rotation_matrices(axis_angles: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle vectors -> (..., 3, 3) rotation matrices."""
    axis_angles = np.asarray(axis_angles, np.float64)
    matrices = Rotation.from_rotvec(axis_angles.reshape(-1, 3)).as_matrix()
    return matrices.reshape(*axis_angles.shape[:-1], 3, 3)


def pose(rest: RestShape, parameters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MANO's forward model: (..., 61) parameters -> its 16 joints (..., 16, 3) and the rest shape's
    vertices (..., V, 3), posed and moved. The root turns about the shaped wrist joint, as in smplx.
    Products are matmuls over the leading axes (numpy's einsum does not use BLAS when they broadcast)."""
    parameters = np.asarray(parameters, np.float64)
    lead = parameters.shape[:-1]
    rotations = rotation_matrices(parameters[..., :POSE_SIZE].reshape(*lead, NUM_MANO_JOINTS, 3))
    betas, translation = parameters[..., POSE_SIZE:-3, None], parameters[..., None, -3:]
    joints = rest.joints + _blend(rest.joint_shapes, betas)
    features = (rotations[..., 1:, :, :] - np.eye(3)).reshape(*lead, NUM_POSE_FEATURES, 1)
    points = rest.points + _blend(rest.point_shapes, betas) + _blend(rest.point_poses, features)
    # Forward kinematics: each joint's rotation and position in the hand's frame, level by level.
    world = rotations.copy()
    placed = np.broadcast_to(joints, (*lead, NUM_MANO_JOINTS, 3)).copy()
    for level in _LEVELS:
        parents = MANO_PARENTS[level]
        world[..., level, :, :] = world[..., parents, :, :] @ rotations[..., level, :, :]
        bones = joints[..., level, :, None] - joints[..., parents, :, None]
        placed[..., level, :] = placed[..., parents, :] + (world[..., parents, :, :] @ bones)[..., 0]
    # Linear blend skinning: each vertex moves with its joints' transforms, weighted.
    offsets = placed - (world @ joints[..., None])[..., 0]
    blended = (rest.weights @ world.reshape(*lead, NUM_MANO_JOINTS, 9)).reshape(*lead, -1, 3, 3)
    moved = (blended @ points[..., None])[..., 0] + rest.weights @ offsets
    return placed + translation, moved + translation


def _blend(shapes: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """(..., N, 3, C) blend shapes weighted by (..., C, 1) coefficients -> (..., N, 3) offsets."""
    flat = shapes.reshape(*shapes.shape[:-3], -1, shapes.shape[-1]) @ coefficients
    return flat.reshape(*flat.shape[:-2], -1, 3)


def egoexo_joints(joints: np.ndarray, fingertips: np.ndarray) -> np.ndarray:
    """MANO's 16 joints (..., 16, 3) and the 5 fingertips (..., 5, 3) -> (..., 21, 3) in Ego-Exo4D order."""
    return np.concatenate([joints, fingertips], axis=-2)[..., EGOEXO_FROM_MANO, :]


def write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """A mesh as a Wavefront OBJ file (vertices in metres, faces counted from 1), written atomically."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices.tolist()]
    lines += [f"f {a} {b} {c}" for a, b, c in (np.asarray(faces) + 1).tolist()]
    return write_atomic(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
