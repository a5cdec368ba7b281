"""3D human pose from 2D keypoints (paper §2.1, §3.1; supplementary §2.1): `--task=pose3d`.

Data: the 15 DeepMimic motion-capture clips shipped in `aign_tf/data/motions`, split by clip.
Regimes, by the paper's names: Sup1 (+ Sup2) paired 2D-3D examples of the training clips seen
through random cameras (here Sup2 coincides with Sup1: without images, both are projections of the
training skeletons); Sup3 the reprojection loss on the unlabelled 2D of the test clips; Sup4 the
adversarial loss on the same test 2D, with memories of training skeletons. Models (`--model`):

    forward2d3d   Sup1+2          supervised only (reconstruction weight 0, no critic)
    interpreter   Sup1+2+3        + reprojection on test 2D ("3D interpreter")
    aign          Sup1+2+3+4      + adversarial prior (the AIGN)

The test 2D inputs are used without their 3D, as in the paper; evaluation compares the
predictions on those inputs with the held-out 3D truth. With `keypoints=FILE` (2D-only keypoints,
e.g. an MPII-style export, `aign_tf.data.h36m.load_keypoints_2d`) those replace the test clips as
unlabelled inputs: test-time adaptation (`python -m aign_tf.zoo.adapt`) and inference.
"""
from __future__ import annotations

import functools
import os

import numpy as np
import tensorflow as tf

from aign_tf.core import AIGN, Gating
from aign_tf.data import deepmimic, h36m
from aign_tf.errors import UserError, check_choice
from aign_tf.export.signatures import signature, spec
from aign_tf.render import camera
from aign_tf.tasks.base import Config, Task
from aign_tf.tasks.pose3d import data, figures, metrics, model as networks, skeleton

MODELS = ("forward2d3d", "interpreter", "aign")
GENERATORS = ("heatmap", "mlp")
CRITIC_INPUTS = ("shape", "params")

DEFAULTS = {
    "steps": 3000, "batch_size": 64, "beta": 0.01, "learning_rate": 1e-4, "supervised_weight": 1.0,
    "reconstruction_weight": 1.0,
    "options": {"model": "aign", "generator": "heatmap", "components": 30, "noise_px": 0.0, "width": 32,
                "train_cameras": 8, "test_cameras": 4, "keypoints": None, "image_size": None,
                "critic_input": "shape"},
}


@functools.lru_cache(maxsize=1)
def _canonical() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(train, test) clips in the canonical frame; the split by clip is fixed."""
    train, test = deepmimic.clip_split()
    return data.canonical_clips(train), data.canonical_clips(test)


def _check(config: Config) -> None:
    o = config.options
    check_choice("pose model", o["model"], MODELS)
    check_choice("generator", o["generator"], GENERATORS)
    check_choice("critic input", o["critic_input"], CRITIC_INPUTS)
    if o["noise_px"] < 0:
        raise UserError(f"--noise_px must be >= 0, got {o['noise_px']}")


def basis(config: Config) -> skeleton.PoseBasis:
    """PCA basis of the canonical training skeletons."""
    train, _ = _canonical()
    return skeleton.pca_basis(np.concatenate(list(train.values())), config.options["components"])


def test_views(config: Config) -> data.Views:
    """The unlabelled test inputs (and their held-out truth): each test frame through fixed cameras."""
    _check(config)
    _, test = _canonical()
    return data.views(test, config.options["test_cameras"], seed=10_000 + config.seed,
                      noise_px=config.options["noise_px"])


def unlabelled_keypoints(config: Config) -> np.ndarray:
    """The unlabelled 2D inputs, normalised: the keypoints file if given, else the test views."""
    path = config.options["keypoints"]
    if path is None:
        return data.normalized(test_views(config).keypoints)
    size = float(config.options["image_size"] or data.IMAGE_SIZE)
    keypoints = h36m.load_keypoints_2d(path, deepmimic.NUM_JOINTS)
    return ((keypoints - size / 2) / (size / 2)).astype(np.float32)


def build_model(config: Config) -> AIGN:
    _check(config)
    pose_basis = basis(config)
    regime = config.options["model"]
    critics = None
    if regime == "aign" and config.options["critic_input"] == "shape":
        critics = {"shape": networks.critic((pose_basis.mean.shape[0] // 3, 3), "shape")}
    elif regime == "aign":
        critics = {"params": networks.critic((pose_basis.num_components + 7,), "params")}
    return AIGN(networks.generator(pose_basis, config.options["generator"], config.options["width"]),
                networks.render_keypoints, critics, beta=config.beta, reconstruction=config.reconstruction,
                gan_loss=config.gan_loss, supervised_weight=config.supervised_weight,
                reconstruction_weight=0.0 if regime == "forward2d3d" else config.reconstruction_weight,
                gating=Gating(enabled=config.gating))


def train_data(config: Config) -> tf.data.Dataset:
    _check(config)
    train, _ = _canonical()
    paired = data.views(train, config.options["train_cameras"], seed=config.seed,
                        noise_px=config.options["noise_px"])
    memories = {"shape": np.concatenate(list(train.values()))}
    if config.options["critic_input"] == "params":  # (alpha, R, f) of training skeletons and sampled cameras
        angles, focal = data.sample_cameras(len(memories["shape"]), seed=config.seed + 3)
        memories = {"params": networks.parameter_vector(basis(config).encode(memories["shape"]), angles, focal)}

    def stream(arrays: dict, seed: int) -> tf.data.Dataset:
        size = len(next(iter(arrays.values())))
        return tf.data.Dataset.from_tensor_slices(arrays).shuffle(size, seed=seed).repeat()

    zipped = tf.data.Dataset.zip(
        stream({"keypoints": unlabelled_keypoints(config)}, config.seed),
        stream({"keypoints": data.normalized(paired.keypoints), "pose": paired.pose}, config.seed + 1),
        stream(memories, config.seed + 2))
    batches = zipped.batch(config.batch_size, drop_remainder=True).map(
        lambda x, p, m: {"inputs": {"keypoints": x["keypoints"]}, "observed": x["keypoints"], "memories": m,
                         "paired": {"inputs": {"keypoints": p["keypoints"]}, "targets": {"pose": p["pose"]}}})
    return batches.prefetch(tf.data.AUTOTUNE)


def _eval_batches(config: Config, keypoints: np.ndarray) -> tf.data.Dataset:
    examples = {"inputs": {"keypoints": keypoints}, "observed": keypoints}
    if config.options["keypoints"] is None:
        examples["targets"] = {"pose": test_views(config).pose}
    return tf.data.Dataset.from_tensor_slices(examples).batch(config.batch_size)


def eval_data(config: Config) -> tf.data.Dataset:
    """The unlabelled inputs in order, with their 3D truth when they are the test views."""
    return _eval_batches(config, unlabelled_keypoints(config))


def predict(model: AIGN, config: Config) -> dict[str, np.ndarray]:
    """The model's predictions on the unlabelled inputs, with their reprojection error in pixels."""
    keypoints = unlabelled_keypoints(config)
    outputs = [model(batch["inputs"], training=False) for batch in _eval_batches(config, keypoints)]
    predicted = {k: np.concatenate([o[k].numpy() for o in outputs]) for k in outputs[0]}
    rendered, _ = networks.render_keypoints({k: tf.constant(v) for k, v in predicted.items()}, None)
    size = float(config.options["image_size"] or data.IMAGE_SIZE)
    predicted["reprojection_px"] = np.linalg.norm((rendered.numpy() - keypoints) * size / 2, axis=-1).mean(axis=-1)
    return predicted


def evaluate(model: AIGN, config: Config) -> dict[str, float]:
    """MPJPE after torso alignment and PA-MPJPE (mm), overall and per test clip; reprojection error (px).
    On a keypoints file (no 3D truth) only the reprojection error."""
    predicted = predict(model, config)
    result = {"reprojection_px": float(predicted["reprojection_px"].mean()),
              "examples": float(len(predicted["pose"]))}
    if config.options["keypoints"] is not None:
        return result
    views = test_views(config)
    aligned = metrics.mpjpe_aligned_mm(predicted["pose"], views.pose)
    procrustes = metrics.pa_mpjpe_mm(predicted["pose"], views.pose)
    result.update({"mpjpe_mm": float(aligned.mean()), "pa_mpjpe_mm": float(procrustes.mean())})
    for clip in dict.fromkeys(views.clip):
        chosen = views.clip == clip
        result[f"mpjpe_mm/{clip}"] = float(aligned[chosen].mean())
        result[f"pa_mpjpe_mm/{clip}"] = float(procrustes[chosen].mean())
    return result


def images(model: AIGN, batch: dict) -> dict[str, tf.Tensor]:
    """One picture: predicted (red) vs true (blue) skeletons of the first 4 examples with 3D truth
    (the paired examples of a training batch, or an evaluation batch), from three views; none
    without 3D truth."""
    import tempfile  # pylint: disable=import-outside-toplevel

    labelled = batch.get("paired", batch)
    if "targets" not in labelled:  # a keypoints file: no 3D truth to draw against
        return {}
    predicted = model(labelled["inputs"], training=False)["pose"].numpy()[:4]
    truth = labelled["targets"]["pose"].numpy()[:4]
    with tempfile.TemporaryDirectory() as tmp:
        image = figures.figure_to_image(figures.skeleton_figure(predicted, truth, os.path.join(tmp, "s.png")))
    return {"skeletons": tf.constant(image[..., :3], tf.float32) / 255.0}


def _project_px(joints: tf.Tensor, focal_px: tf.Tensor, image_size: tf.Tensor) -> tf.Tensor:
    """The renderer (eq. 2) in pixels: camera-frame joints [N, J, 3], focal [N], image (width, height)
    [N, 2] with the principal point at its centre -> keypoints [N, J, 2]."""
    rendered, _ = networks.render_keypoints(
        {"pose": joints, "translation": tf.zeros_like(joints[:, 0]), "focal": focal_px[:, tf.newaxis]}, None)
    return rendered + image_size[:, tf.newaxis] / 2


def serving(model: AIGN) -> dict:
    """serving_default  float keypoints [N, J, 2] in pixels and image_size [N, 2] (width, height; the
                     principal point is the image centre, coordinates are scaled by half the longer
                     side as in training) -> "joints" [N, J, 3], the 3D joints in the camera frame
                     (metres, x right, y down, z forward), "rotation" [N, 3, 3] (Rx Ry Rz),
                     "translation" [N, 3] (metres, of the pelvis), "focal_px" [N] and "keypoints"
                     [N, J, 2], the joints reprojected (pixels)
    render           joints [N, J, 3], focal_px [N], image_size [N, 2] -> "keypoints" [N, J, 2] (eq. 2)"""
    joints = model.generator.input["keypoints"].shape[1]

    def estimate(inputs):
        size = inputs["image_size"]
        half = tf.reduce_max(size, axis=-1, keepdims=True)[:, tf.newaxis] / 2  # [N, 1, 1]
        normalised = (inputs["keypoints"] - size[:, tf.newaxis] / 2) / half
        predicted = model.generator({"keypoints": normalised}, training=False)
        translation = predicted["translation"]
        camera_joints = predicted["pose"] + translation[:, tf.newaxis]
        focal_px = predicted["focal"][:, 0] * half[:, 0, 0]
        return {"joints": camera_joints, "rotation": camera.rotation_xyz(predicted["angles"]),
                "translation": translation, "focal_px": focal_px,
                "keypoints": _project_px(camera_joints, focal_px, size)}

    def render(inputs):
        return {"keypoints": _project_px(inputs["joints"], inputs["focal_px"], inputs["image_size"])}

    size = spec("image_size", (2,))
    in_view = {"keypoints": (192.0, 320.0), "image_size": (512.0, 512.0)}  # random inputs for checks, timing
    return {"serving_default": signature([spec("keypoints", (joints, 2)), size], estimate, in_view),
            "render": signature([spec("joints", (joints, 3)), spec("focal_px", ()), size], render,
                                {"joints": (2.0, 3.0), "focal_px": (500.0, 1000.0), "image_size": (512.0, 512.0)})}


TASK = Task("pose3d", DEFAULTS, build_model, train_data, eval_data, evaluate, images, predict, serving=serving)
