"""Means and spreads over seeds: the numbers that a model card discusses.

    python -m aign_tf.zoo.seeds --metrics=trl_err,rot_err,depth_l1_log \\
        --row="Pretrain=runs/pre-s0,runs/pre-s1,runs/pre-s2" \\
        --row="Geometric baseline=geometric/@runs/pre-s0,runs/pre-s1,runs/pre-s2" \\
        --ratio="Pret.+SelfSup/Pretrain" [--out=zoo/sfm-shift-seeds.json]

Each `--row` is LABEL=DIRS: the model dirs (or `evaluate --out` folders) of one model trained with
several seeds, comma-separated, whose metrics.json `python -m aign_tf.zoo.evaluate` wrote; LABEL=PREFIX@DIRS
reads the metrics PREFIX + METRIC instead (e.g. an evaluation's geometric/ baseline). Prints a Markdown
table, a row per label, a column per metric: the mean ± the sample standard deviation over the dirs
(one value where they agree, "-" where a file lacks the metric). Each `--ratio=A/B` prints, per metric,
the ratio of row A to row B seed by seed (the dirs paired in order), with its mean and spread. `--out`
writes all of it as JSON: {"rows": {label: {metric: {"mean", "sd", "per_seed", "dirs"}}},
"ratios": {"A/B": {metric: {"mean", "sd", "per_seed"}}}}.
"""
from __future__ import annotations

import json
import os

import numpy as np
from absl import flags

from aign_tf import files
from aign_tf.errors import UserError
from aign_tf.zoo import cli

flags.DEFINE_multi_string("ratio", [], "A/B: row A over row B per seed, for every metric.")

FLAGS = flags.FLAGS


def read_metrics(model_dir: str) -> dict[str, float]:
    path = os.path.join(model_dir, "metrics.json")
    try:
        with open(path) as f:
            return json.load(f)["metrics"]
    except FileNotFoundError:
        raise UserError(f"{path} does not exist: run python -m aign_tf.zoo.evaluate on {model_dir} first") from None
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path} is not a metrics file written by python -m aign_tf.zoo.evaluate") from None


def summary(values: list[float]) -> dict:
    array = np.asarray(values, np.float64)
    return {"mean": float(array.mean()), "sd": float(array.std(ddof=1)) if len(array) > 1 else 0.0,
            "per_seed": [float(v) for v in values]}


def cell(entry: dict | None) -> str:
    if entry is None:
        return "-"
    if len(set(entry["per_seed"])) == 1:
        return f"{entry['mean']:.4g}"
    return f"{entry['mean']:.4g} ± {entry['sd']:.2g}"


def aggregate(rows: list[tuple[str, str, list[str]]], metrics: list[str], ratios: list[str]) -> dict:
    """The JSON of the module docstring."""
    table: dict[str, dict] = {}
    for label, prefix, dirs in rows:
        measured = [read_metrics(d) for d in dirs]
        table[label] = {m: {**summary([values[prefix + m] for values in measured]), "dirs": dirs}
                        for m in metrics if all(prefix + m in values for values in measured)}
    result = {"rows": table, "ratios": {}}
    for ratio in ratios:
        top, sep, bottom = ratio.partition("/")
        if not sep or top not in table or bottom not in table:
            raise UserError(f"--ratio={ratio} is not A/B with A and B labels of --row values ({', '.join(table)})")
        result["ratios"][ratio] = {}
        for m in metrics:
            if m in table[top] and m in table[bottom]:
                a, b = table[top][m]["per_seed"], table[bottom][m]["per_seed"]
                if len(a) != len(b):
                    raise UserError(f"--ratio={ratio}: the rows have {len(a)} and {len(b)} seeds; give them the same")
                result["ratios"][ratio][m] = summary([x / y for x, y in zip(a, b)])
    return result


def markdown(result: dict, metrics: list[str]) -> str:
    lines = ["| model | " + " | ".join(metrics) + " |", "| --- |" + " ---: |" * len(metrics)]
    for label, entries in result["rows"].items():
        lines.append(f"| {label} | " + " | ".join(cell(entries.get(m)) for m in metrics) + " |")
    for ratio, entries in result["ratios"].items():
        lines.append("")
        lines.extend(f"{ratio}, {m}: {cell(entry)} (per seed {', '.join(f'{v:.3g}' for v in entry['per_seed'])})"
                     for m, entry in entries.items())
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    metrics = cli.listed("metrics", "metric")
    if not FLAGS.row:
        raise UserError("give at least one --row=LABEL=DIR1,DIR2,...")
    result = aggregate([cli.parse_row(text) for text in FLAGS.row], metrics, FLAGS.ratio)
    print(markdown(result, metrics))
    if FLAGS.out:
        files.write_json(FLAGS.out, result)
        print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    cli.run(main)
