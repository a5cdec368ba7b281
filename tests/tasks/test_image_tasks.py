"""Image metrics against independent references: PSNR by formula, SSIM against scikit-image, KID
against a double loop, the Frechet distance against closed forms and scipy; the classifier judge; an
image task loads its data and judge once, and checks its options when configured."""

import numpy as np
import pytest
import scipy.linalg
import skimage.metrics
import tensorflow as tf

from aign_tf.tasks import image_tasks, inpaint


def test_psnr_matches_the_formula():
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(3, 8, 8, 1))
    b = np.clip(a + rng.normal(scale=[0.01, 0.1, 0.3], size=(8, 8, 1, 3)).transpose(3, 0, 1, 2), 0, 1)
    want = [10 * np.log10(1.0 / np.mean((a[i] - b[i]) ** 2)) for i in range(3)]
    np.testing.assert_allclose(image_tasks.psnr(a, b), want, rtol=1e-12)
    assert image_tasks.psnr(a, a)[0] == 100.0  # capped for identical images


def test_ssim_matches_scikit_image():
    rng = np.random.default_rng(1)
    clean = rng.uniform(size=(2, 28, 28, 1)).astype(np.float32)
    noisy = np.clip(clean + rng.normal(scale=0.2, size=clean.shape), 0, 1).astype(np.float32)
    ours = image_tasks.ssim(noisy, clean)
    # TensorFlow's SSIM: 11x11 Gaussian window (sigma 1.5), population statistics, valid positions.
    want = [skimage.metrics.structural_similarity(noisy[i, ..., 0], clean[i, ..., 0], data_range=1.0,
                                                  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
            for i in range(2)]
    np.testing.assert_allclose(ours, want, atol=1e-5)
    np.testing.assert_allclose(image_tasks.ssim(clean, clean), 1.0, atol=1e-6)


def _kid_by_loops(a, b):
    def k(x, y):
        return (x @ y / len(x) + 1.0) ** 3

    m, n = len(a), len(b)
    within_a = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    within_b = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    across = sum(k(a[i], b[j]) for i in range(m) for j in range(n)) / (m * n)
    return within_a + within_b - 2 * across


def test_kid_matches_a_double_loop_and_separates_distributions():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(7, 5)), rng.normal(loc=0.5, size=(9, 5))
    np.testing.assert_allclose(image_tasks.kernel_inception_distance(a, b), _kid_by_loops(a, b), rtol=1e-10)
    same = [image_tasks.kernel_inception_distance(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)))
            for _ in range(5)]
    shifted = image_tasks.kernel_inception_distance(rng.normal(size=(200, 8)), rng.normal(loc=1.0, size=(200, 8)))
    assert abs(np.mean(same)) < 0.05 < shifted  # unbiased: about 0 for one distribution


def test_frechet_distance_matches_closed_forms():
    rng = np.random.default_rng(3)
    # Independent axes: the distance is |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2 of the fitted Gaussians.
    a = rng.normal(size=(400, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, 0.0]
    b = rng.normal(size=(300, 3)) * [1.5, 1.0, 0.5] + [1.0, 0.0, 0.0]
    a = (a - a.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(a, rowvar=False))).T * [1.0, 2.0, 0.5] + [0.0, 1.0, 0.0]
    b = (b - b.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(b, rowvar=False))).T * [1.5, 1.0, 0.5] + [1.0, 0.0, 0.0]
    want = 1.0 + 1.0 + (1.0 - 1.5) ** 2 + (2.0 - 1.0) ** 2
    np.testing.assert_allclose(image_tasks.frechet_distance(a, b), want, rtol=1e-9)
    # Correlated features: the matrix square root of scipy.
    c, d = rng.normal(size=(50, 4)) @ rng.normal(size=(4, 4)), rng.normal(size=(60, 4)) @ rng.normal(size=(4, 4))
    cov_c, cov_d = np.cov(c, rowvar=False), np.cov(d, rowvar=False)
    want = np.sum((c.mean(0) - d.mean(0)) ** 2) + np.trace(cov_c + cov_d - 2 * np.real(scipy.linalg.sqrtm(cov_c @ cov_d)))
    np.testing.assert_allclose(image_tasks.frechet_distance(c, d), want, rtol=1e-7)
    assert abs(image_tasks.frechet_distance(c, c)) < 1e-8


def test_judge_features_are_what_the_last_layer_reads():
    task = inpaint.InpaintTask(inpaint.InpaintTask.configure(steps=2, batch_size=8, width=8))
    judge = image_tasks.Judge(task.data, task.config.seed)
    images = next(iter(task.eval_dataset()))["targets"]["image"]
    classes, features = judge(images)
    last = judge.classifier.layers[-1]  # the final Dense layer
    logits = features @ last.kernel.numpy() + last.bias.numpy()
    np.testing.assert_allclose(logits, judge.classifier(images).numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(classes, np.argmax(logits, axis=1))
    assert features.shape == (8, 128) and features.min() >= 0  # ReLU units
    assert judge.memories().shape == (2000, 128)


def test_a_task_loads_its_collection_and_trains_its_judge_once(monkeypatch, tmp_path):
    from aign_tf.zoo import registry, rundir, trainer

    calls = []

    def counted(*args, **kwargs):
        calls.append(args)
        return load(*args, **kwargs)

    load = image_tasks.load_image_data
    monkeypatch.setattr(image_tasks, "load_image_data", counted)
    task = registry.get_task("inpaint", steps=2, batch_size=8, width=8, bias="8")
    trainer.train(task, str(tmp_path), strategy=tf.distribute.get_strategy(), eval_every=1, verbose=False)
    model, _ = rundir.load_generator(task, str(tmp_path))
    first, second = task.evaluate(model), task.evaluate(model)
    assert first == second and len(rundir.read_curves(str(tmp_path))) == 3  # steps 0, 1 and 2
    assert len(calls) == 1 and task.judge is task.judge


def test_options_are_typed_and_checked_when_configured():
    from aign_tf.errors import UserError

    with pytest.raises(UserError, match="width must be >= 2"):
        inpaint.InpaintTask.configure(width=1)
    with pytest.raises(UserError, match="option width must be int"):
        inpaint.InpaintTask.configure(width="wide")
    with pytest.raises(UserError, match="has no option 'frame_size'"):
        inpaint.InpaintTask.configure(frame_size="32x96")
    with pytest.raises(UserError, match="unknown dataset 'imagenet'"):
        inpaint.InpaintTask.configure(dataset="imagenet")
    config = inpaint.InpaintTask.configure(beta=0, mask="random")
    assert config.beta == 0.0 and isinstance(config.beta, float) and config.options.mask == "random"


def test_image_size_is_rows_x_columns_or_one_side():
    from aign_tf.errors import UserError

    assert inpaint.InpaintTask.configure(image_size="112x92").options.size() == (112, 92)
    assert inpaint.InpaintTask.configure(image_size="64").options.size() == (64, 64)
    assert inpaint.InpaintTask.configure().options.size() is None
    old = inpaint.InpaintTask.config_from_dict({"options": {"image_size": 14}})  # a config.json before HxW
    assert old.options.image_size == "14" and old.options.size() == (14, 14)
    for bad in ("12y3", "0x4", "x", "-3", "4x"):
        with pytest.raises(UserError, match=f"--image_size={bad} is not HEIGHTxWIDTH"):
            inpaint.InpaintTask.configure(image_size=bad)


def test_a_flat_folder_is_evaluated_without_classifier_metrics(tmp_path, capsys):
    from aign_tf.zoo import evaluate, registry
    from tests.testing import checkpointed, write_image_folder

    write_image_folder(tmp_path / "flat", {"": 20}, size=(16, 16))
    for name in ("inpaint", "superres"):
        checkpointed(name, str(tmp_path / name), dataset="folder", data_dir=str(tmp_path / "flat"), image_size="16")
        metrics, step = evaluate.evaluate_dir(registry.task_class(name), str(tmp_path / name), {})
        printed = capsys.readouterr().out
        assert "20 images, no class subfolders" in printed and "no --bias and no classifier metrics" in printed
        assert f"{name}: no classifier metrics (accuracy, bias share, KID, FID)" in printed
        assert metrics["examples"] == 2 and not any("accuracy" in metric for metric in metrics)
        assert not any(metric.endswith(("_kid", "_fid", "bias_share")) for metric in metrics), metrics
