"""Write demos as a LeRobot v3.0 dataset folder (Parquet + MP4), as LeRobot itself lays it out.

Every feature the key mapping names is exported: each camera as the video feature
``observation.images.<camera>``, the proprio keys concatenated as ``observation.state``,
the actions as ``action``, the instruction as the episode's task. Episodes follow one
another in one Parquet file and one MP4 per camera until LeRobot's size limits (100 MB of
data, 200 MB of video per file) start the next file. Videos are encoded as LeRobot encodes
them by default (AV1 with SVT-AV1, yuv420p, crf 30, a key frame every 2 frames, so any
frame decodes after at most one other), so frames come back within the codec's error while
actions and states come back exactly.

The folder is written next to its destination and renamed into place when complete, so an
interrupted export never leaves a folder that looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from nblib.data.hdf5 import DemoStore
from nblib.data.lerobot_layout import CODEBASE_VERSION, EPISODES, INFO, STATS, TASKS, episode_name
from nblib.data.manifest import available_manifests, load_manifest, open_dataset
from nblib.data.store import StoreBase
from nblib.errors import DataError, ParameterError
from nblib.threads import scheduling_kept

CHUNKS_SIZE = 1000  # files per chunk folder (LeRobot's DEFAULT_CHUNK_SIZE)
DATA_FILE_MB = 100  # LeRobot's DEFAULT_DATA_FILE_SIZE_IN_MB
VIDEO_FILE_MB = 200  # LeRobot's DEFAULT_VIDEO_FILE_SIZE_IN_MB
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = EPISODES + "/chunk-000/file-000.parquet"
VCODECS = ("libsvtav1", "h264", "hevc")  # what LeRobot's encoder accepts


@dataclass
class VideoOptions:
    """LeRobot's encoder defaults (its encode_video_frames)."""

    vcodec: str = "libsvtav1"
    crf: int = 30
    gop: int = 2
    pix_fmt: str = "yuv420p"

    def __post_init__(self):
        if self.vcodec not in VCODECS:
            raise ParameterError(f"vcodec: one of {VCODECS} (LeRobot's), got {self.vcodec!r}")
        if not isinstance(self.crf, int) or not 0 <= self.crf <= 63:
            raise ParameterError(f"crf: an int in [0, 63], got {self.crf!r}")
        if not isinstance(self.gop, int) or self.gop < 1:
            raise ParameterError(f"gop: an int >= 1, got {self.gop!r}")

    def stream_options(self) -> dict[str, str]:
        options = {"g": str(self.gop), "crf": str(self.crf)}
        if self.vcodec == "libsvtav1":
            options["preset"] = "12"  # LeRobot's default: the fastest preset
        return options


@dataclass
class ExportReport:
    """What an export wrote (``codec_error`` measures its frames against the source's)."""

    out: Path
    episodes: int
    frames: int
    tasks: int
    fps: float
    cameras: list[str]
    vcodec: str
    bytes: int
    seconds: float = 0.0


def _chunk_file(number: int) -> tuple[int, int]:
    """The (chunk_index, file_index) of the ``number``-th file of a kind."""
    return divmod(number, CHUNKS_SIZE)


def open_source(source: str | Path, mapping: str | None = None) -> DemoStore:
    """The demos to export: an HDF5 file (with ``mapping``, default ``metaworld``) or a
    manifest's dataset (generated first if missing, checksum verified)."""
    path = Path(source)
    if path.is_file() and path.suffix not in (".yaml", ".yml"):
        return DemoStore(path, mapping=mapping or "metaworld")
    if path.is_dir():
        raise ParameterError(f"source={str(source)!r} is a folder; export reads HDF5 demo files")
    if path.suffix in (".yaml", ".yml") or str(source) in available_manifests():
        manifest = load_manifest(source)
        if manifest.raw.get("format", "hdf5") != "hdf5":
            raise ParameterError(
                f"source={str(source)!r}: manifest of a {manifest.raw['format']} dataset, not HDF5"
            )
        return open_dataset(manifest, mapping=mapping)
    raise ParameterError(
        f"source={str(source)!r}: neither an HDF5 file nor a manifest (known manifests: "
        f"{', '.join(available_manifests())})"
    )


def source_fps(store: StoreBase, fps: float | None) -> float:
    """The control rate: ``fps`` if given, else the store's (an HDF5 file's ``fps``
    attribute, Meta-World's for files nblib generated); otherwise a ParameterError asking
    for it."""
    if fps is not None:
        if not isinstance(fps, int | float) or fps <= 0:
            raise ParameterError(f"fps: a positive number, got {fps!r}")
        return float(fps)
    if store.has("control_rate"):
        return store.control_rate()
    raise ParameterError(
        f"fps: {store.path} does not record its control rate; give it (--fps), e.g. 20 for LIBERO"
    )


def _features(store: StoreBase, shapes: dict[str, tuple], fps: float, video: VideoOptions) -> dict:
    features: dict = {}
    for camera in store.cameras:
        h, w, c = shapes[camera]
        features[f"observation.images.{camera}"] = {
            "dtype": "video",
            "shape": [h, w, c],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": h,
                "video.width": w,
                "video.codec": {"libsvtav1": "av1", "h264": "h264", "hevc": "hevc"}[video.vcodec],
                "video.pix_fmt": video.pix_fmt,
                "video.is_depth_map": False,
                "video.fps": int(round(fps)),
                "video.channels": c,
                "has_audio": False,
            },
        }
    names = []
    for key, width in store.mapping.proprio.items():
        base = key.rsplit("/", 1)[-1]
        names += [base] if width == 1 else [f"{base}_{i}" for i in range(width)]
    if names:
        features["observation.state"] = {"dtype": "float32", "shape": [len(names)], "names": names}
    features["action"] = {
        "dtype": "float32",
        "shape": [store.mapping.action_dim],
        "names": store.mapping.action_labels(),
    }
    for name, dtype in (
        ("timestamp", "float32"),
        ("frame_index", "int64"),
        ("episode_index", "int64"),
        ("index", "int64"),
        ("task_index", "int64"),
    ):
        features[name] = {"dtype": dtype, "shape": [1], "names": None}
    return features


def _vector_column(values: np.ndarray):
    import pyarrow as pa

    values = np.ascontiguousarray(values, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def _stats(values: np.ndarray) -> dict:
    """LeRobot's per-feature statistics over rows (axis 0)."""
    v = values.astype(np.float64)
    q = np.quantile(v, [0.01, 0.10, 0.50, 0.90, 0.99], axis=0)
    out = {"min": v.min(0), "max": v.max(0), "mean": v.mean(0), "std": v.std(0)}
    out |= {f"q{int(p * 100):02d}": q[i] for i, p in enumerate((0.01, 0.10, 0.50, 0.90, 0.99))}
    out = {k: np.atleast_1d(x).tolist() for k, x in out.items()}
    out["count"] = [len(v)]
    return out


class _VideoWriter:
    """One camera's MP4 files: frames appended episode after episode, a new file once the
    current one passes the size limit (checked between episodes, as LeRobot does)."""

    def __init__(self, root: Path, key: str, fps: float, shape: tuple, options: VideoOptions):
        self.root, self.key, self.fps, self.shape, self.options = root, key, fps, shape, options
        self.number, self.container, self.frames_in_file, self.bytes = -1, None, 0, 0
        # Running per-channel sums for stats.json (pixels scaled to [0, 1], as LeRobot).
        self.sum = np.zeros(3)
        self.sq = np.zeros(3)
        self.min = np.full(3, np.inf)
        self.max = np.full(3, -np.inf)
        self.pixels = 0

    def _open(self) -> None:
        import av

        # SVT-AV1 prints its configuration banner to stderr unless told to log errors only.
        os.environ.setdefault("SVT_LOG", "1")
        self.close()
        self.number += 1
        chunk, file = _chunk_file(self.number)
        path = self.root / VIDEO_PATH.format(video_key=self.key, chunk_index=chunk, file_index=file)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), "w")
        stream = self.container.add_stream(
            self.options.vcodec,
            rate=Fraction(self.fps).limit_denominator(1000),
            options=self.options.stream_options(),
        )
        stream.width, stream.height = self.shape[1], self.shape[0]
        stream.pix_fmt = self.options.pix_fmt
        stream.time_base = Fraction(1, 1) / Fraction(self.fps).limit_denominator(1000)
        self.stream, self.frames_in_file, self.bytes = stream, 0, 0

    def add_episode(self, frames: np.ndarray) -> dict:
        """Encode one episode's frames; returns its videos/<key>/... episode columns."""
        import av

        if self.container is None or self.bytes >= VIDEO_FILE_MB * 1024 * 1024:
            self._open()
        start = self.frames_in_file
        with scheduling_kept():  # the encoder starts at the first frame of a file
            for image in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts = self.frames_in_file
                self.frames_in_file += 1
                self._mux(self.stream.encode(frame))
        scaled = frames.reshape(-1, 3).astype(np.float64) / 255.0
        self.sum += scaled.sum(0)
        self.sq += (scaled**2).sum(0)
        self.min = np.minimum(self.min, scaled.min(0))
        self.max = np.maximum(self.max, scaled.max(0))
        self.pixels += len(scaled)
        chunk, file = _chunk_file(self.number)
        prefix = f"videos/{self.key}/"
        return {
            prefix + "chunk_index": chunk,
            prefix + "file_index": file,
            prefix + "from_timestamp": start / self.fps,
            prefix + "to_timestamp": self.frames_in_file / self.fps,
        }

    def _mux(self, packets) -> None:
        for packet in packets:
            self.bytes += packet.size
            self.container.mux(packet)

    def close(self) -> None:
        if self.container is not None:
            with scheduling_kept():
                self._mux(self.stream.encode())  # flush the encoder's delayed frames
                self.container.close()
            self.container = None

    def stats(self, frames: int) -> dict:
        mean = self.sum / self.pixels
        std = np.sqrt(np.maximum(self.sq / self.pixels - mean**2, 0))
        as_chw = lambda x: [[[float(v)]] for v in x]  # noqa: E731  (LeRobot keeps (3, 1, 1))
        return {
            "min": as_chw(self.min),
            "max": as_chw(self.max),
            "mean": as_chw(mean),
            "std": as_chw(std),
            "count": [frames],
        }


def export_lerobot(
    store: StoreBase,
    out: str | Path,
    fps: float | None = None,
    video: VideoOptions | None = None,
    robot_type: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> ExportReport:
    """Write ``store``'s demos (all of them, in order) as a LeRobot v3.0 folder at ``out``."""
    import time

    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    begin = time.perf_counter()
    out = Path(out)
    video = video or VideoOptions()
    _check_encoder(video.vcodec)
    if out.exists() and not overwrite:
        raise ParameterError(
            f"out={str(out)!r} exists; pass overwrite=True (--overwrite) to replace it"
        )
    if not store.demos:
        raise ParameterError(f"{store.path}: no demos to export")
    fps = source_fps(store, fps)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shapes = {c: tuple(store.frames(store.demos[0], c, 0, 1).shape[1:]) for c in store.cameras}
        for camera, (h, w, _) in shapes.items():
            if h % 2 or w % 2:
                raise DataError(
                    f"{store.path}: camera '{camera}' frames are {h}x{w}; yuv420p video needs "
                    "even sizes"
                )
        features = _features(store, shapes, fps, video)
        tasks: dict[str, int] = {}
        writers = {
            c: _VideoWriter(tmp, f"observation.images.{c}", fps, shapes[c], video)
            for c in store.cameras
        }
        episodes, pending, data_number, data_bytes, total = [], [], 0, 0, 0

        def flush_data() -> None:
            nonlocal pending, data_bytes
            if pending:
                chunk, file = _chunk_file(data_number)
                path = tmp / DATA_PATH.format(chunk_index=chunk, file_index=file)
                path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(pa.concat_tables(pending), path, compression="snappy")
            pending, data_bytes = [], 0

        bar = tqdm(store.demos, desc="export", unit="episode", disable=not progress)
        for index, demo in enumerate(bar):
            n = store.lengths[demo]
            text = store.instruction[demo] or store.task_label(demo)
            task_index = tasks.setdefault(text, len(tasks))
            if data_bytes >= DATA_FILE_MB * 1024 * 1024:
                flush_data()
                data_number += 1
            columns = {}
            if "observation.state" in features:
                columns["observation.state"] = _vector_column(store.proprio[demo])
            columns["action"] = _vector_column(store.actions[demo])
            columns["timestamp"] = pa.array((np.arange(n) / fps).astype(np.float32))
            columns["frame_index"] = pa.array(np.arange(n, dtype=np.int64))
            columns["episode_index"] = pa.array(np.full(n, index, dtype=np.int64))
            columns["index"] = pa.array(np.arange(total, total + n, dtype=np.int64))
            columns["task_index"] = pa.array(np.full(n, task_index, dtype=np.int64))
            table = pa.table(columns)
            pending.append(table)
            data_bytes += table.nbytes
            chunk, file = _chunk_file(data_number)
            row = {
                "episode_index": index,
                "tasks": [text],
                "length": n,
                "data/chunk_index": chunk,
                "data/file_index": file,
                "dataset_from_index": total,
                "dataset_to_index": total + n,
            }
            for camera, writer in writers.items():
                row |= writer.add_episode(store.frames(demo, camera, 0, n))
            row |= {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
            episodes.append(row)
            total += n
        flush_data()
        for writer in writers.values():
            writer.close()
        _write_meta(tmp, store, features, tasks, episodes, writers, fps, total, robot_type)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return ExportReport(
        out=out,
        episodes=len(episodes),
        frames=total,
        tasks=len(tasks),
        fps=fps,
        cameras=list(store.cameras),
        vcodec=video.vcodec,
        bytes=size,
        seconds=time.perf_counter() - begin,
    )


def _write_meta(root, store, features, tasks, episodes, writers, fps, total, robot_type) -> None:
    import pandas as pd

    (root / "meta").mkdir(exist_ok=True)
    # LeRobot keeps the task text as the DataFrame's index and task_index as its column.
    frame = pd.DataFrame(
        {"task_index": list(tasks.values())}, index=pd.Index(list(tasks), name="task")
    )
    frame.to_parquet(root / TASKS)
    path = root / EPISODES_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(episodes).to_parquet(path)
    stats = {}
    if "observation.state" in features:
        stats["observation.state"] = _stats(np.concatenate([store.proprio[d] for d in store.demos]))
    stats["action"] = _stats(np.concatenate([store.actions[d] for d in store.demos]))
    for writer in writers.values():
        stats[writer.key] = writer.stats(total)
    (root / STATS).write_text(json.dumps(stats, indent=4))
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": len(episodes),
        "total_frames": total,
        "total_tasks": len(tasks),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILE_MB,
        "video_files_size_in_mb": VIDEO_FILE_MB,
        "fps": int(fps) if float(fps).is_integer() else fps,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if writers else None,
        "features": features,
    }
    (root / INFO).write_text(json.dumps(info, indent=4))


def _check_encoder(vcodec: str) -> None:
    import av

    if vcodec not in av.codecs_available:
        raise ParameterError(
            f"vcodec {vcodec!r}: this PyAV build has no such encoder; "
            f"available of LeRobot's: {[c for c in VCODECS if c in av.codecs_available]}"
        )


def codec_error(source: StoreBase, exported, camera: str) -> dict:
    """How far the exported frames of ``camera`` are from the source's, over every frame:
    mean and max absolute error in grey levels, and PSNR in dB."""
    diff_sum, sq_sum, count, worst = 0.0, 0.0, 0, 0
    for demo, name in zip(
        source.demos, [episode_name(i) for i in range(len(source.demos))], strict=True
    ):
        n = source.lengths[demo]
        a = source.frames(demo, camera, 0, n).astype(np.int16)
        b = exported.frames(name, camera, 0, n).astype(np.int16)
        d = np.abs(a - b)
        diff_sum += float(d.sum())
        sq_sum += float((d.astype(np.float64) ** 2).sum())
        count += d.size
        worst = max(worst, int(d.max()))
    mse = sq_sum / count
    return {
        "mean_abs": diff_sum / count,
        "max_abs": worst,
        "psnr_db": float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse),
    }
