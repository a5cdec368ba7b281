"""Divergence guard: a non-finite loss stops training and no NaN weights reach a checkpoint."""
import numpy as np
import pytest
import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.zoo import registry, rundir, trainer


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    task = registry.get_task("inpaint", steps=10, batch_size=4, width=4)
    clean = task.train_batches

    def poisoned():
        """The task's batches, with NaN observations from the 5th batch (step 5) on."""
        def poison(index, batch):
            observed = tf.where(index >= 4, tf.fill(tf.shape(batch["observed"]), np.nan), batch["observed"])
            return {**batch, "observed": observed}
        return clean().enumerate().map(poison)

    task.train_batches = poisoned  # what train_dataset shards, and the preview grid's batch
    with pytest.raises(UserError, match=r"training diverged at step 5: reconstruction is nan; nothing was saved "
                                        r"after the last good checkpoint \(.*ckpt-4\)"):
        trainer.train(task, str(tmp_path), strategy=tf.distribute.get_strategy(), checkpoint_every=2,
                      summary_every=100, image_every=100, verbose=False)
    latest = rundir.latest_checkpoint(str(tmp_path))
    assert latest.endswith("ckpt-4")
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        value = np.asarray(reader.get_tensor(name))  # the object graph is a bytes scalar
        assert value.dtype.kind != "f" or np.all(np.isfinite(value)), name


def test_non_finite_weights_are_named():
    task = registry.get_task("inpaint", batch_size=4, width=4)
    model, _ = trainer.build(task)
    assert trainer.non_finite_weights(model) == []
    weight = model.critic_variables[0]
    weight.assign(tf.tensor_scatter_nd_update(weight, [[0, 0, 0, 0]], [np.inf]))
    assert trainer.non_finite_weights(model) == [weight.path]
