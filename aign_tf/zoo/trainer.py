"""One training loop for every task and every `tf.distribute` strategy.

It drives `model.train_step` through `strategy.run` (Keras `fit` cannot run multi-worker), feeds
each input pipeline its shard of the task's global batches (`aign_tf.core.batches.shard`), shows a
progress bar, writes TensorBoard scalars and image grids, checkpoints the model, both optimizers and
the step, and resumes from the latest checkpoint when run again. What it writes where: `aign_tf.zoo.rundir`.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import resource
import signal
import socket
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from aign_tf.core import AIGN, batches
from aign_tf.errors import UserError
from aign_tf.tasks.base import Task
from aign_tf.zoo import pictures, rundir

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name: str, peer_timeout: float = 300.0) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy called `name`; for multi_worker, after every peer of TF_CONFIG's
    cluster has started (`wait_for_peers`, at most `peer_timeout` seconds)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        wait_for_peers(cluster_config(), peer_timeout)
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UserError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}")


def cluster_config() -> dict:
    """TF_CONFIG, checked: {"cluster": {type: ["host:port", ...]}, "task": {"type": ..., "index": ...}}."""
    if "TF_CONFIG" not in os.environ:
        raise UserError("--strategy=multi_worker needs TF_CONFIG describing the cluster (see README)")
    try:
        config = json.loads(os.environ["TF_CONFIG"])
        host_port(config["cluster"][config["task"]["type"]][config["task"]["index"]])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
        raise UserError(f"TF_CONFIG is not a cluster with this task's host:port in it ({error!r}); expected "
                        '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}') from None
    return config


def wait_for_peers(config: dict, timeout: float) -> None:
    """Return once every other task of the cluster accepts a TCP connection on its port; raise a
    one-line UserError after `timeout` seconds. Meanwhile this task listens on its own port, so that a
    peer waiting the same way sees it start; the port is freed again for TensorFlow's server before
    returning. (TensorFlow itself waits for a missing peer forever, without yielding to signals.)"""
    kind, index = config["task"]["type"], config["task"]["index"]
    peers = [(f"{peer_kind} {peer_index}", address) for peer_kind, addresses in config["cluster"].items()
             for peer_index, address in enumerate(addresses) if (peer_kind, peer_index) != (kind, index)]
    _, port = host_port(config["cluster"][kind][index])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setblocking(False)
    try:
        listener.bind(("", port))
    except OSError as error:
        listener.close()
        raise UserError(f"{kind} {index} cannot listen on port {port} of TF_CONFIG: {error.strerror}") from None
    listener.listen(16)
    deadline = time.monotonic() + timeout
    try:
        while peers := [(name, address) for name, address in peers if not accepts_connections(address)]:
            if time.monotonic() > deadline:
                missing = ", ".join(f"{name} ({address})" for name, address in peers)
                raise UserError(f"{kind} {index}: {missing} of TF_CONFIG did not start within {timeout:g} s; "
                                "start every worker of the cluster (or raise --peer_timeout)")
            try:
                listener.accept()[0].close()
            except BlockingIOError:
                pass
            time.sleep(0.2)
    finally:
        listener.close()


def host_port(address: str) -> tuple[str, int]:
    """("host", port) of a TF_CONFIG address "host:port" (ValueError if it is none)."""
    host, port = address.rsplit(":", 1)
    return host, int(port)


def accepts_connections(address: str) -> bool:
    try:
        socket.create_connection(host_port(address), timeout=1.0).close()
        return True
    except OSError:
        return False


SIGNAL_EXIT = {signal.SIGTERM: 143, signal.SIGINT: 130}


class Stopped(Exception):
    """Training stopped by SIGTERM or SIGINT after saving a checkpoint; `exit_status` is 143 or 130."""

    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


class StopRequest:
    """While installed (a context manager), SIGTERM and SIGINT set `received` (which signal) instead of
    ending the process; a second one ends it at once without saving."""

    def __init__(self):
        self.received: int | None = None

    def flags(self) -> tf.Tensor:
        """[SIGTERM received, SIGINT received] as floats, for the collective agreement in the step."""
        return tf.constant([float(self.received == signal.SIGTERM), float(self.received == signal.SIGINT)])

    def _handle(self, number, frame):
        if self.received is not None:
            print(f"train: second {signal.Signals(number).name}; stopped without saving", file=sys.stderr, flush=True)
            os._exit(SIGNAL_EXIT[number])
        self.received = number

    def __enter__(self):
        self._previous = {number: signal.signal(number, self._handle) for number in SIGNAL_EXIT
                          if signal.getsignal(number) is not signal.SIG_IGN}  # nohup'd, a background job
        return self

    def __exit__(self, *exc):
        for number, handler in self._previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints and summaries (always, except on non-chief workers)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker" and resolver.task_id == 0)


@contextlib.contextmanager
def precision_policy(precision: str):
    """Keras layers built inside compute in `precision` ("float32", or "bfloat16": mixed, with float32
    weights); the global policy is restored on exit."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32" if precision == "float32" else f"mixed_{precision}")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build(task: Task) -> tuple[AIGN, tf.train.Checkpoint]:
    """The compiled model and its training checkpoint (call inside the strategy scope), its networks
    computing in the config's precision."""
    keras.utils.set_random_seed(task.config.seed)
    with precision_policy(task.config.precision):
        model = task.build_model()
    g_optimizer, d_optimizer = task.optimizers()
    model.compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer if model.critics else None)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    objects = {"model": model, "g_optimizer": g_optimizer, "step": step}
    if model.critics:
        objects["d_optimizer"] = d_optimizer
    return model, tf.train.Checkpoint(**objects)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (ru_maxrss, KiB on Linux), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_train_step(model: AIGN, strategy: tf.distribute.Strategy, step: tf.Variable, jit_compile: bool = False):
    """The compiled step of `train` (and of `aign_tf.zoo.benchmark`): `model.train_step` on every
    replica via `strategy.run`, then `step += 1`, as one tf.function (`jit_compile`: compiled by XLA,
    one replica only). Call it with one batch of the distributed dataset; it returns whether every
    loss tracker is still finite (one check per step, in the graph).

    Called as train_step(batch, stop) with `stop` a float vector (`StopRequest.flags`), it returns
    (finite, stop summed over every replica of every worker): all workers agree to stop at one step."""
    if jit_compile and strategy.num_replicas_in_sync > 1:
        raise UserError(f"--jit_compile compiles the step of one replica, and this strategy has "
                        f"{strategy.num_replicas_in_sync}: train on one device or use --nojit_compile")

    def replica_step(batch, stop):
        model.train_step(batch)
        return None if stop is None else tf.identity(stop)

    @functools.partial(tf.function, jit_compile=jit_compile)
    def train_step(batch, stop=None):
        flags = strategy.run(replica_step, args=(batch, stop))
        step.assign_add(1)
        finite = tf.reduce_all([tf.math.is_finite(tracker.result()) for tracker in model.trackers.values()])
        if stop is None:
            return finite
        return finite, strategy.reduce(tf.distribute.ReduceOp.SUM, flags, axis=None)

    return train_step


def diverged(step: int, what: str, manager: tf.train.CheckpointManager) -> UserError:
    kept = manager.latest_checkpoint or "none yet"
    # At the very first step the weights are fresh: non-finite or absurdly large inputs are the likelier cause.
    fix = ("check that the inputs (keypoints, images) are finite and in range; if they are, lower "
           "--learning_rate or --beta" if step == 1 else "lower --learning_rate or --beta")
    return UserError(f"training diverged at step {step}: {what}; nothing was saved after the last good "
                     f"checkpoint ({kept}): {fix} and run again")


def first_non_finite_loss(model: AIGN) -> str:
    """'NAME is VALUE' of the first loss tracker whose running mean is NaN or infinite."""
    values = {name: float(tracker.result()) for name, tracker in model.trackers.items()}
    return next(f"{name} is {value}" for name, value in values.items() if not np.isfinite(value))


def non_finite_weights(model: AIGN) -> list[str]:
    """Names of the weights (generator, learned decoder, critics) that hold NaN or infinity."""
    return [v.path for v in model.generator_variables + model.critic_variables
            if not bool(tf.reduce_all(tf.math.is_finite(v)))]


def distributed_batches(dataset: tf.data.Dataset, strategy: tf.distribute.Strategy, start: int = 0):
    """An iterator over the distributed batches of `dataset` (global batches) from global step `start`
    on: each input pipeline reads its shard (`aign_tf.core.batches.shard`)."""
    def dataset_fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        per_step = input_context.num_replicas_in_sync // input_context.num_input_pipelines
        return batches.shard(dataset, input_context).skip(start * per_step)

    return iter(strategy.distribute_datasets_from_function(dataset_fn))


def work_dir_of(model_dir: str, strategy: tf.distribute.Strategy) -> str:
    """The directory this process writes: model_dir on the chief, model_dir/workers/worker-N on a
    non-chief worker N."""
    if is_chief(strategy):
        return model_dir
    return os.path.join(model_dir, "workers", f"worker-{strategy.cluster_resolver.task_id}")


def one_writer(function):
    """`train` holds the lock of the directory it writes (`rundir.exclusive`) for the whole run."""
    @functools.wraps(function)
    def locked(task: Task, model_dir: str, *, strategy: tf.distribute.Strategy, **kwargs):
        with rundir.exclusive(work_dir_of(model_dir, strategy), "train"):
            return function(task, model_dir, strategy=strategy, **kwargs)

    return locked


def checkpoint_to_resume(work_dir: str, source: str) -> str | None:
    """The checkpoint a run resumes from (None: start anew): removes stale checkpoint temporaries in
    work_dir, and refuses checkpoint files in `source` none of which reads back."""
    rundir.remove_stale_temporaries(work_dir)
    latest = rundir.latest_checkpoint(source)
    if latest is None:
        found = rundir.checkpoint_files(source)
        if found:
            shown = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
            raise UserError(f"no checkpoint in {os.path.join(source, 'checkpoints')} reads back ({shown}); "
                            "move them away to start anew, or use a fresh --model_dir")
    return latest


def check_same_source(model_dir: str, init_from: str | None) -> None:
    """Refuses to resume a run in model_dir from another --init_from than the one it started from."""
    if init_from is None:
        return
    found, source = rundir.started_from(model_dir)
    if found and source != os.path.realpath(init_from):
        raise UserError(f"{model_dir} holds a run started from {source or 'scratch (no --init_from)'}, not from "
                        f"{os.path.realpath(init_from)}; use another --model_dir")


def set_learning_rate(model: AIGN, rate: float) -> None:
    """Both optimizers at `rate` (a restored optimizer keeps the checkpoint's rate otherwise)."""
    for optimizer in (model.g_optimizer, model.d_optimizer):
        if optimizer is not None:
            optimizer.learning_rate = rate


@one_writer
def train(task: Task, model_dir: str, *, strategy: tf.distribute.Strategy,
          checkpoint_every: int = 500, summary_every: int = 50, image_every: int = 500,
          eval_every: int = 0, init_from: str | None = None, verbose: bool = True) -> dict[str, float]:
    """Trains (or resumes) `task.config` in `model_dir` up to its steps; returns the last logged metrics.

    With eval_every > 0 the task's held-out metrics are measured at the start, every eval_every steps
    and at the end (learning curves, e.g. the paper's Figure 3).

    A fresh model_dir starts from the generator weights of `init_from`'s latest checkpoint if given
    (fine-tuning, test-time adaptation); critics, optimizers and the step start anew."""
    config = task.config
    stored = rundir.read_config(model_dir)
    if stored is not None and stored.task != config.task:
        raise UserError(f"{model_dir} holds a {stored.task!r} model, not {config.task!r}; use another --model_dir")
    chief = is_chief(strategy)
    work_dir = work_dir_of(model_dir, strategy)
    os.makedirs(work_dir, exist_ok=True)
    if config.batch_size % strategy.num_replicas_in_sync:
        raise UserError(f"--batch_size={config.batch_size} must be divisible by the "
                        f"{strategy.num_replicas_in_sync} replicas")
    restored = checkpoint_to_resume(work_dir, work_dir if chief else model_dir)
    if chief and restored is not None:  # resume only what was started here
        rundir.check_resume(model_dir, stored, config)
        check_same_source(model_dir, init_from)

    with strategy.scope():
        model, checkpoint = build(task)
    if restored is not None:  # found (and read back in full) above: restored without reading it again
        rundir.restore_from(checkpoint, restored)
        set_learning_rate(model, config.learning_rate)
    if restored is None and init_from is not None:
        source = rundir.latest_checkpoint(init_from)
        if source is None:
            raise UserError(f"--init_from={init_from} holds no checkpoint; train that model first")
        rundir.restore_generator(model, source)  # critics and optimizers start anew
        if verbose:
            print(f"{task.name}: generator initialised from {source}")
    if chief and restored is not None:
        rundir.repair_checkpoint_state(work_dir, restored)
    start = int(checkpoint.step.numpy())
    if chief and start < config.steps:  # a valid run: config.json once, at the start; a runs.jsonl line each
        if restored is None or stored is None:
            rundir.write_config(model_dir, config)
        changed = rundir.differences(stored, config, resumable=True) if restored and stored else []
        rundir.record_run(model_dir, start, changed, init_from)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(work_dir, "checkpoints"), max_to_keep=3,
                                         step_counter=checkpoint.step)
    if verbose:
        where = f"resumed from {restored} at step {start}" if restored else "starting from scratch"
        print(f"{task.name}: {where}; training to step {config.steps} on "
              f"{strategy.num_replicas_in_sync} replica(s), global batch {config.batch_size}")
    if start >= config.steps:
        return {}

    # The preview batch comes from a dataset object of its own: the background prefetch of an
    # iterator of the training dataset could draw that dataset's reshuffle seeds at a time that
    # depends on thread timing (for a stream shorter than the prefetch, such as sfm's test frames).
    preview = next(iter(task.train_batches().take(1)))
    replica_batches = distributed_batches(task.train_batches(), strategy, start)

    train_step = make_train_step(model, strategy, checkpoint.step, config.jit_compile)
    writer = tf.summary.create_file_writer(os.path.join(work_dir, "train"))
    eval_writer = tf.summary.create_file_writer(os.path.join(work_dir, "eval")) if eval_every else None
    if eval_every and start == 0:
        record_evaluation(task, model, model_dir, 0, eval_writer, chief)
    progress = keras.utils.Progbar(config.steps, stateful_metrics=[m.name for m in model.metrics] + ["examples/s"],
                                   verbose=1 if verbose else 0)
    logs: dict[str, float] = {}
    tick, tick_step = time.perf_counter(), start
    with StopRequest() as stop:  # SIGTERM / SIGINT: save at the step in flight, raise Stopped
        for step in range(start + 1, config.steps + 1):
            finite, agreed = train_step(next(replica_batches), stop.flags())
            if not bool(finite):  # a loss of this step is NaN or infinite
                raise diverged(step, first_non_finite_loss(model), manager)
            last = step == config.steps
            terms, interrupts = (float(x) for x in agreed.numpy())
            if (terms or interrupts) and not last:  # a signal here or on another worker: all stop at this step
                saved = save(model, manager, step)
                writer.flush()
                name, status = ("SIGTERM", 143) if terms else ("SIGINT", 130)
                if stop.received is None:
                    name = f"{name} to another worker"
                raise Stopped(f"train: stopped by {name} at step {step}; saved {saved}; "
                              "run the same command to resume", status)
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
                grid = pictures.image_grid(task.images(model, preview))
                with writer.as_default(step=step):
                    tf.summary.image("samples", grid)
                if chief:
                    os.makedirs(os.path.join(model_dir, "samples"), exist_ok=True)
                    pictures.save_png(os.path.join(model_dir, "samples", "latest.png"), grid)
            if eval_every and (step % eval_every == 0 or last):
                record_evaluation(task, model, model_dir, step, eval_writer, chief)
            if step % checkpoint_every == 0 or last:
                save(model, manager, step)
    writer.flush()
    return logs


def save(model: AIGN, manager: tf.train.CheckpointManager, step: int) -> str:
    """Saves checkpoint `step` (raises `diverged` instead if a weight is NaN or infinite); its path."""
    bad = non_finite_weights(model)
    if bad:
        raise diverged(step, f"weights {', '.join(bad[:3])} are not finite", manager)
    return manager.save(checkpoint_number=step)


def record_evaluation(task: Task, model: AIGN, model_dir: str, step: int, writer: tf.summary.SummaryWriter,
                      chief: bool) -> dict[str, float]:
    """Measures the task's held-out metrics now; TensorBoard `eval/` and a line of curves.jsonl."""
    metrics = task.evaluate(model)
    with writer.as_default(step=step):
        for name, value in metrics.items():
            tf.summary.scalar(name, value)
    writer.flush()
    if chief:
        with open(os.path.join(model_dir, "curves.jsonl"), "a") as f:
            f.write(json.dumps({"step": step, **metrics}, sort_keys=True) + "\n")
    return metrics
