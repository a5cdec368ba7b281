"""Biased super-resolution (paper §2.3, supplementary §2.3).

Input x: a low-resolution image, the true image average-pooled by 4 (28x28 MNIST -> 7x7).
Generator: a 3x3 conv with `width` (64) channels and ReLU, `blocks` residual blocks (conv, BN, ReLU,
conv, BN, plus the skip), and two stride-2 deconvolutions, the last to the image's channels with a
sigmoid: G(x) is 4x larger on each side.
Renderer: P(G(x)) = 4x4 average pooling; the reconstruction loss is the L2 distance to x.
Critic: five conv layers (leaky ReLU, batch norm after all but the first) and one FC score, on
high-resolution images: G(x) against memories, images from a part of the collection disjoint from
the inputs. `bias=CLASS` keeps only that class in the memories; beta (eq. 1) sets how far the
memories' high frequencies override the input's low ones.
"""
from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from aign_tf.core import AIGN, batches
from aign_tf.errors import UserError
from aign_tf.export.signatures import image_from_uint8, image_to_uint8, signature, spec
from aign_tf.nets import layers
from aign_tf.render import image as image_renderer
from aign_tf.tasks import image_tasks
from aign_tf.tasks.options import option

FACTOR = 4  # the paper's 4x super-resolution


@dataclasses.dataclass(frozen=True)
class SuperresOptions(image_tasks.ImageOptions):
    width: int = option(64, "Generator channels (the paper's 64); the critic's first layer has half.", minimum=2)
    blocks: int = option(4, "Residual blocks of the generator (the paper's n is not given).", minimum=0)


def generator(image_shape: tuple[int, int, int], width: int, blocks: int) -> keras.Model:
    rows, cols, channels = image_shape
    if rows % FACTOR or cols % FACTOR:
        raise UserError(f"super-resolution needs image sides divisible by {FACTOR}, got {rows}x{cols}; "
                        "pass --image_size")
    low = keras.Input((rows // FACTOR, cols // FACTOR, channels), name="image")
    x = keras.layers.Conv2D(width, 3, padding="same", kernel_initializer=layers.initializer(), activation="relu")(low)
    for _ in range(blocks):
        x = layers.residual_block(x, width)
    x = layers.conv(x, width, transpose=True, activation="relu")
    x = layers.conv(x, channels, transpose=True, norm=False, activation="sigmoid")
    return keras.Model({"image": low}, {"image": x}, name="superres_generator")


def critic(image_shape: tuple[int, int, int], width: int, augment: bool = False) -> keras.Model:
    half = width // 2
    return layers.image_critic(image_shape, (half, width, 2 * width, 4 * width, 4 * width), name="image_critic",
                               augment=augment)


class SuperresAIGN(AIGN):
    """Renders P(G(x)) = 4x4 average pooling of the predicted image; every pixel counts."""

    def render(self, predictions: dict, inputs: dict) -> tuple[tf.Tensor, None]:
        del inputs
        return image_renderer.downsample(predictions["image"], FACTOR), None


def bicubic(low: tf.Tensor) -> tf.Tensor:
    """The reference without learning: bicubic upsampling by 4, clipped to [0, 1]."""
    size = (low.shape[1] * FACTOR, low.shape[2] * FACTOR)
    return tf.clip_by_value(tf.image.resize(low, size, method="bicubic"), 0.0, 1.0)


def nearest(low: tf.Tensor) -> tf.Tensor:
    """Each low-resolution pixel as a 4x4 block (for display)."""
    return tf.repeat(tf.repeat(low, FACTOR, axis=1), FACTOR, axis=2)


class SuperresTask(image_tasks.ImageTask):
    """Biased 4x super-resolution: a low-resolution image in, the high-resolution image out."""

    name = "superres"
    Options = SuperresOptions

    def build_model(self) -> AIGN:
        shape, width = self.data.image_shape, self.options.width
        return SuperresAIGN(generator(shape, width, self.options.blocks),
                            {"image": critic(shape, width, self.options.critic_augment)}, **self.aign_weights())

    def examples(self, images: tf.data.Dataset, seed: int) -> tf.data.Dataset:
        """{"image", "label"} -> the low-resolution input and observation, the image as target."""
        del seed  # the renderer is deterministic

        def example(element):
            low = image_renderer.downsample(element["image"], FACTOR)
            return batches.example({"image": low}, low, targets={"image": element["image"]}, label=element["label"])

        return images.map(example, num_parallel_calls=tf.data.AUTOTUNE)

    def evaluate(self, model: AIGN) -> dict[str, float]:
        """For the predictions G(x), the bicubic reference and the true images:

        consistency_psnr_db  PSNR of the pooled image against the input x (the renderer's view)
        psnr_db, ssim        fidelity to the true high-resolution image
        accuracy             the project's classifier assigns the input's true class
        bias_share           ... assigns the bias class (with --bias)
        kid, fid             distances of the classifier's features to those of the memories
        (the last three not for a collection without classes)
        """
        data, judge = self.data, self.judge
        sources = ("prediction", "bicubic", "truth")
        rows = {s: {"consistency_psnr_db": [], "psnr_db": [], "ssim": [], "classes": [], "features": []}
                for s in sources}
        labels = []
        for batch in self.eval_dataset():
            low, truth = batch["inputs"]["image"], batch["targets"]["image"]
            images = {"prediction": model(batch["inputs"], training=False)["image"], "bicubic": bicubic(low),
                      "truth": truth}
            for source, image in images.items():
                row = rows[source]
                row["consistency_psnr_db"].append(image_tasks.psnr(image_renderer.downsample(image, FACTOR), low))
                row["psnr_db"].append(image_tasks.psnr(image, truth))
                row["ssim"].append(image_tasks.ssim(image, truth))
                if judge is not None:
                    classes, features = judge(image)
                    row["classes"].append(classes)
                    row["features"].append(features)
            labels.append(batch["label"].numpy())
        labels = np.concatenate(labels)
        metrics = {} if judge is None else {"classifier_test_accuracy": judge.test_accuracy}
        metrics.update(examples=float(len(labels)), memories=float(data.sizes["memory"]))
        memories = None if judge is None else judge.memories()
        for source in sources:
            row = {name: np.concatenate(values) for name, values in rows[source].items() if values}
            if source != "truth":  # the truth's own fidelity is perfect by definition
                for name in ("consistency_psnr_db", "psnr_db", "ssim"):
                    metrics[f"{source}_{name}"] = float(np.mean(row[name]))
            if judge is None:
                continue
            metrics[f"{source}_accuracy"] = float(np.mean(row["classes"] == labels))
            if data.bias_label is not None:
                metrics[f"{source}_bias_share"] = float(np.mean(row["classes"] == data.bias_label))
            metrics[f"{source}_kid"] = image_tasks.kernel_inception_distance(row["features"], memories)
            metrics[f"{source}_fid"] = image_tasks.frechet_distance(row["features"], memories)
        return metrics


    def images(self, model: AIGN, batch: dict) -> dict[str, tf.Tensor]:
        """Rows: input x and render P(G(x)) (each pixel a 4x4 block), bicubic, G(x), truth."""
        low = batch["inputs"]["image"]
        predicted = model(batch["inputs"], training=False)["image"]
        rendered, _ = model.render({"image": predicted}, batch["inputs"])
        grids = {"input": nearest(low), "bicubic": bicubic(low), "prediction": predicted,
                 "render": nearest(rendered), "truth": batch["targets"]["image"]}
        if "memories" in batch:  # training batches
            grids["memories"] = batch["memories"]["image"]
        return grids


    def serving(self, model: AIGN) -> dict:
        """serving_default  uint8 low-resolution image [N, h, w, C] -> uint8 "prediction" [N, 4h, 4w, C], G(x)
        render           float image [N, 4h, 4w, C] -> float "rendered" [N, h, w, C], its 4x4 average pooling"""
        rows, cols, channels = model.generator.input["image"].shape[1:]

        def upsample(inputs):
            predicted = model.generator({"image": image_from_uint8(inputs["image"])}, training=False)["image"]
            return {"prediction": image_to_uint8(predicted)}

        def render(inputs):
            return {"rendered": model.render(inputs, None)[0]}

        return {"serving_default": signature([spec("image", (rows, cols, channels), tf.uint8)], upsample),
                "render": signature([spec("image", (FACTOR * rows, FACTOR * cols, channels))], render)}
