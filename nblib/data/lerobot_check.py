"""Check a LeRobot folder (v3.0, v2.1, v2.0) before anything trains on it, as strictly as an
HDF5 file, and describe it for a manifest.

:func:`check_lerobot` reads the metadata, every data file and the packet index of every
video (no frame is decoded) and raises :class:`~nblib.errors.DataError` at the first
problem, naming the file, the episode and the frame: missing ``meta/info.json`` or video
files, episode index ranges that disagree with the Parquet rows, frame indices that are not
0..length-1, timestamps off ``frame_index / fps``, NaN or infinite actions or states, task
indices without a task, and videos with fewer frames than their episode.
:func:`describe_folder` gives the manifest of a valid folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nblib.data.lerobot_layout import (
    TOLERANCE_S,
    Layout,
    content_sha256,
    episode_name,
    load_layout,
    read_frame_rows,
    resolve_mapping,
)
from nblib.data.mapping import KeyMapping, load_mapping
from nblib.data.summary import DatasetSummary, summarize
from nblib.errors import DataError


def check_lerobot(
    path: str | Path, mapping: str | Path | KeyMapping = "lerobot", horizon: int | None = None
) -> DatasetSummary:
    """Validate the LeRobot folder ``path``; raise DataError at the first problem."""
    root = Path(path)
    layout = load_layout(root)  # info.json, tasks.parquet and episode metadata, or a DataError
    raw = mapping if isinstance(mapping, KeyMapping) else load_mapping(mapping)
    mapping = resolve_mapping(raw, layout.info, root)
    episodes = layout.episodes.to_dict("records")
    indices = [int(e["episode_index"]) for e in episodes]
    if len(set(indices)) != len(indices):
        dup = next(i for i in indices if indices.count(i) > 1)
        raise DataError(f"{episodes[0]['_file']}: episode {dup} is listed twice")
    for e in episodes:
        _check_episode_row(e, horizon)

    by_file: dict[Path, list[dict]] = {}
    for e in episodes:
        by_file.setdefault(layout.data_file(e), []).append(e)
    actions: dict[int, np.ndarray] = {}
    texts: dict[int, str] = {}
    for file, members in by_file.items():
        found = _check_data_file(file, members, mapping, layout, horizon)
        for index, (acts, text) in found.items():
            actions[index], texts[index] = acts, text

    for key in mapping.images.values():
        _check_videos(layout, key, episodes)

    tasks: dict[str, int] = {}
    instructions: dict[str, int] = {}
    for e in episodes:
        text = texts[int(e["episode_index"])]
        for what, counts in (("task", tasks), ("instruction", instructions)):
            spec = getattr(mapping, what)
            value = spec["constant"] if "constant" in spec else text
            if value is not None:
                counts[value] = counts.get(value, 0) + 1
    cameras = {
        camera: tuple(int(n) for n in layout.info["features"][key]["shape"])
        for camera, key in mapping.images.items()
    }
    return summarize(
        root,
        mapping,
        [episode_name(i) for i in indices],
        [int(e["length"]) for e in episodes],
        [actions[i] for i in indices],
        tasks,
        instructions,
        cameras,
        [],
    )


def _check_episode_row(e: dict, horizon: int | None) -> None:
    where = f"{e['_file']}: episode {int(e['episode_index'])}"
    length = int(e["length"])
    start, stop = int(e["dataset_from_index"]), int(e["dataset_to_index"])
    if length <= 0:
        raise DataError(f"{where} has length {length}; expected at least one frame")
    if stop - start != length:
        raise DataError(
            f"{where}: dataset_from_index {start} .. dataset_to_index {stop} spans "
            f"{stop - start} frames but its length is {length}"
        )
    if horizon is not None and horizon > length:
        raise DataError(
            f"{where} has {length} frames, shorter than the action chunk horizon {horizon}; "
            f"drop episodes shorter than {horizon} frames or lower the horizon"
        )


def _check_data_file(
    file: Path, members: list[dict], mapping: KeyMapping, layout, horizon: int | None
) -> dict[int, tuple[np.ndarray, str]]:
    """Check the frame rows of the episodes stored in ``file``; returns per episode its
    actions and its task text."""
    rows_of = read_frame_rows(file, mapping)
    episode, frame, index = rows_of["episode_index"], rows_of["frame_index"], rows_of["index"]
    task, times = rows_of["task_index"], rows_of["timestamp"]
    values = {key: rows_of[key] for key in (mapping.actions, *mapping.proprio)}
    known = {int(e["episode_index"]) for e in members}
    stray = sorted(set(episode.tolist()) - known)
    if stray:
        raise DataError(
            f"{file}: holds rows of episode {stray[0]}, which the episode metadata places in "
            "another file or does not list"
        )
    out = {}
    for e in members:
        ep, length = int(e["episode_index"]), int(e["length"])
        rows = np.flatnonzero(episode == ep)
        start, stop = int(e["dataset_from_index"]), int(e["dataset_to_index"])
        where = f"{file}: episode {ep}"
        if len(rows) != length:
            raise DataError(
                f"{where} has {len(rows)} rows, but its metadata says {length} frames "
                f"(index {start}..{stop})"
            )
        rows = rows[np.argsort(index[rows], kind="stable")]
        if not np.array_equal(index[rows], np.arange(start, stop)):
            bad = int(np.flatnonzero(index[rows] != np.arange(start, stop))[0])
            raise DataError(
                f"{where}, frame {bad}: index {int(index[rows][bad])}, expected {start + bad} "
                f"(metadata: dataset_from_index {start}, dataset_to_index {stop})"
            )
        off = np.flatnonzero(frame[rows] != np.arange(length))
        if off.size:
            k = int(off[0])
            raise DataError(
                f"{where}: row {start + k} has frame_index {int(frame[rows][k])}, expected {k} "
                "(frames 0..length-1 in order)"
            )
        drift = np.abs(times[rows] - np.arange(length) / layout.fps)
        late = np.flatnonzero(drift > TOLERANCE_S)
        if late.size:
            k = int(late[0])
            raise DataError(
                f"{where}, frame {k}: timestamp {times[rows][k]:.6f} s, expected "
                f"{k / layout.fps:.6f} s (frame_index / fps at {layout.fps:g} fps)"
            )
        for key, array in values.items():
            bad = ~np.isfinite(array[rows].reshape(length, -1))
            if bad.any():
                k, dim = (int(i) for i in np.argwhere(bad)[0])
                raise DataError(
                    f"{where}, frame {k}: '{key}' holds {array[rows].reshape(length, -1)[k, dim]} "
                    f"in dimension {dim} ({int(bad.sum())} non-finite values in this episode); "
                    "expected finite numbers"
                )
        unknown = sorted(set(task[rows].tolist()) - set(layout.tasks))
        if unknown:
            k = int(np.flatnonzero(task[rows] == unknown[0])[0])
            raise DataError(
                f"{where}, frame {k}: task_index {unknown[0]} is not in meta/tasks.parquet "
                f"(task indices there: {sorted(layout.tasks)[:10]})"
            )
        out[ep] = (values[mapping.actions][rows], layout.tasks[int(task[rows][0])])
    return out


def _check_videos(layout, key: str, episodes: list[dict]) -> None:
    """Every episode's frames exist in its video file (packet times, no decoding) and the
    video's frame size is the feature's."""
    shape = tuple(int(n) for n in layout.info["features"][key]["shape"])
    cache: dict[Path, np.ndarray] = {}
    for e in episodes:
        path = layout.video_file(e, key)
        if path not in cache:
            cache[path] = _packet_times(path, shape)
        times = cache[path]
        start = layout.video_start(e, key)
        want = start + np.arange(int(e["length"])) / layout.fps
        pos = np.clip(np.searchsorted(times, want), 1, max(len(times) - 1, 1))
        nearest = np.minimum(
            np.abs(times[pos] - want) if len(times) else np.full(len(want), np.inf),
            np.abs(times[pos - 1] - want) if len(times) else np.inf,
        )
        gap = np.flatnonzero(nearest > TOLERANCE_S)
        if gap.size:
            k = int(gap[0])
            last = f"{times[-1]:.4f} s" if len(times) else "no frames"
            raise DataError(
                f"{path}: episode {int(e['episode_index'])}, frame {k}: no video frame at "
                f"{want[k]:.4f} s (the episode starts at {start:.4f} s, the video's last frame "
                f"is at {last}); the video is shorter than its episode of {int(e['length'])} frames"
            )


def _packet_times(path: Path, shape: tuple) -> np.ndarray:
    """Sorted presentation times (seconds) of every video frame in ``path``."""
    import av

    if not path.exists():
        raise DataError(f"{path}: video file missing")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if (stream.height, stream.width) != shape[:2]:
                raise DataError(
                    f"{path}: frames are {stream.height}x{stream.width}, meta/info.json "
                    f"declares {shape[0]}x{shape[1]}"
                )
            pts = [p.pts for p in container.demux(stream) if p.pts is not None and p.size]
            return np.sort(np.asarray(pts, dtype=np.float64) * float(stream.time_base))
    except DataError:
        raise
    except Exception as err:  # av raises its own error types for damaged files
        raise DataError(f"{path}: not a readable video ({err})") from err


def describe_folder(root: str | Path, name: str, description: str = "") -> dict:
    """The manifest dict for a LeRobot folder: counts, cameras, fps and its checksum."""
    root = Path(root)
    summary = check_lerobot(root)
    layout = load_layout(root)
    tasks: dict = {}
    for text, length in zip(
        (layout.tasks[int(i)] for i in _first_tasks(layout)), summary.episode_lengths, strict=True
    ):
        entry = tasks.setdefault(text, {"demos": 0, "steps": 0})
        entry["demos"] += 1
        entry["steps"] += int(length)
    features = layout.info["features"]
    mapping = resolve_mapping(load_mapping("lerobot"), layout.info, root)
    return {
        "name": name,
        "kind": "dataset",
        "format": "lerobot",
        "description": description or f"LeRobot {layout.version} dataset folder.",
        "file": str(root),
        "key_mapping": "lerobot",
        "fps": layout.fps,
        "counts": {"demos": summary.demos, "steps": summary.steps, "tasks": tasks},
        "cameras": {
            cam: {
                "feature": key,
                "shape": list(features[key]["shape"]),
                "codec": features[key].get("info", {}).get("video.codec"),
            }
            for cam, key in mapping.images.items()
        },
        "size_bytes": sum(f.stat().st_size for f in root.rglob("*") if f.is_file()),
        "content_sha256": content_sha256(root),
    }


def _first_tasks(layout: Layout) -> list[int]:
    """Each episode's task_index (its first listed task), in episode order."""
    text_to_index = {t: i for i, t in layout.tasks.items()}
    episodes = layout.episodes
    if "tasks" not in episodes.columns:
        raise DataError(f"{episodes['_file'].iloc[0]}: episode metadata lists no 'tasks'")
    out = []
    for tasks, file in zip(episodes["tasks"], episodes["_file"], strict=True):
        first = list(tasks)[0] if len(tasks) else None
        if first not in text_to_index:
            raise DataError(
                f"{file}: episode task {first!r} is not one of the folder's tasks "
                f"({sorted(text_to_index)[:5]})"
            )
        out.append(text_to_index[first])
    return out
