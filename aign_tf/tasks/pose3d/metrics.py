"""Pose errors in MILLIMETRES: the paper's torso-aligned MPJPE, and PA-MPJPE
(`aign_tf.zoo.evaluate` prints them per clip or per action).

Skeletons are [..., J, 3] in metres (see `aign_tf.tasks.pose3d.skeleton`); every error is a mean
over the J joints of the Euclidean distance, one value per skeleton, converted to millimetres.
"""

from __future__ import annotations

import numpy as np

from aign_tf.errors import UserError
from aign_tf.tasks.pose3d import skeleton

MM_PER_M = 1000.0


def _check_pair(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns float64 `pred`, `true` after checking they are both [..., J, 3] of one shape."""
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim < 2 or pred.shape[-1] != 3:
        raise UserError(
            f"pred has shape {pred.shape} and true {true.shape}; pass two [..., J, 3] "
            f"skeleton arrays of the same shape (metres)."
        )
    return pred, true


def _mean_joint_error_mm(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """[..., J, 3] metres -> [...] mean per-joint distance in millimetres."""
    return np.linalg.norm(pred - true, axis=-1).mean(axis=-1) * MM_PER_M


def mpjpe_aligned_mm(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Paper sec. 3.1: mean per-joint error after both torsos are aligned to face the front.

    Args:
      pred, true: [..., J, 3] skeletons in metres (any frame each; J of a `skeleton.JointSet`).

    Returns:
      [...] float64 error per skeleton in millimetres.
    """
    pred, true = _check_pair(pred, true)
    return _mean_joint_error_mm(skeleton.align_torso(pred), skeleton.align_torso(true))


def procrustes_align(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Moves `pred` onto `true` by the best similarity transform (Umeyama 1991).

    Args:
      pred, true: [..., J, 3] point sets.

    Returns:
      [..., J, 3] s * R @ pred + t minimising the squared distance to `true`, with R a proper
      rotation (det = +1, no reflection), s >= 0 a scale and t a translation.
    """
    pred, true = _check_pair(pred, true)
    pred_mean = pred.mean(axis=-2, keepdims=True)
    true_mean = true.mean(axis=-2, keepdims=True)
    p = pred - pred_mean
    q = true - true_mean
    # Cross-covariance H = p^T q (3 x 3); R = V D U^T with D fixing det(R) = +1.
    u, s, vt = np.linalg.svd(np.swapaxes(p, -1, -2) @ q)
    v = np.swapaxes(vt, -1, -2)
    sign = np.sign(np.linalg.det(v @ np.swapaxes(u, -1, -2)))
    sign = np.where(sign == 0, 1.0, sign)
    d = np.ones(s.shape)
    d[..., 2] = sign
    rotation = (v * d[..., None, :]) @ np.swapaxes(u, -1, -2)
    spread = np.sum(p**2, axis=(-2, -1))
    scale = np.sum(s * d, axis=-1) / np.where(spread > 0, spread, 1.0)
    return scale[..., None, None] * (p @ np.swapaxes(rotation, -1, -2)) + true_mean


def pa_mpjpe_mm(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """PA-MPJPE: mean per-joint error after root-centring and Procrustes alignment of pred.

    Args:
      pred, true: [..., J, 3] skeletons in metres (J of a `skeleton.JointSet`; its pelvis is the root).

    Returns:
      [...] float64 error per skeleton in millimetres, after the best rotation (proper), scale
      and translation of `pred` onto `true`.
    """
    pred, true = _check_pair(pred, true)
    root = skeleton.joint_set(pred.shape[-2]).pelvis
    pred = pred - pred[..., root : root + 1, :]
    true = true - true[..., root : root + 1, :]
    return _mean_joint_error_mm(procrustes_align(pred, true), true)
