"""The ``nblib`` command (also ``python -m nblib``).

    nblib data generate [--tasks ...] [--demos N] [--size PX] [--cameras ...] [--seed S] [--out PATH]
                        (one flag per GenerateConfig field)
    nblib data check PATH [--mapping NAME] [--horizon H]
    nblib data ensure [MANIFEST]
    nblib run NOTEBOOK [-p NAME VALUE]... [-f params.yaml] [--out DIR]
    nblib run-all [--out DIR] [--workers N]
    nblib batch GRID.yaml [--executor local|slurm] [--workers N] [--gpus 0,1,2] [--out DIR]
    nblib compare RUN_A RUN_B [--rtol R]
    nblib clean NOTEBOOK... [--refresh]
    nblib bench NAME
    nblib lr analyze FILE... [--loss-key K] [--pattern REGEX] [--format json|table]
    nblib eval --sim metaworld --tasks T... --policy expert|random|zero|PATH --episodes N --out FILE
    nblib eval --sim libero --suite S [--task-ids I...] --policy random|zero|PATH --episodes N --out FILE
               (one flag per EvalConfig field)
    nblib eval ... --out FILE --shards N [--executor local|slurm] [--workers W] [--partition P]
               [--time MIN] [--mem GB] [--logs DIR] [--resume|--overwrite]
    nblib serve POLICY [--port P] [--host H] [--protocol vla-eval] [--chunk-size K]
               (one flag per ServeConfig field; `nblib eval --policy ws://HOST:PORT` drives it)
    nblib results summarize PATH... [--suite S] [--label NAME]... [--format table|csv|json]
    nblib results merge SHARD... --out FILE [--overwrite]
    nblib results baselines [--benchmark libero|libero_plus|libero_pro] [--format table|csv|json]
    nblib doctor --data PATH_OR_MANIFEST [--policy SPEC] --sim metaworld|libero
        [--tasks T...|--suite S --task-ids I...] [--episodes N] [--format table|json]

One module per command group; the options of ``data generate``, ``eval`` and ``lr analyze``
are their config dataclasses' fields (:mod:`nblib.cli.options`), added only when that
command runs, so ``nblib --help`` imports none of them. Expected failures (bad data, bad
parameters, a failing notebook) print one message and exit with status 1; no traceback.
Warnings print as one ``warning: ...`` line each, and a reader that stops early
(``nblib ... | head``) ends the command quietly.
"""

from __future__ import annotations

import os
import select
import sys
import warnings

from nblib import __version__
from nblib.cli import batch, bench, compare, data, doctor, eval, lr, results, run, serve
from nblib.cli.options import LazyParser
from nblib.errors import NblibError

# In the order `nblib --help` lists them.
COMMAND_GROUPS = (data, run, bench, lr, batch, compare, eval, serve, results, doctor)


def build_parser() -> LazyParser:
    """The whole command line; each command's options are added when it is parsed (call
    ``populated()`` on a subparser to see them without parsing)."""
    parser = LazyParser(prog="nblib", description="VLA diagnostics notebook suite")
    parser.add_argument("--version", action="version", version=f"nblib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():  # restores Python's own display on the way out
            warnings.showwarning = _show_warning
            status = args.func(args)
            sys.stdout.flush()  # a reader gone early shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise  # a pipe of the command's own (a worker's) broke: a real failure
        # The reader (`| head`) has all it wanted. As Python's signal docs recommend,
        # point stdout at devnull so the final flush at exit cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except NblibError as err:
        print(f"nblib: error: {err}", file=sys.stderr)
        return 1


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end is closed (poll reports an error)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a non-file object
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line for the user, without the source line Python quotes."""
    kind = "" if category is UserWarning else f"{category.__name__}: "
    print(f"warning: {kind}{message}", file=file or sys.stderr)
