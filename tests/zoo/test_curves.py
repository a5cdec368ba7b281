"""python -m aign_tf.zoo.curves over seeds: the mean line and its band, against values computed by hand."""
import json
import subprocess
import sys

import numpy as np
from PIL import Image

from aign_tf.zoo import curves


def test_mean_and_sample_spread_at_the_steps_every_seed_recorded():
    runs = [{0: {"x": 1.0}, 250: {"x": 3.0}, 500: {"y": 7.0}},
            {0: {"x": 3.0}, 250: {"x": 5.0}, 500: {"x": 9.0}}]
    steps, mean, spread = curves.over_seeds(runs, "x")
    assert steps == [0, 250]  # step 500 lacks x in the first seed
    np.testing.assert_allclose(mean, [2.0, 4.0])
    np.testing.assert_allclose(spread, [2 ** 0.5, 2 ** 0.5])  # sample sd of (1, 3) and of (3, 5)
    steps, mean, spread = curves.over_seeds(runs[1:], "x")
    assert steps == [0, 250, 500] and list(mean) == [3.0, 5.0, 9.0] and list(spread) == [0, 0, 0]


def test_rows_over_seeds_from_the_command_line(tmp_path):
    dirs = []
    for seed in range(3):
        run = tmp_path / f"ign-s{seed}"
        run.mkdir()
        run.joinpath("curves.jsonl").write_text("".join(
            json.dumps({"step": step, "trl_err": 0.1 * step + seed}) + "\n" for step in (0, 250, 500)))
        dirs.append(str(run))
    out = tmp_path / "curves.png"
    done = subprocess.run([sys.executable, "-m", "aign_tf.zoo.curves", f"--row=IGN={','.join(dirs)}",
                           f"--row=IGN seed 0={dirs[0]}", "--metrics=trl_err", f"--out={out}"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with Image.open(out) as png:
        assert png.size[0] > 300
    both = subprocess.run([sys.executable, "-m", "aign_tf.zoo.curves", f"--row=IGN={dirs[0]}", f"--model_dir={dirs[1]}",
                           "--metrics=trl_err"], capture_output=True, text=True)
    assert both.returncode == 2 and "give either --model_dir" in both.stderr
    prefixed = subprocess.run([sys.executable, "-m", "aign_tf.zoo.curves", f"--row=IGN=geometric/@{dirs[0]}",
                               "--metrics=trl_err"], capture_output=True, text=True)
    assert prefixed.returncode == 2 and "without PREFIX@" in prefixed.stderr
