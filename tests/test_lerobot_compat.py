"""Compatibility with LeRobot itself, both ways, through its own ``LeRobotDataset`` in a
throwaway venv (tests/lerobot_venv.py): LeRobot loads the folder nblib exported and gets
the same actions, states, task texts and frames; nblib reads a folder LeRobot recorded
(with LeRobot's default encoder) and gets back what was recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lerobot_venv import run_probe

from nblib.data.formats import check_dataset
from nblib.data.lerobot import LeRobotStore
from nblib.data.lerobot_export import export_lerobot
from nblib.data.manifest import open_dataset


@pytest.fixture(scope="module")
def exported(real_manifest, tmp_path_factory):
    source = open_dataset(real_manifest, progress=False)
    folder = tmp_path_factory.mktemp("compat") / "exported"
    export_lerobot(source, folder, progress=False)
    return source, LeRobotStore(folder)


def _ours(store: LeRobotStore, key: str) -> np.ndarray:
    """Every frame of ``store`` in LeRobot's order (episode after episode)."""
    if key == "action":
        return np.concatenate([store.actions[d] for d in store.demos])
    if key == "state":
        return np.concatenate([store.proprio[d] for d in store.demos])
    camera = key.removeprefix("frames:observation.images.")
    return np.concatenate([store.frames(d, camera, 0, store.lengths[d]) for d in store.demos])


def test_lerobot_loads_the_exported_folder(exported, tmp_path):
    source, ours = exported
    out = tmp_path / "items.npz"
    run_probe("read", ours.path, out)
    items = np.load(out)
    meta = json.loads(str(items["meta"]))
    assert meta["fps"] == 80 and meta["num_episodes"] == len(source.demos)
    assert meta["num_frames"] == sum(source.lengths.values())
    assert np.array_equal(items["action"], _ours(ours, "action"))  # exactly, bit for bit
    assert np.array_equal(items["state"], _ours(ours, "state"))
    texts = [source.instruction[d] for d in source.demos for _ in range(source.lengths[d])]
    assert meta["tasks"] == texts
    for camera in ours.cameras:
        key = f"frames:observation.images.{camera}"
        theirs, mine = items[key].astype(int), _ours(ours, key).astype(int)
        # Both decode the same AV1 stream (measured: identical); another FFmpeg build's
        # YUV -> RGB conversion may round a level apart.
        diff = np.abs(theirs - mine)
        print(camera, "mean", diff.mean(), "max", diff.max())
        assert diff.mean() < 0.1 and diff.max() <= 2


def test_nblib_reads_a_folder_lerobot_recorded(exported, tmp_path):
    source, ours = exported
    # What LeRobot records: the exported demos' states, actions, texts and source frames.
    src = tmp_path / "source.npz"
    frames = {
        f"frames:{c}": np.concatenate(
            [source.frames(d, c, 0, source.lengths[d]) for d in source.demos]
        )
        for c in source.cameras
    }
    rows = [(i, d) for i, d in enumerate(source.demos) for _ in range(source.lengths[d])]
    meta = {
        "fps": 80,
        "cameras": source.cameras,
        "tasks": [source.instruction[d] for _, d in rows],
    }
    np.savez(
        src,
        meta=json.dumps(meta),
        action=_ours(ours, "action"),
        state=_ours(ours, "state"),
        episode_index=np.array([i for i, _ in rows]),
        **frames,
    )
    recorded = tmp_path / "recorded"
    run_probe("write", src, recorded)
    summary = check_dataset(recorded)  # nblib's check accepts LeRobot's own output
    assert summary.demos == len(source.demos) and summary.mapping == "lerobot"
    store = LeRobotStore(recorded)
    assert store.cameras == source.cameras
    for old, new in zip(source.demos, store.demos, strict=True):
        assert np.array_equal(store.actions[new], source.actions[old])
        assert np.array_equal(store.proprio[new], source.proprio[old])
        assert store.instruction[new] == source.instruction[old]
        for camera in source.cameras:
            a = source.frames(old, camera, 0, source.lengths[old]).astype(int)
            b = store.frames(new, camera, 0, store.lengths[new]).astype(int)
            assert np.abs(a - b).mean() < 6  # LeRobot's encoder: AV1, crf 30, yuv420p
