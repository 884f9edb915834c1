"""LeRobot dataset folders' metadata: the v3.0 layout and the older v2.0 / v2.1 one behind
one :class:`Layout`, read with pyarrow.

v3.0 (LeRobot's current codebase version) packs episodes into shared files::

    meta/info.json                         fps, features, the data and video path templates
    meta/tasks.parquet                     task text (the index) -> task_index
    meta/episodes/chunk-*/file-*.parquet   one row per episode: length, the frame rows it
                                           spans, the data file and the video files holding
                                           it, and where it starts in each video
    data/chunk-*/file-*.parquet            one row per frame: action, observation.state,
                                           timestamp, frame_index, episode_index, index, ...
    videos/<feature>/chunk-*/file-*.mp4    one camera's episodes one after another

v2.0 and v2.1 (much of the Hub, seed 002's LIBERO conversions included) keep one file per
episode (LeRobot's ``lerobot/common/datasets/utils.py`` of that era: ``DEFAULT_PARQUET_PATH``,
``DEFAULT_VIDEO_PATH``, ``EPISODES_PATH``, ``TASKS_PATH``)::

    meta/info.json                         as above, plus chunks_size (episodes per chunk)
    meta/tasks.jsonl                       {"task_index": i, "task": text} per line
    meta/episodes.jsonl                    {"episode_index": e, "tasks": [text], "length": n}
    meta/episodes_stats.jsonl              (v2.1 only; not needed to read)
    data/chunk-{e // chunks_size:03d}/episode_{e:06d}.parquet
    videos/chunk-{e // chunks_size:03d}/<feature>/episode_{e:06d}.mp4   starting at 0 s

Only Parquet, JSON and MP4 are read, so LeRobot's own packages (which pin an older torch
and huggingface-hub than this venv has) are not needed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from fnmatch import fnmatch
from pathlib import Path

import numpy as np

from nblib.data.mapping import AUTO, KeyMapping
from nblib.errors import DataError, ParameterError

CODEBASE_VERSION = "v3.0"  # what nblib writes
READ_VERSIONS = ("v2.0", "v2.1", "v3.0")  # what it reads (v3.x in general)
INFO = "meta/info.json"
TASKS = "meta/tasks.parquet"
EPISODES = "meta/episodes"
STATS = "meta/stats.json"
TASKS_JSONL = "meta/tasks.jsonl"  # v2.x
EPISODES_JSONL = "meta/episodes.jsonl"  # v2.x
# The columns every LeRobot frame row has (LeRobot's DEFAULT_FEATURES).
FRAME_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
# How far a decoded frame's time may be from the one asked for: LeRobot's tolerance_s.
TOLERANCE_S = 1e-4


def episode_name(index: int) -> str:
    """The demo name nblib gives LeRobot episode ``index`` (token tables, splits use it)."""
    return f"episode_{index}"


def read_info(root: Path) -> dict:
    """``meta/info.json``, checked for what reading needs; a DataError names the file."""
    path = root / INFO
    if not path.exists():
        found = sorted(p.name for p in root.iterdir())[:10] if root.is_dir() else []
        raise DataError(
            f"{path}: missing. A LeRobot dataset folder has meta/info.json, data/ and its "
            f"episode and task metadata (v3.0: meta/episodes/, meta/tasks.parquet; v2.x: "
            f"meta/episodes.jsonl, meta/tasks.jsonl) (found in {root}: {found})"
        )
    try:
        info = json.loads(path.read_text())
    except ValueError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from err
    version = str(info.get("codebase_version", ""))
    if not version.startswith(("v3.", "v2.0", "v2.1")):
        raise DataError(
            f"{path}: codebase_version {version or '(none)'}; nblib reads LeRobot "
            f"{', '.join(READ_VERSIONS)} folders (convert older ones with LeRobot's "
            "convert_dataset_v1_to_v2)"
        )
    required = [("fps", (int, float)), ("features", dict), ("data_path", str)]
    if version.startswith("v2."):
        required.append(("chunks_size", int))
    for key, kind in required:
        if not isinstance(info.get(key), kind):
            raise DataError(f"{path}: '{key}' missing or not a {kind}; got {info.get(key)!r}")
    if info["fps"] <= 0:
        raise DataError(f"{path}: fps must be positive, got {info['fps']}")
    return info


def read_parquet(path: Path, columns: list[str] | None = None):
    """A Parquet file (only ``columns``, when given) as a pyarrow Table; a DataError naming
    the file when it is missing, unreadable or lacks one of ``columns``."""
    import pyarrow.parquet as pq

    if not path.exists():
        raise DataError(f"{path}: missing")
    try:
        file = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, KeyError ...
        raise DataError(f"{path}: not a readable Parquet file ({err})") from err
    with file:
        present = file.schema_arrow.names
        absent = [c for c in columns or [] if c not in present]
        if absent:
            raise DataError(f"{path}: no column(s) {absent} (columns: {present})")
        try:
            return file.read(columns=columns)
        except Exception as err:
            raise DataError(
                f"{path}: not a readable Parquet file with {columns or 'its'} columns ({err})"
            ) from err


def read_tasks(root: Path) -> dict[int, str]:
    """task_index -> task text from ``meta/tasks.parquet`` (the text is the pandas index)."""
    table = read_parquet(root / TASKS).to_pandas()
    if "task_index" not in table.columns:
        raise DataError(f"{root / TASKS}: no 'task_index' column (columns: {list(table.columns)})")
    texts = table["task"] if "task" in table.columns else table.index
    return {int(i): str(t) for i, t in zip(table["task_index"], texts, strict=True)}


def read_episodes(root: Path):
    """Every ``meta/episodes/chunk-*/file-*.parquet`` row as one DataFrame, by episode_index."""
    import pandas as pd

    files = sorted((root / EPISODES).glob("chunk-*/file-*.parquet"))
    if not files:
        raise DataError(f"{root / EPISODES}: no chunk-*/file-*.parquet episode metadata")
    frames = [read_parquet(f).to_pandas().assign(_file=str(f)) for f in files]
    episodes = pd.concat(frames, ignore_index=True)
    required = ["episode_index", "length", "dataset_from_index", "dataset_to_index"]
    required += ["data/chunk_index", "data/file_index"]
    missing = [c for c in required if c not in episodes.columns]
    if missing:
        raise DataError(
            f"{files[0]}: episode metadata lacks columns {missing} "
            f"(columns: {[c for c in episodes.columns if not c.startswith('stats/')][:20]})"
        )
    return episodes.sort_values("episode_index").reset_index(drop=True)


def read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    """The JSON objects of a JSON-lines file, each checked for ``required`` keys; a
    DataError names the file and the line."""
    if not path.exists():
        raise DataError(f"{path}: missing")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise DataError(f"{path}, line {number}: not valid JSON ({err})") from err
        missing = [k for k in required if not isinstance(row, dict) or k not in row]
        if missing:
            raise DataError(f"{path}, line {number}: no {missing} in {line[:120]!r}")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: empty")
    return rows


def read_tasks_jsonl(root: Path) -> dict[int, str]:
    """task_index -> task text from v2.x ``meta/tasks.jsonl``."""
    rows = read_jsonl(root / TASKS_JSONL, ("task_index", "task"))
    return {int(row["task_index"]): str(row["task"]) for row in rows}


def read_episodes_jsonl(root: Path):
    """v2.x ``meta/episodes.jsonl`` as the v3.0 episode table: by episode_index, with the
    frame rows each spans (``dataset_from_index``, ``dataset_to_index``), which v2.x
    derives as LeRobot's ``get_episode_data_index`` does, from the lengths in order."""
    import pandas as pd

    path = root / EPISODES_JSONL
    episodes = pd.DataFrame(read_jsonl(path, ("episode_index", "length")))
    episodes = episodes.sort_values("episode_index").reset_index(drop=True)
    ends = np.cumsum(episodes["length"].to_numpy(dtype=np.int64))
    episodes["dataset_from_index"] = ends - episodes["length"].to_numpy(dtype=np.int64)
    episodes["dataset_to_index"] = ends
    return episodes.assign(_file=str(path))


def fill_template(template: str, **fields) -> str:
    return template.format(**{k: int(v) if k.endswith("index") else v for k, v in fields.items()})


def _is_list(kind) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_list(kind) or pa.types.is_fixed_size_list(kind) or pa.types.is_large_list(kind)
    )


def column_array(table, name: str, width: int | None, where: Path) -> np.ndarray:
    """Column ``name`` as float32 (rows,) or (rows, width), from scalar or list cells."""
    if name not in table.column_names:
        raise DataError(f"{where}: no column '{name}' (columns: {table.column_names})")
    column = table.column(name).combine_chunks()
    if _is_list(column.type):
        if column.null_count:
            raise DataError(f"{where}: column '{name}' has {column.null_count} empty rows")
        values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        if width is None or values.size != len(column) * width:
            raise DataError(
                f"{where}: column '{name}' should hold {width} values per row, got "
                f"{values.size} values in {len(column)} rows"
            )
        return values.reshape(len(column), width)
    values = column.to_numpy(zero_copy_only=False).astype(np.float32)
    return values if width in (None, 1) and values.ndim == 1 else values.reshape(len(column), -1)


def read_frame_rows(path: Path, mapping: KeyMapping) -> dict[str, np.ndarray]:
    """What nblib reads of one data file, a row per frame: LeRobot's index columns as
    int64, ``timestamp`` as float64 and the mapping's features as float32 (rows, width).
    Only those columns are read; a missing one is a DataError naming the file."""
    widths = {mapping.actions: mapping.action_dim, **mapping.proprio}
    table = read_parquet(path, list(dict.fromkeys([*widths, *FRAME_COLUMNS])))
    out = {
        name: column_array(table, name, None, path).astype(np.int64)
        for name in ("episode_index", "frame_index", "index", "task_index")
    }
    out["timestamp"] = table.column("timestamp").to_numpy().astype(np.float64)
    for key, width in widths.items():
        out[key] = column_array(table, key, width, path).reshape(table.num_rows, width)
    return out


@dataclass
class Layout:
    """What a LeRobot v3.0 folder's metadata says: info, tasks and one row per episode
    (``episodes``: a DataFrame with ``episode_index``, ``length``, ``dataset_from_index``,
    ``dataset_to_index``, ``tasks`` and ``_file``, the metadata file it came from)."""

    root: Path
    info: dict
    tasks: dict[int, str]
    episodes: object  # pandas DataFrame

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    @property
    def version(self) -> str:
        return str(self.info["codebase_version"])

    def data_files(self) -> list[Path]:
        """Every data file the ``data_path`` template matches, in name order."""
        return sorted(self.root.glob(re.sub(r"\{[^}]*\}", "*", self.info["data_path"])))

    def data_file(self, episode) -> Path:
        chunk, file = episode["data/chunk_index"], episode["data/file_index"]
        return self.root / fill_template(self.info["data_path"], chunk_index=chunk, file_index=file)

    def _video_template(self, key: str) -> str:
        template = self.info.get("video_path")
        if not template:
            raise DataError(
                f"{self.root / INFO}: '{key}' is a video feature but video_path is unset"
            )
        return template

    def video_file(self, episode, key: str) -> Path:
        template = self._video_template(key)
        columns = [f"videos/{key}/{c}" for c in ("chunk_index", "file_index")]
        missing = [c for c in columns if c not in episode]
        if missing:
            raise DataError(
                f"{episode['_file']}: episode {int(episode['episode_index'])} has no {missing[0]}"
            )
        chunk, file = (episode[c] for c in columns)
        return self.root / fill_template(
            template, video_key=key, chunk_index=chunk, file_index=file
        )

    def video_start(self, episode, key: str) -> float:
        """Where the episode starts in its video file, seconds."""
        column = f"videos/{key}/from_timestamp"
        if column not in episode:
            raise DataError(f"{episode['_file']}: no column '{column}'")
        return float(episode[column])


class LegacyLayout(Layout):
    """A LeRobot v2.0 / v2.1 folder: one data file and one video per camera per episode,
    in chunk ``episode_index // chunks_size``; every video starts at 0 s."""

    def _chunk(self, episode) -> int:
        return int(episode["episode_index"]) // int(self.info["chunks_size"])

    def data_file(self, episode) -> Path:
        return self.root / self.info["data_path"].format(
            episode_chunk=self._chunk(episode), episode_index=int(episode["episode_index"])
        )

    def video_file(self, episode, key: str) -> Path:
        return self.root / self._video_template(key).format(
            episode_chunk=self._chunk(episode),
            video_key=key,
            episode_index=int(episode["episode_index"]),
        )

    def video_start(self, episode, key: str) -> float:
        return 0.0


def load_layout(root: str | Path) -> Layout:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (a LeRobot dataset is a folder)")
    info = read_info(root)
    if str(info["codebase_version"]).startswith("v2."):
        return LegacyLayout(root, info, read_tasks_jsonl(root), read_episodes_jsonl(root))
    return Layout(root, info, read_tasks(root), read_episodes(root))


def resolve_mapping(mapping: KeyMapping, info: dict, where: Path) -> KeyMapping:
    """The mapping with its camera wildcard and "auto" widths filled in from info.json."""
    if mapping.format != "lerobot":
        raise ParameterError(
            f"mapping '{mapping.name}' names HDF5 keys, but {where} is a LeRobot folder: "
            'use the mapping \'lerobot\' (or another with "format": "lerobot")'
        )
    features = info["features"]
    images: dict[str, str] = {}
    for camera, key in mapping.images.items():
        if "*" in camera:  # {"*": "observation.images.*"}: every matching video feature
            prefix = key.split("*")[0]
            for name in features:
                if fnmatch(name, key) and features[name].get("dtype") in ("video", "image"):
                    images[name[len(prefix) :]] = name
        else:
            images[camera] = key
    for camera, key in images.items():
        ft = features.get(key)
        if ft is None:
            raise DataError(f"{where / INFO}: no feature '{key}' for camera '{camera}'")
        if ft.get("dtype") != "video":
            raise DataError(
                f"{where / INFO}: camera feature '{key}' has dtype {ft.get('dtype')!r}; nblib "
                "reads cameras stored as video (LeRobot's default), not images in Parquet"
            )

    def width(key: str, declared: int) -> int:
        ft = features.get(key)
        if ft is None:
            raise DataError(
                f"{where / INFO}: no feature '{key}' (mapping '{mapping.name}'); features: "
                f"{sorted(features)}"
            )
        shape = list(ft.get("shape") or [1])
        found = int(np.prod(shape))
        if declared not in (AUTO, found):
            raise DataError(
                f"{where / INFO}: feature '{key}' has shape {shape}, mapping '{mapping.name}' "
                f"expects width {declared}"
            )
        return found

    proprio = {key: width(key, w) for key, w in mapping.proprio.items()}
    action_dim = width(mapping.actions, mapping.action_dim)
    names = mapping.action_names
    declared = features[mapping.actions].get("names")
    if names is None and isinstance(declared, list) and len(declared) == action_dim:
        names = [str(n) for n in declared]
    return replace(
        mapping, images=images, proprio=proprio, action_dim=action_dim, action_names=names
    )


def content_sha256(root: str | Path) -> str:
    """Hash of the task texts and every Parquet data column (actions, states, indices,
    timestamps), in file order: what a manifest checks for a LeRobot folder. Videos are
    left out, as images are for HDF5 files, since encoders differ between machines."""
    import hashlib

    layout = load_layout(root)
    digest = hashlib.sha256()
    for index, text in sorted(layout.tasks.items()):
        digest.update(f"{index}:{text}\n".encode())
    files = layout.data_files()
    if not files:
        raise DataError(f"{layout.root}: no data files match {layout.info['data_path']}")
    for file in files:
        table = read_parquet(file)
        for name in sorted(table.column_names):
            column = table.column(name).combine_chunks()
            while _is_list(column.type):
                column = column.flatten()
            values = column.to_numpy(zero_copy_only=False)
            digest.update(name.encode())
            if values.dtype == object:  # text or nested cells: hash their values, not pointers
                digest.update(repr(values.tolist()).encode())
            else:
                digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()
