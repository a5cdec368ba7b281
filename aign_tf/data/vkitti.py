"""Virtual KITTI 1.3.1 frame pairs for structure from motion (paper section 3.2).

The paper tests on sequence 0001 (all its variations) and trains on the other four sequences
(0002, 0006, 0018, 0020). The archives ``vkitti_1.3.1_rgb``, ``vkitti_1.3.1_depthgt`` and
``vkitti_1.3.1_extrinsicsgt`` must be unpacked under one directory ``data_dir``:

- ``vkitti_1.3.1_rgb/<seq>/<variation>/<frame:05d>.png``: 8-bit RGB, 1242 x 375.
- ``vkitti_1.3.1_depthgt/<seq>/<variation>/<frame:05d>.png``: 16-bit greyscale, depth in
  CENTIMETRES along the optical axis (not along the ray). The sky / far plane is the largest value,
  65535, read as 655.35 m and kept as is: it is not masked out.
- ``vkitti_1.3.1_extrinsicsgt/<seq>_<variation>.txt``: a header line
  ``frame r1,1 r1,2 r1,3 t1 r2,1 ... t3 0 0 0 1``, then per frame its index and the 16 row-major
  entries of the 4x4 world-to-camera matrix (X_camera = M @ X_world, homogeneous, metres).

The intrinsics are the same for every frame (`INTRINSICS`: f = 725 px, principal point
(620.5, 187.0), 1242 x 375). Frames are resized to the requested size without cropping, so the
aspect ratio changes and f_x != f_y after `camera(height, width)`. RGB is area-averaged; depth is
sampled at the nearest source pixel of each output pixel centre, so that every output depth is a
real depth of the scene (no averaging across depth edges), and converted to metres (float32).

`load_pairs` returns the pair dict of `aign_tf.data.frames`: for every (sequence, variation) the
pairs (frame k, frame k + stride) for every k, in order of k, with the exact relative camera motion
of each pair. Frames are taken in order of their number; `sequence` counts the (sequence,
variation) combinations in the order they are read (sequences outer, variations inner).
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from aign_tf.data import frames
from aign_tf.errors import UserError

SEQUENCES = ("0001", "0002", "0006", "0018", "0020")
TEST_SEQUENCES = ("0001",)
TRAIN_SEQUENCES = ("0002", "0006", "0018", "0020")
VARIATIONS = ("clone", "morning", "sunset", "overcast", "fog", "rain",
              "15-deg-left", "15-deg-right", "30-deg-left", "30-deg-right")
INTRINSICS = frames.Intrinsics(375, 1242, (725.0, 725.0), (620.5, 187.0))

RGB_DIR = "vkitti_1.3.1_rgb"
DEPTH_DIR = "vkitti_1.3.1_depthgt"
EXTRINSICS_DIR = "vkitti_1.3.1_extrinsicsgt"
UNPACK_HINT = "unpack the VKITTI 1.3.1 rgb, depthgt and extrinsicsgt archives under"
# PIL modes of a 16-bit greyscale PNG.
DEPTH_MODES = ("I;16", "I;16B", "I")


def camera(height: int, width: int) -> frames.Intrinsics:
    """The VKITTI camera for frames resized to height x width."""
    frames.check_frame_size(height, width)
    return INTRINSICS.resized(height, width)


def load_pairs(data_dir: str, sequences: tuple[str, ...], *, height: int, width: int,
               variations: tuple[str, ...] = ("clone",), stride: int = 1, max_frames: int | None = None) -> dict:
    """The pairs (frame k, frame k + stride) of every (sequence, variation), resized to height x width.

    max_frames: read only the first max_frames frames of each (sequence, variation) (quick runs).
    """
    frames.check_frame_size(height, width)
    sequences = _check_names("sequence", sequences, SEQUENCES)
    variations = _check_names("variation", variations, VARIATIONS)
    if stride < 1:
        raise UserError(f"stride {stride} is not supported: pairs are (frame k, frame k + stride), use stride >= 1")
    if max_frames is not None and max_frames < 2:
        raise UserError(f"max_frames {max_frames} is too small: a pair needs 2 frames, use max_frames >= 2 "
                        f"(or None for every frame)")
    if not os.path.isdir(data_dir):
        raise UserError(f"VKITTI data directory {data_dir} does not exist: {UNPACK_HINT} it and pass it as data_dir")
    parts = []
    for sequence in sequences:
        for variation in variations:
            parts.append(_load_variation(data_dir, sequence, variation, len(parts), height, width, stride, max_frames))
    return frames.concat_pairs(parts)


def _check_names(kind: str, given: tuple[str, ...], known: tuple[str, ...]) -> tuple[str, ...]:
    """`given` as a tuple (one name may be passed as a string); UserError on an unknown or no name."""
    given = (given,) if isinstance(given, str) else tuple(given)
    if not given:
        raise UserError(f"no VKITTI {kind} given: pass at least one of {', '.join(known)}")
    for name in given:
        if name not in known:
            raise UserError(f"unknown VKITTI {kind} {name!r}: choose from {', '.join(known)}")
    return given


def _load_variation(data_dir: str, sequence: str, variation: str, index: int, height: int, width: int,
                    stride: int, max_frames: int | None) -> dict:
    """The pairs of one (sequence, variation), `sequence` = index."""
    rgb_dir = os.path.join(data_dir, RGB_DIR, sequence, variation)
    if not os.path.isdir(rgb_dir):
        raise UserError(f"VKITTI RGB directory {rgb_dir} is missing: {UNPACK_HINT} {data_dir}")
    names = sorted((name for name in os.listdir(rgb_dir) if name.endswith(".png") and name[:-4].isdigit()),
                   key=lambda name: int(name[:-4]))[:max_frames]
    if len(names) < stride + 1:
        raise UserError(f"{rgb_dir} has {len(names)} frames to read (max_frames={max_frames}); pairs with "
                        f"stride {stride} need at least {stride + 1}: lower the stride or raise max_frames")
    extrinsics_path = os.path.join(data_dir, EXTRINSICS_DIR, f"{sequence}_{variation}.txt")
    poses = _read_extrinsics(extrinsics_path, data_dir)
    images, depths, world_to_camera = [], [], []
    for name in names:
        frame, rgb_path = int(name[:-4]), os.path.join(rgb_dir, name)
        if frame not in poses:
            raise UserError(f"VKITTI extrinsics file {extrinsics_path} has no line for frame {frame} "
                            f"(image {rgb_path}): use the extrinsicsgt file that matches the rgb archive")
        depth_path = os.path.join(data_dir, DEPTH_DIR, sequence, variation, name)
        image, depth = _read_frame(rgb_path, depth_path, data_dir, height, width)
        images.append(image)
        depths.append(depth)
        world_to_camera.append(poses[frame])
    return _stride_pairs(np.stack(images), np.stack(depths), np.stack(world_to_camera), stride, index)


def _read_extrinsics(path: str, data_dir: str) -> dict[int, np.ndarray]:
    """frame index -> float64 [4, 4] world-to-camera matrix, from one extrinsicsgt file."""
    if not os.path.isfile(path):
        raise UserError(f"VKITTI extrinsics file {path} is missing: {UNPACK_HINT} {data_dir}")
    lines = frames.read_text(path, "a VKITTI extrinsics text file; re-extract it").splitlines()
    poses = {}
    for number, line in enumerate(lines, start=1):
        values = line.split()
        if not values or values[0] == "frame":
            continue
        try:
            if len(values) != 17:
                raise ValueError
            matrix = np.array(values[1:], np.float64).reshape(4, 4)
            if not np.all(np.isfinite(matrix)) or list(matrix[3]) != [0, 0, 0, 1] or abs(np.linalg.det(matrix)) < 1e-6:
                raise ValueError
            poses[int(values[0])] = matrix
        except ValueError:
            raise UserError(f"{path} line {number} is malformed: expected 17 numbers (the frame index and a "
                            f"row-major, invertible 4x4 matrix ending in 0 0 0 1), got {line[:60]!r}; "
                            "re-extract the file") from None
    return poses


def _read_frame(rgb_path: str, depth_path: str, data_dir: str, height: int,
                width: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [height, width, 3] image and float32 [height, width] depth in metres of one frame."""
    if not os.path.isfile(depth_path):
        raise UserError(f"VKITTI depth frame {depth_path} is missing (image {rgb_path} has one): "
                        f"{UNPACK_HINT} {data_dir}")
    with _png(rgb_path) as rgb:
        if rgb.size != (INTRINSICS.width, INTRINSICS.height):
            raise UserError(f"{rgb_path} is {rgb.size[0]}x{rgb.size[1]} pixels, VKITTI 1.3.1 frames are "
                            f"{INTRINSICS.width}x{INTRINSICS.height}: use the original, unresized files")
        if rgb.mode != "RGB":
            raise UserError(f"{rgb_path} is a PNG of mode {rgb.mode} ({len(rgb.getbands())} channels), expected "
                            f"8-bit RGB (3 channels): use the original vkitti_1.3.1_rgb files")
        image, size = np.asarray(rgb.resize((width, height), Image.Resampling.BOX)), rgb.size
    with _png(depth_path) as depth:
        if depth.size != size:
            raise UserError(f"depth {depth_path} is {depth.size[0]}x{depth.size[1]} pixels but its image {rgb_path} is "
                            f"{size[0]}x{size[1]}: use the original, unresized depthgt files")
        if depth.mode not in DEPTH_MODES:
            raise UserError(f"depth {depth_path} is a PNG of mode {depth.mode}, not 16-bit greyscale (centimetres): "
                            f"use the original vkitti_1.3.1_depthgt files")
        depth_cm = np.asarray(depth)
    # Nearest source pixel of each output pixel centre: floor((x + 0.5) * source / output).
    rows = (2 * np.arange(height) + 1) * INTRINSICS.height // (2 * height)
    columns = (2 * np.arange(width) + 1) * INTRINSICS.width // (2 * width)
    return image, depth_cm[rows[:, np.newaxis], columns].astype(np.float32) / 100


def _png(path: str):
    """The image at `path`, opened by PIL (`frames.open_image`); UserError naming `path` if it is damaged."""
    return frames.open_image(path, "an intact VKITTI 1.3.1 PNG; re-extract it", formats=("PNG",))


def _stride_pairs(images: np.ndarray, depths: np.ndarray, world_to_camera: np.ndarray, stride: int, index: int) -> dict:
    """Pairs (k, k + stride) for every k, in order of k: `frames.sequence_pairs` on each class k mod stride."""
    count = len(images)
    residues = range(min(stride, count - stride))
    parts = [frames.sequence_pairs(images[r::stride], depths[r::stride], world_to_camera[r::stride], index)
             for r in residues]
    order = np.argsort(np.concatenate([np.arange(r, count - stride, stride) for r in residues]))
    return {key: value[order] for key, value in frames.concat_pairs(parts).items()}
