"""How commands print tables: aligned text, CSV or JSON lines (one record a line)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable

FORMATS = ("table", "csv", "json")


def print_json_lines(records: Iterable[dict]) -> None:
    """One JSON object a line, flushed as it goes (scripts read them while a command runs)."""
    for record in records:
        print(json.dumps(record), flush=True)


def print_table(frame, fmt: str) -> None:
    """A DataFrame as CSV, JSON lines (NaN/NA -> null) or an aligned table."""
    import pandas as pd

    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False, float_format="%.4g", lineterminator="\n")
    elif fmt == "json":
        print_json_lines(json.loads(frame.to_json(orient="records", double_precision=6)))
    else:
        with pd.option_context(
            "display.width", 220, "display.max_colwidth", 70, "display.max_rows", None
        ):
            print(frame.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
