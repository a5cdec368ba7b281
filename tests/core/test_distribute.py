"""Same global batch, same weights: the default strategy vs MirroredStrategy on 2 CPU devices."""
import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from aign_tf.zoo import registry, rundir, trainer

    task = registry.get_task(sys.argv[2], steps=4, batch_size=8, beta=0.5, **json.loads(sys.argv[3]))
    weights = {}
    for name, strategy in (("default", tf.distribute.get_strategy()),
                           ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
        logs = trainer.train(task, sys.argv[1] + "/" + name, strategy=strategy, summary_every=4,
                             image_every=100, checkpoint_every=4, verbose=False)
        print(name, "replicas", strategy.num_replicas_in_sync, "LOGS", json.dumps(logs))
        model, checkpoint = trainer.build(task)  # every weight, critics' too, as training left them
        assert rundir.restore(checkpoint, sys.argv[1] + "/" + name) is not None
        step = int(checkpoint.step.numpy())
        assert step == 4, step
        weights[name] = [v.numpy() for v in model.weights]
        initial = [v.numpy() for v in trainer.build(task)[0].weights]
    diffs = [np.abs(a - b).max() for a, b in zip(weights["default"], weights["mirrored"])]
    moved = max(np.abs(a - b).max() for a, b in zip(weights["default"], initial))
    print("MAXDIFF", max(diffs), "MOVED", moved, "N", len(diffs))
""")


@pytest.mark.parametrize("task, options, tolerance", [
    ("inpaint", {"width": 8}, 1e-5),
])
def test_mirrored_two_replicas_matches_default_strategy(tmp_path, task, options, tolerance):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), task, json.dumps(options)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = [l for l in out.stdout.splitlines() if l.startswith("MAXDIFF")][0].split()
    max_diff, moved = float(line[1]), float(line[3])
    assert "mirrored replicas 2" in out.stdout
    assert moved > 10 * tolerance, "training barely changed the weights, the comparison would be vacuous"
    assert max_diff < tolerance, out.stdout
    logs = [json.loads(l.split("LOGS", 1)[1]) for l in out.stdout.splitlines() if "LOGS" in l]
    for name in ("reconstruction", "g_total", "d_loss", "g_updated", "d_updated"):
        assert abs(logs[0][name] - logs[1][name]) <= 1e-4 * max(1.0, abs(logs[0][name])), (name, logs)
