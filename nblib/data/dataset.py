"""Demo datasets: action chunks for policy training and frame pairs for latent actions.

Low-dimensional arrays (proprio, actions) are read into memory once; image frames are read
from the file on demand through dataset handles opened once per process, so a dataset much
larger than RAM works and nothing is decompressed twice per item. Handles are opened lazily
so the object can be sent to DataLoader worker processes before any file is open.
"""

from __future__ import annotations

import json
import warnings
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from nblib.data.hdf5 import demo_names, open_h5
from nblib.data.mapping import KeyMapping, load_mapping
from nblib.data.normalization import NormStats, Stats
from nblib.errors import DataError, ParameterError
from nblib.paths import write_json_atomic


class StoreBase:
    """What every store has once its arrays are read: ``path``, ``mapping``, ``cameras``,
    ``demos``, ``lengths`` and per demo ``actions``, ``proprio``, ``instruction``, ``task``.
    Subclasses read one storage format and give ``frames(demo, camera, start, stop)``."""

    path: Path
    mapping: KeyMapping
    demos: list[str]

    def _set_cameras(self, cameras: list[str] | None) -> None:
        self.cameras = list(cameras) if cameras is not None else self.mapping.cameras
        unknown = [c for c in self.cameras if c not in self.mapping.images]
        if unknown:
            raise ParameterError(
                f"cameras: {unknown} not in mapping '{self.mapping.name}' "
                f"(cameras: {self.mapping.cameras})"
            )

    def task_label(self, demo: str) -> str:
        """The demo's task, or "(no task)" when the layout has none."""
        return self.task[demo] or "(no task)"

    def tasks(self) -> list[str]:
        return sorted({self.task_label(d) for d in self.demos})

    def frames(self, demo: str, camera: str, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Close open files (they reopen on the next read)."""

    def stamp(self) -> str:
        """Size and modification time of the data: a cache keyed by it is never stale."""
        stat = self.path.stat()
        return f"{stat.st_size}:{stat.st_mtime_ns}"

    def subset(self, demos: list[str]):
        """The same data, mapping and cameras restricted to ``demos`` (e.g. a split's
        training demos); the arrays are shared, nothing is read again."""
        missing = [d for d in demos if d not in self.lengths]
        if missing:
            raise DataError(f"{self.path}: demos {missing[:5]} are not in this store")
        out = object.__new__(type(self))
        out.__dict__.update(self.__getstate__())  # no open file handle is shared
        out.demos = list(demos)
        for name in ("proprio", "actions", "instruction", "task", "lengths"):
            setattr(out, name, {d: getattr(self, name)[d] for d in demos})
        return out

    def norm_stats(self) -> NormStats:
        return NormStats(
            actions=Stats.of(np.concatenate([self.actions[d] for d in self.demos])),
            proprio=Stats.of(np.concatenate([self.proprio[d] for d in self.demos])),
            demos=list(self.demos),
        )


def open_store(
    path: str | Path,
    mapping: str | KeyMapping | None = None,
    demos: list[str] | None = None,
    cameras: list[str] | None = None,
) -> StoreBase:
    """The store for ``path``: a LeRobot v3.0 folder (mapping default ``lerobot``) or an
    HDF5 file (mapping default ``metaworld``)."""
    from nblib.data.lerobot import LeRobotStore, is_lerobot_folder

    if is_lerobot_folder(path):
        return LeRobotStore(path, mapping=mapping or "lerobot", demos=demos, cameras=cameras)
    return DemoStore(path, mapping=mapping or "metaworld", demos=demos, cameras=cameras)


class DemoStore(StoreBase):
    """The demos of one HDF5 file under one key mapping: index, low-dim arrays, text, frames.

    Image datasets stay open (at most ``MAX_OPEN`` of them, least recently used closed
    first): re-resolving an HDF5 path costs ~50 us, and an open dataset keeps HDF5's
    1 MB chunk cache, so overlapping windows do not decompress the same frame twice.
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
        self.lengths = {d: len(a) for d, a in self.actions.items()}

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
            if self._file is None:
                self._file = open_h5(self.path)
            path = f"{self.mapping.demo_group}/{demo}/{self.mapping.images[camera]}"
            if path not in self._file:
                raise DataError(f"{self.path}: no image key '{path}' for camera '{camera}'")
            handle = self._file[path]
            self._frames[key] = handle
            if len(self._frames) > self.MAX_OPEN:
                self._frames.popitem(last=False)
        else:
            self._frames.move_to_end(key)
        return handle[start:stop]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._frames = None, OrderedDict()

    def __getstate__(self) -> dict:
        # h5py handles cannot cross process boundaries; workers reopen the file lazily.
        state = self.__dict__.copy()
        state["_file"], state["_frames"] = None, OrderedDict()
        return state


def _window(start: int, length: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of [start, start+length) clamped to the episode, and a validity mask."""
    idx = np.arange(start, start + length)
    return np.minimum(idx, total - 1), idx < total


class ChunkDataset:
    """Samples ``{images, proprio, instruction, actions[H, A], action_mask, demo, t}``.

    One sample per (demo, t) for every step t. ``actions`` holds steps t..t+H-1; past the
    end of the episode the last action is repeated and ``action_mask`` is False there, so a
    loss can ignore padding. ``images`` maps camera -> (obs_horizon, H, W, 3) uint8 frames
    t..t+obs_horizon-1 (padded the same way); ``obs_horizon=1`` is the usual VLA input.

    Args:
        store: a :class:`DemoStore` (or a path, with ``mapping``/``demos``/``cameras``).
        horizon: action chunk length H.
        normalization: None, or a mode of :mod:`nblib.data.normalization` applied to actions
            and proprio with ``stats`` (computed on this dataset's demos when not given).
    """

    def __init__(
        self,
        store: StoreBase | str | Path,
        horizon: int = 16,
        obs_horizon: int = 1,
        normalization: str | None = None,
        stats: NormStats | None = None,
        mapping: str | KeyMapping | None = None,
        demos: list[str] | None = None,
        cameras: list[str] | None = None,
        check_horizon: bool = True,
    ):
        if not isinstance(store, StoreBase):
            store = open_store(store, mapping=mapping, demos=demos, cameras=cameras)
        if horizon < 1 or obs_horizon < 1:
            raise ParameterError(f"horizon/obs_horizon must be >= 1, got {horizon}/{obs_horizon}")
        self.store, self.horizon, self.obs_horizon = store, horizon, obs_horizon
        if check_horizon:
            short = {d: n for d, n in store.lengths.items() if n < horizon}
            if short:
                name, n = next(iter(short.items()))
                raise DataError(
                    f"{store.path}: chunk horizon {horizon} is longer than demo '{name}' "
                    f"({n} steps; {len(short)} demos are shorter). Lower `horizon` or drop those demos."
                )
        self.normalization = normalization
        self.stats = stats if stats is not None or normalization is None else store.norm_stats()
        self._demo_of = np.repeat(
            np.arange(len(store.demos)), [store.lengths[d] for d in store.demos]
        )
        self._t_of = np.concatenate([np.arange(store.lengths[d]) for d in store.demos])

    def __len__(self) -> int:
        return len(self._t_of)

    def index_of(self, demo: str, t: int) -> int:
        k = self.store.demos.index(demo)
        return int(np.flatnonzero(self._demo_of == k)[t])

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        demo = self.store.demos[self._demo_of[index]]
        t = int(self._t_of[index])
        total = self.store.lengths[demo]
        act_idx, mask = _window(t, self.horizon, total)
        actions = self.store.actions[demo][act_idx]
        obs_idx, _ = _window(t, self.obs_horizon, total)
        proprio = self.store.proprio[demo][obs_idx if self.obs_horizon > 1 else t]
        if self.normalization:
            actions = self.stats.actions.normalize(actions, self.normalization)
            proprio = self.stats.proprio.normalize(proprio, self.normalization)
        stop = min(t + self.obs_horizon, total)
        images = {}
        for cam in self.store.cameras:
            frames = self.store.frames(demo, cam, t, stop)
            if len(frames) < self.obs_horizon:  # repeat the last frame, as for actions
                frames = frames[np.minimum(np.arange(self.obs_horizon), len(frames) - 1)]
            images[cam] = frames
        return {
            "images": images,
            "proprio": proprio.astype(np.float32),
            "instruction": self.store.instruction[demo],
            "actions": actions.astype(np.float32),
            "action_mask": mask,
            "demo": demo,
            "t": t,
        }


class FramePairDataset:
    """Frame pairs ``(t, t+k)`` of one camera for latent-action and optical-flow work.

    Items: ``{"frames": (2, H, W, 3) uint8, "actions": (k, A) the actions in between,
    "demo", "t", "k", "camera", "task", "instruction"}``. Every t with t+k inside the
    episode is a sample.
    """

    def __init__(
        self, store: StoreBase | str | Path, camera: str | None = None, stride: int = 1, **store_kw
    ):
        if not isinstance(store, StoreBase):
            store = open_store(store, **store_kw)
        if stride < 1:
            raise ParameterError(f"stride: k must be >= 1, got {stride}")
        self.store, self.k = store, stride
        self.camera = camera or store.cameras[0]
        if self.camera not in store.cameras:
            raise ParameterError(f"camera: {self.camera!r} not in {store.cameras}")
        pairs = [
            (i, t) for i, d in enumerate(store.demos) for t in range(store.lengths[d] - stride)
        ]
        if not pairs:
            raise DataError(
                f"{store.path}: no frame pairs with stride {stride}; every demo is shorter"
            )
        self._pairs = np.asarray(pairs, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._pairs)

    def __getitem__(self, index: int) -> dict:
        i, t = (int(v) for v in self._pairs[index])
        demo = self.store.demos[i]
        block = self.store.frames(demo, self.camera, t, t + self.k + 1)
        return {
            "frames": block[[0, -1]],
            "actions": self.store.actions[demo][t : t + self.k],
            "demo": demo,
            "t": t,
            "k": self.k,
            "camera": self.camera,
            "task": self.store.task[demo],
            "instruction": self.store.instruction[demo],
        }


def load_norm_stats(store: StoreBase, cache: str | Path | None = None) -> NormStats:
    """Statistics over ``store.demos``, cached in a JSON file next to the data.

    The cache is keyed by the file's size and modification time, the mapping and the demo
    list, so statistics of the training split are never confused with those of another
    subset, nor with those of a regenerated file. A cache that cannot be read or written
    (a dataset on read-only storage) is skipped with a warning: the statistics are then
    computed from the data, as they would be without a cache.
    """
    if not cache:  # next to the data: x.hdf5 -> x.norm_stats.json, folder -> folder.norm_stats.json
        path = store.path
        cache = (
            path.with_suffix(".norm_stats.json")
            if path.is_file()
            else path.with_name(path.name + ".norm_stats.json")
        )
    cache = Path(cache)
    try:
        entries = json.loads(cache.read_text()) if cache.exists() else {}
    except (OSError, ValueError) as exc:
        warnings.warn(f"{cache}: unreadable normalisation cache, recomputing ({exc})", stacklevel=2)
        entries = {}
    key = f"{store.stamp()}:{store.mapping.name}:" + ",".join(store.demos)
    if key in entries:
        return NormStats(
            Stats(**entries[key]["actions"]), Stats(**entries[key]["proprio"]), store.demos
        )
    stats = store.norm_stats()
    entries[key] = asdict(stats)
    try:
        write_json_atomic(cache, entries)
    except OSError as exc:
        warnings.warn(f"{cache}: cannot write the normalisation cache ({exc})", stacklevel=2)
    return stats
