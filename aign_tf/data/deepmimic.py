"""Real 3D human skeletons for the pose task: DeepMimic motion-capture clips, shipped as arrays.

The clips are pybullet's ``pybullet_data/data/motions/humanoid3d_*.txt`` (DeepMimic, Peng et al.
2018: humanoid motions retargeted from motion capture). A developer converts them ONCE with

    python -m aign_tf.data.deepmimic --out=aign_tf/data/motions

which needs pybullet (``pip install pybullet``). The package ships the result, one
``motions/<clip>.npz`` per clip; ``load_clips`` reads those and needs only NumPy.

Skeleton: 15 joints, in the order of `JOINT_NAMES`, in METRES, in pybullet's world frame of the
DeepMimic environment: **+y is up**, the character faces +x in its rest pose, and its right side
is +z. Each joint is a point of a link of ``pybullet_data/humanoid/humanoid.urdf`` (loaded with
``globalScaling=0.25``, the scale pybullet's DeepMimic environment uses; at that scale the URDF is
in metres and the clips' root positions apply unchanged):

    pelvis         link "root" frame origin (= the base; the hips hang from it)
    right_hip      link "right_hip" frame origin (joint centre)
    right_knee     link "right_knee" frame origin
    right_ankle    link "right_ankle" frame origin
    left_hip / left_knee / left_ankle    the same on the left links
    neck           link "neck" frame origin (the neck joint, at shoulder height: the thorax)
    head           link "neck" centre of mass (centre of the head sphere, 0.175 m above the neck)
    left_shoulder  link "left_shoulder" frame origin
    left_elbow     link "left_elbow" frame origin
    left_wrist     link "left_wrist" frame origin (a fixed joint at the end of the forearm)
    right_shoulder / right_elbow / right_wrist   the same on the right links

The order follows the 17-joint Human3.6M layout with its "spine" and "nose" left out.
In the zero pose the skeleton measures 1.466 m from ankle to head centre (the full body, from
sole to the top of the head sphere, is 1.62 m); thigh 0.42 m, shin 0.41 m.

Clip frame layout (checked against pybullet's ``pybullet_envs/deep_mimic/env/
humanoid_pose_interpolator.py``): 44 numbers per keyframe = [duration of this keyframe in s,
root position xyz, root orientation quaternion (w, x, y, z), then chest, neck, right hip (4 each,
wxyz), right knee (1 angle, rad), right ankle, right shoulder (4 each), right elbow (1), left hip
(4), left knee (1), left ankle, left shoulder (4 each), left elbow (1)]. The clips' keyframe
durations differ (1/60, 1/30, 1/24 or 1/16 s), so every clip is resampled to `FPS` = 30 frames per
second, interpolating the root position and the revolute angles linearly and the quaternions by
slerp, exactly as pybullet's interpolator does between keyframes. Frame k is the pose at time
k / 30 s, k = 0 .. floor(clip duration * 30). For a looping clip ("Loop": "wrap") the last frame
repeats the first pose (moved by the root's travel over one cycle).

Split (`clip_split`): by clip, so that no frame is on both sides. `TEST_CLIPS` holds out four
clips of different motion, each with a related clip kept for training: walk (run is in train),
jump (backflip), kick (spinkick), dance_b (dance_a).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from aign_tf.data.arrays import NUMPY_FILE_ERRORS
from aign_tf.errors import UserError, exit_status

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "neck",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)

# Bones as (parent, child) joint indices: the kinematic tree. Every bone is rigid (constant
# length) except pelvis-neck, which spans the chest joint (0.36 to 0.46 m).
BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3),
    (0, 4), (4, 5), (5, 6),
    (0, 7), (7, 8),
    (7, 9), (9, 10), (10, 11),
    (7, 12), (12, 13), (13, 14),
)
RIGID_BONES: tuple[tuple[int, int], ...] = tuple(b for b in BONES if b != (0, 7))

CLIPS: tuple[str, ...] = (
    "backflip",
    "cartwheel",
    "crawl",
    "dance_a",
    "dance_b",
    "getup_facedown",
    "getup_faceup",
    "jump",
    "kick",
    "punch",
    "roll",
    "run",
    "spin",
    "spinkick",
    "walk",
)
TEST_CLIPS: tuple[str, ...] = ("walk", "jump", "kick", "dance_b")

FPS = 30.0
UP_AXIS = "y"
MOTIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "motions")

# humanoid.urdf as pybullet's DeepMimic environment loads it.
URDF = "humanoid/humanoid.urdf"
URDF_SCALE = 0.25
# (URDF link name, point): "frame" = the link frame origin (its joint centre), "com" = its
# centre of mass.
_JOINT_LINKS: tuple[tuple[str, str], ...] = (
    ("root", "frame"),
    ("right_hip", "frame"),
    ("right_knee", "frame"),
    ("right_ankle", "frame"),
    ("left_hip", "frame"),
    ("left_knee", "frame"),
    ("left_ankle", "frame"),
    ("neck", "frame"),
    ("neck", "com"),
    ("left_shoulder", "frame"),
    ("left_elbow", "frame"),
    ("left_wrist", "frame"),
    ("right_shoulder", "frame"),
    ("right_elbow", "frame"),
    ("right_wrist", "frame"),
)
# Driven URDF joints in the order their values follow the root in a keyframe, with their size
# in the keyframe: 4 = spherical (quaternion w, x, y, z), 1 = revolute (angle in rad).
_FRAME_JOINTS: tuple[tuple[str, int], ...] = (
    ("chest", 4),
    ("neck", 4),
    ("right_hip", 4),
    ("right_knee", 1),
    ("right_ankle", 4),
    ("right_shoulder", 4),
    ("right_elbow", 1),
    ("left_hip", 4),
    ("left_knee", 1),
    ("left_ankle", 4),
    ("left_shoulder", 4),
    ("left_elbow", 1),
)
FRAME_SIZE = 1 + 3 + 4 + sum(n for _, n in _FRAME_JOINTS)  # 44

_REGENERATE = "regenerate it with `python -m aign_tf.data.deepmimic --out=DIR` or reinstall aign_tf"


@dataclasses.dataclass(frozen=True)
class Clip:
    """One motion clip: ``joints`` float32 [T, 15, 3] in metres (+y up), sampled at ``fps``."""

    name: str
    joints: np.ndarray
    joint_names: tuple[str, ...]
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])


# ----------------------------------------------------------------------------------------------
# Loading the shipped arrays (NumPy only).


def clip_path(name: str, directory: str | None = None) -> str:
    """Path of the ``.npz`` file of clip ``name``."""
    return os.path.join(directory or MOTIONS_DIR, f"{name}.npz")


def read_clip(path: str, name: str, regenerate: str = _REGENERATE) -> Clip:
    """The clip in ``path`` (a file of `write_clip`), checked; ``regenerate`` tells how to make it again."""
    if not os.path.isfile(path):
        raise UserError(f"motion clip file {path} is missing: {regenerate}")
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {key: data[key] for key in data.files}
    except NUMPY_FILE_ERRORS as e:
        raise UserError(f"motion clip file {path} is corrupt ({e}): {regenerate}") from e
    missing = [k for k in ("joints", "joint_names", "fps", "up_axis") if k not in contents]
    if missing:
        raise UserError(
            f"motion clip file {path} lacks the arrays {', '.join(missing)}: {regenerate}"
        )
    joints = contents["joints"]
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3) or joints.shape[0] < 2:
        raise UserError(
            f"motion clip file {path} holds joints of shape {joints.shape}, expected "
            f"[T>=2, {NUM_JOINTS}, 3]: {regenerate}"
        )
    if not np.issubdtype(joints.dtype, np.floating) or not np.all(np.isfinite(joints)):
        raise UserError(f"motion clip file {path} holds non-finite joint positions: {regenerate}")
    names = tuple(str(n) for n in np.asarray(contents["joint_names"]).reshape(-1))
    if names != JOINT_NAMES:
        raise UserError(
            f"motion clip file {path} names the joints {list(names)}, expected "
            f"{list(JOINT_NAMES)}: {regenerate}"
        )
    up_axis = str(contents["up_axis"])
    if up_axis != UP_AXIS:
        raise UserError(f"motion clip file {path} has up axis {up_axis!r}, expected {UP_AXIS!r}: {regenerate}")
    fps_array = np.asarray(contents["fps"])
    fps = float(fps_array.reshape(-1)[0]) if fps_array.size == 1 and fps_array.dtype.kind in "fiu" else 0.0
    if not fps > 0:
        raise UserError(f"motion clip file {path} has frame rate {fps}, expected > 0: {regenerate}")
    joints = np.ascontiguousarray(joints, dtype=np.float32)
    return Clip(name=name, joints=joints, joint_names=names, fps=fps)


def load_clips(names: Iterable[str] | None = None, directory: str | None = None) -> dict[str, Clip]:
    """The shipped motion clips (all of `CLIPS` unless ``names``), keyed by clip name.

    ``directory`` defaults to the package's ``motions/`` folder.
    """
    names = tuple(CLIPS if names is None else names)
    _check_names(names, "names")
    return {n: read_clip(clip_path(n, directory), n) for n in names}


def _check_names(names: Sequence[str], what: str) -> None:
    unknown = [n for n in names if n not in CLIPS]
    if unknown:
        raise UserError(f"unknown motion clip(s) {unknown} in {what}: use names from {list(CLIPS)}")


def clip_split(
    test_clips: Iterable[str] = TEST_CLIPS, directory: str | None = None
) -> tuple[dict[str, Clip], dict[str, Clip]]:
    """(train, test) clips: ``test_clips`` are held out whole, every other clip is for training.

    Splitting by clip means no frame (and no near-duplicate neighbouring frame) is on both sides.
    """
    test = tuple(dict.fromkeys(test_clips))
    _check_names(test, "test_clips")
    if not test or len(test) == len(CLIPS):
        raise UserError(
            f"test_clips must hold out at least one and at most {len(CLIPS) - 1} of the "
            f"{len(CLIPS)} clips, got {list(test)}"
        )
    clips = load_clips(directory=directory)
    train = {n: c for n, c in clips.items() if n not in test}
    return train, {n: clips[n] for n in test}


def write_clip(path: str, joints: np.ndarray, loop: bool, source: str, fps: float = FPS) -> None:
    """Writes one clip file: joints [T, 15, 3] in metres, +y up, sampled at ``fps``, and where it comes from."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    np.savez_compressed(path, joints=joints.astype(np.float32), joint_names=np.array(JOINT_NAMES),
                        fps=np.float32(fps), up_axis=np.array(UP_AXIS), loop=np.array(loop), source=np.array(source))


def stack_joints(clips: Mapping[str, Clip]) -> np.ndarray:
    """All frames of ``clips`` in one float32 array [N, 15, 3], clip after clip."""
    if not clips:
        return np.zeros((0, NUM_JOINTS, 3), np.float32)
    return np.concatenate([c.joints for c in clips.values()], axis=0)


def bone_lengths(joints: np.ndarray, bones: Sequence[tuple[int, int]] = BONES) -> np.ndarray:
    """Length in metres of each bone for joints [..., 15, 3]: array [..., len(bones)]."""
    joints = np.asarray(joints)
    parent = joints[..., [b[0] for b in bones], :]
    child = joints[..., [b[1] for b in bones], :]
    return np.linalg.norm(child - parent, axis=-1)


# ----------------------------------------------------------------------------------------------
# The one-off converter (needs pybullet).


def _normalize(q: Sequence[float]) -> list[float]:
    q = np.asarray(q, np.float64)
    return list(q / np.linalg.norm(q))


def read_motion_file(path: str) -> tuple[np.ndarray, bool]:
    """Keyframes [K, 44] (float64) of a DeepMimic ``humanoid3d_*.txt`` file and whether it loops."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        frames = np.asarray(data["Frames"], np.float64)
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise UserError(f"cannot read DeepMimic motion file {path} ({e}): expected JSON with 'Frames'") from e
    if frames.ndim != 2 or frames.shape[1] != FRAME_SIZE or frames.shape[0] < 2 or not np.all(np.isfinite(frames)):
        raise UserError(
            f"DeepMimic motion file {path} has frames of shape {frames.shape}, expected "
            f"[K>=2, {FRAME_SIZE}] of finite numbers (the humanoid3d layout)"
        )
    return frames, data.get("Loop", "none") == "wrap"


def frame_times(frames: np.ndarray, fps: float) -> np.ndarray:
    """Sample times k / fps covering the clip: k = 0 .. floor(duration * fps), clamped to the end.

    The files round keyframe durations to 6 digits (0.016666 for 1/60 s), so a sample within
    0.01 frame past the end counts as the end.
    """
    duration = float(np.sum(frames[:-1, 0]))
    count = int(np.floor(duration * fps + 0.01)) + 1
    return np.minimum(np.arange(count, dtype=np.float64) / fps, duration)


def interpolate_pose(frames: np.ndarray, t: float, slerp) -> list[float]:
    """The pose at time ``t`` as pybullet's HumanoidPoseInterpolator.GetPose orders it.

    [root position xyz, root quaternion xyzw, then per `_FRAME_JOINTS` joint its quaternion
    (x, y, z, w) or angle]. ``slerp(q0, q1, fraction)`` interpolates xyzw quaternions.
    """
    starts = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    i = int(np.searchsorted(starts, t, side="right") - 1)
    i = min(max(i, 0), len(frames) - 2)
    fraction = (t - starts[i]) / frames[i, 0] if frames[i, 0] > 0 else 0.0
    fraction = float(min(max(fraction, 0.0), 1.0))
    a, b = frames[i], frames[i + 1]
    pose = list(a[1:4] + fraction * (b[1:4] - a[1:4]))

    def quat(f, k):  # file order w, x, y, z -> pybullet order x, y, z, w
        return [f[k + 1], f[k + 2], f[k + 3], f[k]]

    pose += _normalize(slerp(quat(a, 4), quat(b, 4), fraction))
    k = 8
    for _, size in _FRAME_JOINTS:
        if size == 4:
            pose += _normalize(slerp(quat(a, k), quat(b, k), fraction))
        else:
            pose.append(a[k] + fraction * (b[k] - a[k]))
        k += size
    return pose


class _Humanoid:
    """humanoid.urdf in a DIRECT pybullet session: pose in, the 15 joint positions out."""

    def __init__(self):
        try:
            import pybullet
            import pybullet_data
        except ImportError as e:
            raise UserError(
                "the DeepMimic converter needs pybullet: `pip install pybullet` (or aign_tf[motion])"
            ) from e
        self.p = pybullet
        self.client = pybullet.connect(pybullet.DIRECT)
        self.data_path = pybullet_data.getDataPath()
        self.body = pybullet.loadURDF(
            os.path.join(self.data_path, URDF),
            globalScaling=URDF_SCALE,
            useFixedBase=True,
            flags=pybullet.URDF_MAINTAIN_LINK_ORDER,
            physicsClientId=self.client,
        )
        links = {}
        for j in range(pybullet.getNumJoints(self.body, physicsClientId=self.client)):
            info = pybullet.getJointInfo(self.body, j, physicsClientId=self.client)
            links[info[12].decode()] = j
        self.links = links
        self.driven = [links[name] for name, _ in _FRAME_JOINTS]
        self.points = [(links[link], kind) for link, kind in _JOINT_LINKS]

    def slerp(self, q0, q1, fraction):
        return self.p.getQuaternionSlerp(q0, q1, fraction, physicsClientId=self.client)

    def joints(self, pose: Sequence[float]) -> np.ndarray:
        p = self.p
        p.resetBasePositionAndOrientation(self.body, pose[0:3], pose[3:7], physicsClientId=self.client)
        targets, k = [], 7
        for _, size in _FRAME_JOINTS:
            targets.append(list(pose[k:k + size]))
            k += size
        p.resetJointStatesMultiDof(self.body, self.driven, targets, physicsClientId=self.client)
        indices = sorted({link for link, _ in self.points})
        states = dict(zip(indices, p.getLinkStates(
            self.body, indices, computeForwardKinematics=True, physicsClientId=self.client)))
        # getLinkState: [0] = centre of mass position, [4] = URDF link frame position (world).
        return np.array(
            [states[link][4] if kind == "frame" else states[link][0] for link, kind in self.points],
            np.float64,
        )

    def close(self):
        self.p.disconnect(physicsClientId=self.client)


def pybullet_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("pybullet")
    except metadata.PackageNotFoundError:
        return "unknown"


def convert_clip(name: str, out_dir: str, fps: float = FPS, humanoid: _Humanoid | None = None) -> str:
    """Convert clip ``name`` from pybullet_data into ``out_dir/<name>.npz``; returns the path."""
    _check_names([name], "--clips")
    own = humanoid is None
    humanoid = humanoid or _Humanoid()
    try:
        source_file = f"humanoid3d_{name}.txt"
        path = os.path.join(humanoid.data_path, "data", "motions", source_file)
        frames, loop = read_motion_file(path)
        joints = np.stack(
            [humanoid.joints(interpolate_pose(frames, t, humanoid.slerp)) for t in frame_times(frames, fps)]
        ).astype(np.float32)
    finally:
        if own:
            humanoid.close()
    out = clip_path(name, out_dir)
    write_clip(out, joints, loop, f"pybullet_data/data/motions/{source_file} + pybullet_data/{URDF} "
               f"(globalScaling={URDF_SCALE}), pybullet {pybullet_version()}", fps)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aign_tf.data.deepmimic",
        description="Convert pybullet's DeepMimic humanoid clips into 15-joint skeleton arrays (metres).",
    )
    parser.add_argument("--out", required=True, help="output directory, e.g. aign_tf/data/motions")
    parser.add_argument("--clips", default=",".join(CLIPS), help="comma-separated clip names")
    parser.add_argument("--fps", type=float, default=FPS, help="output frame rate")
    args = parser.parse_args(argv)

    def convert() -> None:
        names = [n for n in args.clips.split(",") if n]
        _check_names(names, "--clips")
        if not args.fps > 0:
            raise UserError(f"--fps must be positive, got {args.fps}")
        humanoid = _Humanoid()
        try:
            for name in names:
                path = convert_clip(name, args.out, args.fps, humanoid)
                with np.load(path) as data:
                    print(f"{path}: {data['joints'].shape[0]} frames")
        finally:
            humanoid.close()

    return exit_status(convert)


if __name__ == "__main__":
    sys.exit(main())
