"""Benchmark: FLOP counting against hand counts, the measured numbers, CLI error handling."""
import math
import subprocess
import sys

import keras
import pytest
import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.zoo import benchmark, registry, trainer


def test_count_flops_of_one_matmul():
    graph = tf.function(tf.matmul).get_concrete_function(tf.TensorSpec([64, 128]), tf.TensorSpec([128, 256])).graph
    by_type, uncounted = benchmark.count_flops(graph)
    assert by_type == {"MatMul": 2 * 64 * 128 * 256}
    assert uncounted == []


def test_count_flops_of_a_conv_and_its_gradients_skips_dead_ops():
    kernel = tf.Variable(tf.ones([3, 3, 4, 8]))

    @tf.function
    def gradients(x, wrt_input):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.nn.leaky_relu(tf.nn.conv2d(x, kernel, 1, "SAME")))
        tf.matmul(tf.ones([4, 4]), tf.ones([4, 4]))  # read by nothing: pruned at run time
        return tape.gradient(loss, [kernel, x] if wrt_input else [kernel])

    forward = 2 * (2 * 16 * 16 * 8) * (3 * 3 * 4)  # one multiply-add per output element and kernel tap
    spec = tf.TensorSpec([2, 16, 16, 4])
    by_type, uncounted = benchmark.count_flops(gradients.get_concrete_function(spec, True).graph)
    assert (by_type["Conv2D"], by_type["Conv2DBackpropFilter"], by_type["Conv2DBackpropInput"]) == (forward,) * 3
    assert "MatMul" not in by_type
    assert "LeakyReluGrad" in uncounted  # no FLOPs stat (the forward LeakyRelu itself is dead here)
    by_type, _ = benchmark.count_flops(gradients.get_concrete_function(spec, False).graph)
    assert "Conv2DBackpropInput" not in by_type  # the tape builds it, nothing reads it


def forward_flops(model, batch_size):
    """Hand count of the conv / dense FLOPs of one forward pass: G once, each critic twice."""
    def flops(network):
        total = 0
        for layer in network.layers:
            if isinstance(layer, keras.layers.Conv2DTranspose):  # each input pixel meets the whole kernel
                total += 2 * math.prod(layer.input.shape[1:3]) * math.prod(layer.kernel.shape)
            elif isinstance(layer, keras.layers.Conv2D):  # each output pixel meets kh * kw * c_in taps
                total += 2 * math.prod(layer.output.shape[1:3]) * math.prod(layer.kernel.shape)
            elif isinstance(layer, keras.layers.Dense):
                total += 2 * math.prod(layer.kernel.shape)
        return batch_size * total
    return flops(model.generator) + 2 * sum(flops(critic) for critic in model.critics.values())


def test_measure_inpaint_tiny(tmp_path):
    task = registry.get_task("inpaint", batch_size=8, width=8)
    numbers, uncounted = benchmark.measure(task, warmup=1, steps=3, matmul_size=256, matmul_repeats=3,
                                           profile=str(tmp_path / "trace"))
    assert list((tmp_path / "trace").glob("plugins/profile/*/*.xplane.pb"))  # what TensorBoard's Profile tab reads
    assert set(numbers) == {"step_examples_per_s", "loop_examples_per_s", "input_examples_per_s",
                            "bare_examples_per_s", "overhead", "train_step_gflop", "train_step_gflop_per_s",
                            "matmul_gflop_per_s", "fraction_of_matmul", "peak_rss_mib"}
    assert all(math.isfinite(v) and v > 0 for v in numbers.values()), numbers
    assert "If" in uncounted  # the gated optimizer updates
    # Forward, input gradients and weight gradients each cost about one forward pass (measured: 3.06x).
    model, _ = trainer.build(task)
    forward = forward_flops(model, task.config.batch_size) / 1e9
    # Counting the dead ops of the traced graph too would give ~5x here.
    assert 2.5 * forward < numbers["train_step_gflop"] < 3.5 * forward, (numbers["train_step_gflop"], forward)


def test_measure_rejects_no_warmup():
    task = registry.get_task("inpaint")
    with pytest.raises(UserError, match="--warmup and --steps must be positive"):
        benchmark.measure(task, warmup=0)


def test_cli_unknown_task_exits_2_with_one_line():
    result = subprocess.run([sys.executable, "-m", "aign_tf.zoo.benchmark", "--task=nope", "--steps=3"],
                            capture_output=True, text=True, timeout=240)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert [line for line in lines if line.startswith("error:")] == [lines[-1]], result.stderr[-2000:]
    assert lines[-1] == "error: unknown task 'nope'; choose one of decoder_ablation, inpaint, pose3d, sfm, superres"


def test_device_description_names_this_machines_devices():
    described = benchmark.device_description()
    assert "/physical_device:CPU:0" in described, described
    with open("/proc/cpuinfo") as f:
        model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    assert described.endswith(f"; CPU: {model}"), described
