"""aign_tf.nets.layers' critic augmentation: `translated` against hand-shifted arrays, and
`DiffAugment`: the identity outside training, a shift / brightness / contrast per image while training,
gradients that reach exactly the pixels the critic sees, and an image critic that holds it first."""
import numpy as np
import tensorflow as tf

from aign_tf.nets import layers
from aign_tf.tasks import superres


def shifted_by_hand(image: np.ndarray, down: int, right: int) -> np.ndarray:
    out = np.zeros_like(image)
    rows, cols = image.shape[:2]
    for i in range(rows):
        for j in range(cols):
            if 0 <= i - down < rows and 0 <= j - right < cols:
                out[i, j] = image[i - down, j - right]
    return out


def test_translated_moves_each_image_by_its_own_shift_and_shifts_in_zeros():
    images = np.random.default_rng(0).uniform(0.1, 1.0, (4, 5, 7, 2)).astype(np.float32)
    down, right = np.array([1, -2, 0, 6]), np.array([0, 3, -1, 2])
    moved = layers.translated(tf.constant(images), tf.constant(down, tf.int32), tf.constant(right, tf.int32)).numpy()
    for b in range(4):
        np.testing.assert_array_equal(moved[b], shifted_by_hand(images[b], down[b], right[b]))
    assert not moved[3].any()  # shifted down by more than its height: all zeros


def test_diff_augment_is_the_identity_outside_training_and_random_per_image_in_training():
    images = np.random.default_rng(1).uniform(0.0, 1.0, (64, 8, 8, 1)).astype(np.float32)
    augment = layers.DiffAugment(seed=3)
    np.testing.assert_array_equal(augment(tf.constant(images), training=False).numpy(), images)
    first = augment(tf.constant(images), training=True).numpy()
    second = augment(tf.constant(images), training=True).numpy()
    assert not np.allclose(first, second)  # new draws every call
    # Same image copied: each copy gets its own shift and colour.
    copies = augment(tf.constant(np.repeat(images[:1], 64, axis=0)), training=True).numpy()
    assert len({c.tobytes() for c in copies}) > 32
    # Without shifts, a constant image stays constant (contrast acts about its mean), moved by its
    # brightness offset in [-0.5, 0.5).
    flat = layers.DiffAugment(shift=0.0, seed=4)(tf.fill((64, 8, 8, 1), 0.5), training=True).numpy()
    np.testing.assert_allclose(flat, np.broadcast_to(flat[:, :1, :1], flat.shape), atol=1e-6)
    assert flat.min() >= 0.0 and flat.max() < 1.0 and flat.std() > 0.2  # about uniform's 0.29


def test_gradients_reach_the_pixels_the_critic_sees():
    images = tf.constant(np.random.default_rng(2).uniform(0.0, 1.0, (3, 6, 6, 1)).astype(np.float32))
    down, right = tf.constant([2, 0, -1], tf.int32), tf.constant([0, -3, 1], tf.int32)
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(layers.translated(images, down, right))
    gradient = tape.gradient(total, images).numpy()
    ones = np.ones((6, 6, 1))
    for b in range(3):  # 1 where a pixel lands inside the image, 0 where it is shifted out
        seen = shifted_by_hand(shifted_by_hand(ones, down[b], right[b]), -down[b], -right[b])
        np.testing.assert_array_equal(gradient[b], seen)


def test_the_critic_augments_only_when_asked():
    plain, augmented = (superres.critic((16, 12, 1), 8, augment=flag) for flag in (False, True))
    assert not any(isinstance(layer, layers.DiffAugment) for layer in plain.layers)
    assert isinstance(augmented.layers[1], layers.DiffAugment)
    images = tf.random.uniform((4, 16, 12, 1))
    np.testing.assert_allclose(augmented(images, training=False).numpy().shape, (4, 1))
