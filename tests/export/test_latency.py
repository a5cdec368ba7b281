"""Latency measurement of an export: every runtime, each batch size, clear errors."""
import shutil

import pytest

from aign_tf.errors import UserError
from aign_tf.export import latency, onnx
from tests.testing import HAVE_ONNX, ONNX_MISSING


def test_measures_every_runtime_per_batch_size(exports):
    result = latency.measure(exports["superres"][0], "serving_default", [1, 4], repeats=2, warmup=1, threads=1)
    assert sorted(result) == [1, 4]
    for times in result.values():
        assert set(times) == {"saved_model_ms", "tflite_ms", *(["onnx_ms"] if HAVE_ONNX else [])}
        assert all(t > 0 for t in times.values())
    render = latency.measure(exports["superres"][0], "render", [1], repeats=1, warmup=0, threads=1)
    assert set(render[1]) == {"saved_model_ms", "tflite_ms"}  # model.onnx holds serving_default only


@pytest.mark.skipif(not HAVE_ONNX, reason=ONNX_MISSING)
def test_a_cut_onnx_model_is_one_line(exports, tmp_path):
    export_dir = shutil.copytree(exports["superres"][0], tmp_path / "1")
    path = export_dir / onnx.FILENAME
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    with pytest.raises(UserError, match=".*") as raised:
        latency.measure(str(export_dir), "serving_default", [1], repeats=1, warmup=0)
    message = str(raised.value)
    assert str(path) in message and "export again" in message and "\n" not in message, message


def test_median_of_the_timed_calls():
    calls = []
    assert latency.median_ms(lambda: calls.append(1), repeats=5, warmup=2) >= 0
    assert len(calls) == 7


def test_refuses_what_is_not_an_export(exports, tmp_path):
    with pytest.raises(UserError, match="is not an aign_tf export"):
        latency.measure(str(tmp_path), "serving_default", [1], repeats=1, warmup=0)
    with pytest.raises(UserError, match="has no signature 'predict'; it has generator, render, serving_default"):
        latency.measure(exports["superres"][0], "predict", [1], repeats=1, warmup=0)
