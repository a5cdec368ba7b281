"""Figures of predicted and true 3D skeletons (PNG files, and images for TensorBoard).

Skeletons are drawn torso-aligned (`skeleton.align_torso`, metres). The canonical frame has y
down and the person facing -z, so it is plotted with matplotlib's vertical axis = -y (up) and its
depth axis = z: the view (elev=0, azim=-90) looks at the person's front, their left on the right.
Matplotlib draws off-screen with the Agg canvas; pyplot and the global backend are not touched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from aign_tf.errors import UserError
from aign_tf.tasks.pose3d import skeleton

MAX_EXAMPLES = 6
PRED_COLOR = "tab:red"
TRUE_COLOR = "tab:blue"
PANEL_INCHES = 2.5
DPI = 80


def _plot_coordinates(aligned: np.ndarray) -> np.ndarray:
    """Canonical [J, 3] (x, y down, z) -> matplotlib (x, z, -y): the third axis points up."""
    return np.stack([aligned[:, 0], aligned[:, 2], -aligned[:, 1]], axis=-1)


def _draw(ax, points: np.ndarray, color: str, label: str) -> None:
    """Draws one skeleton [J, 3] (plot coordinates) as the bones of its joint set and its joints."""
    for parent, child in skeleton.joint_set(len(points)).bones:
        segment = points[[parent, child]]
        ax.plot(segment[:, 0], segment[:, 1], segment[:, 2], color=color, linewidth=1.5)
    ax.scatter(points[:, 0], points[:, 1], points[:, 2], color=color, s=4, label=label)


def skeleton_figure(
    pred: np.ndarray,
    true: np.ndarray,
    path: str,
    views: Sequence[tuple[float, float]] = ((10, -60), (10, 30), (80, -90)),
    titles: Sequence[str] | None = None,
) -> str:
    """Draws predicted (red) and true (blue) skeletons, torso-aligned, in a grid; saves a PNG.

    Args:
      pred, true: [N, J, 3] skeletons in metres, 1 <= N <= 6.
      path: PNG file to write (its directory is created).
      views: (elevation, azimuth) in degrees, one grid column each.
      titles: optional N row titles (e.g. clip and frame).

    Returns:
      `path`. The image is len(views) * 200 by N * 200 pixels.
    """
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 3 or not 1 <= pred.shape[0] <= MAX_EXAMPLES:
        raise UserError(
            f"pred has shape {pred.shape} and true {true.shape}; pass two [N, J, 3] arrays of the "
            f"same shape with 1 <= N <= {MAX_EXAMPLES}."
        )
    if titles is not None and len(titles) != pred.shape[0]:
        raise UserError(
            f"got {len(titles)} titles for {pred.shape[0]} examples; pass one per example."
        )
    if not views:
        raise UserError("views is empty; pass at least one (elevation, azimuth) pair in degrees.")
    rows, cols = pred.shape[0], len(views)
    pred_aligned = skeleton.align_torso(pred)
    true_aligned = skeleton.align_torso(true)
    radius = 1.05 * max(np.abs(pred_aligned).max(), np.abs(true_aligned).max(), 1e-3)

    figure = Figure(figsize=(cols * PANEL_INCHES, rows * PANEL_INCHES), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.0, right=1.0, bottom=0.0, top=0.93, wspace=0.0, hspace=0.12)
    for row in range(rows):
        for col, (elev, azim) in enumerate(views):
            ax = figure.add_subplot(rows, cols, row * cols + col + 1, projection="3d")
            _draw(ax, _plot_coordinates(true_aligned[row]), TRUE_COLOR, "true")
            _draw(ax, _plot_coordinates(pred_aligned[row]), PRED_COLOR, "pred")
            ax.view_init(elev=elev, azim=azim)
            ax.set_xlim(-radius, radius)
            ax.set_ylim(-radius, radius)
            ax.set_zlim(-radius, radius)
            ax.set_box_aspect((1, 1, 1))
            ax.set_xticklabels([])
            ax.set_yticklabels([])
            ax.set_zticklabels([])
            title = f"elev {elev:g}, azim {azim:g}"
            if titles is not None and col == 0:
                title = f"{titles[row]}\n{title}"
            ax.set_title(title, fontsize=7)
            if row == 0 and col == 0:
                ax.legend(loc="upper left", fontsize=6)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI)
    return path


def figure_to_image(path: str) -> np.ndarray:
    """Reads a PNG as a [1, H, W, C] uint8 batch (C = 4 or 3), ready for tf.summary.image."""
    with Image.open(path) as image:
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA")
        return np.asarray(image, dtype=np.uint8)[None]
