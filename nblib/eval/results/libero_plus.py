"""LIBERO-Plus task variants: the perturbation a task text's suffix names.

LIBERO-Plus (sylvestf/LIBERO-plus) names a perturbed task by the original instruction plus
a suffix, which evaluation logs keep in their ``Task:`` lines. Suffixes map to its
dimensions as its ``libero/libero/benchmark/task_classification.json`` does: ``table N`` /
``tb N`` → background, ``light N`` → light, ``add N`` / ``levelN sampleN`` → layout,
``... noise N`` → noise, ``view 0 0 100 0 0 initstate K`` (K ≠ 0) → robot, ``view <other>
initstate 0`` → camera, ``language N ...`` → language.
"""

from __future__ import annotations

import re

from nblib.eval.results.schema import normalize_task

_DEFAULT_VIEW = ("0", "0", "100", "0", "0")
_PLUS_NOISE = re.compile(r"\bnoise \d+$")
_PLUS_LANGUAGE = re.compile(r"\blanguage \d+(?: view(?: \d+){5} initstate \d+)?$")
_PLUS_VIEW = re.compile(r"\bview (\d+) (\d+) (\d+) (\d+) (\d+) initstate (\d+)$")
_PLUS_BACKGROUND = re.compile(r"\b(?:table|tb) \d+$")
_PLUS_LIGHT = re.compile(r"\blight \d+$")
_PLUS_LAYOUT = re.compile(r"\b(?:add \d+|level\d+ sample\d+)$")


def perturbation_of(task: str) -> str | None:
    """The LIBERO-Plus dimension a task text's suffix names (``"light"`` for ``... light
    10``), ``"unknown"`` for a view/initstate combination it does not classify, ``None``
    when the text carries no LIBERO-Plus suffix."""
    text = normalize_task(task).lower()
    if _PLUS_NOISE.search(text):
        return "noise"
    if _PLUS_LANGUAGE.search(text):
        return "language"
    view = _PLUS_VIEW.search(text)
    if view:
        default_view = view.groups()[:5] == _DEFAULT_VIEW
        initial_state_moved = view.group(6) != "0"
        if default_view and initial_state_moved:
            return "robot"
        if not default_view and not initial_state_moved:
            return "camera"
        return "unknown"  # both moved, or neither: not one of LIBERO-Plus's categories
    if _PLUS_BACKGROUND.search(text):
        return "background"
    if _PLUS_LIGHT.search(text):
        return "light"
    if _PLUS_LAYOUT.search(text):
        return "layout"
    return None
