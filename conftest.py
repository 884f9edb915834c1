"""pytest settings for the whole checkout (tests/ and the notebooks nbval runs).

nbval waits a hard-coded 5 s for each message a kernel publishes after a cell's reply
(``NbCellItem.output_timeout``). On a loaded 2-core machine (two pytest workers, and
LeRobot's own video encoder in the compatibility test, which as root runs a real-time
thread) a kernel's messages can lag longer than that, and the notebook failed with
"Timeout of 5 seconds exceeded waiting for output" although the cell had finished. A
cell's own time limit stays nbval's (``--nbval-cell-timeout``).

Every notebook the tests run (nbval, the runner, run-all) saves its figures in strict
mode: a figure without a caption, with text outside the canvas or under 6 pt, or off the
paper sizes is an error, not a warning (``nblib.run.report.STRICT_FIGURES_ENV``); the
kernels inherit the setting from this process's environment.
"""

from __future__ import annotations

import os

NBVAL_OUTPUT_TIMEOUT_S = 60

os.environ.setdefault("NBLIB_STRICT_FIGURES", "1")


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if hasattr(item, "output_timeout"):  # nbval's notebook cells
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT_S
