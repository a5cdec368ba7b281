"""Typed options, declared once.

Every setting of a run is a field of a frozen dataclass, declared with `option(default, help, ...)`:
the run's hyperparameters in `Config`, each task's own settings in its `Options` subclass. From that
one declaration come the command-line flags (`aign_tf.zoo.cli`), validation (type, choices, minimum,
and a class's own `validate`), `config.json` (`Config.to_dict` / `Config.from_dict`, which fills
defaults for options an older file lacks) and the README's option table (`options_table`).
"""
from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, ClassVar

from aign_tf.core import losses
from aign_tf.errors import UserError, check_choice

PRECISIONS = ("float32", "bfloat16")


def option(default: Any, help: str, *, choices: tuple | None = None, minimum: float | None = None,
           unit: str | None = None, resumable: bool = False) -> Any:
    """A dataclass field that is a user-settable option: its default, one line of help, and the
    values it may take (`choices`, or numbers >= `minimum`); `unit` is shown with the help.
    `resumable`: the option may change when a run resumes in its model dir (`aign_tf.zoo.rundir`)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "minimum": minimum,
                                                        "unit": unit, "resumable": resumable})


def describe(f: dataclasses.Field) -> str:
    """An option's help text with its unit."""
    return f.metadata["help"] + (f" Unit: {f.metadata['unit']}." if f.metadata["unit"] else "")


def _base_type(annotation: Any) -> tuple[type, bool]:
    """(int / float / str / bool, whether None is allowed) of a field's annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return (args[0], True) if args else (annotation, False)


@dataclasses.dataclass(frozen=True)
class Options:
    """A set of options; subclasses declare fields with `option(...)` and may add `validate`."""

    @classmethod
    def option_fields(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if "help" in f.metadata]

    @classmethod
    def field_type(cls, name: str) -> tuple[type, bool]:
        return _base_type(typing.get_type_hints(cls)[name])

    def __post_init__(self) -> None:
        for f in self.option_fields():
            kind, optional = self.field_type(f.name)
            value = getattr(self, f.name)
            if value is None and optional:
                continue
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                object.__setattr__(self, f.name, value)
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                raise UserError(f"option {f.name} must be {kind.__name__}{' or None' if optional else ''}, "
                                f"got {value!r}")
            if f.metadata["choices"] is not None:
                check_choice(f.name.replace("_", " "), value, f.metadata["choices"])
            if f.metadata["minimum"] is not None and value < f.metadata["minimum"]:
                raise UserError(f"--{f.name} must be >= {f.metadata['minimum']:g}, got {value}")
        self.validate()

    def validate(self) -> None:
        """Checks that involve several options (none by default); raises UserError."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in self.option_fields()}

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, what: str = "options") -> "Options":
        """Options from stored or given values; missing ones take their defaults."""
        known = {f.name for f in cls.option_fields()}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"{what} have no option {unknown[0]!r}; the options are {', '.join(sorted(known))}")
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class Config(Options):
    """One training run: the hyperparameters every task has (their defaults are the task's
    `run_defaults`) and the task's own `options`. Stored as model_dir/config.json."""
    task: str = ""
    steps: int = option(3000, "Train until this global step.", minimum=1, resumable=True)
    batch_size: int = option(32, "Global batch size (split across replicas).", minimum=1)
    seed: int = option(0, "Random seed of data splits, shuffling and initialisation.")
    beta: float = option(1.0, "Weight of the adversarial loss against reconstruction (eq. 1).", minimum=0)
    learning_rate: float = option(1e-4, "Adam learning rate for generator and critics.", minimum=0,
                                  resumable=True)
    gan_loss: str = option("logistic", "Adversarial loss: logistic (eq. 1, non-saturating generator loss), "
                           "least_squares or hinge.", choices=tuple(losses.GAN_LOSSES))
    reconstruction: str = option("l2", "Reconstruction error over the elements the renderer keeps: l2 or l1.",
                                 choices=tuple(losses.RECONSTRUCTION_ERRORS))
    gating: bool = option(True, "The supplementary's update gating (theta_d=0.695, theta_g=0.75); "
                          "--nogating updates both networks every step.")
    supervised_weight: float = option(0.0, "Weight of the supervised term on paired targets "
                                      "(0 = the unpaired AIGN).", minimum=0)
    reconstruction_weight: float = option(1.0, "Weight of the reconstruction (render) loss.", minimum=0)
    precision: str = option("float32", "Compute precision of training: float32, or bfloat16 (mixed precision: "
                            "bfloat16 in the networks' layers, float32 weights, geometry, renderers and losses; "
                            "for CPUs with AMX or AVX512-BF16, Ampere and later GPUs). Evaluation and export "
                            "run float32.", choices=PRECISIONS)
    jit_compile: bool = option(False, "Compile the train step with XLA (one replica only). On GPUs it fuses the "
                               "step's many small ops; on CPUs oneDNN's convolutions are faster without it.",
                               resumable=True)
    options: Options = dataclasses.field(default_factory=Options)

    RUN_FIELDS: ClassVar[tuple[str, ...]] = ()  # filled below: the names of the hyperparameters

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, **super().to_dict(), "options": self.options.to_dict()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def replace(self, **changes: Any) -> "Config":
        """This config with hyperparameters and task options changed (None values ignored), validated."""
        changes = {k: v for k, v in changes.items() if v is not None}
        options = {k: changes.pop(k) for k in list(changes) if k not in self.RUN_FIELDS}
        if options:
            names = {f.name for f in self.options.option_fields()}
            unknown = sorted(set(options) - names)
            if unknown:
                raise UserError(f"task {self.task!r} has no option {unknown[0]!r}; its options are "
                                f"{', '.join(sorted(names))}")
            changes["options"] = dataclasses.replace(self.options, **options)
        return dataclasses.replace(self, **changes)


Config.RUN_FIELDS = tuple(f.name for f in Config.option_fields())


def options_table(run_defaults: dict[str, dict[str, Any]], options: dict[str, type[Options]]) -> str:
    """A Markdown table of every option: the hyperparameters with each task's default, then the
    tasks' own options, one row per declaration shared by the tasks that have it. `run_defaults` and
    `options` map task names to what the tasks declare."""
    def default(value):
        return "`none`" if value is None else f"`{str(value).lower() if isinstance(value, bool) else value}`"

    def meaning(f):
        return describe(f).replace("|", "/")

    def defaults(per_task: dict[str, Any]) -> str:
        """'a, b: `1`; c: `2`' grouping the tasks that share a default."""
        groups: dict[str, list[str]] = {}
        for task, value in per_task.items():
            groups.setdefault(default(value), []).append(task)
        return "; ".join(f"{', '.join(tasks)}: {value}" for value, tasks in groups.items())

    lines = ["| option | default | meaning |", "| --- | --- | --- |"]
    for f in Config.option_fields():
        lines.append(f"| `--{f.name}` | {defaults({t: run_defaults[t].get(f.name, f.default) for t in options})} "
                     f"| {meaning(f)} |")
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for task, declared in options.items():
        for f in declared.option_fields():
            rows.setdefault((f.name, meaning(f)), {})[task] = f.default
    for (name, text), per_task in rows.items():
        lines.append(f"| `--{name}` | {defaults(per_task)} | {text} |")
    return "\n".join(lines)
