"""Test-time adaptation on your unlabelled inputs (the paper's Sup3 / Sup4, Pret.+SelfSup), then predictions.

    python -m aign_tf.zoo.adapt --pretrained=pose3d-aign --input=detections.npz --model_dir=runs/pose-adapted \\
        [--steps=500] [--image_size=1000] [--no_prior]
    python -m aign_tf.zoo.adapt --pretrained=sfm-pretrain --input=my_video/ --model_dir=runs/sfm-adapted --model=aign

(or --from_dir=DIR of a model you trained, with its --task). Starts from the model's weights and its
configuration (task flags given here override it; the generator starts from the source's, a critic
from scratch), trains --steps steps with your files as the unlabelled inputs: the reconstruction loss
and, unless --no_prior, the adversarial prior against the model's memories. --input is what the task
adapts to: pose3d a keypoints file (`--keypoints` is the same), sfm a folder of frames with
intrinsics.txt (`--dataset=frames`), the image tasks an image file or folder (`--inputs`). Writes the predictions on --input to MODEL_DIR as
`python -m aign_tf.zoo.predict` does, and MODEL_DIR/adaptation.json: the task's metrics on --input
before (the source's weights) and after adaptation, among them the reconstruction error (pose3d
reprojection_px, sfm photometric_l1, inpainting render_mse_visible, super-resolution
prediction_consistency_psnr_db). --steps=0 only predicts with the source's weights.
"""
from __future__ import annotations

import os
import sys

import tensorflow as tf
from absl import flags

from aign_tf import files
from aign_tf.errors import UserError
from aign_tf.zoo import cli, predict, rundir, trainer

flags.DEFINE_string("from_dir", None, "Model dir of the trained model to adapt (or --pretrained=NAME).")
flags.DEFINE_boolean("no_prior", False, "Adapt with the reconstruction loss only (beta = 0: no adversarial prior).")

FLAGS = flags.FLAGS
# Each task's error between the render of its predictions and the input, printed before and after.
RECONSTRUCTION_METRICS = ("reprojection_px", "photometric_l1", "render_mse_visible", "prediction_consistency_psnr_db")


def check_earlier_adaptation(model_dir: str, from_dir: str, config, steps: int) -> None:
    """Refuses a model_dir that holds an adaptation (a checkpoint) of another source or with other
    settings (keypoints, task options, hyperparameters other than steps and learning_rate), or one
    already past `steps` (its predictions would not be those of `steps` steps); the same adaptation
    to fewer steps is continued to `steps`."""
    latest = rundir.latest_checkpoint(model_dir)
    if latest is None:
        return
    reached = rundir.checkpoint_step(latest)
    if reached > steps:
        raise UserError(f"{model_dir} already holds an adaptation of {reached} steps, more than --steps={steps}; "
                        "use another --model_dir for this one")
    stored = rundir.read_config(model_dir)
    refused = rundir.differences(stored, config, resumable=False) if stored is not None else []
    found, source = rundir.started_from(model_dir)
    if found and source != os.path.realpath(from_dir):
        refused.insert(0, f"from_dir: {source!r} -> {os.path.realpath(from_dir)!r}")
    if refused:
        raise UserError(f"{model_dir} already holds an adaptation with other settings ({'; '.join(refused)}); "
                        "use another --model_dir for this one")


def main(argv: list[str]) -> None:
    task_class = cli.task()
    from_dir, model_dir = cli.trained_dir("from_dir"), cli.require("model_dir")
    source = FLAGS.input or (FLAGS.keypoints if "keypoints" in FLAGS else None)
    if not source:
        raise UserError("--input is required: the files to adapt to (pose3d: a keypoints file; sfm: a folder of "
                        "frames with intrinsics.txt; image tasks: an image file or folder)")
    if not os.path.exists(source):
        raise UserError(f"--input={source} does not exist")
    if os.path.realpath(model_dir) == os.path.realpath(from_dir):
        raise UserError(f"--model_dir={model_dir} is --from_dir itself; adapt writes a new model dir: "
                        "name another --model_dir")
    steps = 500 if FLAGS.steps is None else FLAGS.steps
    if steps < 0:
        raise UserError("--steps must be >= 0")
    changes = {**cli.overrides(task_class.Options), **task_class.unlabelled_options(source)}
    config = rundir.trained_config(task_class, from_dir).replace(**changes, steps=max(steps, 1))
    task = task_class(config.replace(beta=0.0) if FLAGS.no_prior else config)
    if steps > 0 and task.options.to_dict().get("model") == "forward2d3d":
        raise UserError("a forward2d3d model has no unsupervised loss to adapt with: add --model=interpreter "
                        "(reprojection, Sup3) or --model=aign (reprojection + adversarial prior, Sup3+Sup4)")
    with rundir.exclusive(model_dir, "adapt"):  # the one writer of model_dir (train takes it again)
        check_earlier_adaptation(model_dir, from_dir, task.config, steps)
        before, _ = rundir.load_generator(task, from_dir)
        measured = {"before": task.evaluate(before)}
        if steps > 0:
            trainer.train(task, model_dir, strategy=tf.distribute.get_strategy(), init_from=from_dir,
                          checkpoint_every=steps, summary_every=max(1, min(50, steps)), image_every=steps)
            model, _ = rundir.load_generator(task, model_dir)
            measured["after"] = task.evaluate(model)
        else:
            model = before
        count, skipped = predict.write_predictions(task, model, source, model_dir, FLAGS.batch_size)
        files.write_json(os.path.join(model_dir, "adaptation.json"), {"from": from_dir, "input": source,
                                                                       "steps": steps, **measured})
    print(f"{count} predictions -> {model_dir}")
    for name in RECONSTRUCTION_METRICS:
        if name in measured["before"]:
            after = f", after {measured['after'][name]:.4g}" if "after" in measured else ""
            print(f"{name} on --input: before {measured['before'][name]:.4g}{after} (MODEL_DIR/adaptation.json)")
    if skipped:
        print(f"skipped {len(skipped)} unreadable file(s):\n  " + "\n  ".join(skipped), file=sys.stderr)


if __name__ == "__main__":
    cli.run(main, hyperparameters=("steps",), options=True)
