"""Frame pairs for structure from motion: what every source (the procedural driving world, Virtual
KITTI, KITTI raw drives, a user's own video) turns its sequences into; and the reading of frame files.

A set of N frame pairs is a dict of NumPy arrays:

    image1       uint8 [N, H, W, 3]   first frame
    image2       uint8 [N, H, W, 3]   the next frame
    depth1       float32 [N, H, W, 1] depth Z of the first frame, metres along the optical axis
    rotation     float32 [N, 3, 3]    R and
    translation  float32 [N, 3]       T (metres) of X2 = R @ X1 + T, frame-1 to frame-2 camera coordinates
    sequence     int32 [N]            which sequence the pair comes from

The ground truth is optional: pairs of real video have no `depth1` (KITTI raw, a user's video), and
pairs without known camera motion have no `rotation` and `translation` either (a user's video). The
keys present always come in the order of `PAIR_KEYS`.

Camera conventions are those of `aign_tf.render.camera` (x right, y down, z forward; pixel centres
at integer coordinates).
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import zlib

import numpy as np
from PIL import Image

from aign_tf.errors import UserError

PAIR_KEYS = ("image1", "image2", "depth1", "rotation", "translation", "sequence")
# The depth and egomotion networks halve the frame four times.
SIZE_MULTIPLE = 16
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg")  # of frame files, any case
SIGNATURES = {"PNG": b"\x89PNG\r\n\x1a\n", "JPEG": b"\xff\xd8\xff"}  # the first bytes of each format


@dataclasses.dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera: image size and (f_x, f_y), (c_x, c_y) in pixels."""
    height: int
    width: int
    focal: tuple[float, float]
    principal_point: tuple[float, float]

    def resized(self, height: int, width: int) -> "Intrinsics":
        """The same camera for the image resampled to height x width (pixel centres stay put:
        x' = (x + 0.5) * s - 0.5)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(height, width, (self.focal[0] * sx, self.focal[1] * sy),
                          ((self.principal_point[0] + 0.5) * sx - 0.5, (self.principal_point[1] + 0.5) * sy - 0.5))


def check_frame_size(height: int, width: int) -> None:
    """Raises UserError unless both sides are positive multiples of SIZE_MULTIPLE."""
    if height <= 0 or width <= 0 or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise UserError(f"frame size {height}x{width} is not supported: height and width must be positive "
                        f"multiples of {SIZE_MULTIPLE} (e.g. --frame_size=64x192)")


def relative_motion(world_to_camera1: np.ndarray, world_to_camera2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R [..., 3, 3], T [..., 3]) with X2 = R @ X1 + T, from two [..., 4, 4] world-to-camera matrices."""
    motion = world_to_camera2 @ np.linalg.inv(world_to_camera1)
    return motion[..., :3, :3], motion[..., :3, 3]


def sequence_pairs(images: np.ndarray, depths: np.ndarray | None, world_to_camera: np.ndarray | None,
                   sequence: int) -> dict:
    """The F - 1 consecutive pairs of one sequence of F frames.

    images uint8 [F, H, W, 3]; depths [F, H, W] metres, or None (no `depth1`); world_to_camera
    [F, 4, 4] (X_cam = E @ X_world), or None (no `rotation`, `translation`).
    """
    frames = len(images)
    given = {"depth maps": depths, "poses": world_to_camera}
    if frames < 2 or any(value is not None and len(value) != frames for value in given.values()):
        counts = ", ".join(f"{len(value)} {name}" for name, value in given.items() if value is not None)
        raise UserError(f"sequence {sequence}: need at least 2 frames, with one depth map and one pose each where "
                        f"given; got {frames} images{', ' + counts if counts else ''}")
    pairs = {"image1": images[:-1], "image2": images[1:]}
    if depths is not None:
        pairs["depth1"] = depths[:-1, ..., np.newaxis].astype(np.float32)
    if world_to_camera is not None:
        rotation, translation = relative_motion(world_to_camera[:-1].astype(np.float64),
                                                world_to_camera[1:].astype(np.float64))
        pairs.update(rotation=rotation.astype(np.float32), translation=translation.astype(np.float32))
    pairs["sequence"] = np.full(frames - 1, sequence, np.int32)
    return pairs


def concat_pairs(parts: list[dict]) -> dict:
    """Concatenates several sets of pairs (e.g. one per sequence), all with the keys of the first."""
    return {key: np.concatenate([p[key] for p in parts]) for key in PAIR_KEYS if key in parts[0]}


# ---------------------------------------------------------------- files: frames and their text companions


def read_text(path: str, expected: str) -> str:
    """The ASCII text of the file at `path` (calibration, poses); UserError "cannot read PATH (reason):
    expected EXPECTED" if it cannot be read."""
    try:
        with open(path, encoding="ascii") as file:
            return file.read()
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path} ({e}): expected {expected}") from e


def numbers(text: str) -> np.ndarray:
    """float64 [n]: the whitespace-separated numbers of `text`; empty if any of them is not a number."""
    try:
        return np.array(text.split(), np.float64)
    except ValueError:
        return np.zeros(0)


def frame_files(directory: str) -> list[str]:
    """The paths of the PNG and JPEG files (by extension, any case) in `directory`, sorted by name."""
    return [os.path.join(directory, name) for name in sorted(os.listdir(directory))
            if name.lower().endswith(FRAME_EXTENSIONS) and os.path.isfile(os.path.join(directory, name))]


def _check_png_chunks(raw: bytes) -> None:
    """Raises ValueError unless `raw` is a PNG whose chunks up to IEND are complete and match their CRCs
    (PIL skips the CRCs of the pixel data, so damaged pixels would otherwise decode silently)."""
    at, chunk = len(SIGNATURES["PNG"]), b""
    while chunk[:4] != b"IEND":
        length = int.from_bytes(raw[at:at + 4], "big")
        chunk, crc = raw[at + 4:at + 8 + length], raw[at + 8 + length:at + 12 + length]
        if len(crc) < 4 or zlib.crc32(chunk) != int.from_bytes(crc, "big"):
            raise ValueError(f"the chunk at byte {at} is truncated or fails its CRC")
        at += 12 + length


@contextlib.contextmanager
def open_image(path: str, expected: str, formats: tuple[str, ...] = ("PNG", "JPEG")):
    """The image at `path`, opened by PIL; UserError "cannot read PATH (reason): expected EXPECTED" if it
    is of none of `formats` ("PNG", "JPEG"), damaged or does not decode (a PNG's chunks are checked against
    their CRCs first; a JPEG cut short fails to decode)."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
        kind = next((name for name in formats if raw.startswith(SIGNATURES[name])), None)
        if kind is None:
            raise ValueError(f"not a {' or '.join(formats)} file")
        if kind == "PNG":
            _check_png_chunks(raw)
        with Image.open(io.BytesIO(raw), formats=(kind,)) as image:
            yield image
    except UserError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError) as e:
        raise UserError(f"cannot read {path} ({e}): expected {expected}") from e


def read_frames(paths: list[str], height: int, width: int, expected: str) -> np.ndarray:
    """uint8 [F, height, width, 3]: the frame files at `paths` as RGB (grey expanded, alpha dropped),
    area-resampled to height x width without cropping. Every frame must have the size of the first.
    `expected` ends the error line of a damaged file (see `open_image`)."""
    images, size = np.zeros((len(paths), height, width, 3), np.uint8), None
    for k, path in enumerate(paths):
        with open_image(path, expected) as image:
            size = size or image.size
            if image.size != size:
                raise UserError(f"{path} is {image.size[0]}x{image.size[1]} pixels but {paths[0]} is "
                                f"{size[0]}x{size[1]}: every frame of a video must have the same size")
            images[k] = np.asarray(image.convert("RGB").resize((width, height), Image.Resampling.BOX))
    return images
