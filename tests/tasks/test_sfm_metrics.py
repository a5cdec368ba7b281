"""SfM metrics against NumPy written here, and the geometric baseline on exact flow."""
import numpy as np
import pytest

from aign_tf.data.frames import Intrinsics
from aign_tf.render import warp
from aign_tf.tasks.sfm import metrics
from tests.numpy_reference import rot_x, rot_y, rot_z


def test_camera_errors_match_hand_computation():
    true_r = np.stack([np.eye(3), rot_y(0.02)])
    true_t = np.array([[0.0, 0.0, -1.0], [0.1, 0.0, -0.9]])
    r = np.stack([rot_z(0.1), rot_y(0.02) @ rot_x(0.03)])
    t = np.array([[0.0, 0.0, -2.0], [0.0, 0.3, 0.0]])
    got = metrics.camera_errors(r, t, true_r, true_t)
    np.testing.assert_allclose(got["rot_err"], [0.1, 0.03], atol=1e-9)  # R^T R* is one elementary rotation
    np.testing.assert_allclose(got["trl_err"], [1.0, np.sqrt(0.01 + 0.09 + 0.81)])
    np.testing.assert_allclose(got["trl_mag_err"], [1.0, abs(0.3 - np.sqrt(0.82))])
    cos = (0.0 * 0.1 + 0.3 * 0.0 + 0.0 * -0.9) / (0.3 * np.sqrt(0.82))
    np.testing.assert_allclose(got["trl_ang_err"], [0.0, np.arccos(cos)], atol=1e-7)


def test_photometric_error_averages_over_the_pixels_in_view():
    rendered = np.zeros((2, 1, 2, 3))
    observed = np.array([[[[0.3, 0.3, 0.3], [0.9, 0.0, 0.0]]], [[[0.1, 0.2, 0.3], [1.0, 1.0, 1.0]]]])
    valid = np.array([[[[1.0], [0.0]]], [[[0.0], [0.0]]]])  # the second pair has no pixel in view
    np.testing.assert_allclose(metrics.photometric_error(rendered, observed, valid), [0.3, 0.0])


def test_depth_errors_ignore_pixels_past_max_depth():
    true = np.array([2.0, 4.0, 10.0, 500.0]).reshape(1, 2, 2, 1)
    pred = np.array([1.0, 4.0, 20.0, 1.0]).reshape(1, 2, 2, 1)
    got = metrics.depth_errors(pred, true, max_depth=80.0)
    np.testing.assert_allclose(got["depth_l1_log"], [(np.log(2) + 0 + np.log(2)) / 3])
    np.testing.assert_allclose(got["depth_abs_rel"], [(0.5 + 0 + 1.0) / 3])


@pytest.mark.parametrize("yaw", [0.0, 0.01])
def test_geometric_baseline_recovers_motion_from_exact_flow(yaw):
    """Flow of a textured plane-and-wall scene rendered from known motion: the essential matrix
    gives back R and the direction of T; the length comes from `magnitude`."""
    height, width = 32, 96
    camera = Intrinsics(height, width, (57.0, 57.0), ((width - 1) / 2, (height - 1) / 2))
    rows = np.arange(height, dtype=np.float64)[:, None] - camera.principal_point[1]
    depth = np.where(rows > 2, 1.6 * camera.focal[1] / np.maximum(rows, 1e-3), 30.0)  # road below, wall above
    depth = np.broadcast_to(np.minimum(depth, 30.0), (height, width)).astype(np.float32)
    depth = depth * (1.0 + 0.3 * (np.arange(width) % 7 == 0))  # some relief: not a single plane
    rotation, translation = rot_y(yaw), np.array([0.05, 0.0, -1.0])
    _, flow = warp.flow_from_depth_and_motion(depth[None, ..., None], rotation[None].astype(np.float32),
                                              translation[None].astype(np.float32), camera.focal,
                                              camera.principal_point)
    got_r, got_t = metrics.geometric_motion(flow.numpy()[0], camera, magnitude=2.0)
    errors = metrics.camera_errors(got_r[None], got_t[None], rotation[None], translation[None])
    assert errors["rot_err"][0] < 2e-3
    assert errors["trl_ang_err"][0] < 0.02
    np.testing.assert_allclose(np.linalg.norm(got_t), 2.0, rtol=1e-6)


def test_geometric_baseline_without_motion_returns_identity():
    camera = Intrinsics(16, 32, (20.0, 20.0), (15.5, 7.5))
    r, t = metrics.geometric_motion(np.zeros((16, 32, 2)), camera, magnitude=1.0)
    np.testing.assert_array_equal(r, np.eye(3))
    np.testing.assert_array_equal(t, np.zeros(3))


def test_classical_flow_finds_a_known_shift():
    """Farneback's flow on a smooth texture shifted by (2, 1) pixels."""
    ys, xs = np.mgrid[0:48, 0:96].astype(np.float64)
    texture = lambda x, y: 127 + 60 * np.sin(x / 3.0) * np.cos(y / 4.0) + 40 * np.sin((x + y) / 5.0)  # noqa: E731
    frame1 = np.repeat(texture(xs, ys)[..., None], 3, -1).astype(np.uint8)
    frame2 = np.repeat(texture(xs - 2.0, ys - 1.0)[..., None], 3, -1).astype(np.uint8)
    flow = metrics.classical_flow(frame1, frame2)
    assert flow.shape == (48, 96, 2)
    np.testing.assert_allclose(np.median(flow[8:-8, 8:-8].reshape(-1, 2), axis=0), [2.0, 1.0], atol=0.15)
