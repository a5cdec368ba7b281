"""Super-resolution: shapes, the pooling renderer against NumPy, biased memories, the CelebA path on
mock data, train and evaluate end to end."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from aign_tf.errors import UserError
from aign_tf.tasks import image_tasks, superres
from aign_tf.zoo import registry, rundir, trainer

TINY = dict(steps=2, batch_size=8, width=8, blocks=1)


def test_generator_makes_images_four_times_larger():
    for dataset, side in (("mnist", 28), ("lfw", 24)):
        task = registry.get_task("superres", dataset=dataset, **TINY)
        model = task.build_model()
        batch = next(iter(task.train_batches()))
        assert batch["inputs"]["image"].shape == (8, side // 4, side // 4, 1)
        out = model(batch["inputs"])["image"].numpy()
        assert out.shape == (8, side, side, 1) and out.min() >= 0 and out.max() <= 1
        assert len(model.generator.layers) > 0 and len(model.critics["image"].layers) > 0


def test_residual_blocks_and_critic_layers_follow_the_paper():
    model = registry.get_task("superres", **dict(TINY, blocks=3)).build_model()
    adds = [layer for layer in model.generator.layers if isinstance(layer, keras.layers.Add)]
    deconvs = [layer for layer in model.generator.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert len(adds) == 3 and len(deconvs) == 2
    convs = [layer for layer in model.critics["image"].layers if isinstance(layer, keras.layers.Conv2D)]
    dense = [layer for layer in model.critics["image"].layers if isinstance(layer, keras.layers.Dense)]
    assert len(convs) == 5 and len(dense) == 1


def test_pooling_renderer_is_the_block_mean_and_reproduces_the_input():
    task = registry.get_task("superres", **TINY)
    batch = next(iter(task.train_batches()))
    truth = batch["targets"]["image"].numpy()
    want = truth.reshape(8, 7, 4, 7, 4, 1).mean(axis=(2, 4))
    rendered, valid = task.build_model().render(batch["targets"], batch["inputs"])
    assert valid is None
    np.testing.assert_allclose(rendered.numpy(), want, atol=1e-6)
    np.testing.assert_allclose(batch["observed"].numpy(), want, atol=1e-6)  # x = P(true image)
    np.testing.assert_array_equal(batch["inputs"]["image"].numpy(), batch["observed"].numpy())


def test_biased_memories_hold_only_the_bias_class():
    task = registry.get_task("superres", bias="8", **TINY)
    data = task.data
    labels = np.array([int(e["label"]) for e in data.memory.as_numpy_iterator()])
    assert len(labels) == data.sizes["memory"] == 200 and set(labels) == {8}
    assert data.bias_label == 8
    memories = np.stack([e["image"] for e in data.memory.as_numpy_iterator()])
    batch = next(iter(task.train_batches()))
    for image in batch["memories"]["image"].numpy():  # every memory in a batch is one of the 8s
        assert np.min(np.abs(memories - image).max(axis=(1, 2, 3))) == 0
    assert len(set(batch["label"].numpy())) > 1  # the inputs stay unbiased


def test_sides_not_divisible_by_four_are_a_user_error():
    with pytest.raises(UserError, match="divisible by 4"):
        registry.get_task("superres", image_size=30, **TINY).build_model()


def test_celeb_a_path_on_mock_data_trains(tmp_path):
    task = registry.get_task("superres", dataset="celeb_a", data_dir=str(tmp_path), bias="Male", image_size=32,
                             **dict(TINY, batch_size=4))
    # The pip package has no celeb_a metadata, so the mock falls back to the builder's code.
    with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE):
        data = task.data
        memory_labels = [int(e["label"]) for e in data.memory.as_numpy_iterator()]
        batch = next(iter(task.train_batches()))
        trainer.train(task, str(tmp_path / "model"), strategy=tf.distribute.get_strategy(), verbose=False)
    assert data.class_names == ("not_Male", "Male") and data.bias_label == 1
    assert memory_labels and set(memory_labels) == {1}
    assert batch["inputs"]["image"].shape == (4, 8, 8, 3)
    assert batch["targets"]["image"].shape == batch["memories"]["image"].shape == (4, 32, 32, 3)
    assert rundir.latest_checkpoint(str(tmp_path / "model")).endswith("ckpt-2")


def test_bicubic_reference_matches_tensorflow_and_keeps_the_range():
    low = tf.random.stateless_uniform((2, 7, 7, 1), seed=(1, 2))
    up = superres.bicubic(low).numpy()
    assert up.shape == (2, 28, 28, 1) and up.min() >= 0 and up.max() <= 1
    np.testing.assert_allclose(up, np.clip(tf.image.resize(low, (28, 28), "bicubic").numpy(), 0, 1))
    np.testing.assert_array_equal(superres.nearest(low).numpy()[:, 4:8, 8:12], np.broadcast_to(
        low.numpy()[:, 1:2, 2:3], (2, 4, 4, 1)))


def test_train_then_evaluate(tmp_path):
    from aign_tf.zoo import evaluate

    task = registry.get_task("superres", bias="8", **TINY)
    trainer.train(task, str(tmp_path), strategy=tf.distribute.get_strategy(), verbose=False)
    metrics, step = evaluate.evaluate_dir(superres.SuperresTask, str(tmp_path), {})
    assert step == 2 and metrics["examples"] == 500 and metrics["memories"] == 200
    for source in ("prediction", "bicubic"):
        for name in ("consistency_psnr_db", "psnr_db", "ssim", "accuracy", "bias_share", "kid", "fid"):
            assert np.isfinite(metrics[f"{source}_{name}"]), (source, name)
    assert metrics["classifier_test_accuracy"] > 0.85
    assert metrics["truth_accuracy"] == pytest.approx(metrics["classifier_test_accuracy"])  # same images
    assert 0.05 < metrics["truth_bias_share"] < 0.15  # about one tenth of the test digits are 8s
    # Bicubic upsampling nearly keeps the low frequencies: far better than an untrained generator.
    assert metrics["bicubic_consistency_psnr_db"] > 20 > metrics["prediction_consistency_psnr_db"]
    assert (tmp_path / "evaluation.png").exists() and (tmp_path / "metrics.json").exists()

    # The classifier-based numbers, recomputed here from the judge's classes and features.
    model, _ = rundir.load_generator(task, str(tmp_path))
    judge = image_tasks.Judge(task.data, task.config.seed)
    classes, features, labels, psnrs = [], [], [], []
    for batch in task.eval_dataset():
        predicted = model(batch["inputs"], training=False)["image"]
        c, f = judge(predicted)
        classes.append(c)
        features.append(f)
        labels.append(batch["label"].numpy())
        error = np.mean((predicted.numpy() - batch["targets"]["image"].numpy()) ** 2, axis=(1, 2, 3))
        psnrs.append(10 * np.log10(1 / error))
    classes, features, labels = np.concatenate(classes), np.concatenate(features), np.concatenate(labels)
    assert metrics["prediction_bias_share"] == pytest.approx(np.mean(classes == 8))
    assert metrics["prediction_accuracy"] == pytest.approx(np.mean(classes == labels))
    assert metrics["prediction_psnr_db"] == pytest.approx(np.mean(np.concatenate(psnrs)), rel=1e-5)
    memories = judge(next(iter(judge.data.memory.batch(1000)))["image"])[1]
    assert metrics["prediction_kid"] == pytest.approx(image_tasks.kernel_inception_distance(features, memories),
                                                      rel=1e-4)
