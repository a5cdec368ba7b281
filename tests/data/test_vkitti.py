"""The Virtual KITTI 1.3.1 reader on tiny datasets written in the real layout (full 1242x375 frames)."""
import numpy as np
import pytest
from PIL import Image

from aign_tf.data import vkitti
from aign_tf.errors import UserError
from tests.numpy_reference import rot_y
from tests.testing import VKITTI_FULL_H as FULL_H, VKITTI_FULL_W as FULL_W, VKITTI_SKY_ROWS as SKY_ROWS
from tests.testing import VKITTI_YAW as YAW, vkitti_depth_cm as depth_cm, write_vkitti_variation as write_variation
from tests.testing import VKITTI_HEIGHT as HEIGHT, VKITTI_WIDTH as WIDTH, load_vkitti as load

DEPTH_CLONE = "vkitti_1.3.1_depthgt/0001/clone"


def nearest(count, source):
    """Source index of each output pixel centre: round((i + 0.5) * source / count - 0.5)."""
    return np.round((np.arange(count) + 0.5) * source / count - 0.5).astype(int)


def test_camera_is_scaled_for_the_output_size():
    camera = vkitti.camera(HEIGHT, WIDTH)
    assert (camera.height, camera.width) == (HEIGHT, WIDTH)
    np.testing.assert_allclose(camera.focal, (725.0 * WIDTH / FULL_W, 725.0 * HEIGHT / FULL_H))
    np.testing.assert_allclose(camera.principal_point,
                               ((620.5 + 0.5) * WIDTH / FULL_W - 0.5, (187.0 + 0.5) * HEIGHT / FULL_H - 0.5))
    with pytest.raises(UserError, match="multiples of 16"):
        vkitti.camera(60, WIDTH)


def test_round_trip(tmp_path):
    write_variation(tmp_path, "0001", "clone", 4)
    pairs = load(tmp_path)
    assert pairs["image1"].shape == pairs["image2"].shape == (3, HEIGHT, WIDTH, 3)
    assert pairs["image1"].dtype == pairs["image2"].dtype == np.uint8
    assert pairs["depth1"].shape == (3, HEIGHT, WIDTH, 1) and pairs["depth1"].dtype == np.float32
    np.testing.assert_array_equal(pairs["sequence"], [0, 0, 0])
    # Pair k is (frame k, frame k + 1): the blue channel is 40 * frame, unchanged by area resampling.
    np.testing.assert_array_equal(pairs["image1"][..., 2], np.full((3, HEIGHT, WIDTH), [[[0]], [[40]], [[80]]]))
    np.testing.assert_array_equal(pairs["image2"][..., 2], np.full((3, HEIGHT, WIDTH), [[[40]], [[80]], [[120]]]))
    # The red gradient along x survives the resize.
    assert pairs["image1"][0, 10, 0, 0] < 5 and pairs["image1"][0, 10, -1, 0] > 250
    # Each step turns by YAW then moves 0.8 m forward: X2 = Ry(-YAW) X1 + (0, 0, -0.8).
    np.testing.assert_allclose(pairs["rotation"], np.broadcast_to(rot_y(-YAW), (3, 3, 3)), atol=1e-6)
    np.testing.assert_allclose(pairs["translation"], np.broadcast_to([0.0, 0.0, -0.8], (3, 3)), atol=1e-6)
    # Depth: the exact centimetres of the nearest source pixel, in metres; the sky stays 655.35 m.
    rows, columns = nearest(HEIGHT, FULL_H), nearest(WIDTH, FULL_W)
    for k in range(3):
        expected = depth_cm(k)[rows[:, None], columns].astype(np.float32) / np.float32(100)
        np.testing.assert_array_equal(pairs["depth1"][k, ..., 0], expected)
    assert rows[0] < SKY_ROWS <= rows[1]
    np.testing.assert_array_equal(pairs["depth1"][:, 0], np.float32(655.35))


def test_pure_forward_motion(tmp_path):
    write_variation(tmp_path, "0001", "clone", 3, yaw=0.0)
    pairs = load(tmp_path)
    np.testing.assert_allclose(pairs["rotation"], np.broadcast_to(np.eye(3), (2, 3, 3)), atol=1e-7)
    np.testing.assert_allclose(pairs["translation"], np.broadcast_to([0.0, 0.0, -0.8], (2, 3)), atol=1e-7)


def test_stride_pairs_every_frame_with_the_one_stride_later(tmp_path):
    write_variation(tmp_path, "0001", "clone", 5)
    pairs = load(tmp_path, stride=2)
    # Pairs (0, 2), (1, 3), (2, 4), in order.
    np.testing.assert_array_equal(pairs["image1"][:, 0, 0, 2], [0, 40, 80])
    np.testing.assert_array_equal(pairs["image2"][:, 0, 0, 2], [80, 120, 160])
    np.testing.assert_array_equal(pairs["depth1"][:, -1, 0, 0] * 100 // 1000, [0, 1, 2])
    # Two steps: turn, move, turn, move: R = Ry(-2 YAW), T = -0.8 Ry(-YAW) e_z - 0.8 e_z.
    np.testing.assert_allclose(pairs["rotation"], np.broadcast_to(rot_y(-2 * YAW), (3, 3, 3)), atol=1e-6)
    expected_t = [0.8 * np.sin(YAW), 0.0, -0.8 * np.cos(YAW) - 0.8]
    np.testing.assert_allclose(pairs["translation"], np.broadcast_to(expected_t, (3, 3)), atol=1e-6)
    np.testing.assert_array_equal(load(tmp_path, stride=2, max_frames=3)["image1"][:, 0, 0, 2], [0])


def test_sequences_and_variations_in_order(tmp_path):
    # Written out of order; each (sequence, variation) moves its own step length per frame.
    written = [(0.8, "0006", "fog"), (0.6, "0002", "fog"), (0.5, "0002", "clone"), (0.7, "0006", "clone")]
    for step, sequence, variation in written:
        write_variation(tmp_path, sequence, variation, 3, step=step)
    write_variation(tmp_path, "0006", "rain", 3)  # not asked for
    pairs = load(tmp_path, ("0002", "0006"), variations=("clone", "fog"))
    np.testing.assert_array_equal(pairs["sequence"], [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_allclose(pairs["translation"][:, 2], np.repeat([-0.5, -0.6, -0.7, -0.8], 2), atol=1e-6)
    assert len(load(tmp_path, ("0002", "0006"), variations=("clone", "fog"), max_frames=2)["sequence"]) == 4


def test_split_matches_the_paper():
    assert vkitti.TEST_SEQUENCES == ("0001",)
    assert set(vkitti.TRAIN_SEQUENCES) | set(vkitti.TEST_SEQUENCES) == set(vkitti.SEQUENCES)
    assert len(vkitti.VARIATIONS) == 10 and "clone" in vkitti.VARIATIONS


def rewrite_extrinsics(root, edit):
    path = root / "vkitti_1.3.1_extrinsicsgt" / "0001_clone.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


@pytest.mark.parametrize("kwargs, message", [
    ({"sequences": ("0003",)}, "unknown VKITTI sequence '0003'"),
    ({"variations": ("snow",)}, "unknown VKITTI variation 'snow'"),
    ({"variations": ("fog",)}, r"vkitti_1.3.1_rgb/0001/fog is missing: unpack the VKITTI 1.3.1 rgb, depthgt"),
    ({"height": 60}, "multiples of 16"),
    ({"max_frames": 1}, "max_frames 1 is too small"),
    ({"max_frames": 2, "stride": 2}, "has 2 frames to read .*stride 2 need at least 3"),
    ({"stride": 3}, "has 3 frames to read .*stride 3 need at least 4"),
    ({"stride": 0}, "use stride >= 1"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    write_variation(tmp_path, "0001", "clone", 3)
    arguments = {"data_dir": str(tmp_path), "sequences": ("0001",), "height": HEIGHT, "width": WIDTH, **kwargs}
    with pytest.raises(UserError, match=message):
        vkitti.load_pairs(**arguments)


def test_missing_data_dir(tmp_path):
    with pytest.raises(UserError, match="VKITTI data directory .*nowhere does not exist"):
        load(tmp_path / "nowhere")


def test_missing_depth_frame(tmp_path):
    write_variation(tmp_path, "0001", "clone", 3)
    (tmp_path / DEPTH_CLONE / "00001.png").unlink()
    with pytest.raises(UserError, match=r"depth frame .*00001.png is missing"):
        load(tmp_path)


def test_depth_not_16_bit(tmp_path):
    write_variation(tmp_path, "0001", "clone", 3)
    Image.fromarray(np.zeros((FULL_H, FULL_W), np.uint8)).save(tmp_path / DEPTH_CLONE / "00002.png")
    with pytest.raises(UserError, match=r"00002.png is a PNG of mode L, not 16-bit"):
        load(tmp_path)


def test_depth_and_rgb_of_different_sizes(tmp_path):
    write_variation(tmp_path, "0001", "clone", 3)
    Image.fromarray(np.zeros((187, 621), np.uint16)).save(tmp_path / DEPTH_CLONE / "00000.png")
    with pytest.raises(UserError, match=r"depth .*00000.png is 621x187 pixels but its image .* is 1242x375"):
        load(tmp_path)


def test_rgb_of_the_wrong_size(tmp_path):
    write_variation(tmp_path, "0001", "clone", 3)
    Image.fromarray(np.zeros((187, 621, 3), np.uint8)).save(tmp_path / "vkitti_1.3.1_rgb/0001/clone/00000.png")
    with pytest.raises(UserError, match=r"00000.png is 621x187 pixels, VKITTI 1.3.1 frames are 1242x375"):
        load(tmp_path)


@pytest.mark.parametrize("edit", [
    lambda lines: lines[:2] + [lines[2].rsplit(" ", 1)[0]] + lines[3:],
    lambda lines: lines[:2] + [lines[2].replace(" 1.0", " one", 1)] + lines[3:],
])
def test_malformed_extrinsics_line(tmp_path, edit):
    write_variation(tmp_path, "0001", "clone", 3)
    rewrite_extrinsics(tmp_path, edit)
    with pytest.raises(UserError, match=r"0001_clone.txt line 3 is malformed"):
        load(tmp_path)


def test_extrinsics_missing_a_frame(tmp_path):
    write_variation(tmp_path, "0001", "clone", 3)
    rewrite_extrinsics(tmp_path, lambda lines: lines[:3])
    with pytest.raises(UserError, match="no line for frame 2"):
        load(tmp_path)


def test_missing_extrinsics_file(tmp_path):
    write_variation(tmp_path, "0001", "clone", 3)
    (tmp_path / "vkitti_1.3.1_extrinsicsgt" / "0001_clone.txt").unlink()
    with pytest.raises(UserError, match="extrinsics file .*0001_clone.txt is missing"):
        load(tmp_path)
