"""Tiny untrained models of every task, checkpointed as training leaves them and exported once per
test session (with TFLite, and ONNX when tf2onnx and onnxruntime are installed) under one export base:
{task: OUT/TASK/1}."""
import pytest

from aign_tf.export import saved_model
from tests.testing import HAVE_ONNX, TINY_MODELS, checkpointed


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """{task name: (version dir, the Keras model that was exported)}."""
    root = tmp_path_factory.mktemp("exports")
    result = {}
    for name in TINY_MODELS:
        task, model = checkpointed(name, str(root / "models" / name))
        result[name] = (saved_model.export(type(task), str(root / "models" / name), str(root / "out"),
                                           with_tflite=True, with_onnx=HAVE_ONNX), model)
    return result
