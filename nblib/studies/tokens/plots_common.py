"""Helpers the token-compass figures share (:mod:`~nblib.studies.tokens.compass_plots`,
:mod:`~nblib.studies.tokens.motion_plots`, :mod:`~nblib.studies.tokens.codebook_plots`):
dataset colours and names, and the pair count below which a token's direction is a guess."""

from __future__ import annotations

from nblib.plots import colors_for


def _dataset_colours(datasets) -> dict:
    """The datasets of notebook 04 are cameras (or tasks): camera colours when they are."""
    return colors_for(sorted(datasets), kind="camera")


def _short(name: str) -> str:
    return {"behindGripper": "wrist"}.get(str(name), str(name))


def _label(name: str) -> str:
    short = _short(name)
    return name if short == name else f"{name} ({short})"


# Tokens with fewer moving pairs than this are drawn pale: their direction is a guess.
FEW_PAIRS = 20
