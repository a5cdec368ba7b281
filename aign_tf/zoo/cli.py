"""Flags shared by the train / evaluate / benchmark commands, and their error handling.

Every flag defaults to None here so that a task's paper defaults (`Task.defaults`) apply unless
the user says otherwise.
"""
from __future__ import annotations

import sys
from typing import Callable

from absl import app, flags

from aign_tf.errors import UserError

FLAGS = flags.FLAGS

flags.DEFINE_string("task", None, "Task name, e.g. inpaint.")
flags.DEFINE_string("model_dir", None, "Directory for checkpoints, config, TensorBoard logs and metrics.")
flags.DEFINE_string("out", None, "Where a command writes: benchmark's JSON file (default: none), curves' PNG "
                    "(default curves.png), export's base directory (OUT/TASK/VERSION).")
flags.DEFINE_integer("seed", None, "Random seed of data splits, shuffling and initialisation.")
flags.DEFINE_integer("batch_size", None, "Global batch size (split across replicas).")
flags.DEFINE_integer("steps", None, "Train until this global step.")
flags.DEFINE_float("beta", None, "Weight of the adversarial loss against reconstruction (eq. 1).")
flags.DEFINE_float("learning_rate", None, "Adam learning rate for generator and critics.")
flags.DEFINE_string("gan_loss", None, "logistic (eq. 1, non-saturating), least_squares or hinge.")
flags.DEFINE_string("reconstruction", None, "l2 or l1.")
flags.DEFINE_boolean("gating", None, "Supplementary update gating (theta_d=0.695, theta_g=0.75); --nogating to turn off.")
flags.DEFINE_float("supervised_weight", None, "Weight of the supervised term on paired targets (0 = unpaired AIGN).")
flags.DEFINE_float("reconstruction_weight", None, "Weight of the reconstruction (render) loss.")
# Task options (each task reads the ones it declares).
flags.DEFINE_string("dataset", None, "inpaint, superres, decoder_ablation: mnist (embedded), fashion_mnist, lfw "
                    "(embedded faces) or celeb_a; sfm: driving or vkitti.")
flags.DEFINE_string("data_dir", None, "Directory holding the dataset files (fashion_mnist, celeb_a, vkitti; "
                    "the driving world's cache).")
flags.DEFINE_string("bias", None, "Keep only this class in the memories, e.g. 8, face, Male, or a CelebA "
                    "identity number with --attribute=identity.")
flags.DEFINE_string("mask", None, "Hidden region: center, bottom, mouth or random.")
flags.DEFINE_integer("image_size", None, "Side of square images for collections that are resized (celeb_a).")
flags.DEFINE_string("attribute", None, "CelebA attribute used as the class label, e.g. Big_Lips, or identity.")
flags.DEFINE_integer("width", None, "Channels of the first conv layer of generator and critic (doubling deeper).")
flags.DEFINE_integer("blocks", None, "superres: residual blocks of the generator.")
flags.DEFINE_string("decoder", None, "decoder_ablation: renderer (parameter-free mask) or learned (FC decoder).")
flags.DEFINE_integer("hidden", None, "decoder_ablation: units of each hidden FC layer of encoder and decoder.")

flags.DEFINE_string("model", None, "pose3d: forward2d3d (Sup1+2), interpreter (+Sup3) or aign (+Sup4); "
                    "sfm: aign, depth_aign, smooth_ign, ign or pretrain.")
flags.DEFINE_string("generator", None, "pose3d: heatmap (conv on Gaussian heatmaps) or mlp (on keypoints).")
flags.DEFINE_integer("components", None, "pose3d: PCA components of the skeleton basis.")
flags.DEFINE_string("critic_input", None, "pose3d: the critic reads canonical skeletons (shape) or (alpha, R, f) (params).")
flags.DEFINE_string("keypoints", None, "pose3d: 2D keypoints without 3D truth (.npz, .npy or .json), [N, J, 2] "
                    "pixels, principal point at the image centre; --image_size gives the image side.")
flags.DEFINE_float("noise_px", None, "pose3d: Gaussian noise (pixels) on the 2D keypoints, a stand-in for detections.")
flags.DEFINE_string("frame_size", None, "sfm: HEIGHTxWIDTH of the frames, multiples of 16, e.g. 64x192.")
flags.DEFINE_integer("train_sequences", None, "sfm (driving): streets of paired training examples.")
flags.DEFINE_integer("memory_sequences", None, "sfm (driving): streets whose depth and motion are the memories.")
flags.DEFINE_integer("test_sequences", None, "sfm (driving): held-out streets, the unlabelled inputs.")
flags.DEFINE_integer("sequence_frames", None, "sfm (driving): frames per street.")
flags.DEFINE_float("smoothness", None, "sfm: weight of the depth smoothness prior of --model=smooth_ign.")

RUN_FLAGS = ("seed", "batch_size", "steps", "beta", "learning_rate", "gan_loss", "reconstruction", "gating",
             "supervised_weight", "reconstruction_weight")
TASK_FLAGS = ("dataset", "data_dir", "bias", "mask", "image_size", "attribute", "width", "blocks", "decoder", "hidden",
              "model", "generator",
              "components", "noise_px", "keypoints", "critic_input", "frame_size", "train_sequences",
              "memory_sequences", "test_sequences", "sequence_frames", "smoothness")


def overrides(names: tuple[str, ...]) -> dict:
    """The flags among `names` that the user set, as Config overrides."""
    return {name: FLAGS[name].value for name in names if FLAGS[name].present}


def require(name: str) -> str:
    value = FLAGS[name].value
    if not value:
        raise UserError(f"--{name} is required")
    return value


def _parse(argv: list[str]) -> list[str]:
    try:
        return FLAGS(argv)
    except flags.Error as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def run(main: Callable[[list[str]], None]) -> None:
    """absl `app.run` where flag errors and `UserError` end with one line on stderr and status 2."""
    def guarded(argv):
        try:
            if len(argv) > 1:
                raise UserError(f"unexpected arguments {argv[1:]}; flags take the form --name=value")
            main(argv)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    app.run(guarded, flags_parser=_parse)
