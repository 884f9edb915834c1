"""A mixture of datasets as one store: its components' demos one after another.

Each component is a store of its own (its own file or folder and key mapping); the mixture
names a demo ``<component>/<demo>`` so names stay unique, and reads arrays, text and
frames from the component holding it. The components must agree on what a sample is:
the same cameras, action dimension and proprio dimension. Every demo counts once, as in
the components; mixture weights (sampling one dataset more often than its size says) are
not supported (:func:`nblib.data.manifest.open_dataset` refuses a ``weight``).

A capability (:mod:`nblib.data.store`) is the mixture's when every component has it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from nblib.data.store import CAPABILITIES, StoreBase
from nblib.errors import DataError

SEPARATOR = "/"


class MixtureStore(StoreBase):
    """The demos of ``components`` (name -> store, in order) as one store.

    ``path`` names the mixture (its manifest) in messages; ``cache_dir`` is where its
    normalisation statistics are cached.
    """

    def __init__(self, name: str, path: Path, components: dict[str, StoreBase], cache_dir: Path):
        if not components:
            raise DataError(f"{path}: mixture '{name}' has no components")
        self.name, self.path, self.components = name, Path(path), dict(components)
        self._cache_dir = Path(cache_dir)
        first_name, first = next(iter(self.components.items()))
        for other_name, other in self.components.items():
            for what in ("cameras", "mapping.action_dim", "mapping.proprio_dim"):
                mine, theirs = _attr(first, what), _attr(other, what)
                if mine != theirs:
                    raise DataError(
                        f"{path}: components of mixture '{name}' disagree on {what}: "
                        f"'{first_name}' ({first.path}) has {mine}, '{other_name}' "
                        f"({other.path}) has {theirs}"
                    )
        mappings = {s.mapping.name for s in self.components.values()}
        self.mapping = (
            first.mapping
            if len(mappings) == 1
            else replace(first.mapping, name="+".join(sorted(mappings)))
        )
        self.cameras = list(first.cameras)
        self._where: dict[str, tuple[str, str]] = {}  # demo -> (component, its own name)
        self.demos, self.lengths = [], {}
        self.actions, self.proprio, self.instruction, self.task = {}, {}, {}, {}
        for comp, store in self.components.items():
            for demo in store.demos:
                key = f"{comp}{SEPARATOR}{demo}"
                self._where[key] = (comp, demo)
                self.demos.append(key)
                for field in ("lengths", "actions", "proprio", "instruction", "task"):
                    getattr(self, field)[key] = getattr(store, field)[demo]
        self.capabilities = frozenset.intersection(
            *(s.capabilities for s in self.components.values())
        )
        self.lacking = {}
        for capability in set(CAPABILITIES) - self.capabilities:
            comp, store = next((c, s) for c, s in self.components.items() if not s.has(capability))
            why = store.lacking.get(capability, "it does not record it")
            self.lacking[capability] = f"component '{comp}' ({store.path}) has none: {why}"
        if "control_rate" in self.capabilities:
            rates = {c: s.control_rate() for c, s in self.components.items()}
            if len(set(rates.values())) > 1:
                self.capabilities -= {"control_rate"}
                self.lacking["control_rate"] = f"components run at different rates {rates}"

    def frames(self, demo: str, camera: str, start: int, stop: int) -> np.ndarray:
        comp, inner = self._where[demo]
        return self.components[comp].frames(inner, camera, start, stop)

    def close(self) -> None:
        for store in self.components.values():
            store.close()

    def stamp(self) -> str:
        return "+".join(store.stamp() for store in self.components.values())

    def norm_stats_cache(self) -> Path:
        return self._cache_dir / f"{self.name}.norm_stats.json"

    def _by_component(self, demos: list[str]) -> dict[str, list[str]]:
        """component -> its own names of ``demos``, in order."""
        out: dict[str, list[str]] = {}
        for demo in demos:
            comp, inner = self._where[demo]
            out.setdefault(comp, []).append(inner)
        return out

    def _each(self, demos: list[str], read) -> dict:
        """What ``read(store, its demo names)`` gives per demo of each component (keys that
        are demo names, or (camera, demo) pairs), for ``demos`` only, keys prefixed back."""
        out = {}
        for comp, inner in self._by_component(demos).items():
            wanted = set(inner)
            for key, value in read(self.components[comp], inner).items():
                camera, demo = key if isinstance(key, tuple) else (None, key)
                if demo in wanted:
                    name = f"{comp}{SEPARATOR}{demo}"
                    out[name if camera is None else (camera, name)] = value
        return out

    def _success_flags(self) -> dict[str, bool]:
        return self._each(self.demos, lambda store, inner: store.success_flags())

    def _eef_positions(self) -> dict[str, np.ndarray]:
        return self._each(self.demos, lambda store, inner: store.eef_positions())

    def _camera_calibration(self) -> dict:
        return self._each(self.demos, lambda store, inner: store.camera_calibration())

    def _replay_records(self, demos: list[str]) -> dict[str, dict]:
        return self._each(demos, lambda store, inner: store.replay_records(inner))

    def _instruction_phrasings(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for store in self.components.values():
            for task, phrasings in store.instruction_phrasings().items():
                known = out.setdefault(task, [])
                known += [p for p in phrasings if p not in known]
        return out

    def _control_rate(self) -> float:
        return next(iter(self.components.values())).control_rate()


def _attr(store: StoreBase, dotted: str):
    value = store
    for part in dotted.split("."):
        value = getattr(value, part)
    return value
