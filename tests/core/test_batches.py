"""The batch layout and `batches.shard`: every input pipeline feeds its replicas their parts of each
global batch, so that all replicas together see exactly the global batch."""
import numpy as np
import pytest
import tensorflow as tf

from aign_tf.core import batches
from aign_tf.errors import UserError

BATCH, PAIRED = 8, 4  # the global batch, and its `paired` part of another size (as sfm's)
GLOBAL_BATCHES = 3


def global_batches(batch=BATCH, paired=PAIRED):
    """GLOBAL_BATCHES distinct global batches in the full layout, every value unique."""
    def make(index):
        offset = tf.cast(index, tf.float32) * 1000.0

        def values(size, *shape, start):
            count = size * int(np.prod(shape, dtype=int))
            return offset + start + tf.reshape(tf.range(count, dtype=tf.float32), [size, *shape])

        return batches.example(
            {"image": values(batch, 2, 3, 1, start=0), "mask": values(batch, 2, 3, 1, start=100)},
            values(batch, 2, 3, 1, start=200),
            memories={"image": values(batch, 2, 3, 1, start=300)},
            targets={"image": values(batch, 2, 3, 1, start=400)},
            paired=batches.paired({"image": values(paired, 5, start=500)}, {"flow": values(paired, 2, 2, start=600)}),
            label=tf.range(batch, dtype=tf.int64) + tf.cast(index, tf.int64) * 1000)

    return tf.data.Dataset.range(GLOBAL_BATCHES).map(make)


def context(pipelines, pipeline, replicas):
    return tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=pipeline,
                                      num_replicas_in_sync=replicas)


def concatenate(parts):
    return tf.nest.map_structure(lambda *tensors: np.concatenate(tensors), *parts)


def assert_equal(got, want):
    tf.nest.assert_same_structure(got, want)
    for g, w in zip(tf.nest.flatten(got), tf.nest.flatten(want)):
        np.testing.assert_array_equal(g, w)


def test_example_leaves_out_absent_parts():
    example = batches.example({"image": 1}, 2, targets={"image": 3})
    assert example == {"inputs": {"image": 1}, "observed": 2, "targets": {"image": 3}}
    assert batches.paired({"a": 1}, {"b": 2}) == {"inputs": {"a": 1}, "targets": {"b": 2}}


@pytest.mark.parametrize("pipelines, replicas", [
    (1, 2),  # MirroredStrategy: one pipeline, two local replicas
    (2, 2),  # two workers with one replica each
    (2, 4),  # two workers with two replicas each
    (1, 4),
])
def test_the_parts_of_all_pipelines_in_order_are_the_global_batch(pipelines, replicas):
    per_pipeline = replicas // pipelines
    want = list(global_batches().as_numpy_iterator())
    shards = [batches.shard(global_batches(), context(pipelines, p, replicas)) for p in range(pipelines)]
    for shard in shards:  # static shapes: every part of the batch axis divided by the replicas
        shapes = tf.nest.map_structure(lambda s: s.shape, shard.element_spec)
        sizes = tf.nest.map_structure(lambda s: s[0], shapes)
        assert all(s.is_fully_defined() for s in tf.nest.flatten(shapes)), shapes
        assert sizes["observed"] == BATCH // replicas and sizes["label"] == BATCH // replicas
        assert sizes["paired"]["inputs"]["image"] == sizes["paired"]["targets"]["flow"] == PAIRED // replicas
    parts = [list(shard.as_numpy_iterator()) for shard in shards]
    assert [len(p) for p in parts] == [GLOBAL_BATCHES * per_pipeline] * pipelines
    for index, batch in enumerate(want):
        # Replica r of step `index` is part r % per_pipeline of pipeline r // per_pipeline.
        replica_parts = [parts[p][index * per_pipeline + k] for p in range(pipelines) for k in range(per_pipeline)]
        assert_equal(concatenate(replica_parts), batch)


def test_without_a_context_or_with_one_replica_the_global_batches_pass_through():
    want = list(global_batches().as_numpy_iterator())
    for input_context in (None, context(1, 0, 1)):
        got = list(batches.shard(global_batches(), input_context).as_numpy_iterator())
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_equal(g, w)


@pytest.mark.parametrize("batch, paired", [(6, 4), (8, 2)])  # the main batch, or only the paired part
def test_a_batch_that_does_not_divide_among_the_replicas_is_refused(batch, paired):
    with pytest.raises(UserError, match="cannot be split evenly across 4 replicas"):
        batches.shard(global_batches(batch, paired), context(2, 0, 4))


def test_a_batch_of_unknown_size_is_refused():
    dynamic = tf.data.Dataset.range(8).map(lambda i: batches.example({"x": i}, i)).batch(4)  # last batch may be short
    with pytest.raises(UserError, match="cannot be split evenly"):
        batches.shard(dynamic, context(1, 0, 2))
