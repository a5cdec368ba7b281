"""A model directory: what a run writes and what every later command reads back.

    config.json          the run's `Config` (task, hyperparameters, task options), written once
                         when a run starts in a directory without checkpoints
    runs.jsonl           one JSON line per run started here (time, pid, user, host, argv, start step,
                         options changed on resume)
    .lock                held (flock) by the one process that writes the directory; its PID inside
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

import contextlib
import fcntl
import getpass
import glob
import json
import os
import shutil
import socket
import sys
import threading
import time
from typing import Iterator

import keras
import tensorflow as tf
from absl import logging

from aign_tf import files
from aign_tf.core import AIGN
from aign_tf.errors import UserError
from aign_tf.tasks.base import Task
from aign_tf.tasks.options import Config
from aign_tf.zoo import registry


def _check_not_a_file(model_dir: str) -> None:
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise UserError(f"--model_dir={model_dir} is a file, not a directory; name a directory")


def read_config(model_dir: str) -> Config | None:
    """The config stored in model_dir (None if there is none), with today's defaults for options
    that it predates."""
    _check_not_a_file(model_dir)
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            stored = json.load(f)
        name = stored["task"]
        if not isinstance(stored.get("options", {}), dict):
            raise TypeError(f"its options are {stored['options']!r}, not an object")
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise UserError(f"{path} is not a valid aign_tf config ({reason}); use a fresh --model_dir") from None
    try:
        return registry.task_class(name).config_from_dict(stored, what=path)
    except UserError as error:
        raise UserError(str(error) if path in str(error) else f"{path}: {error}") from None
    except (TypeError, ValueError) as error:
        raise UserError(f"{path} is not a valid aign_tf config ({error}); use a fresh --model_dir") from None


def write_config(model_dir: str, config: Config) -> None:
    files.write_json(os.path.join(model_dir, "config.json"), config.to_dict())


# -- one writer per directory ------------------------------------------------------------------

_held: dict[str, tuple[int, int]] = {}  # real path -> (thread id, depth) of the locks this process holds


def _holder(path: str) -> str:
    """'process PID (WHAT)' from a lock file that another process holds (it writes its PID just
    after locking: wait a moment for it)."""
    deadline = time.monotonic() + 2
    while True:
        with contextlib.suppress(OSError), open(path) as f:
            text = f.read().split()
            if len(text) >= 2 and text[0].isdigit():
                return f"process {text[0]} ({' '.join(text[1:])})"
        if time.monotonic() > deadline:
            return "another process"
        time.sleep(0.05)


@contextlib.contextmanager
def exclusive(model_dir: str, what: str) -> Iterator[None]:
    """Holds model_dir/.lock (an exclusive `flock`, which the OS releases when the process ends, even
    by SIGKILL) for the block: the one writer of model_dir. Another writer fails at once with a
    UserError naming this process. Re-entrant within one thread (adapt holds it and calls train)."""
    _check_not_a_file(model_dir)
    os.makedirs(model_dir, exist_ok=True)
    key = os.path.realpath(model_dir)
    thread = threading.get_ident()
    if key in _held and _held[key][0] == thread:
        _held[key] = (thread, _held[key][1] + 1)
        try:
            yield
        finally:
            _held[key] = (thread, _held[key][1] - 1)
        return
    path = os.path.join(model_dir, ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise UserError(f"{model_dir} is being written by {_holder(path)}; wait for it or use another "
                        "--model_dir") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {what}\n".encode())
        _held[key] = (thread, 1)
        yield
    finally:
        _held.pop(key, None)
        os.close(fd)  # releases the lock


# -- resuming ----------------------------------------------------------------------------------

def differences(stored: Config, requested: Config, *, resumable: bool) -> list[str]:
    """'name: stored -> requested' for each option that differs, among those declared `resumable`
    (steps, learning_rate: they may change on resume) or among the others."""
    found = []
    for old, new in ((stored, requested), (stored.options, requested.options)):
        for f in new.option_fields():
            if bool(f.metadata.get("resumable")) != resumable:
                continue
            before, after = getattr(old, f.name, None), getattr(new, f.name)
            if before != after:
                found.append(f"{f.name}: {before!r} -> {after!r}")
    return found


def check_resume(model_dir: str, stored: Config | None, requested: Config) -> None:
    """Refuses to continue a run in model_dir with options other than those it was started with."""
    if stored is None:
        return
    refused = differences(stored, requested, resumable=False)
    if refused:
        raise UserError(f"{model_dir} holds a run started with other options ({'; '.join(refused)}); "
                        "only steps and learning_rate may change on resume. To start a new run, use another "
                        f"--model_dir (with --init_from={model_dir} to start from its generator)")


def checkpoint_files(model_dir: str) -> list[str]:
    """The numbered checkpoint files (ckpt-N.index, ckpt-N.data-*) in model_dir/checkpoints."""
    directory = os.path.join(model_dir, "checkpoints")
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(directory, "ckpt-*")) if os.path.isfile(p))
    return [n for n in names if n.split(".", 1)[0].rsplit("-", 1)[-1].isdigit()]


def remove_stale_temporaries(model_dir: str) -> list[str]:
    """Deletes ckpt-*_temp* in model_dir/checkpoints (left by a checkpoint write that was killed or
    ran out of disk); returns their paths."""
    stale = glob.glob(os.path.join(model_dir, "checkpoints", "ckpt-*_temp*"))
    for path in stale:
        logging.warning("removing %s, left by a checkpoint write that did not finish", path)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(path)
    return stale


def repair_checkpoint_state(model_dir: str, latest: str) -> None:
    """Rewrites a `checkpoints/checkpoint` state file that does not parse (it would stop the checkpoint
    manager) from the numbered checkpoints, `latest` (a readable one) last."""
    directory = os.path.join(model_dir, "checkpoints")
    path = os.path.join(directory, "checkpoint")
    if not os.path.exists(path):
        return
    try:
        if tf.train.get_checkpoint_state(directory) is not None:
            return
    except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError on binary garbage
        pass
    logging.warning("rewriting %s, which does not parse", path)
    newest = os.path.basename(latest)
    names = [os.path.basename(p) for p in numbered_checkpoints(model_dir).values() if os.path.basename(p) != newest]
    names.append(newest)
    text = f'model_checkpoint_path: "{newest}"\n' + "".join(f'all_model_checkpoint_paths: "{n}"\n' for n in names)
    with files.replaced(path) as temporary, open(temporary, "w") as f:
        f.write(text)


def started_from(model_dir: str) -> tuple[bool, str | None]:
    """Whether model_dir/runs.jsonl records the start (step 0) of its run, and that start's
    --init_from (a real path; None: from scratch)."""
    path = os.path.join(model_dir, "runs.jsonl")
    found, source = False, None
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short
                if isinstance(record, dict) and record.get("start_step") == 0:
                    found, source = True, record.get("init_from")
    return found, source


def record_run(model_dir: str, start: int, changed: list[str], init_from: str | None = None) -> None:
    """Appends this run's line to model_dir/runs.jsonl."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        user = str(os.getuid())
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(), "user": user,
              "host": socket.gethostname(), "argv": list(sys.argv), "start_step": start, "changed": changed}
    if init_from is not None:
        record["init_from"] = os.path.realpath(init_from)
    with open(os.path.join(model_dir, "runs.jsonl"), "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


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


def checkpoint_step(prefix: str) -> int:
    """The step N of a checkpoint prefix `.../ckpt-N`."""
    return int(prefix.rsplit("-", 1)[1])


def numbered_checkpoints(model_dir: str) -> dict[int, str]:
    """{step: prefix} of every checkpoint in model_dir/checkpoints that has an index (ckpt-N.index),
    ascending; whether it reads back is not checked."""
    found = {}
    for index in glob.glob(os.path.join(model_dir, "checkpoints", "ckpt-*.index")):
        prefix = index[:-len(".index")]
        if prefix.rsplit("-", 1)[1].isdigit():
            found[checkpoint_step(prefix)] = prefix
    return dict(sorted(found.items()))


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
    try:
        candidates = {tf.train.latest_checkpoint(directory)}
    except Exception as error:  # noqa: BLE001 - a damaged state file (UnicodeDecodeError, ...): the files count
        logging.warning("ignoring %s/checkpoint, which does not parse (%s)", directory, error)
        candidates = set()
    candidates.update(numbered_checkpoints(model_dir).values())
    candidates.discard(None)
    for prefix in sorted(candidates, key=checkpoint_step, reverse=True):
        if readable(prefix):
            return prefix
        logging.warning("skipping %s: it does not read back (a run killed while writing it?)", prefix)
    return None


def restore(checkpoint: tf.train.Checkpoint, model_dir: str) -> str | None:
    """Restores the latest checkpoint in model_dir into `checkpoint`, every object of which must be
    in it; returns its path (None if there is none)."""
    latest = latest_checkpoint(model_dir)
    if latest is not None:
        restore_from(checkpoint, latest)
    return latest


def restore_from(checkpoint: tf.train.Checkpoint, prefix: str) -> None:
    """Restores the checkpoint at `prefix` (one `latest_checkpoint` found) into `checkpoint`, every
    object of which must be in it."""
    try:
        checkpoint.restore(prefix).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        first = str(error).strip().splitlines()[0]
        raise UserError(f"checkpoint {prefix} does not fit this model ({first}); "
                        "use the same task options or a fresh --model_dir") from None


def generator_checkpoint(model: AIGN, step: tf.Variable | None = None) -> dict:
    """The objects of a checkpoint's generator part, as a training checkpoint names them: "model" with
    the generator (and a learned decoder), and "step" if given."""
    parts = {"generator": model.generator}
    if model.decoder is not None:
        parts["decoder"] = model.decoder
    return {"model": tf.train.Checkpoint(**parts), **({"step": step} if step is not None else {})}


def restore_generator(model: AIGN, prefix: str, step: tf.Variable | None = None) -> None:
    """Restores the generator (and a learned decoder) of `model`, and `step` if given, from the
    checkpoint at `prefix`; critics and optimizers are not read."""
    objects = generator_checkpoint(model, step)
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
    with open(path, "rb") as f:  # bytes: a line of garbage (not UTF-8) is skipped like a cut one
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                curves[int(record.pop("step"))] = record
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a line cut short by a killed run
    return dict(sorted(curves.items()))
