"""Helpers shared by several test modules."""
import functools
import importlib.util
import io

import numpy as np
from PIL import Image

from tests.numpy_reference import rot_y


# -- Virtual KITTI 1.3.1 files (tests/data/test_vkitti.py, tests/tasks/test_sfm.py) ------------------

VKITTI_FULL_H, VKITTI_FULL_W = 375, 1242
VKITTI_YAW = 0.05  # radians the camera turns before each step
VKITTI_SKY_ROWS = 3  # the top rows of every depth map are sky


def vkitti_world_to_camera(count, step, yaw):
    """[count, 4, 4]: frame k turns by `yaw` about y, then moves `step` metres along its new optical axis."""
    out, centre = [], np.zeros(3)
    for k in range(count):
        rotation = rot_y(k * yaw)  # camera to world
        if k:
            centre = centre + step * rotation[:, 2]
        matrix = np.eye(4)
        matrix[:3, :3] = rotation.T
        matrix[:3, 3] = -rotation.T @ centre
        out.append(matrix)
    return np.stack(out)


def vkitti_depth_cm(k):
    """uint16 [375, 1242] depth of frame k in cm: depends on row, column and frame; sky at the top."""
    rows, columns = np.mgrid[:VKITTI_FULL_H, :VKITTI_FULL_W]
    depth = 100 + 40 * columns + rows + 1000 * k
    depth[:VKITTI_SKY_ROWS] = 65535
    return depth.astype(np.uint16)


@functools.lru_cache(maxsize=None)
def _vkitti_rgb_png(k):
    """PNG bytes of frame k: smooth gradients in red and green, blue = 40 * k."""
    rows, columns = np.mgrid[:VKITTI_FULL_H, :VKITTI_FULL_W]
    rgb = np.stack([columns * 255 // (VKITTI_FULL_W - 1), rows * 255 // (VKITTI_FULL_H - 1),
                    np.full_like(rows, 40 * k)], -1)
    return _png_bytes(Image.fromarray(rgb.astype(np.uint8)))


@functools.lru_cache(maxsize=None)
def _vkitti_depth_png(k):
    return _png_bytes(Image.fromarray(vkitti_depth_cm(k)))


def _png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def write_vkitti_variation(root, sequence, variation, count, step=0.8, yaw=VKITTI_YAW):
    """Writes `count` frames of (sequence, variation) under the directory `root` (a pathlib.Path) in
    the VKITTI 1.3.1 layout."""
    rgb_dir = root / "vkitti_1.3.1_rgb" / sequence / variation
    depth_dir = root / "vkitti_1.3.1_depthgt" / sequence / variation
    rgb_dir.mkdir(parents=True)
    depth_dir.mkdir(parents=True)
    for k in range(count):
        (rgb_dir / f"{k:05d}.png").write_bytes(_vkitti_rgb_png(k))
        (depth_dir / f"{k:05d}.png").write_bytes(_vkitti_depth_png(k))
    poses = vkitti_world_to_camera(count, step, yaw)
    lines = ["frame r1,1 r1,2 r1,3 t1 r2,1 r2,2 r2,3 t2 r3,1 r3,2 r3,3 t3 0 0 0 1"]
    lines += [f"{k} " + " ".join(repr(float(v)) for v in pose.ravel()) for k, pose in enumerate(poses)]
    extrinsics = root / "vkitti_1.3.1_extrinsicsgt" / f"{sequence}_{variation}.txt"
    extrinsics.parent.mkdir(exist_ok=True)
    extrinsics.write_text("\n".join(lines) + "\n")


# -- KITTI raw days, odometry poses and frames folders (tests/data/test_kitti.py, test_trajectory.py,
#    tests/tasks/test_sfm_datasets.py, tests/zoo/test_sfm_data_cli.py) ---------------------------------

KITTI_SIZE = (124, 37)  # (width, height) of the written frames: KITTI's 1242x375, a tenth
KITTI_P_RECT_02 = np.array([[72.15377, 0.0, 60.95593, 4.485728], [0.0, 72.15377, 17.2854, 0.02163791],
                            [0.0, 0.0, 1.0, 0.002745884]])  # KITTI 2011_09_26's, a tenth in pixels
KITTI_TO_CAMERA_AXES = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # x fwd, y left, z up -> camera
KITTI_VELO_TO_CAM = (KITTI_TO_CAMERA_AXES, (-0.004, -0.076, -0.272))  # (R, T), offsets as in 2011_09_26
KITTI_IMU_TO_VELO = (np.eye(3), (-0.809, 0.320, -0.800))
KITTI_LATITUDE, KITTI_LONGITUDE = 49.011, 8.4235  # degrees, Karlsruhe
EARTH_RADIUS_M = 6378137.0


def _calibration_line(key, values):
    return f"{key}: " + " ".join(f"{v:.12e}" for v in np.ravel(values)) + "\n"


def write_kitti_day(root, day="2011_09_26", p_rect_02=KITTI_P_RECT_02, size=KITTI_SIZE, r_rect_00=np.eye(3),
                    velo_to_cam=KITTI_VELO_TO_CAM, imu_to_velo=KITTI_IMU_TO_VELO):
    """Writes the three calibration files of a KITTI raw day under root (a pathlib.Path); returns its folder."""
    day_dir = root / day
    day_dir.mkdir(parents=True)
    (day_dir / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\n" + _calibration_line("corner_dist", 0.0995)
        + _calibration_line("S_rect_00", size) + _calibration_line("R_rect_00", r_rect_00)
        + _calibration_line("S_rect_02", size) + _calibration_line("R_rect_02", np.eye(3))
        + _calibration_line("P_rect_02", p_rect_02))
    for name, (rotation, translation) in (("calib_velo_to_cam.txt", velo_to_cam),
                                          ("calib_imu_to_velo.txt", imu_to_velo)):
        (day_dir / name).write_text("calib_time: 25-May-2012 16:47:16\n" + _calibration_line("R", rotation)
                                    + _calibration_line("T", translation))
    return day_dir


def oxts_line(lat, lon, alt, roll, pitch, yaw):
    """One OXTS record: the six pose values, 19 motion values (zeros here) and the 5 integer flags."""
    pose = [repr(float(v)) for v in (lat, lon, alt, roll, pitch, yaw)]
    return " ".join(pose + ["0.0"] * 19 + ["0", "10", "4", "4", "4"])


def north_east_records(steps, yaw=np.pi / 2, alt=113.0):
    """OXTS pose values (lat, lon, alt, roll, pitch, yaw) of positions `steps` [(north, east) metres],
    on the Mercator projection scaled at the first latitude (inverted by hand), heading `yaw`."""
    scale = np.cos(np.radians(KITTI_LATITUDE))
    north0 = scale * EARTH_RADIUS_M * np.log(np.tan(np.pi / 4 + np.radians(KITTI_LATITUDE) / 2))
    records = []
    for north, east in steps:
        lat = np.degrees(2 * np.arctan(np.exp((north0 + north) / (scale * EARTH_RADIUS_M))) - np.pi / 2)
        lon = KITTI_LONGITUDE + np.degrees(east / (scale * EARTH_RADIUS_M))
        records.append((lat, lon, alt, 0.0, 0.0, yaw))
    return records


def kitti_frame(k, size=KITTI_SIZE):
    """uint8 [height, width, 3] frame k: red and green gradients, blue = 40 * k."""
    width, height = size
    rows, columns = np.mgrid[:height, :width]
    return np.stack([columns * 255 // (width - 1), rows * 255 // (height - 1), np.full_like(rows, 40 * k)],
                    -1).astype(np.uint8)


def write_kitti_drive(day_dir, records, drive="0001", size=KITTI_SIZE):
    """Writes a synced drive of len(records) frames (PNG frame k = `kitti_frame(k)`, OXTS record k) under
    day_dir; returns its folder."""
    drive_dir = day_dir / f"{day_dir.name}_drive_{drive}_sync"
    (drive_dir / "image_02" / "data").mkdir(parents=True)
    (drive_dir / "oxts" / "data").mkdir(parents=True)
    for k, record in enumerate(records):
        Image.fromarray(kitti_frame(k, size)).save(drive_dir / "image_02" / "data" / f"{k:010d}.png")
        (drive_dir / "oxts" / "data" / f"{k:010d}.txt").write_text(oxts_line(*record) + "\n")
    return drive_dir


def write_kitti_raw(root, frames=4):
    """A KITTI raw directory: one day, one drive heading north at 1 m per frame; returns the drive's folder."""
    return write_kitti_drive(write_kitti_day(root), north_east_records([(k, 0.0) for k in range(frames)]))


FRAMES_INTRINSICS = "50.0 45.0 39.5 23.5"  # fx fy cx cy of the 80x48 frames of `write_frames_folder`


def write_frames_folder(directory, count=4, size=(80, 48), extension="png", intrinsics=FRAMES_INTRINSICS):
    """A video as a frames folder: `count` frames named 000000.EXT ... (blue = 40 * k), and intrinsics.txt
    (none if `intrinsics` is None); returns the frame paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        paths.append(directory / f"{k:06d}.{extension}")
        Image.fromarray(kitti_frame(k, size)).save(paths[-1])
    if intrinsics is not None:
        (directory / "intrinsics.txt").write_text(intrinsics + "\n")
    return paths


def write_odometry_poses(path, camera_to_world):
    """A KITTI odometry pose file: one line of 12 numbers (row-major [R | t]) per [4, 4] matrix."""
    path.write_text("".join(" ".join(f"{v:.9e}" for v in pose[:3].ravel()) + "\n" for pose in camera_to_world))


# -- Tiny checkpointed models of every task (tests/export) --------------------------------------------

TINY_MODELS = {  # the overrides that make each task's model tiny
    "inpaint": dict(batch_size=4, width=4),
    "superres": dict(batch_size=4, width=4, blocks=1),
    "decoder_ablation": dict(batch_size=4, width=4, hidden=16),
    "pose3d": dict(batch_size=4, width=4, components=10, generator="mlp"),
    "sfm": dict(batch_size=2, width=4, frame_size="32x96"),
}


# tf2onnx and onnxruntime (the `onnx` extra, also in `test`): without them the ONNX tests are skipped.
HAVE_ONNX = all(importlib.util.find_spec(name) for name in ("tf2onnx", "onnxruntime"))
ONNX_MISSING = "tf2onnx and onnxruntime are not installed: pip install -e '.[onnx]'"


def checkpointed(task_name: str, model_dir: str, **overrides) -> tuple:
    """Writes config.json and one checkpoint of a freshly built tiny model (as training leaves them:
    model, optimizers, step 0); returns (the bound task, the model)."""
    import os

    import tensorflow as tf

    from aign_tf.zoo import registry, rundir, trainer

    task = registry.get_task(task_name, **{**TINY_MODELS[task_name], **overrides})
    os.makedirs(model_dir, exist_ok=True)
    rundir.write_config(model_dir, task.config)
    model, checkpoint = trainer.build(task)
    tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, "checkpoints"), max_to_keep=1).save(1)
    return task, model


# -- A hand-made skeleton (tests/tasks/test_pose3d_skeleton.py, tests/tasks/test_pose3d_metrics.py) --

# A T-pose in the camera convention (x right, y down, z forward; metres, pelvis at the origin)
# facing a camera that looks along +z: the person's left is +x, feet and head a little forward (-z).
T_POSE = np.array([
    [0.0, 0.0, 0.0],      # pelvis
    [-0.1, 0.05, 0.0],    # right_hip
    [-0.1, 0.47, 0.0],    # right_knee
    [-0.1, 0.88, -0.05],  # right_ankle
    [0.1, 0.05, 0.0],     # left_hip
    [0.1, 0.47, 0.0],     # left_knee
    [0.1, 0.88, -0.05],   # left_ankle
    [0.0, -0.45, 0.0],    # neck
    [0.0, -0.62, -0.03],  # head
    [0.18, -0.45, 0.0],   # left_shoulder
    [0.45, -0.45, 0.0],   # left_elbow
    [0.7, -0.45, -0.02],  # left_wrist
    [-0.18, -0.45, 0.0],  # right_shoulder
    [-0.45, -0.45, 0.0],  # right_elbow
    [-0.7, -0.45, -0.02], # right_wrist
])


# -- Options: a value other than the default for each (tests/zoo/test_cli.py, test_rundir.py) --------

# Text options whose values have a form of their own (pose3d's --image_size is a number: not these).
SPECIAL_VALUES = {"frame_size": "32x96", "image_size": "32x24", "mask": "bottom", "train_towns": "0,1", "test_towns": "4"}


def other_value(name, kind, default, choices=None, minimum=None):
    """A valid value of an option (`kind` int, float, str or bool) other than `default`."""
    if kind is str and name in SPECIAL_VALUES:
        return SPECIAL_VALUES[name]
    if choices is not None:
        return next(choice for choice in choices if choice != default)
    if kind is bool:
        return not default
    if kind is int:
        return 7 if default is None else max(default, minimum or 0) + 1
    if kind is float:
        return 0.5 if default is None else 2 * default + 0.25
    return f"other-{name}" if default is None else f"{default}-other"


def non_default_settings(task_class) -> dict:
    """{name: value} for every hyperparameter and option of `task_class`, each other than the task's
    default (for hyperparameters its `run_defaults`), all valid together."""
    from aign_tf.tasks.options import Config

    config = task_class.configure()
    settings = {}
    for declared, values in ((Config, config), (task_class.Options, config.options)):
        for field in declared.option_fields():
            kind, _ = declared.field_type(field.name)
            default = getattr(values, field.name)
            settings[field.name] = other_value(field.name, kind, default, field.metadata["choices"],
                                               field.metadata["minimum"])
            assert settings[field.name] != default, field.name
    return settings


# -- Virtual KITTI read at a small size (tests/data/test_vkitti.py, tests/data/test_bad_data.py) -----

VKITTI_HEIGHT, VKITTI_WIDTH = 64, 192


def load_vkitti(root, sequences=("0001",), **kwargs):
    from aign_tf.data import vkitti

    return vkitti.load_pairs(str(root), sequences, height=VKITTI_HEIGHT, width=VKITTI_WIDTH, **kwargs)


# -- Human3.6M files in VideoPose3D's format (tests/data/test_h36m.py, tests/data/test_bad_data.py) --

H36M_SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
H36M_LENGTHS = {"Walking": 10, "Directions 1": 7}
H36M_METADATA = {
    "layout_name": "h36m",
    "num_joints": 17,
    "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]],
}


def h36m_value_3d(subject_index, t, j, c):
    """Encodes subject, frame, marker and axis in metres (all below 20 m)."""
    return subject_index + t * 0.1 + j * 0.001 + c * 0.0001


def h36m_value_2d(camera, t, j, c):
    return 100.0 * camera + t + j * 0.01 + c * 0.001


def make_h36m_3d(lengths=H36M_LENGTHS, joints=32):
    out = {}
    for s, subject in enumerate(H36M_SUBJECTS):
        out[subject] = {}
        for action, length in lengths.items():
            t, j, c = np.meshgrid(np.arange(length), np.arange(joints), np.arange(3), indexing="ij")
            out[subject][action] = h36m_value_3d(s, t, j, c).astype(np.float32)
    return out


def make_h36m_2d(lengths=H36M_LENGTHS, extra=2, joints=17):
    out = {}
    for subject in H36M_SUBJECTS:
        out[subject] = {}
        for action, length in lengths.items():
            t, j, c = np.meshgrid(np.arange(length + extra), np.arange(joints), np.arange(2), indexing="ij")
            out[subject][action] = [h36m_value_2d(cam, t, j, c).astype(np.float32) for cam in range(4)]
    return out


def save_npz(path, **arrays):
    np.savez_compressed(path, **arrays)
    return str(path)


# -- A Human3.6M data directory with real skeletons (tests/tasks/test_pose3d_h36m.py) -----------------

H36M_ACTIONS = ("Directions 1", "Walking", "SittingDown 2")
H36M_FRAMES = 12


def h36m_camera_frame(points, subject, camera):
    """World (z up, metres) -> Human3.6M camera frame, written here with scipy's quaternions."""
    from scipy.spatial.transform import Rotation

    from aign_tf.data import h36m

    (w, x, y, z), position_mm = h36m.EXTRINSICS[subject][camera]
    return (points - np.asarray(position_mm) / 1000) @ Rotation.from_quat([x, y, z, w]).as_matrix()


def h36m_project(points, camera):
    """Pinhole projection (no lens distortion) of camera-frame points to pixels of Human3.6M camera `camera`."""
    from aign_tf.data import h36m

    intrinsics = h36m.CAMERAS[camera]
    return np.asarray(intrinsics.focal_px) * points[..., :2] / points[..., 2:] + np.asarray(intrinsics.centre_px)


def h36m_markers(clip_joints):
    """DeepMimic skeletons [T, 15, 3] (y up) -> 32 Human3.6M markers [T, 32, 3] in its world frame (z up,
    the pelvis over the origin): the 17 kept joints, spine and nose in between; the others copy the hip."""
    from aign_tf.data import h36m

    world = clip_joints @ np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # (x, y, z) -> (x, -z, y)
    world = world - np.array([1.0, 1.0, 0.0]) * world[:, :1].mean(axis=0)
    spine = (world[:, 0] + world[:, 7]) / 2
    nose = (world[:, 7] + world[:, 8]) / 2
    joints = np.concatenate([world[:, :7], spine[:, None], world[:, 7:8], nose[:, None], world[:, 8:]], axis=1)
    markers = np.repeat(joints[:, :1], h36m.NUM_JOINTS_FULL, axis=1)
    markers[:, list(h36m.H36M17_FROM_32)] = joints
    return markers.astype(np.float32)


def write_h36m_dir(directory, kinds=("gt", "cpn"), actions=H36M_ACTIONS, frames=H36M_FRAMES, cpn_noise_px=3.0):
    """A VideoPose3D data directory: each subject's sequences are DeepMimic frames (no frame used twice)
    in the Human3.6M world; the 2D files hold their projections through the real cameras (pixels, no lens
    distortion; cpn: plus Gaussian noise), 2 frames longer than the 3D. Returns the directory."""
    import os

    from aign_tf.data import deepmimic, h36m

    os.makedirs(directory, exist_ok=True)
    clips = list(deepmimic.load_clips().values())
    rng = np.random.default_rng(0)
    positions_3d, positions_2d = {}, {kind: {} for kind in kinds}
    for s, subject in enumerate(H36M_SUBJECTS):
        positions_3d[subject] = {}
        for kind in kinds:
            positions_2d[kind][subject] = {}
        for a, action in enumerate(actions):
            sequence = s * len(actions) + a  # a clip of its own, or later frames of one already used
            start = sequence // len(clips) * (frames + 2)
            joints = clips[sequence % len(clips)].joints[start:start + frames + 2]
            markers = h36m_markers(joints)
            positions_3d[subject][action] = markers[:frames]
            kept = markers[:, list(h36m.H36M17_FROM_32)].astype(np.float64)
            views = [h36m_project(h36m_camera_frame(kept, subject, c), c) for c in range(len(h36m.CAMERAS))]
            for kind in kinds:
                noise = cpn_noise_px if kind == "cpn" else 0.0
                positions_2d[kind][subject][action] = [
                    (view + rng.normal(0.0, noise, view.shape)).astype(np.float32) for view in views]
    save_npz(os.path.join(directory, h36m.FILE_3D), positions_3d=positions_3d)
    for kind in kinds:
        save_npz(os.path.join(directory, h36m.FILES_2D[kind]), positions_2d=positions_2d[kind],
                 metadata=H36M_METADATA)
    return str(directory)


# -- Image folders and ORL faces (tests/data/test_image_folders.py, tests/zoo/test_image_folders_cli.py) --

IMAGE_FORMATS = ("png", "jpg", "bmp", "pgm")  # written in turn; PGM only for grey images


def folder_pixels(label, index, size, colour=False):
    """uint8 [rows, columns] (or [..., 3]) image unique to (label, index): a gradient with an offset."""
    rows, columns = np.mgrid[:size[0], :size[1]]
    grey = (40 * label + 7 * index + 3 * rows + 5 * columns) % 256
    return np.stack([grey, 255 - grey, (grey * 3) % 256], -1).astype(np.uint8) if colour else grey.astype(np.uint8)


def write_image_folder(root, counts, size=(8, 6), colour=()):
    """Writes counts[class] images per class subfolder of `root` (a pathlib.Path; class "" = flat, in
    root itself), in IMAGE_FORMATS in turn (no PGM for the `colour` classes); returns {path: (label, pixels)}."""
    written = {}
    for label, (name, count) in enumerate(counts.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        formats = [f for f in IMAGE_FORMATS if f != "pgm"] if name in colour else IMAGE_FORMATS
        for index in range(count):
            pixels = folder_pixels(label, index, size, colour=name in colour)
            path = folder / f"{index}.{formats[index % len(formats)]}"
            Image.fromarray(pixels).save(path)
            written[str(path)] = (label, pixels)
    return written


def write_orl(root, people=(1, 2, 3, 4), photos=10, size=(112, 92)):
    """The ORL layout under `root`: sN/1.pgm ... sN/{photos}.pgm, grey, `size` rows x columns; returns
    {path: (person, pixels)}."""
    written = {}
    for person in people:
        (root / f"s{person}").mkdir(parents=True)
        for photo in range(1, photos + 1):
            pixels = folder_pixels(person, photo, size)
            path = root / f"s{person}" / f"{photo}.pgm"
            Image.fromarray(pixels).save(path)
            written[str(path)] = (person, pixels)
    return written


# -- Fashion-MNIST IDX files (tests/data/test_images.py, tests/data/test_bad_data.py) ----------------

def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x00000800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fashion_mnist(directory, rng, n_train=6, n_test=3, gz=False, train_labels=None):
    """Writes the four Fashion-MNIST IDX files and returns the arrays they hold."""
    import gzip
    import os

    from aign_tf.data import images as images_lib

    os.makedirs(directory, exist_ok=True)
    if train_labels is None:
        train_labels = np.arange(n_train) % 10
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": np.asarray(train_labels, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test, dtype=np.uint8) + 1) % 10,
    }
    for key, array in arrays.items():
        path = os.path.join(directory, images_lib.FASHION_MNIST_FILES[key])
        if gz:
            with gzip.open(path + ".gz", "wb") as f:
                f.write(idx_bytes(array))
        else:
            with open(path, "wb") as f:
                f.write(idx_bytes(array))
    return arrays


# -- DeepMimic clips (tests/data/test_deepmimic.py, tests/data/test_bad_data.py) ---------------------

def copy_deepmimic_motions(tmp_path):
    """Copies the shipped clips to `tmp_path`/motions (a pathlib.Path) and returns that directory."""
    import shutil

    from aign_tf.data import deepmimic

    directory = tmp_path / "motions"
    shutil.copytree(deepmimic.MOTIONS_DIR, directory)
    return directory


# -- Jacobian check (tests/render/test_camera.py, tests/render/test_warp.py) --------------------------

def assert_jacobians_close(function, inputs, atol=1e-6):
    """Theoretical vs numerical Jacobians of `function` at float64 `inputs`."""
    import tensorflow as tf

    theoretical, numerical = tf.test.compute_gradient(function, inputs)
    for analytic, finite_difference in zip(theoretical, numerical):
        np.testing.assert_allclose(analytic, finite_difference, atol=atol)


# -- Subprocess clusters (tests/zoo/test_multi_worker.py, tests/zoo/test_preemption.py) ---------------

def free_ports(count):
    """`count` TCP ports on 127.0.0.1 that were free a moment ago."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def communicate_all(processes, timeout=300):
    """[(stdout, stderr)] of every process; any still running afterwards (a timeout) is killed."""
    try:
        return [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


# -- BVH motion capture (tests/data/test_bvh.py, tests/tasks/test_pose3d_bvh.py) ---------------------

# CMU's BVH hierarchy (the cgspeed conversion): (name, parent, offset in CMU units); the root has 6
# channels (position, then ZYX rotation), every other joint 3 (ZYX rotation); None = an End Site.
CMU_HIERARCHY = [
    ("Hips", None, (0, 0, 0)),
    ("LHipJoint", "Hips", (0, 0, 0)), ("LeftUpLeg", "LHipJoint", (1.36, -1.79, 0.84)),
    ("LeftLeg", "LeftUpLeg", (2.45, -6.73, 0)), ("LeftFoot", "LeftLeg", (2.56, -7.04, 0)),
    ("LeftToeBase", "LeftFoot", (0.16, -0.44, 2.14)),
    ("RHipJoint", "Hips", (0, 0, 0)), ("RightUpLeg", "RHipJoint", (-1.31, -1.79, 0.84)),
    ("RightLeg", "RightUpLeg", (-2.54, -6.98, 0)), ("RightFoot", "RightLeg", (-2.57, -7.06, 0)),
    ("RightToeBase", "RightFoot", (-0.15, -0.42, 2.2)),
    ("LowerBack", "Hips", (0, 0, 0)), ("Spine", "LowerBack", (0.03, 2.04, -0.05)),
    ("Spine1", "Spine", (0.05, 2.06, -0.11)), ("Neck", "Spine1", (0, 0, 0)),
    ("Neck1", "Neck", (-0.03, 1.65, 0.01)), ("Head", "Neck1", (0.04, 1.69, -0.04)),
    ("LeftShoulder", "Neck", (0, 0, 0)), ("LeftArm", "LeftShoulder", (3.36, 1.2, 0)),
    ("LeftForeArm", "LeftArm", (4.98, 0, 0)), ("LeftHand", "LeftForeArm", (3.48, 0, 0)),
    ("RightShoulder", "Neck", (0, 0, 0)), ("RightArm", "RightShoulder", (-3.14, 1.35, 0)),
    ("RightForeArm", "RightArm", (-5.24, 0, 0)), ("RightHand", "RightForeArm", (-3.44, 0, 0)),
]
CMU_UNIT_M = 0.0254 / 0.45


def bvh_text(hierarchy, frames, frame_time, channels=None, end_sites=True):
    """A BVH file: `hierarchy` [(name, parent, offset)] in parent-first order, `frames` [F, C] channel
    values; channels[name] the joint's channel names (default: the root 6, the others ZYX rotation);
    an End Site closes every leaf when `end_sites`."""
    channels = channels or {}
    children = {}
    for name, parent, _ in hierarchy:
        children.setdefault(parent, []).append(name)
    offset = {name: o for name, _, o in hierarchy}
    lines = ["HIERARCHY"]

    def write(name, depth):
        pad = "  " * depth
        root = depth == 0
        names = channels.get(name, ["Xposition", "Yposition", "Zposition"] * root + ["Zrotation", "Yrotation",
                                                                                        "Xrotation"])
        lines.extend([f"{pad}{'ROOT' if root else 'JOINT'} {name}", pad + "{",
                      f"{pad}  OFFSET {' '.join(f'{v:.6f}' for v in offset[name])}",
                      f"{pad}  CHANNELS {len(names)} {' '.join(names)}"])
        for child in children.get(name, []):
            write(child, depth + 1)
        if end_sites and not children.get(name):
            lines.extend([f"{pad}  End Site", pad + "  {", f"{pad}    OFFSET 0.000000 1.000000 0.000000", pad + "  }"])
        lines.append(pad + "}")

    write(hierarchy[0][0], 0)
    lines += ["MOTION", f"Frames: {len(frames)}", f"Frame Time: {frame_time:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in np.asarray(frames)]
    return "\n".join(lines) + "\n"


def bvh_of_clip(joints, fps=30.0, scale=100.0, prefix=""):
    """A BVH file that holds skeletons [F, 15, 3] (metres, +y up, the project's joint order): each
    joint a child of the root with its position relative to the pelvis as position channels (LaFAN1's
    use), in units of 1/scale metre, named as CMU names them (with a Mixamo-style `prefix`)."""
    from aign_tf.data import bvh, deepmimic

    names = [prefix + bvh.JOINT_MAP[n] for n in deepmimic.JOINT_NAMES]
    joints = np.asarray(joints, np.float64) * scale
    relative = joints - joints[:, :1]
    hierarchy = [(names[0], None, (0, 0, 0))] + [(n, names[0], (0, 0, 0)) for n in names[1:]]
    position = ["Xposition", "Yposition", "Zposition"]
    channels = {n: position + ["Zrotation", "Xrotation", "Yrotation"] * (j == 0) for j, n in enumerate(names)}
    frames = np.concatenate([joints[:, 0], np.zeros((len(joints), 3)), relative[:, 1:].reshape(len(joints), -1)], 1)
    return bvh_text(hierarchy, frames, 1.0 / fps, channels)


def write_bvh_folder(directory, clip_names=("walk", "jump", "kick", "punch", "run", "spin"), fps=30.0):
    """One BVH file per DeepMimic clip (in centimetres, Mixamo names for every other clip) under
    `directory`, some in a subfolder; returns {clip name as read: joints [F, 15, 3] metres}."""
    import os

    from aign_tf.data import deepmimic

    clips = deepmimic.load_clips(clip_names)
    written = {}
    for index, (name, clip) in enumerate(clips.items()):
        relative = os.path.join("sub", name) if index % 2 else name
        os.makedirs(os.path.dirname(os.path.join(directory, relative + ".bvh")), exist_ok=True)
        with open(os.path.join(directory, relative + ".bvh"), "w") as f:
            f.write(bvh_of_clip(clip.joints, fps, prefix="mixamorig:" if index % 2 else ""))
        written[relative] = clip.joints
    return written


def zoo_process(module, task, *args):
    """`python -m aign_tf.zoo.MODULE --task=TASK ARGS...` started in the background, text pipes."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", f"aign_tf.zoo.{module}", f"--task={task}", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
