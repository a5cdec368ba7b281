"""Motion capture in BVH files (Biovision Hierarchy), as skeletons of the pose task: `--dataset=bvh`.

A BVH file has two parts. HIERARCHY: a tree of joints, each with an OFFSET from its parent (in
the file's unit) and CHANNELS, the numbers each frame gives it: positions (Xposition ...) and Euler
rotations in degrees (Zrotation Xrotation Yrotation, in any order); "End Site" closes a chain.
MOTION: "Frames: N", "Frame Time: seconds", then N lines of all joints' channel values in the
order of the hierarchy.

Forward kinematics (`forward_kinematics`), the convention of CMU's, LaFAN1's and Mixamo's files:
a joint's local rotation is the product of its rotation channels in the order listed (channels
"Zrotation Xrotation Yrotation" give R = Rz Rx Ry); its local translation is its OFFSET, or its
position channels where it has them (they replace the OFFSET, as LaFAN1 and the root of every
file use them); then R_joint = R_parent R_local and p_joint = p_parent + R_parent t_local.

From joints to the project's skeleton (`deepmimic.JOINT_NAMES`, 15 joints): `JOINT_MAP` names the
joint of the file for each, in the naming that CMU's BVH conversions, LaFAN1 and Mixamo share for
these 15 joints (Mixamo's names carry a "mixamorig:" prefix: any "prefix:" is ignored). Other
naming: a JSON file mapping each of the 15 names to a joint of the file (`--joint_map`). A file
that lacks a joint is refused with the list of what is missing.

Units: files are in metres, centimetres (LaFAN1, Mixamo), inches, or CMU's units (1/0.45 inch).
`unit_scale` picks the one that gives a plausible leg (hip to ankle closest to 0.85 m), unless the
caller gives metres per unit. Every clip is resampled to `deepmimic.FPS` = 30 frames per second
by linear interpolation of the joint positions, and returned +y up (BVH's convention) as
`deepmimic.Clip`s, the type of the embedded clips.

Splits (`clip_split`): by file, so that no frame is on both sides; in the sorted list of files
every fifth (the 5th, 10th, ...) is held out for testing, and the last one where fewer than five.
"""
from __future__ import annotations

import json
import os

import numpy as np

from aign_tf.data import deepmimic
from aign_tf.errors import UserError

EXTENSION = ".bvh"
# The project's joint -> the joint of CMU, LaFAN1 and Mixamo (without its "mixamorig:" prefix) files.
JOINT_MAP = {
    "pelvis": "Hips", "right_hip": "RightUpLeg", "right_knee": "RightLeg", "right_ankle": "RightFoot",
    "left_hip": "LeftUpLeg", "left_knee": "LeftLeg", "left_ankle": "LeftFoot", "neck": "Neck", "head": "Head",
    "left_shoulder": "LeftArm", "left_elbow": "LeftForeArm", "left_wrist": "LeftHand",
    "right_shoulder": "RightArm", "right_elbow": "RightForeArm", "right_wrist": "RightHand"}
# Metres per file unit that `unit_scale` chooses from.
UNITS = {"metres": 1.0, "centimetres": 0.01, "inches": 0.0254, "CMU units (1/0.45 inch)": 0.0254 / 0.45}
LEG_M = 0.85  # a typical hip-to-ankle length (thigh + shin), metres
TEST_EVERY = 5
_AXES = {"X": 0, "Y": 1, "Z": 2}


class Hierarchy:
    """The joints of a BVH file in file order: names, parent index (-1 for the root), OFFSET [J, 3]
    and, per joint, its channel names; `columns[j]` are the joint's columns in a frame's values."""

    def __init__(self, names: list[str], parents: list[int], offsets: np.ndarray, channels: list[list[str]]):
        self.names, self.parents, self.offsets, self.channels = names, parents, offsets, channels
        starts = np.cumsum([0] + [len(c) for c in channels])
        self.columns = [range(starts[j], starts[j + 1]) for j in range(len(names))]
        self.num_channels = int(starts[-1])


def read(path: str) -> tuple[Hierarchy, float, np.ndarray]:
    """(hierarchy, frame time in seconds, channel values [F, C] float64) of a BVH file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise UserError(f"cannot read BVH file {path}: {e.strerror}") from e
    head, separator, motion = text.partition("MOTION")
    if not head.lstrip().startswith("HIERARCHY") or not separator:
        raise UserError(f"{path} is not a BVH file: expected a HIERARCHY section followed by a MOTION section")
    hierarchy = _hierarchy(head.split()[1:], path)
    lines = motion.strip().splitlines()
    try:
        frames = int(lines[0].split(":")[1])
        frame_time = float(lines[1].split(":")[1])
    except (IndexError, ValueError):
        raise UserError(f"BVH file {path}: MOTION must start with 'Frames: N' and 'Frame Time: SECONDS'") from None
    if frames < 2 or not frame_time > 0:
        raise UserError(f"BVH file {path} has {frames} frames of {frame_time} s: a clip needs at least 2 frames "
                        "and a positive Frame Time")
    rows = [line.split() for line in lines[2:] if line.strip()]
    if len(rows) < frames:
        raise UserError(f"BVH file {path} is cut short: its header says {frames} frames, it holds {len(rows)}")
    bad = next((i for i, row in enumerate(rows[:frames]) if len(row) != hierarchy.num_channels), None)
    if bad is not None:
        raise UserError(f"BVH file {path}: frame {bad} has {len(rows[bad])} values, the hierarchy has "
                        f"{hierarchy.num_channels} channels")
    try:
        values = np.array(rows[:frames], np.float64)
    except ValueError:
        raise UserError(f"BVH file {path} has a frame value that is not a number") from None
    if not np.all(np.isfinite(values)):
        raise UserError(f"BVH file {path} has non-finite channel values (NaN or inf) in frame "
                        f"{int(np.argmax(~np.isfinite(values).all(1)))}")
    return hierarchy, frame_time, values


def _hierarchy(tokens: list[str], path: str) -> Hierarchy:
    """The joints of the HIERARCHY section's tokens (after the word HIERARCHY)."""
    names, parents, offsets, channels = [], [], [], []
    stack: list[int] = []  # open joints; -2 marks an End Site
    i = 0
    try:
        while i < len(tokens):
            word = tokens[i]
            if word in ("ROOT", "JOINT"):
                if stack and stack[-1] < 0:
                    raise ValueError("a JOINT inside an End Site")
                names.append(tokens[i + 1])
                parents.append(stack[-1] if stack else -1)
                offsets.append(np.zeros(3))
                channels.append([])
                stack.append(len(names) - 1)
                i += 3  # name and "{"
            elif word == "End":
                stack.append(-2)
                i += 3  # "Site" and "{"
            elif word == "OFFSET":
                if stack[-1] >= 0:
                    offsets[stack[-1]] = np.array(tokens[i + 1:i + 4], np.float64)
                i += 4
            elif word == "CHANNELS":
                count = int(tokens[i + 1])
                channels[stack[-1]] = tokens[i + 2:i + 2 + count]
                i += 2 + count
            elif word == "}":
                stack.pop()
                i += 1
            else:
                raise ValueError(f"unexpected word {word!r}")
    except (IndexError, ValueError) as e:
        raise UserError(f"BVH file {path} has a damaged HIERARCHY ({e})") from None
    if not names or stack or sum(p < 0 for p in parents) != 1:
        raise UserError(f"BVH file {path} has a damaged HIERARCHY: expected one ROOT and balanced braces")
    for joint, names_of_channels in zip(names, channels):
        unknown = [c for c in names_of_channels if len(c) != 9 or c[0] not in _AXES or c[1:] not in ("position", "rotation")]
        if unknown:
            raise UserError(f"BVH file {path}: joint {joint} has unknown channels {unknown} (expected Xposition ... "
                            "Zrotation)")
    return Hierarchy(names, parents, np.stack(offsets), channels)


def _axis_rotation(axis: int, radians: np.ndarray) -> np.ndarray:
    """[F, 3, 3] rotations by `radians` [F] about the x, y or z axis (0, 1, 2)."""
    c, s = np.cos(radians), np.sin(radians)
    matrix = np.zeros(radians.shape + (3, 3))
    matrix[:, axis, axis] = 1.0
    a, b = [k for k in range(3) if k != axis][::(-1 if axis == 1 else 1)]  # y: (z, x) keeps the right hand
    matrix[:, a, a], matrix[:, a, b], matrix[:, b, a], matrix[:, b, b] = c, -s, s, c
    return matrix


def forward_kinematics(hierarchy: Hierarchy, values: np.ndarray) -> np.ndarray:
    """Positions [F, J, 3] (file units) of every joint in every frame of channel `values` [F, C]."""
    frames = len(values)
    rotations, positions = [], []
    for j, parent in enumerate(hierarchy.parents):
        local_rotation = np.broadcast_to(np.eye(3), (frames, 3, 3))
        translation = np.broadcast_to(hierarchy.offsets[j], (frames, 3)).copy()
        for name, column in zip(hierarchy.channels[j], hierarchy.columns[j]):
            axis = _AXES[name[0]]
            if name.endswith("rotation"):
                local_rotation = local_rotation @ _axis_rotation(axis, np.radians(values[:, column]))
            else:
                translation[:, axis] = values[:, column]
        if parent < 0:
            rotations.append(local_rotation)
            positions.append(translation)
        else:
            rotations.append(rotations[parent] @ local_rotation)
            positions.append(positions[parent] + np.einsum("fij,fj->fi", rotations[parent], translation))
    return np.stack(positions, axis=1)


def joint_columns(names: list[str], path: str, joint_map: dict[str, str] | None = None) -> list[int]:
    """Index in `names` of each of the project's 15 joints (`JOINT_MAP` or `joint_map`); a "prefix:" of
    a name is ignored. One line listing the missing joints otherwise."""
    joint_map = joint_map or JOINT_MAP
    bare = {name.rsplit(":", 1)[-1]: i for i, name in reversed(list(enumerate(names)))}
    exact = {name: i for i, name in reversed(list(enumerate(names)))}
    found = {ours: exact.get(theirs, bare.get(theirs)) for ours, theirs in joint_map.items()}
    missing = [f"{theirs} ({ours})" for ours, theirs in joint_map.items() if found[ours] is None]
    if missing:
        raise UserError(f"{path} lacks the joints {', '.join(missing)} of the CMU/LaFAN1/Mixamo naming; give "
                        f"--joint_map=FILE, a JSON object mapping each of {', '.join(deepmimic.JOINT_NAMES)} to "
                        "one of its joints")
    return [found[name] for name in deepmimic.JOINT_NAMES]


def read_joint_map(path: str) -> dict[str, str]:
    """A JSON joint map: each of the project's 15 joint names -> a joint name of the files."""
    try:
        with open(path, encoding="utf-8") as f:
            joint_map = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the joint map {path} ({e}): give a JSON object such as "
                        f"{json.dumps(dict(list(JOINT_MAP.items())[:2]))}") from None
    if not isinstance(joint_map, dict) or sorted(joint_map) != sorted(deepmimic.JOINT_NAMES) \
            or not all(isinstance(v, str) for v in joint_map.values()):
        raise UserError(f"the joint map {path} must map exactly the joints {', '.join(deepmimic.JOINT_NAMES)} "
                        "each to a joint name (a string) of the BVH files")
    return joint_map


def unit_scale(joints: np.ndarray) -> float:
    """Metres per unit of skeletons [F, 15, 3] in project order: the `UNITS` entry whose hip-to-ankle
    length (median over frames and both legs) is closest to `LEG_M`, on a log scale."""
    legs = [("right_hip", "right_knee", "right_ankle"), ("left_hip", "left_knee", "left_ankle")]
    index = {name: i for i, name in enumerate(deepmimic.JOINT_NAMES)}
    length = np.median([np.linalg.norm(joints[:, index[a]] - joints[:, index[b]], axis=-1)
                        + np.linalg.norm(joints[:, index[b]] - joints[:, index[c]], axis=-1) for a, b, c in legs])
    return min(UNITS.values(), key=lambda scale: abs(np.log(max(length * scale, 1e-12) / LEG_M)))


def resample(joints: np.ndarray, fps: float, target_fps: float = deepmimic.FPS) -> np.ndarray:
    """Positions [F, ...] sampled at `fps` -> at `target_fps`, linearly interpolated, from frame 0 to
    the last target frame within the clip (to a hundredth of a frame: files round their Frame Time)."""
    duration = (len(joints) - 1) / fps
    times = np.arange(int(np.floor(duration * target_fps + 0.01)) + 1) / target_fps
    source = times * fps
    low = np.minimum(np.floor(source).astype(int), len(joints) - 1)
    high = np.minimum(low + 1, len(joints) - 1)
    weight = (source - low).reshape((-1,) + (1,) * (joints.ndim - 1))
    return (1 - weight) * joints[low] + weight * joints[high]


def load_clip(path: str, name: str, joint_map: dict[str, str] | None = None,
              metres_per_unit: float | None = None) -> deepmimic.Clip:
    """One BVH file as a clip of the project's 15 joints in metres, +y up, at 30 frames per second."""
    hierarchy, frame_time, values = read(path)
    columns = joint_columns(hierarchy.names, path, joint_map)
    joints = forward_kinematics(hierarchy, values)[:, columns]
    joints = resample(joints * (metres_per_unit or unit_scale(joints)), 1.0 / frame_time)
    if len(joints) < 2:
        raise UserError(f"BVH file {path} lasts {frame_time * (len(values) - 1):.3g} s, less than two frames at "
                        f"{deepmimic.FPS:g} frames per second")
    return deepmimic.Clip(name=name, joints=joints.astype(np.float32), joint_names=deepmimic.JOINT_NAMES,
                          fps=deepmimic.FPS)


def find_files(data_dir: str) -> list[str]:
    """The BVH files under `data_dir` (any depth), as sorted paths relative to it."""
    if not os.path.isdir(data_dir):
        raise UserError(f"BVH directory {data_dir} does not exist: pass a folder of .bvh files as --data_dir")
    found = sorted(os.path.relpath(os.path.join(root, f), data_dir)
                   for root, _, files in os.walk(data_dir) for f in files if f.lower().endswith(EXTENSION))
    if not found:
        raise UserError(f"no .bvh files under {data_dir}: pass a folder of BVH motion capture as --data_dir")
    return found


def load_clips(data_dir: str, joint_map: dict[str, str] | None = None,
               metres_per_unit: float | None = None) -> dict[str, deepmimic.Clip]:
    """Every BVH file under `data_dir` as a clip, named by its path relative to it without the extension."""
    return {name[:-len(EXTENSION)]: load_clip(os.path.join(data_dir, name), name[:-len(EXTENSION)], joint_map,
                                               metres_per_unit)
            for name in find_files(data_dir)}


def clip_split(data_dir: str, joint_map: dict[str, str] | None = None, metres_per_unit: float | None = None
               ) -> tuple[dict[str, deepmimic.Clip], dict[str, deepmimic.Clip]]:
    """(train, test) clips of the BVH files under `data_dir`, split by file (module docstring)."""
    clips = load_clips(data_dir, joint_map, metres_per_unit)
    if len(clips) < 2:
        raise UserError(f"{data_dir} holds one BVH file: the split by file needs at least 2 (one to train, one "
                        "to test)")
    names = list(clips)
    test = set(names[TEST_EVERY - 1::TEST_EVERY] or names[-1:])
    return ({n: c for n, c in clips.items() if n not in test}, {n: c for n, c in clips.items() if n in test})
