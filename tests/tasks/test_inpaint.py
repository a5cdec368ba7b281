"""Inpainting: masks, the mask renderer on true images, biased memories, evaluate end to end."""

import numpy as np
import pytest
import tensorflow as tf

from aign_tf.errors import UserError
from aign_tf.tasks import inpaint
from aign_tf.zoo import registry, rundir, trainer

TINY = dict(steps=2, batch_size=8, width=8)


def test_fixed_masks_hide_one_hand_computed_rectangle():
    visible = inpaint.visible_mask("center", 8, 12, tf.constant([0, 0], tf.int64))[..., 0].numpy()
    want = np.ones((8, 12))
    want[2:6, 3:9] = 0
    np.testing.assert_array_equal(visible, want)
    bottom = inpaint.visible_mask("bottom", 8, 12, tf.constant([0, 0], tf.int64))[..., 0].numpy()
    assert bottom[:4].min() == 1 and bottom[4:].max() == 0


def test_random_masks_are_contiguous_rectangles_and_deterministic():
    for index in range(20):
        seed = tf.constant([3, index], tf.int64)
        hidden = 1 - inpaint.visible_mask("random", 28, 28, seed)[..., 0].numpy()
        rows, cols = np.nonzero(hidden)
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert hidden.sum() == height * width  # one filled rectangle
        assert 7 <= height <= 14 and 7 <= width <= 14
        np.testing.assert_array_equal(hidden, 1 - inpaint.visible_mask("random", 28, 28, seed)[..., 0].numpy())


def test_unknown_mask_is_a_user_error():
    with pytest.raises(UserError, match="unknown mask"):
        inpaint.InpaintTask.configure(mask="oval", **TINY)
    with pytest.raises(UserError, match="mask file /nowhere/m.png does not exist"):
        inpaint.InpaintTask.configure(mask="/nowhere/m.png", **TINY)


def test_face_regions_are_boxes_relative_to_the_image():
    seed = tf.constant([0, 0], tf.int64)
    rows, cols = np.nonzero(1 - inpaint.visible_mask("mouth", 28, 28, seed)[..., 0].numpy())
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (16, 22, 7, 20)  # int(0.6 * 28) ... as before
    tops = {}
    for kind, (top, left, height, width) in inpaint.FACE_REGIONS.items():
        hidden = 1 - inpaint.visible_mask(kind, 112, 92, seed)[..., 0].numpy()
        rows, cols = np.nonzero(hidden)
        assert (rows.min(), cols.min()) == (int(top * 112), int(left * 92)), kind
        assert hidden.sum() == int(height * 112) * int(width * 92), kind  # one filled rectangle
        tops[kind] = rows.min()
    assert tops["eyes"] < tops["nose"] < tops["mouth"]


def test_a_mask_file_hides_its_zero_pixels_at_any_size(tmp_path):
    from PIL import Image

    seed = tf.constant([0, 0], tf.int64)
    want = np.ones((16, 12))
    want[4:8, 2:10] = 0
    grey = (want * 255).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(np.repeat(np.repeat(grey, 2, 0), 2, 1)).save(tmp_path / "double.png")  # fitted, nearest
    red = np.zeros((16, 12, 3), np.uint8)
    red[..., 0] = grey  # nonzero in any channel is visible
    Image.fromarray(red).save(tmp_path / "red.png")
    for name in ("grey", "double", "red"):
        visible = inpaint.visible_mask(str(tmp_path / f"{name}.png"), 16, 12, seed)[..., 0].numpy()
        np.testing.assert_array_equal(visible, want, err_msg=name)
    Image.fromarray(np.full((16, 12), 7, np.uint8)).save(tmp_path / "all.png")
    with pytest.raises(UserError, match="mask file .*all.png hides no pixel at 16x12"):
        inpaint.visible_mask(str(tmp_path / "all.png"), 16, 12, seed)
    (tmp_path / "broken.png").write_bytes((tmp_path / "grey.png").read_bytes()[:30])
    with pytest.raises(UserError, match="image file .*broken.png is cut short"):
        inpaint.visible_mask(str(tmp_path / "broken.png"), 16, 12, seed)

    task = registry.get_task("inpaint", mask=str(tmp_path / "double.png"), image_size="16x12", **TINY)
    batch = next(iter(task.train_batches()))
    np.testing.assert_array_equal(batch["inputs"]["mask"].numpy()[..., 0], np.broadcast_to(want, (8, 16, 12)))


def test_rendering_the_true_image_reproduces_the_observation():
    task = registry.get_task("inpaint", mask="random", **TINY)
    batch = next(iter(task.train_batches()))
    rendered, valid = task.build_model().render(batch["targets"], batch["inputs"])
    np.testing.assert_array_equal(rendered.numpy(), batch["observed"].numpy())
    hidden = 1 - valid.numpy()
    assert hidden.sum() > 0 and np.all(batch["observed"].numpy() * hidden == 0)
    assert batch["memories"]["image"].shape == batch["targets"]["image"].shape == (8, 28, 28, 1)


def test_biased_memories_hold_only_the_bias_class():
    data = registry.get_task("inpaint", bias="8", **TINY).data
    labels = np.array([int(e["label"]) for e in data.memory.as_numpy_iterator()])
    assert len(labels) == data.sizes["memory"] > 0 and set(labels) == {8}
    train_labels = {int(e["label"]) for e in data.train.as_numpy_iterator()}
    assert train_labels == set(range(10))  # inputs stay unbiased
    with pytest.raises(UserError, match="bias"):
        registry.get_task("inpaint", bias="eleven", **TINY).data


def test_generator_output_shape_and_range():
    task = registry.get_task("inpaint", **TINY)
    model = task.build_model()
    batch = next(iter(task.train_batches()))
    out = model(batch["inputs"])["image"].numpy()
    assert out.shape == (8, 28, 28, 1) and out.min() >= 0 and out.max() <= 1


def test_train_then_evaluate_writes_metrics(tmp_path, capsys):
    from aign_tf.zoo import evaluate

    task = registry.get_task("inpaint", bias="8", **TINY)
    trainer.train(task, str(tmp_path), strategy=tf.distribute.get_strategy(), verbose=False)
    model, step = rundir.load_generator(task, str(tmp_path))
    metrics = task.evaluate(model)
    assert step == 2
    for name in ("render_mse_visible", "hidden_mse", "completion_accuracy", "masked_input_accuracy",
                 "bias_share_completions", "bias_share_true_images"):
        assert np.isfinite(metrics[name]), name
    assert metrics["examples"] == 500
    assert metrics["classifier_test_accuracy"] > 0.85  # the judge itself must be good
    assert 0.05 < metrics["bias_share_true_images"] < 0.15  # about one tenth of the test digits are 8s
    assert 0 <= metrics["render_mse_visible"] < metrics["hidden_mse"] + 1
    text = evaluate.format_table(metrics)
    assert "hidden_mse" in text and len(text.splitlines()) == len(metrics)
