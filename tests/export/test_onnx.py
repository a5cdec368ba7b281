"""ONNX export (`aign_tf.export.onnx`): every task's serving_default converted by tf2onnx runs in onnxruntime
like the SavedModel, tf2onnx's plain command converts an export, `onnx.run` refuses what the converted
graph no longer checks, and conversion problems are one line. Skipped without tf2onnx and onnxruntime."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.export import onnx, saved_model
from aign_tf.export.signatures import signature, spec
from aign_tf.zoo import registry
from tests.testing import HAVE_ONNX, ONNX_MISSING, TINY_MODELS

pytestmark = pytest.mark.skipif(not HAVE_ONNX, reason=ONNX_MISSING)

SIGNATURE = "serving_default"


def saved_model_outputs(loaded, inputs: dict) -> dict:
    outputs = loaded.signatures[SIGNATURE](**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


@pytest.mark.parametrize("task", sorted(TINY_MODELS))
def test_serving_default_runs_in_onnxruntime_like_the_saved_model(exports, task):
    path = exports[task][0]
    loaded = tf.saved_model.load(path)
    with open(os.path.join(path, "export.json")) as f:
        described = json.load(f)
    session = onnx.session(os.path.join(path, onnx.FILENAME))
    outputs = described["signatures"][SIGNATURE]["outputs"]
    # The ONNX model has the signature's names and dtypes.
    assert [arg.name for arg in session.get_inputs()] == sorted(described["signatures"][SIGNATURE]["inputs"])
    assert {arg.name: onnx.dtype(arg.type).name for arg in session.get_outputs()} == {
        name: s["dtype"] for name, s in outputs.items()}
    recorded = described["onnx"]
    assert recorded["file"] == onnx.FILENAME and recorded["converter"].startswith("tf2onnx ")
    assert list(recorded["max_abs_difference"]) == [SIGNATURE]
    assert set(recorded["max_abs_difference"][SIGNATURE]) == set(outputs)

    for batch_size in (1, 3):  # other inputs and batch sizes than the export's own check
        inputs = saved_model.example_inputs(loaded, described["signatures"], batch_size, seed=1)[SIGNATURE]
        expected, got = saved_model_outputs(loaded, inputs), onnx.run(session, inputs)
        assert set(got) == set(expected)
        for name, value in expected.items():
            assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
            if value.dtype == np.uint8:  # rounding may flip a value on a half grey level
                assert np.abs(got[name].astype(int) - value.astype(int)).max() <= 1, name
            else:  # pose3d's pixels: 1e-3 px at ~300 px is float32 round-off
                np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-3 if task == "pose3d" else 1e-5,
                                           err_msg=name)


def test_the_plain_tf2onnx_command_converts_an_export(exports, tmp_path):
    path = exports["inpaint"][0]  # image, mask -> completed, prediction: once image -> image, which tf2onnx refused
    done = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", path, "--output",
                           str(tmp_path / "m.onnx")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    session = onnx.session(str(tmp_path / "m.onnx"))  # the first signature, serving_default
    assert [arg.name for arg in session.get_inputs()] == ["image", "mask"]
    assert sorted(arg.name for arg in session.get_outputs()) == ["completed", "prediction"]


def test_run_refuses_what_the_converted_graph_does_not_check(exports):
    path = exports["pose3d"][0]
    session = onnx.session(os.path.join(path, onnx.FILENAME))
    keypoints, size = np.full([2, 15, 2], 256, np.float32), np.full([2, 2], 512, np.float32)
    nan = keypoints.copy()
    nan[1, 3, 0] = np.nan
    # What model.onnx itself does: NaN runs through, into the outputs (the SavedModel refuses it).
    raw = session.run(None, {"keypoints": nan, "image_size": size})
    assert any(np.isnan(value).any() for value in raw)
    with pytest.raises(UserError, match=r"^input 'keypoints' of the ONNX model \(serving_default\) holds NaN or "
                                        r"infinity$"):
        onnx.run(session, {"keypoints": nan, "image_size": size})
    with pytest.raises(UserError, match=r"of the ONNX model \(serving_default\) holds no examples \(batch size 0\)"):
        onnx.run(session, {"keypoints": keypoints[:0], "image_size": size[:0]})
    with pytest.raises(UserError, match=r"input 'keypoints' of the ONNX model \(serving_default\) is float32 "
                                        r"\[2, 14, 2\]; expected float32 \[Nx15x2\]"):
        onnx.run(session, {"keypoints": keypoints[:, 1:], "image_size": size})
    with pytest.raises(UserError, match=r"input 'image_size' .* is float64 \[2, 2\]; expected float32 \[Nx2\]"):
        onnx.run(session, {"keypoints": keypoints, "image_size": size.astype(np.float64)})
    with pytest.raises(UserError, match=r"takes inputs \['image_size', 'keypoints'\], got \['keypoints'\]"):
        onnx.run(session, {"keypoints": keypoints})


def test_outputs_named_like_inputs_are_refused_when_the_signature_is_traced():
    echo = signature([spec("image", (2,))], lambda inputs: {"image": inputs["image"] * 2})
    with pytest.raises(ValueError, match=r"outputs \['image'\] have the names of inputs"):
        echo.function.get_concrete_function()


def test_a_failed_conversion_is_one_line_with_tf2onnx_reason(tmp_path):
    module = tf.Module()  # the old kind of signature: image -> image
    module.serve = tf.function(lambda image: {"image": image * 2.0},
                               input_signature=[tf.TensorSpec([None, 2], tf.float32, name="image")])
    tf.saved_model.save(module, str(tmp_path / "model"), signatures={SIGNATURE: module.serve})
    with pytest.raises(UserError) as raised:
        onnx.convert(str(tmp_path / "model"), str(tmp_path / "m.onnx"))
    message = str(raised.value)
    assert message == f"ONNX conversion of {tmp_path / 'model'} failed: ValueError: graph input 'image' not exist"


def test_missing_packages_are_named_before_any_work(monkeypatch, tmp_path):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "tf2onnx" else
                        find_spec(name, *args))
    with pytest.raises(UserError, match=r"^ONNX needs tf2onnx, which is not installed: pip install 'aign_tf\[onnx\]'$"):
        saved_model.export(registry.task_class("superres"), str(tmp_path / "nothing"), str(tmp_path / "out"),
                           with_onnx=True)
    assert not (tmp_path / "out").exists()

