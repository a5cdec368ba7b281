"""Random malformed inputs to every signature of every task's export, through the SavedModel, through
TFLite (`aign_tf.export.tflite.run`) and, for serving_default, through ONNX (`aign_tf.export.onnx.run`,
when tf2onnx and onnxruntime are installed): each one is refused with a clean error that names the
input or the expected spec, never run into garbage or a crash.

Malformations, each on valid random inputs (batch 2): another dtype, one axis fewer or more, a non-batch
axis one longer, NaN and +inf in a float input, a missing input, an extra input.

The SavedModel is fed typed tensors, as a TF Serving client sends them: given NumPy arrays, TensorFlow
itself converts them to the signature's dtype before the graph sees them (float32 -> uint8 truncates),
so a dtype check cannot happen there.

Batch size 0 (valid inputs otherwise) is refused by all three with a clean error ("holds no examples
(batch size 0)"): the networks' convolutions and TFLite's kernels fail on an empty batch, so no
signature could return empty outputs consistently.
"""
import numpy as np
import pytest
import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.export import onnx, tflite
from aign_tf.export.signatures import random_inputs
from tests.testing import HAVE_ONNX, TINY_MODELS

SEED = 11
SIGNATURES = ("serving_default", "render", "generator")
SAVED_MODEL_ERRORS = (tf.errors.InvalidArgumentError, TypeError, ValueError)


@pytest.fixture(scope="module")
def loaded(exports):
    """{task: (the loaded SavedModel, a LiteRT interpreter on its model.tflite)}."""
    return {task: (tf.saved_model.load(path), tflite.interpreter(f"{path}/{tflite.FILENAME}"))
            for task, (path, _) in exports.items()}


@pytest.fixture(scope="module")
def onnx_sessions(exports):
    """{task: an onnxruntime session on its model.onnx (serving_default)}; {} without onnxruntime."""
    return {task: onnx.session(f"{path}/{onnx.FILENAME}") for task, (path, _) in exports.items()} if HAVE_ONNX else {}


def other_runtimes(task: str, signature: str, interpreter, onnx_sessions: dict) -> dict:
    """{name: run(inputs)} of the runtimes other than TensorFlow that hold this signature."""
    runs = {"TFLite": lambda inputs: tflite.run(interpreter, signature, inputs)}
    if signature == onnx.SIGNATURE and task in onnx_sessions:
        runs["ONNX"] = lambda inputs: onnx.run(onnx_sessions[task], inputs)
    return runs


def valid_inputs(specs: dict, batch_size: int, seed: int = SEED) -> dict[str, np.ndarray]:
    ranges = {name: (0, 255) if spec.dtype == tf.uint8 else (0.0, 1.0) for name, spec in specs.items()}
    return random_inputs(specs, ranges, batch_size, seed)


def malformed(specs: dict, rng: np.random.Generator) -> list[tuple[str, dict, str]]:
    """(what is wrong, inputs, the input the error is about): valid inputs with one thing wrong."""
    valid = valid_inputs(specs, 2)
    cases = []
    for name, spec in sorted(specs.items()):
        value = valid[name]

        def but(changed, name=name):
            return {**valid, name: changed}

        for dtype in (np.float64, np.int32, np.float32 if spec.dtype == tf.uint8 else np.uint8):
            cases.append((f"{name} as {np.dtype(dtype).name}", but(value.astype(dtype)), name))
        cases.append((f"{name} without its last axis", but(value[..., 0]), name))
        cases.append((f"{name} with an extra axis", but(value[..., np.newaxis]), name))
        if value.ndim > 1:
            axis = int(rng.integers(1, value.ndim))
            cases.append((f"{name} one longer on axis {axis}",
                          but(np.concatenate([value, value.take([0], axis=axis)], axis=axis)), name))
        if spec.dtype.is_floating:
            for bad in (np.nan, np.inf):
                broken = value.copy()
                broken.flat[int(rng.integers(broken.size))] = bad
                cases.append((f"{name} holding {bad}", but(broken), name))
        cases.append((f"{name} missing", {k: v for k, v in valid.items() if k != name}, name))
    cases.append(("an extra input", {**valid, "extra": valid[sorted(valid)[0]]}, "extra"))
    return cases


def call_saved_model(function, inputs):
    return function(**{name: tf.constant(value) for name, value in inputs.items()})


@pytest.mark.parametrize("signature", SIGNATURES)
@pytest.mark.parametrize("task", sorted(TINY_MODELS))
def test_malformed_inputs_are_refused(loaded, onnx_sessions, task, signature):
    model, interpreter = loaded[task]
    function = model.signatures[signature]
    specs = function.structured_input_signature[1]
    runtimes = other_runtimes(task, signature, interpreter, onnx_sessions)
    # The valid inputs run on all, so each refusal below is about the one thing that is wrong.
    valid = valid_inputs(specs, 2)
    for run in runtimes.values():
        assert set(call_saved_model(function, valid)) == set(run(valid))

    for what, inputs, name in malformed(specs, np.random.default_rng(SEED)):
        with pytest.raises(SAVED_MODEL_ERRORS) as caught:
            call_saved_model(function, inputs)
        message = str(caught.value)  # a dtype error names the input's position and its expected dtype
        assert name in message or "was expected to be a" in message, f"{task}/{signature}, {what}: {message[:300]}"

        for runtime, run in runtimes.items():
            with pytest.raises(UserError, match=name) as caught:
                run(inputs)
            assert "\n" not in str(caught.value), f"{task}/{signature}, {runtime}, {what}"


@pytest.mark.parametrize("signature", SIGNATURES)
@pytest.mark.parametrize("task", sorted(TINY_MODELS))
def test_an_empty_batch_is_refused(loaded, onnx_sessions, task, signature):
    model, interpreter = loaded[task]
    function = model.signatures[signature]
    empty = valid_inputs(function.structured_input_signature[1], 0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"holds no examples \(batch size 0\)"):
        call_saved_model(function, empty)
    for run in other_runtimes(task, signature, interpreter, onnx_sessions).values():
        with pytest.raises(UserError, match=r"holds no examples \(batch size 0\)"):
            run(empty)
