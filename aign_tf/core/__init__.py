"""Task-agnostic AIGN: the Keras model with its train_step, the loss catalogue, update gating."""
from aign_tf.core.gating import Gating
from aign_tf.core.model import AIGN

__all__ = ["AIGN", "Gating"]
