"""Tests for aign_tf.data.driving: the procedural driving world and its TFDS cache."""

import os
import threading

import numpy as np
import pytest

from aign_tf import files
from aign_tf.data import driving, frames
from aign_tf.errors import UserError
from aign_tf.render import warp


@pytest.fixture(scope="module")
def street():
    """Seed 7's street, 6 frames of 64x192, and its pairs."""
    out = driving.render_sequence(7, 6, 64, 192)
    return out, frames.sequence_pairs(out["images"], out["depths"], out["world_to_camera"], 0)


def _angles(rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(yaw, pitch, roll) [N] of rotations [N, 3, 3] close to the identity (y down: yaw turns about y)."""
    yaw = np.arctan2(rotation[:, 0, 2], rotation[:, 2, 2])
    pitch = np.arcsin(-rotation[:, 1, 2])
    roll = np.arctan2(rotation[:, 1, 0], rotation[:, 1, 1])
    return yaw, pitch, roll


def test_camera_is_80_degrees_wide_with_a_centred_principal_point():
    camera = driving.camera(64, 192)
    assert camera.focal[0] == camera.focal[1]
    assert 2 * np.degrees(np.arctan(96 / camera.focal[0])) == pytest.approx(80.0)
    assert camera.principal_point == (95.5, 31.5)


def test_render_sequence_is_deterministic_per_seed():
    first = driving.render_sequence(3, 3, 32, 96)
    again = driving.render_sequence(3, 3, 32, 96)
    other = driving.render_sequence(4, 3, 32, 96)
    assert first["images"].shape == (3, 32, 96, 3) and first["images"].dtype == np.uint8
    assert first["depths"].shape == (3, 32, 96) and first["depths"].dtype == np.float32
    assert first["world_to_camera"].shape == (3, 4, 4) and first["world_to_camera"].dtype == np.float64
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert np.abs(first["images"].astype(int) - other["images"]).mean() > 10


def test_depth_is_exact_on_the_road(street):
    out, _ = street
    height, width = out["depths"].shape[1:]
    camera = driving.camera(height, width)
    (fx, fy), (cx, cy) = camera.focal, camera.principal_point
    depths = out["depths"]
    assert np.isfinite(depths).all() and depths.min() > 0.5 and depths.max() < 300
    for k, world_to_camera in enumerate(out["world_to_camera"]):
        rotation = world_to_camera[:3, :3].T  # camera to world
        position = -rotation @ world_to_camera[:3, 3]
        row = height - 1  # the bottom row looks at the road a few metres ahead
        for column in (width // 2 - 6, width // 2, width // 2 + 6):
            ray = rotation @ np.array([(column - cx) / fx, (row - cy) / fy, 1.0])  # Z = 1 in the camera
            depth = (driving.CAMERA_HEIGHT - position[1]) / ray[1]
            assert depths[k, row, column] == pytest.approx(depth, rel=1e-4)
            assert 2.0 < depth < 10.0


def test_true_motion_warps_the_next_frame_onto_this_one(street):
    out, pairs = street
    camera = driving.camera(*out["depths"].shape[1:])
    count = len(pairs["image1"])
    image1 = pairs["image1"].astype(np.float32) / 255
    image2 = pairs["image2"].astype(np.float32) / 255
    focal = np.tile(np.float32(camera.focal), (count, 1))
    principal_point = np.tile(np.float32(camera.principal_point), (count, 1))
    warped, valid = warp.warp(image2, pairs["depth1"], pairs["rotation"], pairs["translation"], focal, principal_point)
    still, _ = warp.warp(image2, pairs["depth1"], np.tile(np.eye(3, dtype=np.float32), (count, 1, 1)),
                         np.zeros((count, 3), np.float32), focal, principal_point)
    valid = valid.numpy()[..., 0] > 0
    assert valid.mean() > 0.6
    error = np.abs(warped.numpy() - image1).mean(axis=-1)[valid].mean()
    still_error = np.abs(still.numpy() - image1).mean(axis=-1)[valid].mean()
    # Measured: 0.016 with the true motion, 0.065 with none (occlusions and resampling remain).
    assert error < 0.025
    assert error < still_error / 3


def test_motion_is_forward_with_small_turns():
    out = driving.render_sequence(5, 40, 32, 96)
    pairs = frames.sequence_pairs(out["images"], out["depths"], out["world_to_camera"], 0)
    translation = pairs["translation"]
    assert (translation[:, 2] < -0.79).all() and (translation[:, 2] > -1.41).all()
    assert np.abs(translation[:, 0]).max() < 0.05 and np.abs(translation[:, 1]).max() < 0.08
    yaw, pitch, roll = _angles(pairs["rotation"].astype(np.float64))
    assert np.abs(pitch).max() < 0.015 and np.abs(roll).max() < 0.015
    assert np.abs(yaw).max() < 0.05 and 0.003 < yaw.std() < 0.03


def test_sequence_seeds_are_disjoint_across_splits_and_seeds():
    seeds = [set(driving.sequence_seeds(split, 100, seed)) for split in driving.SPLITS for seed in (0, 1)]
    assert sum(len(s) for s in seeds) == len(set().union(*seeds)) == 600
    assert driving.sequence_seeds("train", 3)[:2] == driving.sequence_seeds("train", 2)
    with pytest.raises(UserError, match="validation"):
        driving.sequence_seeds("validation", 1)


def test_load_pairs_builds_the_tfds_cache_once(tmp_path, monkeypatch, capsys):
    options = dict(height=32, width=96, num_frames=3, data_dir=str(tmp_path))
    train = driving.load_pairs("train", sequences=2, **options)
    assert "6 32x96 train frames" in capsys.readouterr().out
    assert set(train) == set(frames.PAIR_KEYS)
    expected = {"image1": ((4, 32, 96, 3), np.uint8), "image2": ((4, 32, 96, 3), np.uint8),
                "depth1": ((4, 32, 96, 1), np.float32), "rotation": ((4, 3, 3), np.float32),
                "translation": ((4, 3), np.float32), "sequence": ((4,), np.int32)}
    assert {key: (value.shape, value.dtype) for key, value in train.items()} == expected
    np.testing.assert_array_equal(train["sequence"], [0, 0, 1, 1])
    second = driving.render_sequence(driving.sequence_seeds("train", 2)[1], 3, 32, 96)
    np.testing.assert_array_equal(train["image1"][2:], second["images"][:2])
    np.testing.assert_array_equal(train["depth1"][2:, ..., 0], second["depths"][:2])

    def no_rendering(*args, **kwargs):
        raise AssertionError("the cached streets were rendered again")

    with monkeypatch.context() as patch:
        patch.setattr(driving, "render_sequence", no_rendering)
        again = driving.load_pairs("train", sequences=2, **options)
    assert capsys.readouterr().out == ""
    for key in frames.PAIR_KEYS:
        np.testing.assert_array_equal(again[key], train[key])

    memory = driving.load_pairs("memory", sequences=1, verbose=False, **options)
    test = driving.load_pairs("test", sequences=1, verbose=False, **options)
    assert capsys.readouterr().out == ""
    for other in (memory, test):
        assert other["image1"].shape == (2, 32, 96, 3)
        assert np.abs(other["image1"].astype(int) - train["image1"][:2]).mean() > 10
    assert np.abs(memory["image1"].astype(int) - test["image1"]).mean() > 10


def test_an_interrupted_build_is_not_read(tmp_path, monkeypatch):
    options = dict(height=32, width=96, sequences=2, num_frames=3, data_dir=str(tmp_path), verbose=False)
    render = driving.render_sequence
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(args)
        if len(calls) > 1:
            raise KeyboardInterrupt  # as if killed while writing the second street
        return render(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(driving, "render_sequence", interrupted)
        with pytest.raises(KeyboardInterrupt):
            driving.load_pairs("train", **options)
    config_dir = tmp_path / "driving_world" / "32x96_f3_s0_t2_m0_e0"
    assert not (config_dir / "1.0.0").exists()
    pairs = driving.load_pairs("train", **options)
    assert len(pairs["image1"]) == 4 and os.listdir(config_dir) == ["1.0.0"]


def test_a_second_caller_waits_for_a_build_under_way_and_reads_it(tmp_path, monkeypatch):
    """Two training jobs started at once on the same streets: the second must not render them again
    nor fail on TFDS's rename of the first one's finished build."""
    options = dict(height=32, width=96, sequences=2, num_frames=3, data_dir=str(tmp_path), verbose=False)
    render = driving.render_sequence
    rendered = []
    monkeypatch.setattr(driving, "render_sequence", lambda *a, **k: rendered.append(a) or render(*a, **k))
    config = driving.DrivingWorldConfig.create(32, 96, 3, 0, train=2)
    config_dir = tmp_path / "driving_world" / config.name
    second = {}
    with files.locked(str(config_dir)):  # the first process, building
        waiting = threading.Thread(target=lambda: second.update(driving.load_pairs("train", **options)))
        waiting.start()
        waiting.join(timeout=2)
        assert waiting.is_alive() and not rendered
        driving.DrivingWorld(config=config, data_dir=str(tmp_path)).download_and_prepare()
    waiting.join(timeout=60)
    assert not waiting.is_alive() and len(rendered) == 2  # one build of two streets, not two builds
    first = driving.load_pairs("train", **options)
    for key in frames.PAIR_KEYS:
        np.testing.assert_array_equal(second[key], first[key])


def test_bad_frame_size_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="30x100"):
        driving.camera(30, 100)
    with pytest.raises(UserError, match="30x100"):
        driving.render_sequence(0, 2, 30, 100)
    with pytest.raises(UserError, match="30x100"):
        driving.load_pairs("train", height=30, width=100, sequences=1, data_dir=str(tmp_path))


def test_towns_share_the_streets_and_differ_in_look():
    looks = [driving.render_sequence(5, 3, 32, 96, town=town) for town in (0, 1, 2, 3)]
    for look in looks[1:]:  # same trajectory and geometry (towns 0-3 drive alike), another look
        np.testing.assert_array_equal(look["depths"], looks[0]["depths"])
        np.testing.assert_array_equal(look["world_to_camera"], looks[0]["world_to_camera"])
        assert np.abs(look["images"].astype(int) - looks[0]["images"]).mean() > 5
    with pytest.raises(UserError, match="town=5 must be town numbers 0-4"):
        driving.render_sequence(5, 3, 32, 96, town=5)


def test_the_dusk_town_drives_faster_within_its_speed_limits():
    for town in (0, 4):
        limits = driving.TOWNS[town].speed_limits
        for seed in (1, 2):
            poses = np.linalg.inv(driving.render_sequence(seed, 30, 32, 96, town=town, supersample=1)["world_to_camera"])
            steps = np.linalg.norm(np.diff(poses[:, [0, 2], 3], axis=0), axis=-1)  # ground-plane distance per frame
            assert limits[0] - 1e-6 <= steps.min() and steps.max() <= limits[1] + 1e-6, (town, seed)
    assert driving.TOWNS[4].speed_limits[0] > driving.TOWNS[0].cruise[1] - 0.15


def test_haze_mixes_each_pixel_towards_the_haze_colour_by_its_distance(monkeypatch):
    clear = driving.render_sequence(6, 1, 32, 96, town=1)
    towns = list(driving.TOWNS)
    haze = driving.np.array([0.2, 0.4, 0.6], np.float32)
    for visibility, expect_far in ((1e-4, True), (1e6, False)):
        towns[1] = driving.dataclasses.replace(driving.TOWNS[1], haze=haze, visibility=visibility)
        monkeypatch.setattr(driving, "TOWNS", tuple(towns))
        hazy = driving.render_sequence(6, 1, 32, 96, town=1)
        np.testing.assert_array_equal(hazy["depths"], clear["depths"])
        if expect_far:  # every surface is many visibilities away: all haze
            np.testing.assert_array_equal(hazy["images"], np.broadcast_to(np.round(haze * 255), hazy["images"].shape))
        else:  # a visibility of 1,000 km changes a colour by less than 0.02 grey levels
            assert np.abs(hazy["images"].astype(int) - clear["images"]).max() <= 1


def test_streets_take_their_towns_in_turn_and_the_cache_is_named_after_them(tmp_path):
    pairs = driving.load_pairs("test", height=32, width=96, sequences=3, num_frames=2, data_dir=str(tmp_path),
                               verbose=False, towns=(2, 4))
    for index, (seed, town) in enumerate(zip(driving.sequence_seeds("test", 3), (2, 4, 2))):
        street = driving.render_sequence(seed, 2, 32, 96, town=town)
        np.testing.assert_array_equal(pairs["image1"][index], street["images"][0])
    assert os.listdir(tmp_path / "driving_world") == ["32x96_f2_s0_t0_m0_e3_w2-4"]
    with pytest.raises(UserError, match=r"towns=\[7\] must be town numbers"):
        driving.load_pairs("test", height=32, width=96, sequences=1, num_frames=2, data_dir=str(tmp_path), towns=(7,))
