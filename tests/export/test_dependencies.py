"""Export reads a model directory; it never needs the training loop."""
import json
import subprocess
import sys


def test_export_does_not_import_the_training_loop():
    code = ("import json, sys; import aign_tf.export.saved_model, aign_tf.export.__main__, aign_tf.export.latency, "
            "aign_tf.export.onnx; print(json.dumps(sorted(m for m in sys.modules if m.startswith('aign_tf.'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout.splitlines()[-1])
    assert "aign_tf.zoo.rundir" in loaded  # what it does read
    assert "aign_tf.zoo.trainer" not in loaded and "aign_tf.zoo.pictures" not in loaded
