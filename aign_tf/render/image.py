"""Image-space renderers: masking (inpainting, paper sec. 2.4) and average pooling
(super-resolution, sec. 2.3). Images are [..., H, W, C] with any number of leading dimensions."""

import tensorflow as tf

from aign_tf.errors import UserError


def mask(image: tf.Tensor, visible: tf.Tensor) -> tf.Tensor:
    """The inpainting renderer P(G(x), m) = m * G(x).

    Args:
      image: [..., H, W, C] image.
      visible: [..., H, W, 1] or [..., H, W, C] mask, 1 where the pixel is observed and 0 where it
        is hidden; its leading dimensions broadcast against `image`'s.

    Returns:
      [..., H, W, C] masked image.
    """
    with tf.name_scope("mask"):
        image = tf.convert_to_tensor(image)
        visible = tf.convert_to_tensor(visible, dtype=image.dtype)
        if image.shape.rank is not None and image.shape.rank < 3:
            raise UserError(f"image has shape {image.shape}; expected [..., H, W, C].")
        if visible.shape.rank is not None and visible.shape.rank < 3:
            raise UserError(f"visible has shape {visible.shape}; expected [..., H, W, 1].")
        try:
            tf.broadcast_static_shape(image.shape, visible.shape)
        except ValueError:
            raise UserError(
                f"visible {visible.shape} does not match image {image.shape}; expected "
                f"visible [..., H, W, 1] or [..., H, W, C] with the image's H and W."
            ) from None
        return image * visible


def downsample(image: tf.Tensor, factor: int) -> tf.Tensor:
    """The super-resolution renderer: average pooling over `factor` x `factor` blocks.

    Args:
      image: [..., H, W, C] image; H and W must be divisible by `factor`.
      factor: integer pooling size and stride (the paper uses 4).

    Returns:
      [..., H / factor, W / factor, C] image.
    """
    with tf.name_scope("downsample"):
        image = tf.convert_to_tensor(image)
        shape = image.shape
        if shape.rank is not None and shape.rank < 3:
            raise UserError(f"image has shape {shape}; expected [..., H, W, C].")
        if factor < 1:
            raise UserError(f"downsample factor is {factor}; use a positive integer.")
        height, width = shape[-3], shape[-2]
        if (height is not None and height % factor) or (width is not None and width % factor):
            raise UserError(
                f"image height and width {height}x{width} are not divisible by the factor "
                f"{factor}; crop or resize the image to a multiple of {factor}."
            )
        dynamic_shape = tf.shape(image)
        # avg_pool2d wants exactly one batch axis: fold the leading dimensions into it.
        flat = tf.reshape(image, tf.concat([[-1], dynamic_shape[-3:]], axis=0))
        pooled = tf.nn.avg_pool2d(flat, ksize=factor, strides=factor, padding="VALID")
        return tf.reshape(pooled, tf.concat([dynamic_shape[:-3], tf.shape(pooled)[1:]], axis=0))
