"""The sfm task: the renderer on true depth and motion, generator heads, flow targets, the depth
prior, regimes, option errors, and a train / evaluate / curves smoke run. Checked against NumPy
written here."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from aign_tf.data import driving
from aign_tf.errors import UserError
from aign_tf.tasks.sfm import MODELS, SfmTask, metrics, model as networks
from aign_tf.zoo import evaluate, registry, rundir, trainer
from tests.numpy_reference import rot_x, rot_y, rot_z
from tests.testing import write_vkitti_variation

TINY = dict(steps=2, batch_size=4, width=4, frame_size="32x96", train_sequences=2, memory_sequences=1,
            test_sequences=1, sequence_frames=4)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("driving"))


@pytest.fixture(scope="module")
def task(data_dir):
    return registry.get_task("sfm", data_dir=data_dir, **TINY)


def test_renderer_with_true_depth_and_motion_reproduces_the_first_frame(task):
    """P(G(x)) with the true factors: frame 2 warped into frame 1 matches it up to occlusions."""
    batch = next(iter(task.eval_dataset()))
    targets = batch["targets"]
    render = task.build_model().render
    true = {"log_depth": targets["log_depth"], "rotation": tf.reshape(targets["motion"][:, :9], [-1, 3, 3]),
            "translation": targets["motion"][:, 9:]}
    size = len(targets["motion"])
    still = {**true, "rotation": tf.eye(3, batch_shape=[size]), "translation": tf.zeros([size, 3])}
    errors = {}
    for name, predictions in (("true", true), ("still", still)):
        rendered, valid = render(predictions, batch["inputs"])
        difference = np.abs(rendered.numpy() - batch["observed"].numpy()) * valid.numpy()
        errors[name] = difference.sum() / (valid.numpy().sum() * 3)
        assert valid.numpy().mean() > 0.6  # most of frame 1 is still in view of frame 2
    assert errors["true"] < 0.03 and errors["true"] < errors["still"] / 2, errors  # 0.024 vs 0.053 measured


def test_flow_targets_are_hand_computed_projections(task):
    """The flow target of a pixel: unproject with its depth, X2 = R X1 + T, project, subtract."""
    batch = next(iter(task.eval_dataset()))
    camera = task.intrinsics
    (fx, fy), (cx, cy) = camera.focal, camera.principal_point
    depth = np.exp(batch["targets"]["log_depth"].numpy()[1, :, :, 0].astype(np.float64))
    motion = batch["targets"]["motion"].numpy()[1].astype(np.float64)
    rotation, translation = motion[:9].reshape(3, 3), motion[9:]
    for row, column in ((5, 7), (20, 50), (31, 95)):
        z = depth[row, column]
        point = rotation @ np.array([(column - cx) / fx * z, (row - cy) / fy * z, z]) + translation
        want = np.array([fx * point[0] / point[2] + cx - column, fy * point[1] / point[2] + cy - row])
        np.testing.assert_allclose(batch["targets"]["flow"].numpy()[1, row, column], want, rtol=1e-3, atol=1e-3)


def test_generator_heads_follow_the_paper_conventions(task):
    camera = task.intrinsics
    generator = networks.generator(camera, 4)
    rng = np.random.default_rng(0)
    inputs = {k: rng.uniform(size=(2, 32, 96, 3)).astype(np.float32) for k in ("image1", "image2")}
    out = {k: v.numpy() for k, v in generator(inputs, training=False).items()}
    assert out["log_depth"].shape == (2, 32, 96, 1) and out["flow"].shape == (2, 32, 96, 2)
    for angles, rotation, motion, translation in zip(out["angles"], out["rotation"], out["motion"], out["translation"]):
        want = rot_x(angles[0]) @ rot_y(angles[1]) @ rot_z(angles[2])  # R = Rx Ry Rz (sec. 2.2)
        np.testing.assert_allclose(rotation, want, atol=1e-6)
        np.testing.assert_allclose(motion, np.concatenate([want.ravel(), translation]), atol=1e-6)
    angles, translation, _, _ = networks.MotionHead()(tf.constant([[20.0, -0.1, 0.0, 1.0, 2.0, -3.0]]))
    np.testing.assert_allclose(angles.numpy()[0], networks.MAX_ANGLE * np.tanh([20.0, -0.1, 0.0]), rtol=1e-6)
    np.testing.assert_allclose(translation.numpy()[0], [1.0, 2.0, -3.0])  # metres, unbounded
    fields = networks.AngleFields(camera.principal_point)(tf.constant([[[[1.0, 1.0]] * 96] * 32])).numpy()
    np.testing.assert_allclose(fields[0, 3, 90], [np.pi / 4, np.arctan2(3 - camera.principal_point[1],
                                                                       90 - camera.principal_point[0])], rtol=1e-6)


def test_depth_smoothness_is_the_mean_absolute_log_depth_gradient():
    log_depth = np.array([[0.0, 1.0, 3.0], [0.0, 0.0, 0.0]], np.float32)[None, ..., None]
    got = networks.depth_smoothness({"log_depth": tf.constant(log_depth)}, {}).numpy()
    np.testing.assert_allclose(got, [(1 + 2 + 0 + 0) / 4 + (0 + 1 + 3) / 3], rtol=1e-6)


def test_depth_critic_scores_patches():
    critic = networks.depth_critic(32, 96, 4)
    assert critic(tf.zeros([2, 32, 96, 1])).shape == (2, 4, 12, 1)


def test_regimes_set_critics_and_loss_weights(data_dir):
    def build(model):
        return registry.get_task("sfm", **{**TINY, "data_dir": data_dir, "model": model}).build_model()

    aign, depth_aign, smooth, ign, pretrain = (build(m) for m in MODELS)
    assert set(aign.critics) == {"log_depth", "motion"} and set(depth_aign.critics) == {"log_depth"}
    assert smooth.critics == {} and ign.critics == {} and pretrain.critics == {}
    # Only smooth-IGN has the depth prior, weighted by --smoothness.
    assert smooth.regularizer_weight == SfmTask.Options().smoothness and "regularizer" in smooth.trackers
    for other in (aign, depth_aign, ign, pretrain):
        assert other.regularizer_weight == 0.0 and "regularizer" not in other.trackers
    predictions = {"log_depth": tf.random.stateless_normal([2, 32, 96, 1], seed=[1, 2])}
    np.testing.assert_array_equal(smooth.regularizer(predictions, {}), networks.depth_smoothness(predictions, {}))
    assert pretrain.reconstruction_weight == 0.0 and ign.reconstruction_weight == 1.0


def test_train_batches_keep_the_streams_apart(task):
    """Inputs are test streets, memories memory streets, paired flow targets training streets."""
    batch = next(iter(task.train_batches()))
    assert set(batch) == {"inputs", "observed", "memories", "paired"}
    assert set(batch["paired"]["targets"]) == {"flow"}  # self-supervised: only the flow network is supervised
    streams = {split: task.pairs(split)["image1"] for split in ("train", "memory", "test")}

    def source(image):
        pixels = np.round(image.numpy() * 255).astype(np.uint8)
        return [split for split, images in streams.items() if (images == pixels).all(axis=(1, 2, 3)).any()]

    assert all(source(image) == ["test"] for image in batch["inputs"]["image1"])
    assert all(source(image) == ["train"] for image in batch["paired"]["inputs"]["image1"])
    memory_depth = np.exp(batch["memories"]["log_depth"].numpy())
    truth = task.pairs("memory")["depth1"]
    assert all(np.isclose(truth, d, rtol=1e-5).all(axis=(1, 2, 3)).any() for d in memory_depth)


@pytest.mark.parametrize("option, value, match", [("model", "sfmlearner", "unknown model 'sfmlearner'"),
                                                  ("model", "nope", "unknown model 'nope'"),
                                                  ("frame_size", "30x100", "multiples of 16"),
                                                  ("frame_size", "60x100", "multiples of 16"),
                                                  ("frame_size", "64by192", "HEIGHTxWIDTH"),
                                                  ("dataset", "cityscapes", "unknown dataset 'cityscapes'")])
def test_bad_options_are_user_errors(option, value, match):
    """Options are checked when the task is configured, before anything is loaded or built."""
    with pytest.raises(UserError, match=match):
        SfmTask.configure(**{**TINY, option: value})


def test_frame_size_is_parsed_once_into_height_and_width():
    options = SfmTask.configure(**TINY).options
    assert options.frame_shape == (32, 96) and options.frame_shape is options.frame_shape


def test_vkitti_needs_its_files(tmp_path):
    with pytest.raises(UserError, match="needs --data_dir"):
        SfmTask.configure(**{**TINY, "dataset": "vkitti"})
    with pytest.raises(UserError, match="vkitti"):
        registry.get_task("sfm", **{**TINY, "dataset": "vkitti", "data_dir": str(tmp_path / "missing")}).train_batches()


def test_each_stream_is_loaded_once_per_task(monkeypatch, data_dir):
    """Training batches, evaluation data and repeated evaluations read one load of each stream; the
    model-free metrics (Farneback's flow, the geometric baseline on it and on the exact flow) are
    computed once."""
    loads, flows = [], []
    load_pairs, classical_flow = driving.load_pairs, metrics.classical_flow
    monkeypatch.setattr(driving, "load_pairs", lambda split, **kw: loads.append(split) or load_pairs(split, **kw))
    monkeypatch.setattr(metrics, "classical_flow", lambda *args: flows.append(1) or classical_flow(*args))
    task = registry.get_task("sfm", data_dir=data_dir, **TINY)
    model = task.build_model()
    next(iter(task.train_batches()))
    next(iter(task.train_batches()))
    first, second = task.evaluate(model), task.evaluate(model)
    assert first == second
    assert sorted(loads) == ["memory", "test", "train"]
    assert len(flows) == TINY["test_sequences"] * (TINY["sequence_frames"] - 1)
    registry.get_task("sfm", data_dir=data_dir, **TINY).pairs("test")  # another task loads its own
    assert sorted(loads) == ["memory", "test", "test", "train"]


def test_train_with_curves_then_evaluate_and_plot(tmp_path, task):
    model_dir = str(tmp_path / "aign")
    logs = trainer.train(task, model_dir, strategy=tf.distribute.get_strategy(), verbose=False,
                         summary_every=1, image_every=2, checkpoint_every=2, eval_every=1)
    assert {"reconstruction", "supervised", "d_loss", "g_adversarial"} <= set(logs)
    curves = rundir.read_curves(model_dir)
    assert list(curves) == [0, 1, 2]
    want = {"trl_err", "rot_err", "trl_mag_err", "trl_ang_err", "depth_l1_log", "depth_abs_rel", "photometric_l1", "in_view",
            "flow_epe_px", "farneback_flow_epe_px", "depth_scale_ratio", "examples", "photometric_l1_truth"}
    want |= {f"{p}/{m}" for p in ("geometric", "geometric_exact_flow", "geometric_farneback")
             for m in ("trl_err", "rot_err", "trl_mag_err", "trl_ang_err")}
    assert set(curves[2]) == want
    assert curves[2]["examples"] == 1 * (TINY["sequence_frames"] - 1)
    assert curves[0] != curves[2]  # the model changed between evaluations

    measured, step = evaluate.evaluate_dir(SfmTask, model_dir, {})
    assert step == 2 and set(measured) == want
    np.testing.assert_allclose(measured["trl_err"], curves[2]["trl_err"], rtol=1e-5)
    # The geometric baseline on exact flow recovers the direction of travel (a property of the
    # data, not of the barely trained model).
    assert measured["geometric_exact_flow/trl_ang_err"] < 0.1
    # The renderer on the true depth and motion nearly reproduces frame 1 (what is left: pixels whose
    # supersampled colour mixes depths, occlusions); the barely trained model's guesses do not.
    assert measured["photometric_l1_truth"] < 0.5 * measured["photometric_l1"]
    with Image.open(f"{model_dir}/evaluation.png") as png:
        assert png.size[1] >= 5 * 32
    with open(f"{model_dir}/metrics.json") as f:
        assert json.load(f)["metrics"]["depth_l1_log"] == measured["depth_l1_log"]

    out = tmp_path / "curves.png"
    subprocess.run([sys.executable, "-m", "aign_tf.zoo.curves", f"--model_dir={model_dir}",
                    "--metrics=depth_l1_log,trl_err,photometric_l1", f"--out={out}"], check=True, capture_output=True)
    with Image.open(out) as png:
        assert png.size[0] > 3 * 300
    missing = subprocess.run([sys.executable, "-m", "aign_tf.zoo.curves", f"--model_dir={model_dir}",
                              "--metrics=mpjpe_mm"], capture_output=True, text=True)
    assert missing.returncode == 2 and "no curve records metric 'mpjpe_mm'" in missing.stderr


def test_pretrain_then_self_supervised_finetuning(tmp_path, task):
    """Table 3's protocol: a supervised model, then the AIGN initialised from its generator."""
    pretrain_dir, finetune_dir = str(tmp_path / "pretrain"), str(tmp_path / "finetune")
    pretrain = SfmTask(task.config.replace(model="pretrain"))
    logs = trainer.train(pretrain, pretrain_dir, strategy=tf.distribute.get_strategy(), verbose=False)
    assert set(logs) >= {"supervised"} and "d_loss" not in logs and logs["supervised"] > 0
    batch = next(iter(pretrain.train_batches()))
    assert set(batch["targets"]) == {"log_depth", "motion", "flow"}  # fully supervised on training streets
    finetune = SfmTask(task.config.replace(gating=False))  # both steps update the generator
    trainer.train(finetune, finetune_dir, strategy=tf.distribute.get_strategy(), verbose=False,
                  init_from=pretrain_dir)
    source, _ = rundir.load_generator(pretrain, pretrain_dir)
    tuned, _ = rundir.load_generator(finetune, finetune_dir)
    depth_head = [v for v in source.generator.weights if v.path.startswith("depth_out")][0]
    tuned_head = [v for v in tuned.generator.weights if v.path == depth_head.path][0]
    assert not np.allclose(depth_head.numpy(), tuned_head.numpy())  # fine-tuned ...
    assert np.abs(depth_head.numpy() - tuned_head.numpy()).max() < 0.01  # ... from the pretrained weights


def test_driving_cache_is_shared_by_the_splits(task, data_dir):
    """Three TFDS configs, one per stream, in the task's data_dir."""
    for split in ("train", "memory", "test"):
        task.pairs(split)
    names = sorted(p.name for p in (pathlib.Path(data_dir) / "driving_world").iterdir())
    assert names == ["32x96_f4_s0_t0_m0_e1", "32x96_f4_s0_t0_m1_e0", "32x96_f4_s0_t2_m0_e0"]


def test_vkitti_streams_follow_the_papers_split(tmp_path):
    """Test inputs from sequence 0001, memories and paired examples from the training sequences
    (read once for both), on files written in the VKITTI 1.3.1 layout."""
    for sequence in ("0001", "0002", "0006", "0018", "0020"):
        write_vkitti_variation(tmp_path, sequence, "clone", 3)
    task = registry.get_task("sfm", **{**TINY, "dataset": "vkitti", "data_dir": str(tmp_path)})
    test, train, memory = (task.pairs(split) for split in ("test", "train", "memory"))
    assert len(test["image1"]) == 2 and len(train["image1"]) == 4 * 2
    assert memory is train
    assert task.intrinsics.focal[0] == pytest.approx(725.0 * 96 / 1242)
