"""Plot held-out learning curves of several models side by side (the paper's Figure 3).

    python -m aign_tf.zoo.curves --model_dir=runs/sfm-aign,runs/sfm-ign \
        --metrics=depth_l1_log,trl_err,photometric_l1 --out=curves.png

Reads MODEL_DIR/curves.jsonl, written by `train --eval_every=N`: one panel per metric, one line per
model (named by the last path component of its model dir), against training steps.
"""
from __future__ import annotations

import os

from absl import flags

from aign_tf import files
from aign_tf.errors import UserError
from aign_tf.zoo import cli, rundir

flags.DEFINE_boolean("log_scale", False, "Logarithmic y axes (diverging curves).")

FLAGS = flags.FLAGS


def plot_curves(curves: dict[str, dict[int, dict[str, float]]], metrics: list[str], out: str,
                log_scale: bool = False) -> None:
    """curves: {model name: {step: {metric: value}}}; one panel per metric."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for name, by_step in curves.items():
            steps = [s for s, values in by_step.items() if metric in values]
            axis.plot(steps, [by_step[s][metric] for s in steps], label=name)
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
    model_dirs, metrics = cli.listed("model_dir", "directory"), cli.listed("metrics", "metric")
    curves = {os.path.basename(os.path.normpath(d)): rundir.read_curves(d) for d in model_dirs}
    if len(curves) < len(model_dirs):
        raise UserError("give each model dir a distinct last path component, so that the legend can name it")
    known = {m for by_step in curves.values() for values in by_step.values() for m in values}
    missing = [m for m in metrics if m not in known]
    if missing:
        raise UserError(f"no curve records metric {missing[0]!r}; recorded: {', '.join(sorted(known))}")
    out = FLAGS.out or "curves.png"
    plot_curves(curves, metrics, out, FLAGS.log_scale)
    print(f"wrote {out}")


if __name__ == "__main__":
    cli.run(main)
