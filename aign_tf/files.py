"""Writing files so that no reader ever sees half of one, whatever else writes at the same time.

`replaced(path)` yields a temporary path unique to this call, in the target's own directory (so the
final `os.replace` is atomic, on the same file system); when the block ends without an error the
file takes the target's name at once, and on an error it is removed. Two processes writing the same
cache at once therefore each write their own temporary file, and the last rename wins with a whole
file. Every cache, config, metrics file and prediction file is written this way.

`locked(directory)` is for what cannot be written as one file (a TFDS build): the second process
asking for it waits until the first one has finished, then finds it done.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from typing import Iterator


@contextlib.contextmanager
def replaced(path: str) -> Iterator[str]:
    """A unique temporary path next to `path`, renamed to `path` when the block succeeds. The
    temporary name keeps `path`'s extension (e.g. `.keras`, `.npz`), which some writers require."""
    directory, name = os.path.split(os.path.abspath(path))
    stem, extension = os.path.splitext(name)
    handle, temporary = tempfile.mkstemp(prefix=f".{stem}-", suffix=f".tmp{extension}", dir=directory)
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, 0o644)  # mkstemp made it private; the file is as readable as any other
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


@contextlib.contextmanager
def locked(directory: str) -> Iterator[None]:
    """Holds an exclusive lock on `directory` (made if missing; nothing is written into it) for the
    block, waiting while another process, or another call in this one, holds it. The kernel releases
    the lock if its holder dies."""
    os.makedirs(directory, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# What TensorFlow's own failed writes (checkpoints, SavedModel variables) say, where Python would
# raise an OSError.
WRITE_FAILURES = ("No space left on device", "Disk quota exceeded", "Read-only file system", "Permission denied",
                  "File too large")


def write_failure(error: Exception) -> str | None:
    """The reason, if `error` is a TensorFlow write that failed for want of room or permission."""
    message = getattr(error, "message", "")
    return next((reason for reason in WRITE_FAILURES if reason in message), None)


def write_json(path: str, payload: dict) -> None:
    """Writes `payload` to `path` atomically (a reader sees the old file or the new one)."""
    with replaced(path) as temporary, open(temporary, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
