"""2D inputs for 3D pose: canonical skeletons, sampled cameras, projection, keypoint noise.

Every skeleton is first put in the canonical frame of `skeleton.align_torso` (pelvis at the
origin, torso facing the camera, y down). A camera sees it rotated by R = Rx(elevation) Ry(azimuth)
and translated by T = (t_x, t_y, distance), and projects it with eq. (2) onto a square image of
IMAGE_SIZE pixels with the principal point at its centre (the paper's Sup1 protocol). The geometry
is `aign_tf.render.camera`'s, the renderer's own (`project`), computed here in float64.

The generator reads keypoints in normalised image coordinates, `normalise`d from pixels: their
origin is the principal point, the image centre, and their unit half the longer image side
(`image_frame`), so that a square image spans [-1, 1]. Back in pixels, a length or a difference is
multiplied by that unit, and a point is then moved by the centre (the principal point of `project`).

Splits are by clip (`aign_tf.data.deepmimic.clip_split`): training clips give the memories and the
paired (2D, 3D) examples, test clips give the unlabelled 2D inputs and the evaluation truth.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from aign_tf.data import deepmimic
from aign_tf.render import camera
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


def canonical_clips(clips: dict[str, deepmimic.Clip]) -> dict[str, np.ndarray]:
    """Each clip's frames in the canonical frame, [T, J, 3] float32."""
    return {name: skeleton.align_torso(skeleton.world_to_camera_convention(clip.joints)).astype(np.float32)
            for name, clip in clips.items()}


def _angles(rng: np.random.Generator, n: int, cameras: Cameras) -> np.ndarray:
    """Euler angles (elevation, azimuth, 0) [n, 3] of R = Rx Ry Rz, float64, drawn from `rng`."""
    return np.stack([np.radians(rng.uniform(*cameras.elevation_deg, n)), rng.uniform(0, 2 * np.pi, n),
                     np.zeros(n)], -1)


def views(canonical: dict[str, np.ndarray], cameras_per_frame: int, seed: int, noise_px: float = 0.0,
          cameras: Cameras = Cameras()) -> Views:
    """Every frame of every clip through `cameras_per_frame` random cameras (deterministic per seed)."""
    rng = np.random.default_rng(seed)
    names = list(canonical)
    shapes = np.concatenate([np.repeat(canonical[n], cameras_per_frame, axis=0) for n in names])
    clip = np.concatenate([[n] * (len(canonical[n]) * cameras_per_frame) for n in names])
    n = len(shapes)
    rotation = camera.rotation_xyz(_angles(rng, n, cameras)).numpy()  # float64 Rx(elevation) Ry(azimuth)
    pose = np.einsum("nij,nkj->nki", rotation, shapes)
    translation = np.stack([rng.uniform(-cameras.offset_m[0], cameras.offset_m[0], n),
                            rng.uniform(-cameras.offset_m[1], cameras.offset_m[1], n),
                            rng.uniform(*cameras.distance_m, n)], -1)
    focal = rng.uniform(*cameras.focal_px, n)
    points = pose + translation[:, None, :]
    keypoints = project(points, focal[:, None], np.full(2, IMAGE_SIZE / 2)).numpy()
    if noise_px > 0:
        keypoints = keypoints + rng.normal(0.0, noise_px, keypoints.shape)
    return Views(keypoints.astype(np.float32), pose.astype(np.float32), shapes.astype(np.float32), clip)


def sample_cameras(n: int, seed: int, cameras: Cameras = Cameras()) -> tuple[np.ndarray, np.ndarray]:
    """Euler angles (elevation, azimuth, 0) [n, 3] of R = Rx Ry Rz and focal lengths [n] in pixels."""
    rng = np.random.default_rng(seed)
    angles = _angles(rng, n, cameras)
    return angles.astype(np.float32), rng.uniform(*cameras.focal_px, n).astype(np.float32)


def project(points, focal, principal_point=None) -> tf.Tensor:
    """Eq. (2) with one focal length per example: points [B, J, 3] in the camera frame, focal [B, 1]
    and the principal point (broadcastable to [B, J, 2]; default 0) in the keypoints' units ->
    keypoints [B, J, 2]. NumPy or TF input, any float dtype."""
    focal = tf.expand_dims(tf.concat([focal, focal], -1), 1)  # [B, 1, 2]
    return camera.project(points, focal, tf.zeros_like(focal) if principal_point is None else principal_point)


def image_frame(image_size):
    """(principal point, unit) of the normalised coordinates, broadcastable against keypoints
    [..., J, 2]: `image_size` the side of a square image (a number), or its (width, height) [..., 2]
    (a tensor) -> the image centre and half the longer side, in pixels."""
    if len(getattr(image_size, "shape", ())) == 0:
        return image_size / 2, image_size / 2
    half = tf.reduce_max(image_size, axis=-1, keepdims=True)[..., tf.newaxis] / 2  # [..., 1, 1]
    return image_size[..., tf.newaxis, :] / 2, half


def normalise(keypoints, image_size=IMAGE_SIZE):
    """Pixels -> normalised image coordinates (the generator's input): NumPy or TF keypoints [..., J, 2]."""
    centre, half = image_frame(image_size)
    return (keypoints - centre) / half
