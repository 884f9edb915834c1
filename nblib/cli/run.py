"""``nblib run``, ``nblib run-all`` and ``nblib clean``: notebooks executed with papermill,
and notebooks stripped for committing."""

from __future__ import annotations

import argparse
from pathlib import Path

from nblib.errors import ParameterError


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

    index = run_all(args.notebooks, args.out, progress=not args.quiet, workers=args.workers)
    print(f"index: {index}")
    return 0


def _read_notebook(path: str):
    """The notebook at ``path`` (nbformat 4), or a ParameterError naming the file."""
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except OSError as err:  # missing, a folder, unreadable
        raise ParameterError(f"{path}: {err.strerror or err}") from None
    except nbformat.ValidationError as err:  # JSON without a notebook's keys
        raise ParameterError(f"{path}: not a Jupyter notebook ({err.message})") from None
    except ValueError as err:  # not UTF-8, not JSON, an unknown nbformat version
        raise ParameterError(f"{path}: not a Jupyter notebook ({err})") from None
    except AttributeError:  # nbformat calls .get on the JSON: a list or a number
        raise ParameterError(
            f"{path}: not a Jupyter notebook (its JSON is not an object)"
        ) from None


def _cmd_clean(args: argparse.Namespace) -> int:
    import nbformat

    from nblib.run.hygiene import clean, hygiene_problems, refresh_notebook

    # Every file is read before any is rewritten: a bad path leaves the others untouched.
    notebooks = {path: _read_notebook(path) for path in args.notebooks}
    problems = []
    for path, nb in notebooks.items():
        if args.refresh:
            refresh_notebook(path)
        else:
            clean(nb)
            nbformat.write(nb, path)
        problems += hygiene_problems(path)
    for p in problems:
        print(p)
    return 1 if problems else 0


def register(sub) -> None:
    run = sub.add_parser("run", help="execute one notebook with papermill and write metrics.json")
    run.add_argument("notebook", help="path to the .ipynb")
    run.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="set a parameter (YAML value; file and folder paths are relative to the "
        "current folder)",
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
    rall.add_argument(
        "--workers",
        type=int,
        default=None,
        help="notebooks run at once (default 2 on a machine with 2 or more cores, else 1; "
        "1 runs them one after another with progress bars)",
    )
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
