"""AIGN train_step: gating decisions, skipped updates, keras fit, supervised term."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from aign_tf.core import AIGN, Gating
from aign_tf.errors import UserError

A = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]], np.float32)  # fixed linear "renderer" z -> x


class LinearAIGN(AIGN):
    """The toy AIGN: its renderer is the fixed linear map z -> z A."""

    def render(self, predictions, inputs):
        return tf.matmul(predictions["z"], A), None


class L1PriorAIGN(LinearAIGN):
    """With a hand-made prior (e.g. smoothness) on the predictions: here their L1 norm."""

    def regularizer(self, predictions, batch):
        return tf.reduce_sum(tf.abs(predictions["z"]), axis=1)


def toy_model(gating=Gating(), fake_z=(-1.0, 0.0), critic_kernel=((10.0,), (0.0,)), cls=LinearAIGN, **kwargs):
    """Generator x -> z = fake_z (zero kernel); critic score = critic_kernel . z."""
    x = keras.Input((3,))
    z = keras.layers.Dense(2, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(fake_z))(x)
    generator = keras.Model(x, {"z": z})
    zin = keras.Input((2,))
    score = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(np.array(critic_kernel)))(zin)
    model = cls(generator, {"z": keras.Model(zin, score)}, beta=1.0, gating=gating, **kwargs)
    model.compile(g_optimizer=keras.optimizers.Adam(0.01), d_optimizer=keras.optimizers.Adam(0.01))
    return model


def batch(n=4):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return {"inputs": x, "observed": x, "memories": {"z": np.tile([[1.0, 0.0]], (n, 1)).astype(np.float32)},
            "targets": {"z": np.zeros((n, 2), np.float32)}}


def snapshot(variables):
    return [v.numpy().copy() for v in variables]


def changed(before, variables):
    return any(not np.allclose(b, v.numpy()) for b, v in zip(before, variables))


@pytest.mark.parametrize("gate", [True, False])
def test_decide_truth_table(gate):
    g = Gating(enabled=gate)
    cases = {  # (d_loss, g_loss): (update_g, update_d)
        (0.5, 0.70): (True, True),    # critic beats chance, generator keeps up
        (0.5, 2.00): (True, False),   # critic far ahead: pause it, train generator
        (0.70, 0.70): (False, True),  # critic at chance: only the critic learns
        (0.70, 2.00): (False, True),  # never stall both
    }
    for (d, gl), want in cases.items():
        got = tuple(bool(t) for t in g.decide(tf.constant(d), tf.constant(gl)))
        assert got == (want if gate else (True, True)), (d, gl)


def test_strong_critic_pauses_itself_and_trains_generator():
    model = toy_model()  # memories score +10, predictions -10: d_loss ~ 0, g_loss ~ 10
    g_before, d_before = snapshot(model.generator.trainable_variables), snapshot(model.critic_variables)
    logs = model.train_step(batch())
    assert float(logs["g_updated"]) == 1.0 and float(logs["d_updated"]) == 0.0
    assert changed(g_before, model.generator.trainable_variables)
    assert not changed(d_before, model.critic_variables)
    assert int(model.g_optimizer.iterations) == 1 and int(model.d_optimizer.iterations) == 0


def test_critic_worse_than_chance_freezes_generator_and_its_optimizer():
    model = toy_model(critic_kernel=((-10.0,), (0.0,)))  # calls memories fake: d_loss ~ 10 > theta_d
    g_before, d_before = snapshot(model.generator.trainable_variables), snapshot(model.critic_variables)
    logs = model.train_step(batch())
    assert float(logs["g_updated"]) == 0.0 and float(logs["d_updated"]) == 1.0
    assert not changed(g_before, model.generator.trainable_variables)
    assert changed(d_before, model.critic_variables)
    assert int(model.g_optimizer.iterations) == 0
    assert all(np.all(v.numpy() == 0) for v in model.g_optimizer.variables[2:])  # Adam moments untouched


def test_gating_off_updates_both():
    model = toy_model(gating=Gating(enabled=False))
    logs = model.train_step(batch())
    assert float(logs["g_updated"]) == 1.0 and float(logs["d_updated"]) == 1.0
    assert int(model.g_optimizer.iterations) == 1 and int(model.d_optimizer.iterations) == 1


def test_losses_logged_match_hand_computation():
    model = toy_model(gating=Gating(enabled=False))
    data = batch()
    logs = model.test_step(data)
    z = np.tile([[-1.0, 0.0]], (4, 1))
    want_rec = np.mean(np.square(z @ A - data["observed"]))
    np.testing.assert_allclose(float(logs["reconstruction"]), want_rec, rtol=1e-5)
    np.testing.assert_allclose(float(logs["g_adversarial"]), np.log1p(np.exp(10.0)), rtol=1e-5)
    assert float(logs["d_acc_memories"]) == 1.0 and float(logs["d_acc_predictions"]) == 1.0


def test_spread_shows_a_generator_that_gives_one_output_for_every_input():
    model = toy_model(gating=Gating(enabled=False))  # z = fake_z whatever the input: collapsed
    data = batch()
    data["memories"]["z"] = np.array([[1, 0], [3, 0], [1, 2], [3, 2]], np.float32)  # mean (2, 1)
    logs = model.test_step(data)
    assert float(logs["prediction_spread"]) == 0.0
    np.testing.assert_allclose(float(logs["memory_spread"]), 1.0)  # every |m - mean| is 1


def test_supervised_term_weighted_into_generator_objective():
    model = toy_model(gating=Gating(enabled=False), supervised_weight=2.0)
    logs = model.test_step(batch())
    np.testing.assert_allclose(float(logs["supervised"]), 0.5, rtol=1e-6)  # mean of (-1)^2 and 0^2
    want = float(logs["reconstruction"]) + float(logs["g_adversarial"]) + 2.0 * 0.5
    np.testing.assert_allclose(float(logs["g_total"]), want, rtol=1e-5)


def test_gating_requires_logistic_loss():
    with pytest.raises(UserError, match="gating"):
        toy_model(gan_loss="hinge")


def test_keras_fit_trains_and_reports_metrics():
    model = toy_model(gating=Gating(enabled=False))
    data = tf.data.Dataset.from_tensors(batch()).repeat()
    before = snapshot(model.generator.trainable_variables)
    history = model.fit(data, steps_per_epoch=3, epochs=2, verbose=0)
    assert changed(before, model.generator.trainable_variables)
    assert int(model.g_optimizer.iterations) == 6
    assert len(history.history["reconstruction"]) == 2
    assert "loss" not in history.history
    assert history.history["g_updated"][-1] == 1.0


def test_supervised_term_reads_a_separate_paired_batch():
    model = toy_model(gating=Gating(enabled=False), supervised_weight=1.0, reconstruction_weight=0.0)
    data = batch()
    del data["targets"]  # the unpaired inputs have no ground truth
    data["paired"] = {"inputs": data["inputs"][:2], "targets": {"z": np.full((2, 2), 2.0, np.float32)}}
    logs = model.test_step(data)
    np.testing.assert_allclose(float(logs["supervised"]), (9.0 + 4.0) / 2, rtol=1e-6)  # z = (-1, 0) vs (2, 2)
    np.testing.assert_allclose(float(logs["g_total"]), float(logs["g_adversarial"]) + 6.5, rtol=1e-5)
    with pytest.raises(UserError, match="paired"):
        del data["paired"]
        model.test_step(data)


def test_regularizer_term_weighted_into_generator_objective():
    """A hand-made prior (e.g. smoothness) on the predictions: its own tracker and weight."""
    model = toy_model(gating=Gating(enabled=False), cls=L1PriorAIGN, regularizer_weight=0.5)
    logs = model.test_step(batch())
    np.testing.assert_allclose(float(logs["regularizer"]), 1.0, rtol=1e-6)  # |-1| + |0|
    want = float(logs["reconstruction"]) + float(logs["g_adversarial"]) + 0.5 * 1.0
    np.testing.assert_allclose(float(logs["g_total"]), want, rtol=1e-5)
    assert "regularizer" not in toy_model(cls=L1PriorAIGN).trackers  # weight 0: off
    toy_model(cls=L1PriorAIGN).test_step(batch())  # and never called
    with pytest.raises(NotImplementedError):  # a weight without a prior is an error, not a silent 0
        toy_model(gating=Gating(enabled=False), regularizer_weight=0.5).test_step(batch())


def test_core_model_trains_a_learned_decoder_with_the_generator():
    class Scale(keras.layers.Layer):  # a decoder with one weight in the renderer's place: rendered = w * prediction
        def __init__(self):
            super().__init__()
            self.w = self.add_weight(shape=(), initializer="zeros")
            self.built = True

        def call(self, prediction):
            return self.w * prediction

    class DecodedAIGN(AIGN):
        def render(self, predictions, inputs):
            return self.decoder(predictions["x"]), None

    x = keras.Input((1,))
    generator = keras.Model(x, {"x": keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")(x)})
    model = DecodedAIGN(generator, decoder=Scale())
    assert len(model.generator_variables) == 2 and model.generator_variables[-1] is model.decoder.w
    model.compile(keras.optimizers.SGD(0.1))
    batch = {"inputs": tf.ones((4, 1)), "observed": tf.ones((4, 1))}
    model.train_step(batch)  # loss (w * g - 1)^2 at w = 0, g = 1: dL/dw = -2, dL/dg = 0
    assert model.decoder.w.numpy() == pytest.approx(0.2)
    assert model.generator.trainable_variables[0].numpy()[0, 0] == pytest.approx(1.0)


def test_render_is_the_subclass_hook():
    x = keras.Input((3,))
    model = AIGN(keras.Model(x, {"z": keras.layers.Dense(2)(x)}))
    with pytest.raises(NotImplementedError):
        model.test_step(batch())
