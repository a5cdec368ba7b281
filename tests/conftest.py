"""Test-wide settings: quiet TensorFlow, a private cache for trained classifiers."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    os.environ.setdefault("AIGN_TF_CACHE", os.path.join(str(config.rootpath), ".pytest_cache", "aign_tf"))
