"""The task-agnostic AIGN model: generator, parameter-free renderer, critics, eq. (1).

A batch is a dict:

    inputs    what the generator reads (a tensor or a nested structure of tensors)
    observed  the observation x that the render P(G(x)) must reproduce, [B, ...]
    memories  {factor: [B, ...]} unpaired ground truth, one collection per critic (the M_i)
    targets   optional {factor: [B, ...]} paired ground truth; read only by the supervised term,
              and only when `supervised_weight > 0` (the paper's supervised baselines)

The generator returns a dict of predicted factors {factor: [B, ...]}; the renderer maps
(predictions, inputs) to (rendered, valid) with `valid` None or a 0/1 mask broadcastable to
`rendered`. Each critic D_i scores one factor.

Generator objective per example: reconstruction + beta * sum_i adversarial_i
(+ supervised_weight * supervised). Discriminator objective: sum_i critic loss_i.
Both are computed in one forward pass, gated (`aign_tf.core.gating`), and applied with separate
optimizers. All losses are scaled with `tf.nn.compute_average_loss`, so the same global batch
gives the same update under any `tf.distribute` strategy.
"""
from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from aign_tf.core import losses
from aign_tf.core.gating import Gating
from aign_tf.errors import UserError

Renderer = Callable[[dict, object], "tuple[tf.Tensor, tf.Tensor | None]"]


def global_mean(per_example: tf.Tensor, global_batch_size: int | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """(replica-scaled loss to differentiate, global batch mean identical on every replica)."""
    scaled = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
    total = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, scaled)
    return scaled, total


def apply_gradients_if(optimizer: keras.optimizers.Optimizer, condition: tf.Tensor, grads: list,
                       variables: list) -> None:
    """Applies `grads` only where `condition` (identical on all replicas) holds.

    A skipped step leaves the weights and the optimizer state (moments, iterations) untouched.
    The condition is taken in cross-replica context, because a `tf.cond` in replica context cannot
    contain the optimizer's gradient all-reduce.
    """
    def in_cross_replica(distribution, condition, grads):
        first = distribution.experimental_local_results(condition)[0]

        def apply():
            distribution.extended.call_for_each_replica(
                lambda g: optimizer.apply_gradients(zip(g, variables)), args=(grads,))
            return tf.constant(True)

        return tf.cond(first, apply, lambda: tf.constant(False))

    tf.distribute.get_replica_context().merge_call(in_cross_replica, args=(condition, grads))


class AIGN(keras.Model):
    """Adversarial Inverse Graphics Network (eq. 1) with the supplementary's update gating."""

    def __init__(self, generator: keras.Model, renderer: Renderer, critics: dict[str, keras.Model] | None = None,
                 *, beta: float = 1.0, reconstruction: str = "l2", gan_loss: str = "logistic",
                 supervised_weight: float = 0.0, gating: Gating = Gating(),
                 global_batch_size: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if reconstruction not in losses.RECONSTRUCTION_LOSSES:
            raise UserError(f"unknown reconstruction loss {reconstruction!r}; "
                            f"use one of {', '.join(losses.RECONSTRUCTION_LOSSES)}")
        if gan_loss not in losses.GAN_LOSSES:
            raise UserError(f"unknown GAN loss {gan_loss!r}; use one of {', '.join(losses.GAN_LOSSES)}")
        if gating.enabled and gan_loss != "logistic" and critics:
            raise UserError(f"update gating thresholds are logistic-loss values; use --gan_loss=logistic "
                            f"or turn gating off (--nogating) with --gan_loss={gan_loss}")
        self.generator = generator
        self.renderer = renderer
        self.critics = dict(critics or {})
        self.beta = float(beta)
        self.reconstruction = reconstruction
        self.gan_loss = gan_loss
        self.supervised_weight = float(supervised_weight)
        self.gating = gating if self.critics else Gating(enabled=False)
        self.global_batch_size = global_batch_size
        names = ["reconstruction", "g_total"]
        if self.critics:
            names += ["g_adversarial", "d_loss", "d_acc_memories", "d_acc_predictions"]
        if self.supervised_weight > 0:
            names.append("supervised")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}
        self.update_trackers = {name: keras.metrics.Mean(name=name) for name in ("g_updated", "d_updated")}

    def compile(self, g_optimizer: keras.optimizers.Optimizer,
                d_optimizer: keras.optimizers.Optimizer | None = None, **kwargs) -> None:
        """Sets and builds both optimizers (call inside the strategy scope)."""
        super().compile(**kwargs)
        if self.critics and d_optimizer is None:
            raise UserError("an AIGN with critics needs a d_optimizer")
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.g_optimizer.build(self.generator.trainable_variables)
        if self.critics:
            self.d_optimizer.build(self.critic_variables)

    @property
    def critic_variables(self) -> list:
        return [v for name in sorted(self.critics) for v in self.critics[name].trainable_variables]

    @property
    def metrics(self) -> list:
        return list(self.trackers.values()) + list(self.update_trackers.values())

    def call(self, inputs, training: bool = False) -> dict:
        """The generator's predictions {factor: tensor}."""
        return self.generator(inputs, training=training)

    def render(self, predictions: dict, batch: dict) -> tuple[tf.Tensor, tf.Tensor | None]:
        """P(G(x)): (rendered, valid). Tasks override this where the renderer needs more than the inputs."""
        return self.renderer(predictions, batch["inputs"])

    def compute_losses(self, batch: dict, training: bool) -> dict:
        """Per-example losses of eq. (1) on one (per-replica) batch; see the module docstring."""
        predictions = self(batch["inputs"], training=training)
        rendered, valid = self.render(predictions, batch)
        out = {"predictions": predictions, "rendered": rendered,
               "reconstruction": losses.reconstruction_loss(rendered, batch["observed"], valid, self.reconstruction)}
        g_total = out["reconstruction"]
        if self.critics:
            g_adv, d_loss, acc_real, acc_fake = [], [], [], []
            threshold = losses.decision_threshold(self.gan_loss)
            for name in sorted(self.critics):
                critic = self.critics[name]
                real = critic(batch["memories"][name], training=training)
                fake = critic(predictions[name], training=training)
                g_adv.append(losses.generator_adversarial_loss(fake, self.gan_loss))
                d_loss.append(losses.discriminator_loss(real, fake, self.gan_loss))
                acc_real.append(losses.per_example_mean(tf.cast(real > threshold, tf.float32)))
                acc_fake.append(losses.per_example_mean(tf.cast(fake <= threshold, tf.float32)))
            out["g_adversarial"] = tf.add_n(g_adv)
            out["d_loss"] = tf.add_n(d_loss)
            out["d_acc_memories"] = tf.add_n(acc_real) / len(acc_real)
            out["d_acc_predictions"] = tf.add_n(acc_fake) / len(acc_fake)
            g_total = g_total + self.beta * out["g_adversarial"]
        if self.supervised_weight > 0:
            if "targets" not in batch:
                raise UserError("supervised_weight > 0 needs paired 'targets' in the batch")
            names = sorted(set(batch["targets"]) & set(predictions))
            out["supervised"] = tf.add_n([losses.supervised_loss(predictions[n], batch["targets"][n]) for n in names])
            g_total = g_total + self.supervised_weight * out["supervised"]
        out["g_total"] = g_total
        return out

    def _update_trackers(self, per_example: dict) -> dict:
        """Feeds each tracker its global batch mean; returns the replica-scaled (g_total, d_loss)."""
        scaled = {}
        for name, tracker in self.trackers.items():
            scaled[name], global_value = global_mean(per_example[name], self.global_batch_size)
            tracker.update_state(global_value)
            per_example[name + "/global"] = global_value
        return scaled

    def train_step(self, batch: dict) -> dict:
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            per_example = self.compute_losses(batch, training=True)
            scaled = self._update_trackers(per_example)
        g_vars = self.generator.trainable_variables
        g_grads = g_tape.gradient(scaled["g_total"], g_vars)
        if self.critics:
            d_vars = self.critic_variables
            d_grads = d_tape.gradient(scaled["d_loss"], d_vars)
            update_g, update_d = self.gating.decide(
                per_example["d_loss/global"] / len(self.critics), per_example["g_adversarial/global"] / len(self.critics))
            apply_gradients_if(self.g_optimizer, update_g, g_grads, g_vars)
            apply_gradients_if(self.d_optimizer, update_d, d_grads, d_vars)
        else:
            update_g, update_d = tf.constant(True), tf.constant(False)
            self.g_optimizer.apply_gradients(zip(g_grads, g_vars))
        self.update_trackers["g_updated"].update_state(tf.cast(update_g, tf.float32))
        self.update_trackers["d_updated"].update_state(tf.cast(update_d, tf.float32))
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, batch: dict) -> dict:
        self._update_trackers(self.compute_losses(batch, training=False))
        return {name: tracker.result() for name, tracker in self.trackers.items()}
