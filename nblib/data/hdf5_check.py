"""Check an HDF5 demo file against a key mapping before anything trains on it.

:func:`check_hdf5` walks every demo (in natural order: ``demo_2`` before ``demo_10``)
and raises :class:`~nblib.errors.DataError` at the first problem, naming the file, the
HDF5 key, the demo and the step, and saying what was expected. Low-dimensional arrays
(actions, proprio) are read whole and checked with numpy; images are checked by shape and
dtype only, so no frame is decompressed. A valid file gives a
:class:`~nblib.data.summary.DatasetSummary`. :func:`nblib.data.formats.check_dataset`
calls it for files and :func:`nblib.data.lerobot_check.check_lerobot` for folders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nblib.data.hdf5 import natural_key, open_h5
from nblib.data.mapping import KeyMapping, load_mapping
from nblib.data.summary import DatasetSummary, summarize
from nblib.errors import DataError, ManifestError, ParameterError

UNREADABLE = "not a readable HDF5 file (truncated or corrupt?)"


def _fail(path: Path, message: str) -> DataError:
    return DataError(f"{path}: {message}")


def _lookup(path: Path, demo, key: str, where: str):
    """The h5py object at ``key`` inside ``demo``; a missing part lists what exists there."""
    node = demo
    for depth, part in enumerate(key.split("/")):
        if not hasattr(node, "keys") or part not in node:
            level = "/".join(key.split("/")[:depth]) or "the demo group"
            present = sorted(node.keys()) if hasattr(node, "keys") else []
            raise _fail(
                path,
                f"{where} has no key '{key}' (missing '{part}'; keys in {level}: {present})",
            )
        node = node[part]
    if not hasattr(node, "shape"):
        raise _fail(path, f"{where} key '{key}' is a group, expected a dataset")
    return node


def _check_finite(path: Path, values: np.ndarray, key: str, demo_name: str) -> None:
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(
        values.dtype, np.complexfloating
    ):
        raise _fail(
            path, f"demo '{demo_name}' key '{key}' has dtype {values.dtype}, expected real numbers"
        )
    if not np.issubdtype(values.dtype, np.floating):
        return  # integers are always finite
    bad = ~np.isfinite(values)
    if bad.any():
        step, dim = (int(i) for i in np.argwhere(bad.reshape(len(values), -1))[0])
        value = values.reshape(len(values), -1)[step, dim]
        raise _fail(
            path,
            f"demo '{demo_name}' key '{key}' holds {value} at step {step}, dimension {dim} "
            f"({int(bad.sum())} non-finite values in this demo); expected finite numbers",
        )


def _read_text(path: Path, mapping: KeyMapping, what: str, demo, group, file, demo_name):
    try:
        return mapping.text_source(what, demo, group, file)
    except ManifestError as err:
        raise DataError(f"{err} (while reading the {what} of demo '{demo_name}')") from err


def _check_demo(
    path: Path, demo, name: str, mapping: KeyMapping, horizon: int | None
) -> tuple[np.ndarray, dict[str, tuple[int, int, int]]]:
    """Check one demo group; returns its actions (T, action_dim) and camera frame shapes."""
    where = f"demo '{name}'"
    # Look up every key first, so a missing key is reported before any shape problem.
    act_ds = _lookup(path, demo, mapping.actions, where)
    proprio_ds = {key: _lookup(path, demo, key, where) for key in mapping.proprio}
    image_ds = {
        mapping.images[cam]: _lookup(path, demo, key, where) for cam, key in mapping.images.items()
    }

    if act_ds.ndim != 2 or act_ds.shape[1] != mapping.action_dim:
        got = act_ds.shape[-1] if act_ds.ndim else "a scalar"
        raise _fail(
            path,
            f"{where} key '{mapping.actions}' has shape {act_ds.shape}, expected "
            f"(T, {mapping.action_dim}): mapping '{mapping.name}' declares action_dim "
            f"{mapping.action_dim}, got {got}",
        )
    steps = act_ds.shape[0]
    if steps == 0:
        raise _fail(path, f"{where} is empty: key '{mapping.actions}' has 0 steps")
    for key, ds in proprio_ds.items():
        width = mapping.proprio[key]
        if not ((ds.ndim == 2 and ds.shape[1] == width) or (ds.ndim == 1 and width == 1)):
            raise _fail(
                path,
                f"{where} key '{key}' has shape {ds.shape}, expected (T, {width}): "
                f"mapping '{mapping.name}' declares proprio width {width} for it",
            )
    for key, ds in image_ds.items():
        if ds.ndim != 4 or ds.shape[-1] != 3 or ds.dtype != np.uint8:
            raise _fail(
                path,
                f"{where} key '{key}' is {ds.shape} {ds.dtype}, "
                "expected (T, H, W, 3) uint8 RGB frames",
            )
    for key, ds in [*proprio_ds.items(), *image_ds.items()]:
        if ds.shape[0] != steps:
            raise _fail(
                path,
                f"{where} key '{key}' has {ds.shape[0]} steps but key "
                f"'{mapping.actions}' has {steps}; expected the same length",
            )
    if "num_samples" in demo.attrs and int(demo.attrs["num_samples"]) != steps:
        raise _fail(
            path,
            f"{where} attribute 'num_samples' is {int(demo.attrs['num_samples'])} but "
            f"key '{mapping.actions}' has {steps} steps",
        )
    if horizon is not None and horizon > steps:
        raise _fail(
            path,
            f"{where} has {steps} steps, shorter than the action chunk horizon {horizon}; "
            f"drop demos shorter than {horizon} steps or lower the horizon",
        )

    actions = act_ds[()]
    _check_finite(path, actions, mapping.actions, name)
    for key, ds in proprio_ds.items():
        _check_finite(path, ds[()], key, name)
    frames = {
        cam: tuple(int(n) for n in image_ds[key].shape[1:]) for cam, key in mapping.images.items()
    }
    return actions, frames


def check_hdf5(
    path: str | Path, mapping: str | Path | KeyMapping = "metaworld", horizon: int | None = None
) -> DatasetSummary:
    """Validate the HDF5 file ``path`` against ``mapping``; raise DataError at the first
    problem.

    Checks, per demo: every key the mapping names exists; actions are (T, action_dim);
    each proprio key is (T, width) with the mapping's width; images are (T, H, W, 3)
    uint8 with the same H, W in every demo; T > 0 and all keys agree on T; actions and
    proprio are finite; ``horizon`` (the action-chunk length, if given) fits in T; the
    instruction and task text can be read.
    """
    path = Path(path)
    if not isinstance(mapping, KeyMapping):
        mapping = load_mapping(mapping)
    if mapping.format != "hdf5":
        raise ParameterError(
            f"mapping '{mapping.name}' is for {mapping.format} folders, but {path} is a file"
        )
    with open_h5(path) as f:  # DataError for a missing, truncated or non-HDF5 file
        return _check_open_file(path, f, mapping, horizon)


def _check_open_file(path: Path, f, mapping: KeyMapping, horizon: int | None) -> DatasetSummary:
    try:
        group = f[mapping.demo_group] if mapping.demo_group in f else None
    except (OSError, KeyError) as err:  # the name is listed but its header is damaged
        raise _fail(path, f"{UNREADABLE}: opening '{mapping.demo_group}' failed: {err}") from err
    if group is None or not hasattr(group, "keys"):
        raise _fail(
            path,
            f"no demo group '{mapping.demo_group}' (mapping '{mapping.name}'); "
            f"top-level keys: {sorted(f.keys())}",
        )
    names = sorted((k for k in group.keys() if k.startswith("demo")), key=natural_key)
    if not names:
        raise _fail(
            path,
            f"group '{mapping.demo_group}' holds no demo groups (demo_0, demo_1, ...); "
            f"keys there: {sorted(group.keys())[:20]}",
        )

    lengths: list[int] = []
    actions_all: list[np.ndarray] = []
    tasks: dict[str, int] = {}
    instructions: dict[str, int] = {}
    cameras: dict[str, tuple[int, int, int]] = {}  # camera -> frame shape of the first demo
    first_seen: dict[str, str] = {}  # camera -> that demo's name
    successes: list[bool] = []
    for name in names:
        try:
            demo = group[name]
            if not hasattr(demo, "keys"):
                raise _fail(
                    path, f"'{mapping.demo_group}/{name}' is a dataset, expected a demo group"
                )
            actions, frames = _check_demo(path, demo, name, mapping, horizon)
            for cam, shape in frames.items():
                if cam in cameras and cameras[cam] != shape:
                    raise _fail(
                        path,
                        f"demo '{name}' key '{mapping.images[cam]}' has {shape[0]}x{shape[1]} "
                        f"frames, but demo '{first_seen[cam]}' has "
                        f"{cameras[cam][0]}x{cameras[cam][1]}; expected one frame size per camera",
                    )
                cameras.setdefault(cam, shape)
                first_seen.setdefault(cam, name)
            for what, counts in (("task", tasks), ("instruction", instructions)):
                text = _read_text(path, mapping, what, demo, group, f, name)
                if text is not None:
                    counts[text] = counts.get(text, 0) + 1
            if "success" in demo.attrs:
                successes.append(bool(np.asarray(demo.attrs["success"]).all()))
        except (OSError, KeyError) as err:
            # Damaged bytes past the file header: h5py raises OSError for unreadable data
            # and KeyError for an object header it cannot open (keys were checked with `in`).
            raise _fail(path, f"{UNREADABLE}: reading demo '{name}' failed: {err}") from err
        lengths.append(len(actions))
        actions_all.append(actions)

    return summarize(
        path, mapping, names, lengths, actions_all, tasks, instructions, cameras, successes
    )
