"""Export trained models for TF Serving (SavedModel), on-device use (TFLite) and ONNX runtimes.

    python -m aign_tf.export --task=inpaint --model_dir=runs/inpaint --out=exports [--version=N] [--tflite] [--onnx]

writes exports/inpaint/N/ (`aign_tf.export.saved_model`); `aign_tf.export.tflite` converts and runs
the TFLite model, `aign_tf.export.onnx` the ONNX model (serving_default); `python -m
aign_tf.export.latency` times all three. The signatures themselves are the tasks' (`Task.serving`),
built from `aign_tf.export.signatures`.
"""
