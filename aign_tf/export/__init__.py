"""Export trained models for TF Serving (SavedModel) and for on-device use (TFLite).

    python -m aign_tf.export --task=inpaint --model_dir=runs/inpaint --out=exports [--version=N] [--tflite]

writes exports/inpaint/N/ (`aign_tf.export.saved_model`); `aign_tf.export.tflite` converts and runs
the TFLite model; `python -m aign_tf.export.latency` times both. The signatures themselves are the
tasks' (`Task.serving`), built from `aign_tf.export.signatures`.
"""
