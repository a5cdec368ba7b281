"""Test-time adaptation on unlabelled inputs (the paper's Sup3 / Sup4), then predictions.

    python -m aign_tf.zoo.adapt --task=pose3d --from_dir=runs/pose3d --keypoints=detections.npz \\
        --model_dir=runs/pose3d-adapted [--steps=500] [--image_size=1000]

Starts from the weights of --from_dir and its configuration (task flags given here override it;
--model picks the losses that adapt: interpreter = reprojection (Sup3), aign = reprojection +
adversarial prior (Sup3+Sup4); the generator starts from --from_dir's, a critic from scratch), trains
--steps steps with the unlabelled --keypoints file as inputs, and writes the predictions on that
file to MODEL_DIR/predictions.npz. --steps=0 only predicts with --from_dir's weights.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf
from absl import flags

from aign_tf import files
from aign_tf.errors import UserError
from aign_tf.zoo import cli, rundir, trainer

flags.DEFINE_string("from_dir", None, "Model dir of the trained model to adapt.")

FLAGS = flags.FLAGS


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
    if "keypoints" not in {f.name for f in task_class.Options.option_fields()}:
        raise UserError(f"task {task_class.name} has no unlabelled-input mode; fine-tune it with train --init_from")
    from_dir, model_dir, keypoints = cli.require("from_dir"), cli.require("model_dir"), cli.require("keypoints")
    if not os.path.exists(keypoints):
        raise UserError(f"keypoints file {keypoints} does not exist")
    if os.path.realpath(model_dir) == os.path.realpath(from_dir):
        raise UserError(f"--model_dir={model_dir} is --from_dir itself; adapt writes a new model dir: "
                        "name another --model_dir")
    base = rundir.trained_config(task_class, from_dir)
    steps = 500 if FLAGS.steps is None else FLAGS.steps
    if steps < 0:
        raise UserError("--steps must be >= 0")
    options = dataclasses.replace(base.options, **{**cli.overrides(task_class.Options),
                                                   "keypoints": os.path.abspath(keypoints),
                                                   "image_size": FLAGS.image_size})
    task = task_class(dataclasses.replace(base, steps=max(steps, 1), options=options))
    if steps > 0 and task.options.model == "forward2d3d":
        raise UserError("a forward2d3d model has no unsupervised loss to adapt with: add --model=interpreter "
                        "(reprojection, Sup3) or --model=aign (reprojection + adversarial prior, Sup3+Sup4)")
    with rundir.exclusive(model_dir, "adapt"):  # the one writer of model_dir (train takes it again)
        check_earlier_adaptation(model_dir, from_dir, task.config, steps)
        if steps > 0:
            trainer.train(task, model_dir, strategy=tf.distribute.get_strategy(), init_from=from_dir,
                          checkpoint_every=steps, summary_every=max(1, min(50, steps)), image_every=steps)
            model, _ = rundir.load_generator(task, model_dir)
        else:
            model, _ = rundir.load_generator(task, from_dir)
        predicted = task.predict(model)
        path = os.path.join(model_dir, "predictions.npz")
        with files.replaced(path) as temporary:
            np.savez_compressed(temporary, **predicted)
    print(f"{len(predicted['pose'])} predictions -> {path}; mean reprojection error "
          f"{predicted['reprojection_px'].mean():.2f} px")


if __name__ == "__main__":
    cli.run(main, hyperparameters=("steps",), options=True)
