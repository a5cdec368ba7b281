"""User mistakes end with one line on stderr and exit status 2; a killed run resumes; no two commands
define the same flag."""
import importlib
import json
import os
import signal
import subprocess
import sys
import time


TINY = ["--steps=6", "--batch_size=8", "--width=8", "--summary_every=2", "--image_every=3", "--checkpoint_every=2"]


def cli(module, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", f"aign_tf.zoo.{module}", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_all_commands_import_into_one_process():
    """absl refuses a flag defined twice; a flag two commands share is defined once, in cli.py."""
    for module in ("zoo.train", "zoo.evaluate", "zoo.benchmark", "zoo.adapt", "zoo.curves", "zoo.compare",
                   "export.__main__", "export.latency"):
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
    }
    for name, (process, expected) in cases.items():
        assert_user_error(process, expected)
    assert json.loads((other / "config.json").read_text())["task"] == "pose3d"  # untouched


def test_resume_after_killed_run_continues_to_steps(tmp_path):
    model_dir = tmp_path / "run"
    checkpoints = model_dir / "checkpoints"
    common = ["--task=inpaint", f"--model_dir={model_dir}", *TINY[1:]]
    first = cli("train", *common, "--steps=1000")
    deadline = time.time() + 200
    while time.time() < deadline and not (checkpoints.exists() and any(p.name.endswith(".index")
                                                                       for p in checkpoints.iterdir())):
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)  # somewhere after its first checkpoint
    first.communicate()
    saved = sorted(int(p.name[len("ckpt-"):-len(".index")]) for p in checkpoints.glob("ckpt-*.index"))
    assert saved, "the first run never wrote a checkpoint"
    target = saved[-1] + 4
    args = [*common, f"--steps={target}"]
    again = cli("train", *args)
    out, err = again.communicate(timeout=240)
    assert again.returncode == 0, err[-3000:]
    assert f"resumed from {checkpoints / f'ckpt-{saved[-1]}'} at step {saved[-1]}" in out, out
    assert f"ckpt-{target}" in open(checkpoints / "checkpoint").read()
    assert os.path.exists(model_dir / "samples" / "latest.png")
    assert any(p.name.startswith("events.out.tfevents") for p in (model_dir / "train").iterdir())
    # The same command once more has nothing left to do.
    done = cli("train", *args)
    out, err = done.communicate(timeout=240)
    assert done.returncode == 0 and f"at step {target}" in out, err[-2000:]
    evaluation = cli("evaluate", "--task=inpaint", f"--model_dir={model_dir}")
    out, err = evaluation.communicate(timeout=240)
    assert evaluation.returncode == 0, err[-2000:]
    assert f"inpaint at step {target}" in out and "hidden_mse" in out
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["step"] == target and set(metrics["metrics"]) >= {"hidden_mse", "completion_accuracy"}
    assert (model_dir / "evaluation.png").exists()
