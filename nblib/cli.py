"""The ``nblib`` command (also ``python -m nblib``).

    nblib data generate [--tasks ...] [--demos N] [--size PX] [--cameras ...] [--seed S] [--out PATH]
    nblib data check PATH [--mapping NAME] [--horizon H]
    nblib data ensure [MANIFEST]
    nblib run NOTEBOOK [-p NAME VALUE]... [-f params.yaml] [--out DIR]
    nblib run-all [--out DIR]
    nblib batch GRID.yaml [--executor local|slurm] [--workers N] [--gpus 0,1,2] [--out DIR]
    nblib compare RUN_A RUN_B [--rtol R]
    nblib clean NOTEBOOK... [--refresh]
    nblib bench NAME
    nblib lr analyze FILE... [--loss-key K] [--format json|table]
    nblib eval --sim metaworld --tasks T... --policy expert|random|zero|PATH --episodes N --out FILE
    nblib eval --sim libero --suite S [--task-ids I...] --policy random|zero|PATH --episodes N --out FILE
    nblib results summarize PATH... [--suite S] [--label NAME]... [--format table|csv|json]
    nblib results baselines [--benchmark libero|libero_plus|libero_pro] [--format table|csv|json]

Expected failures (bad data, bad parameters, a failing notebook) print one message and
exit with status 1; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nblib import __version__
from nblib.errors import NblibError, ParameterError


def _cmd_generate(args: argparse.Namespace) -> int:
    from nblib.data.manifest import (
        DEFAULT_DATASET,
        describe_generated,
        load_manifest,
        write_manifest,
    )
    from nblib.data.metaworld_gen import GenerateConfig, generate
    from nblib.paths import data_dir, manifests_dir

    cfg = GenerateConfig(
        tasks=tuple(args.tasks),
        demos=args.demos,
        size=args.size,
        cameras=tuple(args.cameras),
        seed=args.seed,
        color_bits=args.color_bits,
    )
    out = Path(args.out) if args.out else data_dir() / f"{args.manifest or DEFAULT_DATASET}.hdf5"
    summary = generate(cfg, out, progress=not args.quiet)
    size_mb = out.stat().st_size / 1e6
    print(f"wrote {out}: {summary['demos']} demos, {summary['steps']} steps, {size_mb:.1f} MB")
    if summary["failed_demos"]:
        print(f"warning: expert did not succeed in {summary['failed_demos']} (kept, success=False)")
    if args.manifest:
        path = manifests_dir() / f"{args.manifest}.yaml"
        if args.manifest == DEFAULT_DATASET and path.exists():
            # The committed default manifest is the reference: verify against it, never overwrite.
            from nblib.data.manifest import verify_dataset

            status = verify_dataset(load_manifest(path), out)
            print(f"checked against {path}: {status} match")
        else:
            write_manifest(describe_generated(out, args.manifest, cfg), path)
            print(f"wrote manifest {path}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from nblib.data.formats import check_dataset
    from nblib.data.summary import format_summary

    summary = check_dataset(args.path, mapping=args.mapping, horizon=args.horizon)
    print(format_summary(summary))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from nblib.data.lerobot import LeRobotStore
    from nblib.data.lerobot_export import (
        VideoOptions,
        codec_error,
        export_lerobot,
        open_source,
    )

    store = open_source(args.source, mapping=args.mapping)
    report = export_lerobot(
        store,
        args.out,
        fps=args.fps,
        video=VideoOptions(vcodec=args.vcodec, crf=args.crf),
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(
        f"{report.out}: LeRobot v3.0, {report.episodes} episodes, {report.frames} frames, "
        f"{report.tasks} tasks, {report.fps:g} fps, {len(report.cameras)} cameras "
        f"({report.vcodec}), {report.bytes / 1e6:.1f} MB in {report.seconds:.1f} s"
    )
    if not args.no_verify:
        exported = LeRobotStore(report.out)
        for camera in report.cameras:
            err = codec_error(store, exported, camera)
            print(
                f"  {camera}: frames differ from the source by {err['mean_abs']:.2f} grey levels "
                f"on average (max {err['max_abs']}), PSNR {err['psnr_db']:.1f} dB"
            )
    if args.manifest:
        _write_folder_manifest(report.out, args.manifest)
    return 0


def _write_folder_manifest(folder: Path, name: str, description: str = "") -> None:
    from nblib.data.lerobot_check import describe_folder
    from nblib.data.manifest import write_manifest
    from nblib.paths import manifests_dir

    path = manifests_dir() / f"{name}.yaml"
    data = describe_folder(Path(folder).resolve(), name, description)
    write_manifest(data, path)
    counts = data["counts"]
    print(f"wrote manifest {path}: {counts['demos']} episodes, {counts['steps']} frames")


def _cmd_describe(args: argparse.Namespace) -> int:
    from nblib.data.formats import is_lerobot_folder
    from nblib.errors import ParameterError

    if not is_lerobot_folder(args.path):
        raise ParameterError(
            f"{args.path}: not a folder; describe writes manifests for LeRobot folders "
            "(`nblib data generate --manifest` describes generated HDF5 files)"
        )
    _write_folder_manifest(Path(args.path), args.manifest, args.description)
    return 0


def _cmd_ensure(args: argparse.Namespace) -> int:
    from nblib.data.manifest import ensure_dataset

    path = ensure_dataset(args.manifest, progress=not args.quiet)
    print(f"{args.manifest}: {path} (checksum verified)")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from nblib.run.params import load_param_file, parse_cli_value
    from nblib.run.runner import run_notebook

    params = load_param_file(args.file) if args.file else {}
    for name, value in args.param or []:
        params[name] = parse_cli_value(value)
    out = args.out or str(Path("runs") / Path(args.notebook).stem)
    result = run_notebook(args.notebook, params=params, out_dir=out, progress=not args.quiet)
    print(
        f"{Path(args.notebook).name}: {result['verdict']} ({result['seconds']:.1f} s) -> {out}/metrics.json"
    )
    for reason in result["metrics"].get("reasons", []):
        print(f"- {reason}")
    return 0


def _cmd_run_all(args: argparse.Namespace) -> int:
    from nblib.run.runner import run_all

    index = run_all(args.notebooks, args.out, progress=not args.quiet)
    print(f"index: {index}")
    return 0


def _cmd_clean(args: argparse.Namespace) -> int:
    import nbformat

    from nblib.run.hygiene import clean, hygiene_problems, refresh_notebook

    problems = []
    for path in args.notebooks:
        if args.refresh:
            refresh_notebook(path)
        else:
            nb = nbformat.read(path, as_version=4)
            clean(nb)
            nbformat.write(nb, path)
        problems += hygiene_problems(path)
    for p in problems:
        print(p)
    return 1 if problems else 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from nblib.bench import BENCHMARKS, run_benchmark

    if args.name not in BENCHMARKS:
        raise NblibError(f"unknown benchmark {args.name!r}; available: {', '.join(BENCHMARKS)}")
    for line in run_benchmark(args.name, **({"items": args.items} if args.items else {})):
        print(json.dumps(line), flush=True)
    return 0


# The fields of `nblib lr analyze --format json`, one line per run (scripts rely on them).
LR_FIELDS = (
    "run",
    "steps",
    "final_loss",
    "min_loss",
    "plateau_step",
    "stopped_after_warmup",
    "diverged",
    "divergence_step",
    "grad_spikes",
    "suggestion",
)


def _cmd_lr_analyze(args: argparse.Namespace) -> int:
    import math

    from nblib.studies.lr import LRConfig, LRStudy, analyse, load_logs

    config = LRConfig(
        log_files=list(args.files),
        loss_key=args.loss_key,
        log_warmup_steps=args.warmup,
        plateau_window=args.window,
        plateau_threshold=args.threshold,
        smoothing=args.smoothing,
    )
    study = LRStudy(config)
    load_logs(study)
    runs = analyse(study)

    def plain(value):
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None  # JSON has no NaN: a missing plateau or loss is null
        return value

    rows = []
    for run, row in runs.iterrows():
        rec = {"run": run} | {k: plain(row[k]) for k in LR_FIELDS if k != "run"}
        for key in ("plateau_step", "divergence_step", "steps", "grad_spikes"):
            if rec[key] is not None:
                rec[key] = int(rec[key])
        rows.append(rec)
    if args.format == "json":
        for rec in rows:
            print(json.dumps(rec), flush=True)
    else:
        import pandas as pd

        with pd.option_context("display.width", 200, "display.max_colwidth", 80):
            print(pd.DataFrame(rows, dtype=object).set_index("run").to_string())
    return 0


def _print_table(frame, fmt: str) -> None:
    """A DataFrame as CSV, JSON lines (NaN/NA → null) or an aligned table."""
    import pandas as pd

    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False, float_format="%.4g", lineterminator="\n")
    elif fmt == "json":
        for rec in json.loads(frame.to_json(orient="records", double_precision=6)):
            print(json.dumps(rec), flush=True)
    else:
        with pd.option_context(
            "display.width", 220, "display.max_colwidth", 70, "display.max_rows", None
        ):
            print(frame.to_string(index=False, float_format=lambda v: f"{v:.1f}"))


def _cmd_results_summarize(args: argparse.Namespace) -> int:
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
        _print_table(tasks, args.format)
        return 0
    suites = suite_summary(frame)
    for run, group in tasks.groupby("run", sort=False):
        print(f"== {run}")
        _print_table(group.drop(columns="run"), "table")
        print("-- per suite (mean over tasks, task-stratified bootstrap 95 % interval)")
        _print_table(suites[suites["run"] == run].drop(columns="run"), "table")
        print()
    incomplete = tasks[~tasks["complete"]]
    if len(incomplete):
        print(
            f"note: {len(incomplete)} task(s) come from interrupted runs or tasks "
            "(complete = False); their counts are what finished before the log ended"
        )
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from nblib.run.batch import LocalExecutor, SlurmExecutor, run_batch, slurm_options

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
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from nblib.run.compare import compare

    result = compare(args.run_a, args.run_b, rtol=args.rtol)
    print(f"verdicts ({args.run_a} -> {args.run_b}):")
    _print_table(pd.DataFrame(result.verdicts), "table")
    changed = [m for m in result.metrics if m["beyond"]]
    print(f"\nmetrics beyond rtol={args.rtol:g}: {len(changed)} of {len(result.metrics)}")
    if changed:
        _print_table(pd.DataFrame(changed).drop(columns="beyond"), "table")
    for side, names in (("only in A", result.only_a), ("only in B", result.only_b)):
        if names:
            print(f"{side}: {', '.join(names)}")
    if result.verdict_changed:
        moved = [v["run"] for v in result.verdicts if v["changed"]]
        print(f"\nverdict changed: {', '.join(moved)}")
        return 1
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from nblib.eval.results.summary import summarize
    from nblib.eval.rollout import EvalConfig, evaluate

    config = EvalConfig(
        tasks=list(args.tasks) if args.tasks else None,
        suite=args.suite,
        task_ids=list(args.task_ids) if args.task_ids else None,
        policy=args.policy,
        episodes=args.episodes,
        sim=args.sim,
        seed=args.seed,
        max_steps=args.max_steps,
        replan=args.replan,
        instruction=args.instruction,
        position_noise=args.position_noise,
        workers=args.workers,
        video=args.video,
        run=args.run,
        device=args.device,
    )
    frame = evaluate(config, args.out, overwrite=args.overwrite)
    columns = ["task", "episodes", "successes", "success_rate", "ci_low", "ci_high"]
    table = summarize(frame)[(["suite"] if args.sim == "libero" else []) + columns]
    _print_table(table, "table")
    print(f"{len(frame)} episodes -> {args.out}")
    return 0


def _cmd_results_baselines(args: argparse.Namespace) -> int:
    from nblib.eval.baselines import baselines

    table = baselines(args.benchmark)
    _print_table(table, args.format)
    if args.benchmark == "libero_pro" and args.format == "table":
        print(
            "note: LIBERO-PRO publishes its results as figures only; no numbers are "
            "transcribed. These are its perturbations (the results schema's perturbation)."
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    from nblib.data.metaworld_gen import DEFAULT_CAMERAS, DEFAULT_TASKS, GenerateConfig

    parser = argparse.ArgumentParser(prog="nblib", description="VLA diagnostics notebook suite")
    parser.add_argument("--version", action="version", version=f"nblib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="generate, check and verify datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    gen = dsub.add_parser(
        "generate",
        help="render Meta-World expert demos into robomimic-style HDF5",
        description="Render demonstrations with Meta-World's scripted experts on MuJoCo (headless EGL).",
    )
    defaults = GenerateConfig()
    gen.add_argument(
        "--tasks", nargs="+", default=list(DEFAULT_TASKS), help="Meta-World task names"
    )
    gen.add_argument(
        "--demos", type=int, default=defaults.demos, help="demos per task (default %(default)s)"
    )
    gen.add_argument(
        "--size", type=int, default=defaults.size, help="frame size in pixels (default %(default)s)"
    )
    gen.add_argument("--cameras", nargs="+", default=list(DEFAULT_CAMERAS), help="camera names")
    gen.add_argument(
        "--seed", type=int, default=defaults.seed, help="seed of the layouts (default %(default)s)"
    )
    gen.add_argument(
        "--color-bits",
        type=int,
        default=defaults.color_bits,
        help="bits kept per colour channel; 8 = lossless (default %(default)s)",
    )
    gen.add_argument(
        "--out", help="output HDF5 (default: data/<manifest or metaworld_default>.hdf5)"
    )
    gen.add_argument("--manifest", help="also write data_manifests/NAME.yaml describing the file")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=_cmd_generate)

    chk = dsub.add_parser("check", help="validate a dataset file or folder and print a summary")
    chk.add_argument("path", help="HDF5 file or LeRobot folder (v3.0, v2.1, v2.0)")
    chk.add_argument(
        "--mapping",
        help="key mapping name or JSON path (default: metaworld for HDF5, lerobot for folders)",
    )
    chk.add_argument(
        "--horizon", type=int, help="fail if any episode is shorter than this chunk horizon"
    )
    chk.set_defaults(func=_cmd_check)

    dsc = dsub.add_parser(
        "describe", help="write a manifest for a LeRobot folder (counts, cameras, checksum)"
    )
    dsc.add_argument("path", help="LeRobot folder (v3.0, v2.1, v2.0)")
    dsc.add_argument("--manifest", required=True, help="manifest name: data_manifests/NAME.yaml")
    dsc.add_argument("--description", default="", help="one line saying what the data is")
    dsc.set_defaults(func=_cmd_describe)

    exp = dsub.add_parser(
        "export", help="write an HDF5 dataset as a LeRobot v3.0 folder (Parquet + MP4)"
    )
    exp.add_argument("source", help="manifest name or path, or an HDF5 file")
    exp.add_argument("--format", choices=("lerobot",), required=True, help="output format")
    exp.add_argument("--out", required=True, help="output folder (must not exist)")
    exp.add_argument("--mapping", help="key mapping of an HDF5 file (default metaworld)")
    exp.add_argument("--fps", type=float, help="control rate (default: from the file)")
    exp.add_argument(
        "--vcodec", default="libsvtav1", help="libsvtav1, h264 or hevc (default %(default)s)"
    )
    exp.add_argument("--crf", type=int, default=30, help="video quality (default %(default)s)")
    exp.add_argument("--manifest", help="also write data_manifests/NAME.yaml for the folder")
    exp.add_argument(
        "--no-verify", action="store_true", help="skip decoding the videos to report codec error"
    )
    exp.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    exp.add_argument("--quiet", action="store_true", help="no progress bar")
    exp.set_defaults(func=_cmd_export)

    ens = dsub.add_parser(
        "ensure", help="generate a manifest's dataset if missing, then verify its checksum"
    )
    ens.add_argument(
        "manifest",
        nargs="?",
        default="metaworld_default",
        help="manifest name (default %(default)s)",
    )
    ens.add_argument("--quiet", action="store_true", help="no progress bar")
    ens.set_defaults(func=_cmd_ensure)

    run = sub.add_parser("run", help="execute one notebook with papermill and write metrics.json")
    run.add_argument("notebook", help="path to the .ipynb")
    run.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="set a parameter (YAML value)",
    )
    run.add_argument("-f", "--file", help="YAML file of parameters")
    run.add_argument("--out", help="output folder (default runs/<notebook>)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_cmd_run)

    rall = sub.add_parser("run-all", help="run every notebook with its defaults and write an index")
    rall.add_argument(
        "--notebooks", default="notebooks", help="folder of notebooks (default %(default)s)"
    )
    rall.add_argument("--out", default="runs", help="output folder (default %(default)s)")
    rall.add_argument("--quiet", action="store_true", help="no progress bars")
    rall.set_defaults(func=_cmd_run_all)

    cln = sub.add_parser(
        "clean", help="strip notebooks for committing (only checked text outputs stay)"
    )
    cln.add_argument("notebooks", nargs="+", help=".ipynb files")
    cln.add_argument(
        "--refresh",
        action="store_true",
        help="re-run with defaults and store the outputs of cells marked NBVAL_CHECK_OUTPUT",
    )
    cln.set_defaults(func=_cmd_clean)

    bench = sub.add_parser("bench", help="run a benchmark; prints one JSON line per figure")
    bench.add_argument("name", help="benchmark name, e.g. loader")
    bench.add_argument(
        "--items", type=int, help="samples per measurement (default: the benchmark's own)"
    )
    bench.set_defaults(func=_cmd_bench)

    lr = sub.add_parser("lr", help="learning-rate schedules: analyse training logs")
    lsub = lr.add_subparsers(dest="lr_command", required=True)
    ana = lsub.add_parser(
        "analyze",
        help="plateau, divergence and a next-config suggestion per run of training logs",
        description="Training logs (JSON lines, CSV incl. W&B exports, text with 'step N ... "
        "loss=X') -> per run: plateau, divergence, learning stopped after warmup, suggestion.",
    )
    ana.add_argument("files", nargs="+", help="log files (several runs per CSV allowed)")
    ana.add_argument("--loss-key", help="the loss metric's name, e.g. train/loss")
    ana.add_argument(
        "--format", choices=("json", "table"), default="table", help="default %(default)s"
    )
    ana.add_argument(
        "--window", type=int, default=100, help="plateau window in steps (default %(default)s)"
    )
    ana.add_argument(
        "--threshold",
        type=float,
        default=0.01,
        help="relative improvement per window below which it is a plateau (default %(default)s)",
    )
    ana.add_argument(
        "--smoothing", type=int, default=20, help="moving-average points (default %(default)s)"
    )
    ana.add_argument(
        "--warmup", type=int, default=0, help="the runs' warmup steps, if known (default: none)"
    )
    ana.set_defaults(func=_cmd_lr_analyze)

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

    from nblib.data.metaworld_gen import INSTRUCTIONS
    from nblib.eval.rollout import INSTRUCTION_MODES, SIMULATORS

    ev = sub.add_parser(
        "eval",
        help="closed-loop evaluation in a simulator; one row per episode (results schema)",
        description="Run a policy for N episodes per task with fixed seeds and write every "
        "episode to --out as it ends (rows stay complete=False until the run finishes).",
    )
    ev.add_argument("--sim", choices=SIMULATORS, default="metaworld", help="default %(default)s")
    ev.add_argument(
        "--tasks",
        nargs="+",
        help=f"Meta-World tasks, among {', '.join(sorted(INSTRUCTIONS))} (default reach push)",
    )
    ev.add_argument(
        "--suite",
        help="LIBERO suite (--sim libero): libero_spatial, libero_object, libero_goal, "
        "libero_10, libero_90, or a LIBERO-PRO variant <suite>_lan|_object|_swap|_task",
    )
    ev.add_argument(
        "--task-ids", nargs="+", type=int, help="LIBERO task ids in the suite (default: all)"
    )
    ev.add_argument(
        "--policy",
        required=True,
        help="expert (Meta-World's scripted policy), random, zero, or a saved policy: a "
        "notebook-01 run folder, its policy/ folder or a policy.pt",
    )
    ev.add_argument("--episodes", type=int, required=True, help="episodes per task")
    ev.add_argument("--seed", type=int, default=0, help="layouts and sampling (default 0)")
    ev.add_argument(
        "--max-steps",
        type=int,
        help="step limit per episode (default: the simulator's; LIBERO: the suite's, "
        "spatial 220, object 280, goal 300, libero_10 520, libero_90 400)",
    )
    ev.add_argument(
        "--replan", type=int, default=1, help="actions executed per predicted chunk (default 1)"
    )
    ev.add_argument(
        "--instruction", choices=INSTRUCTION_MODES, default="original", help="default %(default)s"
    )
    ev.add_argument(
        "--position-noise",
        type=float,
        default=0.0,
        help="metres added to the reset box in x and y (default 0)",
    )
    ev.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    ev.add_argument("--video", help="folder for one MP4 per episode")
    ev.add_argument("--run", help="run label (default: from the policy and the options)")
    ev.add_argument("--device", default="cpu", help="torch device of a saved policy")
    ev.add_argument("--out", required=True, help="results file, .csv or .jsonl")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    ev.set_defaults(func=_cmd_eval)

    res = sub.add_parser("results", help="LIBERO-style evaluation results: summaries, baselines")
    rsub = res.add_subparsers(dest="results_command", required=True)
    summ = rsub.add_parser(
        "summarize",
        help="per run, suite and task: episodes, successes, success rate, Wilson interval",
        description="Result files or folders (run_libero_eval.py logs incl. LIBERO-Plus, "
        "LeRobot eval_info.json and lerobot-eval stdout, vla-evaluation-harness JSON, "
        "per-episode CSV/JSON/JSONL) -> one row per (run, suite, task). Rates in %%.",
    )
    summ.add_argument("paths", nargs="+", help="result files or folders")
    summ.add_argument("--suite", help="the suite, for files that do not state theirs")
    summ.add_argument(
        "--label",
        action="append",
        help="run label for the path in the same position (repeat once per path)",
    )
    summ.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="default %(default)s"
    )
    summ.set_defaults(func=_cmd_results_summarize)
    base = rsub.add_parser("baselines", help="published LIBERO / LIBERO-Plus / LIBERO-PRO tables")
    base.add_argument(
        "--benchmark",
        choices=("libero", "libero_plus", "libero_pro"),
        default="libero",
        help="default %(default)s",
    )
    base.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="default %(default)s"
    )
    base.set_defaults(func=_cmd_results_baselines)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except NblibError as err:
        print(f"nblib: error: {err}", file=sys.stderr)
        return 1
