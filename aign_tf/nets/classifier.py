"""The project's own image classifier: the judge behind bias-transfer and identity metrics.

No pretrained weights can be downloaded, so each image collection gets a small CNN trained on its
training part (`ImageData.judge_part`; never on test images or memories). It is cached per collection
and seed, so that every model evaluated on that collection is judged by the same classifier. A
collection decoded from files while read (`ImageData.streamed`) is not loaded into memory: each epoch
reads `STREAMED_EPOCH` images of the shuffled training part, going round it as often as needed.
"""
from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from aign_tf import files
from aign_tf.data.images import ImageData, cache_dir

STREAMED_EPOCH = 2_500  # images an epoch of a streamed collection (a folder, CelebA): an MNIST epoch
BATCH = 64

def small_cnn(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    image = keras.Input(input_shape)
    x = keras.layers.Conv2D(32, 3, activation="relu", padding="same")(image)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3)(keras.layers.Dense(128, activation="relu")(x))
    return keras.Model(image, keras.layers.Dense(num_classes)(x), name="classifier")


def with_features(classifier: keras.Model) -> keras.Model:
    """The classifier returning (logits, features): the 128 ReLU units of its last hidden layer
    (what the final Dense layer reads; dropout is the identity at inference). The image-quality
    distances (KID, FID) are computed on these features, since no Inception weights exist offline."""
    return keras.Model(classifier.inputs, [classifier.outputs[0], classifier.layers[-1].input])


def _arrays(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    batch = next(iter(dataset.batch(1 << 20)))
    return batch["image"].numpy(), batch["label"].numpy()


def trained_classifier(data: ImageData, *, seed: int = 0, epochs: int = 8) -> tuple[keras.Model, float]:
    """(classifier returning logits, its accuracy on the test part), trained once and cached."""
    path = os.path.join(cache_dir(), f"classifier-{data.cache_key or data.name}-seed{seed}.keras")
    if os.path.exists(path):
        model = keras.models.load_model(path)
    else:
        keras.utils.set_random_seed(seed)
        model = small_cnn(data.image_shape, len(data.class_names))
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        if data.streamed:
            stream = data.part(data.judge_part, shuffle_seed=seed).repeat().map(lambda e: (e["image"], e["label"]))
            model.fit(stream.batch(BATCH), epochs=epochs, steps_per_epoch=-(-STREAMED_EPOCH // BATCH), shuffle=False,
                      verbose=0)
        else:
            train_x, train_y = _arrays(data.part(data.judge_part))
            model.fit(train_x, train_y, batch_size=BATCH, epochs=epochs, verbose=0)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with files.replaced(path) as temporary:
            model.save(temporary)
    right = [np.argmax(model(batch["image"], training=False).numpy(), axis=1) == batch["label"].numpy()
             for batch in data.test.batch(256)]
    return model, float(np.mean(np.concatenate(right)))
