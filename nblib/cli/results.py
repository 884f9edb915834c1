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


def _cmd_merge(args: argparse.Namespace) -> int:
    from nblib.eval.shards import merge_shards

    merged = merge_shards(args.shards, args.out, overwrite=args.overwrite)
    missing = merged["missing"]
    state = "complete" if merged["complete"] else "incomplete"
    print(f"{merged['rows']} episodes from {len(args.shards)} shard(s) -> {args.out} ({state})")
    if missing:
        shown = ", ".join(missing[:20]) + (
            f", ... ({len(missing)} in all)" if len(missing) > 20 else ""
        )
        print(f"missing: {shown}")
        print(
            "rerun the shard(s) holding them (nblib eval ... --shard I/N --resume), then merge again"
        )
        return 1
    if not merged["complete"]:
        print(
            "note: a shard's run did not finish (its rows are complete=False); rerun it with --resume"
        )
        return 1
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

    merge = rsub.add_parser(
        "merge",
        help="join the shard files of one `nblib eval --shard I/N` run into one results file",
        description="Join shard files (nblib eval --shard I/N --out ...) into --out, refusing "
        "two shards that hold the same episode and listing the episodes no shard holds. "
        "Exit status 1 when episodes are missing or a shard did not finish.",
    )
    merge.add_argument("shards", nargs="+", help="the shards' --out files (.csv or .jsonl)")
    merge.add_argument("--out", required=True, help="merged results file, .csv or .jsonl")
    merge.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    merge.set_defaults(func=_cmd_merge)

    base = rsub.add_parser("baselines", help="published LIBERO / LIBERO-Plus / LIBERO-PRO tables")
    base.add_argument(
        "--benchmark",
        choices=("libero", "libero_plus", "libero_pro"),
        default="libero",
        help="default %(default)s",
    )
    base.add_argument("--format", choices=FORMATS, default="table", help="default %(default)s")
    base.set_defaults(func=_cmd_baselines)
