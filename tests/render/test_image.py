"""Tests for the masking and average-pooling renderers."""

import numpy as np
import pytest
import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.render import image


def test_mask_zeroes_hidden_pixels_on_every_channel():
    rgb = np.arange(2 * 3 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 3) + 1.0
    visible = np.ones((2, 3, 4, 1), np.float32)
    visible[:, 1:, 2:] = 0.0
    masked = image.mask(rgb, visible).numpy()
    np.testing.assert_array_equal(masked[:, 1:, 2:], 0.0)
    np.testing.assert_array_equal(masked[:, :1], rgb[:, :1])
    np.testing.assert_array_equal(masked[:, :, :2], rgb[:, :, :2])


def test_mask_accepts_a_per_channel_mask():
    rgb = np.ones((3, 4, 2), np.float32)
    visible = np.zeros((3, 4, 2), np.float32)
    visible[..., 1] = 1.0
    np.testing.assert_array_equal(image.mask(rgb, visible).numpy(), visible)


def test_mask_rejects_a_mask_of_another_size():
    with pytest.raises(UserError, match="visible"):
        image.mask(tf.ones([2, 8, 8, 3]), tf.ones([2, 4, 4, 1]))


def test_downsample_matches_numpy_block_mean():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 8, 12, 5)).astype(np.float32)
    expected = x.reshape(2, 3, 2, 4, 3, 4, 5).mean(axis=(3, 5))
    np.testing.assert_allclose(image.downsample(x, 4).numpy(), expected, atol=1e-6)


def test_downsample_without_batch_dimension():
    x = np.arange(4 * 6, dtype=np.float32).reshape(4, 6, 1)
    expected = [[[3.5], [5.5], [7.5]], [[15.5], [17.5], [19.5]]]
    np.testing.assert_allclose(image.downsample(x, 2).numpy(), expected)


def test_downsample_rejects_indivisible_size():
    with pytest.raises(UserError, match="not divisible by the factor 4"):
        image.downsample(tf.ones([1, 10, 8, 3]), 4)


def test_downsample_gradient_is_uniform():
    x = tf.ones([1, 4, 4, 1])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(image.downsample(x, 2))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), 0.25)
