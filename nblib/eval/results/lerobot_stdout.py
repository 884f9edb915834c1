"""LeRobot evaluation results as ``lerobot-eval`` prints them (its stdout).

After ``Overall Aggregated Metrics:`` and ``Aggregated Metrics for
per_task:`` / ``per_group:`` / ``overall:`` it prints each value with ``print`` (later
``logger.info``, which adds ``INFO <date> <time> <file:line>`` before it) as a Python repr:
single quotes, ``True``/``False``, ``nan`` for an empty group, and, in forks that skip the
``float()``, ``np.float64(0.5)``. Each repr is one (very long) line among tqdm progress bars
(``\\r``-separated) and ANSI colour codes. They are read with :func:`ast.literal_eval` after
numpy scalar / array reprs are unwrapped token by token (``nan`` → missing), never with
``eval``. The single-task script prints only its ``aggregated`` dict, without a header and
without an episode count; such a log is refused (read its ``eval_info.json``).

The blocks are then read like an ``eval_info.json`` (:func:`~nblib.eval.results.lerobot.parse_info`).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

from nblib.errors import DataError
from nblib.eval.results.lerobot import LEVELS, parse_info
from nblib.eval.results.schema import Episode, default_run_name, line_error

_HEADER = re.compile(r"(?:Overall Aggregated Metrics|Aggregated Metrics for (\w+))\s*:\s*$")
_ANY_HEADER = re.compile(
    r"(?:Overall Aggregated Metrics|Aggregated Metrics for (?:per_task|per_group|overall))\s*:"
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# LeRobot's log format: "INFO [PID: 12] 2026-08-01 12:00:00 bot_eval.py:809 <message>".
_LOG_PREFIX = re.compile(
    r"^(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+(?:\[PID: \d+\]\s+)?"
    r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\s+\S+:\d+ ?"
)


def looks_like_stdout(text: str) -> bool:
    """Whether text holds ``lerobot-eval``'s aggregated-metrics blocks."""
    return bool(_ANY_HEADER.search(text))


def parse_stdout(
    text: str, source: str, suite: str | None = None, run: str | None = None
) -> list[Episode]:
    """Episodes from the metrics ``lerobot-eval`` printed (see the module docstring)."""
    run = run or default_run_name(source)
    lines = [_clean(line) for line in text.split("\n")]
    blocks: dict[str, object] = {}
    block_lines: dict[str, int] = {}
    for index, line in enumerate(lines):
        match = _HEADER.search(line)
        if not match:
            continue
        key = match.group(1) or "overall"
        if key not in LEVELS:
            continue  # a block this parser has no use for
        number, value = _payload(lines, index, key, source)
        if key in blocks and blocks[key] != value:
            raise line_error(
                source,
                number,
                f"a second {key} block disagrees with the one on line {block_lines[key]}; "
                "keep one lerobot-eval run per file",
            )
        blocks.setdefault(key, value)
        block_lines.setdefault(key, number)
    if not blocks:
        raise DataError(
            f"{source}: no 'Aggregated Metrics for per_task:' (or per_group / overall) block; "
            "LeRobot's single-task eval prints only a success percentage, read its "
            "eval_info.json instead"
        )

    def fail(path: str, message: str) -> DataError:
        head = re.match(r"\w+", path)
        line = block_lines.get(head.group(0) if head else "", min(block_lines.values()))
        return line_error(source, line, f"{path}: {message}")

    for key, value in blocks.items():
        if key in ("per_task", "per_episode") and not isinstance(value, list):
            raise fail(key, f"must be a list, not {type(value).__name__}")
        if key not in ("per_task", "per_episode") and not isinstance(value, dict):
            raise fail(key, f"must be a dict, not {type(value).__name__}")
    return parse_info(blocks, "", None, fail, source, suite, run)


def _clean(line: str) -> str:
    """What a terminal shows of a physical line: the text after tqdm's last carriage
    return, without ANSI codes or LeRobot's log prefix."""
    line = line.rstrip("\r")  # a CRLF file
    line = line.rsplit("\r", 1)[-1]
    line = _ANSI.sub("", line)
    return _LOG_PREFIX.sub("", line).strip()


def _payload(lines: list[str], index: int, key: str, source: str) -> tuple[int, object]:
    """(line number, value) of the repr printed after the header on ``lines[index]``."""
    start = index + 1
    while start < len(lines) and not lines[start]:
        start += 1
    if start == len(lines) or not lines[start].startswith(("{", "[")):
        number = min(start, len(lines) - 1) + 1
        raise line_error(
            source,
            number,
            f"expected the {key} metrics (a dict or list) after the header on line {index + 1}",
        )
    text = lines[start]
    try:
        return start + 1, _literal(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as error:
        failure = error
    state = _brackets(text)
    if state[0] > 0:
        # A pasted log may wrap the repr (Python prints it on one line): join lines until
        # the brackets close.
        end = start
        while state[0] > 0 and end + 1 < len(lines):
            end += 1
            text += "\n" + lines[end]
            state = _brackets("\n" + lines[end], state)
        if state[0] > 0:
            raise line_error(
                source,
                start + 1,
                f"the {key} metrics end before their closing bracket (is the file cut short?)",
            )
        try:
            return start + 1, _literal(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as error:
            failure = error
    reason = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
    raise line_error(source, start + 1, f"cannot read the {key} metrics: {reason}")


def _brackets(text: str, state: tuple[int, str, bool] = (0, "", False)):
    """(open brackets, open quote, pending backslash) after scanning ``text`` from ``state``;
    brackets inside quoted strings do not count."""
    depth, quote, escaped = state
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
    return depth, quote, escaped


def _literal(text: str):
    """A Python repr of plain data → the value, without ``eval``: numpy reprs are unwrapped
    first when the plain literal does not parse."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError) as error:
        try:
            rewritten = _unwrap_numpy(text)
        except tokenize.TokenError:  # unbalanced or unterminated: report the first error
            raise error from None
    return ast.literal_eval(rewritten)


_NUMPY = {"np", "numpy"}
_WRAPPERS = {
    "float64", "float32", "float16", "int64", "int32", "int16", "int8",
    "uint64", "uint32", "uint16", "uint8", "bool_", "str_", "array",
}  # fmt: skip


def _unwrap_numpy(text: str) -> str:
    """Rewrite numpy reprs token by token (strings are tokens, so text inside them is never
    touched): ``np.float64(0.5)`` → ``0.5``, ``array([1, 2], dtype=int64)`` → ``[1, 2]``,
    ``np.True_`` → ``True``, ``nan`` → ``None`` (missing), ``inf`` → ``1e999``."""
    tokens = [
        t
        for t in tokenize.generate_tokens(io.StringIO(text).readline)
        if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.INDENT)
        and t.type != tokenize.DEDENT
    ]
    out: list[str] = []
    stack: list[bool] = []  # one entry per open "(": True when its ")" is to be dropped
    i = 0
    while i < len(tokens):
        tok = tokens[i].string
        after = [t.string for t in tokens[i + 1 : i + 4]]
        if tok in _NUMPY and after[:1] == ["."] and len(after) > 1:
            attr = after[1]
            if attr in ("True_", "False_"):
                out.append(attr[:-1])
                i += 3
                continue
            if attr in ("nan", "inf"):
                out.append("None" if attr == "nan" else "1e999")
                i += 3
                continue
            if attr in _WRAPPERS and after[2:3] == ["("]:
                stack.append(True)
                i += 4
                continue
            raise ValueError(f"cannot read the numpy value {tok}.{attr}")
        if tok == "array" and after[:1] == ["("]:
            stack.append(True)
            i += 2
            continue
        if tok == "nan":
            out.append("None")
        elif tok == "inf":
            out.append("1e999")
        elif tok == "(":
            stack.append(False)
            out.append(tok)
        elif tok == ")":
            dropped = stack.pop() if stack else False
            if not dropped:
                out.append(tok)
        elif tok == "," and stack and stack[-1] and after[:2] == ["dtype", "="]:
            i = _skip_to_close(tokens, i)  # array(..., dtype=...): drop the keyword
            continue
        else:
            out.append(tok)
        i += 1
    return " ".join(out)


def _skip_to_close(tokens, i: int) -> int:
    """Index of the ``)`` closing the bracket that is open at token ``i``."""
    depth = 0
    while i < len(tokens):
        tok = tokens[i].string
        if tok in ("(", "[", "{"):
            depth += 1
        elif tok in (")", "]", "}"):
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise ValueError("an array( ... ) repr is not closed")
