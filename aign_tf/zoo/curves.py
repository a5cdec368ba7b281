"""Plot held-out learning curves of several models side by side (the paper's Figure 3).

    python -m aign_tf.zoo.curves --model_dir=runs/sfm-aign,runs/sfm-ign \
        --metrics=depth_l1_log,trl_err,photometric_l1 --out=curves.png
    python -m aign_tf.zoo.curves --row="AIGN=runs/aign-s0,runs/aign-s1,runs/aign-s2" --row="IGN=..." \
        --metrics=depth_l1_log,trl_err --out=curves.png

Reads MODEL_DIR/curves.jsonl, written by `train --eval_every=N`: one panel per metric, one line per
model against training steps, named by the last path component of its model dir. Each `--row=LABEL=DIRS`
instead draws one line for a model trained with several seeds: the mean over the dirs at the steps
all of them recorded, shaded +- the sample standard deviation.
"""
from __future__ import annotations

import os

import numpy as np
from absl import flags

from aign_tf import files
from aign_tf.errors import UserError
from aign_tf.zoo import cli, rundir

flags.DEFINE_boolean("log_scale", False, "Logarithmic y axes (diverging curves).")

FLAGS = flags.FLAGS


def over_seeds(runs: list[dict[int, dict[str, float]]], metric: str) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The steps at which every run recorded `metric`, and there the mean over the runs and the sample
    standard deviation (zeros for one run)."""
    steps = sorted(set.intersection(*({s for s, values in by_step.items() if metric in values} for by_step in runs)))
    values = np.array([[by_step[s][metric] for s in steps] for by_step in runs]).reshape(len(runs), len(steps))
    spread = values.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(len(steps))
    return steps, values.mean(axis=0), spread


def plot_curves(curves: dict[str, list[dict[int, dict[str, float]]]], metrics: list[str], out: str,
                log_scale: bool = False) -> None:
    """curves: {line label: [{step: {metric: value}}, one per seed]}; one panel per metric."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for name, runs in curves.items():
            steps, mean, spread = over_seeds(runs, metric)
            line, = axis.plot(steps, mean, label=name if len(runs) == 1 else f"{name} ({len(runs)} seeds)")
            if len(runs) > 1:
                axis.fill_between(steps, mean - spread, mean + spread, color=line.get_color(), alpha=0.2, linewidth=0)
        axis.set_title(metric)
        axis.set_xlabel("training step")
        if log_scale:
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    try:
        with files.replaced(out) as temporary:  # whole or not at all
            figure.savefig(temporary, dpi=110, format=os.path.splitext(out)[1][1:] or "png")
    except OSError as error:
        raise cli.os_error(error, out) from None
    except ValueError as error:  # matplotlib: "Format 'xyz' is not supported"
        raise UserError(f"cannot write {out}: {error}") from None
    finally:
        plt.close(figure)


def main(argv: list[str]) -> None:
    metrics = cli.listed("metrics", "metric")
    if FLAGS.row and FLAGS.model_dir:
        raise UserError("give either --model_dir (a line per dir) or --row=LABEL=DIRS (a line per model over seeds)")
    if FLAGS.row:
        curves = {}
        for text in FLAGS.row:
            label, prefix, dirs = cli.parse_row(text)
            if prefix:
                raise UserError(f"--row={text}: curves take LABEL=DIR1,DIR2,..., without PREFIX@")
            curves[label] = [rundir.read_curves(d) for d in dirs]
    else:
        model_dirs = cli.listed("model_dir", "directory")
        curves = {os.path.basename(os.path.normpath(d)): [rundir.read_curves(d)] for d in model_dirs}
        if len(curves) < len(model_dirs):
            raise UserError("give each model dir a distinct last path component, so that the legend can name it")
    known = {m for runs in curves.values() for by_step in runs for values in by_step.values() for m in values}
    missing = [m for m in metrics if m not in known]
    if missing:
        raise UserError(f"no curve records metric {missing[0]!r}; recorded: {', '.join(sorted(known))}")
    out = FLAGS.out or "curves.png"
    plot_curves(curves, metrics, out, FLAGS.log_scale)
    print(f"wrote {out}")


if __name__ == "__main__":
    cli.run(main)
