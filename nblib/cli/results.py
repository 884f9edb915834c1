"""``nblib results``: summaries of LIBERO-style evaluation results, published baselines."""

from __future__ import annotations

import argparse

from nblib.cli.output import FORMATS, print_table
from nblib.errors import ParameterError


def _cmd_summarize(args: argparse.Namespace) -> int:
    from nblib.eval.results import read_results
    from nblib.eval.results.summary import suite_summary, summarize

    if args.label and len(args.label) != len(args.paths):
        raise ParameterError(
            f"--label given {len(args.label)} times for {len(args.paths)} paths; "
            "give one label per path, in the same order"
        )
    frame = read_results(args.paths, suite=args.suite, labels=args.label or None)
    tasks = summarize(frame)
    if args.format != "table":
        print_table(tasks, args.format)
        return 0
    suites = suite_summary(frame)
    for run, group in tasks.groupby("run", sort=False):
        print(f"== {run}")
        print_table(group.drop(columns="run"), "table")
        print("-- per suite (mean over tasks, 95 % interval by ci_method)")
        print_table(suites[suites["run"] == run].drop(columns="run"), "table")
        print()
    incomplete = tasks[~tasks["complete"]]
    if len(incomplete):
        print(
            f"note: {len(incomplete)} task(s) come from interrupted runs or tasks "
            "(complete = False); their counts are what finished before the log ended"
        )
    return 0


def _cmd_baselines(args: argparse.Namespace) -> int:
    from nblib.eval.baselines import baselines

    table = baselines(args.benchmark)
    print_table(table, args.format)
    if args.benchmark == "libero_pro" and args.format == "table":
        print(
            "note: LIBERO-PRO publishes its results as figures only; no numbers are "
            "transcribed. These are its perturbations (the results schema's perturbation)."
        )
    return 0


def register(sub) -> None:
    res = sub.add_parser("results", help="LIBERO-style evaluation results: summaries, baselines")
    rsub = res.add_subparsers(dest="results_command", required=True)
    # A description is printed as written (only argument help is %-formatted): one %.
    summ = rsub.add_parser(
        "summarize",
        help="per run, suite and task: episodes, successes, success rate, Wilson interval",
        description="Result files or folders (run_libero_eval.py logs incl. LIBERO-Plus, "
        "LeRobot eval_info.json and lerobot-eval stdout, vla-evaluation-harness JSON, "
        "per-episode CSV/JSON/JSONL) -> one row per (run, suite, task). Rates in %.",
    )
    summ.add_argument("paths", nargs="+", help="result files or folders")
    summ.add_argument("--suite", help="the suite, for files that do not state theirs")
    summ.add_argument(
        "--label",
        action="append",
        help="run label for the path in the same position (repeat once per path)",
    )
    summ.add_argument("--format", choices=FORMATS, default="table", help="default %(default)s")
    summ.set_defaults(func=_cmd_summarize)

    base = rsub.add_parser("baselines", help="published LIBERO / LIBERO-Plus / LIBERO-PRO tables")
    base.add_argument(
        "--benchmark",
        choices=("libero", "libero_plus", "libero_pro"),
        default="libero",
        help="default %(default)s",
    )
    base.add_argument("--format", choices=FORMATS, default="table", help="default %(default)s")
    base.set_defaults(func=_cmd_baselines)
