"""LeRobot v2.1 and v2.0 folders (one Parquet file and one MP4 per camera per episode) read
through the same store, check and manifest as v3.0 ones.

The fixture is real Meta-World expert demos (``real_manifest``) exported as v3.0 and then
rewritten in the v2.1 layout the way LeRobot's own converter does it
(huggingface/lerobot ``src/lerobot/datasets/v30/convert_dataset_v30_to_v21.py``: info.json
with ``codebase_version`` v2.1, the legacy ``data_path`` / ``video_path`` templates, no
``*_files_size_in_mb``, ``total_chunks`` and ``total_videos``; ``meta/tasks.jsonl``;
``meta/episodes.jsonl`` rows of ``episode_index``, ``tasks``, ``length``;
``meta/episodes_stats.jsonl`` rows of ``episode_index``, ``stats``; each episode's rows
sliced into ``data/chunk-000/episode_00000N.parquet`` and its frames cut into
``videos/chunk-000/<camera feature>/episode_00000N.mp4``). File names and keys follow
LeRobot v2.1's ``lerobot/common/datasets/utils.py`` (``DEFAULT_PARQUET_PATH``,
``DEFAULT_VIDEO_PATH``, ``EPISODES_PATH``, ``EPISODES_STATS_PATH``, ``TASKS_PATH``,
``create_empty_dataset_info``). The export uses one key frame per frame, so each episode's
video is cut by copying packets, as the converter's ``ffmpeg -c copy`` does, and decodes
to exactly the frames of the v3.0 folder.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from nblib.cli import main
from nblib.data.dataset import ChunkDataset
from nblib.data.formats import check_dataset, open_store
from nblib.data.lerobot import LeRobotStore
from nblib.data.lerobot_check import describe_folder
from nblib.data.lerobot_export import VideoOptions, export_lerobot
from nblib.data.manifest import open_dataset, write_manifest
from nblib.errors import DataError

V21_DATA = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V21_VIDEO = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"


def _stats(values: np.ndarray) -> dict:
    """LeRobot's per-episode feature statistics (min, max, mean, std over frames; count)."""
    v = values.reshape(len(values), -1).astype(np.float64)
    out = {k: getattr(np, k)(v, axis=0).tolist() for k in ("min", "max", "mean", "std")}
    return out | {"count": [len(v)]}


def _cut_video(src: Path, dst: Path, start: float, stop: float) -> None:
    """Copy the packets of [start, stop) seconds into ``dst``, restarting at 0 s."""
    import av

    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        target = out.add_stream_from_template(stream, opaque=True)
        first = None
        for packet in inp.demux(stream):
            if packet.pts is None or not packet.size:
                continue
            if not start - 1e-6 <= float(packet.pts * stream.time_base) < stop - 1e-6:
                continue
            assert packet.is_keyframe  # every frame decodes alone (gop 1)
            first = packet.pts if first is None else first
            packet.pts -= first
            packet.dts = packet.pts
            packet.stream = target
            out.mux(packet)


def as_v21(v3: Path, out: Path) -> None:
    """The v3.0 folder ``v3`` (one data file, one video per camera) in the v2.1 layout."""
    store = LeRobotStore(v3)
    info = json.loads((v3 / "meta/info.json").read_text())
    episodes = pd.read_parquet(v3 / "meta/episodes/chunk-000/file-000.parquet")
    videos = [k for k, ft in info["features"].items() if ft["dtype"] == "video"]
    chunks, total = info["chunks_size"], len(episodes)
    info |= {"codebase_version": "v2.1", "data_path": V21_DATA, "video_path": V21_VIDEO}
    info |= {"total_chunks": math.ceil(total / chunks), "total_videos": total * len(videos)}
    for key in ("data_files_size_in_mb", "video_files_size_in_mb"):
        info.pop(key)
    (out / "meta").mkdir(parents=True)
    (out / "meta/info.json").write_text(json.dumps(info, indent=4))
    shutil.copy(v3 / "meta/stats.json", out / "meta/stats.json")
    tasks = pd.read_parquet(v3 / "meta/tasks.parquet").sort_values("task_index")
    (out / "meta/tasks.jsonl").write_text(
        "".join(json.dumps({"task_index": int(i), "task": t}) + "\n" for t, i in tasks["task_index"].items())
    )  # fmt: skip
    table = pq.read_table(v3 / "data/chunk-000/file-000.parquet")
    rows, stats = [], []
    for e in episodes.to_dict("records"):
        index, start = int(e["episode_index"]), int(e["dataset_from_index"])
        part = table.slice(start, int(e["length"]))
        fields = {"episode_chunk": index // chunks, "episode_index": index}
        path = out / V21_DATA.format(**fields)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, path)
        episode_stats = {
            name: _stats(np.stack(part.column(name).to_numpy(zero_copy_only=False)))
            for name in part.column_names
        }
        for key in videos:
            src = v3 / f"videos/{key}/chunk-000/file-000.mp4"
            dst = out / V21_VIDEO.format(video_key=key, **fields)
            _cut_video(src, dst, e[f"videos/{key}/from_timestamp"], e[f"videos/{key}/to_timestamp"])
            frames = store.frames(f"episode_{index}", key.split(".")[-1], 0, int(e["length"]))
            pixels = _stats(frames.reshape(-1, 3) / 255.0)  # per channel, kept as (3, 1, 1)
            episode_stats[key] = {
                k: [[[x]] for x in v] for k, v in pixels.items() if k != "count"
            } | {"count": [len(frames)]}
        rows.append({"episode_index": index, "tasks": list(e["tasks"]), "length": int(e["length"])})
        stats.append({"episode_index": index, "stats": episode_stats})
    for name, lines in (("episodes", rows), ("episodes_stats", stats)):
        text = "".join(json.dumps(line) + "\n" for line in lines)
        (out / f"meta/{name}.jsonl").write_text(text)


@pytest.fixture(scope="module")
def v3(real_manifest, tmp_path_factory) -> Path:
    source = open_dataset(real_manifest, progress=False)
    out = tmp_path_factory.mktemp("v3") / "real_v30"
    export_lerobot(source, out, video=VideoOptions(gop=1), progress=False)
    return out


@pytest.fixture(scope="module")
def v21(v3, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("v21") / "real_v21"
    as_v21(v3, out)
    return out


@pytest.fixture
def broken(v21, tmp_path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(v21, copy)
    return copy


def test_the_fixture_has_lerobot_v21_files(v21):
    info = json.loads((v21 / "meta/info.json").read_text())
    assert info["codebase_version"] == "v2.1" and info["total_chunks"] == 1
    assert info["total_videos"] == 12 and "data_files_size_in_mb" not in info
    names = sorted(str(p.relative_to(v21)) for p in v21.rglob("*") if p.is_file())
    assert "data/chunk-000/episode_000005.parquet" in names
    assert "videos/chunk-000/observation.images.corner/episode_000000.mp4" in names
    assert {"meta/episodes.jsonl", "meta/episodes_stats.jsonl", "meta/tasks.jsonl"} <= set(names)
    first = json.loads((v21 / "meta/episodes.jsonl").read_text().splitlines()[0])
    assert set(first) == {"episode_index", "tasks", "length"}
    stats = json.loads((v21 / "meta/episodes_stats.jsonl").read_text().splitlines()[1])
    assert stats["episode_index"] == 1 and len(stats["stats"]["action"]["mean"]) == 4
    assert np.shape(stats["stats"]["observation.images.corner"]["mean"]) == (3, 1, 1)


@pytest.mark.parametrize("version", ["v2.1", "v2.0"])
def test_a_v2_folder_reads_as_its_v30_original(v3, v21, tmp_path, version):
    folder = v21
    if version == "v2.0":  # v2.0 has no per-episode statistics, the rest is the same
        folder = tmp_path / "v20"
        shutil.copytree(v21, folder)
        (folder / "meta/episodes_stats.jsonl").unlink()
        info = json.loads((folder / "meta/info.json").read_text())
        (folder / "meta/info.json").write_text(json.dumps(info | {"codebase_version": "v2.0"}))
    old, new = LeRobotStore(v3), open_store(folder)
    assert isinstance(new, LeRobotStore) and new.layout.version == version
    assert new.demos == old.demos and new.cameras == old.cameras
    for demo in old.demos:
        assert np.array_equal(new.actions[demo], old.actions[demo])
        assert np.array_equal(new.proprio[demo], old.proprio[demo])
        assert np.array_equal(new.timestamps[demo], old.timestamps[demo])
        assert new.instruction[demo] == old.instruction[demo]
    last = old.demos[-1]  # in v3.0 the last episode starts late in the shared video
    for camera in old.cameras:
        window = (3, old.lengths[last])
        assert np.array_equal(new.frames(last, camera, *window), old.frames(last, camera, *window))
    assert new.control_rate() == old.control_rate() == 80.0
    batch = ChunkDataset(new, horizon=4)[40]
    assert np.array_equal(batch["actions"], ChunkDataset(old, horizon=4)[40]["actions"])


def test_data_check_and_manifest_accept_a_v21_folder(v3, v21, tmp_path, capsys):
    summary, original = check_dataset(v21), check_dataset(v3)
    assert summary.mapping == "lerobot" and summary.demos == original.demos == 6
    assert summary.tasks == original.tasks and summary.cameras == original.cameras
    assert summary.action_stats == original.action_stats
    assert main(["data", "check", str(v21)]) == 0
    assert "OK  (mapping 'lerobot')" in capsys.readouterr().out
    raw = describe_folder(v21, "real_v21")
    assert raw["description"] == "LeRobot v2.1 dataset folder." and raw["counts"]["demos"] == 6
    store = open_dataset(str(write_manifest(raw, tmp_path / "real_v21.yaml")), progress=False)
    assert store.demos == LeRobotStore(v3).demos


def _episode_length(folder: Path, episode: int, change: int) -> None:
    path = folder / "meta/episodes.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[episode]["length"] += change
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


DAMAGE = {
    "video gone": (
        lambda f: (f / "videos/chunk-000/observation.images.corner/episode_000002.mp4").unlink(),
        r"corner/episode_000002\.mp4: video file missing",
    ),
    "length": (
        lambda f: _episode_length(f, 3, 1),
        r"episode_000003\.parquet: episode 3 has \d+ rows, but its metadata says \d+ frames",
    ),
    "data gone": (
        lambda f: (f / "data/chunk-000/episode_000004.parquet").unlink(),
        r"episode_000004\.parquet: missing",
    ),
    "task line": (
        lambda f: (f / "meta/tasks.jsonl").write_text('{"task_index": 0}\n'),
        r"tasks\.jsonl, line 1: no \['task'\]",
    ),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_data_check_names_the_file_of_a_damaged_v21_folder(broken, name):
    damage, message = DAMAGE[name]
    damage(broken)
    with pytest.raises(DataError, match=message):
        check_dataset(broken)
