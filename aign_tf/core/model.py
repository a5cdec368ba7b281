"""The task-agnostic AIGN: generator, parameter-free renderer, critics, eq. (1).

Batches have the layout of `aign_tf.core.batches`. The generator returns a dict of predicted
factors {factor: [B, ...]}. Each task subclasses `AIGN` and implements one hook, `render`, the
renderer P: (predictions, inputs) -> (rendered, valid), with `valid` None or a 0/1 mask
broadcastable to `rendered` (a pure function of `aign_tf.render` with the task's fixed parameters,
such as camera intrinsics). A task may also override `regularizer`. The renderer has no weights; only
the supplementary's ablation passes a learned `decoder` (a Keras layer that the task's `render`
applies in the renderer's place), whose weights are then trained with the generator's. Each critic
D_i scores one factor.

Generator objective: reconstruction_weight * reconstruction + beta * sum_i adversarial_i
+ supervised_weight * supervised + regularizer_weight * regularizer, each term a batch mean. The
regularizer is a hand-made prior on the predictions (e.g. depth smoothness, the paper's smooth-IGN
baseline), (predictions, batch) -> [B]. The paper's baselines are this model with other weights
(e.g. Forward2Dto3D: supervised only; 3D interpreter: no critics).
Discriminator objective: sum_i critic loss_i. Both are computed in one forward pass, gated
(`aign_tf.core.gating`), and applied with separate optimizers.

The trackers (TensorBoard scalars) also report the critics' accuracies on memories and predictions
and the `spread` of predictions and memories within a batch: a critic that has collapsed shows as
both accuracies near 0.5 (or both near 1 with d_updated stuck at 0), a generator that has collapsed
to one output for every input as prediction_spread near 0 while memory_spread stays.

All losses are scaled with `tf.nn.compute_average_loss`, so the same global batch gives the same
update under any `tf.distribute` strategy.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from aign_tf.core import losses
from aign_tf.core.gating import Gating
from aign_tf.errors import UserError, check_choice

def global_mean(per_example: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(replica-scaled loss to differentiate, global batch mean identical on every replica)."""
    scaled = tf.nn.compute_average_loss(per_example)
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


def float32(tensors):
    """`tensors` (a nest) cast to float32: the renderers, losses and metrics work in float32 when the
    networks compute in mixed precision."""
    return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32) if t.dtype.is_floating else t, tensors)


def spread(x: tf.Tensor) -> tf.Tensor:
    """Per example: mean absolute difference from the (per-replica) batch mean, [B]. Predictions whose
    spread falls towards 0 while the memories' stays are a collapsed generator (one output for all)."""
    return losses.per_example_mean(tf.abs(x - tf.reduce_mean(x, axis=0, keepdims=True)))


class AIGN(keras.Model):
    """Adversarial Inverse Graphics Network (eq. 1) with the supplementary's update gating."""

    def __init__(self, generator: keras.Model, critics: dict[str, keras.Model] | None = None, *,
                 beta: float = 1.0, reconstruction: str = "l2", gan_loss: str = "logistic",
                 reconstruction_weight: float = 1.0, supervised_weight: float = 0.0,
                 regularizer_weight: float = 0.0, gating: Gating = Gating(),
                 decoder: keras.layers.Layer | None = None, **kwargs):
        # Every task's model keeps the name "aign": op names order some of grappler's float sums, so
        # another name gives other rounding, and a GAN run amplifies it.
        kwargs.setdefault("name", "aign")
        kwargs.setdefault("autocast", False)  # the generator and critics cast their inputs to their own precision
        super().__init__(**kwargs)
        check_choice("reconstruction loss", reconstruction, losses.RECONSTRUCTION_ERRORS)
        self.gan = losses.gan_loss(gan_loss)
        if gating.enabled and gan_loss != "logistic" and critics:
            raise UserError(f"update gating thresholds are logistic-loss values; use --gan_loss=logistic "
                            f"or turn gating off (--nogating) with --gan_loss={gan_loss}")
        self.generator = generator
        self.decoder = decoder
        self.critics = dict(critics or {})
        self.beta = float(beta)
        self.reconstruction = reconstruction
        self.supervised_weight = float(supervised_weight)
        self.reconstruction_weight = float(reconstruction_weight)
        self.regularizer_weight = float(regularizer_weight)
        self.gating = gating if self.critics else Gating(enabled=False)
        names = ["reconstruction", "g_total"]
        if self.critics:
            names += ["g_adversarial", "d_loss", "d_acc_memories", "d_acc_predictions", "prediction_spread",
                      "memory_spread"]
        if self.supervised_weight > 0:
            names.append("supervised")
        if self.regularizer_weight > 0:
            names.append("regularizer")
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
        self.g_optimizer.build(self.generator_variables)
        if self.critics:
            self.d_optimizer.build(self.critic_variables)

    @property
    def generator_variables(self) -> list:
        """The generator's trainable weights, and the learned decoder's if one replaces the renderer."""
        decoder = self.decoder.trainable_variables if self.decoder is not None else []
        return self.generator.trainable_variables + decoder

    @property
    def critic_variables(self) -> list:
        return [v for name in sorted(self.critics) for v in self.critics[name].trainable_variables]

    @property
    def metrics(self) -> list:
        return list(self.trackers.values()) + list(self.update_trackers.values())

    def call(self, inputs, training: bool = False) -> dict:
        """The generator's predictions {factor: tensor}, float32 whatever precision its layers compute in."""
        return float32(self.generator(inputs, training=training))

    def score(self, name: str, factor: tf.Tensor, training: bool) -> tf.Tensor:
        """Critic `name`'s scores of `factor` (memories or predictions), float32 whatever precision it computes in."""
        return float32(self.critics[name](factor, training=training))

    def render(self, predictions: dict, inputs: dict) -> tuple[tf.Tensor, tf.Tensor | None]:
        """P(G(x)): (rendered, valid), from the predictions and the generator's inputs. Every task implements it."""
        raise NotImplementedError

    def regularizer(self, predictions: dict, batch: dict) -> tf.Tensor:
        """A prior on the predictions, [B]; used when regularizer_weight > 0."""
        raise NotImplementedError

    def compute_losses(self, batch: dict, training: bool) -> dict:
        """Per-example loss terms of eq. (1) on one (per-replica) batch; see the module docstring."""
        predictions = self(batch["inputs"], training=training)
        rendered, valid = self.render(predictions, batch["inputs"])
        out = {"predictions": predictions, "rendered": rendered,
               "reconstruction": losses.reconstruction_loss(rendered, batch["observed"], valid, self.reconstruction)}
        if self.critics:
            g_adv, d_loss, acc_real, acc_fake = [], [], [], []
            threshold = self.gan.threshold
            for name in sorted(self.critics):
                real = self.score(name, batch["memories"][name], training)
                fake = self.score(name, predictions[name], training)
                g_adv.append(self.gan.generator(fake))
                d_loss.append(self.gan.discriminator(real, fake))
                acc_real.append(losses.per_example_mean(tf.cast(real > threshold, tf.float32)))
                acc_fake.append(losses.per_example_mean(tf.cast(fake <= threshold, tf.float32)))
            out["g_adversarial"] = tf.add_n(g_adv)
            out["d_loss"] = tf.add_n(d_loss)
            out["d_acc_memories"] = tf.add_n(acc_real) / len(acc_real)
            out["d_acc_predictions"] = tf.add_n(acc_fake) / len(acc_fake)
            factors = sorted(self.critics)
            out["prediction_spread"] = tf.add_n([spread(predictions[n]) for n in factors]) / len(factors)
            out["memory_spread"] = tf.add_n([spread(batch["memories"][n]) for n in factors]) / len(factors)
        if self.supervised_weight > 0:
            paired = batch.get("paired", batch)
            if "targets" not in paired:
                raise UserError("supervised_weight > 0 needs paired 'targets' in the batch (or a 'paired' sub-batch)")
            paired_predictions = predictions if paired is batch else self(paired["inputs"], training=training)
            names = sorted(set(paired["targets"]) & set(paired_predictions))
            out["supervised"] = tf.add_n([losses.supervised_loss(paired_predictions[n], paired["targets"][n])
                                          for n in names])
        if self.regularizer_weight > 0:
            out["regularizer"] = self.regularizer(predictions, batch)
        return out

    def generator_objective(self, terms: dict) -> tf.Tensor:
        """reconstruction_weight * reconstruction + beta * adversarial + supervised_weight * supervised
        + regularizer_weight * regularizer."""
        total = self.reconstruction_weight * terms["reconstruction"]
        if self.critics:
            total += self.beta * terms["g_adversarial"]
        if self.supervised_weight > 0:
            total += self.supervised_weight * terms["supervised"]
        if self.regularizer_weight > 0:
            total += self.regularizer_weight * terms["regularizer"]
        return total

    def _update_trackers(self, per_example: dict) -> tuple[dict, dict]:
        """Feeds each tracker its global batch mean; returns (replica-scaled terms, global means)."""
        scaled, global_means = {}, {}
        for name in self.trackers:
            if name != "g_total":
                scaled[name], global_means[name] = global_mean(per_example[name])
        scaled["g_total"] = self.generator_objective(scaled)
        global_means["g_total"] = self.generator_objective(global_means)
        for name, tracker in self.trackers.items():
            tracker.update_state(global_means[name])
        return scaled, global_means

    def train_step(self, batch: dict) -> dict:
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            scaled, global_means = self._update_trackers(self.compute_losses(batch, training=True))
        g_vars = self.generator_variables
        g_grads = g_tape.gradient(scaled["g_total"], g_vars)
        if self.critics:
            d_vars = self.critic_variables
            d_grads = d_tape.gradient(scaled["d_loss"], d_vars)
            update_g, update_d = self.gating.decide(global_means["d_loss"] / len(self.critics),
                                                    global_means["g_adversarial"] / len(self.critics))
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
