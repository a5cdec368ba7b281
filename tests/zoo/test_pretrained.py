"""The shipped models (aign_tf/pretrained) and `predict`: every model of the catalogue is there and
matches its manifest; `evaluate --pretrained` reproduces the shipped metrics; `predict` writes what
its docstring promises for every task and input format, names damaged inputs in one line (or skips
and lists them with --skip_bad); `adapt` and `train` start from shipped models; and no command writes
into a shipped folder."""
import concurrent.futures
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from aign_tf.zoo import models
from tests.testing import folder_pixels

# Shipped metrics are reproduced to this relative tolerance on another machine (CPU kernels differ in
# the last bits); on the machine that made them they are equal.
METRICS_RTOL = 1e-3


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=600, env=env)


def run_all(commands, cache):
    """Runs the commands at once (each imports TensorFlow) with the driving-world cache `cache`; their
    CompletedProcesses, in order."""
    env = {**os.environ, "AIGN_TF_CACHE": str(cache)}
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        return list(pool.map(lambda args: run(*args, env=env), commands))


def shipped_state():
    """{relative path: (size, mtime_ns)} of every file below the shipped models' folder."""
    state = {}
    for root, _, names in os.walk(models.PRETRAINED_DIR):
        for name in names:
            path = os.path.join(root, name)
            state[os.path.relpath(path, models.PRETRAINED_DIR)] = (os.path.getsize(path), os.stat(path).st_mtime_ns)
    return state


def test_every_catalogued_model_ships_and_matches_its_manifest():
    assert models.shipped_names() == list(models.CATALOGUE)
    for name in models.CATALOGUE:
        assert models.check(models.path(name)) == [], name
    listing = run("aign_tf.zoo.models")
    assert listing.returncode == 0 and all(name in listing.stdout for name in models.CATALOGUE), listing.stderr
    assert "total" in listing.stdout
    repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for card in {entry.card for entry in models.CATALOGUE.values()}:  # cards quote the shipped metrics
        with open(os.path.join(repository, card)) as f:
            assert models.card_table(card) in f.read(), f"{card}: python -m aign_tf.zoo.models --card_tables"


def test_a_changed_file_is_caught_by_the_manifest(tmp_path):
    import shutil
    copy = tmp_path / "pose3d-aign"
    shutil.copytree(models.path("pose3d-aign"), copy)
    assert models.check(str(copy)) == []
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    (copy / "extra.txt").write_text("x")
    assert models.check(str(copy)) == ["config.json: changed", "extra.txt: not in the manifest"]


def write_images(folder, count, size, colour=False):
    paths = []
    for index in range(count):
        sub = folder / ("sub" if index % 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"img{index}.{'png' if index % 3 else 'jpg'}"
        Image.fromarray(folder_pixels(index, index, size, colour)).save(path)
        paths.append(path)
    return paths


def test_predict_and_evaluate_on_shipped_models_write_nothing_there(tmp_path):
    before = shipped_state()
    digits = tmp_path / "digits"
    write_images(digits, 5, (40, 40))
    damaged = tmp_path / "damaged"
    write_images(damaged, 3, (28, 28))
    (damaged / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    keypoints = np.random.default_rng(0).uniform(200, 300, (6, 15, 2)).astype(np.float32)
    np.save(tmp_path / "kp.npy", keypoints)
    (tmp_path / "kp.json").write_text(json.dumps({"keypoints": keypoints[:2].tolist()}))
    video = tmp_path / "video"
    video.mkdir()
    for k in range(4):
        Image.fromarray(folder_pixels(k, k, (60, 180), colour=True)).save(video / f"{k:06d}.png")
    (video / "intrinsics.txt").write_text("90 90 89.5 29.5")
    out = tmp_path / "out"
    commands = [
        ("aign_tf.zoo.predict", "--pretrained=inpaint-mnist", f"--input={digits}", f"--output={out / 'inpaint'}",
         "--batch_size=2"),
        ("aign_tf.zoo.predict", "--pretrained=superres-mnist", f"--input={digits / 'img0.jpg'}",
         f"--output={out / 'superres'}"),
        ("aign_tf.zoo.predict", "--pretrained=ablation-renderer", f"--input={damaged}", f"--output={out / 'bad'}"),
        ("aign_tf.zoo.predict", "--pretrained=ablation-renderer", f"--input={damaged}", f"--output={out / 'skip'}",
         "--skip_bad", "--mask=bottom"),
        ("aign_tf.zoo.predict", "--pretrained=pose3d-aign", f"--input={tmp_path / 'kp.npy'}", f"--output={out / 'npy'}"),
        ("aign_tf.zoo.predict", "--pretrained=pose3d-aign", f"--input={tmp_path / 'kp.json'}", f"--output={out / 'json'}"),
        ("aign_tf.zoo.predict", "--pretrained=sfm-pretrain", f"--input={video}", f"--output={out / 'sfm'}"),
        ("aign_tf.zoo.evaluate", "--pretrained=pose3d-forward2d3d,pose3d-aign", f"--out={out / 'metrics'}"),
        ("aign_tf.zoo.evaluate", "--pretrained=pose3d-interpreter"),
        ("aign_tf.zoo.adapt", "--pretrained=pose3d-aign", f"--input={tmp_path / 'kp.npy'}",
         f"--model_dir={out / 'adapt-pose'}", "--steps=2"),
        ("aign_tf.zoo.adapt", "--pretrained=sfm-pretrain", f"--input={video}", f"--model_dir={out / 'adapt-sfm'}",
         "--steps=2", "--model=aign", "--train_sequences=1", "--memory_sequences=1", "--sequence_frames=3"),
        ("aign_tf.zoo.train", "--pretrained=inpaint-mnist", "--steps=2", f"--model_dir={out / 'tuned'}"),
        ("aign_tf.zoo.adapt", "--pretrained=superres-mnist-bias8", f"--input={digits}",
         f"--model_dir={out / 'adapt-superres'}", "--steps=2", "--no_prior"),
    ]
    done = run_all(commands, tmp_path / "cache")
    for index in (0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12):
        assert done[index].returncode == 0, (commands[index], done[index].stderr[-3000:])

    completed = Image.open(out / "inpaint" / "sub" / "img1.png")
    assert completed.size == (28, 28) and (out / "inpaint" / "img0.prediction.png").exists()
    assert sorted(p.name for p in (out / "inpaint").rglob("*.png")) == sorted(
        [f"img{i}.png" for i in range(5)] + [f"img{i}.prediction.png" for i in range(5)])
    assert Image.open(out / "superres" / "img0.png").size == (28, 28)  # 7x7 in, 4x out

    lines = [line for line in done[2].stderr.splitlines() if line.strip()]
    assert done[2].returncode == 2 and lines[-1].startswith("error: ") and "broken.png" in lines[-1]
    assert "Traceback" not in done[2].stderr
    assert "skipped 1 unreadable file(s)" in done[3].stderr and "broken.png" in done[3].stderr
    assert len(list((out / "skip").rglob("*.prediction.png"))) == 3

    npy = np.load(out / "npy" / "predictions.npz")
    assert npy["joints"].shape == (6, 15, 3) and npy["rotation"].shape == (6, 3, 3)
    reprojection = np.linalg.norm(npy["reprojected"] - keypoints, axis=-1).mean(-1)
    np.testing.assert_allclose(npy["reprojection_px"], reprojection, rtol=1e-5)
    from_json = json.loads((out / "json" / "predictions.json").read_text())["poses"]
    np.testing.assert_allclose(np.array([p["joints"] for p in from_json]), npy["joints"][:2], atol=1e-4)

    depth = np.asarray(Image.open(out / "sfm" / "depth" / "000000.png"))
    metres = np.load(out / "sfm" / "depth" / "000000.npy")
    assert depth.dtype == np.uint16 and depth.shape == metres.shape == (32, 96)
    np.testing.assert_allclose(depth / 1000.0, metres, atol=6e-4)
    motion = json.loads((out / "sfm" / "motion.json").read_text())["pairs"]
    trajectory = np.loadtxt(out / "sfm" / "trajectory.txt")
    assert len(motion) == 3 and trajectory.shape == (4, 12)
    np.testing.assert_allclose(trajectory[0], np.eye(4)[:3].reshape(-1), atol=1e-9)

    for name in ("pose3d-forward2d3d", "pose3d-aign"):  # the shipped metrics, reproduced
        shipped = json.loads(open(os.path.join(models.path(name), "metrics.json")).read())["metrics"]
        measured = json.loads((out / "metrics" / name / "metrics.json").read_text())["metrics"]
        assert measured.keys() == shipped.keys()
        for key, value in shipped.items():
            assert measured[key] == pytest.approx(value, rel=METRICS_RTOL), (name, key)
    assert "nothing is written to it" in done[8].stderr

    for name, metric in (("adapt-pose", "reprojection_px"), ("adapt-sfm", "photometric_l1"),  # before / after
                         ("adapt-superres", "prediction_consistency_psnr_db")):
        report = json.loads((out / name / "adaptation.json").read_text())
        assert report["steps"] == 2 and report["before"][metric] != report["after"][metric], name
    assert np.load(out / "adapt-pose" / "predictions.npz")["joints"].shape == (6, 15, 3)
    assert len(list((out / "adapt-sfm" / "depth").glob("*.png"))) == 3 and (out / "adapt-sfm" / "trajectory.txt").exists()
    assert Image.open(out / "adapt-superres" / "sub" / "img1.png").size == (28, 28)
    assert json.loads((out / "adapt-superres" / "config.json").read_text())["beta"] == 0.0  # --no_prior
    assert "no classifier metrics" in done[12].stdout
    tuned = json.loads((out / "tuned" / "runs.jsonl").read_text().splitlines()[0])
    assert tuned["init_from"] == os.path.realpath(models.path("inpaint-mnist"))
    assert "generator initialised from" in done[11].stdout
    assert shipped_state() == before
