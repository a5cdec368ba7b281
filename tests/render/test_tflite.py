"""Each renderer converts to TFLite with builtin ops only (no Flex) and matches TensorFlow."""

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from aign_tf.render import camera, image, warp


def assert_tflite_matches_tf(function, **inputs):
    """Converts `function` at the inputs' fixed shapes and compares the interpreter with TF."""
    signature = [tf.TensorSpec(value.shape, tf.float32, name=name) for name, value in inputs.items()]
    module = tf.Module()  # the converter takes signatures from a trackable object
    module.render = tf.function(function, input_signature=signature)
    concrete = module.render.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # a Flex op fails
    interpreter = Interpreter(model_content=converter.convert())
    outputs = interpreter.get_signature_runner()(**inputs)
    expected = tf.nest.flatten(function(**inputs))
    assert len(outputs) == len(expected)
    for index, value in enumerate(expected):
        np.testing.assert_allclose(outputs[f"output_{index}"], value.numpy(), atol=1e-5)


def random(*shape, low=0.0, high=1.0, seed=0):
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(np.float32)


def test_mask_converts():
    def render(images, visible):
        return image.mask(images, visible)

    visible = (random(2, 8, 8, 1, seed=1) > 0.5).astype(np.float32)
    assert_tflite_matches_tf(render, images=random(2, 8, 8, 3), visible=visible)


def test_downsample_converts():
    def render(images):
        return image.downsample(images, 4)

    assert_tflite_matches_tf(render, images=random(2, 8, 12, 3))


def test_pose_projection_converts():
    def render(points, angles, translation, focal, principal_point):
        posed = camera.transform(points, camera.rotation_xyz(angles), translation)
        return camera.project(posed, focal, principal_point)

    assert_tflite_matches_tf(
        render,
        points=random(2, 15, 3, low=-1.0),
        angles=random(2, 3, low=-np.pi, high=np.pi, seed=1),
        translation=np.array([[0.0, 0.0, 5.0], [0.1, -0.2, 6.0]], np.float32),
        focal=np.full((2, 1, 2), 100.0, np.float32),
        principal_point=np.full((2, 1, 2), 32.0, np.float32),
    )


def test_warp_converts():
    def render(image2, depth, angles, translation, focal, principal_point):
        rotation = camera.rotation_xyz(angles)
        return warp.warp(image2, depth, rotation, translation, focal, principal_point)

    assert_tflite_matches_tf(
        render,
        image2=random(2, 8, 10, 3),
        depth=random(2, 8, 10, 1, low=2.0, high=6.0, seed=1),
        angles=random(2, 3, low=-0.05, high=0.05, seed=2),
        translation=random(2, 3, low=-0.5, high=0.5, seed=3),
        focal=np.array([[12.0, 12.0], [10.0, 11.0]], np.float32),
        principal_point=np.array([[4.5, 3.5], [5.0, 4.0]], np.float32),
    )
