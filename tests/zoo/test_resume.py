"""Exact resume: with --deterministic, a run killed with SIGKILL and started again with the same
command ends with the weights (and optimizer state) of a run that was never interrupted."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

from aign_tf.zoo import rundir

STEPS = 12
ARGS = ["--task=inpaint", f"--steps={STEPS}", "--batch_size=8", "--width=8", "--checkpoint_every=1",
        "--summary_every=4", "--image_every=100", "--deterministic"]


def train(model_dir, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "aign_tf.zoo.train", *ARGS, f"--model_dir={model_dir}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kwargs)


def final_tensors(model_dir):
    latest = rundir.latest_checkpoint(str(model_dir))
    assert latest.endswith(f"ckpt-{STEPS}"), latest
    reader = tf.train.load_checkpoint(latest)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def test_resume_after_sigkill_at_a_random_step_gives_the_uninterrupted_weights(tmp_path):
    uninterrupted = train(tmp_path / "whole")
    kill_after = int(np.random.default_rng(7).integers(2, STEPS - 2))  # a checkpoint, then a moment later
    run = train(tmp_path / "killed")
    try:
        deadline = time.time() + 240
        while not (tmp_path / "killed" / "checkpoints" / f"ckpt-{kill_after}.index").exists():
            assert run.poll() is None and time.time() < deadline, "the run ended before it could be killed"
            time.sleep(0.05)
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        assert uninterrupted.wait(timeout=240) == 0, uninterrupted.stderr.read()[-2000:]
    finally:
        for process in (run, uninterrupted):
            if process.poll() is None:
                process.kill()
    assert run.returncode == -signal.SIGKILL
    restarted = train(tmp_path / "killed")
    assert restarted.wait(timeout=240) == 0, restarted.stderr.read()[-2000:]
    whole, resumed = final_tensors(tmp_path / "whole"), final_tensors(tmp_path / "killed")
    assert sorted(whole) == sorted(resumed)
    assert len(whole) > 20  # weights, both optimizers' moments, the step
    for name, value in whole.items():
        assert np.array_equal(value, resumed[name]), name
