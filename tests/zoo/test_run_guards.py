"""A run directory that never lies (issue 15): one writer at a time, a resume only of the run that was
started (steps and learning_rate may change, and a new learning_rate is applied), no silent restart
over checkpoints that do not read back, damaged checkpoint state survived."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.zoo import registry, rundir, trainer

SETTINGS = dict(batch_size=8, width=8)


def task(**overrides):
    return registry.get_task("inpaint", **{**SETTINGS, **overrides})


def train(model_dir, *, steps, **kwargs):
    settings = {"checkpoint_every": 1, "summary_every": 100, "image_every": 100}
    options = {k: kwargs.pop(k) for k in list(kwargs) if k not in ("init_from",)}
    return trainer.train(task(steps=steps, **options), str(model_dir), strategy=tf.distribute.get_strategy(),
                         verbose=False, **settings, **kwargs)


def runs(model_dir):
    return [json.loads(line) for line in (model_dir / "runs.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model dir trained to step 2 (checkpoints 1 and 2); copy it before changing it."""
    model_dir = tmp_path_factory.mktemp("trained") / "run"
    train(model_dir, steps=2)
    return model_dir


@pytest.fixture
def run_dir(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def test_a_fresh_run_writes_config_json_and_one_line_of_runs_jsonl(trained):
    assert rundir.read_config(str(trained)) == task(steps=2).config
    (record,) = runs(trained)
    assert record["start_step"] == 0 and record["changed"] == [] and record["pid"] == os.getpid()
    assert {"time", "user", "host", "argv"} <= set(record)
    assert not (trained / "checkpoints" / "ckpt-2_temp").exists()


@pytest.mark.parametrize("change, listed", [({"beta": 0.5}, "beta: 0.02 -> 0.5"),
                                            ({"mask": "bottom"}, "mask: 'center' -> 'bottom'"),
                                            ({"batch_size": 4, "seed": 3}, "batch_size: 8 -> 4; seed: 0 -> 3")])
def test_resuming_with_other_options_is_refused_and_changes_nothing(run_dir, change, listed):
    config = (run_dir / "config.json").read_bytes()
    with pytest.raises(UserError) as refused:
        train(run_dir, steps=4, **change)
    message = str(refused.value)
    assert listed in message and "only steps and learning_rate may change" in message
    assert f"--init_from={run_dir}" in message and "another --model_dir" in message
    assert (run_dir / "config.json").read_bytes() == config
    assert len(runs(run_dir)) == 1
    assert rundir.latest_checkpoint(str(run_dir)).endswith("ckpt-2")


def test_a_new_learning_rate_on_resume_is_applied_and_recorded(run_dir, monkeypatch):
    config = (run_dir / "config.json").read_bytes()
    built = []
    build = trainer.build
    monkeypatch.setattr(trainer, "build", lambda t: built.append(build(t)) or built[-1])
    train(run_dir, steps=3, learning_rate=1e-3)
    model, _ = built[0]
    assert float(model.g_optimizer.learning_rate.numpy()) == pytest.approx(1e-3)
    assert float(model.d_optimizer.learning_rate.numpy()) == pytest.approx(1e-3)
    reader = tf.train.load_checkpoint(rundir.latest_checkpoint(str(run_dir)))
    for optimizer in ("g_optimizer", "d_optimizer"):  # and the checkpoint saved with that rate
        assert float(reader.get_tensor(f"{optimizer}/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE")) == pytest.approx(1e-3)
    assert (run_dir / "config.json").read_bytes() == config  # written once, at the start
    first, second = runs(run_dir)
    assert second["start_step"] == 2 and second["changed"] == ["steps: 2 -> 3", "learning_rate: 0.0001 -> 0.001"]


def test_checkpoints_none_of_which_reads_back_are_refused_not_overwritten(run_dir):
    for data in (run_dir / "checkpoints").glob("ckpt-*.data-*"):
        data.write_bytes(data.read_bytes()[:10])
    with pytest.raises(UserError, match=r"no checkpoint in .*checkpoints reads back \(ckpt-1\.data.*ckpt-2\.index\); "
                                        r"move them away"):
        train(run_dir, steps=3)
    assert len(runs(run_dir)) == 1
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("ckpt-*")) == [
        "ckpt-1.data-00000-of-00001", "ckpt-1.index", "ckpt-2.data-00000-of-00001", "ckpt-2.index"]


def test_a_garbage_state_file_and_a_stale_temporary_do_not_stop_a_resume(run_dir):
    directory = run_dir / "checkpoints"
    (directory / "checkpoint").write_bytes(b"\xff\xfe\x00 garbage {{")
    stale = directory / "ckpt-3_temp"
    stale.mkdir()
    (stale / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 100)
    assert rundir.latest_checkpoint(str(run_dir)).endswith("ckpt-2")
    train(run_dir, steps=3)
    assert not stale.exists()
    assert runs(run_dir)[-1]["start_step"] == 2
    assert tf.train.latest_checkpoint(str(directory)).endswith("ckpt-3")  # the state file parses again
    assert rundir.latest_checkpoint(str(run_dir)).endswith("ckpt-3")


def test_a_run_that_has_nothing_left_to_do_writes_nothing(run_dir):
    config = (run_dir / "config.json").read_bytes()
    assert train(run_dir, steps=2) == {}
    assert (run_dir / "config.json").read_bytes() == config and len(runs(run_dir)) == 1


def test_config_json_of_a_run_that_never_checkpointed_may_be_replaced(tmp_path):
    rundir.write_config(str(tmp_path), task(steps=1, beta=0.5).config)
    train(tmp_path, steps=1)
    assert rundir.read_config(str(tmp_path)).beta == task().config.beta


def test_a_run_resumed_from_another_init_from_is_refused(trained, tmp_path):
    train(tmp_path / "tuned", steps=1, init_from=str(trained))
    assert runs(tmp_path / "tuned")[0]["init_from"] == os.path.realpath(trained)
    with pytest.raises(UserError, match="started from .*trained.*, not from .*elsewhere"):
        train(tmp_path / "tuned", steps=2, init_from=str(tmp_path / "elsewhere"))
    from aign_tf.zoo import adapt
    with pytest.raises(UserError, match=r"already holds an adaptation with other settings \(from_dir: .*elsewhere"):
        adapt.check_earlier_adaptation(str(tmp_path / "tuned"), str(tmp_path / "elsewhere"), task(steps=2).config, 2)
    with pytest.raises(UserError, match=r"already holds an adaptation with other settings \(mask: 'center' -> 'random'"):
        adapt.check_earlier_adaptation(str(tmp_path / "tuned"), str(trained), task(steps=2, mask="random").config, 2)
    adapt.check_earlier_adaptation(str(tmp_path / "tuned"), str(trained), task(steps=2).config, 2)  # the same: fine


def test_the_lock_is_exclusive_released_and_reentrant(tmp_path):
    with rundir.exclusive(str(tmp_path), "adapt"):
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()} adapt\n"
        with rundir.exclusive(str(tmp_path), "train"):  # the same thread: adapt calls train
            pass
        holder = subprocess.run([sys.executable, "-c", "import sys; from aign_tf.zoo import rundir\n"
                                 "with rundir.exclusive(sys.argv[1], 'x'): pass", str(tmp_path)],
                                capture_output=True, text=True, timeout=120)
        assert f"is being written by process {os.getpid()} (adapt)" in holder.stderr
    with rundir.exclusive(str(tmp_path), "train"):  # released at the end of the block
        pass


def command(*args):
    return [sys.executable, "-m", "aign_tf.zoo.train", "--task=inpaint", "--batch_size=8", "--width=8", *args]


def test_a_second_writer_is_refused_naming_the_first_and_a_kill_leaves_no_stale_lock(tmp_path):
    model_dir = tmp_path / "run"
    first = subprocess.Popen(command("--steps=100000", "--checkpoint_every=5", "--summary_every=100",
                                     f"--model_dir={model_dir}"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not (model_dir / "checkpoints" / "ckpt-5.index").exists():
            assert first.poll() is None and time.time() < deadline, first.stderr.read()[-2000:] if first.poll() else ""
            time.sleep(0.1)
        assert (model_dir / ".lock").read_text() == f"{first.pid} train\n"
        second = subprocess.run(command("--steps=100000", f"--model_dir={model_dir}"),
                                capture_output=True, text=True, timeout=240)
        assert first.poll() is None, "the first run ended before the second one tried"
        lines = [line for line in second.stderr.splitlines() if line.startswith("error:")]
        assert second.returncode == 2 and lines == [
            f"error: {model_dir} is being written by process {first.pid} (train); wait for it or use another "
            "--model_dir"], second.stderr[-2000:]
        with pytest.raises(UserError, match=f"process {first.pid} \\(train\\)"):  # in-process writers too
            train(model_dir, steps=100000)
    finally:
        first.kill()
        first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL
    latest = int(rundir.latest_checkpoint(str(model_dir)).rsplit("-", 1)[1])
    third = train(model_dir, steps=latest + 1)  # the killed run's lock went with it
    assert third and runs(model_dir)[-1]["start_step"] == latest
    assert runs(model_dir)[-1]["changed"] == [f"steps: 100000 -> {latest + 1}"]


def test_adapt_into_its_own_source_dir_is_refused(tmp_path):
    np.savez(tmp_path / "kp.npz", keypoints=np.zeros((2, 15, 2), np.float32))
    result = subprocess.run([sys.executable, "-m", "aign_tf.zoo.adapt", "--task=pose3d", f"--from_dir={tmp_path}",
                             f"--model_dir={tmp_path}/.", f"--keypoints={tmp_path / 'kp.npz'}", "--steps=2"],
                            capture_output=True, text=True, timeout=240)
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert result.returncode == 2 and last.startswith("error: ") and "is --from_dir itself" in last, result.stderr


def test_adapt_refuses_a_model_dir_adapted_on_other_keypoints(tmp_path):
    from aign_tf.zoo import adapt
    from tests.testing import checkpointed
    np.savez(tmp_path / "a.npz", keypoints=np.zeros((2, 15, 2), np.float32))
    np.savez(tmp_path / "b.npz", keypoints=np.zeros((2, 15, 2), np.float32))
    task, _ = checkpointed("pose3d", str(tmp_path / "adapted"), keypoints=str(tmp_path / "a.npz"))
    other = task.config.replace(keypoints=str(tmp_path / "b.npz"), steps=5)
    with pytest.raises(UserError, match=r"already holds an adaptation with other settings \(keypoints: .*a\.npz' -> "
                                        r".*b\.npz'\); use another --model_dir"):
        adapt.check_earlier_adaptation(str(tmp_path / "adapted"), str(tmp_path / "source"), other, 5)
    same = task.config.replace(steps=5)
    adapt.check_earlier_adaptation(str(tmp_path / "adapted"), str(tmp_path / "source"), same, 5)  # continued to 5
    # fewer steps than it holds (--steps=0: predict with the source's weights) would not be its predictions
    with pytest.raises(UserError, match=r"already holds an adaptation of 1 steps, more than --steps=0; "
                                        r"use another --model_dir"):
        adapt.check_earlier_adaptation(str(tmp_path / "adapted"), str(tmp_path / "source"), same, 0)
