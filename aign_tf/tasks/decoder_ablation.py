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

import math

import keras
import tensorflow as tf

from aign_tf.core import AIGN
from aign_tf.errors import check_choice
from aign_tf.nets import layers
from aign_tf.tasks import image_tasks, inpaint
from aign_tf.tasks.base import Config, Task

DECODERS = ("renderer", "learned")

DEFAULTS = {**inpaint.DEFAULTS,
            "options": {**inpaint.DEFAULTS["options"], "decoder": "learned",
                        "hidden": 512}}  # units of each hidden FC layer of encoder and decoder


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


class LearnedDecoder(keras.layers.Layer):
    """D(G(x)) in the renderer's place: (predictions, inputs) -> (decoded image, visible mask)."""

    def __init__(self, image_shape: tuple[int, int, int], hidden: int, **kwargs):
        super().__init__(**kwargs)
        prediction = keras.Input(image_shape)
        self.decoder = keras.Model(prediction, fully_connected(keras.layers.Flatten()(prediction), hidden, image_shape),
                                   name="fc_decoder")
        self.built = True  # the functional decoder made its weights above

    def call(self, predictions: dict, inputs: dict) -> tuple[tf.Tensor, tf.Tensor]:
        return self.decoder(predictions["image"]), inputs["mask"]


def build_model(config: Config) -> AIGN:
    check_choice("decoder", config.options["decoder"], DECODERS)
    shape, width = image_tasks.image_data(config).image_shape, config.options["width"]
    hidden = config.options["hidden"]
    renderer = LearnedDecoder(shape, hidden) if config.options["decoder"] == "learned" else inpaint.render_masked
    return image_tasks.image_aign(config, encoder(shape, hidden), renderer, inpaint.critic(shape, width))


TASK = Task("decoder_ablation", DEFAULTS, build_model, inpaint.train_data, inpaint.eval_data, inpaint.evaluate,
            inpaint.images, serving=inpaint.serving)
