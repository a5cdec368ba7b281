"""Same global batch, same weights: the default strategy vs MirroredStrategy on 2 CPU devices."""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from aign_tf.zoo import registry, trainer

    task = registry.get_task("inpaint")
    config = task.config(steps=4, batch_size=8, width=8, beta=0.5)
    weights = {}
    for name, strategy in (("default", tf.distribute.get_strategy()),
                           ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
        logs = trainer.train(task, config, sys.argv[1] + "/" + name, strategy=strategy, summary_every=4,
                             image_every=100, checkpoint_every=4, verbose=False)
        print(name, "replicas", strategy.num_replicas_in_sync, "logs", logs)
        model, step = trainer.load_for_inference(task, config, sys.argv[1] + "/" + name)
        assert step == 4, step
        weights[name] = [v.numpy() for v in model.weights]
        initial = [v.numpy() for v in trainer.build(task, config)[0].weights]
    diffs = [np.abs(a - b).max() for a, b in zip(weights["default"], weights["mirrored"])]
    moved = max(np.abs(a - b).max() for a, b in zip(weights["default"], initial))
    print("MAXDIFF", max(diffs), "MOVED", moved, "N", len(diffs))
""")


def test_mirrored_two_replicas_matches_default_strategy(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = [l for l in out.stdout.splitlines() if l.startswith("MAXDIFF")][0].split()
    max_diff, moved = float(line[1]), float(line[3])
    assert "mirrored replicas 2" in out.stdout
    assert moved > 1e-4, "training did not change the weights, the comparison would be vacuous"
    assert max_diff < 1e-5, out.stdout
