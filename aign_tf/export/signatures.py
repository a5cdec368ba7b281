"""What every task's serving signatures share: fixed input specs, and the conversions between what a
client has (uint8 images, pixel coordinates) and what the networks read (floats in [0, 1]).

A task's `serving(model)` returns {signature name: `Signature`}, the first one `serving_default`.
Inputs have a fixed dtype and shape (only the batch axis is free). A tensor of another dtype is
refused by TensorFlow before the graph runs ("... was expected to be a uint8 tensor but is a float
tensor"); one of another shape, an empty batch, or a float input holding NaN or infinity inside the
graph by `checked` ("Shape of tensor image [2,20,28,1] is not compatible with expected shape
[?,28,28,1]"). TFLite and ONNX drop these checks; `check_inputs` makes them for their runners
(`aign_tf.export.tflite.run`, `aign_tf.export.onnx.run`).

Output names never repeat an input's name (`image` -> `completed`, not `image`): ONNX converters name
graph inputs and outputs alike and fail on the clash (tf2onnx: "graph input 'image' not exist").
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from aign_tf.errors import UserError


def spec(name: str, shape: tuple, dtype: tf.DType = tf.float32) -> tf.TensorSpec:
    """The spec of one batched input: [None, *shape]."""
    return tf.TensorSpec([None, *shape], dtype, name=name)


def checked(tensor: tf.Tensor, tensor_spec: tf.TensorSpec) -> tf.Tensor:
    """`tensor`, with its shape checked against `tensor_spec` when the graph runs, its batch checked to
    hold at least one example (the networks' layers fail on none), and floats checked to be finite
    ("input 'keypoints' holds NaN or infinity : Tensor had NaN values")."""
    tensor = tf.ensure_shape(tensor, tensor_spec.shape, name=tensor_spec.name)
    with tf.control_dependencies([tf.debugging.assert_positive(
            tf.shape(tensor)[0], message=f"input {tensor_spec.name!r} holds no examples (batch size 0)")]):
        tensor = tf.identity(tensor)
    if tensor_spec.dtype.is_floating:
        tensor = tf.debugging.check_numerics(tensor, f"input {tensor_spec.name!r} holds NaN or infinity")
    return tensor


def image_from_uint8(image: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [0, 1]."""
    return tf.cast(image, tf.float32) / 255.0


def image_to_uint8(image: tf.Tensor) -> tf.Tensor:
    """float [0, 1] -> uint8, rounded to the nearest grey level; values outside [0, 1] are clipped."""
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 255.0), tf.uint8)


@dataclasses.dataclass(frozen=True)
class Signature:
    """A serving signature and, per input, the (low, high) range of the random inputs that check it
    against TFLite and time it (default: [0, 255] for uint8, [0, 1) for floats)."""
    function: tf.types.experimental.PolymorphicFunction
    examples: dict[str, tuple[float, float]]


def signature(specs: list[tf.TensorSpec], function, examples: dict[str, tuple[float, float]] | None = None
              ) -> Signature:
    """`function(inputs)` on one dict of inputs named, typed and shaped by `specs`, each shape checked
    when the graph runs. `function` returns a dict of outputs, none named like an input."""
    by_name = {s.name: s for s in specs}

    def serve(inputs):
        outputs = function({name: checked(inputs[name], s) for name, s in by_name.items()})
        shared = sorted(set(outputs) & set(by_name))
        if shared:  # a programming error in a task's `serving`, found when the signature is traced
            raise ValueError(f"outputs {shared} have the names of inputs; ONNX converters cannot tell them apart")
        return outputs

    ranges = {name: (0, 255) if s.dtype == tf.uint8 else (0.0, 1.0) for name, s in by_name.items()}
    return Signature(tf.function(serve, input_signature=[by_name]), {**ranges, **(examples or {})})


def random_inputs(specs: dict[str, tf.TensorSpec], examples: dict[str, tuple[float, float]], batch_size: int,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs that fit `specs`, uniform over each input's `examples` range (integers for uint8)."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for name in sorted(specs):
        shape, (low, high) = [batch_size, *specs[name].shape[1:]], examples[name]
        if specs[name].dtype == tf.uint8:
            inputs[name] = rng.integers(low, high + 1, shape).astype(np.uint8)
        else:
            inputs[name] = rng.uniform(low, high, shape).astype(specs[name].dtype.as_numpy_dtype)
    return inputs


def check_inputs(inputs: dict[str, np.ndarray], expected: dict[str, tuple[np.dtype, list[int | None]]],
                 where: str) -> None:
    """Raises UserError unless `inputs` have exactly the `expected` {name: (dtype, shape)} (None: any
    size), at least one example, and only finite floats: what the SavedModel's graph checks itself and
    the TFLite and ONNX runtimes do not (a wrong shape gives garbage or a crash, NaN runs through, some
    kernels fail on an empty batch). `where` names the model in the message, e.g. "signature 'render'"."""
    if set(inputs) != set(expected):
        raise UserError(f"{where} takes inputs {sorted(expected)}, got {sorted(inputs)}")
    for name, (dtype, shape) in expected.items():
        value = np.asarray(inputs[name])
        fits = value.ndim == len(shape) and all(e is None or e == v for e, v in zip(shape, value.shape))
        if value.dtype != dtype or not fits:
            wanted = "x".join("N" if e is None else str(e) for e in shape)
            raise UserError(f"input {name!r} of {where} is {value.dtype} {list(value.shape)}; "
                            f"expected {np.dtype(dtype).name} [{wanted}]")
        if value.shape[0] == 0:
            raise UserError(f"input {name!r} of {where} holds no examples (batch size 0)")
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            raise UserError(f"input {name!r} of {where} holds NaN or infinity")
