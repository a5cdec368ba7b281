"""Test-wide settings: quiet TensorFlow, a private cache for trained classifiers, and the groups
that `pytest -n 2 --dist loadgroup` (pytest-xdist) keeps on one worker."""
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    os.environ.setdefault("AIGN_TF_CACHE", os.path.join(str(config.rootpath), ".pytest_cache", "aign_tf"))


def pytest_collection_modifyitems(config, items):
    """Under xdist, the tests that share a fixture built once per session (grouped by the fixture, such
    as the `exports` of tests/export/conftest.py, about a minute to build) or once per file (grouped by
    the file) stay on one worker; the others go wherever a worker is free."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        scopes = {name: defs[-1].scope for name, defs in item._fixtureinfo.name2fixturedefs.items()
                  if defs[-1].baseid}  # the project's fixtures, not pytest's own (tmp_path_factory)
        per_session = sorted(name for name, scope in scopes.items() if scope in ("package", "session"))
        if per_session:
            item.add_marker(pytest.mark.xdist_group(per_session[0]))
        elif "module" in scopes.values():
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
