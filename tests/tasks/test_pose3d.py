"""The pose3d task: camera views, eq. (2) on generator outputs, canonical memories, the clip split,
the regimes, and a train / evaluate smoke run. Checked against NumPy written here."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from aign_tf.data import deepmimic
from aign_tf.errors import UserError
from aign_tf.render import camera
from aign_tf.tasks.pose3d import PoseTask, data, model as networks, skeleton
from aign_tf.zoo import registry, rundir, trainer
from tests.numpy_reference import rot_x as _rx, rot_y as _ry, rot_z as _rz

TINY = dict(steps=2, batch_size=8, width=4, components=10, generator="mlp", train_cameras=1, test_cameras=1)
PELVIS, RIGHT_HIP, LEFT_HIP, NECK, LEFT_SHOULDER = 0, 1, 4, 7, 9
HALF = data.IMAGE_SIZE / 2


def _kabsch(source, target):
    """The rotation R (det +1) minimising |R source - target|, for [J, 3] point sets."""
    u, _, vt = np.linalg.svd(target.T @ source)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1, 1, d]) @ vt


def _fit_camera(pose, pixels):
    """Least-squares pinhole (f, t_x, t_y, t_z, residual px) with pixels = f (pose + t)_xy / (pose + t)_z + 256.

    Linear in (f, f t_x, f t_y, t_z): u' Z = f X + f t_x - u' t_z, v' Z = f Y + f t_y - v' t_z."""
    pose, uv = np.asarray(pose, np.float64), np.asarray(pixels, np.float64) - HALF
    x, y, z = pose[:, 0], pose[:, 1], pose[:, 2]
    zeros, ones = np.zeros_like(x), np.ones_like(x)
    a = np.concatenate([np.stack([x, ones, zeros, -uv[:, 0]], -1), np.stack([y, zeros, ones, -uv[:, 1]], -1)])
    b = np.concatenate([uv[:, 0] * z, uv[:, 1] * z])
    (f, ftx, fty, tz), *_ = np.linalg.lstsq(a, b, rcond=None)
    points = pose + np.array([ftx / f, fty / f, tz])
    residual = np.abs(f * points[:, :2] / points[:, 2:] + HALF - np.asarray(pixels, np.float64)).max()
    return f, ftx / f, fty / f, tz, residual


def _all_canonical():
    """Every clip's frames, converted to y-down and torso-aligned here (not with the task's split)."""
    return {name: skeleton.align_torso(clip.joints * np.array([1.0, -1.0, -1.0]))
            for name, clip in deepmimic.load_clips().items()}


def _nearest(skeletons, bank):
    """For each [J, 3] skeleton, (index into bank, max abs coordinate difference) of its nearest match."""
    flat = np.reshape(skeletons, (len(skeletons), -1)).astype(np.float64)
    bank = np.reshape(bank, (len(bank), -1)).astype(np.float64)
    squared = (flat ** 2).sum(-1)[:, None] + (bank ** 2).sum(-1)[None, :] - 2 * flat @ bank.T
    index = squared.argmin(-1)
    return index, np.abs(flat - bank[index]).max(-1)


def _assert_canonical(shapes, atol=1e-5):
    """Pelvis at the origin, hip vector along +x, spine (neck -> pelvis) in the xy plane pointing down."""
    np.testing.assert_allclose(shapes[:, PELVIS], 0, atol=atol)
    hip = shapes[:, LEFT_HIP] - shapes[:, RIGHT_HIP]
    np.testing.assert_allclose(hip[:, 1:], 0, atol=atol)
    assert np.all(hip[:, 0] > 0.05)
    spine = shapes[:, PELVIS] - shapes[:, NECK]
    np.testing.assert_allclose(spine[:, 2], 0, atol=atol)
    assert np.all(spine[:, 1] > 0.1)


def _tiny(**overrides):
    """The pose3d task, tiny, with `overrides`."""
    return registry.get_task("pose3d", **{**TINY, **overrides})


@pytest.fixture(scope="module")
def task():
    return _tiny()


@pytest.fixture(scope="module")
def canonical():
    return _all_canonical()


@pytest.fixture(scope="module")
def full_batch():
    """One batch larger than every stream: it holds all memories, paired and unpaired examples."""
    return tf.nest.map_structure(lambda t: t.numpy(), next(iter(_tiny(batch_size=1024).train_batches())))


# ---- 1. data.views: cameras and projection ----

def _view_rotation(elevation, azimuth):
    """The rotation `data.views` gives a camera: `camera.rotation_xyz` of (elevation, azimuth, 0)."""
    elevation, azimuth = np.asarray(elevation, np.float64), np.asarray(azimuth, np.float64)
    return camera.rotation_xyz(np.stack([elevation, azimuth, np.zeros_like(elevation)], -1)).numpy()


def test_view_rotations_are_rx_elevation_times_ry_azimuth():
    rotation = _view_rotation(np.radians([30.0]), np.radians([90.0]))[0]
    c, s = np.sqrt(3) / 2, 0.5
    np.testing.assert_allclose(rotation, [[0, 0, 1], [s, c, 0], [-c, s, 0]], atol=1e-12)
    e, a = np.array([0.3, -0.1]), np.array([2.0, 5.5])
    np.testing.assert_allclose(_view_rotation(e, a), [_rx(e[i]) @ _ry(a[i]) for i in range(2)], atol=1e-12)


def test_fixed_camera_projects_rotated_canonical_skeleton_by_eq2(canonical):
    clips = {"walk": canonical["walk"][:5].astype(np.float32), "run": canonical["run"][:3].astype(np.float32)}
    fixed = data.Cameras(elevation_deg=(0, 0), distance_m=(5, 5), focal_px=(500, 500), offset_m=(0, 0))
    views = data.views(clips, 2, seed=3, cameras=fixed)
    assert views.keypoints.shape == (16, 15, 2) and views.pose.shape == (16, 15, 3)
    assert list(views.clip) == ["walk"] * 10 + ["run"] * 6
    np.testing.assert_array_equal(views.canonical, np.concatenate([np.repeat(c, 2, 0) for c in clips.values()]))
    pose = views.pose.astype(np.float64)
    want = 500 * pose[..., :2] / (pose[..., 2:] + 5) + 256
    np.testing.assert_allclose(views.keypoints, want, atol=1e-3)
    # Elevation 0: pose = Ry(azimuth) canonical, the azimuth read off the hip vector (along +x canonically).
    hip = pose[:, LEFT_HIP] - pose[:, RIGHT_HIP]
    azimuth = np.arctan2(-hip[:, 2], hip[:, 0])
    rotated = np.stack([views.canonical[i] @ _ry(azimuth[i]).T for i in range(len(pose))])
    np.testing.assert_allclose(pose, rotated, atol=1e-5)
    assert np.ptp(azimuth) > 0.5  # the azimuth is sampled, not fixed
    np.testing.assert_array_equal(data.views(clips, 2, seed=3, cameras=fixed).keypoints, views.keypoints)


def test_random_cameras_are_pinholes_within_the_ranges(canonical):
    clips = {"kick": canonical["kick"][::4].astype(np.float32)}
    views = data.views(clips, 3, seed=1)
    ranges = data.Cameras()
    elevations = []
    for pose, pixels, shape in zip(views.pose, views.keypoints, views.canonical):
        f, tx, ty, tz, residual = _fit_camera(pose, pixels)
        assert residual < 0.05, residual
        assert 400 - 1 <= f <= 900 + 1 and 3.5 - 0.01 <= tz <= 6.5 + 0.01
        assert abs(tx) <= 0.3 + 1e-3 and abs(ty) <= 0.2 + 1e-3
        rotation = _kabsch(shape.astype(np.float64), pose.astype(np.float64))
        np.testing.assert_allclose(shape @ rotation.T, pose, atol=1e-5)  # pose = R canonical, pelvis at 0
        # R = Rx(e) Ry(a) maps the canonical y axis to (0, cos e, sin e) whatever the azimuth.
        assert abs(rotation[0, 1]) < 1e-4
        elevations.append(np.degrees(np.arctan2(rotation[2, 1], rotation[1, 1])))
    assert ranges.elevation_deg[0] - 0.01 <= min(elevations) and max(elevations) <= ranges.elevation_deg[1] + 0.01
    noisy = data.views(clips, 3, seed=1, noise_px=2.0)
    np.testing.assert_array_equal(noisy.pose, views.pose)
    assert 1.7 < np.std(noisy.keypoints - views.keypoints) < 2.3
    np.testing.assert_allclose(data.normalise(np.array([[256.0, 0.0], [512.0, 384.0]])), [[0, -1], [1, 0.5]])


def test_normalise_centres_on_the_image_and_scales_by_half_the_longer_side():
    pixels = np.array([[[320.0, 240.0], [0.0, 0.0]], [[100.0, 50.0], [200.0, 150.0]]], np.float32)
    size = tf.constant([[640.0, 480.0], [200.0, 300.0]])  # (width, height) per example, as served
    want = [[[0, 0], [-1, -0.75]], [[0, -2 / 3], [2 / 3, 0]]]
    np.testing.assert_allclose(data.normalise(tf.constant(pixels), size).numpy(), want, rtol=1e-6)
    centre, half = data.image_frame(size)
    assert centre.shape == (2, 1, 2) and half.shape == (2, 1, 1)
    np.testing.assert_allclose(data.normalise(pixels[:1], 640.0), [[[0, -0.25], [-1, -1]]])  # a square side
    assert data.normalise(pixels, 512.0).dtype == np.float32


# ---- 2. generator outputs obey eq. (2) and the paper's pose model ----

def test_generator_outputs_are_projection_consistent(task):
    model = task.build_model()
    generator, pose_basis = model.generator, task.basis
    rng = np.random.default_rng(0)
    # Push the heads away from their near-zero initial output, so that Rx Ry Rz and the camera matter.
    for name, bias in (("angles", rng.uniform(-np.pi, np.pi, 3)), ("camera", [0.2, 0.1, -0.15, 0.1]),
                       ("alpha", rng.normal(scale=0.3, size=10))):
        layer = generator.get_layer(name)
        layer.kernel.assign(rng.normal(scale=0.5, size=layer.kernel.shape))
        layer.bias.assign(np.asarray(bias, np.float32))
    inputs = {"keypoints": next(iter(task.train_batches()))["inputs"]["keypoints"]}
    out = {k: v.numpy().astype(np.float64) for k, v in generator(inputs).items()}
    heads = keras.Model(generator.inputs, [generator.get_layer(n).output for n in ("alpha", "camera")])
    alpha, raw_camera = [t.numpy().astype(np.float64) for t in heads(inputs)]
    assert np.abs(out["angles"]).max() > 0.5 and np.abs(alpha).max() > 0.1

    shape = (pose_basis.mean + alpha @ pose_basis.components).reshape(-1, 15, 3)
    np.testing.assert_allclose(out["shape"], shape, atol=1e-5)
    np.testing.assert_allclose(pose_basis.decode(pose_basis.encode(out["shape"])), out["shape"], atol=1e-5)
    rotations = np.stack([_rx(a) @ _ry(b) @ _rz(c) for a, b, c in out["angles"]])
    np.testing.assert_allclose(out["pose"], np.einsum("bij,bkj->bki", rotations, out["shape"]), atol=1e-5)
    # Camera head: (log f, t_x, t_y, log t_z) around a 650 px focal length and a 5 m distance.
    np.testing.assert_allclose(out["focal"], 650 / HALF * np.exp(raw_camera[:, :1]), rtol=1e-5)
    np.testing.assert_allclose(out["translation"], np.concatenate(
        [raw_camera[:, 1:3], 5 * np.exp(raw_camera[:, 3:])], -1), rtol=1e-5, atol=1e-6)

    points = out["pose"] + out["translation"][:, None, :]
    want = out["focal"][:, :, None] * points[..., :2] / points[..., 2:]
    rendered, valid = model.render({k: tf.constant(v, tf.float32) for k, v in out.items()}, inputs)
    assert valid is None
    np.testing.assert_allclose(rendered.numpy(), want, rtol=1e-4, atol=1e-5)


def test_renderer_with_the_true_camera_reproduces_the_input_keypoints(task, canonical):
    clips = {"punch": canonical["punch"][:6].astype(np.float32)}
    fixed = data.Cameras(elevation_deg=(0, 0), distance_m=(5, 5), focal_px=(500, 500), offset_m=(0, 0))
    views = data.views(clips, 1, seed=0, cameras=fixed)
    truth = {"pose": tf.constant(views.pose), "focal": tf.fill([6, 1], 500 / HALF),
             "translation": tf.constant([[0.0, 0.0, 5.0]] * 6)}
    rendered, _ = task.build_model().render(truth, None)
    np.testing.assert_allclose(rendered.numpy(), data.normalise(views.keypoints), atol=1e-5)


# ---- 3. the critic sees canonical skeletons; paired targets are camera-frame poses ----

def test_memories_are_canonical_training_skeletons(full_batch, canonical):
    memories = full_batch["memories"]["shape"]
    train_bank = np.concatenate([v for k, v in canonical.items() if k not in deepmimic.TEST_CLIPS])
    assert memories.shape == (1024, 15, 3)
    _assert_canonical(memories)
    _, error = _nearest(memories, train_bank)
    assert error.max() < 1e-5
    # Canonicalisation is a proper rigid motion of a raw frame: bone lengths and handedness are kept.
    raw = np.concatenate([c.joints for n, c in deepmimic.load_clips().items() if n not in deepmimic.TEST_CLIPS])
    index, _ = _nearest(memories, train_bank)

    def triple(s):
        return np.einsum("bi,bi->b", np.cross(s[:, LEFT_HIP] - s[:, RIGHT_HIP], s[:, NECK] - s[:, PELVIS]),
                         s[:, LEFT_SHOULDER] - s[:, PELVIS])

    for i, j in ((0, 1), (1, 2), (7, 8), (9, 10)):
        np.testing.assert_allclose(np.linalg.norm(memories[:, i] - memories[:, j], axis=-1),
                                   np.linalg.norm(raw[index][:, i] - raw[index][:, j], axis=-1), atol=1e-5)
    np.testing.assert_allclose(triple(memories), triple(raw[index]), atol=1e-5)


def test_paired_examples_are_camera_frame_poses_of_training_skeletons(full_batch, canonical):
    paired = full_batch["paired"]
    targets, keypoints = paired["targets"]["pose"], paired["inputs"]["keypoints"]
    assert targets.shape == (1024, 15, 3) and keypoints.shape == (1024, 15, 2)
    np.testing.assert_allclose(targets[:, PELVIS], 0, atol=1e-6)
    aligned = skeleton.align_torso(targets)
    _assert_canonical(aligned)
    train_bank = np.concatenate([v for k, v in canonical.items() if k not in deepmimic.TEST_CLIPS])
    _, error = _nearest(aligned, train_bank)
    assert error.max() < 1e-4
    assert np.abs(aligned - targets).max() > 0.1  # the targets are not canonical: cameras rotate them
    for pose, normalized in zip(targets[:40], keypoints[:40]):
        f, *_, residual = _fit_camera(pose, normalized * HALF + HALF)
        assert residual < 0.05 and 399 <= f <= 901


# ---- 4. the split by clip ----

def test_no_test_clip_skeleton_reaches_the_memories_or_the_paired_examples(task, full_batch, canonical):
    names = list(canonical)
    bank = np.concatenate([canonical[n] for n in names])
    owner = np.concatenate([[n] * len(canonical[n]) for n in names])
    train_names = set(names) - set(deepmimic.TEST_CLIPS)
    memories = full_batch["memories"]["shape"]
    paired = skeleton.align_torso(full_batch["paired"]["targets"]["pose"])
    for skeletons in (memories, paired):
        index, error = _nearest(skeletons, bank)
        assert error.max() < 1e-4
        assert set(owner[index]) == train_names  # every training clip, no test clip
        test_bank = np.concatenate([canonical[n] for n in deepmimic.TEST_CLIPS])
        assert _nearest(skeletons, test_bank)[1].min() > 1e-3
    # The unpaired inputs (and the evaluation set) are the test clips' views, and only those.
    views = task.test_views
    assert set(views.clip) == set(deepmimic.TEST_CLIPS)
    assert len(views.clip) == sum(len(canonical[n]) for n in deepmimic.TEST_CLIPS)
    _, error = _nearest(full_batch["inputs"]["keypoints"], data.normalise(views.keypoints))
    assert error.max() < 1e-6
    np.testing.assert_array_equal(full_batch["inputs"]["keypoints"], full_batch["observed"])


# ---- 5. regimes and option errors ----

def test_regimes_set_critics_and_loss_weights():
    forward = _tiny(model="forward2d3d").build_model()
    interpreter = _tiny(model="interpreter").build_model()
    aign = _tiny(model="aign").build_model()
    assert forward.critics == {} and forward.reconstruction_weight == 0.0
    assert interpreter.critics == {} and interpreter.reconstruction_weight == 1.0
    assert set(aign.critics) == {"shape"} and aign.reconstruction_weight == 1.0
    assert tuple(aign.critics["shape"].input_shape) == (None, 15, 3)
    for model in (forward, interpreter, aign):
        assert model.supervised_weight == 1.0 and "supervised" in model.trackers
    assert "d_loss" in aign.trackers and "d_loss" not in interpreter.trackers


@pytest.mark.parametrize("option, value, match", [("model", "gan", "unknown model 'gan'"),
                                                  ("model", "nope", "unknown model 'nope'"),
                                                  ("generator", "resnet", "unknown generator"),
                                                  ("critic_input", "pixels", "unknown critic input"),
                                                  ("noise_px", -1.0, "noise_px"),
                                                  ("noise_px", -1, "noise_px"),
                                                  ("test_cameras", 0, "test_cameras"),
                                                  ("components", 2.5, "components must be int")])
def test_bad_options_are_user_errors(option, value, match):
    """The options are checked once, when the task is configured, before any data or model."""
    with pytest.raises(UserError, match=match):
        PoseTask.configure(**{**TINY, option: value})
    with pytest.raises(UserError, match=match):
        registry.get_task("pose3d", **{**TINY, option: value})


def test_cameras_options_set_the_number_of_views(canonical):
    """--train_cameras views of every training frame are the paired examples; --test_cameras views
    of every test frame the unlabelled inputs and the evaluation set."""
    train_frames = sum(len(v) for k, v in canonical.items() if k not in deepmimic.TEST_CLIPS)
    test_frames = sum(len(canonical[n]) for n in deepmimic.TEST_CLIPS)
    for train_cameras, test_cameras in ((1, 1), (2, 3)):
        task = _tiny(train_cameras=train_cameras, test_cameras=test_cameras, batch_size=train_frames * train_cameras)
        assert len(task.train_views.keypoints) == train_frames * train_cameras
        assert len(task.test_views.keypoints) == test_frames * test_cameras
        assert sum(len(b["observed"]) for b in task.eval_dataset()) == test_frames * test_cameras
        # One batch of a whole epoch of paired examples holds each view once.
        paired = next(iter(task.train_batches()))["paired"]["inputs"]["keypoints"].numpy()
        want = data.normalise(task.train_views.keypoints).reshape(len(paired), -1)
        np.testing.assert_array_equal(np.unique(paired.reshape(len(paired), -1), axis=0), np.unique(want, axis=0))
    assert task.config.options.train_cameras == 2 and PoseTask.configure().options.train_cameras == 8


def test_heatmaps_are_gaussians_of_the_configured_width():
    """A keypoint at the box centre: heatmap value exp(-d^2 / (2 sigma^2)) at d heatmap pixels away."""
    keypoints = tf.constant([[[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]]])  # box centre (0, 0), half-size 1.1
    for sigma in (1.0, 2.5):
        heatmaps, box = networks.BoxHeatmaps(sigma)(keypoints)
        centre = heatmaps.numpy()[0, :, :, 1]  # the middle keypoint sits between pixels 15 and 16
        rows, cols = np.mgrid[:32, :32]
        distance = np.hypot(rows + 0.5 - 16, cols + 0.5 - 16)  # heatmap pixels from the box centre
        np.testing.assert_allclose(centre, np.exp(-0.5 * (distance / sigma) ** 2), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(box.numpy(), [[0.0, 0.0, 1.1]], rtol=1e-6)
    wide = PoseTask(PoseTask.configure(generator="heatmap", width=2, components=10, heatmap_sigma=2.5))
    layer = next(l for l in wide.build_model().generator.layers if isinstance(l, networks.BoxHeatmaps))
    assert layer.sigma == 2.5 and PoseTask.configure().options.heatmap_sigma == 1.0
    with pytest.raises(UserError, match="heatmap_sigma must be >= 0.1"):
        PoseTask.configure(heatmap_sigma=0.0)


# ---- 6. bad shapes ----

@pytest.mark.parametrize("kind", ["mlp", "heatmap"])
def test_wrong_joint_count_is_rejected(task, kind):
    generator = networks.generator(task.basis, kind, 2, task.options.heatmap_sigma)
    with pytest.raises(ValueError, match=r"expected shape=\(None, 15, 2\)"):
        generator({"keypoints": tf.zeros([2, 14, 2])})


# ---- 7. train, reload, evaluate, images ----

def test_train_then_evaluate_and_draw(tmp_path, task, canonical):
    model_dir = str(tmp_path)
    logs = trainer.train(task, model_dir, strategy=tf.distribute.get_strategy(), verbose=False,
                         summary_every=1, image_every=2, checkpoint_every=2)
    assert {"reconstruction", "supervised", "d_loss"} <= set(logs)
    assert all(np.isfinite(v) for v in logs.values())
    with Image.open(tmp_path / "samples" / "latest.png") as png:
        assert png.size[0] > 100 and png.size[1] > 100

    model, step = rundir.load_generator(task, model_dir)
    assert step == 2
    metrics = task.evaluate(model)
    want = {"mpjpe_mm", "pa_mpjpe_mm", "reprojection_px", "examples"}
    want |= {f"{m}/{clip}" for m in ("mpjpe_mm", "pa_mpjpe_mm") for clip in deepmimic.TEST_CLIPS}
    assert set(metrics) == want
    assert all(np.isfinite(v) and v > 0 for v in metrics.values()), metrics
    assert metrics["examples"] == sum(len(canonical[n]) for n in deepmimic.TEST_CLIPS)

    # Reprojection error and torso-aligned MPJPE recomputed here from the model's predictions.
    views = task.test_views
    out = model({"keypoints": tf.constant(data.normalise(views.keypoints))}, training=False)
    pose, focal = out["pose"].numpy().astype(np.float64), out["focal"].numpy().astype(np.float64)
    points = pose + out["translation"].numpy()[:, None, :]
    pixels = focal[:, :, None] * HALF * points[..., :2] / points[..., 2:] + HALF
    reprojection = np.linalg.norm(pixels - views.keypoints, axis=-1).mean()
    np.testing.assert_allclose(metrics["reprojection_px"], reprojection, rtol=1e-3)
    mpjpe = np.linalg.norm(skeleton.align_torso(pose) - views.canonical, axis=-1).mean() * 1000
    np.testing.assert_allclose(metrics["mpjpe_mm"], mpjpe, rtol=1e-3)
    walk = views.clip == "walk"
    np.testing.assert_allclose(metrics["mpjpe_mm/walk"], np.linalg.norm(
        skeleton.align_torso(pose[walk]) - views.canonical[walk], axis=-1).mean() * 1000, rtol=1e-3)

    images = task.images(model, next(iter(task.eval_dataset())))
    (picture,) = images.values()
    assert picture.dtype == tf.float32 and picture.shape[0] == 1 and picture.shape[-1] == 3
    assert picture.shape[1] > 100 and picture.shape[2] > 100
    assert 0.0 <= float(tf.reduce_min(picture)) and float(tf.reduce_max(picture)) <= 1.0
    assert float(tf.reduce_min(picture)) < float(tf.reduce_max(picture))


def test_params_critic_reads_alpha_rotation_focal_of_memories_and_predictions():
    task = _tiny(critic_input="params", batch_size=16)
    model = task.build_model()
    assert set(model.critics) == {"params"} and model.critics["params"].input_shape == (None, 10 + 7)
    batch = next(iter(task.train_batches()))
    memories = batch["memories"]["params"].numpy()
    basis = task.basis
    # Memory alphas decode to canonical training skeletons; angles are (elevation, azimuth, 0) in range.
    shapes = basis.decode(memories[:, :10])
    np.testing.assert_allclose(shapes[:, skeleton.DEEPMIMIC.pelvis], 0.0, atol=0.05)
    angles = np.arctan2(memories[:, 10:13], memories[:, 13:16])
    assert np.all(np.abs(angles[:, 2]) < 1e-6)
    assert np.all((angles[:, 0] >= np.radians(-10.01)) & (angles[:, 0] <= np.radians(30.01)))
    focal_px = np.exp(memories[:, 16]) * networks.FOCAL_SCALE * data.IMAGE_SIZE / 2
    assert np.all((focal_px >= 399.9) & (focal_px <= 900.1))
    # The generator's vector is the same function of its own alpha, angles and focal length.
    out = model.generator(batch["inputs"])
    alpha = keras.Model(model.generator.inputs, model.generator.get_layer("alpha").output)(batch["inputs"]).numpy()
    want = networks.parameter_vector(alpha, out["angles"].numpy(), out["focal"].numpy()[:, 0] * data.IMAGE_SIZE / 2)
    np.testing.assert_allclose(out["params"].numpy(), want, rtol=1e-5, atol=1e-5)
