"""Update gating of the supplementary ("Stabilizing training").

The paper's sentence is garbled; the rule implemented here is:

    update the generator      iff  d_loss < theta_d
    update the discriminator  iff  g_loss < theta_g  or the generator is not updated

with d_loss the logistic critic loss averaged over memories and predictions and g_loss the
generator's non-saturating adversarial loss (both in nats, see `aign_tf.core.losses`), measured on
the current batch before either update. A critic at chance scores ln 2 ~ 0.693 on both, so
theta_d = 0.695 lets the generator learn only from a critic that beats chance, and theta_g = 0.75
pauses the critic while it is well ahead of the generator (D(G(x)) < e^-0.75 ~ 0.47 on average).
At least one network is updated every step, so training never stalls.
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf

THETA_D = 0.695
THETA_G = 0.75


@dataclasses.dataclass(frozen=True)
class Gating:
    """Thresholds of the update rule above; `enabled=False` updates both networks every step."""
    enabled: bool = True
    theta_d: float = THETA_D
    theta_g: float = THETA_G

    def decide(self, d_loss: tf.Tensor, g_loss: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Returns boolean scalars (update_generator, update_discriminator)."""
        if not self.enabled:
            return tf.constant(True), tf.constant(True)
        update_g = d_loss < self.theta_d
        update_d = tf.logical_or(g_loss < self.theta_g, tf.logical_not(update_g))
        return update_g, update_d
