#!/bin/bash
# The README's speed comparison: the default inpaint step (--nogating, batch 32, in-memory batches) in
# aign_tf and in PyTorch (zoo/pytorch_inpaint.py, eager and torch.compile), in interleaved rounds on an
# otherwise idle machine; prints each framework's median examples/s.
#
#   TORCH_PYTHON=/path/to/python-with-torch bash zoo/compare_pytorch.sh [ROUNDS=8] [STEPS=50] [EXTRA aign_tf flags]
set -euo pipefail
rounds=${1:-8}; steps=${2:-50}; shift $(( $# < 2 ? $# : 2 ))
torch_python=${TORCH_PYTHON:?set TORCH_PYTHON to a python that has torch}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
for round in $(seq "$rounds"); do
  python -m aign_tf.zoo.benchmark --task=inpaint --nogating --steps="$steps" --out="$out/tf-$round.json" "$@" \
    > /dev/null 2>&1
  "$torch_python" "$here/pytorch_inpaint.py" time --steps="$steps" | sed 's/.*: //; s/ examples.*//' > "$out/eager-$round"
  "$torch_python" "$here/pytorch_inpaint.py" time --compile --steps="$steps" 2> /dev/null \
    | sed 's/.*: //; s/ examples.*//' > "$out/compile-$round"
  echo "round $round: aign_tf $(python -c "import json; print(round(json.load(open('$out/tf-$round.json'))['numbers']['step_examples_per_s'], 1))"), eager $(cat "$out/eager-$round"), compile $(cat "$out/compile-$round")"
done
python - "$out" <<'EOF'
import glob, json, statistics, sys
out = sys.argv[1]
tf = [json.load(open(f))["numbers"]["step_examples_per_s"] for f in glob.glob(f"{out}/tf-*.json")]
eager = [float(open(f).read()) for f in glob.glob(f"{out}/eager-*")]
compiled = [float(open(f).read()) for f in glob.glob(f"{out}/compile-*")]
med = statistics.median
print(f"medians over {len(tf)} rounds, examples/s: aign_tf {med(tf):.1f}, PyTorch eager {med(eager):.1f}, "
      f"torch.compile {med(compiled):.1f}; aign_tf / eager {med(tf) / med(eager):.2f}, "
      f"aign_tf / compile {med(tf) / med(compiled):.2f}")
EOF
