"""Pinhole camera geometry: projection, unprojection, rotations and rigid motion.

Conventions (used by every renderer in `aign_tf.render`):

- Camera frame: right-handed, x right, y down, z forward (along the optical axis). A point is in
  front of the camera when z > 0. Lengths are in whatever unit the caller uses (metres in this
  project); depth and translation must share it.
- Pixel coordinates are (x, y) = (column, row), in pixels, with pixel centers at integer
  coordinates: the top-left pixel's center is (0, 0), the bottom-right one's is (W - 1, H - 1).
- Intrinsics: focal length (f_x, f_y) and principal point (c_x, c_y), both in pixels, so that
  x = f_x * X / Z + c_x and y = f_y * Y / Z + c_y (paper eq. 2, with f_x = f_y = f).
- Rotations are active (they rotate vectors, R @ v) and counter-clockwise about an axis when seen
  from its positive end; angles in radians:
      Rx(a) = [[1, 0, 0], [0, cos a, -sin a], [0, sin a, cos a]]
      Ry(b) = [[cos b, 0, sin b], [0, 1, 0], [-sin b, 0, cos b]]
      Rz(c) = [[cos c, -sin c, 0], [sin c, cos c, 0], [0, 0, 1]]
  `rotation_xyz((a, b, c))` is the paper's pose convention (sec. 2.1, 2.2): Rx(a) @ Ry(b) @ Rz(c).
- Rigid motion: X2 = R @ X1 + T takes points from frame 1 to frame 2 (paper sec. 2.2).

Batch dimensions: `project` and `unproject` broadcast their arguments like NumPy (pass focal
[B, 1, 2] with points [B, N, 3]); `transform` applies a pose of batch shape A to points of shape
A + [any extra dimensions] + [3].
"""

import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.render.tfg import perspective, rotation_matrix_3d


def _check_last_dims(tensor: tf.Tensor, name: str, dims: tuple[int, ...]) -> None:
    """Raises UserError unless `tensor`'s static trailing dimensions equal `dims`."""
    shape = tensor.shape
    if shape.rank is not None and (
        shape.rank < len(dims) or not shape[-len(dims):].is_compatible_with(dims)
    ):
        expected = ", ".join(["..."] + [str(d) for d in dims])
        raise UserError(f"{name} has shape {shape}; expected [{expected}].")


def _check_broadcastable(tensors: dict[str, tf.Tensor]) -> None:
    """Raises UserError unless the batch shapes (all but the last axis) of `tensors` broadcast."""
    batch_shape = tf.TensorShape([])
    for tensor in tensors.values():
        try:
            batch_shape = tf.broadcast_static_shape(batch_shape, tensor.shape[:-1])
        except ValueError:
            shapes = ", ".join(f"{n} {t.shape}" for n, t in tensors.items())
            raise UserError(
                f"batch dimensions do not broadcast: {shapes}; make the leading "
                f"dimensions equal or 1 (e.g. focal [B, 1, 2] for points [B, N, 3])."
            ) from None


def project(points: tf.Tensor, focal: tf.Tensor, principal_point: tf.Tensor) -> tf.Tensor:
    """Projects camera-frame points to pixels.

    Args:
      points: [..., 3] points (X, Y, Z) in the camera frame, Z > 0.
      focal: [..., 2] focal lengths (f_x, f_y) in pixels, broadcastable against `points`.
      principal_point: [..., 2] principal point (c_x, c_y) in pixels, broadcastable.

    Returns:
      [..., 2] pixel coordinates (x, y).
    """
    with tf.name_scope("project"):
        points = tf.convert_to_tensor(points)
        focal = tf.convert_to_tensor(focal, dtype=points.dtype)
        principal_point = tf.convert_to_tensor(principal_point, dtype=points.dtype)
        _check_last_dims(points, "points", (3,))
        _check_last_dims(focal, "focal", (2,))
        _check_last_dims(principal_point, "principal_point", (2,))
        _check_broadcastable(
            {"points": points, "focal": focal, "principal_point": principal_point}
        )
        return perspective.project(points, focal, principal_point)


def unproject(
    pixels: tf.Tensor, depth: tf.Tensor, focal: tf.Tensor, principal_point: tf.Tensor
) -> tf.Tensor:
    """Lifts pixels with known depth to camera-frame points (inverse of `project`).

    Args:
      pixels: [..., 2] pixel coordinates (x, y).
      depth: [..., 1] depth Z of each pixel (distance along the optical axis, not along the ray).
      focal: [..., 2] focal lengths in pixels; all four arguments broadcast against each other.
      principal_point: [..., 2] principal point in pixels.

    Returns:
      [..., 3] points (X, Y, Z) in the camera frame, batch shape the broadcast of the inputs'.
    """
    with tf.name_scope("unproject"):
        pixels = tf.convert_to_tensor(pixels)
        depth = tf.convert_to_tensor(depth, dtype=pixels.dtype)
        focal = tf.convert_to_tensor(focal, dtype=pixels.dtype)
        principal_point = tf.convert_to_tensor(principal_point, dtype=pixels.dtype)
        _check_last_dims(pixels, "pixels", (2,))
        _check_last_dims(depth, "depth", (1,))
        _check_last_dims(focal, "focal", (2,))
        _check_last_dims(principal_point, "principal_point", (2,))
        _check_broadcastable(
            {"pixels": pixels, "depth": depth, "focal": focal, "principal_point": principal_point}
        )
        batch_shape = tf.shape(pixels)[:-1]
        for tensor in (depth, focal, principal_point):
            batch_shape = tf.broadcast_dynamic_shape(batch_shape, tf.shape(tensor)[:-1])

        def tile(tensor: tf.Tensor, size: int) -> tf.Tensor:
            return tf.broadcast_to(tensor, tf.concat([batch_shape, [size]], axis=0))

        # tensorflow-graphics' unproject does not broadcast.
        return perspective.unproject(
            tile(pixels, 2), tile(depth, 1), tile(focal, 2), tile(principal_point, 2)
        )


def rotation_xyz(angles: tf.Tensor) -> tf.Tensor:
    """Rotation matrices Rx(a) @ Ry(b) @ Rz(c), the paper's pose and egomotion convention.

    Args:
      angles: [..., 3] angles (a, b, c) in radians about x, y and z.

    Returns:
      [..., 3, 3] rotation matrices.
    """
    with tf.name_scope("rotation_xyz"):
        angles = tf.convert_to_tensor(angles)
        _check_last_dims(angles, "angles", (3,))
        # (Rz(-c) Ry(-b) Rx(-a))^T = Rx(a) Ry(b) Rz(c), since Rk(-t)^T = Rk(t).
        return tf.linalg.matrix_transpose(rotation_matrix_3d.from_euler(-angles))


def transform(points: tf.Tensor, rotation: tf.Tensor, translation: tf.Tensor) -> tf.Tensor:
    """Applies the rigid motion X2 = R @ X1 + T.

    Args:
      points: [A1, ..., An, M1, ..., Mk, 3] points; k >= 0 extra dimensions share one pose, e.g.
        a per-pixel point cloud [B, H, W, 3] with a pose per example.
      rotation: [A1, ..., An, 3, 3] rotation matrices R.
      translation: [A1, ..., An, 3] translations T, in the unit of `points`.

    Returns:
      Transformed points, same shape as `points`.
    """
    with tf.name_scope("transform"):
        points = tf.convert_to_tensor(points)
        rotation = tf.convert_to_tensor(rotation, dtype=points.dtype)
        translation = tf.convert_to_tensor(translation, dtype=points.dtype)
        _check_last_dims(points, "points", (3,))
        _check_last_dims(rotation, "rotation", (3, 3))
        _check_last_dims(translation, "translation", (3,))
        pose_batch = rotation.shape[:-2]
        if pose_batch.rank is not None and points.shape.rank is not None and (
            not pose_batch.is_compatible_with(translation.shape[:-1])
            or points.shape.rank < pose_batch.rank + 1
            or not pose_batch.is_compatible_with(points.shape[: pose_batch.rank])
        ):
            raise UserError(
                f"points {points.shape}, rotation {rotation.shape} and translation "
                f"{translation.shape} do not match; expected points [A..., M..., 3], "
                f"rotation [A..., 3, 3], translation [A..., 3] with the same leading A."
            )
        # Flatten the extra dimensions to one axis N: [A..., N, 3] @ R^T + T.
        flat_shape = tf.concat([tf.shape(translation)[:-1], [-1, 3]], axis=0)
        flat = tf.reshape(points, flat_shape)
        moved = tf.matmul(flat, rotation, transpose_b=True) + tf.expand_dims(translation, -2)
        return tf.reshape(moved, tf.shape(points))


def pixel_grid(height: int | tf.Tensor, width: int | tf.Tensor) -> tf.Tensor:
    """[height, width, 2] float32 pixel coordinates: grid[y, x] = (x, y)."""
    with tf.name_scope("pixel_grid"):
        xs = tf.cast(tf.range(width), tf.float32)
        ys = tf.cast(tf.range(height), tf.float32)
        grid_x, grid_y = tf.meshgrid(xs, ys)
        return tf.stack([grid_x, grid_y], axis=-1)
