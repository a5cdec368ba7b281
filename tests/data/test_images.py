"""Tests for aign_tf.data.images: the offline MNIST and LFW splits, the IDX reader, the CelebA path."""

import gzip
import hashlib
import os

import numpy as np
import pytest
import tensorflow as tf

from aign_tf.data import images as images_lib
from aign_tf.errors import UserError
from tests.testing import idx_bytes, write_fashion_mnist


def _arrays(ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """All images and labels of an unbatched dataset, in order."""
    batches = list(ds.batch(10_000).as_numpy_iterator())
    return (np.concatenate([b["image"] for b in batches]),
            np.concatenate([b["label"] for b in batches]))


def _hashes(images: np.ndarray) -> set[str]:
    return {hashlib.sha1(image.tobytes()).hexdigest() for image in images}


@pytest.fixture(scope="module")
def mnist():
    data = images_lib.load_image_data("mnist", seed=0)
    return data, {part: _arrays(getattr(data, part)) for part in ("train", "test", "memory")}


# ---------------------------------------------------------------- MNIST (offline default)


def test_mnist_shapes_range_and_spec(mnist):
    data, arrays = mnist
    assert data.name == "mnist"
    assert data.image_shape == (28, 28, 1)
    assert data.class_names == tuple(str(d) for d in range(10))
    assert data.sizes == {"train": 2500, "test": 500, "memory": 2000}
    for part in ("train", "test", "memory"):
        spec = getattr(data, part).element_spec
        assert spec["image"] == tf.TensorSpec((28, 28, 1), tf.float32)
        assert spec["label"] == tf.TensorSpec((), tf.int32)
        images, labels = arrays[part]
        assert len(images) == len(labels) == data.sizes[part]
        assert images.min() >= 0.0 and images.max() <= 1.0
        assert images.max() == 1.0  # scaled from 0..255, not left as raw pixel values
        np.testing.assert_allclose(images * 255, np.round(images * 255), atol=1e-3)


def test_mnist_parts_are_disjoint_and_cover_the_collection(mnist):
    _, arrays = mnist
    hashes = {part: _hashes(arrays[part][0]) for part in arrays}
    assert len(hashes["train"]) == 2500 and len(hashes["test"]) == 500 and len(hashes["memory"]) == 2000
    assert not hashes["train"] & hashes["test"]
    assert not hashes["train"] & hashes["memory"]
    assert not hashes["test"] & hashes["memory"]


def test_mnist_split_is_stratified(mnist):
    _, arrays = mnist
    for part, per_class in (("train", 250), ("test", 50), ("memory", 200)):
        np.testing.assert_array_equal(np.bincount(arrays[part][1], minlength=10), [per_class] * 10)


def test_mnist_split_depends_only_on_seed(mnist):
    _, arrays = mnist
    same = _arrays(images_lib.load_image_data("mnist", seed=0).test)
    np.testing.assert_array_equal(same[0], arrays["test"][0])
    np.testing.assert_array_equal(same[1], arrays["test"][1])
    other = _arrays(images_lib.load_image_data("mnist", seed=1).test)
    assert _hashes(other[0]) != _hashes(arrays["test"][0])


def test_mnist_bias_restricts_only_memory(mnist):
    _, arrays = mnist
    data = images_lib.load_image_data("mnist", seed=0, bias="8")
    assert data.sizes == {"train": 2500, "test": 500, "memory": 200} and data.bias_label == 8
    memory_images, memory_labels = _arrays(data.memory)
    assert len(memory_labels) == 200 and set(memory_labels.tolist()) == {8}
    assert _hashes(memory_images) == _hashes(arrays["memory"][0][arrays["memory"][1] == 8])
    for part in ("train", "test"):
        images, labels = _arrays(getattr(data, part))
        np.testing.assert_array_equal(images, arrays[part][0])
        np.testing.assert_array_equal(labels, arrays[part][1])


def test_mnist_image_size_resizes():
    data = images_lib.load_image_data("mnist", image_size=14)
    assert data.image_shape == (14, 14, 1)
    assert data.train.element_spec["image"].shape == (14, 14, 1)
    image = next(iter(data.train))["image"].numpy()
    assert image.shape == (14, 14, 1) and 0.0 <= image.min() and image.max() <= 1.0


def test_unknown_name_and_bias_raise_user_error():
    with pytest.raises(UserError, match="unknown image dataset 'svhn'"):
        images_lib.load_image_data("svhn")
    with pytest.raises(UserError, match="unknown bias class '11'.*'8'"):
        images_lib.load_image_data("mnist", bias="11")
    with pytest.raises(UserError, match="only applies to celeb_a"):
        images_lib.load_image_data("mnist", attribute="Male")


# ---------------------------------------------------------------- LFW (offline, scikit-image)


@pytest.fixture(scope="module")
def lfw():
    data = images_lib.load_image_data("lfw", seed=0)
    return data, {part: _arrays(getattr(data, part)) for part in ("train", "test", "memory")}


def _skimage_lfw_expected() -> dict[str, int]:
    """Hash of every expected float image (straight from skimage, cropped to 24x24) -> its label."""
    from skimage.data import lfw_subset

    crops = lfw_subset()
    assert crops.shape == (200, 25, 25)
    images = (np.round(crops[:, :24, :24, None] * 255).astype(np.uint8)).astype(np.float32) / 255.0
    labels = [1] * 100 + [0] * 100  # the first 100 are faces
    return {hashlib.sha1(image.tobytes()).hexdigest(): label for image, label in zip(images, labels)}


def test_lfw_shapes_range_sizes_and_classes(lfw):
    data, arrays = lfw
    assert data.name == "lfw" and "lfw" in images_lib.IMAGE_DATASETS
    assert data.image_shape == (24, 24, 1)
    assert data.class_names == ("non_face", "face")
    assert data.sizes == {"train": 100, "test": 20, "memory": 80}
    for part, per_class in (("train", 50), ("test", 10), ("memory", 40)):
        assert getattr(data, part).element_spec["image"] == tf.TensorSpec((24, 24, 1), tf.float32)
        images, labels = arrays[part]
        assert images.shape == (data.sizes[part], 24, 24, 1) and labels.dtype == np.int32
        assert images.min() >= 0.0 and images.max() <= 1.0
        np.testing.assert_allclose(images * 255, np.round(images * 255), atol=1e-3)
        np.testing.assert_array_equal(np.bincount(labels, minlength=2), [per_class, per_class])


def test_lfw_parts_are_disjoint_and_are_the_skimage_crops(lfw):
    _, arrays = lfw
    expected = _skimage_lfw_expected()
    assert len(expected) == 200  # the crops are distinct, so hashes identify them
    hashes = {part: _hashes(arrays[part][0]) for part in arrays}
    assert not hashes["train"] & hashes["test"]
    assert not hashes["train"] & hashes["memory"]
    assert not hashes["test"] & hashes["memory"]
    assert hashes["train"] | hashes["test"] | hashes["memory"] == set(expected)
    for images, labels in arrays.values():
        assert [expected[hashlib.sha1(image.tobytes()).hexdigest()] for image in images] == labels.tolist()


def test_lfw_bias_seed_and_bad_bias(lfw):
    _, arrays = lfw
    data = images_lib.load_image_data("lfw", seed=0, bias="face")
    assert data.sizes == {"train": 100, "test": 20, "memory": 40} and data.bias_label == 1
    memory_images, memory_labels = _arrays(data.memory)
    assert memory_labels.tolist() == [1] * 40
    assert _hashes(memory_images) == _hashes(arrays["memory"][0][arrays["memory"][1] == 1])
    for part in ("train", "test"):
        images, labels = _arrays(getattr(data, part))
        np.testing.assert_array_equal(images, arrays[part][0])
        np.testing.assert_array_equal(labels, arrays[part][1])
    other = _arrays(images_lib.load_image_data("lfw", seed=1).test)
    assert _hashes(other[0]) != _hashes(arrays["test"][0])
    with pytest.raises(UserError, match="unknown bias class 'cat' for lfw.*'non_face', 'face'"):
        images_lib.load_image_data("lfw", bias="cat")


def test_lfw_image_size_resizes():
    data = images_lib.load_image_data("lfw", image_size=12)
    assert data.image_shape == (12, 12, 1)
    image = next(iter(data.memory))["image"].numpy()
    assert image.shape == (12, 12, 1) and 0.0 <= image.min() and image.max() <= 1.0


# ---------------------------------------------------------------- Fashion-MNIST IDX files


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_reads_idx_files_exactly(tmp_path, gz):
    arrays = write_fashion_mnist(str(tmp_path), np.random.default_rng(3), gz=gz)
    data = images_lib.load_image_data("fashion_mnist", str(tmp_path))
    assert data.class_names[1] == "Trouser" and len(data.class_names) == 10
    assert data.image_shape == (28, 28, 1)
    assert data.sizes == {"train": 3, "test": 3, "memory": 3}
    expected = {
        "train": (arrays["train_images"][:3], arrays["train_labels"][:3]),
        "memory": (arrays["train_images"][3:], arrays["train_labels"][3:]),
        "test": (arrays["test_images"], arrays["test_labels"]),
    }
    for part, (want_images, want_labels) in expected.items():
        images, labels = _arrays(getattr(data, part))
        assert images.dtype == np.float32 and labels.dtype == np.int32
        np.testing.assert_array_equal(images, want_images[..., None].astype(np.float32) / 255.0)
        np.testing.assert_array_equal(labels, want_labels)


def test_fashion_mnist_bias(tmp_path):
    train_labels = [0, 1, 8, 8, 2, 1, 1, 3]  # train part: the first four; memory part: the rest
    write_fashion_mnist(str(tmp_path), np.random.default_rng(4), n_train=8, train_labels=train_labels)
    data = images_lib.load_image_data("fashion_mnist", str(tmp_path), bias="Trouser")
    _, labels = _arrays(data.memory)
    assert labels.tolist() == [1, 1] and data.sizes == {"train": 4, "test": 3, "memory": 2}
    assert _arrays(data.train)[1].tolist() == [0, 1, 8, 8]
    with pytest.raises(UserError, match="'Bag' has no images"):  # label 8 occurs only in train
        images_lib.load_image_data("fashion_mnist", str(tmp_path), bias="Bag")
    with pytest.raises(UserError, match="unknown bias class 'Hat'"):
        images_lib.load_image_data("fashion_mnist", str(tmp_path), bias="Hat")


def test_read_idx_roundtrip_gz(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = str(tmp_path / "x-idx3-ubyte.gz")
    with gzip.open(path, "wb") as f:
        f.write(idx_bytes(array))
    np.testing.assert_array_equal(images_lib.read_idx(path, images_lib.IDX_IMAGES_MAGIC), array)


def test_fashion_mnist_corrupt_magic_names_the_file(tmp_path):
    write_fashion_mnist(str(tmp_path), np.random.default_rng(5))
    path = os.path.join(str(tmp_path), "train-labels-idx1-ubyte")
    raw = bytearray(open(path, "rb").read())
    raw[3] = 0x03  # a labels file claiming to be images
    open(path, "wb").write(bytes(raw))
    with pytest.raises(UserError, match="train-labels-idx1-ubyte has magic number 0x00000803"):
        images_lib.load_image_data("fashion_mnist", str(tmp_path))


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_truncated_file_names_the_file(tmp_path, gz):
    write_fashion_mnist(str(tmp_path), np.random.default_rng(6), gz=gz)
    path = os.path.join(str(tmp_path), "t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    raw = open(path, "rb").read()
    if gz:
        raw = gzip.compress(gzip.decompress(raw)[:-5])
    open(path, "wb").write(raw if gz else raw[:-5])
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte(\.gz)? has \d+ bytes but .* truncated"):
        images_lib.load_image_data("fashion_mnist", str(tmp_path))


def test_fashion_mnist_broken_gzip_names_the_file(tmp_path):
    write_fashion_mnist(str(tmp_path), np.random.default_rng(7), gz=True)
    path = os.path.join(str(tmp_path), "train-images-idx3-ubyte.gz")
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[: len(raw) // 2])
    with pytest.raises(UserError, match="cannot read IDX file .*train-images-idx3-ubyte.gz"):
        images_lib.load_image_data("fashion_mnist", str(tmp_path))


def test_fashion_mnist_missing_directory_and_file(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(UserError, match=f"directory {missing} does not exist"):
        images_lib.load_image_data("fashion_mnist", missing)
    write_fashion_mnist(str(tmp_path), np.random.default_rng(8))
    os.remove(os.path.join(str(tmp_path), "t10k-labels-idx1-ubyte"))
    with pytest.raises(UserError, match=r"t10k-labels-idx1-ubyte\[\.gz\] not found"):
        images_lib.load_image_data("fashion_mnist", str(tmp_path))


# ---------------------------------------------------------------- CelebA through TFDS (mocked)


def _raw_celeb_a(split, n):
    """The mocked CelebA examples with undecoded images, as mock_data generates them."""
    import tensorflow_datasets as tfds

    builder = tfds.builder("celeb_a")
    ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
    examples = list(ds.take(n))
    assert len(examples) == n
    return examples


def test_celeb_a_end_to_end_with_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    n = 6
    # The pip package has no celeb_a metadata, so the AUTO policy falls back to USE_CODE: the
    # examples come from the builder's feature spec, offline; every split yields the same examples.
    with tfds.testing.mock_data(num_examples=n, policy=tfds.testing.MockPolicy.USE_CODE):
        data = images_lib.load_image_data("celeb_a", str(tmp_path), attribute="Male", image_size=32)
        assert data.class_names == ("not_Male", "Male")
        assert data.image_shape == (32, 32, 3)
        assert data.sizes == {"train": n, "test": n, "memory": n}
        assert data.memory.element_spec["image"] == tf.TensorSpec((32, 32, 3), tf.float32)
        images, labels = _arrays(data.train)
        assert images.shape == (n, 32, 32, 3) and labels.dtype == np.int32
        assert 0.0 <= images.min() and images.max() <= 1.0

        raw = _raw_celeb_a("train", n)
        np.testing.assert_array_equal(labels, [int(ex["attributes"]["Male"]) for ex in raw])

        # Crop offset: at 178x178 no resize happens, so the pixels are the exact crop.
        full = images_lib.load_image_data("celeb_a", str(tmp_path), image_size=178)
        first = next(iter(full.test))
        decoded = tf.io.decode_jpeg(raw[0]["image"]).numpy()
        assert decoded.shape == (218, 178, 3)
        top = images_lib.CELEB_A_CROP_TOP
        np.testing.assert_array_equal(first["image"].numpy(), decoded[top:top + 178].astype(np.float32) / 255.0)
        assert int(first["label"]) == int(raw[0]["attributes"]["Big_Lips"])  # the default attribute

        positives = [int(ex["attributes"]["Big_Lips"]) for ex in _raw_celeb_a("validation", n)]
        assert 0 < sum(positives) < n  # the fixed mock draw has both classes
        for bias in ("Big_Lips", "1"):
            biased = images_lib.load_image_data("celeb_a", str(tmp_path), bias=bias)
            assert biased.image_shape == (64, 64, 3)
            _, memory_labels = _arrays(biased.memory)
            assert memory_labels.tolist() == [1] * sum(positives)
            assert biased.sizes == {"train": n, "test": n, "memory": sum(positives)}
            assert int(biased.memory.cardinality()) == sum(positives)
            assert len(_arrays(biased.train)[1]) == n

        with pytest.raises(UserError, match="unknown CelebA attribute 'Big_Ears'.*Big_Lips"):
            images_lib.load_image_data("celeb_a", str(tmp_path), attribute="Big_Ears")
        # --bias naming an attribute alone labels by that attribute and keeps its faces.
        smiling = images_lib.load_image_data("celeb_a", str(tmp_path), bias="Smiling")
        assert smiling.class_names == ("not_Smiling", "Smiling")
        smiles = sum(int(ex["attributes"]["Smiling"]) for ex in _raw_celeb_a("validation", n))
        assert _arrays(smiling.memory)[1].tolist() == [1] * smiles
        with pytest.raises(UserError, match="unknown bias class 'Grinning'.*'not_Big_Lips', 'Big_Lips'"):
            images_lib.load_image_data("celeb_a", str(tmp_path), bias="Grinning")


def test_celeb_a_identity_bias_with_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    n = 6

    def identities(examples):
        return [int(ex["identity"][images_lib.CELEB_A_IDENTITY_KEY]) for ex in examples]

    with tfds.testing.mock_data(num_examples=n, policy=tfds.testing.MockPolicy.USE_CODE):
        train_ids = identities(_raw_celeb_a("train", n))
        test_ids = identities(_raw_celeb_a("test", n))
        person = train_ids[1]
        count = train_ids.count(person)
        data = images_lib.load_image_data(
            "celeb_a", str(tmp_path), attribute="Identity", bias=str(person), image_size=16)
        assert data.class_names == (f"not_identity_{person}", f"identity_{person}") and data.bias_label == 1
        assert data.image_shape == (16, 16, 3)
        assert data.sizes == {"train": n - count, "test": n, "memory": count}
        assert int(data.memory.cardinality()) == count and int(data.train.cardinality()) == n - count

        # Memories are exactly that person's train images, in order; train keeps everyone else.
        memory_images, memory_labels = _arrays(data.memory)
        assert memory_labels.tolist() == [1] * count and memory_images.shape == (count, 16, 16, 3)
        plain = images_lib.load_image_data("celeb_a", str(tmp_path), attribute="Male", image_size=16)
        plain_train = _arrays(plain.train)[0]
        is_person = np.array(train_ids) == person
        np.testing.assert_array_equal(memory_images, plain_train[is_person])
        train_images, train_labels = _arrays(data.train)
        assert train_labels.tolist() == [0] * (n - count)
        np.testing.assert_array_equal(train_images, plain_train[~is_person])
        assert not _hashes(train_images) & _hashes(memory_images)

        # Test is the tfds test split unchanged, labelled 1 exactly for that person.
        test_images, test_labels = _arrays(data.test)
        assert test_labels.tolist() == [int(i == person) for i in test_ids]
        np.testing.assert_array_equal(test_images, _arrays(plain.test)[0])

        with pytest.raises(UserError, match="attribute='identity' needs bias .*positive integer"):
            images_lib.load_image_data("celeb_a", str(tmp_path), attribute="identity")
        with pytest.raises(UserError, match="attribute='identity' needs bias"):
            images_lib.load_image_data("celeb_a", str(tmp_path), attribute="identity", bias="Big_Lips")
        absent = max(train_ids) + 1
        with pytest.raises(UserError, match=f"identity {absent} has no images in the CelebA train split"):
            images_lib.load_image_data("celeb_a", str(tmp_path), attribute="identity", bias=str(absent))


def test_celeb_a_unprepared_or_missing_directory(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(UserError, match=f"CelebA is not prepared in {tmp_path}.*tfds build celeb_a --data_dir={tmp_path}"):
        images_lib.load_image_data("celeb_a", str(tmp_path))
    missing = str(tmp_path / "nowhere")
    with pytest.raises(UserError, match=f"CelebA directory {missing} does not exist"):
        images_lib.load_image_data("celeb_a", missing)
