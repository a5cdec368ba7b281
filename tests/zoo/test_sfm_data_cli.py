"""The commands on real video without depth, end to end, on files written here: train, resume and evaluate
with --dataset=frames (the IGN; photometric error only), train and evaluate with --dataset=kitti (the
AIGN; camera errors, no depth metrics). The two chains run at
once, to share the machine while each imports TensorFlow; each has its own driving-world cache.
(Damaged files: tests/data/test_kitti.py.)"""
import concurrent.futures
import json
import os
import subprocess
import sys

from tests.testing import write_frames_folder, write_kitti_raw

TINY = ["--task=sfm", "--frame_size=32x64", "--train_sequences=1", "--memory_sequences=1", "--sequence_frames=3",
        "--batch_size=2", "--width=4", "--summary_every=1", "--image_every=2", "--checkpoint_every=2"]


def run_chain(commands, cache):
    """Runs `python -m aign_tf.zoo.MODULE ARGS` for each (MODULE, ARGS) in turn with the driving-world cache
    `cache`, stopping at the first failure; their CompletedProcesses."""
    done = []
    for module, args in commands:
        done.append(subprocess.run([sys.executable, "-m", f"aign_tf.zoo.{module}", *args], capture_output=True,
                                   text=True, timeout=400, env={**os.environ, "AIGN_TF_CACHE": str(cache)}))
        if done[-1].returncode:
            break
    return done


def test_train_resume_and_evaluate_on_frames_and_kitti(tmp_path):
    write_frames_folder(tmp_path / "frames", count=4)
    write_kitti_raw(tmp_path / "kitti", frames=4)

    def train_evaluate(dataset, model, steps, *more):
        model_dir = tmp_path / f"run-{dataset}"
        trained = [*TINY, f"--model_dir={model_dir}", f"--dataset={dataset}", f"--data_dir={tmp_path / dataset}",
                   f"--model={model}"]
        return [("train", [f"--steps={step}", *trained, *more]) for step in steps] + [
            ("evaluate", ["--task=sfm", f"--model_dir={model_dir}", *(["--out", str(tmp_path / "out")] if more else [])])]

    # frames: the driving world's streams in towns 1 and 4, and evaluate's files in --out, not in the model dir
    chains = {"frames": train_evaluate("frames", "ign", (2, 3), "--train_towns=1,4"),  # trains, resumes
              "kitti": train_evaluate("kitti", "aign", (3,))}
    with concurrent.futures.ThreadPoolExecutor(len(chains)) as pool:
        futures = {name: pool.submit(run_chain, chain, tmp_path / f"cache-{name}") for name, chain in chains.items()}
    results = {name: future.result() for name, future in futures.items()}

    for name, chain in chains.items():
        assert len(results[name]) == len(chain)
        for done in results[name]:
            assert done.returncode == 0, f"{name}: {done.args[2:4]}\n{done.stderr[-3000:]}"
        train, evaluate = results[name][0], results[name][-1]
        assert f"{name} {tmp_path / name}: 3 pairs of 1 sequence(s) at 32x64, the test stream" in train.stdout
        assert "starting from scratch" in train.stdout
        assert "sfm at step 3" in evaluate.stdout
    resume = results["frames"][1]
    assert f"resumed from {tmp_path / 'run-frames' / 'checkpoints' / 'ckpt-2'} at step 2" in resume.stdout

    assert not (tmp_path / "run-frames" / "metrics.json").exists()
    assert json.loads((tmp_path / "run-frames" / "config.json").read_text())["options"]["train_towns"] == "1,4"
    assert sorted(os.listdir(tmp_path / "cache-frames" / "tfds" / "driving_world")) == [
        "32x64_f3_s0_t0_m1_e0_w1-4", "32x64_f3_s0_t1_m0_e0_w1-4"]
    frames_metrics = json.loads((tmp_path / "out" / "run-frames" / "metrics.json").read_text())["metrics"]
    assert set(frames_metrics) == {"photometric_l1", "in_view", "examples"} and frames_metrics["examples"] == 3
    assert "evaluate reports the photometric error only" in results["frames"][-1].stdout
    kitti_metrics = json.loads((tmp_path / "run-kitti" / "metrics.json").read_text())["metrics"]
    assert {"trl_err", "rot_err", "photometric_l1", "geometric_farneback/trl_err"} <= set(kitti_metrics)
    assert not {"depth_l1_log", "depth_abs_rel", "flow_epe_px", "depth_scale_ratio"} & set(kitti_metrics)
    assert "no true depth: evaluate reports camera errors" in results["kitti"][-1].stdout
