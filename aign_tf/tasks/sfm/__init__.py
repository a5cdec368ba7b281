"""Structure from motion: depth and egomotion from pairs of frames (paper §2.2, §3.2): `--task=sfm`.

Data (`--dataset`): `driving`, the procedural driving world of `aign_tf.data.driving` (streets
held out by seed), or `vkitti`, Virtual KITTI 1.3.1 under `--data_dir` (sequence 0001 test, the
other four training, as in the paper). Three streams of frame pairs:

    test     the unlabelled inputs of every self-supervised model (the paper trains on the test
             videos without their labels and reports the curves there); their depth and motion
             are only read by `evaluate`
    memory   depth maps and relative motions of unrelated sequences: the critics' memories
    train    paired examples: their exact optical flow trains the flow network in every model;
             depth and motion too in the supervised `pretrain` model

Models (`--model`), by the paper's names:

    aign        photometric loss + depth critic + motion critic
    depth_aign  photometric loss + depth critic
    smooth_ign  photometric loss + depth smoothness (`--smoothness`)
    ign         photometric loss only
    pretrain    supervised on the training sequences' depth, motion and flow ("Pretrain");
                `--init_from` a pretrain model dir then gives "Pret.+SelfSup"

Networks and renderer: `aign_tf.tasks.sfm.model`; metrics and the geometric baseline:
`aign_tf.tasks.sfm.metrics`.
"""
from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from aign_tf.core import AIGN, Gating
from aign_tf.data import frames
from aign_tf.errors import UserError, check_choice
from aign_tf.export.signatures import image_from_uint8, signature, spec
from aign_tf.render import warp
from aign_tf.tasks.base import Config, Task
from aign_tf.tasks.sfm import metrics, model as networks

MODELS = ("aign", "depth_aign", "smooth_ign", "ign", "pretrain")
DATASETS = ("driving", "vkitti")

DEFAULTS = {
    "steps": 3000, "batch_size": 8, "beta": 0.01, "learning_rate": 1e-4, "reconstruction": "l1",
    "supervised_weight": 1.0,
    "options": {"model": "aign", "dataset": "driving", "data_dir": None, "frame_size": "64x192",
                "train_sequences": 16, "memory_sequences": 8, "test_sequences": 4, "sequence_frames": 40,
                "width": 16, "smoothness": 0.1},
}


def frame_size(config: Config) -> tuple[int, int]:
    text = str(config.options["frame_size"])
    try:
        height, width = (int(side) for side in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--frame_size={text} is not HEIGHTxWIDTH, e.g. --frame_size=64x192") from None
    frames.check_frame_size(height, width)
    return height, width


def _check(config: Config) -> None:
    o = config.options
    check_choice("sfm model", o["model"], MODELS)
    check_choice("sfm dataset", o["dataset"], DATASETS)
    if o["dataset"] == "vkitti" and not o["data_dir"]:
        raise UserError("--dataset=vkitti needs --data_dir, the directory holding the unpacked "
                        "vkitti_1.3.1_rgb, vkitti_1.3.1_depthgt and vkitti_1.3.1_extrinsicsgt folders")
    frame_size(config)


def intrinsics(config: Config) -> frames.Intrinsics:
    _check(config)
    height, width = frame_size(config)
    if config.options["dataset"] == "vkitti":
        from aign_tf.data import vkitti  # pylint: disable=import-outside-toplevel
        return vkitti.camera(height, width)
    from aign_tf.data import driving  # pylint: disable=import-outside-toplevel
    return driving.camera(height, width)


def _stream(config: Config, split: str) -> tuple:
    """What identifies one stream's pairs: the arguments of `_load_pairs`."""
    _check(config)
    o = config.options
    if o["dataset"] == "vkitti":  # the memories are the training sequences; the street counts do not apply
        return o["dataset"], o["data_dir"], frame_size(config), "test" if split == "test" else "train", 0, 0
    return o["dataset"], o["data_dir"], frame_size(config), split, o[f"{split}_sequences"], o["sequence_frames"]


def pairs(config: Config, split: str) -> dict:
    """The frame pairs of one stream ("train", "memory" or "test"), as `aign_tf.data.frames` arrays."""
    return _load_pairs(*_stream(config, split))


@functools.lru_cache(maxsize=6)
def _load_pairs(dataset: str, data_dir: str | None, size: tuple[int, int], split: str, sequences: int,
                sequence_frames: int) -> dict:
    height, width = size
    if dataset == "vkitti":
        from aign_tf.data import vkitti  # pylint: disable=import-outside-toplevel
        names = vkitti.TEST_SEQUENCES if split == "test" else vkitti.TRAIN_SEQUENCES
        return vkitti.load_pairs(data_dir, names, height=height, width=width)
    from aign_tf.data import driving  # pylint: disable=import-outside-toplevel
    return driving.load_pairs(split, height=height, width=width, sequences=sequences,
                              num_frames=sequence_frames, data_dir=data_dir)


def build_model(config: Config) -> AIGN:
    camera = intrinsics(config)  # checks the options
    regime = config.options["model"]
    critics = {}
    if regime in ("aign", "depth_aign"):
        critics["log_depth"] = networks.depth_critic(camera.height, camera.width, 2 * config.options["width"])
    if regime == "aign":
        critics["motion"] = networks.motion_critic()
    return AIGN(networks.generator(camera, config.options["width"]), networks.renderer(camera), critics,
                beta=config.beta, reconstruction=config.reconstruction, gan_loss=config.gan_loss,
                supervised_weight=config.supervised_weight,
                reconstruction_weight=0.0 if regime == "pretrain" else config.reconstruction_weight,
                regularizer=networks.depth_smoothness if regime == "smooth_ign" else None,
                regularizer_weight=config.options["smoothness"] if regime == "smooth_ign" else 0.0,
                gating=Gating(enabled=config.gating))


def _examples(arrays: dict, camera: frames.Intrinsics, batch_size: int, *, shuffle_seed: int | None,
              flow: bool = True) -> tf.data.Dataset:
    """Batches of {"inputs": {image1, image2} in [0, 1], "observed": image1, "targets": {log_depth,
    motion [R | T], and with `flow` the exact flow from the true depth and motion}}."""
    dataset = tf.data.Dataset.from_tensor_slices({k: arrays[k] for k in frames.PAIR_KEYS})
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(arrays["image1"]), seed=shuffle_seed).repeat()

    def example(pair):
        image1 = tf.cast(pair["image1"], tf.float32) / 255.0
        image2 = tf.cast(pair["image2"], tf.float32) / 255.0
        motion = tf.concat([tf.reshape(pair["rotation"], [-1, 9]), pair["translation"]], axis=-1)
        targets = {"log_depth": tf.math.log(tf.maximum(pair["depth1"], warp.MIN_DEPTH)), "motion": motion}
        if flow:
            targets["flow"] = exact_flow(pair, camera)
        return {"inputs": {"image1": image1, "image2": image2}, "observed": image1, "targets": targets}

    return dataset.batch(batch_size, drop_remainder=shuffle_seed is not None).map(example, tf.data.AUTOTUNE)


def exact_flow(pairs: dict, camera: frames.Intrinsics) -> tf.Tensor:
    """[N, H, W, 2] optical flow of frame pairs from their true depth and motion."""
    _, flow = warp.flow_from_depth_and_motion(pairs["depth1"], pairs["rotation"], pairs["translation"],
                                              camera.focal, camera.principal_point)
    return flow


def train_data(config: Config) -> tf.data.Dataset:
    camera, size = intrinsics(config), config.batch_size
    if config.options["model"] == "pretrain":  # supervised on the training sequences
        return _examples(pairs(config, "train"), camera, size, shuffle_seed=config.seed).prefetch(tf.data.AUTOTUNE)
    inputs = _examples(pairs(config, "test"), camera, size, shuffle_seed=config.seed + 1, flow=False)
    memories = _examples(pairs(config, "memory"), camera, size, shuffle_seed=config.seed + 2, flow=False)
    paired = _examples(pairs(config, "train"), camera, max(size // 2, 1), shuffle_seed=config.seed)

    def combine(x, m, p):
        return {"inputs": x["inputs"], "observed": x["observed"],
                "memories": {"log_depth": m["targets"]["log_depth"], "motion": m["targets"]["motion"]},
                "paired": {"inputs": p["inputs"], "targets": {"flow": p["targets"]["flow"]}}}

    return tf.data.Dataset.zip(inputs, memories, paired).map(combine).prefetch(tf.data.AUTOTUNE)


def eval_data(config: Config) -> tf.data.Dataset:
    """The test pairs in order, with their true depth, motion and flow."""
    return _examples(pairs(config, "test"), intrinsics(config), config.batch_size, shuffle_seed=None)


def _geometric_errors(flows: np.ndarray, camera: frames.Intrinsics, magnitude: float, true_rotation: np.ndarray,
                      true_translation: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """Per-pair camera errors of the geometric baseline on `flows` [N, H, W, 2], names prefixed."""
    motions = [metrics.geometric_motion(flow, camera, magnitude) for flow in flows]
    errors = metrics.camera_errors(np.stack([m[0] for m in motions]), np.stack([m[1] for m in motions]),
                                   true_rotation, true_translation)
    return {prefix + name: value for name, value in errors.items()}


@functools.lru_cache(maxsize=2)
def _model_free_metrics(test: tuple, camera: frames.Intrinsics, magnitude: float) -> dict[str, np.ndarray]:
    """Per test pair: the error of Farneback's flow, and the geometric baseline on the exact flow and on
    Farneback's flow. They do not depend on the model, so the evaluations during training reuse them."""
    arrays = _load_pairs(*test)
    exact = exact_flow(arrays, camera).numpy()
    farneback = np.stack([metrics.classical_flow(a, b) for a, b in zip(arrays["image1"], arrays["image2"])])
    return {"farneback_flow_epe_px": np.linalg.norm(farneback - exact, axis=-1).mean((1, 2)),
            **_geometric_errors(exact, camera, magnitude, arrays["rotation"], arrays["translation"],
                                "geometric_exact_flow/"),
            **_geometric_errors(farneback, camera, magnitude, arrays["rotation"], arrays["translation"],
                                "geometric_farneback/")}


def evaluate(model: AIGN, config: Config) -> dict[str, float]:
    """Depth, camera and photometric errors on the test pairs (Table 3, Figure 3; the photometric error
    over the pixels that stay in view, `in_view` the share of those), the flow network's
    end-point error (and that of Farneback's flow), the predicted-to-true median depth ratio (scale
    drift), and the geometric baseline on the flow network's flow (`geometric/...`), on the exact flow
    (`geometric_exact_flow/...`) and on Farneback's flow (`geometric_farneback/...`, no learning at all)."""
    camera = intrinsics(config)
    magnitude = float(np.linalg.norm(pairs(config, "train")["translation"], axis=-1).mean())
    per_example: dict[str, list] = {}
    for batch in eval_data(config):
        predictions = model(batch["inputs"], training=False)
        rendered, valid = model.renderer(predictions, batch["inputs"])
        targets = {k: v.numpy() for k, v in batch["targets"].items()}
        true_rotation, true_translation = targets["motion"][:, :9].reshape(-1, 3, 3), targets["motion"][:, 9:]
        depth, true_depth = np.exp(predictions["log_depth"].numpy()), np.exp(targets["log_depth"])
        photometric = np.abs(rendered.numpy() - batch["observed"].numpy()) * valid.numpy()
        values = {
            **metrics.camera_errors(predictions["rotation"].numpy(), predictions["translation"].numpy(),
                                    true_rotation, true_translation),
            **metrics.depth_errors(depth, true_depth),
            "photometric_l1": photometric.sum((1, 2, 3)) / np.maximum(valid.numpy().sum((1, 2, 3)) * 3, 1),
            "in_view": valid.numpy().mean((1, 2, 3)),
            "flow_epe_px": np.linalg.norm(predictions["flow"].numpy() - targets["flow"], axis=-1).mean((1, 2)),
            "depth_scale_ratio": np.median(depth.reshape(len(depth), -1), 1)
            / np.median(true_depth.reshape(len(depth), -1), 1),
            **_geometric_errors(predictions["flow"].numpy(), camera, magnitude, true_rotation, true_translation,
                                "geometric/")}
        for name, value in values.items():
            per_example.setdefault(name, []).append(value)
    result = {name: float(np.concatenate(values).mean()) for name, values in per_example.items()}
    result.update({name: float(values.mean())
                   for name, values in _model_free_metrics(_stream(config, "test"), camera, magnitude).items()})
    result["examples"] = float(len(np.concatenate(per_example["trl_err"])))
    return result


def depth_image(log_depth: tf.Tensor) -> tf.Tensor:
    """Log depth -> an image in [0, 1]: 4 m / depth (near is bright)."""
    return tf.clip_by_value(4.0 * tf.exp(-log_depth), 0.0, 1.0)


def images(model: AIGN, batch: dict) -> dict[str, tf.Tensor]:
    predictions = model(batch["inputs"], training=False)
    rendered, valid = model.renderer(predictions, batch["inputs"])
    grids = {"frame1": batch["inputs"]["image1"], "frame2": batch["inputs"]["image2"],
             "render (frame 2 warped)": rendered * valid, "depth": depth_image(predictions["log_depth"])}
    if "targets" in batch and "log_depth" in batch["targets"]:
        grids["true depth"] = depth_image(batch["targets"]["log_depth"])
    if "memories" in batch:
        grids["memory depth"] = depth_image(batch["memories"]["log_depth"])
    return grids


def serving(model: AIGN) -> dict:
    """serving_default  uint8 frames image1, image2 [N, H, W, 3] -> "depth" [N, H, W, 1] of image1 (in
                     the unit of the training motions, metres), the camera motion from frame 1 to
                     frame 2 (X2 = R X1 + T): "rotation" [N, 3, 3], "angles" [N, 3] (Rx Ry Rz),
                     "translation" [N, 3]; and the flow network's "flow" [N, H, W, 2] (pixels)
    render           float image2 [N, H, W, 3] in [0, 1], depth, rotation, translation -> "image",
                     image2 warped into frame 1 (eq. 3), and "valid", 1 where the pixel stays in view"""
    rows, cols = model.generator.input["image1"].shape[1:3]

    def estimate(inputs):
        predicted = model.generator({name: image_from_uint8(frame) for name, frame in inputs.items()}, training=False)
        return {"depth": tf.exp(predicted["log_depth"]), "rotation": predicted["rotation"],
                "angles": predicted["angles"], "translation": predicted["translation"], "flow": predicted["flow"]}

    def render(inputs):
        motion = {"log_depth": tf.math.log(inputs["depth"]), "rotation": inputs["rotation"],
                  "translation": inputs["translation"]}
        warped, valid = model.renderer(motion, {"image2": inputs["image2"]})
        return {"image": warped, "valid": valid}

    return {"serving_default": signature([spec("image1", (rows, cols, 3), tf.uint8),
                                          spec("image2", (rows, cols, 3), tf.uint8)], estimate),
            "render": signature([spec("image2", (rows, cols, 3)), spec("depth", (rows, cols, 1)),
                                 spec("rotation", (3, 3)), spec("translation", (3,))], render,
                                {"depth": (2.0, 50.0), "rotation": (-0.01, 0.01), "translation": (-0.5, 0.5)})}


TASK = Task("sfm", DEFAULTS, build_model, train_data, eval_data, evaluate, images, serving=serving)
