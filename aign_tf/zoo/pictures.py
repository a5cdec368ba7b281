"""Image grids: TensorBoard samples, evaluation.png, comparison pictures."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from aign_tf import files


def image_grid(images: dict[str, tf.Tensor], columns: int = 8) -> np.ndarray:
    """One picture: a row per named batch of images (first `columns` examples), [1, H', W', C]."""
    columns = min(columns, max(len(batch) for batch in images.values()))
    rows = []
    for batch in images.values():
        batch = tf.clip_by_value(tf.cast(batch[:columns], tf.float32), 0.0, 1.0).numpy()
        pad = np.ones((columns - len(batch),) + batch.shape[1:], np.float32)
        rows.append(np.concatenate(list(np.concatenate([batch, pad])), axis=1))
    channels = {r.shape[-1] for r in rows}
    if len(channels) > 1:
        rows = [np.repeat(r, 3, axis=-1) if r.shape[-1] == 1 else r for r in rows]
    return np.concatenate(rows, axis=0)[np.newaxis]


def save_png(path: str, grid: np.ndarray) -> None:
    """Writes a [1, H, W, C] grid in [0, 1] to `path` (format from its extension), whole or not at all."""
    write_pixels(path, (grid[0] * 255).round().astype(np.uint8))


def write_pixels(path: str, pixels: np.ndarray) -> None:
    """Writes uint8 [H, W, C] (C = 1 or 3) or uint16 [H, W, 1] pixels to `path` (format from its extension;
    16-bit as a 16-bit greyscale PNG), whole or not at all."""
    from PIL import Image
    with files.replaced(path) as temporary:
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(temporary)
