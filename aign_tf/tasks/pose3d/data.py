"""2D inputs for 3D pose: canonical skeletons, sampled cameras, projection, keypoint noise.

Every skeleton is first put in the canonical frame of `skeleton.align_torso` (pelvis at the
origin, torso facing the camera, y down). A camera sees it rotated by R = Rx(elevation) Ry(azimuth)
and translated by T = (t_x, t_y, distance), and projects it with eq. (2) onto a square image of
IMAGE_SIZE pixels with the principal point at its centre (the paper's Sup1 protocol).

Splits are by clip (`aign_tf.data.deepmimic.clip_split`): training clips give the memories and the
paired (2D, 3D) examples, test clips give the unlabelled 2D inputs and the evaluation truth.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from aign_tf.data import deepmimic
from aign_tf.tasks.pose3d import skeleton

IMAGE_SIZE = 512.0  # pixels; principal point at (256, 256)


@dataclasses.dataclass(frozen=True)
class Cameras:
    """Ranges of the sampled cameras: a full turn of azimuth, realistic elevation and framing."""
    elevation_deg: tuple[float, float] = (-10.0, 30.0)
    distance_m: tuple[float, float] = (3.5, 6.5)
    focal_px: tuple[float, float] = (400.0, 900.0)
    offset_m: tuple[float, float] = (0.3, 0.2)  # max |t_x|, |t_y|


@dataclasses.dataclass(frozen=True)
class Views:
    """Skeletons seen through cameras: everything a batch needs, as float32 arrays."""
    keypoints: np.ndarray    # [N, J, 2] pixels (noise included)
    pose: np.ndarray         # [N, J, 3] metres, camera frame, pelvis at the origin: the 3D truth
    canonical: np.ndarray    # [N, J, 3] the same skeleton in the canonical frame
    clip: np.ndarray         # [N] clip name of each example


def rotation_matrices(elevation: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
    """R = Rx(elevation) @ Ry(azimuth), [N, 3, 3] (conventions of `aign_tf.render.camera`)."""
    ce, se, ca, sa = np.cos(elevation), np.sin(elevation), np.cos(azimuth), np.sin(azimuth)
    zero, one = np.zeros_like(ce), np.ones_like(ce)
    rx = np.stack([one, zero, zero, zero, ce, -se, zero, se, ce], -1).reshape(-1, 3, 3)
    ry = np.stack([ca, zero, sa, zero, one, zero, -sa, zero, ca], -1).reshape(-1, 3, 3)
    return rx @ ry


def canonical_clips(clips: dict[str, deepmimic.Clip]) -> dict[str, np.ndarray]:
    """Each clip's frames in the canonical frame, [T, J, 3] float32."""
    return {name: skeleton.align_torso(skeleton.world_to_camera_convention(clip.joints)).astype(np.float32)
            for name, clip in clips.items()}


def views(canonical: dict[str, np.ndarray], cameras_per_frame: int, seed: int, noise_px: float = 0.0,
          cameras: Cameras = Cameras()) -> Views:
    """Every frame of every clip through `cameras_per_frame` random cameras (deterministic per seed)."""
    rng = np.random.default_rng(seed)
    names = list(canonical)
    shapes = np.concatenate([np.repeat(canonical[n], cameras_per_frame, axis=0) for n in names])
    clip = np.concatenate([[n] * (len(canonical[n]) * cameras_per_frame) for n in names])
    n = len(shapes)
    rotation = rotation_matrices(np.radians(rng.uniform(*cameras.elevation_deg, n)), rng.uniform(0, 2 * np.pi, n))
    pose = np.einsum("nij,nkj->nki", rotation, shapes)
    translation = np.stack([rng.uniform(-cameras.offset_m[0], cameras.offset_m[0], n),
                            rng.uniform(-cameras.offset_m[1], cameras.offset_m[1], n),
                            rng.uniform(*cameras.distance_m, n)], -1)
    focal = rng.uniform(*cameras.focal_px, n)
    points = pose + translation[:, None, :]
    keypoints = focal[:, None, None] * points[..., :2] / points[..., 2:] + IMAGE_SIZE / 2
    if noise_px > 0:
        keypoints = keypoints + rng.normal(0.0, noise_px, keypoints.shape)
    return Views(keypoints.astype(np.float32), pose.astype(np.float32), shapes.astype(np.float32), clip)


def sample_cameras(n: int, seed: int, cameras: Cameras = Cameras()) -> tuple[np.ndarray, np.ndarray]:
    """Euler angles (elevation, azimuth, 0) [n, 3] of R = Rx Ry Rz and focal lengths [n] in pixels."""
    rng = np.random.default_rng(seed)
    angles = np.stack([np.radians(rng.uniform(*cameras.elevation_deg, n)), rng.uniform(0, 2 * np.pi, n),
                       np.zeros(n)], -1)
    return angles.astype(np.float32), rng.uniform(*cameras.focal_px, n).astype(np.float32)


def normalized(keypoints: np.ndarray) -> np.ndarray:
    """Pixels -> [-1, 1] image coordinates around the principal point (the generator's input)."""
    return ((keypoints - IMAGE_SIZE / 2) / (IMAGE_SIZE / 2)).astype(np.float32)
