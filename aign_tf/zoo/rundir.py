"""A model directory: what a run writes and what every later command reads back.

    config.json          the run's `Config` (task, hyperparameters, task options)
    checkpoints/         tf.train.Checkpoint files: model (generator, learned decoder, critics),
                         g_optimizer, d_optimizer, step
    train/, eval/        TensorBoard event files (training scalars and grids; held-out metrics)
    curves.jsonl         held-out metrics, one JSON line {"step": ..., metric: value} per evaluation
    samples/latest.png   the latest training image grid
    metrics.json         what `aign_tf.zoo.evaluate` measured, evaluation.png its grid

The training loop (`aign_tf.zoo.trainer`) writes it; evaluate, adapt, compare and export read it
through this module only.
"""
from __future__ import annotations

import glob
import json
import os

import keras
import tensorflow as tf
from absl import logging

from aign_tf import files
from aign_tf.core import AIGN
from aign_tf.errors import UserError
from aign_tf.tasks.base import Task
from aign_tf.tasks.options import Config
from aign_tf.zoo import registry


def read_config(model_dir: str) -> Config | None:
    """The config stored in model_dir (None if there is none), with today's defaults for options
    that it predates."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            stored = json.load(f)
        name = stored["task"]
    except (ValueError, TypeError, KeyError) as error:
        raise UserError(f"{path} is not a valid aign_tf config ({error}); use a fresh --model_dir") from None
    return registry.task_class(name).config_from_dict(stored, what=path)


def write_config(model_dir: str, config: Config) -> None:
    files.write_json(os.path.join(model_dir, "config.json"), config.to_dict())


def trained_config(task: type[Task], model_dir: str) -> Config:
    """The stored config of a trained `task` model in model_dir."""
    config = read_config(model_dir)
    if config is None:
        raise UserError(f"{model_dir} holds no config.json; train first with "
                        f"python -m aign_tf.zoo.train --task={task.name} --model_dir={model_dir}")
    if config.task != task.name:
        raise UserError(f"{model_dir} holds a {config.task!r} model, not {task.name!r}")
    return config


def readable(prefix: str) -> bool:
    """Whether every tensor of the checkpoint at `prefix` reads back (index and data complete)."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError):  # IndexError: "Read less bytes than requested"
        return False
    return True


def latest_checkpoint(model_dir: str) -> str | None:
    """The newest complete checkpoint in model_dir/checkpoints (None if there is none).

    TensorFlow writes a checkpoint's data, then its `.index`, then updates the `checkpoint` state
    file that `tf.train.latest_checkpoint` reads. A run killed in between leaves a newer checkpoint
    than the state file names, complete or cut short: every numbered checkpoint counts, newest first,
    and the first one whose tensors all read back wins (the manager keeps older ones until a newer
    one is written, so a kill during a write falls back to the one before).
    """
    directory = os.path.join(model_dir, "checkpoints")
    if not os.path.isdir(directory):
        return None
    candidates = {tf.train.latest_checkpoint(directory)}
    for index in glob.glob(os.path.join(directory, "ckpt-*.index")):
        prefix = index[:-len(".index")]
        if prefix.rsplit("-", 1)[1].isdigit():
            candidates.add(prefix)
    candidates.discard(None)
    for prefix in sorted(candidates, key=lambda path: int(path.rsplit("-", 1)[1]), reverse=True):
        if readable(prefix):
            return prefix
        logging.warning("skipping %s: it does not read back (a run killed while writing it?)", prefix)
    return None


def restore(checkpoint: tf.train.Checkpoint, model_dir: str) -> str | None:
    """Restores the latest checkpoint in model_dir into `checkpoint`, every object of which must be
    in it; returns its path (None if there is none)."""
    latest = latest_checkpoint(model_dir)
    if latest is None:
        return None
    try:
        checkpoint.restore(latest).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        first = str(error).strip().splitlines()[0]
        raise UserError(f"checkpoint {latest} does not fit this model ({first}); "
                        "use the same task options or a fresh --model_dir") from None
    return latest


def restore_generator(model: AIGN, prefix: str, step: tf.Variable | None = None) -> None:
    """Restores the generator (and a learned decoder) of `model`, and `step` if given, from the
    checkpoint at `prefix`; critics and optimizers are not read."""
    parts = {"generator": model.generator}
    if model.decoder is not None:
        parts["decoder"] = model.decoder
    objects = {"model": tf.train.Checkpoint(**parts), **({"step": step} if step is not None else {})}
    try:
        tf.train.Checkpoint(**objects).restore(prefix).assert_existing_objects_matched().expect_partial()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise UserError(f"the generator in {prefix} does not fit this model ({str(error).strip().splitlines()[0]}); "
                        "use the source model's task options") from None


def load_generator(task: Task, model_dir: str) -> tuple[AIGN, int]:
    """`task`'s model with the generator weights of model_dir's latest checkpoint (no optimizers are
    built), and that checkpoint's step."""
    latest = latest_checkpoint(model_dir)
    if latest is None:
        raise UserError(f"no checkpoint in {model_dir}/checkpoints; train first with "
                        f"python -m aign_tf.zoo.train --task={task.name} --model_dir={model_dir}")
    keras.utils.set_random_seed(task.config.seed)
    model = task.build_model()
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    restore_generator(model, latest, step)
    return model, int(step.numpy())


def read_curves(model_dir: str) -> dict[int, dict[str, float]]:
    """{step: metrics} from model_dir/curves.jsonl; a step measured twice (a resumed run) keeps its
    latest measurement."""
    path = os.path.join(model_dir, "curves.jsonl")
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist; train with --eval_every=N to record learning curves")
    curves = {}
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                curves[int(record.pop("step"))] = record
            except (ValueError, KeyError):
                continue  # a line cut short by a killed run
    return dict(sorted(curves.items()))
