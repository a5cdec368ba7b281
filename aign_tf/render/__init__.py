"""Parameter-free differentiable renderers: pure TensorFlow functions with no variables.

Use them through their modules, as in tensorflow-graphics: `camera.project`, `image.downsample`,
`warp.warp`. Conventions (camera frame, pixel coordinates, rotations) are written once, in `camera`.
Import the module you need (`from aign_tf.render import image`): `camera` and `warp` pull in
tensorflow-graphics, which takes seconds to import, and the image tasks do not need it.
"""
