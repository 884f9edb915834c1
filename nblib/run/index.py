"""The run index: one row per notebook run (verdict, seconds, key metrics, figures, the
executed copy), as Markdown and HTML, read from each run's ``metrics.json``."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nblib import __version__
from nblib.run.report import utc_now_iso

# Key metrics shown per notebook in the index.
_INDEX_MAX_METRICS = 6


def _format_value(value: Any) -> str:
    """4 significant digits for floats; ints exact unless huge."""
    if isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, int):
        return str(value) if abs(value) < 10**6 else f"{value:.4g}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def index_row(nb_path: Path, run_folder: Path, error: str | None) -> dict[str, Any]:
    """One index row from the run's metrics.json (or the error if it never got written)."""
    row: dict[str, Any] = {
        "notebook": nb_path.name,
        "verdict": "ERROR",
        "seconds": None,
        "metrics": [],
        "figures": [],
        "captions": {},
        "executed": None,
    }
    metrics_path = run_folder / "metrics.json"
    try:
        data = json.loads(metrics_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict):
        row["verdict"] = str(data.get("verdict", "ERROR"))
        row["seconds"] = data.get("seconds")
        metrics = data.get("metrics") or {}
        scalars = [
            (k, v)
            for k, v in metrics.items()
            # Numbers, flags and short labels; long strings (paths, logs) would swamp
            # the table and are in metrics.json anyway.
            if isinstance(v, (int, float, bool)) or (isinstance(v, str) and len(v) <= 40)
        ]
        row["metrics"] = [(k, _format_value(v)) for k, v in scalars[:_INDEX_MAX_METRICS]]
        # Links are relative to the index (in out_dir), so the folder can be moved.
        row["figures"] = [
            f"{run_folder.name}/{f}" for f in data.get("figures", []) if str(f).endswith(".png")
        ]
        captions = data.get("captions") or {}  # absent in runs of nblib before captions
        row["captions"] = {
            f: captions[Path(f).stem] for f in row["figures"] if Path(f).stem in captions
        }
    elif error is not None:
        row["metrics"] = [("error", error)]
    if (run_folder / nb_path.name).is_file():
        row["executed"] = f"{run_folder.name}/{nb_path.name}"
    return row


def _md_escape(text: str) -> str:
    # A pipe would end the table cell; newlines would end the row.
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# nblib run index",
        "",
        f"Generated {utc_now_iso()} by nblib {__version__}.",
        "",
        "| Notebook | Verdict | Seconds | Key metrics | Figures | Executed notebook |",
        "|---|---|---:|---|---|---|",
    ]
    for row in rows:
        seconds = f"{row['seconds']:.1f}" if isinstance(row["seconds"], (int, float)) else ""
        metrics = ", ".join(f"{k}={v}" for k, v in row["metrics"])
        figures = " ".join(f"[{Path(f).stem}]({quote(f)})" for f in row["figures"])
        executed = f"[{row['notebook']}]({quote(row['executed'])})" if row["executed"] else ""
        cells = [row["notebook"], row["verdict"], seconds, metrics, figures, executed]
        lines.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


_HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.PASS { color: #009E73; font-weight: bold; }
.FAIL, .ERROR { color: #D55E00; font-weight: bold; }
"""


def render_html(rows: list[dict[str, Any]]) -> str:
    esc = html.escape
    body = []
    for row in rows:
        seconds = f"{row['seconds']:.1f}" if isinstance(row["seconds"], (int, float)) else ""
        metrics = "<br>".join(f"{esc(k)} = {esc(v)}" for k, v in row["metrics"])
        figures = "<br>".join(
            f'<a href="{esc(quote(f))}" title="{esc(row["captions"].get(f, ""))}">'
            f"{esc(Path(f).stem)}</a>"
            for f in row["figures"]
        )
        executed = (
            f'<a href="{esc(quote(row["executed"]))}">{esc(row["notebook"])}</a>'
            if row["executed"]
            else ""
        )
        # The verdict doubles as a CSS class; keep only safe characters for it.
        css = re.sub(r"[^A-Za-z0-9_-]", "", row["verdict"])
        body.append(
            f"<tr><td>{esc(row['notebook'])}</td>"
            f'<td class="{css}">{esc(row["verdict"])}</td>'
            f'<td class="num">{seconds}</td><td>{metrics}</td>'
            f"<td>{figures}</td><td>{executed}</td></tr>"
        )
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>nblib run index</title>\n<style>{_HTML_STYLE}</style>\n</head>\n<body>\n"
        "<h1>nblib run index</h1>\n"
        f"<p>Generated {esc(utc_now_iso())} by nblib {esc(__version__)}.</p>\n"
        "<table>\n<tr><th>Notebook</th><th>Verdict</th><th>Seconds</th>"
        "<th>Key metrics</th><th>Figures</th><th>Executed notebook</th></tr>\n"
        + "\n".join(body)
        + "\n</table>\n</body>\n</html>\n"
    )
