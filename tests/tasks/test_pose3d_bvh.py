"""pose3d on the user's BVH motion capture (--dataset=bvh) and with more training motion
(--extra_clips=climbing or a BVH folder): which clips train and test, and train / evaluate
from the command line, on BVH files written by the tests (tests/testing.py: DeepMimic clips as BVH)."""
import json

import numpy as np
import pytest

from aign_tf.data import climbing, deepmimic
from aign_tf.errors import UserError
from aign_tf.tasks.pose3d import data
from aign_tf.zoo import registry
from tests.testing import zoo_process, write_bvh_folder

TINY = dict(steps=2, batch_size=8, width=4, components=10, generator="mlp", train_cameras=1, test_cameras=1)


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    path = tmp_path_factory.mktemp("bvh")
    write_bvh_folder(path)
    return str(path)


def test_bvh_folder_is_split_by_file_and_read_as_the_clips(directory):
    task = registry.get_task("pose3d", dataset="bvh", data_dir=directory, **TINY)
    train, test = task.canonical
    assert sorted(train) == ["kick", "run", "sub/jump", "sub/punch", "walk"] and list(test) == ["sub/spin"]
    embedded = data.canonical_clips(deepmimic.load_clips(["spin"]))["spin"]  # through the same canonical frame
    np.testing.assert_allclose(test["sub/spin"], embedded, atol=1e-4)
    assert set(task.test_views.clip) == {"sub/spin"} and task.basis.num_joints == deepmimic.NUM_JOINTS


def test_extra_clips_join_the_training_skeletons_only(directory):
    plain = registry.get_task("pose3d", **TINY)
    climbing_task = registry.get_task("pose3d", extra_clips="climbing", **TINY)
    train, test = climbing_task.canonical
    assert list(test) == list(plain.canonical[1])  # the test clips do not change
    assert sorted(train) == sorted([*plain.canonical[0], *(f"extra/{name}" for name in climbing.CLIPS)])
    frames = sum(len(v) for v in train.values())
    assert frames == sum(len(v) for v in plain.canonical[0].values()) + 3237
    assert len(climbing_task.paired_examples["pose"]) == frames * TINY["train_cameras"]
    folder_task = registry.get_task("pose3d", extra_clips=directory, **TINY)
    extra = {name for name in folder_task.canonical[0] if name.startswith("extra/")}
    assert extra == {f"extra/{name}" for name in ("kick", "run", "sub/jump", "sub/punch", "sub/spin", "walk")}


def test_options_that_cannot_work_are_refused_in_one_line(tmp_path):
    with pytest.raises(UserError, match=r"--dataset=bvh needs --data_dir, a folder of .bvh"):
        registry.get_task("pose3d", dataset="bvh", **TINY)
    with pytest.raises(UserError, match=r"Human3.6M has 17 joints: drop --extra_clips"):
        registry.get_task("pose3d", dataset="h36m", data_dir=str(tmp_path), extra_clips="climbing", **TINY)
    with pytest.raises(UserError, match=r"no .bvh files under"):
        registry.get_task("pose3d", extra_clips=str(tmp_path), **TINY).canonical


def _cli(module, *args):
    return zoo_process(module, "pose3d", *args)


def test_train_and_evaluate_from_the_command_line(directory, tmp_path):
    model_dir = str(tmp_path / "pose-bvh")
    flags = [f"--data_dir={directory}", f"--model_dir={model_dir}", "--dataset=bvh", "--batch_size=8", "--width=4",
             "--components=10", "--generator=mlp", "--train_cameras=1", "--extra_clips=climbing"]
    first = _cli("train", *flags, "--steps=3")
    assert first.wait(timeout=300) == 0, first.stderr.read()[-3000:]
    options = json.loads(open(f"{model_dir}/config.json").read())["options"]
    assert options["dataset"] == "bvh" and options["extra_clips"] == "climbing"
    measured = _cli("evaluate", f"--model_dir={model_dir}")
    out, err = measured.communicate(timeout=300)
    assert measured.returncode == 0 and "pose3d at step 3" in out, err[-3000:]
    metrics = json.loads(open(f"{model_dir}/metrics.json").read())["metrics"]
    assert metrics["examples"] == 4 * deepmimic.load_clips(["spin"])["spin"].num_frames  # 4 test cameras
    assert np.isfinite(metrics["mpjpe_mm/sub/spin"]) and metrics["mpjpe_mm"] == metrics["mpjpe_mm/sub/spin"]
