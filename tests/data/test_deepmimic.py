"""The shipped DeepMimic skeletons: shape, units, a rigid skeleton (forward kinematics), the split."""
import importlib.util
import os
import re

import numpy as np
import pytest

from aign_tf.data import deepmimic as dm
from aign_tf.errors import UserError
from tests.testing import copy_deepmimic_motions

FRAMES = {
    "backflip": 53, "cartwheel": 82, "crawl": 89, "dance_a": 49, "dance_b": 77,
    "getup_facedown": 92, "getup_faceup": 114, "jump": 54, "kick": 47, "punch": 65,
    "roll": 61, "run": 25, "spin": 133, "spinkick": 39, "walk": 39,
}
J = {name: i for i, name in enumerate(dm.JOINT_NAMES)}


@pytest.fixture(scope="module")
def clips():
    return dm.load_clips()


def test_shipped_clips_load_with_documented_layout(clips):
    assert tuple(clips) == dm.CLIPS
    assert len(dm.JOINT_NAMES) == dm.NUM_JOINTS == 15
    assert {n: c.num_frames for n, c in clips.items()} == FRAMES
    for name, clip in clips.items():
        assert clip.name == name
        assert clip.joints.dtype == np.float32 and clip.joints.shape[1:] == (15, 3)
        assert clip.joint_names == dm.JOINT_NAMES
        assert clip.fps == 30.0
        assert np.all(np.isfinite(clip.joints))
    with np.load(dm.clip_path("walk")) as data:
        assert str(data["up_axis"]) == "y"
        assert "humanoid3d_walk.txt" in str(data["source"]) and "pybullet" in str(data["source"])
    assert dm.stack_joints(clips).shape == (sum(FRAMES.values()), 15, 3)
    total = sum(os.path.getsize(dm.clip_path(n)) for n in dm.CLIPS)
    assert total < 2_000_000


def test_bones_are_rigid_over_time(clips):
    # Forward kinematics of a rigid skeleton: every bone except pelvis-neck (it spans the chest
    # joint) keeps its length in every frame of every clip.
    joints = dm.stack_joints(clips).astype(np.float64)
    rigid = dm.bone_lengths(joints, dm.RIGID_BONES)
    assert np.ptp(rigid, axis=0).max() < 1e-4
    spine = dm.bone_lengths(joints, [(J["pelvis"], J["neck"])])
    assert 0.3 < spine.min() and spine.max() < 0.5
    # Left and right limbs are the same length.
    lengths = dict(zip(dm.RIGID_BONES, rigid[0]))
    for (a, b) in dm.RIGID_BONES:
        na, nb = dm.JOINT_NAMES[a], dm.JOINT_NAMES[b]
        if nb.startswith("right_") and not na.startswith("left_"):
            mirror = (J[na.replace("right_", "left_")], J[nb.replace("right_", "left_")])
            assert lengths[(a, b)] == pytest.approx(lengths[mirror], abs=1e-5)


def test_lengths_are_metres_of_an_adult(clips):
    b = dict(zip(dm.BONES, dm.bone_lengths(clips["walk"].joints[0].astype(np.float64))))
    thigh = b[(J["right_hip"], J["right_knee"])]
    shin = b[(J["right_knee"], J["right_ankle"])]
    upper_arm = b[(J["right_shoulder"], J["right_elbow"])]
    forearm = b[(J["right_elbow"], J["right_wrist"])]
    assert 0.3 < thigh < 0.6 and 0.3 < shin < 0.6
    assert 0.2 < upper_arm < 0.4 and 0.18 < forearm < 0.35
    assert 0.12 < np.linalg.norm(clips["walk"].joints[0, J["right_hip"]] - clips["walk"].joints[0, J["left_hip"]]) < 0.4
    # Standing height along the chain ankle-knee-hip-pelvis-neck-head (straight, longest spine).
    spine = dm.bone_lengths(dm.stack_joints(clips), [(J["pelvis"], J["neck"])]).max()
    chain = shin + thigh + spine + b[(J["neck"], J["head"])]
    assert 1.4 < chain < 2.0
    # +y is up: walking, the head is ~1.4 m above the ankles and the pelvis ~0.85 m above the ground.
    walk = clips["walk"].joints
    head_over_ankle = walk[:, J["head"], 1] - walk[:, [J["left_ankle"], J["right_ankle"]], 1].min(axis=1)
    assert 1.3 < head_over_ankle.max() < 1.8
    assert np.all(walk[:, J["head"], 1] > walk[:, J["neck"], 1])
    assert np.all(walk[:, J["neck"], 1] > walk[:, J["pelvis"], 1])
    assert np.all(walk[:, J["pelvis"], 1] > walk[:, J["right_knee"], 1])
    assert 0.7 < walk[:, J["pelvis"], 1].mean() < 1.0


@pytest.mark.parametrize("name", ["walk", "run"])
def test_left_and_right_are_not_swapped(clips, name):
    # With right = right_hip - left_hip and up = neck - pelvis, up x right points forward in a
    # right-handed frame; a bent knee always points forward of the hip-ankle line.
    x = clips[name].joints.astype(np.float64)
    forward = np.cross(x[:, J["neck"]] - x[:, J["pelvis"]], x[:, J["right_hip"]] - x[:, J["left_hip"]])
    for side in ("right", "left"):
        hip, knee, ankle = (x[:, J[f"{side}_{p}"]] for p in ("hip", "knee", "ankle"))
        out = knee - 0.5 * (hip + ankle)
        bent = np.linalg.norm(out, axis=-1) > 0.03
        assert bent.sum() >= 5
        assert np.all(np.einsum("ij,ij->i", out, forward)[bent] > 0)


def test_split_holds_out_whole_clips(clips):
    train, test = dm.clip_split()
    assert tuple(test) == dm.TEST_CLIPS == ("walk", "jump", "kick", "dance_b")
    assert set(train).isdisjoint(test) and set(train) | set(test) == set(dm.CLIPS)
    assert sum(c.num_frames for c in test.values()) == 217
    assert sum(c.num_frames for c in train.values()) == 802
    # No held-out frame appears among the training frames.
    a = dm.stack_joints(train).reshape(-1, 45).astype(np.float64)
    b = dm.stack_joints(test).reshape(-1, 45).astype(np.float64)
    nearest = np.abs(b[:, None, :] - a[None, :, :]).max(axis=-1).min(axis=1)
    assert nearest.min() > 1e-3
    train2, test2 = dm.clip_split(test_clips=["run"])
    assert list(test2) == ["run"] and "run" not in train2 and len(train2) == 14


@pytest.mark.parametrize("bad", [["moonwalk"], [], list(dm.CLIPS)])
def test_split_rejects_bad_test_clips(bad):
    with pytest.raises(UserError, match="clip"):
        dm.clip_split(test_clips=bad)


def _raises_naming(path, **kwargs):
    with pytest.raises(UserError, match=re.escape(str(path))) as info:
        dm.load_clips(**kwargs)
    assert "\n" not in str(info.value)


def test_missing_clip_file(tmp_path):
    directory = copy_deepmimic_motions(tmp_path)
    os.remove(directory / "kick.npz")
    _raises_naming(directory / "kick.npz", directory=str(directory))


def test_corrupt_clip_file(tmp_path):
    directory = copy_deepmimic_motions(tmp_path)
    (directory / "walk.npz").write_bytes(b"not a zip file at all")
    _raises_naming(directory / "walk.npz", directory=str(directory))
    raw = (directory / "run.npz").read_bytes()
    (directory / "run.npz").write_bytes(raw[: len(raw) // 2])
    _raises_naming(directory / "run.npz", names=["run"], directory=str(directory))


@pytest.mark.parametrize(
    "change",
    [
        {"joints": np.zeros((10, 14, 3), np.float32)},
        {"joints": np.full((10, 15, 3), np.nan, np.float32)},
        {"joint_names": np.array(list(dm.JOINT_NAMES[::-1]))},
        {"up_axis": np.array("z")},
        {"fps": np.float32(0)},
    ],
)
def test_wrong_clip_contents(tmp_path, change):
    directory = copy_deepmimic_motions(tmp_path)
    with np.load(directory / "punch.npz") as data:
        contents = {k: data[k] for k in data.files}
    contents.update(change)
    np.savez_compressed(directory / "punch.npz", **contents)
    _raises_naming(directory / "punch.npz", names=["punch"], directory=str(directory))


def test_clip_file_lacking_arrays(tmp_path):
    directory = copy_deepmimic_motions(tmp_path)
    np.savez_compressed(directory / "spin.npz", joints=np.zeros((3, 15, 3), np.float32))
    _raises_naming(directory / "spin.npz", names=["spin"], directory=str(directory))


def test_unknown_clip_name():
    with pytest.raises(UserError, match="moonwalk"):
        dm.load_clips(["moonwalk"])


def test_converter_cli_rejects_unknown_clip(capsys, tmp_path):
    assert dm.main([f"--out={tmp_path}", "--clips=moonwalk"]) == 2
    assert "moonwalk" in capsys.readouterr().err


def test_frame_times_cover_the_clip():
    frames = np.zeros((5, dm.FRAME_SIZE))
    frames[:, 0] = [0.016666, 0.016666, 0.016666, 0.016666, 0.0]  # 4 keyframes of 1/60 s, rounded
    np.testing.assert_allclose(dm.frame_times(frames, 30.0), [0.0, 1 / 30, 0.066664])


def test_converter_reproduces_shipped_clip(tmp_path):
    pybullet = pytest.importorskip("pybullet")
    import pybullet_data

    humanoid = dm._Humanoid()
    try:
        path = dm.convert_clip("walk", str(tmp_path), humanoid=humanoid)
        with np.load(path) as new, np.load(dm.clip_path("walk")) as shipped:
            np.testing.assert_allclose(new["joints"], shipped["joints"], atol=1e-5)
            assert list(new["joint_names"]) == list(shipped["joint_names"])
            assert float(new["fps"]) == float(shipped["fps"])
        # The frame layout agrees with pybullet's own DeepMimic interpolator, where it is installed.
        reference = os.path.join(
            os.path.dirname(os.path.dirname(pybullet_data.__file__)),
            "pybullet_envs", "deep_mimic", "env", "humanoid_pose_interpolator.py",
        )
        if os.path.isfile(reference):
            spec = importlib.util.spec_from_file_location("_hpi", reference)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            frames, _ = dm.read_motion_file(
                os.path.join(humanoid.data_path, "data", "motions", "humanoid3d_kick.txt"))
            starts = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
            for i in range(0, len(frames) - 1, 5):
                interpolator = module.HumanoidPoseInterpolator()
                pose = interpolator.Slerp(0.4, list(frames[i]), list(frames[i + 1]), pybullet)
                mine = dm.interpolate_pose(frames, starts[i] + 0.4 * frames[i, 0], humanoid.slerp)
                np.testing.assert_allclose(humanoid.joints(mine), humanoid.joints(pose), atol=1e-4)
    finally:
        humanoid.close()
