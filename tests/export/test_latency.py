"""Latency measurement of an export: both runtimes, each batch size, clear errors."""
import pytest

from aign_tf.errors import UserError
from aign_tf.export import latency


def test_measures_saved_model_and_tflite_per_batch_size(exports):
    result = latency.measure(exports["superres"][0], "serving_default", [1, 4], repeats=2, warmup=1, threads=1)
    assert sorted(result) == [1, 4]
    for times in result.values():
        assert set(times) == {"saved_model_ms", "tflite_ms"} and all(t > 0 for t in times.values())


def test_median_of_the_timed_calls():
    calls = []
    assert latency.median_ms(lambda: calls.append(1), repeats=5, warmup=2) >= 0
    assert len(calls) == 7


def test_refuses_what_is_not_an_export(exports, tmp_path):
    with pytest.raises(UserError, match="is not an aign_tf export"):
        latency.measure(str(tmp_path), "serving_default", [1], repeats=1, warmup=0)
    with pytest.raises(UserError, match="has no signature 'predict'; it has generator, render, serving_default"):
        latency.measure(exports["superres"][0], "predict", [1], repeats=1, warmup=0)
