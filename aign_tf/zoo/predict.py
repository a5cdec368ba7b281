"""Predictions of a trained or shipped model on your own files.

    python -m aign_tf.zoo.predict --pretrained=inpaint-mnist --input=DIR_OR_IMAGE --output=OUT [--mask=center]
    python -m aign_tf.zoo.predict --pretrained=superres-mnist --input=DIR_OR_IMAGE --output=OUT
    python -m aign_tf.zoo.predict --pretrained=pose3d-aign --input=keypoints.npz --output=OUT [--image_size=512]
    python -m aign_tf.zoo.predict --pretrained=sfm-pretrain --input=FRAMES_DIR --output=OUT

(or --model_dir=DIR of a model you trained, with its --task). Each input goes through the model's
`serving_default` signature, the one that TF Serving, TFLite and ONNX users call
(`aign_tf.export`), in batches of --batch_size:

- inpaint, decoder_ablation: images (PNG, JPEG, BMP, PGM; a file or a folder, read below it), each
  fitted to the model's size as in training (cropped about the centre to its aspect ratio, resized),
  hidden by --mask (the model's own mask unless given: center, bottom, eyes, nose, mouth or a mask
  file; `random` draws one per image) -> OUT/NAME.png, the completion (visible pixels kept), and
  OUT/NAME.prediction.png, G(x); names (and subfolders) preserved, as PNG.
- superres: low-resolution images fitted to the model's input size -> OUT/NAME.png, 4x larger.
- pose3d: 2D keypoints [N, J, 2] in pixels (.npz, .npy or .json; `aign_tf.data.h36m.load_keypoints_2d`)
  of square images --image_size pixels wide (default: the model's; principal point at the centre) ->
  OUT/predictions.npz and OUT/predictions.json: 3D joints in the camera frame (metres), rotation,
  translation, focal length (pixels), the reprojected keypoints and the reprojection error of each pose.
- sfm: a folder of consecutive frames (or two frame files), each pair (k, k+1) -> OUT/depth/NAME.png
  (16-bit, millimetres), OUT/depth/NAME.npy (metres), and OUT/motion.json (rotation, translation per
  pair) with OUT/trajectory.txt, the chained camera poses (KITTI's 12 numbers per line). Frames are
  resized to the model's frame size; depth and motion are in the scale of its training data.

A file that cannot be read stops the run with one line naming it (exit 2); with --skip_bad it is
skipped, and every skipped file is listed at the end. Progress is shown on folders.
"""
from __future__ import annotations

import os
import sys

import keras
import numpy as np
import tensorflow as tf
from absl import flags

from aign_tf import files
from aign_tf.data import frames, h36m, images, kitti, video
from aign_tf.errors import UserError
from aign_tf.tasks import inpaint
from aign_tf.tasks.pose3d import data
from aign_tf.zoo import cli, pictures, rundir

flags.DEFINE_string("input", None, "The input: an image file or folder (image tasks), a keypoint file (pose3d), a "
                    "folder of consecutive frames or two frame files, comma-separated (sfm).")
flags.DEFINE_integer("batch_size", 32, "Inputs per batch.")
flags.DEFINE_boolean("skip_bad", False, "Skip unreadable input files (listed at the end) instead of stopping.")

FLAGS = flags.FLAGS


class Skipped(list):
    """The input files that could not be read, with why; raises at once unless --skip_bad."""

    def add(self, path: str, error: UserError) -> None:
        if not FLAGS.skip_bad:
            raise error
        self.append(f"{path}: {error}")


def output_name(path: str, root: str, suffix: str = "") -> str:
    """The output file name of input `path`: its path below `root` (or its base name), with `suffix`.png."""
    relative = os.path.relpath(path, root) if os.path.isdir(root) else os.path.basename(path)
    return os.path.splitext(relative)[0] + suffix + ".png"


def batched(items: list, size: int) -> list[list]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def read_images(paths: list[str], size: tuple[int, int], channels: int, skipped: Skipped) -> tuple[list, np.ndarray]:
    """(readable paths, uint8 [N, rows, cols, channels]) of `paths`, each fitted to `size` as in training."""
    kept, pixels = [], []
    for path in paths:
        try:
            image = images.eager_image(path, lambda p: images.read_image(p, size, channels))
        except UserError as error:
            skipped.add(path, error)
            continue
        kept.append(path)
        pixels.append(np.round(image * 255.0).astype(np.uint8))
    return kept, np.stack(pixels) if pixels else np.zeros((0, *size, channels), np.uint8)


def save(path: str, pixels: np.ndarray) -> None:
    """`pictures.write_pixels` to `path`, its folder made if needed."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    pictures.write_pixels(path, pixels)


def predict_images(task, serve, source: str, output: str, skipped: Skipped, batch_size: int) -> int:
    """inpaint, decoder_ablation and superres (module docstring); returns the number of predictions."""
    spec = serve.function.input_signature[0]["image"]
    rows, cols, channels = spec.shape[1:]
    paths = images.image_files(source)
    mask_kind = task.options.mask if hasattr(task.options, "mask") else None
    bar = keras.utils.Progbar(len(paths), unit_name="image") if len(paths) > 1 else None
    done = written = 0
    for batch in batched(paths, batch_size):
        kept, pixels = read_images(batch, (rows, cols), channels, skipped)
        if kept:
            inputs = {"image": tf.constant(pixels)}
            if mask_kind is not None:
                masks = [inpaint.visible_mask(mask_kind, rows, cols, tf.constant([task.config.seed, done + i], tf.int64))
                         for i in range(len(kept))]
                inputs["mask"] = tf.cast(tf.stack(masks) > 0.5, tf.uint8)
            outputs = {k: v.numpy() for k, v in serve.function(inputs).items()}
            for i, path in enumerate(kept):
                if mask_kind is None:
                    save(os.path.join(output, output_name(path, source)), outputs["prediction"][i])
                else:
                    save(os.path.join(output, output_name(path, source)), outputs["completed"][i])
                    save(os.path.join(output, output_name(path, source, ".prediction")), outputs["prediction"][i])
        done, written = done + len(batch), written + len(kept)
        if bar is not None:
            bar.update(done)
    return written


def predict_pose(task, serve, source: str, output: str, skipped: Skipped, batch_size: int) -> int:
    """pose3d (module docstring); returns the number of poses."""
    joints = serve.function.input_signature[0]["keypoints"].shape[1]
    keypoints = h36m.load_keypoints_2d(source, joints)
    size = np.full(2, task.options.image_size or data.IMAGE_SIZE, np.float32)  # a square image, --image_size wide
    results: dict[str, list] = {}
    for batch in batched(list(range(len(keypoints))), batch_size):
        outputs = serve.function({"keypoints": tf.constant(keypoints[batch]),
                                  "image_size": tf.constant(np.tile(size, (len(batch), 1)))})
        for name, value in outputs.items():
            results.setdefault(name, []).append(value.numpy())
    arrays = {name: np.concatenate(values) for name, values in results.items()}
    arrays["reprojection_px"] = np.linalg.norm(arrays["reprojected"] - keypoints, axis=-1).mean(-1)
    os.makedirs(output, exist_ok=True)
    with files.replaced(os.path.join(output, "predictions.npz")) as temporary:
        np.savez_compressed(temporary, **arrays)
    files.write_json(os.path.join(output, "predictions.json"),
                     {"image_size": size.tolist(), "poses": [{name: value[i].tolist() for name, value in arrays.items()}
                                                             for i in range(len(keypoints))]})
    print(f"mean reprojection error {arrays['reprojection_px'].mean():.2f} px")
    return len(keypoints)


def frame_inputs(path: str) -> list[str]:
    """The frame files of --input: two (or more) files, comma-separated, or a folder's frames in order."""
    paths = [entry for entry in path.split(",") if entry] if "," in path else \
        frames.frame_files(path) if os.path.isdir(path) else []
    missing = [p for p in paths if not os.path.isfile(p)]
    if len(paths) < 2 or missing:
        raise UserError(f"--input={path} is not a folder of 2 or more frames (PNG or JPEG) nor frame files, "
                        f"comma-separated{': ' + missing[0] + ' does not exist' if missing else ''}")
    return paths


def predict_frames(task, serve, source: str, output: str, skipped: Skipped, batch_size: int) -> int:
    """sfm (module docstring): every pair of consecutive readable frames; returns the number of pairs."""
    rows, cols = serve.function.input_signature[0]["image1"].shape[1:3]
    paths, pixels = frame_inputs(source), {}
    for k, path in enumerate(paths):
        try:
            pixels[k] = frames.read_frames([path], rows, cols, video.FRAME_EXPECTED)[0]
        except UserError as error:
            skipped.add(path, error)
    pairs = [k for k in range(len(paths) - 1) if k in pixels and k + 1 in pixels]  # consecutive frames only
    if not pairs:
        raise UserError(f"--input={source} has no two consecutive readable frames")
    os.makedirs(os.path.join(output, "depth"), exist_ok=True)
    world_to_camera, motions = [np.eye(4)], []
    bar = keras.utils.Progbar(len(pairs), unit_name="pair") if len(pairs) > 1 else None
    for batch in batched(pairs, batch_size):
        inputs = {"image1": np.stack([pixels[k] for k in batch]), "image2": np.stack([pixels[k + 1] for k in batch])}
        outputs = {name: value.numpy() for name, value in serve.function(inputs).items()}
        for i, k in enumerate(batch):
            name = os.path.splitext(os.path.basename(paths[k]))[0]
            depth = outputs["depth"][i]
            with files.replaced(os.path.join(output, "depth", name + ".npy")) as temporary:
                np.save(temporary, depth[..., 0])
            save(os.path.join(output, "depth", name + ".png"), np.clip(np.round(depth * 1000), 0, 65535).astype(np.uint16))
            motion = np.eye(4)
            motion[:3, :3], motion[:3, 3] = outputs["rotation"][i], outputs["translation"][i]
            world_to_camera.append(motion @ world_to_camera[-1])
            motions.append({"frame1": paths[k], "frame2": paths[k + 1], "rotation": outputs["rotation"][i].tolist(),
                            "angles": outputs["angles"][i].tolist(), "translation": outputs["translation"][i].tolist()})
        if bar is not None:
            bar.add(len(batch))
    files.write_json(os.path.join(output, "motion.json"), {"pairs": motions})
    if len(pairs) == len(paths) - 1:  # an unbroken chain of frames: the camera path
        with files.replaced(os.path.join(output, "trajectory.txt")) as temporary, open(temporary, "w") as f:
            f.write("".join(kitti.odometry_pose_line(np.linalg.inv(pose)) + "\n" for pose in world_to_camera))
    else:
        print("note: frames were skipped, so the camera path is broken: no trajectory.txt", file=sys.stderr)
    return len(pairs)


def write_predictions(task, model, source: str, output: str, batch_size: int) -> tuple[int, list[str]]:
    """The predictions of `model` on the files of `source` (module docstring), written below `output`,
    `batch_size` inputs at a time: (how many, the skipped files with why)."""
    serve = task.serving(model)["serving_default"]
    skipped = Skipped()
    writer = {"pose3d": predict_pose, "sfm": predict_frames}.get(task.name, predict_images)
    return writer(task, serve, source, output, skipped, batch_size), skipped


def main(argv: list[str]) -> None:
    task_class = cli.task()
    model_dir = cli.trained_dir()
    source, output = cli.require("input"), cli.require("output")
    if FLAGS.batch_size < 1:
        raise UserError("--batch_size must be positive")
    task = task_class(rundir.trained_config(task_class, model_dir).replace(**cli.overrides(task_class.Options)))
    model, step = rundir.load_generator(task, model_dir)
    count, skipped = write_predictions(task, model, source, output, FLAGS.batch_size)
    print(f"{task.name} (step {step} of {model_dir}): {count} prediction(s) -> {output}")
    if skipped:
        print(f"skipped {len(skipped)} unreadable file(s):\n  " + "\n  ".join(skipped), file=sys.stderr)


if __name__ == "__main__":
    cli.run(main, options=True)
