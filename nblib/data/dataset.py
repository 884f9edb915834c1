"""Demo datasets over any store: action chunks for policy training and frame pairs for
latent actions.

Both take a store (:class:`~nblib.data.store.StoreBase`: an HDF5 file, a LeRobot folder or
a mixture; :func:`nblib.data.formats.open_store` opens one from a path) and read frames
from it on demand, so they can be sent to DataLoader worker processes as they are.
"""

from __future__ import annotations

import numpy as np

from nblib.data.normalization import NormStats
from nblib.data.store import StoreBase
from nblib.errors import DataError, ParameterError


def _require_store(store) -> None:
    if not isinstance(store, StoreBase):
        raise ParameterError(
            f"store: expected a store, got {type(store).__name__} {store!r}; open a path "
            "with nblib.data.formats.open_store(path) or a manifest with open_dataset(name)"
        )


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
        store: any store (``DemoStore``, ``LeRobotStore``, ``MixtureStore``).
        horizon: action chunk length H.
        normalization: None, or a mode of :mod:`nblib.data.normalization` applied to actions
            and proprio with ``stats`` (computed on this dataset's demos when not given).
    """

    def __init__(
        self,
        store: StoreBase,
        horizon: int = 16,
        obs_horizon: int = 1,
        normalization: str | None = None,
        stats: NormStats | None = None,
        check_horizon: bool = True,
    ):
        _require_store(store)
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

    def __init__(self, store: StoreBase, camera: str | None = None, stride: int = 1):
        _require_store(store)
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
