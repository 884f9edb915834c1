"""``nblib eval``: closed-loop evaluation in a simulator. Its options are
:class:`nblib.eval.rollout.EvalConfig`'s fields (:mod:`nblib.cli.options`)."""

from __future__ import annotations

import argparse

from nblib.cli.options import add_config_options, config_from, flag_errors
from nblib.cli.output import print_table


def _options(parser: argparse.ArgumentParser) -> None:
    from nblib.eval.libero import SUITE_MAX_STEPS, suite_choices
    from nblib.eval.rollout import INSTRUCTION_MODES, SIMULATORS, EvalConfig

    limits = ", ".join(f"{suite} {steps}" for suite, steps in SUITE_MAX_STEPS.items())
    add_config_options(
        parser,
        EvalConfig,
        choices={"sim": SIMULATORS, "instruction": INSTRUCTION_MODES},
        required=("policy", "episodes"),
        notes={"max_steps": f"LIBERO's limits: {limits} (a LIBERO-PRO suite: its base suite's)"},
        # Listed in errors, not argparse choices: EvalConfig's own check says more (a
        # LIBERO-PRO suite registered without its scene files).
        accepted={"suite": suite_choices()},
    )
    parser.add_argument("--out", required=True, help="results file, .csv or .jsonl")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    mode.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run: keep the episodes --out holds, run the missing ones",
    )


def _cmd_eval(args: argparse.Namespace) -> int:
    from nblib.eval.results.summary import summarize
    from nblib.eval.rollout import evaluate

    config = config_from(args)
    with flag_errors(args):
        frame = evaluate(config, args.out, overwrite=args.overwrite, resume=args.resume)
    columns = ["task", "episodes", "successes", "success_rate", "ci_low", "ci_high"]
    table = summarize(frame)[(["suite"] if config.sim == "libero" else []) + columns]
    print_table(table, "table")
    print(f"{len(frame)} episodes -> {args.out}")
    return 0


def register(sub) -> None:
    ev = sub.add_parser(
        "eval",
        help="closed-loop evaluation in a simulator; one row per episode (results schema)",
        description="Run a policy for N episodes per task with fixed seeds and write every "
        "episode to --out as it ends (rows stay complete=False until the run finishes).",
        populate=_options,
    )
    ev.set_defaults(func=_cmd_eval)
