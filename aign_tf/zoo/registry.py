"""Task name -> its `Task` class. Adding a task is one module plus one line here."""
from __future__ import annotations

import importlib

from aign_tf.errors import UserError
from aign_tf.tasks import options
from aign_tf.tasks.base import Task

TASKS = {
    "inpaint": "aign_tf.tasks.inpaint:InpaintTask",
    "superres": "aign_tf.tasks.superres:SuperresTask",
    "decoder_ablation": "aign_tf.tasks.decoder_ablation:DecoderAblationTask",
    "pose3d": "aign_tf.tasks.pose3d:PoseTask",
    "sfm": "aign_tf.tasks.sfm:SfmTask",
}


def task_class(name: str) -> type[Task]:
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; choose one of {', '.join(sorted(TASKS))}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get_task(name: str, **overrides) -> Task:
    """Task `name` bound to its paper configuration with `overrides` (hyperparameters or options)."""
    cls = task_class(name)
    return cls(cls.configure(**overrides))


def options_table() -> str:
    """The README's table of every task's hyperparameters and options, from their declarations."""
    classes = {name: task_class(name) for name in TASKS}
    return options.options_table({name: c.run_defaults for name, c in classes.items()}, {name: c.Options for name, c in classes.items()})
