"""``nblib bench NAME``: run one benchmark of :mod:`nblib.bench`, one JSON line per figure."""

from __future__ import annotations

import argparse

from nblib.cli.output import print_json_lines


def _cmd_bench(args: argparse.Namespace) -> int:
    from nblib.bench import run_benchmark

    print_json_lines(run_benchmark(args.name, **({"items": args.items} if args.items else {})))
    return 0


def register(sub) -> None:
    bench = sub.add_parser("bench", help="run a benchmark; prints one JSON line per figure")
    bench.add_argument("name", help="benchmark name, e.g. loader")
    bench.add_argument(
        "--items", type=int, help="samples per measurement (default: the benchmark's own)"
    )
    bench.set_defaults(func=_cmd_bench)
