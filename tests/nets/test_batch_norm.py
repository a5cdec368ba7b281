"""aign_tf.nets.layers.FusedBatchNorm: batch norm by TensorFlow's fused kernel. Its output and moving
statistics against a NumPy reference (biased batch variance, Keras' momentum update), its gradients
against Keras' own layer (composed from elementwise ops), a checkpoint of Keras' layer restored into
it, and `batch_norm`'s choice of layer."""
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from aign_tf.nets import layers

EPSILON, MOMENTUM = 1e-3, 0.99  # Keras' defaults, which `batch_norm` keeps


def numpy_batch_norm(x, gamma, beta, mean, variance):
    return (x - mean) / np.sqrt(variance + EPSILON) * gamma + beta


@pytest.mark.parametrize("shape", [(8, 6, 5, 4), (16, 7)])
def test_fused_batch_norm_matches_numpy_and_keras(shape):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=shape) * 3 + 1).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 2, shape[-1]).astype(np.float32), rng.uniform(-1, 1, shape[-1]).astype(np.float32)
    weights = rng.normal(size=shape).astype(np.float32)  # a loss that weighs every output differently
    fused, composed = layers.FusedBatchNorm(), keras.layers.BatchNormalization()
    results = []
    for layer in (fused, composed):
        layer.build(shape)
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
        x_tensor = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x_tensor)
            y = layer(x_tensor, training=True)
            loss = tf.reduce_sum(weights * y ** 2)
        results.append([y.numpy()] + [g.numpy() for g in tape.gradient(loss, [x_tensor, layer.gamma, layer.beta])])

    axes = tuple(range(len(shape) - 1))
    mean, variance = x.mean(axis=axes), x.var(axis=axes)  # the biased variance
    np.testing.assert_allclose(results[0][0], numpy_batch_norm(x, gamma, beta, mean, variance), atol=2e-5)
    np.testing.assert_allclose(fused.moving_mean.numpy(), (1 - MOMENTUM) * mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fused.moving_variance.numpy(), MOMENTUM + (1 - MOMENTUM) * variance, rtol=1e-5)
    np.testing.assert_allclose(fused(tf.constant(x), training=False).numpy(),
                               numpy_batch_norm(x, gamma, beta, fused.moving_mean.numpy(),
                                                fused.moving_variance.numpy()), atol=2e-5)
    for fused_grad, composed_grad in zip(results[0][1:], results[1][1:]):
        np.testing.assert_allclose(fused_grad, composed_grad, rtol=1e-4, atol=1e-4 * np.abs(composed_grad).max())


def small_net(norm_layer) -> keras.Model:
    image = keras.Input((6, 6, 2))
    return keras.Model(image, norm_layer()(keras.layers.Conv2D(3, 3, padding="same")(image)))


def test_a_checkpoint_written_with_keras_batch_norm_restores_into_the_fused_layer(tmp_path):
    keras.utils.set_random_seed(0)
    composed = small_net(keras.layers.BatchNormalization)
    images = tf.random.uniform((4, 6, 6, 2))
    composed(images, training=True)  # moves the moving statistics away from their initial values
    path = tf.train.Checkpoint(model=composed).write(str(tmp_path / "ckpt"))
    fused = small_net(layers.FusedBatchNorm)
    tf.train.Checkpoint(model=fused).read(path).assert_existing_objects_matched()
    np.testing.assert_allclose(fused(images, training=False).numpy(), composed(images, training=False).numpy(),
                               atol=1e-5)


def test_batch_norm_is_fused_on_one_replica_and_synchronised_on_several():
    assert type(layers.batch_norm()) is layers.FusedBatchNorm
    script = textwrap.dedent("""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from aign_tf.nets import layers
        with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
            layer = layers.batch_norm()
        print(type(layer).__name__, layer.synchronized)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split()[-2:] == ["BatchNormalization", "True"]
