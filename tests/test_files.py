"""Atomic writes: unique temporary names, so concurrent writers never collide and readers never see
half a file; a failed write leaves the old file and no litter."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from aign_tf import files


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    path = tmp_path / "config.json"
    files.write_json(str(path), {"a": 1})
    with pytest.raises(RuntimeError):
        with files.replaced(str(path)) as temporary, open(temporary, "w") as f:
            f.write('{"a": ')
            raise RuntimeError("disk full")
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["config.json"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_temporary_names_are_unique_and_keep_the_extension(tmp_path):
    with files.replaced(str(tmp_path / "model.keras")) as first, files.replaced(str(tmp_path / "model.keras")) as second:
        assert first != second and first.endswith(".keras") and os.path.dirname(first) == str(tmp_path)
        open(first, "w").write("1")
        open(second, "w").write("2")
    assert (tmp_path / "model.keras").read_text() == "1"  # the first block ended last
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]


def test_concurrent_writers_of_one_cache_never_fail(tmp_path):
    """Four processes writing the same file 200 times each (the MNIST and classifier caches, written by
    every process that finds them missing): no error, and the file is always whole."""
    target = tmp_path / "cache.npz"
    code = ("import sys, numpy as np; from aign_tf import files\n"
            "for i in range(200):\n"
            "    with files.replaced(sys.argv[1]) as t, open(t, 'wb') as f:\n"
            "        np.savez_compressed(f, x=np.full(1000, int(sys.argv[2])))\n")
    writers = [subprocess.Popen([sys.executable, "-c", code, str(target), str(k)], stderr=subprocess.PIPE, text=True)
               for k in range(4)]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    with np.load(target) as cached:
        assert len(set(cached["x"])) == 1
    assert sorted(os.listdir(tmp_path)) == ["cache.npz"]
