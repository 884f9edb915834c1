"""Tiny robomimic-style HDF5 datasets for tests, and helpers that break them on purpose.

Not a test module: tests import it as ``from tiny_data import write_tiny_dataset`` (pytest
puts ``tests/`` on ``sys.path`` because ``tests/`` has no ``__init__.py``).

``write_tiny_dataset`` writes the layout of ``nblib/data/metaworld_gen.py`` in a few
milliseconds::

    data/                       attrs: total, env_args, generator, instructions (JSON)
      demo_0/                   attrs: num_samples, task, instruction, seed, success
        obs/<camera>_image      (T, S, S, 3) uint8
        obs/eef_pos             (T, 3) float32 = sum of actions[:t, :3] * 0.01
        obs/gripper_opening     (T, 1) float32 = (1 - actions[:, 3]) / 2
        obs/state               (T, 39) float32: eef_pos, gripper_opening, then fixed noise
        actions                 (T, action_dim) float32, uniform in [-1, 1], seeded
        rewards, success        (T,) float32 / uint8
        camera/<name>/intrinsics  (3, 3) float32;  camera/<name>/extrinsics  (T, 4, 4) float32

Frames are not noise: each shows an anti-aliased square (colour per task) on a plain
background (colour per camera). The square's centre is ``eef_pos`` projected on two axes
(x, y for even-numbered cameras, x, z for odd ones) at ``8 * S`` pixels per metre, so
frame-to-frame motion follows the actions (up to 0.08 S pixels per step; clipped at the
border). As in the generator, observation ``t`` comes before action ``t``: ``eef_pos[t]``
sums actions ``0..t-1``, so the motion from frame t to t+1 is action t.

Pass ``mapping=`` (a name or a ``KeyMapping``) to write another layout instead: images,
proprio, actions and instruction/task text then go where that mapping reads them.

``corrupt(path, what, **kw)`` edits a file in place to make one kind of bad input.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

DEFAULT_INSTRUCTIONS = {"reach": "reach the goal", "push": "push the puck"}
TASK_COLOURS = {"reach": (220, 40, 40), "push": (40, 90, 220)}
BACKGROUNDS = [(200, 200, 190), (70, 90, 70), (150, 130, 110), (60, 60, 90)]
PIXELS_PER_METRE = 8  # times the image size
STATE_DIM = 39


def default_instruction(task: str) -> str:
    return DEFAULT_INSTRUCTIONS.get(task, task.replace("-", " "))


def task_colour(task: str) -> tuple[int, int, int]:
    if task in TASK_COLOURS:
        return TASK_COLOURS[task]
    h = zlib.crc32(task.encode())
    return (h & 0xFF, (h >> 8) & 0xFF, (h >> 16) & 0xFF)


def _coverage(centre: np.ndarray, half: float, size: int) -> np.ndarray:
    """(T, size) fraction of each pixel column covered by [centre - half, centre + half]."""
    edges = np.arange(size, dtype=np.float64)
    lo = np.maximum(edges[None, :], (centre - half)[:, None])
    hi = np.minimum(edges[None, :] + 1.0, (centre + half)[:, None])
    return np.clip(hi - lo, 0.0, 1.0)


def render_frames(
    eef_pos: np.ndarray, size: int, camera_index: int, colour, background
) -> np.ndarray:
    """(T, size, size, 3) uint8 frames of a square at ``eef_pos`` seen by one camera."""
    axes = (0, 1) if camera_index % 2 == 0 else (0, 2)
    half = max(1.0, size / 8)
    centre = size / 2 + eef_pos[:, axes].astype(np.float64) * PIXELS_PER_METRE * size
    centre = np.clip(centre, half, size - half)
    cols = _coverage(centre[:, 0], half, size)  # image column <- first axis
    rows = _coverage(size - centre[:, 1], half, size)  # up is up: row 0 is the top
    mask = rows[:, :, None] * cols[:, None, :]  # (T, size, size)
    bg = np.asarray(background, dtype=np.float64)
    fg = np.asarray(colour, dtype=np.float64)
    frames = bg + mask[..., None] * (fg - bg)
    return np.round(frames).astype(np.uint8)


def _demo_arrays(length: int, action_dim: int, rng: np.random.Generator) -> dict:
    actions = rng.uniform(-1.0, 1.0, size=(length, action_dim)).astype(np.float32)
    moves = np.zeros((length, 3), dtype=np.float32)
    moves[:, : min(3, action_dim)] = actions[:, :3]
    # Observation t is recorded before action t, as in the generator: an exclusive sum.
    eef_pos = np.cumsum(moves * np.float32(0.01), axis=0, dtype=np.float32)
    eef_pos = np.concatenate([np.zeros((1, 3), np.float32), eef_pos[:-1]])
    grip = actions[:, 3:4] if action_dim >= 4 else np.zeros((length, 1), np.float32)
    gripper_opening = ((1.0 - grip) / 2.0).astype(np.float32)
    state = rng.normal(0.0, 0.1, size=(length, STATE_DIM)).astype(np.float32)
    state[:, 0:3] = eef_pos
    state[:, 3:4] = gripper_opening
    rewards = np.linspace(0.0, 1.0, length, dtype=np.float32)
    return {
        "actions": actions,
        "eef_pos": eef_pos,
        "gripper_opening": gripper_opening,
        "state": state,
        "rewards": rewards,
    }


def _camera_params(size: int, eef_pos: np.ndarray, camera_index: int):
    """A pinhole camera that reproduces ``render_frames`` for even-numbered cameras: depth
    1 + index, focal length PIXELS_PER_METRE * size * depth, and a negative fy because the
    renderer draws up as up (image y grows downwards). Pixel centres sit 0.5 px off the
    renderer's coverage grid, which cancels in motion (differences of positions)."""
    depth = 1.0 + camera_index
    f = PIXELS_PER_METRE * size * depth
    intrinsics = np.array(
        [[f, 0.0, size / 2], [0.0, -f, size / 2], [0.0, 0.0, 1.0]], dtype=np.float32
    )
    extrinsics = np.tile(np.eye(4, dtype=np.float32), (len(eef_pos), 1, 1))
    extrinsics[:, 2, 3] = depth  # camera in front of the scene, looking along +z
    if camera_index % 2 == 1:  # a "wrist" camera moves with the hand
        extrinsics[:, :3, 3] -= eef_pos
    return intrinsics, extrinsics


def _set_text(holder, spec: Mapping, value: str) -> None:
    """Write ``value`` where a mapping's ``instruction``/``task`` spec reads it from."""
    attr = next(spec[k] for k in ("demo_attr", "group_attr", "file_attr") if k in spec)
    if "json_field" in spec:
        old = holder.attrs.get(attr)
        fields = json.loads(old) if old is not None else {}
        fields[spec["json_field"]] = value
        value = json.dumps(fields)
    holder.attrs[attr] = value


def write_tiny_dataset(
    path,
    lengths: Sequence[int] = (12, 9, 15),
    tasks: Sequence[str] = ("reach", "push", "reach"),
    image_size: int = 16,
    cameras: Sequence[str] = ("corner", "behindGripper"),
    action_dim: int = 4,
    seed: int = 0,
    instructions: Sequence[str] | Mapping[str, str] | None = None,
    successes: Sequence[bool] | None = None,
    mapping=None,
) -> Path:
    """Write a small dataset with one demo per entry of ``lengths``; returns its path.

    ``tasks`` gives each demo's task (same length as ``lengths``); ``instructions`` is a
    list (one per demo) or a dict task -> instruction, default ``default_instruction``.
    ``successes`` gives each demo's ``success`` attribute (default all True).
    ``mapping`` (name or KeyMapping) writes that layout instead of metaworld's; its
    ``images``, ``proprio`` widths and ``action_dim`` then replace ``cameras`` and
    ``action_dim``.
    """
    path = Path(path)
    if len(tasks) != len(lengths):
        raise ValueError(f"tasks has {len(tasks)} entries, lengths has {len(lengths)}")
    if instructions is None:
        texts = [default_instruction(t) for t in tasks]
    elif isinstance(instructions, Mapping):
        texts = [instructions.get(t, default_instruction(t)) for t in tasks]
    else:
        texts = list(instructions)
    successes = [True] * len(lengths) if successes is None else list(successes)

    if mapping is not None:
        from nblib.data.mapping import KeyMapping, load_mapping

        if not isinstance(mapping, KeyMapping):
            mapping = load_mapping(mapping)
        image_keys = dict(mapping.images)
        proprio = dict(mapping.proprio)
        action_key, action_dim = mapping.actions, mapping.action_dim
        group_name = mapping.demo_group
    else:
        image_keys = {name: f"obs/{name}_image" for name in cameras}
        proprio = {"obs/eef_pos": 3, "obs/gripper_opening": 1, "obs/state": STATE_DIM}
        action_key, group_name = "actions", "data"

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        data = f.require_group(group_name)
        for i, (length, task, text) in enumerate(zip(lengths, tasks, texts, strict=True)):
            arrays = _demo_arrays(int(length), action_dim, rng)
            demo = data.create_group(f"demo_{i}")
            for c, (name, key) in enumerate(image_keys.items()):
                frames = render_frames(
                    arrays["eef_pos"],
                    image_size,
                    c,
                    task_colour(task),
                    BACKGROUNDS[c % len(BACKGROUNDS)],
                )
                # One frame per gzip chunk, like the generator (none for an empty demo).
                packing = {"chunks": (1, *frames.shape[1:]), "compression": "gzip"}
                demo.create_dataset(key, data=frames, **(packing if length else {}))
                intrinsics, extrinsics = _camera_params(image_size, arrays["eef_pos"], c)
                demo.create_dataset(f"camera/{name}/intrinsics", data=intrinsics)
                demo.create_dataset(f"camera/{name}/extrinsics", data=extrinsics)
            low_dim = np.concatenate([arrays["eef_pos"], arrays["gripper_opening"]], axis=1)
            fill = 0
            for key, width in proprio.items():
                if key.endswith("eef_pos"):
                    values = arrays["eef_pos"]
                elif key.endswith("gripper_opening"):
                    values = arrays["gripper_opening"]
                elif key.endswith("/state"):
                    values = arrays["state"]
                else:  # another layout's key: a deterministic slice of the low-dim state
                    values = low_dim[:, (fill + np.arange(width)) % low_dim.shape[1]]
                    fill += width
                demo.create_dataset(key, data=values.astype(np.float32))
            demo.create_dataset(action_key, data=arrays["actions"])
            demo.create_dataset("rewards", data=arrays["rewards"])
            step_success = np.zeros(int(length), dtype=np.uint8)
            if successes[i]:
                step_success[-2:] = 1
            demo.create_dataset("success", data=step_success)
            demo.attrs.update(
                num_samples=int(length),
                seed=seed * 1000 + i,
                success=bool(successes[i]),
            )
            if mapping is None:
                demo.attrs.update(task=task, instruction=text)
            else:
                holders = {"demo_attr": demo, "group_attr": data, "file_attr": f}
                for what, value in (("task", task), ("instruction", text)):
                    spec = getattr(mapping, what)
                    kind = next((k for k in holders if k in spec), None)
                    if kind is not None:
                        _set_text(holders[kind], spec, value)

        by_task: dict[str, list[str]] = {}
        for task, text in zip(tasks, texts, strict=True):
            by_task.setdefault(task, [])
            if text not in by_task[task]:
                by_task[task].append(text)
        data.attrs["total"] = int(sum(lengths))
        data.attrs["instructions"] = json.dumps(by_task)
        data.attrs["generator"] = json.dumps(
            {
                "tiny": True,
                "lengths": [int(n) for n in lengths],
                "tasks": list(tasks),
                "size": image_size,
                "cameras": list(image_keys),
                "action_dim": action_dim,
                "seed": seed,
            }
        )
        if "env_args" not in data.attrs:
            data.attrs["env_args"] = json.dumps(
                {"env_name": "metaworld-v3", "type": "metaworld", "env_kwargs": {}}
            )
    return path


# --- making bad files from good ones (all edit ``path`` in place) -------------------------


def truncate_file(path, fraction: float = 0.5) -> Path:
    """Keep only the first ``fraction`` of the file's bytes (an interrupted copy)."""
    path = Path(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * fraction)])
    return path


def delete_key(path, key: str) -> Path:
    """Delete a dataset or group, e.g. ``data/demo_1/obs/eef_pos``."""
    with h5py.File(path, "r+") as f:
        del f[key]
    return Path(path)


def move_key(path, key: str, new_key: str) -> Path:
    """Rename a dataset or group, e.g. ``data`` -> ``demos``."""
    with h5py.File(path, "r+") as f:
        f.move(key, new_key)
    return Path(path)


def set_value(path, key: str, index, value=np.nan) -> Path:
    """Write ``value`` at ``index`` (e.g. ``(step, dim)``) of dataset ``key``."""
    with h5py.File(path, "r+") as f:
        arr = f[key][()]
        arr[index] = value
        f[key][...] = arr
    return Path(path)


def replace_dataset(path, key: str, array: np.ndarray) -> Path:
    """Replace dataset ``key`` with ``array`` (any shape and dtype)."""
    with h5py.File(path, "r+") as f:
        del f[key]
        f.create_dataset(key, data=array)
    return Path(path)


def resize_dataset(path, key: str, length: int | None = None, width: int | None = None) -> Path:
    """Cut or pad (repeating the last entry) dataset ``key`` to ``length`` rows / ``width`` columns."""
    with h5py.File(path, "r+") as f:
        arr = f[key][()]
    if length is not None:
        arr = (
            arr[:length]
            if length <= len(arr)
            else np.concatenate([arr, np.repeat(arr[-1:], length - len(arr), axis=0)])
        )
    if width is not None:
        if width <= arr.shape[1]:
            arr = arr[:, :width]
        else:
            arr = np.concatenate([arr, np.zeros((len(arr), width - arr.shape[1]), arr.dtype)], 1)
    return replace_dataset(path, key, arr)


def empty_demo(path, demo: str = "demo_1", group: str = "data") -> Path:
    """Cut every per-step dataset of one demo to 0 steps (an episode that recorded nothing)."""
    with h5py.File(path, "r+") as f:
        g = f[f"{group}/{demo}"]
        steps = int(g.attrs.get("num_samples", len(g["actions"])))
        keys: list[str] = []
        g.visititems(
            lambda name, obj: (
                keys.append(name)
                if isinstance(obj, h5py.Dataset) and obj.ndim and obj.shape[0] == steps
                else None
            )
        )
        for key in keys:
            shape, dtype = g[key].shape, g[key].dtype
            del g[key]
            g.create_dataset(key, shape=(0, *shape[1:]), dtype=dtype)
        g.attrs["num_samples"] = 0
    return Path(path)


def damage_object(path, key: str, nbytes: int = 64) -> Path:
    """Overwrite the first ``nbytes`` of the object header of ``key`` with 0xff; the file
    keeps its size, so it opens, and fails only when ``key`` is opened."""
    with h5py.File(path, "r") as f:
        addr = h5py.h5o.get_info(f[key].id).addr
    with open(path, "r+b") as raw:
        raw.seek(addr)
        raw.write(b"\xff" * nbytes)
    return Path(path)


def set_attr(path, key: str, attr: str, value=None) -> Path:
    """Set attribute ``attr`` of object ``key``; ``value=None`` deletes it."""
    with h5py.File(path, "r+") as f:
        if value is None:
            del f[key].attrs[attr]
        else:
            f[key].attrs[attr] = value
    return Path(path)


CORRUPTIONS = {
    "truncate": truncate_file,
    "delete": delete_key,
    "move": move_key,
    "set": set_value,
    "replace": replace_dataset,
    "resize": resize_dataset,
    "empty": empty_demo,
    "damage": damage_object,
    "attr": set_attr,
}


def corrupt(path, what: str, **kw) -> Path:
    """Break ``path`` in place: ``what`` is one of ``CORRUPTIONS`` (``truncate``,
    ``delete``, ``move``, ``set``, ``replace``, ``resize``, ``empty``, ``damage``,
    ``attr``), or
    ``not_hdf5`` to overwrite it with text; ``kw`` go to the matching helper."""
    if what == "not_hdf5":
        Path(path).write_text(kw.get("text", "demo,step,action\n0,0,0.1\n"))
        return Path(path)
    if what not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {what!r}; choose from {sorted(CORRUPTIONS)}")
    return CORRUPTIONS[what](path, **kw)
