"""Loss catalogue of eq. (1) (TF-GAN style): reconstruction errors and adversarial losses by name,
per example.

Every function returns one value per example (shape [B]), so that the caller can scale it with
`tf.nn.compute_average_loss` and stay correct under any `tf.distribute` strategy.

Critic outputs are unbounded scores ("logits"); a critic may output one score per example or one
per patch (fully convolutional critics, one probabilistic output per image sub-region): the loss
is taken per score, then averaged over all non-batch axes.

The discriminator losses are the *mean* of the term on memories and the term on predictions, so
that with the logistic loss a critic at chance (D = 1/2 everywhere) scores ln 2 ~ 0.693: the unit
in which the supplementary's gating thresholds (theta_d = 0.695, theta_g = 0.75) are written.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import tensorflow as tf

from aign_tf.errors import UserError, check_choice

RECONSTRUCTION_ERRORS = {"l2": tf.square, "l1": tf.abs}  # elementwise error of the render


def per_example_mean(values: tf.Tensor) -> tf.Tensor:
    """Mean over all axes but the first: [B, ...] -> [B]."""
    values = tf.reshape(values, [tf.shape(values)[0], -1])
    return tf.reduce_mean(values, axis=1)


def reconstruction_loss(rendered: tf.Tensor, observed: tf.Tensor, valid: tf.Tensor | None = None,
                        kind: str = "l2") -> tf.Tensor:
    """Per-example error between the render P(G(x)) and the observation x.

    "l2" is the mean squared error, "l1" the mean absolute error, both over the elements where
    `valid` is 1 (the renderer's mask: visible pixels, pixels that stay inside the image); an
    example with no valid element scores 0. `valid` broadcasts against `rendered` ([B, H, W, 1]
    for images). Returns [B].
    """
    check_choice("reconstruction loss", kind, RECONSTRUCTION_ERRORS)
    rendered, observed = tf.convert_to_tensor(rendered), tf.convert_to_tensor(observed, rendered.dtype)
    if not rendered.shape[1:].is_compatible_with(observed.shape[1:]):
        raise UserError(f"render shape {rendered.shape} does not match observation shape {observed.shape}; "
                        "the renderer must map predictions back to the input space")
    error = RECONSTRUCTION_ERRORS[kind](rendered - observed)
    if valid is None:
        return per_example_mean(error)
    valid = tf.broadcast_to(tf.cast(valid, error.dtype), tf.shape(error))
    batch = tf.shape(error)[0]
    total = tf.reduce_sum(tf.reshape(error * valid, [batch, -1]), axis=1)
    count = tf.reduce_sum(tf.reshape(valid, [batch, -1]), axis=1)
    return tf.math.divide_no_nan(total, count)


def logistic_discriminator_loss(real: tf.Tensor, fake: tf.Tensor) -> tf.Tensor:
    """[-log D(m) - log(1 - D(G(x)))] / 2 with D = sigmoid(score) (eq. 1). Returns [B]."""
    real_term, fake_term = tf.nn.softplus(-real), tf.nn.softplus(fake)
    return 0.5 * (per_example_mean(real_term) + per_example_mean(fake_term))


def logistic_generator_loss(fake: tf.Tensor) -> tf.Tensor:
    """The non-saturating -log D(G(x)) in place of log(1 - D(G(x))) of eq. (1). Returns [B]."""
    return per_example_mean(tf.nn.softplus(-fake))


def least_squares_discriminator_loss(real: tf.Tensor, fake: tf.Tensor) -> tf.Tensor:
    """[(s_m - 1)^2 + s_g^2] / 2. Returns [B]."""
    real_term, fake_term = tf.square(real - 1.0), tf.square(fake)
    return 0.5 * (per_example_mean(real_term) + per_example_mean(fake_term))


def least_squares_generator_loss(fake: tf.Tensor) -> tf.Tensor:
    """(s_g - 1)^2 / 2. Returns [B]."""
    return per_example_mean(0.5 * tf.square(fake - 1.0))


def hinge_discriminator_loss(real: tf.Tensor, fake: tf.Tensor) -> tf.Tensor:
    """[relu(1 - s_m) + relu(1 + s_g)] / 2. Returns [B]."""
    real_term, fake_term = tf.nn.relu(1.0 - real), tf.nn.relu(1.0 + fake)
    return 0.5 * (per_example_mean(real_term) + per_example_mean(fake_term))


def hinge_generator_loss(fake: tf.Tensor) -> tf.Tensor:
    """-s_g. Returns [B]."""
    return per_example_mean(-fake)


@dataclasses.dataclass(frozen=True)
class GanLoss:
    """One adversarial loss: the critic's (real scores, fake scores) -> [B], the generator's
    fake scores -> [B], and the score above which a critic calls its input real."""
    discriminator: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    generator: Callable[[tf.Tensor], tf.Tensor]
    threshold: float


GAN_LOSSES = {
    "logistic": GanLoss(logistic_discriminator_loss, logistic_generator_loss, 0.0),
    "least_squares": GanLoss(least_squares_discriminator_loss, least_squares_generator_loss, 0.5),
    "hinge": GanLoss(hinge_discriminator_loss, hinge_generator_loss, 0.0),
}


def gan_loss(kind: str) -> GanLoss:
    """The catalogue entry `kind` (UserError naming the choices if there is none)."""
    check_choice("GAN loss", kind, GAN_LOSSES)
    return GAN_LOSSES[kind]


def supervised_loss(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Per-example mean squared error against paired ground truth (the supervised baselines). Returns [B]."""
    return per_example_mean(tf.square(prediction - tf.cast(target, prediction.dtype)))
