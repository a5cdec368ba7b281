"""Where a train step's time goes: self-time per TensorFlow op type (oneDNN's
rewritten names, such as _MklNativeConv2D, under the plain ones), and per group of op types, from a
trace that `python -m aign_tf.zoo.benchmark --task=T --profile=DIR` wrote. The README's performance
section quotes its output. Not part of the package; needs `xprof` (TensorBoard's profile plugin, which
pins its own protobuf: install it in a separate environment that sees aign_tf's, e.g.
`python -m venv --system-site-packages /tmp/xprof && /tmp/xprof/bin/pip install xprof`).

    /tmp/xprof/bin/python zoo/profile_breakdown.py DIR [--top=15]
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import os

# Op types by what they do; the rest is "other".
GROUPS = {
    "convolution": ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "FusedConv2D",
                    "Conv2DBackpropFilterWithBias", "DepthwiseConv2dNative"),
    "matmul": ("MatMul", "BatchMatMulV2", "FusedMatMul", "Einsum"),
    "batch norm": ("FusedBatchNormV3", "FusedBatchNormGradV3", "FusedBatchNormEx", "FusedBatchNormExV3"),
    "elementwise": ("Mul", "Sub", "AddV2", "Add", "AddN", "RealDiv", "DivNoNan", "SquaredDifference", "Square",
                    "Sqrt", "Rsqrt", "Exp", "Log", "Neg", "Abs", "Maximum", "Minimum", "SelectV2", "Relu", "ReluGrad",
                    "LeakyRelu", "LeakyReluGrad", "Sigmoid", "SigmoidGrad", "Softplus", "SoftplusGrad", "Tanh",
                    "TanhGrad", "BiasAdd", "Sin", "Cos", "Atan2", "Less", "Greater", "LogicalOr", "LogicalNot"),
    "optimizer": ("ResourceApplyAdam", "AssignSubVariableOp", "AssignAddVariableOp", "AssignVariableOp",
                  "ReadVariableOp"),
    "control flow": ("If", "StatelessIf", "While", "PartitionedCall", "StatefulPartitionedCall"),
    "reduction": ("Sum", "Mean", "Max", "Min", "Prod", "BiasAddGrad"),
    "data movement": ("Transpose", "ConcatV2", "Pad", "Slice", "StridedSlice", "StridedSliceGrad", "Reshape",
                      "GatherV2", "Tile", "Pack", "Unpack", "SplitV", "Split", "Identity", "IdentityN", "Cast",
                      "BroadcastTo", "Fill", "ZerosLike", "OnesLike"),
}


def op_stats(directory: str) -> list[dict]:
    """Rows of xprof's framework_op_stats tool for the newest trace under `directory`."""
    from xprof.convert import raw_to_tool_data

    traces = sorted(glob.glob(os.path.join(directory, "plugins", "profile", "*", "*.xplane.pb")))
    if not traces:
        raise SystemExit(f"error: no profiler trace under {directory}; run benchmark --profile={directory} first")
    data, _ = raw_to_tool_data.xspace_to_tool_data([traces[-1]], "framework_op_stats", {"use_saved_result": False})
    table = json.loads(data)[0]
    names = [col["id"] for col in table["cols"]]
    return [dict(zip(names, [cell.get("v") if cell else None for cell in row["c"]])) for row in table["rows"]]


def group_of(op_type: str) -> str:
    return next((group for group, types in GROUPS.items() if op_type in types), "other")


def plain_name(op_type: str) -> str:
    """The op type without oneDNN's rewrite prefixes: _MklNativeConv2D -> Conv2D."""
    for prefix in ("_MklNative", "_Mkl", "_"):
        if op_type.startswith(prefix):
            return op_type[len(prefix):]
    return op_type


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    rows = [row for row in op_stats(args.directory) if row["type"] and row["type"] != "IDLE"]
    by_type, by_group = collections.Counter(), collections.Counter()
    for row in rows:
        kind = plain_name(row["type"])
        by_type[kind] += row["total_self_time"]
        by_group[group_of(kind)] += row["total_self_time"]
    total = sum(by_type.values())
    print(f"self-time of all ops: {total / 1e3:.1f} ms")
    print("| group | ms | share |\n| --- | ---: | ---: |")
    for group, time in by_group.most_common():
        print(f"| {group} | {time / 1e3:.1f} | {time / total:.1%} |")
    print(f"\n| op type (top {args.top}) | group | ms | share |\n| --- | --- | ---: | ---: |")
    for kind, time in by_type.most_common(args.top):
        print(f"| {kind} | {group_of(kind)} | {time / 1e3:.1f} | {time / total:.1%} |")


if __name__ == "__main__":
    main()
