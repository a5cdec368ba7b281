"""The structure-from-motion renderer (paper sec. 2.2): bilinear sampling and depth + egomotion
warping. Camera and pixel conventions are those of `aign_tf.render.camera`."""

import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.render import camera

# Points closer to the camera than this (in the unit of depth) are clamped and marked invalid.
MIN_DEPTH = 1e-3
# Coordinates this far (in pixels) outside the image still count as inside: round-off in
# unproject -> project must not flip the border pixels to invalid.
BORDER_TOLERANCE = 1e-3


def _check_shape(
    tensor: tf.Tensor, name: str, expected: str, ranks: tuple[int, ...], last: int | None
) -> None:
    """Raises UserError unless `tensor`'s static rank is in `ranks` and its last dim is `last`."""
    if tensor.shape.rank not in ranks or (last is not None and tensor.shape[-1] not in (None, last)):
        raise UserError(f"{name} has shape {tensor.shape}; expected {expected}.")


def bilinear_sample(image: tf.Tensor, coords: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Samples `image` at fractional pixel coordinates with bilinear interpolation.

    Differentiable with respect to `image` and `coords` (except at integer coordinates, where
    bilinear interpolation has a kink). Outside the image the border pixels are repeated and the
    coordinate gradient is zero; use `valid` to mask those samples.

    Args:
      image: [B, H, W, C] floating-point image.
      coords: [B, h, w, 2] finite pixel coordinates (x, y) to sample at.

    Returns:
      sampled: [B, h, w, C] interpolated values.
      valid: [B, h, w, 1] float, 1 where (x, y) lies in [0, W - 1] x [0, H - 1] (widened by
        BORDER_TOLERANCE), else 0.
    """
    with tf.name_scope("bilinear_sample"):
        image = tf.convert_to_tensor(image)
        coords = tf.convert_to_tensor(coords, dtype=image.dtype)
        _check_shape(image, "image", "[B, H, W, C]", (4,), None)
        _check_shape(coords, "coords", "[B, h, w, 2] pixel coordinates (x, y)", (4,), 2)
        if not image.shape[:1].is_compatible_with(coords.shape[:1]):
            raise UserError(
                f"image {image.shape} and coords {coords.shape} have different batch sizes; "
                f"pass one set of coordinates per image."
            )
        shape = tf.shape(image)
        batch, height, width = shape[0], shape[1], shape[2]
        max_x = tf.cast(width - 1, image.dtype)
        max_y = tf.cast(height - 1, image.dtype)

        x, y = tf.unstack(coords, axis=-1)
        tolerance = BORDER_TOLERANCE
        valid = (x >= -tolerance) & (x <= max_x + tolerance)
        valid &= (y >= -tolerance) & (y <= max_y + tolerance)
        # Clamping repeats the border and keeps far-away coordinates from overflowing the int cast.
        x = tf.clip_by_value(x, 0.0, max_x)
        y = tf.clip_by_value(y, 0.0, max_y)
        x0 = tf.floor(x)
        y0 = tf.floor(y)
        weight_x = tf.expand_dims(x - x0, -1)
        weight_y = tf.expand_dims(y - y0, -1)
        x0 = tf.cast(x0, tf.int32)
        y0 = tf.cast(y0, tf.int32)
        x1 = tf.minimum(x0 + 1, width - 1)
        y1 = tf.minimum(y0 + 1, height - 1)

        # Gather from the image flattened to [B * H * W, C].
        flat_image = tf.reshape(image, tf.stack([-1, shape[3]]))
        row_start = tf.reshape(tf.range(batch) * height, [-1, 1, 1])

        def pixel(xi: tf.Tensor, yi: tf.Tensor) -> tf.Tensor:
            return tf.gather(flat_image, (row_start + yi) * width + xi)

        top = pixel(x0, y0) * (1.0 - weight_x) + pixel(x1, y0) * weight_x
        bottom = pixel(x0, y1) * (1.0 - weight_x) + pixel(x1, y1) * weight_x
        sampled = top * (1.0 - weight_y) + bottom * weight_y
        return sampled, tf.expand_dims(tf.cast(valid, image.dtype), -1)


def _reproject(
    depth: tf.Tensor,
    rotation: tf.Tensor,
    translation: tf.Tensor,
    focal: tf.Tensor,
    principal_point: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Frame-2 pixel coordinates of every frame-1 pixel, the frame-1 grid, and an in-front mask."""
    depth = tf.convert_to_tensor(depth)
    rotation = tf.convert_to_tensor(rotation, dtype=depth.dtype)
    translation = tf.convert_to_tensor(translation, dtype=depth.dtype)
    focal = tf.convert_to_tensor(focal, dtype=depth.dtype)
    principal_point = tf.convert_to_tensor(principal_point, dtype=depth.dtype)
    _check_shape(depth, "depth", "[B, H, W, 1]", (4,), 1)
    _check_shape(rotation, "rotation", "[B, 3, 3]", (3,), 3)
    _check_shape(translation, "translation", "[B, 3]", (2,), 3)
    _check_shape(focal, "focal", "[B, 2] or [2] in pixels", (1, 2), 2)
    _check_shape(principal_point, "principal_point", "[B, 2] or [2] in pixels", (1, 2), 2)

    shape = tf.shape(depth)
    grid = tf.cast(camera.pixel_grid(shape[1], shape[2]), depth.dtype)
    # One camera per example, shared by all of its pixels.
    focal = tf.reshape(focal, [-1, 1, 1, 2])
    principal_point = tf.reshape(principal_point, [-1, 1, 1, 2])

    points1 = camera.unproject(grid, depth, focal, principal_point)
    points2 = camera.transform(points1, rotation, translation)
    xy2, z2 = tf.split(points2, [2, 1], axis=-1)
    in_front = tf.cast(z2 > MIN_DEPTH, depth.dtype)
    points2 = tf.concat([xy2, tf.maximum(z2, MIN_DEPTH)], axis=-1)
    coords2 = camera.project(points2, focal, principal_point)
    return coords2, grid, in_front


def flow_from_depth_and_motion(
    depth: tf.Tensor,
    rotation: tf.Tensor,
    translation: tf.Tensor,
    focal: tf.Tensor,
    principal_point: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Where each frame-1 pixel lands in frame 2, given its depth and the camera motion.

    Args:
      depth: [B, H, W, 1] frame-1 depth Z (along the optical axis).
      rotation: [B, 3, 3] rotation R of X2 = R @ X1 + T (frame-1 to frame-2 camera coordinates).
      translation: [B, 3] translation T, in the unit of `depth`.
      focal: [B, 2] (or [2]) focal lengths in pixels, the same camera for both frames.
      principal_point: [B, 2] (or [2]) principal point in pixels.

    Returns:
      coords2: [B, H, W, 2] frame-2 pixel coordinates (x, y). Points that end up behind the
        camera (z <= MIN_DEPTH) are projected as if at z = MIN_DEPTH: finite, but meaningless.
      flow: [B, H, W, 2] optical flow coords2 - (x1, y1) in pixels.
    """
    with tf.name_scope("flow_from_depth_and_motion"):
        coords2, grid, _ = _reproject(depth, rotation, translation, focal, principal_point)
        return coords2, coords2 - grid


def warp(
    image2: tf.Tensor,
    depth1: tf.Tensor,
    rotation: tf.Tensor,
    translation: tf.Tensor,
    focal: tf.Tensor,
    principal_point: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Warps frame 2 into frame 1: warped(x1, y1) = I2(x1 + U, y1 + V) (paper eq. 3).

    Args:
      image2: [B, H, W, C] second frame.
      depth1, rotation, translation, focal, principal_point: as in `flow_from_depth_and_motion`.

    Returns:
      warped: [B, H, W, C] frame 2 resampled to align with frame 1.
      valid: [B, H, W, 1] float, 1 where the point is in front of the frame-2 camera and
        projects inside frame 2, else 0; mask the photometric error with it.
    """
    with tf.name_scope("warp"):
        image2 = tf.convert_to_tensor(image2)
        coords2, _, in_front = _reproject(depth1, rotation, translation, focal, principal_point)
        warped, inside = bilinear_sample(image2, tf.cast(coords2, image2.dtype))
        return warped, inside * tf.cast(in_front, image2.dtype)
