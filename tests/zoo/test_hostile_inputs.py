"""Issue 15: every expected failure (a full or read-only disk, a path under a file, a corrupt or cut file,
two exports racing) ends with one line and exit status 2, and leaves no partial output behind.

A full disk is provoked four ways: a real one (a small tmpfs filled to the brim: train, evaluate, export,
then a resume once there is room; skipped where a tmpfs cannot be mounted), RLIMIT_FSIZE in a subprocess
(the kernel then fails writes with EFBIG, "File too large", as it fails them with ENOSPC on a full disk;
needs no privilege), a directory where a file is to be written (EISDIR on the final rename), and an
OSError(ENOSPC) raised by a monkeypatched writer in-process. (The tests run as root, which ignores
read-only permissions.)
"""
import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import types

import pytest
import tensorflow as tf

from aign_tf import files
from aign_tf.errors import UserError
from aign_tf.export import latency, saved_model, tflite
from aign_tf.zoo import cli, curves, evaluate, registry, rundir, trainer
from tests.testing import checkpointed


def command(module, *args, file_size_limit=None):
    """`python -m aign_tf.MODULE ARGS`, started now; with `file_size_limit` no file may grow past
    that many bytes (a write beyond fails with EFBIG, as on a full disk)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # no .pyc cut short by the limit for later runs
    return subprocess.Popen([sys.executable, "-m", f"aign_tf.{module}", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=limit if file_size_limit else None)


def finish(process, status, expected):
    """(stdout, stderr lines) of `process`, which ended with `status`; with status 2 its last line is
    its only 'error:' line and contains `expected`."""
    out, err = process.communicate(timeout=300)
    lines = [line for line in err.splitlines() if line.strip()]
    assert process.returncode == status, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in lines if line.startswith("error:")]
    if status == 2:
        assert errors == [lines[-1]] and expected in lines[-1], err[-3000:]
    else:
        assert not errors, err[-3000:]
    return out, lines


def leftovers(directory):
    """Hidden temporary files and directories (files.replaced, export staging) under `directory`."""
    return sorted(name for _, dirs, names in os.walk(directory) for name in dirs + names
                  if name.startswith(".") and name != ".lock")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A model dir with config.json and one checkpoint of a tiny inpaint model; the caches its
    evaluation needs (images, classifier) are written first, so that a command run on a full disk
    fails where the test expects it, not at a cache that another test would have written."""
    model_dir = str(tmp_path_factory.mktemp("tiny") / "inpaint")
    task, _ = checkpointed("inpaint", model_dir)
    assert task.judge is not None
    return model_dir


def copy_of(tiny_model, directory):
    shutil.copytree(tiny_model, directory)
    return str(directory)


# -- the commands, each in a subprocess (all started at once: each pays TensorFlow's import time) ----

def test_commands_end_with_one_line_when_they_cannot_write(tiny_model, tmp_path):
    picture_blocked = copy_of(tiny_model, tmp_path / "a")
    os.mkdir(os.path.join(picture_blocked, "evaluation.png"))  # the picture cannot take its name
    metrics_blocked = copy_of(tiny_model, tmp_path / "b")
    os.mkdir(os.path.join(metrics_blocked, "metrics.json"))
    full = copy_of(tiny_model, tmp_path / "full")
    (tmp_path / "a_file").write_text("not a directory")
    runs = {
        "two dirs": command("zoo.evaluate", "--task=inpaint", f"--model_dir={picture_blocked},{metrics_blocked}"),
        "disk full": command("zoo.evaluate", "--task=inpaint", f"--model_dir={full}", file_size_limit=200),
        "no model dir": command("zoo.evaluate", "--task=inpaint", "--model_dir=,"),
        "compare": command("zoo.compare", "--task=inpaint", f"--model_dir={tiny_model}",
                           f"--output={tmp_path}/missing_dir/x.png"),
        "train": command("zoo.train", "--task=inpaint", f"--model_dir={tmp_path}/train", "--steps=2",
                         "--batch_size=4", "--width=4", "--summary_every=100", "--image_every=100",
                         file_size_limit=3000),  # config.json fits; the checkpoint does not
        "export under a file": command("export", "--task=inpaint", f"--model_dir={tiny_model}",
                                       f"--out={tmp_path}/a_file"),
        "export disk full": command("export", "--task=inpaint", f"--model_dir={tiny_model}",
                                    f"--out={tmp_path}/exports", file_size_limit=20000),  # the variables do not fit
    }

    # Two model dirs: the table first; a picture that cannot be written is a warning, the metrics.json
    # that cannot be written the one error line.
    out, lines = finish(runs["two dirs"], 2, f"cannot write {metrics_blocked}/metrics.json: Is a directory")
    assert out.splitlines()[2].split() == ["a", "b"] and "hidden_mse" in out, out
    assert f"warning: cannot write {picture_blocked}/evaluation.png: Is a directory" in "\n".join(lines)
    assert json.load(open(os.path.join(picture_blocked, "metrics.json")))["metrics"]["hidden_mse"] > 0
    assert os.path.isfile(os.path.join(metrics_blocked, "evaluation.png"))
    assert leftovers(picture_blocked) == leftovers(metrics_blocked) == []

    out, lines = finish(runs["disk full"], 2, f"cannot write {full}/metrics.json: File too large")
    assert "hidden_mse" in out  # printed before the write failed
    assert f"warning: cannot write {full}/evaluation.png: File too large" in "\n".join(lines)
    assert sorted(os.listdir(full)) == ["checkpoints", "config.json"]  # nothing partial, no temporaries

    finish(runs["no model dir"], 2, "--model_dir=, names no directory")
    finish(runs["compare"], 2, f"the directory {tmp_path}/missing_dir does not exist")
    finish(runs["train"], 2, f"cannot write {tmp_path}/train/checkpoints/ckpt-2: File too large")
    finish(runs["export under a file"], 2, f"cannot access {tmp_path}/a_file/inpaint: Not a directory")
    finish(runs["export disk full"], 2, f"cannot write {tmp_path}/exports/inpaint/1: File too large")
    assert os.listdir(tmp_path / "exports" / "inpaint") == []  # the staging directory is gone


# -- config.json and curves.jsonl that are not what they should be -----------------------------------

@pytest.mark.parametrize("name, content, expected", [
    ("null options", {"task": "inpaint", "options": None}, "its options are None, not an object"),
    ("string batch size", {"task": "inpaint", "batch_size": "8"}, "option batch_size must be int, got '8'"),
    ("a list", [1, 2], "is not a valid aign_tf config"),
    ("a directory", None, "is not a valid aign_tf config (Is a directory)"),
])
def test_a_bad_config_json_is_one_line_naming_it(tmp_path, name, content, expected):
    path = tmp_path / "config.json"
    if content is None:
        path.mkdir()
    else:
        path.write_text(json.dumps(content))
    with pytest.raises(UserError, match=".*") as raised:
        rundir.read_config(str(tmp_path))
    message = str(raised.value)
    assert str(path) in message and expected in message and "\n" not in message, message


def test_a_model_dir_that_is_a_file_is_named(tmp_path):
    (tmp_path / "run").write_text("x")
    with pytest.raises(UserError, match=f"--model_dir={tmp_path}/run is a file, not a directory"):
        rundir.read_config(str(tmp_path / "run"))
    with pytest.raises(UserError, match="is a file, not a directory"):
        rundir.trained_config(registry.task_class("inpaint"), str(tmp_path / "run"))


def test_a_binary_line_of_curves_jsonl_is_skipped_like_a_cut_one(tmp_path):
    (tmp_path / "curves.jsonl").write_bytes(b'{"step": 1, "loss": 0.5}\n\xff\xfe\x00garbage\n5\n[1]\n'
                                            b'{"step": 2, "loss": 0.25}\n{"step": 3, "lo')
    assert rundir.read_curves(str(tmp_path)) == {1: {"loss": 0.5}, 2: {"loss": 0.25}}


def test_curves_to_a_missing_directory_is_one_line(tmp_path):
    with pytest.raises(UserError, match=f"cannot write {tmp_path}/missing/c.png: No such file or directory"):
        curves.plot_curves({"a": [{1: {"loss": 0.5}}]}, ["loss"], str(tmp_path / "missing" / "c.png"))
    with pytest.raises(UserError, match="cannot write .*c.xyz: Format 'xyz' is not supported"):
        curves.plot_curves({"a": [{1: {"loss": 0.5}}]}, ["loss"], str(tmp_path / "c.xyz"))
    assert os.listdir(tmp_path) == []


# -- the one line of an OSError or a TensorFlow write error ------------------------------------------

def test_os_errors_are_one_line_naming_the_file():
    full = OSError(errno.ENOSPC, "No space left on device", "/x/.metrics-ab_3k9z1.tmp.json")
    assert str(cli.os_error(full)) == "cannot write /x/metrics.json: No space left on device"  # not the temporary
    assert str(cli.os_error(full, "/x/evaluation.png")) == "cannot write /x/evaluation.png: No space left on device"
    assert str(cli.os_error(NotADirectoryError(errno.ENOTDIR, "Not a directory", "/f/inpaint"))) == \
        "cannot access /f/inpaint: Not a directory"
    saving = tf.errors.ResourceExhaustedError(None, None, "{{function_node __wrapped__SaveV2}} /r/checkpoints/"
                                              "ckpt-7_temp/part-00000-of-00001.data.tempstate123; No space left "
                                              "on device [Op:SaveV2]")
    assert str(cli.op_error(saving)) == "cannot write /r/checkpoints/ckpt-7: No space left on device"


def test_evaluation_picture_that_cannot_be_written_is_a_warning(tmp_path, monkeypatch, capsys):
    from PIL import Image

    def no_space(image, path, *args, **kwargs):  # the disk fills up halfway through the PNG
        with open(path, "wb") as f:
            f.write(b"half a png")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", no_space)
    evaluate.write_picture(str(tmp_path), {"input": tf.zeros([2, 4, 4, 1])})
    assert capsys.readouterr().err.strip() == (f"warning: cannot write {tmp_path}/evaluation.png: No space left on "
                                               "device; the metrics are not affected")
    assert os.listdir(tmp_path) == []  # neither the half picture nor its temporary

    monkeypatch.setattr(files, "write_json", lambda path, payload: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device", path)))
    task = registry.get_task("inpaint", batch_size=4, width=4)
    with pytest.raises(UserError, match=f"cannot write {tmp_path}/metrics.json: No space left on device"):
        evaluate.write_metrics(task, str(tmp_path), {"loss": 1.0}, 3)


# -- exports ---------------------------------------------------------------------------------------

def test_two_exports_of_one_version_at_once(tiny_model, tmp_path, monkeypatch):
    """The other export renames its version into place between this one's check and its rename."""
    rename = os.rename

    def other_export_first(source, target):
        os.makedirs(target)
        open(os.path.join(target, "saved_model.pb"), "w").close()
        rename(source, target)

    monkeypatch.setattr(os, "rename", other_export_first)
    with pytest.raises(UserError, match="version 1 .* was written by another export meanwhile; run again"):
        saved_model.export(registry.task_class("inpaint"), tiny_model, str(tmp_path))
    assert os.listdir(tmp_path / "inpaint") == ["1"]  # the staging directory is gone
    assert os.listdir(tmp_path / "inpaint" / "1") == ["saved_model.pb"]  # the other export's, untouched


def test_an_export_that_cannot_be_written_leaves_nothing(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "write_json", lambda path, payload: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device", path)))
    with pytest.raises(UserError, match=f"cannot write {tmp_path}/inpaint/1: No space left on device"):
        saved_model.export(registry.task_class("inpaint"), tiny_model, str(tmp_path))
    assert os.listdir(tmp_path / "inpaint") == []


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    return saved_model.export(registry.task_class("inpaint"), tiny_model, str(tmp_path_factory.mktemp("out")),
                              with_tflite=True)


@pytest.mark.parametrize("name", ["export.json", "saved_model.pb", tflite.FILENAME])
def test_latency_of_an_export_with_a_cut_file_is_one_line(exported, tmp_path, name):
    export_dir = shutil.copytree(exported, tmp_path / "1")
    path = export_dir / name
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    with pytest.raises(UserError, match=".*") as raised:
        latency.measure(str(export_dir), "serving_default", [1], repeats=1, warmup=0)
    message = str(raised.value)
    assert str(path) in message and "export again" in message and "\n" not in message, message


def test_latency_command_on_a_cut_export_json(exported, tmp_path):
    export_dir = shutil.copytree(exported, tmp_path / "1")
    (export_dir / "export.json").write_text('{"signatures": {"serving_')
    finish(command("export.latency", f"--export={export_dir}", "--repeats=1"), 2,
           f"{export_dir}/export.json does not read back")


# -- divergence at the very first step -------------------------------------------------------------

def test_divergence_at_the_first_step_points_at_the_inputs():
    manager = types.SimpleNamespace(latest_checkpoint=None)
    first = str(trainer.diverged(1, "reconstruction is inf", manager))
    assert "training diverged at step 1: reconstruction is inf" in first
    assert "check that the inputs (keypoints, images) are finite and in range; if they are, lower " \
           "--learning_rate or --beta and run again" in first
    later = str(trainer.diverged(5, "reconstruction is nan", manager))
    assert later.endswith("(none yet): lower --learning_rate or --beta and run again") and "inputs" not in later


# -- a real full disk: a 16 MiB tmpfs filled to the brim (needs the privilege to mount one) ------------

TRAIN = ["zoo.train", "--task=inpaint", "--batch_size=8", "--width=8", "--checkpoint_every=1", "--summary_every=1",
         "--image_every=100"]


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True,
                             text=True) if shutil.which("mount") else None
    if mounted is None or mounted.returncode != 0:
        reason = mounted.stderr.strip() if mounted is not None else "no mount command"
        pytest.skip(f"cannot mount a tmpfs here ({reason}); the RLIMIT_FSIZE cases above stand in")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk, leave=0):
    """Fills `disk` with one file until at most `leave` bytes are free."""
    stat = os.statvfs(disk)
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(stat.f_bavail * stat.f_frsize - leave, 0))


def test_a_full_disk_ends_each_command_in_one_line_and_training_resumes_after(small_disk):
    run = small_disk / "run"
    finish(command(*TRAIN, "--steps=1", f"--model_dir={run}"), 0, None)
    checkpoint = (run / "checkpoints" / "ckpt-1.data-00000-of-00001").stat().st_size

    fill(small_disk, leave=checkpoint // 2)  # room for the run's small files, not for a checkpoint
    finish(command(*TRAIN, "--steps=3", f"--model_dir={run}"), 2,
           f"cannot write {run}/checkpoints/ckpt-2: No space left on device")
    assert rundir.latest_checkpoint(str(run)).endswith("ckpt-1")

    os.remove(small_disk / "filler")
    fill(small_disk)
    metrics = (run / "metrics.json")
    evaluating = command("zoo.evaluate", "--task=inpaint", f"--model_dir={run}")
    exporting = command("export", "--task=inpaint", f"--model_dir={run}", f"--out={small_disk / 'export'}")
    out, _ = finish(evaluating, 2, f"cannot write {metrics}: No space left on device")
    assert "render_mse" in out  # the table came out before the files failed
    finish(exporting, 2, "No space left on device")
    assert not metrics.exists() and not (small_disk / "export" / "inpaint" / "1").exists()
    assert leftovers(small_disk) == []

    os.remove(small_disk / "filler")
    out, _ = finish(command(*TRAIN, "--steps=3", f"--model_dir={run}"), 0, None)
    assert "resumed from" in out and "ckpt-1 at step 1" in out
    assert rundir.latest_checkpoint(str(run)).endswith("ckpt-3")
    assert not list((run / "checkpoints").glob("*_temp*"))
