"""Terminal output as evaluation scripts leave it in log files, made readable line by line.

Evaluation logs are captured stdout/stderr (``> log 2>&1``, ``nohup``, ``tee``) or text
copied from a terminal window, so the key lines come with what the terminal had around them:

- ANSI escape codes (colours, tqdm's cursor-up ``ESC[A``) and carriage returns: of the
  pieces a ``\\r`` leaves, the last one with text is what stayed on screen;
- tqdm bars, glued before or after a record (``" 42%|████▏     | 21/50 [01:02<01:26,
  2.98s/it]"``): cut out, and reported as :class:`Bar` (count, total, nested) because their
  totals are the loops' plans;
- the remainder of a bar after a shorter line overwrote its start, as a terminal copy shows
  it (``Task: put the bowl on the plate01:10, 35.21s/it]``): :func:`strip_bar_tail`;
- ``rich`` logging records (``08/28 [10:50:11] INFO     | >> Success: True
  run_libero_eval.py:226``): their prefix and right-hand ``file.py:line`` column are cut
  and wrapped continuation lines (no prefix, only indentation) joined back with one space.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# CSI sequences (colours, cursor moves such as tqdm's "\x1b[A"), OSC titles, lone escapes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
# A tqdm bar: " 42%|████▏     | 21/50 [01:02<01:26,  2.98s/it]" (the bracket part optional).
# A nested bar (tqdm's position 1, the episode loop inside the task loop) is written with a
# line feed before it and a cursor-up "\x1b[A" right after it.
_TQDM = re.compile(
    r"\d{1,3}%\|[^|\n]*\|\s*(?P<n>\d+(?:\.\d+)?[kMG]?)/(?P<total>\d+(?:\.\d+)?[kMG]?)"
    r"(?:\s*\[[^\]\n]*\])?(?P<up>\x1b\[A)?"
)

# A rich log record: optional "MM/DD [HH:MM:SS]" (or "[MM/DD/YY HH:MM:SS]") stamp, the level,
# then either prismatic's "| >> message" or rich's default column layout, which always ends
# in the right-aligned "file.py:line" column.
_STAMP = (
    r"(?:\d{2}/\d{2}(?:/\d{2,4})? \[\d{2}:\d{2}:\d{2}\]|\[\d{2}/\d{2}/\d{2,4} \d{2}:\d{2}:\d{2}\])"
)
_LEVEL = r"(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)"
_RICH_BAR = re.compile(rf"^\s*(?:{_STAMP}\s+)?{_LEVEL}\s+\|\s?(?:>>\s?)?(?P<msg>.*)$")
_RICH_COLUMNS = re.compile(
    rf"^\s*(?:{_STAMP}\s+)?{_LEVEL}\s{{2,}}(?P<msg>.*?)\s+[\w.<>-]+\.py:\d+\s*$"
)
_RICH_PATH = re.compile(r"\s+[\w.<>-]+\.py:\d+\s*$")
# Rich indents wrapped lines to its message column (26 spaces for "MM/DD [HH:MM:SS] INFO ");
# tracebacks (2) and tab-indented warnings never reach 10.
_CONTINUATION_INDENT = 10


@dataclass(frozen=True)
class Bar:
    """One tqdm bar drawn in the log: ``n`` of ``total`` iterations done; ``nested`` when
    tqdm drew it below another bar (an inner loop)."""

    n: int
    total: int
    nested: bool


def _bar_tail_pattern() -> re.Pattern:
    """Any trailing part of a bar ``NN%|███   | n/T [mm:ss<mm:ss, R.RRs/it]`` that still
    holds its rate unit and closing bracket.

    Pieces from left to right as (whole piece, a cut piece or None). A cut numeric piece
    must touch the text before it (a terminal shows ``plate01:10, ...``): digits after a
    space belong to the text (LIBERO-Plus tasks end in numbers, ``... light 10``)."""
    attached = r"(?<=[^\s\d])"
    pieces = [
        (r"\s*\d{1,3}%", attached + r"\d{0,2}%"),
        (r"\|", None),
        (r"[\s\u2580-\u259f#]*", None),  # the bar's blocks; any cut of it is itself
        (r"\|", None),
        (r"\s*\d+/\d+", rf"/\d+|{attached}\d+"),
        (r"\s*\[", None),
        (r"\d+(?::\d\d)+", rf":[\d:]*|{attached}[\d:]+"),
        (r"<", None),
        (r"(?:\d+(?::\d\d)+|\?)", rf":[\d:]*|{attached}[\d:]+"),
        (r",", None),
        (r"\s*(?:\d+(?:\.\d+)?|\?)(?:s/it|it/s)", rf"{attached}[\d.]+(?:s/it|it/s)|s/it|it/s"),
        (r"\]", None),
    ]
    pattern = ""
    for whole, cut in reversed(pieces):
        starts = [whole + pattern] + ([f"(?:{cut}){pattern}"] if cut else [])
        if pattern:
            starts.append(pattern)  # the tail starts further right
        pattern = "(?:" + "|".join(starts) + ")"
    return re.compile(pattern + r"\s*$")


_BAR_TAIL = _bar_tail_pattern()


def strip_bar_tail(text: str) -> str:
    """``text`` without the remainder of a tqdm bar at its end (the longest one there)."""
    match = _BAR_TAIL.search(text)
    return text[: match.start()].rstrip() if match else text


def _number(value: str) -> int | None:
    """A bar count; tqdm's scaled forms ("1.2k") are not counts of episodes or tasks."""
    return int(value) if value.isdigit() else None


def clean_line(line: str) -> tuple[str, list[Bar]]:
    """One physical line without escape codes and bars (the last piece a carriage return
    left), and the bars that were drawn on it."""
    bars = []
    for match in _TQDM.finditer(line):
        n, total = _number(match.group("n")), _number(match.group("total"))
        if n is not None and total:
            bars.append(Bar(n, total, nested=match.group("up") is not None))
    # bars first (a nested bar's "ESC[A" is part of its match), then escape codes, then
    # bars an escape code had split
    line = _TQDM.sub("", _ANSI.sub("", _TQDM.sub("", line.rstrip("\r"))))
    if "\r" in line:
        # a carriage return overwrites the terminal line: the last piece with text is what
        # was left on screen (tqdm's own pieces are already cut out above)
        pieces = [piece for piece in line.split("\r") if piece.strip()]
        line = pieces[-1] if pieces else ""
    return line, bars


def _rich_message(line: str) -> str | None:
    match = _RICH_BAR.match(line) or _RICH_COLUMNS.match(line)
    if not match:
        return None
    return _RICH_PATH.sub("", match.group("msg")).strip()


def records(text: str) -> Iterator[tuple[int, str, list[Bar]]]:
    """(first physical line number from 1, logical text, bars drawn on its lines) of each
    log record: a plain line, or a rich record with its continuation lines joined."""
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        cleaned, bars = clean_line(lines[index])
        number = index + 1
        index += 1
        message = _rich_message(cleaned)
        if message is None:
            yield number, cleaned.strip(), bars
            continue
        parts = [message]
        while index < len(lines):
            follow, follow_bars = clean_line(lines[index])
            indent = len(follow) - len(follow.lstrip(" "))
            if (
                indent < _CONTINUATION_INDENT
                or not follow.strip()
                or _rich_message(follow) is not None
            ):
                break
            parts.append(follow.strip())
            bars += follow_bars
            index += 1
        yield number, " ".join(part for part in parts if part), bars
