import math

import numpy as np
import pytest
import tensorflow as tf

from aign_tf.core import losses
from aign_tf.errors import UserError


def test_masked_l2_and_l1_match_numpy():
    rng = np.random.default_rng(0)
    rendered = rng.random((3, 4, 5, 2)).astype(np.float32)
    observed = rng.random((3, 4, 5, 2)).astype(np.float32)
    valid = (rng.random((3, 4, 5, 1)) > 0.4).astype(np.float32)
    valid[2] = 0.0  # an example with nothing visible scores 0
    full = np.broadcast_to(valid, rendered.shape)
    for kind, err in (("l2", np.square(rendered - observed)), ("l1", np.abs(rendered - observed))):
        got = losses.reconstruction_loss(rendered, observed, valid, kind).numpy()
        want = [(err[i] * full[i]).sum() / full[i].sum() if full[i].sum() else 0.0 for i in range(3)]
        np.testing.assert_allclose(got, want, rtol=1e-6)
    unmasked = losses.reconstruction_loss(rendered, observed).numpy()
    np.testing.assert_allclose(unmasked, np.square(rendered - observed).mean(axis=(1, 2, 3)), rtol=1e-6)


def test_reconstruction_rejects_mismatched_render():
    with pytest.raises(UserError, match="does not match observation"):
        losses.reconstruction_loss(tf.zeros([2, 4, 4, 1]), tf.zeros([2, 8, 8, 1]))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_gan_losses_hand_computed():
    real = np.array([[2.0], [-1.0]], np.float32)
    fake = np.array([[0.5], [3.0]], np.float32)
    logistic, least_squares, hinge = (losses.GAN_LOSSES[name] for name in ("logistic", "least_squares", "hinge"))
    d = logistic.discriminator(real, fake).numpy()
    want = 0.5 * (-np.log(_sigmoid(real[:, 0])) - np.log(1 - _sigmoid(fake[:, 0])))
    np.testing.assert_allclose(d, want, rtol=1e-5)
    np.testing.assert_allclose(logistic.generator(fake).numpy(), -np.log(_sigmoid(fake[:, 0])), rtol=1e-5)
    np.testing.assert_allclose(least_squares.discriminator(real, fake).numpy(),
                               [0.5 * (1.0 + 0.25), 0.5 * (4.0 + 9.0)])
    np.testing.assert_allclose(least_squares.generator(fake).numpy(), [0.5 * 0.25, 0.5 * 4.0])
    np.testing.assert_allclose(hinge.discriminator(real, fake).numpy(), [0.5 * (0.0 + 1.5), 0.5 * (2.0 + 4.0)])
    np.testing.assert_allclose(hinge.generator(fake).numpy(), [-0.5, -3.0])
    # The catalogue's entries are the module's named functions.
    assert (logistic.discriminator, logistic.generator) == (losses.logistic_discriminator_loss,
                                                            losses.logistic_generator_loss)
    assert (hinge.discriminator, hinge.generator) == (losses.hinge_discriminator_loss, losses.hinge_generator_loss)
    assert (least_squares.discriminator, least_squares.generator) == (losses.least_squares_discriminator_loss,
                                                                      losses.least_squares_generator_loss)


def test_decision_thresholds():
    """Score above which a critic calls its input real: 0 for logistic and hinge, 1/2 for least squares."""
    assert {name: loss.threshold for name, loss in losses.GAN_LOSSES.items()} == {
        "logistic": 0.0, "least_squares": 0.5, "hinge": 0.0}
    assert losses.gan_loss("least_squares") is losses.GAN_LOSSES["least_squares"]


def test_critic_at_chance_scores_ln2_and_patches_are_averaged():
    zeros = tf.zeros([4, 3, 3, 1])  # fully convolutional critic: one score per patch
    logistic = losses.gan_loss("logistic")
    np.testing.assert_allclose(logistic.discriminator(zeros, zeros).numpy(), [math.log(2)] * 4, rtol=1e-6)
    np.testing.assert_allclose(logistic.generator(zeros).numpy(), [math.log(2)] * 4, rtol=1e-6)


def test_patch_critic_loss_is_the_mean_of_per_patch_losses():
    """One probabilistic output per patch: -log sigmoid per patch, then the mean (not the loss of the mean score)."""
    real = np.array([[[[2.0], [-1.0]], [[0.5], [3.0]]]], np.float32)  # [1, 2, 2, 1]
    fake = np.array([[[[-2.0], [1.0]], [[0.0], [4.0]]]], np.float32)
    softplus = lambda v: np.log1p(np.exp(v))  # noqa: E731
    want = 0.5 * (softplus(-real).mean() + softplus(fake).mean())
    np.testing.assert_allclose(losses.logistic_discriminator_loss(real, fake).numpy(), [want], rtol=1e-6)
    np.testing.assert_allclose(losses.logistic_generator_loss(fake).numpy(), [softplus(-fake).mean()], rtol=1e-6)


def test_unknown_loss_names_are_user_errors():
    with pytest.raises(UserError, match="unknown GAN loss"):
        losses.gan_loss("wasserstein")
    with pytest.raises(UserError, match="unknown reconstruction loss"):
        losses.reconstruction_loss(tf.zeros([1, 1]), tf.zeros([1, 1]), kind="l3")
