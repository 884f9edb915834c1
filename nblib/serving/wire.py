"""nblib's closed-loop observations in vla-eval's convention, and back.

On the wire an observation is ``images`` (camera name → (H, W, 3) uint8), ``task_description``
(the instruction actually given, so perturbed instructions reach the server), ``state`` (the
dataset's proprioceptive vector: Meta-World's end-effector position and gripper opening, 4
values; LIBERO's end-effector position, axis-angle and two finger joints, 8 values) and
``sim_state`` (the simulator's full state vector, so a scripted expert can be served).
vla-eval's own LIBERO benchmark sends its proprio as ``states``; it is read the same way.
An action comes back as ``{"actions": (action_dim,) or (chunk, action_dim)}``.
"""

from __future__ import annotations

import numpy as np

from nblib.errors import ParameterError

#: Width of the proprio vector per simulator, as nblib's demos and simulators lay it out.
STATE_WIDTH = {"metaworld": 4, "libero": 8}


def to_wire(observation: dict, instruction: str, sim: str) -> dict:
    """The observation nblib's simulator ``sim`` gave, as a vla-eval observation."""
    if sim == "metaworld":
        state = np.concatenate([observation["eef_pos"], observation["gripper_opening"]])
        full = observation["state"]
    else:
        state, full = observation["state"], observation.get("sim_state")
    out = {
        "images": {
            name: np.ascontiguousarray(im) for name, im in observation.get("images", {}).items()
        },
        "task_description": str(instruction),
        "state": np.asarray(state, dtype=np.float32),
    }
    if full is not None:
        out["sim_state"] = np.asarray(full, dtype=np.float64)
    return out


def from_wire(obs: dict, where: str) -> tuple[dict, str]:
    """``(observation, instruction)`` for an nblib policy from a vla-eval observation;
    a ParameterError naming ``where`` and the key when the observation does not follow
    the convention."""
    if not isinstance(obs, dict):
        raise ParameterError(f"{where}: an observation must be a dict, got {type(obs).__name__}")
    images = obs.get("images") or {}
    if not isinstance(images, dict):
        raise ParameterError(f"{where}: 'images' must map camera names to (H, W, 3) uint8 arrays")
    for name, image in images.items():
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ParameterError(
                f"{where}: images[{name!r}] has shape {image.shape} and dtype {image.dtype}; "
                "expected (H, W, 3) uint8"
            )
    key = "state" if "state" in obs else "states"
    if key not in obs:
        raise ParameterError(f"{where}: the observation has no 'state' (the proprio vector)")
    state = np.asarray(obs[key], dtype=np.float32).reshape(-1)
    observation: dict = {"images": {k: np.asarray(v) for k, v in images.items()}}
    full = obs.get("sim_state")
    if state.size == STATE_WIDTH["metaworld"]:
        observation["eef_pos"], observation["gripper_opening"] = state[:3], state[3:4]
        # Meta-World's policies (its scripted expert) read the full state as ``state``
        observation["state"] = state if full is None else np.asarray(full, dtype=np.float64)
    elif state.size == STATE_WIDTH["libero"]:
        observation["state"] = state
        observation["eef_pos"] = state[:3]
        observation["gripper_opening"] = state[6:7] - state[7:8]
        if full is not None:
            observation["sim_state"] = np.asarray(full, dtype=np.float64)
    else:
        raise ParameterError(
            f"{where}: {key!r} has {state.size} values; expected Meta-World's 4 (end-effector "
            "position, gripper opening) or LIBERO's 8 (position, axis-angle, two finger joints)"
        )
    return observation, str(obs.get("task_description", ""))


def actions_from(payload: object, action_dim: int, where: str) -> np.ndarray:
    """The (chunk, action_dim) float32 actions of an action message; a ParameterError
    naming ``where`` for a missing key, a wrong shape or a NaN/Inf."""
    if not isinstance(payload, dict) or "actions" not in payload:
        keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise ParameterError(f"{where}: the reply has no 'actions' (got {keys})")
    actions = np.asarray(payload["actions"], dtype=np.float32)
    if actions.ndim == 1:
        actions = actions[None]
    if actions.ndim != 2 or actions.shape[1] != action_dim or len(actions) == 0:
        raise ParameterError(
            f"{where}: the server returned actions of shape {np.shape(payload['actions'])}; "
            f"expected ({action_dim},) or (chunk, {action_dim})"
        )
    if not np.isfinite(actions).all():
        raise ParameterError(f"{where}: the server returned non-finite actions (NaN or Inf)")
    return actions
