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

Cameras: the files hold no calibration. `CAMERAS` (intrinsics, the same for every subject) and
`EXTRINSICS` (per subject) are the Human3.6M calibration as VideoPose3D's ``common/h36m_dataset.py``
lists it; `CAMERAS[c]` is camera c of every per-camera list in a 2D file. `world_to_camera` moves
world points into a camera's frame (x right, y down, z forward, metres), the frame in which
VideoPose3D projects the ground-truth 2D (with lens distortion, which is not modelled here).
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

FILE_3D = "data_3d_h36m.npz"
FILES_2D = {"gt": "data_2d_h36m_gt.npz", "cpn": "data_2d_h36m_cpn_ft_h36m_dbb.npz"}  # by kind of 2D input

# The 15 actions, in the order of the paper's Tables 1-2 (Zhou et al.'s layout).
ACTIONS: tuple[str, ...] = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing",
                            "Purchases", "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking",
                            "WalkTogether")
_ACTION_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}  # Human3.6M's own names for two of them


def action_name(sequence: str) -> str:
    """The action of a sequence: "Directions 1" -> "Directions", "TakingPhoto 1" -> "Photo"."""
    base = str(sequence).split(" ")[0]
    return _ACTION_ALIASES.get(base, base)


@dataclasses.dataclass(frozen=True)
class Intrinsics:
    """One Human3.6M camera: focal lengths and principal point in pixels of a width x height image."""

    id: str
    focal_px: tuple[float, float]
    centre_px: tuple[float, float]
    size_px: tuple[int, int]  # (width, height)


CAMERAS: tuple[Intrinsics, ...] = (
    Intrinsics("54138969", (1145.0494384765625, 1143.7811279296875), (512.54150390625, 515.4514770507812),
               (1000, 1002)),
    Intrinsics("55011271", (1149.6756591796875, 1147.5916748046875), (508.8486328125, 508.0649108886719),
               (1000, 1000)),
    Intrinsics("58860488", (1149.1407470703125, 1148.7989501953125), (519.8158569335938, 501.40264892578125),
               (1000, 1000)),
    Intrinsics("60457274", (1145.5113525390625, 1144.77392578125), (514.9682006835938, 501.88201904296875),
               (1000, 1002)),
)

# Per subject, per camera (in the order of CAMERAS): the camera's orientation in the world, a unit
# quaternion (w, x, y, z), and its position in the world in MILLIMETRES.
EXTRINSICS: dict[str, tuple[tuple[tuple[float, float, float, float], tuple[float, float, float]], ...]] = {
    "S1": (((0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088),
            (1841.1070556640625, 4955.28466796875, 1563.4454345703125)),
           ((0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205),
            (1761.278564453125, -5078.0068359375, 1606.2650146484375)),
           ((0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696),
            (-1846.7777099609375, 5215.04638671875, 1491.972412109375)),
           ((0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435),
            (-1794.7896728515625, -3722.698974609375, 1574.8927001953125))),
    "S5": (((0.1467377245426178, -0.162370964884758, -0.7551892995834351, 0.6178938746452332),
            (2097.3916015625, 4880.94482421875, 1605.732421875)),
           ((0.6159758567810059, -0.7626792192459106, -0.15728192031383514, 0.1189815029501915),
            (2031.7008056640625, -5167.93310546875, 1612.923095703125)),
           ((0.14291371405124664, -0.12907841801643372, 0.7678384780883789, -0.6110143065452576),
            (-1620.5948486328125, 5171.65869140625, 1496.43701171875)),
           ((0.5920479893684387, -0.7814217805862427, 0.1274748593568802, -0.15036417543888092),
            (-1637.1737060546875, -3867.3173828125, 1547.033203125))),
    "S6": (((0.1337897777557373, -0.15692396461963654, -0.7571090459823608, 0.6198879480361938),
            (1935.4517822265625, 4950.24560546875, 1618.0838623046875)),
           ((0.6147197484970093, -0.7628812789916992, -0.16174767911434174, 0.11819244921207428),
            (1969.803955078125, -5128.73876953125, 1632.77880859375)),
           ((0.1529948115348816, -0.13529130816459656, 0.7646096348762512, -0.6112781167030334),
            (-1769.596435546875, 5185.361328125, 1476.993408203125)),
           ((0.5916101336479187, -0.7804774045944214, 0.12832270562648773, -0.1561593860387802),
            (-1721.668701171875, -3884.13134765625, 1540.4879150390625))),
    "S7": (((0.1435241848230362, -0.1631336808204651, -0.7548328638076782, 0.6188824772834778),
            (1974.512939453125, 4926.3544921875, 1597.8326416015625)),
           ((0.6141672730445862, -0.7638262510299683, -0.1596645563840866, 0.1177929937839508),
            (1937.0584716796875, -5119.7900390625, 1631.5665283203125)),
           ((0.14550060033798218, -0.12874816358089447, 0.7660516500473022, -0.6127139329910278),
            (-1741.8111572265625, 5208.24951171875, 1464.8245849609375)),
           ((0.5912848114967346, -0.7821764349937439, 0.12445473670959473, -0.15196487307548523),
            (-1734.7105712890625, -3832.42138671875, 1548.5830078125))),
    "S8": (((0.14110587537288666, -0.15589867532253265, -0.7561917304992676, 0.619644045829773),
            (2150.65185546875, 4896.1611328125, 1611.9046630859375)),
           ((0.6169601678848267, -0.7647668123245239, -0.14846350252628326, 0.11158157885074615),
            (2219.965576171875, -5148.453125, 1613.0440673828125)),
           ((0.1471444070339203, -0.13377119600772858, 0.7670128345489502, -0.6100369691848755),
            (-1571.2215576171875, 5137.0185546875, 1498.1761474609375)),
           ((0.5927824378013611, -0.7825870513916016, 0.12147816270589828, -0.14631995558738708),
            (-1476.913330078125, -3896.7412109375, 1547.97216796875))),
    "S9": (((0.15540587902069092, -0.15548215806484222, -0.7532095313072205, 0.6199594736099243),
            (2044.45849609375, 4935.1171875, 1481.2275390625)),
           ((0.618784487247467, -0.7634735107421875, -0.14132238924503326, 0.11933968216180801),
            (1990.959716796875, -5123.810546875, 1568.8048095703125)),
           ((0.13357827067375183, -0.1367100477218628, 0.7689454555511475, -0.6100738644599915),
            (-1670.9921875, 5211.98583984375, 1528.387939453125)),
           ((0.5879399180412292, -0.7823407053947449, 0.1427614390850067, -0.14794869720935822),
            (-1696.04345703125, -3827.099853515625, 1591.4127197265625))),
    "S11": (((0.15232472121715546, -0.15442320704460144, -0.7547563314437866, 0.6191070079803467),
             (2098.440185546875, 4926.5546875, 1500.278564453125)),
            ((0.6189449429512024, -0.7600917220115662, -0.15300633013248444, 0.1255258321762085),
             (2083.182373046875, -4912.1728515625, 1561.07861328125)),
            ((0.14943228662014008, -0.15650227665901184, 0.7681233882904053, -0.6026304364204407),
             (-1609.8153076171875, 5177.3359375, 1537.896728515625)),
            ((0.5894251465797424, -0.7818877100944519, 0.13991211354732513, -0.14715361595153809),
             (-1590.738037109375, -3854.1689453125, 1578.017578125))),
}


def _quaternion_matrix(q: Sequence[float]) -> np.ndarray:
    """The rotation matrix [3, 3] of a unit quaternion (w, x, y, z): R v rotates v by q."""
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def world_to_camera(points: np.ndarray, subject: str, camera: int) -> np.ndarray:
    """World points [..., 3] (metres, +z up) of `subject`'s capture -> camera `camera`'s frame
    (x right, y down, z forward, metres), float64: R^T (X - t) for the camera's orientation R and position t."""
    if subject not in EXTRINSICS or not 0 <= camera < len(CAMERAS):
        raise UserError(f"no Human3.6M calibration for {subject}, camera {camera}: the subjects with cameras are "
                        f"{', '.join(EXTRINSICS)}, cameras 0-{len(CAMERAS) - 1}")
    orientation, position_mm = EXTRINSICS[subject][camera]
    return (np.asarray(points, np.float64) - np.asarray(position_mm) / 1000.0) @ _quaternion_matrix(orientation)


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


def _check_arguments(every, joints) -> None:
    if joints not in (NUM_JOINTS, NUM_JOINTS_FULL):
        raise UserError(f"joints must be 17 or 32, got {joints!r}")
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise UserError(f"every must be a positive integer (3 = one third of the frame rate), got {every!r}")


def _read(path_3d: str, path_2d: str | None) -> tuple[dict, dict | None]:
    """The pickled dicts subject -> action -> positions of the 3D file and (if given) the 2D file."""
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
    return data_3d, data_2d


def _frames(data_3d: dict, data_2d: dict | None, path_3d: str, path_2d: str | None, subjects: tuple[str, ...],
            every: int, joints: int) -> H36MPoses:
    """Every ``every``-th frame of the sequences of ``subjects`` in the files' dicts."""
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
    _check_arguments(every, joints)
    subjects = _resolve_subjects(subjects)
    return _frames(*_read(path_3d, path_2d), path_3d, path_2d, subjects, every, joints)


def load_protocol(data_dir: str, keypoints_2d: str = "gt", every: int = EVERY) -> tuple[H36MPoses, H36MPoses]:
    """(training, test) frames of the paper's protocol (`TRAIN_SUBJECTS`, `TEST_SUBJECTS`, every
    ``every``-th frame, 17 joints) from a directory holding `FILE_3D` and the 2D file
    ``FILES_2D[keypoints_2d]`` ("gt" or "cpn"), each read once; the 2D file must have a list of
    one array per camera of `CAMERAS` for every sequence."""
    _check_arguments(every, NUM_JOINTS)
    if not os.path.isdir(data_dir):
        raise UserError(f"Human3.6M directory {data_dir} does not exist: give the directory holding {FILE_3D} "
                        f"and {' / '.join(FILES_2D.values())}")
    path_3d, path_2d = os.path.join(data_dir, FILE_3D), os.path.join(data_dir, FILES_2D[keypoints_2d])
    data = _read(path_3d, path_2d)
    split = tuple(_frames(*data, path_3d, path_2d, subjects, every, NUM_JOINTS)
                  for subjects in (TRAIN_SUBJECTS, TEST_SUBJECTS))
    for poses in split:
        if poses.poses_2d.shape[1] != len(CAMERAS):
            raise UserError(f"Human3.6M file {path_2d} has {poses.poses_2d.shape[1]} cameras per sequence: expected "
                            f"{len(CAMERAS)}, the Human3.6M cameras in the order {', '.join(c.id for c in CAMERAS)}")
    return split


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
