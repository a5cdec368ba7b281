"""Conv and deconv blocks and the image critic shared by the image tasks.

Weights start from a truncated normal with stddev 0.02 (supplementary §2.3-2.4). Batch
normalisation is synchronised across replicas, so a global batch gives the same statistics, and
hence the same update (up to float32 rounding), on one device or several.
"""
from __future__ import annotations

import keras
import tensorflow as tf


def initializer(seed: int | None = None) -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=0.02, seed=seed)


class FusedBatchNorm(keras.layers.BatchNormalization):
    """Keras' batch norm, computed on one replica by TensorFlow's fused kernel (`FusedBatchNormV3`
    and its gradient, oneDNN's on CPU) instead of the ten-odd elementwise ops that Keras 3's TF
    backend composes it from. Same function, variables, moving-average update and checkpoints as
    the Keras layer; it applies to channels-last inputs of rank 2 (as 1x1 images) or 4, and hands
    anything else (a mask, renorm, synchronised statistics) to the Keras layer."""

    def call(self, inputs, training=None, mask=None):
        rank = len(inputs.shape)
        if mask is not None or self.synchronized or self.renorm or rank not in (2, 4) or \
                self.axis not in (rank - 1, -1):
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, "float32")
        x4 = tf.reshape(x, [-1, 1, 1, x.shape[-1]]) if rank == 2 else x
        gamma = self.gamma if self.scale else tf.ones_like(self.moving_mean)
        beta = self.beta if self.center else tf.zeros_like(self.moving_mean)
        if training and self.trainable:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x4, gamma, beta, epsilon=self.epsilon, is_training=True)
            # the kernel returns the unbiased variance; Keras (and the normalisation) use the biased one
            n = tf.cast(tf.size(x4) // tf.shape(x4)[-1], "float32")
            variance = variance * (n - 1.0) / n
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x4, gamma, beta, mean=self.moving_mean, variance=self.moving_variance,
                epsilon=self.epsilon, is_training=False)
        return tf.cast(tf.reshape(y, tf.shape(x)) if rank == 2 else y, self.compute_dtype)


def batch_norm(name: str | None = None) -> keras.layers.Layer:
    """Batch norm: `FusedBatchNorm` on one replica; on several, Keras' layer with statistics
    synchronised across replicas. That layer computes the variance as E[x^2] - E[x]^2, whose gradients
    are off by up to 0.5 % in float32 (measured against float64, `zoo/pytorch_inpaint.py`)."""
    if tf.distribute.get_strategy().num_replicas_in_sync > 1:
        return keras.layers.BatchNormalization(synchronized=True, name=name)
    return FusedBatchNorm(name=name)


def conv(x, filters: int, *, kernel: int = 4, strides: int = 2, norm: bool = True,
         activation: str = "leaky_relu", transpose: bool = False, name: str | None = None):
    """Conv (or transposed conv) -> optional batch norm -> activation, 'same' padding."""
    layer = keras.layers.Conv2DTranspose if transpose else keras.layers.Conv2D
    x = layer(filters, kernel, strides=strides, padding="same", use_bias=not norm,
              kernel_initializer=initializer(), name=name)(x)
    if norm:
        x = batch_norm()(x)
    if activation == "leaky_relu":
        return keras.layers.LeakyReLU(0.2)(x)
    return keras.layers.Activation(activation)(x) if activation else x


class Float32Layer(keras.layers.Layer):
    """Base of the parameter-free geometry inside the generators (heatmaps, skeleton and camera heads,
    angle fields): it computes in float32 even where the layers around it compute in mixed precision
    (`--precision`), its floating inputs cast to float32."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)


def residual_block(x, filters: int):
    """x + BN(conv(ReLU(BN(conv(x))))), 3x3 convs at stride 1 (supplementary §2.3; He et al.)."""
    y = conv(x, filters, kernel=3, strides=1, activation="relu")
    y = conv(y, filters, kernel=3, strides=1, activation=None)
    return keras.layers.Add()([x, y])


class DiffAugment(keras.layers.Layer):
    """Differentiable augmentation of the critic's images (Zhao et al. 2020, "Differentiable Augmentation
    for Data-Efficient GAN Training"), while training only: per image, a shift by up to `shift` of each
    side (integer pixels, zeros shifted in), a brightness offset in [-0.5, 0.5) and a contrast factor in
    [0.5, 1.5) about the image's mean. Memories and predictions pass through it alike, so a critic cannot
    win by memorising a small collection, and the generator's gradient flows through the same warp."""

    def __init__(self, shift: float = 0.125, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.shift = shift
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        shape = tf.shape(images)
        batch, rows, cols = shape[0], images.shape[1], images.shape[2]
        images = translated(images, self._offsets(batch, rows), self._offsets(batch, cols))
        brightness = keras.random.uniform((batch, 1, 1, 1), -0.5, 0.5, seed=self.seed_generator)
        contrast = keras.random.uniform((batch, 1, 1, 1), 0.5, 1.5, seed=self.seed_generator)
        images = images + brightness
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        return (images - mean) * contrast + mean

    def _offsets(self, batch, size: int):
        """[B] integer shifts in [-s, s], s = round(shift * size)."""
        reach = int(self.shift * size + 0.5)
        drawn = keras.random.uniform((batch,), -reach, reach + 1, seed=self.seed_generator)
        return tf.cast(tf.floor(drawn), tf.int32)

    def get_config(self):
        return {**super().get_config(), "shift": self.shift}


def translated(images, row_shift, col_shift):
    """[B, H, W, C] images moved down by row_shift[b] and right by col_shift[b] pixels, zeros shifted in:
    out[b, i, j] = images[b, i - row_shift[b], j - col_shift[b]] where that pixel exists, else 0."""
    rows, cols = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])  # index 0 and H + 1: the zeros
    source_rows = tf.clip_by_value(tf.range(rows)[None, :] - row_shift[:, None], -1, rows) + 1  # [B, H]
    source_cols = tf.clip_by_value(tf.range(cols)[None, :] - col_shift[:, None], -1, cols) + 1  # [B, W]
    gathered = tf.gather(padded, source_rows, axis=1, batch_dims=1)  # [B, H, W + 2, C]
    return tf.gather(gathered, source_cols, axis=2, batch_dims=1)


def image_critic(input_shape: tuple[int, int, int], filters: tuple[int, ...], name: str,
                 augment: bool = False) -> keras.Model:
    """Strided conv layers with leaky ReLU (batch norm after all but the first) and one FC score;
    `augment`: `DiffAugment` first.

    Four layers (64, 128, 256, 512) for inpainting, five for super-resolution (supplementary Fig. 6).
    Layers after the image has shrunk to 4 pixels use stride 1.
    """
    image = keras.Input(input_shape, name="image")
    x, size = (DiffAugment()(image) if augment else image), min(input_shape[:2])
    for i, width in enumerate(filters):
        stride = 2 if size > 4 else 1
        size //= stride
        x = conv(x, width, strides=stride, norm=i > 0)
    score = keras.layers.Dense(1, kernel_initializer=initializer())(keras.layers.Flatten()(x))
    return keras.Model(image, score, name=name)


def dense(x, units: int, *, norm: bool = True):
    """Dense -> optional batch norm -> leaky ReLU."""
    x = keras.layers.Dense(units, use_bias=not norm, kernel_initializer=initializer())(x)
    if norm:
        x = batch_norm()(x)
    return keras.layers.LeakyReLU(0.2)(x)


def encoder_decoder(x, widths: tuple[int, ...], out_channels: int, name: str):
    """A U-Net: strided conv layers (`widths`, halving the size each), then transposed conv layers
    back to the input size with a skip connection from every encoder level (and the input), and a
    linear 3x3 conv to `out_channels`. The input sides must be divisible by 2 ** len(widths)."""
    skips = []
    for i, width in enumerate(widths):
        skips.append(x)
        x = conv(x, width, strides=2, norm=i > 0)
    for skip, width in zip(reversed(skips), reversed((widths[0],) + tuple(widths[:-1]))):
        x = conv(x, width, transpose=True, activation="relu")
        x = keras.layers.Concatenate()([x, skip])
    return keras.layers.Conv2D(out_channels, 3, padding="same", kernel_initializer=initializer(), name=name)(x)
