"""export/client.py against the TF Serving test doubles (serving_double.py) of the session's exports,
and export/models.config."""
import contextlib
import importlib.util
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from PIL import Image
from tensorflow_serving.config import model_server_config_pb2

from aign_tf.zoo import registry
from tests.export import serving_double

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("serving_client", ROOT / "export" / "client.py")
client = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(client)

PROTOCOLS = {"rest": (serving_double.rest_double, client.rest_predict, client.rest_metadata),
             "grpc": (serving_double.grpc_double, client.grpc_predict, client.grpc_metadata)}
RNG = np.random.default_rng(0)


def inpaint_inputs(batch: int = 2) -> dict:
    """Random digits-sized uint8 images, the centre 14x14 hidden (mask 0), the rest visible (255)."""
    mask = np.full([batch, 28, 28, 1], 255, np.uint8)
    mask[:, 7:21, 7:21] = 0
    return {"image": RNG.integers(0, 256, [batch, 28, 28, 1]).astype(np.uint8), "mask": mask}


def floats(low: float, high: float, shape: list) -> np.ndarray:
    return RNG.uniform(low, high, shape).astype(np.float32)


INPUTS = {  # (task, signature): meaningful inputs of batch 2
    ("inpaint", "serving_default"): inpaint_inputs(),
    ("inpaint", "render"): {"image": floats(0, 1, [2, 28, 28, 1]),
                            "mask": (RNG.uniform(size=[2, 28, 28, 1]) < 0.5).astype(np.float32)},
    ("pose3d", "serving_default"): {"keypoints": 256 + floats(-64, 64, [2, 15, 2]),
                                    "image_size": np.full([2, 2], 512, np.float32)},
    ("pose3d", "render"): {"joints": np.concatenate([floats(-0.5, 0.5, [2, 15, 2]), floats(2, 3, [2, 15, 1])], -1),
                           "focal_px": floats(500, 1000, [2]), "image_size": np.full([2, 2], 512, np.float32)},
    ("sfm", "serving_default"): {"image1": RNG.integers(0, 256, [2, 32, 96, 3]).astype(np.uint8),
                                 "image2": RNG.integers(0, 256, [2, 32, 96, 3]).astype(np.uint8)},
}


@pytest.fixture(scope="module")
def servers(exports):
    """{(protocol, task): address} of a double of every export."""
    with contextlib.ExitStack() as stack:
        yield {(protocol, task): stack.enter_context(double(version_dir, task))
               for protocol, (double, _, _) in PROTOCOLS.items() for task, (version_dir, _) in exports.items()}


def in_process(exports, task: str, signature: str, inputs: dict) -> dict:
    """The signature run by the SavedModel that the doubles serve, in this process."""
    function = serving_double.servable(exports[task][0], task).loaded.signatures[signature]
    return {name: value.numpy() for name, value in function(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def assert_same(got: dict, expected: dict) -> None:
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        if value.dtype == np.uint8:
            np.testing.assert_array_equal(got[name], value, err_msg=name)
        else:
            np.testing.assert_allclose(got[name], value, rtol=0, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("task, signature", INPUTS)
def test_predict_equals_the_saved_model_in_process(exports, servers, protocol, task, signature):
    inputs = INPUTS[task, signature]
    got = PROTOCOLS[protocol][1](servers[protocol, task], task, inputs, signature)
    assert_same(got, in_process(exports, task, signature, inputs))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("task", registry.TASKS)
def test_metadata_equals_the_saved_model_signatures(exports, servers, protocol, task):
    def specs(structure):
        return {name: (s.dtype.name, [-1 if d is None else d for d in s.shape.as_list()])
                for name, s in structure.items()}

    loaded = serving_double.servable(exports[task][0], task).loaded
    expected = {name: {"inputs": specs(f.structured_input_signature[1]), "outputs": specs(f.structured_outputs)}
                for name, f in loaded.signatures.items()}
    assert PROTOCOLS[protocol][2](servers[protocol, task], task) == expected


REFUSED = {  # (signature, inputs, the client's message)
    "dtype": ("serving_default", {**inpaint_inputs(), "image": inpaint_inputs()["image"].astype(np.float32)},
              "input 'image' is float32 [2, 28, 28, 1]; signature 'serving_default' expects uint8 [-1, 28, 28, 1]"),
    "shape": ("serving_default", {**inpaint_inputs(), "image": inpaint_inputs()["image"][:, :20]},
              "input 'image' is uint8 [2, 20, 28, 1]; signature 'serving_default' expects uint8 [-1, 28, 28, 1]"),
    "missing": ("serving_default", {"image": inpaint_inputs()["image"]},
                "signature 'serving_default' takes inputs ['image', 'mask'], got ['image']"),
    "signature": ("serve", inpaint_inputs(),
                  "unknown signature 'serve'; the model has ['generator', 'render', 'serving_default']"),
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", REFUSED)
def test_the_client_refuses_inputs_that_do_not_fit_before_sending(exports, servers, protocol, case):
    signature, inputs, message = REFUSED[case]
    model = serving_double.servable(exports["inpaint"][0], "inpaint")
    sent = model.predictions
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        PROTOCOLS[protocol][1](servers[protocol, "inpaint"], "inpaint", inputs, signature)
    assert model.predictions == sent


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_server_errors_become_runtime_errors_with_the_server_message(servers, protocol, monkeypatch):
    address, predict = servers[protocol, "inpaint"], PROTOCOLS[protocol][1]
    with pytest.raises(RuntimeError, match=re.escape("Servable not found for request: Latest(unknown)")):
        predict(address, "unknown", inpaint_inputs())
    with pytest.raises(RuntimeError, match=re.escape("Servable not found for request: Specific(inpaint, 7)")):
        predict(address, "inpaint", inpaint_inputs(), version=7)
    monkeypatch.setattr(client, "check_inputs", lambda *args: None)  # the graph's own shape check
    with pytest.raises(RuntimeError, match=re.escape("Shape of tensor image [2,20,28,1] is not compatible with "
                                                     "expected shape [?,28,28,1]")) as error:
        predict(address, "inpaint", REFUSED["shape"][1])
    assert "\n" not in str(error.value)


def run_client(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "export/client.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


def test_cli_writes_the_outputs_of_png_inputs(exports, servers, tmp_path):
    inputs = inpaint_inputs(batch=1)
    for name, value in inputs.items():
        Image.fromarray(value[0, ..., 0]).save(tmp_path / f"{name}.png")
    result = run_client(f"--server={servers['rest', 'inpaint']}", "--model=inpaint", f"--input=image={tmp_path}/image.png",
                        "--input", f"mask={tmp_path}/mask.png", f"--output={tmp_path}/out")
    assert result.returncode == 0, result.stderr
    assert "completed: uint8 [1, 28, 28, 1]" in result.stdout and "prediction: uint8 [1, 28, 28, 1]" in result.stdout
    for name, value in in_process(exports, "inpaint", "serving_default", inputs).items():
        np.testing.assert_array_equal(np.load(tmp_path / "out" / f"{name}.npy"), value)
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / f"{name}.png")), value[0, ..., 0])


def test_cli_reports_a_bad_input_file_in_one_line(servers, tmp_path):
    result = run_client(f"--server={servers['rest', 'inpaint']}", "--model=inpaint",
                        f"--input=image={tmp_path}/missing.png", f"--input=mask={tmp_path}/missing.png")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "missing.png" in errors[0], result.stderr


def test_models_config_serves_every_task():
    config = text_format.Parse((ROOT / "export" / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    models = config.model_config_list.config
    assert sorted(m.name for m in models) == sorted(registry.TASKS)
    assert all(m.base_path == f"/models/{m.name}" and m.model_platform == "tensorflow" for m in models)
