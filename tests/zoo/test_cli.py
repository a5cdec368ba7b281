"""User mistakes end with one line on stderr and exit status 2; a killed run resumes; no two commands
define the same flag; every option of every task is a flag of that task only."""
import importlib
import json
import re
import subprocess
import sys

import pytest

from aign_tf.tasks.options import Config
from aign_tf.zoo import registry
from tests.testing import non_default_settings

TINY = ["--steps=6", "--batch_size=8", "--width=8", "--summary_every=2", "--image_every=3", "--checkpoint_every=2"]


def cli(module, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", f"aign_tf.zoo.{module}", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_all_commands_import_into_one_process():
    """absl refuses a flag defined twice; a flag two commands share is defined once, in cli.py."""
    for module in ("zoo.train", "zoo.evaluate", "zoo.benchmark", "zoo.adapt", "zoo.curves", "zoo.compare",
                   "zoo.predict", "zoo.models", "zoo.release", "export.__main__", "export.latency"):
        importlib.import_module(f"aign_tf.{module}")


def assert_user_error(process, expected):
    out, err = process.communicate(timeout=240)
    lines = [l for l in err.splitlines() if l.strip()]
    assert process.returncode == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert [l for l in lines if l.startswith("error:")] == [lines[-1]], err[-2000:]
    assert expected in lines[-1], lines[-1]


def test_user_mistakes_exit_2_with_one_line(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"task": "pose3d", "steps": 1, "batch_size": 1}))
    cases = {  # all started at once: each pays TensorFlow's import time
        "unknown task": (cli("train", "--task=nope"), "unknown task 'nope'"),
        "bad enum flag": (cli("train", "--task=inpaint", "--strategy=bogus"), "--strategy=bogus"),
        "bad integer flag": (cli("train", "--task=inpaint", "--steps=many"), "--steps"),
        "bad mask": (cli("train", "--task=inpaint", f"--model_dir={tmp_path}/m", "--mask=oval", *TINY[:1]),
                     "unknown mask 'oval'"),
        "missing data dir": (cli("train", "--task=inpaint", "--dataset=fashion_mnist",
                                 f"--data_dir={tmp_path}/absent", f"--model_dir={tmp_path}/f"), str(tmp_path / "absent")),
        "other task's model_dir": (cli("train", "--task=inpaint", f"--model_dir={other}"), "holds a 'pose3d' model"),
        "evaluate untrained": (cli("evaluate", "--task=inpaint", f"--model_dir={tmp_path}/none"), "no config.json"),
        "another task's flag": (cli("train", "--task=inpaint", "--frame_size=32x96", f"--model_dir={tmp_path}/g"),
                                "Unknown command line flag 'frame_size'"),
        "another task's flag to evaluate": (cli("evaluate", "--task=superres", "--mask=center",
                                                f"--model_dir={tmp_path}/none"), "Unknown command line flag 'mask'"),
    }
    for name, (process, expected) in cases.items():
        assert_user_error(process, expected)
    assert json.loads((other / "config.json").read_text())["task"] == "pose3d"  # untouched


# Runs cli.run as train.py does, with a main that prints the configuration instead of training.
PRINT_CONFIG = """
from aign_tf.tasks.options import Config
from aign_tf.zoo import cli


def main(argv):
    task_class = cli.task()
    config = task_class.configure(**cli.overrides(Config), **cli.overrides(task_class.Options))
    print("CONFIG " + config.to_json().replace(chr(10), " "))


cli.run(main, hyperparameters=True, options=True)
"""


def flag(name, value):
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no{name}"
    return f"--{name}={value}"


def test_every_option_of_every_task_is_settable_from_the_command_line():
    """Each task's flags are made from its declarations: every hyperparameter and option, set to a
    value other than the task's default, reaches the configuration."""
    settings = {name: non_default_settings(registry.task_class(name)) for name in registry.TASKS}
    runs = {name: subprocess.Popen([sys.executable, "-c", PRINT_CONFIG, f"--task={name}",
                                    *(flag(k, v) for k, v in values.items())],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name, values in settings.items()}
    for name, process in runs.items():
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err[-2000:]
        printed = json.loads([line for line in out.splitlines() if line.startswith("CONFIG ")][0][len("CONFIG "):])
        task_class = registry.task_class(name)
        assert printed == task_class.configure(**settings[name]).to_dict(), name
        for option, value in settings[name].items():
            assert (printed if option in Config.RUN_FIELDS else printed["options"])[option] == value, (name, option)


def test_train_records_a_task_option_set_on_the_command_line(tmp_path):
    model_dir = tmp_path / "pose"
    done = subprocess.run([sys.executable, "-m", "aign_tf.zoo.train", "--task=pose3d", "--train_cameras=2",
                           "--test_cameras=1", "--steps=1", "--batch_size=8", "--width=4", "--generator=mlp",
                           "--components=10", f"--model_dir={model_dir}"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((model_dir / "config.json").read_text())
    assert config["task"] == "pose3d" and config["steps"] == 1 and config["batch_size"] == 8
    assert config["options"]["train_cameras"] == 2 and config["options"]["test_cameras"] == 1
    options = config["options"]
    assert (options["width"], options["generator"], options["components"]) == (4, "mlp", 10)
    default = registry.task_class("pose3d").configure()
    assert config["options"]["model"] == default.options.model and config["beta"] == default.beta  # the rest: defaults


def test_helpfull_lists_the_tasks_own_flags_with_their_help():
    inpaint = registry.task_class("inpaint")
    done = subprocess.run([sys.executable, "-m", "aign_tf.zoo.train", "--task=inpaint", "--helpfull"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr[-2000:]  # absl's help exits 1
    blocks, name = {}, None  # flag name -> its help text, one line
    for line in done.stdout.splitlines():
        match = re.match(r"^  --(?:\[no\])?(\w+): ?(.*)$", line)  # absl: "  --name: help", booleans "--[no]name"
        if match:
            name = match[1]
            blocks[name] = match[2].strip()
        elif line.startswith("    ") and name is not None and not line.strip().startswith("("):  # not "(a number)"
            blocks[name] += " " + line.strip()
        else:
            name = None
    mask = next(f for f in inpaint.Options.option_fields() if f.name == "mask")
    assert mask.metadata["help"] in blocks["mask"] and "Default: center." in blocks["mask"], blocks.get("mask")
    for field in (*Config.option_fields(), *inpaint.Options.option_fields()):
        assert field.name in blocks, field.name
    assert "Default: 0.02." in blocks["beta"]  # the task's own default of a hyperparameter
    assert "frame_size" not in blocks and "train_cameras" not in blocks  # other tasks' options


@pytest.mark.parametrize("command", ["train", "benchmark"])
def test_an_unknown_task_is_named_before_its_flags_are_refused(command):
    """With an unknown --task, no task flags are defined; the one line names the task, not a flag."""
    assert_user_error(cli(command, "--task=nope", "--steps=3", "--mask=center"),
                      "unknown task 'nope'; choose one of decoder_ablation, inpaint, pose3d, sfm, superres")
