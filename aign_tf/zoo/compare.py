"""One picture comparing several trained models of a task on the same held-out inputs.

    python -m aign_tf.zoo.compare --task=superres --model_dir=runs/sr-b0,runs/sr-b02,runs/sr-b08 \\
        --output=sweep.png [--shared_rows=input,truth] [--rows=prediction]

Rows, top to bottom: the `--shared_rows` of the task's image grid (from the first model), then the
`--rows` of each model in the order given. Columns are the first `--columns` held-out examples of the
first model's configuration.
"""
from __future__ import annotations

import os

from absl import flags

from aign_tf.errors import UserError
from aign_tf.zoo import cli, pictures, registry, rundir

flags.DEFINE_string("shared_rows", "input,truth", "Rows of the task's image grid shown once, from the first model.")
flags.DEFINE_string("rows", "prediction", "Rows of the task's image grid shown for every model.")
flags.DEFINE_integer("columns", 8, "Held-out examples (columns).")

FLAGS = flags.FLAGS


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def comparison_grid(task_name: str, model_dirs: list[str], shared_rows: list[str], rows: list[str],
                    columns: int = 8):
    """[1, H', W', C] picture: shared rows once, then each model's rows."""
    task_class = registry.task_class(task_name)
    batch, grid_rows = None, {}
    for index, model_dir in enumerate(model_dirs):
        task = task_class(rundir.trained_config(task_class, model_dir))
        model, _ = rundir.load_generator(task, model_dir)
        if batch is None:
            batch = next(iter(task.eval_dataset()))
        grids = task.images(model, batch)
        wanted = (shared_rows if index == 0 else []) + rows
        missing = [name for name in wanted if name not in grids]
        if missing:
            raise UserError(f"{task.name} has no image row {missing[0]!r}; its rows are {', '.join(grids)}")
        for name in wanted:
            grid_rows[name if name in shared_rows and index == 0 else f"{name} ({model_dir})"] = grids[name]
    return pictures.image_grid(grid_rows, columns)


def main(argv: list[str]) -> None:
    output = cli.require("output")
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):  # said before the models are loaded, not after
        raise UserError(f"--output={output}: the directory {directory} does not exist; create it first")
    model_dirs = cli.trained_dirs()
    grid = comparison_grid(cli.task().name, model_dirs, _names(FLAGS.shared_rows), _names(FLAGS.rows),
                           FLAGS.columns)
    try:
        pictures.save_png(output, grid)
    except OSError as error:
        raise cli.os_error(error, output) from None
    except ValueError as error:  # PIL: "unknown file extension"
        raise UserError(f"cannot write {output}: {error}; name a .png file") from None
    print(f"wrote {output}: {grid.shape[2]}x{grid.shape[1]} pixels")


if __name__ == "__main__":
    cli.run(main)
