"""Tests for nblib.data.dataset (ChunkDataset, FramePairDataset), nblib.data.hdf5 (DemoStore)
and nblib.data.normalization (load_norm_stats), on a tiny file of 3 demos (12, 9 and 15 steps)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
from tiny_data import write_tiny_dataset

from nblib.data.dataset import ChunkDataset, FramePairDataset
from nblib.data.hdf5 import DemoStore
from nblib.data.normalization import MODES, NormStats, Stats, load_norm_stats
from nblib.data.store import CAPABILITIES
from nblib.errors import CapabilityError, DataError, ParameterError

LENGTHS = (12, 9, 15)
TASKS = ("reach", "push", "reach")
SIZE = 16
CAMERAS = ("corner", "behindGripper")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny.h5"
    return write_tiny_dataset(path, lengths=LENGTHS, tasks=TASKS, image_size=SIZE, cameras=CAMERAS)


@pytest.fixture(scope="module")
def raw(tiny) -> dict:
    """Every demo's actions, proprio (eef_pos | gripper_opening) and frames, read with h5py."""
    out = {}
    with h5py.File(tiny, "r") as f:
        for i in range(len(LENGTHS)):
            g = f[f"data/demo_{i}"]
            out[f"demo_{i}"] = {
                "actions": g["actions"][()],
                "proprio": np.concatenate([g["obs/eef_pos"][()], g["obs/gripper_opening"][()]], 1),
                "instruction": g.attrs["instruction"],
                **{cam: g[f"obs/{cam}_image"][()] for cam in CAMERAS},
            }
    return out


# --- ChunkDataset -------------------------------------------------------------------------


def test_chunk_item_keys_shapes_dtypes(tiny, raw):
    ds = ChunkDataset(DemoStore(tiny), horizon=4)
    item = ds[0]
    assert set(item) == {"images", "proprio", "instruction", "actions", "action_mask", "demo", "t"}
    assert set(item["images"]) == set(CAMERAS)
    for cam in CAMERAS:
        assert item["images"][cam].shape == (1, SIZE, SIZE, 3)
        assert item["images"][cam].dtype == np.uint8
    assert item["proprio"].shape == (4,) and item["proprio"].dtype == np.float32
    assert item["actions"].shape == (4, 4) and item["actions"].dtype == np.float32
    assert item["action_mask"].shape == (4,) and item["action_mask"].dtype == np.bool_
    assert (item["demo"], item["t"]) == ("demo_0", 0)
    assert item["instruction"] == raw["demo_0"]["instruction"] == "reach the goal"
    assert ds[LENGTHS[0]]["instruction"] == "push the puck"


def test_chunk_len_is_total_steps(tiny):
    ds = ChunkDataset(DemoStore(tiny), horizon=4)
    assert len(ds) == sum(LENGTHS) == 36
    with pytest.raises(IndexError):
        ds[36]


def test_chunk_actions_proprio_images_match_file(tiny, raw):
    ds = ChunkDataset(DemoStore(tiny), horizon=5)
    for index in (0, 3, 12, 13, 20, 25, 35):
        item = ds[index]
        demo, t = item["demo"], item["t"]
        assert ds.index_of(demo, t) == index
        a = raw[demo]["actions"]
        if t + 5 <= len(a):
            np.testing.assert_array_equal(item["actions"], a[t : t + 5])
            assert item["action_mask"].all()
        np.testing.assert_array_equal(item["proprio"], raw[demo]["proprio"][t])
        for cam in CAMERAS:
            np.testing.assert_array_equal(item["images"][cam][0], raw[demo][cam][t])


def test_chunk_padding_at_episode_end(tiny, raw):
    ds = ChunkDataset(DemoStore(tiny), horizon=4)
    a = raw["demo_0"]["actions"]  # 12 steps
    item = ds[ds.index_of("demo_0", 10)]
    np.testing.assert_array_equal(item["actions"], a[[10, 11, 11, 11]])
    assert item["action_mask"].tolist() == [True, True, False, False]
    last = ds[ds.index_of("demo_0", 11)]
    np.testing.assert_array_equal(last["actions"], np.repeat(a[11:12], 4, axis=0))
    assert last["action_mask"].tolist() == [True, False, False, False]
    full = ds[ds.index_of("demo_0", 8)]
    assert full["action_mask"].all()


def test_chunk_obs_horizon_pads_frames_with_last(tiny, raw):
    ds = ChunkDataset(DemoStore(tiny), horizon=2, obs_horizon=3)
    frames = raw["demo_1"]["corner"]  # 9 steps
    item = ds[ds.index_of("demo_1", 7)]
    assert item["images"]["corner"].shape == (3, SIZE, SIZE, 3)
    np.testing.assert_array_equal(item["images"]["corner"], frames[[7, 8, 8]])
    np.testing.assert_array_equal(item["proprio"], raw["demo_1"]["proprio"][[7, 8, 8]])
    mid = ds[ds.index_of("demo_1", 2)]
    np.testing.assert_array_equal(
        mid["images"]["behindGripper"], raw["demo_1"]["behindGripper"][2:5]
    )


def test_horizon_longer_than_demo_raises(tiny):
    with pytest.raises(DataError, match=r"demo_1.*9 steps"):
        ChunkDataset(DemoStore(tiny), horizon=10)
    assert len(ChunkDataset(DemoStore(tiny), horizon=9)) == 36  # exactly the demo length is fine
    assert len(ChunkDataset(DemoStore(tiny), horizon=10, check_horizon=False)) == 36


def test_bad_horizon_is_parameter_error(tiny):
    with pytest.raises(ParameterError):
        ChunkDataset(DemoStore(tiny), horizon=0)


@pytest.mark.parametrize("mode", ["mean_std", "min_max"])
def test_chunk_normalization_round_trips(tiny, raw, mode):
    ds = ChunkDataset(DemoStore(tiny), horizon=3, normalization=mode)
    for index in (0, 15, 35):
        item = ds[index]
        demo, t = item["demo"], item["t"]
        back = ds.stats.actions.unnormalize(item["actions"], mode)
        np.testing.assert_allclose(
            back,
            raw[demo]["actions"][np.minimum(np.arange(t, t + 3), len(raw[demo]["actions"]) - 1)],
            atol=1e-5,
        )
        back_p = ds.stats.proprio.unnormalize(item["proprio"], mode)
        np.testing.assert_allclose(back_p, raw[demo]["proprio"][t], atol=1e-5)
    if mode == "min_max":
        every = np.concatenate([ds[i]["actions"] for i in range(len(ds))])
        assert every.min() >= -1 - 1e-6 and every.max() <= 1 + 1e-6
        assert every.min() < -0.99 and every.max() > 0.99  # the extremes are reached


@pytest.mark.parametrize("mode", ["mean_std", "min_max"])
def test_stats_round_trip(mode):
    rows = np.random.default_rng(0).normal(3.0, [0.5, 2.0, 10.0], size=(200, 3))
    stats = Stats.of(rows)
    back = stats.unnormalize(stats.normalize(rows, mode), mode)
    np.testing.assert_allclose(back, rows, atol=1e-5 * np.abs(rows).max())


def test_stats_mean_std_known_values():
    stats = Stats.of(np.array([[0.0, 1.0], [2.0, 1.0]]))
    assert stats.mean == [1.0, 1.0] and stats.std == [1.0, 0.0]
    assert stats.min == [0.0, 1.0] and stats.max == [2.0, 1.0] and stats.count == 2
    np.testing.assert_allclose(stats.normalize(np.array([[2.0, 1.0]]), "mean_std"), [[1.0, 0.0]])
    np.testing.assert_allclose(stats.normalize(np.array([[0.0, 1.0]]), "min_max"), [[-1.0, 0.0]])


def test_q01_q99_output_in_unit_range():
    rows = np.random.default_rng(1).standard_cauchy(size=(500, 2))  # heavy tails
    out = Stats.of(rows).normalize(rows, "q01_q99")
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert (out == 1.0).any() and (out == -1.0).any()  # the tails are clipped


def test_unknown_mode_is_parameter_error():
    stats = Stats.of(np.zeros((3, 1)))
    with pytest.raises(ParameterError, match="mean_std"):
        stats.normalize(np.zeros((1, 1)), "zscore")
    assert "zscore" not in MODES


def test_stats_refuse_nan_naming_row_and_dim():
    rows = np.zeros((5, 3))
    rows[3, 1] = np.nan
    with pytest.raises(DataError, match=r"row 3, dim 1"):
        Stats.of(rows)
    rows[3, 1] = np.inf
    with pytest.raises(DataError, match=r"row 3, dim 1"):
        Stats.of(rows)


def test_norm_stats_save_load(tmp_path):
    ns = NormStats(Stats.of(np.eye(3)), Stats.of(np.ones((2, 1))), ["demo_0"])
    ns.save(tmp_path / "s.json")
    assert NormStats.load(tmp_path / "s.json") == ns


def test_load_norm_stats_caches_next_to_file(tmp_path):
    path = write_tiny_dataset(tmp_path / "cached.h5", lengths=LENGTHS, tasks=TASKS, image_size=8)
    cache = tmp_path / "cached.norm_stats.json"
    all_demos = load_norm_stats(DemoStore(path))
    assert cache.exists()
    entries = json.loads(cache.read_text())
    (key,) = entries
    assert key.endswith(":metaworld:demo_0,demo_1,demo_2")
    assert all_demos.actions.count == 36

    subset = load_norm_stats(DemoStore(path, demos=["demo_0", "demo_2"]))
    assert subset.actions.count == 27
    assert subset.actions.mean != all_demos.actions.mean
    assert len(json.loads(cache.read_text())) == 2

    # A second call is answered from the cache (proved by editing it).
    entries = json.loads(cache.read_text())
    entries[key]["actions"]["mean"] = [7.0, 7.0, 7.0, 7.0]
    cache.write_text(json.dumps(entries))
    again = load_norm_stats(DemoStore(path))
    assert again.actions.mean == [7.0] * 4
    assert again.demos == ["demo_0", "demo_1", "demo_2"]
    assert again.proprio == all_demos.proprio

    # Regenerating the file (new size/mtime) invalidates the cached statistics.
    write_tiny_dataset(path, lengths=LENGTHS, tasks=TASKS, image_size=8, seed=1)
    fresh = load_norm_stats(DemoStore(path))
    assert fresh.actions.mean != [7.0] * 4


def test_load_norm_stats_survives_a_bad_or_read_only_cache(tmp_path):
    path = write_tiny_dataset(tmp_path / "ro.h5", lengths=LENGTHS, tasks=TASKS, image_size=8)
    want = DemoStore(path).norm_stats()
    bad = tmp_path / "corrupt.json"
    bad.write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable"):
        assert load_norm_stats(DemoStore(path), cache=bad) == want
    unwritable = tmp_path / "missing_folder_is_a_file"
    unwritable.write_text("")
    with pytest.warns(UserWarning, match="cannot write"):
        assert load_norm_stats(DemoStore(path), cache=unwritable / "stats.json") == want


# --- DemoStore ----------------------------------------------------------------------------


def test_demo_store_pickles_after_reading_frames(tiny, raw):
    store = DemoStore(tiny)
    first = store.frames("demo_2", "corner", 3, 6)
    assert store._file is not None  # a handle is open now
    copy = pickle.loads(pickle.dumps(store))
    assert copy._file is None and len(copy._frames) == 0
    np.testing.assert_array_equal(copy.frames("demo_2", "corner", 3, 6), first)
    np.testing.assert_array_equal(
        copy.frames("demo_1", "behindGripper", 0, 9), raw["demo_1"]["behindGripper"]
    )
    np.testing.assert_array_equal(
        store.frames("demo_2", "corner", 3, 6), raw["demo_2"]["corner"][3:6]
    )
    assert copy.lengths == {"demo_0": 12, "demo_1": 9, "demo_2": 15}
    copy.close()
    store.close()
    assert store._file is None


def test_demo_store_unknown_camera(tiny):
    with pytest.raises(ParameterError, match="wrist"):
        DemoStore(tiny, cameras=["wrist"])


def test_demo_store_unknown_demo(tiny):
    with pytest.raises(DataError, match="demo_9"):
        DemoStore(tiny, demos=["demo_0", "demo_9"])


def test_demo_store_tasks(tiny):
    store = DemoStore(tiny, demos=["demo_2", "demo_1"])
    assert store.demos == ["demo_2", "demo_1"]
    assert store.task == {"demo_2": "reach", "demo_1": "push"}
    assert store.proprio["demo_1"].shape == (9, 4)


def test_frame_handle_lru_bounded(tiny):
    store = DemoStore(tiny)
    store.MAX_OPEN = 2
    order = [("demo_0", "corner"), ("demo_1", "corner"), ("demo_0", "corner"), ("demo_2", "corner")]
    for demo, cam in order:
        store.frames(demo, cam, 0, 1)
        assert len(store._frames) <= 2
    # demo_1 was the least recently used when demo_2 came in.
    assert list(store._frames) == [("demo_0", "corner"), ("demo_2", "corner")]
    for demo in ("demo_0", "demo_1", "demo_2"):
        for cam in CAMERAS:
            store.frames(demo, cam, 0, 2)
            assert len(store._frames) <= 2
    store.close()


def test_frame_handle_lru_class_attribute(tiny, monkeypatch, raw):
    monkeypatch.setattr(DemoStore, "MAX_OPEN", 1)
    ds = ChunkDataset(DemoStore(tiny), horizon=2)
    for index in range(0, len(ds), 5):
        item = ds[index]
        assert len(ds.store._frames) <= 1
        np.testing.assert_array_equal(
            item["images"]["corner"][0], raw[item["demo"]]["corner"][item["t"]]
        )
    ds.store.close()


# --- FramePairDataset ---------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3])
def test_frame_pairs(tiny, raw, k):
    ds = FramePairDataset(DemoStore(tiny), camera="behindGripper", stride=k)
    assert len(ds) == sum(n - k for n in LENGTHS)
    seen = set()
    for index in range(len(ds)):
        item = ds[index]
        demo, t = item["demo"], item["t"]
        seen.add((demo, t))
        assert item["k"] == k and item["camera"] == "behindGripper"
        assert item["frames"].shape == (2, SIZE, SIZE, 3) and item["frames"].dtype == np.uint8
        np.testing.assert_array_equal(item["frames"][0], raw[demo]["behindGripper"][t])
        np.testing.assert_array_equal(item["frames"][1], raw[demo]["behindGripper"][t + k])
        np.testing.assert_array_equal(item["actions"], raw[demo]["actions"][t : t + k])
    assert seen == {(f"demo_{i}", t) for i, n in enumerate(LENGTHS) for t in range(n - k)}


def test_frame_pairs_bad_arguments(tiny):
    with pytest.raises(ParameterError):
        FramePairDataset(DemoStore(tiny), stride=0)
    with pytest.raises(ParameterError):
        FramePairDataset(DemoStore(tiny, cameras=["corner"]), camera="behindGripper")
    with pytest.raises(DataError, match="stride 15"):
        FramePairDataset(DemoStore(tiny), stride=15)


def test_datasets_take_a_store_not_a_path(tiny):
    with pytest.raises(ParameterError, match="expected a store, got PosixPath"):
        ChunkDataset(tiny)
    with pytest.raises(ParameterError, match="open_store"):
        FramePairDataset(str(tiny))


# --- store capabilities -------------------------------------------------------------------


def test_a_generator_file_has_every_capability(tiny, raw):
    store = DemoStore(tiny)
    assert store.capabilities == set(CAPABILITIES)
    assert store.success_flags() == {"demo_0": True, "demo_1": True, "demo_2": True}
    assert store.instruction_phrasings() == {"reach": ["reach the goal"], "push": ["push the puck"]}
    for demo, values in raw.items():
        np.testing.assert_array_equal(store.eef_positions()[demo], values["proprio"][:, :3])
    calibration = store.camera_calibration()
    assert sorted(calibration) == sorted((c, d) for c in CAMERAS for d in raw)
    intrinsics, extrinsics = calibration["corner", "demo_2"]
    assert intrinsics.shape == (3, 3) and extrinsics.shape == (LENGTHS[2], 4, 4)
    record = store.replay_records(["demo_1"])["demo_1"]
    assert record["task"] == "push" and isinstance(record["seed"], int)
    np.testing.assert_array_equal(record["actions"], raw["demo_1"]["actions"])
    assert record["state"].shape == (LENGTHS[1], 39)
    assert store.control_rate() == 80.0  # a Meta-World file: 5 x 2.5 ms per action
    with pytest.raises(ParameterError, match="'depth' is not one of"):
        store.has("depth")


def test_a_store_lacking_a_capability_says_which_and_why(tmp_path):
    path = write_tiny_dataset(tmp_path / "bare.h5", lengths=(5, 6), tasks=TASKS[:2], image_size=8)
    with h5py.File(path, "a") as f:
        del f["data"].attrs["instructions"]
        f["data"].attrs["env_args"] = json.dumps({"env_name": "Lift"})
        for demo in f["data"].values():
            del demo.attrs["success"], demo.attrs["seed"], demo["camera"]
    store = DemoStore(path)
    assert store.capabilities == {"eef_positions"}
    reasons = {
        "success_flags": "no demo has a 'success' attribute",
        "instruction_phrasings": "has no 'instructions' attribute",
        "camera_calibration": "no demo has a camera/<name>/ group",
        "replay_records": "demo '/data/demo_0' lacks what a replay needs",
        "control_rate": "it records no 'fps' attribute",
    }
    for capability, why in reasons.items():
        assert not store.has(capability)
        with pytest.raises(CapabilityError) as err:
            getattr(store, capability)()
        assert str(err.value).startswith(f"{path}: no {capability} (")
        assert why in str(err.value) and f"store.has('{capability}')" in str(err.value)
    with h5py.File(path, "a") as f:
        f["data"].attrs["fps"] = 20
    assert DemoStore(path).control_rate() == 20.0
