"""The two tensorflow-graphics modules `camera` uses, imported in milliseconds instead of seconds.

Each tensorflow-graphics module ends with `__all__ = export_api.get_functions_and_classes()` (or
`get_modules()`), which calls `inspect.stack()`: that reads the source lines of every frame on the
stack and searches all of `sys.modules`, once per module, and made importing these two modules
cost about 3 s per process after TensorFlow (measured on the 2-core CI machine, 2026-12-03). Every
command of the zoo pays it, so the two functions are replaced, before anything of
tensorflow-graphics but `export_api` is imported, by ones that read the caller's globals directly:
they return the same lists (`tests/render/test_tfg.py` compares them in a fresh process)."""
import inspect
import sys

from tensorflow_graphics.util import export_api


def _public_functions_and_classes() -> list[str]:
    """`export_api.get_functions_and_classes` for the calling module, including its precedence:
    every function, and the classes whose names do not start with an underscore."""
    namespace = sys._getframe(1).f_globals  # pylint: disable=protected-access
    return [name for name, value in sorted(namespace.items())
            if inspect.isfunction(value) or inspect.isclass(value) and not name.startswith("_")]


def _public_submodules() -> list[str]:
    """`export_api.get_modules` for the calling package: its public direct submodules."""
    namespace = sys._getframe(1).f_globals  # pylint: disable=protected-access
    return [name for name, value in sorted(namespace.items()) if inspect.ismodule(value)
            and value.__name__.rsplit(".", 1)[0] == namespace["__name__"] and not name.startswith("_")]


export_api.get_functions_and_classes = _public_functions_and_classes
export_api.get_modules = _public_submodules

# pylint: disable=wrong-import-position
from tensorflow_graphics.geometry.transformation import rotation_matrix_3d  # noqa: E402
from tensorflow_graphics.rendering.camera import perspective  # noqa: E402

__all__ = ["perspective", "rotation_matrix_3d"]
