"""Benchmark a task's train step on this machine.

    python -m aign_tf.zoo.benchmark --task=inpaint [--batch_size=32] [--steps=30] [--warmup=5] [--out=bench.json]
        [--profile=DIR] [--precision=bfloat16] [--jit_compile]

Task flags (--width, --dataset, ...) apply as in training. --steps is the number of timed steps.
Every loop runs `--warmup` untimed steps first (tracing included), then `--steps` timed steps that
end with a sync (reading a variable). The numbers:

    step_examples_per_s     examples/s of the compiled step that `aign_tf.zoo.trainer.train` runs
                            (`trainer.make_train_step`: tf.function + strategy.run(model.train_step),
                            default strategy) on a few batches of the task's train dataset held in
                            memory: the step's own cost
    loop_examples_per_s     the same step fed by the task's real input pipeline (tf.data, read
                            while the steps run): what training achieves
    input_examples_per_s    the input pipeline alone, iterated without a step
    bare_examples_per_s     the same networks, renderer and loss functions in a plain tf.function
                            GradientTape step with two Adam optimizers on the in-memory batches: no
                            gating, no metric trackers, no distribution, no supervised term
    overhead                bare_examples_per_s / step_examples_per_s (1 = our loop costs nothing)
    train_step_gflop        GFLOP in one train step as TensorFlow's profiler counts them on the traced
                            graph (convolutions and their gradients Conv2DBackpropInput/Filter,
                            matmuls, elementwise ops with a FLOPs stat), over the ops the runtime
                            runs (`live_ops`: traced ops that nothing reads, such as the generator
                            gradients the critic's tape builds, are pruned and not counted).
                            Not counted either: ops without a FLOPs stat (activations and their
                            gradients, e.g. LeakyRelu, Sigmoid) and the bodies of `If` ops, i.e. the
                            gated optimizer updates; the output lists those op types.
    train_step_gflop_per_s  train_step_gflop * the step's steps/s (in-memory batches)
    matmul_gflop_per_s      the machine's reference: a float32 2048x2048 tf.matmul (2 N^3 FLOPs),
                            best of 10 calls
    fraction_of_matmul      train_step_gflop_per_s / matmul_gflop_per_s
    peak_rss_mib            peak resident memory of this process (ru_maxrss)

The JSON written to --out holds the same numbers with the config, device and uncounted op types.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import io
import itertools
import os
import time

import tensorflow as tf
from absl import flags

from aign_tf import files
from aign_tf.core import AIGN, losses
from aign_tf.errors import UserError
from aign_tf.tasks.base import Task
from aign_tf.tasks.options import Config
from aign_tf.zoo import cli, trainer
from aign_tf.zoo.evaluate import format_table

DEFAULT_STEPS = 30
HELD_BATCHES = 4  # the in-memory batches the step cycles over
PROFILED_STEPS = 5

flags.DEFINE_integer("warmup", 5, "Untimed steps before timing (the first one traces).")
flags.DEFINE_string("profile", None, f"Also write a TensorBoard profiler trace of {PROFILED_STEPS} more steps on "
                    "the in-memory batches to this directory (open with tensorboard --logdir=DIR, Profile tab).")

FLAGS = flags.FLAGS

# Op types with a float output that only move data or keep book: they need no FLOPs stat.
NO_ARITHMETIC = {"Const", "Placeholder", "Identity", "IdentityN", "ReadVariableOp", "Reshape", "Squeeze",
                 "ExpandDims", "Tile", "BroadcastTo", "ConcatV2", "Slice", "StridedSlice", "Pack", "Unpack",
                 "Fill", "Cast", "Transpose", "GatherV2", "ZerosLike", "OnesLike"}
CALLS = {"If", "StatelessIf", "While", "StatelessWhile", "PartitionedCall", "StatefulPartitionedCall"}


def live_ops(graph: tf.Graph) -> set[str]:
    """Names of the ops a tf.function runs: those its outputs and its stateful ops depend on.

    The runtime prunes the rest, e.g. the gradients a tape computes on its way to the sources that
    nothing reads (the critic's tape runs back through the generator).
    """
    stack = [op for op in graph.get_operations() if op.op_def.is_stateful]
    stack += [t.op for t in getattr(graph, "outputs", [])] + list(getattr(graph, "control_outputs", []))
    live = set()
    while stack:
        op = stack.pop()
        if op.name not in live:
            live.add(op.name)
            stack.extend([t.op for t in op.inputs] + list(op.control_inputs))
    return live


def count_flops(graph: tf.Graph) -> tuple[dict[str, int], list[str]]:
    """(FLOPs per op type of the live ops of a traced tf.function as TF's profiler counts them,
    the live op types with float outputs that it counts none for)."""
    options = dict(tf.compat.v1.profiler.ProfileOptionBuilder.float_operation(), output="none")
    level = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")  # the profiler calls a deprecated shape helper
    try:
        with contextlib.redirect_stderr(io.StringIO()) as messages:  # "N ops no flops stats due to incomplete shapes"
            profile = tf.compat.v1.profiler.profile(graph, cmd="scope", options=options)
    finally:
        tf.get_logger().setLevel(level)
    live, by_type, stack = live_ops(graph), {}, list(profile.children)
    while stack:  # one node per op with FLOPs, named as the op
        node = stack.pop()
        stack.extend(node.children)
        if node.name in live and node.float_ops:
            kind = graph.get_operation_by_name(node.name).type
            by_type[kind] = by_type.get(kind, 0) + node.float_ops
    types = {op.type for op in graph.get_operations() if op.name in live and
             (op.type in CALLS or (op.outputs and op.outputs[0].dtype.is_floating))}
    uncounted = sorted(types - set(by_type) - NO_ARITHMETIC)
    if "incomplete shapes" in messages.getvalue():
        uncounted.append(messages.getvalue().strip())
    return by_type, uncounted


def bare_step(model: AIGN, task: Task):
    """A plain tf.function step over the model's networks, renderer and loss functions."""
    g_optimizer, d_optimizer = task.optimizers()
    g_vars, d_vars = model.generator_variables, model.critic_variables
    g_optimizer.build(g_vars)
    if d_vars:
        d_optimizer.build(d_vars)

    @functools.partial(tf.function, jit_compile=task.config.jit_compile)
    def step(batch):
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            predictions = model(batch["inputs"], training=True)
            rendered, valid = model.render(predictions, batch["inputs"])
            g_loss = losses.reconstruction_loss(rendered, batch["observed"], valid, model.reconstruction)
            d_loss = tf.zeros_like(g_loss)
            for name in sorted(model.critics):
                real = model.score(name, batch["memories"][name], True)
                fake = model.score(name, predictions[name], True)
                g_loss += model.beta * model.gan.generator(fake)
                d_loss += model.gan.discriminator(real, fake)
            g_loss, d_loss = tf.reduce_mean(g_loss), tf.reduce_mean(d_loss)
        g_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars))
        if d_vars:
            d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars))

    return step


def time_steps(step, batches, warmup: int, steps: int, sync) -> float:
    """Seconds for `steps` calls of `step` after `warmup` untimed ones, ending with `sync()`."""
    for _ in range(warmup):
        step(next(batches))
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step(next(batches))
    sync()
    return time.perf_counter() - start


def matmul_gflop_per_s(n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a float32 [n, n] x [n, n] tf.matmul in a tf.function: the best of `repeats` timed
    calls after one warm-up call (the best, so that other processes on the machine count least)."""
    a, b = tf.random.normal([n, n], seed=1), tf.random.normal([n, n], seed=2)
    matmul = tf.function(tf.matmul)
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def in_memory(batches, count: int):
    """An endless iterator cycling over the next `count` batches of `batches`, read once."""
    held = [next(batches) for _ in range(count)]
    return itertools.cycle(held)


def measure(task: Task, *, warmup: int = 5, steps: int = DEFAULT_STEPS, held_batches: int = HELD_BATCHES,
            matmul_size: int = 2048, matmul_repeats: int = 10,
            profile: str | None = None) -> tuple[dict[str, float], list[str]]:
    """The numbers of the module docstring, and the op types whose FLOPs the profiler does not count;
    `profile`: a directory for a TensorBoard profiler trace of PROFILED_STEPS more steps."""
    if warmup < 1 or steps < 1:
        raise UserError("--warmup and --steps must be positive (the first warm-up step traces)")
    strategy = trainer.make_strategy("default")
    with strategy.scope():
        model, checkpoint = trainer.build(task)
    ours = trainer.make_train_step(model, strategy, checkpoint.step, task.config.jit_compile)
    dataset = task.train_batches()
    sync = lambda: checkpoint.step.numpy()  # noqa: E731 - reading a variable waits for the step
    held = in_memory(trainer.distributed_batches(dataset, strategy), held_batches)
    step_s = time_steps(ours, held, warmup, steps, sync)
    if profile:
        tf.profiler.experimental.start(profile)
        time_steps(ours, held, 0, PROFILED_STEPS, sync)
        tf.profiler.experimental.stop()
    loop_s = time_steps(ours, trainer.distributed_batches(dataset, strategy), warmup, steps, sync)
    input_s = time_steps(lambda batch: None, trainer.distributed_batches(dataset, strategy), warmup, steps,
                         sync=lambda: None)  # the pipeline alone
    flops_by_type, uncounted = count_flops(ours.get_concrete_function(next(held)).graph)

    first_weight = model.generator.trainable_variables[0]
    bare_s = time_steps(bare_step(model, task), in_memory(iter(dataset), held_batches), warmup, steps,
                        sync=first_weight.numpy)

    flops, examples = sum(flops_by_type.values()), steps * task.config.batch_size
    matmul = matmul_gflop_per_s(matmul_size, matmul_repeats)
    numbers = {
        "step_examples_per_s": examples / step_s,
        "loop_examples_per_s": examples / loop_s,
        "input_examples_per_s": examples / input_s,
        "bare_examples_per_s": examples / bare_s,
        "overhead": step_s / bare_s,
        "train_step_gflop": flops / 1e9,
        "train_step_gflop_per_s": flops * steps / step_s / 1e9,
        "matmul_gflop_per_s": matmul,
        "fraction_of_matmul": flops * steps / step_s / 1e9 / matmul,
        "peak_rss_mib": trainer.peak_rss_mib(),
    }
    return numbers, uncounted


def device_description() -> str:
    """The devices TensorFlow runs on, with the GPUs' and the CPU's model names."""
    names = []
    for device in tf.config.list_physical_devices():
        details = tf.config.experimental.get_device_details(device) if device.device_type == "GPU" else {}
        names.append(f"{device.name} ({details['device_name']})" if details.get("device_name") else device.name)
    model = cpu_model()
    return ", ".join(names) + (f"; CPU: {model}" if model else "")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("" where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return ""


def main(argv: list[str]) -> None:
    task_class = cli.task()
    overrides = {**cli.overrides(Config), **cli.overrides(task_class.Options)}
    steps = DEFAULT_STEPS if FLAGS.steps is None else FLAGS.steps
    overrides.pop("steps", None)  # --steps counts the timed steps here
    task = task_class(task_class.configure(**overrides))
    devices = device_description()
    numbers, uncounted = measure(task, warmup=FLAGS.warmup, steps=steps, profile=FLAGS.profile)
    print(f"{task.name}: global batch {task.config.batch_size}, {steps} timed steps after {FLAGS.warmup} warm-up; "
          f"{os.cpu_count()} CPU cores; devices {devices}")
    print(format_table(numbers))
    print(f"FLOPs not counted by TF's profiler (no FLOPs stat; If = gated optimizer updates): "
          f"{', '.join(uncounted) or 'none'}")
    if FLAGS.out:
        files.write_json(FLAGS.out, {
            "task": task.name, "date": datetime.date.today().isoformat(), "config": task.config.to_dict(),
            "warmup": FLAGS.warmup, "timed_steps": steps, "cpu_count": os.cpu_count(), "devices": devices,
            "numbers": numbers, "flops_not_counted": uncounted})


if __name__ == "__main__":
    cli.run(main, hyperparameters=True, options=True)
