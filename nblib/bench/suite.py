"""``nblib bench suite``: the whole default suite's wall time against its 10-minute
target."""

from __future__ import annotations

import time
from collections.abc import Iterator

from nblib.bench.common import machine, ratio
from nblib.errors import NblibError

SUITE_TARGET_S = 600  # the whole default suite on the 2-core CPU (DEVELOPERS.md)


def bench_suite(out: str | None = None, items: int | None = None) -> Iterator[dict]:
    """The whole default suite's wall time (``nblib run-all``: every notebook with its
    defaults, in a fresh temporary folder unless ``out``), against the 10-minute target
    (``ratio`` = target / measured: >= 1 meets it), and each notebook's own seconds."""
    import json
    import tempfile
    from pathlib import Path

    from nblib.paths import repo_root
    from nblib.run.runner import run_all

    with tempfile.TemporaryDirectory(prefix="nblib-suite-") as tmp:
        folder = Path(out or tmp)
        start = time.perf_counter()
        failed = None
        try:
            run_all(repo_root() / "notebooks", folder, progress=False)
        except NblibError as error:  # the timing still counts; the failure is reported
            failed = str(error).splitlines()[0]
        seconds = time.perf_counter() - start
        notebooks = {}
        for metrics in sorted(folder.glob("*/metrics.json")):
            record = json.loads(metrics.read_text(encoding="utf-8"))
            notebooks[metrics.parent.name] = {
                "seconds": record.get("seconds"),
                "verdict": record.get("verdict"),
            }
    yield {
        "bench": "suite",
        "figure": "default_suite_seconds",
        "seconds": round(seconds, 2),
        "target_s": SUITE_TARGET_S,
        "ratio": ratio(SUITE_TARGET_S, seconds, 2),
        "notebooks": notebooks,
        "failed": failed,
        **machine(),
    }
