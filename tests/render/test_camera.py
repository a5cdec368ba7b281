"""Tests for camera projection, rotations and rigid motion against hand-computed values."""

import numpy as np
import pytest
import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.render import camera
from tests.numpy_reference import rot_x, rot_y, rot_z
from tests.testing import assert_jacobians_close


def test_project_known_point():
    pixels = camera.project([1.0, -2.0, 4.0], [100.0, 120.0], [32.0, 24.0])
    # x = 100 * 1 / 4 + 32, y = 120 * -2 / 4 + 24
    np.testing.assert_allclose(pixels.numpy(), [57.0, -36.0], rtol=1e-6)


def test_project_broadcasts_one_camera_per_example():
    points = tf.constant([[[0.0, 0.0, 2.0], [2.0, 4.0, 2.0]], [[0.0, 0.0, 5.0], [5.0, 5.0, 5.0]]])
    focal = tf.constant([[[10.0, 10.0]], [[20.0, 30.0]]])  # [B, 1, 2] for points [B, N, 3]
    principal_point = tf.constant([[1.0, 2.0]])
    expected = [[[1.0, 2.0], [11.0, 22.0]], [[1.0, 2.0], [21.0, 32.0]]]
    np.testing.assert_allclose(camera.project(points, focal, principal_point), expected, rtol=1e-6)


def test_unproject_known_pixel():
    points = camera.unproject([57.0, -36.0], [4.0], [100.0, 120.0], [32.0, 24.0])
    np.testing.assert_allclose(points.numpy(), [1.0, -2.0, 4.0], rtol=1e-6)


def test_unproject_inverts_project_with_broadcasting():
    rng = np.random.default_rng(1)
    points = rng.uniform([-3, -3, 1], [3, 3, 9], size=(2, 5, 3))
    focal = np.array([[[300.0, 310.0]], [[150.0, 140.0]]])
    principal_point = np.array([64.0, 48.0])
    pixels = camera.project(points, focal, principal_point)
    back = camera.unproject(pixels, points[..., 2:], focal, principal_point)
    np.testing.assert_allclose(back.numpy(), points, rtol=1e-9)


@pytest.mark.parametrize("axis, hand_written", [
    (0, [[1, 0, 0], [0, 0, -1], [0, 1, 0]]),  # y -> z
    (1, [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]),  # z -> x
    (2, [[0, -1, 0], [1, 0, 0], [0, 0, 1]]),  # x -> y
])
def test_rotations_by_90_degrees_about_each_axis(axis, hand_written):
    angles = np.zeros(3)
    angles[axis] = np.pi / 2
    np.testing.assert_allclose(camera.rotation_xyz(angles).numpy(), hand_written, atol=1e-12)


def test_euler_compositions():
    angles = np.array([0.3, -0.7, 1.1])  # float64
    a, b, c = angles
    np.testing.assert_allclose(
        camera.rotation_xyz(angles).numpy(), rot_x(a) @ rot_y(b) @ rot_z(c), atol=1e-12
    )


def test_transform_per_pixel_cloud_with_one_pose_per_example():
    rng = np.random.default_rng(2)
    points = rng.normal(size=(2, 3, 4, 3))
    rotation = np.stack([rot_z(0.5), rot_x(-1.0) @ rot_y(0.2)])
    translation = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]])
    expected = np.einsum("bij,bhwj->bhwi", rotation, points) + translation[:, None, None, :]
    moved = camera.transform(points, rotation, translation)
    np.testing.assert_allclose(moved.numpy(), expected, atol=1e-12)


def test_transform_single_points():
    moved = camera.transform([[1.0, 0.0, 0.0]], [rot_z(np.pi / 2)], [[0.0, 0.0, 5.0]])
    np.testing.assert_allclose(moved.numpy(), [[0.0, 1.0, 5.0]], atol=1e-12)


def test_pixel_grid():
    grid = camera.pixel_grid(2, 3)
    assert grid.dtype == tf.float32
    np.testing.assert_array_equal(grid[1, 2], [2.0, 1.0])
    np.testing.assert_array_equal(grid[..., 0], [[0, 1, 2], [0, 1, 2]])
    np.testing.assert_array_equal(grid[..., 1], [[0, 0, 0], [1, 1, 1]])


def test_project_jacobian():
    points = tf.constant([[0.4, -0.3, 2.0], [-1.2, 0.8, 3.5]], tf.float64)
    focal = tf.constant([120.0, 110.0], tf.float64)
    principal_point = tf.constant([30.0, 20.0], tf.float64)
    assert_jacobians_close(camera.project, [points, focal, principal_point], atol=1e-5)


def test_transform_and_rotation_jacobians():
    points = tf.constant([[[0.4, -0.3, 2.0], [-1.2, 0.8, 3.5]]], tf.float64)
    angles = tf.constant([[0.3, -0.2, 0.7]], tf.float64)
    translation = tf.constant([[0.1, 0.2, -0.3]], tf.float64)

    def moved_xyz(p, a, t):
        return camera.transform(p, camera.rotation_xyz(a), t)

    assert_jacobians_close(moved_xyz, [points, angles, translation])


def test_shape_errors_name_the_argument_and_expected_shape():
    with pytest.raises(UserError, match=r"points has shape \(4, 2\); expected \[\.\.\., 3\]"):
        camera.project(tf.ones([4, 2]), [1.0, 1.0], [0.0, 0.0])
    with pytest.raises(UserError, match="focal"):
        camera.unproject(tf.ones([4, 2]), tf.ones([4, 1]), tf.ones([4, 3]), [0.0, 0.0])
    with pytest.raises(UserError, match="do not broadcast"):
        camera.project(tf.ones([2, 5, 3]), tf.ones([3, 2]), [0.0, 0.0])
    with pytest.raises(UserError, match="angles"):
        camera.rotation_xyz(tf.zeros([2, 4]))
    with pytest.raises(UserError, match="rotation"):
        camera.transform(tf.ones([2, 4, 3]), tf.ones([2, 3, 4]), tf.ones([2, 3]))
    with pytest.raises(UserError, match="same leading"):
        camera.transform(tf.ones([2, 4, 3]), tf.ones([3, 3, 3]), tf.ones([3, 3]))
