"""``nblib eval``: closed-loop evaluation in a simulator. Its options are
:class:`nblib.eval.rollout.EvalConfig`'s fields (:mod:`nblib.cli.options`), plus the
output flags and ``--shards N`` with its executor's flags (:mod:`nblib.eval.scaleout`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from nblib.cli.options import add_config_options, config_from, flag_errors
from nblib.cli.output import print_table
from nblib.errors import ParameterError

# the executor's flags: only with --shards (and the SLURM ones only with --executor slurm)
SLURM_FLAGS = {"partition": "--partition", "time": "--time", "mem": "--mem", "logs": "--logs"}


def _options(parser: argparse.ArgumentParser) -> None:
    from nblib.eval.libero import SUITE_MAX_STEPS, suite_choices
    from nblib.eval.rollout import INSTRUCTION_MODES, SIMULATORS, EvalConfig

    limits = ", ".join(f"{suite} {steps}" for suite, steps in SUITE_MAX_STEPS.items())
    add_config_options(
        parser,
        EvalConfig,
        choices={"sim": SIMULATORS, "instruction": INSTRUCTION_MODES},
        required=("policy", "episodes"),
        notes={
            "max_steps": f"LIBERO's limits: {limits} (a LIBERO-PRO suite: its base suite's)",
            "workers": "with --shards: how many shards run at once (all of them locally, "
            "no limit on SLURM, unless given; each shard is one process)",
        },
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
    parser.set_defaults(workers=None)  # told apart from --workers 1 (with --shards)
    shards = parser.add_argument_group(
        "shards",
        "--shards N runs the N shards (--shard I/N for I in 0..N-1) as jobs of nblib batch's "
        "executors and merges them into --out; each writes <out stem>.shards/shard-I-of-N"
        "<out suffix>; --resume resumes every shard file",
    )
    shards.add_argument(
        "--shards", type=int, metavar="N", help="run the evaluation as N shards, then merge"
    )
    shards.add_argument(
        "--executor",
        choices=("local", "slurm"),
        help="where the shards run: local worker processes (default) or one SLURM job array",
    )
    shards.add_argument("--partition", help="SLURM partition of the shards")
    shards.add_argument("--time", type=int, help="SLURM time limit per shard, minutes (default 60)")
    shards.add_argument("--mem", type=float, help="SLURM memory per shard, GB")
    shards.add_argument("--logs", help="SLURM log folder (default <out stem>.shards/slurm-logs)")


def _cmd_eval(args: argparse.Namespace) -> int:
    from nblib.eval.results.summary import summarize
    from nblib.eval.rollout import evaluate

    _check_shard_flags(args)
    at_once = args.workers  # with --shards: how many shards run at once
    args.workers = 1 if args.shards else (args.workers or 1)  # each shard is one process
    config = config_from(args)
    with flag_errors(args):
        if args.shards:
            from nblib.eval.scaleout import evaluate_shards

            executor = _executor(args, at_once)
            frame = evaluate_shards(
                config, args.out, args.shards, executor, args.overwrite, args.resume
            )
        else:
            frame = evaluate(config, args.out, overwrite=args.overwrite, resume=args.resume)
    columns = ["task", "episodes", "successes", "success_rate", "ci_low", "ci_high"]
    table = summarize(frame)[(["suite"] if config.sim == "libero" else []) + columns]
    print_table(table, "table")
    print(f"{len(frame)} episodes -> {args.out}")
    return 0


def _check_shard_flags(args: argparse.Namespace) -> None:
    given = [flag for name, flag in SLURM_FLAGS.items() if getattr(args, name) is not None]
    if args.shards is None:
        given = (["--executor"] if args.executor else []) + given
        if given:
            raise ParameterError(f"{', '.join(given)}: only with --shards N")
        return
    if args.shards < 1:
        raise ParameterError(f"--shards={args.shards} is invalid; expected an int >= 1")
    if args.shard is not None:
        raise ParameterError(
            f"--shard {args.shard} with --shards {args.shards}: --shard I/N runs one shard, "
            "--shards N runs all of them; give one of the two"
        )
    for flag, value in (("--workers", args.workers), ("--time", args.time), ("--mem", args.mem)):
        if value is not None and value <= 0:
            raise ParameterError(f"{flag}={value} is invalid; expected a number > 0")
    if given and args.executor != "slurm":
        raise ParameterError(f"{', '.join(given)}: SLURM options; add --executor slurm")


def _executor(args: argparse.Namespace, at_once: int | None):
    """The batch executor of ``--shards``: ``at_once`` (--workers) shards at a time."""
    from nblib.eval.scaleout import shard_folder
    from nblib.run.batch import LocalExecutor
    from nblib.run.slurm import SlurmExecutor

    if args.executor != "slurm":
        return LocalExecutor(workers=min(at_once or args.shards, args.shards))
    logs = Path(args.logs) if args.logs else shard_folder(Path(args.out).resolve()) / "slurm-logs"
    return SlurmExecutor(
        logs,
        partition=args.partition,
        time_min=args.time or 60,
        mem_gb=args.mem,
        parallel=at_once,
        name="nblib-eval",
    )


def register(sub) -> None:
    ev = sub.add_parser(
        "eval",
        help="closed-loop evaluation in a simulator; one row per episode (results schema)",
        description="Run a policy for N episodes per task with fixed seeds and write every "
        "episode to --out as it ends (rows stay complete=False until the run finishes).",
        populate=_options,
    )
    ev.set_defaults(func=_cmd_eval)
