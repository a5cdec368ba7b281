"""One training loop for every task and every `tf.distribute` strategy.

It drives `model.train_step` through `strategy.run` (Keras `fit` cannot run multi-worker), shows
a progress bar, writes TensorBoard scalars and image grids, checkpoints the model, both
optimizers and the step, and resumes from the latest checkpoint when run again.

model_dir layout:
    config.json          the run's Config (task, hyperparameters, options)
    checkpoints/         tf.train.Checkpoint files (model, g_optimizer, d_optimizer, step)
    train/               TensorBoard event files
    eval/                TensorBoard event files of the held-out metrics (with --eval_every)
    curves.jsonl         the same metrics, one JSON line {"step": ..., metric: value} per evaluation
    samples/             the latest image grid as PNG
"""
from __future__ import annotations

import glob
import json
import os
import resource
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from aign_tf.core import AIGN
from aign_tf.errors import UserError
from aign_tf.tasks.base import Config, Task, optimizers, with_default_options

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise UserError("--strategy=multi_worker needs TF_CONFIG describing the cluster (see README)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UserError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints and summaries (always, except on non-chief workers)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker" and resolver.task_id == 0)


def read_config(model_dir: str) -> Config | None:
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return Config.from_json(f.read())
    except (ValueError, TypeError) as error:
        raise UserError(f"{path} is not a valid aign_tf config ({error}); use a fresh --model_dir") from None


def trained_config(task: Task, model_dir: str) -> Config:
    """The stored config of a trained `task` model in model_dir, with defaults for newer options."""
    config = read_config(model_dir)
    if config is None:
        raise UserError(f"{model_dir} holds no config.json; train first with "
                        f"python -m aign_tf.zoo.train --task={task.name} --model_dir={model_dir}")
    if config.task != task.name:
        raise UserError(f"{model_dir} holds a {config.task!r} model, not {task.name!r}")
    return with_default_options(task, config)


def write_config(model_dir: str, config: Config) -> None:
    path = os.path.join(model_dir, "config.json")
    with open(path + ".tmp", "w") as f:
        f.write(config.to_json())
    os.replace(path + ".tmp", path)


def build(task: Task, config: Config) -> tuple[AIGN, tf.train.Checkpoint]:
    """The compiled model and its checkpoint (call inside the strategy scope)."""
    keras.utils.set_random_seed(config.seed)
    model = task.build_model(config)
    g_optimizer, d_optimizer = optimizers(config)
    model.compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer if model.critics else None)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    objects = {"model": model, "g_optimizer": g_optimizer, "step": step}
    if model.critics:
        objects["d_optimizer"] = d_optimizer
    return model, tf.train.Checkpoint(**objects)


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


def restore(checkpoint: tf.train.Checkpoint, model_dir: str, *, expect_partial: bool = False) -> str | None:
    """Restores the latest checkpoint in model_dir/checkpoints; returns its path (None if there is none)."""
    latest = latest_checkpoint(model_dir)
    if latest is None:
        return None
    try:
        status = checkpoint.restore(latest)
        status.expect_partial() if expect_partial else status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        first = str(error).strip().splitlines()[0]
        raise UserError(f"checkpoint {latest} does not fit this model ({first}); "
                        "use the same task options or a fresh --model_dir") from None
    return latest


def image_grid(images: dict[str, tf.Tensor], columns: int = 8) -> np.ndarray:
    """One picture: a row per named batch of images (first `columns` examples), [1, H', W', C]."""
    columns = min(columns, max(len(batch) for batch in images.values()))
    rows = []
    for batch in images.values():
        batch = tf.clip_by_value(tf.cast(batch[:columns], tf.float32), 0.0, 1.0).numpy()
        pad = np.ones((columns - len(batch),) + batch.shape[1:], np.float32)
        rows.append(np.concatenate(list(np.concatenate([batch, pad])), axis=1))
    channels = {r.shape[-1] for r in rows}
    if len(channels) > 1:
        rows = [np.repeat(r, 3, axis=-1) if r.shape[-1] == 1 else r for r in rows]
    return np.concatenate(rows, axis=0)[np.newaxis]


def save_png(path: str, grid: np.ndarray) -> None:
    from PIL import Image
    pixels = (grid[0] * 255).round().astype(np.uint8)
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (ru_maxrss, KiB on Linux), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_train_step(model: AIGN, strategy: tf.distribute.Strategy, step: tf.Variable):
    """The compiled step of `train` (and of `aign_tf.zoo.benchmark`): `model.train_step` on every
    replica via `strategy.run`, then `step += 1`. Call it with one batch of the distributed dataset;
    it returns whether every loss tracker is still finite (one check per step, in the graph)."""
    @tf.function
    def train_step(batch):
        strategy.run(model.train_step, args=(batch,))
        step.assign_add(1)
        return tf.reduce_all([tf.math.is_finite(tracker.result()) for tracker in model.trackers.values()])

    return train_step


def diverged(step: int, what: str, manager: tf.train.CheckpointManager) -> UserError:
    kept = manager.latest_checkpoint or "none yet"
    return UserError(f"training diverged at step {step}: {what}; nothing was saved after the last good "
                     f"checkpoint ({kept}): lower --learning_rate or --beta and run again")


def first_non_finite_loss(model: AIGN) -> str:
    """'NAME is VALUE' of the first loss tracker whose running mean is NaN or infinite."""
    values = {name: float(tracker.result()) for name, tracker in model.trackers.items()}
    return next(f"{name} is {value}" for name, value in values.items() if not np.isfinite(value))


def non_finite_weights(model: AIGN) -> list[str]:
    """Names of the weights (generator, learned decoder, critics) that hold NaN or infinity."""
    return [v.path for v in model.generator_variables + model.critic_variables
            if not bool(tf.reduce_all(tf.math.is_finite(v)))]


def train(task: Task, config: Config, model_dir: str, *, strategy: tf.distribute.Strategy,
          checkpoint_every: int = 500, summary_every: int = 50, image_every: int = 500,
          eval_every: int = 0, init_from: str | None = None, verbose: bool = True) -> dict[str, float]:
    """Trains (or resumes) `config` in `model_dir` up to `config.steps`; returns the last logged metrics.

    With eval_every > 0 the task's held-out metrics are measured at the start, every eval_every steps
    and at the end (learning curves, e.g. the paper's Figure 3).

    A fresh model_dir starts from the generator weights of `init_from`'s latest checkpoint if given
    (fine-tuning, test-time adaptation); critics, optimizers and the step start anew."""
    stored = read_config(model_dir)
    if stored is not None and stored.task != config.task:
        raise UserError(f"{model_dir} holds a {stored.task!r} model, not {config.task!r}; use another --model_dir")
    chief = is_chief(strategy)
    work_dir = model_dir if chief else os.path.join(model_dir, "workers", f"worker-{strategy.cluster_resolver.task_id}")
    os.makedirs(work_dir, exist_ok=True)
    if config.batch_size % strategy.num_replicas_in_sync:
        raise UserError(f"--batch_size={config.batch_size} must be divisible by the "
                        f"{strategy.num_replicas_in_sync} replicas")

    with strategy.scope():
        model, checkpoint = build(task, config)
    restored = restore(checkpoint, work_dir if chief else model_dir)
    if restored is None and init_from is not None:
        latest = latest_checkpoint(init_from)
        if latest is None:
            raise UserError(f"--init_from={init_from} holds no checkpoint; train that model first")
        try:  # the generator must match exactly; critics and optimizers start anew
            tf.train.Checkpoint(model=tf.train.Checkpoint(generator=model.generator)).restore(
                latest).assert_existing_objects_matched().expect_partial()
        except (AssertionError, ValueError) as error:
            raise UserError(f"the generator in {latest} does not fit this model ({str(error).splitlines()[0]}); "
                            "use the source model's task options") from None
        if verbose:
            print(f"{task.name}: generator initialised from {latest}")
    if chief:
        write_config(model_dir, config)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(work_dir, "checkpoints"), max_to_keep=3,
                                         step_counter=checkpoint.step)
    start = int(checkpoint.step.numpy())
    if verbose:
        where = f"resumed from {restored} at step {start}" if restored else "starting from scratch"
        print(f"{task.name}: {where}; training to step {config.steps} on "
              f"{strategy.num_replicas_in_sync} replica(s), global batch {config.batch_size}")
    if start >= config.steps:
        return {}

    dataset = task.train_data(config)
    preview = next(iter(dataset.take(1)))
    batches = iter(strategy.experimental_distribute_dataset(dataset.skip(start)))

    train_step = make_train_step(model, strategy, checkpoint.step)
    writer = tf.summary.create_file_writer(os.path.join(work_dir, "train"))
    eval_writer = tf.summary.create_file_writer(os.path.join(work_dir, "eval")) if eval_every else None
    if eval_every and start == 0:
        record_evaluation(task, model, config, model_dir, 0, eval_writer, chief)
    progress = keras.utils.Progbar(config.steps, stateful_metrics=[m.name for m in model.metrics] + ["examples/s"],
                                   verbose=1 if verbose else 0)
    logs: dict[str, float] = {}
    tick, tick_step = time.perf_counter(), start
    for step in range(start + 1, config.steps + 1):
        if not bool(train_step(next(batches))):  # a loss of this step is NaN or infinite
            raise diverged(step, first_non_finite_loss(model), manager)
        last = step == config.steps
        if step % summary_every == 0 or last:
            logs = {m.name: float(m.result()) for m in model.metrics}
            for metric in model.metrics:
                metric.reset_state()
            now = time.perf_counter()
            logs["examples/s"] = (step - tick_step) * config.batch_size / (now - tick)
            logs["peak_rss_mib"] = peak_rss_mib()
            tick, tick_step = now, step
            with writer.as_default(step=step):
                for name, value in logs.items():
                    tf.summary.scalar(name, value)
            progress.update(step, list(logs.items()))
        if step % image_every == 0 or last:
            grid = image_grid(task.images(model, preview))
            with writer.as_default(step=step):
                tf.summary.image("samples", grid)
            if chief:
                os.makedirs(os.path.join(model_dir, "samples"), exist_ok=True)
                save_png(os.path.join(model_dir, "samples", "latest.png"), grid)
        if eval_every and (step % eval_every == 0 or last):
            record_evaluation(task, model, config, model_dir, step, eval_writer, chief)
        if step % checkpoint_every == 0 or last:
            bad = non_finite_weights(model)
            if bad:
                raise diverged(step, f"weights {', '.join(bad[:3])} are not finite", manager)
            manager.save(checkpoint_number=step)
    writer.flush()
    return logs


def record_evaluation(task: Task, model: AIGN, config: Config, model_dir: str, step: int,
                      writer: tf.summary.SummaryWriter, chief: bool) -> dict[str, float]:
    """Measures the task's held-out metrics now; TensorBoard `eval/` and a line of curves.jsonl."""
    metrics = task.evaluate(model, config)
    with writer.as_default(step=step):
        for name, value in metrics.items():
            tf.summary.scalar(name, value)
    writer.flush()
    if chief:
        with open(os.path.join(model_dir, "curves.jsonl"), "a") as f:
            f.write(json.dumps({"step": step, **metrics}, sort_keys=True) + "\n")
    return metrics


def read_curves(model_dir: str) -> dict[int, dict[str, float]]:
    """{step: metrics} from model_dir/curves.jsonl; a step measured twice (a resumed run) keeps its
    latest measurement."""
    path = os.path.join(model_dir, "curves.jsonl")
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist; train with --eval_every=N to record learning curves")
    curves = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                curves[int(record.pop("step"))] = record
            except (ValueError, KeyError):
                continue  # a line cut short by a killed run
    return dict(sorted(curves.items()))


def load_for_inference(task: Task, config: Config, model_dir: str) -> tuple[AIGN, int]:
    """The model of model_dir at its latest checkpoint, and that checkpoint's step."""
    model, checkpoint = build(task, config)
    if restore(checkpoint, model_dir, expect_partial=True) is None:
        raise UserError(f"no checkpoint in {model_dir}/checkpoints; train first with "
                        f"python -m aign_tf.zoo.train --task={task.name} --model_dir={model_dir}")
    return model, int(checkpoint.step.numpy())


def write_json(path: str, payload: dict) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)
