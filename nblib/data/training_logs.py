"""Read the training logs of runs done elsewhere into one tidy table.

:func:`read_log` reads one file, :func:`read_logs` several, into a DataFrame with columns
``run, step, loss, lr, grad_norm``: one row per logged training step, ``step`` an int64,
``loss`` / ``lr`` / ``grad_norm`` float64 (``lr`` and ``grad_norm`` NaN when the log has
none). A NaN or infinite loss is kept exactly as logged: a diverged run must stay visible.

The format is detected from the content (:func:`detect_format`), not from the suffix alone:

``jsonl``
    One JSON object per line, e.g. a trainer's ``metrics.jsonl``. Records without the loss
    key (evaluation records, summaries) are skipped. The run is the ``run`` argument, else
    the record's ``run`` / ``run_id`` field, else the parent folder for a file called
    ``metrics.jsonl``, else the file stem.
``csv``
    A plain table with a step column and a loss column (one run, or a ``run`` / ``run_id``
    column), or a Weights & Biases chart export: a ``Step`` column and, per run,
    ``<run> - <metric>`` plus ``__MIN`` / ``__MAX`` companions. An empty W&B cell means the
    run did not log at that step, so it gives no row.
``text``
    A training script's stdout, read line by line. The default pattern takes lines with a
    step (``step 10``, ``step=10``, ``step: 10``, ``iter 10``) and a loss (``loss=0.5``,
    ``loss: 0.5``, ``loss 0.5``, also ``nan`` / ``inf``) on the same line, with optional
    ``lr`` and ``grad_norm`` / ``grad norm``; every other line is skipped. Lines that report
    an evaluation are skipped too: ``val loss`` / ``val_loss`` is never the training loss, and
    nanoGPT's ``step 100: train loss X, val loss Y`` is an estimate over eval batches, not
    the loss of step 100. ``pattern`` replaces all of this with your own regex.

A run that logs the same step twice with different losses (typically a resumed run appended
to the same file) is a :class:`~nblib.errors.DataError` naming the run, the step and both
lines; an exact repeat (same step, same loss) is dropped. Every error names the file and the
line (or column) and says what was expected.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nblib.errors import DataError, ParameterError

FORMATS = ("jsonl", "csv", "text")
COLUMNS = ("run", "step", "loss", "lr", "grad_norm")

# Tried in this order when the caller names no loss_key; the first one the log has wins.
LOSS_KEYS = ("loss", "train/loss", "train_loss")
STEP_KEYS = ("step", "global_step", "train/global_step", "iter", "iteration", "_step")
LR_KEYS = ("lr", "learning_rate", "train/learning_rate", "train/lr")
GRAD_NORM_KEYS = ("grad_norm", "train/grad_norm", "gradient_norm")
RUN_KEYS = ("run", "run_id")

LISTED = 30  # names shown when a loss key or column is missing
WANDB_SEP = " - "  # W&B chart exports name columns "<run> - <metric>"
WANDB_COMPANIONS = ("__MIN", "__MAX")
# The header of W&B's runs table (one summary row per run), which holds no history.
WANDB_RUNS_TABLE = {"Name", "State", "Runtime"}

_NUMBER = r"[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?|nan|inf(?:inity)?)"
# Atomic group: "0.5ms" must not backtrack to "0." and pass for a number.
_VALUE = rf"(?P<value>(?>{_NUMBER}))(?!\w)"
# A key is a whole word: not the tail of val_loss, train/loss_step or lossless.
_WORD_START = r"(?<![\w/.-])"
_WORD_END = r"(?![\w/-])"
_NOT_EVAL = r"(?<!val )(?<!valid )(?<!validation )(?<!eval )(?<!test )"
_STEP_RE = re.compile(
    r"(?<!\w)(?:global_step|step|iter(?:ation)?)\s*[=:]?\s*#?"
    r"(?P<step>(?>\d+(?:\.\d+)?)(?P<unit>[KMB])?)(?!\w)",
    re.IGNORECASE,
)
_LR_RE = re.compile(
    rf"{_WORD_START}(?:lr|learning[ _]rate){_WORD_END}\s*[=:]?\s*{_VALUE}", re.IGNORECASE
)
_GRAD_NORM_RE = re.compile(
    rf"{_WORD_START}(?:grad[ _]?norm|gradient[ _]norm|grdn){_WORD_END}\s*[=:]?\s*{_VALUE}",
    re.IGNORECASE,
)


@dataclass
class _Row:
    run: str
    step: int
    loss: float
    lr: float
    grad_norm: float
    line: int  # where it was read, for error messages


@dataclass
class _TextPatterns:
    """The regexes one text log is read with (the default ones or the caller's)."""

    custom: re.Pattern | None
    loss: re.Pattern | None = None  # a number after the loss word
    loss_key_value: re.Pattern | None = None  # "loss=<anything>": a value that must parse
    eval_loss: re.Pattern | None = None  # val/eval/test loss: marks an evaluation line


def _fail(path: Path, message: str) -> DataError:
    return DataError(f"{path}: {message}")


def _listing(names: Iterable[str]) -> str:
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:LISTED])
    more = f", ... ({len(names) - LISTED} more)" if len(names) > LISTED else ""
    return f"[{shown}{more}]"


def _default_run(path: Path) -> str:
    # Trainers write <run dir>/metrics.jsonl, so the folder is the only name the run has.
    if path.name == "metrics.jsonl" and path.parent.name:
        return path.parent.name
    return path.stem


def _pick(candidates: Iterable[str], available: Iterable[str]) -> str | None:
    """The first candidate present in ``available`` (exact name first, then any case)."""
    available = list(available)
    present = set(available)
    for name in candidates:
        if name in present:
            return name
    folded = {a.casefold(): a for a in reversed(available)}
    for name in candidates:
        if name.casefold() in folded:
            return folded[name.casefold()]
    return None


# --- reading and detecting ------------------------------------------------------------------


def _read_text(path: Path) -> str:
    if not path.exists():
        raise _fail(path, "no such file")
    if path.is_dir():
        raise _fail(path, "is a directory, expected a training log file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: Excel and W&B may write a BOM
    except UnicodeDecodeError as err:
        raise _fail(
            path, f"is not UTF-8 text (byte {err.start}); expected a JSON-lines, CSV or text log"
        ) from err
    if not text.strip():
        raise _fail(path, "is empty; expected a training log")
    return text


def _lines(text: str) -> list[str]:
    # Not str.splitlines: it also splits at form feeds and U+2028, shifting line numbers
    # away from what an editor shows.
    return [line.rstrip("\r") for line in text.split("\n")]


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _detect(path: Path, text: str) -> str:
    rows = [line for line in _lines(text) if line.strip()][:2]
    first = rows[0].strip()
    # "[" alone is no sign of JSON: text logs start lines with "[2025-03-02 10:00:01]".
    if first.startswith("{") or first == "[" or re.match(r"\[\s*\{", first):
        return "jsonl"
    header = next(csv.reader([first]))
    if len(header) >= 2:
        # Text logs have commas too ("iter 0: loss 4.27, time 12ms"), so a header alone
        # does not make a CSV: its first data row must have as many fields, one a number.
        if path.suffix.lower() == ".csv":
            return "csv"
        if len(rows) > 1:
            data = next(csv.reader([rows[1]]))
            if len(data) == len(header) and any(_is_number(f) for f in data):
                return "csv"
    return "text"


def detect_format(path: str | Path) -> str:
    """The format :func:`read_log` will read ``path`` as: one of ``FORMATS``.

    ``"jsonl"`` when the first non-blank line starts a JSON object; ``"csv"`` when it is a
    header of two or more fields followed by a row of as many fields with a number among
    them (or the file ends in ``.csv``); ``"text"`` otherwise.
    """
    path = Path(path)
    return _detect(path, _read_text(path))


# --- values ---------------------------------------------------------------------------------


def _to_float(value, path: Path, where: str, name: str) -> float:
    """A logged number as float; NaN/Inf kept, null read as NaN (JSON has no NaN)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or isinstance(value, dict | list):
        raise _fail(path, f"{where}: {name} is {value!r}, expected a number")
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise _fail(
            path, f"{where}: {name} is {value!r}, expected a number (or nan / inf)"
        ) from None


def _to_step(value, path: Path, where: str) -> int:
    if isinstance(value, bool) or value is None:
        raise _fail(path, f"{where}: step is {value!r}, expected a whole number")
    try:
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, int):
            return number
        if isinstance(number, float) and number.is_integer():
            return int(number)
    except (TypeError, ValueError):
        pass
    raise _fail(path, f"{where}: step is {value!r}, expected a whole number")


# --- JSON lines -----------------------------------------------------------------------------


def _read_jsonl(path: Path, text: str, loss_key: str | None, run: str | None) -> list[_Row]:
    records: list[tuple[int, dict]] = []
    for number, line in enumerate(_lines(text), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            hint = ""
            if number == 1 and line.strip() in ("{", "["):
                hint = " (this looks like one JSON document spread over many lines)"
            raise _fail(
                path,
                f"line {number} is not valid JSON ({err.msg} at column {err.colno}); "
                f"expected one JSON object per line{hint}",
            ) from None
        if not isinstance(record, dict):
            raise _fail(
                path,
                f"line {number} holds a JSON {type(record).__name__}, expected a JSON object",
            )
        records.append((number, record))

    keys = list(dict.fromkeys(k for _, r in records for k in r))  # in order of appearance
    key = loss_key if loss_key is not None else _first_present(LOSS_KEYS, keys)
    if key is None or key not in keys:
        wanted = f"key {key!r}" if loss_key is not None else f"a loss key (tried {list(LOSS_KEYS)})"
        raise _fail(
            path,
            f"no record has {wanted}; keys in the file: {_listing(keys)}; "
            "pass loss_key= to say which one is the loss",
        )
    with_loss = [(n, r) for n, r in records if key in r]
    first_line, first = with_loss[0]
    step_key = _first_present(STEP_KEYS, first)
    if step_key is None:
        raise _fail(
            path,
            f"line {first_line} has {key!r} but no step key (tried {list(STEP_KEYS)}); "
            f"its keys: {_listing(first)}",
        )
    loss_keys = list(dict.fromkeys(k for _, r in with_loss for k in r))
    lr_key = _first_present(LR_KEYS, loss_keys) or next(
        (k for k in loss_keys if k.startswith("lr/")), None
    )
    grad_key = _first_present(GRAD_NORM_KEYS, loss_keys)
    default = run or _default_run(path)

    rows = []
    for number, record in with_loss:
        where = f"line {number}"
        if step_key not in record:
            raise _fail(
                path, f"{where} has {key!r} but no {step_key!r}, which the other records have"
            )
        name = default
        if run is None:
            field = next((record[k] for k in RUN_KEYS if record.get(k) not in (None, "")), None)
            name = str(field) if field is not None else default
        rows.append(
            _Row(
                run=name,
                step=_to_step(record[step_key], path, where),
                loss=_to_float(record[key], path, where, repr(key)),
                lr=_to_float(record.get(lr_key), path, where, repr(lr_key)),
                grad_norm=_to_float(record.get(grad_key), path, where, repr(grad_key)),
                line=number,
            )
        )
    return rows


def _first_present(candidates: Iterable[str], keys: Iterable[str]) -> str | None:
    present = set(keys)
    return next((k for k in candidates if k in present), None)


# --- CSV ------------------------------------------------------------------------------------


def _csv_rows(path: Path, text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and every non-blank data row with the line it ends on."""
    # newline="": the csv module sees the real line ends, so line_num counts file lines
    # even when a quoted field spans two of them.
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            if not fields or not any(f.strip() for f in fields):
                continue
            if header is None:
                header = [f.strip() for f in fields]
                header_line = reader.line_num
                continue
            if len(fields) != len(header):
                raise _fail(
                    path,
                    f"line {reader.line_num} has {len(fields)} fields but the header "
                    f"(line {header_line}) has {len(header)}; expected one field per column",
                )
            rows.append((reader.line_num, fields))
    except csv.Error as err:
        raise _fail(path, f"line {reader.line_num} is not valid CSV ({err})") from None
    if not rows:
        raise _fail(path, f"has a header but no data rows (columns: {_listing(header)})")
    return header, rows


def _read_csv(path: Path, text: str, loss_key: str | None, run: str | None) -> list[_Row]:
    header, rows = _csv_rows(path, text)
    if any(WANDB_SEP in h for h in header):
        return _read_wandb(path, header, rows, loss_key, run)
    if WANDB_RUNS_TABLE <= set(header):
        raise _fail(
            path,
            "is a W&B runs table (one summary row per run), not a history; export the "
            "loss chart's CSV from its panel, or the run's history, instead",
        )

    column = {name: i for i, name in reversed(list(enumerate(header)))}
    loss_col = loss_key if loss_key is not None else _pick(LOSS_KEYS, header)
    if loss_col not in column:
        wanted = (
            f"column {loss_key!r}"
            if loss_key is not None
            else f"loss column (tried {list(LOSS_KEYS)})"
        )
        raise _fail(
            path,
            f"has no {wanted}; columns: {_listing(header)}; pass loss_key= to say which "
            "column is the loss",
        )
    step_col = _pick(STEP_KEYS, header)
    if step_col is None:
        raise _fail(
            path, f"has no step column (tried {list(STEP_KEYS)}); columns: {_listing(header)}"
        )
    lr_col = _pick(LR_KEYS, header)
    grad_col = _pick(GRAD_NORM_KEYS, header)
    run_col = None if run is not None else _pick(RUN_KEYS, header)
    default = run or _default_run(path)

    def cell(fields: list[str], name: str | None) -> str:
        return fields[column[name]].strip() if name is not None else ""

    out = []
    for number, fields in rows:
        where = f"line {number}"
        if cell(fields, loss_col) == "":
            continue  # this row logged other columns only
        out.append(
            _Row(
                run=cell(fields, run_col) or default,
                step=_to_step(cell(fields, step_col), path, f"{where}, column {step_col!r}"),
                loss=_to_float(
                    cell(fields, loss_col), path, f"{where}, column {loss_col!r}", "the loss"
                ),
                lr=_optional(cell(fields, lr_col), path, f"{where}, column {lr_col!r}", "lr"),
                grad_norm=_optional(
                    cell(fields, grad_col), path, f"{where}, column {grad_col!r}", "grad_norm"
                ),
                line=number,
            )
        )
    return out


def _optional(value: str, path: Path, where: str, name: str) -> float:
    return math.nan if value == "" else _to_float(value, path, where, name)


def _read_wandb(
    path: Path,
    header: list[str],
    rows: list[tuple[int, list[str]]],
    loss_key: str | None,
    run: str | None,
) -> list[_Row]:
    """A W&B chart export: "<run> - <metric>" columns, one group per run."""
    by_run: dict[str, dict[str, int]] = {}  # run -> metric -> column index
    plain: dict[str, int] = {}  # columns without a run (the x axis)
    for i, name in enumerate(header):
        if name.endswith(WANDB_COMPANIONS):
            continue  # min/max over a grouped run's members, not a value of its own
        if WANDB_SEP in name:
            run_name, metric = name.rsplit(WANDB_SEP, 1)
            by_run.setdefault(run_name, {}).setdefault(metric, i)
        else:
            plain.setdefault(name, i)
    listed = [h for h in header if not h.endswith(WANDB_COMPANIONS)]
    metrics = list(dict.fromkeys(m for cols in by_run.values() for m in cols))
    loss_metric = loss_key if loss_key is not None else _pick(LOSS_KEYS, metrics)
    runs = [r for r, cols in by_run.items() if loss_metric in cols]
    if not runs:
        wanted = (
            f"metric {loss_key!r}"
            if loss_key is not None
            else f"a loss metric (tried {list(LOSS_KEYS)})"
        )
        raise _fail(
            path,
            f"is a W&B export with no run logging {wanted}; columns: {_listing(listed)}; "
            "pass loss_key= with the metric after ' - ' in a column name",
        )
    if run is not None and len(runs) > 1:
        raise ParameterError(
            f"run={run!r}: {path} holds {len(runs)} runs ({_listing(runs)}); run= can only "
            "rename a file that holds one run"
        )
    global_step = _pick(STEP_KEYS, plain)

    out = []
    for run_name in runs:
        cols = by_run[run_name]
        own_step = _pick(STEP_KEYS, cols)
        if global_step is not None:
            step_i, step_name = plain[global_step], global_step
        elif own_step is not None:
            # The chart's x axis was not a step (e.g. epoch); the run's own _step column is.
            step_i, step_name = cols[own_step], f"{run_name}{WANDB_SEP}{own_step}"
        else:
            raise _fail(
                path,
                f"is a W&B export without a step column (tried {list(STEP_KEYS)}, also per "
                f"run); columns: {_listing(listed)}",
            )
        loss_i = cols[loss_metric]
        lr_metric = _pick(LR_KEYS, cols)
        grad_metric = _pick(GRAD_NORM_KEYS, cols)
        for number, fields in rows:
            value = fields[loss_i].strip()
            if value == "":
                continue  # the run did not log at this step
            where = f"line {number}"
            lr = grad = math.nan
            if lr_metric is not None:
                lr = _optional(fields[cols[lr_metric]].strip(), path, where, repr(lr_metric))
            if grad_metric is not None:
                grad = _optional(fields[cols[grad_metric]].strip(), path, where, repr(grad_metric))
            out.append(
                _Row(
                    run=run if run is not None else run_name,
                    step=_to_step(fields[step_i].strip(), path, f"{where}, column {step_name!r}"),
                    loss=_to_float(value, path, f"{where}, column {header[loss_i]!r}", "the loss"),
                    lr=lr,
                    grad_norm=grad,
                    line=number,
                )
            )
    return out


# --- plain text -----------------------------------------------------------------------------


def _text_patterns(loss_key: str | None, pattern) -> _TextPatterns:
    if pattern is not None:
        return _TextPatterns(custom=_compile_pattern(pattern))
    word = re.escape(loss_key) if loss_key is not None else "loss"
    key = rf"{_WORD_START}{_NOT_EVAL}(?P<qual>train(?:ing)?[ _/-]?)?{word}{_WORD_END}"
    return _TextPatterns(
        custom=None,
        loss=re.compile(rf"{key}\s*[=:]?\s*{_VALUE}", re.IGNORECASE),
        loss_key_value=re.compile(rf"{key}\s*[=:]\s*(?P<value>\S+)", re.IGNORECASE),
        eval_loss=re.compile(
            rf"{_WORD_START}(?:val|valid|validation|eval|test)[ _/-]?{word}{_WORD_END}",
            re.IGNORECASE,
        ),
    )


def _compile_pattern(pattern) -> re.Pattern:
    if isinstance(pattern, str):
        try:
            pattern = re.compile(pattern)
        except re.error as err:
            raise ParameterError(f"pattern={pattern!r} is not a valid regex: {err}") from None
    if not isinstance(pattern, re.Pattern):
        raise ParameterError(f"pattern={pattern!r} is invalid; expected a regex string")
    missing = [g for g in ("step", "loss") if g not in pattern.groupindex]
    if missing:
        raise ParameterError(
            f"pattern={pattern.pattern!r} has no named group {missing}; expected "
            "(?P<step>...) and (?P<loss>...), optionally (?P<lr>...) and (?P<grad_norm>...)"
        )
    return pattern


def _read_text_log(
    path: Path, text: str, loss_key: str | None, run: str | None, pattern
) -> list[_Row]:
    patterns = _text_patterns(loss_key, pattern)
    name = run or _default_run(path)
    rows = []
    for number, line in enumerate(_lines(text), start=1):
        where = f"line {number}"
        if patterns.custom is not None:
            row = _custom_line(path, line, where, patterns.custom)
        else:
            row = _default_line(path, line, where, patterns)
        if row is not None:
            step, loss, lr, grad = row
            rows.append(_Row(name, step, loss, lr, grad, number))
    if not rows:
        first = next(line.strip() for line in _lines(text) if line.strip())
        if patterns.custom is not None:
            expected = f"lines matching pattern {patterns.custom.pattern!r}"
        else:
            word = loss_key or "loss"
            expected = (
                f"lines like 'step 10 {word}=0.52' or 'iter 10: {word} 0.52', or pass "
                "pattern= with named groups step and loss"
            )
        raise _fail(
            path, f"no line has a step and a loss; expected {expected} (first line: {first[:80]!r})"
        )
    return rows


def _custom_line(path: Path, line: str, where: str, pattern: re.Pattern):
    match = pattern.search(line)
    if match is None or match["step"] is None or match["loss"] is None:
        return None
    groups = match.groupdict()
    try:
        step = int(match["step"].strip())
    except ValueError:
        raise _fail(
            path, f"{where}: step {match['step']!r} is not a whole number ({line.strip()!r})"
        ) from None
    return (
        step,
        _to_float(match["loss"], path, where, "the loss"),
        _to_float(groups.get("lr"), path, where, "lr"),
        _to_float(groups.get("grad_norm"), path, where, "grad_norm"),
    )


def _default_line(path: Path, line: str, where: str, patterns: _TextPatterns):
    step_match = _STEP_RE.search(line)
    if step_match is None:
        return None
    loss_match = patterns.loss.search(line)
    if loss_match is None:
        bad = patterns.loss_key_value.search(line)
        if bad is not None:
            raise _fail(
                path,
                f"{where}: loss value {bad['value']!r} is not a number (or nan / inf): "
                f"{line.strip()!r}",
            )
        return None
    if loss_match["qual"] and patterns.eval_loss.search(line):
        return None  # "train loss X, val loss Y": an evaluation over held-out batches
    if step_match["unit"]:
        # LeRobot prints steps through format_big_number ("step:20K"): the exact step is lost
        # and consecutive log lines share one rounded value.
        raise _fail(
            path,
            f"{where}: step {step_match['step']!r} is rounded, the exact step is lost "
            f"({line.strip()[:120]!r}); expected whole steps: use the run's JSON or W&B log, "
            "or pass pattern= to read another counter",
        )
    if "." in step_match["step"]:
        raise _fail(
            path,
            f"{where}: step {step_match['step']!r} is not a whole number ({line.strip()[:120]!r})",
        )
    lr = _LR_RE.search(line)
    grad = _GRAD_NORM_RE.search(line)
    return (
        int(step_match["step"]),
        float(loss_match["value"]),
        float(lr["value"]) if lr else math.nan,
        float(grad["value"]) if grad else math.nan,
    )


# --- the table ------------------------------------------------------------------------------


def _check_duplicates(path: Path, rows: list[_Row]) -> list[_Row]:
    """Drop exact repeats; a step logged twice with different losses is an error."""
    seen: dict[tuple[str, int], _Row] = {}
    kept = []
    for row in rows:
        first = seen.get((row.run, row.step))
        if first is None:
            seen[(row.run, row.step)] = row
            kept.append(row)
            continue
        same = first.loss == row.loss or (math.isnan(first.loss) and math.isnan(row.loss))
        if not same:
            raise _fail(
                path,
                f"run {row.run!r} logs step {row.step} twice with different losses: "
                f"{first.loss!r} (line {first.line}) and {row.loss!r} (line {row.line}); "
                "expected one loss per step (a resumed run appended to the same log? keep "
                "one of the two segments, or give each its own file)",
            )
    return kept


def _frame(rows: list[_Row]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run": pd.Series([r.run for r in rows], dtype=object),
            "step": np.array([r.step for r in rows], dtype=np.int64),
            "loss": np.array([r.loss for r in rows], dtype=np.float64),
            "lr": np.array([r.lr for r in rows], dtype=np.float64),
            "grad_norm": np.array([r.grad_norm for r in rows], dtype=np.float64),
        },
        columns=list(COLUMNS),
    )


def _check_name(name: str, value) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ParameterError(f"{name}={value!r} is invalid; expected a non-empty string or None")


def _read(path, loss_key, run, pattern, pattern_everywhere: bool) -> pd.DataFrame:
    _check_name("loss_key", loss_key)
    _check_name("run", run)
    if not isinstance(path, str | Path):
        raise ParameterError(f"path={path!r} is invalid; expected a file path")
    path = Path(path)
    if pattern is not None:
        _compile_pattern(pattern)  # a bad pattern is the caller's error whatever the file
        if loss_key is not None:
            raise ParameterError(
                "pattern and loss_key both given; the pattern's loss group already says "
                "which number is the loss"
            )
    text = _read_text(path)
    fmt = _detect(path, text)
    if pattern is not None and fmt != "text":
        if pattern_everywhere:
            raise ParameterError(
                f"pattern= applies to plain-text logs, but {path} reads as {fmt}; drop "
                "pattern= (use loss_key= to choose the loss)"
            )
        pattern = None  # read_logs: the pattern is for the text files among the others
    if fmt == "jsonl":
        rows = _read_jsonl(path, text, loss_key, run)
    elif fmt == "csv":
        rows = _read_csv(path, text, loss_key, run)
    else:
        rows = _read_text_log(path, text, loss_key, run, pattern)
    return _frame(_check_duplicates(path, rows))


def read_log(
    path: str | Path,
    loss_key: str | None = None,
    run: str | None = None,
    pattern: str | re.Pattern | None = None,
) -> pd.DataFrame:
    """One training log as a table with columns ``run, step, loss, lr, grad_norm``.

    ``loss_key`` names the loss (a JSON key, a CSV column, the metric of a W&B
    ``<run> - <metric>`` column, or the word before the value in a text log); by default
    the first of ``LOSS_KEYS`` the file has. ``run`` names the run (for a W&B export only
    when it holds one run). ``pattern`` is a regex for plain-text logs with named groups
    ``step`` and ``loss`` (optionally ``lr``, ``grad_norm``); lines it does not match are
    skipped. Rows keep the file's order (W&B exports: run by run).
    """
    return _read(path, loss_key, run, pattern, pattern_everywhere=True)


def read_logs(
    paths: Iterable[str | Path],
    loss_key: str | None = None,
    pattern: str | re.Pattern | None = None,
) -> pd.DataFrame:
    """Several logs in one table, in the order given.

    Run names come from each file as in :func:`read_log`. When two files give the same run
    name, the later one becomes ``name (2)``, ``name (3)``, ...: runs are never merged.
    ``pattern`` is used for the plain-text files and ignored for JSON-lines and CSV ones.
    """
    if isinstance(paths, str | Path):
        raise ParameterError(
            f"paths={str(paths)!r} is one path; expected a list of paths (read_log reads one)"
        )
    try:
        paths = list(paths)
    except TypeError:
        raise ParameterError(f"paths={paths!r} is invalid; expected a list of paths") from None
    if not paths:
        raise ParameterError("paths is empty; expected at least one log file")

    frames = []
    used: set[str] = set()
    for path in paths:
        frame = _read(path, loss_key, None, pattern, pattern_everywhere=False)
        names = list(dict.fromkeys(frame["run"]))
        renames = {}
        for name in names:
            new, k = name, 2
            while new in used or (new != name and new in names):
                new, k = f"{name} ({k})", k + 1
            renames[name] = new
            used.add(new)
        frame["run"] = frame["run"].map(renames)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
