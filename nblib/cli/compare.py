"""``nblib compare``: two runs or two batches side by side."""

from __future__ import annotations

import argparse

from nblib.cli.output import print_table


def _cmd_compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from nblib.run.compare import compare

    result = compare(args.run_a, args.run_b, rtol=args.rtol)
    print(f"verdicts ({args.run_a} -> {args.run_b}):")
    print_table(pd.DataFrame(result.verdicts), "table")
    changed = [m for m in result.metrics if m["beyond"]]
    print(f"\nmetrics beyond rtol={args.rtol:g}: {len(changed)} of {len(result.metrics)}")
    if changed:
        print_table(pd.DataFrame(changed).drop(columns="beyond"), "table")
    for side, names in (("only in A", result.only_a), ("only in B", result.only_b)):
        if names:
            print(f"{side}: {', '.join(names)}")
    if result.verdict_changed:
        moved = [v["run"] for v in result.verdicts if v["changed"]]
        print(f"\nverdict changed: {', '.join(moved)}")
        return 1
    return 0


def register(sub) -> None:
    cmp_ = sub.add_parser(
        "compare",
        help="two runs or two batches side by side; exit 1 when a verdict changed",
        description="RUN_A and RUN_B: run folders (with metrics.json) or batch folders "
        "(runs in subfolders, paired by name).",
    )
    cmp_.add_argument("run_a")
    cmp_.add_argument("run_b")
    cmp_.add_argument(
        "--rtol", type=float, default=0.05, help="relative tolerance of metrics (default 0.05)"
    )
    cmp_.set_defaults(func=_cmd_compare)
