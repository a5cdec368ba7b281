"""Evaluate a trained model on its task's held-out inputs.

    python -m aign_tf.zoo.evaluate --task=inpaint --model_dir=runs/inpaint [--bias=8]

Prints the task's metrics as a table and writes them to MODEL_DIR/metrics.json, with an image
grid of the first held-out batch in MODEL_DIR/evaluation.png. Task options given
here (e.g. --bias to measure the share of one class) override the stored config for measurement.
"""
from __future__ import annotations

import dataclasses
import datetime
import os

from aign_tf.errors import UserError
from aign_tf.zoo import cli, registry, trainer


def format_table(metrics: dict[str, float]) -> str:
    width = max(len(name) for name in metrics)
    return "\n".join(f"{name:<{width}}  {value:.6g}" for name, value in metrics.items())


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; flags take the form --name=value")
    task = registry.get_task(cli.require("task"))
    model_dir = cli.require("model_dir")
    config = trainer.read_config(model_dir)
    if config is None:
        raise UserError(f"{model_dir} holds no config.json; train first with "
                        f"python -m aign_tf.zoo.train --task={task.name} --model_dir={model_dir}")
    if config.task != task.name:
        raise UserError(f"{model_dir} holds a {config.task!r} model, not {task.name!r}")
    options = cli.overrides(cli.TASK_FLAGS)
    unknown = set(options) - set(config.options)
    if unknown:
        raise UserError(f"task {task.name!r} has no option {sorted(unknown)[0]!r}")
    config = dataclasses.replace(config, options={**config.options, **options})
    model, step = trainer.load_for_inference(task, config, model_dir)
    metrics = task.evaluate(model, config)
    print(f"{task.name} at step {step} ({model_dir})")
    print(format_table(metrics))
    trainer.save_png(os.path.join(model_dir, "evaluation.png"),
                     trainer.image_grid(task.images(model, next(iter(task.eval_data(config))))))
    trainer.write_json(os.path.join(model_dir, "metrics.json"), {
        "task": task.name, "step": step, "date": datetime.date.today().isoformat(),
        "options": config.options, "metrics": metrics})


if __name__ == "__main__":
    cli.run(main)
