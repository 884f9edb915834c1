"""``nblib doctor``: is the policy evaluated the way it was trained? One result per check
(:mod:`nblib.studies.doctor`); exit status 0 when nothing is a mismatch, 1 when something
is, 2 for bad input (a missing file, an unknown task, a bad flag)."""

from __future__ import annotations

import argparse
import sys
import textwrap

from nblib.cli.options import add_config_options, config_from, flag_errors

STATUS_MARK = {"ok": "ok", "mismatch": "MISMATCH", "skipped": "skipped"}


def _options(parser: argparse.ArgumentParser) -> None:
    from nblib.studies.doctor import CHECK_NAMES, DoctorConfig
    from nblib.studies.doctor.study import SIMULATORS

    add_config_options(
        parser,
        DoctorConfig,
        choices={"sim": SIMULATORS},
        required=("data",),
        accepted={"checks": CHECK_NAMES},
    )
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="table: one aligned line per check; json: one JSON object per line "
        "(check, status, detail, evidence)",
    )


def _print_result(result, fmt: str) -> None:
    if fmt == "json":
        import json

        print(json.dumps(result.row()), flush=True)
        return
    mark = STATUS_MARK[result.status]
    lines = textwrap.wrap(result.detail, 88) or [""]
    print(f"{result.check:<22} {mark:<9} {lines[0]}", flush=True)
    for line in lines[1:]:
        print(f"{'':<32} {line}", flush=True)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from nblib.errors import NblibError, ParameterError
    from nblib.studies import doctor

    try:
        with flag_errors(args):
            config = config_from(args)
            study = doctor.prepare(config)
    except NblibError as err:  # bad input: exit status 2, as argparse's own errors
        print(f"nblib doctor: error: {err}", file=sys.stderr)
        return 2
    try:
        with flag_errors(args):
            results = doctor.run_checks(study, on_result=lambda r: _print_result(r, args.format))
    except ParameterError as err:  # found by a check (a LIBERO task id past its suite's)
        print(f"nblib doctor: error: {err}", file=sys.stderr)
        return 2
    finally:
        doctor.close(study)
    verdict = doctor.verdict(doctor.evidence(study, results), study.config)
    if args.format == "table":
        counts = verdict.numbers
        print(
            f"{verdict.label}: {counts['mismatches']} mismatch(es), {counts['ok']} ok, "
            f"{counts['skipped']} skipped"
        )
    return 1 if verdict.label == "MISMATCH" else 0


def register(sub) -> None:
    dr = sub.add_parser(
        "doctor",
        help="check that a policy is evaluated the way it was trained (cameras, actions, "
        "gripper, state units, statistics, instructions, chunks, versions, coverage)",
        description="Compare the training data (--data) and the policy (--policy) with the "
        "simulator and eval harness they are evaluated in; one result per check. Exit "
        "status 0: consistent; 1: a mismatch; 2: bad input.",
        populate=_options,
    )
    dr.set_defaults(func=_cmd_doctor)
