"""Evaluate trained models on their task's held-out inputs.

    python -m aign_tf.zoo.evaluate --task=inpaint --model_dir=runs/inpaint [--bias=8]
    python -m aign_tf.zoo.evaluate --task=pose3d --model_dir=runs/f2d3d,runs/interp,runs/aign
    python -m aign_tf.zoo.evaluate --pretrained=pose3d-forward2d3d,pose3d-aign [--out=DIR]

Prints the task's metrics as a table (one column per model dir, side by side), then its per-group
metrics (named METRIC/GROUP: pose3d's per-clip or per-action errors) as tables in the layout of the
paper's Tables 1-2 (a row per model, a column per group, the overall value as "Average"), and writes
each model's metrics to MODEL_DIR/metrics.json, with an image grid of the first held-out batch in
MODEL_DIR/evaluation.png, or to OUT/NAME/ with --out=DIR; a shipped model (`--pretrained`) is never
written to: its files go to OUT/NAME/ with --out, else nowhere. Task options given here (e.g. --bias to
measure the share of one class, sfm's --test_towns to measure on other towns) override the stored config
for measurement (give --out to keep the model dir's own metrics.json). The table is printed before anything is written: a
picture that cannot be written (a full or read-only disk) is a warning, a metrics.json one error line.
"""
from __future__ import annotations

import datetime
import os
import sys

from aign_tf import files
from aign_tf.errors import UserError
from aign_tf.tasks.base import Task
from aign_tf.zoo import cli, models, pictures, rundir


def _cell(values: dict[str, float], name: str) -> str:
    return f"{values[name]:.6g}" if name in values else "-"


def _aligned(rows: list[list[str]]) -> str:
    """Rows of cells as text: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(" ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]).rstrip()
                     for row in rows)


def format_table(metrics: dict[str, float], columns: dict[str, dict[str, float]] | None = None) -> str:
    """Rows of `metrics` (name, value); or with `columns` ({column: metrics}) one column each."""
    columns = columns or {"": metrics}
    names = list(dict.fromkeys(name for values in columns.values() for name in values))
    header = [[""] + list(columns)] if len(columns) > 1 else []
    return _aligned(header + [[name] + [_cell(values, name) for values in columns.values()] for name in names])


def group_tables(columns: dict[str, dict[str, float]]) -> str:
    """The metrics named METRIC/GROUP of `columns` ({model: metrics}) as the paper's Tables 1-2 lay them
    out: one table per METRIC, a row per model, a column per GROUP (in order of appearance) and METRIC's
    own value (the mean over all examples) as "Average". Empty without such metrics."""
    named = [name.split("/", 1) for values in columns.values() for name in values if "/" in name]
    tables = []
    for metric in dict.fromkeys(metric for metric, _ in named):
        groups = list(dict.fromkeys(group for m, group in named if m == metric))
        rows = [[metric, *groups, "Average"]]
        rows += [[model, *(_cell(values, f"{metric}/{g}") for g in groups), _cell(values, metric)]
                 for model, values in columns.items()]
        tables.append(_aligned(rows))
    return "\n\n".join(tables)


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


def output_dir(model_dir: str) -> str | None:
    """Where the files of model_dir's evaluation go: OUT/NAME with --out (made if needed; for an evaluation
    with other options, which would replace the model dir's own metrics.json), else model_dir itself, but
    for a shipped model nowhere (said on stderr)."""
    name = os.path.basename(os.path.normpath(model_dir))
    if not cli.FLAGS.out and not models.is_shipped(model_dir):
        return model_dir
    if not cli.FLAGS.out:
        print(f"note: {name} is a shipped model, nothing is written to it; --out=DIR writes its metrics.json and "
              "evaluation.png to DIR/" + name, file=sys.stderr)
        return None
    target = os.path.join(cli.FLAGS.out, name)
    os.makedirs(target, exist_ok=True)
    return target


def main(argv: list[str]) -> None:
    task = cli.task()
    model_dirs = cli.trained_dirs()
    options = cli.overrides(task.Options)
    if len({os.path.basename(os.path.normpath(d)) for d in model_dirs}) < len(model_dirs):
        raise UserError("give each model dir a distinct last path component, so that the table can name it")
    measured = {model_dir: measure_dir(task, model_dir, options) for model_dir in model_dirs}
    columns = {}
    for model_dir, (_, metrics, step, _) in measured.items():
        print(f"{task.name} at step {step} ({model_dir})")
        columns[os.path.basename(os.path.normpath(model_dir))] = metrics
    overall = {model: {k: v for k, v in metrics.items() if "/" not in k} for model, metrics in columns.items()}
    print(format_table(next(iter(overall.values())), overall if len(overall) > 1 else None), flush=True)
    tables = group_tables(columns)
    if tables:
        print(f"\n{tables}", flush=True)
    failures = []  # the table is out; each dir's files are written, or the first failure is the one line
    for model_dir, (bound, metrics, step, grids) in measured.items():
        target = output_dir(model_dir)
        if target is None:
            continue
        try:
            write_metrics(bound, target, metrics, step)
        except UserError as error:
            failures.append(error)
        write_picture(target, grids)
    if failures:
        more = f" (and {len(failures) - 1} more model dir(s))" if len(failures) > 1 else ""
        raise UserError(f"{failures[0]}{more}; the table above is complete")


if __name__ == "__main__":
    cli.run(main, options=True)
