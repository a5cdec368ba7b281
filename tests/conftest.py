"""Test-wide settings: quiet TensorFlow, a private cache for trained classifiers, and the groups
that `pytest -n 2 --dist loadgroup` (pytest-xdist) keeps on one worker."""
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    os.environ.setdefault("AIGN_TF_CACHE", os.path.join(str(config.rootpath), ".pytest_cache", "aign_tf"))


def pytest_collection_modifyitems(config, items):
    """Under xdist, the tests that share a fixture built once per file (or per session, as the
    `exports` of tests/export/conftest.py, about a minute to build) stay on one worker; the others
    go wherever a worker is free."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        shared = {name: defs[-1].scope for name, defs in item._fixtureinfo.name2fixturedefs.items()
                  if defs[-1].baseid}  # the project's fixtures, not pytest's own (tmp_path_factory)
        if "exports" in shared:
            item.add_marker(pytest.mark.xdist_group("exports"))
        elif any(scope in ("module", "package", "session") for scope in shared.values()):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
