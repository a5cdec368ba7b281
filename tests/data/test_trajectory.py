"""Real camera paths for the driving world: the KITTI odometry pose reader (aign_tf.data.kitti) and the
streets that follow windows of a drive (aign_tf.data.driving), on pose files written here."""
import numpy as np
import pytest

from aign_tf.data import driving, frames, kitti
from aign_tf.errors import UserError
from tests.numpy_reference import rot_y, rot_z
from tests.testing import write_odometry_poses


def drive(steps, yaw_rates):
    """Camera-to-world [N + 1, 4, 4] (camera 0: x right, y down, z forward) of a car that advances steps[k]
    metres along its optical axis, then turns by yaw_rates[k] (radians, towards +x)."""
    poses, pose = [np.eye(4)], np.eye(4)
    for step, turn in zip(steps, yaw_rates):
        move = np.eye(4)
        move[:3, :3], move[:3, 3] = rot_y(turn), (0.0, 0.0, step)
        pose = pose @ move
        poses.append(pose)
    return np.stack(poses)


def relative(world_to_camera):
    rotation, translation = frames.relative_motion(world_to_camera[:-1], world_to_camera[1:])
    return np.concatenate([rotation.reshape(len(rotation), -1), translation], axis=1)


@pytest.fixture(scope="module")
def wavy():
    """A 60-frame drive with a different speed every frame and a gentle S-curve."""
    count = 60
    return drive(0.8 + 0.01 * np.arange(count), 0.01 * np.sin(np.arange(count) / 5))


def test_pose_file_round_trip(tmp_path, wavy):
    tilted = wavy.copy()
    tilted[:, :3, :3] = tilted[:, :3, :3] @ rot_z(0.01)  # a slight roll
    write_odometry_poses(tmp_path / "00.txt", tilted)
    (tmp_path / "00.txt").write_text((tmp_path / "00.txt").read_text() + "\n")  # a blank line at the end
    np.testing.assert_allclose(kitti.read_odometry_poses(str(tmp_path / "00.txt")), tilted, atol=1e-8)


@pytest.mark.parametrize("line, what", [
    ("1 0 0 0 0 1 0 0 0 0 1", "11 numbers"),
    ("1 0 0 0 0 1 0 0 0 0 1 0 5", "13 numbers"),
    ("1 0 0 0 0 1 0 0 0 0 1 nan", "not finite"),
    ("1 0 0 0 0 1 0 0 0 0 2 0", "no rotation"),
    ("1 0 0 x 0 1 0 0 0 0 1 0", "not a number"),
])
def test_damaged_pose_line(tmp_path, wavy, line, what):
    path = tmp_path / "00.txt"
    write_odometry_poses(path, wavy[:4])
    lines = path.read_text().splitlines()
    lines[2] = line
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"trajectory file .*00.txt line 3 is not a pose: expected 12 finite") as e:
        kitti.read_odometry_poses(str(path))
    assert "\n" not in str(e.value), what


def test_missing_or_short_pose_file(tmp_path, wavy):
    with pytest.raises(UserError, match="trajectory file .*missing.txt does not exist"):
        kitti.read_odometry_poses(str(tmp_path / "missing.txt"))
    write_odometry_poses(tmp_path / "one.txt", wavy[:1])
    with pytest.raises(UserError, match=r"one.txt holds 1 pose\(s\): a trajectory needs at least 2"):
        kitti.read_odometry_poses(str(tmp_path / "one.txt"))


def test_a_street_follows_a_window_of_the_drive_exactly(wavy):
    """Every pair's relative motion is that of consecutive poses of one window of the drive, and the camera
    stays on the lanes, facing along the street."""
    truth = relative(np.linalg.inv(wavy))
    for seed in range(3):
        world_to_camera = driving.render_sequence(seed, 6, 32, 96, real_drive=wavy)["world_to_camera"]
        motion = relative(world_to_camera)
        starts = [s for s in range(len(truth) - 4) if np.allclose(truth[s:s + 5], motion, atol=1e-9)]
        assert len(starts) == 1, seed
        camera_to_world = np.linalg.inv(world_to_camera)
        assert np.abs(camera_to_world[:, 0, 3]).max() <= driving.MAX_LATERAL + 1e-9
        heading = np.arctan2(camera_to_world[:, 0, 2], camera_to_world[:, 2, 2])
        assert np.abs(heading).max() <= driving.MAX_HEADING
        # Laid along the street: the first and last cameras are level with each other on the z axis' line.
        assert abs(camera_to_world[-1, 0, 3] - camera_to_world[0, 0, 3]) < 1e-9
        assert abs(camera_to_world[-1, 1, 3] - camera_to_world[0, 1, 3]) < 1e-9
        assert camera_to_world[-1, 2, 3] > 4.0


def test_windows_keep_out_of_turns_the_street_does_not_have():
    """A drive straight on, a 90-degree turn over 10 frames, straight on: windows of 8 frames fit before
    and after the turn; none that turns more than MAX_HEADING."""
    turns = np.r_[np.zeros(20), np.full(10, np.pi / 20), np.zeros(20)]
    poses = drive(np.ones(50), turns)
    windows = driving.street_windows(poses, 8)
    assert 20 <= len(windows) < 43
    heading = np.arctan2(windows[:, :, 0, 2], windows[:, :, 2, 2])
    assert np.abs(heading).max() <= driving.MAX_HEADING
    lateral = windows[:, :, 0, 3]
    assert (lateral.max(1) - lateral.min(1)).max() <= 2 * driving.MAX_LATERAL


def test_a_drive_that_never_fits(tmp_path):
    circle = drive(np.ones(40), np.full(40, 0.5))  # a 2 m circle
    write_odometry_poses(tmp_path / "circle.txt", circle)
    with pytest.raises(UserError, match=r"trajectory file .*circle.txt \(41 poses\) has no window of 3 consecutive"):
        driving.load_pairs("train", height=32, width=96, sequences=1, num_frames=3, data_dir=str(tmp_path),
                           trajectory=str(tmp_path / "circle.txt"))
    falling = np.tile(np.eye(4), (10, 1, 1))
    falling[:, 1, 3] = np.arange(10)  # along the camera's y, down: no way along a street
    with pytest.raises(UserError, match=r"the trajectory \(10 poses\) has no window of 8 consecutive"):
        driving.street_windows(falling, 8)
    write_odometry_poses(tmp_path / "short.txt", drive(np.ones(3), np.zeros(3)))
    with pytest.raises(UserError, match=r"short.txt \(4 poses\) has no window of 5 consecutive"):
        driving.load_pairs("train", height=32, width=96, sequences=1, num_frames=5, data_dir=str(tmp_path),
                           trajectory=str(tmp_path / "short.txt"))


def test_the_cache_is_keyed_by_the_poses(tmp_path, wavy):
    """The config name carries a hash of the poses: another drive renders anew, the same poses (even
    written with other digits) read the same cache."""
    options = dict(height=32, width=96, sequences=1, num_frames=3, data_dir=str(tmp_path), verbose=False)
    write_odometry_poses(tmp_path / "a.txt", wavy)
    write_odometry_poses(tmp_path / "b.txt", drive(np.full(30, 1.2), np.zeros(30)))
    (tmp_path / "a_again.txt").write_text((tmp_path / "a.txt").read_text().replace("e+00", "E+00"))
    plain = driving.load_pairs("train", **options)
    first = driving.load_pairs("train", trajectory=str(tmp_path / "a.txt"), **options)
    other = driving.load_pairs("train", trajectory=str(tmp_path / "b.txt"), **options)
    again = driving.load_pairs("train", trajectory=str(tmp_path / "a_again.txt"), **options)
    names = sorted(path.name for path in (tmp_path / "driving_world").iterdir())
    assert len(names) == 3 and names[0] == "32x96_f3_s0_t1_m0_e0"
    assert all(name.startswith("32x96_f3_s0_t1_m0_e0_p") and len(name) == len(names[0]) + 14 for name in names[1:])
    np.testing.assert_allclose(other["translation"], [[0.0, 0.0, -1.2]] * 2, atol=1e-6)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.allclose(plain["translation"], first["translation"])
