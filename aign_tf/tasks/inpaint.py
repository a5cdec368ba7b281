"""Biased inpainting (paper §2.4, supplementary §2.4).

Input x: an image whose hidden region is blacked out, and the mask m (1 = visible, 0 = hidden).
Generator: the masked image and the mask each go through two conv layers, are concatenated, and
three deconv layers produce the complete image G(x) in [0, 1].
Renderer: P(G(x), m) = m * G(x), compared with x over the visible pixels.
Critic: four conv layers (leaky ReLU, batch norm) and one FC score, on complete images: the
generator's G(x) against memories, complete images from a part of the collection disjoint from the
inputs. `bias=CLASS` keeps only that class in the memories (the paper's "big lips" curation).
"""
from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from aign_tf.core import AIGN, batches
from aign_tf.core.model import float32
from aign_tf.data.images import read_mask
from aign_tf.errors import UserError
from aign_tf.export.signatures import image_from_uint8, image_to_uint8, signature, spec
from aign_tf.nets import layers
from aign_tf.render import image as image_renderer
from aign_tf.tasks import image_tasks
from aign_tf.tasks.options import option

MASKS = ("center", "bottom", "mouth", "nose", "eyes", "random")
# Face regions as (top, left, height, width) fractions of the image, for a face centred in it as in
# aligned CelebA crops and the ORL photos (eyes at about 45 % of the height, nose tip 58 %, mouth 70 %).
FACE_REGIONS = {"mouth": (0.6, 0.25, 0.25, 0.5), "nose": (0.45, 0.35, 0.23, 0.3), "eyes": (0.33, 0.15, 0.2, 0.7)}


@dataclasses.dataclass(frozen=True)
class InpaintOptions(image_tasks.ImageOptions):
    mask: str = option("center", "Hidden region: center, bottom, random (a rectangle drawn per example), a face "
                       "region (mouth, nose or eyes of a face centred in the image) or a mask file (an image, "
                       "e.g. a PNG, nonzero = visible; cropped and resized like the images).")
    width: int = option(32, "Channels of the first conv layer of generator and critic (doubling deeper); "
                        "the paper's face models use 64.", minimum=2)

    def validate(self) -> None:
        super().validate()
        if self.mask not in MASKS and not os.path.isfile(self.mask):
            path_like = os.sep in self.mask or os.path.splitext(self.mask)[1]
            what = f"mask file {self.mask} does not exist" if path_like else f"unknown mask {self.mask!r}"
            raise UserError(f"{what}: use one of {', '.join(MASKS)}, or an image file whose nonzero pixels are "
                            "the visible ones")


def hidden_box(kind: str, height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, box height, box width) of a fixed hidden rectangle."""
    if kind == "center":
        return height // 4, width // 4, height // 2, width // 2
    if kind == "bottom":
        return height // 2, 0, height - height // 2, width
    if kind in FACE_REGIONS:
        top, left, rows, cols = FACE_REGIONS[kind]
        return int(top * height), int(left * width), int(rows * height), int(cols * width)
    raise UserError(f"unknown mask {kind!r}; use one of {', '.join(MASKS)}")


def visible_mask(kind: str, height: int, width: int, seed: tf.Tensor) -> tf.Tensor:
    """[H, W, 1] float mask, 1 = visible: 0 on one contiguous hidden rectangle, 1 elsewhere; or the
    mask file named by `kind` (`aign_tf.data.images.read_mask`).

    "random" draws the rectangle (sides H/4..H/2, anywhere inside) from the stateless `seed` [2].
    """
    if kind not in MASKS:
        with tf.init_scope():  # read at once, also while a dataset's map function is traced
            return tf.constant(read_mask(kind, (height, width)))
    if kind == "random":
        u = tf.random.stateless_uniform([4], seed)
        box_h = height // 4 + tf.cast(u[0] * (height // 2 - height // 4 + 1), tf.int32)
        box_w = width // 4 + tf.cast(u[1] * (width // 2 - width // 4 + 1), tf.int32)
        top = tf.cast(u[2] * tf.cast(height - box_h + 1, tf.float32), tf.int32)
        left = tf.cast(u[3] * tf.cast(width - box_w + 1, tf.float32), tf.int32)
    else:
        top, left, box_h, box_w = hidden_box(kind, height, width)
    rows = tf.range(height)[:, tf.newaxis]
    cols = tf.range(width)[tf.newaxis, :]
    hidden = (rows >= top) & (rows < top + box_h) & (cols >= left) & (cols < left + box_w)
    return tf.expand_dims(1.0 - tf.cast(hidden, tf.float32), -1)


def generator(image_shape: tuple[int, int, int], width: int) -> keras.Model:
    rows, cols, channels = image_shape
    if rows % 4 or cols % 4:
        raise UserError(f"inpainting needs image sides divisible by 4, got {rows}x{cols}; pass --image_size")
    image = keras.Input(image_shape, name="image")
    mask = keras.Input((rows, cols, 1), name="mask")
    a = layers.conv(image, width, norm=False)
    a = layers.conv(a, 2 * width)
    b = layers.conv(mask, width // 2, norm=False)
    b = layers.conv(b, width)
    x = keras.layers.Concatenate()([a, b])
    x = layers.conv(x, 2 * width, transpose=True, activation="relu")
    x = layers.conv(x, width, transpose=True, activation="relu")
    x = layers.conv(x, channels, strides=1, transpose=True, norm=False, activation="sigmoid")
    return keras.Model({"image": image, "mask": mask}, {"image": x}, name="inpaint_generator")


class InpaintAIGN(AIGN):
    """Renders P(G(x), m) = m * G(x); only visible pixels count in the reconstruction loss. With a
    learned `decoder` (the supplementary's ablation) D(G(x)) takes the renderer's place."""

    def render(self, predictions: dict, inputs: dict) -> tuple[tf.Tensor, tf.Tensor]:
        if self.decoder is not None:
            return float32(self.decoder(predictions["image"])), inputs["mask"]  # float32 under --precision=bfloat16
        return image_renderer.mask(predictions["image"], inputs["mask"]), inputs["mask"]


def critic(image_shape: tuple[int, int, int], width: int, augment: bool = False) -> keras.Model:
    return layers.image_critic(image_shape, (width, 2 * width, 4 * width, 8 * width), name="image_critic",
                               augment=augment)


class InpaintTask(image_tasks.ImageTask):
    """Biased inpainting: the masked image and its mask in, the complete image out."""

    name = "inpaint"
    Options = InpaintOptions

    def build_model(self) -> AIGN:
        shape, width = self.data.image_shape, self.options.width
        critics = {"image": critic(shape, width, self.options.critic_augment)}
        return InpaintAIGN(generator(shape, width), critics, **self.aign_weights())

    def examples(self, images: tf.data.Dataset, seed: int) -> tf.data.Dataset:
        """Adds the mask, the masked input and the observation to each {"image", "label"} element."""
        kind = self.options.mask

        def example(index, element):
            image = element["image"]
            height, width = image.shape[0], image.shape[1]
            visible = visible_mask(kind, height, width, tf.stack([tf.constant(seed, tf.int64), index]))
            masked = image_renderer.mask(image, visible)
            return batches.example({"image": masked, "mask": visible}, masked, targets={"image": image},
                                   label=element["label"])

        return images.enumerate().map(example, num_parallel_calls=tf.data.AUTOTUNE)

    def evaluate(self, model: AIGN) -> dict[str, float]:
        """Render error on the visible pixels, error of the hidden region against the true image, and
        what the project's classifier makes of the predictions and of the completions (the visible input
        pixels kept, the hidden ones from G(x)): identity kept, share of the bias class (not for a
        collection without classes).

        With the renderer, the render error and the prediction's error on the visible pixels are the
        same number; with a learned decoder (`aign_tf.tasks.decoder_ablation`) they differ."""
        data, judge = self.data, self.judge
        sums = dict.fromkeys(("render", "prediction_visible", "visible_n", "hidden", "hidden_n", "blank"), 0.0)
        classes = {"prediction": [], "completed": [], "masked": [], "truth": []}
        labels = []
        for batch in self.eval_dataset():
            predicted = model(batch["inputs"], training=False)["image"]
            rendered, _ = model.render({"image": predicted}, batch["inputs"])
            mask, truth = batch["inputs"]["mask"], batch["targets"]["image"]
            channels = truth.shape[-1]
            sums["render"] += float(tf.reduce_sum(mask * tf.square(rendered - batch["observed"])))
            sums["prediction_visible"] += float(tf.reduce_sum(mask * tf.square(predicted - truth)))
            sums["visible_n"] += float(tf.reduce_sum(mask)) * channels
            sums["hidden"] += float(tf.reduce_sum((1 - mask) * tf.square(predicted - truth)))
            sums["hidden_n"] += float(tf.reduce_sum(1 - mask)) * channels
            sums["blank"] += float(tf.reduce_sum((1 - mask) * tf.square(truth)))
            completed = mask * batch["inputs"]["image"] + (1.0 - mask) * predicted
            judged = (("prediction", predicted), ("completed", completed), ("masked", batch["inputs"]["image"]),
                      ("truth", truth)) if judge is not None else ()
            for name, images in judged:
                classes[name].append(judge(images)[0])
            labels.append(batch["label"].numpy())
        labels = np.concatenate(labels)
        hidden_mse = sums["hidden"] / max(sums["hidden_n"], 1.0)
        metrics = {
            "render_mse_visible": sums["render"] / max(sums["visible_n"], 1.0),
            "prediction_mse_visible": sums["prediction_visible"] / max(sums["visible_n"], 1.0),
            "hidden_mse": hidden_mse,
            "hidden_psnr_db": float(10 * np.log10(1.0 / max(hidden_mse, 1e-12))),
            "hidden_mse_left_blank": sums["blank"] / max(sums["hidden_n"], 1.0),  # reference: no inpainting
        }
        if judge is not None:
            classes = {name: np.concatenate(c) for name, c in classes.items()}
            metrics["classifier_test_accuracy"] = judge.test_accuracy
            for name, key in (("prediction", "prediction"), ("completion", "completed"), ("masked_input", "masked")):
                metrics[f"{name}_accuracy"] = float(np.mean(classes[key] == labels))
        metrics["examples"] = float(len(labels))
        if data.bias_label is not None:
            metrics["bias_share_completions"] = float(np.mean(classes["completed"] == data.bias_label))
            metrics["bias_share_true_images"] = float(np.mean(classes["truth"] == data.bias_label))
        return metrics


    def images(self, model: AIGN, batch: dict) -> dict[str, tf.Tensor]:
        predicted = model(batch["inputs"], training=False)["image"]
        rendered, _ = model.render({"image": predicted}, batch["inputs"])
        mask = batch["inputs"]["mask"]
        grids = {"input": batch["inputs"]["image"], "render": rendered, "prediction": predicted,
                 "completed": mask * batch["inputs"]["image"] + (1.0 - mask) * predicted,
                 "truth": batch["targets"]["image"]}
        if "memories" in batch:  # training batches
            grids["memories"] = batch["memories"]["image"]
        return grids


    def serving(self, model: AIGN) -> dict:
        """serving_default  uint8 image [N, H, W, C] and uint8 mask [N, H, W, 1] (nonzero = visible) ->
                         uint8 "completed", the completion (visible input pixels kept, hidden ones from
                         G(x)), and uint8 "prediction", G(x) itself
        render           float image [N, H, W, C] in [0, 1] and float 0/1 mask -> float "rendered", the
                         renderer's P(image, mask) (the learned decoder's output in the decoder ablation)"""
        rows, cols, channels = model.generator.input["image"].shape[1:]

        def complete(inputs):
            visible = tf.minimum(tf.cast(inputs["mask"], tf.float32), 1.0)
            masked = image_renderer.mask(image_from_uint8(inputs["image"]), visible)
            predicted = model.generator({"image": masked, "mask": visible}, training=False)["image"]
            return {"completed": image_to_uint8(masked + (1.0 - visible) * predicted),
                    "prediction": image_to_uint8(predicted)}

        def render(inputs):
            rendered, _ = model.render({"image": inputs["image"]}, {"mask": inputs["mask"]})
            return {"rendered": rendered}

        return {"serving_default": signature([spec("image", (rows, cols, channels), tf.uint8),
                                              spec("mask", (rows, cols, 1), tf.uint8)], complete),
                "render": signature([spec("image", (rows, cols, channels)), spec("mask", (rows, cols, 1))], render)}
