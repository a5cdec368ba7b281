"""Test-time adaptation command: predictions on a keypoints file, clear errors."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from aign_tf.errors import UserError

from aign_tf.tasks.pose3d import data as pose_data
from aign_tf.zoo import registry, rundir, trainer


def run(*args):
    return subprocess.Popen([sys.executable, "-m", "aign_tf.zoo.adapt", "--task=pose3d", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_adapt_predicts_on_a_keypoints_file_and_rejects_bad_input(tmp_path):
    task = registry.get_task("pose3d", steps=2, batch_size=8, width=4, components=10, generator="mlp",
                             model="forward2d3d", train_cameras=1, test_cameras=1)
    source = tmp_path / "source"
    trainer.train(task, str(source), strategy=tf.distribute.get_strategy(), verbose=False)
    keypoints = task.test_views.keypoints[:5]
    np.savez(tmp_path / "kp.npz", keypoints=keypoints)
    np.savez(tmp_path / "far.npz", keypoints=keypoints * 1e30)
    common = [f"--from_dir={source}", f"--keypoints={tmp_path / 'kp.npz'}"]
    runs = {
        "predict": run(*common, f"--model_dir={tmp_path / 'predicted'}", "--steps=0"),
        "adapt": run(*common, f"--model_dir={tmp_path / 'adapted'}", "--steps=2", "--model=aign"),
        "no loss": run(*common, f"--model_dir={tmp_path / 'x'}", "--steps=2"),
        "far": run(f"--from_dir={source}", f"--keypoints={tmp_path / 'far.npz'}", f"--model_dir={tmp_path / 'z'}",
                   "--steps=2", "--model=aign"),
    }
    results = {name: (p.communicate(timeout=300), p.returncode) for name, p in runs.items()}
    for name in ("predict", "adapt"):
        (out, err), code = results[name]
        assert code == 0, err[-2000:]
        assert "5 predictions" in out
    model, _ = rundir.load_generator(task, str(source))
    want = model({"keypoints": tf.constant(pose_data.normalise(keypoints))})["pose"].numpy()
    predicted = np.load(tmp_path / "predicted" / "predictions.npz")
    pose = predicted["joints"] - predicted["translation"][:, None]  # camera frame -> pelvis at the origin
    np.testing.assert_allclose(pose, want, atol=1e-5)  # --steps=0: the source model as is
    adapted = np.load(tmp_path / "adapted" / "predictions.npz")
    # The adapted generator started from the source's: two Adam steps at lr 1e-4 move each weight by
    # at most ~2e-4, while another initialisation differs by ~1e-2.
    adapted_model, _ = rundir.load_generator(type(task)(task.config.replace(model="aign")), str(tmp_path / "adapted"))
    fresh, _ = trainer.build(type(task)(task.config.replace(seed=1)))
    distance = lambda a, b: max(float(np.abs(x.numpy() - y.numpy()).max())
                                for x, y in zip(a.generator.trainable_variables, b.generator.trainable_variables))
    assert distance(adapted_model, model) < 1e-3 < distance(fresh, model)
    # A generator of another shape is refused.
    with pytest.raises(UserError, match="does not fit"):
        trainer.train(registry.get_task("pose3d", **{**task.options.to_dict(), "width": 8, "steps": 1,
                                                     "batch_size": 8}), str(tmp_path / "mismatch"),
                      strategy=tf.distribute.get_strategy(), init_from=str(source), verbose=False)
    adapted_pose = adapted["joints"] - adapted["translation"][:, None]
    assert adapted_pose.shape == (5, 15, 3) and not np.allclose(adapted_pose, want)
    report = json.loads((tmp_path / "adapted" / "adaptation.json").read_text())
    assert report["steps"] == 2 and report["before"]["reprojection_px"] != report["after"]["reprojection_px"]
    np.testing.assert_allclose(report["after"]["reprojection_px"], adapted["reprojection_px"].mean(), rtol=1e-4)
    # (a keypoint file of another skeleton: tests/zoo/test_pretrained.py)
    for name, expected in (("no loss", "no unsupervised loss"),
                           ("far", f"far.npz has coordinates up to {np.abs(keypoints).max() * 1e30:.3g} px, far "
                                  f"outside a {pose_data.IMAGE_SIZE:g} px image")):
        (out, err), code = results[name]
        last = [l for l in err.splitlines() if l.strip()][-1]
        assert code == 2 and last.startswith("error:") and expected in last, err[-2000:]
