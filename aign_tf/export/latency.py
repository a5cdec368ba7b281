"""Latency of an export: the SavedModel against its TFLite and ONNX models, one signature, several batch sizes.

    python -m aign_tf.export.latency --export=exports/inpaint/1 [--batch_sizes=1,32] [--repeats=50]

Each number is the median wall time of `--repeats` calls in one process, after `--warmup_calls` calls, on
random inputs over the signature's example ranges (export.json). TFLite and onnxruntime run with
`--threads` threads (default: all cores, as TensorFlow uses); both through their wrappers' input checks
(`tflite.run`, `onnx.run`). model.onnx holds serving_default only: other signatures have no ONNX time.
"""
from __future__ import annotations

import json
import os
import statistics
import time

import tensorflow as tf
from absl import flags

from aign_tf.errors import UserError
from aign_tf.export import onnx, saved_model, tflite
from aign_tf.zoo import cli

flags.DEFINE_string("export", None, "An export's version directory, OUT/TASK/VERSION.")
flags.DEFINE_string("signature", "serving_default", "The signature to time.")
flags.DEFINE_string("batch_sizes", "1,32", "Comma-separated batch sizes.")
flags.DEFINE_integer("repeats", 50, "Timed calls per measurement (the median is reported).")
flags.DEFINE_integer("warmup_calls", 3, "Untimed calls before each measurement.")
flags.DEFINE_integer("threads", None, "TFLite interpreter and onnxruntime threads (default: os.cpu_count()).")


def median_ms(call, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def measure(export_dir: str, signature: str, batch_sizes: list[int], repeats: int, warmup: int,
            threads: int | None = None) -> dict[int, dict[str, float]]:
    """{batch size: {"saved_model_ms", "tflite_ms" (if the export has model.tflite), "onnx_ms" (if it has
    model.onnx and `signature` is serving_default)}}."""
    metadata_path = os.path.join(export_dir, "export.json")
    if not os.path.exists(metadata_path):
        raise UserError(f"{export_dir} is not an aign_tf export (no export.json); "
                        "pass OUT/TASK/VERSION as written by python -m aign_tf.export")
    try:
        with open(metadata_path, "rb") as f:
            described = json.load(f)["signatures"]
        sorted(described)
    except (ValueError, KeyError, TypeError, OSError) as error:
        raise UserError(f"{metadata_path} does not read back ({error}); it was cut short or edited: "
                        "export again") from None
    if signature not in described:
        raise UserError(f"{export_dir} has no signature {signature!r}; it has {', '.join(sorted(described))}")
    model_path = os.path.join(export_dir, "saved_model.pb")
    try:
        loaded = tf.saved_model.load(export_dir)
        function = loaded.signatures[signature]
    except (OSError, ValueError, KeyError, tf.errors.OpError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"{model_path} does not load ({first}); it was cut short or edited: export again") from None
    tflite_path = os.path.join(export_dir, tflite.FILENAME)
    lite = tflite.interpreter(tflite_path, threads or os.cpu_count()) if os.path.exists(tflite_path) else None
    onnx_path = os.path.join(export_dir, onnx.FILENAME)
    ort = (onnx.session(onnx_path, threads or os.cpu_count())
           if signature == onnx.SIGNATURE and os.path.exists(onnx_path) else None)
    result = {}
    for batch_size in batch_sizes:
        inputs = saved_model.example_inputs(loaded, described, batch_size)[signature]
        tensors = {k: tf.constant(v) for k, v in inputs.items()}
        result[batch_size] = {"saved_model_ms": median_ms(lambda: function(**tensors), repeats, warmup)}
        if lite is not None:
            result[batch_size]["tflite_ms"] = median_ms(lambda: tflite.run(lite, signature, inputs), repeats, warmup)
        if ort is not None:
            result[batch_size]["onnx_ms"] = median_ms(lambda: onnx.run(ort, inputs), repeats, warmup)
    return result


def main(argv: list[str]) -> None:
    export_dir = cli.require("export")
    try:
        batch_sizes = [int(b) for b in flags.FLAGS.batch_sizes.split(",") if b]
    except ValueError:
        raise UserError(f"--batch_sizes={flags.FLAGS.batch_sizes} is not a comma-separated list of integers") from None
    if not batch_sizes or min(batch_sizes) < 1 or flags.FLAGS.repeats < 1:
        raise UserError("--batch_sizes must list positive integers and --repeats be at least 1")
    result = measure(export_dir, flags.FLAGS.signature, batch_sizes, flags.FLAGS.repeats, flags.FLAGS.warmup_calls,
                     flags.FLAGS.threads)
    print(f"{export_dir} {flags.FLAGS.signature}: median of {flags.FLAGS.repeats} calls (ms)")
    print("| batch | SavedModel | TFLite | ONNX Runtime |")
    print("|---:|---:|---:|---:|")
    for batch_size, times in result.items():
        cells = [f"{times[key]:.3g}" if key in times else "-" for key in ("saved_model_ms", "tflite_ms", "onnx_ms")]
        print(f"| {batch_size} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    cli.run(main)
