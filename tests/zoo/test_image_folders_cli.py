"""The commands on the user's own images, end to end, on files written here: train and evaluate
with --dataset=folder (class subfolders and --bias) and --dataset=orl (an ORL-layout folder of PGM
photos with an identity --bias), and a folder with damaged files met while training (one line, exit 2).
The three command chains run at once, to share the machine while each imports TensorFlow. (A flat
folder: tests/tasks/test_image_tasks.py.)"""
import concurrent.futures
import json
import subprocess
import sys

import numpy as np

from tests.testing import write_image_folder, write_orl

TINY = ["--batch_size=8", "--width=4", "--summary_every=1", "--image_every=2", "--checkpoint_every=2"]


def command(module, *args):
    return [sys.executable, "-m", f"aign_tf.zoo.{module}", *args]


def run_chain(commands):
    """Runs the commands one after the other, stopping at the first failure; their CompletedProcesses."""
    done = []
    for args in commands:
        done.append(subprocess.run(args, capture_output=True, text=True, timeout=400))
        if done[-1].returncode:
            break
    return done


def test_train_and_evaluate_on_folders_and_orl(tmp_path):
    classes, orl, damaged = (tmp_path / name for name in ("classes", "orl", "damaged"))
    write_image_folder(classes, {"cat": 10, "dog": 10, "owl": 10}, size=(20, 24))  # fitted to 16x16
    write_orl(orl, people=(1, 2, 3), size=(16, 12))
    written = write_image_folder(damaged, {"a": 70, "b": 70}, size=(8, 8))
    for index, path in enumerate(sorted(written)):  # the odd ones: past the channel sample, met while read
        if index % 2:
            raw = open(path, "rb").read()
            open(path, "wb").write(raw[:len(raw) // 2])

    def train_evaluate(task, model_dir, *options):  # (resuming: tests/zoo/test_resume.py, test_preemption.py)
        trained = [*TINY, f"--model_dir={model_dir}", *options]
        return [command("train", f"--task={task}", "--steps=3", *trained),
                command("evaluate", f"--task={task}", f"--model_dir={model_dir}")]

    chains = {
        "folder": train_evaluate("inpaint", tmp_path / "inpaint", "--dataset=folder", f"--data_dir={classes}",
                                 "--bias=dog", "--image_size=16", "--mask=mouth"),
        "orl": train_evaluate("superres", tmp_path / "superres", "--dataset=orl", f"--data_dir={orl}",
                              "--bias=2", "--image_size=16x12", "--blocks=1"),
        "damaged": [command("train", "--task=inpaint", "--steps=2", *TINY, f"--model_dir={tmp_path / 'bad-run'}",
                            "--dataset=folder", f"--data_dir={damaged}", "--image_size=8")],
    }
    with concurrent.futures.ThreadPoolExecutor(len(chains)) as pool:
        results = dict(zip(chains, pool.map(run_chain, chains.values())))

    for name in ("folder", "orl"):
        for done in results[name]:
            assert done.returncode == 0, f"{name}: {done.args[2:4]}\n{done.stderr[-3000:]}"
    folder_train, folder_eval = results["folder"]
    assert f"folder {classes}: 30 images, 3 classes, read as 16x16x1" in folder_train.stdout
    assert "starting from scratch" in folder_train.stdout
    assert "inpaint at step 3" in folder_eval.stdout
    metrics = json.loads((tmp_path / "inpaint" / "metrics.json").read_text())["metrics"]
    assert metrics["examples"] == 3 and {"completion_accuracy", "bias_share_completions"} <= set(metrics)

    orl_train, orl_eval = results["orl"]
    assert f"orl {orl}: 30 images, 3 classes, read as 16x12x1; 10 inputs, 2 test, 10 memories" in orl_train.stdout
    assert "superres at step 3" in orl_eval.stdout
    metrics = json.loads((tmp_path / "superres" / "metrics.json").read_text())["metrics"]
    assert metrics["memories"] == 10 and np.isfinite(metrics["prediction_bias_share"])

    (bad,) = results["damaged"]
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr[-3000:]
    assert lines[-1].startswith(f"error: image file {damaged}") and "is cut short" in lines[-1], lines[-1]
