"""Text training logs: a training script's stdout, read line by line.

The default reading takes lines with a step (``step 10``, ``step=10``, ``step: 10``,
``iter 10``) and a loss (``loss=0.5``, ``loss: 0.5``, ``loss 0.5``, also ``nan`` / ``inf``)
on the same line, with optional ``lr`` and ``grad_norm`` / ``grad norm``; every other line
is skipped. Lines that report an evaluation are skipped too: ``val loss`` / ``val_loss``
is never the training loss, and nanoGPT's ``step 100: train loss X, val loss Y`` is an
estimate over eval batches, not the loss of step 100.

``pattern`` replaces all of this with the caller's regex (:func:`compile_pattern`): named
groups ``step`` and ``loss``, optionally ``lr``, ``grad_norm`` and ``run`` (one file
holding several runs); lines it does not match are skipped. A loss printed as ``0.0000``
is read as 0.0 and kept, like ``nan`` and ``inf``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from nblib.data.training_logs.detect import lines
from nblib.data.training_logs.schema import Row, default_run, fail, listing, to_float
from nblib.errors import ParameterError

# The named groups a caller's pattern may have; step and loss are required.
GROUPS = ("step", "loss", "lr", "grad_norm", "run")

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
class _Patterns:
    """The regexes one text log is read with (the default ones or the caller's)."""

    custom: re.Pattern | None
    loss: re.Pattern | None = None  # a number after the loss word
    loss_key_value: re.Pattern | None = None  # "loss=<anything>": a value that must parse
    eval_loss: re.Pattern | None = None  # val/eval/test loss: marks an evaluation line


def compile_pattern(pattern) -> re.Pattern:
    """The caller's regex, compiled and checked: a ParameterError for a bad regex, a
    missing ``step`` / ``loss`` group, or a named group this reader would ignore."""
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
            "(?P<step>...) and (?P<loss>...), optionally (?P<lr>...), (?P<grad_norm>...) "
            "and (?P<run>...)"
        )
    unknown = [g for g in pattern.groupindex if g not in GROUPS]
    if unknown:
        # e.g. (?P<learning_rate>...): silently ignored, the lr column would stay NaN
        raise ParameterError(
            f"pattern={pattern.pattern!r} has named group(s) {unknown}, which are not read; "
            f"expected only {', '.join(GROUPS)} (write other groups as (?:...))"
        )
    return pattern


def _patterns(loss_key: str | None, pattern) -> _Patterns:
    if pattern is not None:
        return _Patterns(custom=compile_pattern(pattern))
    word = re.escape(loss_key) if loss_key is not None else "loss"
    key = rf"{_WORD_START}{_NOT_EVAL}(?P<qual>train(?:ing)?[ _/-]?)?{word}{_WORD_END}"
    return _Patterns(
        custom=None,
        loss=re.compile(rf"{key}\s*[=:]?\s*{_VALUE}", re.IGNORECASE),
        loss_key_value=re.compile(rf"{key}\s*[=:]\s*(?P<value>\S+)", re.IGNORECASE),
        eval_loss=re.compile(
            rf"{_WORD_START}(?:val|valid|validation|eval|test)[ _/-]?{word}{_WORD_END}",
            re.IGNORECASE,
        ),
    )


def read(path: Path, text: str, loss_key: str | None, run: str | None, pattern) -> list[Row]:
    """The rows of a text log, in the file's order."""
    patterns = _patterns(loss_key, pattern)
    default = run or default_run(path)
    rows, named = [], {}  # named: the runs a pattern's run group found
    for number, line in enumerate(lines(text), start=1):
        where = f"line {number}"
        if patterns.custom is not None:
            row = _custom_line(path, line, where, patterns.custom)
        else:
            row = _default_line(path, line, where, patterns)
        if row is not None:
            step, loss, lr, grad, name = row
            if name is not None:
                named[name] = True
            rows.append(Row(name or default, step, loss, lr, grad, number))
    if not rows:
        first = next(line.strip() for line in lines(text) if line.strip())
        if patterns.custom is not None:
            expected = f"lines matching pattern {patterns.custom.pattern!r}"
        else:
            word = loss_key or "loss"
            expected = (
                f"lines like 'step 10 {word}=0.52' or 'iter 10: {word} 0.52', or pass "
                "pattern= with named groups step and loss"
            )
        raise fail(
            path, f"no line has a step and a loss; expected {expected} (first line: {first[:80]!r})"
        )
    if run is not None and named:
        if len(named) > 1:
            raise ParameterError(
                f"run={run!r}: {path} holds {len(named)} runs ({listing(named)}, the "
                "pattern's run group); run= can only rename a file that holds one run"
            )
        for row in rows:
            row.run = run
    return rows


def _custom_line(path: Path, line: str, where: str, pattern: re.Pattern):
    match = pattern.search(line)
    if match is None or match["step"] is None or match["loss"] is None:
        return None
    groups = match.groupdict()
    try:
        step = int(match["step"].strip())
    except ValueError:
        raise fail(
            path, f"{where}: step {match['step']!r} is not a whole number ({line.strip()!r})"
        ) from None
    return (
        step,
        to_float(match["loss"], path, where, "the loss"),
        to_float(groups.get("lr"), path, where, "lr"),
        to_float(groups.get("grad_norm"), path, where, "grad_norm"),
        (groups.get("run") or "").strip() or None,
    )


def _default_line(path: Path, line: str, where: str, patterns: _Patterns):
    step_match = _STEP_RE.search(line)
    if step_match is None:
        return None
    loss_match = patterns.loss.search(line)
    if loss_match is None:
        bad = patterns.loss_key_value.search(line)
        if bad is not None:
            raise fail(
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
        raise fail(
            path,
            f"{where}: step {step_match['step']!r} is rounded, the exact step is lost "
            f"({line.strip()[:120]!r}); expected whole steps: use the run's JSON or W&B log, "
            "or pass pattern= to read another counter",
        )
    if "." in step_match["step"]:
        raise fail(
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
        None,
    )
