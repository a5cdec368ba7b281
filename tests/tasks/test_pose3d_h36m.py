"""pose3d on Human3.6M (--dataset=h36m): the 17-joint skeleton, the paper's protocol, the real views, the
per-action table, and train / evaluate from the command line, on a VideoPose3D data directory
written by the tests (tests/testing.py: DeepMimic frames in the Human3.6M world, 2D projected there)."""
import json

import numpy as np
import pytest
import tensorflow as tf

from aign_tf.data import h36m
from aign_tf.errors import UserError
from aign_tf.tasks.pose3d import PoseTask, data, skeleton
from aign_tf.zoo import evaluate, registry
from tests.testing import zoo_process, h36m_project, write_h36m_dir

TINY = dict(steps=2, batch_size=8, width=4, components=10, generator="mlp", train_cameras=1)


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    return write_h36m_dir(tmp_path_factory.mktemp("h36m"))


@pytest.fixture(scope="module")
def task(directory):
    return registry.get_task("pose3d", dataset="h36m", data_dir=directory, **TINY)


# ---- the 17-joint skeleton ----

def test_h36m_bones_are_videopose3d_tree():
    names = skeleton.H36M.names
    assert [(names[a], names[b]) for a, b in skeleton.H36M.bones] == [
        ("hip", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_foot"),
        ("hip", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_foot"),
        ("hip", "spine"), ("spine", "thorax"), ("thorax", "neck_nose"), ("neck_nose", "head"),
        ("thorax", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
        ("thorax", "right_shoulder"), ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist")]
    assert len(skeleton.DEEPMIMIC.bones) == 14 and skeleton.joint_set(17) is skeleton.H36M
    with pytest.raises(UserError, match="16 joints"):
        skeleton.joint_set(16)


def test_torso_alignment_of_17_joints_by_hand():
    """Hips along world +y, thorax straight above the pelvis (z up): canonical x = +y, y = -z, z = x cross y
    = -x, so an offset d from the pelvis becomes (d_y, -d_z, -d_x). Spine and nose lie off the torso
    axis: the frame must come from hip, hips and thorax only."""
    pelvis = np.array([1.0, 2.0, 0.9])
    offsets = {"right_hip": (0, -0.1, 0), "left_hip": (0, 0.1, 0), "thorax": (0, 0, 0.5), "spine": (0.1, 0.05, 0.25),
               "neck_nose": (-0.1, 0, 0.6), "head": (-0.05, 0, 0.7), "left_wrist": (0.2, 0.6, 0.5),
               "right_foot": (0, -0.1, -0.85)}
    joints = np.tile(pelvis, (17, 1)) + 0.01 * np.arange(17)[:, None]  # the other joints anywhere
    joints[0] = pelvis
    for name, offset in offsets.items():
        joints[skeleton.H36M.names.index(name)] = pelvis + offset
    aligned = skeleton.align_torso(joints)
    np.testing.assert_allclose(aligned[0], 0, atol=1e-12)
    for name, (dx, dy, dz) in offsets.items():
        np.testing.assert_allclose(aligned[skeleton.H36M.names.index(name)], [dy, -dz, -dx], atol=1e-12, err_msg=name)


# ---- the protocol: memories, paired examples and inputs ----

def test_views_are_the_written_2d_with_3d_in_each_camera(task):
    train, test = task.h36m_frames
    views = task.test_views
    assert len(views.pose) == 4 * len(test) and views.keypoints.shape[1:] == (17, 2)
    assert set(views.clip) == {"Directions", "Walking", "SittingDown"}
    assert list(dict.fromkeys(views.clip)) == ["Directions", "SittingDown", "Walking"]  # the paper's order
    # Back in each camera: the 3D (pelvis-centred, moved by the pelvis' camera position) projects onto its 2D.
    for c in range(4):
        rows = np.flatnonzero(np.all(views.centre[:, 0] == np.float32(h36m.CAMERAS[c].centre_px), axis=-1))
        assert len(rows) == len(test)
        pelvis = np.stack([h36m.world_to_camera(test.poses_3d[i, 0], test.subject[i], c) for i in range(len(test))])
        order = np.argsort([h36m.ACTIONS.index(h36m.action_name(a)) for a in test.action], kind="stable")
        pixels = h36m_project(views.pose[rows] + pelvis[order][:, None], c)
        np.testing.assert_allclose(pixels, views.keypoints[rows], atol=1e-2)
        assert np.all(views.half[rows] == max(h36m.CAMERAS[c].size_px) / 2)
    np.testing.assert_allclose(views.normalised(), (views.keypoints - views.centre) / views.half)
    # Rigid bones keep their length from camera to camera: the world-to-camera motion is rigid.
    thigh = np.linalg.norm(views.pose[:, 1] - views.pose[:, 2], axis=-1)
    np.testing.assert_allclose(thigh, 0.42, atol=0.01)


def test_memories_and_paired_examples_come_from_training_subjects_only(directory):
    task = registry.get_task("pose3d", dataset="h36m", data_dir=directory, **{**TINY, "batch_size": 512})
    train, test = task.canonical
    assert {name.split("/")[0] for name in train} == set(h36m.TRAIN_SUBJECTS)
    assert {name.split("/")[0] for name in test} == set(h36m.TEST_SUBJECTS)
    train_bank, test_bank = (np.concatenate(list(c.values())).reshape(-1, 51) for c in (train, test))
    batch = tf.nest.map_structure(lambda t: t.numpy(), next(iter(task.train_batches())))
    memories = batch["memories"]["shape"].reshape(len(batch["memories"]["shape"]), -1)
    assert np.abs(memories[:, None] - train_bank[None]).max(-1).min(-1).max() < 1e-6
    assert np.abs(memories[:, None] - test_bank[None]).max(-1).min() > 1e-3
    # Paired: Sup1 (one random camera per training frame) then Sup2 (the real 2D in the 4 cameras).
    frames = len(train_bank)
    assert len(task.paired_examples["pose"]) == frames * (1 + 4)
    paired = skeleton.align_torso(batch["paired"]["targets"]["pose"]).reshape(512, -1)
    assert np.abs(paired[:, None] - train_bank[None]).max(-1).min(-1).max() < 1e-4
    # The unlabelled inputs are the test subjects' 2D and only those.
    inputs = batch["inputs"]["keypoints"].reshape(512, -1)
    want = task.test_views.normalised().reshape(len(task.test_views.pose), -1)
    assert np.abs(inputs[:, None] - want[None]).max(-1).min(-1).max() < 1e-6
    assert task.basis.num_joints == 17 and task.build_model().critics["shape"].input_shape == (None, 17, 3)
    f = data.H36M_CAMERAS.focal_px
    assert 1143 < f[0] < f[1] < 1150 and data.H36M_CAMERAS.image_size == 1000


def test_options_choose_the_2d_input_and_the_frame_step(directory):
    task = registry.get_task("pose3d", dataset="h36m", data_dir=directory, keypoints_2d="cpn", frame_step=2, **TINY)
    train, test = task.h36m_frames
    assert set(train.frame) == {0, 2, 4, 6, 8, 10}
    gt = registry.get_task("pose3d", dataset="h36m", data_dir=directory, frame_step=2, **TINY)
    assert 1.0 < np.abs(task.test_views.keypoints - gt.test_views.keypoints).mean() < 5.0  # the written detections
    np.testing.assert_array_equal(task.test_views.pose, gt.test_views.pose)
    with pytest.raises(UserError, match="--data_dir"):
        PoseTask.configure(dataset="h36m")
    assert PoseTask.configure().options.dataset == "deepmimic"


# ---- the per-action table ----

def test_action_table_has_the_papers_layout():
    metrics = {"mpjpe_mm": 80.0, "pa_mpjpe_mm": 60.0, "reprojection_px": 3.0}
    for i, action in enumerate(h36m.ACTIONS):
        metrics.update({f"mpjpe_mm/{action}": 50.0 + i, f"pa_mpjpe_mm/{action}": 40.0 + i})
    text = evaluate.group_tables({"aign": metrics, "f2d3d": {**metrics, "mpjpe_mm": 90.0}})
    mpjpe, pa = text.split("\n\n")
    rows = [line.split() for line in mpjpe.splitlines()]
    assert rows[0] == ["mpjpe_mm", *h36m.ACTIONS, "Average"]
    assert rows[1] == ["aign", *(f"{50 + i}" for i in range(15)), "80"]
    assert rows[2][0] == "f2d3d" and rows[2][-1] == "90"
    assert pa.splitlines()[0].split() == ["pa_mpjpe_mm", *h36m.ACTIONS, "Average"]
    assert evaluate.group_tables({"aign": {"mpjpe_mm": 1.0}}) == ""


# ---- from the command line: train, evaluate; a missing 2D file ----

def _cli(module, *args):
    return zoo_process(module, "pose3d", *args)


def test_train_and_evaluate_from_the_command_line(directory, tmp_path):
    model_dir = str(tmp_path / "pose-h36m")
    flags = [f"--data_dir={directory}", f"--model_dir={model_dir}", "--dataset=h36m", "--batch_size=8", "--width=4",
             "--components=10", "--generator=mlp", "--train_cameras=1"]
    only_gt = write_h36m_dir(tmp_path / "only-gt", kinds=("gt",))
    first = _cli("train", *flags, "--steps=4")
    missing = _cli("train", f"--data_dir={only_gt}", "--dataset=h36m", "--keypoints_2d=cpn", "--steps=1",
                   f"--model_dir={tmp_path / 'cpn'}")
    out, err = missing.communicate(timeout=300)
    lines = [line for line in err.splitlines() if line.strip()]
    assert missing.returncode == 2 and lines[-1].startswith("error: ") and "Traceback" not in err, err[-2000:]
    assert str(tmp_path / "only-gt" / h36m.FILES_2D["cpn"]) in lines[-1]
    assert first.wait(timeout=300) == 0, first.stderr.read()[-3000:]
    assert json.loads(open(f"{model_dir}/config.json").read())["options"]["dataset"] == "h36m"
    measured = _cli("evaluate", f"--model_dir={model_dir}")
    out, err = measured.communicate(timeout=300)
    assert measured.returncode == 0, err[-3000:]
    assert "pose3d at step 4" in out
    header = ["mpjpe_mm", "Directions", "SittingDown", "Walking", "Average"]  # the paper's order
    assert header in [line.split() for line in out.splitlines()]
    metrics = json.loads(open(f"{model_dir}/metrics.json").read())["metrics"]
    assert metrics["examples"] == 2 * 3 * 4 * 4 and np.isfinite(metrics["pa_mpjpe_mm/Walking"])
    assert (tmp_path / "pose-h36m" / "evaluation.png").exists()
