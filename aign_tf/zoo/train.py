"""Train (or resume) an AIGN task.

    python -m aign_tf.zoo.train --task=inpaint [--model_dir=runs/inpaint] [--steps=N] [--bias=8] ...
    python -m aign_tf.zoo.train --pretrained=inpaint-mnist --model_dir=runs/mine ...   (fine-tune a shipped model)

Running the same command again resumes from the latest checkpoint and continues to --steps.
SIGTERM or SIGINT saves a checkpoint at the step in flight and exits with status 143 or 130.
`--task=NAME --helpfull` lists the task's options with their defaults.
"""
from __future__ import annotations

import os
import sys

import tensorflow as tf
from absl import flags

from aign_tf.errors import UserError
from aign_tf.tasks.options import Config
from aign_tf.zoo import cli, rundir, trainer

flags.DEFINE_enum("strategy", "default", list(trainer.STRATEGIES),
                  "default (one device), mirrored (all local devices) or multi_worker (TF_CONFIG).")
flags.DEFINE_float("peer_timeout", 300.0, "multi_worker: seconds to wait for every worker of TF_CONFIG to start "
                   "before giving up.")
flags.DEFINE_integer("checkpoint_every", 500, "Steps between checkpoints.")
flags.DEFINE_integer("summary_every", 50, "Steps between progress / TensorBoard scalar updates.")
flags.DEFINE_integer("image_every", 500, "Steps between TensorBoard image grids.")
flags.DEFINE_integer("eval_every", 0, "Steps between held-out evaluations (TensorBoard eval/, curves.jsonl); 0 = none.")
flags.DEFINE_boolean("deterministic", False, "TensorFlow op determinism: the same command gives the same "
                     "weights, and a run killed and resumed the weights of an uninterrupted one (slower).")
flags.DEFINE_string("init_from", None, "Start a fresh model_dir from the generator weights of this model dir "
                    "(fine-tuning); --pretrained=NAME starts from a shipped model.")

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    task_class = cli.task()
    init_from = cli.trained_dir("init_from") if FLAGS.init_from or FLAGS.pretrained else None
    changes = {**cli.overrides(Config), **cli.overrides(task_class.Options)}
    # A shipped model is fine-tuned with its own settings unless flags change them (its generator must fit).
    config = rundir.trained_config(task_class, init_from).replace(**changes) if FLAGS.pretrained \
        else task_class.configure(**changes)
    task = task_class(config)
    for name in ("checkpoint_every", "summary_every", "image_every"):
        if FLAGS[name].value < 1:
            raise UserError(f"--{name} must be positive")
    if FLAGS.peer_timeout <= 0:
        raise UserError("--peer_timeout must be positive (seconds)")
    if FLAGS.eval_every < 0:
        raise UserError("--eval_every must be >= 0 (0 = no evaluation during training)")
    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()
    model_dir = FLAGS.model_dir or os.path.join("runs", task.name)
    try:
        trainer.train(task, model_dir, strategy=trainer.make_strategy(FLAGS.strategy, FLAGS.peer_timeout),
                      checkpoint_every=FLAGS.checkpoint_every, summary_every=FLAGS.summary_every,
                      image_every=FLAGS.image_every, eval_every=FLAGS.eval_every, init_from=init_from)
    except trainer.Stopped as stopped:  # SIGTERM (143) or SIGINT (130), after saving: one line, no traceback
        print(stopped, file=sys.stderr, flush=True)
        sys.exit(stopped.exit_status)
    print(f"model_dir: {model_dir}  (evaluate: python -m aign_tf.zoo.evaluate --task={task.name} "
          f"--model_dir={model_dir}; TensorBoard: tensorboard --logdir={model_dir})")


if __name__ == "__main__":
    cli.run(main, hyperparameters=True, options=True)
