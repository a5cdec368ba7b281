"""Decoder ablation: the learned decoder is trained with the encoder and checkpointed; the renderer
variant has no weights beyond the encoder's; evaluation tells the two errors apart."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.tasks import decoder_ablation
from aign_tf.zoo import registry, rundir, trainer

TINY = dict(steps=2, batch_size=8, width=8, hidden=16, gating=False)


def test_encoder_is_fully_connected_and_both_variants_render_28x28():
    for decoder in ("renderer", "learned"):
        task = registry.get_task("decoder_ablation", decoder=decoder, **TINY)
        model = task.build_model()
        assert not [layer for layer in model.generator.layers if isinstance(layer, keras.layers.Conv2D)]
        batch = next(iter(task.train_batches()))
        predicted = model(batch["inputs"])
        rendered, valid = model.render(predicted, batch["inputs"])
        assert predicted["image"].shape == rendered.shape == (8, 28, 28, 1)
        np.testing.assert_array_equal(valid.numpy(), batch["inputs"]["mask"].numpy())


def test_only_the_learned_decoder_adds_generator_side_weights():
    renderer = registry.get_task("decoder_ablation", decoder="renderer", **TINY).build_model()
    learned = registry.get_task("decoder_ablation", decoder="learned", **TINY).build_model()
    assert renderer.decoder is None
    assert len(renderer.generator_variables) == len(renderer.generator.trainable_variables)
    extra = len(learned.generator_variables) - len(learned.generator.trainable_variables)
    assert extra == len(learned.decoder.trainable_variables) > 0


def test_a_training_step_moves_the_decoder_and_a_checkpoint_restores_it(tmp_path):
    task = registry.get_task("decoder_ablation", decoder="learned", **TINY)
    batch = next(iter(task.train_batches()))
    with tf.distribute.get_strategy().scope():
        model, _ = trainer.build(task)
    before = [v.numpy().copy() for v in model.decoder.trainable_variables]
    model.train_step(batch)
    after = [v.numpy() for v in model.decoder.trainable_variables]
    assert any(np.abs(a - b).max() > 0 for a, b in zip(after, before))

    trainer.train(task, str(tmp_path), strategy=tf.distribute.get_strategy(), verbose=False)
    trained, _ = rundir.load_generator(task, str(tmp_path))
    again, _ = rundir.load_generator(task, str(tmp_path))
    fresh = task.build_model()
    image = batch["targets"]["image"]
    decoded = trained.decoder(image).numpy()
    np.testing.assert_array_equal(decoded, again.decoder(image).numpy())
    assert np.abs(decoded - fresh.decoder(image).numpy()).max() > 0


def test_unknown_decoder_is_a_user_error():
    with pytest.raises(UserError, match="unknown decoder"):
        decoder_ablation.DecoderAblationTask.configure(decoder="mlp", **TINY)


def test_evaluation_separates_render_error_from_prediction_error(tmp_path):
    metrics, models = {}, {}
    for decoder in ("renderer", "learned"):
        task = registry.get_task("decoder_ablation", decoder=decoder, **TINY)
        trainer.train(task, str(tmp_path / decoder), strategy=tf.distribute.get_strategy(), verbose=False)
        models[decoder], _ = rundir.load_generator(task, str(tmp_path / decoder))
        metrics[decoder] = task.evaluate(models[decoder])
    renderer, learned = metrics["renderer"], metrics["learned"]
    # m * G(x) against m * x is G(x) against the true image on the visible pixels: one number.
    assert renderer["render_mse_visible"] == pytest.approx(renderer["prediction_mse_visible"], rel=1e-5)
    # The learned variant's render error is D(G(x)) against x, its prediction error G(x) against x.
    sums = np.zeros(3)
    for batch in registry.get_task("decoder_ablation", decoder="learned", **TINY).eval_dataset():
        mask, observed = batch["inputs"]["mask"].numpy(), batch["observed"].numpy()
        predicted = models["learned"].generator(batch["inputs"])["image"]
        decoded = models["learned"].decoder(predicted).numpy()
        sums += [np.sum(mask * (decoded - observed) ** 2), np.sum(mask * (predicted.numpy() - observed) ** 2),
                 np.sum(mask)]
    assert learned["render_mse_visible"] == pytest.approx(sums[0] / sums[2], rel=1e-4)
    assert learned["prediction_mse_visible"] == pytest.approx(sums[1] / sums[2], rel=1e-4)
    for name in ("prediction_accuracy", "completion_accuracy", "hidden_mse"):
        assert np.isfinite(learned[name]) and np.isfinite(renderer[name])
