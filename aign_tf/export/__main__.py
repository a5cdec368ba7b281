"""python -m aign_tf.export --task=NAME --model_dir=DIR --out=OUT [--version=N] [--tflite] [--onnx]
python -m aign_tf.export --pretrained=NAME --out=OUT ...      (a shipped model: python -m aign_tf.zoo.models)

Writes OUT/NAME/VERSION/ for TF Serving (see `aign_tf.export.saved_model`) and prints its
signatures; with --tflite also model.tflite, with --onnx model.onnx (serving_default), each with its
largest difference from the SavedModel.
"""
from __future__ import annotations

import json

from absl import flags

from aign_tf.export import saved_model
from aign_tf.zoo import cli

flags.DEFINE_integer("version", None, "Version number (a new directory); default: one above the latest.")
flags.DEFINE_boolean("tflite", False, "Also convert to TFLite (model.tflite) and compare it with the SavedModel.")
flags.DEFINE_boolean("onnx", False, "Also convert serving_default to ONNX (model.onnx, with tf2onnx) and compare it "
                     "with the SavedModel in onnxruntime; needs pip install 'aign_tf[onnx]'.")


def main(argv: list[str]) -> None:
    task = cli.task()
    path = saved_model.export(task, cli.trained_dir(), cli.require("out"), flags.FLAGS.version,
                              flags.FLAGS.tflite, flags.FLAGS.onnx)
    with open(f"{path}/export.json") as f:
        metadata = json.load(f)
    print(f"exported {task.name} (step {metadata['step']}) to {path}")
    for name, spec in metadata["signatures"].items():
        def show(specs):
            return ", ".join(f"{k}: {v['dtype']}{v['shape']}" for k, v in specs.items())
        print(f"  {name}({show(spec['inputs'])}) -> {show(spec['outputs'])}")
    for runtime, title in (("tflite", "TFLite"), ("onnx", "ONNX")):
        if runtime in metadata:
            print(f"  {metadata[runtime]['file']}: max |SavedModel - {title}| on random inputs")
            for name, outputs in metadata[runtime]["max_abs_difference"].items():
                print(f"    {name}: " + ", ".join(f"{k} {v:.3g}" for k, v in outputs.items()))


if __name__ == "__main__":
    cli.run(main)
