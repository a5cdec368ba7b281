"""Pose errors against hand-computed values and independent Procrustes references; the figure."""
import numpy as np
import pytest
from PIL import Image
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation

from aign_tf.errors import UserError
from aign_tf.tasks.pose3d import figures, metrics, skeleton
from tests.testing import T_POSE

LEFT_WRIST = 11


def _random_poses(num: int, seed: int) -> np.ndarray:
    """T-poses with 8 cm joint noise: chiral (no mirror symmetry), metres."""
    return T_POSE + np.random.default_rng(seed).normal(scale=0.08, size=(num, 15, 3))


def _move(poses: np.ndarray, seed: int, scale: float = 1.0) -> np.ndarray:
    """Applies a random rotation, the given scale and a random translation to each pose."""
    rotations = Rotation.random(len(poses), random_state=seed).as_matrix()
    shifts = np.random.default_rng(seed).normal(size=(len(poses), 1, 3))
    return scale * np.einsum("bij,bkj->bki", rotations, poses) + shifts


def _umeyama_reference(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """PA-MPJPE (mm) per pose by Umeyama's formulas, one pose at a time."""
    out = []
    for p, q in zip(pred, true):
        p, q = p - p[0], q - q[0]
        mu_p, mu_q = p.mean(0), q.mean(0)
        sigma = (q - mu_q).T @ (p - mu_p) / len(p)
        u, d, vt = np.linalg.svd(sigma)
        s = np.diag([1.0, 1.0, np.linalg.det(u) * np.linalg.det(vt)])
        rotation = u @ s @ vt
        scale = np.trace(np.diag(d) @ s) / ((p - mu_p) ** 2).sum(1).mean()
        t = mu_q - scale * rotation @ mu_p
        fitted = scale * p @ rotation.T + t
        out.append(1000 * np.linalg.norm(fitted - q, axis=1).mean())
    return np.array(out)


def _improper_reference(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Like PA-MPJPE but with any orthogonal matrix (reflections allowed), via SciPy."""
    out = []
    for p, q in zip(pred, true):
        p, q = p - p.mean(0), q - q.mean(0)
        r, _ = orthogonal_procrustes(p, q)
        scale = np.sum((p @ r) * q) / np.sum(p**2)
        out.append(1000 * np.linalg.norm(scale * p @ r - q, axis=1).mean())
    return np.array(out)


def test_mpjpe_of_one_joint_moved_30_mm_is_30_over_j():
    moved = T_POSE.copy()
    moved[LEFT_WRIST] += [0.0, 0.018, -0.024]  # 30 mm
    np.testing.assert_allclose(metrics.mpjpe_aligned_mm(moved, T_POSE), 30.0 / 15, rtol=1e-9)
    rotated = _move(moved[None], seed=3)[0]  # global rotation + translation of pred only
    np.testing.assert_allclose(metrics.mpjpe_aligned_mm(rotated, T_POSE), 30.0 / 15, rtol=1e-9)
    both = metrics.mpjpe_aligned_mm(np.stack([rotated, T_POSE]), np.stack([T_POSE, T_POSE]))
    np.testing.assert_allclose(both, [2.0, 0.0], atol=1e-9)


def test_pa_mpjpe_matches_independent_references():
    true = _random_poses(16, seed=0)
    pred = _random_poses(16, seed=1)
    want = _umeyama_reference(pred, true)
    np.testing.assert_allclose(metrics.pa_mpjpe_mm(pred, true), want, rtol=1e-9)
    noisy = true + np.random.default_rng(2).normal(scale=0.02, size=true.shape)
    near = _move(noisy, seed=4, scale=0.7)
    got = metrics.pa_mpjpe_mm(near, true)
    np.testing.assert_allclose(got, _improper_reference(near, true), rtol=1e-9)  # best is proper
    assert np.all(got > 5)


def test_pa_mpjpe_absorbs_similarity_transforms_but_not_reflections():
    true = _random_poses(8, seed=5)
    copies = _move(true, seed=6, scale=1.3)
    np.testing.assert_allclose(metrics.pa_mpjpe_mm(copies, true), 0.0, atol=1e-6)
    mirrored = true * [-1.0, 1.0, 1.0]
    assert np.all(_improper_reference(mirrored, true) < 1e-6)
    assert np.all(metrics.pa_mpjpe_mm(mirrored, true) > 5.0)


def test_metrics_reject_mismatched_shapes():
    with pytest.raises(UserError, match="same shape"):
        metrics.pa_mpjpe_mm(np.zeros((2, 15, 3)), np.zeros((3, 15, 3)))


def test_skeleton_figure_writes_a_png_of_the_grid_size(tmp_path):
    true = _random_poses(2, seed=7)
    pred = _move(true, seed=8)
    path = str(tmp_path / "fig" / "pose.png")
    assert figures.skeleton_figure(pred, true, path, titles=["a", "b"]) == path
    with Image.open(path) as image:
        assert image.size == (3 * 200, 2 * 200)  # 3 views by 2 examples
    pixels = figures.figure_to_image(path)
    assert pixels.dtype == np.uint8 and pixels.shape[:3] == (1, 400, 600)
    assert pixels.shape[3] in (3, 4)
    assert pixels.std() > 0
    bones = skeleton.DEEPMIMIC.bones
    assert all(0 <= a < 15 and 0 <= b < 15 for a, b in bones) and len(bones) == 14
