"""Preemption: SIGTERM (or SIGINT) during training saves a checkpoint at the step in flight, prints one
line and exits 143 (130); the same command resumes. With two workers, a signal to one stops both at one step."""
import json
import os
import re
import signal
import subprocess
import sys
import time

from tests.testing import communicate_all, free_ports

COMMON = ["--task=inpaint", "--batch_size=8", "--width=8", "--checkpoint_every=500", "--summary_every=1",
          "--image_every=1000"]


def train(model_dir, *args, env=None):
    """A training process in the foreground: SIGINT reaches it even where the test runner itself ignores
    SIGINT (a background job of a non-interactive shell, whose children inherit SIG_IGN)."""
    return subprocess.Popen([sys.executable, "-m", "aign_tf.zoo.train", *COMMON, f"--model_dir={model_dir}", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_steps(process, log, timeout=200):
    """Reads the progress bar until a few steps are done (stdout is a pipe: one update per line)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        log.append(line)
        match = re.search(r"(\d+)/\d+", line)
        if match and int(match[1]) >= 3:
            return
    raise AssertionError("training never got going:\n" + "".join(log)[-2000:])


def checkpoints(directory):
    return sorted(int(p.name[len("ckpt-"):-len(".index")]) for p in (directory / "checkpoints").glob("ckpt-*.index"))


def stopped(process, log, number, status):
    out, err = process.communicate(timeout=120)
    assert process.returncode == status, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = [l for l in err.splitlines() if l.startswith("train: stopped by")]
    assert len(lines) == 1, err[-3000:]
    match = re.match(rf"train: stopped by {number}( to another worker)? at step (\d+); saved (\S+); "
                     "run the same command to resume$", lines[0])
    assert match, lines[0]
    return int(match[2]), match[3]


def test_sigterm_saves_at_the_step_in_flight_and_the_same_command_resumes(tmp_path):
    run = train(tmp_path, "--steps=1000")
    log = []
    wait_for_steps(run, log)
    run.send_signal(signal.SIGTERM)
    step, saved = stopped(run, log, "SIGTERM", 143)
    assert 3 <= step < 500 and saved == str(tmp_path / "checkpoints" / f"ckpt-{step}")
    assert checkpoints(tmp_path) == [step]
    again = train(tmp_path, f"--steps={step + 3}")
    out, err = again.communicate(timeout=240)
    assert again.returncode == 0, err[-3000:]
    assert f"resumed from {saved} at step {step}" in out, out
    assert checkpoints(tmp_path) == [step, step + 3]
    assert (tmp_path / "samples" / "latest.png").exists()  # the last step's picture, and TensorBoard's logs
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "train").iterdir())


def test_sigint_saves_and_exits_130_without_traceback(tmp_path):
    run = train(tmp_path, "--steps=100000")  # cannot finish before the signal, however late the pipe is read
    wait_for_steps(run, [])
    run.send_signal(signal.SIGINT)
    step, _ = stopped(run, [], "SIGINT", 130)
    assert checkpoints(tmp_path) == [step]


def test_sigterm_to_one_of_two_workers_stops_both_at_one_step(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    envs = [{**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
            for i in range(2)]
    workers = [train(tmp_path, "--steps=1000", "--strategy=multi_worker", env=env) for env in envs]
    try:
        wait_for_steps(workers[1], [], timeout=300)
        workers[1].send_signal(signal.SIGTERM)
        steps = [stopped(worker, [], "SIGTERM", 143)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert steps[0] == steps[1] and 3 <= steps[0] < 500
    assert checkpoints(tmp_path) == checkpoints(tmp_path / "workers" / "worker-1") == [steps[0]]
    # The same commands resume both workers from that step.
    workers = [train(tmp_path, f"--steps={steps[0] + 2}", "--strategy=multi_worker", env=env) for env in envs]
    outputs = communicate_all(workers)
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
        assert f"at step {steps[0]}" in out, out
    assert checkpoints(tmp_path)[-1] == steps[0] + 2
