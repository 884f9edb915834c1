"""``nblib bench loader``: nblib's chunk sampler against robomimic 0.3.0's
``SequenceDataset`` on the embedded file, and the same samples read from its LeRobot export
(Parquet + AV1 video) against the HDF5 file."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import numpy as np

from nblib.bench.common import machine, ratio, throughput
from nblib.errors import NblibError


def _robomimic_dataset(path, cameras: list[str], proprio_keys: list[str], horizon: int):
    try:
        import robomimic.utils.obs_utils as obs_utils
        from robomimic.utils.dataset import SequenceDataset
    except ImportError as err:
        raise NblibError(
            "bench loader compares against robomimic 0.3.0: "
            "pip install --no-deps robomimic==0.3.0 termcolor"
        ) from err
    image_keys = [f"{c}_image" for c in cameras]
    # robomimic prints its setup banner on stdout; keep stdout for the JSON lines.
    with contextlib.redirect_stdout(sys.stderr):
        obs_utils.initialize_obs_utils_with_obs_specs(
            {"obs": {"rgb": image_keys, "low_dim": proprio_keys}}
        )
        return SequenceDataset(
            hdf5_path=str(path),
            obs_keys=tuple(image_keys + proprio_keys),
            dataset_keys=("actions",),
            frame_stack=1,
            seq_length=horizon,
            pad_frame_stack=True,
            pad_seq_length=True,
            get_pad_mask=True,
            hdf5_cache_mode="low_dim",  # images stay on disk, as for data larger than RAM
            hdf5_use_swmr=False,
            load_next_obs=False,
        )


def _same_sample(ours: dict, theirs: dict, cameras: list[str], proprio_keys: list[str]) -> None:
    """Both loaders must return identical arrays, or the comparison is meaningless."""
    for cam in cameras:
        np.testing.assert_array_equal(ours["images"][cam], theirs["obs"][f"{cam}_image"])
    proprio = np.concatenate([theirs["obs"][k] for k in proprio_keys], axis=-1)
    np.testing.assert_allclose(ours["proprio"], proprio)
    np.testing.assert_allclose(ours["actions"], theirs["actions"])
    np.testing.assert_array_equal(ours["action_mask"], theirs["pad_mask"][:, 0])


def bench_loader(
    items: int = 400, horizon: int = 16, rounds: int = 3, seed: int = 0
) -> Iterator[dict]:
    """nblib's chunk sampler vs robomimic 0.3.0 ``SequenceDataset`` on the embedded file.

    Same workload on both sides: both cameras' frames, proprio and actions over a window
    of ``horizon`` steps with end-of-episode padding and its mask (robomimic reads every
    key with the same sequence length). Random indices, the same for both.
    """
    from nblib.data.dataset import ChunkDataset
    from nblib.data.manifest import open_dataset

    store = open_dataset(progress=False)
    path = store.path
    cameras = store.cameras
    proprio_keys = [k.split("/", 1)[1] for k in store.mapping.proprio]
    ours = ChunkDataset(store, horizon=horizon, obs_horizon=horizon)
    theirs = _robomimic_dataset(path, cameras, proprio_keys, horizon)
    if len(theirs) != len(ours):
        raise NblibError(f"sample counts differ: nblib {len(ours)}, robomimic {len(theirs)}")
    rng = np.random.default_rng(seed)
    for i in rng.integers(len(ours), size=20):
        _same_sample(ours[int(i)], theirs[int(i)], cameras, proprio_keys)
    vla = ChunkDataset(store, horizon=horizon, obs_horizon=1)
    rates: dict[str, list[float]] = {
        k: [] for k in ("ours", "theirs", "ours_cold", "theirs_cold", "vla")
    }
    for _ in range(rounds):
        # Cold: both files reopened, so no decompressed chunk survives from earlier reads.
        indices = rng.choice(len(ours), size=min(items, len(ours)), replace=False)
        theirs.close_and_delete_hdf5_handle()
        store.close()
        rates["theirs_cold"].append(throughput(theirs.__getitem__, indices))
        rates["ours_cold"].append(throughput(ours.__getitem__, indices))
        # Steady state: fresh random indices, handles (and HDF5's per-dataset chunk cache)
        # as they stay during training; overlapping windows then reuse decompressed frames.
        indices = rng.integers(len(ours), size=items)
        rates["theirs"].append(throughput(theirs.__getitem__, indices))
        rates["ours"].append(throughput(ours.__getitem__, indices))
        rates["vla"].append(throughput(vla.__getitem__, indices))
    med = {k: float(np.median(v)) for k, v in rates.items()}
    common = {
        "samples": items,
        "rounds": rounds,
        "horizon": horizon,
        "dataset": path.name,
        **machine(),
    }
    workload = f"{len(cameras)} cameras x {horizon} frames + proprio + actions[{horizon}] + mask, images read from file"

    def compared(figure: str, note: str, ours_key: str, theirs_key: str) -> dict:
        ours_rate, theirs_rate = med[ours_key], med[theirs_key]
        return {
            "bench": "loader",
            "figure": figure,
            "workload": f"{workload}; {note}",
            "nblib": round(ours_rate, 1),
            "robomimic": round(theirs_rate, 1),
            "ratio": ratio(ours_rate, theirs_rate),
            **common,
        }

    yield compared(
        "cold_samples_per_s", "files reopened before each round", "ours_cold", "theirs_cold"
    )
    yield compared("samples_per_s", "steady state (open handles)", "ours", "theirs")
    yield {
        "bench": "loader",
        "figure": "vla_samples_per_s",
        "workload": f"{len(cameras)} cameras x 1 frame + proprio + actions[{horizon}] + mask (robomimic cannot read obs and actions with different lengths)",
        "nblib": round(med["vla"], 1),
        **common,
    }
    yield from _bench_lerobot(store, items, horizon, rounds, rng, common)


def _lerobot_copy(store):
    """The default dataset exported as a LeRobot folder, kept in the cache folder and
    reused while the HDF5 file is unchanged (the export takes ~1 min)."""
    from nblib.data.lerobot import LeRobotStore
    from nblib.data.lerobot_export import export_lerobot
    from nblib.paths import cache_dir

    folder = cache_dir() / "lerobot" / f"{store.path.stem}-{store.stamp().replace(':', '-')}"
    if not folder.exists():
        print(f"bench loader: exporting {store.path.name} to {folder}", file=sys.stderr)
        export_lerobot(store, folder, progress=False)
    return LeRobotStore(folder)


def _bench_lerobot(store, items, horizon, rounds, rng, common) -> Iterator[dict]:
    """Reading the same demos from the LeRobot export (Parquet + AV1 video, decoded on
    demand) against reading them from the HDF5 file: what video decoding costs."""
    from nblib.data.dataset import ChunkDataset

    exported = _lerobot_copy(store)
    cameras = store.cameras
    workloads = {
        "lerobot_samples_per_s": horizon,  # the loader workload above: 16 frames a camera
        "lerobot_vla_samples_per_s": 1,  # one frame a camera, as a VLA step reads
    }
    for figure, frames in workloads.items():
        hdf5 = ChunkDataset(store, horizon=horizon, obs_horizon=frames)
        video = ChunkDataset(exported, horizon=horizon, obs_horizon=frames)
        sample = int(rng.integers(len(hdf5)))
        np.testing.assert_array_equal(hdf5[sample]["actions"], video[sample]["actions"])
        rates: dict[str, list[float]] = {"hdf5": [], "lerobot": []}
        for _ in range(rounds):
            indices = rng.integers(len(hdf5), size=items)
            store.close()
            exported.close()
            rates["hdf5"].append(throughput(hdf5.__getitem__, indices))
            rates["lerobot"].append(throughput(video.__getitem__, indices))
        med = {k: float(np.median(v)) for k, v in rates.items()}
        yield {
            "bench": "loader",
            "figure": figure,
            "workload": f"{len(cameras)} cameras x {frames} frame(s) + proprio + actions[{horizon}] + mask, random samples; files reopened each round",
            "lerobot": round(med["lerobot"], 1),
            "hdf5": round(med["hdf5"], 1),
            "ratio": ratio(med["lerobot"], med["hdf5"]),
            "lerobot_folder": exported.path.name,
            **common,
        }
