"""Multi-worker training: two worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy, TF_CONFIG)
end with identical weights, equal within tolerance to one process with the same global batch."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

from tests.testing import communicate_all, free_ports

ARGS = ["--task=inpaint", "--steps=3", "--batch_size=8", "--width=8", "--beta=0.5", "--checkpoint_every=1",
        "--summary_every=1", "--image_every=100"]


def tensors(checkpoint_root, step=3):
    """Every variable of the checkpoint at `step`: weights, batch-norm statistics, optimizer state, step."""
    reader = tf.train.load_checkpoint(os.path.join(checkpoint_root, "checkpoints", f"ckpt-{step}"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def test_multi_worker_two_processes_match_one_process(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    try:
        for index in range(2):
            env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "aign_tf.zoo.train", *ARGS, "--strategy=multi_worker",
                 f"--model_dir={tmp_path / 'cluster'}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True))
    finally:
        outputs = communicate_all(workers)
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
        assert "on 2 replica(s), global batch 8" in out
    single = subprocess.run([sys.executable, "-m", "aign_tf.zoo.train", *ARGS, f"--model_dir={tmp_path / 'single'}"],
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]

    chief = tensors(str(tmp_path / "cluster"))
    other = tensors(str(tmp_path / "cluster" / "workers" / "worker-1"))
    alone = tensors(str(tmp_path / "single"))
    assert sorted(chief) == sorted(other) == sorted(alone) and len(chief) > 50
    for name, value in chief.items():
        assert np.array_equal(value, other[name]), name  # all-reduced updates: the same on both workers
        np.testing.assert_allclose(value, alone[name], atol=1e-5, err_msg=name)
    first = tensors(str(tmp_path / "single"), step=1)
    assert max(np.abs(value - first[name]).max() for name, value in alone.items()) > 1e-3  # not vacuous


def test_a_worker_whose_peer_never_starts_gives_up_in_one_line(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})}
    started = time.monotonic()
    alone = subprocess.run([sys.executable, "-m", "aign_tf.zoo.train", *ARGS, "--strategy=multi_worker",
                            "--peer_timeout=2", f"--model_dir={tmp_path / 'run'}"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert alone.returncode == 2, alone.stderr[-3000:]
    assert alone.stderr.strip().splitlines()[-1] == (
        f"error: worker 0: worker 1 ({cluster['worker'][1]}) of TF_CONFIG did not start within 2 s; "
        "start every worker of the cluster (or raise --peer_timeout)")
    assert "Traceback" not in alone.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "run").exists()
