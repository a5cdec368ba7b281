"""The batch: one dict layout for every task, built by `example`, split across replicas by `shard`.

    inputs    what the generator reads: {name: [B, ...]}
    observed  the observation x that the render P(G(x)) must reproduce, [B, ...]
    memories  {factor: [B, ...]} unpaired ground truth, one collection per critic (the M_i);
              training batches of tasks with critics
    targets   {factor: [B, ...]} paired ground truth; read only by the supervised term (and only
              when `supervised_weight > 0`), by `evaluate` and by the image grids
    paired    {"inputs", "targets"}: a separate batch of paired examples for the supervised term,
              where the unpaired inputs above have no ground truth (its own batch size)
    label     [B] class of each image (image tasks; for the judging classifier)
"""
from __future__ import annotations

import tensorflow as tf

from aign_tf.errors import UserError


def example(inputs: dict, observed: tf.Tensor, *, memories: dict | None = None, targets: dict | None = None,
            paired: dict | None = None, label: tf.Tensor | None = None) -> dict:
    """One example (or batch) in the layout above; absent parts are left out."""
    parts = {"inputs": inputs, "observed": observed, "memories": memories, "targets": targets, "paired": paired,
             "label": label}
    return {name: value for name, value in parts.items() if value is not None}


def paired(inputs: dict, targets: dict) -> dict:
    """The `paired` part: examples with their ground truth."""
    return {"inputs": inputs, "targets": targets}


def _parts(batch: dict, first: int, stop: int, count: int) -> dict:
    """Parts first..stop-1 of `count` equal parts of every tensor's batch axis, stacked: [stop - first, B / count, ...]."""
    return tf.nest.map_structure(
        lambda t: tf.reshape(t, [count, t.shape[0] // count, *t.shape[1:]])[first:stop], batch)


def shard(dataset: tf.data.Dataset, input_context: tf.distribute.InputContext | None) -> tf.data.Dataset:
    """The per-replica batches one input pipeline feeds, from a dataset of global batches.

    Global batch g is cut into `num_replicas_in_sync` equal parts along every tensor's batch axis;
    pipeline p yields parts p*k .. p*k + k - 1 of each (k replicas per pipeline). Every replica so
    sees the same examples as under one process with the same global batch, whatever the number of
    workers: the exact-equivalence the multi-worker test checks. (Each pipeline builds the whole
    global batch; these datasets are small enough that this costs little.) Without a context, the
    global batches themselves.
    """
    if input_context is None:
        return dataset
    replicas, pipelines = input_context.num_replicas_in_sync, input_context.num_input_pipelines
    if replicas == 1:
        return dataset
    for spec in tf.nest.flatten(dataset.element_spec):
        size = spec.shape[0]
        if size is None or size % replicas:
            raise UserError(f"a batch part of {size} examples cannot be split evenly across {replicas} replicas; "
                            "choose a --batch_size divisible by the number of replicas")
    per_pipeline = replicas // pipelines
    first = input_context.input_pipeline_id * per_pipeline
    return dataset.flat_map(
        lambda batch: tf.data.Dataset.from_tensor_slices(_parts(batch, first, first + per_pipeline, replicas)))
