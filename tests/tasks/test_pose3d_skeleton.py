"""Torso alignment, the y-down convention and the PCA pose basis, against hand-made skeletons."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from aign_tf.errors import UserError
from aign_tf.tasks.pose3d import skeleton
from tests.testing import T_POSE

LEFT_WRIST, RIGHT_WRIST, HEAD = 11, 14, 8


def test_t_pose_facing_the_camera_is_already_canonical():
    placed = T_POSE + [0.3, -0.2, 3.0]
    np.testing.assert_allclose(skeleton.align_torso(placed), T_POSE, atol=1e-12)
    np.testing.assert_allclose(skeleton.torso_rotation(placed), np.eye(3), atol=1e-12)


def test_rotated_and_translated_pose_aligns_back():
    rotations = Rotation.random(8, random_state=0).as_matrix()
    shifts = np.random.default_rng(0).normal(size=(8, 1, 3))
    moved = np.einsum("bij,kj->bki", rotations, T_POSE) + shifts
    want = np.broadcast_to(T_POSE, moved.shape)
    np.testing.assert_allclose(skeleton.align_torso(moved), want, atol=1e-6)
    rotation = skeleton.torso_rotation(moved)
    np.testing.assert_allclose(np.linalg.det(rotation), 1.0, atol=1e-12)
    batched = skeleton.align_torso(moved.reshape(2, 4, 15, 3))
    assert batched.shape == (2, 4, 15, 3)


def test_deepmimic_person_faces_the_camera_with_left_on_image_right():
    # DeepMimic world: y up, the character faces +x, its right side is +z.
    world = np.stack([-T_POSE[:, 2], -T_POSE[:, 1], -T_POSE[:, 0]], axis=-1) + [5.0, 0.9, -2.0]
    assert world[HEAD, 0] > world[0, 0]  # faces +x
    assert world[RIGHT_WRIST, 2] > world[0, 2]  # right side +z
    camera = skeleton.world_to_camera_convention(world)
    assert camera[HEAD, 1] < camera[0, 1]  # y points down
    aligned = skeleton.align_torso(camera)
    np.testing.assert_allclose(aligned, T_POSE, atol=1e-12)
    assert aligned[HEAD, 2] < 0  # the head (front) is towards the camera: the person faces -z
    # Pinhole projection at 3 m: x = f X / Z + c, y = f Y / Z + c.
    in_view = aligned + [0.0, 0.0, 3.0]
    pixels = 500.0 * in_view[:, :2] / in_view[:, 2:] + 64.0
    assert pixels[LEFT_WRIST, 0] > 64.0 > pixels[RIGHT_WRIST, 0]  # left side on image right
    assert pixels[HEAD, 1] < 64.0  # head at the image top


def test_degenerate_torsos_raise_user_error():
    no_hips = T_POSE.copy()
    no_hips[1] = no_hips[4]
    with pytest.raises(UserError, match="hips"):
        skeleton.align_torso(np.stack([T_POSE, no_hips]))
    neck_on_hip_line = T_POSE.copy()
    neck_on_hip_line[7] = [0.3, 0.05, 0.0]
    neck_on_hip_line[0] = [0.0, 0.05, 0.0]
    with pytest.raises(UserError, match="neck"):
        skeleton.align_torso(neck_on_hip_line)
    with pytest.raises(UserError, match="shape"):
        skeleton.align_torso(np.zeros((4, 14, 3)))


def _low_rank_poses(rank: int, num: int = 60) -> np.ndarray:
    rng = np.random.default_rng(1)
    flat = T_POSE.reshape(-1) + rng.normal(size=(num, rank)) @ rng.normal(size=(rank, 45)) * 0.05
    return flat.reshape(num, 15, 3)


def test_pca_reconstructs_low_rank_data_with_orthonormal_sorted_components():
    poses = _low_rank_poses(rank=4)
    basis = skeleton.pca_basis(poses, k=4)
    dtypes = {basis.mean.dtype, basis.components.dtype, basis.explained_variance.dtype}
    assert dtypes == {np.dtype(np.float32)}
    assert basis.components.shape == (4, 45) and basis.explained_variance.shape == (4,)
    np.testing.assert_allclose(basis.components @ basis.components.T, np.eye(4), atol=1e-5)
    assert np.all(np.diff(basis.explained_variance) <= 0)
    total_variance = poses.reshape(60, 45).var(axis=0, ddof=1).sum()
    np.testing.assert_allclose(basis.explained_variance.sum(), total_variance, rtol=1e-5)
    alpha = basis.encode(poses)
    assert alpha.shape == (60, 4)
    np.testing.assert_allclose(basis.decode(alpha), poses, atol=1e-5)
    assert basis.encode(poses.reshape(3, 20, 15, 3)).shape == (3, 20, 4)
    assert basis.decode(np.zeros((2, 3, 4))).shape == (2, 3, 15, 3)


@pytest.mark.parametrize("num, k", [(60, 0), (60, 46), (10, 11)])
def test_pca_rejects_k_out_of_range(num, k):
    with pytest.raises(UserError, match=f"k={k} "):
        skeleton.pca_basis(_low_rank_poses(rank=4, num=num), k=k)
