"""Tiny untrained models of every task, checkpointed as training leaves them and exported once per
test session (with TFLite) under one export base: {task: OUT/TASK/1}."""
import os

import pytest
import tensorflow as tf

from aign_tf.export import saved_model
from aign_tf.zoo import registry, trainer

TINY = {
    "inpaint": dict(batch_size=4, width=4),
    "superres": dict(batch_size=4, width=4, blocks=1),
    "decoder_ablation": dict(batch_size=4, width=4, hidden=16),
    "pose3d": dict(batch_size=4, width=4, components=10, generator="mlp"),
    "sfm": dict(batch_size=2, width=4, frame_size="32x96"),
}


def checkpointed(task_name: str, model_dir: str, **overrides) -> tuple:
    """Writes config.json and one checkpoint of a freshly built tiny model; returns (task, model)."""
    task = registry.get_task(task_name)
    config = task.config(**{**TINY[task_name], **overrides})
    os.makedirs(model_dir, exist_ok=True)
    trainer.write_config(model_dir, config)
    model, checkpoint = trainer.build(task, config)
    tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, "checkpoints"), max_to_keep=1).save(1)
    return task, model


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """{task name: (version dir, the Keras model that was exported)}."""
    root = tmp_path_factory.mktemp("exports")
    result = {}
    for name in TINY:
        task, model = checkpointed(name, str(root / "models" / name))
        result[name] = (saved_model.export(task, str(root / "models" / name), str(root / "out"), with_tflite=True),
                        model)
    return result
