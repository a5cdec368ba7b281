"""TFLite conversion of an exported SavedModel, and running it with the LiteRT interpreter.

The model is converted with TFLite builtin ops only: a signature that would need a TensorFlow (Flex)
op fails the conversion, naming the op. The interpreter itself checks neither input shapes (a wrong
one gives garbage or a crash) nor empty batches nor NaN, so `run` checks all three first
(`aign_tf.export.signatures.check_inputs`).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.export.signatures import check_inputs

FILENAME = "model.tflite"  # inside the export's version directory, next to saved_model.pb


def convert(saved_model_dir: str) -> bytes:
    """Every signature of the SavedModel as one TFLite flatbuffer (builtin ops only)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return converter.convert()
    except Exception as error:  # the converter raises its own ConverterError (and others) with pages of MLIR
        lines = [line for line in str(error).splitlines() if "TF Select ops" in line or "Flex" in line]
        raise UserError(f"TFLite conversion of {saved_model_dir} failed: {(lines or [str(error)])[0].strip()}") from None


def interpreter(path: str, threads: int | None = None):
    """A LiteRT interpreter on the .tflite file at `path` (`threads`: None = LiteRT's default)."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise UserError("running TFLite models needs the LiteRT interpreter: pip install 'aign_tf[export]'") from None
    try:
        return Interpreter(model_path=path, num_threads=threads)
    except (ValueError, RuntimeError, OSError) as error:  # "The model is not a valid Flatbuffer buffer"
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"{path} does not load ({first}); it was cut short or edited: export again") from None


def run(model, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs one signature of a LiteRT interpreter after `signatures.check_inputs`."""
    runner = model.get_signature_runner(signature)
    expected = {name: (detail["dtype"], [None if e == -1 else int(e) for e in detail["shape_signature"]])
                for name, detail in runner.get_input_details().items()}
    check_inputs(inputs, expected, f"signature {signature!r}")
    return runner(**inputs)
