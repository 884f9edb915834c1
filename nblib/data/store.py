"""The store base: what every dataset format gives once its arrays are read.

A store holds one dataset's demos under one key mapping: ``path``, ``mapping``,
``cameras``, ``demos``, ``lengths`` and per demo ``actions`` (T, action_dim) and
``proprio`` (T, proprio_dim) float32, ``instruction`` and ``task`` text, plus
``frames(demo, camera, start, stop)``. Subclasses read one storage format each
(:mod:`nblib.data.hdf5`, :mod:`nblib.data.lerobot`, :mod:`nblib.data.mixture`).

Beyond that, a format may record more, and studies ask for it by name instead of opening
files themselves (the optional **capabilities** below). ``store.has(name)`` says cheaply
whether this store can answer; calling the method of a capability the store lacks raises
:class:`~nblib.errors.CapabilityError` naming the store's file, the capability and why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nblib.data.mapping import KeyMapping
from nblib.data.normalization import NormStats, Stats
from nblib.errors import CapabilityError, DataError, ParameterError

#: The optional capabilities, each the name of the store method that answers it.
CAPABILITIES = {
    "success_flags": "whether each demo succeeded",
    "instruction_phrasings": "the phrasings of each task's instruction",
    "camera_calibration": "camera intrinsics and extrinsics",
    "eef_positions": "end-effector positions",
    "replay_records": "what a simulator replay needs (task, seed, recorded states)",
    "control_rate": "the control rate",
}
# Proprio keys holding the end effector's (x, y, z): the metaworld, robomimic, libero and
# cosmos layouts name them *eef_pos or *ee_pos.
EEF_SUFFIXES = ("eef_pos", "ee_pos")


class StoreBase:
    """The demos of one dataset under one key mapping (see the module docstring).

    Subclasses set ``capabilities`` (a frozenset of names in :data:`CAPABILITIES`) and
    ``lacking`` (capability -> why this store lacks it, for the error), and implement the
    ``_<capability>`` method of each capability they have.
    """

    path: Path
    mapping: KeyMapping
    demos: list[str]
    capabilities: frozenset[str] = frozenset()
    lacking: dict[str, str] = {}

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

    def norm_stats_cache(self) -> Path:
        """Where :func:`~nblib.data.normalization.load_norm_stats` keeps statistics by
        default: next to the data (x.hdf5 -> x.norm_stats.json, folder ->
        folder.norm_stats.json)."""
        path = self.path
        if path.is_file():
            return path.with_suffix(".norm_stats.json")
        return path.with_name(path.name + ".norm_stats.json")

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

    def __getstate__(self) -> dict:
        return self.__dict__.copy()

    def norm_stats(self) -> NormStats:
        return NormStats(
            actions=Stats.of(np.concatenate([self.actions[d] for d in self.demos])),
            proprio=Stats.of(np.concatenate([self.proprio[d] for d in self.demos])),
            demos=list(self.demos),
        )

    # ------------------------------------------------------------------ capabilities

    def has(self, capability: str) -> bool:
        """Whether this store can answer ``capability`` (a name in :data:`CAPABILITIES`);
        cheap: nothing is read."""
        if capability not in CAPABILITIES:
            raise ParameterError(f"capability: {capability!r} is not one of {sorted(CAPABILITIES)}")
        return capability in self.capabilities

    def _need(self, capability: str) -> None:
        if not self.has(capability):
            why = self.lacking.get(capability, "this dataset does not record it")
            raise CapabilityError(
                f"{self.path}: no {capability} ({CAPABILITIES[capability]}): {why}. "
                f"Ask store.has({capability!r}) first to skip what needs it."
            )

    def success_flags(self) -> dict[str, bool]:
        """demo -> whether it succeeded, for the demos (in order) that record it."""
        self._need("success_flags")
        return self._success_flags()

    def instruction_phrasings(self) -> dict[str, list[str]]:
        """task -> the phrasings of its instruction (the dataset's own list)."""
        self._need("instruction_phrasings")
        return self._instruction_phrasings()

    def camera_calibration(self) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
        """(camera, demo) -> (intrinsics (3, 3), extrinsics (T, 4, 4) per step or (4, 4)),
        OpenCV convention, world -> camera, for every camera of ``cameras`` and demo that
        records them."""
        self._need("camera_calibration")
        return self._camera_calibration()

    def eef_positions(self) -> dict[str, np.ndarray]:
        """demo -> (T, 3) end-effector positions (metres, world frame), from the proprio."""
        self._need("eef_positions")
        return self._eef_positions()

    def replay_records(self, demos: list[str] | None = None) -> dict[str, dict]:
        """demo -> ``{"task", "seed", "state" (T, S), "actions" (T, A)}``: what replaying
        the demo in its simulator needs (default: every demo)."""
        self._need("replay_records")
        return self._replay_records(list(self.demos if demos is None else demos))

    def control_rate(self) -> float:
        """Actions per second (Hz)."""
        self._need("control_rate")
        return self._control_rate()

    def _eef_columns(self) -> slice | None:
        """Where the end-effector position sits in ``proprio``, from the mapping's keys."""
        start = 0
        for key, width in self.mapping.proprio.items():
            if width == 3 and key.rsplit("/", 1)[-1].endswith(EEF_SUFFIXES):
                return slice(start, start + 3)
            start += width
        return None

    def _mapping_capabilities(self) -> set[str]:
        """What the key mapping alone provides."""
        if self._eef_columns() is None:
            return set()
        return {"eef_positions"}

    def _eef_positions(self) -> dict[str, np.ndarray]:
        columns = self._eef_columns()
        return {d: self.proprio[d][:, columns] for d in self.demos}

    def _success_flags(self) -> dict[str, bool]:
        raise NotImplementedError

    def _instruction_phrasings(self) -> dict[str, list[str]]:
        raise NotImplementedError

    def _camera_calibration(self) -> dict:
        raise NotImplementedError

    def _replay_records(self, demos: list[str]) -> dict[str, dict]:
        raise NotImplementedError

    def _control_rate(self) -> float:
        raise NotImplementedError
