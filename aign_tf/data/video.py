"""A user's own video for structure from motion (`--dataset=frames`): a folder of consecutive frames
and the camera's intrinsics, without ground truth.

    data_dir/
      000000.png  000001.png  ...   the frames, in order of their file names: PNG or JPEG, all one size
      intrinsics.txt                the camera: "fx fy cx cy", pixels of these frames (x right, y down,
                                    pixel centres at integer coordinates)
      calib_cam_to_cam.txt          or, without intrinsics.txt, KITTI's calibration file: P_rect_02 and
                                    S_rect_02 (frames of KITTI's image_02, rectified, at their own size)

Other files and folders are ignored. Frames are converted to RGB and resized to the requested size
without cropping (area-averaged), the camera with them (`frames.Intrinsics.resized`). `load_pairs`
gives the pairs of consecutive frames, images only (no depth, no camera motion): the unlabelled inputs
of self-supervised training.
"""
from __future__ import annotations

import os

import numpy as np

from aign_tf.data import frames, kitti
from aign_tf.errors import UserError

INTRINSICS_FILE = "intrinsics.txt"
FRAME_EXPECTED = "an intact PNG or JPEG frame; replace or remove it"


def frame_paths(data_dir: str) -> list[str]:
    """The frame files of `data_dir`, in order; UserError unless it exists and holds at least 2."""
    if not os.path.isdir(data_dir):
        raise UserError(f"frames directory {data_dir} does not exist: pass the folder holding your video's frames "
                        f"and {INTRINSICS_FILE} as --data_dir")
    paths = frames.frame_files(data_dir)
    if len(paths) < 2:
        raise UserError(f"frames directory {data_dir} holds {len(paths)} PNG or JPEG frame(s): a video needs at least "
                        "2 consecutive frames (sorted by file name)")
    return paths


def camera(data_dir: str, height: int, width: int) -> frames.Intrinsics:
    """The camera of the frames in `data_dir` resized to height x width, from intrinsics.txt or else
    calib_cam_to_cam.txt."""
    frames.check_frame_size(height, width)
    first = frame_paths(data_dir)[0]
    with frames.open_image(first, FRAME_EXPECTED) as image:
        columns, rows = image.size
    text_path, calibration_path = os.path.join(data_dir, INTRINSICS_FILE), os.path.join(data_dir, kitti.CAM_TO_CAM)
    if os.path.isfile(text_path):
        native = _read_intrinsics(text_path, rows, columns)
    elif os.path.isfile(calibration_path):
        native = kitti.rectified_camera(calibration_path)
        if (native.height, native.width) != (rows, columns):
            raise UserError(f"{first} is {columns}x{rows} pixels but S_rect_02 of {calibration_path} says "
                            f"{native.width}x{native.height}: give the rectified frames at their own size, or "
                            f"write {INTRINSICS_FILE} for these frames")
    else:
        raise UserError(f"frames directory {data_dir} has no {INTRINSICS_FILE} ('fx fy cx cy' in pixels of the frames) "
                        f"and no {kitti.CAM_TO_CAM} (KITTI): add one")
    return native.resized(height, width)


def _read_intrinsics(path: str, rows: int, columns: int) -> frames.Intrinsics:
    """The camera of `path` ("fx fy cx cy") for frames of rows x columns pixels."""
    text = frames.read_text(path, "a text file 'fx fy cx cy'")
    values = frames.numbers(text)
    if values.shape != (4,) or not np.isfinite(values).all() or values[0] <= 0 or values[1] <= 0:
        raise UserError(f"{path} must hold 4 numbers 'fx fy cx cy' (pixels of the frames, focal lengths positive), "
                        f"got {text.strip()[:60]!r}")
    fx, fy, cx, cy = values.tolist()
    return frames.Intrinsics(rows, columns, (fx, fy), (cx, cy))


def load_pairs(data_dir: str, *, height: int, width: int) -> dict:
    """The pairs of consecutive frames of `data_dir` resized to height x width: image1, image2 and
    sequence (0) only."""
    frames.check_frame_size(height, width)
    return frames.sequence_pairs(frames.read_frames(frame_paths(data_dir), height, width, FRAME_EXPECTED),
                                 None, None, 0)
