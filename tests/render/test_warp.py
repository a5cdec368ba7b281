"""Tests for bilinear sampling and the depth + egomotion warping renderer."""

import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.render import camera, warp
from tests.testing import assert_jacobians_close


def numpy_bilinear(image, x, y):
    """Reference bilinear interpolation of one [H, W, C] image at an in-range point (x, y)."""
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    x1, y1 = min(x0 + 1, image.shape[1] - 1), min(y0 + 1, image.shape[0] - 1)
    ax, ay = x - x0, y - y0
    top = (1 - ax) * image[y0, x0] + ax * image[y0, x1]
    bottom = (1 - ax) * image[y1, x0] + ax * image[y1, x1]
    return (1 - ay) * top + ay * bottom


def identity_motion(batch):
    return tf.eye(3, batch_shape=[batch], dtype=tf.float64), tf.zeros([batch, 3], tf.float64)


def test_bilinear_sample_matches_numpy_at_fractional_coordinates():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 5, 7, 3))
    coords = rng.uniform([0, 0], [6, 4], size=(2, 3, 4, 2))
    coords[0, 0, 0] = [6.0, 4.0]  # bottom-right pixel center: still inside
    coords[1, 0, 0] = [2.0, 3.0]  # an integer coordinate returns the pixel itself
    sampled, valid = warp.bilinear_sample(image, coords)
    expected = np.array([
        [[numpy_bilinear(image[b], x, y) for x, y in row] for row in coords[b]] for b in range(2)
    ])
    np.testing.assert_allclose(sampled.numpy(), expected, atol=1e-12)
    np.testing.assert_array_equal(sampled[1, 0, 0], image[1, 3, 2])
    np.testing.assert_array_equal(valid.numpy(), 1.0)


def test_bilinear_sample_marks_out_of_range_coordinates_invalid():
    image = np.ones((1, 4, 5, 2), np.float32)
    coords = np.array([[[[-0.01, 1.0], [4.01, 1.0], [1.0, -0.5], [1.0, 3.5], [1e9, -1e9],
                         [0.0, 0.0], [4.0, 3.0], [2.5, 1.5]]]], np.float32)
    sampled, valid = warp.bilinear_sample(image, coords)
    np.testing.assert_array_equal(valid[0, 0, :, 0], [0, 0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(sampled.numpy(), 1.0)  # the border is repeated outside


def test_bilinear_sample_jacobians():
    rng = np.random.default_rng(1)
    image = tf.constant(rng.normal(size=(2, 4, 5, 2)))
    # Fractional parts in [0.2, 0.8]: away from the kinks at integer coordinates.
    coords = tf.constant(rng.integers(0, 3, size=(2, 3, 2, 2)) + rng.uniform(0.2, 0.8, (2, 3, 2, 2)))
    assert_jacobians_close(tf.function(lambda i, c: warp.bilinear_sample(i, c)[0]), [image, coords])


def test_zero_motion_returns_the_image():
    rng = np.random.default_rng(2)
    image = rng.uniform(size=(2, 6, 8, 3))
    depth = rng.uniform(1.0, 10.0, size=(2, 6, 8, 1))
    rotation, translation = identity_motion(2)
    warped, valid = warp.warp(image, depth, rotation, translation, [[50.0, 50.0]] * 2, [[4.0, 3.0]] * 2)
    np.testing.assert_allclose(warped.numpy(), image, atol=1e-9)
    np.testing.assert_array_equal(valid.numpy(), 1.0)


def test_pure_translation_with_constant_depth_shifts_by_f_t_over_z():
    rng = np.random.default_rng(3)
    image = rng.uniform(size=(1, 6, 8, 1))
    depth = np.full((1, 6, 8, 1), 5.0)
    rotation, _ = identity_motion(1)
    translation = [[1.0, 0.25, 0.0]]
    focal = [[10.0, 8.0]]
    coords2, flow = warp.flow_from_depth_and_motion(depth, rotation, translation, focal, [[3.5, 2.5]])
    # Flow = f * T / Z = (10 * 1 / 5, 8 * 0.25 / 5) = (2, 0.4) pixels at every pixel.
    np.testing.assert_allclose(flow.numpy(), np.broadcast_to([2.0, 0.4], (1, 6, 8, 2)), atol=1e-12)
    np.testing.assert_allclose(coords2[0], camera.pixel_grid(6, 8) + [2.0, 0.4], atol=1e-6)

    warped, valid = warp.warp(image, depth, rotation, translation, focal, [[3.5, 2.5]])
    expected = 0.6 * image[:, :-1, 2:] + 0.4 * image[:, 1:, 2:]  # rows y + 0.4, columns x + 2
    np.testing.assert_allclose(warped[:, :-1, :-2].numpy(), expected, atol=1e-12)
    expected_valid = np.zeros((1, 6, 8, 1))
    expected_valid[:, :-1, :-2] = 1.0
    np.testing.assert_array_equal(valid.numpy(), expected_valid)


def test_points_behind_the_camera_are_finite_and_invalid():
    depth = tf.fill([1, 3, 4, 1], tf.constant(2.0, tf.float64))
    rotation, _ = identity_motion(1)
    translation = tf.constant([[0.5, 0.0, -2.0]], tf.float64)  # every point lands at z = 0
    with tf.GradientTape() as tape:
        tape.watch([depth, translation])
        warped, valid = warp.warp(tf.ones([1, 3, 4, 2], tf.float64), depth, rotation, translation,
                                  [[10.0, 10.0]], [[1.5, 1.0]])
        loss = tf.reduce_sum(warped * valid)
    gradients = tape.gradient(loss, [depth, translation])
    np.testing.assert_array_equal(valid.numpy(), 0.0)
    assert np.all(np.isfinite(warped.numpy()))
    assert all(np.all(np.isfinite(g.numpy())) for g in gradients)


def test_warp_jacobians_wrt_depth_and_translation():
    rng = np.random.default_rng(4)
    image2 = tf.constant(rng.uniform(size=(1, 4, 5, 2)))
    depth = tf.constant(rng.uniform(2.8, 3.2, size=(1, 4, 5, 1)))
    rotation = camera.rotation_xyz(tf.constant([[0.02, -0.03, 0.01]], tf.float64))
    translation = tf.constant([[0.2, 0.12, 0.03]], tf.float64)
    focal = tf.constant([[7.0, 7.0]], tf.float64)
    principal_point = tf.constant([[2.0, 1.5]], tf.float64)
    coords2, _ = warp.flow_from_depth_and_motion(depth, rotation, translation, focal, principal_point)
    fractional = coords2.numpy() % 1.0
    # Bilinear sampling has kinks at integer coordinates (and the image border): stay away.
    assert np.all((fractional > 0.05) & (fractional < 0.95)), "test needs non-integer coordinates"

    @tf.function  # traced once: compute_gradient calls it for every perturbed input element
    def warped(d, t):
        return warp.warp(image2, d, rotation, t, focal, principal_point)[0]

    assert_jacobians_close(warped, [depth, translation], atol=1e-5)


def test_stereo_motorcycle_warp_reduces_photometric_error():
    """Warps the right Middlebury view into the left one with ground-truth depth.

    The images are subsampled by 4 (every 4th row and column, pixel (i, j) <- (4i, 4j)), so focal
    length, principal point, disparity and doffs are divided by 4; depth Z = f B / (d + doffs)
    is unchanged. The right camera sits at +B along x: X_right = X_left - (B, 0, 0).
    Measured 2026-11-22 (TF 2.21, CPU): mean absolute error 0.0482 after warping vs 0.1590 with
    zero disparity (the unwarped right image), intensities in [0, 1], over the 85.6% of pixels
    that are valid and have known disparity. For scale: the wrong translation sign gives 0.227,
    ignoring doffs 0.153, sampling the right image directly at x - d 0.0446.
    """
    left, right, disparity = skimage.data.stereo_motorcycle()
    left = left[::4, ::4].astype(np.float32) / 255.0
    right = right[::4, ::4].astype(np.float32) / 255.0
    disparity = disparity[::4, ::4] / 4.0
    known = np.isfinite(disparity)  # the docstring says NaN marks unknown; this release uses inf
    focal, baseline, doffs = 994.978 / 4.0, 0.193001, 31.086 / 4.0  # pixels, metres, pixels
    principal_point = np.array([311.193, 254.877], np.float32) / 4.0
    depth = np.where(known, focal * baseline / (np.where(known, disparity, 0.0) + doffs), 1.0)
    height, width = left.shape[:2]

    # The right camera's principal point is doffs columns further right; resampling the right
    # image at x + doffs gives it the left camera's intrinsics, which `warp` uses for both frames.
    shift = camera.pixel_grid(height, width) + [doffs, 0.0]
    right_aligned, _ = warp.bilinear_sample(right[None], tf.expand_dims(shift, 0))
    warped, valid = warp.warp(
        right_aligned,
        depth[None, :, :, None].astype(np.float32),
        tf.eye(3, batch_shape=[1]),
        [[-baseline, 0.0, 0.0]],
        [[focal, focal]],
        [principal_point],
    )
    scored = (valid[0, :, :, 0].numpy() > 0) & known
    warped_error = np.abs(warped[0].numpy() - left)[scored].mean()
    zero_disparity_error = np.abs(right - left)[scored].mean()
    print(f"stereo_motorcycle MAE: warped {warped_error:.4f}, zero disparity "
          f"{zero_disparity_error:.4f}, scored pixels {scored.mean():.1%}")
    assert scored.mean() > 0.8
    # Measured ratio 0.30; a sign error (1.43) or a forgotten doffs (0.96) fails this.
    assert warped_error < 0.5 * zero_disparity_error


def test_shape_errors():
    with pytest.raises(UserError, match=r"coords has shape \(1, 2, 2, 3\); expected \[B, h, w, 2\]"):
        warp.bilinear_sample(tf.ones([1, 4, 4, 1]), tf.ones([1, 2, 2, 3]))
    with pytest.raises(UserError, match="image has shape"):
        warp.bilinear_sample(tf.ones([4, 4, 1]), tf.ones([1, 2, 2, 2]))
    with pytest.raises(UserError, match="different batch sizes"):
        warp.bilinear_sample(tf.ones([2, 4, 4, 1]), tf.ones([3, 2, 2, 2]))
    rotation, translation = tf.eye(3, batch_shape=[1]), tf.zeros([1, 3])
    with pytest.raises(UserError, match=r"depth has shape \(1, 4, 4, 2\); expected \[B, H, W, 1\]"):
        warp.warp(tf.ones([1, 4, 4, 1]), tf.ones([1, 4, 4, 2]), rotation, translation,
                  [[1.0, 1.0]], [[0.0, 0.0]])
    with pytest.raises(UserError, match="translation"):
        warp.flow_from_depth_and_motion(tf.ones([1, 4, 4, 1]), rotation, tf.zeros([1, 2]),
                                        [[1.0, 1.0]], [[0.0, 0.0]])
