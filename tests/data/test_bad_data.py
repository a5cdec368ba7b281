"""Fuzzing every reader of aign_tf.data with damaged files: each one either raises a one-line UserError
naming the damaged file, or (only where the damage provably leaves a valid file) returns arrays of the
right shape and dtype. No other exception may escape, and no damaged data may come back silently.

The valid files are written by the helpers of the readers' own tests; the damage is seeded.
"""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from aign_tf.data import deepmimic, driving, h36m, images
from aign_tf.errors import UserError
from tests.testing import H36M_METADATA, VKITTI_FULL_H, VKITTI_FULL_W, copy_deepmimic_motions, idx_bytes
from tests.testing import load_vkitti, make_h36m_2d, make_h36m_3d, save_npz, write_fashion_mnist
from tests.testing import write_vkitti_variation

SEED = 1234
ERROR = object()  # what `attempt` returns when the reader raised a clean UserError


def byte_damage(raw: bytes, rng: np.random.Generator, rounds: int = 8) -> list[tuple[str, bytes]]:
    """(what was done, damaged bytes): the empty file, random bytes, and `rounds` times a truncation at a
    random offset, a few flipped bits and a random run of bytes written over the file."""
    cases = [("emptied", b""), ("replaced by random bytes", rng.bytes(max(len(raw), 64)))]
    for _ in range(rounds):
        cut = int(rng.integers(1, len(raw)))
        cases.append((f"truncated to {cut} bytes", raw[:cut]))
        flipped = bytearray(raw)
        for at in rng.integers(0, len(raw), int(rng.integers(1, 4))):
            flipped[at] ^= 1 << int(rng.integers(8))
        cases.append(("bits flipped", bytes(flipped)))
        start, run = int(rng.integers(0, len(raw))), rng.bytes(int(rng.integers(1, 32)))
        cases.append((f"{len(run)} random bytes at {start}", raw[:start] + run + raw[start + len(run):]))
    return cases


def attempt(path, what: str, read, named: str | None = None):
    """read()'s result, or ERROR if it raised a one-line UserError naming `named` (default: the file at `path`)."""
    try:
        return read()
    except UserError as error:
        message = str(error)
        named = named or os.path.basename(str(path))
        assert named in message and "\n" not in message, f"{path} {what}: {message}"
        return ERROR
    except Exception as error:  # pylint: disable=broad-except
        raise AssertionError(f"{path} {what}: {type(error).__name__} escaped: {error}") from error


def fuzz_file(path, read, valid, rng, rounds: int = 8, named: str | None = None) -> dict:
    """Damages the file at `path` in every way of `byte_damage`, calls read() on each, and checks that it
    raised a clean error (naming `named`, default the file) or that valid(result, damaged bytes) holds.
    Restores the file; returns the count of each outcome."""
    raw = open(path, "rb").read()
    counts = {"error": 0, "valid": 0}
    try:
        for what, damaged in byte_damage(raw, rng, rounds):
            with open(path, "wb") as f:
                f.write(damaged)
            result = attempt(path, what, read, named)
            if result is not ERROR:
                assert valid(result, damaged), f"{path} {what}: damaged data was read without an error"
            counts["error" if result is ERROR else "valid"] += 1
    finally:
        with open(path, "wb") as f:
            f.write(raw)
    assert counts["error"] >= 3, counts  # the empty file, random bytes and most damage are refused
    return counts


def expect_error(path, what, read):
    assert attempt(path, what, read) is ERROR, f"{path} {what}: read without an error"


def same_arrays(a, b):
    return all(np.array_equal(a[key], b[key]) for key in b)


# ---------------------------------------------------------------- Fashion-MNIST IDX files


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files(tmp_path, gz):
    rng = np.random.default_rng(SEED)
    arrays = write_fashion_mnist(str(tmp_path), rng, gz=gz)
    for key, magic in (("train_images", images.IDX_IMAGES_MAGIC), ("test_labels", images.IDX_LABELS_MAGIC)):
        path = os.path.join(str(tmp_path), images.FASHION_MNIST_FILES[key] + (".gz" if gz else ""))
        header = open(path, "rb").read()[:4 + 4 * arrays[key].ndim]

        def valid(result, damaged, key=key, header=header):
            if gz:  # gzip's CRC: only damage outside the compressed data (its timestamp, say) reads back
                return np.array_equal(result, arrays[key])
            # Uncompressed: flipped bytes inside the pixel payload are other valid pixels.
            return damaged[:len(header)] == header and result.shape == arrays[key].shape and result.dtype == np.uint8

        fuzz_file(path, lambda path=path, magic=magic: images.read_idx(path, magic), valid, rng, rounds=12)


@pytest.mark.parametrize("key, array", [
    ("train_images", np.zeros((6, 20, 20), np.uint8)),  # images of the wrong size
    ("test_images", np.zeros((3, 28, 28, 3), np.uint8)),  # three channels
    ("test_images", np.zeros((3, 28), np.uint8)),  # a 2D array
    ("train_images", np.zeros((0, 28, 28), np.uint8)),  # no images
    ("train_labels", np.zeros(5, np.uint8)),  # one label too few
    ("test_labels", np.full(3, 10, np.uint8)),  # labels beyond the 10 classes
])
def test_fashion_mnist_arrays_of_the_wrong_shape(tmp_path, key, array):
    write_fashion_mnist(str(tmp_path), np.random.default_rng(SEED))
    path = os.path.join(str(tmp_path), images.FASHION_MNIST_FILES[key])
    with open(path, "wb") as f:
        f.write(idx_bytes(array))
    expect_error(path, f"holding {array.shape}", lambda: images.load_image_data("fashion_mnist", str(tmp_path)))


def test_damaged_celeb_a_directory(tmp_path):
    version_dir = tmp_path / "celeb_a" / "2.1.0"
    version_dir.mkdir(parents=True)
    info = version_dir / "dataset_info.json"
    for what, content in [("empty", b""), ("random bytes", np.random.default_rng(SEED).bytes(100)),
                          ("truncated", b'{"name": "celeb_a", "splits": ['), ("an empty object", b"{}")]:
        info.write_bytes(content)
        with pytest.raises(UserError, match=f"CelebA in {tmp_path} is damaged") as caught:
            images.load_image_data("celeb_a", str(tmp_path))
        assert "\n" not in str(caught.value), what


# ---------------------------------------------------------------- Human3.6M and 2D keypoints


def test_h36m_files(tmp_path):
    rng = np.random.default_rng(SEED)
    path_3d = save_npz(tmp_path / "data_3d_h36m.npz", positions_3d=make_h36m_3d())
    path_2d = save_npz(tmp_path / "data_2d_h36m_gt.npz", positions_2d=make_h36m_2d(), metadata=H36M_METADATA)
    clean = h36m.load_h36m(path_3d, path_2d)

    def read():
        return h36m.load_h36m(path_3d, path_2d)

    def valid(result, damaged):  # zip CRCs: only damage outside the arrays (a timestamp, say) reads back
        return np.array_equal(result.poses_3d, clean.poses_3d) and np.array_equal(result.poses_2d, clean.poses_2d)

    fuzz_file(path_3d, read, valid, rng)
    fuzz_file(path_2d, read, valid, rng)


def _with(positions, subject, action, value):
    positions[subject][action] = value
    return positions


@pytest.mark.parametrize("which, positions", [
    ("3d", _with(make_h36m_3d(), "S1", "Walking", np.full((10, 32, 3), np.nan, np.float32))),
    ("3d", _with(make_h36m_3d(), "S5", "Walking", np.full((10, 32, 3), np.inf, np.float32))),
    ("3d", _with(make_h36m_3d(), "S6", "Walking", np.zeros((10, 15, 3), np.float32))),  # wrong joint count
    ("3d", _with(make_h36m_3d(), "S7", "Walking", np.zeros((10, 32, 2), np.float32))),
    ("3d", _with(make_h36m_3d(), "S8", "Walking", np.full((10, 32, 3), "x"))),
    ("3d", _with(make_h36m_3d(), "S1", "Walking", np.zeros((10, 32, 3), np.complex64))),
    ("3d", _with(make_h36m_3d(), "S1", "Walking", [[0.0] * 3] * 32)),
    ("3d", {"S1": "not a dict of actions"}),
    ("2d", _with(make_h36m_2d(), "S1", "Walking", [np.full((12, 17, 2), np.nan, np.float32)] * 4)),
    ("2d", _with(make_h36m_2d(), "S5", "Walking", [np.zeros((12, 15, 2), np.float32)] * 4)),  # wrong joint count
    ("2d", _with(make_h36m_2d(), "S6", "Walking", [np.zeros((12, 17, 3), np.float32)] * 4)),
    ("2d", _with(make_h36m_2d(), "S7", "Walking", [np.full((12, 17, 2), "x")] * 4)),
    ("2d", _with(make_h36m_2d(), "S8", "Walking", [np.zeros((12, 17, 2), bool)] * 4)),
    ("2d", _with(make_h36m_2d(), "S1", "Walking", [None] * 4)),
])
def test_h36m_arrays_of_the_wrong_shape_or_values(tmp_path, which, positions):
    path_3d = save_npz(tmp_path / "data_3d_h36m.npz", positions_3d=positions if which == "3d" else make_h36m_3d())
    path_2d = save_npz(tmp_path / "data_2d_h36m_gt.npz", positions_2d=positions if which == "2d" else make_h36m_2d(),
                   metadata=H36M_METADATA)
    expect_error(path_3d if which == "3d" else path_2d, "holding bad arrays", lambda: h36m.load_h36m(path_3d, path_2d))


def _write_keypoints(path, poses):
    if path.endswith(".json"):
        with open(path, "w") as f:
            json.dump({"keypoints": poses.tolist()}, f)
    elif path.endswith(".npy"):
        np.save(path, poses)
    else:
        save_npz(path, keypoints=poses)


@pytest.mark.parametrize("name", ["kp.npz", "kp.npy", "kp.json"])
def test_keypoint_files(tmp_path, name):
    rng = np.random.default_rng(SEED)
    poses = rng.uniform(0, 500, (4, 15, 2)).astype(np.float32)
    path = str(tmp_path / name)
    _write_keypoints(path, poses)

    def valid(result, damaged):
        if name.endswith(".npz"):  # zip CRCs
            return np.array_equal(result, poses)
        # .npy payload and .json digits: flipped bytes may be other valid numbers (or fewer poses).
        return result.ndim == 3 and result.shape[1:] == (15, 2) and result.dtype == np.float32 and np.isfinite(result).all()

    fuzz_file(path, lambda: h36m.load_keypoints_2d(path, 15), valid, rng)


@pytest.mark.parametrize("poses", [
    np.zeros((10, 17, 2), np.float32),  # the wrong joint count
    np.full((3, 15, 2), np.nan, np.float32),
    np.full((3, 15, 2), -np.inf),
    np.zeros((3, 15, 4), np.float32),
    np.zeros((3, 30), np.float32),
    np.zeros((0, 15, 2), np.float32),
    np.zeros((3, 15, 2), bool),
    np.zeros((3, 15, 2), np.complex64),
    np.full((3, 15, 2), "1.5"),
], ids=lambda poses: f"{poses.dtype}{list(poses.shape)}")
def test_keypoint_arrays_of_the_wrong_shape_or_values(tmp_path, poses):
    for name in ("kp.npz", "kp.npy") + (("kp.json",) if poses.dtype.kind != "c" else ()):  # JSON has no complex
        path = str(tmp_path / name)
        _write_keypoints(path, poses)
        expect_error(path, f"holding {poses.dtype} {poses.shape}", lambda: h36m.load_keypoints_2d(path, 15))


@pytest.mark.parametrize("text", ['{"keypoints": {"a": 1}}', "null", '"poses"', "[[[1, 2]], [[1]]]", "[" * 100000],
                         ids=["dict_keypoints", "null", "string", "ragged", "deep_nesting"])
def test_keypoint_json_of_the_wrong_structure(tmp_path, text):
    path = tmp_path / "kp.json"
    path.write_text(text)
    expect_error(path, "holding odd JSON", lambda: h36m.load_keypoints_2d(str(path), 1))


# ---------------------------------------------------------------- Virtual KITTI


def test_vkitti_files(tmp_path):
    rng = np.random.default_rng(SEED)
    write_vkitti_variation(tmp_path, "0001", "clone", 3)
    clean = load_vkitti(tmp_path)
    shapes = {key: (value.shape, value.dtype) for key, value in clean.items()}

    def same(result, damaged):  # PNG chunk CRCs: only damage past the IEND chunk reads back
        return same_arrays(result, clean)

    def valid(result, damaged):  # a digit of the extrinsics text may become another valid number
        finite = all(np.isfinite(result[key]).all() for key in ("depth1", "rotation", "translation"))
        return finite and {key: (value.shape, value.dtype) for key, value in result.items()} == shapes

    for path in ("vkitti_1.3.1_rgb/0001/clone/00001.png", "vkitti_1.3.1_depthgt/0001/clone/00002.png"):
        fuzz_file(str(tmp_path / path), lambda: load_vkitti(tmp_path), same, rng, rounds=4)
    fuzz_file(str(tmp_path / "vkitti_1.3.1_extrinsicsgt/0001_clone.txt"), lambda: load_vkitti(tmp_path), valid, rng)


@pytest.mark.parametrize("name, image", [
    ("vkitti_1.3.1_rgb/0001/clone/00001.png", np.zeros((VKITTI_FULL_H, VKITTI_FULL_W, 4), np.uint8)),  # RGBA
    ("vkitti_1.3.1_rgb/0001/clone/00002.png", np.zeros((VKITTI_FULL_H, VKITTI_FULL_W), np.uint8)),  # greyscale
    ("vkitti_1.3.1_rgb/0001/clone/00001.png", np.zeros((VKITTI_FULL_H, VKITTI_FULL_W), np.uint16)),
    ("vkitti_1.3.1_rgb/0001/clone/00002.png", np.zeros((100, 40, 3), np.uint8)),  # another size mid-sequence
    ("vkitti_1.3.1_depthgt/0001/clone/00001.png", np.zeros((VKITTI_FULL_H, VKITTI_FULL_W, 3), np.uint8)),
    ("vkitti_1.3.1_depthgt/0001/clone/00002.png", np.zeros((VKITTI_FULL_H - 1, VKITTI_FULL_W), np.uint16)),
])
def test_vkitti_frames_of_the_wrong_size_or_channels(tmp_path, name, image):
    write_vkitti_variation(tmp_path, "0001", "clone", 3)
    Image.fromarray(image).save(tmp_path / name)
    expect_error(tmp_path / name, f"holding {image.dtype} {image.shape}", lambda: load_vkitti(tmp_path))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0x10", "1e999"])
def test_vkitti_extrinsics_with_non_finite_values(tmp_path, value):
    write_vkitti_variation(tmp_path, "0001", "clone", 3)
    path = tmp_path / "vkitti_1.3.1_extrinsicsgt/0001_clone.txt"
    lines = path.read_text().splitlines()
    values = lines[2].split()
    values[5] = value
    path.write_text("\n".join(lines[:2] + [" ".join(values)] + lines[3:]) + "\n")
    expect_error(path, f"holding {value}", lambda: load_vkitti(tmp_path))


@pytest.mark.parametrize("matrix", [np.zeros((4, 4)), np.ones((4, 4)), np.diag([1.0, 1.0, 0.0, 1.0])])
def test_vkitti_extrinsics_that_are_no_camera_pose(tmp_path, matrix):
    write_vkitti_variation(tmp_path, "0001", "clone", 3)
    path = tmp_path / "vkitti_1.3.1_extrinsicsgt/0001_clone.txt"
    lines = path.read_text().splitlines()
    lines[2] = "1 " + " ".join(str(v) for v in matrix.ravel())
    path.write_text("\n".join(lines) + "\n")
    expect_error(path, "holding a singular matrix", lambda: load_vkitti(tmp_path))


# ---------------------------------------------------------------- DeepMimic clips and motion files


def test_deepmimic_clip_files(tmp_path):
    directory = copy_deepmimic_motions(tmp_path)
    clean = deepmimic.load_clips(["run"], str(directory))["run"].joints

    def valid(result, damaged):  # zip CRCs
        return np.array_equal(result["run"].joints, clean)

    fuzz_file(str(directory / "run.npz"), lambda: deepmimic.load_clips(["run"], str(directory)), valid,
              np.random.default_rng(SEED))


@pytest.mark.parametrize("joints", [
    np.full((5, 15, 3), np.inf, np.float32), np.zeros((5, 15, 3), np.int32), np.zeros((5, 3, 15), np.float32),
    np.zeros((1, 15, 3), np.float32), np.zeros((5, 15, 3), "<U3"), np.zeros(()),
], ids=lambda joints: f"{joints.dtype}{list(joints.shape)}")
def test_deepmimic_clip_arrays_of_the_wrong_shape_or_values(tmp_path, joints):
    directory = copy_deepmimic_motions(tmp_path)
    with np.load(directory / "roll.npz") as data:
        contents = {key: data[key] for key in data.files}
    np.savez_compressed(directory / "roll.npz", **{**contents, "joints": joints})
    expect_error(directory / "roll.npz", "holding bad joints", lambda: deepmimic.load_clips(["roll"], str(directory)))


def _motion_text(rng, frames=4, size=deepmimic.FRAME_SIZE, nan=False):
    """A DeepMimic motion file of random keyframes, 1/30 s each (one value NaN if `nan`)."""
    keyframes = rng.uniform(-1, 1, (frames, size)).round(6)
    keyframes[:, 0] = 1 / 30
    keyframes[-1, -1] = np.nan if nan else keyframes[-1, -1]
    return json.dumps({"Loop": "wrap", "Frames": keyframes.tolist()})


def test_deepmimic_motion_files(tmp_path):
    rng = np.random.default_rng(SEED)
    path = tmp_path / "humanoid3d_walk.txt"
    path.write_text(_motion_text(rng))

    def valid(result, damaged):  # a flipped digit is another valid number
        frames, loop = result
        return frames.shape == (4, deepmimic.FRAME_SIZE) and np.isfinite(frames).all() and isinstance(loop, bool)

    fuzz_file(str(path), lambda: deepmimic.read_motion_file(str(path)), valid, rng)


@pytest.mark.parametrize("text", [
    _motion_text(np.random.default_rng(0), size=43), _motion_text(np.random.default_rng(0), frames=1),
    _motion_text(np.random.default_rng(0), nan=True), json.dumps({"Frames": [["a"] * 44] * 2}),
    '["Frames"]', '{"Frames": {"0": 1}}', "null", "[" * 100000,
], ids=["43_values", "one_frame", "nan", "strings", "list", "dict_frames", "null", "deep_nesting"])
def test_deepmimic_motion_files_of_the_wrong_structure(tmp_path, text):
    path = tmp_path / "humanoid3d_walk.txt"
    path.write_text(text)
    expect_error(path, "holding odd JSON", lambda: deepmimic.read_motion_file(str(path)))


# ---------------------------------------------------------------- the driving world's TFDS cache

DRIVING = dict(height=32, width=96, num_frames=3, sequences=1, verbose=False)


@pytest.fixture(scope="module")
def driving_cache(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("driving"))
    return data_dir, driving.load_pairs("train", data_dir=data_dir, **DRIVING)


@pytest.mark.parametrize("name", ["driving_world-train.tfrecord-00000-of-00001", "dataset_info.json"])
def test_driving_world_cache(tmp_path, driving_cache, name):
    source, clean = driving_cache
    data_dir = str(tmp_path / "tfds")
    shutil.copytree(source, data_dir)
    config = driving.DrivingWorldConfig.create(32, 96, 3, train=1)
    cache = os.path.join(data_dir, "driving_world", config.name)

    def valid(result, damaged):  # record CRCs; damage to a field TFDS does not read is harmless
        return same_arrays(result, clean)

    # The error names the cache directory that holds the damaged file.
    fuzz_file(os.path.join(cache, "1.0.0", name), lambda: driving.load_pairs("train", data_dir=data_dir, **DRIVING),
              valid, np.random.default_rng(SEED), rounds=4, named=f"the driving world cache in {cache} is damaged")
