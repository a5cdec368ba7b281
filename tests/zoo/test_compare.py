"""The comparison picture: shared rows once, then each model's rows, on the same held-out inputs."""

import numpy as np
import pytest
import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.zoo import compare, registry, rundir, trainer

TINY = dict(steps=1, batch_size=8, width=8, blocks=1)


def test_rows_come_from_each_model_on_the_same_inputs(tmp_path):
    dirs, models = [], []
    for seed in (0, 1):
        task = registry.get_task("superres", seed=seed, **TINY)
        model_dir = str(tmp_path / f"seed{seed}")
        trainer.train(task, model_dir, strategy=tf.distribute.get_strategy(), verbose=False)
        dirs.append(model_dir)
        models.append(rundir.load_generator(task, model_dir)[0])
    grid = compare.comparison_grid("superres", dirs, ["truth"], ["prediction"], columns=4)[0]
    assert grid.shape == (3 * 28, 4 * 28, 1)
    batch = next(iter(registry.get_task("superres", **TINY).eval_dataset()))
    rows = [batch["targets"]["image"]] + [m(batch["inputs"], training=False)["image"] for m in models]
    for row, images in enumerate(rows):
        want = np.concatenate(list(np.clip(images[:4].numpy(), 0, 1)), axis=1)
        np.testing.assert_allclose(grid[row * 28:(row + 1) * 28], want, atol=1e-6)
    assert np.abs(grid[28:56] - grid[56:84]).max() > 0  # two different models

    with pytest.raises(UserError, match="no image row 'depth'"):
        compare.comparison_grid("superres", dirs[:1], [], ["depth"])
    with pytest.raises(UserError, match="holds a 'superres' model, not 'inpaint'"):
        compare.comparison_grid("inpaint", dirs[:1], [], ["prediction"])
