"""``nblib batch``: every combination of a grid file, on local workers, GPUs or SLURM."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_batch(args: argparse.Namespace) -> int:
    from nblib.run.batch import LocalExecutor, resumption, run_batch, slurm_options
    from nblib.run.slurm import SlurmExecutor

    out = Path(args.out) if args.out else Path("runs") / Path(args.grid).stem
    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else []
    if args.executor == "local":
        executor = LocalExecutor(workers=args.workers or (len(gpus) or 1), gpus=gpus)
    else:
        options = slurm_options(args.grid)
        flags = {
            "partition": args.partition,
            "time_min": args.time,
            "mem_gb": args.mem,
            "gpus": args.slurm_gpus,
            "logs": args.logs,
        }
        options |= {k: v for k, v in flags.items() if v is not None}
        logs = options.pop("logs", None) or out / "slurm-logs"
        executor = SlurmExecutor(logs, **options)
    result = run_batch(args.grid, out, executor=executor)
    done = sum(r["status"] == "done" for r in result.results)
    skipped = sum(r["status"] == "skipped" for r in result.results)
    print(f"{done} run(s) done, {skipped} skipped (already done) -> {out / 'batch.csv'}")
    if result.requeued:
        runs = ", ".join(f"{r['name']} {r['requeues']}x ({resumption(r)})" for r in result.requeued)
        print(f"{len(result.requeued)} run(s) requeued by SLURM: {runs}")
    return 0


def register(sub) -> None:
    bat = sub.add_parser(
        "batch",
        help="run every combination of a grid file (local workers, GPUs or SLURM); resumable",
        description="Each combination of the grid file's runs is one papermill run in its own "
        "folder under --out; finished ones are skipped on a rerun; batch.csv, batch.parquet "
        "and index.md collect them.",
    )
    bat.add_argument("grid", help="grid file (YAML): runs: [{notebook, params, grid, zip, seeds}]")
    bat.add_argument("--executor", choices=("local", "slurm"), default="local")
    bat.add_argument(
        "--workers", type=int, help="local worker processes (default 1, or one per GPU)"
    )
    bat.add_argument("--gpus", help="GPU ids for local runs, e.g. 0,1,2: one kernel per GPU")
    bat.add_argument("--out", help="batch folder (default runs/<grid file stem>)")
    bat.add_argument("--partition", help="SLURM partition (default: the grid's slurm.partition)")
    bat.add_argument("--time", type=int, help="SLURM time limit per run, minutes")
    bat.add_argument("--mem", type=float, help="SLURM memory per run, GB")
    bat.add_argument("--slurm-gpus", type=int, help="SLURM GPUs per run")
    bat.add_argument("--logs", help="SLURM log folder (default <out>/slurm-logs)")
    bat.set_defaults(func=_cmd_batch)
