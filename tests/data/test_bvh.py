"""The BVH reader (aign_tf.data.bvh) on files written here in the real format: forward kinematics
against hand-computed positions and against SciPy's Euler rotations, CMU's hierarchy in CMU units,
LaFAN1-style position channels in centimetres, Mixamo names, a JSON joint map, resampling to 30 fps,
the split by file, and one-line errors naming the file for damaged or foreign input. Also the
shipped climbing clips (aign_tf.data.climbing)."""
import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from aign_tf.data import bvh, climbing, deepmimic
from aign_tf.errors import UserError
from tests.testing import CMU_HIERARCHY, CMU_UNIT_M, bvh_of_clip, bvh_text, write_bvh_folder


def write(tmp_path, text, name="clip.bvh"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ---- forward kinematics ----

def test_rotation_order_and_offsets_by_hand(tmp_path):
    # Root at (1, 2, 3), channels "Zrotation Xrotation" with z = 90, x = 90 degrees: R = Rz Rx. The child's
    # offset (0, 0, 1): Rx(90) turns it to (0, -1, 0), Rz(90) then to (1, 0, 0). (Rx Rz would give (0, -1, 0).)
    hierarchy = [("A", None, (5, 5, 5)), ("B", "A", (0, 0, 1)), ("C", "B", (0, 2, 0))]
    channels = {"A": ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation"], "B": ["Yrotation"], "C": []}
    path = write(tmp_path, bvh_text(hierarchy, [[1, 2, 3, 90, 90, 0, ], [1, 2, 3, 0, 0, 90]], 0.1, channels))
    tree, frame_time, values = bvh.read(path)
    assert tree.names == ["A", "B", "C"] and tree.parents == [-1, 0, 1] and frame_time == pytest.approx(0.1)
    positions = bvh.forward_kinematics(tree, values)
    # Frame 0: A at (1, 2, 3) (position channels replace the offset); B = A + (1, 0, 0); C = B + Rz Rx (0, 2, 0)
    # = B + Rz (0, 0, 2) = B + (0, 0, 2).
    np.testing.assert_allclose(positions[0], [[1, 2, 3], [2, 2, 3], [2, 2, 5]], atol=1e-12)
    # Frame 1: no root rotation; B's own Yrotation 90 turns C's offset (0, 2, 0) not at all (it is the axis).
    np.testing.assert_allclose(positions[1], [[1, 2, 3], [1, 2, 4], [1, 4, 4]], atol=1e-12)


def test_cmu_hierarchy_matches_scipy_euler_rotations(tmp_path):
    rng = np.random.default_rng(0)
    frames = 5
    values = np.concatenate([rng.uniform(-20, 20, (frames, 3)), rng.uniform(-60, 60, (frames, 3 * len(CMU_HIERARCHY)))], 1)
    path = write(tmp_path, bvh_text(CMU_HIERARCHY, values, 1 / 120))
    tree, _, read_values = bvh.read(path)
    positions = bvh.forward_kinematics(tree, read_values)
    # Independent truth: SciPy's intrinsic "ZYX" Euler angles (R = Rz Ry Rx), the channels' order.
    index = {name: i for i, (name, _, _) in enumerate(CMU_HIERARCHY)}
    angles = np.asarray(values[:, 3:]).reshape(frames, len(CMU_HIERARCHY), 3)
    for f in range(frames):
        rotation, position = {}, {}
        for name, parent, offset in CMU_HIERARCHY:
            local = Rotation.from_euler("ZYX", angles[f, index[name]], degrees=True).as_matrix()
            if parent is None:
                rotation[name], position[name] = local, values[f, :3]
            else:
                rotation[name] = rotation[parent] @ local
                position[name] = position[parent] + rotation[parent] @ np.array(offset, float)
            np.testing.assert_allclose(positions[f, index[name]], position[name], atol=1e-5)


def test_cmu_units_are_recognised_and_the_rest_pose_is_in_metres(tmp_path):
    values = np.zeros((9, 3 + 3 * len(CMU_HIERARCHY)))  # 8/120 s: frames 0, 1/30 and 2/30 s at 30 fps
    values[:, 1] = 17.0  # hips 17 CMU units above the origin
    clip = bvh.load_clip(write(tmp_path, bvh_text(CMU_HIERARCHY, values, 1 / 120)), "rest")
    offsets = {name: np.array(o, float) for name, _, o in CMU_HIERARCHY}
    knee = offsets["RightUpLeg"] + offsets["RightLeg"]
    np.testing.assert_allclose(clip.joints[:, 2], np.tile((np.array([0, 17.0, 0]) + knee) * CMU_UNIT_M, (3, 1)),
                               atol=1e-6)
    assert clip.fps == deepmimic.FPS and clip.joints.dtype == np.float32 and clip.num_frames == 3
    assert clip.joint_names == deepmimic.JOINT_NAMES
    short = write(tmp_path, bvh_text(CMU_HIERARCHY, values[:4], 1 / 120), "short.bvh")
    with pytest.raises(UserError, match=r"short\.bvh lasts 0.025 s, less than two frames at 30 frames per second"):
        bvh.load_clip(short, "short")


def test_a_clip_written_in_centimetres_with_mixamo_names_reads_back(tmp_path):
    truth = deepmimic.load_clips(["walk"])["walk"].joints
    path = write(tmp_path, bvh_of_clip(truth, prefix="mixamorig:"))
    clip = bvh.load_clip(path, "walk")
    np.testing.assert_allclose(clip.joints, truth, atol=2e-5)
    with_unit = bvh.load_clip(path, "walk", metres_per_unit=0.02)  # a given unit wins over the guess
    np.testing.assert_allclose(with_unit.joints, 2 * truth, atol=4e-5)


def test_resampling_to_30_fps_is_linear_in_time(tmp_path):
    truth = deepmimic.load_clips(["run"])["run"].joints
    # The same motion at 120 fps: 3 frames interpolated between each pair of 30 fps frames.
    fine = np.concatenate([truth[:-1, None] + (truth[1:] - truth[:-1])[:, None] * (np.arange(4) / 4)[None, :, None, None]
                           .reshape(1, 4, 1, 1)], 0).reshape(-1, 15, 3)
    fine = np.concatenate([fine, truth[-1:]])
    clip = bvh.load_clip(write(tmp_path, bvh_of_clip(fine, fps=120.0)), "run")
    np.testing.assert_allclose(clip.joints, truth, atol=2e-5)
    np.testing.assert_allclose(bvh.resample(np.arange(5.0)[:, None], fps=60.0), [[0.0], [2.0], [4.0]])


def test_joint_map_file_for_other_names(tmp_path):
    truth = deepmimic.load_clips(["walk"])["walk"].joints
    text = bvh_of_clip(truth)
    renamed = {bvh.JOINT_MAP[name]: f"j_{name}" for name in deepmimic.JOINT_NAMES}
    for theirs, new in renamed.items():
        text = text.replace(f" {theirs}\n", f" {new}\n")
    path = write(tmp_path, text)
    with pytest.raises(UserError, match=r"clip\.bvh lacks the joints Hips \(pelvis\), RightUpLeg .*--joint_map"):
        bvh.load_clip(path, "walk")
    joint_map = tmp_path / "map.json"
    joint_map.write_text(json.dumps({name: f"j_{name}" for name in deepmimic.JOINT_NAMES}))
    clip = bvh.load_clip(path, "walk", bvh.read_joint_map(str(joint_map)))
    np.testing.assert_allclose(clip.joints, truth, atol=2e-5)
    joint_map.write_text(json.dumps({"pelvis": "j_pelvis"}))
    with pytest.raises(UserError, match=r"map\.json must map exactly the joints pelvis, right_hip"):
        bvh.read_joint_map(str(joint_map))
    joint_map.write_text("{not json")
    with pytest.raises(UserError, match=r"cannot read the joint map .*map\.json"):
        bvh.read_joint_map(str(joint_map))


def test_split_by_file_holds_out_every_fifth(tmp_path):
    written = write_bvh_folder(tmp_path)  # 6 files, some in a subfolder
    train, test = bvh.clip_split(str(tmp_path))
    names = sorted(written)
    assert list(test) == [names[4]] and sorted(train) == names[:4] + names[5:]
    for name, clip in {**train, **test}.items():
        np.testing.assert_allclose(clip.joints, written[name], atol=2e-5)
    few = tmp_path / "few"
    write_bvh_folder(few, ("walk", "run"))
    train, test = bvh.clip_split(str(few))
    assert list(train) == ["sub/run"] and list(test) == ["walk"]  # fewer than five: the last file is the test


# ---- damaged and foreign input: one line naming the file ----

def good_text():
    return bvh_of_clip(deepmimic.load_clips(["walk"])["walk"].joints)


@pytest.mark.parametrize("damage, message", [
    (lambda t: t[:len(t) * 2 // 3].rsplit("\n", 1)[0] + "\n", r"is cut short: its header says 39 frames, it holds \d+"),
    (lambda t: t.rstrip("\n").rsplit(" ", 1)[0] + "\n", r"frame 38 has 47 values, the hierarchy has 48 channels"),
    (lambda t: t.rstrip("\n").rsplit("\n", 1)[0] + "\nnan " + t.rstrip("\n").rsplit("\n", 1)[1].split(" ", 1)[1],
     r"non-finite channel values \(NaN or inf\) in frame 38"),
    (lambda t: t.replace("MOTION", "MOTON"), r"is not a BVH file: expected a HIERARCHY section followed by a MOTION"),
    (lambda t: t.replace("}\nMOTION", "MOTION"), r"has a damaged HIERARCHY: expected one ROOT and balanced braces"),
    (lambda t: t.replace("Zrotation", "Zrot", 1), r"joint Hips has unknown channels \['Zrot'\]"),
    (lambda t: t.replace("Frame Time: 0.03333333", "Frame Time: 0"), r"has 39 frames of 0.0 s"),
    (lambda t: t.replace("OFFSET 0.000000 0.000000 0.000000", "OFFSET x 0 0", 1), r"has a damaged HIERARCHY"),
])
def test_damaged_files_are_named_in_one_line(tmp_path, damage, message):
    path = write(tmp_path, damage(good_text()), "damaged.bvh")
    with pytest.raises(UserError, match=message) as error:
        bvh.load_clip(path, "x")
    assert "damaged.bvh" in str(error.value) and "\n" not in str(error.value)


def test_folders_without_bvh_files(tmp_path):
    with pytest.raises(UserError, match=r"no .bvh files under .*: pass a folder of BVH"):
        bvh.find_files(str(tmp_path))
    with pytest.raises(UserError, match=r"does not exist"):
        bvh.find_files(str(tmp_path / "nowhere"))
    write(tmp_path, good_text(), "only.bvh")
    with pytest.raises(UserError, match=r"holds one BVH file: the split by file needs at least 2"):
        bvh.clip_split(str(tmp_path))


# ---- the shipped climbing clips ----

def test_climbing_clips_are_people_in_metres_at_30_fps():
    clips = climbing.load_clips()
    assert list(clips) == list(climbing.CLIPS)
    assert sum(c.num_frames for c in clips.values()) == 3237  # 12,939 frames at 120 fps
    joints = deepmimic.stack_joints(clips)
    legs = deepmimic.bone_lengths(joints)[:, [1, 2, 4, 5]]  # thighs and shins
    assert np.all((legs > 0.3) & (legs < 0.5)) and all(clip.fps == deepmimic.FPS for clip in clips.values())
    head_above_pelvis = joints[:, 8, 1] - joints[:, 0, 1]
    assert np.median(head_above_pelvis) > 0.5  # +y up, mostly upright (one clip climbs bent over)


def test_climbing_converter_reads_a_wheel_of_the_real_layout(tmp_path):
    # A wheel with holosoma-retargeting's layout: the joint names as a list literal in data_type.py and
    # each sequence's [T, 53, 3] positions (+z up, 120 fps) as .npy; here DeepMimic's walk, +z up, 4x finer.
    import io
    import zipfile

    names = [f"Extra{k}" for k in range(38)] + [bvh.JOINT_MAP[n] for n in deepmimic.JOINT_NAMES]
    walk = deepmimic.load_clips(["walk"])["walk"].joints.astype(np.float64)
    fine = bvh.resample(walk, 30.0, 120.0)
    z_up = np.stack([fine[..., 0], -fine[..., 2], fine[..., 1]], -1)  # the inverse of (x, y, z) -> (x, z, -y)
    positions = np.concatenate([np.zeros((len(z_up), 38, 3)), z_up], 1).astype(np.float32)
    wheel = tmp_path / "holosoma_retargeting-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("holosoma_retargeting/config_types/data_type.py", f"X = 1\nMOCAP_DEMO_JOINTS = {names!r}\n")
        for k, clip in enumerate(climbing.CLIPS):
            buffer = io.BytesIO()
            np.save(buffer, positions[k:])
            archive.writestr(f"holosoma_retargeting/demo_data/climb/mocap_{clip}/mocap_{clip}_joint_positions_f0-9.npy",
                             buffer.getvalue())
    climbing.convert(str(wheel), str(tmp_path / "out"))
    clips = climbing.load_clips(str(tmp_path / "out"))
    np.testing.assert_allclose(clips["climb_seq_0"].joints, walk, atol=1e-5)
    assert clips["climb_seq_4"].num_frames == len(walk) - 1  # 4 of 120 fps frames fewer: one 30 fps frame
    other = tmp_path / "other.whl"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("holosoma_retargeting/config_types/data_type.py", "MOCAP_DEMO_JOINTS = ['Hips']\n")
    with pytest.raises(UserError, match=r"data_type.py lacks the joints RightUpLeg \(right_hip\)"):
        climbing.convert(str(other), str(tmp_path / "again"))
