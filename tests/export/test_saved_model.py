"""SavedModel export: layout and versions, signatures checked in a fresh process against the Keras
model and NumPy references, saved_model_cli, TFLite against the SavedModel, refused requests."""
import glob
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from aign_tf.errors import UserError
from aign_tf.export import saved_model, tflite
from aign_tf.tasks.pose3d import data as pose_data
from aign_tf.zoo import registry
from tests.testing import HAVE_ONNX, checkpointed

SIGNATURES = {"serving_default", "render", "generator"}

# Runs in a fresh interpreter that never imports aign_tf: every signature of every export.
FRESH_PROCESS = """
import sys, numpy as np, tensorflow as tf
exports, inputs_path, outputs_path = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
inputs, outputs = np.load(inputs_path), {}
for path in exports:
    task = path.split("/")[-2]
    loaded = tf.saved_model.load(path)
    for signature, function in loaded.signatures.items():
        names = [k.split("/")[2] for k in inputs.files if k.startswith(f"{task}/{signature}/")]
        result = function(**{n: tf.constant(inputs[f"{task}/{signature}/{n}"]) for n in names})
        outputs.update({f"{task}/{signature}/{k}": v.numpy() for k, v in result.items()})
np.savez(outputs_path, **outputs)
assert not any(m.startswith("aign_tf") for m in sys.modules), "the consumer imported aign_tf"
"""


def image_inputs(model, rng, n=3):
    rows, cols, channels = model.generator.input["image"].shape[1:]
    return rows, cols, channels, rng.integers(0, 256, (n, rows, cols, channels)).astype(np.uint8)


def center_mask(n, rows, cols, visible_value):
    mask = np.full((n, rows, cols, 1), visible_value, np.uint8)
    mask[:, rows // 4:rows // 4 + rows // 2, cols // 4:cols // 4 + cols // 2] = 0
    return mask


def inputs_for(task, model, seed=0):
    """{signature: {input: array}}: meaningful inputs of each task's signatures."""
    rng = np.random.default_rng(seed)
    if task in ("inpaint", "decoder_ablation"):
        rows, cols, channels, image = image_inputs(model, rng)
        mask = center_mask(3, rows, cols, 255)  # any nonzero value means visible
        visible = np.minimum(mask, 1).astype(np.float32)
        return {"serving_default": {"image": image, "mask": mask},
                "render": {"image": image / np.float32(255), "mask": visible},
                "generator": {"image": image * visible / np.float32(255), "mask": visible}}
    if task == "superres":
        rows, cols, channels, low = image_inputs(model, rng)
        return {"serving_default": {"image": low},
                "render": {"image": rng.uniform(0, 1, (3, 4 * rows, 4 * cols, channels)).astype(np.float32)},
                "generator": {"image": low / np.float32(255)}}
    if task == "pose3d":
        views = registry.get_task("pose3d").test_views
        keypoints = views.keypoints[:3] + np.array([[[0.0, 0.0]], [[0.0, 0.0]], [[64.0, -16.0]]], np.float32)
        size = np.array([[512, 512], [512, 512], [640, 480]], np.float32)  # the last one not square
        joints = views.pose[:3] + np.array([0.1, -0.2, 5.0], np.float32)
        return {"serving_default": {"keypoints": keypoints, "image_size": size},
                "render": {"joints": joints, "focal_px": np.array([600, 650, 700], np.float32), "image_size": size},
                "generator": {"keypoints": pose_data.normalise(views.keypoints[:3])}}
    rows, cols = model.generator.input["image1"].shape[1:3]
    frames = rng.integers(0, 256, (2, 2, rows, cols, 3)).astype(np.uint8)
    angles = np.array([[0.01, -0.02, 0.005], [0.0, 0.03, -0.01]], np.float32)
    return {"serving_default": {"image1": frames[0], "image2": frames[1]},
            "render": {"image2": frames[1] / np.float32(255),
                       "depth": rng.uniform(4, 30, (2, rows, cols, 1)).astype(np.float32),
                       "rotation": tf.linalg.expm(tf.constant(skew(angles))).numpy().astype(np.float32),
                       "translation": np.array([[0.0, 0.0, 0.8], [0.1, 0.0, 0.5]], np.float32)},
            "generator": {"image1": frames[0] / np.float32(255), "image2": frames[1] / np.float32(255)}}


def skew(w):
    zero = np.zeros(len(w), np.float32)
    return np.stack([np.stack([zero, -w[:, 2], w[:, 1]], -1), np.stack([w[:, 2], zero, -w[:, 0]], -1),
                     np.stack([-w[:, 1], w[:, 0], zero], -1)], 1).astype(np.float64)


def to_uint8(x):
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def assert_grey_levels_match(got, expected):
    """uint8 outputs: rounding may flip a value that sits on a half grey level, nothing more. The tiny
    untrained generators of these tests put out sigmoid(~0) ~ 0.5, i.e. 127.5, right on a rounding
    boundary, so a few per cent of the pixels may flip (1.1 % of 2,352 in one CI run, with other
    random weights); a real mismatch moves most pixels, or by more than one level."""
    assert got.dtype == np.uint8 and got.shape == expected.shape
    difference = np.abs(got.astype(int) - expected.astype(int))
    assert difference.max() <= 1 and np.mean(difference == 0) > 0.95


def numpy_pinhole(joints, focal_px, size):
    return focal_px[:, None, None] * joints[..., :2] / joints[..., 2:] + size[:, None] / 2


def expected_outputs(task, model, inputs):
    """{signature: {output: reference}} from the in-process Keras model and NumPy."""
    generator = {("predicted_" + k if k in inputs["generator"] else k): v.numpy()  # image -> predicted_image
                 for k, v in model.generator(inputs["generator"], training=False).items()}
    default, render = inputs["serving_default"], inputs["render"]
    if task in ("inpaint", "decoder_ablation"):
        visible = np.minimum(default["mask"], 1).astype(np.float32)
        masked = default["image"] / np.float32(255) * visible
        predicted = model.generator({"image": masked, "mask": visible}, training=False)["image"].numpy()
        rendered = (model.decoder(render["image"]).numpy() if task == "decoder_ablation"
                    else render["image"] * render["mask"])
        return {"serving_default": {"completed": to_uint8(masked + (1 - visible) * predicted),
                                    "prediction": to_uint8(predicted)},
                "render": {"rendered": rendered}, "generator": generator}
    if task == "superres":
        high = render["image"]
        n, rows, cols, channels = high.shape
        pooled = high.reshape(n, rows // 4, 4, cols // 4, 4, channels).mean(axis=(2, 4))
        return {"serving_default": {"prediction": to_uint8(generator["predicted_image"])},
                "render": {"rendered": pooled}, "generator": generator}
    if task == "pose3d":
        size = default["image_size"]
        half = size.max(-1) / 2
        normalised = (default["keypoints"] - size[:, None] / 2) / half[:, None, None]
        p = {k: v.numpy() for k, v in model.generator({"keypoints": normalised}, training=False).items()}
        joints = p["pose"] + p["translation"][:, None]
        focal_px = p["focal"][:, 0] * half
        a, b, c = p["angles"].T
        ones, zeros = np.ones_like(a), np.zeros_like(a)
        rx = np.stack([ones, zeros, zeros, zeros, np.cos(a), -np.sin(a), zeros, np.sin(a), np.cos(a)], -1)
        ry = np.stack([np.cos(b), zeros, np.sin(b), zeros, ones, zeros, -np.sin(b), zeros, np.cos(b)], -1)
        rz = np.stack([np.cos(c), -np.sin(c), zeros, np.sin(c), np.cos(c), zeros, zeros, zeros, ones], -1)
        rotation = rx.reshape(-1, 3, 3) @ ry.reshape(-1, 3, 3) @ rz.reshape(-1, 3, 3)
        return {"serving_default": {"joints": joints, "rotation": rotation, "translation": p["translation"],
                                    "focal_px": focal_px, "reprojected": numpy_pinhole(joints, focal_px, size)},
                "render": {"keypoints": numpy_pinhole(render["joints"], render["focal_px"], render["image_size"])},
                "generator": generator}
    frames = {k: v / np.float32(255) for k, v in default.items()}
    p = {k: v.numpy() for k, v in model.generator(frames, training=False).items()}
    warped, valid = model.render({"log_depth": np.log(render["depth"]), "rotation": render["rotation"],
                                    "translation": render["translation"]}, {"image2": render["image2"]})
    return {"serving_default": {"depth": np.exp(p["log_depth"]), "rotation": p["rotation"], "angles": p["angles"],
                                "translation": p["translation"], "flow": p["flow"]},
            "render": {"image": warped.numpy(), "valid": valid.numpy()}, "generator": generator}


def assert_outputs_match(got, expected, atol):
    assert set(got) == set(expected)
    for name, value in expected.items():
        if np.asarray(value).dtype == np.uint8:
            assert_grey_levels_match(got[name], value)
        else:
            np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=atol, err_msg=name)


def test_layout_metadata_and_signatures(exports):
    for task, (path, _) in exports.items():
        assert path.endswith(os.path.join(task, "1"))
        assert {"saved_model.pb", "variables", "export.json", "model.tflite"} <= set(os.listdir(path))
        assert ("model.onnx" in os.listdir(path)) == HAVE_ONNX
        with open(os.path.join(path, "export.json")) as f:
            metadata = json.load(f)
        assert metadata["task"] == task and metadata["step"] == 0 and metadata["version"] == 1
        assert set(metadata["signatures"]) == SIGNATURES == set(metadata["tflite"]["max_abs_difference"])
        assert not glob.glob(os.path.join(os.path.dirname(path), ".*"))  # no staging directory left
    described = json.load(open(os.path.join(exports["inpaint"][0], "export.json")))["signatures"]
    assert described["serving_default"]["inputs"]["image"] == {"dtype": "uint8", "shape": [None, 28, 28, 1],
                                                               "example_range": [0, 255]}


def test_fresh_process_gets_the_keras_models_outputs(exports, tmp_path):
    inputs, expected = {}, {}
    for task, (_, model) in exports.items():
        task_inputs = inputs_for(task, model)
        inputs.update({f"{task}/{s}/{n}": v for s, named in task_inputs.items() for n, v in named.items()})
        expected[task] = expected_outputs(task, model, task_inputs)
    np.savez(tmp_path / "inputs.npz", **inputs)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS, ",".join(p for p, _ in exports.values()),
                           str(tmp_path / "inputs.npz"), str(tmp_path / "outputs.npz")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    outputs = np.load(tmp_path / "outputs.npz")
    for task, signatures in expected.items():
        assert {k.split("/")[1] for k in outputs.files if k.startswith(task + "/")} == SIGNATURES
        for signature, named in signatures.items():
            got = {k.split("/")[2]: outputs[k] for k in outputs.files if k.startswith(f"{task}/{signature}/")}
            atol = 1e-3 if (task, signature) in {("pose3d", "serving_default"), ("pose3d", "render")} else 1e-5
            assert_outputs_match(got, named, atol)  # pixels: 1e-3 px at ~300 px is float32 round-off


def test_saved_model_cli_lists_the_signatures(exports):
    done = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
                           exports["inpaint"][0], "--all"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in SIGNATURES:
        assert f"signature_def['{name}']" in done.stdout
    default = done.stdout.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    assert "dtype: DT_UINT8" in default and "shape: (-1, 28, 28, 1)" in default and "name: serving_default_mask:0" in default


def test_tflite_runs_every_signature_like_the_saved_model(exports):
    for task, (path, model) in exports.items():
        with open(os.path.join(path, "model.tflite"), "rb") as f:
            assert b"Flex" not in f.read()  # builtin ops only
        interpreter = Interpreter(model_path=os.path.join(path, "model.tflite"))
        assert set(interpreter.get_signature_list()) == SIGNATURES
        loaded = tf.saved_model.load(path)
        for signature, named in inputs_for(task, model, seed=1).items():
            got = interpreter.get_signature_runner(signature)(**named)
            expected = loaded.signatures[signature](**{k: tf.constant(v) for k, v in named.items()})
            assert_outputs_match(got, {k: v.numpy() for k, v in expected.items()}, atol=1e-3)


def test_wrong_dtype_or_shape_is_refused_with_the_expected_spec(exports):
    loaded = tf.saved_model.load(exports["inpaint"][0])
    serve = loaded.signatures["serving_default"]
    image, mask = np.zeros((2, 28, 28, 1), np.uint8), np.ones((2, 28, 28, 1), np.uint8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a uint8 tensor but is a float tensor"):
        serve(image=tf.constant(image, tf.float32), mask=tf.constant(mask))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Shape of tensor image \[2,20,28,1\] is not compatible with expected shape \[\?,28,28,1\]"):
        serve(image=tf.constant(image[:, :20]), mask=tf.constant(mask))
    lite = tflite.interpreter(os.path.join(exports["inpaint"][0], tflite.FILENAME))
    with pytest.raises(UserError, match=r"input 'image' of signature 'serving_default' is uint8 \[2, 20, 28, 1\]; "
                                        r"expected uint8 \[Nx28x28x1\]"):
        tflite.run(lite, "serving_default", {"image": image[:, :20], "mask": mask})
    with pytest.raises(UserError, match=r"takes inputs \['image', 'mask'\], got \['image'\]"):
        tflite.run(lite, "serving_default", {"image": image})


def test_versions_are_never_overwritten_and_a_failed_export_leaves_nothing(tmp_path, monkeypatch):
    model_dir, out = str(tmp_path / "model"), str(tmp_path / "out")
    task, _ = checkpointed("superres", model_dir)
    task_class = type(task)
    first = saved_model.export(task_class, model_dir, out)
    assert saved_model.export(task_class, model_dir, out) == os.path.join(out, "superres", "2")
    digest = hashlib.sha256(open(os.path.join(first, "saved_model.pb"), "rb").read()).hexdigest()
    with pytest.raises(UserError, match="exists and exports are never overwritten; omit --version to write version 3"):
        saved_model.export(task_class, model_dir, out, version=1)

    def broken(path):
        raise UserError("TFLite conversion failed: simulated")

    monkeypatch.setattr(tflite, "convert", broken)
    with pytest.raises(UserError, match="simulated"):
        saved_model.export(task_class, model_dir, out, with_tflite=True)
    assert sorted(os.listdir(os.path.join(out, "superres"))) == ["1", "2"]  # no version 3, no staging dir
    assert hashlib.sha256(open(os.path.join(first, "saved_model.pb"), "rb").read()).hexdigest() == digest


def test_cli_exports_and_refuses_with_one_line(tmp_path):
    model_dir, out = str(tmp_path / "model"), str(tmp_path / "out")
    checkpointed("superres", model_dir)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "aign_tf.export", *args], capture_output=True, text=True,
                              timeout=300)

    done = run("--task=superres", f"--model_dir={model_dir}", f"--out={out}", "--version=7",
               *(["--onnx"] if HAVE_ONNX else []))
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"exported superres (step 0) to {out}/superres/7" in done.stdout
    assert "serving_default(image: uint8[None, 7, 7, 1]) -> prediction: uint8[None, 28, 28, 1]" in done.stdout
    if HAVE_ONNX:
        assert "model.onnx: max |SavedModel - ONNX| on random inputs\n    serving_default: prediction " in done.stdout
    done = run("--task=superres", f"--model_dir={model_dir}", f"--out={out}", "--version=7")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert "exists and exports are never overwritten" in lines[-1] and lines[-1].startswith("error: ")
    assert [line for line in lines if line.startswith("error: ")] == [lines[-1]]
    assert os.listdir(os.path.join(out, "superres")) == ["7"]
