"""Decoder ablation: the learned decoder is trained with the encoder and checkpointed; the renderer
variant has no weights beyond the encoder's; evaluation tells the two errors apart."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.tasks import decoder_ablation, inpaint
from aign_tf.zoo import trainer

TINY = dict(steps=2, batch_size=8, width=8, hidden=16, gating=False)


def test_encoder_is_fully_connected_and_both_variants_render_28x28():
    for decoder in ("renderer", "learned"):
        config = decoder_ablation.TASK.config(decoder=decoder, **TINY)
        model = decoder_ablation.build_model(config)
        assert not [layer for layer in model.generator.layers if isinstance(layer, keras.layers.Conv2D)]
        batch = next(iter(decoder_ablation.TASK.train_data(config)))
        predicted = model(batch["inputs"])
        rendered, valid = model.render(predicted, batch)
        assert predicted["image"].shape == rendered.shape == (8, 28, 28, 1)
        np.testing.assert_array_equal(valid.numpy(), batch["inputs"]["mask"].numpy())


def test_only_the_learned_decoder_adds_generator_side_weights():
    renderer = decoder_ablation.build_model(decoder_ablation.TASK.config(decoder="renderer", **TINY))
    learned = decoder_ablation.build_model(decoder_ablation.TASK.config(decoder="learned", **TINY))
    assert len(renderer.generator_variables) == len(renderer.generator.trainable_variables)
    extra = len(learned.generator_variables) - len(learned.generator.trainable_variables)
    assert extra == len(learned.renderer.decoder.trainable_variables) > 0


def test_a_training_step_moves_the_decoder_and_a_checkpoint_restores_it(tmp_path):
    config = decoder_ablation.TASK.config(decoder="learned", **TINY)
    batch = next(iter(decoder_ablation.TASK.train_data(config)))
    with tf.distribute.get_strategy().scope():
        model, _ = trainer.build(decoder_ablation.TASK, config)
    before = [v.numpy().copy() for v in model.renderer.decoder.trainable_variables]
    model.train_step(batch)
    after = [v.numpy() for v in model.renderer.decoder.trainable_variables]
    assert any(np.abs(a - b).max() > 0 for a, b in zip(after, before))

    trainer.train(decoder_ablation.TASK, config, str(tmp_path), strategy=tf.distribute.get_strategy(), verbose=False)
    trained, _ = trainer.load_for_inference(decoder_ablation.TASK, config, str(tmp_path))
    again, _ = trainer.load_for_inference(decoder_ablation.TASK, config, str(tmp_path))
    fresh = decoder_ablation.build_model(config)
    image = batch["targets"]["image"]
    decoded = trained.renderer.decoder(image).numpy()
    np.testing.assert_array_equal(decoded, again.renderer.decoder(image).numpy())
    assert np.abs(decoded - fresh.renderer.decoder(image).numpy()).max() > 0


def test_unknown_decoder_is_a_user_error():
    with pytest.raises(UserError, match="unknown decoder"):
        decoder_ablation.build_model(decoder_ablation.TASK.config(decoder="mlp", **TINY))


def test_evaluation_separates_render_error_from_prediction_error(tmp_path):
    metrics, models = {}, {}
    for decoder in ("renderer", "learned"):
        config = decoder_ablation.TASK.config(decoder=decoder, **TINY)
        trainer.train(decoder_ablation.TASK, config, str(tmp_path / decoder), strategy=tf.distribute.get_strategy(),
                      verbose=False)
        models[decoder], _ = trainer.load_for_inference(decoder_ablation.TASK, config, str(tmp_path / decoder))
        metrics[decoder] = inpaint.evaluate(models[decoder], config)
    renderer, learned = metrics["renderer"], metrics["learned"]
    # m * G(x) against m * x is G(x) against the true image on the visible pixels: one number.
    assert renderer["render_mse_visible"] == pytest.approx(renderer["prediction_mse_visible"], rel=1e-5)
    # The learned variant's render error is D(G(x)) against x, its prediction error G(x) against x.
    sums = np.zeros(3)
    for batch in decoder_ablation.TASK.eval_data(decoder_ablation.TASK.config(decoder="learned", **TINY)):
        mask, observed = batch["inputs"]["mask"].numpy(), batch["observed"].numpy()
        predicted = models["learned"].generator(batch["inputs"])["image"]
        decoded = models["learned"].renderer.decoder(predicted).numpy()
        sums += [np.sum(mask * (decoded - observed) ** 2), np.sum(mask * (predicted.numpy() - observed) ** 2),
                 np.sum(mask)]
    assert learned["render_mse_visible"] == pytest.approx(sums[0] / sums[2], rel=1e-4)
    assert learned["prediction_mse_visible"] == pytest.approx(sums[1] / sums[2], rel=1e-4)
    for name in ("prediction_accuracy", "completion_accuracy", "hidden_mse"):
        assert np.isfinite(learned[name]) and np.isfinite(renderer[name])
