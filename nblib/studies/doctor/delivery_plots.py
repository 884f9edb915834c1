"""Figures of the ``instruction_delivery`` and ``coverage`` checks, drawn from their
:class:`~nblib.studies.doctor.checks.CheckResult` alone (evidence only; nothing is run).

Every number drawn that ``metrics.json`` also holds is recorded with
:func:`nblib.plots.show_number` under ``checks.<check>.evidence...`` (the doctor's
:func:`~nblib.studies.doctor.engine.metrics`)."""

from __future__ import annotations

from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from nblib.plots import DOUBLE_COLUMN_IN, MAX_HEIGHT_IN, new_figure, show_number
from nblib.studies.doctor.plots import STATUS_STYLE

GOOD, BAD = STATUS_STYLE["ok"][0], STATUS_STYLE["mismatch"][0]
NEUTRAL = "#BBBBBB"
MAX_ROWS = 40  # coverage rows that fit a page at a readable size


def _key(check: str, *path: str) -> tuple[str, ...]:
    return ("checks", check, "evidence", *path)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _two_lines(text: str, width: int) -> str:
    """``text`` wrapped at ``width`` characters, cut after the second line."""
    import textwrap

    lines = textwrap.wrap(text, width, break_long_words=True) or [""]
    if len(lines) > 2:
        lines = [lines[0], _clip(" ".join(lines[1:]), width)]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- delivery


def figure_delivery(result):
    """A table: one row per task, one column per instruction mode (and the training
    data); each cell the text ``act`` received, green with ✓ when it was the intended
    one, vermillion with ✗ when not."""
    ev = result.evidence
    if not ev.get("tasks"):
        return None
    tasks, modes = ev["tasks"], ev["modes"]
    columns = [*modes, "training data"] if ev.get("training_compared") else list(modes)
    fig, ax = new_figure(width=DOUBLE_COLUMN_IN, height=0.75 + 0.34 * len(tasks))
    label_width = 1.3  # columns are 1 wide; the task names take this much
    for col, name in enumerate(columns):
        ax.text(label_width + col + 0.5, len(tasks) + 0.15, name, ha="center", va="bottom",
                fontsize=7, fontweight="bold")  # fmt: skip
    for row, task in enumerate(tasks):
        y = len(tasks) - 1 - row
        ax.text(label_width - 0.05, y + 0.5, _two_lines(task, 30), ha="right", va="center",
                fontsize=6, linespacing=1.1)  # fmt: skip
        for col, name in enumerate(columns):
            good, text = _cell(ev, task, name)
            face = NEUTRAL if good is None else (GOOD if good else BAD)
            mark = "" if good is None else ("✓ " if good else "✗ ")
            ax.add_patch(Rectangle((label_width + col + 0.03, y + 0.06), 0.94, 0.88,
                                   facecolor=face, alpha=0.28, edgecolor=face, linewidth=0.6))  # fmt: skip
            ax.text(label_width + col + 0.5, y + 0.5, _two_lines(mark + text, 21), ha="center",
                    va="center", fontsize=6, linespacing=1.1)  # fmt: skip
    delivered = show_number(fig, _key(result.check, "delivered"), ev["delivered"])
    episodes = show_number(fig, _key(result.check, "episodes"), ev["episodes"])
    ax.set_title(
        f"Instruction received by the policy: {delivered:g} of {episodes:g} episodes as "
        f"intended ({ev['sim']}{', ' + ev['suite'] if ev.get('suite') else ''})",
        fontsize=8,
        loc="left",
    )
    ax.set_xlim(0, label_width + len(columns))
    ax.set_ylim(0, len(tasks) + 0.7)
    ax.axis("off")
    return fig, ax


def _cell(ev: dict, task: str, column: str) -> tuple[bool | None, str]:
    """(delivered as intended, the text to show) of one cell."""
    if column == "training data":
        agree = ev["training"].get(task)
        if agree is None:
            return None, "no demos of the task"
        if agree:
            return True, "same as the demos"
        wording = ev["trained_wording"].get(task) or [""]
        return False, f"demos say {wording[0]!r}"
    good = ev["matrix"][task].get(column)
    if good is None:
        return None, "not run"
    text = ev["received"][task].get(column, "")
    return bool(good), repr(text) if text else "'' (empty)"


def caption_delivery(result) -> str:
    ev = result.evidence
    training = (
        " The last column compares the original instruction with the one the task's "
        "training demos carry."
        if ev.get("training_compared")
        else ""
    )
    served = (
        " Recorded on the client side of the served policy; the server's own handling "
        "is not visible."
        if ev.get("served")
        else ""
    )
    return (
        f"Instruction delivery: each cell is one {ev['steps']}-step episode of a task (row) "
        f"under an instruction mode (column), showing the text the policy's act received, "
        f"✓ green when it is the intended one, ✗ vermillion when not; {ev['delivered']} of "
        f"{ev['episodes']} episodes got the intended instruction.{training}{served}"
    )


# ----------------------------------------------------------------------------- coverage


def figure_coverage(result):
    """One row per task: its episodes (grey bar) and distinct initial states (green when
    every episode has its own, vermillion when some repeat; hatched when the file
    records none), against LIBERO's 50 per task."""
    ev = result.evidence
    per_task = ev.get("per_task") or {}
    if not per_task:
        return None
    keys = list(per_task)[:MAX_ROWS]
    parts = [k.split(" | ", 2) for k in keys]
    runs, suites = {p[0] for p in parts}, {p[1] for p in parts}
    height = min(MAX_HEIGHT_IN, 1.0 + 0.19 * len(keys))
    fig, ax = new_figure(width=DOUBLE_COLUMN_IN, height=height)
    most, names = 1, []
    for row, key in enumerate(keys):
        t = per_task[key]
        y = len(keys) - 1 - row
        run, suite, task = key.split(" | ", 2)
        n = show_number(fig, _key(result.check, "per_task", key, "episodes"), t["episodes"])
        ax.barh(y, n, height=0.8, color="white", edgecolor="#555555", linewidth=0.6)
        if t["unique"] is None:
            ax.barh(y, n, height=0.8, color="none", edgecolor="#999999", hatch="///",
                    linewidth=0)  # fmt: skip
            note = "states unknown"
        else:
            u = show_number(fig, _key(result.check, "per_task", key, "unique"), t["unique"])
            ax.barh(y, u, height=0.5, color=GOOD if u == n else BAD)
            note = f"{u:g} distinct of {n:g}"
        ax.text(n, y, f" {note}", va="center", fontsize=6)
        most = max(most, n)
        prefix = [run] * (len(runs) > 1) + [suite] * (len(suites) > 1)
        names.append(_clip(" · ".join([*prefix, task]), 48))
    ax.set_yticks(range(len(keys))[::-1], names, fontsize=6)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="y", visible=False)
    if any(per_task[k].get("protocol") for k in keys):
        line = show_number(fig, _key(result.check, "protocol", "libero"), ev["protocol"]["libero"])
        ax.axvline(line, color="black", linestyle="--", linewidth=0.8)
        ax.text(line, len(keys) - 0.35, f" LIBERO: {line:g} per task", fontsize=6, va="bottom")
        most = max(most, line)
    ax.set_xlim(0, most * 1.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(-0.6, len(keys) + 0.2)
    ax.set_xlabel("episodes per task (bar) and distinct initial states (inner bar)")
    common = [*runs] * (len(runs) == 1) + [*suites] * (len(suites) == 1)
    if common:
        ax.set_title(" · ".join(common), fontsize=8, loc="left")
    return fig, ax


def caption_coverage(result) -> str:
    ev = result.evidence
    shown = min(ev["shown_tasks"], MAX_ROWS)
    more = f" (the first {shown} of {ev['tasks']} tasks)" if ev["tasks"] > shown else ""
    where = "the doctor's own episode plan" if ev["source"] == "plan" else "the result files"
    return (
        f"Coverage of {where}{more}: per task, its episodes (outer bar) and how many "
        "distinct initial states they start from (inner bar: green when all differ, "
        "vermillion when some repeat, hatched when the file records none), against "
        f"LIBERO's protocol of {ev['protocol']['libero']} per task (dashed, LIBERO suites "
        f"only); {ev['repeated_tasks']} task(s) repeat a state, {ev['uneven_runs']} run(s) "
        "have uneven counts."
    )
