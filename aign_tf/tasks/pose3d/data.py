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

Human3.6M (`--dataset=h36m`, `aign_tf.data.h36m`) splits by subject (the paper's protocol): the
training subjects' skeletons give the memories and the Sup1 views (random cameras with the focal
lengths of the Human3.6M cameras, `H36M_CAMERAS`), and their real 2D keypoints in each camera with
the 3D in that camera's frame the Sup2 pairs (`h36m_views`); the test subjects' real 2D keypoints are
the unlabelled inputs, normalised with each camera's own principal point, their 3D the truth.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from aign_tf.data import deepmimic, h36m
from aign_tf.render import camera
from aign_tf.tasks.pose3d import skeleton

IMAGE_SIZE = 512.0  # pixels; principal point at (256, 256)


@dataclasses.dataclass(frozen=True)
class Cameras:
    """Ranges of the sampled cameras: a full turn of azimuth, realistic elevation and framing, on a
    square image of `image_size` pixels."""
    elevation_deg: tuple[float, float] = (-10.0, 30.0)
    distance_m: tuple[float, float] = (3.5, 6.5)
    focal_px: tuple[float, float] = (400.0, 900.0)
    offset_m: tuple[float, float] = (0.3, 0.2)  # max |t_x|, |t_y|
    image_size: float = IMAGE_SIZE


# Sup1 cameras for Human3.6M skeletons: the focal lengths of its cameras, on images 1000 pixels wide.
_H36M_FOCAL_PX = [f for c in h36m.CAMERAS for f in c.focal_px]
H36M_CAMERAS = Cameras(focal_px=(min(_H36M_FOCAL_PX), max(_H36M_FOCAL_PX)), image_size=1000.0)


@dataclasses.dataclass(frozen=True)
class Views:
    """Skeletons seen through cameras: everything a batch needs, as float32 arrays."""
    keypoints: np.ndarray    # [N, J, 2] pixels (noise included)
    pose: np.ndarray         # [N, J, 3] metres, camera frame, pelvis at the origin: the 3D truth
    canonical: np.ndarray    # [N, J, 3] the same skeleton in the canonical frame
    clip: np.ndarray         # [N] clip name of each example (Human3.6M: its action)
    centre: np.ndarray | float = IMAGE_SIZE / 2  # principal point (pixels), broadcastable to keypoints
    half: np.ndarray | float = IMAGE_SIZE / 2    # pixels per normalised unit, broadcastable to keypoints

    def normalised(self) -> np.ndarray:
        """The keypoints in normalised image coordinates (the generator's input; module docstring)."""
        return (self.keypoints - self.centre) / self.half


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
    half = cameras.image_size / 2
    keypoints = project(points, focal[:, None], np.full(2, half)).numpy()
    if noise_px > 0:
        keypoints = keypoints + rng.normal(0.0, noise_px, keypoints.shape)
    return Views(keypoints.astype(np.float32), pose.astype(np.float32), shapes.astype(np.float32), clip, half, half)


def canonical_sequences(poses: h36m.H36MPoses) -> dict[str, np.ndarray]:
    """Each Human3.6M sequence's frames in the canonical frame, [T, 17, 3] float32, by "subject/sequence"."""
    names = np.char.add(np.char.add(poses.subject.astype(str), "/"), poses.action.astype(str))
    return {str(name): skeleton.align_torso(poses.poses_3d[names == name]).astype(np.float32)
            for name in dict.fromkeys(names)}


def h36m_views(poses: h36m.H36MPoses) -> Views:
    """Every frame of `poses` in every Human3.6M camera: the file's 2D keypoints (pixels) and the 3D
    moved into that camera's frame, pelvis at the origin. Examples are ordered by action (the order of
    the paper's tables, `h36m.ACTIONS`, then any other action), then by camera."""
    keypoints, pose, centre, half = [], [], [], []
    root = skeleton.H36M.pelvis
    for c, intrinsics in enumerate(h36m.CAMERAS):
        points = np.empty(poses.poses_3d.shape, np.float64)
        for subject in dict.fromkeys(poses.subject):
            rows = poses.subject == subject
            points[rows] = h36m.world_to_camera(poses.poses_3d[rows], subject, c)
        pose.append(points - points[:, root:root + 1])
        keypoints.append(poses.poses_2d[:, c])
        centre.append(np.broadcast_to(np.float32(intrinsics.centre_px), (len(poses), 1, 2)))
        half.append(np.full((len(poses), 1, 1), max(intrinsics.size_px) / 2, np.float32))
    actions = [h36m.action_name(a) for a in poses.action]
    rank = {a: i for i, a in enumerate(dict.fromkeys([*h36m.ACTIONS, *actions]))}
    order = np.argsort(np.tile([rank[a] for a in actions], len(h36m.CAMERAS)), kind="stable")
    pose = np.concatenate(pose)[order]
    return Views(np.concatenate(keypoints)[order], pose.astype(np.float32),
                 skeleton.align_torso(pose).astype(np.float32), np.tile(actions, len(h36m.CAMERAS))[order],
                 np.concatenate(centre)[order], np.concatenate(half)[order])


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
