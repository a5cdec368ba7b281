"""ONNX conversion of an exported SavedModel's `serving_default` (tf2onnx), and running it with onnxruntime.

The conversion is tf2onnx's own command, `python -m tf2onnx.convert --saved-model DIR --signature_def
serving_default`, run in a subprocess: the file is what a user converting by hand gets. ONNX holds one
graph, so model.onnx is `serving_default` only, with its input and output names. tf2onnx drops the
graph's guards (`tf.debugging.check_numerics`, the empty-batch assertion): onnxruntime refuses a wrong
dtype or shape, but runs NaN into the outputs and, on an empty batch, returns empty outputs for some
tasks and fails inside a kernel for others (pose3d's Reshape). So `run` checks the inputs first
(`aign_tf.export.signatures.check_inputs`, the check TFLite's `run` makes).

Needs the `onnx` extra: pip install 'aign_tf[onnx]' (tf2onnx, onnxruntime).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys

import numpy as np

from aign_tf.errors import UserError
from aign_tf.export.signatures import check_inputs

FILENAME = "model.onnx"  # inside the export's version directory, next to saved_model.pb
SIGNATURE = "serving_default"  # the one signature model.onnx holds
INSTALL = "pip install 'aign_tf[onnx]'"


def require(*packages: str) -> None:
    """Raises UserError naming the install command unless every package can be imported."""
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"ONNX needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                        f"not installed: {INSTALL}")


def converter_version() -> str:
    """"tf2onnx 1.17.0": what converted the model (export.json records it)."""
    return f"tf2onnx {importlib.metadata.version('tf2onnx')}"


def convert(saved_model_dir: str, path: str) -> None:
    """Writes the SavedModel's `serving_default` as an ONNX model to `path`; UserError with tf2onnx's
    message if it cannot."""
    require("tf2onnx")
    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", saved_model_dir,
               "--signature_def", SIGNATURE, "--output", path]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.split(":")[0].endswith(("Error", "Exception"))]
        reason = (errors or lines or [f"exit status {done.returncode}"])[-1]
        raise UserError(f"ONNX conversion of {saved_model_dir} failed: {reason}")


def session(path: str, threads: int | None = None):
    """An onnxruntime CPU session on the .onnx file at `path` (`threads`: None = onnxruntime's default)."""
    require("onnxruntime")
    import onnxruntime  # pylint: disable=import-outside-toplevel

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    if threads:
        options.intra_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own InvalidProtobuf, NoSuchFile, Fail, ... (not OSError)
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"{path} does not load ({first}); it was cut short or edited: export again") from None


def dtype(onnx_type: str) -> np.dtype:
    """The NumPy dtype of an onnxruntime type string: "tensor(float)" -> float32, "tensor(uint8)" -> uint8."""
    name = onnx_type.removeprefix("tensor(").removesuffix(")")
    return np.dtype({"float": "float32", "double": "float64"}.get(name, name))


def run(model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs an onnxruntime session of model.onnx after `signatures.check_inputs`; {output name: array}."""
    expected = {arg.name: (dtype(arg.type), [d if isinstance(d, int) else None for d in arg.shape])
                for arg in model.get_inputs()}
    check_inputs(inputs, expected, f"the ONNX model ({SIGNATURE})")
    names = [arg.name for arg in model.get_outputs()]
    return dict(zip(names, model.run(names, inputs)))
