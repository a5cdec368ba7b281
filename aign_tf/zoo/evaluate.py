"""Evaluate trained models on their task's held-out inputs.

    python -m aign_tf.zoo.evaluate --task=inpaint --model_dir=runs/inpaint [--bias=8]
    python -m aign_tf.zoo.evaluate --task=pose3d --model_dir=runs/f2d3d,runs/interp,runs/aign

Prints the task's metrics as a table (one column per model dir, side by side) and writes each
model's metrics to MODEL_DIR/metrics.json, with an image grid of the first held-out batch in
MODEL_DIR/evaluation.png. Task options given here (e.g. --bias to measure the share of one class)
override the stored config for measurement. The table is printed before anything is written: a
picture that cannot be written (a full or read-only disk) is a warning, a metrics.json one error line.
"""
from __future__ import annotations

import datetime
import os
import sys

from aign_tf import files
from aign_tf.errors import UserError
from aign_tf.tasks.base import Task
from aign_tf.zoo import cli, pictures, rundir


def format_table(metrics: dict[str, float], columns: dict[str, dict[str, float]] | None = None) -> str:
    """Rows of `metrics` (name, value); or with `columns` ({column: metrics}) one column each."""
    columns = columns or {"": metrics}
    names = list(dict.fromkeys(name for values in columns.values() for name in values))
    width = max(len(name) for name in names)
    cells = {c: [f"{values[n]:.6g}" if n in values else "-" for n in names] for c, values in columns.items()}
    widths = {c: max([len(c)] + [len(v) for v in cells[c]]) for c in columns}
    lines = [" ".join([" " * width] + [c.rjust(widths[c]) for c in columns])] if len(columns) > 1 else []
    for i, name in enumerate(names):
        lines.append(" ".join([name.ljust(width)] + [cells[c][i].rjust(widths[c]) for c in columns]).rstrip())
    return "\n".join(lines)


def measure_dir(task_class: type[Task], model_dir: str, options: dict) -> tuple[Task, dict[str, float], int, dict]:
    """(task, metrics, step, image grid rows) of model_dir's latest checkpoint (its stored options,
    `options` overriding them); writes nothing."""
    task = task_class(rundir.trained_config(task_class, model_dir).replace(**options))
    model, step = rundir.load_generator(task, model_dir)
    metrics = task.evaluate(model)
    grids = task.images(model, next(iter(task.eval_dataset())))
    return task, metrics, step, grids


def write_metrics(task: Task, model_dir: str, metrics: dict[str, float], step: int) -> None:
    """MODEL_DIR/metrics.json; an OSError (a full or read-only disk) becomes one UserError line."""
    path = os.path.join(model_dir, "metrics.json")
    try:
        files.write_json(path, {"task": task.name, "step": step, "date": datetime.date.today().isoformat(),
                                "options": task.options.to_dict(), "metrics": metrics})
    except OSError as error:
        raise cli.os_error(error, path) from None


def write_picture(model_dir: str, grids: dict) -> None:
    """MODEL_DIR/evaluation.png, whole or not at all; one that cannot be written is a warning only."""
    if not grids:
        return
    path = os.path.join(model_dir, "evaluation.png")
    try:
        pictures.save_png(path, pictures.image_grid(grids))
    except OSError as error:
        print(f"warning: {cli.os_error(error, path)}; the metrics are not affected", file=sys.stderr)


def evaluate_dir(task_class: type[Task], model_dir: str, options: dict) -> tuple[dict[str, float], int]:
    """Evaluates model_dir's latest checkpoint (its stored options, `options` overriding them);
    writes metrics.json and evaluation.png there."""
    task, metrics, step, grids = measure_dir(task_class, model_dir, options)
    write_metrics(task, model_dir, metrics, step)
    write_picture(model_dir, grids)
    return metrics, step


def main(argv: list[str]) -> None:
    task = cli.task()
    model_dirs = cli.listed("model_dir", "directory")
    options = cli.overrides(task.Options)
    if len({os.path.basename(os.path.normpath(d)) for d in model_dirs}) < len(model_dirs):
        raise UserError("give each model dir a distinct last path component, so that the table can name it")
    measured = {model_dir: measure_dir(task, model_dir, options) for model_dir in model_dirs}
    columns = {}
    for model_dir, (_, metrics, step, _) in measured.items():
        print(f"{task.name} at step {step} ({model_dir})")
        columns[os.path.basename(os.path.normpath(model_dir))] = metrics
    print(format_table(next(iter(columns.values())), columns if len(columns) > 1 else None), flush=True)
    failures = []  # the table is out; each dir's files are written, or the first failure is the one line
    for model_dir, (bound, metrics, step, grids) in measured.items():
        try:
            write_metrics(bound, model_dir, metrics, step)
        except UserError as error:
            failures.append(error)
        write_picture(model_dir, grids)
    if failures:
        more = f" (and {len(failures) - 1} more model dir(s))" if len(failures) > 1 else ""
        raise UserError(f"{failures[0]}{more}; the table above is complete")


if __name__ == "__main__":
    cli.run(main, options=True)
