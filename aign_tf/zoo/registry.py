"""Task name -> module defining `TASK`. Adding a task is one module plus one line here."""
from __future__ import annotations

import importlib

from aign_tf.errors import UserError
from aign_tf.tasks.base import Task

TASKS = {
    "inpaint": "aign_tf.tasks.inpaint",
    "superres": "aign_tf.tasks.superres",
    "decoder_ablation": "aign_tf.tasks.decoder_ablation",
    "pose3d": "aign_tf.tasks.pose3d",
    "sfm": "aign_tf.tasks.sfm",
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; choose one of {', '.join(sorted(TASKS))}")
    return importlib.import_module(TASKS[name]).TASK
