"""A Python toolchain for the interpreter of the active environment (venv, conda, pyenv, system).

The interpreter is $PYTHON_BIN_PATH if set, else the first `python3` (then `python`) on PATH when
Bazel runs, resolved to its real executable with `sys.executable` (so pyenv shims and venvs work).
Tests then import TensorFlow and the other dependencies from that environment. The repository is
re-created when PATH, PYTHON_BIN_PATH or VIRTUAL_ENV change.
"""

def _local_python_impl(rctx):
    python = rctx.os.environ.get("PYTHON_BIN_PATH") or rctx.which("python3") or rctx.which("python")
    if not python:
        fail("No Python interpreter: put the environment with aign_tf's dependencies on PATH " +
             "(activate it) or set PYTHON_BIN_PATH.")
    found = rctx.execute([python, "-c", "import sys; print(sys.executable)"])
    if found.return_code != 0 or not found.stdout.strip():
        fail("%s did not run: %s" % (python, found.stderr))
    executable = found.stdout.strip()
    rctx.file("BUILD", """\
load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")

# Interpreter found at set-up: {python} -> {executable}
py_runtime(
    name = "python3",
    interpreter_path = "{executable}",
    python_version = "PY3",
    stub_shebang = "#!{executable}",
)

py_runtime_pair(
    name = "runtime_pair",
    py3_runtime = ":python3",
)

toolchain(
    name = "toolchain",
    toolchain = ":runtime_pair",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
""".format(python = python, executable = executable))

local_python = repository_rule(
    implementation = _local_python_impl,
    environ = ["PATH", "PYTHON_BIN_PATH", "VIRTUAL_ENV"],
    local = True,
)
