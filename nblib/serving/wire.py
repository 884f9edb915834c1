"""nblib's closed-loop observations in vla-eval's convention, and back.

On the wire an observation is ``images`` (camera name → (H, W, 3) uint8), ``task_description``
(the instruction actually given, so perturbed instructions reach the server), ``state`` (the
dataset's proprioceptive vector: Meta-World's end-effector position and gripper opening, 4
values; LIBERO's end-effector position, axis-angle and two finger joints, 8 values) and
``sim_state`` (the simulator's full state vector, so a scripted expert can be served).
vla-eval's own LIBERO benchmark sends its proprio as ``states``; it is read the same way.
An action comes back as ``{"actions": (action_dim,) or (chunk, action_dim)}``.

LIBERO's images on the wire follow the convention of vla-eval's LIBERO benchmark and of
openpi's LIBERO example, which the published LIBERO policies were trained for: the scene
camera is ``agentview``, the wrist camera ``wrist``, and both are robosuite's raw frame
rotated 180° (``raw[::-1, ::-1]``). nblib's own LIBERO frames flip the rows only
(``raw[::-1]``), so the two differ by a left-right flip, which :func:`images_to_wire` and
:func:`images_from_wire` apply. Meta-World has no such convention (vla-eval ships no
Meta-World benchmark): its frames and camera names go as nblib renders them.
"""

from __future__ import annotations

import numpy as np

from nblib.errors import ParameterError

#: Width of the proprio vector per simulator, as nblib's demos and simulators lay it out.
STATE_WIDTH = {"metaworld": 4, "libero": 8}

#: nblib's LIBERO camera names → the names vla-eval's and openpi's LIBERO clients use.
LIBERO_WIRE_NAMES = {"agentview": "agentview", "robot0_eye_in_hand": "wrist"}
#: The frame size vla-eval's LIBERO benchmark renders and sends
#: (``vla_eval.benchmarks.libero.benchmark.LIBERO_ENV_RESOLUTION``).
VLA_EVAL_LIBERO_SIZE = 256


def images_to_wire(images: dict, sim: str) -> dict:
    """nblib's frames of simulator ``sim`` in the wire convention (see the module doc)."""
    if sim != "libero":
        return {name: np.ascontiguousarray(im) for name, im in images.items()}
    out = {}
    for name, image in images.items():
        if name not in LIBERO_WIRE_NAMES:
            raise ParameterError(
                f"camera {name!r} is not one of LIBERO's {list(LIBERO_WIRE_NAMES)}"
            )
        out[LIBERO_WIRE_NAMES[name]] = np.ascontiguousarray(np.asarray(image)[:, ::-1])
    return out


def images_from_wire(images: dict, sim: str, size: int | None, where: str) -> dict:
    """Wire-convention frames as nblib's simulator ``sim`` renders them, resized to
    ``size`` (the policy's frame size; None keeps the size sent). An image must be
    (H, W, 3) uint8: a ParameterError naming ``where`` and the camera otherwise."""
    back = {wire: name for name, wire in LIBERO_WIRE_NAMES.items()}
    out = {}
    for name, image in images.items():
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ParameterError(
                f"{where}: images[{name!r}] has shape {image.shape} and dtype {image.dtype}; "
                "expected (H, W, 3) uint8"
            )
        if sim == "libero":
            if name not in back:
                raise ParameterError(
                    f"{where}: images[{name!r}] is not a LIBERO camera; expected "
                    f"{sorted(back)} (vla-eval's and openpi's LIBERO names)"
                )
            name, image = back[name], image[:, ::-1]
        out[name] = np.ascontiguousarray(resize_frame(image, size))
    return out


def resize_frame(image: np.ndarray, size: int | None) -> np.ndarray:
    """``image`` resized to ``size`` × ``size`` (bilinear, as openpi's client resizes; a
    square frame needs no padding), or as it is when it has that size or ``size`` is None."""
    if size is None or image.shape[:2] == (size, size):
        return image
    if image.shape[0] != image.shape[1]:
        raise ParameterError(
            f"a {image.shape[1]}x{image.shape[0]} frame cannot become {size}x{size} without "
            "distortion; send square frames"
        )
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def served_image_size(policy) -> int | None:
    """The frame size ``policy`` reads: frames sent at another size (vla-eval's LIBERO
    client sends 256², openpi's 224²) are resized to it. None for a policy without cameras."""
    if not getattr(policy, "cameras", ()):
        return None
    return int(getattr(policy, "image_size", 128) or 128)


def wants_wrist(cameras, sim: str) -> bool:
    """Whether a benchmark client must send the wrist camera: LIBERO's wrist camera is
    ``robot0_eye_in_hand``; elsewhere (no vla-eval benchmark) any second camera."""
    if sim == "libero":
        return "robot0_eye_in_hand" in cameras
    return len(cameras) > 1


def to_wire(observation: dict, instruction: str, sim: str) -> dict:
    """The observation nblib's simulator ``sim`` gave, as a vla-eval observation."""
    if sim == "metaworld":
        state = np.concatenate([observation["eef_pos"], observation["gripper_opening"]])
        full = observation["state"]
    else:
        state, full = observation["state"], observation.get("sim_state")
    out = {
        "images": images_to_wire(observation.get("images", {}), sim),
        "task_description": str(instruction),
        "state": np.asarray(state, dtype=np.float32),
    }
    if full is not None:
        out["sim_state"] = np.asarray(full, dtype=np.float64)
    return out


def from_wire(
    obs: dict, where: str, sim: str | None = None, image_size: int | None = None
) -> tuple[dict, str]:
    """``(observation, instruction)`` for an nblib policy of simulator ``sim`` (None: the
    state's width tells) from a vla-eval observation, frames resized to ``image_size``;
    a ParameterError naming ``where`` and the key when the observation does not follow
    the convention."""
    if not isinstance(obs, dict):
        raise ParameterError(f"{where}: an observation must be a dict, got {type(obs).__name__}")
    images = obs.get("images") or {}
    if not isinstance(images, dict):
        raise ParameterError(f"{where}: 'images' must map camera names to (H, W, 3) uint8 arrays")
    key = "state" if "state" in obs else "states"
    if key not in obs:
        raise ParameterError(f"{where}: the observation has no 'state' (the proprio vector)")
    state = np.asarray(obs[key], dtype=np.float32).reshape(-1)
    if sim is not None and state.size != STATE_WIDTH[sim]:
        raise ParameterError(
            f"{where}: {key!r} has {state.size} values; a {sim} policy reads "
            f"{STATE_WIDTH[sim]} (is the client evaluating another simulator?)"
        )
    inferred = sim or next((s for s, n in STATE_WIDTH.items() if n == state.size), None)
    observation: dict = {"images": images_from_wire(images, inferred, image_size, where)}
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
