"""The sfm task on real video without depth: --dataset=frames (a user's frames folder: no truth at all)
and --dataset=kitti (KITTI raw: camera motion, no depth), with the driving world's memories and paired
examples; and --trajectory, the driving world along a real drive. On files written here."""
import numpy as np
import pytest
import tensorflow as tf

from aign_tf.data import driving
from aign_tf.errors import UserError
from aign_tf.tasks.sfm import SfmTask, exact_flow
from aign_tf.zoo import registry, trainer
from tests.testing import write_frames_folder, write_kitti_raw, write_odometry_poses

TINY = dict(steps=2, batch_size=2, width=4, frame_size="32x64", train_sequences=1, memory_sequences=1,
            test_sequences=1, sequence_frames=3)
PHOTOMETRIC = {"photometric_l1", "in_view", "examples"}
CAMERA = {"trl_err", "rot_err", "trl_mag_err", "trl_ang_err"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    write_frames_folder(root / "frames", count=4)
    write_kitti_raw(root / "kitti", frames=4)
    return root


def task_on(files, dataset, **options):
    return registry.get_task("sfm", **{**TINY, "dataset": dataset, "data_dir": str(files / dataset), **options})


def test_frames_are_the_test_stream_with_the_users_camera(files, capsys):
    task = task_on(files, "frames")
    test = task.pairs("test")
    assert set(test) == {"image1", "image2", "sequence"} and len(test["image1"]) == 3
    said = capsys.readouterr().out
    assert f"frames {files / 'frames'}: 3 pairs of 1 sequence(s) at 32x64, the test stream" in said
    assert task.intrinsics.focal == (40.0, 30.0)  # intrinsics.txt's 50, 45 at 80x48 -> 64x32
    assert task.camera("test") is task.intrinsics
    # The memories and paired examples are driving streets with the driving camera and all their truth.
    assert task.camera("train") == task.camera("memory") == driving.camera(32, 64)
    assert {"depth1", "rotation", "translation"} <= set(task.pairs("train"))
    assert len(task.pairs("memory")["image1"]) == 2


def test_paired_flow_uses_the_camera_of_its_frames(tmp_path):
    """The flow targets of the driving streets come from the driving camera, not the model's (here with
    its principal point far off centre)."""
    write_frames_folder(tmp_path, intrinsics="50 45 20 12")
    task = registry.get_task("sfm", **TINY, dataset="frames", data_dir=str(tmp_path))
    batch = next(iter(task._examples("train", 2, shuffle_seed=None)))  # pylint: disable=protected-access
    train = task.pairs("train")
    np.testing.assert_allclose(batch["targets"]["flow"], exact_flow(train, driving.camera(32, 64)), atol=1e-5)
    assert np.abs(batch["targets"]["flow"] - exact_flow(train, task.intrinsics)).max() > 1.0


def test_frames_evaluate_photometric_only(files, capsys):
    task = task_on(files, "frames")
    batch = next(iter(task.eval_dataset()))
    assert "targets" not in batch
    model = task.build_model()
    measured = task.evaluate(model)
    assert set(measured) == PHOTOMETRIC and measured["examples"] == 3
    assert 0 < measured["photometric_l1"] < 1 and 0 < measured["in_view"] <= 1
    assert "have no true depth or camera motion: evaluate reports the photometric error only" in capsys.readouterr().out
    assert task.evaluate(model) == measured
    assert "photometric error only" not in capsys.readouterr().out  # said once
    assert set(task.images(model, batch)) == {"frame1", "frame2", "render (frame 2 warped)", "depth"}


def test_kitti_evaluate_camera_errors_without_depth(files, capsys):
    task = task_on(files, "kitti")
    test = task.pairs("test")
    assert set(test) == {"image1", "image2", "rotation", "translation", "sequence"}
    np.testing.assert_allclose(test["translation"], [[0.0, 0.0, -1.0]] * 3, atol=1e-5)
    batch = next(iter(task.eval_dataset()))
    assert set(batch["targets"]) == {"motion"}
    measured = task.evaluate(task.build_model())
    geometric = {f"{prefix}/{name}" for prefix in ("geometric", "geometric_farneback") for name in CAMERA}
    assert set(measured) == PHOTOMETRIC | CAMERA | geometric
    assert "no true depth: evaluate reports camera errors" in capsys.readouterr().out
    # The untrained network barely moves: its translation error is about the true 1 m.
    assert 0.5 < measured["trl_err"] < 1.5


def test_a_pretrained_model_adapts_to_the_video(files, tmp_path):
    """Pretrained on the driving world, then self-supervised on the video (--init_from): the inputs are
    the video's frames, the paired flow examples driving streets."""
    strategy = tf.distribute.get_strategy()
    pretrain = registry.get_task("sfm", **TINY, model="pretrain", data_dir=str(tmp_path / "cache"))
    trainer.train(pretrain, str(tmp_path / "pretrain"), strategy=strategy, verbose=False)
    task = task_on(files, "kitti", model="depth_aign")
    batch = next(iter(task.train_batches()))
    video = task.pairs("test")["image1"]
    pixels = np.round(batch["inputs"]["image1"].numpy() * 255).astype(np.uint8)
    assert all((video == image).all(axis=(1, 2, 3)).any() for image in pixels)
    assert set(batch["paired"]["targets"]) == {"flow"}
    logs = trainer.train(task, str(tmp_path / "adapted"), strategy=strategy, verbose=False,
                         init_from=str(tmp_path / "pretrain"))
    assert np.isfinite(logs["reconstruction"])


@pytest.mark.parametrize("options, match", [
    ({"dataset": "frames"}, "--dataset=frames needs --data_dir, the folder holding your video's frames"),
    ({"dataset": "kitti"}, "--dataset=kitti needs --data_dir"),
])
def test_option_errors(options, match):
    with pytest.raises(UserError, match=match):
        SfmTask.configure(**{**TINY, **options})


def test_missing_video_is_a_user_error(tmp_path):
    task = registry.get_task("sfm", **{**TINY, "dataset": "frames", "data_dir": str(tmp_path / "nowhere")})
    with pytest.raises(UserError, match="frames directory .*nowhere does not exist"):
        task.train_batches()


def test_driving_world_along_a_trajectory(tmp_path):
    """--trajectory: every stream's streets follow the drive; evaluate has all its metrics."""
    steps = 0.9 + 0.02 * np.arange(30)
    poses = [np.eye(4)]
    for step in steps:
        move = np.eye(4)
        move[2, 3] = step
        poses.append(poses[-1] @ move)
    write_odometry_poses(tmp_path / "00.txt", np.stack(poses))
    task = registry.get_task("sfm", **TINY, data_dir=str(tmp_path / "cache"), trajectory=str(tmp_path / "00.txt"))
    for split in ("train", "memory", "test"):
        speeds = -task.pairs(split)["translation"][:, 2]
        assert (np.abs(speeds[:, np.newaxis] - steps).min(1) < 1e-5).all(), split
    assert {"depth_l1_log", "flow_epe_px", "geometric_exact_flow/trl_err"} <= set(task.evaluate(task.build_model()))
