"""Networks and renderer of the 3D pose AIGN (paper §2.1, supplementary §2.1).

Generator: 2D keypoints -> Gaussian heatmaps (in the keypoints' bounding box) -> 8 conv layers
(leaky ReLU, batch norm) -> 2 FC -> PCA weights alpha [K], Euler angles (R = Rx Ry Rz), focal
length f and translation T. A parameter-free head turns them into the canonical skeleton
S = mean + sum_k alpha_k B_k and the camera-frame pose R S (pelvis at the origin).
Renderer (`PoseAIGN.render`, eq. 2): x_2D = f (R S + T)_xy / (R S + T)_z + c, in the generator's
normalised image coordinates, compared with the input keypoints (L2).
Critic: five FC layers (512, 512, 256, 256, 1; leaky ReLU, batch norm) on canonical skeletons
against memories, canonical skeletons of the training clips; or, as the supplementary says, on the
generator's parameters (alpha, R, f) against those of training skeletons seen by sampled cameras.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from aign_tf.core import AIGN
from aign_tf.nets import layers
from aign_tf.render import camera
from aign_tf.tasks.pose3d import data
from aign_tf.tasks.pose3d.skeleton import PoseBasis

HEATMAP_SIZE = 32
FOCAL_SCALE = 650.0 / (data.IMAGE_SIZE / 2)  # typical focal length in normalised units
DISTANCE_SCALE = 5.0  # metres


class BoxHeatmaps(layers.Float32Layer):
    """[B, J, 2] keypoints -> ([B, S, S, J] Gaussian heatmaps of standard deviation `sigma` (heatmap
    pixels) in the keypoints' square bounding box, [B, 3] box centre and half-size in image coordinates)."""

    def __init__(self, sigma: float, **kwargs):
        super().__init__(**kwargs)
        self.sigma = float(sigma)

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma}

    def call(self, keypoints):
        low, high = tf.reduce_min(keypoints, axis=1), tf.reduce_max(keypoints, axis=1)
        centre = (low + high) / 2
        half = tf.maximum(tf.reduce_max(high - low, axis=-1, keepdims=True) / 2, 1e-3) * 1.1
        inside = (keypoints - tf.expand_dims(centre, 1)) / tf.expand_dims(half, 1)  # [-1, 1]
        grid = (tf.range(HEATMAP_SIZE, dtype=tf.float32) + 0.5) / HEATMAP_SIZE * 2 - 1
        scale = HEATMAP_SIZE / 2 / self.sigma
        dx = tf.expand_dims(grid, 0)[:, tf.newaxis, :, tf.newaxis] - inside[:, tf.newaxis, tf.newaxis, :, 0]
        dy = tf.expand_dims(grid, 0)[:, :, tf.newaxis, tf.newaxis] - inside[:, tf.newaxis, tf.newaxis, :, 1]
        heatmaps = tf.exp(-0.5 * (tf.square(dx) + tf.square(dy)) * scale ** 2)
        return heatmaps, tf.concat([centre, half], axis=-1)


class SkeletonHead(layers.Float32Layer):
    """Parameter-free: (alpha, angles) -> canonical skeleton S [B, J, 3] and camera-frame pose R S."""

    def __init__(self, basis: PoseBasis, **kwargs):
        super().__init__(**kwargs)
        self.mean = tf.constant(basis.mean, tf.float32)
        self.components = tf.constant(basis.components, tf.float32)
        self.num_joints = basis.mean.shape[0] // 3

    def call(self, alpha, angles):
        shape = tf.reshape(self.mean + tf.matmul(alpha, self.components), [-1, self.num_joints, 3])
        rotation = camera.rotation_xyz(angles)
        return shape, tf.einsum("bij,bkj->bki", rotation, shape)


def generator(basis: PoseBasis, kind: str, width: int, heatmap_sigma: float) -> keras.Model:
    keypoints = keras.Input((basis.mean.shape[0] // 3, 2), name="keypoints")
    if kind == "heatmap":
        heatmaps, box = BoxHeatmaps(heatmap_sigma)(keypoints)
        x = heatmaps
        for i in range(8):  # 32 -> 16 -> 8 -> 4, two convs per resolution
            x = layers.conv(x, width * 2 ** (i // 2), kernel=3, strides=2 if i % 2 else 1)
        x = keras.layers.Concatenate()([keras.layers.Flatten()(x), box])
    else:  # "mlp": the keypoints themselves
        x = keras.layers.Flatten()(keypoints)
        for _ in range(4):
            x = layers.dense(x, 16 * width)
    x = layers.dense(x, 16 * width)
    head = dict(kernel_initializer=layers.initializer())
    alpha = keras.layers.Dense(basis.components.shape[0], name="alpha", **head)(x)
    angles = keras.layers.Dense(3, name="angles", **head)(x)
    camera_params = keras.layers.Dense(4, name="camera", **head)(x)  # log f, t_x, t_y, log t_z
    shape, pose = SkeletonHead(basis)(alpha, angles)
    focal, translation = CameraHead()(camera_params)
    params = ParameterVector()(alpha, angles, focal)
    return keras.Model({"keypoints": keypoints}, {"shape": shape, "pose": pose, "angles": angles, "focal": focal,
                                                  "translation": translation, "params": params},
                       name="pose_generator")


class ParameterVector(layers.Float32Layer):
    """(alpha, angles, focal) -> [alpha, sin angles, cos angles, log(f / typical f)]: what the
    supplementary's critic reads instead of the skeleton (`critic_input="params"`)."""

    def call(self, alpha, angles, focal):
        return tf.concat([alpha, tf.sin(angles), tf.cos(angles), tf.math.log(focal / FOCAL_SCALE)], axis=-1)


def parameter_vector(alpha: np.ndarray, angles: np.ndarray, focal_px: np.ndarray,
                     half: float = data.IMAGE_SIZE / 2) -> np.ndarray:
    """NumPy twin of `ParameterVector` for memories: focal length in pixels, `half` pixels per normalised unit."""
    focal = focal_px[:, None] / half
    return np.concatenate([alpha, np.sin(angles), np.cos(angles), np.log(focal / FOCAL_SCALE)], -1).astype(np.float32)


class CameraHead(layers.Float32Layer):
    """[B, 4] raw outputs -> focal length [B, 1] (normalised units) and translation [B, 3] (metres)."""

    def call(self, raw):
        focal = FOCAL_SCALE * tf.exp(raw[:, :1])
        return focal, tf.concat([raw[:, 1:3], DISTANCE_SCALE * tf.exp(raw[:, 3:])], axis=-1)


class PoseAIGN(AIGN):
    """The pose AIGN: its renderer is eq. (2), the generator's camera-frame pose R S moved by T and
    projected with its focal length f, the principal point at the image centre (normalised units)."""

    def render(self, predictions: dict, inputs: dict) -> tuple[tf.Tensor, None]:
        del inputs
        points = predictions["pose"] + tf.expand_dims(predictions["translation"], 1)
        return data.project(points, predictions["focal"]), None


def critic(input_shape: tuple[int, ...], name: str) -> keras.Model:
    """Five FC layers (512, 512, 256, 256, 1), leaky ReLU and batch norm, on canonical skeletons
    [J, 3] or on parameter vectors [K + 7]."""
    inputs = keras.Input(input_shape, name=name)
    x = keras.layers.Flatten()(inputs)
    for units in (512, 512, 256, 256):
        x = layers.dense(x, units)
    score = keras.layers.Dense(1, kernel_initializer=layers.initializer())(x)
    return keras.Model(inputs, score, name=f"{name}_critic")
