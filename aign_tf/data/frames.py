"""Frame pairs with depth and camera motion: the structure-from-motion data that every source
(the procedural driving world, Virtual KITTI) turns its sequences into.

A set of N frame pairs is a dict of NumPy arrays:

    image1       uint8 [N, H, W, 3]   first frame
    image2       uint8 [N, H, W, 3]   the next frame
    depth1       float32 [N, H, W, 1] depth Z of the first frame, metres along the optical axis
    rotation     float32 [N, 3, 3]    R and
    translation  float32 [N, 3]       T (metres) of X2 = R @ X1 + T, frame-1 to frame-2 camera coordinates
    sequence     int32 [N]            which sequence the pair comes from

Camera conventions are those of `aign_tf.render.camera` (x right, y down, z forward; pixel centres
at integer coordinates).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from aign_tf.errors import UserError

PAIR_KEYS = ("image1", "image2", "depth1", "rotation", "translation", "sequence")
# The depth and egomotion networks halve the frame four times.
SIZE_MULTIPLE = 16


@dataclasses.dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera: image size and (f_x, f_y), (c_x, c_y) in pixels."""
    height: int
    width: int
    focal: tuple[float, float]
    principal_point: tuple[float, float]

    def resized(self, height: int, width: int) -> "Intrinsics":
        """The same camera for the image resampled to height x width (pixel centres stay put:
        x' = (x + 0.5) * s - 0.5)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(height, width, (self.focal[0] * sx, self.focal[1] * sy),
                          ((self.principal_point[0] + 0.5) * sx - 0.5, (self.principal_point[1] + 0.5) * sy - 0.5))


def check_frame_size(height: int, width: int) -> None:
    """Raises UserError unless both sides are positive multiples of SIZE_MULTIPLE."""
    if height <= 0 or width <= 0 or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise UserError(f"frame size {height}x{width} is not supported: height and width must be positive "
                        f"multiples of {SIZE_MULTIPLE} (e.g. --frame_size=64x192)")


def relative_motion(world_to_camera1: np.ndarray, world_to_camera2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R [..., 3, 3], T [..., 3]) with X2 = R @ X1 + T, from two [..., 4, 4] world-to-camera matrices."""
    motion = world_to_camera2 @ np.linalg.inv(world_to_camera1)
    return motion[..., :3, :3], motion[..., :3, 3]


def sequence_pairs(images: np.ndarray, depths: np.ndarray, world_to_camera: np.ndarray, sequence: int) -> dict:
    """The F - 1 consecutive pairs of one sequence of F frames.

    images uint8 [F, H, W, 3]; depths [F, H, W] metres; world_to_camera [F, 4, 4] (X_cam = E @ X_world).
    """
    frames = len(images)
    if frames < 2 or len(depths) != frames or len(world_to_camera) != frames:
        raise UserError(f"sequence {sequence}: need at least 2 frames with one depth map and one pose each, "
                        f"got {len(images)} images, {len(depths)} depth maps, {len(world_to_camera)} poses")
    rotation, translation = relative_motion(world_to_camera[:-1].astype(np.float64), world_to_camera[1:].astype(np.float64))
    return {"image1": images[:-1], "image2": images[1:],
            "depth1": depths[:-1, ..., np.newaxis].astype(np.float32),
            "rotation": rotation.astype(np.float32), "translation": translation.astype(np.float32),
            "sequence": np.full(frames - 1, sequence, np.int32)}


def concat_pairs(parts: list[dict]) -> dict:
    """Concatenates several sets of pairs (e.g. one per sequence)."""
    return {key: np.concatenate([p[key] for p in parts]) for key in PAIR_KEYS}
