"""The KITTI raw reader (aign_tf.data.kitti) and the frames-folder reader (aign_tf.data.video) on tiny
files written here in the real formats: camera motion from OXTS records of hand-made drives, intrinsics
resized by hand, and damaged files named in one line."""
import numpy as np
import pytest
from PIL import Image

from aign_tf.data import kitti, video
from aign_tf.errors import UserError
from tests.numpy_reference import rot_x, rot_y, rot_z
from tests.testing import KITTI_P_RECT_02, KITTI_SIZE, KITTI_TO_CAMERA_AXES, kitti_frame, north_east_records
from tests.testing import oxts_line, write_frames_folder
from tests.testing import write_kitti_day, write_kitti_drive, write_kitti_raw

HEIGHT, WIDTH = 32, 64
# KITTI 2011_09_26's calibration as written in calib_*.txt.
REAL_R_RECT_00 = np.array([9.999239e-01, 9.837760e-03, -7.445048e-03, -9.869795e-03, 9.999421e-01, -4.278459e-03,
                           7.402527e-03, 4.351614e-03, 9.999631e-01]).reshape(3, 3)
REAL_VELO_TO_CAM = (np.array([7.533745e-03, -9.999714e-01, -6.166020e-04, 1.480249e-02, 7.280733e-04, -9.998902e-01,
                              9.998621e-01, 7.523790e-03, 1.480755e-02]).reshape(3, 3),
                    (-4.069766e-03, -7.631618e-02, -2.717806e-01))
REAL_IMU_TO_VELO = (np.array([9.999976e-01, 7.553071e-04, -2.035826e-03, -7.854027e-04, 9.998898e-01, -1.482298e-02,
                              2.024406e-03, 1.482454e-02, 9.998881e-01]).reshape(3, 3),
                    (-8.086759e-01, 3.195559e-01, -7.997231e-01))
NO_LEVER_ARMS = dict(p_rect_02=[[72.0, 0, 60, 0], [0, 72.0, 18, 0], [0, 0, 1, 0]], imu_to_velo=(np.eye(3), (0, 0, 0)),
                     velo_to_cam=(KITTI_TO_CAMERA_AXES, (0, 0, 0)))


def load(root):
    return kitti.load_pairs(str(root), height=HEIGHT, width=WIDTH)


def motion(tmp_path, steps, yaw=np.pi / 2, **calibration):
    """(rotation, translation) of the pairs of one drive through `steps` [(north, east) metres]."""
    write_kitti_drive(write_kitti_day(tmp_path, **calibration), north_east_records(steps, yaw))
    pairs = load(tmp_path)
    return pairs["rotation"].astype(np.float64), pairs["translation"].astype(np.float64)


def test_driving_north_facing_north_moves_the_camera_forward(tmp_path):
    """1 m north per frame, heading north (yaw 90 degrees): X2 = X1 - (0, 0, 1) in camera 2 whatever the
    lever arms of the calibration."""
    write_kitti_raw(tmp_path)
    pairs = load(tmp_path)
    assert set(pairs) == {"image1", "image2", "rotation", "translation", "sequence"}  # no depth
    assert pairs["image1"].shape == (3, HEIGHT, WIDTH, 3) and pairs["image1"].dtype == np.uint8
    np.testing.assert_array_equal(pairs["sequence"], [0, 0, 0])
    np.testing.assert_allclose(pairs["rotation"], np.broadcast_to(np.eye(3), (3, 3, 3)), atol=1e-6)
    np.testing.assert_allclose(pairs["translation"], np.broadcast_to([0.0, 0.0, -1.0], (3, 3)), atol=1e-5)
    # Frame k's blue channel is 40 k, unchanged by area resampling; the red gradient survives.
    np.testing.assert_array_equal(pairs["image1"][..., 2], np.full((3, HEIGHT, WIDTH), [[[0]], [[40]], [[80]]]))
    np.testing.assert_array_equal(pairs["image2"][:, 0, 0, 2], [40, 80, 120])
    assert pairs["image1"][0, 5, 0, 0] < 5 and pairs["image1"][0, 5, -1, 0] > 250


def test_driving_east_and_sideways(tmp_path):
    # Heading east (yaw 0) and moving 1 m east: forward again.
    _, translation = motion(tmp_path / "east", [(0.0, 0.0), (0.0, 1.0)], yaw=0.0)
    np.testing.assert_allclose(translation, [[0.0, 0.0, -1.0]], atol=1e-5)
    # Heading east and moving 1 m north: the car slides to its left, so the scene moves right.
    rotation, translation = motion(tmp_path / "north", [(0.0, 0.0), (1.0, 0.0)], yaw=0.0)
    np.testing.assert_allclose(rotation, [np.eye(3)], atol=1e-6)
    np.testing.assert_allclose(translation, [[1.0, 0.0, 0.0]], atol=1e-5)


def test_driving_along_a_tilted_nose(tmp_path):
    """KITTI's dataformat: yaw 0 = east, counter-clockwise; pitch positive = front down; roll positive =
    left side up. A car so tilted, moving 1 m along its nose (east, north, up) = (cos yaw cos pitch,
    sin yaw cos pitch, -sin pitch), moves its camera straight forward."""
    yaw, pitch, roll = 2.0, 0.1, 0.05
    nose = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), -np.sin(pitch)])
    records = north_east_records([(0.0, 0.0), (nose[1], nose[0])], yaw)
    records = [(lat, lon, alt + nose[2] * k, roll, pitch, yaw) for k, (lat, lon, alt, _, _, _) in enumerate(records)]
    write_kitti_drive(write_kitti_day(tmp_path), records)
    pairs = load(tmp_path)
    np.testing.assert_allclose(pairs["rotation"][0], np.eye(3), atol=1e-6)
    np.testing.assert_allclose(pairs["translation"][0], [0.0, 0.0, -1.0], atol=1e-5)


@pytest.mark.parametrize("angle, rotation", [(3, rot_z(-0.1)), (4, rot_x(0.1)), (5, rot_y(0.1))],
                         ids=["left_side_up", "front_down", "turn_left"])
def test_tilting_in_place(tmp_path, angle, rotation):
    """Camera 2 (x right, y down, z forward) with no lever arms: the left side up turns the image
    clockwise, X2 = Rz(-a) X1; the front down pitches the optical axis down, X2 = Rx(a) X1; a left turn
    moves a point ahead to the right, X2 = Ry(a) X1."""
    records = [list(record) for record in north_east_records([(0.0, 0.0)] * 2, yaw=0.7)]
    records[1][angle] += 0.1
    write_kitti_drive(write_kitti_day(tmp_path, **NO_LEVER_ARMS), records)
    pairs = load(tmp_path)
    np.testing.assert_allclose(pairs["rotation"][0], rotation, atol=1e-6)
    np.testing.assert_allclose(pairs["translation"][0], [0.0, 0.0, 0.0], atol=1e-6)


def test_camera_2_sits_left_of_the_imu_axis_it_turns_about(tmp_path):
    """Only P_rect_02's x offset as lever arm: camera 2's centre is b = P[0, 3] / P[0, 0] to the left of
    the turning axis, so turning left by a about it moves the centre back and right by b sin a, b (1 - cos a):
    X2 = Ry(a) (X1 - c) with c the centre's displacement in camera-1 coordinates."""
    baseline, angle = 0.5, 0.2
    day = write_kitti_day(tmp_path, **{**NO_LEVER_ARMS, "p_rect_02": [[72.0, 0, 60, 72.0 * baseline], [0, 72.0, 18, 0],
                                                                      [0, 0, 1, 0]]})
    records = north_east_records([(0.0, 0.0)] * 2)
    records[1] = records[1][:5] + (records[1][5] + angle,)
    write_kitti_drive(day, records)
    pairs = load(tmp_path)
    centre_shift = np.array([baseline * (1 - np.cos(angle)), 0.0, -baseline * np.sin(angle)])
    np.testing.assert_allclose(pairs["translation"][0], -rot_y(angle) @ centre_shift, atol=1e-6)


def test_rectification_turns_the_camera_frame(tmp_path):
    """R_rect_00 takes camera 0's coordinates into the rectified frame: 1 m along camera 0's axis is
    -R_rect_00 @ (0, 0, 1) in camera 2."""
    rotation, translation = motion(tmp_path, [(0.0, 0.0), (1.0, 0.0)], **{**NO_LEVER_ARMS, "r_rect_00": rot_y(0.2)})
    np.testing.assert_allclose(rotation[0], np.eye(3), atol=1e-6)
    np.testing.assert_allclose(translation[0], -rot_y(0.2)[:, 2], atol=1e-5)


def test_real_calibration_keeps_a_pure_translation_rigid(tmp_path):
    """With KITTI's own (slightly rotated) calibration, driving 1 m straight ahead is no rotation and a
    1 m translation within a degree of the optical axis."""
    rotation, translation = motion(tmp_path, [(k, 0.0) for k in range(3)], r_rect_00=REAL_R_RECT_00,
                                   velo_to_cam=REAL_VELO_TO_CAM, imu_to_velo=REAL_IMU_TO_VELO)
    np.testing.assert_allclose(rotation, np.broadcast_to(np.eye(3), (2, 3, 3)), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(translation, axis=-1), [1.0, 1.0], atol=1e-5)
    assert (translation[:, 2] < -np.cos(np.radians(1.0))).all()


def test_camera_is_p_rect_02_resized_by_hand(tmp_path):
    write_kitti_raw(tmp_path)
    camera = kitti.camera(str(tmp_path), HEIGHT, WIDTH)
    # 124x37 frames to 64x32: s_x = 64 / 124, s_y = 32 / 37; c' = (c + 0.5) s - 0.5.
    assert (camera.height, camera.width) == (HEIGHT, WIDTH)
    np.testing.assert_allclose(camera.focal, (72.15377 * 64 / 124, 72.15377 * 32 / 37))
    np.testing.assert_allclose(camera.principal_point, (61.45593 * 64 / 124 - 0.5, 17.7854 * 32 / 37 - 0.5))


def test_drives_of_several_days_in_order(tmp_path):
    second_day = write_kitti_day(tmp_path, day="2011_09_28")
    write_kitti_drive(second_day, north_east_records([(2.0 * k, 0.0) for k in range(3)]), drive="0002")
    first_day = write_kitti_day(tmp_path, day="2011_09_26")
    for drive, step in (("0005", 0.5), ("0001", 0.25)):
        write_kitti_drive(first_day, north_east_records([(step * k, 0.0) for k in range(3)]), drive=drive)
    (tmp_path / "notes").mkdir()
    pairs = load(tmp_path)
    np.testing.assert_array_equal(pairs["sequence"], [0, 0, 1, 1, 2, 2])
    np.testing.assert_allclose(pairs["translation"][:, 2], [-0.25, -0.25, -0.5, -0.5, -2.0, -2.0], atol=1e-5)


def test_days_with_different_cameras_are_refused(tmp_path):
    write_kitti_raw(tmp_path)
    other = write_kitti_day(tmp_path, day="2011_09_28", p_rect_02=KITTI_P_RECT_02 * [[1], [1.05], [1]])
    write_kitti_drive(other, north_east_records([(0.0, 0.0), (1.0, 0.0)]))
    with pytest.raises(UserError, match=r"cameras of .*2011_09_26/calib_cam_to_cam.txt and .*2011_09_28/"
                                        r"calib_cam_to_cam.txt differ by [\d.]+ pixels at 32x64"):
        kitti.camera(str(tmp_path), HEIGHT, WIDTH)


# ---------------------------------------------------------------- damaged KITTI files


@pytest.fixture
def raw(tmp_path):
    """A valid KITTI raw directory of one drive of 4 frames; returns (root, drive folder)."""
    return tmp_path, write_kitti_raw(tmp_path)


@pytest.mark.parametrize("name", ["calib_cam_to_cam.txt", "calib_imu_to_velo.txt", "calib_velo_to_cam.txt"])
def test_missing_calibration_file(raw, name):
    root, _ = raw
    (root / "2011_09_26" / name).unlink()
    with pytest.raises(UserError, match=f"calibration file .*2011_09_26/{name} is missing"):
        load(root)


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace("P_rect_02", "P_rect_03"), "has no line 'P_rect_02: ...'"),
    (lambda text: text.replace("R_rect_00: 1.0", "R_rect_00: 2.0"), "R_rect_00 must hold 9 numbers .a rotation"),
    (lambda text: text.replace("S_rect_02: 1.24", "S_rect_02: nan 1.24"), "S_rect_02 must hold 2 numbers"),
])
def test_damaged_calibration(raw, edit, message):
    root, _ = raw
    path = root / "2011_09_26" / "calib_cam_to_cam.txt"
    path.write_text(edit(path.read_text()))
    with pytest.raises(UserError, match=f"calib_cam_to_cam.txt.*{message}"):
        load(root)


@pytest.mark.parametrize("text", [oxts_line(49.0, 8.4, 110.0, 0.0, 0.0, 1.0).rsplit(" ", 7)[0],  # truncated
                                  oxts_line(49.0, 8.4, float("nan"), 0.0, 0.0, 1.0),
                                  oxts_line(95.0, 8.4, 110.0, 0.0, 0.0, 1.0), ""])
def test_damaged_oxts_record(raw, text):
    root, drive = raw
    path = drive / "oxts" / "data" / "0000000002.txt"
    path.write_text(text + "\n")
    with pytest.raises(UserError, match=r"oxts/data/0000000002.txt is not an OXTS record: expected one line of 30"):
        load(root)


def test_missing_oxts_record(raw):
    root, drive = raw
    (drive / "oxts" / "data" / "0000000003.txt").unlink()
    with pytest.raises(UserError, match="OXTS file .*0000000003.txt is missing"):
        load(root)


def test_frame_of_another_size(raw):
    root, drive = raw
    Image.fromarray(kitti_frame(2, (120, 37))).save(drive / "image_02" / "data" / "0000000002.png")
    with pytest.raises(UserError, match=r"0000000002.png is 120x37 pixels but .*0000000000.png is 124x37"):
        load(root)


def test_frames_not_of_the_calibrated_size(raw):
    root, drive = raw
    for k in range(4):
        Image.fromarray(kitti_frame(k, (62, 18))).save(drive / "image_02" / "data" / f"{k:010d}.png")
    with pytest.raises(UserError, match=r"0000000000.png is 62x18 pixels but S_rect_02 of .* says 124x37"):
        load(root)


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_truncated_png(raw, cut):
    root, drive = raw
    path = drive / "image_02" / "data" / "0000000001.png"
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(UserError, match=r"cannot read .*0000000001.png \(.*\): expected an intact PNG frame"):
        load(root)


def test_a_drive_of_one_frame(raw):
    root, drive = raw
    for k in range(1, 4):
        (drive / "image_02" / "data" / f"{k:010d}.png").unlink()
    with pytest.raises(UserError, match=r"image_02/data holds 1 PNG frame\(s\): a drive needs at least 2"):
        load(root)


def test_no_drives(tmp_path):
    with pytest.raises(UserError, match="KITTI raw directory .*nowhere does not exist"):
        load(tmp_path / "nowhere")
    write_kitti_day(tmp_path)
    with pytest.raises(UserError, match="holds no drive"):
        load(tmp_path)


def test_every_message_is_one_line(raw):
    root, drive = raw
    (drive / "oxts" / "data" / "0000000001.txt").write_text("1 2\n3 4\n")
    with pytest.raises(UserError) as error:
        load(root)
    assert "\n" not in str(error.value) and "0000000001.txt" in str(error.value)


# ---------------------------------------------------------------- a frames folder


def test_frames_folder_with_intrinsics_txt(tmp_path):
    write_frames_folder(tmp_path, count=4, extension="jpg")
    (tmp_path / "notes.md").write_text("not a frame")
    pairs = video.load_pairs(str(tmp_path), height=HEIGHT, width=WIDTH)
    assert set(pairs) == {"image1", "image2", "sequence"}
    assert pairs["image1"].shape == (3, HEIGHT, WIDTH, 3)
    np.testing.assert_allclose(pairs["image2"][:, 10, 10, 2], [40, 80, 120], atol=3)  # JPEG
    camera = video.camera(str(tmp_path), HEIGHT, WIDTH)
    # 80x48 frames to 64x32: f = (50 * 0.8, 45 * 2 / 3), c = ((39.5 + 0.5) * 0.8 - 0.5, (23.5 + 0.5) * 2 / 3 - 0.5).
    np.testing.assert_allclose(camera.focal, (40.0, 30.0))
    np.testing.assert_allclose(camera.principal_point, (31.5, 15.5))


def test_frames_are_sorted_by_name(tmp_path):
    paths = write_frames_folder(tmp_path, count=3)
    paths[0].rename(tmp_path / "z.png")  # frame 0 now comes last
    pairs = video.load_pairs(str(tmp_path), height=HEIGHT, width=WIDTH)
    np.testing.assert_array_equal(pairs["image1"][:, 0, 0, 2], [40, 80])
    np.testing.assert_array_equal(pairs["image2"][:, 0, 0, 2], [80, 0])


def test_frames_folder_with_kitti_calibration(tmp_path):
    write_frames_folder(tmp_path, size=KITTI_SIZE, intrinsics=None)
    calibration = write_kitti_day(tmp_path / "day") / "calib_cam_to_cam.txt"
    (tmp_path / "calib_cam_to_cam.txt").write_text(calibration.read_text())
    camera = video.camera(str(tmp_path), HEIGHT, WIDTH)
    np.testing.assert_allclose(camera.focal, (72.15377 * 64 / 124, 72.15377 * 32 / 37))
    write_frames_folder(tmp_path / "small", size=(80, 48), intrinsics=None)
    (tmp_path / "small" / "calib_cam_to_cam.txt").write_text((tmp_path / "calib_cam_to_cam.txt").read_text())
    with pytest.raises(UserError, match=r"000000.png is 80x48 pixels but S_rect_02 of .* says 124x37"):
        video.camera(str(tmp_path / "small"), HEIGHT, WIDTH)


@pytest.mark.parametrize("text", ["50 45 39.5", "50 45 39.5 23.5 1", "0 45 39.5 23.5", "fx fy cx cy", "50 nan 1 1"])
def test_bad_intrinsics_txt(tmp_path, text):
    write_frames_folder(tmp_path, intrinsics=text)
    with pytest.raises(UserError, match="intrinsics.txt must hold 4 numbers 'fx fy cx cy'"):
        video.camera(str(tmp_path), HEIGHT, WIDTH)


def test_frames_folder_errors(tmp_path):
    with pytest.raises(UserError, match="frames directory .*missing does not exist"):
        video.load_pairs(str(tmp_path / "missing"), height=HEIGHT, width=WIDTH)
    paths = write_frames_folder(tmp_path / "one", count=1)
    with pytest.raises(UserError, match=r"holds 1 PNG or JPEG frame\(s\): a video needs at least 2"):
        video.load_pairs(str(tmp_path / "one"), height=HEIGHT, width=WIDTH)
    write_frames_folder(tmp_path / "none", intrinsics=None)
    with pytest.raises(UserError, match="has no intrinsics.txt .* and no calib_cam_to_cam.txt"):
        video.camera(str(tmp_path / "none"), HEIGHT, WIDTH)
    paths = write_frames_folder(tmp_path / "sizes")
    Image.fromarray(kitti_frame(2, (80, 40))).save(paths[2])
    with pytest.raises(UserError, match=r"000002.png is 80x40 pixels but .*000000.png is 80x48"):
        video.load_pairs(str(tmp_path / "sizes"), height=HEIGHT, width=WIDTH)
    paths = write_frames_folder(tmp_path / "cut", extension="jpg")
    paths[1].write_bytes(paths[1].read_bytes()[:-40])
    with pytest.raises(UserError, match=r"cannot read .*000001.jpg \(.*\): expected an intact PNG or JPEG frame"):
        video.load_pairs(str(tmp_path / "cut"), height=HEIGHT, width=WIDTH)
    paths[1].write_bytes(b"GIF89a not a frame")
    with pytest.raises(UserError, match=r"000001.jpg \(not a PNG or JPEG file\)"):
        video.load_pairs(str(tmp_path / "cut"), height=HEIGHT, width=WIDTH)


def test_odometry_pose_lines_read_back(tmp_path):
    from scipy.spatial.transform import Rotation
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler("xyz", [0.1, -0.2, 0.3]).as_matrix()
    pose[:3, 3] = [1.5, -2.0, 30.25]
    path = tmp_path / "poses.txt"
    path.write_text(kitti.odometry_pose_line(np.eye(4)) + "\n" + kitti.odometry_pose_line(pose) + "\n")
    np.testing.assert_allclose(kitti.read_odometry_poses(str(path)), [np.eye(4), pose], atol=1e-8)
