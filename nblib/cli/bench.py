"""``nblib bench NAME``: run one benchmark of :mod:`nblib.bench`, one JSON line per figure."""

from __future__ import annotations

import argparse

from nblib.cli.output import print_json_lines
from nblib.errors import ParameterError


def _cmd_bench(args: argparse.Namespace) -> int:
    from nblib.bench import run_benchmark

    kwargs = {"items": args.items} if args.items else {}
    if args.fresh:
        if args.name != "suite":
            raise ParameterError(f"--fresh applies to `nblib bench suite`, not {args.name!r}")
        kwargs["fresh"] = True
    print_json_lines(run_benchmark(args.name, **kwargs))
    return 0


def _options(parser: argparse.ArgumentParser) -> None:
    from nblib.bench import ABOUT

    width = max(map(len, ABOUT))
    parser.epilog = "benchmarks:\n" + "\n".join(
        f"  {name:<{width}}  {about}" for name, about in ABOUT.items()
    )
    parser.add_argument("name", help="benchmark name (listed below)")
    parser.add_argument(
        "--items", type=int, help="samples per measurement (default: the benchmark's own)"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="suite: time a newcomer's `make suite` (venv, data, notebooks) on a fresh clone",
    )


def register(sub) -> None:
    bench = sub.add_parser(
        "bench",
        help="run a benchmark; prints one JSON line per figure",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # one line per benchmark
        populate=_options,  # the list comes from nblib.bench, imported only here
    )
    bench.set_defaults(func=_cmd_bench)
