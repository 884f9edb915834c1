"""Tests for nblib.data.hdf5_check (through nblib.data.formats.check_dataset): every kind of bad file gives a DataError that says where.

One good tiny file (3 demos of 12, 9 and 15 steps) is written once; each bad case copies it
and breaks one thing with the helpers of ``tiny_data``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from tiny_data import corrupt, write_tiny_dataset

from nblib.data.formats import check_dataset
from nblib.data.mapping import available_mappings, load_mapping
from nblib.data.summary import DatasetSummary, format_summary
from nblib.errors import DataError

LENGTHS = (12, 9, 15)
TASKS = ("reach", "push", "reach")


@pytest.fixture(scope="module")
def good_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "good.h5"
    return write_tiny_dataset(path, lengths=LENGTHS, tasks=TASKS, successes=(True, False, True))


@pytest.fixture
def bad(good_file: Path, tmp_path: Path):
    """``bad(what, **kw)``: a copy of the good file broken by ``tiny_data.corrupt``."""

    def make(what: str, **kw) -> Path:
        path = tmp_path / "broken_dataset.h5"
        shutil.copy(good_file, path)
        return corrupt(path, what, **kw)

    return make


def _error(path: Path, *parts: str, **kw) -> str:
    """Run the check, expect a DataError naming the file and every string in ``parts``."""
    with pytest.raises(DataError) as info:
        check_dataset(path, **kw)
    message = str(info.value)
    for part in (path.name, *parts):
        assert part in message, f"{part!r} missing from: {message}"
    return message


# --- a good file ---------------------------------------------------------------------------


def test_valid_file_summary_is_exact(good_file: Path) -> None:
    summary = check_dataset(good_file)
    assert isinstance(summary, DatasetSummary)
    assert summary.path == good_file and summary.mapping == "metaworld"
    assert summary.demos == 3 and summary.steps == sum(LENGTHS)
    assert summary.episode_lengths == list(LENGTHS)
    assert summary.demo_names == ["demo_0", "demo_1", "demo_2"]
    assert summary.tasks == {"reach": 2, "push": 1}
    assert summary.instructions == {"reach the goal": 2, "push the puck": 1}
    assert summary.cameras == {"corner": (16, 16, 3), "behindGripper": (16, 16, 3)}
    assert summary.action_dim == 4 and summary.proprio_dim == 4
    assert summary.action_names == load_mapping("metaworld").action_labels()
    assert summary.success_rate == pytest.approx(2 / 3) and summary.success_demos == 3

    with h5py.File(good_file) as f:
        actions = np.concatenate([f[f"data/demo_{i}/actions"][()] for i in range(3)])
    assert actions.shape == (sum(LENGTHS), 4)
    a = actions.astype(np.float64)
    expected = {
        "mean": a.mean(0),
        "std": a.std(0),
        "min": a.min(0),
        "max": a.max(0),
        "q01": np.quantile(a, 0.01, axis=0),
        "q99": np.quantile(a, 0.99, axis=0),
    }
    for stat, values in expected.items():
        np.testing.assert_allclose(summary.action_stats[stat], values, rtol=1e-12, err_msg=stat)
    assert summary.cameras["corner"] == (16, 16, 3)

    text = format_summary(summary)
    assert "good.h5" in text and "demos 3, steps 36" in text
    assert "min 9 / median 12 / max 15" in text and "66.7% (2/3 demos)" in text
    assert len(text.splitlines()) == 7 + 4  # header lines + one row per action dimension


def test_valid_file_with_horizon_equal_to_shortest_episode(good_file: Path) -> None:
    assert check_dataset(good_file, horizon=9).steps == sum(LENGTHS)


def test_demos_are_ordered_naturally_and_first_problem_wins(tmp_path: Path) -> None:
    path = write_tiny_dataset(tmp_path / "many.h5", lengths=(4,) * 12, tasks=("reach",) * 12)
    names = check_dataset(path).demo_names
    assert names == [f"demo_{i}" for i in range(12)]
    corrupt(path, "set", key="data/demo_10/actions", index=(1, 0), value=np.nan)
    corrupt(path, "set", key="data/demo_2/actions", index=(3, 1), value=np.nan)
    message = _error(path, "'demo_2'", "step 3")
    assert "demo_10" not in message


HDF5_MAPPINGS = [m for m in available_mappings() if load_mapping(m).format == "hdf5"]


@pytest.mark.parametrize("name", HDF5_MAPPINGS)  # the LeRobot mapping: tests/test_lerobot.py
def test_every_mapping_layout_passes(tmp_path: Path, name: str) -> None:
    mapping = load_mapping(name)
    path = write_tiny_dataset(
        tmp_path / f"{name}.h5", lengths=(6, 8), tasks=("reach", "reach"), mapping=mapping
    )
    with h5py.File(path) as f:  # the file really is in that layout
        demo = f[f"{mapping.demo_group}/demo_0"]
        for key in [*mapping.images.values(), *mapping.proprio, mapping.actions]:
            assert key in demo, key
    summary = check_dataset(path, mapping=name)
    assert summary.mapping == name and summary.steps == 14
    assert summary.action_dim == mapping.action_dim and summary.proprio_dim == mapping.proprio_dim
    assert set(summary.cameras) == set(mapping.images)
    assert len(summary.action_stats["mean"]) == mapping.action_dim
    if mapping.instruction.get("constant", "") is None:
        assert summary.instructions == {}
    else:
        assert sum(summary.instructions.values()) == 2


def test_metaworld_file_fails_against_libero_mapping(good_file: Path) -> None:
    _error(good_file, "'demo_0'", "obs/ee_pos", "keys in obs", "eef_pos", mapping="libero")


# --- bad files -----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    _error(tmp_path / "nowhere.h5", "does not exist")


def test_truncated_file(good_file: Path, tmp_path: Path) -> None:
    half = tmp_path / "half.h5"
    raw = good_file.read_bytes()
    half.write_bytes(raw[: len(raw) // 2])
    _error(half, "not a readable HDF5 file (truncated or corrupt?)")


def test_truncated_file_via_helper(bad) -> None:
    _error(bad("truncate", fraction=0.9), "not a readable HDF5 file (truncated or corrupt?)")


@pytest.mark.parametrize("key", ["data", "data/demo_1", "data/demo_1/obs", "data/demo_2/actions"])
def test_damaged_object_inside_the_file(bad, key: str) -> None:
    demo = key.split("/")[1] if "/" in key else "data"
    _error(bad("damage", key=key), "not a readable HDF5 file (truncated or corrupt?)", f"'{demo}'")


def test_not_an_hdf5_file(bad) -> None:
    _error(bad("not_hdf5"), "not a readable HDF5 file (truncated or corrupt?)")


def test_missing_demo_group(bad) -> None:
    _error(bad("move", key="data", new_key="demos"), "'data'", "top-level keys: ['demos']")


def test_no_demos_in_group(bad) -> None:
    path = bad("move", key="data/demo_0", new_key="data/episode_0")
    for demo in ("demo_1", "demo_2"):
        corrupt(path, "delete", key=f"data/{demo}")
    _error(path, "'data'", "no demo groups", "episode_0")


@pytest.mark.parametrize(
    ("key", "present"),
    [
        (
            "obs/eef_pos",
            "keys in obs: ['behindGripper_image', 'corner_image', 'gripper_opening', 'state']",
        ),
        ("obs/corner_image", "keys in obs: ['behindGripper_image', 'eef_pos'"),
        ("actions", "keys in the demo group: ['camera', 'obs', 'rewards', 'success']"),
        ("obs", "keys in the demo group: ['actions', 'camera', 'rewards', 'success']"),
    ],
)
def test_missing_key(bad, key: str, present: str) -> None:
    path = bad("delete", key=f"data/demo_1/{key}")
    _error(path, "'demo_1'", f"'{key}'", present)


@pytest.mark.parametrize(
    ("key", "demo", "step", "dim", "value", "shown"),
    [
        ("actions", "demo_2", 7, 3, np.nan, "nan"),
        ("actions", "demo_0", 0, 0, -np.inf, "-inf"),
        ("obs/eef_pos", "demo_1", 4, 2, np.inf, "inf"),
        ("obs/gripper_opening", "demo_2", 14, 0, np.nan, "nan"),
    ],
)
def test_non_finite_values(bad, key, demo, step, dim, value, shown) -> None:
    path = bad("set", key=f"data/{demo}/{key}", index=(step, dim), value=value)
    _error(path, f"'{demo}'", f"'{key}'", f"holds {shown} at step {step}, dimension {dim}")


def test_empty_demo(bad) -> None:
    _error(bad("empty", demo="demo_1"), "'demo_1'", "empty", "'actions' has 0 steps")


@pytest.mark.parametrize("key", ["obs/eef_pos", "obs/behindGripper_image"])
def test_inconsistent_lengths(bad, key: str) -> None:
    path = bad("resize", key=f"data/demo_2/{key}", length=14)
    _error(path, "'demo_2'", f"'{key}' has 14 steps", "'actions' has 15")


def test_num_samples_disagrees_with_actions(bad) -> None:
    path = bad("attr", key="data/demo_1", attr="num_samples", value=10)
    _error(path, "'demo_1'", "'num_samples' is 10", "'actions' has 9 steps")


def test_wrong_action_dim(bad) -> None:
    path = bad("resize", key="data/demo_0/actions", width=7)
    _error(path, "'demo_0'", "'actions'", "(12, 7)", "mapping 'metaworld'", "action_dim 4", "got 7")


def test_wrong_proprio_width(bad) -> None:
    path = bad("resize", key="data/demo_1/obs/gripper_opening", width=2)
    _error(path, "'demo_1'", "'obs/gripper_opening'", "(9, 2)", "proprio width 1")


@pytest.mark.parametrize(
    ("array", "shown"),
    [
        (np.zeros((9, 16, 16, 3), np.float32), "(9, 16, 16, 3) float32"),
        (np.zeros((9, 16, 16), np.uint8), "(9, 16, 16) uint8"),
        (np.zeros((9, 16, 16, 4), np.uint8), "(9, 16, 16, 4) uint8"),
    ],
)
def test_images_not_rgb_uint8(bad, array: np.ndarray, shown: str) -> None:
    path = bad("replace", key="data/demo_1/obs/corner_image", array=array)
    _error(path, "'demo_1'", "'obs/corner_image'", shown, "(T, H, W, 3) uint8")


def test_frame_size_changes_between_demos(bad) -> None:
    path = bad(
        "replace", key="data/demo_2/obs/corner_image", array=np.zeros((15, 8, 8, 3), np.uint8)
    )
    _error(path, "'demo_2'", "'obs/corner_image'", "8x8", "'demo_0' has 16x16")


def test_horizon_longer_than_episode(good_file: Path) -> None:
    _error(good_file, "'demo_1'", "has 9 steps", "horizon 10", horizon=10)


def test_missing_instruction_attribute(bad) -> None:
    path = bad("attr", key="data/demo_2", attr="instruction")
    _error(path, "'demo_2'", "'instruction'", "/data/demo_2", "attributes")


def test_unreadable_json_instruction(tmp_path: Path) -> None:
    path = write_tiny_dataset(
        tmp_path / "libero.h5", lengths=(5, 5), tasks=("push", "push"), mapping="libero"
    )
    corrupt(path, "attr", key="data", attr="problem_info", value="{not json")
    _error(path, "'problem_info'", "language_instruction", "'demo_0'", mapping="libero")


# --- the helper itself ---------------------------------------------------------------------


def test_tiny_frames_follow_the_actions(good_file: Path) -> None:
    with h5py.File(good_file) as f:
        demo = f["data/demo_0"]
        actions, eef = demo["actions"][()], demo["obs/eef_pos"][()]
        frames = demo["obs/corner_image"][()].astype(np.float64)
        assert demo["obs/state"].shape == (12, 39) and demo["camera/corner/extrinsics"].shape == (
            12,
            4,
            4,
        )
    # Observation t comes before action t: eef_pos[t] sums actions 0..t-1.
    expected_eef = np.concatenate([np.zeros((1, 3)), np.cumsum(actions[:-1, :3] * 0.01, axis=0)])
    np.testing.assert_allclose(eef, expected_eef, atol=1e-6)
    # Column of the square's centroid (weights: distance from the background colour).
    weight = np.abs(frames - frames[0, 0, 0]).sum(-1)
    cols = (weight.sum(1) * np.arange(16)).sum(1) / weight.sum((1, 2))
    expected = 16 / 2 + eef[:, 0] * 8 * 16
    inside = (expected > 2.5) & (expected < 13.5)  # the square is not clipped at the border
    assert inside.sum() >= 6
    np.testing.assert_allclose(cols[inside] + 0.5, expected[inside], atol=0.05)
