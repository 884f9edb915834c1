"""nbval settings for the notebook checks (``pytest notebooks --nbval-lax``).

nbval waits at most 5 s (hard-coded, ``IPyNbCell.output_timeout``) for each output message
after a cell's reply. Twice in CI, on a loaded 2-core machine, the kernel took longer than
that to send the last messages of a long training cell (the cell itself had finished), and
the notebook failed with "Timeout of 5 seconds exceeded waiting for output". A dead kernel
is still reported, after OUTPUT_TIMEOUT_S instead of 5 s.
"""

OUTPUT_TIMEOUT_S = 60


def pytest_collection_modifyitems(items):
    from nbval.plugin import IPyNbCell

    for item in items:
        if isinstance(item, IPyNbCell):
            item.output_timeout = OUTPUT_TIMEOUT_S
