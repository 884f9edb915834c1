"""``nblib bench verdicts``: does every notebook's default verdict hold on any machine of
this kind? Each notebook runs with its defaults four times: torch pinned to 1 and to 2 CPU
threads (``NBLIB_THREADS``; thread counts change the order of float sums, so the numbers
move in their last digits), and with seeds 0, 1 and 2 at 2 threads. One JSON line per
run, then one per notebook saying whether its four verdicts agree (``ratio``: the share of
runs giving the seed-0 verdict; 1 = the same everywhere).

It runs the whole suite four times (~4x ``nblib bench suite``), so it is not part of
``nblib bench all``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nblib.bench.common import machine, ratio
from nblib.errors import NblibError
from nblib.threads import PIN_ENV

# (threads, seed) of every run; (2, 0) is each notebook's reference.
RUNS = ((1, 0), (2, 0), (2, 1), (2, 2))


def bench_verdicts(notebooks: list[str] | None = None, out: str | None = None) -> Iterator[dict]:
    """Every notebook (or the named ones) under :data:`RUNS`; see the module docstring."""
    from nblib.paths import repo_root
    from nblib.run.params import notebook_parameters, seed_overrides
    from nblib.run.runner import run_notebook

    folder = repo_root() / "notebooks"
    paths = sorted(folder.glob("*.ipynb"))
    if notebooks:
        paths = [p for p in paths if p.stem in notebooks or p.name in notebooks]
    pinned = os.environ.get(PIN_ENV)
    with tempfile.TemporaryDirectory(prefix="nblib-verdicts-") as tmp:
        root = Path(out or tmp)
        try:
            for path in paths:
                spec = notebook_parameters(path)
                verdicts = []
                for threads, seed in RUNS:
                    os.environ[PIN_ENV] = str(threads)  # inherited by the kernel
                    run_dir = root / f"{path.stem}__threads={threads}_seed={seed}"
                    try:
                        run_notebook(
                            path, seed_overrides(spec, seed), out_dir=run_dir, progress=False
                        )
                    except NblibError as error:  # an error is a verdict too: ERROR
                        print(str(error).splitlines()[0])
                    record = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
                    verdicts.append(record["verdict"])
                    yield {
                        "bench": "verdicts",
                        "figure": "verdict",
                        "notebook": path.stem,
                        "threads": threads,
                        "seed": seed,
                        "verdict": record["verdict"],
                        "seconds": record.get("seconds"),
                    }
                reference = verdicts[RUNS.index((2, 0))]
                yield {
                    "bench": "verdicts",
                    "figure": "verdict_agreement",
                    "notebook": path.stem,
                    "verdicts": verdicts,
                    "same": len(set(verdicts)) == 1,
                    "ratio": ratio(verdicts.count(reference), len(verdicts), 2),
                    **machine(),
                }
        finally:
            if pinned is None:
                os.environ.pop(PIN_ENV, None)
            else:
                os.environ[PIN_ENV] = pinned
