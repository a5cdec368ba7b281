"""Structure from motion: depth and egomotion from pairs of frames (paper §2.2, §3.2): `--task=sfm`.

Data (`--dataset`): `driving`, the procedural driving world of `aign_tf.data.driving` (streets
held out by seed, in the towns of `--train_towns` and `--test_towns`, whose look and speeds differ:
`--train_towns=0,1,2,3 --test_towns=4` is the card's domain shift; `--trajectory` makes them follow
a real drive), `vkitti`, Virtual KITTI 1.3.1
under `--data_dir` (sequence 0001 test, the other four training, as in the paper), or real video
without depth: `frames`, a folder of a user's own video (`aign_tf.data.video`), and `kitti`, KITTI raw
drives with their OXTS camera motion (`aign_tf.data.kitti`); for those two the video is the test
stream and the driving world gives the memories and paired examples (at the same frame size, with
its own camera). Three streams of frame pairs:

    test     the unlabelled inputs of every self-supervised model (the paper trains on the test
             videos without their labels and reports the curves there); their depth and motion,
             where they have them, are only read by `evaluate`
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

import dataclasses
import functools
import os

import numpy as np
import tensorflow as tf

from aign_tf.core import batches
from aign_tf.data import frames
from aign_tf.errors import UserError, check_choice
from aign_tf.export.signatures import image_from_uint8, signature, spec
from aign_tf.render import warp
from aign_tf.tasks.base import Task
from aign_tf.tasks.options import Config, Options, option
from aign_tf.tasks.sfm import metrics, model as networks

MODELS = ("aign", "depth_aign", "smooth_ign", "ign", "pretrain")
DATASETS = ("driving", "vkitti", "frames", "kitti")
REAL_VIDEO = ("frames", "kitti")  # test stream only: the driving world gives memories and paired examples
SPLITS = ("train", "memory", "test")


@dataclasses.dataclass(frozen=True)
class SfmOptions(Options):
    model: str = option("aign", "The model: aign, depth_aign, smooth_ign, ign or pretrain.", choices=MODELS)
    dataset: str = option("driving", "The frames: driving (procedural world), vkitti (Virtual KITTI 1.3.1), frames "
                          "(your video: a folder of frames and intrinsics.txt) or kitti (KITTI raw drives); frames "
                          "and kitti take memories and paired examples from the driving world.", choices=DATASETS)
    data_dir: str | None = option(None, "Directory holding the dataset files (vkitti, frames, kitti); for driving "
                                  "the driving world's cache (default $AIGN_TF_CACHE/tfds, also used by frames "
                                  "and kitti).")
    trajectory: str | None = option(None, "driving world: a KITTI odometry pose file (12 numbers a line, 10 Hz) "
                                    "whose real drive the streets follow instead of random paths.")
    train_towns: str = option("0", "driving world: the towns (comma-separated, 0-4; see aign_tf.data.driving.TOWNS) "
                              "of the training and memory streets, e.g. 0,1,2,3 (also for frames and kitti, whose "
                              "other streams are the driving world's).")
    test_towns: str = option("0", "driving world: the towns of the test streets, e.g. 4 (the shifted town of the "
                             "sfm card); only --dataset=driving has driving-world test streets.")
    frame_size: str = option("64x192", "HEIGHTxWIDTH of the frames, multiples of 16, e.g. 64x192.")
    train_sequences: int = option(16, "driving world: streets of paired training examples.", minimum=1)
    memory_sequences: int = option(8, "driving world: streets whose depth and motion are the memories.", minimum=1)
    test_sequences: int = option(4, "driving: held-out streets, the unlabelled inputs.", minimum=1)
    sequence_frames: int = option(40, "driving world: frames per street.", minimum=2)
    width: int = option(16, "Channels of the first conv layer of generator and critic (doubling deeper).",
                        minimum=1)
    smoothness: float = option(0.1, "Weight of the depth smoothness prior of --model=smooth_ign.", minimum=0)

    def validate(self) -> None:
        needs = {"vkitti": "the directory holding the unpacked vkitti_1.3.1_rgb, vkitti_1.3.1_depthgt and "
                           "vkitti_1.3.1_extrinsicsgt folders",
                 "frames": "the folder holding your video's frames and intrinsics.txt",
                 "kitti": "the directory holding the KITTI raw days (YYYY_MM_DD folders)"}
        if self.dataset in needs and not self.data_dir:
            raise UserError(f"--dataset={self.dataset} needs --data_dir, {needs[self.dataset]}")
        frames.check_frame_size(*self.frame_shape)
        self.towns("train"), self.towns("test")  # pylint: disable=expression-not-assigned

    def towns(self, split: str) -> tuple[int, ...]:
        """The driving world's towns of stream `split`: --test_towns for "test", else --train_towns."""
        text = self.test_towns if split == "test" else self.train_towns
        flag = "--test_towns" if split == "test" else "--train_towns"
        try:
            towns = tuple(int(town) for town in text.split(","))
        except ValueError:
            towns = ()
        from aign_tf.data import driving  # pylint: disable=import-outside-toplevel
        return driving.check_towns(towns, f"{flag}={text}")

    @functools.cached_property
    def frame_shape(self) -> tuple[int, int]:
        """(height, width) of the frames, parsed from `frame_size`."""
        try:
            height, width = (int(side) for side in self.frame_size.lower().split("x"))
        except ValueError:
            raise UserError(f"--frame_size={self.frame_size} is not HEIGHTxWIDTH, e.g. --frame_size=64x192") from None
        return height, width


class SfmTask(Task):
    """Structure from motion, bound to its options; it loads each stream's frame pairs, the cameras and
    the model-free metrics of the test pairs once, on first use."""

    name = "sfm"
    Options = SfmOptions
    run_defaults = {"steps": 3000, "batch_size": 8, "beta": 0.01, "learning_rate": 1e-4, "reconstruction": "l1",
                    "supervised_weight": 1.0}

    def __init__(self, config: Config):
        super().__init__(config)
        self._pairs: dict[tuple[str, str], dict] = {}

    @classmethod
    def unlabelled_options(cls, path: str) -> dict:
        """A folder of video frames with their intrinsics (`--dataset=frames`) as the unlabelled inputs."""
        return {"dataset": "frames", "data_dir": os.path.abspath(path)}

    # -- data ------------------------------------------------------------------------------------

    def _source(self, split: str) -> tuple[str, str]:
        """(dataset, part) that gives the stream `split`: on vkitti the memories are the training
        sequences (one load for both; the street counts do not apply); on frames and kitti only the
        test stream is the video, the others come from the driving world."""
        check_choice("sfm stream", split, SPLITS)
        dataset = self.options.dataset
        if dataset == "vkitti":
            return dataset, "test" if split == "test" else "train"
        return (dataset if split == "test" else "driving"), split

    @functools.cached_property
    def intrinsics(self) -> frames.Intrinsics:
        """The model's camera: that of --dataset's frames (the test stream, the frames it learns from)."""
        o = self.options
        height, width = o.frame_shape
        if o.dataset == "vkitti":
            from aign_tf.data import vkitti  # pylint: disable=import-outside-toplevel
            return vkitti.camera(height, width)
        if o.dataset in REAL_VIDEO:
            from aign_tf.data import kitti, video  # pylint: disable=import-outside-toplevel
            return (video if o.dataset == "frames" else kitti).camera(o.data_dir, height, width)
        from aign_tf.data import driving  # pylint: disable=import-outside-toplevel
        return driving.camera(height, width)

    def camera(self, split: str) -> frames.Intrinsics:
        """The camera that took the frames of stream `split` ("train", "memory" or "test"): the model's,
        or the driving world's for the streams it gives to frames and kitti."""
        dataset, _ = self._source(split)
        if dataset == self.options.dataset:
            return self.intrinsics
        from aign_tf.data import driving  # pylint: disable=import-outside-toplevel
        return driving.camera(*self.options.frame_shape)

    def pairs(self, split: str) -> dict:
        """The frame pairs of one stream ("train", "memory" or "test"), as `aign_tf.data.frames` arrays
        (see `_source` for where each comes from)."""
        source = self._source(split)
        if source not in self._pairs:
            (dataset, part), o = source, self.options
            height, width = o.frame_shape
            if dataset == "vkitti":
                from aign_tf.data import vkitti  # pylint: disable=import-outside-toplevel
                names = vkitti.TEST_SEQUENCES if part == "test" else vkitti.TRAIN_SEQUENCES
                self._pairs[source] = vkitti.load_pairs(o.data_dir, names, height=height, width=width)
            elif dataset in REAL_VIDEO:
                from aign_tf.data import kitti, video  # pylint: disable=import-outside-toplevel
                reader = video if dataset == "frames" else kitti
                self._pairs[source] = pairs = reader.load_pairs(o.data_dir, height=height, width=width)
                print(f"{dataset} {o.data_dir}: {len(pairs['image1'])} pairs of {len(set(pairs['sequence']))} "
                      f"sequence(s) at {height}x{width}, the test stream", flush=True)
            else:
                from aign_tf.data import driving  # pylint: disable=import-outside-toplevel
                self._pairs[source] = driving.load_pairs(
                    part, height=height, width=width, sequences=getattr(o, f"{part}_sequences"),
                    num_frames=o.sequence_frames, data_dir=None if o.dataset in REAL_VIDEO else o.data_dir,
                    trajectory=o.trajectory, towns=o.towns(part))
        return self._pairs[source]

    def _examples(self, split: str, batch_size: int, *, shuffle_seed: int | None,
                  flow: bool = True) -> tf.data.Dataset:
        """Batches of the examples of stream `split` with inputs {image1, image2} in [0, 1], observed
        image1 and the targets its pairs have the truth for: log_depth, motion [R | T], and with `flow`
        the exact flow from the true depth and motion (with the stream's camera)."""
        arrays, camera = self.pairs(split), self.camera(split)
        dataset = tf.data.Dataset.from_tensor_slices({k: arrays[k] for k in frames.PAIR_KEYS if k in arrays})
        if shuffle_seed is not None:
            dataset = dataset.shuffle(len(arrays["image1"]), seed=shuffle_seed).repeat()

        def example(pair):
            image1 = tf.cast(pair["image1"], tf.float32) / 255.0
            image2 = tf.cast(pair["image2"], tf.float32) / 255.0
            targets = {}
            if "depth1" in pair:
                targets["log_depth"] = tf.math.log(tf.maximum(pair["depth1"], warp.MIN_DEPTH))
            if "rotation" in pair:
                targets["motion"] = tf.concat([tf.reshape(pair["rotation"], [-1, 9]), pair["translation"]], axis=-1)
            if flow and "log_depth" in targets and "motion" in targets:
                targets["flow"] = exact_flow(pair, camera)
            return batches.example({"image1": image1, "image2": image2}, image1, targets=targets or None)

        return dataset.batch(batch_size, drop_remainder=shuffle_seed is not None).map(example, tf.data.AUTOTUNE)

    def train_batches(self) -> tf.data.Dataset:
        size, seed = self.config.batch_size, self.config.seed
        if self.options.model == "pretrain":  # supervised on the training sequences
            return self._examples("train", size, shuffle_seed=seed).prefetch(tf.data.AUTOTUNE)
        inputs = self._examples("test", size, shuffle_seed=seed + 1, flow=False)
        memories = self._examples("memory", size, shuffle_seed=seed + 2, flow=False)
        paired = self._examples("train", max(size // 2, 1), shuffle_seed=seed)

        def combine(x, m, p):
            return batches.example(x["inputs"], x["observed"],
                                   memories={"log_depth": m["targets"]["log_depth"], "motion": m["targets"]["motion"]},
                                   paired=batches.paired(p["inputs"], {"flow": p["targets"]["flow"]}))

        return tf.data.Dataset.zip(inputs, memories, paired).map(combine).prefetch(tf.data.AUTOTUNE)

    def eval_dataset(self) -> tf.data.Dataset:
        """The test pairs in order, with their true depth, motion and flow where they have them."""
        return self._examples("test", self.config.batch_size, shuffle_seed=None)

    # -- the model -------------------------------------------------------------------------------

    def build_model(self) -> networks.SfmAIGN:
        camera, o = self.intrinsics, self.options
        critics = {}
        if o.model in ("aign", "depth_aign"):
            critics["log_depth"] = networks.depth_critic(camera.height, camera.width, 2 * o.width)
        if o.model == "aign":
            critics["motion"] = networks.motion_critic()
        weights = self.aign_weights()
        if o.model == "pretrain":  # supervised only
            weights["reconstruction_weight"] = 0.0
        return networks.SfmAIGN(networks.generator(camera, o.width), critics, intrinsics=camera,
                                regularizer_weight=o.smoothness if o.model == "smooth_ign" else 0.0, **weights)

    # -- measurement and use ---------------------------------------------------------------------

    @functools.cached_property
    def magnitude(self) -> float:
        """The mean translation length of the training pairs: the geometric baseline's length of T."""
        return float(np.linalg.norm(self.pairs("train")["translation"], axis=-1).mean())

    def _geometric_errors(self, flows: np.ndarray, true_rotation: np.ndarray, true_translation: np.ndarray,
                          prefix: str) -> dict[str, np.ndarray]:
        """Per-pair camera errors of the geometric baseline on `flows` [N, H, W, 2], names prefixed."""
        motions = [metrics.geometric_motion(flow, self.intrinsics, self.magnitude) for flow in flows]
        errors = metrics.camera_errors(np.stack([m[0] for m in motions]), np.stack([m[1] for m in motions]),
                                       true_rotation, true_translation)
        return {prefix + name: value for name, value in errors.items()}

    @functools.cached_property
    def test_truth(self) -> tuple[bool, bool]:
        """(depth, motion): whether the test pairs have true depth and true camera motion. The first call
        says which metrics `evaluate` leaves out for want of them."""
        arrays = self.pairs("test")
        depth, motion = "depth1" in arrays, "rotation" in arrays
        where = f"{self.name}: the test frames of --dataset={self.options.dataset} have no true depth"
        if not motion:
            print(f"{where} or camera motion: evaluate reports the photometric error only (no depth, camera, flow "
                  "or geometric-baseline metrics)", flush=True)
        elif not depth:
            print(f"{where}: evaluate reports camera errors, the geometric baseline on the network's and "
                  "Farneback's flow, and the photometric error (no depth or flow metrics)", flush=True)
        return depth, motion

    @functools.cached_property
    def model_free_metrics(self) -> dict[str, np.ndarray]:
        """Per test pair: the geometric baseline on Farneback's flow (needs the true motion), the error of
        Farneback's flow, the geometric baseline on the exact flow and the photometric error of the renderer
        on the true depth and motion, `photometric_l1_truth`, the score that the reconstruction loss gives
        the truth (need the true depth too). They do not depend on the model, so the evaluations during
        training reuse them."""
        arrays, (depth, motion) = self.pairs("test"), self.test_truth
        if not motion:
            return {}
        truth = arrays["rotation"], arrays["translation"]
        farneback = np.stack([metrics.classical_flow(a, b) for a, b in zip(arrays["image1"], arrays["image2"])])
        result = {}
        if depth:
            exact = exact_flow(arrays, self.intrinsics).numpy()
            result["farneback_flow_epe_px"] = np.linalg.norm(farneback - exact, axis=-1).mean((1, 2))
            result.update(self._geometric_errors(exact, *truth, "geometric_exact_flow/"))
            rendered, valid = warp.warp(arrays["image2"].astype(np.float32) / 255.0, arrays["depth1"], *truth,
                                        tf.constant(self.intrinsics.focal, tf.float32),
                                        tf.constant(self.intrinsics.principal_point, tf.float32))
            result["photometric_l1_truth"] = metrics.photometric_error(
                rendered.numpy(), arrays["image1"].astype(np.float32) / 255.0, valid.numpy())
        return {**result, **self._geometric_errors(farneback, *truth, "geometric_farneback/")}

    def evaluate(self, model: networks.SfmAIGN) -> dict[str, float]:
        """On the test pairs, each metric whose truth they have (`test_truth`): the photometric error over
        the pixels that stay in view (`in_view` the share of those); camera errors (Table 3) and the
        geometric baseline on the flow network's flow (`geometric/...`) and on Farneback's flow
        (`geometric_farneback/...`, no learning at all); depth errors (Figure 3) and the predicted-to-true
        median depth ratio (scale drift); the flow network's end-point error, that of Farneback's flow, and
        the geometric baseline on the exact flow (`geometric_exact_flow/...`)."""
        per_example: dict[str, list] = {}
        for batch in self.eval_dataset():
            predictions = model(batch["inputs"], training=False)
            rendered, valid = model.render(predictions, batch["inputs"])
            targets = {k: v.numpy() for k, v in batch.get("targets", {}).items()}
            values = {"photometric_l1": metrics.photometric_error(rendered.numpy(), batch["observed"].numpy(),
                                                                  valid.numpy()),
                      "in_view": valid.numpy().mean((1, 2, 3))}
            if "motion" in targets:
                true_rotation, true_translation = targets["motion"][:, :9].reshape(-1, 3, 3), targets["motion"][:, 9:]
                values.update(metrics.camera_errors(predictions["rotation"].numpy(), predictions["translation"].numpy(),
                                                    true_rotation, true_translation))
                values.update(self._geometric_errors(predictions["flow"].numpy(), true_rotation, true_translation,
                                                     "geometric/"))
            if "log_depth" in targets:
                depth, true_depth = np.exp(predictions["log_depth"].numpy()), np.exp(targets["log_depth"])
                values.update(metrics.depth_errors(depth, true_depth))
                values["depth_scale_ratio"] = (np.median(depth.reshape(len(depth), -1), 1)
                                               / np.median(true_depth.reshape(len(depth), -1), 1))
            if "flow" in targets:
                flow_error = np.linalg.norm(predictions["flow"].numpy() - targets["flow"], axis=-1)
                values["flow_epe_px"] = flow_error.mean((1, 2))
            for name, value in values.items():
                per_example.setdefault(name, []).append(value)
        result = {name: float(np.concatenate(values).mean()) for name, values in per_example.items()}
        result.update({name: float(values.mean()) for name, values in self.model_free_metrics.items()})
        result["examples"] = float(len(np.concatenate(per_example["photometric_l1"])))
        return result

    def images(self, model: networks.SfmAIGN, batch: dict) -> dict[str, tf.Tensor]:
        predictions = model(batch["inputs"], training=False)
        rendered, valid = model.render(predictions, batch["inputs"])
        grids = {"frame1": batch["inputs"]["image1"], "frame2": batch["inputs"]["image2"],
                 "render (frame 2 warped)": rendered * valid, "depth": depth_image(predictions["log_depth"])}
        if "targets" in batch and "log_depth" in batch["targets"]:
            grids["true depth"] = depth_image(batch["targets"]["log_depth"])
        if "memories" in batch:
            grids["memory depth"] = depth_image(batch["memories"]["log_depth"])
        return grids

    def serving(self, model: networks.SfmAIGN) -> dict:
        """serving_default  uint8 frames image1, image2 [N, H, W, 3] -> "depth" [N, H, W, 1] of image1 (in
                         the unit of the training motions, metres), the camera motion from frame 1 to
                         frame 2 (X2 = R X1 + T): "rotation" [N, 3, 3], "angles" [N, 3] (Rx Ry Rz),
                         "translation" [N, 3]; and the flow network's "flow" [N, H, W, 2] (pixels)
        render           float image2 [N, H, W, 3] in [0, 1], depth, rotation, translation -> "image",
                         image2 warped into frame 1 (eq. 3), and "valid", 1 where the pixel stays in view"""
        rows, cols = model.generator.input["image1"].shape[1:3]

        def estimate(inputs):
            predicted = model.generator({name: image_from_uint8(frame) for name, frame in inputs.items()},
                                        training=False)
            return {"depth": tf.exp(predicted["log_depth"]), "rotation": predicted["rotation"],
                    "angles": predicted["angles"], "translation": predicted["translation"], "flow": predicted["flow"]}

        def render(inputs):
            motion = {"log_depth": tf.math.log(inputs["depth"]), "rotation": inputs["rotation"],
                      "translation": inputs["translation"]}
            warped, valid = model.render(motion, {"image2": inputs["image2"]})
            return {"image": warped, "valid": valid}

        return {"serving_default": signature([spec("image1", (rows, cols, 3), tf.uint8),
                                              spec("image2", (rows, cols, 3), tf.uint8)], estimate),
                "render": signature([spec("image2", (rows, cols, 3)), spec("depth", (rows, cols, 1)),
                                     spec("rotation", (3, 3)), spec("translation", (3,))], render,
                                    {"depth": (2.0, 50.0), "rotation": (-0.01, 0.01), "translation": (-0.5, 0.5)})}


def exact_flow(pairs: dict, camera: frames.Intrinsics) -> tf.Tensor:
    """[N, H, W, 2] optical flow of frame pairs from their true depth and motion."""
    _, flow = warp.flow_from_depth_and_motion(pairs["depth1"], pairs["rotation"], pairs["translation"],
                                              camera.focal, camera.principal_point)
    return flow


def depth_image(log_depth: tf.Tensor) -> tf.Tensor:
    """Log depth -> an image in [0, 1]: 4 m / depth (near is bright)."""
    return tf.clip_by_value(4.0 * tf.exp(-log_depth), 0.0, 1.0)
