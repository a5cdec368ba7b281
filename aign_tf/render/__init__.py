"""Parameter-free differentiable renderers: pure TensorFlow functions with no variables.

Use them through their modules, as in tensorflow-graphics: `camera.project`, `image.downsample`,
`warp.warp`. Conventions (camera frame, pixel coordinates, rotations) are written once, in `camera`.
"""

from aign_tf.render import camera, image, warp

__all__ = ["camera", "image", "warp"]
