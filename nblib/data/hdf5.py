"""HDF5 demo files (robomimic-style groups): opening them, natural demo order, and the
:class:`DemoStore` over one file.

Low-dimensional arrays (proprio, actions) are read into memory once; image frames are read
from the file on demand through dataset handles opened once per process, so a dataset much
larger than RAM works and nothing is decompressed twice per item. Handles are opened lazily
so the object can be sent to DataLoader worker processes before any file is open.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np

from nblib.data.mapping import KeyMapping, load_mapping
from nblib.data.metaworld_gen import METAWORLD_FPS
from nblib.data.store import StoreBase
from nblib.errors import DataError, ParameterError

# What replaying a demo needs from nblib's generator layout.
REPLAY_ATTRS = ("task", "seed")
REPLAY_STATE = "obs/state"


def natural_key(name: str) -> tuple:
    """Sort key putting demo_2 before demo_10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def open_h5(path: str | Path, rdcc_nbytes: int | None = None):
    """Open an HDF5 file read-only, turning h5py's OSError into a DataError naming it."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file does not exist")
    kwargs = {} if rdcc_nbytes is None else {"rdcc_nbytes": rdcc_nbytes}
    try:
        return h5py.File(path, "r", **kwargs)
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {err}") from err


def demo_names(file, group: str, path: str | Path = "") -> list[str]:
    """Demo group names under ``group`` in natural order; a DataError if it is missing."""
    if group not in file:
        raise DataError(
            f"{path or file.filename}: no group '{group}' (top-level keys: {sorted(file.keys())})"
        )
    return sorted(file[group].keys(), key=natural_key)


class DemoStore(StoreBase):
    """The demos of one HDF5 file under one key mapping: index, low-dim arrays, text, frames.

    Image datasets stay open (at most ``MAX_OPEN`` of them, least recently used closed
    first): re-resolving an HDF5 path costs ~50 us, and an open dataset keeps HDF5's
    1 MB chunk cache, so overlapping windows do not decompress the same frame twice.

    Capabilities (:mod:`nblib.data.store`), found while the arrays are read: success flags
    (demo attribute ``success``), instruction phrasings (the demo group's ``instructions``
    JSON attribute), camera calibration (``camera/<name>/intrinsics`` and ``extrinsics``
    in a demo), replay records (demo attributes ``task`` and ``seed`` and ``obs/state``),
    the control rate (an ``fps`` attribute of the demo group or the file, or Meta-World's
    for files nblib generated) and end-effector positions (from the mapping's proprio).
    """

    MAX_OPEN = 256

    def __init__(
        self,
        path: str | Path,
        mapping: str | KeyMapping = "metaworld",
        demos: list[str] | None = None,
        cameras: list[str] | None = None,
    ):
        self.path = Path(path)
        self.mapping = mapping if isinstance(mapping, KeyMapping) else load_mapping(mapping)
        if self.mapping.format != "hdf5":
            raise ParameterError(
                f"mapping '{self.mapping.name}' is for {self.mapping.format} folders, but "
                f"{self.path} is an HDF5 file: give an HDF5 mapping such as 'metaworld'"
            )
        self._set_cameras(cameras)
        self._file = None
        self._frames: OrderedDict[tuple[str, str], object] = OrderedDict()
        with open_h5(self.path) as f:
            group = f[self.mapping.demo_group] if self.mapping.demo_group in f else None
            available = demo_names(f, self.mapping.demo_group, self.path)
            if demos is None:
                demos = available
            missing = [d for d in demos if d not in available]
            if missing:
                raise DataError(f"{self.path}: demos {missing[:5]} not in '{group.name}'")
            self.demos = list(demos)
            self.proprio: dict[str, np.ndarray] = {}
            self.actions: dict[str, np.ndarray] = {}
            self.instruction: dict[str, str | None] = {}
            self.task: dict[str, str | None] = {}
            for name in self.demos:
                demo = group[name]
                self.actions[name] = self._read(demo, self.mapping.actions)
                parts = [
                    self._read(demo, key).reshape(len(demo[key]), -1)
                    for key in self.mapping.proprio
                ]
                self.proprio[name] = (
                    np.concatenate(parts, axis=1)
                    if parts
                    else np.zeros((len(self.actions[name]), 0), np.float32)
                )
                self.instruction[name] = self.mapping.text_source("instruction", demo, group, f)
                self.task[name] = self.mapping.text_source("task", demo, group, f)
            self._find_capabilities(f, group)
        self.lengths = {d: len(a) for d, a in self.actions.items()}

    def _find_capabilities(self, f, group) -> None:
        """Which optional parts the file records (attribute and key lookups only)."""
        found = self._mapping_capabilities()
        lacking = {
            "eef_positions": f"mapping '{self.mapping.name}' has no proprio key named "
            "*eef_pos or *ee_pos of width 3",
            "success_flags": "no demo has a 'success' attribute",
            "instruction_phrasings": f"group '{group.name}' has no 'instructions' attribute "
            "(nblib's generator writes one)",
            "camera_calibration": "no demo has a camera/<name>/ group for cameras "
            f"{self.cameras} (nblib's generator writes one)",
        }
        demos = [group[d] for d in self.demos]
        if any("success" in demo.attrs for demo in demos):
            found.add("success_flags")
        if "instructions" in group.attrs:
            found.add("instruction_phrasings")
        if any(f"camera/{c}" in demo for demo in demos for c in self.cameras):
            found.add("camera_calibration")
        unreplayable = next(
            (
                demo.name
                for demo in demos
                if not all(a in demo.attrs for a in REPLAY_ATTRS)
                or REPLAY_STATE not in demo
                or "actions" not in demo
            ),
            None,
        )
        if demos and unreplayable is None:
            found.add("replay_records")
        lacking["replay_records"] = (
            f"demo '{unreplayable}' lacks what a replay needs (attributes task and seed, "
            "obs/state, actions): only demos nblib generated can be replayed"
        )
        self._rate = next(
            (float(holder.attrs["fps"]) for holder in (group, f) if "fps" in holder.attrs), None
        )
        if self._rate is None and '"metaworld' in str(group.attrs.get("env_args", "")):
            self._rate = float(METAWORLD_FPS)
        if self._rate is not None:
            found.add("control_rate")
        lacking["control_rate"] = "it records no 'fps' attribute (and is no Meta-World file)"
        self.capabilities = frozenset(found)
        self.lacking = {k: v for k, v in lacking.items() if k not in found}

    def _read(self, demo, key: str) -> np.ndarray:
        if key not in demo:
            parent = (
                demo[key.rsplit("/", 1)[0]]
                if "/" in key and key.rsplit("/", 1)[0] in demo
                else demo
            )
            raise DataError(
                f"{self.path}: demo '{demo.name}' has no key '{key}' "
                f"(keys in '{parent.name}': {sorted(parent.keys())})"
            )
        return np.asarray(demo[key][()], dtype=np.float32)

    def frames(self, demo: str, camera: str, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) of one camera as (n, H, W, 3) uint8."""
        key = (demo, camera)
        handle = self._frames.get(key)
        if handle is None:
            path = f"{self.mapping.demo_group}/{demo}/{self.mapping.images[camera]}"
            file = self._open()
            if path not in file:
                raise DataError(f"{self.path}: no image key '{path}' for camera '{camera}'")
            handle = file[path]
            self._frames[key] = handle
            if len(self._frames) > self.MAX_OPEN:
                self._frames.popitem(last=False)
        else:
            self._frames.move_to_end(key)
        return handle[start:stop]

    def _open(self):
        if self._file is None:
            self._file = open_h5(self.path)
        return self._file

    def _group(self):
        return self._open()[self.mapping.demo_group]

    def _success_flags(self) -> dict[str, bool]:
        group = self._group()
        return {
            d: bool(np.asarray(group[d].attrs["success"]).all())
            for d in self.demos
            if "success" in group[d].attrs
        }

    def _instruction_phrasings(self) -> dict[str, list[str]]:
        group = self._group()
        raw = group.attrs["instructions"]
        try:
            table = json.loads(raw)
        except (TypeError, ValueError) as err:
            table, problem = None, f"not JSON ({err})"
        else:
            problem = "not a mapping of task -> list of phrasings"
        if not isinstance(table, dict) or not all(isinstance(v, list) for v in table.values()):
            raise DataError(
                f"{self.path}: attribute 'instructions' of '{group.name}' is {problem}: "
                f"{str(raw)[:80]!r}"
            )
        return {str(k): [str(p) for p in v] for k, v in table.items()}

    def _camera_calibration(self) -> dict:
        group, out = self._group(), {}
        for demo in self.demos:
            cams = group[demo].get("camera")
            if cams is None:
                continue
            for camera in self.cameras:
                if camera in cams:
                    out[camera, demo] = (
                        cams[camera]["intrinsics"][()],
                        cams[camera]["extrinsics"][()],
                    )
        return out

    def _replay_records(self, demos: list[str]) -> dict[str, dict]:
        group = self._group()
        return {
            demo: {
                "task": str(group[demo].attrs["task"]),
                "seed": int(group[demo].attrs["seed"]),
                "state": np.asarray(group[demo][REPLAY_STATE][()], dtype=np.float32),
                "actions": np.asarray(group[demo]["actions"][()], dtype=np.float32),
            }
            for demo in demos
        }

    def _control_rate(self) -> float:
        return self._rate

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._frames = None, OrderedDict()

    def __getstate__(self) -> dict:
        # h5py handles cannot cross process boundaries; workers reopen the file lazily.
        state = self.__dict__.copy()
        state["_file"], state["_frames"] = None, OrderedDict()
        return state
