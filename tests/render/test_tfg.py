"""aign_tf.render.tfg's fast `export_api` gives every tensorflow-graphics module it imports the same
`__all__` as tensorflow-graphics' own (run unpatched in a fresh process)."""
import json
import subprocess
import sys

from aign_tf.render import tfg

EXPORTS = ("import json, sys; {imports}; print(json.dumps({{name: list(module.__all__) for name, module in "
           "sorted(sys.modules.items()) if name.startswith('tensorflow_graphics') and hasattr(module, '__all__')}}))")


def test_every_imported_module_exports_what_tensorflow_graphics_itself_computes():
    plain = EXPORTS.format(imports="from tensorflow_graphics.geometry.transformation import rotation_matrix_3d; "
                                   "from tensorflow_graphics.rendering.camera import perspective")
    fast = EXPORTS.format(imports="import aign_tf.render.tfg")
    processes = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True) for code in (plain, fast)]
    expected, measured = (json.loads(process.communicate(timeout=300)[0]) for process in processes)
    assert len(expected) > 20 and "tensorflow_graphics.rendering.camera.perspective" in expected
    assert measured == expected
    assert tfg.perspective.project is not None and "from_euler" in tfg.rotation_matrix_3d.__all__
