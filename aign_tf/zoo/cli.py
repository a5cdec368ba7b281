"""Flags shared by the commands, the task's own flags, and error handling.

A task's flags are made from its declarations (`aign_tf.tasks.options`): `run(main, ...)` reads
`--task` from the command line first and defines that task's flags, the hyperparameters (`--steps`,
`--beta`, ...) and its options (`--mask`, `--train_cameras`, ...), each with its help text and the
task's default. They default to None here, so that only what the user sets overrides the task's
defaults (or a stored config). A flag that the task does not have is refused by absl.
"""
from __future__ import annotations

import errno
import os
import re
import sys
from typing import Any, Callable

import tensorflow as tf
from absl import app, flags

from aign_tf import files
from aign_tf.errors import UserError, raised_in_graph
from aign_tf.tasks.base import Task
from aign_tf.tasks.options import Config, Options, describe
from aign_tf.zoo import models, registry

FLAGS = flags.FLAGS

flags.DEFINE_string("task", None, f"Task name: {', '.join(registry.TASKS)}.")
flags.DEFINE_string("model_dir", None, "Directory for checkpoints, config, TensorBoard logs and metrics.")
flags.DEFINE_string("pretrained", None, "A trained model shipped with aign_tf, read instead of a model dir "
                    "(python -m aign_tf.zoo.models lists them; comma-separated for evaluate and compare); it "
                    "implies its --task.")
flags.DEFINE_string("output", None, "What a command writes: compare's PNG file, predict's folder (made if needed).")
flags.DEFINE_string("metrics", None, "Comma-separated metric names: curves' panels (one each), seeds' columns.")
flags.DEFINE_string("out", None, "Where a command writes: benchmark's JSON file (default: none), curves' PNG "
                    "(default curves.png), export's base directory (OUT/TASK/VERSION), evaluate's OUT/NAME folder "
                    "per model (default: the model dir itself; shipped models only with --out).")

flags.DEFINE_multi_string("row", [], "LABEL=DIR1,DIR2,...: one model trained with several seeds (repeat the flag "
                          "for more): seeds' table rows (LABEL=PREFIX@DIRS reads metrics PREFIX + METRIC), curves' "
                          "lines.")

DEFINE = {bool: flags.DEFINE_boolean, int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string}


def _define(declared: type[Options], defaults: dict[str, Any], names: tuple[str, ...] | None = None) -> None:
    for field in declared.option_fields():
        if names is not None and field.name not in names:
            continue
        kind, _ = declared.field_type(field.name)
        DEFINE[kind](field.name, None, f"{describe(field)} Default: {defaults.get(field.name, field.default)}.")


def _flag_in(argv: list[str], name: str) -> str | None:
    """The value of --name in argv (absl's --name=VALUE or --name VALUE), before absl parses it."""
    for index, arg in enumerate(argv):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
        if arg == f"--{name}" and index + 1 < len(argv):
            return argv[index + 1]
    return None


def _task_named(task_flag: str | None, pretrained_flag: str | None) -> str | None:
    """The task named by the values of --task and --pretrained: --task, else the first shipped model's."""
    first = (pretrained_flag or "").split(",")[0]
    return task_flag or (models.CATALOGUE[first].task if first in models.CATALOGUE else None)


def _task_named_in(argv: list[str]) -> str | None:
    """The task that argv names (`_task_named`), before absl parses it."""
    return _task_named(_flag_in(argv, "task"), _flag_in(argv, "pretrained"))


def define_task_flags(task: type[Task], hyperparameters: bool | tuple[str, ...], options: bool) -> None:
    """Defines the flags of `task`: its hyperparameters (all, or those named) and its options."""
    if hyperparameters:
        _define(Config, task.run_defaults, None if hyperparameters is True else hyperparameters)
    if options:
        _define(task.Options, {})


def task() -> type[Task]:
    """The class of the task named by --task (or by the --pretrained models)."""
    name = _task_named(FLAGS.task, FLAGS.pretrained)
    if not name:
        raise UserError("--task is required (or --pretrained=NAME, a shipped model)")
    return registry.task_class(name)


def pretrained_dirs() -> list[str]:
    """The shipped folders of the --pretrained models (none without the flag), all of --task's task."""
    names = [name for name in (FLAGS.pretrained or "").split(",") if name]
    folders = [models.path(name) for name in names]
    other = [name for name in names if models.CATALOGUE[name].task != task().name]
    if other:
        raise UserError(f"--pretrained={','.join(other)} is not a {task().name} model; give models of one task")
    return folders


def trained_dirs(flag: str = "model_dir") -> list[str]:
    """The trained models to read: the comma-separated dirs of --flag, then the --pretrained folders."""
    given = FLAGS[flag].value
    dirs = (listed(flag, "directory") if given else []) + pretrained_dirs()
    if not dirs:
        raise UserError(f"--{flag} or --pretrained is required: a trained model dir, or a shipped model "
                        "(python -m aign_tf.zoo.models lists them)")
    return dirs


def trained_dir(flag: str = "model_dir") -> str:
    """The one trained model to read: the dir of --flag or the --pretrained folder."""
    dirs = trained_dirs(flag)
    if len(dirs) > 1:
        raise UserError(f"give one trained model: --{flag}=DIR or --pretrained=NAME, not {len(dirs)}")
    return dirs[0]


def overrides(declared: type[Options]) -> dict[str, Any]:
    """The flags of `declared`'s options that the user set."""
    return {f.name: FLAGS[f.name].value for f in declared.option_fields()
            if f.name in FLAGS and FLAGS[f.name].present}


def require(name: str) -> str:
    value = FLAGS[name].value
    if not value:
        raise UserError(f"--{name} is required")
    return value


def listed(name: str, what: str) -> list[str]:
    """The comma-separated entries of the required flag --name (e.g. several model dirs); at least one."""
    entries = [entry for entry in require(name).split(",") if entry]
    if not entries:
        raise UserError(f"--{name}={FLAGS[name].value} names no {what}; give one or more, comma-separated")
    return entries


def parse_row(text: str) -> tuple[str, str, list[str]]:
    """(label, metric prefix, dirs) of one --row value."""
    label, sep, rest = text.partition("=")
    prefix, _, dirs = rest.rpartition("@")
    dirs = [d for d in dirs.split(",") if d]
    if not sep or not label or not dirs:
        raise UserError(f"--row={text} is not LABEL=DIR1,DIR2,... (or LABEL=PREFIX@DIR1,DIR2,...)")
    return label, prefix, dirs


def _exit_with(error: Exception) -> None:
    """One line on stderr, exit status 2: how every user mistake ends."""
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def op_error(error: tf.errors.OpError) -> UserError:
    """One line for TensorFlow's failed write: 'cannot write /run/checkpoints/ckpt-2: File too large'."""
    line = re.sub(r"^\{\{[^}]*\}\}\s*", "", error.message.strip().splitlines()[0])  # {{function_node ...}}
    writing = any(text in line for text in ("Save", "Write", "_temp/", "tempstate"))
    line = re.sub(r"\s*\[Op:\w+\]$", "", line)
    line = re.sub(r"_temp/[^;]*;", ":", line)  # ckpt-2_temp/part-...tempstate123; -> ckpt-2:
    return UserError(f"cannot {'write' if writing else 'access'} {line}")


def os_error(error: OSError, writing: str | None = None) -> UserError:
    """One line for an OSError: 'cannot write PATH: No space left on device'. `writing`: the file
    being written (else the error's own file; a temporary file of `files.replaced` is named as its target)."""
    path = writing or str(error.filename or "")
    match = re.match(r"^\.(.+)-\w{8}\.tmp(\.\w+)?$", os.path.basename(path))
    if match:
        path = os.path.join(os.path.dirname(path), match[1] + (match[2] or ""))
    doing = "write" if writing or error.errno in _NO_ROOM else "access"
    return UserError(f"cannot {doing} {path or 'a file'}: {error.strerror or error}")


def _parse(argv: list[str]) -> list[str]:
    try:
        return FLAGS(argv)
    except flags.Error as error:
        _exit_with(error)


def run(main: Callable[[list[str]], None], *, hyperparameters: bool | tuple[str, ...] = False,
        options: bool = False) -> None:
    """absl `app.run` with the named task's flags defined first (see the module docstring); flag errors
    and `UserError` end with one line on stderr and status 2."""
    name = _task_named_in(sys.argv)
    if name is not None and (hyperparameters or options):
        try:
            define_task_flags(registry.task_class(name), hyperparameters, options)
        except UserError as error:  # an unknown task: say so before absl refuses its flags
            _exit_with(error)

    def guarded(argv):
        try:
            if len(argv) > 1:
                raise UserError(f"unexpected arguments {argv[1:]}; flags take the form --name=value")
            main(argv)
        except KeyboardInterrupt:  # Ctrl-C where a command does not handle it itself: one line, status 130
            print("interrupted (SIGINT)", file=sys.stderr)
            sys.exit(130)
        except UserError as error:
            _exit_with(error)
        except OSError as error:  # a full or read-only disk, a path under a file, ...
            _exit_with(os_error(error))
        except tf.errors.OpError as error:  # TensorFlow's own writes (checkpoints, summaries)
            quoted = raised_in_graph(error)  # a damaged image file met while a dataset was read
            if quoted is not None:
                _exit_with(quoted)
            if files.write_failure(error) is None:
                raise
            _exit_with(op_error(error))

    app.run(guarded, flags_parser=_parse)
