"""``nblib lr analyze``: plateau, divergence and a next-config suggestion per run of
training logs. Its options are :class:`nblib.studies.lr.LRConfig` fields."""

from __future__ import annotations

import argparse

from nblib.cli.options import add_config_options, config_from
from nblib.cli.output import print_json_lines

# The LRConfig fields that apply to logs of runs done elsewhere, and the flags they have
# always had.
ANALYZE_FIELDS = (
    "loss_key",
    "log_pattern",
    "log_warmup_steps",
    "plateau_window",
    "plateau_threshold",
    "smoothing",
)
ANALYZE_FLAGS = {
    "log_pattern": "--pattern",
    "log_warmup_steps": "--warmup",
    "plateau_window": "--window",
    "plateau_threshold": "--threshold",
}


def _analyze_options(parser: argparse.ArgumentParser) -> None:
    from nblib.studies.lr import LRConfig

    # The files are a required positional here, not LRConfig.log_files' "empty: a sweep".
    parser.add_argument("files", nargs="+", help="log files (several runs per CSV allowed)")
    add_config_options(parser, LRConfig, ANALYZE_FIELDS, flags=ANALYZE_FLAGS)
    parser.add_argument(
        "--format", choices=("json", "table"), default="table", help="default %(default)s"
    )


def _cmd_analyze(args: argparse.Namespace) -> int:
    import pandas as pd

    from nblib.studies.lr import analyse, loss_curves, prepare
    from nblib.studies.lr.tables import records_table, run_records

    study = prepare(config_from(args, log_files=list(args.files)))
    records = run_records(analyse(study, loss_curves(study)))
    if args.format == "json":
        print_json_lines(records)
    else:
        with pd.option_context("display.width", 200, "display.max_colwidth", 80):
            print(records_table(records).to_string())
    return 0


def register(sub) -> None:
    lr = sub.add_parser("lr", help="learning-rate schedules: analyse training logs")
    lsub = lr.add_subparsers(dest="lr_command", required=True)
    ana = lsub.add_parser(
        "analyze",
        help="plateau, divergence and a next-config suggestion per run of training logs",
        description="Training logs (JSON lines, CSV incl. W&B exports, text with 'step N ... "
        "loss=X', or lines matching --pattern) -> per run: plateau, divergence, learning "
        "stopped after warmup, suggestion.",
        populate=_analyze_options,
    )
    ana.set_defaults(func=_cmd_analyze)
