"""3D skeletons for the pose task: frames, torso alignment and the PCA pose basis (NumPy only).

Conventions (used by every module of `aign_tf.tasks.pose3d`):

- A skeleton is a float array [..., J, 3] of joint positions in METRES, joints in the order of a
  `JointSet`: `DEEPMIMIC` (the 15 joints of `aign_tf.data.deepmimic.JOINT_NAMES`, the default
  dataset) or `H36M` (the 17 joints of `aign_tf.data.h36m.H36M17_NAMES`). The joint count names
  the set (`joint_set`). Any leading batch dimensions are allowed.
- Camera convention: right-handed, x right, y DOWN, z forward, as in `aign_tf.render.camera`.
  DeepMimic clips are stored y-up (the character faces +x at rest, its right side is +z);
  `world_to_camera_convention` maps them to (x, -y, -z), a proper rotation (180 degrees about x)
  that makes y point down. Apply it before projecting or aligning DeepMimic skeletons.
- Canonical (torso-aligned) frame, the paper's "torsos aligned to face the front" (sec. 3.1):
  origin at the pelvis (the root; Human3.6M's "hip");
  x = unit hip vector, right_hip -> left_hip (towards the person's LEFT);
  y = unit spine vector neck -> pelvis (pointing DOWN the body), with its x component removed; the
  neck is the joint between the shoulders (DeepMimic's "neck", Human3.6M's "thorax");
  z = x cross y.
  With x = left and y = down, z points from the person's front to their back, so the canonical
  person FACES -z: seen by a camera at the origin looking along +z (person at z > 0), they face
  the camera, upright (head at image top, -y), with their LEFT side on image RIGHT (+x).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from aign_tf.data import deepmimic, h36m
from aign_tf.errors import UserError


@dataclasses.dataclass(frozen=True)
class JointSet:
    """A skeleton layout: joint names in array order, bones (parent, child) and the joints that
    define the canonical torso frame."""

    name: str
    names: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    pelvis: int
    right_hip: int
    left_hip: int
    neck: int

    @property
    def num_joints(self) -> int:
        return len(self.names)


def _joint_set(name: str, names: tuple[str, ...], bones, pelvis: str, neck: str) -> JointSet:
    return JointSet(name, names, tuple(bones), names.index(pelvis), names.index("right_hip"),
                    names.index("left_hip"), names.index(neck))


DEEPMIMIC = _joint_set("deepmimic", deepmimic.JOINT_NAMES, deepmimic.BONES, pelvis="pelvis", neck="neck")
H36M = _joint_set("h36m", h36m.H36M17_NAMES, ((p, c) for c, p in enumerate(h36m.H36M17_PARENTS) if p >= 0),
                  pelvis="hip", neck="thorax")
JOINT_SETS: dict[int, JointSet] = {s.num_joints: s for s in (DEEPMIMIC, H36M)}
_KNOWN = " or ".join(f"{n} (the {s.name} joints)" for n, s in JOINT_SETS.items())


def joint_set(num_joints: int) -> JointSet:
    """The joint set of skeletons with `num_joints` joints."""
    if num_joints not in JOINT_SETS:
        raise UserError(f"skeletons have {num_joints} joints; expected {_KNOWN}")
    return JOINT_SETS[num_joints]


# Hip vectors or spines shorter than this (metres) cannot define a torso frame.
_MIN_LENGTH = 1e-6


def _as_skeletons(joints: np.ndarray, name: str = "joints") -> tuple[np.ndarray, JointSet]:
    """(`joints` as a float64 array, its joint set), after checking it is [..., J, 3] of a known set."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim < 2 or joints.shape[-1] != 3 or joints.shape[-2] not in JOINT_SETS:
        raise UserError(
            f"{name} has shape {joints.shape}; expected [..., J, 3] in metres, J = {_KNOWN}."
        )
    return joints, JOINT_SETS[joints.shape[-2]]


def _output_dtype(joints: np.ndarray) -> np.dtype:
    """The float dtype of `joints` (float64 for non-float input)."""
    dtype = np.asarray(joints).dtype
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)


def world_to_camera_convention(joints_y_up: np.ndarray) -> np.ndarray:
    """Maps y-up world coordinates (DeepMimic) to the y-down convention: (x, y, z) -> (x, -y, -z).

    Args:
      joints_y_up: [..., 3] points, any unit.

    Returns:
      [..., 3] points, same dtype; a proper rotation (180 degrees about x), so handedness is kept.
    """
    points = np.asarray(joints_y_up)
    if points.ndim < 1 or points.shape[-1] != 3:
        raise UserError(f"joints_y_up has shape {points.shape}; expected [..., 3].")
    return points * np.array([1, -1, -1], dtype=_output_dtype(points))


def torso_rotation(joints: np.ndarray) -> np.ndarray:
    """Rotation into the canonical torso frame.

    Args:
      joints: [..., J, 3] skeletons in metres.

    Returns:
      [..., 3, 3] rotation R whose rows are the canonical axes x, y, z expressed in the input
      frame, so that R @ (p - pelvis) gives p in the canonical frame. det(R) = +1.
    """
    points, layout = _as_skeletons(joints)
    hip = points[..., layout.left_hip, :] - points[..., layout.right_hip, :]
    spine = points[..., layout.pelvis, :] - points[..., layout.neck, :]
    hip_length = np.linalg.norm(hip, axis=-1, keepdims=True)
    if np.any(hip_length < _MIN_LENGTH):
        raise UserError(
            "a skeleton has its left and right hips at the same place, so its torso has no "
            "direction; pass real skeletons (joints in the order of their JointSet, metres)."
        )
    x_axis = hip / hip_length
    spine = spine - np.sum(spine * x_axis, axis=-1, keepdims=True) * x_axis
    spine_length = np.linalg.norm(spine, axis=-1, keepdims=True)
    if np.any(spine_length < _MIN_LENGTH):
        raise UserError(
            "a skeleton has its neck on the line through its hips (or at the pelvis), so its "
            "torso has no up direction; pass real skeletons (joints in the order of their JointSet, metres)."
        )
    y_axis = spine / spine_length
    z_axis = np.cross(x_axis, y_axis)
    rotation = np.stack([x_axis, y_axis, z_axis], axis=-2)
    return rotation.astype(_output_dtype(joints))


def align_torso(joints: np.ndarray) -> np.ndarray:
    """Root-centres skeletons and rotates them into the canonical torso frame (module docstring).

    Args:
      joints: [..., J, 3] skeletons in metres, any batch dimensions.

    Returns:
      [..., J, 3] canonical skeletons in metres (pelvis at the origin, facing -z), same dtype.
    """
    points, layout = _as_skeletons(joints)
    rotation = torso_rotation(points)
    centred = points - points[..., layout.pelvis : layout.pelvis + 1, :]
    aligned = np.einsum("...ij,...kj->...ki", rotation, centred)
    return aligned.astype(_output_dtype(joints))


@dataclasses.dataclass(frozen=True, eq=False)  # arrays: compare by identity
class PoseBasis:
    """A linear pose basis from PCA of canonical skeletons: x = mean + alpha @ components.

    Attributes:
      mean: [J*3] float32 mean canonical pose, metres, flattened joint-major (x, y, z per joint).
      components: [K, J*3] float32 orthonormal rows, by decreasing explained variance.
      explained_variance: [K] float32 variance (m^2) of the training poses along each component.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray

    @property
    def num_components(self) -> int:
        """K, the number of basis vectors."""
        return self.components.shape[0]

    @property
    def num_joints(self) -> int:
        """J, the number of joints of a decoded skeleton."""
        return self.components.shape[1] // 3

    def encode(self, aligned: np.ndarray) -> np.ndarray:
        """Projects canonical skeletons [..., J, 3] (metres) onto the basis: [..., K] weights."""
        aligned = np.asarray(aligned, dtype=np.float32)
        if aligned.ndim < 2 or aligned.shape[-2:] != (self.num_joints, 3):
            raise UserError(
                f"aligned has shape {aligned.shape}; expected [..., {self.num_joints}, 3] "
                f"canonical skeletons (align_torso output)."
            )
        flat = aligned.reshape(aligned.shape[:-2] + (self.num_joints * 3,))
        return (flat - self.mean) @ self.components.T

    def decode(self, alpha: np.ndarray) -> np.ndarray:
        """Maps basis weights [..., K] back to canonical skeletons [..., J, 3] in metres."""
        alpha = np.asarray(alpha, dtype=np.float32)
        if alpha.ndim < 1 or alpha.shape[-1] != self.num_components:
            raise UserError(
                f"alpha has shape {alpha.shape}; expected [..., {self.num_components}] basis "
                f"weights."
            )
        flat = alpha @ self.components + self.mean
        return flat.reshape(alpha.shape[:-1] + (self.num_joints, 3))


def pca_basis(aligned: np.ndarray, k: int) -> PoseBasis:
    """PCA of canonical skeletons (paper sec. 2.1: a basis from orientation-aligned poses).

    Args:
      aligned: [N, J, 3] canonical skeletons in metres (align_torso output), N >= 2.
      k: number of components to keep, 1 <= k <= min(N, J*3).

    Returns:
      PoseBasis with the k leading components of the mean-centred data (via SVD). Each
      component's sign is fixed so that its largest-magnitude entry is positive.
    """
    data = np.asarray(aligned, dtype=np.float64)
    if data.ndim != 3 or data.shape[-1] != 3 or data.shape[0] < 2:
        raise UserError(
            f"aligned has shape {data.shape}; expected [N, J, 3] canonical skeletons with N >= 2."
        )
    num, dim = data.shape[0], data.shape[1] * 3
    if not 1 <= k <= min(num, dim):
        raise UserError(
            f"k={k} components is out of range for {num} poses of {dim} coordinates; "
            f"pick 1 <= k <= {min(num, dim)}."
        )
    flat = data.reshape(num, dim)
    mean = flat.mean(axis=0)
    _, singular_values, vt = np.linalg.svd(flat - mean, full_matrices=False)
    components = vt[:k]
    largest = np.argmax(np.abs(components), axis=1)
    components *= np.sign(components[np.arange(k), largest])[:, None]
    variance = singular_values[:k] ** 2 / (num - 1)
    return PoseBasis(
        mean=mean.astype(np.float32),
        components=components.astype(np.float32),
        explained_variance=variance.astype(np.float32),
    )
