"""Parametric decoder vs parameter-free renderer (supplementary §1, Figure 1).

MNIST inpainting as in `aign_tf.tasks.inpaint` (same data, masks, critic, adversarial loss on the
prediction, evaluation), but with fully-connected networks, which have no architectural bias towards
keeping the picture in place:

  encoder  G: [masked image, mask] -> FC -> FC -> the complete image G(x) (sigmoid)
  decoder="renderer"  P(G(x), m) = m * G(x), the AIGN's parameter-free mask renderer
  decoder="learned"   D(G(x)): FC -> FC -> image, trained with G by the same reconstruction loss

Both compare their render with the masked input x over the visible pixels. The supplementary's
claim: the learned decoder reconstructs x well while G(x) drifts to other digits, since D can undo
whatever G does; the renderer forces G(x) itself to agree with x.
"""
from __future__ import annotations

import dataclasses
import math

import keras

from aign_tf.core import AIGN
from aign_tf.nets import layers
from aign_tf.tasks import inpaint
from aign_tf.tasks.options import option

DECODERS = ("renderer", "learned")


@dataclasses.dataclass(frozen=True)
class DecoderAblationOptions(inpaint.InpaintOptions):
    decoder: str = option("learned", "renderer (the parameter-free mask) or learned (an FC decoder trained with "
                          "the encoder).", choices=DECODERS)
    hidden: int = option(512, "Units of each hidden FC layer of encoder and decoder.", minimum=1)


def fully_connected(x, hidden: int, image_shape: tuple[int, int, int]):
    """Two hidden FC layers (batch norm, leaky ReLU), then an FC sigmoid image."""
    for _ in range(2):
        x = layers.dense(x, hidden)
    x = keras.layers.Dense(math.prod(image_shape), activation="sigmoid", kernel_initializer=layers.initializer())(x)
    return keras.layers.Reshape(image_shape)(x)


def encoder(image_shape: tuple[int, int, int], hidden: int) -> keras.Model:
    image = keras.Input(image_shape, name="image")
    mask = keras.Input(image_shape[:2] + (1,), name="mask")
    x = keras.layers.Concatenate()([keras.layers.Flatten()(image), keras.layers.Flatten()(mask)])
    return keras.Model({"image": image, "mask": mask}, {"image": fully_connected(x, hidden, image_shape)},
                       name="fc_encoder")


def decoder(image_shape: tuple[int, int, int], hidden: int) -> keras.Model:
    """D: a predicted image -> the image it decodes to (FC, FC, FC sigmoid), in the renderer's place."""
    prediction = keras.Input(image_shape)
    return keras.Model(prediction, fully_connected(keras.layers.Flatten()(prediction), hidden, image_shape),
                       name="fc_decoder")


class DecoderAblationTask(inpaint.InpaintTask):
    """Inpainting with FC networks: the parameter-free renderer or a learned decoder."""

    name = "decoder_ablation"
    Options = DecoderAblationOptions

    def build_model(self) -> AIGN:
        shape, hidden = self.data.image_shape, self.options.hidden
        learned = decoder(shape, hidden) if self.options.decoder == "learned" else None
        critic = inpaint.critic(shape, self.options.width, self.options.critic_augment)
        return inpaint.InpaintAIGN(encoder(shape, hidden), {"image": critic}, decoder=learned, **self.aign_weights())
