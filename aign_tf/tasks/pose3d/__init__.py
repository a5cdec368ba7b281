"""3D human pose from 2D keypoints (paper §2.1, §3.1; supplementary §2.1): `--task=pose3d`.

Data (`--dataset`): the 15 DeepMimic motion-capture clips shipped in `aign_tf/data/motions`, split
by clip (15 joints, the default); a folder of BVH motion capture (`--data_dir`, `aign_tf.data.bvh`:
CMU, LaFAN1, Mixamo or `--joint_map` naming, 15 joints, split by file); or Human3.6M in VideoPose3D's layout (`--data_dir`), the paper's
protocol: 17 joints, subjects S1, S5, S6, S7, S8 train and S9, S11 test, every `--frame_step`-th
frame, ground-truth or detected (CPN) 2D inputs (`--keypoints_2d`). Regimes, by the paper's names:
Sup1 paired 2D-3D examples of the training skeletons seen through random cameras; Sup2 real paired
2D-3D examples, on Human3.6M the training subjects' 2D in each camera with their 3D (on DeepMimic
Sup2 coincides with Sup1: without images, both are projections of the training skeletons); Sup3 the
reprojection loss on the unlabelled test 2D; Sup4 the adversarial loss on the same test 2D, with
memories of training skeletons. `--extra_clips` adds training motion to the 15-joint datasets: the
five real climbing clips shipped in `aign_tf/data/climbing` (`climbing`) or a folder of BVH files;
they join the training skeletons (memories, Sup1 views, PCA basis), never the test. Models (`--model`):

    forward2d3d   Sup1+2          supervised only (reconstruction weight 0, no critic)
    interpreter   Sup1+2+3        + reprojection on test 2D ("3D interpreter")
    aign          Sup1+2+3+4      + adversarial prior (the AIGN)

The test 2D inputs are used without their 3D, as in the paper; evaluation compares the
predictions on those inputs with the held-out 3D truth. With `keypoints=FILE` (2D-only keypoints,
e.g. an MPII-style export, `aign_tf.data.h36m.load_keypoints_2d`) those replace the test clips as
unlabelled inputs: test-time adaptation (`python -m aign_tf.zoo.adapt`) and inference.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import tempfile

import numpy as np
import tensorflow as tf

from aign_tf.core import AIGN, batches
from aign_tf.data import bvh, climbing, deepmimic, h36m
from aign_tf.errors import UserError
from aign_tf.export.signatures import signature, spec
from aign_tf.render import camera
from aign_tf.tasks.base import Task
from aign_tf.tasks.options import Options, option
from aign_tf.tasks.pose3d import data, figures, metrics, model as networks, skeleton

MODELS = ("forward2d3d", "interpreter", "aign")
GENERATORS = ("heatmap", "mlp")
CRITIC_INPUTS = ("shape", "params")
DATASETS = ("deepmimic", "bvh", "h36m")


@dataclasses.dataclass(frozen=True)
class PoseOptions(Options):
    model: str = option("aign", "forward2d3d (Sup1+2), interpreter (+Sup3) or aign (+Sup4).", choices=MODELS)
    generator: str = option("heatmap", "heatmap (conv on Gaussian heatmaps) or mlp (on keypoints).",
                            choices=GENERATORS)
    components: int = option(30, "PCA components of the skeleton basis.", minimum=1)
    noise_px: float = option(0.0, "Gaussian noise on the 2D keypoints, a stand-in for detections.", minimum=0,
                             unit="pixels")
    width: int = option(32, "Channels of the heatmap generator's first conv layer (doubling deeper); "
                        "its FC layers have 16 times as many units.", minimum=1)
    heatmap_sigma: float = option(1.0, "Standard deviation of the heatmap generator's Gaussian heatmaps, "
                                  "32 heatmap pixels across the keypoints' bounding box.", minimum=0.1,
                                  unit="heatmap pixels")
    train_cameras: int = option(8, "Random cameras per training frame: the paired 2D-3D examples.", minimum=1)
    test_cameras: int = option(4, "deepmimic: random cameras per test frame: the unlabelled inputs and the "
                               "evaluation set.", minimum=1)
    keypoints: str | None = option(None, "2D keypoints without 3D truth (.npz, .npy or .json), [N, J, 2] pixels, "
                                   "principal point at the image centre; --image_size gives the image side.")
    image_size: int | None = option(int(data.IMAGE_SIZE), "Side of the --keypoints' image; coordinates are "
                                    "scaled by half of it.", minimum=1, unit="pixels")
    critic_input: str = option("shape", "The critic reads canonical skeletons (shape) or (alpha, R, f) (params).",
                               choices=CRITIC_INPUTS)
    dataset: str = option("deepmimic", "Skeletons and 2D inputs: deepmimic (15 embedded clips seen by random "
                          "cameras), bvh (the BVH files in --data_dir, split by file) or h36m (Human3.6M in "
                          "--data_dir, the paper's protocol).", choices=DATASETS)
    data_dir: str | None = option(None, f"bvh: a folder of .bvh files (any depth); h36m: the directory holding "
                                  f"{h36m.FILE_3D} and the 2D file of --keypoints_2d.")
    joint_map: str | None = option(None, "bvh and --extra_clips: a JSON file mapping the 15 joints (pelvis, "
                                   "right_hip, ...) to the BVH files' joint names; default: CMU/LaFAN1/Mixamo names.")
    bvh_unit: float | None = option(None, "bvh and --extra_clips: metres per unit of the BVH files; default: "
                                    "metres, centimetres, inches or CMU units, whichever gives a ~0.85 m leg.",
                                    minimum=1e-9, unit="metres")
    extra_clips: str | None = option(None, "More training motion (skeletons and memories, never tested): "
                                     "climbing (5 real mocap clips shipped) or a folder of BVH files.")
    keypoints_2d: str = option("gt", f"h36m: the 2D inputs: gt ({h36m.FILES_2D['gt']}) or cpn (detections, "
                               f"{h36m.FILES_2D['cpn']}).", choices=tuple(h36m.FILES_2D))
    frame_step: int = option(h36m.EVERY, "h36m: keep every N-th frame of the 50 Hz sequences (the paper's 3, "
                             "one third of the frame rate).", minimum=1)

    def validate(self) -> None:
        if self.dataset == "h36m" and not self.data_dir:
            raise UserError(f"--dataset=h36m needs --data_dir, the directory holding {h36m.FILE_3D} and "
                            f"{' or '.join(h36m.FILES_2D.values())}")
        if self.dataset == "bvh" and not self.data_dir:
            raise UserError("--dataset=bvh needs --data_dir, a folder of .bvh motion-capture files")
        if self.dataset == "h36m" and self.extra_clips:
            raise UserError("--extra_clips adds 15-joint skeletons, Human3.6M has 17 joints: drop --extra_clips "
                            "or use --dataset=deepmimic or bvh")

    def bvh_reading(self) -> dict:
        """--joint_map and --bvh_unit, as keyword arguments of `aign_tf.data.bvh`'s loaders."""
        return {"joint_map": bvh.read_joint_map(self.joint_map) if self.joint_map else None,
                "metres_per_unit": self.bvh_unit}


class PoseTask(Task):
    """3D pose from 2D keypoints; loads the skeletons, the PCA basis and the unlabelled inputs once."""

    name = "pose3d"
    Options = PoseOptions
    run_defaults = dict(steps=3000, batch_size=64, beta=0.01, learning_rate=1e-4, supervised_weight=1.0,
                        reconstruction_weight=1.0)

    # -- what the task holds -----------------------------------------------------------------------

    @property
    def joint_set(self) -> skeleton.JointSet:
        """The dataset's skeleton layout: 15 DeepMimic joints or 17 Human3.6M joints."""
        return skeleton.H36M if self.options.dataset == "h36m" else skeleton.DEEPMIMIC

    @functools.cached_property
    def h36m_frames(self) -> tuple[h36m.H36MPoses, h36m.H36MPoses]:
        """(training, test) frames of Human3.6M with their 2D keypoints (`--dataset=h36m`)."""
        return h36m.load_protocol(self.options.data_dir, self.options.keypoints_2d, self.options.frame_step)

    @functools.cached_property
    def canonical(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(train, test) skeletons in the canonical frame, by clip (or Human3.6M sequence); the split is fixed."""
        if self.options.dataset == "h36m":
            train, test = self.h36m_frames
            return data.canonical_sequences(train), data.canonical_sequences(test)
        o = self.options
        train, test = bvh.clip_split(o.data_dir, **o.bvh_reading()) if o.dataset == "bvh" else deepmimic.clip_split()
        return data.canonical_clips({**train, **self.extra_clips}), data.canonical_clips(test)

    @functools.cached_property
    def extra_clips(self) -> dict[str, deepmimic.Clip]:
        """The --extra_clips clips, every one for training, named "extra/<clip>"."""
        o = self.options
        if not o.extra_clips:
            return {}
        clips = climbing.load_clips() if o.extra_clips == "climbing" else bvh.load_clips(o.extra_clips, **o.bvh_reading())
        return {f"extra/{name}": clip for name, clip in clips.items()}

    @property
    def cameras(self) -> data.Cameras:
        """The ranges of the random cameras of the Sup1 views."""
        return data.H36M_CAMERAS if self.options.dataset == "h36m" else data.Cameras()

    @functools.cached_property
    def basis(self) -> skeleton.PoseBasis:
        """PCA basis of the canonical training skeletons."""
        train, _ = self.canonical
        return skeleton.pca_basis(np.concatenate(list(train.values())), self.options.components)

    @functools.cached_property
    def train_views(self) -> data.Views:
        """The paired 2D-3D examples: each training frame through random cameras."""
        train, _ = self.canonical
        return data.views(train, self.options.train_cameras, seed=self.config.seed, noise_px=self.options.noise_px,
                          cameras=self.cameras)

    @functools.cached_property
    def paired_examples(self) -> dict[str, np.ndarray]:
        """The paired examples, normalised keypoints and their 3D pose: the Sup1 views, and on Human3.6M
        also the training subjects' real 2D in every camera (Sup2)."""
        views = [self.train_views]
        if self.options.dataset == "h36m":
            views.append(data.h36m_views(self.h36m_frames[0]))
        return {"keypoints": np.concatenate([v.normalised() for v in views]),
                "pose": np.concatenate([v.pose for v in views])}

    @functools.cached_property
    def test_views(self) -> data.Views:
        """The unlabelled test inputs (and their held-out truth): each test frame through fixed cameras,
        or on Human3.6M the test subjects' real 2D in every camera."""
        if self.options.dataset == "h36m":
            return data.h36m_views(self.h36m_frames[1])
        _, test = self.canonical
        return data.views(test, self.options.test_cameras, seed=10_000 + self.config.seed,
                          noise_px=self.options.noise_px)

    @property
    def image_size(self) -> float:
        """Side (pixels) of the image of the unlabelled keypoints."""
        return float(self.options.image_size or data.IMAGE_SIZE)

    @property
    def pixels_per_unit(self):
        """Pixels per normalised unit of the unlabelled inputs: a number, or [N, 1, 1] on Human3.6M."""
        return self.test_views.half if self.options.keypoints is None else data.image_frame(self.image_size)[1]

    @functools.cached_property
    def unlabelled_keypoints(self) -> np.ndarray:
        """The unlabelled 2D inputs, normalised: the keypoints file if given, else the test views."""
        if self.options.keypoints is None:
            return self.test_views.normalised()
        keypoints = h36m.load_keypoints_2d(self.options.keypoints, self.joint_set.num_joints)
        largest = float(np.abs(keypoints).max())
        if largest > 10 * self.image_size:  # not pixels of this image: training would only diverge
            raise UserError(f"keypoint file {self.options.keypoints} has coordinates up to {largest:.3g} px, far "
                            f"outside a {self.image_size:g} px image: give pixels, and the image's side as --image_size")
        return data.normalise(keypoints, self.image_size)

    # -- the model -------------------------------------------------------------------------------

    def build_model(self) -> networks.PoseAIGN:
        basis, o = self.basis, self.options
        critics = None
        if o.model == "aign" and o.critic_input == "shape":
            critics = {"shape": networks.critic((basis.num_joints, 3), "shape")}
        elif o.model == "aign":
            critics = {"params": networks.critic((basis.num_components + 7,), "params")}
        weights = self.aign_weights()
        if o.model == "forward2d3d":
            weights["reconstruction_weight"] = 0.0
        return networks.PoseAIGN(networks.generator(basis, o.generator, o.width, o.heatmap_sigma), critics, **weights)

    # -- data ------------------------------------------------------------------------------------

    def train_batches(self) -> tf.data.Dataset:
        """Unlabelled inputs (observed by the renderer), paired examples of the training skeletons and
        memories (training skeletons only), each stream shuffled with its own seed."""
        train, _ = self.canonical
        seed = self.config.seed
        memories = {"shape": np.concatenate(list(train.values()))}
        if self.options.critic_input == "params":  # (alpha, R, f) of training skeletons and sampled cameras
            angles, focal = data.sample_cameras(len(memories["shape"]), seed=seed + 3, cameras=self.cameras)
            memories = {"params": networks.parameter_vector(self.basis.encode(memories["shape"]), angles, focal,
                                                            half=self.cameras.image_size / 2)}

        def stream(arrays: dict, seed: int) -> tf.data.Dataset:
            size = len(next(iter(arrays.values())))
            return tf.data.Dataset.from_tensor_slices(arrays).shuffle(size, seed=seed).repeat()

        zipped = tf.data.Dataset.zip(
            stream({"keypoints": self.unlabelled_keypoints}, seed),
            stream(self.paired_examples, seed + 1),
            stream(memories, seed + 2))
        return zipped.batch(self.config.batch_size, drop_remainder=True).map(
            lambda x, p, m: batches.example({"keypoints": x["keypoints"]}, x["keypoints"], memories=m,
                                            paired=batches.paired({"keypoints": p["keypoints"]},
                                                                  {"pose": p["pose"]}))
        ).prefetch(tf.data.AUTOTUNE)

    def eval_dataset(self) -> tf.data.Dataset:
        """The unlabelled inputs in order, with their 3D truth when they are the test views."""
        keypoints = self.unlabelled_keypoints
        targets = {"pose": self.test_views.pose} if self.options.keypoints is None else None
        examples = batches.example({"keypoints": keypoints}, keypoints, targets=targets)
        return tf.data.Dataset.from_tensor_slices(examples).batch(self.config.batch_size)

    # -- measurement and use ---------------------------------------------------------------------

    @classmethod
    def unlabelled_options(cls, path: str) -> dict:
        """A keypoints file (`keypoints`) as the unlabelled inputs."""
        return {"keypoints": os.path.abspath(path)}

    def predict(self, model: networks.PoseAIGN) -> dict[str, np.ndarray]:
        """The model's predictions on the unlabelled inputs, with their reprojection error in pixels."""
        outputs = [model(batch["inputs"], training=False) for batch in self.eval_dataset()]
        predicted = {k: np.concatenate([o[k].numpy() for o in outputs]) for k in outputs[0]}
        rendered, _ = model.render({k: tf.constant(v) for k, v in predicted.items()}, None)
        difference = (rendered.numpy() - self.unlabelled_keypoints) * self.pixels_per_unit
        predicted["reprojection_px"] = np.linalg.norm(difference, axis=-1).mean(axis=-1)
        return predicted

    def evaluate(self, model: networks.PoseAIGN) -> dict[str, float]:
        """MPJPE after torso alignment and PA-MPJPE (mm), overall and per test clip (Human3.6M: per action,
        in the order of the paper's tables); reprojection error (px). On a keypoints file (no 3D truth)
        only the reprojection error."""
        predicted = self.predict(model)
        result = {"reprojection_px": float(predicted["reprojection_px"].mean()),
                  "examples": float(len(predicted["pose"]))}
        if self.options.keypoints is not None:
            return result
        views = self.test_views
        aligned = metrics.mpjpe_aligned_mm(predicted["pose"], views.pose)
        procrustes = metrics.pa_mpjpe_mm(predicted["pose"], views.pose)
        result.update({"mpjpe_mm": float(aligned.mean()), "pa_mpjpe_mm": float(procrustes.mean())})
        for clip in dict.fromkeys(views.clip):
            chosen = views.clip == clip
            result[f"mpjpe_mm/{clip}"] = float(aligned[chosen].mean())
            result[f"pa_mpjpe_mm/{clip}"] = float(procrustes[chosen].mean())
        return result

    def images(self, model: AIGN, batch: dict) -> dict[str, tf.Tensor]:
        """One picture: predicted (red) vs true (blue) skeletons of the first 4 examples with 3D truth
        (the paired examples of a training batch, or an evaluation batch), from three views; none
        without 3D truth."""
        labelled = batch.get("paired", batch)
        if "targets" not in labelled:  # a keypoints file: no 3D truth to draw against
            return {}
        predicted = model(labelled["inputs"], training=False)["pose"].numpy()[:4]
        truth = labelled["targets"]["pose"].numpy()[:4]
        with tempfile.TemporaryDirectory() as tmp:
            image = figures.figure_to_image(figures.skeleton_figure(predicted, truth, os.path.join(tmp, "s.png")))
        return {"skeletons": tf.constant(image[..., :3], tf.float32) / 255.0}

    def serving(self, model: AIGN) -> dict:
        """serving_default  float keypoints [N, J, 2] in pixels and image_size [N, 2] (width, height; the
                         principal point is the image centre, coordinates are scaled by half the longer
                         side as in training) -> "joints" [N, J, 3], the 3D joints in the camera frame
                         (metres, x right, y down, z forward), "rotation" [N, 3, 3] (Rx Ry Rz),
                         "translation" [N, 3] (metres, of the pelvis), "focal_px" [N] and "reprojected"
                         [N, J, 2], the joints reprojected (pixels)
        render           joints [N, J, 3], focal_px [N], image_size [N, 2] -> "keypoints" [N, J, 2] (eq. 2)"""
        joints = model.generator.input["keypoints"].shape[1]

        def project_px(joints: tf.Tensor, focal_px: tf.Tensor, image_size: tf.Tensor) -> tf.Tensor:
            """Eq. (2) in pixels, the principal point at the image centre."""
            centre, _ = data.image_frame(image_size)
            return data.project(joints, focal_px[:, tf.newaxis], centre)

        def estimate(inputs):
            size = inputs["image_size"]
            _, half = data.image_frame(size)  # [N, 1, 1]
            predicted = model.generator({"keypoints": data.normalise(inputs["keypoints"], size)}, training=False)
            translation = predicted["translation"]
            camera_joints = predicted["pose"] + translation[:, tf.newaxis]
            focal_px = predicted["focal"][:, 0] * half[:, 0, 0]
            return {"joints": camera_joints, "rotation": camera.rotation_xyz(predicted["angles"]),
                    "translation": translation, "focal_px": focal_px,
                    "reprojected": project_px(camera_joints, focal_px, size)}

        def render(inputs):
            return {"keypoints": project_px(inputs["joints"], inputs["focal_px"], inputs["image_size"])}

        size = spec("image_size", (2,))
        in_view = {"keypoints": (192.0, 320.0), "image_size": (512.0, 512.0)}  # random inputs for checks, timing
        return {"serving_default": signature([spec("keypoints", (joints, 2)), size], estimate, in_view),
                "render": signature([spec("joints", (joints, 3)), spec("focal_px", ()), size], render,
                                    {"joints": (2.0, 3.0), "focal_px": (500.0, 1000.0), "image_size": (512.0, 512.0)})}
