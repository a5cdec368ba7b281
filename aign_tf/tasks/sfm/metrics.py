"""Camera-motion and depth errors of the paper's §3.2 (NumPy, one value per example), and the
geometric egomotion baseline of Table 3.

Camera motion (X2 = R X1 + T, T in metres), as in the works the paper follows:
  trl_err      end-point error |T - T*|
  rot_err      angle of the rotation R^T R* (radians)
  trl_mag_err  magnitude error | |T| - |T*| |
  trl_ang_err  angle between T and T* (radians)
Depth, over pixels whose true depth is at most `max_depth` (80 m, the KITTI convention):
  depth_l1_log  mean |log d - log d*|        depth_abs_rel  mean |d - d*| / d*
The geometric baseline (`geometric_motion`) reads an optical-flow field: the flow network's, the
exact one, or a classical one (`classical_flow`, Farneback's method), so that it needs no learning.
"""
from __future__ import annotations

import numpy as np

from aign_tf.data.frames import Intrinsics

MAX_DEPTH = 80.0


def _angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cosine = np.sum(a * b, -1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    return np.arccos(np.clip(cosine, -1.0, 1.0))


def camera_errors(rotation: np.ndarray, translation: np.ndarray, true_rotation: np.ndarray,
                  true_translation: np.ndarray) -> dict[str, np.ndarray]:
    """rotation [N, 3, 3], translation [N, 3] against the truth -> {metric: [N]}."""
    relative = np.einsum("nji,njk->nik", rotation, true_rotation)  # R^T R*
    cosine = (np.trace(relative, axis1=1, axis2=2) - 1.0) / 2.0
    return {
        "trl_err": np.linalg.norm(translation - true_translation, axis=-1),
        "rot_err": np.arccos(np.clip(cosine, -1.0, 1.0)),
        "trl_mag_err": np.abs(np.linalg.norm(translation, axis=-1) - np.linalg.norm(true_translation, axis=-1)),
        "trl_ang_err": _angle_between(translation, true_translation),
    }


def photometric_error(rendered: np.ndarray, observed: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per pair: the mean absolute difference of rendered and observed [N, H, W, 3] over the pixels that
    stay in view (valid [N, H, W, 1]), the photometric error of eq. 3 as the models are scored."""
    return (np.abs(rendered - observed) * valid).sum((1, 2, 3)) / np.maximum(valid.sum((1, 2, 3)) * 3, 1)


def depth_errors(depth: np.ndarray, true_depth: np.ndarray, max_depth: float = MAX_DEPTH) -> dict[str, np.ndarray]:
    """depth, true_depth [N, H, W, 1] metres -> {metric: [N]} over pixels with 0 < true depth <= max_depth."""
    valid = (true_depth > 0) & (true_depth <= max_depth)
    count = np.maximum(valid.reshape(len(valid), -1).sum(1), 1)
    safe_true = np.where(valid, true_depth, 1.0)
    safe_pred = np.maximum(depth, 1e-6)

    def mean(values):
        return np.where(valid, values, 0.0).reshape(len(valid), -1).sum(1) / count

    return {"depth_l1_log": mean(np.abs(np.log(safe_pred) - np.log(safe_true))),
            "depth_abs_rel": mean(np.abs(safe_pred - safe_true) / safe_true)}


def geometric_motion(flow: np.ndarray, intrinsics: Intrinsics, magnitude: float, stride: int = 2,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The geometric baseline: camera motion from one optical-flow field, no learning.

    The essential matrix of the flow correspondences (every `stride`-th pixel) with RANSAC, then the
    cheirality check (OpenCV's five-point solver and `recoverPose`) give R and the direction of T.
    Monocular geometry cannot tell the length of T: the baseline uses `magnitude` (we pass the mean
    translation length of the training sequences). Returns (R [3, 3], T [3]); (I, 0) when fewer than
    eight correspondences move.
    """
    import cv2  # pylint: disable=import-outside-toplevel

    height, width = flow.shape[:2]
    ys, xs = np.mgrid[0:height:stride, 0:width:stride]
    points1 = np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float64)
    points2 = points1 + flow[::stride, ::stride].reshape(-1, 2)
    matrix = np.array([[intrinsics.focal[0], 0, intrinsics.principal_point[0]],
                       [0, intrinsics.focal[1], intrinsics.principal_point[1]], [0, 0, 1]])
    if np.count_nonzero(np.linalg.norm(points2 - points1, axis=-1) > 1e-3) < 8:
        return np.eye(3), np.zeros(3)
    cv2.setRNGSeed(seed)
    essential, inliers = cv2.findEssentialMat(points1, points2, matrix, method=cv2.RANSAC, prob=0.999, threshold=0.5)
    if essential is None or essential.shape != (3, 3):  # degenerate or several solutions stacked: take the first
        if essential is None:
            return np.eye(3), np.zeros(3)
        essential = essential[:3]
    _, rotation, direction, _ = cv2.recoverPose(essential, points1, points2, matrix, mask=inliers)
    return rotation, direction.ravel() * magnitude


def classical_flow(image1: np.ndarray, image2: np.ndarray) -> np.ndarray:
    """Farneback's dense optical flow (OpenCV) from frame 1 to frame 2: uint8 [H, W, 3] -> [H, W, 2] pixels."""
    import cv2  # pylint: disable=import-outside-toplevel

    gray1, gray2 = (cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY) for image in (image1, image2))
    return cv2.calcOpticalFlowFarneback(gray1, gray2, None, pyr_scale=0.5, levels=3, winsize=9, iterations=5,
                                        poly_n=5, poly_sigma=1.1, flags=0)
