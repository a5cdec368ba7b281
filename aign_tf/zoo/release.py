"""Make the shipped models anew, from scratch, with the model cards' commands.

    python -m aign_tf.zoo.release --out=aign_tf/pretrained [--runs=runs/release] [--only=NAME,NAME]

For each model of `aign_tf.zoo.models.CATALOGUE` (or those of --only): trains it with
`python -m aign_tf.zoo.train --task=TASK FLAGS --model_dir=RUNS/NAME` (resuming a run that stopped;
`--init_from=RUNS/SOURCE` where the catalogue names a source model, which is made first), then
writes OUT/NAME: its config.json, a checkpoint of the generator (and a learned decoder) and the step
only, the metrics.json of `python -m aign_tf.zoo.evaluate --model_dir=OUT/NAME` on exactly those
files, and MANIFEST.sha256. Each step runs in a process of its own, as a user would type it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import tensorflow as tf
from absl import flags

from aign_tf.errors import UserError
from aign_tf.zoo import cli, models, registry, rundir

flags.DEFINE_string("runs", os.path.join("runs", "release"), "Where the training runs go (resumed if there).")
flags.DEFINE_string("only", None, "Comma-separated names of the models to make (default: all; sources first).")

FLAGS = flags.FLAGS


def zoo_command(module: str, *arguments: str) -> None:
    """Runs `python -m aign_tf.zoo.MODULE ARGUMENTS` and raises UserError if it fails."""
    command = [sys.executable, "-m", f"aign_tf.zoo.{module}", *arguments]
    print("$ python", " ".join(command[1:]), flush=True)
    if subprocess.run(command, check=False).returncode:
        raise UserError(f"{' '.join(command[2:])} failed (its output is above)")


def package(run_dir: str, folder: str) -> None:
    """Writes `folder` from the trained `run_dir`: config.json and the generator-only checkpoint."""
    config = rundir.read_config(run_dir)
    task = registry.task_class(config.task)(config)
    model, step = rundir.load_generator(task, run_dir)
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(os.path.join(folder, "checkpoints"))
    shutil.copy(os.path.join(run_dir, "config.json"), os.path.join(folder, "config.json"))
    objects = rundir.generator_checkpoint(model, tf.Variable(step, dtype=tf.int64, trainable=False))
    checkpoint = tf.train.Checkpoint(**objects)
    checkpoint.save_counter.assign(1)  # a training checkpoint's counter: restoring matches every object
    checkpoint.write(os.path.join(folder, "checkpoints", f"ckpt-{step}"))


def order(names: list[str]) -> list[str]:
    """`names` with every model's source model first."""
    ordered: list[str] = []
    for name in names:
        source = models.CATALOGUE[name].init_from
        if source is not None and source not in ordered:
            ordered.append(source)
        if name not in ordered:
            ordered.append(name)
    return ordered


def release(name: str, out: str, runs: str) -> None:
    entry = models.CATALOGUE[name]
    run_dir = os.path.join(runs, name)
    source = ["--init_from=" + os.path.join(runs, entry.init_from)] if entry.init_from else []
    zoo_command("train", f"--task={entry.task}", *entry.train_flags, *source, f"--model_dir={run_dir}")
    folder = os.path.join(out, name)
    package(run_dir, folder)
    # --out: OUT/NAME is the folder itself, written also where it lies inside the package (evaluate writes
    # nothing into a shipped folder of its own accord).
    zoo_command("evaluate", f"--task={entry.task}", f"--model_dir={folder}", f"--out={out}")
    os.remove(os.path.join(folder, "evaluation.png"))  # a picture: not needed to use or check the model
    models.write_manifest(folder)
    made = models.describe(name, folder)
    print(f"{folder}: step {made['step']}, {made['size'] / 1e6:.2f} MB", flush=True)


def main(argv: list[str]) -> None:
    out = cli.require("out")
    names = cli.listed("only", "model") if FLAGS.only else list(models.CATALOGUE)
    unknown = [name for name in names if name not in models.CATALOGUE]
    if unknown:
        raise UserError(f"unknown --only {', '.join(unknown)}; use names of {', '.join(models.CATALOGUE)}")
    for name in order(names):
        release(name, out, FLAGS.runs)


if __name__ == "__main__":
    cli.run(main)
