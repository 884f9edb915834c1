"""A policy's action as a simulator takes it: one check shared by the simulators
(:mod:`nblib.eval.metaworld`, :mod:`nblib.eval.libero`), which import nothing else of the
closed loop."""

from __future__ import annotations

import numpy as np

from nblib.errors import ParameterError


def sim_action(action, dim: int, sim: str, where: str, names: str) -> np.ndarray:
    """A policy's action as simulator ``sim`` takes it: float64, flat, clipped to [-1, 1];
    a ParameterError naming ``where`` when it has not ``dim`` values (``names``)."""
    action = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
    if action.shape != (dim,):
        raise ParameterError(
            f"{where}: the policy returned an action of shape {action.shape}; {sim} takes "
            f"{dim} values ({names})"
        )
    return action
