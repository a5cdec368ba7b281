"""Networks, renderer and depth prior of the structure-from-motion AIGN (paper §2.2, supplementary §2.2).

Generator, from two consecutive frames I1, I2 (float RGB in [0, 1]):
  flow network      U-Net on [I1, I2] -> optical flow [H, W, 2] in pixels (stands for the paper's
                    FlowNet; trained only by its supervised term on the exact flow of the training
                    sequences, so the exported model needs nothing but the two frames)
  egomotion network [I1, I2, flow, flow angle, static angle field] -> VGG-like strided convs ->
                    one FC layer -> 6 numbers: Euler angles (R = Rx Ry Rz), each bounded to
                    +-MAX_ANGLE by a tanh, and translation T (metres)
  depth network     U-Net on I1 -> log depth [H, W, 1]
The egomotion network reads the flow through a stop-gradient: the photometric loss trains depth
and egomotion, never the flow network.
Renderer (eq. 3, `SfmAIGN.render`): unproject I1's pixels with the predicted depth and the known
intrinsics, move them by X2 = R X1 + T, project, and sample I2 there (bilinear); pixels that leave
the image or fall behind the camera are masked out of the L1 photometric loss.
Critics: D1 three FC layers (128, 128, 64; batch norm, leaky ReLU) on relative motions [R | T]
(12 numbers); D2 fully convolutional on log-depth maps (four conv layers, batch norm on the second
and third), one score per patch.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

from aign_tf.core import AIGN
from aign_tf.data.frames import Intrinsics
from aign_tf.nets import layers
from aign_tf.render import camera, warp

LOG_DEPTH_OFFSET = math.log(10.0)  # the depth network's output is log(depth / 10 m)
FLOW_SCALE = 10.0  # the flow network's output is flow / 10 px
UNET_WIDTHS = (1, 2, 4, 8)  # times the `width` option
# Bound of each Euler angle between two consecutive frames (radians). Unbounded angles let an early
# adversarial push turn the camera around, every pixel then leaves the view and the photometric
# loss has nothing left to pull back with.
MAX_ANGLE = 0.5


class AngleFields(layers.Float32Layer):
    """flow [B, H, W, 2] -> [B, H, W, 2]: the flow's angle atan2(v, u) and the static angle field,
    each pixel's angle from the principal point (radians)."""

    def __init__(self, principal_point: tuple[float, float], **kwargs):
        super().__init__(**kwargs)
        self.principal_point = tuple(principal_point)

    def call(self, flow):
        height, width = flow.shape[1], flow.shape[2]
        grid = camera.pixel_grid(height, width) - tf.constant(self.principal_point, tf.float32)
        static = tf.atan2(grid[..., 1], grid[..., 0])[tf.newaxis, ..., tf.newaxis]
        flow_angle = tf.atan2(flow[..., 1:], flow[..., :1])
        return tf.concat([flow_angle, tf.broadcast_to(static, tf.shape(flow_angle))], axis=-1)

    def get_config(self):
        return {**super().get_config(), "principal_point": self.principal_point}


class MotionHead(layers.Float32Layer):
    """[B, 6] raw outputs -> Euler angles [B, 3] = MAX_ANGLE tanh(raw), translation [B, 3],
    rotation [B, 3, 3] = Rx Ry Rz and motion [B, 12] = [R | T]."""

    def call(self, raw):
        angles, translation = MAX_ANGLE * tf.tanh(raw[:, :3]), raw[:, 3:]
        rotation = camera.rotation_xyz(angles)
        return angles, translation, rotation, tf.concat([tf.reshape(rotation, [-1, 9]), translation], axis=-1)


def generator(intrinsics: Intrinsics, width: int) -> keras.Model:
    shape = (intrinsics.height, intrinsics.width, 3)
    image1, image2 = keras.Input(shape, name="image1"), keras.Input(shape, name="image2")
    pair = keras.layers.Concatenate()([image1, image2])
    widths = tuple(width * k for k in UNET_WIDTHS)

    flow = keras.layers.Rescaling(FLOW_SCALE, name="flow")(layers.encoder_decoder(pair, widths, 2, "flow_out"))
    flow_in = keras.layers.Lambda(tf.stop_gradient, name="flow_stop_gradient")(flow)
    x = keras.layers.Concatenate()([pair, flow_in, AngleFields(intrinsics.principal_point)(flow_in)])
    for i, filters in enumerate((width, 2 * width, 4 * width, 8 * width, 8 * width)):
        x = layers.conv(x, filters, kernel=3, strides=2, norm=i > 0)
    raw_motion = keras.layers.Dense(6, kernel_initializer=layers.initializer(), name="egomotion")(
        keras.layers.Flatten()(x))
    angles, translation, rotation, motion = MotionHead()(raw_motion)

    log_depth = keras.layers.Rescaling(1.0, offset=LOG_DEPTH_OFFSET, name="log_depth")(
        layers.encoder_decoder(image1, widths, 1, "depth_out"))
    outputs = {"log_depth": log_depth, "angles": angles, "translation": translation,
               "rotation": rotation, "motion": motion, "flow": flow}
    return keras.Model({"image1": image1, "image2": image2}, outputs, name="sfm_generator")


class SfmAIGN(AIGN):
    """The AIGN of this task: its renderer is the warp of eq. (3) with the camera's fixed intrinsics,
    its regularizer the depth smoothness prior (used by smooth-IGN, whose regularizer_weight is
    the `smoothness` option)."""

    def __init__(self, generator: keras.Model, critics: dict[str, keras.Model] | None = None, *,
                 intrinsics: Intrinsics, **kwargs):
        super().__init__(generator, critics, **kwargs)
        self.intrinsics = intrinsics

    def render(self, predictions: dict, inputs: dict) -> tuple[tf.Tensor, tf.Tensor]:
        """P(G(x)): I2 warped into I1 by the predicted depth and motion, and the mask of pixels that stay in view."""
        return warp.warp(inputs["image2"], tf.exp(predictions["log_depth"]), predictions["rotation"],
                         predictions["translation"], tf.constant(self.intrinsics.focal, tf.float32),
                         tf.constant(self.intrinsics.principal_point, tf.float32))

    def regularizer(self, predictions: dict, batch: dict) -> tf.Tensor:
        return depth_smoothness(predictions, batch)


def depth_smoothness(predictions: dict, batch: dict) -> tf.Tensor:
    """Per-example mean absolute gradient of log depth (the smooth-IGN baseline's prior). [B]."""
    log_depth = predictions["log_depth"]
    dx = tf.abs(log_depth[:, :, 1:] - log_depth[:, :, :-1])
    dy = tf.abs(log_depth[:, 1:] - log_depth[:, :-1])
    return tf.reduce_mean(dx, axis=[1, 2, 3]) + tf.reduce_mean(dy, axis=[1, 2, 3])


def motion_critic() -> keras.Model:
    """D1: FC 128, 128, 64 (batch norm, leaky ReLU) and a score, on [R | T] (12 numbers)."""
    motion = keras.Input((12,), name="motion")
    x = motion
    for units in (128, 128, 64):
        x = layers.dense(x, units)
    return keras.Model(motion, keras.layers.Dense(1, kernel_initializer=layers.initializer())(x), name="motion_critic")


def depth_critic(height: int, width: int, filters: int) -> keras.Model:
    """D2: four conv layers (batch norm on the second and third, leaky ReLU), one score per patch
    of the log-depth map ([H / 8, W / 8, 1])."""
    log_depth = keras.Input((height, width, 1), name="log_depth")
    x = layers.conv(log_depth, filters, norm=False)
    x = layers.conv(x, 2 * filters)
    x = layers.conv(x, 4 * filters)
    scores = keras.layers.Conv2D(1, 3, padding="same", kernel_initializer=layers.initializer())(x)
    return keras.Model(log_depth, scores, name="depth_critic")
