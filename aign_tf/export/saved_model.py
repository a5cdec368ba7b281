"""Export a trained model as a SavedModel in the layout TF Serving loads:

    OUT/NAME/VERSION/saved_model.pb, variables/   the SavedModel (signatures below)
    OUT/NAME/VERSION/export.json                  task, checkpoint step, config, signature specs
    OUT/NAME/VERSION/model.tflite                 with --tflite: every signature, builtin ops only
    OUT/NAME/VERSION/model.onnx                   with --onnx: serving_default (`aign_tf.export.onnx`)

Signatures: the task's (`Task.serving`, `serving_default` first) and `generator`, the Keras generator
itself on float inputs (an output named like an input gets the prefix "predicted_": image, mask ->
predicted_image). The TFLite and ONNX files are checked against the SavedModel on random inputs and
their largest differences recorded in export.json. A version is written to a hidden directory beside
it and renamed into place when complete: TF Serving never sees half an export, and an existing
version is never overwritten.
"""
from __future__ import annotations

import datetime
import errno
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from aign_tf import files
from aign_tf.core import AIGN
from aign_tf.errors import UserError
from aign_tf.export import onnx, tflite
from aign_tf.export.signatures import Signature, random_inputs, signature, spec
from aign_tf.tasks.base import Task
from aign_tf.zoo import rundir


def versions(base: str) -> list[int]:
    """The version numbers exported under base (OUT/NAME), ascending."""
    if not os.path.isdir(base):
        return []
    return sorted(int(name) for name in os.listdir(base) if name.isdigit())


def serving_signatures(task: Task, model: AIGN) -> dict[str, Signature]:
    """The task's signatures and `generator`."""
    specs = [spec(name, tensor.shape[1:], tensor.dtype) for name, tensor in sorted(model.generator.input.items())]

    def generate(inputs):
        outputs = model.generator(inputs, training=False)
        return {f"predicted_{name}" if name in inputs else name: value for name, value in outputs.items()}

    return {**task.serving(model), "generator": signature(specs, generate)}


def write_saved_model(model: AIGN, signatures: dict[str, Signature], path: str) -> None:
    archive = keras.export.ExportArchive()
    archive.track(model.generator)
    if model.decoder is not None:  # the ablation's learned decoder, which its `render` signature runs
        archive.track(model.decoder)
    for name, serving in signatures.items():
        archive.add_endpoint(name, serving.function)
    archive.write_out(path, verbose=False)


def describe(loaded, signatures: dict[str, Signature]) -> dict:
    """{signature: {"inputs"/"outputs": {name: {"dtype", "shape"}}}} of a loaded SavedModel (None = any
    size); each input also has the "example_range" of the random inputs that check and time it."""
    def specs(structure, examples=None):
        return {name: {"dtype": s.dtype.name, "shape": s.shape.as_list(),
                       **({"example_range": list(examples[name])} if examples else {})}
                for name, s in sorted(structure.items())}

    return {name: {"inputs": specs(function.structured_input_signature[1], signatures[name].examples),
                   "outputs": specs(function.structured_outputs)}
            for name, function in sorted(loaded.signatures.items())}


def example_inputs(loaded, described: dict, batch_size: int, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """{signature: random inputs} over the example ranges that `describe` recorded."""
    return {name: random_inputs(function.structured_input_signature[1],
                                {k: tuple(v["example_range"]) for k, v in described[name]["inputs"].items()},
                                batch_size, seed)
            for name, function in sorted(loaded.signatures.items())}


def max_abs_differences(loaded, inputs: dict[str, dict[str, np.ndarray]], run, path: str) -> dict:
    """{signature: {output: max |SavedModel - run(signature, inputs)|}} for each signature in {signature:
    inputs}; `run` is another runtime's model at `path`."""
    differences = {}
    for name, named in sorted(inputs.items()):
        expected = loaded.signatures[name](**{k: tf.constant(v) for k, v in named.items()})
        got = run(name, named)
        if set(got) != set(expected):
            raise UserError(f"{path} gives the outputs {sorted(got)} for {name!r}; the SavedModel {sorted(expected)}")
        differences[name] = {k: float(np.max(np.abs(v.numpy().astype(np.float64) - got[k].astype(np.float64))))
                             for k, v in sorted(expected.items())}
    return differences


def compare_with_tflite(loaded, tflite_path: str, inputs: dict[str, dict[str, np.ndarray]]) -> dict:
    """{signature: {output: max |SavedModel - TFLite|}} on {signature: inputs}, every signature."""
    model = tflite.interpreter(tflite_path)
    missing = set(loaded.signatures) - set(model.get_signature_list())
    if missing:
        raise UserError(f"{tflite_path} lacks the signatures {sorted(missing)}")
    return max_abs_differences(loaded, inputs, lambda name, named: tflite.run(model, name, named), tflite_path)


def compare_with_onnx(loaded, onnx_path: str, inputs: dict[str, dict[str, np.ndarray]]) -> dict:
    """{"serving_default": {output: max |SavedModel - ONNX|}} on that signature's inputs."""
    model = onnx.session(onnx_path)
    return max_abs_differences(loaded, {onnx.SIGNATURE: inputs[onnx.SIGNATURE]},
                               lambda _, named: onnx.run(model, named), onnx_path)


def export(task_class: type[Task], model_dir: str, out: str, version: int | None = None,
           with_tflite: bool = False, with_onnx: bool = False) -> str:
    """Exports model_dir's latest checkpoint to OUT/NAME/VERSION (default: the next free version)."""
    if with_onnx:  # before any work: say what to install
        onnx.require("tf2onnx", "onnxruntime")
    task = task_class(rundir.trained_config(task_class, model_dir))
    base = os.path.join(out, task.name)
    next_version = (versions(base) or [0])[-1] + 1
    version = next_version if version is None else version
    if version < 1:
        raise UserError(f"--version must be a positive integer, got {version}")
    final = os.path.join(base, str(version))
    if os.path.exists(final):
        raise UserError(f"{final} exists and exports are never overwritten; omit --version to write "
                        f"version {next_version}")
    model, step = rundir.load_generator(task, model_dir)
    signatures = serving_signatures(task, model)
    os.makedirs(base, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{version}-partial-", dir=base)  # not a number: TF Serving skips it
    try:
        write_saved_model(model, signatures, staging)
        loaded = tf.saved_model.load(staging)
        metadata = {"task": task.name, "version": version, "step": step, "model_dir": os.path.abspath(model_dir),
                    "date": datetime.date.today().isoformat(), "config": task.config.to_dict(),
                    "signatures": describe(loaded, signatures)}
        inputs = example_inputs(loaded, metadata["signatures"], batch_size=2)
        checked_on = "random over example_range, batch 2, seed 0"
        if with_tflite:
            path = os.path.join(staging, tflite.FILENAME)
            with open(path, "wb") as f:
                f.write(tflite.convert(staging))
            metadata["tflite"] = {"file": tflite.FILENAME, "inputs": checked_on,
                                  "max_abs_difference": compare_with_tflite(loaded, path, inputs)}
        if with_onnx:
            path = os.path.join(staging, onnx.FILENAME)
            onnx.convert(staging, path)
            metadata["onnx"] = {"file": onnx.FILENAME, "converter": onnx.converter_version(), "inputs": checked_on,
                                "max_abs_difference": compare_with_onnx(loaded, path, inputs)}
        files.write_json(os.path.join(staging, "export.json"), metadata)
        os.chmod(staging, 0o755)  # mkdtemp made it private; a server under another user must read it
        os.rename(staging, final)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in (errno.ENOTEMPTY, errno.EEXIST) and os.path.isdir(final):
            raise UserError(f"version {version} ({final}) was written by another export meanwhile; "
                            "run again") from None
        if isinstance(error, OSError):  # a full or read-only disk: nothing of this version is left
            raise UserError(f"cannot write {final}: {error.strerror or error}") from None
        reason = files.write_failure(error) if isinstance(error, tf.errors.OpError) else None
        if reason:  # TensorFlow's own write (the variables) failed the same way
            raise UserError(f"cannot write {final}: {reason}") from None
        raise
    return final
