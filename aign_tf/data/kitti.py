"""KITTI files: raw drives for structure from motion (`--dataset=kitti`) and odometry ground-truth
poses (`--trajectory`, read by `aign_tf.data.driving`).

Raw drives: the "synced+rectified" archives of one or more days, and each day's calibration archive,
unpacked under one directory ``data_dir``:

    data_dir/2011_09_26/calib_cam_to_cam.txt    P_rect_02, S_rect_02, R_rect_00 (among others)
    data_dir/2011_09_26/calib_imu_to_velo.txt   R, T: IMU -> Velodyne
    data_dir/2011_09_26/calib_velo_to_cam.txt   R, T: Velodyne -> camera 0 (unrectified)
    data_dir/2011_09_26/2011_09_26_drive_0001_sync/image_02/data/0000000000.png ...   left colour camera
    data_dir/2011_09_26/2011_09_26_drive_0001_sync/oxts/data/0000000000.txt ...       GPS/IMU of each frame

A calibration file holds lines ``KEY: v1 v2 ...`` (matrices row-major; lines whose values are not
numbers, such as ``calib_time``, are skipped). An OXTS file holds one line of 30 numbers: lat, lon
(degrees), alt (metres), roll, pitch, yaw (radians), then velocities, accelerations and flags.

Camera: the rectified left colour camera ("camera 2"): f_x = P[0, 0], f_y = P[1, 1], c_x = P[0, 2],
c_y = P[1, 2] of P_rect_02, image size S_rect_02 (width, height); frames are resized to the
requested size without cropping (area-averaged), the camera with them (`frames.Intrinsics.resized`).
Every drive is a sequence; one model has one camera, so the days' cameras must agree at that size
(within `CAMERA_TOLERANCE` pixels).

Poses, as the KITTI devkit (convertOxtsToPose) and pykitti compute them: the IMU's position is the
Mercator projection of (lat, lon) scaled by the cosine of the drive's first latitude (x east, y north,
metres, earth radius `EARTH_RADIUS`) and z = alt, taken relative to the first frame; its orientation
(IMU axes: x forward, y left, z up) is Rz(yaw) @ Ry(pitch) @ Rx(roll). Camera 2's world-to-camera
matrix is then ``offset @ R_rect_00 @ velo_to_cam @ imu_to_velo @ inverse(imu_to_world)``, where
``offset`` adds P_rect_02[0, 3] / P_rect_02[0, 0] to x: camera 2's centre lies at
x = -P[0, 3] / P[0, 0] (6 cm to the left) in rectified camera 0's frame. `load_pairs` gives the pairs
of consecutive frames of every drive with their relative motion (X2 = R X1 + T, metres) and no depth:
KITTI raw has none that is dense.

Odometry poses (the KITTI odometry benchmark's ground truth, e.g. ``poses/00.txt``): one line per frame
(10 frames a second), 12 numbers: the row-major 3x4 matrix [R | t] taking camera-0 coordinates of
that frame to the world (the first frame's camera), metres.
"""
from __future__ import annotations

import math
import os
import re

import numpy as np

from aign_tf.data import frames
from aign_tf.errors import UserError

CAM_TO_CAM, IMU_TO_VELO, VELO_TO_CAM = "calib_cam_to_cam.txt", "calib_imu_to_velo.txt", "calib_velo_to_cam.txt"
DATE = re.compile(r"^\d{4}_\d{2}_\d{2}$")
DRIVE = re.compile(r"_drive_\d+_sync$")
EARTH_RADIUS = 6378137.0  # metres, as in the KITTI devkit
OXTS_VALUES = 30
CAMERA_TOLERANCE = 0.5  # pixels: the largest difference in focal length or principal point between days
ROTATION_TOLERANCE = 1e-3  # of |R R^T - I|, for rotations written with a few digits
LAYOUT_HINT = ("unpack the raw archives as DIR/YYYY_MM_DD/calib_*.txt and "
               "DIR/YYYY_MM_DD/YYYY_MM_DD_drive_NNNN_sync/{image_02,oxts}/data")
FRAME_EXPECTED = "an intact PNG frame of a KITTI raw drive; re-extract it"


def read_calibration(path: str, keys: dict[str, int]) -> dict[str, np.ndarray]:
    """{key: float64 [count]} for each key of `keys` ({key: count of numbers}) in the KITTI
    calibration file at `path`; UserError naming the file if it is missing or unreadable or a key is
    missing, does not hold `count` finite numbers, or is a rotation ("R...") that is not one."""
    if not os.path.isfile(path):
        raise UserError(f"KITTI calibration file {path} is missing: {LAYOUT_HINT}")
    lines = [line.partition(":") for line in frames.read_text(path, "a KITTI calibration text file").splitlines()]
    texts = {key.strip(): values for key, _, values in lines}
    calibration = {}
    for key, count in keys.items():
        if key not in texts:
            raise UserError(f"KITTI calibration file {path} has no line '{key}: ...' ({count} numbers): "
                            "use the calibration archive of the drive's day")
        values = frames.numbers(texts[key])
        if values.shape != (count,) or not np.isfinite(values).all() or (
                key.startswith("R") and not _is_rotation(values.reshape(3, 3))):
            kind = "a rotation matrix" if key.startswith("R") else "finite numbers"
            raise UserError(f"KITTI calibration file {path}: {key} must hold {count} numbers ({kind}), got "
                            f"{texts[key].strip()[:60]!r}; re-extract the file")
        calibration[key] = values
    return calibration


def _is_rotation(matrix: np.ndarray) -> bool:
    return bool(np.abs(matrix @ matrix.T - np.eye(3)).max() < ROTATION_TOLERANCE and np.linalg.det(matrix) > 0)


def rectified_camera(calibration_path: str) -> frames.Intrinsics:
    """Camera 2 of the rectified frames at their own size, from P_rect_02 and S_rect_02 of the
    calib_cam_to_cam.txt file at `calibration_path`."""
    calibration = read_calibration(calibration_path, {"P_rect_02": 12, "S_rect_02": 2})
    projection, (width, height) = calibration["P_rect_02"].reshape(3, 4), calibration["S_rect_02"]
    if projection[0, 0] <= 0 or projection[1, 1] <= 0 or width < 1 or height < 1 or width % 1 or height % 1:
        raise UserError(f"KITTI calibration file {calibration_path}: P_rect_02 needs positive focal lengths "
                        f"(P[0, 0], P[1, 1]) and S_rect_02 a positive whole width and height; re-extract the file")
    (fx, _, cx, _), (_, fy, cy, _), _ = projection.tolist()
    return frames.Intrinsics(int(height), int(width), (fx, fy), (cx, cy))


def _rigid(path: str) -> np.ndarray:
    """[4, 4] the rigid transformation (R, T) of a calib_imu_to_velo.txt or calib_velo_to_cam.txt file."""
    calibration = read_calibration(path, {"R": 9, "T": 3})
    matrix = np.eye(4)
    matrix[:3, :3], matrix[:3, 3] = calibration["R"].reshape(3, 3), calibration["T"]
    return matrix


def imu_to_camera(day_dir: str) -> np.ndarray:
    """[4, 4] IMU -> rectified camera 2 coordinates, from the three calibration files of a day."""
    calibration = read_calibration(os.path.join(day_dir, CAM_TO_CAM), {"P_rect_02": 12, "R_rect_00": 9})
    projection = calibration["P_rect_02"].reshape(3, 4)
    rectify, offset = np.eye(4), np.eye(4)
    rectify[:3, :3] = calibration["R_rect_00"].reshape(3, 3)
    offset[0, 3] = projection[0, 3] / projection[0, 0]
    velo_to_cam, imu_to_velo = _rigid(os.path.join(day_dir, VELO_TO_CAM)), _rigid(os.path.join(day_dir, IMU_TO_VELO))
    return offset @ rectify @ velo_to_cam @ imu_to_velo


def read_oxts(path: str) -> np.ndarray:
    """float64 [30]: the OXTS record of one frame."""
    if not os.path.isfile(path):
        raise UserError(f"OXTS file {path} is missing: every image_02 frame needs the oxts/data file of its "
                        "number; unpack the drive's _sync archive whole")
    text = frames.read_text(path, "an OXTS text file")
    record = frames.numbers(text)
    if record.shape != (OXTS_VALUES,) or not np.isfinite(record).all() or abs(record[0]) >= 90:
        raise UserError(f"{path} is not an OXTS record: expected one line of {OXTS_VALUES} finite numbers "
                        f"(lat lon alt roll pitch yaw ..., |lat| < 90), got {text.strip()[:60]!r}; re-extract it")
    return record


def _axis_rotations(angles: np.ndarray, axis: int) -> np.ndarray:
    """[F, 3, 3] rotations by `angles` [F] (radians) about `axis` (0 = x, 1 = y, 2 = z), counter-clockwise
    seen from its positive end (Rx, Ry, Rz of `aign_tf.render.camera`)."""
    i, j = {0: (1, 2), 1: (2, 0), 2: (0, 1)}[axis]
    rotations = np.tile(np.eye(3), (len(angles), 1, 1))
    rotations[:, i, i] = rotations[:, j, j] = np.cos(angles)
    rotations[:, j, i], rotations[:, i, j] = np.sin(angles), -np.sin(angles)
    return rotations


def imu_to_world(oxts: np.ndarray) -> np.ndarray:
    """[F, 4, 4] IMU -> world matrices of a drive's OXTS records [F, 30] (see the module docstring)."""
    latitude, longitude = np.radians(oxts[:, 0]), np.radians(oxts[:, 1])
    altitude, roll, pitch, yaw = oxts[:, 2:6].T
    scale = math.cos(latitude[0])
    position = np.stack([scale * EARTH_RADIUS * longitude,
                         scale * EARTH_RADIUS * np.log(np.tan(np.pi / 4 + latitude / 2)), altitude], axis=-1)
    matrices = np.tile(np.eye(4), (len(oxts), 1, 1))
    matrices[:, :3, :3] = _axis_rotations(yaw, 2) @ _axis_rotations(pitch, 1) @ _axis_rotations(roll, 0)
    matrices[:, :3, 3] = position - position[0]
    return matrices


def drives(data_dir: str) -> list[tuple[str, str]]:
    """(day directory, drive directory) of every drive under `data_dir`, sorted by day and drive."""
    if not os.path.isdir(data_dir):
        raise UserError(f"KITTI raw directory {data_dir} does not exist: {LAYOUT_HINT}, and pass DIR as --data_dir")
    found = []
    for day in sorted(name for name in os.listdir(data_dir) if DATE.match(name)):
        day_dir = os.path.join(data_dir, day)
        if os.path.isdir(day_dir):
            found += [(day_dir, os.path.join(day_dir, name)) for name in sorted(os.listdir(day_dir))
                      if DRIVE.search(name) and os.path.isdir(os.path.join(day_dir, name))]
    if not found:
        raise UserError(f"KITTI raw directory {data_dir} holds no drive (YYYY_MM_DD/YYYY_MM_DD_drive_NNNN_sync): "
                        f"{LAYOUT_HINT}")
    return found


def camera(data_dir: str, height: int, width: int) -> frames.Intrinsics:
    """The camera of the drives under `data_dir` for frames resized to height x width: that of the
    first day, which every other day's must match within CAMERA_TOLERANCE pixels."""
    frames.check_frame_size(height, width)
    paths = list(dict.fromkeys(os.path.join(day_dir, CAM_TO_CAM) for day_dir, _ in drives(data_dir)))
    first = rectified_camera(paths[0]).resized(height, width)
    for path in paths[1:]:
        other = rectified_camera(path).resized(height, width)
        difference = np.abs(np.subtract(first.focal + first.principal_point, other.focal + other.principal_point)).max()
        if difference > CAMERA_TOLERANCE:
            raise UserError(f"the cameras of {paths[0]} and {path} differ by {difference:.2f} pixels at "
                            f"{height}x{width} (more than {CAMERA_TOLERANCE}): a model has one camera; give a "
                            "--data_dir holding one day's folder")
    return first


def load_pairs(data_dir: str, *, height: int, width: int) -> dict:
    """The pairs of consecutive frames of every drive under `data_dir` (`drives` order; `sequence`
    counts the drives), resized to height x width, with camera 2's relative motion and no depth."""
    frames.check_frame_size(height, width)
    return frames.concat_pairs([_drive_pairs(day_dir, drive_dir, index, height, width)
                                for index, (day_dir, drive_dir) in enumerate(drives(data_dir))])


def _drive_pairs(day_dir: str, drive_dir: str, index: int, height: int, width: int) -> dict:
    image_dir = os.path.join(drive_dir, "image_02", "data")
    if not os.path.isdir(image_dir):
        raise UserError(f"KITTI drive {drive_dir} has no image_02/data folder (the left colour camera's frames): "
                        "unpack the drive's _sync archive whole")
    paths = frames.frame_files(image_dir)
    if len(paths) < 2:
        raise UserError(f"{image_dir} holds {len(paths)} PNG frame(s): a drive needs at least 2 to make a pair")
    native = rectified_camera(os.path.join(day_dir, CAM_TO_CAM))
    with frames.open_image(paths[0], FRAME_EXPECTED) as image:
        if image.size != (native.width, native.height):
            raise UserError(f"{paths[0]} is {image.size[0]}x{image.size[1]} pixels but S_rect_02 of "
                            f"{os.path.join(day_dir, CAM_TO_CAM)} says {native.width}x{native.height}: use the "
                            "synced and rectified frames (the _sync archives) of that day")
    stems = [os.path.splitext(os.path.basename(path))[0] for path in paths]
    oxts = np.stack([read_oxts(os.path.join(drive_dir, "oxts", "data", stem + ".txt")) for stem in stems])
    world_to_camera = imu_to_camera(day_dir) @ np.linalg.inv(imu_to_world(oxts))
    return frames.sequence_pairs(frames.read_frames(paths, height, width, FRAME_EXPECTED), None, world_to_camera,
                                 index)


def odometry_pose_line(camera_to_world: np.ndarray) -> str:
    """One line of a KITTI odometry pose file (`read_odometry_poses`): the 12 numbers of the 3x4 top of a
    camera-to-world matrix, row by row."""
    return " ".join(f"{value:.9g}" for value in camera_to_world[:3].reshape(-1))


def read_odometry_poses(path: str) -> np.ndarray:
    """float64 [N, 4, 4] camera-to-world matrices of a KITTI odometry pose file (blank lines skipped)."""
    if not os.path.isfile(path):
        raise UserError(f"trajectory file {path} does not exist: pass a KITTI odometry pose file (one line per "
                        "frame, 12 numbers: the row-major 3x4 camera-to-world matrix)")
    poses = []
    lines = frames.read_text(path, "a KITTI odometry pose text file").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        values = frames.numbers(line)
        if values.shape != (12,) or not np.isfinite(values).all() or not _is_rotation(values.reshape(3, 4)[:, :3]):
            raise UserError(f"trajectory file {path} line {number} is not a pose: expected 12 finite numbers (the "
                            f"row-major 3x4 camera-to-world matrix [R | t], R a rotation), got {line[:60]!r}")
        pose = np.eye(4)
        pose[:3] = values.reshape(3, 4)
        poses.append(pose)
    if len(poses) < 2:
        raise UserError(f"trajectory file {path} holds {len(poses)} pose(s): a trajectory needs at least 2")
    return np.stack(poses)
