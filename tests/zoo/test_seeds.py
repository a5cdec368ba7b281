"""python -m aign_tf.zoo.seeds: means, sample standard deviations and per-seed ratios of evaluated runs,
against values computed by hand."""
import json
import subprocess
import sys

import pytest

from aign_tf.errors import UserError
from aign_tf.zoo import cli, seeds


def write_runs(root, name, values):
    """Dirs root/name-s0.. holding metrics.json files with `values` ({metric: [per seed]})."""
    dirs = []
    for seed in range(len(next(iter(values.values())))):
        run = root / f"{name}-s{seed}"
        run.mkdir()
        (run / "metrics.json").write_text(json.dumps({"metrics": {m: v[seed] for m, v in values.items()}, "step": 9}))
        dirs.append(str(run))
    return ",".join(dirs)


def test_rows_ratios_and_json_from_the_command_line(tmp_path):
    pretrain = write_runs(tmp_path, "pre", {"trl_err": [0.6, 0.7, 0.8], "geometric/trl_err": [0.5, 0.5, 0.5]})
    selfsup = write_runs(tmp_path, "self", {"trl_err": [0.3, 0.14, 0.2], "rot_err": [0.01, 0.02, 0.03]})
    out = tmp_path / "seeds.json"
    done = subprocess.run([sys.executable, "-m", "aign_tf.zoo.seeds", "--metrics=trl_err,rot_err",
                           f"--row=Pretrain={pretrain}", f"--row=Pret.+SelfSup, AIGN={selfsup}",
                           f"--row=Geometric=geometric/@{pretrain}", "--ratio=Pret.+SelfSup, AIGN/Pretrain",
                           f"--out={out}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[:5] == ["| model | trl_err | rot_err |", "| --- | ---: | ---: |",
                         "| Pretrain | 0.7 ± 0.1 | - |",  # sd of 0.6, 0.7, 0.8 with n - 1: 0.1
                         "| Pret.+SelfSup, AIGN | 0.2133 ± 0.081 | 0.02 ± 0.01 |", "| Geometric | 0.5 | - |"]
    # sd of 0.3, 0.14, 0.2: sqrt((0.0867^2 + 0.0733^2 + 0.0133^2) / 2) = 0.0808; ratios 0.5, 0.2, 0.25: mean 0.3167, sd sqrt(((0.1833)^2 + (0.1167)^2 + (0.0667)^2) / 2) = 0.1607
    assert "Pret.+SelfSup, AIGN/Pretrain, trl_err: 0.3167 ± 0.16 (per seed 0.5, 0.2, 0.25)" in lines
    written = json.loads(out.read_text())
    assert written["rows"]["Pretrain"]["trl_err"]["per_seed"] == [0.6, 0.7, 0.8]
    assert written["rows"]["Geometric"]["trl_err"]["dirs"] == pretrain.split(",")
    assert written["ratios"]["Pret.+SelfSup, AIGN/Pretrain"]["trl_err"]["sd"] == pytest.approx(0.160728, abs=1e-6)


def test_bad_rows_are_one_line_errors(tmp_path):
    runs = write_runs(tmp_path, "a", {"x": [1.0, 2.0]})
    with pytest.raises(UserError, match="is not LABEL=DIR1,DIR2"):
        cli.parse_row("no-equals-sign")
    with pytest.raises(UserError, match=r"missing/metrics.json does not exist: run python -m aign_tf.zoo.evaluate"):
        seeds.aggregate([("A", "", [str(tmp_path / "missing")])], ["x"], [])
    with pytest.raises(UserError, match="the rows have 2 and 1 seeds"):
        seeds.aggregate([("A", "", runs.split(",")), ("B", "", runs.split(",")[:1])], ["x"], ["A/B"])
    with pytest.raises(UserError, match=r"--ratio=A/C is not A/B with A and B labels of --row values \(A\)"):
        seeds.aggregate([("A", "", runs.split(","))], ["x"], ["A/C"])
