"""--precision (mixed bfloat16 training with float32 weights, renderers and losses) and --jit_compile (XLA)."""
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.zoo import registry, trainer

SFM = dict(frame_size="32x96", train_sequences=2, memory_sequences=1, test_sequences=1, sequence_frames=3)
CASES = {
    "inpaint": dict(batch_size=8, width=8),
    "pose3d": dict(batch_size=8, width=4, components=10, generator="heatmap", train_cameras=1, test_cameras=1),
    "sfm": dict(batch_size=2, width=4, **SFM),
    "decoder_ablation": dict(batch_size=8, hidden=16),  # FC networks and a learned decoder in the renderer's place
}


def train_two_steps(task):
    strategy = trainer.make_strategy("default")
    with strategy.scope():
        model, checkpoint = trainer.build(task)
    step = trainer.make_train_step(model, strategy, checkpoint.step, task.config.jit_compile)
    before = [v.numpy() for v in model.generator_variables]
    batches = trainer.distributed_batches(task.train_batches(), strategy)
    finite = [bool(step(next(batches))) for _ in range(2)]
    return model, before, finite


@pytest.mark.parametrize("name", sorted(CASES))
def test_bfloat16_computes_in_bfloat16_and_learns_float32_weights(name):
    task = registry.get_task(name, precision="bfloat16", gating=False, **CASES[name])
    model, before, finite = train_two_steps(task)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored after the build
    computing = [layer for layer in model.generator.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    assert computing and all(layer.compute_dtype == "bfloat16" for layer in computing)
    assert all(v.dtype == "float32" for v in model.generator_variables + model.critic_variables)
    assert finite == [True, True]
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.generator_variables))
    # The geometry stays float32, and so does every prediction the renderer and the losses read, and the render.
    inputs = next(iter(task.train_batches()))["inputs"]
    predictions = model(inputs)
    assert all(p.dtype == tf.float32 for p in tf.nest.flatten(predictions))
    assert model.render(predictions, inputs)[0].dtype == tf.float32


def test_float16_is_refused_with_the_choices():
    with pytest.raises(UserError, match="unknown precision .float16.; use one of float32, bfloat16"):
        registry.get_task("inpaint", precision="float16")


def test_a_bfloat16_checkpoint_restores_into_a_float32_model(tmp_path):
    mixed = registry.get_task("inpaint", precision="bfloat16", gating=False, **CASES["inpaint"])
    model, _, _ = train_two_steps(mixed)
    tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    plain = registry.get_task("inpaint", gating=False, **CASES["inpaint"])
    restored, _ = trainer.build(plain)
    tf.train.Checkpoint(model=restored).read(str(tmp_path / "ckpt")).assert_existing_objects_matched()
    for a, b in zip(model.generator_variables, restored.generator_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    inputs = next(iter(plain.eval_dataset()))["inputs"]
    np.testing.assert_allclose(restored(inputs)["image"].numpy(), model(inputs)["image"].numpy(), atol=0.05)


def test_the_xla_step_computes_the_plain_steps_losses_and_learns():
    runs = {}
    for jit in (False, True):
        task = registry.get_task("inpaint", jit_compile=jit, **CASES["inpaint"])  # gating on: tf.cond in XLA
        model, before, finite = train_two_steps(task)
        assert finite == [True, True]
        assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.generator_variables))
        runs[jit] = {name: float(tracker.result()) for name, tracker in model.trackers.items()}
    for name in runs[False]:  # the same initial weights and batches; the second step follows slightly other updates
        assert runs[True][name] == pytest.approx(runs[False][name], rel=1e-3, abs=1e-5), name


def test_the_xla_step_refuses_several_replicas():
    task = registry.get_task("inpaint", **CASES["inpaint"])
    model, checkpoint = trainer.build(task)
    with pytest.raises(UserError, match="--jit_compile compiles the step of one replica, and this strategy has 2"):
        trainer.make_train_step(model, types.SimpleNamespace(num_replicas_in_sync=2), checkpoint.step, True)
