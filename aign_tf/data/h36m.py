"""Human3.6M in the preprocessed array layout of VideoPose3D, and plain 2D keypoint files.

Files (as written by VideoPose3D's ``data/prepare_data_h36m.py`` or downloaded with it):

- ``data_3d_h36m.npz``: key ``positions_3d``, a pickled dict subject -> action -> float32
  [T, 32, 3]: the 32 Human3.6M markers in METRES, in the Human3.6M world frame (+z up), at 50 Hz.
- ``data_2d_h36m_gt.npz`` / ``data_2d_h36m_cpn_ft_h36m_dbb.npz`` (or any file in the same
  format): key ``positions_2d``, a pickled dict subject -> action -> list of one array per camera
  (4 cameras), each float32 [T', 17, 2] in PIXELS (x right, y down, origin at the image's top-left
  corner) in the 17-joint layout below; key ``metadata``, a pickled dict with ``num_joints`` (17),
  ``keypoints_symmetry`` and, in the downloaded detection files, ``layout_name`` ("h36m"). Some
  videos have a few more frames than their motion capture (T' >= T); the extra frames at the end
  are dropped, as VideoPose3D does.

These files are pickles: load only files you trust.

`load_h36m` follows the paper (section 3.1): train on subjects S1, S5, S6, S7, S8, test on S9 and
S11, one third of the frame rate (every third frame, frames 0, 3, 6, ... of each sequence). The 32
markers are reduced to 17 joints with `H36M17_FROM_32` (the joints VideoPose3D keeps), in the
order of `H36M17_NAMES`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import zipfile
from collections.abc import Sequence

import numpy as np

from aign_tf.data.arrays import NUMPY_FILE_ERRORS
from aign_tf.errors import UserError

TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")
FPS = 50.0
EVERY = 3

NUM_JOINTS_FULL = 32
NUM_JOINTS = 17
# Indices into the 32 markers of the 17 joints VideoPose3D keeps (it drops the static ones).
H36M17_FROM_32: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
H36M17_NAMES: tuple[str, ...] = (
    "hip",
    "right_hip",
    "right_knee",
    "right_foot",
    "left_hip",
    "left_knee",
    "left_foot",
    "spine",
    "thorax",
    "neck_nose",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)
# Parent of each of the 17 joints (-1 for the root), as VideoPose3D rewires them.
H36M17_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
# (left joints, right joints) of the 17-joint layout, as in the files' metadata.
H36M17_SYMMETRY: tuple[tuple[int, ...], tuple[int, ...]] = ((4, 5, 6, 11, 12, 13), (1, 2, 3, 14, 15, 16))

# Coordinates larger than this (in metres) mean the file is in millimetres.
_MAX_METRES = 20.0


@dataclasses.dataclass(frozen=True)
class H36MPoses:
    """Frames of Human3.6M sequences, one row per kept frame.

    poses_3d: float32 [N, J, 3], metres, Human3.6M world frame (+z up); J = 17 or 32.
    poses_2d: float32 [N, C, 17, 2], pixels, one 2D pose per camera (C = 4), or None.
    subject, action: str [N]. frame: int64 [N], the frame's index in its 50 Hz sequence.
    """

    poses_3d: np.ndarray
    poses_2d: np.ndarray | None
    subject: np.ndarray
    action: np.ndarray
    frame: np.ndarray

    @property
    def num_joints(self) -> int:
        return int(self.poses_3d.shape[1])

    def __len__(self) -> int:
        return int(self.poses_3d.shape[0])


def _load_pickled_dict(path: str, key: str, expected: str) -> tuple[dict, dict]:
    """(``key``'s dict, metadata dict or {}) from a VideoPose3D ``.npz``."""
    if not os.path.isfile(path):
        raise UserError(f"Human3.6M file {path} does not exist: give the path of {expected}")
    if not zipfile.is_zipfile(path):
        raise UserError(f"Human3.6M file {path} is not an .npz archive: expected {expected}")
    try:
        with np.load(path, allow_pickle=True) as data:
            if key not in data.files:
                raise UserError(
                    f"Human3.6M file {path} has no {key!r} array (it has {sorted(data.files)}): "
                    f"expected {expected}"
                )
            value = data[key]
            metadata = data["metadata"] if "metadata" in data.files else None
    except UserError:
        raise
    except (*NUMPY_FILE_ERRORS, ImportError, AttributeError, pickle.UnpicklingError) as e:
        raise UserError(f"cannot read Human3.6M file {path} ({e}): expected {expected}") from e
    try:
        value = value.item()
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UserError(
            f"{key!r} in Human3.6M file {path} is not a pickled dict subject -> action: expected {expected}"
        )
    meta = {}
    if metadata is not None:
        try:
            meta = metadata.item()
        except ValueError:
            meta = None
        if not isinstance(meta, dict):
            raise UserError(f"'metadata' in Human3.6M file {path} is not a pickled dict: expected {expected}")
    return value, meta


_EXPECTED_3D = "a VideoPose3D data_3d_h36m.npz (positions_3d: subject -> action -> [T, 32, 3] metres)"
_EXPECTED_2D = (
    "a VideoPose3D data_2d_h36m_*.npz (positions_2d: subject -> action -> list of per-camera "
    "[T, 17, 2] pixels, in the h36m layout)"
)


def _resolve_subjects(subjects: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(subjects, str):
        named = {"train": TRAIN_SUBJECTS, "test": TEST_SUBJECTS, "all": TRAIN_SUBJECTS + TEST_SUBJECTS}
        if subjects in named:
            return named[subjects]
        subjects = (subjects,)
    subjects = tuple(dict.fromkeys(subjects))
    if not subjects or not all(isinstance(s, str) for s in subjects):
        raise UserError(
            f"subjects must be 'train', 'test', 'all' or a list of names like 'S9', got {subjects!r}"
        )
    return subjects


def _finite_numbers(array: np.ndarray) -> bool:
    """Whether `array` holds real numbers (not strings, objects, booleans or complex) and no NaN or infinity."""
    return array.dtype.kind in "fiu" and bool(np.all(np.isfinite(array)))


def _check_3d(path: str, subject: str, action: str, array, joints: int) -> np.ndarray:
    where = f"Human3.6M file {path}, {subject}/{action}"
    if not isinstance(array, np.ndarray) or array.ndim != 3 or array.shape[2] != 3:
        shape = getattr(array, "shape", type(array).__name__)
        raise UserError(f"{where} holds {shape}, expected an array [T, 32, 3] of 3D positions in metres")
    if array.shape[1] not in (NUM_JOINTS_FULL, NUM_JOINTS) or (
        array.shape[1] == NUM_JOINTS and joints == NUM_JOINTS_FULL
    ):
        raise UserError(
            f"{where} has {array.shape[1]} joints, expected 32 (the Human3.6M markers)"
            + (" or 17 (already reduced)" if joints == NUM_JOINTS else "")
        )
    if array.shape[0] == 0:
        raise UserError(f"{where} has no frames, expected an array [T>0, 32, 3]")
    if not _finite_numbers(array):
        raise UserError(f"{where} holds non-numeric or non-finite values: replace the file with an intact copy")
    if np.abs(array).max() > _MAX_METRES:
        raise UserError(
            f"{where} has coordinates up to {np.abs(array).max():.0f}, which look like millimetres: "
            "expected metres (divide by 1000, as VideoPose3D does)"
        )
    if array.shape[1] == NUM_JOINTS_FULL and joints == NUM_JOINTS:
        array = array[:, H36M17_FROM_32]
    return array.astype(np.float32, copy=False)


def _check_2d(path: str, subject: str, action: str, views, length: int, num_cameras: int | None):
    where = f"Human3.6M file {path}, {subject}/{action}"
    if isinstance(views, np.ndarray) and views.ndim == 4:
        views = list(views)
    if not isinstance(views, (list, tuple)) or not views:
        raise UserError(f"{where} holds {type(views).__name__}, expected a list of per-camera [T, 17, 2] arrays")
    if num_cameras is not None and len(views) != num_cameras:
        raise UserError(f"{where} has {len(views)} cameras, expected {num_cameras} like the other sequences")
    out = []
    for c, view in enumerate(views):
        if not isinstance(view, np.ndarray) or view.ndim != 3 or view.shape[1:] != (NUM_JOINTS, 2):
            shape = getattr(view, "shape", type(view).__name__)
            raise UserError(f"{where}, camera {c} holds {shape}, expected [T, 17, 2] pixels (h36m layout)")
        if view.shape[0] < length:
            raise UserError(
                f"{where}, camera {c} has {view.shape[0]} frames but the 3D file has {length}: "
                "expected at least as many 2D frames as 3D frames (are the two files from the same source?)"
            )
        if not _finite_numbers(view[:length]):
            raise UserError(f"{where}, camera {c} holds non-numeric or non-finite values, expected float pixels")
        out.append(view[:length].astype(np.float32, copy=False))
    return np.stack(out, axis=1)  # [T, C, 17, 2]


def load_h36m(
    path_3d: str,
    path_2d: str | None = None,
    *,
    subjects: str | Sequence[str] = "train",
    every: int = EVERY,
    joints: int = NUM_JOINTS,
) -> H36MPoses:
    """Human3.6M frames of ``subjects`` ("train" = `TRAIN_SUBJECTS`, "test" = `TEST_SUBJECTS`,
    "all", or a list of names), every ``every``-th frame of each sequence, with ``joints`` = 17
    (`H36M17_FROM_32`) or 32 joints; with ``path_2d`` also each frame's 2D pose in every camera.

    Sequences come subject by subject (in the order given), actions in sorted order.
    """
    if joints not in (NUM_JOINTS, NUM_JOINTS_FULL):
        raise UserError(f"joints must be 17 or 32, got {joints!r}")
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise UserError(f"every must be a positive integer (3 = one third of the frame rate), got {every!r}")
    subjects = _resolve_subjects(subjects)
    data_3d, _ = _load_pickled_dict(path_3d, "positions_3d", _EXPECTED_3D)
    data_2d = None
    if path_2d is not None:
        data_2d, meta = _load_pickled_dict(path_2d, "positions_2d", _EXPECTED_2D)
        layout = meta.get("layout_name", "h36m")
        if layout != "h36m":
            raise UserError(
                f"Human3.6M file {path_2d} holds keypoints in the {layout!r} layout: expected the "
                "17-joint 'h36m' layout (convert the keypoints first)"
            )
        if meta.get("num_joints", NUM_JOINTS) != NUM_JOINTS:
            raise UserError(
                f"Human3.6M file {path_2d} declares {meta['num_joints']} joints: expected 17 (h36m layout)"
            )

    poses_3d, poses_2d, subject_col, action_col, frame_col = [], [], [], [], []
    num_cameras = None
    for subject in subjects:
        for name, data, path in (("3D", data_3d, path_3d), ("2D", data_2d, path_2d)):
            if data is not None and not isinstance(data.get(subject), dict):
                raise UserError(
                    f"Human3.6M file {path} has no subject {subject!r} (it has "
                    f"{sorted(map(str, data))}): expected {_EXPECTED_3D if name == '3D' else _EXPECTED_2D}"
                )
        actions = data_3d[subject]
        for action in sorted(actions):
            seq = _check_3d(path_3d, subject, action, actions[action], joints)
            keep = np.arange(0, seq.shape[0], every)
            poses_3d.append(seq[keep])
            if data_2d is not None:
                if action not in data_2d[subject]:
                    raise UserError(
                        f"Human3.6M file {path_2d} has no action {action!r} for {subject} (the 3D file "
                        f"{path_3d} has it): use 2D and 3D files from the same preparation"
                    )
                views = _check_2d(path_2d, subject, action, data_2d[subject][action], seq.shape[0], num_cameras)
                num_cameras = views.shape[1]
                poses_2d.append(views[keep])
            subject_col.append(np.full(keep.shape, subject))
            action_col.append(np.full(keep.shape, str(action)))
            frame_col.append(keep)
    if not poses_3d:
        raise UserError(f"Human3.6M file {path_3d} has no sequences for subjects {list(subjects)}")
    return H36MPoses(
        poses_3d=np.concatenate(poses_3d),
        poses_2d=np.concatenate(poses_2d) if data_2d is not None else None,
        subject=np.concatenate(subject_col),
        action=np.concatenate(action_col),
        frame=np.concatenate(frame_col).astype(np.int64),
    )


def _read_keypoint_array(path: str):
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".json":
            with open(path, encoding="utf-8") as f:
                value = json.load(f)
            if isinstance(value, dict):
                if "keypoints" not in value:
                    raise UserError(
                        f"keypoint file {path} is a JSON object without 'keypoints': expected a list "
                        "[N][J][2] or {\"keypoints\": [N][J][2]}"
                    )
                value = value["keypoints"]
            return np.asarray(value)  # numbers only: booleans and strings are refused below
        if ext == ".npy":
            return np.load(path, allow_pickle=False)
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as data:
                if "keypoints" in data.files:
                    return data["keypoints"]
                if len(data.files) == 1:
                    return data[data.files[0]]
                raise UserError(
                    f"keypoint file {path} holds arrays {sorted(data.files)}: expected one array, or one "
                    "named 'keypoints', of shape [N, J, 2]"
                )
    except UserError:
        raise
    except (*NUMPY_FILE_ERRORS, TypeError) as e:  # RecursionError (deeply nested JSON) is a RuntimeError
        raise UserError(
            f"cannot read keypoint file {path} ({e}): expected a numeric array [N, J, 2] of pixels"
        ) from e
    raise UserError(f"keypoint file {path} has extension {ext!r}: expected .npz, .npy or .json")


def load_keypoints_2d(path: str, num_joints: int) -> np.ndarray:
    """2D keypoints without 3D ground truth: float32 [N, num_joints, 2] in pixels.

    ``path`` is a ``.npz`` (the array named ``keypoints``, or its only array), a ``.npy``, or a
    ``.json`` (a nested list [N][J][2], or an object whose ``keypoints`` is one). A last axis of
    3 (x, y, confidence or visibility, as in MPII/COCO exports) is accepted; the third value is
    dropped.
    """
    if isinstance(num_joints, bool) or not isinstance(num_joints, (int, np.integer)) or num_joints < 1:
        raise UserError(f"num_joints must be a positive integer, got {num_joints!r}")
    if not os.path.isfile(path):
        raise UserError(f"keypoint file {path} does not exist: give a .npz/.npy/.json of [N, {num_joints}, 2] pixels")
    array = _read_keypoint_array(path)
    if array.ndim != 3 or array.shape[2] not in (2, 3) or array.shape[0] == 0:
        raise UserError(
            f"keypoint file {path} holds an array of shape {array.shape}: expected [N>0, {num_joints}, 2] "
            "(x, y pixels) or [N, J, 3] (x, y, confidence)"
        )
    if array.shape[1] != num_joints:
        raise UserError(f"keypoint file {path} has {array.shape[1]} joints per pose: expected {num_joints}")
    if array.dtype.kind not in "fiu":
        raise UserError(f"keypoint file {path} holds {array.dtype} values: expected float pixels")
    array = array[..., :2].astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise UserError(f"keypoint file {path} holds NaN or infinite coordinates: fill or drop those poses")
    return array
